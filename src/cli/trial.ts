import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { EgmfError } from '../errors.ts';
import { loadExperiment } from '../config/experiment.ts';
import { recordOwner, sweepRoot, trialFolder } from '../sweep/trial-folder.ts';
import { serveTrials, sweepMetricKey, TAG_SWEEP_ID, TAG_TRIAL_ID, type TrialConnection } from '../sweep/trial-protocol.ts';
import { createStore } from '../tracking/index.ts';
import { fileStoreRoot } from '../tracking/file-layout.ts';
import { storageFault } from '../sweep/storage.ts';
import { trainExperiment } from '../train/trainer.ts';

/** The validation metric a sweep optimises, from its spec name (`valid/weighted_f1` or `weighted_f1`). */

/**
 * `egmf trial`: one sweep trial in its own process, started by a sweep executor (local pool
 * or `egmf worker`) with the payload in EGMF_TRIAL_PAYLOAD and an IPC channel. It trains the
 * base config with the trial's overrides, logs a child run under the sweep's parent run,
 * reports each epoch's validation metric and stops when the pruner says so. A re-delivered
 * trial (its worker died) resumes from the checkpoint the first attempt left here, if any.
 */
export const trialCommand: CommandModule = {
  command: 'trial',
  describe: 'Run one sweep trial (started by `egmf sweep run` or `egmf worker`, not by hand)',
  builder: (y: Argv) => y,
  handler: async () => {
    // One trial, or, in a process its executor lets host several, one after another.
    await serveTrials(runTrial);
  },
};

/** Runs one delivered trial to its result (sent through `conn`). */
async function runTrial(conn: TrialConnection): Promise<void> {
  const p = conn.payload;
  let runId: string | undefined;
  try {
    if (p.baseConfig === null) throw new EgmfError('the sweep spec names no base_config', { key: 'base_config' });
    const sets = [...p.overrides, ...(p.maxEpochs !== null ? [`train.epochs=${p.maxEpochs}`] : [])];
    const cfg = loadExperiment(p.baseConfig, sets);
    const seed = p.seed ?? cfg.seed;
    const key = sweepMetricKey(p.metric.name);
    const better = (a: number, b: number) => (p.metric.goal === 'maximize' ? a > b : a < b);
    let best: number | null = null;
    const outDir = trialFolder(p.sweepId, p.trialId);
    // This process trains the trial now (its executor recorded it already unless a wrapper started it).
    recordOwner(outDir, process.pid);
    const resume = existsSync(join(outDir, 'checkpoints', 'latest', 'state.json'));
    const r = await trainExperiment(cfg, {
      outDir, seed, resume,
      say: (m) => process.stderr.write(`${m}\n`),
      tracking: {
        store: createStore(p.trackingUri),
        experimentName: p.experimentName,
        runName: p.trialId,
        ...(p.parentRunId ? { parentRunId: p.parentRunId } : {}),
        tags: { [TAG_SWEEP_ID]: p.sweepId, [TAG_TRIAL_ID]: p.trialId },
      },
      onRunStarted: (id) => {
        runId = id;
        conn.started(id);
      },
      onEpoch: async (epoch, metrics) => {
        const v = metrics[key];
        if (v === undefined) {
          throw new EgmfError(`the sweep metric '${p.metric.name}' is not a validation metric of this run (${Object.keys(metrics).join(', ')})`, { key: 'metric.name' });
        }
        if (best === null || better(v, best)) best = v;
        return conn.report(epoch + 1, v);
      },
    });
    // A run that had already finished (its result lost with a killed controller) trains no
    // epoch when resumed: its value is the best of the epochs it recorded.
    const recorded = r.history.map((h) => h.metrics[key]).filter((v): v is number => v !== undefined);
    const value: number | null = best ?? (recorded.length > 0 ? recorded.reduce((a, b) => (better(b, a) ? b : a)) : null);
    if (r.pruned) await conn.finish({ state: 'pruned', ...(value !== null ? { value } : {}), ...(runId ? { runId } : {}) });
    else if (value === null) await conn.finish({ state: 'failed', error: 'no validation metric was produced', ...(runId ? { runId } : {}) });
    else await conn.finish({ state: 'complete', value, ...(runId ? { runId } : {}) });
  } catch (e) {
    // A disk that refuses the trial's writes (full, read-only) is no fault of the trial: it
    // says which file, and its sweep stops rather than failing it (src/sweep/storage.ts).
    const storage = storageFault(e, [sweepRoot(), ...fileStoreRoots(p.trackingUri)], trialFolder(p.sweepId, p.trialId));
    await conn.finish({ state: 'failed', error: (e as Error).message, ...(storage !== undefined ? { storage } : {}), ...(runId ? { runId } : {}) });
    process.exitCode = 1;
  }
}

/** The folder of a file tracking store (none for a server). */
function fileStoreRoots(uri: string): string[] {
  return /^https?:\/\//i.test(uri) ? [] : [fileStoreRoot(uri)];
}
