/**
 * The shared back half of the text-only importers (MELD, CPED, generic CSV/JSON/JSONL): rows
 * with a raw label string become validated samples, written atomically with writeDataset.
 * Errors name the input file and line, never the temporary output.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { writeDataset } from '../arrow.ts';
import { EMPTY_FEATURES, SCHEMA_VERSION } from '../schema.ts';
import type { AffectSample, DatasetMeta, Language, SplitName } from '../schema.ts';
import type { ImportReport } from './types.ts';

/** One source row before its label is checked. */
export interface TextRow {
  id: string;
  text: string;
  /** The label exactly as written in the source. */
  label: string;
  /** 1-based line the row (CSV record, JSONL line, JSON array element) starts on, for error messages. */
  line: number;
  dialogueId?: string | null;
  utteranceIndex?: number | null;
  speaker?: string | null;
  /** Source file when a split is gathered from several files (else the split's file). */
  file?: string;
}

export interface TextSplit {
  split: SplitName;
  file: string;
  rows: TextRow[];
}

export type LabelSpec =
  | {
    task: 'classification';
    /** The label strings as they appear in the source; index = class. */
    values: readonly string[];
    /** Class names in the dataset's language (defaults to `values`). */
    labelNames?: readonly string[];
    labelNamesEn?: readonly string[];
  }
  | { task: 'regression'; range: [number, number] };

export interface TextDatasetInfo {
  dataset: string;
  language: Language;
  source: string;
  license: string;
  extra?: Record<string, unknown>;
}

export const TEXT_ONLY_NOTE = 'text-only: no audio or vision features (audioDim = visionDim = 0, textOnly = true)';

/** Split names accepted in split columns, file names and `--split`. */
const SPLIT_ALIASES: Record<string, SplitName> = {
  train: 'train', training: 'train',
  dev: 'valid', val: 'valid', valid: 'valid', validation: 'valid', eval: 'valid', evaluation: 'valid',
  test: 'test', testing: 'test',
};

/** The accepted split names, for error messages. */
export const SPLIT_NAMES_TEXT = 'train, dev, val, valid, validation, eval or test';

export function splitAlias(value: string): SplitName | undefined {
  return SPLIT_ALIASES[value.trim().toLowerCase()];
}

/** Checks `--input` is one existing folder and returns it. */
export function requireFolder(path: unknown): string {
  if (Array.isArray(path)) throw new EgmfError(`--input takes one folder here, got ${path.length}: ${path.join(' ')}`, { key: 'input' });
  if (typeof path !== 'string') throw new EgmfError(`--input takes one folder, got ${JSON.stringify(path)}`, { key: 'input' });
  if (!existsSync(path)) throw new EgmfError('folder not found', { file: path });
  if (!statSync(path).isDirectory()) throw new EgmfError('is a file, expected a folder', { file: path });
  return path;
}

export function textOnlyMeta(info: TextDatasetInfo, spec: LabelSpec): DatasetMeta {
  const meta: DatasetMeta = {
    schemaVersion: SCHEMA_VERSION,
    dataset: info.dataset,
    language: info.language,
    task: spec.task,
    audioDim: 0,
    visionDim: 0,
    textOnly: true,
    hasUnimodalLabels: false,
    source: info.source,
    license: info.license,
  };
  if (spec.task === 'classification') {
    meta.labelNames = [...(spec.labelNames ?? spec.values)];
    if (spec.labelNamesEn !== undefined) meta.labelNamesEn = [...spec.labelNamesEn];
  } else {
    meta.labelRange = [spec.range[0], spec.range[1]];
  }
  if (info.extra !== undefined) meta.extra = info.extra;
  return meta;
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Maps labels, checks ids are unique; errors name the source file, line and label column. */
export function toSamples(s: TextSplit, spec: LabelSpec, labelKey: string): AffectSample[] {
  if (s.rows.length === 0) throw new EgmfError(`split '${s.split}' has no data rows`, { file: s.file });
  const index = spec.task === 'classification' ? new Map(spec.values.map((v, i) => [v, i])) : undefined;
  const seen = new Map<string, string>();
  return s.rows.map((r) => {
    const file = r.file ?? s.file;
    const prev = seen.get(r.id);
    if (prev !== undefined) {
      throw new EgmfError(`duplicate id '${r.id}' in split '${s.split}' (also at ${prev})`, { file, line: r.line });
    }
    seen.set(r.id, `${file} line ${r.line}`);
    let label: number;
    if (spec.task === 'classification') {
      const k = index!.get(r.label);
      if (k === undefined) {
        throw new EgmfError(`unknown label ${JSON.stringify(r.label)} (expected one of: ${spec.values.join(', ')})`, { file, line: r.line, key: labelKey });
      }
      label = k;
    } else {
      const [lo, hi] = spec.range;
      if (!NUMBER.test(r.label.trim())) {
        throw new EgmfError(`label ${JSON.stringify(r.label)} is not a number`, { file, line: r.line, key: labelKey });
      }
      label = Number(r.label);
      if (label < lo || label > hi) {
        throw new EgmfError(`label ${r.label} is outside the range [${lo}, ${hi}]`, { file, line: r.line, key: labelKey });
      }
    }
    return {
      id: r.id, text: r.text, audio: EMPTY_FEATURES, vision: EMPTY_FEATURES, label,
      dialogueId: r.dialogueId ?? null, utteranceIndex: r.utteranceIndex ?? null, speaker: r.speaker ?? null,
    };
  });
}

export interface WriteTextOptions {
  /**
   * Metadata to write instead of the one built from `info` and `spec`: an import that adds
   * splits to a folder copies the existing splits' metadata, because the loader and
   * `data validate` require every split of a dataset to carry the same metadata.
   */
  meta?: DatasetMeta;
  /**
   * Split files already in `out` that this import deliberately keeps (adding splits beside
   * them); any other split file there is stale and refused.
   */
  keep?: readonly SplitName[];
}

/**
 * Converts every split first (so a bad row anywhere writes nothing), refuses to leave a
 * split file from an earlier import beside the new ones (unless the caller keeps it on
 * purpose), then writes the new splits atomically; kept split files are not rewritten.
 */
export async function writeTextDataset(
  out: string, info: TextDatasetInfo, spec: LabelSpec, splits: TextSplit[], labelKey: string, notes: string[] = [],
  opts: WriteTextOptions = {},
): Promise<ImportReport> {
  const seen = new Map<SplitName, string>();
  for (const s of splits) {
    const other = seen.get(s.split);
    if (other !== undefined) throw new EgmfError(`two sources for split '${s.split}' (also ${other})`, { file: s.file });
    seen.set(s.split, s.file);
  }
  const samples: Partial<Record<SplitName, AffectSample[]>> = {};
  for (const s of splits) samples[s.split] = toSamples(s, spec, labelKey);
  for (const split of ['train', 'valid', 'test'] as const) {
    const stale = join(out, `${split}.arrow`);
    if (samples[split] === undefined && existsSync(stale) && !(opts.keep ?? []).includes(split)) {
      throw new EgmfError(`holds ${split}.arrow from an earlier import, which this import (splits: ${[...seen.keys()].join(', ')}) would not replace; remove it or choose another --out`, { file: out });
    }
  }
  const counts = await writeDataset(out, opts.meta ?? textOnlyMeta(info, spec), samples);
  return { dataset: info.dataset, outDir: out, splits: counts, notes: [TEXT_ONLY_NOTE, ...notes] };
}

/** Parses a non-negative integer field strictly; errors name the file, line and column. */
export function parseIndex(value: string, file: string, line: number, key: string): number {
  if (!/^\d+$/.test(value.trim())) throw new EgmfError(`expected a non-negative integer, got ${JSON.stringify(value)}`, { file, line, key });
  return Number(value);
}
