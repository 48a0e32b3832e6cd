/**
 * Which metrics a dataset gets, which one training optimises, and which one the paper
 * headlines. The regression family follows MMSA's dataset split: MOSEI/MOSI use the
 * [-3, 3] metrics, SIMS/SIMS-V2 the [-1, 1] ones. Any other regression dataset is
 * matched by its label range, [-3, 3] or [-1, 1]; another range is an error, because
 * both families' bins would be meaningless there (SIMS clips to [-1, 1]).
 */
import { EgmfError } from '../../errors.ts';
import type { DatasetMeta, TaskKind } from '../../data/schema.ts';
import { classificationMetrics } from './classification.ts';
import type { MetricRecord, NumericArray } from './inputs.ts';
import { moseiMetrics, simsMetrics } from './regression.ts';

export type MetricsFn = (pred: NumericArray, truth: NumericArray) => MetricRecord;
export type RegressionFamily = 'mosei' | 'sims';

export interface MetricsOptions {
  /** Number of classes (classification); defaults to `labelNames.length`. */
  numClasses?: number;
  /** Class names for the `f1_<name>` keys (classification). */
  labelNames?: readonly string[];
  /** Inclusive label range (regression), used for datasets the table below does not know. */
  labelRange?: readonly [number, number];
}

export interface MetricGoal {
  /** Key in the metric record. */
  name: string;
  goal: 'max' | 'min';
}

export interface HeadlineMetric extends MetricGoal {
  /** How the paper's table names it. */
  label: string;
}

export const MOSEI_METRIC_KEYS = [
  'Has0_acc_2', 'Has0_F1_score', 'Non0_acc_2', 'Non0_F1_score', 'Mult_acc_5', 'Mult_acc_7', 'MAE', 'Corr',
] as const;
export const SIMS_METRIC_KEYS = [
  'Mult_acc_2', 'Mult_acc_3', 'Mult_acc_5', 'F1_score', 'MAE', 'Corr', 'Mult_acc_2_weak', 'R_squre',
] as const;
export const CLASSIFICATION_METRIC_KEYS = [
  'acc', 'weighted_f1', 'macro_f1', 'weighted_precision', 'weighted_recall',
] as const;

/** `sims-v2`, `SIMSv2`, `ch_sims_v2` → `simsv2`. */
function canonical(dataset: string): string {
  return dataset.toLowerCase().replace(/[^a-z0-9]/g, '');
}

const FAMILY_BY_NAME: Record<string, RegressionFamily> = {
  mosei: 'mosei', mosi: 'mosei', cmumosei: 'mosei', cmumosi: 'mosei',
  sims: 'sims', simsv2: 'sims', simsv2s: 'sims', chsims: 'sims', chsimsv2: 'sims', chsimsv2s: 'sims',
};

export function regressionFamily(dataset: string, labelRange?: readonly [number, number]): RegressionFamily {
  const known = FAMILY_BY_NAME[canonical(dataset)];
  if (known !== undefined) return known;
  if (labelRange === undefined) {
    throw new EgmfError(`dataset '${dataset}' is not MOSEI/MOSI/SIMS: give its label range ([-3, 3] or [-1, 1])`, {
      key: 'labelRange',
    });
  }
  const [lo, hi] = labelRange;
  if (lo === -3 && hi === 3) return 'mosei';
  if (lo === -1 && hi === 1) return 'sims';
  throw new EgmfError(`[${lo}, ${hi}] of dataset '${dataset}' matches neither MOSEI's [-3, 3] nor SIMS's [-1, 1] metrics`, {
    key: 'labelRange',
  });
}

export function metricsFor(task: TaskKind, dataset: string, opts: MetricsOptions = {}): MetricsFn {
  if (task === 'classification') {
    const numClasses = opts.numClasses ?? opts.labelNames?.length;
    if (numClasses === undefined) {
      throw new EgmfError(`classification metrics for '${dataset}' need numClasses or labelNames`, { key: 'numClasses' });
    }
    const names = opts.labelNames;
    return (pred, truth) => classificationMetrics(pred, truth, numClasses, names);
  }
  if (task === 'regression') {
    return regressionFamily(dataset, opts.labelRange) === 'mosei' ? moseiMetrics : simsMetrics;
  }
  throw new EgmfError(`must be "classification" or "regression", got ${JSON.stringify(task)}`, { key: 'task' });
}

/** The metric function for a dataset file's metadata; English class names make the keys. */
export function metricsForMeta(meta: DatasetMeta): MetricsFn {
  return metricsFor(meta.task, meta.dataset, {
    labelNames: meta.labelNamesEn ?? meta.labelNames,
    labelRange: meta.labelRange,
  });
}

/** What training selects checkpoints and stops early on (MSE-Adapter: weighted F1 / MAE). */
export function primaryMetric(task: TaskKind, _dataset?: string): MetricGoal {
  if (task === 'classification') return { name: 'weighted_f1', goal: 'max' };
  if (task === 'regression') return { name: 'MAE', goal: 'min' };
  throw new EgmfError(`must be "classification" or "regression", got ${JSON.stringify(task)}`, { key: 'task' });
}

/**
 * The number the paper's table gives per dataset. MOSEI's "F1" is MMSA's `Has0_F1_score`
 * (MSE-Adapter's result files list Has0 first; its reported F1 82.45 is that column) and
 * SIMS-V2's "Acc-2" is `Mult_acc_2`. Unknown datasets fall back to the task's primary metric.
 */
export function headlineMetric(dataset: string, task?: TaskKind): HeadlineMetric {
  const c = canonical(dataset);
  if (c === 'meld' || c === 'cherma') return { name: 'weighted_f1', goal: 'max', label: 'weighted F1' };
  const family = FAMILY_BY_NAME[c];
  if (family === 'mosei') return { name: 'Has0_F1_score', goal: 'max', label: 'F1' };
  if (family === 'sims') return { name: 'Mult_acc_2', goal: 'max', label: 'Acc-2' };
  if (task === undefined) {
    throw new EgmfError(`dataset '${dataset}' has no headline metric in the paper: pass its task`, { key: 'dataset' });
  }
  const p = primaryMetric(task);
  return { ...p, label: p.name };
}
