/**
 * Fused kernels of the wasm, cpu and tensorflow backends, forward and backward: each is one tfjs
 * kernel dispatch that runs the backend's own kernels the unfused block of `ops.ts` runs, in
 * the same order and with the same fast paths (on wasm plain 2-D products and column sums as
 * ones · t), so values are the same bit for bit and a captured tensorflow graph computes the
 * same (see `composite.ts`). What is saved is tfjs-core's bookkeeping for each kernel and
 * each tape node (engine scopes, tape, tensor tracking, profiling), and the reshapes and
 * casts autograd adds around them: a tiny-EGMF training step went from 2,979 to 794 kernels
 * on wasm, 2,637 to 794 on cpu and 2,131 to 794 on tensorflow without its captured graph.
 *
 *  - `EgmfLinear` {x, w, b?}: x [..., in] · w [in, out] (+ b), reshaped around a 2-D product
 *    (attr trainable: w and b are trainable variables); its gradient is one kernel per input
 *    that needs one (`EgmfLinearGradX` {dy, w}, `EgmfLinearGradW` {dy, x}, `EgmfLinearGradB`
 *    {dy}), or `EgmfLinearGradWB` {dy, x} → [dw, db] for a trainable weight and bias;
 *  - `EgmfRmsNormParts` {x, w?} (attr eps) → [y, r, u], `EgmfLayerNormParts` {x, gamma,
 *    beta} (eps) → [y, r, x̂], `EgmfGeluParts` {x} (a, c) → [y, x², s]: the forward passes of
 *    `ops.ts`'s custom ops with the tensors their gradients read, and those gradients
 *    `EgmfLayerNormGrad` {dy, r, xh, gamma} → [dx, dγ, dβ], `EgmfRmsNormGrad` {dy, r, u, w?}
 *    (attr weightGrad) → [dx, dw?], `EgmfGeluGrad` {dy, x, x2, s} → dx;
 *  - `EgmfRope` {x, cos, sin, r} and `EgmfRopeGrad` {dy, cos, sin, r};
 *  - `EgmfAttention` {q, k, v, bias?} (attrs heads, kvHeads, split, merge) → [out, q', k', v',
 *    p] and `EgmfAttentionGrad` {dy, q', k', v', p} → [dq, dk, dv]: scaled dot-product
 *    attention with grouped key/value heads as `ops.ts`'s `attention`, with the heads split
 *    from [B, T, w] inputs (`split`) and merged back (`merge`) inside;
 *  - `EgmfUnfold` {x} (attrs kernel, dilation, left, right): a 1-D convolution's frames
 *    [B, T', K·C] as pad, K slices and a concat; its gradient as autograd's (the frames'
 *    gradients padded and summed last to first, then the padding cut);
 *  - `EgmfSwiGluParts` {g, u} → [silu(g)·u, σ(g), silu(g)] and `EgmfSwiGluGrad`
 *    {dy, g, u, s, sg} → [dg, du];
 *  - `EgmfLoraParts` {y, x, a, b, mask?} (attr scale) → [y + scale·(x·mask)·A·B, x·mask, x·A]
 *    and `EgmfLoraGrad` {dy, xi, h, a, b, mask?} → [dy, dx, dA, dB]: a LoRA adapter on a
 *    projection's output, dropout included;
 *  - the masked pooling and padding of `egmf/layers.ts`, each with its gradient:
 *    `EgmfMaskedMean` {x, mask}, `EgmfMaskedMax` {x, mask}, `EgmfMaskRows` {x, mask} (x with
 *    its padded frames zeroed; its own gradient) and `EgmfKeyBias` {mask} (no gradient: a
 *    mask is data);
 *  - `EgmfSoftmaxGrad` {dy, y} (attr dim), `EgmfMulGrad` {dy, other} (attr shape) and
 *    `EgmfAddGrad` {dy} (attrs a, b: the inputs' shapes; negate) → [da, db]: the gradients of
 *    tfjs's Softmax, Multiply, and Add and Sub (`installFusedGradients` registers them for
 *    every backend; they use these kernels where the backend has them).
 *
 * Tried and dropped before these: norms as JS row loops on the wasm heap (slower: a JS pass
 * costs ~1.5 ns an element). These run wasm's and TensorFlow's own kernels instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { defineComposite, hasKernel, type KernelScope } from './composite.ts';
import { MASK_NEG } from './mask.ts';

export const FUSED_LINEAR = 'EgmfLinear';
export const FUSED_RMS_NORM = 'EgmfRmsNormParts';
export const FUSED_LAYER_NORM = 'EgmfLayerNormParts';
export const FUSED_GELU = 'EgmfGeluParts';
export const LINEAR_GRAD_X = 'EgmfLinearGradX';
export const LINEAR_GRAD_W = 'EgmfLinearGradW';
export const LINEAR_GRAD_B = 'EgmfLinearGradB';
export const LINEAR_GRAD_WB = 'EgmfLinearGradWB';
export const LAYER_NORM_GRAD = 'EgmfLayerNormGrad';
export const RMS_NORM_GRAD = 'EgmfRmsNormGrad';
export const GELU_GRAD = 'EgmfGeluGrad';
export const ROPE = 'EgmfRope';
export const ROPE_GRAD = 'EgmfRopeGrad';
export const SOFTMAX_GRAD = 'EgmfSoftmaxGrad';
export const MUL_GRAD = 'EgmfMulGrad';
export const ADD_GRAD = 'EgmfAddGrad';
export const ATTENTION = 'EgmfAttention';
export const ATTENTION_GRAD = 'EgmfAttentionGrad';
export const UNFOLD = 'EgmfUnfold';
const UNFOLD_GRAD = 'EgmfUnfoldGrad';
export const SWIGLU = 'EgmfSwiGluParts';
export const SWIGLU_GRAD = 'EgmfSwiGluGrad';
export const LORA = 'EgmfLoraParts';
export const LORA_GRAD = 'EgmfLoraGrad';
export const MASKED_MEAN = 'EgmfMaskedMean';
export const MASKED_MAX = 'EgmfMaskedMax';
export const MASK_ROWS = 'EgmfMaskRows';
export const KEY_BIAS = 'EgmfKeyBias';
const MASKED_MEAN_GRAD = 'EgmfMaskedMeanGrad';
const MASKED_MAX_GRAD = 'EgmfMaskedMaxGrad';


/** [..., d] → [N, d]; a 2-D tensor as it is. */
function rows(k: KernelScope, t: TensorInfo): TensorInfo {
  const d = t.shape[t.shape.length - 1]!;
  return t.shape.length === 2 ? t : k.reshape(t, [-1, d]);
}

/**
 * Σ over the rows of t [..., d] → [d]: on wasm as ones [1, N] · t, one XNNPACK call (a
 * reduction over the first axis took 47-73 µs there against 16-28 µs for the product);
 * elsewhere a sum over the first axis, as autograd's.
 */
function columnSum(k: KernelScope, t: TensorInfo): TensorInfo {
  const t2 = rows(k, t);
  if (k.backendName !== 'wasm') return k.sum(t2, 0);
  return k.reshape(k.matMul(k.ones([1, t2.shape[0]!]), t2), [t2.shape[1]!]);
}

/** x [..., in] · w [in, out] (+ b) → [..., out]. */
function linearForward(k: KernelScope, x: TensorInfo, w: TensorInfo, b?: TensorInfo): TensorInfo {
  let y = k.matMul(rows(k, x), w);
  if (b !== undefined) y = k.add(y, b);
  return x.shape.length === 2 ? y : k.reshape(y, [...x.shape.slice(0, -1), w.shape[1]!]);
}

/** x·cos + (x [N, d] · R)·sin. */
function ropeForward(k: KernelScope, x: TensorInfo, cos: TensorInfo, sin: TensorInfo, r: TensorInfo): TensorInfo {
  const rotated = k.reshape(k.matMul(rows(k, x), r), x.shape);
  return k.add(k.mul(x, cos), k.mul(rotated, sin));
}

const registered = new Set<string>();
let gradientsRegistered = false;

/**
 * Registers the fused kernels on `backend` ('wasm', 'cpu' or 'tensorflow'); idempotent. Call once
 * the backend's own kernels (and the kernel fixes) are registered.
 */
export function registerFusedKernels(backend: string): void {
  if (registered.has(backend)) return;
  registered.add(backend);
  const backends = [backend];
  if (!gradientsRegistered) {
    gradientsRegistered = true;
    registerFusedGradients();
  }
  registerMaskKernels(backends, MASK_NEG);
  registerAttentionKernels(backends);
  registerUnfoldKernels(backends);
  registerLoraKernels(backends);
  registerSwiGluKernels(backends);

  defineComposite(FUSED_LINEAR, backends, (k, { x, w, b }) => linearForward(k, x!, w!, b));
  defineComposite(LINEAR_GRAD_X, backends, (k, { dy, w }) => {
    const dx = k.matMul(rows(k, dy!), w!, false, true);
    return dy!.shape.length === 2 ? dx : k.reshape(dx, [...dy!.shape.slice(0, -1), w!.shape[0]!]);
  });
  defineComposite(LINEAR_GRAD_W, backends, (k, { dy, x }) => k.matMul(rows(k, x!), rows(k, dy!), true, false));
  defineComposite(LINEAR_GRAD_B, backends, (k, { dy }) => columnSum(k, dy!));
  defineComposite(LINEAR_GRAD_WB, backends, (k, { dy, x }) => [k.matMul(rows(k, x!), rows(k, dy!), true, false), columnSum(k, dy!)]);

  defineComposite(FUSED_LAYER_NORM, backends, (k, { x, gamma, beta }, attrs) => {
    const centred = k.sub(x!, k.meanLast(x!));
    const r = k.rsqrt(k.add(k.meanLast(k.square(centred)), k.scalar((attrs as { eps: number }).eps)));
    const xh = k.mul(centred, r);
    return [k.add(k.mul(xh, gamma!), beta!), r, xh];
  });
  defineComposite(LAYER_NORM_GRAD, backends, (k, { dy, r, xh, gamma }) => {
    const g = k.mul(dy!, gamma!);
    const dx = k.mul(r!, k.sub(k.sub(g, k.meanLast(g)), k.mul(xh!, k.meanLast(k.mul(g, xh!)))));
    return [dx, columnSum(k, k.mul(dy!, xh!)), columnSum(k, dy!)];
  });

  defineComposite(FUSED_RMS_NORM, backends, (k, { x, w }, attrs) => {
    const r = k.rsqrt(k.add(k.meanLast(k.square(x!)), k.scalar((attrs as { eps: number }).eps)));
    const u = k.mul(x!, r);
    return [w === undefined ? k.reshape(u, u.shape) : k.mul(u, w), r, u];
  });
  defineComposite(RMS_NORM_GRAD, backends, (k, { dy, r, u, w }, attrs) => {
    const g = w === undefined ? dy! : k.mul(dy!, w);
    const dx = k.mul(r!, k.sub(g, k.mul(u!, k.meanLast(k.mul(g, u!)))));
    if (!(attrs as { weightGrad?: boolean }).weightGrad || w === undefined) return [dx];
    return [dx, k.reshape(columnSum(k, k.mul(dy!, u!)), w.shape)];
  });

  defineComposite(FUSED_GELU, backends, (k, { x }, attrs) => {
    const { a, c } = attrs as { a: number; c: number };
    const x2 = k.square(x!);
    const s = k.sigmoid(k.mul(k.mul(x!, k.add(k.mul(x2, k.scalar(a)), k.scalar(1))), k.scalar(c)));
    return [k.mul(x!, s), x2, s];
  });
  defineComposite(GELU_GRAD, backends, (k, { dy, x, x2, s }, attrs) => {
    const { a, c } = attrs as { a: number; c: number };
    // s + x·s·(1 − s)·c·(1 + 3a·x²) = s·(1 + (1 − s)·x·c·(1 + 3a·x²))
    const slope = k.mul(k.mul(x!, k.add(k.mul(x2!, k.scalar(3 * a * c)), k.scalar(c))), k.sub(k.scalar(1), s!));
    return k.mul(dy!, k.mul(s!, k.add(slope, k.scalar(1))));
  });

  defineComposite(ROPE, backends, (k, { x, cos, sin, r }) => ropeForward(k, x!, cos!, sin!, r!));
  // dx = dy·cos + (dy·sin)·Rᵀ = dy·cos − (dy·sin)·R
  defineComposite(ROPE_GRAD, backends, (k, { dy, cos, sin, r }) => {
    const ds = k.mul(dy!, sin!);
    return k.sub(k.mul(dy!, cos!), k.reshape(k.matMul(rows(k, ds), r!), ds.shape));
  });

  // tfjs's Softmax gradient: dy·y − Σ(dy·y)·y over `dim`.
  defineComposite(SOFTMAX_GRAD, backends, (k, { dy, y }, attrs) => {
    const dyy = k.mul(dy!, y!);
    return k.sub(dyy, k.mul(k.sum(dyy, [(attrs as { dim: number }).dim], true), y!));
  });
  // tfjs's Add and Sub gradients: dy summed over each input's broadcast axes (negated for Sub's b).
  defineComposite(ADD_GRAD, backends, (k, { dy }, attrs) => {
    const { a, b, negate } = attrs as unknown as { a: number[]; b: number[]; negate: boolean };
    const part = (shape: number[], neg: boolean) => {
      const axes = broadcastAxes(shape, dy!.shape);
      const res = axes.length === 0 ? dy! : k.sum(dy!, axes);
      return k.reshape(neg ? k.run('Neg', { x: res }) : res, shape);
    };
    return [part(a, false), part(b, negate)];
  });
  // tfjs's Multiply gradient for one float32 input: dy · other, summed over its broadcast axes.
  defineComposite(MUL_GRAD, backends, (k, { dy, other }, attrs) => {
    const shape = (attrs as { shape: number[] }).shape;
    const res = k.mul(dy!, other!);
    const axes = broadcastAxes(shape, res.shape);
    return axes.length === 0 ? res : k.reshape(k.sum(res, axes), shape);
  });
}

interface AttentionAttrs {
  heads: number;
  kvHeads: number;
  /** Inputs are [B, T, w] (split into heads here), not [B, H, T, d]. */
  split: boolean;
  /** The output is [B, T, H·d] (heads merged here), not [B, H, T, d]. */
  merge: boolean;
}

const HEADS_PERM = [0, 2, 1, 3];

/** [B, T, n·d] → [B, n, T, d]. */
function splitHeads(k: KernelScope, x: TensorInfo, n: number): TensorInfo {
  const [b, t, w] = x.shape as [number, number, number];
  return k.transpose(k.reshape(x, [b, t, n, w / n]), HEADS_PERM);
}

/** [B, n, T, d] → [B, T, n·d]. */
function mergeHeads(k: KernelScope, x: TensorInfo): TensorInfo {
  const [b, n, t, d] = x.shape as [number, number, number, number];
  return k.reshape(k.transpose(x, HEADS_PERM), [b, t, n * d]);
}

function registerAttentionKernels(backends: readonly string[]): void {
  // ops.ts's attention: query heads of a group folded into the time axis, bias repeated.
  defineComposite(ATTENTION, backends, (k, { q, k: key, v, bias }, attrs) => {
    const a = attrs as unknown as AttentionAttrs;
    const q4 = a.split ? splitHeads(k, q!, a.heads) : q!;
    const k4 = a.split ? splitHeads(k, key!, a.kvHeads) : key!;
    const v4 = a.split ? splitHeads(k, v!, a.kvHeads) : v!;
    const [b, h, t, d] = q4.shape as [number, number, number, number];
    const g = h / a.kvHeads;
    const qg = g === 1 ? q4 : k.reshape(q4, [b, a.kvHeads, g * t, d]);
    let scores = k.mul(k.matMul(qg, k4, false, true), k.scalar(1 / Math.sqrt(d)));
    if (bias !== undefined) scores = k.add(scores, g === 1 ? bias : k.run('Concat', new Array<TensorInfo>(g).fill(bias) as unknown as Record<string, TensorInfo>, { axis: 2 }));
    const p = k.run('Softmax', { logits: scores }, { dim: scores.shape.length - 1 });
    let out = k.matMul(p, v4);
    if (g !== 1) out = k.reshape(out, [b, h, t, d]);
    return [a.merge ? mergeHeads(k, out) : out, qg, k4, v4, p];
  });
  // Autograd's gradient of the same ops, in the same order.
  defineComposite(ATTENTION_GRAD, backends, (k, { dy, qg, k: key, v, p }, attrs) => {
    const a = attrs as unknown as AttentionAttrs;
    const [b, kv, gt, d] = qg!.shape as [number, number, number, number];
    const g = a.heads / a.kvHeads;
    const t = gt / g;
    let dOut = a.merge ? k.transpose(k.reshape(dy!, [b, t, a.heads, d]), HEADS_PERM) : dy!;
    if (g !== 1) dOut = k.reshape(dOut, [b, kv, gt, d]);
    const dP = k.matMul(dOut, v!, false, true);
    const dv = k.matMul(p!, dOut, true, false);
    const dpp = k.mul(dP, p!);
    const dS = k.sub(dpp, k.mul(k.sum(dpp, [dpp.shape.length - 1], true), p!));
    const dQK = k.mul(dS, k.scalar(1 / Math.sqrt(d)));
    let dq = k.matMul(dQK, key!, false, false);
    const dk = k.matMul(dQK, qg!, true, false);
    if (g !== 1) dq = k.reshape(dq, [b, a.heads, t, d]);
    if (!a.split) return [dq, dk, dv];
    return [mergeHeads(k, dq), mergeHeads(k, dk), mergeHeads(k, dv)];
  });
}

interface UnfoldAttrs {
  kernel: number;
  dilation: number;
  left: number;
  right: number;
}

function registerUnfoldKernels(backends: readonly string[]): void {
  defineComposite(UNFOLD, backends, (k, { x }, attrs) => {
    const a = attrs as unknown as UnfoldAttrs;
    const padded = a.left + a.right === 0 ? x! : k.run('PadV2', { x: x! }, { paddings: [[0, 0], [a.left, a.right], [0, 0]], constantValue: 0 });
    const tOut = padded.shape[1]! - (a.kernel - 1) * a.dilation;
    const frames = Array.from({ length: a.kernel }, (_, i) => k.run('Slice', { x: padded }, { begin: [0, i * a.dilation, 0], size: [-1, tOut, -1] }));
    return frames.length === 1 ? frames[0]! : k.run('Concat', frames as unknown as Record<string, TensorInfo>, { axis: 2 });
  });
  defineComposite(UNFOLD_GRAD, backends, (k, { dy }, attrs) => {
    const a = attrs as unknown as UnfoldAttrs;
    const [b, tOut, kc] = dy!.shape as [number, number, number];
    const c = kc / a.kernel;
    const tPadded = tOut + (a.kernel - 1) * a.dilation;
    let acc: TensorInfo | null = null;
    for (let i = a.kernel - 1; i >= 0; i--) {
      const piece = a.kernel === 1 ? dy! : k.run('Slice', { x: dy! }, { begin: [0, 0, i * c], size: [b, tOut, c] });
      const start = i * a.dilation;
      const padded = start === 0 && tPadded === tOut ? piece : k.run('PadV2', { x: piece }, { paddings: [[0, 0], [start, tPadded - start - tOut], [0, 0]], constantValue: 0 });
      acc = acc === null ? padded : k.add(acc, padded);
    }
    if (a.left + a.right === 0) return acc === dy! ? k.reshape(acc, acc.shape) : acc!;
    return k.run('Slice', { x: acc! }, { begin: [0, a.left, 0], size: [b, tPadded - a.left - a.right, c] });
  });
}

function registerSwiGluKernels(backends: readonly string[]): void {
  defineComposite(SWIGLU, backends, (k, { g, u }) => {
    const s = k.sigmoid(g!);
    const sg = k.mul(g!, s);
    return [k.mul(sg, u!), s, sg];
  });
  // Autograd's order: the product's gradients, then g·s's, then the sigmoid's, added to g's.
  defineComposite(SWIGLU_GRAD, backends, (k, { dy, g, u, s, sg }) => {
    const du = k.mul(dy!, sg!);
    const dsg = k.mul(dy!, u!);
    const dg1 = k.mul(dsg, s!);
    const ds = k.mul(dsg, g!);
    const dg2 = k.mul(ds, k.mul(s!, k.sub(k.scalar(1), s!)));
    return [k.add(dg1, dg2), du];
  });
}

function registerLoraKernels(backends: readonly string[]): void {
  defineComposite(LORA, backends, (k, { y, x, a, b, mask }, attrs) => {
    const xi = mask === undefined ? k.reshape(x!, x!.shape) : k.mul(x!, mask);
    const h = linearForward(k, xi, a!);
    return [k.add(y!, k.mul(linearForward(k, h, b!), k.scalar((attrs as { scale: number }).scale))), xi, h];
  });
  // Autograd's gradient of the same ops: the output's gradient passes to y unchanged.
  defineComposite(LORA_GRAD, backends, (k, { dy, xi, h, a, b, mask }, attrs) => {
    const dDelta = k.mul(dy!, k.scalar((attrs as { scale: number }).scale));
    const linearGradX = (g: TensorInfo, w: TensorInfo) => k.reshape(k.matMul(rows(k, g), w, false, true), [...g.shape.slice(0, -1), w.shape[0]!]);
    const dh = linearGradX(dDelta, b!);
    const dB = k.matMul(rows(k, h!), rows(k, dDelta), true, false);
    const dxi = linearGradX(dh, a!);
    const dA = k.matMul(rows(k, xi!), rows(k, dh), true, false);
    return [k.reshape(dy!, dy!.shape), mask === undefined ? dxi : k.mul(dxi, mask), dA, dB];
  });
}

/** mask [B, L] → m [B, L, 1] and the real frames' count max(Σm, 1) [B, 1]. */
function frames(k: KernelScope, mask: TensorInfo): { m: TensorInfo; count: TensorInfo } {
  const m = k.reshape(mask, [...mask.shape, 1]);
  return { m, count: k.run('Maximum', { a: k.sum(m, 1), b: k.scalar(1) }) };
}

/** x + (1 − m)·MASK_NEG: padded frames pushed far below any real one. */
function maskedForMax(k: KernelScope, x: TensorInfo, m: TensorInfo, neg: number): TensorInfo {
  return k.add(x, k.mul(k.sub(k.scalar(1), m), k.scalar(neg)));
}

/** Registers the masked pooling kernels; `neg` is the additive mask value (ops.ts's MASK_NEG). */
function registerMaskKernels(backends: readonly string[], neg: number): void {
  // Σ x·m over frames / count; its gradient (dy / count) · m, as autograd's (× ones is exact).
  defineComposite(MASKED_MEAN, backends, (k, { x, mask }) => {
    const { m, count } = frames(k, mask!);
    return k.run('RealDiv', { a: k.sum(k.mul(x!, m), 1), b: count });
  });
  defineComposite(MASKED_MEAN_GRAD, backends, (k, { dy, mask }) => {
    const { m, count } = frames(k, mask!);
    const g = k.run('RealDiv', { a: dy!, b: count });
    return k.mul(k.reshape(g, [g.shape[0]!, 1, g.shape[1]!]), m);
  });
  // max over frames of x + (1 − m)·NEG, times min(Σm, 1); the gradient goes to the maxima.
  defineComposite(MASKED_MAX, backends, (k, { x, mask }) => {
    const m = k.reshape(mask!, [...mask!.shape, 1]);
    const pooled = k.run('Max', { x: maskedForMax(k, x!, m, neg) }, { reductionIndices: 1, keepDims: false });
    return k.mul(pooled, k.run('Minimum', { a: k.sum(m, 1), b: k.scalar(1) }));
  });
  defineComposite(MASKED_MAX_GRAD, backends, (k, { dy, x, mask }) => {
    const m = k.reshape(mask!, [...mask!.shape, 1]);
    const xm = maskedForMax(k, x!, m, neg);
    const pooled = k.run('Max', { x: xm }, { reductionIndices: 1, keepDims: false });
    const g = k.mul(dy!, k.run('Minimum', { a: k.sum(m, 1), b: k.scalar(1) }));
    const [b, w] = g.shape as [number, number];
    const hit = k.run('Cast', { x: k.run('Equal', { a: xm, b: k.reshape(pooled, [b, 1, w]) }) }, { dtype: 'float32' });
    return k.mul(k.reshape(g, [b, 1, w]), hit);
  });
  defineComposite(MASK_ROWS, backends, (k, { x, mask }) => k.mul(x!, k.reshape(mask!, [...mask!.shape, 1])));
  defineComposite(KEY_BIAS, backends, (k, { mask }) => {
    const [b, s] = mask!.shape as [number, number];
    return k.reshape(k.mul(k.sub(k.scalar(1), mask!), k.scalar(neg)), [b, 1, 1, s]);
  });
}

/** The gradients of the fused kernels that are registered kernels (not custom ops). */
function registerFusedGradients(): void {
  const noMaskGrad = () => {
    throw new Error('a mask takes no gradient');
  };
  tf.registerGradient({
    gradFunc: (dy, _saved, attrs) => ({ x: () => tf.engine().runKernel(UNFOLD_GRAD, { dy: dy as tf.Tensor }, attrs) as tf.Tensor }),
    kernelName: UNFOLD,
  });
  tf.registerGradient({
    kernelName: MASKED_MEAN,
    inputsToSave: ['mask'],
    gradFunc: (dy, saved) => ({ x: () => tf.engine().runKernel(MASKED_MEAN_GRAD, { dy: dy as tf.Tensor, mask: saved[0]! }, {}) as tf.Tensor, mask: noMaskGrad }),
  });
  tf.registerGradient({
    kernelName: MASKED_MAX,
    inputsToSave: ['x', 'mask'],
    gradFunc: (dy, saved) => ({ x: () => tf.engine().runKernel(MASKED_MAX_GRAD, { dy: dy as tf.Tensor, x: saved[0]!, mask: saved[1]! }, {}) as tf.Tensor, mask: noMaskGrad }),
  });
  tf.registerGradient({
    kernelName: MASK_ROWS,
    inputsToSave: ['mask'],
    gradFunc: (dy, saved) => ({ x: () => tf.engine().runKernel(MASK_ROWS, { x: dy as tf.Tensor, mask: saved[0]! }, {}) as tf.Tensor, mask: noMaskGrad }),
  });
}

/** The axes of `out` along which an input of `shape` was broadcast (tfjs's getReductionAxes). */
export function broadcastAxes(shape: number[], out: number[]): number[] {
  const axes: number[] = [];
  for (let i = 0; i < out.length; i++) {
    const dim = shape[shape.length - out.length + i];
    if (dim === undefined || (dim === 1 && out[i]! > 1)) axes.push(i);
  }
  return axes;
}

/** The gradient functions installed here (tfjs-node's import registers tfjs's own again). */
const ours = new WeakSet<object>();

/**
 * Softmax's, Multiply's, Add's and Sub's gradients through the fused kernels where the
 * backend has them; elsewhere tfjs-core's own, unchanged. Idempotent; call after
 * `ensureGradients`, and again after loading a package that registers tfjs's gradients.
 */
export function installFusedGradients(): void {
  if (ours.has(tf.getGradient('Multiply')?.gradFunc ?? {})) return;
  const softmax = tf.getGradient('Softmax');
  const mul = tf.getGradient('Multiply');
  const add = tf.getGradient('Add');
  const sub = tf.getGradient('Sub');
  if (softmax === undefined || mul === undefined || add === undefined || sub === undefined) throw new Error('tfjs-core gradients are not registered yet');
  const register = (config: tf.GradConfig) => {
    ours.add(config.gradFunc);
    tf.registerGradient(config);
  };
  register({
    ...softmax,
    gradFunc: (dy, saved, attrs) => {
      if (!hasKernel(SOFTMAX_GRAD)) return softmax.gradFunc(dy, saved, attrs);
      return { logits: () => tf.engine().runKernel(SOFTMAX_GRAD, { dy: dy as tf.Tensor, y: saved[0]! }, attrs) as tf.Tensor };
    },
  });
  register({
    ...mul,
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as [tf.Tensor, tf.Tensor];
      if (!hasKernel(MUL_GRAD) || a.dtype !== 'float32' || b.dtype !== 'float32') return mul.gradFunc(dy, saved, attrs);
      const g = dy as tf.Tensor;
      const part = (other: tf.Tensor, shape: number[]) => () => tf.engine().runKernel(MUL_GRAD, { dy: g, other }, { shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return { a: part(b, a.shape), b: part(a, b.shape) };
    },
  });
  // Both inputs' gradients in one kernel, made here (not in a thunk) so that the backward
  // pass's scope frees one the tape pruned.
  for (const [config, negate] of [[add, false], [sub, true]] as const) {
    register({
      ...config,
      gradFunc: (dy, saved, attrs) => {
        const [a, b] = saved as [tf.Tensor, tf.Tensor];
        const g = dy as tf.Tensor;
        if (!hasKernel(ADD_GRAD) || g.dtype !== 'float32') return config.gradFunc(dy, saved, attrs);
        const [da, db] = tf.engine().runKernel(ADD_GRAD, { dy: g }, { a: a.shape, b: b.shape, negate } as unknown as tf.NamedAttrMap) as [tf.Tensor, tf.Tensor];
        return { a: () => da, b: () => db };
      },
    });
  }
}
