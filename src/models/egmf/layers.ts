/**
 * Small building blocks shared by the EGMF units: a named, seeded parameter store (names
 * become safetensors keys), Linear, LayerNorm, a pre-LN attention block, dropout and the
 * masked pooling every expert ends with. All tensor math goes through `../ops.ts`.
 */
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { gelu, layerNorm, linear, MASK_NEG, multiHeadAttention, seededDropout } from '../ops.ts';
import { hasKernel } from '../backend/composite.ts';
import { KEY_BIAS, MASK_ROWS, MASKED_MAX, MASKED_MEAN } from '../backend/fused.ts';

/** Every variable of the fusion network, keyed by its checkpoint name (`egmf.…`). */
export class Params {
  readonly vars = new Map<string, tf.Variable>();
  /** Non-trainable values saved beside the variables (the text offsets' token ids), by name. */
  readonly buffers = new Map<string, { shape: number[]; data: Float32Array }>();
  private readonly rng: seedrandom.PRNG;

  constructor(seed: number) {
    this.rng = seedrandom(`egmf-init:${seed}`);
  }

  /** Creates a variable; `std` > 0 draws normal(0, std), else fills with `fill`. */
  create(name: string, shape: number[], std: number, fill = 0): tf.Variable {
    if (this.vars.has(name)) throw new Error(`parameter '${name}' is created twice`);
    const n = shape.reduce((p, d) => p * d, 1);
    const v = new Float32Array(n);
    if (std > 0) for (let i = 0; i < n; i++) v[i] = std * gaussian(this.rng);
    else v.fill(fill);
    // tfjs variable names are process-global, so the checkpoint name is kept in `vars` only.
    const variable = tf.tidy(() => tf.variable(tf.tensor(v, shape), true));
    this.vars.set(name, variable);
    return variable;
  }

  /** Creates a buffer filled with `fill`; the returned array is the stored one. */
  buffer(name: string, shape: number[], fill = 0): Float32Array {
    if (this.vars.has(name) || this.buffers.has(name)) throw new Error(`parameter '${name}' is created twice`);
    const data = new Float32Array(shape.reduce((p, d) => p * d, 1)).fill(fill);
    this.buffers.set(name, { shape, data });
    return data;
  }

  scope(prefix: string): Scope {
    return new Scope(this, prefix);
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.buffers.clear();
  }
}

/** A name prefix inside a Params store. */
export class Scope {
  constructor(readonly params: Params, readonly prefix: string) {}
  sub(name: string | number): Scope {
    return new Scope(this.params, `${this.prefix}.${name}`);
  }
  create(name: string, shape: number[], std: number, fill = 0): tf.Variable {
    return this.params.create(`${this.prefix}.${name}`, shape, std, fill);
  }
}

/** What a forward pass needs besides tensors: training mode and a seeded dropout stream. */
export interface ForwardCtx {
  training: boolean;
  dropout: number;
  /** Next dropout seed (deterministic per model seed and call order). */
  nextSeed(): number;
}

export function evalCtx(): ForwardCtx {
  return { training: false, dropout: 0, nextSeed: () => 0 };
}

export function dropout(x: tf.Tensor, ctx: ForwardCtx): tf.Tensor {
  return ctx.training && ctx.dropout > 0 ? seededDropout(x, ctx.dropout, ctx.nextSeed()) : x;
}

export class Linear {
  readonly w: tf.Variable; // [in, out]
  readonly b: tf.Variable | null; // [out]
  constructor(scope: Scope, readonly inDim: number, readonly outDim: number, opts: { bias?: boolean; std?: number } = {}) {
    this.w = scope.create('weight', [inDim, outDim], opts.std ?? 1 / Math.sqrt(inDim));
    this.b = opts.bias === false ? null : scope.create('bias', [outDim], 0);
  }
  apply(x: tf.Tensor): tf.Tensor {
    return linear(x, this.w as tf.Tensor2D, (this.b ?? undefined) as tf.Tensor1D | undefined); // [..., out]
  }
}

export class LayerNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  constructor(scope: Scope, dim: number) {
    this.gamma = scope.create('weight', [dim], 0, 1);
    this.beta = scope.create('bias', [dim], 0);
  }
  apply(x: tf.Tensor): tf.Tensor {
    return layerNorm(x, this.gamma as tf.Tensor1D, this.beta as tf.Tensor1D);
  }
}

/** Additive key-padding bias [B, 1, 1, S]: 0 for real keys, MASK_NEG for padding. */
export function keyBias(mask: tf.Tensor2D): tf.Tensor4D {
  if (hasKernel(KEY_BIAS)) return tf.engine().runKernel(KEY_BIAS, { mask }, {}) as tf.Tensor4D;
  const [b, s] = mask.shape;
  return tf.reshape(tf.mul(tf.sub(1, mask), MASK_NEG), [b, 1, 1, s]);
}

/**
 * Pre-LN transformer block: x + Attn(LN(x), LN(src)) then x + FFN(LN(x)). With `src`
 * omitted it is self-attention; with it, cross-attention from x to src.
 */
export class AttentionBlock {
  private readonly ln1: LayerNorm;
  private readonly lnSrc: LayerNorm | null;
  private readonly q: Linear;
  private readonly k: Linear;
  private readonly v: Linear;
  private readonly o: Linear;
  private readonly ln2: LayerNorm;
  private readonly up: Linear;
  private readonly down: Linear;

  /** `cross`: the block attends to a separate source sequence (which gets its own norm). */
  constructor(scope: Scope, readonly width: number, readonly heads: number, cross = false) {
    this.ln1 = new LayerNorm(scope.sub('ln1'), width);
    this.lnSrc = cross ? new LayerNorm(scope.sub('ln_src'), width) : null;
    this.q = new Linear(scope.sub('attn.q'), width, width);
    this.k = new Linear(scope.sub('attn.k'), width, width);
    this.v = new Linear(scope.sub('attn.v'), width, width);
    this.o = new Linear(scope.sub('attn.o'), width, width);
    this.ln2 = new LayerNorm(scope.sub('ln2'), width);
    this.up = new Linear(scope.sub('ffn.up'), width, 2 * width);
    this.down = new Linear(scope.sub('ffn.down'), 2 * width, width);
  }

  /** x [B, T, w]; src [B, S, w] (default x); bias [B, 1, 1, S]. → [B, T, w]. */
  apply(x: tf.Tensor3D, bias: tf.Tensor4D, ctx: ForwardCtx, src?: tf.Tensor3D): tf.Tensor3D {
    const h = this.ln1.apply(x); // [B, T, w]
    if ((src === undefined) !== (this.lnSrc === null)) throw new Error('AttentionBlock: pass src exactly when built for cross-attention');
    const s = src === undefined ? h : this.lnSrc!.apply(src); // [B, S, w]
    const a = multiHeadAttention(this.q.apply(h) as tf.Tensor3D, this.k.apply(s) as tf.Tensor3D, this.v.apply(s) as tf.Tensor3D, this.heads, bias); // [B, T, w]
    const x1 = tf.add(x, dropout(this.o.apply(a), ctx));
    const f = this.down.apply(gelu(this.up.apply(this.ln2.apply(x1)))); // [B, T, w]
    return tf.add(x1, dropout(f, ctx)) as tf.Tensor3D;
  }
}

/** Mean over the real frames: x [B, L, w], mask [B, L] → [B, w]; 0 for a sample without frames. */
export function maskedMean(x: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
  if (hasKernel(MASKED_MEAN)) return tf.engine().runKernel(MASKED_MEAN, { x, mask }, {}) as tf.Tensor2D;
  const m = tf.expandDims(mask, 2); // [B, L, 1]
  const count = tf.maximum(tf.sum(m, 1), 1); // [B, 1]
  return tf.div(tf.sum(tf.mul(x, m), 1), count) as tf.Tensor2D;
}

/** Max over the real frames: x [B, L, w], mask [B, L] → [B, w]; 0 for a sample without frames. */
export function maskedMax(x: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
  if (hasKernel(MASKED_MAX)) return tf.engine().runKernel(MASKED_MAX, { x, mask }, {}) as tf.Tensor2D;
  const m = tf.expandDims(mask, 2); // [B, L, 1]
  const pooled = tf.max(tf.add(x, tf.mul(tf.sub(1, m), MASK_NEG)), 1); // [B, w]
  const any = tf.minimum(tf.sum(m, 1), 1); // [B, 1]
  return tf.mul(pooled, any) as tf.Tensor2D;
}

/**
 * tf.split that returns x itself for a single piece: tfjs-core's SplitV gradient fails on a
 * one-output split (it receives a tensor where it expects a list).
 */
export function split(x: tf.Tensor, pieces: number | number[], axis: number): tf.Tensor[] {
  const n = typeof pieces === 'number' ? pieces : pieces.length;
  return n === 1 ? [x] : tf.split(x, pieces, axis);
}

/** tf.unstack with the same one-piece guard (Unpack's gradient has the same flaw). */
export function unstack(x: tf.Tensor, axis: number): tf.Tensor[] {
  return x.shape[axis] === 1 ? [tf.squeeze(x, [axis])] : tf.unstack(x, axis);
}

/** Zeroes padded frames so that convolutions and recurrences see exactly zero padding. */
export function zeroPadding(x: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor3D {
  if (hasKernel(MASK_ROWS)) return tf.engine().runKernel(MASK_ROWS, { x, mask }, {}) as tf.Tensor3D;
  return tf.mul(x, tf.expandDims(mask, 2)) as tf.Tensor3D;
}

function gaussian(rng: () => number): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
