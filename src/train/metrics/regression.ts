/**
 * Sentiment-intensity metrics, transcribed from MMSA's `metricsTop.py`
 * (thuiar/MMSA, src/MMSA/utils/metricsTop.py: `__eval_mosei_regression`,
 * `__eval_sims_regression`) and MSE-Adapter's extension of the SIMS one
 * (`Mult_acc_2_weak`, `R_squre`). scripts/make_metric_fixtures.py holds the Python
 * transcription that the parity test compares against.
 *
 * Deliberate differences from the Python:
 * - MMSA rounds the MOSEI results to 4 decimals (`round(x, 4)`); we keep full precision
 *   so that early stopping and sweeps do not tie on rounding. Reports format numbers.
 * - When every truth is exactly 0, MMSA's Non0 metrics crash (an empty float index
 *   array); we return NaN for `Non0_acc_2` and `Non0_F1_score`.
 * - MMSA receives float32 tensors; we compute in float64 on the values given. A float32
 *   label such as -0.7f widens to -0.69999998…, which falls in the bin above -0.7.
 */
import { accuracy, weightedF1 } from './classification.ts';
import { checkPair, type MetricRecord, type NumericArray } from './inputs.ts';
import { clip, npMean, pearson, r2Score, roundHalfEven } from './numeric.ts';

/** MMSA's `__multiclass_acc`: `np.sum(np.round(pred) == np.round(truth)) / len(truth)`. */
function multiclassAcc(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  let hits = 0;
  for (let i = 0; i < truth.length; i++) if (roundHalfEven(pred[i]) === roundHalfEven(truth[i])) hits++;
  return hits / truth.length;
}

function meanAbsError(pred: Float64Array, truth: Float64Array): number {
  const d = new Float64Array(pred.length);
  for (let i = 0; i < d.length; i++) d[i] = Math.abs(pred[i] - truth[i]);
  return npMean(d);
}

function binarise(a: ArrayLike<number>, positive: (v: number) => boolean): Int32Array {
  return Int32Array.from(a, (v) => (positive(v) ? 1 : 0));
}

/**
 * MOSEI/MOSI: `Has0_*` binarise at ≥ 0 over all samples, `Non0_*` drop samples whose
 * truth is exactly 0 and binarise at > 0 (F1 = sklearn weighted F1); `Mult_acc_7`/`_5`
 * clip to [-3, 3]/[-2, 2] and compare half-to-even rounded values; `MAE` and `Corr`
 * (Pearson, NaN for a constant input) use the raw values.
 */
export function moseiMetrics(pred: NumericArray, truth: NumericArray): MetricRecord {
  const { pred: p, truth: t } = checkPair(pred, truth);
  const nonZero: number[] = [];
  t.forEach((v, i) => {
    if (v !== 0) nonZero.push(i);
  });
  const has0Truth = binarise(t, (v) => v >= 0);
  const has0Pred = binarise(p, (v) => v >= 0);
  let non0Acc = Number.NaN;
  let non0F1 = Number.NaN;
  if (nonZero.length > 0) {
    const nzTruth = Int32Array.from(nonZero, (i) => (t[i] > 0 ? 1 : 0));
    const nzPred = Int32Array.from(nonZero, (i) => (p[i] > 0 ? 1 : 0));
    non0Acc = accuracy(nzPred, nzTruth);
    non0F1 = weightedF1(nzPred, nzTruth, 2);
  }
  return {
    Has0_acc_2: accuracy(has0Pred, has0Truth),
    Has0_F1_score: weightedF1(has0Pred, has0Truth, 2),
    Non0_acc_2: non0Acc,
    Non0_F1_score: non0F1,
    Mult_acc_5: multiclassAcc(clip(p, -2, 2), clip(t, -2, 2)),
    Mult_acc_7: multiclassAcc(clip(p, -3, 3), clip(t, -3, 3)),
    MAE: meanAbsError(p, t),
    Corr: pearson(p, t),
  };
}

// MMSA's bin edges: bin i is (edges[i], edges[i+1]]; -1.01/1.01 catch the clipped ends.
const SIMS_BINS_2 = [-1.01, 0.0, 1.01];
const SIMS_BINS_3 = [-1.01, -0.1, 0.1, 1.01];
const SIMS_BINS_5 = [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01];
/** MSE-Adapter's weak-sentiment subset: clipped truth in [-0.4, 0.4], both ends included. */
const WEAK_LIMIT = 0.4;

function binIndex(values: Float64Array, edges: readonly number[]): Int32Array {
  return Int32Array.from(values, (v) => {
    for (let i = 0; i + 1 < edges.length; i++) if (v > edges[i] && v <= edges[i + 1]) return i;
    // Unreachable after clipping to [-1, 1]; kept so a bad edge list cannot go unnoticed.
    throw new RangeError(`value ${v} outside the bins ${edges.join(', ')}`);
  });
}

/**
 * SIMS / SIMS-V2: both sides clipped to [-1, 1] first (MAE, Corr and R² included), then
 * `Mult_acc_2` bins [-1, 0], (0, 1]; `Mult_acc_3` [-1, -0.1], (-0.1, 0.1], (0.1, 1];
 * `Mult_acc_5` edges -0.7, -0.1, 0.1, 0.7; `F1_score` = weighted F1 on the two bins.
 * MSE-Adapter adds `Mult_acc_2_weak` (the two-bin accuracy on samples with truth in
 * [-0.4, 0.4]; NaN when there are none, as numpy's 0/0) and `R_squre` (sklearn
 * `r2_score(truth, pred)`; the misspelt key is MSE-Adapter's, kept so results compare).
 */
export function simsMetrics(pred: NumericArray, truth: NumericArray): MetricRecord {
  const checked = checkPair(pred, truth);
  const p = clip(checked.pred, -1, 1);
  const t = clip(checked.truth, -1, 1);
  const p2 = binIndex(p, SIMS_BINS_2);
  const t2 = binIndex(t, SIMS_BINS_2);
  const weak: number[] = [];
  t.forEach((v, i) => {
    if (v >= -WEAK_LIMIT && v <= WEAK_LIMIT) weak.push(i);
  });
  return {
    Mult_acc_2: accuracy(p2, t2),
    Mult_acc_3: accuracy(binIndex(p, SIMS_BINS_3), binIndex(t, SIMS_BINS_3)),
    Mult_acc_5: accuracy(binIndex(p, SIMS_BINS_5), binIndex(t, SIMS_BINS_5)),
    F1_score: weightedF1(p2, t2, 2),
    MAE: meanAbsError(p, t),
    Corr: pearson(p, t),
    Mult_acc_2_weak: weak.length === 0 ? Number.NaN : accuracy(weak.map((i) => p2[i]), weak.map((i) => t2[i])),
    R_squre: r2Score(t, p),
  };
}
