/**
 * Fault injection with real processes: a local sweep tracks to a real MLflow server (sqlite
 * backend), which is stopped while the trials train and started again on the same port. The
 * trials and the controller spool what they cannot send (`.egmf/spool`, here EGMF_SPOOL_DIR)
 * and replay it once the server answers (a run's end, the sweep's end). Compared afterwards,
 * per trial run, with what the trial logged (its summary.json's epoch history and its config):
 * metric points lost or duplicated (train/loss at each logged step, valid/* and epoch once per
 * epoch, test/* once, no key twice at a step), params not equal to the trial's config, tags
 * missing; and: trials lost, duplicated, wrongly failed, without a metric, MLflow runs missing
 * or not FINISHED (the parent too), orphans, spooled records never replayed. All must be 0.
 * The server may come back before the sweep ends (the sweep's end replays the spool) or after
 * (the sweep's last line names `egmf runs sync`, which the test then runs): both are checked.
 *
 * EGMF_CHAOS_FULL=1 (`npm run chaos`) keeps the server down until a trial has ended (so its
 * run's end is spooled too) and starts a trial during the outage (its run is created offline).
 */
import { afterAll, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadExperiment } from '../../src/config/experiment.ts';
import { Spool, spoolDirFor } from '../../src/tracking/index.ts';
import { publicConfig } from '../../src/train/run-logger.ts';
import { tempDir } from '../helpers.ts';
import { startMlflowServer, type MlflowServer } from '../tracking-server.ts';
import { BASE_CONFIG, FULL, TINY_SETS, baseTable, checkpointOf, egmf, finalRuns, journal, mlflowRuns, onlySweep, orphansAfter, sweepStatus, trialProcesses, waitFor, writeSpec, zeros, reportFault } from './harness.ts';

const tmp = tempDir('egmf-chaos-mlflow-');
let server: MlflowServer | undefined;
afterAll(async () => {
  await server?.dispose();
  tmp.cleanup();
});

interface Summary { history: { epoch: number; step: number; metrics: Record<string, number> }[]; test: Record<string, number>; steps: number }

it('the MLflow server stopped mid-sweep and started again: records are spooled and replayed exactly once, every run FINISHED', async () => {
  server = await startMlflowServer();
  const sweeps = join(tmp.path, 'sweeps');
  const spoolBase = join(tmp.path, 'spool');
  const env = {
    EGMF_CACHE: join(tmp.path, 'cache'), EGMF_SWEEP_DIR: sweeps, EGMF_SPOOL_DIR: spoolBase, EGMF_TRIAL_COMMAND: '', MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '',
    // One retry, not five: a refused connection is known to be an outage at once (keeps the run short).
    MLFLOW_HTTP_REQUEST_MAX_RETRIES: '1',
  };
  const needle = `EGMF_SWEEP_DIR=${sweeps}\0`;
  const epochs = FULL ? 3 : 2;
  const lrs = FULL ? [0.002, 0.003, 0.004] : [0.002, 0.003];
  const spec = writeSpec(join(tmp.path, 'mlflowrestart.yaml'), { name: 'mlflowrestart', lrs, epochs, parallel: 2 });
  const run = egmf(['sweep', 'run', spec, '--tracking-uri', server.uri, '--json'], env, tmp.path);
  const spool = new Spool(server.uri, spoolDirFor(server.uri, spoolBase));
  let dir = '';
  const epochsDone = (): number => {
    dir = onlySweep(sweeps) ?? '';
    return dir ? journal(dir).filter((e) => e.type === 'report').length : 0;
  };
  // Down once a trial has checkpointed an epoch (its run and first metrics are on the server).
  await waitFor(() => epochsDone() >= 1 && trialProcesses(needle).length > 0 && trialProcesses(needle).some((p) => (checkpointOf(dir, p.trialId)?.epoch ?? 0) >= 1), 400_000, 'a trial to checkpoint an epoch', run);
  await server.stop();
  const down = epochsDone();
  // Up again once records were spooled and another epoch was reported meanwhile,
  // or, in the full run, once a trial has ended and another started while the server was away.
  const tells = (): number => journal(dir).filter((e) => e.type === 'tell').length;
  const tellsAtStop = tells();
  await waitFor(() => (spool.pendingCount() > 0 && (FULL ? tells() > tellsAtStop && journal(dir).filter((e) => e.type === 'ask').length === lrs.length : epochsDone() >= down + 1)) || run.child.exitCode !== null, 400_000, 'epochs checkpointed while the server is down');
  const spooledAtRestart = spool.pendingCount();
  // The server takes a while to start; the sweep may end before it answers.
  const restarted = server.restart();
  expect(await run.done, run.err()).toBe(0);
  const orphans = await orphansAfter(needle, 5000);
  await restarted;
  // Then its end says where the records wait, and `egmf runs sync` sends them.
  let replayedBy = 'the sweep';
  let syncNotAnnounced = 0;
  if (spool.pendingCount() > 0) {
    replayedBy = '`egmf runs sync` (the sweep ended before the server was back)';
    syncNotAnnounced = run.err().includes(`'egmf runs sync --tracking-uri ${server.uri}'`) ? 0 : 1;
    const sync = egmf(['runs', 'sync', '--tracking-uri', server.uri], env, tmp.path);
    expect(await sync.done, sync.err() + sync.out()).toBe(0);
  }

  const sweepId = dir.split('/').pop()!;
  const st = await sweepStatus(sweepId, env, tmp.path);
  const runs = mlflowRuns(server.uri, { histories: true });
  const parent = runs.find((r) => r.tags['sweep.id'] === sweepId && !r.trial);
  const counts = { metric_points_lost: 0, metric_points_duplicated: 0, runs_with_wrong_params: 0, runs_with_tags_missing: 0 };
  const problems: string[] = [];
  for (const t of st.trial_list) {
    const r = finalRuns(runs).get(t.id)?.[0];
    const summaryPath = join(dir, 'trials', t.id, 'summary.json');
    if (!r || !existsSync(summaryPath)) continue; // counted by the base table
    const sum = JSON.parse(readFileSync(summaryPath, 'utf8')) as Summary;
    const h = r.history ?? {};
    // Nothing twice: no key has two points at one step.
    for (const [key, pts] of Object.entries(h)) {
      const dup = pts.length - new Set(pts.map((p) => p[0])).size;
      if (dup > 0) problems.push(`${t.id} ${key}: ${dup} duplicated point(s)`);
      counts.metric_points_duplicated += dup;
    }
    // Nothing lost: every point the trial logged, with its value.
    const expect1 = (key: string, step: number, value?: number): void => {
      const at = (h[key] ?? []).filter((p) => p[0] === step);
      if (at.length === 0 || (value !== undefined && !at.some((p) => Math.abs(p[1] - value) <= 1e-12 * Math.max(1, Math.abs(value))))) {
        counts.metric_points_lost++;
        problems.push(`${t.id} ${key}@${step}: missing${value !== undefined ? ` (${value})` : ''}`);
      }
    };
    let prev = 0;
    for (const e of sum.history) {
      for (const [k, v] of Object.entries(e.metrics)) if (Number.isFinite(v)) expect1(`valid/${k}`, e.step, v);
      expect1('epoch', e.step, e.epoch + 1);
      for (let s = prev + 1; s <= e.step; s++) if (s % 10 === 0 || s === e.step) expect1('train/loss', s);
      prev = e.step;
    }
    for (const [k, v] of Object.entries(sum.test)) if (Number.isFinite(v)) expect1(`test/${k}`, sum.steps, v);
    // Params: exactly the trial's config, as the trainer logs it.
    const lr = lrs[Number(/-t(\d+)-s0$/.exec(t.id)![1])]!;
    const sets = [...Object.entries(TINY_SETS).map(([k, v]) => `${k}=${v}`), `train.epochs=${epochs}`, `train.lr=${lr}`];
    const cfg = loadExperiment(BASE_CONFIG, sets);
    const want: Record<string, string> = { ...publicConfig(cfg), seed: String(cfg.seed) };
    const got = r.params;
    const wrong = Object.keys({ ...want, ...got }).filter((k) => want[k] !== got[k] && !(Number(want[k]) === Number(got[k]) && want[k] !== undefined && got[k] !== undefined));
    if (wrong.length > 0) {
      counts.runs_with_wrong_params++;
      problems.push(`${t.id} params: ${wrong.slice(0, 5).map((k) => `${k}=${got[k]} (want ${want[k]})`).join(', ')}`);
    }
    const tags = { 'sweep.id': sweepId, 'sweep.trial_id': t.id, 'sweep.state': 'completed', 'mlflow.parentRunId': parent?.run_id, 'egmf.learned': undefined, 'egmf.best_valid': undefined, 'egmf.config_digest': undefined };
    const missing = Object.entries(tags).filter(([k, v]) => r.tags[k] === undefined || (v !== undefined && r.tags[k] !== v));
    if (missing.length > 0) {
      counts.runs_with_tags_missing++;
      problems.push(`${t.id} tags: ${missing.map(([k]) => `${k}=${r.tags[k]}`).join(', ')}`);
    }
  }
  const table = {
    ...baseTable(st, runs, { orphans: orphans.length }),
    ...counts,
    parent_run_unfinished: parent?.status === 'FINISHED' ? 0 : 1,
    spooled_records_not_replayed: spool.pendingCount(),
    sync_not_announced: syncNotAnnounced,
  };
  reportFault('mlflow-restart', `MLflow server stopped mid-sweep and started again (down for ${FULL ? 'a trial end and a trial start' : 'an epoch'})`, table, `${spooledAtRestart} record(s) spooled by then, replayed by ${replayedBy}`);
  expect(spooledAtRestart, 'the outage spooled nothing: the fault missed the sweep').toBeGreaterThan(0);
  expect(table, JSON.stringify({ problems: problems.slice(0, 30), trials: st.trial_list, runs: runs.map((r) => [r.trial, r.status, r.state]), log: run.err().slice(-3000) })).toEqual(zeros(table));
}, 900_000);
