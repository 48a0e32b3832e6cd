/**
 * Fault injection with real processes: one `egmf trial` process is SIGKILLed mid-training
 * (local executor), as the OOM killer or a stray `kill -9` would. The executor delivers it
 * again (attempts 3), and it resumes from its last epoch checkpoint; a trial that fails by its
 * own error (a bad config: train.lr = -1) fails at once with that cause and is not delivered
 * again. Counted afterwards, each of which must be 0: trials lost, duplicated (more than one
 * non-superseded MLflow run), wrongly failed, without a metric, MLflow runs missing or not
 * FINISHED, orphaned trial processes, killed trials not delivered again exactly once or not
 * resumed from their checkpoint, re-deliveries of the bad trial, and a bad trial without its cause.
 *
 * EGMF_CHAOS_FULL=1 (`npm run chaos`) also kills a second trial before its first checkpoint
 * (its delivery starts over; the killed delivery's run is superseded).
 */
import { afterAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { tempDir } from '../helpers.ts';
import { FULL, baseTable, checkpointOf, egmf, mlflowRuns, onlySweep, orphansAfter, sweepStatus, trialProcesses, waitFor, writeSpec, zeros, reportFault } from './harness.ts';

const tmp = tempDir('egmf-chaos-trial-');
afterAll(() => tmp.cleanup());

it('a SIGKILLed trial is delivered again and resumes from its checkpoint; a trial failing by its own error fails at once, with its cause', async () => {
  const sweeps = join(tmp.path, 'sweeps');
  const store = join(tmp.path, 'mlruns');
  const env = { EGMF_CACHE: join(tmp.path, 'cache'), EGMF_SWEEP_DIR: sweeps, EGMF_TRIAL_COMMAND: '', MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '', EGMF_SWEEP_VERBOSE: '1' };
  const needle = `EGMF_SWEEP_DIR=${sweeps}\0`;
  // Grid order: t0 trains, t1 has a bad config, t2 trains.
  const spec = writeSpec(join(tmp.path, 'trialkill.yaml'), { name: 'trialkill', lrs: [0.002, -1, 0.003], epochs: FULL ? 3 : 2, parallel: 2 });
  const run = egmf(['sweep', 'run', spec, '--tracking-uri', store, '--json'], env, tmp.path);
  let dir = '';
  const id = (n: number): string => `${dir.split('/').pop()!}-t${n}-s0`;
  const killed: { trial: string; afterCheckpoint: boolean }[] = [];
  const kill = (trial: string, afterCheckpoint: boolean): void => {
    const p = trialProcesses(needle).find((x) => x.trialId === trial);
    if (!p) throw new Error(`no live process of ${trial}`);
    process.kill(p.pid, 'SIGKILL');
    killed.push({ trial, afterCheckpoint });
  };
  // t0: once its first epoch is checkpointed and it trains the next one.
  await waitFor(() => {
    dir = onlySweep(sweeps) ?? '';
    const c = dir ? checkpointOf(dir, id(0)) : undefined;
    return c !== undefined && c.epoch >= 1 && !c.finished && trialProcesses(needle).some((x) => x.trialId === id(0));
  }, 400_000, 't0 to checkpoint its first epoch', run);
  kill(id(0), true);
  if (FULL) {
    // t2: while it trains its first epoch (no checkpoint yet).
    await waitFor(() => run.err().includes(`[${id(2)}] `) && trialProcesses(needle).some((x) => x.trialId === id(2)), 400_000, 't2 to start training', run);
    kill(id(2), false);
  }
  expect(await run.done, run.err()).toBe(0);
  const orphans = await orphansAfter(needle, 5000);

  const sweepId = dir.split('/').pop()!;
  const st = await sweepStatus(sweepId, env, tmp.path);
  const runs = mlflowRuns(store);
  const err = run.err();
  const again = (trial: string): number => err.split('\n').filter((l) => l.startsWith(`${trial}: `) && l.includes('delivering it again')).length;
  const bad = st.trial_list.find((t) => t.id === id(1))!;
  const table = {
    ...baseTable(st, runs, { expectFailed: new Set([id(1)]), orphans: orphans.length }),
    killed_not_redelivered_once: killed.filter((k) => again(k.trial) !== 1).length,
    killed_not_resumed_from_checkpoint: killed.filter((k) => k.afterCheckpoint && !new RegExp(`\\[${k.trial}\\] resuming from step [1-9]`).test(err)).length,
    own_error_redelivered: again(id(1)),
    own_error_without_cause: bad.state === 'failed' && /key 'train\.lr': must be > 0/.test(bad.error ?? '') ? 0 : 1,
  };
  reportFault('trial-kill', `trial process SIGKILL (${killed.length} killed, local executor)`, table);
  expect(table, JSON.stringify({ trials: st.trial_list, runs: runs.map((r) => [r.trial, r.status, r.state]), log: err.split('\n').filter((l) => !l.startsWith('[')).slice(-40) })).toEqual(zeros(table));
}, 900_000);
