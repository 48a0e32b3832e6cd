/**
 * `egmf trial` as a real process on tiny data (a 20-step pretrained built-in LLM): a trial
 * whose run already finished reports the recorded result when delivered again, and a trial
 * whose executor is SIGKILLed stops instead of training on as an orphan.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTrialProcess, TrialHost, trialCommand, type TrialPayload } from '../../src/sweep/trial-protocol.ts';
import { executorPid } from '../../src/sweep/watchdog.ts';
import { REPO, pidAlive as alive, tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-trial-');
const orphans: number[] = [];
afterAll(() => {
  for (const pid of orphans) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  tmp.cleanup();
});
const env = { EGMF_CACHE: join(tmp.path, 'cache'), EGMF_SWEEP_DIR: join(tmp.path, 'sweeps'), MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' };

function payload(trialId: string, maxEpochs: number, sets: string[] = ['data.limit_train=32', 'train.batch_size=16']): TrialPayload {
  return {
    version: 1, sweepId: 'sw', trialId, number: 0, seedIndex: 0, seed: null, params: {},
    overrides: ['data.scale=0.03', 'llm.pretrain_steps=20', ...sets],
    baseConfig: join(REPO, 'experiments', 'synthetic', 'meld.yaml'), trackingUri: join(tmp.path, 'mlruns'), experimentName: 'trial-test',
    parentRunId: null, metric: { name: 'valid/weighted_f1', goal: 'maximize' }, maxEpochs,
  };
}

describe('egmf trial', () => {
  it('a trial delivered again after its run finished reports the recorded result, training nothing', async () => {
    const p = payload('sw-t0-s0', 2);
    const reports: number[] = [];
    const first = await runTrialProcess({ command: trialCommand(), payload: p, env, onReport: (step) => (reports.push(step), false) });
    expect(first.state).toBe('complete');
    expect(reports).toEqual([1, 2]);
    const again: number[] = [];
    const second = await runTrialProcess({ command: trialCommand(), payload: p, env, onReport: (step) => (again.push(step), false) });
    expect(second).toEqual(first); // same state, value and run: not "no validation metric was produced"
    expect(again).toEqual([]);
    // A pruned trial delivered again stays pruned, with its value.
    const q = payload('sw-t2-s0', 2);
    const pruned = await runTrialProcess({ command: trialCommand(), payload: q, env, onReport: () => true });
    expect(pruned.state).toBe('pruned');
    expect(await runTrialProcess({ command: trialCommand(), payload: q, env, onReport: () => true })).toEqual(pruned);
  }, 300_000);

  it('a reusing host runs the next trial in the same process, with the result a new process gives; a dead idle process is replaced', async () => {
    // The trial command, through a wrapper that notes each process it starts as.
    const pids = join(tmp.path, 'host-pids.txt');
    const wrapper = join(tmp.path, 'trial-wrapper.mjs');
    writeFileSync(wrapper, `import { appendFileSync } from 'node:fs';
appendFileSync(${JSON.stringify(pids)}, process.pid + '\\n');
await import(${JSON.stringify(join(REPO, 'bin', 'egmf.mjs'))});
`);
    const command = [process.execPath, '--max-semi-space-size=64', wrapper, 'trial'];
    const started = () => (existsSync(pids) ? readFileSync(pids, 'utf8').trim().split('\n').map(Number) : []);
    const host = new TrialHost({ reuse: true });
    try {
      const a = await host.run({ command, payload: payload('sw-h0-s0', 1), env, onReport: () => false });
      expect(a.state).toBe('complete');
      const b = await host.run({ command, payload: payload('sw-h1-s0', 2, ['data.limit_train=48', 'train.batch_size=16', 'data.dataset=cherma']), env, onReport: () => false });
      expect(b.state).toBe('complete');
      expect(started()).toHaveLength(1); // both in one process
      // The same trial in a process of its own gives the same value.
      const fresh = await runTrialProcess({ command, payload: payload('sw-h2-s0', 2, ['data.limit_train=48', 'train.batch_size=16', 'data.dataset=cherma']), env, onReport: () => false });
      expect(fresh.value).toBe(b.value);
      // To the last bit of the weights: the test split's gate weights and every epoch's metrics.
      const summary = (id: string) => JSON.parse(readFileSync(join(tmp.path, 'sweeps', 'sw', 'trials', id, 'summary.json'), 'utf8'));
      expect(Object.keys(summary('sw-h1-s0').gates_test).length).toBeGreaterThan(0);
      expect(summary('sw-h1-s0').gates_test).toEqual(summary('sw-h2-s0').gates_test);
      expect(summary('sw-h1-s0').history).toEqual(summary('sw-h2-s0').history);
      // The idle host process dies: the next trial gets a new one.
      process.kill(started()[0]!, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      const c = await host.run({ command, payload: payload('sw-h3-s0', 1), env, onReport: () => false });
      expect(c.state).toBe('complete');
      expect(c.value).toBe(a.value);
      expect(started()).toHaveLength(3); // the first host, the fresh trial, the new host
    } finally {
      host.close();
    }
    // Closed, the idle process exits.
    const last = started()[2]!;
    const t0 = Date.now();
    while (alive(last) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
    expect(alive(last)).toBe(false);
  }, 300_000);

  it('stops within seconds when its executor is SIGKILLed, instead of training on as an orphan', async () => {
    const path = join(tmp.path, 'payload-orphan.json');
    // Epochs of 150 steps (~15 s): without the watchdog thread the trial would notice only at
    // the end of one, when it next talks to its executor.
    writeFileSync(path, JSON.stringify(payload('sw-t1-s0', 200, ['train.batch_size=2'])));
    const wrapper = join(tmp.path, 'executor.mjs');
    writeFileSync(wrapper, `
import { spawn } from 'node:child_process';
const c = spawn(process.execPath, [${JSON.stringify(join(REPO, 'bin', 'egmf.mjs'))}, 'trial'], { env: { ...process.env, EGMF_TRIAL_PAYLOAD: ${JSON.stringify(path)} }, stdio: ['ignore', 'ignore', 'ignore', 'ipc'], serialization: 'json' });
c.on('message', (m) => {
  if (m.type === 'report') c.send({ type: 'decision', step: m.step, prune: false });
  if (m.type === 'report' && m.step === 1) process.stdout.write('child ' + c.pid + '\\n');
});
`);
    const exec = spawn(process.execPath, [wrapper], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    const childPid = await new Promise<number>((ok, fail) => {
      let out = '';
      exec.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /child (\d+)/.exec(out);
        if (m) ok(Number(m[1]));
      });
      exec.on('close', () => fail(new Error(`the executor exited before its trial reported: ${out}`)));
    });
    orphans.push(childPid);
    expect(alive(childPid)).toBe(true); // training epoch 2 of 200
    await new Promise((r) => setTimeout(r, 1000));
    exec.kill('SIGKILL');
    const t0 = Date.now();
    while (alive(childPid) && Date.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 100));
    expect(alive(childPid), 'the trial outlived its executor by 5 s').toBe(false);
    // It left the checkpoint of its last finished epoch for the next delivery.
    expect(existsSync(join(tmp.path, 'sweeps', 'sw', 'trials', 'sw-t1-s0', 'checkpoints', 'latest', 'state.json'))).toBe(true);
  }, 300_000);

  it('exits at once, training nothing, when its executor died before the trial started', async () => {
    // The executor writes its pid into EGMF_TRIAL_PARENT; a trial whose parent is already
    // someone else (re-parented while it was still loading) must not start training.
    const path = join(tmp.path, 'payload-late.json');
    writeFileSync(path, JSON.stringify(payload('sw-t9-s0', 2)));
    const c = spawn(process.execPath, [join(REPO, 'bin', 'egmf.mjs'), 'trial'], {
      env: { ...process.env, ...env, EGMF_TRIAL_PAYLOAD: path, EGMF_TRIAL_PARENT: String(process.pid + 1_000_000) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json',
    });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((ok) => c.on('close', (k) => ok(k)));
    expect(code, err).toBe(70);
    expect(err).toMatch(/executor is gone/);
    expect(existsSync(join(tmp.path, 'sweeps', 'sw', 'trials', 'sw-t9-s0'))).toBe(false);
  }, 60_000);

  it('reads its executor pid from EGMF_TRIAL_PARENT, and falls back to its parent on a bad value', () => {
    expect(executorPid({ EGMF_TRIAL_PARENT: '4242' })).toBe(4242);
    expect(executorPid({ EGMF_TRIAL_PARENT: 'x1' })).toBe(process.ppid);
    expect(executorPid({})).toBe(process.ppid);
  });
});
