/**
 * Statistics behind `egmf data inspect`: schema, metadata, counts, label distribution,
 * sequence lengths and the share of values cleaned at import, per split. Reads the Arrow
 * buffers directly (see loader-columns.ts), so inspecting a large split stays cheap.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { EgmfError } from '../errors.ts';
import type { SplitTable } from './arrow.ts';
import { float32Chunks, framesAt, isValid, sequenceChunks, utf8All, utf8Chunks } from './loader-columns.ts';
import type { DatasetMeta } from './schema.ts';
import { SPLITS } from './schema.ts';

export interface SummaryStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  q25: number;
  median: number;
  q75: number;
  /** Share of values that are exactly 0. */
  zeroShare: number;
}

export interface LengthStats {
  min: number;
  mean: number;
  median: number;
  max: number;
}

export interface CleanedStats {
  /** Values replaced by 0 at import. */
  values: number;
  /** Feature values of the modality in this split. */
  of: number;
  share: number;
}

export interface SplitStats {
  file: string;
  count: number;
  /** Classification: count per label name. Regression: summary statistics of the score. */
  labels: Record<string, number> | SummaryStats;
  /** Unimodal label statistics (datasets with unimodal labels only). */
  unimodal?: Record<'label_t' | 'label_a' | 'label_v', SummaryStats | null>;
  /** Frames per sample (audio, vision; modalities with width 0 are left out) and text characters. */
  lengths: Record<string, LengthStats>;
  /** Null when the metadata does not record cleaning. */
  cleaned: { audio: CleanedStats; vision: CleanedStats; total: CleanedStats } | null;
}

export interface SchemaInfo {
  columns: { name: string; type: string; nullable: boolean }[];
  /** Dataset metadata without the per-split `cleaned` counts. */
  metadata: Omit<DatasetMeta, 'cleaned'>;
}

export interface DatasetStats {
  schema: SchemaInfo;
  splits: Record<string, SplitStats>;
}

/** A dataset as found on disk: its name and split files in split order. */
export interface DatasetFiles {
  name: string;
  files: string[];
}

/** What an inspect/validate PATH names: one split file, one dataset folder, or a folder of datasets. */
export interface Located {
  kind: 'file' | 'dataset' | 'collection';
  datasets: DatasetFiles[];
}

export function splitNameOf(file: string): string {
  return basename(file).replace(/\.arrow$/, '');
}

function arrowFiles(dir: string): string[] {
  const order = (s: string) => {
    const i = (SPLITS as readonly string[]).indexOf(s);
    return i < 0 ? SPLITS.length : i;
  };
  return readdirSync(dir)
    .filter((f) => f.endsWith('.arrow') && statSync(join(dir, f)).isFile())
    .sort((a, b) => order(splitNameOf(a)) - order(splitNameOf(b)) || a.localeCompare(b))
    .map((f) => join(dir, f));
}

/** Resolves PATH; errors name it when it is missing or holds no split files. */
export function locate(path: string): Located {
  if (!existsSync(path)) throw new EgmfError('no such file or folder', { file: path });
  if (statSync(path).isFile()) return { kind: 'file', datasets: [{ name: splitNameOf(path), files: [path] }] };
  const own = arrowFiles(path);
  if (own.length > 0) return { kind: 'dataset', datasets: [{ name: basename(path), files: own }] };
  const datasets = readdirSync(path)
    .filter((d) => statSync(join(path, d)).isDirectory())
    .sort()
    .map((d) => ({ name: d, files: arrowFiles(join(path, d)) }))
    .filter((d) => d.files.length > 0);
  if (datasets.length === 0) {
    throw new EgmfError('holds no <split>.arrow files and no dataset folders containing them', { file: path });
  }
  return { kind: 'collection', datasets };
}

export function schemaInfo(t: SplitTable): SchemaInfo {
  const { cleaned: _cleaned, ...metadata } = t.meta;
  return {
    columns: t.table.schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable })),
    metadata,
  };
}

export function summarize(values: Float64Array | number[]): SummaryStats | null {
  const n = values.length;
  if (n === 0) return null;
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  let zeros = 0;
  for (const v of sorted) {
    sum += v;
    if (v === 0) zeros++;
  }
  const mean = sum / n;
  let sq = 0;
  for (const v of sorted) sq += (v - mean) ** 2;
  return {
    count: n, min: sorted[0]!, max: sorted[n - 1]!, mean, std: Math.sqrt(sq / n),
    q25: quantile(sorted, 0.25), median: quantile(sorted, 0.5), q75: quantile(sorted, 0.75), zeroShare: zeros / n,
  };
}

/** Linear-interpolated quantile of sorted values (numpy's default). */
export function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function lengthStats(values: Float64Array): LengthStats {
  const s = summarize(values);
  return s === null ? { min: 0, mean: 0, median: 0, max: 0 } : { min: s.min, mean: s.mean, median: s.median, max: s.max };
}

/** The non-null values of a nullable float column. */
function presentValues(t: SplitTable, key: string, rowsPerChunk: number[]): Float64Array {
  const out: number[] = [];
  float32Chunks(t.table, key, t.path).forEach((c, ci) => {
    for (let r = 0; r < rowsPerChunk[ci]!; r++) if (isValid(c.validity, r)) out.push(c.values[r]!);
  });
  return Float64Array.from(out);
}

export function splitStats(t: SplitTable): SplitStats {
  const { meta, table, path } = t;
  const rowsPerChunk = table.getChild('id')!.data.map((d) => d.length);
  const n = table.numRows;
  const perRow = (fn: (chunk: number, row: number) => number): Float64Array => {
    const out = new Float64Array(n);
    let g = 0;
    rowsPerChunk.forEach((rows, ci) => {
      for (let r = 0; r < rows; r++) out[g++] = fn(ci, r);
    });
    return out;
  };
  const labelChunks = float32Chunks(table, 'label', path);
  const label = perRow((ci, r) => labelChunks[ci]!.values[r]!);
  let labels: SplitStats['labels'];
  if (meta.task === 'classification') {
    const names = meta.labelNames ?? [];
    const counts: Record<string, number> = Object.fromEntries(names.map((nm) => [nm, 0]));
    for (const v of label) {
      const name = Number.isInteger(v) && v >= 0 && v < names.length ? names[v]! : String(v);
      counts[name] = (counts[name] ?? 0) + 1;
    }
    labels = counts;
  } else {
    labels = summarize(label) ?? { count: 0, min: 0, max: 0, mean: 0, std: 0, q25: 0, median: 0, q75: 0, zeroShare: 0 };
  }
  const text = utf8Chunks(table, 'text', path);
  const lengths: Record<string, LengthStats> = {
    text: lengthStats(perRow((ci, r) => countChars(utf8All(text[ci]!)[r] ?? ''))),
  };
  const featureValues: Record<'audio' | 'vision', number> = { audio: 0, vision: 0 };
  for (const [key, dim] of [['audio', meta.audioDim], ['vision', meta.visionDim]] as const) {
    if (dim === 0) continue;
    const seq = sequenceChunks(table, key, dim, path);
    const frames = perRow((ci, r) => framesAt(seq[ci]!, r));
    lengths[key] = lengthStats(frames);
    featureValues[key] = frames.reduce((a, b) => a + b, 0) * dim;
  }
  const stats: SplitStats = { file: path, count: n, labels, lengths, cleaned: null };
  if (meta.hasUnimodalLabels) {
    stats.unimodal = {
      label_t: summarize(presentValues(t, 'label_t', rowsPerChunk)),
      label_a: summarize(presentValues(t, 'label_a', rowsPerChunk)),
      label_v: summarize(presentValues(t, 'label_v', rowsPerChunk)),
    };
  }
  if (meta.cleaned !== undefined) {
    const share = (values: number, of: number): CleanedStats => ({ values, of, share: of === 0 ? 0 : values / of });
    stats.cleaned = {
      audio: share(meta.cleaned.audio, featureValues.audio),
      vision: share(meta.cleaned.vision, featureValues.vision),
      total: share(meta.cleaned.total, featureValues.audio + featureValues.vision),
    };
  }
  return stats;
}

/** Characters as code points, so a CJK or emoji text counts what a reader sees. */
export function countChars(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
      const p = s.charCodeAt(i - 1);
      if (p >= 0xd800 && p <= 0xdbff) n--;
    }
  }
  return n;
}

export function datasetStats(tables: SplitTable[]): DatasetStats {
  const splits: Record<string, SplitStats> = {};
  for (const t of tables) splits[splitNameOf(t.path)] = splitStats(t);
  return { schema: schemaInfo(tables[0]!), splits };
}
