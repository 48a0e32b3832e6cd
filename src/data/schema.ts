/**
 * The one Arrow schema for multimodal affect samples, shared by every importer,
 * the synthetic suite, the loader and the trainer.
 *
 * One Arrow IPC file per split. Columns (see README "Data schema"):
 *   id, dataset, language, split, text                      utf8
 *   audio, vision      list<fixed_size_list<float32>[D]>      variable-length frame sequences
 *   label              float32                                class index or score
 *   label_t/_a/_v      float32, nullable                      unimodal labels (SIMS-V2)
 *   dialogue_id        utf8, nullable
 *   utterance_index    int32, nullable
 *   speaker            utf8, nullable
 * Schema metadata key `egmf` holds a JSON `DatasetMeta`.
 */
import { Field, FixedSizeList, Float32, Int32, List, Schema, Utf8 } from 'apache-arrow';
import { EgmfError } from '../errors.ts';

export const SCHEMA_VERSION = 1;
export const META_KEY = 'egmf';

export type Language = 'en' | 'zh';
export type TaskKind = 'classification' | 'regression';
export type SplitName = 'train' | 'valid' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'valid', 'test'];

/** Dataset-level facts stored in every split file's schema metadata. */
export interface DatasetMeta {
  /** Schema version of the file; readers refuse versions they do not know. */
  schemaVersion: number;
  /** Short dataset name, e.g. `meld`, `cherma`, `mosei`, `sims-v2`, `cped`. */
  dataset: string;
  language: Language;
  task: TaskKind;
  /** Class names in the dataset's language (classification only; index = label). */
  labelNames?: string[];
  /** The same classes in English. */
  labelNamesEn?: string[];
  /** Inclusive label range (regression only), e.g. [-3, 3]. */
  labelRange?: [number, number];
  /** Feature width of one audio frame; 0 when the dataset has no audio. */
  audioDim: number;
  /** Feature width of one vision frame; 0 when the dataset has no vision. */
  visionDim: number;
  /** True when audio and vision are absent (text-only imports). */
  textOnly: boolean;
  /** Whether the unimodal label columns are filled. */
  hasUnimodalLabels: boolean;
  /** Where the data came from (file, URL or generator) and its licence. */
  source: string;
  license: string;
  /** Values replaced by 0 during import (NaN, ±inf), per modality, for this split. */
  cleaned?: { audio: number; vision: number; total: number };
  /** Free-form facts an importer or generator wants to keep (seed, scale, column map...). */
  extra?: Record<string, unknown>;
}

/** One sample as importers and generators produce it and readers return it. */
export interface AffectSample {
  id: string;
  text: string;
  /** Row-major frames, length = frames × audioDim. */
  audio: Float32Array;
  /** Row-major frames, length = frames × visionDim. */
  vision: Float32Array;
  /** Class index (classification) or score (regression). */
  label: number;
  labelT?: number | null;
  labelA?: number | null;
  labelV?: number | null;
  dialogueId?: string | null;
  utteranceIndex?: number | null;
  speaker?: string | null;
}

/** A sample as stored in a file: adds the columns that are constant per file. */
export interface StoredSample extends AffectSample {
  dataset: string;
  language: Language;
  split: SplitName;
}

export const EMPTY_FEATURES = new Float32Array(0);

export function frameType(dim: number): FixedSizeList<Float32> {
  return new FixedSizeList(dim, new Field('item', new Float32(), false));
}

export function sequenceType(dim: number): List<FixedSizeList<Float32>> {
  return new List(new Field('item', frameType(dim), false));
}

/** The Arrow schema for a dataset, with its metadata attached. */
export function makeSchema(meta: DatasetMeta): Schema {
  const fields = [
    new Field('id', new Utf8(), false),
    new Field('dataset', new Utf8(), false),
    new Field('language', new Utf8(), false),
    new Field('split', new Utf8(), false),
    new Field('text', new Utf8(), false),
    new Field('audio', sequenceType(meta.audioDim), false),
    new Field('vision', sequenceType(meta.visionDim), false),
    new Field('label', new Float32(), false),
    new Field('label_t', new Float32(), true),
    new Field('label_a', new Float32(), true),
    new Field('label_v', new Float32(), true),
    new Field('dialogue_id', new Utf8(), true),
    new Field('utterance_index', new Int32(), true),
    new Field('speaker', new Utf8(), true),
  ];
  return new Schema(fields, new Map([[META_KEY, JSON.stringify(meta)]]));
}

export const COLUMN_NAMES = [
  'id', 'dataset', 'language', 'split', 'text', 'audio', 'vision', 'label',
  'label_t', 'label_a', 'label_v', 'dialogue_id', 'utterance_index', 'speaker',
] as const;

const META_KEYS = new Set<string>([
  'schemaVersion', 'dataset', 'language', 'task', 'labelNames', 'labelNamesEn', 'labelRange',
  'audioDim', 'visionDim', 'textOnly', 'hasUnimodalLabels', 'source', 'license', 'cleaned', 'extra',
]);

/** Validates parsed metadata; errors name the file and the key. */
export function validateMeta(raw: unknown, file?: string): DatasetMeta {
  const fail = (key: string, msg: string): never => {
    throw new EgmfError(msg, { file, key: `${META_KEY}.${key}` });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new EgmfError('schema metadata is not a JSON object', { file, key: META_KEY });
  }
  const m = raw as Record<string, unknown>;
  for (const k of Object.keys(m)) if (!META_KEYS.has(k)) fail(k, 'unknown metadata key');
  if (m.schemaVersion !== SCHEMA_VERSION) {
    fail('schemaVersion', `unsupported schema version ${JSON.stringify(m.schemaVersion)} (this build reads ${SCHEMA_VERSION})`);
  }
  if (typeof m.dataset !== 'string' || m.dataset.length === 0) fail('dataset', 'must be a non-empty string');
  if (m.language !== 'en' && m.language !== 'zh') fail('language', `must be "en" or "zh", got ${JSON.stringify(m.language)}`);
  if (m.task !== 'classification' && m.task !== 'regression') {
    fail('task', `must be "classification" or "regression", got ${JSON.stringify(m.task)}`);
  }
  for (const k of ['audioDim', 'visionDim'] as const) {
    const v = m[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(k, `must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  for (const k of ['textOnly', 'hasUnimodalLabels'] as const) {
    if (typeof m[k] !== 'boolean') fail(k, 'must be a boolean');
  }
  for (const k of ['source', 'license'] as const) {
    if (typeof m[k] !== 'string') fail(k, 'must be a string');
  }
  if (m.task === 'classification') {
    const names = m.labelNames;
    if (!Array.isArray(names) || names.length < 2 || !names.every((s) => typeof s === 'string')) {
      fail('labelNames', 'classification needs at least two label names');
    }
    const en = m.labelNamesEn;
    if (en !== undefined && (!Array.isArray(en) || en.length !== (names as unknown[]).length)) {
      fail('labelNamesEn', 'must list one English name per label');
    }
  } else {
    const r = m.labelRange;
    if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'number' || typeof r[1] !== 'number' || !(r[0] < r[1])) {
      fail('labelRange', 'regression needs labelRange [min, max] with min < max');
    }
  }
  return m as unknown as DatasetMeta;
}

/** Checks one sample against the dataset's metadata; errors name the file and row. */
export function validateSample(s: AffectSample, meta: DatasetMeta, row: number, file?: string): void {
  const fail = (key: string, msg: string): never => {
    throw new EgmfError(msg, { file, row, key });
  };
  if (typeof s.id !== 'string' || s.id.length === 0) fail('id', 'id must be a non-empty string');
  if (typeof s.text !== 'string') fail('text', 'text must be a string');
  for (const [key, dim, arr] of [['audio', meta.audioDim, s.audio], ['vision', meta.visionDim, s.vision]] as const) {
    if (!(arr instanceof Float32Array)) fail(key, `${key} must be a Float32Array`);
    if (dim === 0 ? arr.length !== 0 : arr.length % dim !== 0) {
      fail(key, `feature width mismatch: ${arr.length} values is not a whole number of ${dim}-wide frames (sample '${s.id}')`);
    }
  }
  checkLabel(s.label, meta, 'label', (msg) => fail('label', `${msg} (sample '${s.id}')`));
  for (const key of ['labelT', 'labelA', 'labelV'] as const) {
    const v = s[key];
    if (v !== undefined && v !== null) checkLabel(v, meta, key, (msg) => fail(key, msg));
  }
}

function checkLabel(v: number, meta: DatasetMeta, _key: string, fail: (msg: string) => never): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`label ${String(v)} is not a finite number`);
  if (meta.task === 'classification') {
    const n = meta.labelNames?.length ?? 0;
    if (!Number.isInteger(v) || v < 0 || v >= n) fail(`label ${v} is outside the label set 0..${n - 1}`);
  } else {
    const [lo, hi] = meta.labelRange ?? [-Infinity, Infinity];
    if (v < lo || v > hi) fail(`label ${v} is outside the range [${lo}, ${hi}]`);
  }
}

/** Number of frames in a flat feature array. */
export function frameCount(values: Float32Array, dim: number): number {
  return dim === 0 ? 0 : values.length / dim;
}
