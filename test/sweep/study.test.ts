import { appendFileSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EgmfError } from '../../src/errors.ts';
import { Study, parseSweepSpec, readJournal, configOverrides, type StudyJSON, type SweepSpec, type Trial } from '../../src/sweep/index.ts';
import { tempDir } from '../helpers.ts';

function spec(extra = '', method = 'tpe'): SweepSpec {
  return parseSweepSpec(`
name: demo
method: ${method}
metric: {name: valid/f1, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-1}
  train.opt: {values: [adam, sgd]}
  train.momentum: {distribution: q_uniform, min: 0.5, max: 0.9, q: 0.1, when: {train.opt: sgd}}
set: {train.epochs: 4}
sampler: {seed: 3${method === 'tpe' ? ', n_startup_trials: 4' : ''}}
${extra}`);
}

/** A toy objective: accuracy peaks at lr = 1e-2 with adam. */
const score = (p: Trial['params'], step: number): number => 1 - Math.abs(Math.log10(p['train.lr'] as number) + 2) / 4 - (p['train.opt'] === 'sgd' ? 0.1 : 0) - 0.05 * (4 - step);

/** Drives a study like an executor: up to `n` trials, two at a time, with reports and pruning. */
function drive(s: Study, n: number): void {
  for (let i = 0; i < n; i += 2) {
    const batch = [s.ask(), s.ask()].filter((t): t is Trial => t !== null);
    for (const [k, t] of batch.entries()) {
      if ((i + k) % 9 === 4) {
        s.tell(t.id, { state: 'failed', error: 'CUDA out of memory' });
        continue;
      }
      let pruned = false;
      for (let step = 1; step <= 4 && !pruned; step++) {
        t.report(step, score(t.params, step));
        if (t.shouldPrune()) {
          s.tell(t.id, { state: 'pruned', value: score(t.params, step) });
          pruned = true;
        }
      }
      if (!pruned) s.tell(t.id, { state: 'complete', value: score(t.params, 4) });
    }
  }
}

let dir: { path: string; cleanup: () => void };
beforeEach(() => {
  dir = tempDir('egmf-study-');
});
afterEach(() => dir.cleanup());

describe('study ask/tell', () => {
  it('asks deterministic ids and params, records reports and results, finds the best', () => {
    const a = new Study(spec());
    const b = new Study(spec());
    drive(a, 20);
    drive(b, 20);
    expect(b.toJSON()).toEqual(a.toJSON());
    const trials = a.trials();
    expect(trials.map((t) => t.id).slice(0, 3)).toEqual(['demo-t0-s0', 'demo-t1-s0', 'demo-t2-s0']);
    expect(trials.every((t) => a.space.contains(t.params))).toBe(true);
    expect(trials.filter((t) => t.state === 'failed').map((t) => t.error)).toEqual(['CUDA out of memory', 'CUDA out of memory']); // trials 4 and 13
    const best = a.best();
    const completeValues = trials.filter((t) => t.state === 'complete').map((t) => t.value as number);
    expect(best?.value).toBe(Math.max(...completeValues));
    expect(configOverrides(a.spec, best?.params ?? {})).toMatchObject({ 'train.epochs': 4, 'train.lr': best?.params['train.lr'] });
  });

  it('keeps finished records immutable: identical re-tell is a no-op, a different one is rejected', () => {
    const s = new Study(spec());
    const t = s.ask() as Trial;
    t.report(1, 0.5);
    t.report(1, 0.5); // re-delivered report: no-op
    expect(() => t.report(1, 0.6)).toThrow(/step 1 was already reported with 0.5/);
    expect(() => t.report(2, Number.NaN)).toThrow(/must be finite/);
    expect(() => t.report(1.5, 0.1)).toThrow(/integer >= 0/);
    expect(s.tell(t, { state: 'complete', value: 0.7 })).toBe(true);
    expect(s.tell(t.id, { state: 'complete', value: 0.7 })).toBe(false);
    let err: unknown;
    try {
      s.tell(t.id, { state: 'complete', value: 0.8 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EgmfError);
    expect((err as EgmfError).context.key).toBe('demo-t0-s0');
    expect((err as EgmfError).message).toMatch(/already complete with value 0.7; finished records cannot change/);
    expect(() => s.tell(t.id, { state: 'failed' })).toThrow(/already complete/);
    expect(() => t.report(2, 0.9)).toThrow(/cannot report to a complete trial/);
    expect(() => s.tell('demo-t9-s0', { state: 'complete', value: 1 })).toThrow(/key 'demo-t9-s0': unknown trial/);
    expect(() => s.tell((s.ask() as Trial).id, { state: 'complete', value: Number.POSITIVE_INFINITY })).toThrow(/finite value/);
    const rec = s.trials()[0];
    expect(Object.isFrozen(rec)).toBe(true);
    expect(Object.isFrozen(rec.params)).toBe(true);
    expect(rec.intermediate).toEqual([[1, 0.5]]);
    expect(t.shouldPrune()).toBe(false); // finished trials are never pruned
  });

  it('repeats each configuration over the seeds and averages completed ones', () => {
    const s = new Study(spec('seeds: [11, 22, 33]'));
    const t = [s.ask(), s.ask(), s.ask(), s.ask()] as Trial[];
    expect(t.map((x) => [x.id, x.number, x.seedIndex, x.seed])).toEqual([['demo-t0-s0', 0, 0, 11], ['demo-t0-s1', 0, 1, 22], ['demo-t0-s2', 0, 2, 33], ['demo-t1-s0', 1, 0, 11]]);
    expect(t[1].params).toEqual(t[0].params);
    s.tell(t[0].id, { state: 'complete', value: 0.6 });
    expect(s.configurations()[0].state).toBe('running');
    s.tell(t[1].id, { state: 'failed', error: 'node died' });
    s.tell(t[2].id, { state: 'complete', value: 0.8 });
    const c0 = s.configurations()[0];
    expect(c0.state).toBe('complete');
    expect(c0.value).toBeCloseTo(0.7, 12);
    expect(s.best()).toMatchObject({ number: 0, seedValues: [0.6, 0.8] });
    expect(s.best()?.value).toBeCloseTo(0.7, 12);
  });

  it('prunes a configuration as a whole: running siblings stop, remaining seeds are skipped', () => {
    const s = new Study(spec('seeds: [1, 2, 3]\nearly_terminate: {type: median, warmup_steps: 1, min_trials: 1}'));
    const [a, b] = [s.ask(), s.ask()] as Trial[];
    s.tell(a.id, { state: 'pruned', value: 0.1 });
    expect(b.shouldPrune()).toBe(true);
    s.tell(b.id, { state: 'pruned' });
    const next = s.ask() as Trial;
    expect(next.id).toBe('demo-t1-s0');
    expect(s.configurations()[0].state).toBe('pruned');
  });

  it('stops at run_cap (counting seed runs) and when the grid is exhausted', () => {
    const capped = new Study(spec('seeds: [1, 2]\nrun_cap: 5'));
    const asked = [capped.ask(), capped.ask(), capped.ask(), capped.ask()];
    expect(asked.every((x) => x !== null)).toBe(true);
    expect(capped.ask()).toBeNull(); // a third configuration would need runs 5 and 6
    const grid = new Study(parseSweepSpec('name: g\nmethod: grid\nmetric: {name: f1, goal: maximize}\nparameters:\n  a: {values: [1, 2]}\n  b: {values: [x], when: {a: 2}}\n'));
    expect([grid.ask()?.params, grid.ask()?.params]).toEqual([{ a: 1 }, { a: 2, b: 'x' }]);
    expect(grid.ask()).toBeNull();
  });

  it('spreads parallel asks with TPE (constant liar)', () => {
    const s = new Study(spec());
    drive(s, 10);
    const pending = [s.ask(), s.ask(), s.ask()] as Trial[];
    expect(new Set(pending.map((t) => JSON.stringify(t.params))).size).toBe(3);
  });

  it('round-trips through toJSON/fromJSON and continues identically', () => {
    const s = new Study(spec('seeds: [5, 6]'));
    drive(s, 14);
    const open = s.ask() as Trial;
    open.report(1, 0.3);
    const json = JSON.parse(JSON.stringify(s.toJSON())) as StudyJSON;
    const restored = Study.fromJSON(spec('seeds: [5, 6]'), json);
    expect(restored.toJSON()).toEqual(s.toJSON());
    expect(restored.ask()?.params).toEqual(s.ask()?.params);
    expect(() => Study.fromJSON(spec('seeds: [5]'), json)).toThrow(/different spec/);
  });
});

describe('study journal', () => {
  it('replays into the live state and continues with the same asks', () => {
    const file = join(dir.path, 'journal.jsonl');
    const live = Study.open(spec('early_terminate: {type: asha, min_resource: 1, eta: 2}'), file).study;
    drive(live, 16);
    (live.ask() as Trial).report(1, 0.42); // a trial still running at the "crash"
    const copy = join(dir.path, 'copy.jsonl');
    copyFileSync(file, copy);
    const { study: replayed, dropped } = Study.open(spec('early_terminate: {type: asha, min_resource: 1, eta: 2}'), copy);
    expect(dropped).toBeUndefined();
    expect(replayed.toJSON()).toEqual(live.toJSON());
    expect(live.trials().some((t) => t.state === 'pruned')).toBe(true);
    const [x, y] = [live.ask() as Trial, replayed.ask() as Trial];
    expect([y.id, y.params]).toEqual([x.id, x.params]);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(lines[0]).toMatchObject({ type: 'study', sweepId: 'demo' });
    expect(new Set(lines.slice(1).map((l) => l.type))).toEqual(new Set(['ask', 'report', 'tell']));
    live.close();
    replayed.close();
  });

  it('tolerates and reports a half-written last line, cutting it off before appending', () => {
    const file = join(dir.path, 'journal.jsonl');
    const live = Study.open(spec(), file).study;
    drive(live, 6);
    live.close();
    const before = live.toJSON();
    const complete = readFileSync(file, 'utf8').split('\n').length - 1;
    appendFileSync(file, '{"type":"tell","id":"demo-t5-s0","sta');
    const bytes = readFileSync(file);
    const readOnly = Study.replay(spec(), file);
    expect(readOnly.dropped?.text).toBe('{"type":"tell","id":"demo-t5-s0","sta');
    expect(readOnly.study.toJSON()).toEqual(before);
    expect(readFileSync(file).equals(bytes)).toBe(true); // replay alone never writes
    const { study, dropped } = Study.open(spec(), file);
    expect(dropped).toMatchObject({ line: complete + 1, text: '{"type":"tell","id":"demo-t5-s0","sta' });
    expect(study.toJSON()).toEqual(before);
    study.ask();
    study.close();
    const after = readJournal(file);
    expect(after.dropped).toBeUndefined();
    expect(after.events.at(-1)?.event.type).toBe('ask');
  });

  it('rejects a corrupt line in the middle, naming file and line', () => {
    const file = join(dir.path, 'journal.jsonl');
    const live = Study.open(spec(), file).study;
    drive(live, 2);
    live.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[2] = '{"type":"report","id":';
    writeFileSync(file, lines.join('\n'));
    expect(() => Study.open(spec(), file)).toThrow(/journal\.jsonl, line 3: corrupt journal line/);
  });

  it('rejects a conflicting tell and a different spec, naming the line', () => {
    const file = join(dir.path, 'journal.jsonl');
    const live = Study.open(spec(), file).study;
    const t = live.ask() as Trial;
    live.tell(t.id, { state: 'complete', value: 0.5 });
    live.close();
    appendFileSync(file, `${JSON.stringify({ type: 'tell', id: t.id, state: 'complete', value: 0.5 })}\n`); // duplicate delivery: fine
    expect(Study.open(spec(), file).study.trials()[0].value).toBe(0.5);
    appendFileSync(file, `${JSON.stringify({ type: 'tell', id: t.id, state: 'complete', value: 0.9 })}\n`);
    expect(() => Study.open(spec(), file)).toThrow(/journal\.jsonl, line 5, key 'demo-t0-s0': .*already complete/);
    const other = parseSweepSpec('name: demo\nmethod: random\nmetric: {name: f1, goal: maximize}\nparameters:\n  a: {values: [1]}\n');
    expect(() => Study.open(other, file)).toThrow(/line 1: journal belongs to sweep 'demo' \(spec [0-9a-f]+\), not 'demo'/);
  });

  it('writes nothing when a change is rejected', () => {
    const file = join(dir.path, 'journal.jsonl');
    const s = Study.open(spec(), file).study;
    const t = s.ask() as Trial;
    const size = readFileSync(file).length;
    expect(() => t.report(1, Number.NaN)).toThrow();
    expect(() => s.tell(t.id, { state: 'complete', value: Number.NaN })).toThrow();
    expect(readFileSync(file).length).toBe(size);
    expect(s.trials()[0].state).toBe('running');
    s.close();
  });
});
