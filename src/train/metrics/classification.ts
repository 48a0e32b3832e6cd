/**
 * Classification metrics with sklearn's semantics (1.9): `accuracy_score`,
 * `f1_score`/`precision_score`/`recall_score` with `zero_division="warn"` (an undefined
 * ratio counts as 0), and `confusion_matrix`.
 *
 * Label set: the averaged scores (weighted and macro) use the labels present in
 * truth ∪ pred, exactly as sklearn does without `labels=` and as MMSA/MSE-Adapter call
 * it. For weighted scores this choice cannot matter (an absent label has weight 0), for
 * macro F1 it does: a class that is neither predicted nor present does not drag the mean
 * to 0. Per-class F1 (`f1_<label>`) is reported for every class, 0 when the class is
 * absent from both, like `f1_score(labels=range(K), average=None)`.
 */
import { EgmfError } from '../../errors.ts';
import { checkClasses, checkNumClasses, checkPair, type MetricRecord, type NumericArray } from './inputs.ts';
import { npSum } from './numeric.ts';

interface LabelCounts {
  tp: Float64Array;
  predSum: Float64Array;
  trueSum: Float64Array;
}

function countLabels(pred: Int32Array, truth: Int32Array, k: number): LabelCounts {
  const tp = new Float64Array(k);
  const predSum = new Float64Array(k);
  const trueSum = new Float64Array(k);
  for (let i = 0; i < pred.length; i++) {
    predSum[pred[i]]++;
    trueSum[truth[i]]++;
    if (pred[i] === truth[i]) tp[pred[i]]++;
  }
  return { tp, predSum, trueSum };
}

/** sklearn's `_prf_divide` with zero_division="warn": x/0 is 0. */
function ratio(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

interface Prf {
  precision: number[];
  recall: number[];
  f1: number[];
  support: number[];
}

function prf(c: LabelCounts, labels: readonly number[]): Prf {
  return {
    precision: labels.map((l) => ratio(c.tp[l], c.predSum[l])),
    recall: labels.map((l) => ratio(c.tp[l], c.trueSum[l])),
    // sklearn's F-beta from counts: (1+β²)·tp / (β²·true + pred), β = 1.
    f1: labels.map((l) => ratio(2 * c.tp[l], c.trueSum[l] + c.predSum[l])),
    support: labels.map((l) => c.trueSum[l]),
  };
}

/** `np.average(values, weights)`: Σ(v·w) / Σw with numpy's summation. */
function weightedMean(values: number[], weights: number[]): number {
  return npSum(values.map((v, i) => v * weights[i])) / npSum(weights);
}

function presentLabels(c: LabelCounts): number[] {
  const out: number[] = [];
  for (let l = 0; l < c.tp.length; l++) if (c.predSum[l] > 0 || c.trueSum[l] > 0) out.push(l);
  return out;
}

/**
 * sklearn `f1_score(truth, pred, average='weighted')` for already-validated class ids;
 * the regression metrics use it on their binarised/binned values.
 */
export function weightedF1(pred: Int32Array, truth: Int32Array, k: number): number {
  const c = countLabels(pred, truth, k);
  const s = prf(c, presentLabels(c));
  return weightedMean(s.f1, s.support);
}

/** `np.sum(pred == truth) / len(truth)`. */
export function accuracy(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  let hits = 0;
  for (let i = 0; i < truth.length; i++) if (pred[i] === truth[i]) hits++;
  return hits / truth.length;
}

/** MLflow metric keys allow word characters, `.`, `-`, ` ` and `/` (Python's Unicode `\w`). */
export function metricKeyPart(name: string): string {
  return name.replace(/[^\p{L}\p{N}_.\- /]/gu, '_');
}

function perClassKeys(numClasses: number, labelNames?: readonly string[]): string[] {
  if (labelNames === undefined) return Array.from({ length: numClasses }, (_, i) => `f1_${i}`);
  if (labelNames.length !== numClasses) {
    throw new EgmfError(`has ${labelNames.length} names but numClasses is ${numClasses}`, { key: 'labelNames' });
  }
  const keys = labelNames.map((n, i) => `f1_${n.trim() === '' ? String(i) : metricKeyPart(n.trim())}`);
  const seen = new Map<string, number>();
  keys.forEach((k, i) => {
    const j = seen.get(k);
    if (j !== undefined) {
      throw new EgmfError(`names ${j} and ${i} both give the metric key '${k}'`, { key: 'labelNames', row: i });
    }
    seen.set(k, i);
  });
  return keys;
}

/**
 * `acc`, `weighted_f1`, `macro_f1`, `weighted_precision`, `weighted_recall` and one
 * `f1_<label>` per class. Predictions and truths are class indices in [0, numClasses).
 */
export function classificationMetrics(
  pred: NumericArray,
  truth: NumericArray,
  numClasses: number,
  labelNames?: readonly string[],
): MetricRecord {
  checkNumClasses(numClasses);
  const keys = perClassKeys(numClasses, labelNames);
  const checked = checkPair(pred, truth);
  const p = checkClasses(checked.pred, numClasses, 'pred');
  const t = checkClasses(checked.truth, numClasses, 'truth');
  const c = countLabels(p, t, numClasses);
  const present = prf(c, presentLabels(c));
  const all = prf(c, Array.from({ length: numClasses }, (_, i) => i));
  const out: MetricRecord = {
    acc: accuracy(p, t),
    weighted_f1: weightedMean(present.f1, present.support),
    macro_f1: npSum(present.f1) / present.f1.length,
    weighted_precision: weightedMean(present.precision, present.support),
    weighted_recall: weightedMean(present.recall, present.support),
  };
  keys.forEach((k, i) => {
    out[k] = all.f1[i];
  });
  return out;
}

/** sklearn `confusion_matrix(truth, pred, labels=range(numClasses))`: rows are truths, columns predictions. */
export function confusionMatrix(pred: NumericArray, truth: NumericArray, numClasses: number): number[][] {
  checkNumClasses(numClasses);
  const checked = checkPair(pred, truth);
  const p = checkClasses(checked.pred, numClasses, 'pred');
  const t = checkClasses(checked.truth, numClasses, 'truth');
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < p.length; i++) m[t[i]][p[i]]++;
  return m;
}
