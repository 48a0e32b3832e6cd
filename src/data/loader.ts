/**
 * The batch loader: async iteration over padded batches of one split file (or several
 * files of the same dataset) in the affect schema.
 *
 * Frames are copied straight from the Arrow value buffers into the padded batch arrays
 * (one `TypedArray.set` per sample and modality), never through `Vector.get`.
 * Every epoch's order is a pure function of (seed, epoch), so runs are reproducible.
 */
import seedrandom from 'seedrandom';
import { EgmfError } from '../errors.ts';
import { readSplitTable } from './arrow.ts';
import type { SplitTable } from './arrow.ts';
import {
  float32Chunks, framesAt, int32Chunks, numberAt, sequenceChunks, utf8All, utf8ByteLength, utf8Chunks,
} from './loader-columns.ts';
import type { NumberChunk, SequenceChunk, Utf8Chunk } from './loader-columns.ts';
import type { DatasetMeta } from './schema.ts';
import { padLength } from './pad.ts';

/** Per-modality truncation; a sample longer than this keeps its first `n` frames (characters for text). */
export interface MaxLen {
  text?: number;
  audio?: number;
  vision?: number;
}

export interface LoaderOptions {
  /** Samples per batch (> 0). */
  batchSize: number;
  /** Shuffle the samples each epoch (default false). */
  shuffle?: boolean;
  /** Seed of the shuffle; epoch `e` uses the stream seeded by (seed, e) (default 0). */
  seed?: number;
  /** Drop the last batch when it holds fewer than `batchSize` samples (default false). */
  dropLast?: boolean;
  /** Truncation per modality (default: none). */
  maxLen?: MaxLen;
  /**
   * How audio/vision longer than `maxLen` are shortened: `truncate` keeps the first frames
   * (default); `pool` averages runs of consecutive frames down to `maxLen`, so the whole
   * utterance is kept and frames of different modalities stay aligned in normalised time.
   */
  shorten?: 'truncate' | 'pool';
  /**
   * Length bucketing: sort samples by length within pools of `bucket × batchSize`, cut the
   * pools into batches, then shuffle the batches (when `shuffle`). 0 turns it off (default).
   */
  bucket?: number;
  /** The epoch iterated by `[Symbol.asyncIterator]` (default 0). */
  epoch?: number;
  /**
   * Dialogue context: each batch also carries, per sample, the texts of up to this many
   * utterances that precede it in its dialogue (same `dialogue_id`, smaller
   * `utterance_index`), oldest first, from the same split file(s). 0 = none (default).
   */
  context?: number;
  /**
   * Pads each batch's audio and vision to a multiple of this many frames (never past the
   * modality's `maxLen` when the batch is within it), as Hugging Face's collators'
   * `pad_to_multiple_of` does: padded frames are masked, so batches keep their values, and
   * batches fall into a few shapes (a captured graph per shape). 1 = to the batch's longest
   * (default).
   */
  padToMultipleOf?: number;
}

/** One padded batch. Sequences are laid out row-major [B, L, D] and zero-padded. */
export interface Batch {
  /** Number of samples B. */
  size: number;
  ids: string[];
  /** Texts, truncated to `maxLen.text` characters when set. */
  texts: string[];
  /** Class index or score per sample, [B]. */
  labels: Float32Array;
  /** Unimodal labels [B] (NaN where missing); present when the dataset has them. */
  labelsT?: Float32Array;
  labelsA?: Float32Array;
  labelsV?: Float32Array;
  audio: Float32Array; // [B, audioPadLen, audioDim]
  audioMask: Uint8Array; // [B, audioPadLen], 1 = real frame
  audioLengths: Int32Array; // [B], frames after truncation
  audioPadLen: number;
  audioDim: number;
  vision: Float32Array; // [B, visionPadLen, visionDim]
  visionMask: Uint8Array; // [B, visionPadLen]
  visionLengths: Int32Array; // [B]
  visionPadLen: number;
  visionDim: number;
  /**
   * With the `context` option: per sample, the texts of the utterances before it in its
   * dialogue, oldest first (empty for a dialogue's first utterance or a sample without a
   * dialogue id).
   */
  contexts?: string[][];
  /** Dialogue context (null / -1 where the dataset has none). */
  dialogueIds: (string | null)[];
  utteranceIndex: Int32Array;
  speakers: (string | null)[];
}

/** The columns of one record batch of one file. */
interface Chunk {
  file: string;
  rows: number;
  id: Utf8Chunk;
  text: Utf8Chunk;
  label: NumberChunk<Float32Array>;
  labelT: NumberChunk<Float32Array>;
  labelA: NumberChunk<Float32Array>;
  labelV: NumberChunk<Float32Array>;
  dialogueId: Utf8Chunk;
  utteranceIndex: NumberChunk<Int32Array>;
  speaker: Utf8Chunk;
  audio: SequenceChunk;
  vision: SequenceChunk;
}

/** The feature and mask arrays of one batch, at full capacity, for recycling. */
interface BufferSet {
  audio: Float32Array;
  vision: Float32Array;
  audioMask: Uint8Array;
  visionMask: Uint8Array;
}

/** Released buffer sets kept for reuse; more would only hold memory. */
const POOL_LIMIT = 4;

const OPTION_KEYS = new Set(['batchSize', 'shuffle', 'seed', 'dropLast', 'maxLen', 'shorten', 'bucket', 'epoch', 'context', 'padToMultipleOf']);
const MAXLEN_KEYS = new Set(['text', 'audio', 'vision']);

/** Validates loader options; errors name the option. */
export function checkLoaderOptions(opts: LoaderOptions): Required<Omit<LoaderOptions, 'maxLen'>> & { maxLen: MaxLen } {
  const bad = (key: string, msg: string): never => {
    throw new EgmfError(msg, { key });
  };
  if (typeof opts !== 'object' || opts === null) throw new EgmfError('loader options must be an object');
  for (const k of Object.keys(opts)) if (!OPTION_KEYS.has(k)) bad(k, 'unknown loader option');
  const posInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0;
  const nonNegInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (!posInt(opts.batchSize)) bad('batchSize', `must be a positive integer, got ${JSON.stringify(opts.batchSize)}`);
  for (const k of ['shuffle', 'dropLast'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'boolean') bad(k, `must be a boolean, got ${JSON.stringify(opts[k])}`);
  }
  if (opts.seed !== undefined && !(typeof opts.seed === 'number' && Number.isFinite(opts.seed))) {
    bad('seed', `must be a finite number, got ${JSON.stringify(opts.seed)}`);
  }
  for (const k of ['bucket', 'epoch', 'context'] as const) {
    if (opts[k] !== undefined && !nonNegInt(opts[k])) bad(k, `must be a non-negative integer, got ${JSON.stringify(opts[k])}`);
  }
  if (opts.padToMultipleOf !== undefined && !posInt(opts.padToMultipleOf)) bad('padToMultipleOf', `must be a positive integer, got ${JSON.stringify(opts.padToMultipleOf)}`);
  const maxLen = opts.maxLen ?? {};
  if (typeof maxLen !== 'object' || maxLen === null) bad('maxLen', 'must be an object {text?, audio?, vision?}');
  for (const [k, v] of Object.entries(maxLen)) {
    if (!MAXLEN_KEYS.has(k)) bad(`maxLen.${k}`, 'unknown modality (expected text, audio or vision)');
    if (v !== undefined && !posInt(v)) bad(`maxLen.${k}`, `must be a positive integer, got ${JSON.stringify(v)}`);
  }
  if (opts.shorten !== undefined && opts.shorten !== 'truncate' && opts.shorten !== 'pool') {
    bad('shorten', `must be 'truncate' or 'pool', got ${JSON.stringify(opts.shorten)}`);
  }
  return {
    batchSize: opts.batchSize, shuffle: opts.shuffle ?? false, seed: opts.seed ?? 0, dropLast: opts.dropLast ?? false,
    maxLen, shorten: opts.shorten ?? 'truncate', bucket: opts.bucket ?? 0, epoch: opts.epoch ?? 0,
    context: opts.context ?? 0, padToMultipleOf: opts.padToMultipleOf ?? 1,
  };
}

/** Metadata with the per-split fields (`cleaned`) removed, for comparing files of one dataset. */
export function datasetIdentity(meta: DatasetMeta): string {
  const { cleaned: _cleaned, ...rest } = meta;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

export class BatchLoader implements AsyncIterable<Batch> {
  readonly meta: DatasetMeta;
  readonly files: string[];
  /** Number of samples over all files. */
  readonly size: number;
  private readonly opts: ReturnType<typeof checkLoaderOptions>;
  private readonly chunks: Chunk[];
  // Per sample (global index): where it lives and its frame counts after truncation.
  private readonly chunkOf: Int32Array;
  private readonly rowOf: Int32Array;
  private readonly audioLen: Int32Array;
  private readonly visionLen: Int32Array;
  private readonly lengthKey: Float64Array;
  private readonly maxAudio: number;
  private readonly maxVision: number;
  /** With `context`: per sample, the global indices of the utterances before it in its dialogue. */
  private readonly contextOf: Int32Array[] | null;
  // Fresh zeroed memory costs page faults and GC; released batches hand their buffers back.
  private readonly pool: BufferSet[] = [];
  private readonly owned = new WeakMap<Batch, BufferSet>();
  private recycling = false;

  constructor(tables: SplitTable[], options: LoaderOptions) {
    this.opts = checkLoaderOptions(options);
    if (tables.length === 0) throw new EgmfError('the loader needs at least one split file');
    this.meta = tables[0]!.meta;
    this.files = tables.map((t) => t.path);
    const identity = datasetIdentity(this.meta);
    for (const t of tables.slice(1)) {
      if (datasetIdentity(t.meta) !== identity) {
        throw new EgmfError(`metadata differs from ${tables[0]!.path}: files of one loader must belong to one dataset`, { file: t.path, key: 'egmf' });
      }
    }
    this.chunks = tables.flatMap((t) => tableChunks(t, this.meta));
    const counts = this.chunks.map((c) => c.rows);
    this.size = counts.reduce((a, b) => a + b, 0);
    this.chunkOf = new Int32Array(this.size);
    this.rowOf = new Int32Array(this.size);
    this.audioLen = new Int32Array(this.size);
    this.visionLen = new Int32Array(this.size);
    this.lengthKey = new Float64Array(this.size);
    const { audio: maxA = Infinity, vision: maxV = Infinity } = this.opts.maxLen;
    const textOnly = this.meta.audioDim === 0 && this.meta.visionDim === 0;
    let g = 0;
    this.chunks.forEach((c, ci) => {
      for (let r = 0; r < counts[ci]!; r++, g++) {
        this.chunkOf[g] = ci;
        this.rowOf[g] = r;
        const a = Math.min(framesAt(c.audio, r), maxA);
        const v = Math.min(framesAt(c.vision, r), maxV);
        this.audioLen[g] = a;
        this.visionLen[g] = v;
        // Bucket by padded memory (values), or by text bytes when there are no frames.
        this.lengthKey[g] = textOnly ? utf8ByteLength(c.text, r) : a * this.meta.audioDim + v * this.meta.visionDim;
      }
    });
    this.maxAudio = this.audioLen.reduce((m, x) => Math.max(m, x), 0);
    this.maxVision = this.visionLen.reduce((m, x) => Math.max(m, x), 0);
    this.contextOf = this.opts.context > 0 ? this.dialogueContext(this.opts.context) : null;
  }

  /**
   * Each sample's up to `k` predecessors in its dialogue: samples grouped by dialogue id,
   * ordered by utterance index (file order where indices are missing or equal).
   */
  private dialogueContext(k: number): Int32Array[] {
    const byDialogue = new Map<string, number[]>();
    for (let g = 0; g < this.size; g++) {
      const c = this.chunks[this.chunkOf[g]!]!;
      const d = utf8All(c.dialogueId)[this.rowOf[g]!] ?? null;
      if (d === null || d === '') continue;
      let list = byDialogue.get(d);
      if (list === undefined) byDialogue.set(d, (list = []));
      list.push(g);
    }
    const index = (g: number): number => numberAt(this.chunks[this.chunkOf[g]!]!.utteranceIndex, this.rowOf[g]!) ?? -1;
    const out = Array.from({ length: this.size }, () => new Int32Array(0));
    for (const list of byDialogue.values()) {
      list.sort((a, b) => index(a) - index(b) || a - b);
      list.forEach((g, p) => (out[g] = Int32Array.from(list.slice(Math.max(0, p - k), p))));
    }
    return out;
  }

  /** The texts of the utterances before sample `g` in its dialogue (see the `context` option). */
  private contextTexts(g: number): string[] {
    return Array.from(this.contextOf![g]!, (h) => utf8All(this.chunks[this.chunkOf[h]!]!.text)[this.rowOf[h]!] ?? '');
  }

  get batchSize(): number {
    return this.opts.batchSize;
  }

  /** Batches per epoch. */
  get numBatches(): number {
    const b = this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(this.size / b) : Math.ceil(this.size / b);
  }

  /** The sample indices of every batch of an epoch, in order (deterministic in seed and epoch). */
  plan(epoch: number = this.opts.epoch): Int32Array[] {
    if (!Number.isInteger(epoch) || epoch < 0) throw new EgmfError(`must be a non-negative integer, got ${epoch}`, { key: 'epoch' });
    const { batchSize: B, shuffle, bucket, dropLast, seed } = this.opts;
    const n = this.size;
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const rng = seedrandom(`egmf-loader/${seed}/${epoch}`);
    if (shuffle) shuffleInPlace(order, rng);
    const batches: Int32Array[] = [];
    if (bucket > 0) {
      const pool = bucket * B;
      const key = this.lengthKey;
      for (let p = 0; p < n; p += pool) {
        // Stable sort keeps the (shuffled) order among equal lengths.
        const sorted = Array.from(order.subarray(p, Math.min(n, p + pool))).sort((x, y) => key[x]! - key[y]!);
        for (let s = 0; s < sorted.length; s += B) batches.push(Int32Array.from(sorted.slice(s, s + B)));
      }
      if (shuffle) shuffleInPlace(batches, rng);
    } else {
      for (let s = 0; s < n; s += B) batches.push(order.subarray(s, Math.min(n, s + B)));
    }
    return dropLast ? batches.filter((b) => b.length === B) : batches;
  }

  /**
   * Full texts and labels of the given samples (default: all), in order; for baselines.
   * With the `context` option, `contexts` holds each sample's preceding utterances too.
   */
  textsAndLabels(indices?: ArrayLike<number>): { texts: string[]; labels: Float32Array; contexts?: string[][] } {
    const n = indices?.length ?? this.size;
    const texts = new Array<string>(n);
    const labels = new Float32Array(n);
    const contexts = this.contextOf === null ? undefined : new Array<string[]>(n);
    for (let i = 0; i < n; i++) {
      const g = indices === undefined ? i : indices[i]!;
      if (!Number.isInteger(g) || g < 0 || g >= this.size) throw new EgmfError(`sample index ${g} is outside 0..${this.size - 1}`, { file: this.files[0] });
      const c = this.chunks[this.chunkOf[g]!]!;
      const r = this.rowOf[g]!;
      texts[i] = utf8All(c.text)[r] ?? '';
      labels[i] = c.label.values[r]!;
      if (contexts !== undefined) contexts[i] = this.contextTexts(g);
    }
    return contexts === undefined ? { texts, labels } : { texts, labels, contexts };
  }

  /** Builds the padded batch of the given sample indices. */
  batch(indices: Int32Array): Batch {
    const B = indices.length;
    const { audioDim: Da, visionDim: Dv, hasUnimodalLabels } = this.meta;
    const maxText = this.opts.maxLen.text;
    const ids: string[] = new Array<string>(B);
    const texts: string[] = new Array<string>(B);
    const labels = new Float32Array(B);
    const uni = hasUnimodalLabels ? [new Float32Array(B), new Float32Array(B), new Float32Array(B)] as const : null;
    const dialogueIds: (string | null)[] = new Array<string | null>(B);
    const speakers: (string | null)[] = new Array<string | null>(B);
    const utteranceIndex = new Int32Array(B);
    const contexts = this.contextOf === null ? null : Array.from(indices, (g) => this.contextTexts(g));
    const audioLengths = new Int32Array(B);
    const visionLengths = new Int32Array(B);
    let La = 0;
    let Lv = 0;
    for (let b = 0; b < B; b++) {
      const g = indices[b]!;
      audioLengths[b] = this.audioLen[g]!;
      visionLengths[b] = this.visionLen[g]!;
      if (audioLengths[b]! > La) La = audioLengths[b]!;
      if (visionLengths[b]! > Lv) Lv = visionLengths[b]!;
    }
    La = padLength(La, this.opts.padToMultipleOf, this.opts.maxLen.audio);
    Lv = padLength(Lv, this.opts.padToMultipleOf, this.opts.maxLen.vision);
    const { set, fresh } = this.buffers(B * La * Da, B * Lv * Dv, B * La, B * Lv);
    const audio = set.audio.subarray(0, B * La * Da);
    const vision = set.vision.subarray(0, B * Lv * Dv);
    const audioMask = set.audioMask.subarray(0, B * La);
    const visionMask = set.visionMask.subarray(0, B * Lv);
    const pool = this.opts.shorten === 'pool';
    for (let b = 0; b < B; b++) {
      const g = indices[b]!;
      const c = this.chunks[this.chunkOf[g]!]!;
      const r = this.rowOf[g]!;
      ids[b] = utf8All(c.id)[r]!;
      const text = utf8All(c.text)[r]!;
      texts[b] = maxText === undefined ? text : truncateChars(text, maxText);
      labels[b] = c.label.values[r]!;
      if (uni !== null) {
        uni[0][b] = numberAt(c.labelT, r) ?? NaN;
        uni[1][b] = numberAt(c.labelA, r) ?? NaN;
        uni[2][b] = numberAt(c.labelV, r) ?? NaN;
      }
      dialogueIds[b] = utf8All(c.dialogueId)[r] ?? null;
      speakers[b] = utf8All(c.speaker)[r] ?? null;
      utteranceIndex[b] = numberAt(c.utteranceIndex, r) ?? -1;
      copyFrames(c.audio, r, audioLengths[b]!, La, audio, audioMask, b, fresh, pool);
      copyFrames(c.vision, r, visionLengths[b]!, Lv, vision, visionMask, b, fresh, pool);
    }
    const batch: Batch = {
      size: B, ids, texts, labels,
      ...(uni === null ? {} : { labelsT: uni[0], labelsA: uni[1], labelsV: uni[2] }),
      ...(contexts === null ? {} : { contexts }),
      audio, audioMask, audioLengths, audioPadLen: La, audioDim: Da,
      vision, visionMask, visionLengths, visionPadLen: Lv, visionDim: Dv,
      dialogueIds, utteranceIndex, speakers,
    };
    this.owned.set(batch, set);
    return batch;
  }

  /**
   * Hands a batch's feature and mask buffers back for reuse by later batches; its arrays
   * may be overwritten afterwards. Batches never released stay valid for ever (but every
   * batch then costs fresh memory, several times slower). Releasing twice is a no-op.
   * Note: tfjs `tf.tensor(batch.audio, ...)` keeps a reference to the array on the CPU
   * backend, so release only once such tensors are disposed (or pass a copy).
   */
  release(batch: Batch): void {
    const set = this.owned.get(batch);
    if (set === undefined) return;
    this.owned.delete(batch);
    this.recycling = true;
    if (this.pool.length >= POOL_LIMIT) {
      const size = (p: BufferSet) => p.audio.length + p.vision.length;
      let smallest = 0;
      for (let i = 1; i < this.pool.length; i++) if (size(this.pool[i]!) < size(this.pool[smallest]!)) smallest = i;
      this.pool.splice(smallest, 1);
    }
    this.pool.push(set);
  }

  private buffers(na: number, nv: number, ma: number, mv: number): { set: BufferSet; fresh: boolean } {
    // Most recently released first: its memory is the likeliest to still be in cache.
    for (let i = this.pool.length - 1; i >= 0; i--) {
      const p = this.pool[i]!;
      if (p.audio.length >= na && p.vision.length >= nv && p.audioMask.length >= ma && p.visionMask.length >= mv) {
        this.pool.splice(i, 1);
        return { set: p, fresh: false };
      }
    }
    if (!this.recycling) {
      return { set: { audio: new Float32Array(na), vision: new Float32Array(nv), audioMask: new Uint8Array(ma), visionMask: new Uint8Array(mv) }, fresh: true };
    }
    // A recycling consumer gets buffers big enough for any later batch.
    const B = this.opts.batchSize;
    const { audioDim: Da, visionDim: Dv } = this.meta;
    const set: BufferSet = {
      audio: new Float32Array(Math.max(na, B * this.maxAudio * Da)),
      vision: new Float32Array(Math.max(nv, B * this.maxVision * Dv)),
      audioMask: new Uint8Array(Math.max(ma, B * this.maxAudio)),
      visionMask: new Uint8Array(Math.max(mv, B * this.maxVision)),
    };
    return { set, fresh: true };
  }

  /** The batches of one epoch, built on demand. */
  *epochSync(epoch: number = this.opts.epoch): Generator<Batch> {
    for (const idx of this.plan(epoch)) yield this.batch(idx);
  }

  async *epoch(epoch: number = this.opts.epoch): AsyncGenerator<Batch> {
    for (const idx of this.plan(epoch)) yield this.batch(idx);
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.epoch();
  }
}

/** Opens one split file or several files of one dataset; errors name the file. */
export function openLoader(paths: string | string[], options: LoaderOptions): BatchLoader {
  checkLoaderOptions(options);
  const list = typeof paths === 'string' ? [paths] : paths;
  if (list.length === 0) throw new EgmfError('the loader needs at least one split file');
  return new BatchLoader(list.map((p) => readSplitTable(p)), options);
}

function tableChunks(t: SplitTable, meta: DatasetMeta): Chunk[] {
  const { table, path: file } = t;
  const u = (k: string) => utf8Chunks(table, k, file);
  const f = (k: string) => float32Chunks(table, k, file);
  const id = u('id');
  const text = u('text');
  const label = f('label');
  const labelT = f('label_t');
  const labelA = f('label_a');
  const labelV = f('label_v');
  const dialogueId = u('dialogue_id');
  const utteranceIndex = int32Chunks(table, 'utterance_index', file);
  const speaker = u('speaker');
  const audio = sequenceChunks(table, 'audio', meta.audioDim, file);
  const vision = sequenceChunks(table, 'vision', meta.visionDim, file);
  const rows = table.getChild('id')!.data.map((d) => d.length);
  return rows.map((n, i) => ({
    file, rows: n, id: id[i]!, text: text[i]!, label: label[i]!,
    labelT: labelT[i]!, labelA: labelA[i]!, labelV: labelV[i]!, dialogueId: dialogueId[i]!,
    utteranceIndex: utteranceIndex[i]!, speaker: speaker[i]!, audio: audio[i]!, vision: vision[i]!,
  }));
}

/**
 * Writes sample `r`'s frames into row `b` of a [B, L, D] batch and sets its mask: its first
 * `frames` frames, or with `pool` all its frames averaged down to `frames`.
 */
function copyFrames(
  src: SequenceChunk, r: number, frames: number, L: number, dst: Float32Array, mask: Uint8Array, b: number, fresh: boolean, pool: boolean,
): void {
  const D = src.dim;
  const at = b * L * D;
  const n = framesAt(src, r);
  if (frames > 0 && D > 0) {
    const start = src.offsets[r]! * D;
    if (!pool || n <= frames) {
      dst.set(src.values.subarray(start, start + frames * D), at);
    } else {
      // Output frame j is the mean of source frames [⌊jn/F⌋, ⌊(j+1)n/F⌋): each holds ⌊n/F⌋ or ⌈n/F⌉.
      for (let j = 0; j < frames; j++) {
        const s0 = Math.floor((j * n) / frames);
        const s1 = Math.floor(((j + 1) * n) / frames);
        const out = dst.subarray(at + j * D, at + (j + 1) * D);
        out.set(src.values.subarray(start + s0 * D, start + (s0 + 1) * D));
        for (let s = s0 + 1; s < s1; s++) {
          const row = start + s * D;
          for (let d = 0; d < D; d++) out[d]! += src.values[row + d]!;
        }
        const inv = 1 / (s1 - s0);
        for (let d = 0; d < D; d++) out[d]! *= inv;
      }
    }
  }
  mask.fill(1, b * L, b * L + frames);
  if (!fresh) {
    // Recycled buffers hold the previous batch: clear the padding.
    dst.fill(0, at + frames * D, at + L * D);
    mask.fill(0, b * L + frames, (b + 1) * L);
  }
}

/** First `n` characters (code points, so surrogate pairs stay whole). */
export function truncateChars(s: string, n: number): string {
  if (s.length <= n) return s;
  let out = '';
  let k = 0;
  for (const ch of s) {
    if (k++ >= n) break;
    out += ch;
  }
  return out;
}

/** Fisher–Yates with the given generator (the loader's and the trainer's subset order). */
export function shuffleInPlace<T>(a: { length: number; [i: number]: T }, rng: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}
