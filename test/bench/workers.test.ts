/**
 * The workers benchmark's machinery, on real `egmf sweep run` processes whose trials are the
 * scripted fake trial (no training): the figures here say nothing about speed; the benchmark's
 * own protocol (`npm run bench -- --target workers`) is measured in the README.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatWorkers, runOrder, runWorkersBench } from '../../src/bench/workers.ts';
import { tempDir } from '../helpers.ts';
import { fakeEnv, gridSpec } from '../fixtures/sweep/harness.ts';

const tmp = tempDir('egmf-bench-workers-');
afterAll(() => tmp.cleanup());

describe('workers bench', () => {
  it('runs the same sweep with 1 and 2 trial processes and gives wall time, trials per hour, trial length and the ratios', async () => {
    const spec = gridSpec(tmp.path, { name: 'speed', lrs: [0.1, 0.2, 0.3, 0.4], epochs: 2 });
    const said: string[] = [];
    const env = { ...process.env, ...fakeEnv(join(tmp.path, 'fake.jsonl'), { FAKE_TRIAL_SLEEP_MS: '200' }) };
    // --set reaches every trial: three epochs instead of the spec's two.
    const r = await runWorkersBench({ spec, parallel: [1, 2], sets: ['train.epochs=3'], env, say: (m) => said.push(m) });
    expect(r.sets).toEqual(['train.epochs=3']);
    expect(r.runs.map((x) => [x.parallel, x.trials])).toEqual([[1, 4], [2, 4]]);
    for (const x of r.runs) {
      // Each trial sleeps 3 x 200 ms: the trials span at least that, and the whole sweep more.
      expect(x.trial_s).toBeGreaterThanOrEqual(0.6 - 0.05);
      expect(x.trial_s).toBeLessThan(x.trials_span_s);
      expect(x.trials_span_s).toBeGreaterThanOrEqual((x.parallel === 1 ? 4 : 2) * 0.6 - 0.05);
      expect(x.wall_s).toBeGreaterThan(x.trials_span_s);
      // (from the unrounded seconds)
      expect(x.trials_per_hour / ((4 / x.wall_s) * 3600)).toBeCloseTo(1, 2);
      expect(x.trials_per_hour_running / ((4 / x.trials_span_s) * 3600)).toBeCloseTo(1, 1);
      // The fake trial's best is lr 0.3, trial 2.
      expect(x.best).toEqual({ trial: 2, metric: 1 });
    }
    expect(r.ratio_wall['2']).toBeCloseTo(r.runs[0]!.wall_s / r.runs[1]!.wall_s, 1);
    expect(r.ratio_running['2']).toBeCloseTo(r.runs[0]!.trials_span_s / r.runs[1]!.trials_span_s, 1);
    expect(r.same_results).toBe(true);
    expect(said.filter((m) => m.includes('--parallel'))).toHaveLength(2);
    const text = formatWorkers(r);
    expect(text).toMatch(/with --set train\.epochs=3: the same sweep once per --parallel value/);
    expect(text).toMatch(/--parallel 1: [\d.]+ s for 4 trials of [\d.]+ s on average \(\d+ trials\/h\); while trials ran [\d.]+ s/);
    expect(text).toMatch(/--parallel 2: [\d.]+ s for 4 trials of [\d.]+ s on average \(\d+ trials\/h, [\d.]+×\)/);
    expect(text).toMatch(/every trial gave the same value in every run/);
  });

  it('repeats the runs in ABBA order with --rounds: ratios of the mean times, and each round\'s own with their mean ± std', async () => {
    expect(runOrder([1, 2], 3)).toEqual([
      { parallel: 1, round: 1 }, { parallel: 2, round: 1 }, { parallel: 2, round: 2 }, { parallel: 1, round: 2 }, { parallel: 1, round: 3 }, { parallel: 2, round: 3 },
    ]);
    const spec = gridSpec(tmp.path, { name: 'rounds', lrs: [0.1, 0.2], epochs: 2 });
    const env = { ...process.env, ...fakeEnv(join(tmp.path, 'rounds.jsonl'), { FAKE_TRIAL_SLEEP_MS: '150' }) };
    const r = await runWorkersBench({ spec, parallel: [1, 2], rounds: 2, env });
    expect(r.rounds).toBe(2);
    expect(r.runs.map((x) => [x.round, x.parallel])).toEqual([[1, 1], [1, 2], [2, 2], [2, 1]]);
    const at = (k: number, p: number) => r.runs.find((x) => x.round === k && x.parallel === p)!;
    const each = [at(1, 1).wall_s / at(1, 2).wall_s, at(2, 1).wall_s / at(2, 2).wall_s];
    expect(r.rounds_ratio_wall['2']!.each).toHaveLength(2);
    r.rounds_ratio_wall['2']!.each.forEach((x, i) => expect(x).toBeCloseTo(each[i]!, 1));
    expect(r.rounds_ratio_wall['2']!.mean).toBeCloseTo((each[0]! + each[1]!) / 2, 1);
    expect(r.rounds_ratio_wall['2']!.std).toBeCloseTo(Math.abs(each[0]! - each[1]!) / Math.SQRT2, 1);
    // The ratio of the means, not the mean of the ratios.
    expect(r.ratio_wall['2']).toBeCloseTo((at(1, 1).wall_s + at(2, 1).wall_s) / (at(1, 2).wall_s + at(2, 2).wall_s), 1);
    expect(r.rounds_ratio_running['2']!.each).toHaveLength(2);
    expect(r.same_results).toBe(true);
    const text = formatWorkers(r);
    expect(text).toMatch(/the same sweep 2 times per --parallel value, in ABBA order/);
    expect(text).toMatch(/round 2, --parallel 1: [\d.]+ s for 2 trials/);
    expect(text).toMatch(/--parallel 2 against 1, from the mean times: [\d.]+× whole sweep, [\d.]+× while trials ran; round by round [\d.]+ \/ [\d.]+ \([\d.]+ ± [\d.]+\)/);
  });

  it('names a missing spec, a bad --parallel value and a sweep that fails, with its cause', async () => {
    await expect(runWorkersBench({ spec: join(tmp.path, 'nope.yaml') })).rejects.toThrow(/nope\.yaml.*sweep spec not found/);
    const spec = gridSpec(tmp.path, { name: 'ok', lrs: [0.1], epochs: 1 });
    await expect(runWorkersBench({ spec, parallel: [1, 0] })).rejects.toThrow(/key 'parallel'.*integers >= 1, got 1,0/);
    await expect(runWorkersBench({ spec, parallel: [1, 1] })).rejects.toThrow(/key 'parallel'.*must differ, got 1,1/);
    await expect(runWorkersBench({ spec, rounds: 0 })).rejects.toThrow(/key 'rounds'.*integer >= 1, got 0/);
    await expect(runWorkersBench({ spec, sets: ['train.epochs'] })).rejects.toThrow(/key 'set': expects key=value, got 'train\.epochs'/);
    const bad = join(tmp.path, 'bad.yaml');
    writeFileSync(bad, 'name: bad\nmethod: grid\nmetric: {name: valid/score, goal: maximize}\nparameters:\n  train.lr: {values: [0.1]}\nset: {train.epochs: 1}\n');
    const env = { ...process.env, ...fakeEnv(join(tmp.path, 'bad.jsonl'), { EGMF_TRIAL_COMMAND: JSON.stringify(['/nonexistent/trial']) }) };
    await expect(runWorkersBench({ spec: bad, parallel: [1], env })).rejects.toThrow(/bad\.yaml/);
  });
});
