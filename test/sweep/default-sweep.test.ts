/**
 * `npm run sweep` end to end in a reduced-size mode (2 trials, tiny data at scale 0.03, a 20-step
 * pretrained built-in LLM): real `egmf trial` processes train EGMF, and the results are
 * read back from the local MLflow store with MLflow's own Python client.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt } from '../../src/sweep/summary.ts';
import { REPO, runPython, tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-default-sweep-');
afterAll(() => tmp.cleanup());

describe('npm run sweep (reduced)', () => {
  it('runs the default sweep with real trials and tracks it in the local store', () => {
    const store = join(tmp.path, 'mlruns');
    const r = spawnSync('npm', ['run', '--silent', 'sweep', '--', '--run-cap', '2', '--parallel', '2', '--json', '--tracking-uri', store,
      '--set', 'data.scale=0.03', '--set', 'data.limit_train=32', '--set', 'llm.pretrain_steps=20', '--set', 'train.batch_size=16'], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 600_000,
      env: { ...process.env, EGMF_CACHE: join(tmp.path, 'cache'), EGMF_SWEEP_DIR: join(tmp.path, 'sweeps'), EGMF_TRIAL_COMMAND: '', MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' },
    });
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      sweep_id: string; parent_run_id: string; trials: { completed: number; pruned: number; failed: number };
      best: { run_id: string; trial_id: string; params: Record<string, unknown>; metric: number }; baselines: Record<string, number>;
    };
    expect(out.trials.failed).toBe(0);
    expect(out.trials.completed + out.trials.pruned).toBe(2);
    expect(out.best.metric).toBeGreaterThan(0);
    expect(Object.keys(out.best.params)).toEqual(expect.arrayContaining(['data.dataset', 'model.gating.depth', 'llm.lora.rank']));
    // The best trial's own baselines beside it (majority class and TF-IDF of its dataset).
    expect(Object.keys(out.baselines).sort()).toEqual(['majority', 'tfidf']);
    expect(out.baselines.majority).toBeGreaterThan(0);
    expect(out.baselines.majority).toBeLessThan(out.baselines.tfidf!);
    const py = runPython(`
import sys, json, os
os.environ['MLFLOW_ALLOW_FILE_STORE'] = 'true'
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri='file:' + sys.argv[1])
parent = c.get_run(sys.argv[2])
kids = c.search_runs([parent.info.experiment_id], filter_string="tags.mlflow.parentRunId = '%s'" % sys.argv[2])
print(json.dumps({
  'parent_tags': parent.data.tags,
  'parent_artifacts': [a.path for a in c.list_artifacts(sys.argv[2], 'summary')],
  'kids': [{'id': k.info.run_id, 'state': k.data.tags.get('sweep.state'), 'best': k.data.tags.get('sweep.best'),
            'params': k.data.params, 'valid': [m.value for m in c.get_metric_history(k.info.run_id, 'valid/weighted_f1')],
            'loss_steps': [m.step for m in c.get_metric_history(k.info.run_id, 'train/loss')]} for k in kids]}))
`, [store, out.parent_run_id]);
    expect(py.stderr).not.toMatch(/Traceback/);
    const got = JSON.parse(py.stdout.trim().split('\n').pop()!);
    expect(got.parent_tags['sweep.best_run_id']).toBe(out.best.run_id);
    expect(got.parent_artifacts).toEqual(expect.arrayContaining(['summary/trials.csv', 'summary/parallel_coordinates.svg']));
    const md = readFileSync(join(tmp.path, 'sweeps', out.sweep_id, 'summary', 'trials.md'), 'utf8');
    expect(md).toContain(`baselines on its data: majority class ${fmt(out.baselines.majority!)}, TF-IDF ${fmt(out.baselines.tfidf!)}`);
    expect(got.kids).toHaveLength(2);
    for (const k of got.kids) {
      expect(['completed', 'pruned']).toContain(k.state);
      expect(k.valid.length).toBeGreaterThanOrEqual(1);
      expect(k.loss_steps.length).toBeGreaterThan(0);
      expect(k.params['data.dataset']).toMatch(/^(meld|cherma)$/);
    }
    expect(got.kids.filter((k: { best: string }) => k.best === 'true').map((k: { id: string }) => k.id)).toEqual([out.best.run_id]);

    // `sweep confirm` re-trains the best configuration with another seed, under the parent run.
    const env = { ...process.env, EGMF_CACHE: join(tmp.path, 'cache'), EGMF_SWEEP_DIR: join(tmp.path, 'sweeps'), MLFLOW_TRACKING_URI: '' };
    const c = spawnSync('node', ['bin/egmf.mjs', 'sweep', 'confirm', out.sweep_id, '--seeds', '2222', '--json'], { cwd: REPO, encoding: 'utf8', timeout: 600_000, env });
    expect(c.stderr).not.toMatch(/^error:/m);
    expect(c.status).toBe(0);
    const conf = JSON.parse(c.stdout.trim().split('\n').pop()!) as { trial_id: string; params: Record<string, unknown>; sweep_value: number; runs: { seed: number; value: number; run_id: string }[]; mean: number; std: number; max_diff: number; baselines: Record<string, number> };
    expect(conf.trial_id).toBe(out.best.trial_id);
    expect(conf.params).toEqual(out.best.params);
    expect(conf.sweep_value).toBe(out.best.metric);
    expect(conf.runs.map((x) => x.seed)).toEqual([2222]);
    expect(conf.mean).toBe(conf.runs[0]!.value);
    expect(conf.std).toBe(0);
    expect(conf.max_diff).toBeCloseTo(Math.abs(conf.runs[0]!.value - out.best.metric), 12);
    expect(conf.baselines.majority).toBeGreaterThan(0);
    const tagged = runPython(`
import sys, os
os.environ['MLFLOW_ALLOW_FILE_STORE'] = 'true'
from mlflow.tracking import MlflowClient
r = MlflowClient(tracking_uri='file:' + sys.argv[1]).get_run(sys.argv[2])
print(r.data.tags.get('mlflow.parentRunId'), r.data.tags.get('sweep.confirm_of'), r.info.status)
`, [store, conf.runs[0]!.run_id]);
    expect(tagged.stdout.trim().split('\n').pop()).toBe(`${out.parent_run_id} ${out.best.trial_id} FINISHED`);
    const bad = spawnSync('node', ['bin/egmf.mjs', 'sweep', 'confirm', out.sweep_id, '--seeds', '2222,x'], { cwd: REPO, encoding: 'utf8', env });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/key 'seeds': seeds must be integers, got 'x'/);
    const missing = spawnSync('node', ['bin/egmf.mjs', 'sweep', 'confirm', 'no-such-sweep'], { cwd: REPO, encoding: 'utf8', env });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no-such-sweep/);
  }, 1_200_000);
});
