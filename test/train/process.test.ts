/**
 * Training as a real `egmf train` process (what the learning bench and reports use): its
 * result line and summary.json come back, the run is logged under a parent run with the
 * given tags, a failing run is an error naming its config, and the pool keeps input order.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createStore, startRun } from '../../src/tracking/index.ts';
import { parseTags } from '../../src/cli/train.ts';
import { mapPool, REPO_ROOT, runTrainProcess } from '../../src/train/process.ts';
import { tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-process-');
afterAll(() => tmp.cleanup());
const env = { ...process.env, EGMF_CACHE: join(tmp.path, 'cache'), MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' };
const TINY = ['data.scale=0.03', 'data.limit_train=32', 'train.epochs=1', 'llm.pretrain_steps=20'];

describe('runTrainProcess', () => {
  it('returns the run line and summary, logged as a tagged child of a parent run', async () => {
    const uri = join(tmp.path, 'mlruns');
    const store = createStore(uri);
    const parent = await startRun(store, { experimentName: 'process-test', runName: 'parent' });
    const r = await runTrainProcess({
      config: join(REPO_ROOT, 'experiments', 'synthetic', 'meld.yaml'), seed: 1111, sets: TINY, out: join(tmp.path, 'run'), env,
      tracking: { uri, experiment: 'process-test', parentRunId: parent.runId, runName: 'child', tags: { 'report.row': 'full' } },
    });
    expect(r.line.metric).toBe('weighted_f1');
    expect(r.summary.dataset).toBe('meld');
    expect(r.summary.baselines_detail.majority?.test?.weighted_f1).toBeGreaterThan(0);
    const run = await store.getRun(r.line.run_id!);
    expect(run.data.tags['mlflow.parentRunId']).toBe(parent.runId);
    expect(run.data.tags['report.row']).toBe('full');
    expect(run.info.runName).toBe('child');
  }, 300_000);

  it('fails with an error naming the config and the cause', async () => {
    const config = join(REPO_ROOT, 'experiments', 'synthetic', 'meld.yaml');
    await expect(runTrainProcess({ config, seed: 1, sets: ['train.epochs=0'], out: join(tmp.path, 'bad'), env })).rejects.toThrow(/meld\.yaml: egmf train .*seed 1\) exited 1: .*train\.epochs/);
  }, 120_000);

  it('parses --tag flags, refusing one without a key', () => {
    expect(parseTags(['a=b', 'c=d=e', 'e='])).toEqual({ a: 'b', c: 'd=e', e: '' });
    expect(() => parseTags(['=x'])).toThrow(/key 'tag': must be key=value, got '=x'/);
    expect(() => parseTags(['novalue'])).toThrow(/must be key=value/);
  });
});

describe('mapPool', () => {
  it('runs at most `parallel` at a time and keeps input order', async () => {
    let live = 0;
    let peak = 0;
    const out = await mapPool([30, 5, 20, 1, 10], 2, async (ms, i) => {
      peak = Math.max(peak, ++live);
      await new Promise((r) => setTimeout(r, ms));
      live--;
      return i * 10;
    });
    expect(out).toEqual([0, 10, 20, 30, 40]);
    expect(peak).toBe(2);
  });
});
