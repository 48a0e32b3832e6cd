/**
 * Float64 kernels that reproduce numpy's results bit for bit where numpy's order of
 * operations is knowable (sums, means, rounding, clipping), so the TypeScript metrics
 * agree with MMSA's Python to the last bit on MAE and the accuracies.
 */

/**
 * numpy's pairwise summation (`DOUBLE_pairwise_sum` in loops_utils.h.src) as used by
 * `np.add.reduce` on a contiguous float64 array: the reduction starts from the identity
 * 0.0 and adds the pairwise sum of all elements. Blocks of 128 are summed with eight
 * interleaved accumulators; larger spans are split in halves rounded down to a multiple
 * of 8. Checked bit-exact against `np.sum` for n = 1..20000.
 */
export function npSum(a: ArrayLike<number>): number {
  return 0 + pairwise(a, 0, a.length);
}

function pairwise(a: ArrayLike<number>, start: number, n: number): number {
  if (n < 8) {
    // numpy starts from -0.0 so that a sum of -0.0 values stays -0.0.
    let res = -0.0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    const r = [a[start], a[start + 1], a[start + 2], a[start + 3], a[start + 4], a[start + 5], a[start + 6], a[start + 7]];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    }
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwise(a, start, n2) + pairwise(a, start + n2, n - n2);
}

/** `np.mean`: the pairwise sum divided by n (NaN for an empty array, as numpy). */
export function npMean(a: ArrayLike<number>): number {
  return npSum(a) / a.length;
}

/** `np.round(x)` / `np.rint`: round half to even (2.5 → 2, -0.5 → -0). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round sends exact halves towards +inf; numpy sends them to the even neighbour.
  return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** `np.clip(a, lo, hi)` into a new Float64Array. */
export function clip(a: ArrayLike<number>, lo: number, hi: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] < lo ? lo : a[i] > hi ? hi : a[i];
  return out;
}

/**
 * `np.corrcoef(x, y)[0][1]`: the sample covariance matrix (ddof 1) normalised by the
 * standard deviations, then clipped to [-1, 1]. NaN for fewer than two samples or a
 * constant input, which is what numpy returns when the constant's mean is exact.
 * (When the mean of a constant array is inexact, e.g. 0.1 repeated, numpy returns
 * rounding noise instead; a constant prediction has no correlation, so NaN is kept.)
 * The cross products go through BLAS in numpy, so agreement is to ~1e-15, not bitwise.
 */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (n < 2 || isConstant(x) || isConstant(y)) return Number.NaN;
  const mx = npMean(x);
  const my = npMean(y);
  const dx = new Float64Array(n);
  const dy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    dx[i] = x[i] - mx;
    dy[i] = y[i] - my;
  }
  const fact = 1 / (n - 1);
  const cxx = dot(dx, dx) * fact;
  const cyy = dot(dy, dy) * fact;
  const cxy = dot(dx, dy) * fact;
  const c = cxy / Math.sqrt(cxx) / Math.sqrt(cyy);
  return Math.max(-1, Math.min(1, c));
}

function isConstant(a: ArrayLike<number>): boolean {
  for (let i = 1; i < a.length; i++) if (a[i] !== a[0]) return false;
  return true;
}

function dot(a: Float64Array, b: Float64Array): number {
  const p = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) p[i] = a[i] * b[i];
  return npSum(p);
}

/**
 * sklearn `r2_score(truth, pred)` with its defaults (force_finite=True): NaN for fewer
 * than two samples; a constant truth gives 1.0 for a perfect prediction and 0.0 otherwise.
 */
export function r2Score(truth: ArrayLike<number>, pred: ArrayLike<number>): number {
  const n = truth.length;
  if (n < 2) return Number.NaN;
  const mean = npMean(truth);
  const res = new Float64Array(n);
  const tot = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    res[i] = (truth[i] - pred[i]) ** 2;
    tot[i] = (truth[i] - mean) ** 2;
  }
  const num = npSum(res);
  const den = npSum(tot);
  if (num === 0) return 1;
  if (den === 0) return 0;
  return 1 - num / den;
}
