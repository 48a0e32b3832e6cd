/**
 * Nothing lost: a real MLflow server is stopped mid-run and restarted on the same port and
 * database; spooled records must arrive exactly once (no duplicate, no missing metric point).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  PARENT_RUN_TAG, ResilientStore, RestStore, RunHandle, Spool, spoolDirFor, startRun, type MetricPoint,
} from '../../src/tracking/index.ts';
import { runCli, tempDir } from '../helpers.ts';
import { startMlflowServer, type MlflowServer } from '../tracking-server.ts';

let server: MlflowServer;
const tmp = tempDir('egmf-spool-');
const spoolBase = join(tmp.path, 'spool');
const warnings: string[] = [];

beforeAll(async () => {
  server = await startMlflowServer();
});
afterAll(async () => {
  await server?.dispose();
  tmp.cleanup();
});

const rest = () => new RestStore(server.uri, { retry: { maxRetries: 1, baseDelayMs: 10, maxDelayMs: 50 }, timeoutMs: 10_000 });
// Reconnect on every write while spooling: the first write after the restart replays the spool.
const resilient = () => new ResilientStore(rest(), { spoolDir: spoolDirFor(server.uri, spoolBase), reconnectIntervalMs: 0, warn: (m) => warnings.push(m) });
const steps = (h: MetricPoint[]) => h.map((m) => m.step).sort((a, b) => a - b);
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('offline spool and sync against a real server', () => {
  const state: { online?: RunHandle; store?: ResilientStore; offlineParent?: RunHandle; offlineChild?: RunHandle } = {};

  it('keeps training going while the server is stopped mid-run, then replays once it is back', async () => {
    const store = resilient();
    state.store = store;
    const run = await startRun(store, { experimentName: 'spool-test', runName: 'interrupted', tags: { 'egmf.kind': 'trial' } });
    state.online = run;
    await run.logParams({ lr: 0.01, batch: 8 });
    for (let s = 0; s < 10; s++) await run.logMetrics({ 'loss/train': 1 / (s + 1), 'acc/val': s / 10 }, s);
    expect(store.isSpooling(run.runId)).toBe(false);

    await server.stop();
    for (let s = 10; s < 20; s++) await run.logMetrics({ 'loss/train': 1 / (s + 1), 'acc/val': s / 10 }, s);
    await run.logParams({ lr: 0.01, epochs: 2 });
    await run.setTag('phase', 'done');
    await run.logArtifactBytes('eval/report.json', new TextEncoder().encode('{"f1": 0.5}'));
    await run.logInputs([{ dataset: { name: 'mosi/train', digest: 'd1', sourceType: 'local', source: '/data/mosi' }, tags: { 'mlflow.data.context': 'train' } }]);
    expect(store.isSpooling(run.runId)).toBe(true);
    expect(warnings.join('\n')).toContain('spooling run');
    // The run ends while the server is still down: end() must not throw, records stay spooled.
    await run.end('FINISHED');
    expect(store.spool.pendingCount()).toBeGreaterThan(0);

    // A whole sweep started with the server down: parent and child get provisional ids.
    state.offlineParent = await startRun(store, { experimentName: 'spool-offline-exp', runName: 'sweep-parent' });
    state.offlineChild = await startRun(store, { experimentName: 'spool-offline-exp', runName: 'trial-0', parentRunId: state.offlineParent.runId });
    expect(state.offlineParent.runId).toMatch(/^offline-/);
    for (let s = 0; s < 5; s++) await state.offlineChild.logMetrics({ loss: 5 - s }, s);
    await state.offlineChild.end('FINISHED');
    await state.offlineParent.end('FINISHED');

    await server.restart();
    // The next write finds the server back, replays the spool in order, then goes online itself.
    await run.setTag('reconnected', 'yes');
    expect(store.isSpooling(run.runId)).toBe(false);
    expect(store.spool.pendingCount()).toBe(0);
    const check = rest();
    const hist = await check.getMetricHistory(run.runId, 'loss/train');
    expect(steps(hist)).toEqual(range(0, 20));
    expect(steps(await check.getMetricHistory(run.runId, 'acc/val'))).toEqual(range(0, 20));
    const got = await check.getRun(run.runId);
    expect(got.info.status).toBe('FINISHED');
    expect(got.data.params).toEqual({ lr: '0.01', batch: '8', epochs: '2' });
    expect(got.data.tags).toMatchObject({ phase: 'done', reconnected: 'yes' });
    expect(got.inputs.map((i) => i.dataset.name)).toEqual(['mosi/train']);
    expect(new TextDecoder().decode(await check.downloadArtifact(run.runId, 'eval/report.json'))).toBe('{"f1": 0.5}');
  });

  it('created the runs started offline, nested, each point once; a second flush or sync adds nothing', async () => {
    const store = state.store!;
    const check = rest();
    const ids = store.spool.mapping();
    const parentId = ids.get(state.offlineParent!.runId)!;
    const childId = ids.get(state.offlineChild!.runId)!;
    expect(parentId).toMatch(/^[0-9a-f]{32}$/);
    const child = await check.getRun(childId);
    expect(child.data.tags[PARENT_RUN_TAG]).toBe(parentId);
    expect(child.info).toMatchObject({ status: 'FINISHED', runName: 'trial-0' });
    expect(steps(await check.getMetricHistory(childId, 'loss'))).toEqual(range(0, 5));
    // Reads through the resilient store map provisional ids to server ids.
    expect((await store.getRun(state.offlineChild!.runId)).info.runId).toBe(childId);

    await store.flush();
    const r = runCli(['runs', 'sync', '--tracking-uri', server.uri], { env: { EGMF_SPOOL_DIR: spoolBase } });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('nothing to sync');
    expect(steps(await check.getMetricHistory(childId, 'loss'))).toEqual(range(0, 5));
    expect(steps(await check.getMetricHistory(state.online!.runId, 'loss/train'))).toEqual(range(0, 20));
    const exp = await check.getExperimentByName('spool-offline-exp');
    expect(await check.searchRuns({ experimentIds: [exp!.experimentId] })).toHaveLength(2);
  });

  it('a sync that crashed after sending but before acknowledging does not duplicate metrics or runs', async () => {
    const check = rest();
    const expId = await check.getOrCreateExperiment('spool-crash');
    const spool = new Spool(server.uri, join(tmp.path, 'crash-spool'));
    const provisional = 'offline-crashtest0001';
    const createId = spool.append(provisional, { kind: 'createRun', provisionalId: provisional, experimentId: expId, runName: 'crashy', startTime: Date.now(), tags: {} });
    const batch1 = range(0, 6).map((step) => ({ key: 'loss', value: step, timestamp: 1000 + step, step }));
    const batch2 = range(6, 12).map((step) => ({ key: 'loss', value: step, timestamp: 1000 + step, step }));
    const b1 = spool.append(provisional, { kind: 'logBatch', metrics: batch1.map((m) => [m.key, m.value, m.timestamp, m.step]), params: [{ key: 'seed', value: '7' }], tags: [] });
    spool.append(provisional, { kind: 'logBatch', metrics: batch2.map((m) => [m.key, m.value, m.timestamp, m.step]), params: [], tags: [] });
    spool.append(provisional, { kind: 'updateRun', status: 'FINISHED', endTime: Date.now() });

    // Simulate the crashed sync: the run was created (with its client id tag) and the first
    // batch (half of it) reached the server, each with a `begin` but no `ack` in the journal.
    const journal = join(spool.dir, 'runs', provisional, 'journal.jsonl');
    const created = await check.createRun({ experimentId: expId, runName: 'crashy', tags: { 'egmf.clientRunId': provisional } });
    appendFileSync(journal, `${JSON.stringify({ rec: createId, phase: 'begin' })}\n`);
    await check.logBatch(created.info.runId, { metrics: batch1.slice(0, 3) });
    appendFileSync(journal, `${JSON.stringify({ rec: b1, phase: 'begin' })}\n{"rec": "torn-li`);

    // The process that spooled these records has exited (this test process stands in for it).
    const ownerFile = join(spool.dir, 'runs', provisional, 'owner');
    writeFileSync(ownerFile, String(spawnSync('true').pid));

    const r = runCli(['runs', 'sync', '--tracking-uri', server.uri, '--spool-dir', spool.dir]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/synced 4 record\(s\).*0 rejected; 0 pending/);
    expect(spool.mapping().get(provisional)).toBe(created.info.runId);
    const runs = await check.searchRuns({ experimentIds: [expId] });
    expect(runs.map((x) => x.info.runId)).toEqual([created.info.runId]);
    const hist = await check.getMetricHistory(created.info.runId, 'loss');
    expect(steps(hist)).toEqual(range(0, 12));
    expect(runs[0]!.info.status).toBe('FINISHED');
    expect(existsSync(join(spool.dir, 'runs', provisional))).toBe(false);
  });

  it('keeps records the server rejects for good, reports them, and does not retry them', async () => {
    const check = rest();
    const expId = await check.getOrCreateExperiment('spool-reject');
    const run = await check.createRun({ experimentId: expId, runName: 'rejects' });
    await check.logParam(run.info.runId, 'lr', '0.1');
    const spool = new Spool(server.uri, join(tmp.path, 'reject-spool'));
    spool.append(run.info.runId, { kind: 'logBatch', metrics: [], params: [{ key: 'lr', value: '0.2' }], tags: [] });
    spool.append(run.info.runId, { kind: 'logBatch', metrics: [['ok', 1, 5, 0]], params: [], tags: [] });
    const r = runCli(['runs', 'sync', '--tracking-uri', server.uri, '--spool-dir', spool.dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/rejected: .*INVALID_PARAMETER_VALUE.*lr/);
    expect(r.stdout).toContain('synced 1 record(s)');
    expect((await check.getMetricHistory(run.info.runId, 'ok')).map((m) => m.value)).toEqual([1]);
    const again = await spool.replay(check);
    expect(again).toMatchObject({ replayed: 0, failed: [], pending: 0 });
    expect(readFileSync(join(spool.dir, 'runs', run.info.runId, 'journal.jsonl'), 'utf8')).toContain('"phase":"failed"');
  });

  it('sync with the server unreachable fails clearly and keeps the spool; a corrupt spool names file and line', async () => {
    const spool = new Spool(server.uri, join(tmp.path, 'down-spool'));
    spool.append('offline-down0001', { kind: 'createRun', provisionalId: 'offline-down0001', experimentName: 'x', startTime: 1, tags: {} });
    const dead = 'http://127.0.0.1:9';
    const r = runCli(['runs', 'sync', '--tracking-uri', dead, '--spool-dir', spool.dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unreachable; 1 record\(s\) stay/);
    const records = join(spool.dir, 'runs', 'offline-down0001', 'records.jsonl');
    writeFileSync(records, `{"broken\n${readFileSync(records, 'utf8')}`);
    await expect(spool.replay(rest())).rejects.toThrow(`${records}, line 1: spool file is corrupt`);
  });
});
