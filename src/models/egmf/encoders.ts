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
 *   - Token pairs (`pairs`, off by default): in scikit-learn, TF-IDF + LR on the Qwen tokens
 *     of CPED gives 0.210 on unigrams and 0.218 with adjacent pairs, so pairs looked like the
 *     missing 0.008. In the fusion network they are not: CPED linear head 0.2121 with pairs
 *     16384 (16,381 pairs seen twice) against 0.2119 without, at seed 1111; its train loss
 *     falls to ~1.0 by epoch 3 while valid peaks there, so the extra rows overfit rather
 *     than add signal. Width 64 instead of 32: 0.2087.
 *   - Also tried on the CPED linear head (seed 1111) and not kept: train.weight_decay 0.1
 *     (0.2114) and model.dropout 0.3 (0.2069), against 0.2119.
 *   - Tried on the tensorflow backend (where the CPED linear head gives 0.2077 at seed 1111,
 *     the full EGMF 0.2063) and not kept:
 *       - `llm.pretrain_train_text` (the built-in LLM pretrained 1,200 steps with CPED's
 *         training split added, 30,530 sentences; held-out loss 9.27 → 3.98): linear head
 *         0.2125; full EGMF 0.2082 / 0.2091 / 0.2019 at seeds 1111 / 2222 / 3333
 *         (0.206 ± 0.004), against 0.2063 at 1111 on the same backend and 0.207 / 0.207 /
 *         0.206 on wasm. The embeddings gain a little; the LLM path does not.
 *       - `train.class_weights`: linear head 0.2051 with sqrt (best at epoch 2), 0.1301
 *         with balanced (its predictions spread to the rare classes that weighted F1
 *         barely counts).
 *       - `data.context: 2` (the two utterances before each one in its dialogue; CPED's
 *         emotion repeats the previous utterance's 61% of the time in the split it trains
 *         on): linear head 0.2134 / 0.2048 / 0.2127 at seeds 1111 / 2222 / 3333
 *         (0.210 ± 0.005) against 0.2070 / 0.2040 / 0.2079 without (0.206 ± 0.002); full
 *         EGMF 0.2106 at 1111 (0.2063 without). TF-IDF + LR given the same context gains
 *         more: 0.2323 against 0.2167, so with context the gap to TF-IDF widens.
 *       - `train.ema: 0.999`: linear head 0.2086 (0.2070 without), with context 2 0.2117
 *         (0.2134 without): no gain.
 *   - Checked outside the model, before building it in: a fastText-style classifier (the mean
 *     of hashed character 1-3-gram embeddings, 2^18 buckets, width 32, a linear layer, Adam,
 *     8 epochs, the best epoch on valid; PyTorch) on the same CPED splits reaches 0.2149 /
 *     0.2139 at seeds 1 / 2, below character TF-IDF + LR's 0.217: a character n-gram bag
 *     beside the tokens is unlikely to close the gap either.
 */
/** Checkpoint name of the text offsets' table. */
export const TEXT_OFFSETS_PARAM = 'egmf.encoders.text.token_offsets';
/** Checkpoint name of the token-pair offsets' table (`model.text_offsets.pairs`). */
export const TEXT_PAIR_OFFSETS_PARAM = 'egmf.encoders.text.pair_offsets';

export class TextOffsets {
  readonly table: tf.Variable; // [vocab, D]
  /** Rows for adjacent token pairs [pairs, D], or null when `pairs` is 0. */
  readonly pairTable: tf.Variable | null;
  private readonly ids: Float32Array; // [vocab]: token id per row, -1 = unused
  private readonly pairIds: Float32Array | null; // [pairs, 2]: (first, second) token id per row, -1 = unused
  /** token id → row + 1 (and pair key → row + 1), with the buffers they were built from. */
  private maps: { ids: Float32Array; pairIds: Float32Array | null; rowOf: Map<number, number>; pairRow: Map<number, number> } | null = null;

  constructor(scope: Scope, readonly vocab: number, readonly width: number, readonly minCount: number, readonly pairs = 0) {
    this.table = scope.create('token_offsets', [vocab, width], 0);
    this.ids = scope.params.buffer(`${scope.prefix}.token_offsets_ids`, [vocab], -1);
    this.pairTable = pairs > 0 ? scope.create('pair_offsets', [pairs, width], 0) : null;
    this.pairIds = pairs > 0 ? scope.params.buffer(`${scope.prefix}.pair_offsets_ids`, [pairs, 2], -1) : null;
  }

  /**
   * Chooses the tokens (and, with `pairs`, the adjacent token pairs) from the training
   * split's tokenized utterances: the most frequent ones (ties: the smaller id, then the
   * smaller second id) seen at least `minCount` times. Returns how many tokens got a row.
   */
  fit(utterances: Iterable<readonly number[]>): number {
    const counts = new Map<number, number>();
    const pairCounts = new Map<number, number>();
    for (const u of utterances) {
      for (const id of u) counts.set(id, (counts.get(id) ?? 0) + 1);
      if (this.pairIds !== null) for (let j = 0; j + 1 < u.length; j++) {
        const key = pairKey(u[j]!, u[j + 1]!);
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + 1);
      }
    }
    const top = (m: Map<number, number>, n: number) => [...m].filter(([, c]) => c >= this.minCount).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, n);
    const chosen = top(counts, this.vocab);
    this.ids.fill(-1);
    chosen.forEach(([id], r) => (this.ids[r] = id));
    if (this.pairIds !== null) {
      this.pairIds.fill(-1);
      top(pairCounts, this.pairs).forEach(([key], r) => {
        this.pairIds![2 * r] = Math.floor(key / PAIR_BASE);
        this.pairIds![2 * r + 1] = key % PAIR_BASE;
      });
    }
    return chosen.length;
  }

  /**
   * The lookup maps, rebuilt only when the id buffers changed since they were built (by
   * `fit`, or by loading weights into the buffers in place), so loaded buffers take effect
   * at once without a rebuild of thousands of entries on every batch.
   */
  private rowMaps(): { rowOf: Map<number, number>; pairRow: Map<number, number> } {
    const m = this.maps;
    const same = (a: Float32Array | null, b: Float32Array | null) => a === b || (a !== null && b !== null && a.length === b.length && a.every((v, i) => v === b[i]));
    if (m !== null && same(m.ids, this.ids) && same(m.pairIds, this.pairIds)) return m;
    const rowOf = new Map(this.tokenIds().map((id, r) => [id, r + 1]));
    const pairRow = new Map(this.pairList().map(([a, c], r) => [pairKey(a, c), r + 1]));
    this.maps = { ids: this.ids.slice(), pairIds: this.pairIds?.slice() ?? null, rowOf, pairRow };
    return this.maps;
  }

  /** Token ids that have a row, in row order. */
  tokenIds(): number[] {
    return Array.from(this.ids).filter((id) => id >= 0);
  }

  /** Token pairs that have a row, in row order. */
  pairList(): [number, number][] {
    const out: [number, number][] = [];
    const p = this.pairIds;
    if (p !== null) for (let r = 0; r < p.length / 2 && p[2 * r]! >= 0; r++) out.push([p[2 * r]!, p[2 * r + 1]!]);
    return out;
  }

  /**
   * Utterance ids [B][*] (unpadded) → offsets [B, T, D] for a batch padded to `len`: each
   * token's row, plus at position j the row of the pair (token j, token j + 1) when it has
   * one; zeros elsewhere and on padding.
   */
  apply(ids: readonly (readonly number[])[], len: number): tf.Tensor3D {
    const b = ids.length;
    const gatherRows = (table: tf.Variable, idx: Int32Array): tf.Tensor => tf.gather(tf.concat([tf.zeros([1, this.width]), table], 0), tf.tensor1d(idx, 'int32'));
    const { rowOf, pairRow } = this.rowMaps();
    const idx = new Int32Array(b * len); // 0 = the zero row, r + 1 = row r
    for (let i = 0; i < b; i++) for (let j = 0; j < ids[i]!.length; j++) idx[i * len + j] = rowOf.get(ids[i]![j]!) ?? 0;
    let rows = gatherRows(this.table, idx);
    if (this.pairTable !== null) {
      const pidx = new Int32Array(b * len);
      for (let i = 0; i < b; i++) for (let j = 0; j + 1 < ids[i]!.length; j++) pidx[i * len + j] = pairRow.get(pairKey(ids[i]![j]!, ids[i]![j + 1]!)) ?? 0;
      rows = tf.add(rows, gatherRows(this.pairTable, pidx));
    }
    return tf.reshape(rows, [b, len, this.width]);
  }
}

/** Token ids stay below this (Qwen3's vocabulary is 151,669), so a pair is one exact number. */
const PAIR_BASE = 1 << 22;
function pairKey(a: number, b: number): number {
  return a * PAIR_BASE + b;
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
