/** Checks shared by every metric: what a caller can get wrong is named by argument and index. */
import { EgmfError } from '../../errors.ts';

/** Predictions or truths as the trainer holds them (plain arrays or typed arrays). */
export type NumericArray = ArrayLike<number>;

/** A flat metric record, MLflow-ready: metric key → value (NaN where undefined). */
export type MetricRecord = Record<string, number>;

/**
 * Validates a prediction/truth pair and copies both into Float64Arrays.
 * Empty input, a length mismatch and non-finite values are errors: a NaN prediction
 * would silently count as "negative" in every binarised metric.
 */
export function checkPair(pred: NumericArray, truth: NumericArray): { pred: Float64Array; truth: Float64Array } {
  if (pred.length === 0) throw new EgmfError('is empty: metrics need at least one sample', { key: 'pred' });
  if (truth.length === 0) throw new EgmfError('is empty: metrics need at least one sample', { key: 'truth' });
  if (pred.length !== truth.length) {
    throw new EgmfError(`has ${pred.length} values but truth has ${truth.length}`, { key: 'pred' });
  }
  return { pred: finiteCopy(pred, 'pred'), truth: finiteCopy(truth, 'truth') };
}

function finiteCopy(a: NumericArray, key: string): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new EgmfError(`must be a finite number, got ${String(v)}`, { key, row: i });
    }
    out[i] = v;
  }
  return out;
}

/** Class indices must be integers in [0, numClasses). */
export function checkClasses(a: Float64Array, numClasses: number, key: string): Int32Array {
  const out = new Int32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      throw new EgmfError(`must be a class index in [0, ${numClasses - 1}], got ${v}`, { key, row: i });
    }
    out[i] = v;
  }
  return out;
}

export function checkNumClasses(numClasses: number): void {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new EgmfError(`must be a positive integer, got ${numClasses}`, { key: 'numClasses' });
  }
}
