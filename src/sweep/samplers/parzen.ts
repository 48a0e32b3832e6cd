/**
 * Parzen estimators for TPE, following Optuna's univariate `_ParzenEstimator` (v3):
 * a mixture of truncated Gaussians (one per observation plus a prior kernel centred on the
 * range with σ = range) for numeric parameters, and smoothed per-observation counts for
 * categorical ones. Everything is on the internal (log, widened-for-quantisation) scale.
 */
import type { Rng } from '../space.ts';

export interface EstimatorOptions {
  priorWeight: number;
  /** Optuna's "magic clip": σ ≥ range / min(100, 1 + kernels). */
  magicClip: boolean;
}

/**
 * Optuna's default_weights: older observations are down-weighted linearly once there are
 * more than 25 of them, so the estimator follows the recent part of the search.
 */
export function defaultWeights(n: number): number[] {
  if (n < 25) return new Array<number>(n).fill(1);
  const ramp = Array.from({ length: n - 25 }, (_, i) => (n - 25 === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (n - 26)));
  return [...ramp, ...new Array<number>(25).fill(1)];
}

export interface NumericMixture {
  mus: number[];
  sigmas: number[];
  /** Normalised mixture weights. */
  weights: number[];
  low: number;
  high: number;
  /** log of each kernel's truncation mass on [low, high]. */
  logZ: number[];
}

/** `obs` in trial-number order (the weights depend on it). */
export function numericMixture(obs: readonly number[], low: number, high: number, opt: EstimatorOptions): NumericMixture {
  const range = high - low;
  const prior = 0.5 * (low + high);
  const all = [...obs, prior];
  const order = all.map((_, i) => i).sort((a, b) => all[a] - all[b] || a - b);
  const sorted = [low, ...order.map((i) => all[i]), high];
  const sortedSigmas = order.map((_, j) => Math.max(sorted[j + 1] - sorted[j], sorted[j + 2] - sorted[j + 1]));
  // Optuna ignores the endpoints for the outermost kernels (consider_endpoints=False).
  if (sorted.length >= 4) {
    sortedSigmas[0] = sorted[2] - sorted[1];
    sortedSigmas[sortedSigmas.length - 1] = sorted[sorted.length - 2] - sorted[sorted.length - 3];
  }
  const sigmas = new Array<number>(all.length);
  order.forEach((i, j) => (sigmas[i] = sortedSigmas[j]));
  const maxSigma = range;
  const minSigma = opt.magicClip ? range / Math.min(100, 1 + all.length) : 1e-12;
  for (let i = 0; i < obs.length; i++) sigmas[i] = Math.min(maxSigma, Math.max(minSigma, sigmas[i]));
  sigmas[obs.length] = range;
  const w = [...defaultWeights(obs.length), opt.priorWeight];
  const sum = w.reduce((a, b) => a + b, 0);
  const weights = w.map((x) => x / sum);
  const logZ = all.map((mu, i) => logNormalMass((low - mu) / sigmas[i], (high - mu) / sigmas[i]));
  return { mus: all, sigmas, weights, low, high, logZ };
}

/** Draws one value: a kernel by weight, then its truncated Gaussian by rejection. */
export function sampleNumeric(m: NumericMixture, rng: Rng): number {
  const k = pickIndex(m.weights, rng);
  const mu = m.mus[k];
  const s = m.sigmas[k];
  // Every μ lies inside [low, high] and σ ≤ range, so acceptance is at least ~1/3 per draw.
  for (let tries = 0; tries < 200; tries++) {
    const x = mu + s * gaussian(rng);
    if (x >= m.low && x <= m.high) return x;
  }
  return Math.min(m.high, Math.max(m.low, mu));
}

/** log density at x (continuous parameters). */
export function logPdfNumeric(m: NumericMixture, x: number): number {
  const terms = m.mus.map((mu, i) => {
    const z = (x - mu) / m.sigmas[i];
    return Math.log(m.weights[i]) - 0.5 * z * z - Math.log(m.sigmas[i]) - 0.5 * Math.log(2 * Math.PI) - m.logZ[i];
  });
  return logSumExp(terms);
}

/** log probability of the bin [lo, hi] (quantised and integer parameters). */
export function logMassNumeric(m: NumericMixture, lo: number, hi: number): number {
  const a = Math.max(lo, m.low);
  const b = Math.min(hi, m.high);
  if (!(b > a)) return logPdfNumeric(m, a);
  const terms = m.mus.map((mu, i) => Math.log(m.weights[i]) + logNormalMass((a - mu) / m.sigmas[i], (b - mu) / m.sigmas[i]) - m.logZ[i]);
  const v = logSumExp(terms);
  // Far tails underflow even in log form; the density at the centre times the width is then exact enough.
  return Number.isFinite(v) ? v : logPdfNumeric(m, (a + b) / 2) + Math.log(b - a);
}

/**
 * Optuna's categorical estimator: each observation is a kernel with mass 1 on its choice
 * plus prior_weight / kernels spread over all choices; the prior kernel is the choice prior.
 * Returns the mixture's probability per choice.
 */
export function categoricalMixture(obs: readonly number[], prior: readonly number[], opt: EstimatorOptions): number[] {
  const n = prior.length;
  const kernels = obs.length + 1;
  const w = [...defaultWeights(obs.length), opt.priorWeight];
  const wsum = w.reduce((a, b) => a + b, 0);
  const pmf = prior.map((p) => (p * w[obs.length]) / wsum);
  obs.forEach((idx, k) => {
    const smooth = opt.priorWeight / kernels;
    const rowSum = 1 + smooth * n;
    for (let c = 0; c < n; c++) pmf[c] += ((w[k] / wsum) * ((c === idx ? 1 : 0) + smooth)) / rowSum;
  });
  return pmf;
}

export function pickIndex(weights: readonly number[], rng: Rng): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let u = rng() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i];
    if (u < 0) return i;
  }
  return weights.length - 1;
}

/** Standard normal by Box–Muller (one value per call keeps the stream simple to replay). */
export function gaussian(rng: Rng): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function logSumExp(xs: readonly number[]): number {
  const m = Math.max(...xs);
  if (!Number.isFinite(m)) return m;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

/** log erfc(x) for x ≥ 0 (Numerical Recipes' erfcc; relative error < 1.2e-7, no underflow). */
function logErfc(x: number): number {
  const t = 1 / (1 + 0.5 * x);
  const poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return Math.log(t) - x * x + poly;
}

/** log Φ(x) for x ≤ 0. */
function logPhiLower(x: number): number {
  return Math.log(0.5) + logErfc(-x / Math.SQRT2);
}

/** log(Φ(b) − Φ(a)) for a < b, without cancellation in either tail. */
export function logNormalMass(a: number, b: number): number {
  if (!(b > a)) return -Infinity;
  if (a >= 0) return logNormalMass(-b, -a);
  if (b <= 0) {
    const lb = logPhiLower(b);
    const la = logPhiLower(a);
    return lb + Math.log1p(-Math.exp(la - lb));
  }
  return Math.log1p(-Math.exp(logPhiLower(a)) - Math.exp(logPhiLower(-b)));
}
