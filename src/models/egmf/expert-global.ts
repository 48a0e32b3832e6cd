/**
 * Global context expert: one encoder over the joint sequence (all modalities concatenated
 * in time, each frame tagged with a learned modality embedding, padding masked), then a
 * masked mean-pool per modality segment. `kind: transformer` = pre-LN self-attention
 * blocks; `kind: gru` = stacked GRUs written with basic ops (padded steps carry the state).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Modality } from '../../config/experiment.ts';
import { linear } from '../ops.ts';
import type { ModalitySeq } from './encoders.ts';
import { AttentionBlock, keyBias, LayerNorm, Linear, maskedMean, split, unstack, zeroPadding, type ForwardCtx, type Scope } from './layers.ts';
import type { Expert } from './experts.ts';

export interface GlobalExpertConfig {
  width: number;
  depth: number;
  heads: number;
  kind: 'transformer' | 'gru';
}

/** One GRU layer (PyTorch's gate equations): x [B, T, in] → [B, T, w]. */
class Gru {
  private readonly wx: Linear; // [in, 3w]: reset, update, candidate
  private readonly wh: tf.Variable; // [w, 3w]
  private readonly bh: tf.Variable; // [3w]

  constructor(scope: Scope, inDim: number, readonly width: number) {
    this.wx = new Linear(scope.sub('x'), inDim, 3 * width);
    this.wh = scope.create('h.weight', [width, 3 * width], 1 / Math.sqrt(width));
    this.bh = scope.create('h.bias', [3 * width], 0);
  }

  apply(x: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor3D {
    const [b, t] = x.shape;
    const w = this.width;
    const gx = unstack(this.wx.apply(x), 1); // T × [B, 3w], all input products at once
    const ms = unstack(tf.expandDims(mask, 2), 1); // T × [B, 1]
    let h: tf.Tensor = tf.zeros([b, w]);
    const outs: tf.Tensor[] = [];
    for (let s = 0; s < t; s++) {
      const gh = linear(h, this.wh as tf.Tensor2D, this.bh as tf.Tensor1D); // [B, 3w]
      const [xr, xz, xn] = tf.split(gx[s]!, 3, 1);
      const [hr, hz, hn] = tf.split(gh, 3, 1);
      const r = tf.sigmoid(tf.add(xr!, hr!));
      const z = tf.sigmoid(tf.add(xz!, hz!));
      // tanh(a) = 2σ(2a) − 1: tanh is ~20x slower than sigmoid on wasm.
      const n = tf.sub(tf.mul(2, tf.sigmoid(tf.mul(2, tf.add(xn!, tf.mul(r, hn!))))), 1);
      const next = tf.add(tf.mul(tf.sub(1, z), n), tf.mul(z, h)); // [B, w]
      h = tf.add(h, tf.mul(ms[s]!, tf.sub(next, h))); // padding keeps the state
      outs.push(h);
    }
    return zeroPadding(tf.stack(outs, 1) as tf.Tensor3D, mask); // [B, T, w]
  }
}

export class GlobalExpert implements Expert {
  readonly kind = 'global' as const;
  private readonly inProj: Linear;
  private readonly modEmb: tf.Variable; // [M, w]
  private readonly blocks: AttentionBlock[] = [];
  private readonly grus: Gru[] = [];
  private readonly lnOut: LayerNorm;
  private readonly out: Linear;

  constructor(scope: Scope, readonly name: string, readonly modalities: readonly Modality[], width: number, readonly cfg: GlobalExpertConfig) {
    this.inProj = new Linear(scope.sub('in'), width, cfg.width);
    this.modEmb = scope.create('modality_embedding', [modalities.length, cfg.width], 0.02);
    for (let l = 0; l < cfg.depth; l++) {
      if (cfg.kind === 'transformer') this.blocks.push(new AttentionBlock(scope.sub(`l${l}`), cfg.width, cfg.heads));
      else this.grus.push(new Gru(scope.sub(`gru${l}`), cfg.width, cfg.width));
    }
    this.lnOut = new LayerNorm(scope.sub('ln_out'), cfg.width);
    this.out = new Linear(scope.sub('out'), cfg.width, width);
  }

  /** seqs: M × {[B, L_m, d], [B, L_m]} → [B, M, d]. */
  apply(seqs: readonly ModalitySeq[], ctx: ForwardCtx): tf.Tensor3D {
    const lens = seqs.map((s) => s.x.shape[1]);
    const emb = unstack(this.modEmb, 0); // M × [w]
    const parts = seqs.map((s, m) => tf.add(this.inProj.apply(s.x), emb[m]!)); // M × [B, L_m, w]
    const mask = tf.concat(seqs.map((s) => s.mask), 1) as tf.Tensor2D; // [B, ΣL]
    let x = zeroPadding(tf.concat(parts, 1) as tf.Tensor3D, mask); // [B, ΣL, w]
    if (this.cfg.kind === 'transformer') {
      const bias = keyBias(mask); // [B, 1, 1, ΣL]
      for (const block of this.blocks) x = zeroPadding(block.apply(x, bias, ctx), mask);
    } else {
      for (const gru of this.grus) x = gru.apply(x, mask);
    }
    const h = this.lnOut.apply(x) as tf.Tensor3D;
    const segments = split(h, lens, 1) as tf.Tensor3D[]; // M × [B, L_m, w]
    const pooled = segments.map((seg, m) => maskedMean(seg, seqs[m]!.mask)); // M × [B, w]
    return this.out.apply(tf.stack(pooled, 1)) as tf.Tensor3D; // [B, M, d]
  }
}
