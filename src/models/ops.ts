/**
 * Differentiable building blocks for all model code, fast on wasm and correct everywhere.
 *
 * Why these shapes of code (measured, /work/shared/notes/tfjs-wasm.md):
 *  - wasm's XNNPACK path serves only plain 2-D, non-transposed matMuls; autograd's matMul
 *    gradients are transposed products (6-60x slower). `linear` therefore reshapes to 2-D
 *    and, on wasm, uses a custom gradient of plain products with explicit transposes. On
 *    the pure-JS cpu backend the same trick is slower, so it is used on wasm only.
 *  - embeddings use `gather` (its gradient is the native UnsortedSegmentSum kernel that
 *    `initBackend` registers), never oneHot·matMul;
 *  - GELU uses the sigmoid form (tanh is 20x slower on wasm);
 *  - cross-entropy has a closed-form gradient (p - y) / N.
 * Never chain tensor methods (`x.reshape`): tfjs-core alone does not register them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FUSED_GELU, FUSED_LAYER_NORM, FUSED_LINEAR, FUSED_RMS_NORM, SWIGLU, SWIGLU_GRAD, LORA, LORA_GRAD, UNFOLD, ATTENTION, ATTENTION_GRAD, GELU_GRAD, LAYER_NORM_GRAD, LINEAR_GRAD_B, LINEAR_GRAD_WB, LINEAR_GRAD_W, LINEAR_GRAD_X, RMS_NORM_GRAD, ROPE, ROPE_GRAD } from './backend/fused.ts';
import { hasKernel } from './backend/composite.ts';
import { MASK_NEG } from './backend/mask.ts';

/** Large negative additive bias for masked attention logits (finite: avoids NaN rows). */
export { MASK_NEG };

/**
 * Dropout of x at `rate` with a mask drawn from `seed`: x · m, m = 1 / (1 − rate) where an
 * element is kept (probability 1 − rate, in steps of 2⁻²⁴) and 0 elsewhere. The mask is made
 * on the host from a counter-based generator: element i's 24 bits are murmur3's 32-bit
 * finaliser of (i·φ) xor a key that is the finaliser of the seed, so masks do not depend on
 * the backend and calls with nearby seeds are unrelated. One kernel (the product) where
 * tf.dropout launches five, and ~2.5 ns an element where tfjs's alea stream takes ~8: a
 * tiny-EGMF step draws ~580,000.
 */
export function seededDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (!(rate > 0 && rate < 1)) throw new RangeError(`dropout rate must be in (0, 1), got ${rate}`);
  return tf.mul(x, tf.tensor(dropoutMask(x.size, rate, seed), x.shape, 'float32'));
}

/** The multiplier of `seededDropout`: n values, each 0 or float32(1 / (1 − rate)). */
export function dropoutMask(n: number, rate: number, seed: number): Float32Array {
  const m = new Float32Array(n);
  const bits = new Uint32Array(m.buffer);
  const scale = new Uint32Array(Float32Array.of(1 / (1 - rate)).buffer)[0]!;
  const threshold = Math.round((1 - rate) * 2 ** 24);
  const key = fmix32(Math.imul(seed | 0, 0x9e3779b1) + 0x7f4a7c15);
  for (let i = 0; i < n; i++) {
    let h = Math.imul(i, 0x9e3779b1) ^ key;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
    // All ones where the top 24 bits fall below the threshold (kept), else zero: no branch.
    bits[i] = scale & (((h >>> 8) - threshold) >> 31);
  }
  return m;
}

/** murmur3's 32-bit finaliser: every input bit flips each output bit with probability ~1/2. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function onWasm(): boolean {
  return tf.getBackend() === 'wasm';
}

/** The backend has fused kernel `name` (`backend/fused.ts`: wasm, cpu and tensorflow). */
function fused(name: string): boolean {
  return hasKernel(name);
}

/** Runs a fused kernel with several outputs. */
function fusedParts(name: string, inputs: tf.NamedTensorMap, attrs: Record<string, number>): tf.Tensor[] {
  return tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
}

// The fused linear's gradient: the unfused block's (matMul's and add's gradients through the
// reshapes); with the fused gradients (backend/fused.ts) one kernel for each input that needs
// a gradient (a frozen weight or a data input is pruned from the tape and asks for none).
tf.registerGradient({
  kernelName: FUSED_LINEAR,
  inputsToSave: ['x', 'w'],
  gradFunc: (dy, saved, attrs) => {
    const [x, w] = saved as [tf.Tensor, tf.Tensor2D];
    const g = dy as tf.Tensor;
    if (fused(LINEAR_GRAD_X)) {
      const run = (name: string, inputs: tf.NamedTensorMap) => tf.engine().runKernel(name, inputs, {}) as tf.Tensor;
      const dx = () => run(LINEAR_GRAD_X, { dy: g, w });
      if ((attrs as { trainable?: boolean }).trainable) {
        // A trainable weight and bias: both gradients in one kernel, made here (not in a
        // thunk) so that the backward pass's scope frees them even if the tape pruned them.
        const [dw, db] = tf.engine().runKernel(LINEAR_GRAD_WB, { dy: g, x }, {}) as [tf.Tensor, tf.Tensor];
        return { x: dx, w: () => dw, b: () => db };
      }
      return { x: dx, w: () => run(LINEAR_GRAD_W, { dy: g, x }), b: () => run(LINEAR_GRAD_B, { dy: g }) };
    }
    const dy2 = (g.rank === 2 ? g : tf.reshape(g, [-1, w.shape[1]])) as tf.Tensor2D;
    return {
      x: () => tf.reshape(tf.matMul(dy2, w, false, true), x.shape),
      w: () => tf.matMul((x.rank === 2 ? x : tf.reshape(x, [-1, w.shape[0]])) as tf.Tensor2D, dy2, true, false),
      b: () => tf.sum(dy2, 0),
    };
  },
});

/**
 * A LoRA adapter on a projection's output: y + scale · (dropout(x) · A · B), x [..., in],
 * A [in, r], B [r, out]; `rate` 0 for no dropout (the mask drawn as `seededDropout`'s).
 */
export function loraAdd(y: tf.Tensor, x: tf.Tensor, a: tf.Tensor2D, b: tf.Tensor2D, scale: number, rate: number, seed: number): tf.Tensor {
  if (!fused(LORA)) {
    const xi = rate > 0 ? seededDropout(x, rate, seed) : x;
    return tf.add(y, tf.mul(linear(linear(xi, a), b), scale));
  }
  const mask = rate > 0 ? tf.tensor(dropoutMask(x.size, rate, seed), x.shape, 'float32') : undefined;
  const attrs = { scale } as unknown as tf.NamedAttrMap;
  return tf.customGrad((yi, xi, ai, bi, save) => {
    const inputs: tf.NamedTensorMap = { y: yi as tf.Tensor, x: xi as tf.Tensor, a: ai as tf.Tensor, b: bi as tf.Tensor };
    if (mask !== undefined) inputs['mask'] = mask;
    const [out, dropped, h] = tf.engine().runKernel(LORA, inputs, attrs) as tf.Tensor[];
    (save as tf.GradSaveFunc)(mask === undefined ? [dropped!, h!, ai as tf.Tensor, bi as tf.Tensor] : [dropped!, h!, ai as tf.Tensor, bi as tf.Tensor, mask]);
    return {
      value: out!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const grads: tf.NamedTensorMap = { dy, xi: saved[0]!, h: saved[1]!, a: saved[2]!, b: saved[3]! };
        if (saved[4] !== undefined) grads['mask'] = saved[4];
        return tf.engine().runKernel(LORA_GRAD, grads, attrs) as tf.Tensor[];
      },
    };
  })(y, x, a, b);
}

/** A trainable Variable. */
function isTrainable(t: tf.Tensor): boolean {
  return t instanceof tf.Variable && t.trainable;
}

/** A weight that takes no gradient: a Variable marked non-trainable (e.g. a LoRA base). */
function isFrozen(t: tf.Tensor): boolean {
  return t instanceof tf.Variable && !t.trainable;
}

const plainMatMul = tf.customGrad((a, b, save) => {
  const x = a as tf.Tensor2D;
  const w = b as tf.Tensor2D;
  (save as tf.GradSaveFunc)([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sw)), tf.matMul(tf.transpose(sx), dy as tf.Tensor2D)];
    },
  };
});

/**
 * a [M, K] · w [K, N]; on wasm every product of the backward pass is plain 2-D too.
 * `frozen` (implied for a non-trainable Variable) skips w's gradient.
 */
export function matMul2d(a: tf.Tensor2D, w: tf.Tensor2D, frozen = isFrozen(w)): tf.Tensor2D {
  if (!onWasm()) return tf.matMul(a, w);
  if (fused(FUSED_LINEAR)) return tf.engine().runKernel(FUSED_LINEAR, { x: a, w }, {}) as tf.Tensor2D;
  if (!frozen) return plainMatMul(a, w) as tf.Tensor2D;
  // A frozen weight is not an input of the custom op, so no gradient is computed for it;
  // it is saved because non-variable tensors of the forward scope are gone by backprop.
  return tf.customGrad((x, save) => {
    (save as tf.GradSaveFunc)([w]);
    return {
      value: tf.matMul(x as tf.Tensor2D, w),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.matMul(dy as tf.Tensor2D, tf.transpose(saved[0] as tf.Tensor2D)),
    };
  })(a) as tf.Tensor2D;
}

/**
 * Σ over the rows of t [N, d] → [d]. On wasm as ones [1, N] · t, one XNNPACK call: a
 * reduction over the first axis took 47-73 µs there against 16-28 µs for the product
 * ([768..1360, 32..64], the bias and norm gradients of a tiny-EGMF step).
 */
export function columnSum(t: tf.Tensor2D): tf.Tensor1D {
  if (!onWasm()) return tf.sum(t, 0);
  const [n, d] = t.shape;
  return tf.reshape(tf.matMul(tf.ones([1, n]), t), [d]);
}

/**
 * On wasm: x [N, in] · w + b, with every product of its gradient plain 2-D and the bias
 * gradient a column sum (autograd's gradient of the add reduces over the first axis).
 */
const plainLinear = tf.customGrad((a, wi, bi, save) => {
  const x = a as tf.Tensor2D;
  const w = wi as tf.Tensor2D;
  (save as tf.GradSaveFunc)([x, w]);
  return {
    value: tf.add(tf.matMul(x, w), bi as tf.Tensor1D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      return [tf.matMul(g, tf.transpose(sw)), tf.matMul(tf.transpose(sx), g), columnSum(g)];
    },
  };
});

/** x [..., in] · w [in, out] (+ b [out]) → [..., out]. `frozen`: see matMul2d. */
export function linear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D, frozen?: boolean): tf.Tensor {
  const inDim = x.shape[x.rank - 1]!;
  const outDim = w.shape[1];
  if (w.shape[0] !== inDim) throw new Error(`linear: input width ${inDim} does not match weight [${w.shape.join(', ')}]`);
  if (fused(FUSED_LINEAR)) {
    const trainable = b !== undefined && !(frozen ?? false) && isTrainable(w) && isTrainable(b);
    return tf.engine().runKernel(FUSED_LINEAR, b === undefined ? { x, w } : { x, w, b }, { trainable } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  const x2 = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, inDim]) as tf.Tensor2D; // [N, in]
  const fixed = frozen ?? isFrozen(w);
  let y: tf.Tensor;
  if (b !== undefined && onWasm() && !fixed && !isFrozen(b)) y = plainLinear(x2, w, b);
  else {
    y = matMul2d(x2, w, fixed); // [N, out]
    if (b !== undefined) y = tf.add(y, b);
  }
  return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
}

/** table [V, D] rows for ids of any shape → [...ids.shape, D]. */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  const flat = tf.reshape(ids, [-1]);
  return tf.reshape(tf.gather(table, flat), [...ids.shape, table.shape[1]]);
}

/**
 * GELU, tanh approximation written with a sigmoid: 0.5(1+tanh(z)) = σ(2z). One custom op:
 * with s = σ(c·(x + a·x³)), d/dx = s + x·s·(1 − s)·c·(1 + 3a·x²).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  const a = 0.044715;
  const c = 1.5957691216057308;
  return tf.customGrad((xi, save) => {
    const x0 = xi as tf.Tensor;
    let value: tf.Tensor, x2: tf.Tensor, s: tf.Tensor;
    if (fused(FUSED_GELU)) [value, x2, s] = fusedParts(FUSED_GELU, { x: x0 }, { a, c }) as [tf.Tensor, tf.Tensor, tf.Tensor];
    else {
      x2 = tf.square(x0);
      s = tf.sigmoid(tf.mul(tf.mul(x0, tf.add(tf.mul(x2, a), 1)), c));
      value = tf.mul(x0, s);
    }
    (save as tf.GradSaveFunc)([x0, x2, s]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sx2, ss] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        if (fused(GELU_GRAD)) return tf.engine().runKernel(GELU_GRAD, { dy, x: sx, x2: sx2, s: ss }, { a, c }) as tf.Tensor;
        // s + x·s·(1 − s)·c·(1 + 3a·x²) = s·(1 + (1 − s)·x·c·(1 + 3a·x²))
        const slope = tf.mul(tf.mul(sx, tf.add(tf.mul(sx2, 3 * a * c), c)), tf.sub(1, ss));
        return tf.mul(dy, tf.mul(ss, tf.add(slope, 1)));
      },
    };
  })(x);
}

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** SwiGLU's product silu(g) · u, as one custom op where the backend has it fused. */
export function swiGlu(g: tf.Tensor, u: tf.Tensor): tf.Tensor {
  if (!fused(SWIGLU)) return tf.mul(silu(g), u);
  return tf.customGrad((gi, ui, save) => {
    const [m, s, sg] = tf.engine().runKernel(SWIGLU, { g: gi as tf.Tensor, u: ui as tf.Tensor }, {}) as tf.Tensor[];
    (save as tf.GradSaveFunc)([gi as tf.Tensor, ui as tf.Tensor, s!, sg!]);
    return {
      value: m!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(SWIGLU_GRAD, { dy, g: saved[0]!, u: saved[1]!, s: saved[2]!, sg: saved[3]! }, {}) as tf.Tensor[],
    };
  })(g, u);
}

/**
 * RMSNorm over the last axis (LLaMA/Qwen): x / sqrt(mean(x²) + eps) · w (no w: unit RMS).
 * One custom op with its gradient written out, dx = r·(g − u·mean(g·u)) with u = x·r and
 * g = dy·w, and dw = Σ dy·u: 15 kernels forward and backward where autograd launched ~38
 * (its per-op gradients, reshapes, casts and the clones of every saved tensor); the decoder
 * alone has 5 norms a layer. A frozen w takes no gradient.
 */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor | null, eps: number): tf.Tensor {
  const d = x.shape[x.rank - 1]!;
  const forward = (xi: tf.Tensor, wi: tf.Tensor | null) => {
    if (fused(FUSED_RMS_NORM)) {
      const [y, r, u] = fusedParts(FUSED_RMS_NORM, wi === null ? { x: xi } : { x: xi, w: wi }, { eps }) as [tf.Tensor, tf.Tensor, tf.Tensor];
      return { r, u, y };
    }
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xi), -1, true), eps));
    const u = tf.mul(xi, r);
    return { r, u, y: wi === null ? u : tf.mul(u, wi) };
  };
  const dxOf = (dy: tf.Tensor, r: tf.Tensor, u: tf.Tensor, wi: tf.Tensor | null) => {
    if (fused(RMS_NORM_GRAD)) return (tf.engine().runKernel(RMS_NORM_GRAD, wi === null ? { dy, r, u } : { dy, r, u, w: wi }, {}) as tf.Tensor[])[0]!;
    const g = wi === null ? dy : tf.mul(dy, wi);
    return tf.mul(r, tf.sub(g, tf.mul(u, tf.mean(tf.mul(g, u), -1, true))));
  };
  const dwOf = (dy: tf.Tensor, u: tf.Tensor) => columnSum(tf.reshape(tf.mul(dy, u), [-1, d]) as tf.Tensor2D);
  // A weight that is not one value per feature: autograd of the same formula.
  if (w !== null && w.size !== d) return forward(x, w).y;
  if (w === null || isFrozen(w)) {
    return tf.customGrad((xi, save) => {
      const { r, u, y } = forward(xi as tf.Tensor, w);
      (save as tf.GradSaveFunc)(w === null ? [r, u] : [r, u, w]);
      return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => dxOf(dy, saved[0]!, saved[1]!, w === null ? null : saved[2]!) };
    })(x);
  }
  return tf.customGrad((xi, wi, save) => {
    const { r, u, y } = forward(xi as tf.Tensor, wi as tf.Tensor);
    (save as tf.GradSaveFunc)([r, u, wi as tf.Tensor]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        if (fused(RMS_NORM_GRAD)) return tf.engine().runKernel(RMS_NORM_GRAD, { dy, r: saved[0]!, u: saved[1]!, w: saved[2]! }, { weightGrad: true } as unknown as tf.NamedAttrMap) as tf.Tensor[];
        const dw = dwOf(dy, saved[1]!);
        return [dxOf(dy, saved[0]!, saved[1]!, saved[2]!), tf.reshape(dw, w.shape)];
      },
    };
  })(x, w);
}

/**
 * LayerNorm over the last axis, as one custom op: with x̂ = (x − μ)·r and g = dy·γ,
 * dx = r·(g − mean(g) − x̂·mean(g·x̂)), dγ = Σ dy·x̂, dβ = Σ dy.
 * Tried and dropped: the norm as one JS row-loop kernel each way on the wasm heap (2 kernels
 * instead of ~32). fwd + bwd took 1.3-1.9x longer at [16, 48..86, 32..64]: a JS pass costs
 * ~1.5 ns an element, the wasm SIMD kernels far less, and it won only below ~10k elements.
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps = 1e-5): tf.Tensor {
  const d = x.shape[x.rank - 1]!;
  return tf.customGrad((xi, gi, bi, save) => {
    let value: tf.Tensor, r: tf.Tensor, xh: tf.Tensor;
    if (fused(FUSED_LAYER_NORM)) [value, r, xh] = fusedParts(FUSED_LAYER_NORM, { x: xi as tf.Tensor, gamma: gi as tf.Tensor, beta: bi as tf.Tensor }, { eps }) as [tf.Tensor, tf.Tensor, tf.Tensor];
    else {
      // tf.moments would add a cast, a reshape and a second x − μ: the same values, 3 more kernels.
      const centred = tf.sub(xi as tf.Tensor, tf.mean(xi as tf.Tensor, -1, true));
      r = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), eps));
      xh = tf.mul(centred, r);
      value = tf.add(tf.mul(xh, gi as tf.Tensor), bi as tf.Tensor);
    }
    (save as tf.GradSaveFunc)([r, xh, gi as tf.Tensor]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sr, sxh, sg] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        if (fused(LAYER_NORM_GRAD)) return tf.engine().runKernel(LAYER_NORM_GRAD, { dy, r: sr, xh: sxh, gamma: sg }, {}) as tf.Tensor[];
        const g = tf.mul(dy, sg);
        const dx = tf.mul(sr, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(sxh, tf.mean(tf.mul(g, sxh), -1, true))));
        const rows = (t: tf.Tensor) => columnSum(tf.reshape(t, [-1, d]) as tf.Tensor2D);
        return [dx, rows(tf.mul(dy, sxh)), rows(dy)];
      },
    };
  })(x, gamma, beta);
}

/**
 * Mean cross-entropy over the rows whose mask is non-zero.
 * logits [..., C]; targets [...] class indices (anything where the mask is 0, e.g. -100);
 * mask [...] of 0/1 (default all ones). Gradient (softmax - onehot) · mask / Σmask.
 */
export function softmaxCrossEntropy(logits: tf.Tensor, targets: tf.Tensor | ArrayLike<number>, mask?: tf.Tensor | ArrayLike<number>): tf.Scalar {
  const c = logits.shape[logits.rank - 1]!;
  const lg = tf.reshape(logits, [-1, c]) as tf.Tensor2D; // [N, C]
  const n = lg.shape[0];
  const t = targets instanceof tf.Tensor ? tf.reshape(tf.cast(targets, 'int32'), [-1]) : tf.tensor1d(Int32Array.from(targets as ArrayLike<number>), 'int32');
  const m = mask === undefined ? tf.ones([n]) : mask instanceof tf.Tensor ? tf.reshape(tf.cast(mask, 'float32'), [-1]) : tf.tensor1d(Float32Array.from(mask as ArrayLike<number>));
  if (t.shape[0] !== n || m.shape[0] !== n) throw new Error(`softmaxCrossEntropy: ${n} rows of logits but ${t.shape[0]} targets and ${m.shape[0]} mask values`);
  if (!(targets instanceof tf.Tensor)) {
    const mv = m.dataSync();
    const tv = t.dataSync();
    for (let i = 0; i < n; i++) {
      if (mv[i]! !== 0 && !(tv[i]! >= 0 && tv[i]! < c)) throw new Error(`softmaxCrossEntropy: target ${tv[i]} at row ${i} outside [0, ${c})`);
    }
  }
  const y = tf.oneHot(tf.maximum(t, tf.scalar(0, 'int32')), c, 1, 0, 'float32'); // [N, C]
  const m2 = tf.reshape(m, [n, 1]);
  const denom = tf.maximum(tf.sum(m), 1);
  const f = tf.customGrad((x, save) => {
    const lsm = tf.logSoftmax(x as tf.Tensor2D);
    // Everything the gradient reads is saved: the forward scope is disposed before backprop.
    (save as tf.GradSaveFunc)([lsm, y, m2, denom]);
    const loss = tf.div(tf.neg(tf.sum(tf.mul(tf.mul(y, lsm), m2))), denom) as tf.Scalar;
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sl, sy, sm, sd] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        return tf.mul(tf.div(tf.mul(tf.sub(tf.exp(sl), sy), sm), sd), dy);
      },
    };
  });
  return f(lg) as tf.Scalar;
}

/** [B, T, H·d] → [B, H, T, d] (4-D transposes are cheap on wasm, 5-D ones are not). */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  const [b, t, w] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [b, t, heads, w / heads]), [0, 2, 1, 3]);
}

/** [B, H, T, d] → [B, T, H·d]. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [b, h, t, d] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, t, h * d]);
}

/**
 * Scaled dot-product attention with grouped key/value heads.
 * q [B, H, T, d]; k, v [B, KV, S, d] with H = KV · g; bias additive [B|1, 1, T, S].
 * Query heads of a group are folded into the time axis ([B, KV, g·T, d]) instead of
 * repeating k and v: no copies and only 4-D ops.
 */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias?: tf.Tensor4D): tf.Tensor4D {
  const [b, h, t, d] = q.shape;
  const kv = k.shape[1];
  if (h % kv !== 0) throw new Error(`attention: ${h} query heads not a multiple of ${kv} key/value heads`);
  if (fused(ATTENTION)) return fusedAttention(q, k, v, bias, { heads: h, kvHeads: kv, split: false, merge: false }) as tf.Tensor4D;
  const g = h / kv;
  const qg = g === 1 ? q : tf.reshape(q, [b, kv, g * t, d]);
  let scores = tf.mul(tf.matMul(qg, k, false, true), 1 / Math.sqrt(d)); // [B, KV, g·T, S]
  // g copies along the time axis; tf.concat, since wasm's Tile is ~30x slower (27 ms at [16, 1, 78, 78]).
  if (bias !== undefined) scores = tf.add(scores, g === 1 ? bias : tf.concat(new Array<tf.Tensor4D>(g).fill(bias), 2));
  const out = tf.matMul(tf.softmax(scores), v); // [B, KV, g·T, d]
  return (g === 1 ? out : tf.reshape(out, [b, h, t, d])) as tf.Tensor4D;
}

/**
 * Multi-head attention on unsplit inputs: q [B, T, w], k and v [B, S, w] → [B, T, w], i.e.
 * mergeHeads(attention(splitHeads(q), splitHeads(k), splitHeads(v), bias)).
 */
export function multiHeadAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, bias?: tf.Tensor4D): tf.Tensor3D {
  if (fused(ATTENTION)) return fusedAttention(q, k, v, bias, { heads, kvHeads: heads, split: true, merge: true }) as tf.Tensor3D;
  return mergeHeads(attention(splitHeads(q, heads), splitHeads(k, heads), splitHeads(v, heads), bias));
}

/** [B, H, T, d] attention → [B, T, H·d]: mergeHeads(attention(q, k, v, bias)). */
export function attentionMerged(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias?: tf.Tensor4D): tf.Tensor3D {
  if (fused(ATTENTION)) {
    const kv = k.shape[1];
    if (q.shape[1] % kv !== 0) throw new Error(`attention: ${q.shape[1]} query heads not a multiple of ${kv} key/value heads`);
    return fusedAttention(q, k, v, bias, { heads: q.shape[1], kvHeads: kv, split: false, merge: true }) as tf.Tensor3D;
  }
  return mergeHeads(attention(q, k, v, bias));
}

/** The fused attention kernel as one custom op (the bias, a mask, takes no gradient). */
function fusedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor4D | undefined, attrs: { heads: number; kvHeads: number; split: boolean; merge: boolean }): tf.Tensor {
  const named = attrs as unknown as tf.NamedAttrMap;
  return tf.customGrad((qi, ki, vi, save) => {
    const inputs: tf.NamedTensorMap = { q: qi as tf.Tensor, k: ki as tf.Tensor, v: vi as tf.Tensor };
    if (bias !== undefined) inputs['bias'] = bias;
    const [out, qg, k4, v4, p] = tf.engine().runKernel(ATTENTION, inputs, named) as tf.Tensor[];
    (save as tf.GradSaveFunc)([qg!, k4!, v4!, p!]);
    return {
      value: out!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(ATTENTION_GRAD, { dy, qg: saved[0]!, k: saved[1]!, v: saved[2]!, p: saved[3]! }, named) as tf.Tensor[],
    };
  })(q, k, v);
}

/** Mask as plain rows of 0/1 (1 = real token). */
export type MaskLike = tf.Tensor | ArrayLike<number>[] | { data: ArrayLike<number>; batch: number; length: number };

function maskRows(mask: MaskLike): { data: ArrayLike<number>; batch: number; length: number } {
  if (mask instanceof tf.Tensor) {
    if (mask.rank !== 2) throw new Error(`attention mask must be [B, T], got [${mask.shape.join(', ')}]`);
    return { data: mask.dataSync(), batch: mask.shape[0]!, length: mask.shape[1]! };
  }
  if (Array.isArray(mask)) {
    const length = mask[0]?.length ?? 0;
    const data = new Float32Array(mask.length * length);
    mask.forEach((row, i) => {
      if (row.length !== length) throw new Error(`attention mask rows differ in length (${row.length} vs ${length}) at row ${i}`);
      data.set(Array.from(row), i * length);
    });
    return { data, batch: mask.length, length };
  }
  return mask as { data: ArrayLike<number>; batch: number; length: number };
}

/**
 * Additive attention bias [B, 1, T, T]: 0 where query t may see key s, MASK_NEG elsewhere.
 * `causal` hides future keys; the padding mask hides keys whose mask is 0.
 */
export function attentionBias(mask: MaskLike, causal: boolean): tf.Tensor4D {
  const { data, batch, length: t } = maskRows(mask);
  const out = new Float32Array(batch * t * t);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < t; i++) {
      const row = (b * t + i) * t;
      for (let j = 0; j < t; j++) {
        if ((causal && j > i) || data[b * t + j] === 0) out[row + j] = MASK_NEG;
      }
    }
  }
  return tf.tensor4d(out, [batch, 1, t, t]);
}

/** Default positions for a padded batch: 0..T-1 per row (what HF uses without position_ids). */
export function defaultPositions(batch: number, length: number): Int32Array {
  const p = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) for (let t = 0; t < length; t++) p[b * length + t] = t;
  return p;
}

/**
 * Rotary tables cos, sin [B, 1, T, d] for positions [B·T], HF convention (frequencies
 * repeated over both halves). Rounded to float32 step by step as PyTorch computes them.
 */
export function ropeTables(positions: ArrayLike<number>, batch: number, headDim: number, theta: number): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const f = Math.fround;
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(Math.pow(theta, f((2 * i) / headDim))));
  const t = positions.length / batch;
  const cos = new Float32Array(batch * t * headDim);
  const sin = new Float32Array(batch * t * headDim);
  for (let p = 0; p < positions.length; p++) {
    for (let i = 0; i < half; i++) {
      const a = f(f(positions[p]!) * inv[i]!);
      const c = Math.cos(a);
      const s = Math.sin(a);
      cos[p * headDim + i] = c;
      cos[p * headDim + half + i] = c;
      sin[p * headDim + i] = s;
      sin[p * headDim + half + i] = s;
    }
  }
  return { cos: tf.tensor4d(cos, [batch, 1, t, headDim]), sin: tf.tensor4d(sin, [batch, 1, t, headDim]) };
}

/**
 * rotate_half as a product: x [N, d] · R = [-x₂, x₁], R [d, d] of ±1 (Rᵀ = −R).
 * One plain 2-D product instead of a split, a negation and a concat, whose 4-D slices
 * and joins ran a scalar loop on wasm (15.6 ms of SplitV and 12.3 ms of Concat in a
 * tiny-EGMF step). The products with 0 and ±1 are exact, so values are unchanged.
 */
function rotateHalfMatrix(d: number): tf.Tensor2D {
  const half = d / 2;
  const r = new Float32Array(d * d);
  for (let i = 0; i < half; i++) {
    r[(i + half) * d + i] = -1; // out[i] = −x[i + d/2]
    r[i * d + i + half] = 1; // out[i + d/2] = x[i]
  }
  return tf.tensor2d(r, [d, d]);
}

/**
 * x·cos + rotate_half(x)·sin with rotate_half(x) = [-x₂, x₁]. x [B, H, T, d].
 * One custom op: dx = dy·cos + (dy·sin)·Rᵀ = dy·cos − (dy·sin)·R.
 */
export function rope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const d = x.shape[3];
  if (d % 2 !== 0) throw new Error(`rope: head width ${d} is odd`);
  const r = rotateHalfMatrix(d);
  if (fused(ROPE)) {
    return tf.customGrad((xi, save) => {
      (save as tf.GradSaveFunc)([cos, sin, r]);
      return {
        value: tf.engine().runKernel(ROPE, { x: xi as tf.Tensor, cos, sin, r }, {}) as tf.Tensor4D,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(ROPE_GRAD, { dy, cos: saved[0]!, sin: saved[1]!, r: saved[2]! }, {}) as tf.Tensor,
      };
    })(x) as tf.Tensor4D;
  }
  const rotate = (t: tf.Tensor, m: tf.Tensor2D) => tf.reshape(matMul2d(tf.reshape(t, [-1, d]) as tf.Tensor2D, m, true), t.shape);
  return tf.customGrad((xi, save) => {
    const x0 = xi as tf.Tensor4D;
    // cos, sin and R come from outside this op: saved, they outlive the forward scope.
    (save as tf.GradSaveFunc)([cos, sin, r]);
    return {
      value: tf.add(tf.mul(x0, cos), tf.mul(rotate(x0, r), sin)) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sc, ss, sr] = saved as [tf.Tensor, tf.Tensor, tf.Tensor2D];
        return tf.sub(tf.mul(dy, sc), rotate(tf.mul(dy, ss), sr));
      },
    };
  })(x) as tf.Tensor4D;
}

/**
 * 1-D convolution over time as unfold + linear. x [B, T, Cin]; w [K, Cin, Cout];
 * padding 'same' (output length T, odd K) or 'valid'. Unfolding keeps every product on
 * the fast 2-D matMul path and needs no conv backprop kernel (missing on wasm): measured
 * at [16, 100, 64] → 128 channels, K = 3, forward + backward took 96 ms this way against
 * 31 s for tf.conv1d, whose filter gradient runs on the cpu fallback.
 */
export function conv1d(x: tf.Tensor3D, w: tf.Tensor3D, b?: tf.Tensor1D, opts: { padding?: 'same' | 'valid'; dilation?: number } = {}): tf.Tensor3D {
  const [k, cin, cout] = w.shape;
  const dil = opts.dilation ?? 1;
  if (x.shape[2] !== cin) throw new Error(`conv1d: input channels ${x.shape[2]} do not match weight [${w.shape.join(', ')}]`);
  const span = (k - 1) * dil;
  const [left, right] = opts.padding === 'valid' ? [0, 0] : [Math.floor(span / 2), span - Math.floor(span / 2)];
  if (x.shape[1] + left + right - span < 1) throw new Error(`conv1d: input of length ${x.shape[1]} is shorter than the kernel span ${span + 1}`);
  if (fused(UNFOLD) && (k > 1 || left + right > 0)) {
    const unfoldedFused = tf.engine().runKernel(UNFOLD, { x }, { kernel: k, dilation: dil, left, right } as unknown as tf.NamedAttrMap) as tf.Tensor3D;
    return linear(unfoldedFused, tf.reshape(w, [k * cin, cout]) as tf.Tensor2D, b) as tf.Tensor3D;
  }
  const padded = left + right === 0 ? x : tf.pad(x, [[0, 0], [left, right], [0, 0]]);
  const tOut = padded.shape[1] - span;
  const frames = Array.from({ length: k }, (_, i) => tf.slice(padded, [0, i * dil, 0], [-1, tOut, -1]));
  const unfolded = k === 1 ? frames[0]! : tf.concat(frames, 2); // [B, T', K·Cin]
  return linear(unfolded, tf.reshape(w, [k * cin, cout]) as tf.Tensor2D, b) as tf.Tensor3D;
}
