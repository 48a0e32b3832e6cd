/**
 * Writing and reading split files in the affect schema (Arrow IPC file format).
 *
 * Writes stream record batches to `<path>.tmp-<pid>` and rename at the end, so a failed
 * import never leaves a half-written split under the final name.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  Field, Float32, Int32, makeData, RecordBatch, RecordBatchFileWriter, Schema, Struct, Table,
  tableFromIPC, Utf8, vectorFromArray,
} from 'apache-arrow';
import type { Data } from 'apache-arrow';
import { EgmfError } from '../errors.ts';
import { fileStamp, StampCache } from '../cache.ts';
import {
  COLUMN_NAMES, frameType, makeSchema, META_KEY, sequenceType, validateMeta, validateSample,
} from './schema.ts';
import type { AffectSample, DatasetMeta, SplitName, StoredSample } from './schema.ts';

export interface SplitWriterOptions {
  /** Samples per Arrow record batch (default 1024). */
  batchRows?: number;
  /** Leave the finished file under its temporary name; the caller renames it (see writeDataset). */
  deferRename?: boolean;
}

/**
 * Streams samples of one split into an Arrow IPC file.
 * `add` validates every sample (label set/range, feature width) before it is buffered.
 */
export class SplitWriter {
  readonly path: string;
  readonly tmpPath: string;
  private readonly schema: Schema;
  private readonly writer: RecordBatchFileWriter;
  private readonly fd: number;
  private readonly pump: Promise<void>;
  private buffer: AffectSample[] = [];
  private readonly batchRows: number;
  private rows = 0;
  private closed = false;
  private readonly deferRename: boolean;

  constructor(path: string, readonly meta: DatasetMeta, readonly split: SplitName, opts: SplitWriterOptions = {}) {
    validateMeta(meta, path);
    this.path = path;
    this.tmpPath = `${path}.tmp-${process.pid}`;
    this.batchRows = opts.batchRows ?? 1024;
    this.deferRename = opts.deferRename ?? false;
    this.schema = makeSchema(meta);
    mkdirSync(dirname(path), { recursive: true });
    this.writer = new RecordBatchFileWriter();
    const fd = openSync(this.tmpPath, 'w');
    const writer = this.writer;
    this.fd = fd;
    // Drain the writer's byte queue into the file as batches are written.
    this.pump = (async () => {
      for await (const chunk of writer) writeSync(fd, chunk);
    })();
  }

  get count(): number {
    return this.rows + this.buffer.length;
  }

  /** Validates and buffers one sample; throws an EgmfError naming the file and row. */
  add(sample: AffectSample): void {
    if (this.closed) throw new Error(`${this.path}: writer already closed`);
    validateSample(sample, this.meta, this.count, this.path);
    this.buffer.push(sample);
    if (this.buffer.length >= this.batchRows) this.flush();
  }

  private flush(): void {
    if (this.buffer.length === 0) return;
    this.writer.write(buildBatch(this.schema, this.meta, this.split, this.buffer));
    this.rows += this.buffer.length;
    this.buffer = [];
  }

  /** Writes the footer and renames the temporary file into place. Refuses an empty split. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.count === 0) {
      await this.abort();
      throw new EgmfError(`split '${this.split}' is empty: nothing to write`, { file: this.path });
    }
    this.flush();
    this.closed = true;
    this.writer.close();
    await this.pump;
    closeSync(this.fd);
    if (!this.deferRename) this.commit();
  }

  /** Moves the finished temporary file to its final name. */
  commit(): void {
    renameSync(this.tmpPath, this.path);
  }

  /** Drops everything written so far. */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.buffer = [];
      this.writer.close();
      await this.pump.catch(() => undefined);
      closeSync(this.fd);
    }
    rmSync(this.tmpPath, { force: true });
  }
}

/** Writes one split from an iterable; the file appears only when every sample was valid. */
export async function writeSplit(
  path: string, meta: DatasetMeta, split: SplitName,
  samples: Iterable<AffectSample> | AsyncIterable<AffectSample>, opts?: SplitWriterOptions,
): Promise<number> {
  const w = new SplitWriter(path, meta, split, opts);
  try {
    for await (const s of samples) w.add(s);
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
  return w.count;
}

function buildBatch(schema: Schema, meta: DatasetMeta, split: SplitName, rows: AffectSample[]): RecordBatch {
  const n = rows.length;
  const str = (vals: (string | null | undefined)[]): Data => vectorFromArray(vals.map((v) => v ?? null), new Utf8()).data[0]!;
  const f32 = (vals: (number | null | undefined)[]): Data =>
    vectorFromArray(vals.map((v) => (v === undefined ? null : v)), new Float32()).data[0]!;
  const children: Data[] = [
    str(rows.map((r) => r.id)),
    str(rows.map(() => meta.dataset)),
    str(rows.map(() => meta.language)),
    str(rows.map(() => split)),
    str(rows.map((r) => r.text)),
    sequenceData(rows.map((r) => r.audio), meta.audioDim),
    sequenceData(rows.map((r) => r.vision), meta.visionDim),
    makeData({ type: new Float32(), length: n, data: Float32Array.from(rows, (r) => r.label), nullCount: 0 }),
    f32(rows.map((r) => r.labelT)),
    f32(rows.map((r) => r.labelA)),
    f32(rows.map((r) => r.labelV)),
    str(rows.map((r) => r.dialogueId)),
    vectorFromArray(rows.map((r) => r.utteranceIndex ?? null), new Int32()).data[0]!,
    str(rows.map((r) => r.speaker)),
  ];
  const data = makeData({ type: new Struct(schema.fields), length: n, children, nullCount: 0 });
  return new RecordBatch(schema, data);
}

/** list<fixed_size_list<float32>[dim]> from per-sample flat frame arrays, copying once. */
function sequenceData(seqs: Float32Array[], dim: number): Data {
  const offsets = new Int32Array(seqs.length + 1);
  let total = 0;
  for (let i = 0; i < seqs.length; i++) {
    total += seqs[i]!.length;
    offsets[i + 1] = dim === 0 ? 0 : total / dim;
  }
  const values = new Float32Array(total);
  let at = 0;
  for (const s of seqs) {
    values.set(s, at);
    at += s.length;
  }
  const frames = dim === 0 ? 0 : total / dim;
  const valueData = makeData({ type: new Float32(), length: total, data: values, nullCount: 0 });
  const frameData = makeData({ type: frameType(dim), length: frames, child: valueData, nullCount: 0 });
  return makeData({ type: sequenceType(dim), length: seqs.length, valueOffsets: offsets, child: frameData, nullCount: 0 });
}

export type SampleSource = Iterable<AffectSample> | AsyncIterable<AffectSample>;

/**
 * Writes several splits of one dataset as `<outDir>/<split>.arrow`. Every split is
 * validated and written under a temporary name first; the files are renamed into place
 * only when all splits succeeded, so a failure leaves no split (old or half-new) mixed in.
 * `meta` may differ per split (e.g. the `cleaned` counts).
 */
export async function writeDataset(
  outDir: string,
  meta: DatasetMeta | ((split: SplitName) => DatasetMeta),
  splits: Partial<Record<SplitName, SampleSource>>,
  opts: SplitWriterOptions = {},
): Promise<Record<string, number>> {
  const names = (Object.keys(splits) as SplitName[]).filter((s) => splits[s] !== undefined);
  if (names.length === 0) throw new EgmfError('no splits to write', { file: outDir });
  const done: SplitWriter[] = [];
  const counts: Record<string, number> = {};
  try {
    for (const split of names) {
      const m = typeof meta === 'function' ? meta(split) : meta;
      const w = new SplitWriter(join(outDir, `${split}.arrow`), m, split, { ...opts, deferRename: true });
      try {
        for await (const s of splits[split]!) w.add(s);
        await w.close();
      } catch (e) {
        await w.abort();
        throw e;
      }
      done.push(w);
      counts[split] = w.count;
    }
  } catch (e) {
    for (const w of done) rmSync(w.tmpPath, { force: true });
    throw e;
  }
  for (const w of done) w.commit();
  return counts;
}

/** A split file loaded into memory, with its validated metadata. */
export interface SplitTable {
  path: string;
  meta: DatasetMeta;
  table: Table;
}

/**
 * Split files this process read, by file stamp (path, inode, size, modification and change
 * times: see `fileStamp`), least recently used first, up to {@link splitCacheBudget} bytes in all.
 * A sweep's trial process runs trial after trial on the same few splits, and each read of a
 * 92-157 MB synthetic train split costs ~0.1 s and full collections that V8 starts for the new
 * external memory (a run on an Arrow folder also read its first split twice, once for its
 * metadata). Each full collection drops the optimised code of tfjs's per-op closures, which the
 * trial then re-optimises (a collection forced between two epochs is followed by 50-70
 * optimisations); with the cache, a reused trial process ran 1-2 full collections a trial
 * instead of 2-3. A rewritten file gets a new stamp and is read again; the tables are
 * read-only (Arrow's vectors over the file's bytes). `EGMF_SPLIT_CACHE_MB` sets the budget
 * (0 = off).
 */
const splitCache = new StampCache<SplitTable>(() => splitCacheBudget());
/** The split cache's default budget: synthetic MELD's and CHERMA's splits together are 322 MB. */
export const SPLIT_CACHE_MB = 512;

/** The split cache's budget in bytes: `EGMF_SPLIT_CACHE_MB`, else {@link SPLIT_CACHE_MB}. A larger file is never kept. */
export function splitCacheBudget(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.EGMF_SPLIT_CACHE_MB;
  if (raw === undefined || raw.trim() === '') return SPLIT_CACHE_MB * 2 ** 20;
  const mb = Number(raw);
  if (!Number.isFinite(mb) || mb < 0) throw new EgmfError(`must be a number of megabytes >= 0, got '${raw}'`, { key: 'EGMF_SPLIT_CACHE_MB' });
  return mb * 2 ** 20;
}

/** Reads a split file; errors name the file (missing, truncated, not Arrow, wrong schema). */
export function readSplitTable(path: string): SplitTable {
  if (!existsSync(path)) throw new EgmfError('file not found', { file: path });
  if (statSync(path).isDirectory()) throw new EgmfError('is a directory, expected an Arrow split file', { file: path });
  const stamp = fileStamp(path);
  const hit = splitCache.get(stamp);
  if (hit !== undefined) return { ...hit, path };
  const bytes = readFileSync(path);
  const split = parseSplitTable(path, bytes);
  splitCache.set(stamp, split, bytes.length);
  return split;
}

/** How many split files, and bytes, this process keeps read (for tests and diagnostics). */
export function splitCacheSize(): { files: number; bytes: number } {
  const u = splitCache.usage();
  return { files: u.entries, bytes: u.size };
}

function parseSplitTable(path: string, bytes: Buffer): SplitTable {
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (e) {
    throw new EgmfError(`not a readable Arrow IPC file (${(e as Error).message}); is it truncated?`, { file: path }, { cause: e });
  }
  if (bytes.length < 12 || bytes.subarray(0, 6).toString('latin1') !== 'ARROW1' || bytes.subarray(bytes.length - 6).toString('latin1') !== 'ARROW1') {
    throw new EgmfError('not an Arrow IPC file (missing ARROW1 magic at start or end); is it truncated?', { file: path });
  }
  const rawMeta = table.schema.metadata.get(META_KEY);
  if (rawMeta === undefined) throw new EgmfError('no affect-schema metadata: not written by egmf', { file: path, key: META_KEY });
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawMeta);
  } catch {
    throw new EgmfError('schema metadata is not valid JSON', { file: path, key: META_KEY });
  }
  const meta = validateMeta(parsed, path);
  checkColumns(table.schema, meta, path);
  return { path, meta, table };
}

function checkColumns(schema: Schema, meta: DatasetMeta, file: string): void {
  const expected = makeSchema(meta);
  const byName = new Map(schema.fields.map((f: Field) => [f.name, f]));
  for (const name of COLUMN_NAMES) {
    const got = byName.get(name);
    if (got === undefined) throw new EgmfError('missing column', { file, key: name });
    const want = expected.fields.find((f) => f.name === name)!;
    if (String(got.type) !== String(want.type)) {
      throw new EgmfError(`column type is ${String(got.type)}, expected ${String(want.type)}`, { file, key: name });
    }
  }
  for (const f of schema.fields) {
    if (!(COLUMN_NAMES as readonly string[]).includes(f.name)) throw new EgmfError('unknown column', { file, key: f.name });
  }
}

/** Iterates the rows of a split file as samples (simple path for tools and tests). */
export function* iterateSamples(split: SplitTable): Generator<StoredSample> {
  const t = split.table;
  const col = (name: string) => t.getChild(name)!;
  const [id, dataset, language, splitCol, text, audio, vision, label, lt, la, lv, did, uidx, spk] = COLUMN_NAMES.map(col);
  for (let i = 0; i < t.numRows; i++) {
    yield {
      id: id!.get(i),
      dataset: dataset!.get(i),
      language: language!.get(i),
      split: splitCol!.get(i),
      text: text!.get(i),
      audio: flattenFrames(audio!.get(i)),
      vision: flattenFrames(vision!.get(i)),
      label: label!.get(i),
      labelT: lt!.get(i),
      labelA: la!.get(i),
      labelV: lv!.get(i),
      dialogueId: did!.get(i),
      utteranceIndex: uidx!.get(i),
      speaker: spk!.get(i),
    };
  }
}

function flattenFrames(v: { data: Data[] } | null): Float32Array {
  if (v === null) return new Float32Array(0);
  const frames = v.data[0]!;
  const child = frames.children[0]!;
  const width = (frames.type as unknown as { listSize: number }).listSize;
  // Arrow JS hands out the child values already sliced to this element's frames.
  return (child.values as Float32Array).slice(0, frames.length * width);
}
