/** The distributed executor end to end: `egmf sweep run --queue` and `egmf worker`s on a real redis-server. */
import { mkdirSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStore } from '../../src/tracking/index.ts';
import { runCli, tempDir } from '../helpers.ts';
import { startRedisServer, type RedisServer } from '../redis-server.ts';
import { fakeEnv, finish, gridSpec, lastJson, readFakeLog, spawnEgmf, startsPerTrial, waitFor, type Proc } from '../fixtures/sweep/harness.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('egmf-sweep-queue-'); });
afterAll(() => tmp.cleanup());

describe('distributed sweep: BullMQ on a real redis-server with two `egmf worker`s', () => {
  let redis: RedisServer;
  let dir: string;
  let log: string;
  const workers: Proc[] = [];
  const workerEnv = (): Record<string, string> => fakeEnv(log, { FAKE_TRIAL_CONTROL: join(dir, 'control.json'), FAKE_TRIAL_SLEEP_MS: '300', EGMF_WORKER_LOCK_MS: '3000', EGMF_WORKER_STALLED_MS: '1000', EGMF_WORKER_DECISION_WAIT_S: '1' });
  const startWorker = async (): Promise<Proc> => {
    const w = spawnEgmf(['worker', '--queue', redis.url], workerEnv(), dir);
    workers.push(w);
    await waitFor(() => w.out().includes('waiting for trials'), 60_000, 'a worker to connect');
    return w;
  };

  beforeAll(async () => {
    redis = await startRedisServer();
    dir = join(tmp.path, 'queue');
    mkdirSync(dir);
    log = join(dir, 'log.jsonl');
  });
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await redis?.stop();
  });

  it('completes a sweep; a worker SIGKILLed mid-trial has its trial re-run to completion by the other', async () => {
    const [a, b] = await Promise.all([startWorker(), startWorker()]);
    const spec = gridSpec(dir, { name: 'dist', lrs: [0.1, 0.3, 0.5, 0.7], epochs: 3, parallel: 2 });
    const mlruns = join(dir, 'mlruns');
    const ctl = spawnEgmf(['sweep', 'run', spec, '--queue', redis.url, '--tracking-uri', mlruns, '--json', '--sweep-dir', join(dir, 'sweeps')], fakeEnv(log), dir);
    await waitFor(() => readFakeLog(log).some((x) => x.event === 'start' && x.ppid === a.child.pid), 60_000, 'worker A to start a trial');
    const victim = readFakeLog(log).find((x) => x.event === 'start' && x.ppid === a.child.pid)!.trial;
    a.child.kill('SIGKILL');
    expect(await finish(ctl, 120_000), ctl.err()).toBe(0);
    const j = lastJson(ctl.out());
    expect(j.trials).toEqual({ completed: 4, pruned: 0, failed: 0 });
    expect(j.best).toMatchObject({ params: { 'train.lr': 0.3 }, metric: 1 });
    const recs = readFakeLog(log);
    const victimStarts = recs.filter((x) => x.trial === victim && x.event === 'start');
    expect(victimStarts.map((x) => x.ppid)).toEqual([a.child.pid, b.child.pid]);
    expect(recs.filter((x) => x.trial === victim && x.event === 'end').map((x) => x.ppid)).toEqual([b.child.pid]);
    for (const [trial, n] of startsPerTrial(recs)) if (trial !== victim) expect(n).toBe(1);
    // MLflow: one completed child per trial; the killed delivery's run (if it got one) is superseded.
    const store = createStore(mlruns);
    const exp = await store.getExperimentByName('dist');
    const kids = await store.searchRuns({ experimentIds: [exp!.experimentId], filter: `tags.mlflow.parentRunId = '${j.parent_run_id as string}'` });
    expect(kids.filter((k) => k.data.tags['sweep.state'] === 'completed')).toHaveLength(4);
    const others = kids.filter((k) => k.data.tags['sweep.state'] !== 'completed');
    expect(others.map((k) => [k.data.tags['sweep.state'], k.data.tags['sweep.trial_id'], k.info.status]), victim).toEqual(others.map(() => ['superseded', victim, 'KILLED']));
    expect(kids.filter((k) => k.data.tags['sweep.state'] !== 'completed').every((k) => k.data.tags['sweep.state'] === 'superseded' && k.data.tags['sweep.trial_id'] === victim)).toBe(true);
  });

  it('a SIGKILLed controller resumes from its journal and no finished trial runs twice', async () => {
    await startWorker();
    const spec = gridSpec(dir, { name: 'killctl', lrs: [0.1, 0.2, 0.3, 0.4], epochs: 2, parallel: 2 });
    const sweeps = join(dir, 'sweeps-kill');
    const mlruns = join(dir, 'mlruns');
    const before = readFakeLog(log).length;
    const ctl = spawnEgmf(['sweep', 'run', spec, '--queue', redis.url, '--tracking-uri', mlruns, '--json', '--sweep-dir', sweeps], fakeEnv(log), dir);
    const mine = () => readFakeLog(log).slice(before);
    await waitFor(() => mine().filter((x) => x.event === 'end').length >= 2, 90_000, 'two trials to finish');
    ctl.child.kill('SIGKILL');
    await ctl.exited;
    const [id] = readdirSync(sweeps);
    const st = runCli(['sweep', 'status', id!, '--sweep-dir', sweeps], { cwd: dir });
    expect(st.stdout).toContain(`sweep ${id} (stopped)`);
    expect(st.stdout).toMatch(/trials: \d completed, 0 pruned, 0 failed, [1-4] running/);
    const r = runCli(['sweep', 'resume', id!, '--json', '--sweep-dir', sweeps], { env: fakeEnv(log), cwd: dir, timeoutMs: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = lastJson(r.stdout);
    expect(j.sweep_id).toBe(id);
    expect(j.trials).toEqual({ completed: 4, pruned: 0, failed: 0 });
    const starts = startsPerTrial(mine());
    expect(starts.size).toBe(4);
    for (const n of starts.values()) expect(n).toBe(1);
    const sj = lastJson(runCli(['sweep', 'status', id!, '--json', '--sweep-dir', sweeps], { cwd: dir }).stdout);
    expect(sj).toMatchObject({ state: 'finished', trials: { completed: 4, running: 0 } });
  });
  it('retries a failing trial up to --attempts: a flaky one completes, a broken one is failed with its error', async () => {
    writeFileSync(join(dir, 'control.json'), JSON.stringify({ FAKE_TRIAL_CRASH: '0:1:once,1:1' }));
    const spec = gridSpec(dir, { name: 'retry', lrs: [0.3, 0.9], epochs: 2, parallel: 2 });
    const mlruns = join(dir, 'mlruns');
    const before = readFakeLog(log).length;
    const r = runCli(['sweep', 'run', spec, '--queue', redis.url, '--attempts', '2', '--tracking-uri', mlruns, '--json', '--sweep-dir', join(dir, 'sweeps-retry')], { env: fakeEnv(log), cwd: dir, timeoutMs: 120_000 });
    writeFileSync(join(dir, 'control.json'), '{}');
    expect(r.status, r.stderr).toBe(0);
    const j = lastJson(r.stdout);
    expect(j.trials).toEqual({ completed: 1, pruned: 0, failed: 1 });
    const starts = startsPerTrial(readFakeLog(log).slice(before));
    expect([...starts.values()]).toEqual([2, 2]);
    const store = createStore(mlruns);
    const exp = await store.getExperimentByName('retry');
    const kids = await store.searchRuns({ experimentIds: [exp!.experimentId], filter: `tags.mlflow.parentRunId = '${j.parent_run_id as string}'` });
    const states = kids.map((k) => `${k.data.tags['sweep.trial_id']!.replace(/^.*-(t\d)-s0$/, '$1')}:${k.data.tags['sweep.state']}`).sort();
    expect(states).toEqual(['t0:completed', 't0:superseded', 't1:failed', 't1:superseded']);
    const failed = kids.find((k) => k.data.tags['sweep.state'] === 'failed')!;
    expect(failed.data.tags['sweep.error']).toMatch(/simulated crash in epoch 1/);
    expect(failed.info.status).toBe('FAILED');
  });

  it('fails at once on an unreachable queue, before anything is written', () => {
    const d = join(dir, 'noredis');
    mkdirSync(d);
    const spec = gridSpec(d, { lrs: [0.1, 0.2] });
    const r = runCli(['sweep', 'run', spec, '--queue', 'redis://127.0.0.1:1', '--tracking-uri', join(d, 'mlruns'), '--sweep-dir', join(d, 'sweeps')], { cwd: d, timeoutMs: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/key 'queue': cannot reach Redis at redis:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
    expect(existsSync(join(d, 'sweeps'))).toBe(false);
    expect(existsSync(join(d, 'mlruns'))).toBe(false);
  });

  it('a worker stopped twice hands its running trial back to the queue for another worker', async () => {
    const spec = gridSpec(dir, { name: 'release', lrs: [0.3], epochs: 6, parallel: 1 });
    const before = readFakeLog(log).length;
    const own = ['--queue-name', 'release-test'];
    const d = spawnEgmf(['worker', '--queue', redis.url, ...own], workerEnv(), dir);
    workers.push(d);
    const ctl = spawnEgmf(['sweep', 'run', spec, '--queue', redis.url, ...own, '--tracking-uri', join(dir, 'mlruns'), '--json', '--sweep-dir', join(dir, 'sweeps-release')], fakeEnv(log), dir);
    await waitFor(() => readFakeLog(log).slice(before).some((x) => x.event === 'start'), 60_000, 'worker D to start the trial');
    d.child.kill('SIGTERM');
    await waitFor(() => d.out().includes('taking no new trials'), 10_000, 'worker D to drain');
    d.child.kill('SIGTERM');
    expect(await finish(d, 30_000), d.out()).toBe(0);
    expect(d.out()).toMatch(/released back to the queue/);
    const e = spawnEgmf(['worker', '--queue', redis.url, ...own], workerEnv(), dir);
    workers.push(e);
    expect(await finish(ctl, 90_000), ctl.err()).toBe(0);
    expect(lastJson(ctl.out()).trials).toEqual({ completed: 1, pruned: 0, failed: 0 });
    const mine = readFakeLog(log).slice(before);
    expect(mine.filter((x) => x.event === 'start').map((x) => x.ppid)).toEqual([d.child.pid, e.child.pid]);
    expect(mine.filter((x) => x.event === 'end').map((x) => x.ppid)).toEqual([e.child.pid]);
  });

  it('workers stop cleanly on SIGTERM', async () => {
    const live = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    expect(live.length).toBeGreaterThanOrEqual(1);
    for (const w of live) w.child.kill('SIGTERM');
    const codes = await Promise.all(live.map((w) => finish(w, 30_000)));
    expect(codes).toEqual(live.map(() => 0));
    for (const w of live) expect(w.out()).toMatch(/SIGTERM: taking no new trials[\s\S]*worker stopped/);
  });
});
