/**
 * Modality encoders: each modality's frame sequence → the common width d.
 *   text   = the LLM's frozen input embeddings of the utterance tokens [B, Tt, D_llm]
 *   audio  [B, La, Da], vision [B, Lv, Dv]
 * each Linear → d, + a learned modality embedding + sinusoidal positions, LayerNorm,
 * dropout; padded frames come out as exact zeros so later units can ignore them. Text
 * embeddings are first brought to unit RMS per token (measured on synthetic MELD, text only,
 * the fusion network with a linear head: without it the words' share of the encoding was so
 * small next to the positions that validation accuracy stayed at the majority class for 400
 * steps; with it, 0.65-0.69).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Modality } from '../../config/experiment.ts';
import { rmsNorm } from '../ops.ts';
import { dropout, LayerNorm, Linear, zeroPadding, type ForwardCtx, type Scope } from './layers.ts';

/** One modality of a batch: frames and their 0/1 mask (1 = real frame). */
export interface ModalitySeq {
  x: tf.Tensor3D; // [B, L, D]
  mask: tf.Tensor2D; // [B, L]
}

export class ModalityEncoder {
  private readonly proj: Linear;
  private readonly modEmb: tf.Variable; // [d]
  private readonly ln: LayerNorm;

  constructor(scope: Scope, readonly modality: Modality, readonly inDim: number, readonly width: number, readonly positions: 'index' | 'time' = 'index') {
    this.proj = new Linear(scope.sub('proj'), inDim, width);
    this.modEmb = scope.create('modality_embedding', [width], 0.02);
    this.ln = new LayerNorm(scope.sub('ln'), width);
  }

  apply(input: ModalitySeq, ctx: ForwardCtx): ModalitySeq {
    const [, l, dIn] = input.x.shape;
    if (dIn !== this.inDim) throw new Error(`${this.modality} encoder expects feature width ${this.inDim}, got ${dIn}`);
    // Token embeddings come at the LLM's own scale (the built-in one's rows have norms
    // 0.2-0.8): at unit RMS, the positions (unit amplitude) no longer drown the words.
    const x = this.modality === 'text' ? rmsNorm(input.x, null, 1e-10) : input.x;
    // Text tokens have no timing: they always take index positions.
    const pos = this.positions === 'time' && this.modality !== 'text' ? timeSinusoid(input.mask, this.width) : sinusoid(l, this.width);
    const h = tf.add(tf.add(this.proj.apply(x), this.modEmb), pos); // [B, L, d]
    const out = dropout(this.ln.apply(h), ctx) as tf.Tensor3D;
    return { x: zeroPadding(out, input.mask), mask: input.mask };
  }
}

/** Normalised-time span that time positions cover (comparable to typical frame counts). */
export const TIME_SPAN = 32;

/**
 * Sinusoidal positions at normalised time [B, L, d]: frame i of a sample with n real frames
 * sits at (i + 0.5) / n × TIME_SPAN, so the same moment of an utterance gets the same
 * position in every modality whatever its frame rate. Padding gets zeros.
 */
export function timeSinusoid(mask: tf.Tensor2D, width: number): tf.Tensor3D {
  const [b, l] = mask.shape;
  const m = mask.dataSync();
  const v = new Float32Array(b * l * width);
  for (let s = 0; s < b; s++) {
    let n = 0;
    for (let p = 0; p < l; p++) n += m[s * l + p]! > 0 ? 1 : 0;
    for (let p = 0; p < n; p++) writeSinusoid(v, (s * l + p) * width, ((p + 0.5) / n) * TIME_SPAN, width);
  }
  return tf.tensor3d(v, [b, l, width]);
}

function writeSinusoid(v: Float32Array, at: number, pos: number, width: number): void {
  for (let i = 0; i < width; i++) {
    const freq = Math.pow(10000, -(2 * Math.floor(i / 2)) / width);
    v[at + i] = i % 2 === 0 ? Math.sin(pos * freq) : Math.cos(pos * freq);
  }
}

/** Transformer sinusoidal positions [L, d]. */
export function sinusoid(length: number, width: number): tf.Tensor2D {
  const v = new Float32Array(length * width);
  for (let p = 0; p < length; p++) writeSinusoid(v, p * width, p, width);
  return tf.tensor2d(v, [length, width]);
}
