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

/**
 * Learned per-token offsets on the text encoder's input (`model.text_offsets`): the
 * `vocab` most frequent tokens of the training split (seen at least `min_count` times) get
 * a trainable row, zero at the start, added to their frozen LLM embedding before the text
 * encoder; every other token (and the LLM's own input, prompt and output layer) keeps the
 * frozen embedding. PEFT trains chosen embedding rows the same way
 * (`trainable_token_indices`); here the rows live on the fusion side only, so the LLM reads
 * the utterance as it always did. The chosen token ids are a buffer saved with the weights,
 * so a run evaluated elsewhere (or on another language) maps tokens exactly as it trained.
 *
 * Why: the built-in LLM is pretrained on the synthetic suite's text, so the rows of real
 * MELD or CPED words are still their random initialisation, and a frozen random 64-wide
 * vector per token is all the fusion network saw of a word. Measured at seed 1111 (wasm,
 * the real-text experiments, vocab 8192, min_count 2; MELD has 3,597 tokens seen twice in
 * its train split, CPED 7,024 in the split it trains on):
 *   - MELD test weighted F1, linear head: 0.538 without, 0.552 with; full EGMF 0.515 ± 0.006
 *     over two seeds without, 0.553 / 0.543 (seeds 1111 / 2222) with.
 *   - CPED valid weighted F1, linear head: 0.146 without, 0.212 with; full EGMF 0.139
 *     without, 0.204 with (TF-IDF + LR 0.217, majority 0.123).
 *   - Tried and not kept: lr_scale 10 for the offsets (CPED linear head 0.213 against
 *     0.212); 8 epochs instead of 4 (CPED linear head peaks at 0.210 at epoch 6).
 */
/** Checkpoint name of the text offsets' table. */
export const TEXT_OFFSETS_PARAM = 'egmf.encoders.text.token_offsets';

export class TextOffsets {
  readonly table: tf.Variable; // [vocab, D]
  private readonly ids: Float32Array; // [vocab]: token id per row, -1 = unused

  constructor(scope: Scope, readonly vocab: number, readonly width: number, readonly minCount: number) {
    this.table = scope.create('token_offsets', [vocab, width], 0);
    this.ids = scope.params.buffer(`${scope.prefix}.token_offsets_ids`, [vocab], -1);
  }

  /**
   * Chooses the tokens from the training split's tokenized utterances: the most frequent
   * ones (ties: the smaller id) seen at least `minCount` times. Returns how many got a row.
   */
  fit(utterances: Iterable<readonly number[]>): number {
    const counts = new Map<number, number>();
    for (const u of utterances) for (const id of u) counts.set(id, (counts.get(id) ?? 0) + 1);
    const chosen = [...counts].filter(([, c]) => c >= this.minCount).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, this.vocab);
    this.ids.fill(-1);
    chosen.forEach(([id], r) => (this.ids[r] = id));
    return chosen.length;
  }

  /** Token ids that have a row, in row order. */
  tokenIds(): number[] {
    return Array.from(this.ids).filter((id) => id >= 0);
  }

  /** Padded ids [B][T] → offsets [B, T, D] (zeros for tokens without a row). */
  apply(ids: readonly (readonly number[])[]): tf.Tensor3D {
    // Built per call from the buffer (a few thousand entries), so a loaded buffer takes effect at once.
    const rowOf = new Map(this.tokenIds().map((id, r) => [id, r + 1]));
    const b = ids.length;
    const t = ids[0]?.length ?? 0;
    const idx = new Int32Array(b * t); // 0 = the zero row, r + 1 = row r
    for (let i = 0; i < b; i++) for (let j = 0; j < t; j++) idx[i * t + j] = rowOf.get(ids[i]![j]!) ?? 0;
    const rows = tf.concat([tf.zeros([1, this.width]), this.table], 0); // [vocab + 1, D]
    return tf.reshape(tf.gather(rows, tf.tensor1d(idx, 'int32')), [b, t, this.width]);
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
