/**
 * `egmf sweep confirm <id>`: re-trains a sweep's best configuration with other seeds. A best
 * trial is the maximum of several noisy runs, so its value is biased upwards; re-training it
 * with seeds it was not selected on says what the configuration is worth (mean ± std) and
 * how far the sweep's number was from it.
 *
 * Each seed trains the trial's own config (the spec's base_config, its `set`, the trial's
 * params and epoch budget) in this process, into `<sweep>/confirm/seed<seed>/`, logged as a
 * child run of the sweep's parent run (tag `sweep.confirm_of`), unless tracking is off.
 */
import { join } from 'node:path';
import { EgmfError } from '../errors.ts';
import { loadExperiment } from '../config/experiment.ts';
import { createStore } from '../tracking/index.ts';
import { trainExperiment } from '../train/trainer.ts';
import { meanStd, type MeanStd } from '../train/seeds.ts';
import { bestTrial, loadSweepOf, readMeta, studyFromJournal, sweepDir, sweepRoot } from './controller.ts';
import { configOverrides } from './study.ts';
import type { Params } from './space.ts';
import { sweepMetricKey, TAG_SWEEP_ID } from './trial-protocol.ts';

export const TAG_CONFIRM_OF = 'sweep.confirm_of';

export interface ConfirmOptions {
  seeds: readonly number[];
  root?: string;
  /** Log each seed's run to the sweep's tracking store (default true). */
  tracking?: boolean;
  say?: (m: string) => void;
}

export interface ConfirmResult {
  sweepId: string;
  trialId: string;
  params: Params;
  metric: string;
  /** The best trial's value in the sweep. */
  sweepValue: number;
  runs: { seed: number; value: number; runId: string | null; outDir: string }[];
  summary: MeanStd;
  /** Largest |seed value − sweep value|. */
  maxDiff: number;
  baselines: Record<string, number>;
}

export async function confirmBest(sweepId: string, opts: ConfirmOptions): Promise<ConfirmResult> {
  if (opts.seeds.length === 0) throw new EgmfError('give at least one seed', { key: 'seeds' });
  const dir = sweepDir(opts.root ?? sweepRoot(), sweepId);
  const meta = readMeta(dir);
  const spec = loadSweepOf(dir, meta);
  const study = studyFromJournal(spec, meta.sweepId, join(dir, 'journal.jsonl'));
  const top = bestTrial(study);
  if (top === undefined || top.value === undefined) throw new EgmfError(`sweep '${sweepId}' has no completed trial to confirm`, { key: 'sweep-id' });
  if (spec.base_config === undefined || spec.base_config === null) throw new EgmfError('the sweep spec names no base_config', { key: 'base_config' });
  const epochs = spec.early_terminate?.type === 'asha' ? spec.early_terminate.max_resource : undefined;
  const overrides = [
    ...Object.entries(configOverrides(spec, top.params)).map(([k, v]) => `${k}=${JSON.stringify(v)}`),
    ...(epochs !== undefined ? [`train.epochs=${epochs}`] : []),
  ];
  const key = sweepMetricKey(spec.metric.name);
  const store = opts.tracking === false ? null : createStore(meta.trackingUri);
  const runs: ConfirmResult['runs'] = [];
  let baselines: Record<string, number> = {};
  for (const seed of opts.seeds) {
    const cfg = loadExperiment(spec.base_config, overrides);
    const outDir = join(dir, 'confirm', `seed${seed}`);
    const r = await trainExperiment(cfg, {
      outDir, seed, say: opts.say,
      tracking: store ? {
        store, experimentName: meta.experimentName, runName: `${top.id}-confirm-seed${seed}`, parentRunId: meta.parentRunId,
        tags: { [TAG_SWEEP_ID]: meta.sweepId, [TAG_CONFIRM_OF]: top.id },
      } : null,
    });
    const value = r.history.map((h) => h.metrics[key]).filter((v): v is number => v !== undefined);
    if (value.length === 0) throw new EgmfError(`the sweep metric '${spec.metric.name}' is not a validation metric of this run`, { key: 'metric.name' });
    const best = spec.metric.goal === 'maximize' ? Math.max(...value) : Math.min(...value);
    runs.push({ seed, value: best, runId: r.runId, outDir });
    baselines = r.baselines;
    opts.say?.(`confirm seed ${seed}: ${spec.metric.name} ${best.toFixed(4)} (sweep ${top.value.toFixed(4)})`);
  }
  const summary = meanStd(runs.map((x) => x.value));
  return {
    sweepId: meta.sweepId, trialId: top.id, params: top.params, metric: spec.metric.name, sweepValue: top.value, runs, summary,
    maxDiff: Math.max(...runs.map((x) => Math.abs(x.value - top.value!))), baselines,
  };
}
