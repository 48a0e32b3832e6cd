/**
 * Linear models on sparse features for the text baselines, with scikit-learn's objectives
 * so their optima are the same:
 *  - multinomial logistic regression (`LogisticRegression(C)`, lbfgs): mean log-loss +
 *    ||W||² / (2·C·n), intercepts unpenalised;
 *  - ridge regression (`Ridge(alpha)`): ||y − Xw − b||² + alpha·||w||², intercept unpenalised
 *    (minimised here divided by 2n, which leaves the optimum unchanged).
 * Both are strictly convex and are minimised with L-BFGS to a tight tolerance.
 */
import { EgmfError } from '../../errors.ts';
import type { Csr } from './tfidf.ts';

export interface LbfgsOptions {
  maxIter?: number;
  /** Stop when the largest gradient component is below this. */
  gradTol?: number;
  /** History pairs kept. */
  memory?: number;
}

/** Minimises a smooth function; `fg` returns f(x) and writes ∇f(x) into `g`. */
export function lbfgs(fg: (x: Float64Array, g: Float64Array) => number, x0: Float64Array, o: LbfgsOptions = {}): { x: Float64Array; f: number; iterations: number } {
  const maxIter = o.maxIter ?? 1000;
  const gradTol = o.gradTol ?? 1e-7;
  const m = o.memory ?? 10;
  const n = x0.length;
  // Every buffer is allocated once: the history pairs are a ring, the trial point is swapped in.
  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let xn = new Float64Array(n);
  let gn = new Float64Array(n);
  const d = new Float64Array(n);
  const S = Array.from({ length: m }, () => new Float64Array(n));
  const Y = Array.from({ length: m }, () => new Float64Array(n));
  const rho = new Float64Array(m);
  const alpha = new Float64Array(m);
  let stored = 0; // pairs in the ring
  let head = 0; // slot of the next pair
  const slot = (k: number): number => (head - stored + k + m) % m; // k-th oldest pair
  const dot = (a: Float64Array, b: Float64Array): number => {
    let t = 0;
    for (let i = 0; i < n; i++) t += a[i]! * b[i]!;
    return t;
  };
  const maxAbs = (a: Float64Array): number => {
    let mx = 0;
    for (let i = 0; i < n; i++) mx = Math.max(mx, Math.abs(a[i]!));
    return mx;
  };
  let f = fg(x, g);
  let it = 0;
  for (; it < maxIter && maxAbs(g) > gradTol; it++) {
    // Two-loop recursion: d = −H·g.
    for (let i = 0; i < n; i++) d[i] = -g[i]!;
    for (let k = stored - 1; k >= 0; k--) {
      const j = slot(k);
      alpha[j] = rho[j]! * dot(S[j]!, d);
      const y = Y[j]!;
      for (let i = 0; i < n; i++) d[i]! -= alpha[j]! * y[i]!;
    }
    const last = slot(stored - 1);
    const gamma = stored > 0 ? dot(S[last]!, Y[last]!) / dot(Y[last]!, Y[last]!) : 1 / Math.max(1e-12, Math.sqrt(dot(g, g)));
    for (let i = 0; i < n; i++) d[i]! *= gamma;
    for (let k = 0; k < stored; k++) {
      const j = slot(k);
      const beta = rho[j]! * dot(Y[j]!, d);
      const sj = S[j]!;
      for (let i = 0; i < n; i++) d[i]! += (alpha[j]! - beta) * sj[i]!;
    }
    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      stored = 0;
      for (let i = 0; i < n; i++) d[i] = -g[i]!;
      slope = dot(g, d);
    }
    // Backtracking line search with the Armijo condition.
    let step = 1;
    let fn = Infinity;
    for (let tries = 0; tries < 50; tries++) {
      for (let i = 0; i < n; i++) xn[i] = x[i]! + step * d[i]!;
      fn = fg(xn, gn);
      if (fn <= f + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(fn <= f)) break; // no progress is possible at this precision
    const s = S[head]!;
    const y = Y[head]!;
    for (let i = 0; i < n; i++) {
      s[i] = xn[i]! - x[i]!;
      y[i] = gn[i]! - g[i]!;
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      rho[head] = 1 / sy;
      head = (head + 1) % m;
      stored = Math.min(stored + 1, m);
    }
    const done = Math.abs(f - fn) <= 1e-14 * Math.max(1, Math.abs(f));
    [x, xn] = [xn, x];
    [g, gn] = [gn, g];
    f = fn;
    if (done) break;
  }
  return { x, f, iterations: it };
}

/** A fitted multinomial logistic regression: W [cols, K] row-major, then K intercepts. */
export interface LogisticModel {
  classes: number;
  cols: number;
  coef: Float64Array;
  intercept: Float64Array;
}

/** Row scores X·W + b, [rows, K]. */
function scores(X: Csr, coef: Float64Array, intercept: Float64Array, K: number): Float64Array {
  const z = new Float64Array(X.rows * K);
  for (let i = 0; i < X.rows; i++) {
    const zi = i * K;
    for (let k = 0; k < K; k++) z[zi + k] = intercept[k]!;
    for (let p = X.indptr[i]!; p < X.indptr[i + 1]!; p++) {
      const v = X.values[p]!;
      const w = X.indices[p]! * K;
      for (let k = 0; k < K; k++) z[zi + k]! += v * coef[w + k]!;
    }
  }
  return z;
}

export function fitLogistic(X: Csr, y: ArrayLike<number>, K: number, C: number, o: LbfgsOptions & { init?: LogisticModel } = {}): LogisticModel {
  if (X.rows !== y.length) throw new EgmfError(`${X.rows} feature rows but ${y.length} labels`, { key: 'label' });
  if (!(C > 0)) throw new EgmfError(`must be > 0, got ${C}`, { key: 'C' });
  const n = X.rows;
  const F = X.cols;
  const nW = F * K;
  const reg = 1 / (C * n);
  const fg = (x: Float64Array, g: Float64Array): number => {
    const coef = x.subarray(0, nW);
    const b = x.subarray(nW);
    const z = scores(X, coef, b, K);
    g.fill(0);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const zi = i * K;
      let mx = -Infinity;
      for (let k = 0; k < K; k++) mx = Math.max(mx, z[zi + k]!);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(z[zi + k]! - mx);
      const lse = mx + Math.log(sum);
      const yi = y[i]!;
      loss += lse - z[zi + yi]!;
      // z becomes the residual p − onehot(y), divided by n.
      for (let k = 0; k < K; k++) z[zi + k] = (Math.exp(z[zi + k]! - lse) - (k === yi ? 1 : 0)) / n;
      for (let k = 0; k < K; k++) g[nW + k]! += z[zi + k]!;
      for (let p = X.indptr[i]!; p < X.indptr[i + 1]!; p++) {
        const v = X.values[p]!;
        const w = X.indices[p]! * K;
        for (let k = 0; k < K; k++) g[w + k]! += v * z[zi + k]!;
      }
    }
    let sq = 0;
    for (let j = 0; j < nW; j++) {
      sq += x[j]! * x[j]!;
      g[j]! += reg * x[j]!;
    }
    return loss / n + 0.5 * reg * sq;
  };
  // A warm start (the fit at a neighbouring C) only changes where the search begins: the
  // objective is strictly convex, so the optimum is the same.
  const x0 = new Float64Array(nW + K);
  if (o.init !== undefined && o.init.cols === F && o.init.classes === K) {
    x0.set(o.init.coef);
    x0.set(o.init.intercept, nW);
  }
  const { x } = lbfgs(fg, x0, o);
  return { classes: K, cols: F, coef: x.slice(0, nW), intercept: x.slice(nW) };
}

/** Class probabilities [rows, K]. */
export function predictProba(m: LogisticModel, X: Csr): Float64Array {
  const K = m.classes;
  const z = scores(X, m.coef, m.intercept, K);
  for (let i = 0; i < X.rows; i++) {
    const zi = i * K;
    let mx = -Infinity;
    for (let k = 0; k < K; k++) mx = Math.max(mx, z[zi + k]!);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += (z[zi + k] = Math.exp(z[zi + k]! - mx));
    for (let k = 0; k < K; k++) z[zi + k]! /= sum;
  }
  return z;
}

/** The most probable class per row (the first on ties, as numpy's argmax). */
export function predictClass(m: LogisticModel, X: Csr): Int32Array {
  const z = scores(X, m.coef, m.intercept, m.classes);
  const out = new Int32Array(X.rows);
  for (let i = 0; i < X.rows; i++) {
    let best = 0;
    for (let k = 1; k < m.classes; k++) if (z[i * m.classes + k]! > z[i * m.classes + best]!) best = k;
    out[i] = best;
  }
  return out;
}

export interface RidgeModel {
  coef: Float64Array;
  intercept: number;
}

export function fitRidge(X: Csr, y: ArrayLike<number>, alpha: number, o: LbfgsOptions & { init?: RidgeModel } = {}): RidgeModel {
  if (X.rows !== y.length) throw new EgmfError(`${X.rows} feature rows but ${y.length} labels`, { key: 'label' });
  if (!(alpha > 0)) throw new EgmfError(`must be > 0, got ${alpha}`, { key: 'alpha' });
  const n = X.rows;
  const F = X.cols;
  const fg = (x: Float64Array, g: Float64Array): number => {
    const z = scores(X, x.subarray(0, F), x.subarray(F), 1);
    g.fill(0);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const r = z[i]! - y[i]!;
      loss += r * r;
      g[F]! += r / n;
      for (let p = X.indptr[i]!; p < X.indptr[i + 1]!; p++) g[X.indices[p]!]! += (X.values[p]! * r) / n;
    }
    let sq = 0;
    for (let j = 0; j < F; j++) {
      sq += x[j]! * x[j]!;
      g[j]! += (alpha / n) * x[j]!;
    }
    return (loss + alpha * sq) / (2 * n);
  };
  const x0 = new Float64Array(F + 1);
  if (o.init !== undefined && o.init.coef.length === F) {
    x0.set(o.init.coef);
    x0[F] = o.init.intercept;
  }
  const { x } = lbfgs(fg, x0, { gradTol: 1e-9, ...o });
  return { coef: x.slice(0, F), intercept: x[F]! };
}

export function predictRidge(m: RidgeModel, X: Csr): Float64Array {
  return scores(X, m.coef, Float64Array.of(m.intercept), 1);
}
