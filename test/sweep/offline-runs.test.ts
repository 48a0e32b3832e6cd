/**
 * A trial that started while the MLflow server was away made its run offline (a provisional
 * id, records in the spool). Once the spool reached the server, the sweep must know that run by
 * its server id: it is the trial's final run, not an orphan to supersede, and the runs log and
 * summary name the real id. Real MLflow server; the offline trial is simulated by writing its
 * run into the spool, as a trial process's store does while the server is down.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSweep } from '../../src/sweep/controller.ts';
import type { Executor, TrialHandlers } from '../../src/sweep/executors/types.ts';
import { TAG_SWEEP_ID, TAG_TRIAL_ID, openTrialRun, type TrialOutcome, type TrialPayload } from '../../src/sweep/trial-protocol.ts';
import { ResilientStore, createStore } from '../../src/tracking/index.ts';
import { newProvisionalId } from '../../src/tracking/spool.ts';
import { setEnv, tempDir } from '../helpers.ts';
import { gridSpec } from '../fixtures/sweep/harness.ts';
import { startMlflowServer, type MlflowServer } from '../tracking-server.ts';

const tmp = tempDir('egmf-offline-runs-');
let server: MlflowServer;
let restore: () => void;
beforeAll(async () => {
  server = await startMlflowServer();
  restore = setEnv({ EGMF_SPOOL_DIR: join(tmp.path, 'spool') });
});
afterAll(async () => {
  restore?.();
  await server?.dispose();
  tmp.cleanup();
});

/** Trial 1 runs "offline": its run exists only in the spool when the trial ends. */
class OfflineTrial implements Executor {
  readonly description = 'in-process trials, one of them offline';
  provisional = '';

  async run(p: TrialPayload, h: TrialHandlers): Promise<TrialOutcome> {
    const store = createStore(p.trackingUri) as ResilientStore;
    const value = p.number === 0 ? 0.7 : 0.9;
    if (p.number !== 1) {
      const run = await openTrialRun(p, store);
      await h.onStarted(run.runId);
      await run.logMetrics({ 'valid/score': value }, 1);
      await h.onReport(1, value);
      await run.end('FINISHED');
      return { state: 'complete', value, runId: run.runId };
    }
    const id = newProvisionalId();
    this.provisional = id;
    const experimentId = await store.getOrCreateExperiment(p.experimentName);
    store.spool.append(id, { kind: 'createRun', provisionalId: id, experimentId, runName: p.trialId, startTime: Date.now(), tags: { [TAG_SWEEP_ID]: p.sweepId, [TAG_TRIAL_ID]: p.trialId }, parentRunId: p.parentRunId ?? undefined });
    store.spool.append(id, { kind: 'logBatch', metrics: [['valid/score', value, Date.now(), 1]], params: [], tags: [] });
    store.spool.append(id, { kind: 'updateRun', status: 'FINISHED', endTime: Date.now() });
    await h.onStarted(id);
    await h.onReport(1, value);
    return { state: 'complete', value, runId: id };
  }

  async close(): Promise<void> {}
}

it('a run made offline is known by its server id once replayed: the trial\'s final run, not an orphan', async () => {
  const dir = join(tmp.path, 'sweep');
  mkdirSync(dir);
  const exec = new OfflineTrial();
  const root = join(dir, 'sweeps');
  const r = await startSweep(gridSpec(dir, { name: 'offline', lrs: [0.1, 0.3], epochs: 1, parallel: 1 }), { root, trackingUri: server.uri, executor: async () => exec });
  expect(r.trials).toEqual({ completed: 2, pruned: 0, failed: 0 });
  const store = createStore(server.uri) as ResilientStore;
  const real = store.spool.mapping().get(exec.provisional);
  expect(real).toMatch(/^[0-9a-f]{32}$/);
  expect(r.best?.runId).toBe(real);
  const exp = await store.getExperimentByName('offline');
  const kids = await store.searchRuns({ experimentIds: [exp!.experimentId], filter: `tags.mlflow.parentRunId = '${r.parentRunId}'` });
  expect(kids.map((k) => [k.data.tags['sweep.trial_id'], k.data.tags['sweep.state'], k.info.status]).sort()).toEqual([
    [`${r.sweepId}-t0-s0`, 'completed', 'FINISHED'], [`${r.sweepId}-t1-s0`, 'completed', 'FINISHED'],
  ]);
  expect(kids.find((k) => k.info.runId === real)!.data.tags['sweep.best']).toBe('true');
  const log = readFileSync(join(root, r.sweepId, 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { trial: string; run: string });
  expect(log.filter((e) => e.trial.endsWith('-t1-s0')).pop()!.run).toBe(real);
  expect(readFileSync(join(root, r.sweepId, 'summary', 'trials.csv'), 'utf8')).toContain(real);
}, 300_000);
