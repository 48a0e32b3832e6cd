import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { defaultThreads } from '../../src/models/backend/threads.ts';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSweep, studyFromJournal, loadSweepOf, readMeta } from '../../src/sweep/controller.ts';
import { LocalExecutor, defaultParallelism, detectGpus, type LocalExecutorOptions } from '../../src/sweep/executors/local.ts';
import { parseTrialPayload, runTrialProcess, trialCommand, type TrialPayload } from '../../src/sweep/trial-protocol.ts';
import { createStore } from '../../src/tracking/index.ts';
import { TRAINING_NODE_FLAGS } from '../../src/train/process.ts';
import { tempDir } from '../helpers.ts';
import { FAKE_COMMAND, gridSpec, readFakeLog, startsPerTrial } from '../fixtures/sweep/harness.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('egmf-sweep-local-'); });
afterAll(() => tmp.cleanup());

function local(log: string, extra: Record<string, string> = {}, gpus: number[] = [], more: Partial<LocalExecutorOptions> = {}) {
  return async (parallel: number) => new LocalExecutor({ parallel, command: FAKE_COMMAND, gpus, env: { FAKE_TRIAL_LOG: log, ...extra }, ...more });
}

describe('local executor', () => {
  it('runs trials concurrently, one process each, never more than `parallel` at once', async () => {
    const dir = join(tmp.path, 'overlap');
    mkdirSync(dir);
    const log = join(dir, 'log.jsonl');
    const spec = gridSpec(dir, { lrs: [0.1, 0.3, 0.5, 0.9], epochs: 3, parallel: 2 });
    const r = await startSweep(spec, { root: join(dir, 'sweeps'), trackingUri: join(dir, 'mlruns'), executor: local(log, { FAKE_TRIAL_SLEEP_MS: '150' }) });
    expect(r.trials).toEqual({ completed: 4, pruned: 0, failed: 0 });
    expect(r.best?.params).toEqual({ 'train.lr': 0.3 });
    const recs = readFakeLog(log);
    const spans = [...new Set(recs.map((x) => x.trial))].map((id) => ({
      start: recs.find((x) => x.trial === id && x.event === 'start')!.t,
      end: recs.find((x) => x.trial === id && x.event === 'end')!.t,
      pid: recs.find((x) => x.trial === id)!.pid,
    }));
    expect(spans).toHaveLength(4);
    expect(new Set(spans.map((s) => s.pid)).size).toBe(4);
    const runningAt = (t: number): number => spans.filter((s) => s.start <= t && t < s.end).length;
    const peak = Math.max(...spans.map((s) => runningAt(s.start)));
    expect(peak).toBe(2);
    // Each trial got its own slot while overlapping.
    expect(new Set(recs.filter((x) => x.event === 'start').map((x) => x.slot))).toEqual(new Set(['0', '1']));
    // Two trials on the CPU cores: each gets at most half of them for TensorFlow's pool,
    // and no more than a training process takes by default.
    if (process.env['TF_NUM_INTRAOP_THREADS'] === undefined) {
      const share = Math.max(1, Math.min(defaultThreads(), Math.floor(availableParallelism() / 2)));
      expect(new Set(recs.filter((x) => x.event === 'start').map((x) => x.tfThreads))).toEqual(new Set([String(share)]));
    }
  });

  it('records a crashing trial as failed with its stderr, in the study and as a tagged MLflow child run', async () => {
    const dir = join(tmp.path, 'crash');
    mkdirSync(dir);
    const log = join(dir, 'log.jsonl');
    const spec = gridSpec(dir, { lrs: [0.1, 0.3, 0.5], epochs: 3, parallel: 1 });
    const root = join(dir, 'sweeps');
    const mlruns = join(dir, 'mlruns');
    // Trial 1 crashes in epoch 2 (after making its run), trial 2 before making a run at all;
    // one delivery each (re-deliveries are the next test's subject).
    const r = await startSweep(spec, { root, trackingUri: mlruns, executor: local(log, { FAKE_TRIAL_CRASH: '1:2,2:-1' }, [], { attempts: 1 }) });
    expect(r.trials).toEqual({ completed: 1, pruned: 0, failed: 2 });
    const sweepPath = join(root, r.sweepId);
    const study = studyFromJournal(loadSweepOf(sweepPath, readMeta(sweepPath)), r.sweepId, join(sweepPath, 'journal.jsonl'));
    const [t0, t1, t2] = study.trials();
    expect(t0!.state).toBe('complete');
    expect(t1!.state).toBe('failed');
    expect(t1!.error).toMatch(/exited with code 3 without a result[\s\S]*simulated crash in epoch 2/);
    expect(t1!.intermediate).toEqual([[1, expect.closeTo(1 / 3, 9)]]);
    expect(t2!.error).toMatch(/simulated crash before creating its run/);

    const store = createStore(mlruns);
    const exp = await store.getExperimentByName('fake');
    const children = await store.searchRuns({ experimentIds: [exp!.experimentId], filter: `tags.mlflow.parentRunId = '${r.parentRunId}'` });
    expect(children).toHaveLength(3);
    const byTrial = new Map(children.map((c) => [c.data.tags['sweep.trial_id'], c]));
    const c1 = byTrial.get(t1!.id)!;
    expect(c1.info.status).toBe('FAILED');
    expect(c1.data.tags['sweep.state']).toBe('failed');
    expect(c1.data.tags['sweep.error']).toMatch(/simulated crash in epoch 2/);
    expect((await store.getMetricHistory(c1.info.runId, 'valid/score')).map((p) => p.step)).toEqual([1]);
    // The controller made the run the crashed trial never made, with its params.
    const c2 = byTrial.get(t2!.id)!;
    expect(c2.data.tags['sweep.state']).toBe('failed');
    expect(c2.data.params['train.lr']).toBe('0.5');
    expect(c2.data.tags['sweep.error']).toMatch(/before creating its run/);
    expect(byTrial.get(t0!.id)!.data.tags['sweep.state']).toBe('completed');
  });

  it('delivers a trial whose process died without a result again, up to `attempts`; a trial that reports its own failure fails at once', async () => {
    const dir = join(tmp.path, 'redeliver');
    mkdirSync(dir);
    const log = join(dir, 'log.jsonl');
    const spec = gridSpec(dir, { name: 'redeliver', lrs: [0.1, 0.3, 0.5], epochs: 3, parallel: 2 });
    const mlruns = join(dir, 'mlruns');
    const lines: string[] = [];
    // Trial 0 dies in epoch 2 on its first delivery only, trial 1 in epoch 1 every time; trial 2
    // reports a failure of its own (a result message, as a bad config does).
    const r = await startSweep(spec, {
      root: join(dir, 'sweeps'), trackingUri: mlruns, log: (l) => lines.push(l),
      executor: local(log, { FAKE_TRIAL_CRASH: '0:2:once,1:1', FAKE_TRIAL_FAIL: '2' }, [], { attempts: 3, backoffMs: 10, log: (l) => lines.push(l) }),
    });
    expect(r.trials).toEqual({ completed: 1, pruned: 0, failed: 2 });
    const starts = startsPerTrial(readFakeLog(log));
    const id = (n: number) => `${r.sweepId}-t${n}-s0`;
    expect([starts.get(id(0)), starts.get(id(1)), starts.get(id(2))]).toEqual([2, 3, 1]);
    const again = lines.filter((l) => l.includes('delivering it again')).sort();
    expect(again).toHaveLength(3);
    expect(again[0]).toMatch(new RegExp(`^${id(0)}: trial process exited with code 3 without a result; delivering it again \\(2 of 3\\), from its last checkpoint$`));
    expect(again[1]).toMatch(new RegExp(`^${id(1)}: .*\\(2 of 3\\)`));
    expect(again[2]).toMatch(new RegExp(`^${id(1)}: .*\\(3 of 3\\)`));
    const sweepPath = join(join(dir, 'sweeps'), r.sweepId);
    const study = studyFromJournal(loadSweepOf(sweepPath, readMeta(sweepPath)), r.sweepId, join(sweepPath, 'journal.jsonl'));
    const [t0, t1, t2] = study.trials();
    expect(t0).toMatchObject({ state: 'complete', value: expect.closeTo(0.96, 9) });
    expect(t1!.error).toMatch(/^lost 3 deliveries \(attempts 3\), the last: trial process exited with code 3 without a result[\s\S]*simulated crash in epoch 1/);
    expect(t2!.error).toBe('fake trial: reported failure in epoch 1');
    // MLflow: each trial has one final run; the lost deliveries' runs are superseded.
    const store = createStore(mlruns);
    const exp = await store.getExperimentByName('redeliver');
    const kids = await store.searchRuns({ experimentIds: [exp!.experimentId], filter: `tags.mlflow.parentRunId = '${r.parentRunId}'` });
    const final = kids.filter((k) => k.data.tags['sweep.state'] !== 'superseded').map((k) => `${k.data.tags['sweep.trial_id']}:${k.data.tags['sweep.state']}`).sort();
    expect(final).toEqual([`${id(0)}:completed`, `${id(1)}:failed`, `${id(2)}:failed`]);
    expect(kids.filter((k) => k.data.tags['sweep.state'] === 'superseded').map((k) => k.data.tags['sweep.trial_id']).sort()).toEqual([id(0), id(1), id(1)]);
  });

  it('gives each slot its own GPU when nvidia-smi lists GPUs', async () => {
    const dir = join(tmp.path, 'gpus');
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'nvidia-smi'), '#!/bin/sh\necho "GPU 0: Fake A100 (UUID: GPU-0)"\necho "GPU 1: Fake A100 (UUID: GPU-1)"\n');
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath}`;
    let gpus: number[];
    try {
      gpus = detectGpus();
    } finally {
      process.env.PATH = oldPath;
    }
    expect(gpus).toEqual([0, 1]);
    expect(defaultParallelism(gpus)).toBe(2);
    expect(defaultParallelism([])).toBe(availableParallelism());
    const log = join(dir, 'log.jsonl');
    const spec = gridSpec(dir, { lrs: [0.1, 0.3], epochs: 2 });
    const r = await startSweep(spec, { root: join(dir, 'sweeps'), trackingUri: join(dir, 'mlruns'), parallel: 2, executor: local(log, { FAKE_TRIAL_SLEEP_MS: '100' }, gpus) });
    expect(r.trials.completed).toBe(2);
    const starts = readFakeLog(log).filter((x) => x.event === 'start');
    for (const s of starts) expect(s.cuda).toBe(s.slot);
    expect(new Set(starts.map((s) => s.cuda))).toEqual(new Set(['0', '1']));
  });
});

describe('trial protocol', () => {
  const payload: TrialPayload = {
    version: 1, sweepId: 's', trialId: 's-t0-s0', number: 0, seedIndex: 0, seed: null, params: { 'train.lr': 0.3 },
    overrides: ['train.lr=0.3'], baseConfig: null, trackingUri: '/nonexistent/mlruns', experimentName: 'x', parentRunId: null,
    metric: { name: 'valid/score', goal: 'maximize' }, maxEpochs: 2,
  };

  it('rejects malformed payloads and trial commands, naming the key', () => {
    expect(() => parseTrialPayload({ ...payload, metric: { name: 'm', goal: 'up' } }, 'p.json')).toThrow(/p\.json, key 'metric'/);
    expect(() => parseTrialPayload({ ...payload, overrides: ['no-equals'] })).toThrow(/key 'overrides'/);
    expect(() => parseTrialPayload({ ...payload, version: 2 })).toThrow(/key 'version'.*unsupported trial protocol version 2/);
    expect(() => trialCommand(undefined, { EGMF_TRIAL_COMMAND: 'node x.mjs' })).toThrow(/key 'EGMF_TRIAL_COMMAND'/);
    expect(() => trialCommand(undefined, { EGMF_TRIAL_COMMAND: '[]' })).toThrow(/non-empty JSON array/);
    expect(trialCommand(undefined, { EGMF_TRIAL_COMMAND: '["node","t.mjs"]' })).toEqual(['node', 't.mjs']);
    expect(trialCommand(undefined, {}).slice(-1)).toEqual(['trial']);
  });

  it("starts trials with the training processes' Node flags, which Node takes: a 64 MB young generation", () => {
    const cmd = trialCommand(undefined, {});
    expect(cmd.slice(0, 1 + TRAINING_NODE_FLAGS.length)).toEqual([process.execPath, ...TRAINING_NODE_FLAGS]);
    const r = spawnSync(process.execPath, [...TRAINING_NODE_FLAGS, '-e', 'console.log(require("v8").getHeapSpaceStatistics().length)'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('turns a command that cannot start, or a child that breaks the protocol, into a failed outcome', async () => {
    const missing = await runTrialProcess({ command: ['/nonexistent/egmf-trial'], payload, onReport: () => false });
    expect(missing.state).toBe('failed');
    expect(missing.error).toMatch(/cannot start trial command|without a result/);
    const rogue = join(tmp.path, 'rogue.mjs');
    writeFileSync(rogue, "process.send({ type: 'report', step: 'x' }); setTimeout(() => {}, 5000);\n");
    const bad = await runTrialProcess({ command: [process.execPath, rogue], payload, onReport: () => false, killGraceMs: 200 });
    expect(bad.state).toBe('failed');
    expect(bad.error).toMatch(/malformed message/);
  });
});
