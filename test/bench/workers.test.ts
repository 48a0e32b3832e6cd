/**
 * The workers benchmark's machinery, on real `egmf sweep run` processes whose trials are the
 * scripted fake trial (no training): the figures here say nothing about speed; the benchmark's
 * own protocol (`npm run bench -- --target workers`) is measured in the README.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatWorkers, runWorkersBench } from '../../src/bench/workers.ts';
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

  it('names a missing spec, a bad --parallel value and a sweep that fails, with its cause', async () => {
    await expect(runWorkersBench({ spec: join(tmp.path, 'nope.yaml') })).rejects.toThrow(/nope\.yaml.*sweep spec not found/);
    const spec = gridSpec(tmp.path, { name: 'ok', lrs: [0.1], epochs: 1 });
    await expect(runWorkersBench({ spec, parallel: [1, 0] })).rejects.toThrow(/key 'parallel'.*integers >= 1, got 1,0/);
    await expect(runWorkersBench({ spec, sets: ['train.epochs'] })).rejects.toThrow(/key 'set': expects key=value, got 'train\.epochs'/);
    const bad = join(tmp.path, 'bad.yaml');
    writeFileSync(bad, 'name: bad\nmethod: grid\nmetric: {name: valid/score, goal: maximize}\nparameters:\n  train.lr: {values: [0.1]}\nset: {train.epochs: 1}\n');
    const env = { ...process.env, ...fakeEnv(join(tmp.path, 'bad.jsonl'), { EGMF_TRIAL_COMMAND: JSON.stringify(['/nonexistent/trial']) }) };
    await expect(runWorkersBench({ spec: bad, parallel: [1], env })).rejects.toThrow(/bad\.yaml/);
  });
});
