import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { absoluteTrackingUri, loadSweepOf, readMeta, resumeSweep, specSetsParallel, startSweep, studyFromJournal, type SweepResult } from '../../src/sweep/controller.ts';
import { LocalExecutor } from '../../src/sweep/executors/local.ts';
import { buildSummary } from '../../src/sweep/summary.ts';
import { createStore, type Run } from '../../src/tracking/index.ts';
import { runPython, tempDir } from '../helpers.ts';
import { FAKE_COMMAND, gridSpec, readFakeLog, startsPerTrial } from '../fixtures/sweep/harness.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('egmf-sweep-ctl-'); });
afterAll(() => tmp.cleanup());

function local(log: string, extra: Record<string, string> = {}) {
  return async (parallel: number) => new LocalExecutor({ parallel, command: FAKE_COMMAND, gpus: [], env: { FAKE_TRIAL_LOG: log, ...extra } });
}

async function children(mlruns: string, experiment: string, parent: string): Promise<Map<string, Run>> {
  const store = createStore(mlruns);
  const exp = await store.getExperimentByName(experiment);
  const runs = await store.searchRuns({ experimentIds: [exp!.experimentId], filter: `tags.mlflow.parentRunId = '${parent}'` });
  return new Map(runs.map((r) => [r.data.tags['sweep.trial_id']!, r]));
}

/** Runs a sequential grid sweep with a pruner; returns the end records and MLflow children. */
async function prunedSweep(name: string, lrs: number[], epochs: number, earlyTerminate: string) {
  const dir = join(tmp.path, name);
  mkdirSync(dir);
  const log = join(dir, 'log.jsonl');
  const mlruns = join(dir, 'mlruns');
  const spec = gridSpec(dir, { name, lrs, epochs, parallel: 1, extra: earlyTerminate });
  const r = await startSweep(spec, { root: join(dir, 'sweeps'), trackingUri: mlruns, executor: local(log) });
  const ends = readFakeLog(log).filter((x) => x.event === 'end');
  const outcome = Object.fromEntries(ends.map((e) => [e.trial.replace(/^.*-(t\d+)-s0$/, '$1'), `${e.state}@${e.step}`]));
  return { r, outcome, runs: await children(mlruns, name, r.parentRunId), mlruns };
}

describe('pruning decisions reach the trial process', () => {
  it('median stopping stops the trial below the median of completed trials', async () => {
    // Targets 0.64, 0.96, 0.99, 0.91 over 3 epochs (value at epoch e = target·e/3); two trials
    // must complete first. Trial 2 beats the medians (0.33 > 0.267, 0.66 > 0.533, 0.99 > 0.8);
    // at epoch 1 trial 3 reports 0.303 < median(0.213, 0.32, 0.33) = 0.32.
    const { r, outcome, runs } = await prunedSweep('median', [0.9, 0.5, 0.2, 0.0], 3, 'early_terminate: {type: median, warmup_steps: 0, min_trials: 2}');
    expect(outcome).toEqual({ t0: 'complete@3', t1: 'complete@3', t2: 'complete@3', t3: 'pruned@1' });
    expect(r.trials).toEqual({ completed: 3, pruned: 1, failed: 0 });
    const pruned = [...runs.values()].find((x) => x.data.tags['sweep.state'] === 'pruned')!;
    expect(pruned.data.params['train.lr']).toBe('0');
    expect(pruned.info.status).toBe('KILLED');
  });

  it('ASHA (min_resource 1, eta 2) stops exactly the trials outside the top half at each rung', async () => {
    // Targets 1.0, 0.64, 0.96, 0.99, 0.91 over 4 epochs (value at epoch e = target·e/4); rungs
    // at epochs 1 and 2 (4 = max_resource is completion). Epoch-1 values 0.25, 0.16, 0.24,
    // 0.2475, 0.2275: trials 1 and 2 are not the best of fewer than 2·eta values; trial 3 is in
    // the top 2 of 4 and then loses rung 2 (0.495 < 0.5); trial 4 ranks 4th of 5.
    const { r, outcome, runs } = await prunedSweep('asha', [0.3, 0.9, 0.5, 0.2, 0.0], 4, 'early_terminate: {type: asha, min_resource: 1, eta: 2, max_resource: 4}');
    expect(outcome).toEqual({ t0: 'complete@4', t1: 'pruned@1', t2: 'pruned@1', t3: 'pruned@2', t4: 'pruned@1' });
    expect(r.trials).toEqual({ completed: 1, pruned: 4, failed: 0 });
    // The metric history stops where the trial was told to stop.
    const store = createStore(join(tmp.path, 'asha', 'mlruns'));
    const t3 = [...runs.entries()].find(([id]) => id.endsWith('-t3-s0'))![1];
    expect((await store.getMetricHistory(t3.info.runId, 'valid/score')).map((p) => p.step)).toEqual([1, 2]);
    expect(t3.data.tags['sweep.state']).toBe('pruned');
  });
});

describe('a full local sweep in MLflow', () => {
  let dir: string;
  let r: SweepResult;
  let mlruns: string;
  beforeAll(async () => {
    dir = join(tmp.path, 'full');
    mkdirSync(dir);
    mlruns = join(dir, 'mlruns');
    const spec = gridSpec(dir, { name: 'full', lrs: [0.5, 0.3], epochs: 2, parallel: 2, extra: 'seeds: [11, 22]' });
    r = await startSweep(spec, { root: join(dir, 'sweeps'), trackingUri: mlruns, executor: local(join(dir, 'log.jsonl')) });
  });

  it('nests tagged child runs under a parent run that holds the best configuration and the summary', async () => {
    expect(r.trials).toEqual({ completed: 4, pruned: 0, failed: 0 });
    expect(r.best).toMatchObject({ params: { 'train.lr': 0.3 }, metric: 1 });
    const store = createStore(mlruns);
    const parent = await store.getRun(r.parentRunId);
    expect(parent.info.status).toBe('FINISHED');
    expect(parent.data.tags).toMatchObject({ 'sweep.id': r.sweepId, 'sweep.method': 'grid', 'sweep.metric': 'valid/score', 'sweep.best_run_id': r.best!.runId, 'sweep.trials.completed': '4' });
    expect(JSON.parse(parent.data.tags['sweep.best_params']!)).toEqual({ 'train.lr': 0.3 });
    expect(parent.data.params).toMatchObject({ method: 'grid', seeds: '[11,22]', 'space.train.lr': '{"type":"categorical","values":[0.5,0.3]}' });
    expect(parent.data.metrics['best/valid/score']).toBe(1);
    const runs = await children(mlruns, 'full', r.parentRunId);
    expect(runs.size).toBe(4);
    const best = [...runs.values()].filter((x) => x.data.tags['sweep.best'] === 'true');
    expect(best.map((x) => x.info.runId)).toEqual([r.best!.runId]);
    for (const run of runs.values()) {
      expect(run.data.tags['sweep.state']).toBe('completed');
      expect(['11', '22']).toContain(run.data.params.seed);
      expect((await store.getMetricHistory(run.info.runId, 'valid/score')).length).toBe(2);
    }
    const art = (await store.listArtifacts(r.parentRunId, 'summary')).map((a) => a.path).sort();
    expect(art).toEqual(['summary/parallel_coordinates.svg', 'summary/parallel_coordinates.vl.json', 'summary/train.lr_vs_valid_score.svg', 'summary/train.lr_vs_valid_score.vl.json', 'summary/trials.csv', 'summary/trials.md']);
    const csv = new TextDecoder().decode(await store.downloadArtifact(r.parentRunId, 'summary/trials.csv')).trim().split('\n');
    expect(csv[0]).toBe('trial_id,number,seed,state,valid/score,baseline_majority,baseline_tfidf,last_step,run_id,best,train.lr,error');
    expect(csv).toHaveLength(5);
  });

  it('is readable by MLflow\'s own Python client', () => {
    const code = `
import json, os, sys
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri=sys.argv[1])
p = c.get_run(sys.argv[2])
kids = c.search_runs([p.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{sys.argv[2]}'")
best = [k for k in kids if k.data.tags.get("sweep.best") == "true"]
hist = c.get_metric_history(best[0].info.run_id, "valid/score")
arts = sorted(a.path for a in c.list_artifacts(sys.argv[2], "summary"))
print(json.dumps({"status": p.info.status, "best": p.data.tags["sweep.best_run_id"], "kids": len(kids), "best_kid": best[0].info.run_id, "steps": [m.step for m in hist], "arts": arts}))
`;
    const out = runPython(code, [mlruns, r.parentRunId]);
    expect(out.status, out.stderr).toBe(0);
    const j = JSON.parse(out.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(j).toEqual({ status: 'FINISHED', best: r.best!.runId, kids: 4, best_kid: r.best!.runId, steps: [1, 2], arts: ['summary/parallel_coordinates.svg', 'summary/parallel_coordinates.vl.json', 'summary/train.lr_vs_valid_score.svg', 'summary/train.lr_vs_valid_score.vl.json', 'summary/trials.csv', 'summary/trials.md'] });
  });

  it('writes a deterministic summary with one chart point per finished trial', async () => {
    const sweepPath = join(dir, 'sweeps', r.sweepId);
    const study = studyFromJournal(loadSweepOf(sweepPath, readMeta(sweepPath)), r.sweepId, join(sweepPath, 'journal.jsonl'));
    const runIds = Object.fromEntries(readFileSync(join(sweepPath, 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { trial: string; run: string }).map((e) => [e.trial, e.run]));
    const bestTrialId = study.trials().find((t) => runIds[t.id] === r.best!.runId)!.id;
    const input = { spec: study.spec, trials: study.trials(), runIds, bestTrialId };
    const a = await buildSummary(input);
    expect(await buildSummary(input)).toEqual(a);
    expect(a['trials.csv']).toBe(readFileSync(join(sweepPath, 'summary', 'trials.csv'), 'utf8'));
    const scatter = a['train.lr_vs_valid_score.svg']!;
    expect(scatter.startsWith('<svg')).toBe(true);
    expect(scatter.trim().endsWith('</svg>')).toBe(true);
    for (const text of ['train.lr vs valid/score', '>train.lr<', '>valid/score<']) expect(scatter).toContain(text);
    type Spec = { data: { values: { group: string; highlight?: boolean; id?: string }[] } };
    const points = (JSON.parse(a['train.lr_vs_valid_score.vl.json']!) as Spec).data.values;
    expect(points).toHaveLength(4);
    expect(points.filter((p) => p.highlight)).toHaveLength(1);
    expect(points.every((p) => p.group === 'completed')).toBe(true);
    const lines = (JSON.parse(a['parallel_coordinates.vl.json']!) as Spec).data.values;
    expect(lines).toHaveLength(4);
    expect(lines.filter((l) => l.group === 'best').map((l) => l.id)).toEqual([bestTrialId]);
    expect(a['parallel_coordinates.svg']).toContain('Parallel coordinates: full');
    expect(a['trials.md']).toContain('| completed | 1 |');
  });
});

describe('resume', () => {
  it('a stopped sweep resumes without running any finished trial again', async () => {
    const dir = join(tmp.path, 'resume');
    mkdirSync(dir);
    const log = join(dir, 'log.jsonl');
    const root = join(dir, 'sweeps');
    const mlruns = join(dir, 'mlruns');
    const spec = gridSpec(dir, { name: 'resume', lrs: [0.1, 0.2, 0.3, 0.4, 0.5], epochs: 3, parallel: 2 });
    const stop = new AbortController();
    let told = 0;
    const first = await startSweep(spec, {
      root, trackingUri: mlruns, executor: local(log, { FAKE_TRIAL_SLEEP_MS: '100' }), signal: stop.signal,
      log: (l) => { if (/ complete /.test(l) && ++told === 2) stop.abort(); },
    });
    expect(first.finished).toBe(false);
    const finishedBefore = readFakeLog(log).filter((x) => x.event === 'end').map((x) => x.trial);
    expect(finishedBefore.length).toBeGreaterThanOrEqual(2);
    const second = await resumeSweep(first.sweepId, { root, executor: local(log) });
    expect(second.finished).toBe(true);
    expect(second.trials).toEqual({ completed: 5, pruned: 0, failed: 0 });
    expect(second.parentRunId).toBe(first.parentRunId);
    const starts = startsPerTrial(readFakeLog(log));
    expect(starts.size).toBe(5);
    for (const t of finishedBefore) expect(starts.get(t)).toBe(1);
    // One completed run per trial under the same parent (re-run trials supersede their first run).
    const runs = await children(mlruns, 'resume', first.parentRunId);
    expect([...runs.values()].filter((x) => x.data.tags['sweep.state'] === 'completed')).toHaveLength(5);
  });

  it('rejects a bad spec naming the key, leaving no sweep folder or run behind', async () => {
    const dir = join(tmp.path, 'bad');
    mkdirSync(dir);
    const spec = join(dir, 'bad.yaml');
    writeFileSync(spec, 'name: bad\nmethod: grid\nmetric: {name: m, goal: maximize}\nparameters:\n  train.nope: {values: [1, 2]}\n');
    await expect(startSweep(spec, { root: join(dir, 'sweeps'), trackingUri: join(dir, 'mlruns'), executor: local(join(dir, 'log')) })).rejects.toThrow(/bad\.yaml, key 'parameters\.train\.nope'/);
    expect(existsSync(join(dir, 'sweeps'))).toBe(false);
    expect(existsSync(join(dir, 'mlruns'))).toBe(false);
    await expect(resumeSweep('no-such-sweep', { root: join(dir, 'sweeps'), executor: local(join(dir, 'log')) })).rejects.toThrow(/meta\.json.*no such sweep/);
  });

  it('takes parallel from the spec only when the spec sets it, and pins tracking paths', () => {
    expect(specSetsParallel('name: x\nparallel: 3\n')).toBe(true);
    expect(specSetsParallel('name: x\n# parallel: 3\n')).toBe(false);
    expect(absoluteTrackingUri('http://mlflow:5000')).toBe('http://mlflow:5000');
    expect(absoluteTrackingUri('mlruns')).toBe(join(process.cwd(), 'mlruns'));
  });
});
