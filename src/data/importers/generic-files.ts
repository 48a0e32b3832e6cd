/**
 * What the generic importer reads from file names: the input files (a folder expands to its
 * CSV/JSON/JSONL files), each file's format and split, and a default dataset name.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { readInputFile } from '../csv.ts';
import type { SplitName } from '../schema.ts';
import type { Format } from './columns.ts';
import { splitAlias } from './text.ts';

const EXTENSIONS: Record<string, Format> = { '.csv': 'csv', '.jsonl': 'jsonl', '.ndjson': 'jsonl', '.json': 'json' };

/** Expands a folder into its CSV/JSON/JSONL files; checks every named path exists. */
export function listFiles(inputs: string[]): string[] {
  if (inputs.length === 1) {
    requireExists(inputs[0]!);
    if (statSync(inputs[0]!).isDirectory()) {
      const dir = inputs[0]!;
      const files = readdirSync(dir).filter((f) => EXTENSIONS[extname(f).toLowerCase()] !== undefined).sort().map((f) => join(dir, f));
      if (files.length === 0) throw new EgmfError('folder holds no .csv, .json, .jsonl or .ndjson files', { file: dir });
      return files;
    }
    return inputs;
  }
  for (const f of inputs) readInputFile(f);
  const seen = new Set<string>();
  for (const f of inputs) {
    if (seen.has(resolve(f))) throw new EgmfError('named twice in --input', { file: f, key: 'input' });
    seen.add(resolve(f));
  }
  return inputs;
}

function requireExists(path: string): void {
  try {
    statSync(path);
  } catch {
    throw new EgmfError('file or folder not found', { file: path });
  }
}

export function formatOf(file: string, format: Format | 'auto'): Format {
  if (format !== 'auto') return format;
  const f = EXTENSIONS[extname(file).toLowerCase()];
  if (f === undefined) throw new EgmfError('cannot tell the format from the file name; pass --format csv, --format jsonl or --format json', { file });
  return f;
}

/** The split a file name names (`dev_sent_emo.csv` → valid, `x_eval_labeled.json` → valid), if exactly one. */
export function splitFromFileName(file: string): SplitName | undefined {
  const stem = basename(file, extname(file)).toLowerCase();
  const found = new Set(stem.split(/[^a-z]+/).map(splitAlias).filter((s): s is SplitName => s !== undefined));
  return found.size === 1 ? [...found][0] : undefined;
}

/** Words that name a split or a processing stage rather than the dataset. */
const NOISE_WORDS = new Set([
  'train', 'training', 'dev', 'val', 'valid', 'validation', 'test', 'testing', 'eval', 'evaluation',
  'labeled', 'labelled', 'unlabeled', 'unlabelled', 'final', 'split', 'splits', 'data',
]);

/**
 * A file or folder name without its split and suffix words: `emo_train_final` → `emo`,
 * `cn_emotion_eval_labeled` → `cn_emotion`. The separators between the kept words stay.
 */
export function cleanStem(name: string): string {
  const parts = name.split(/([_.\-\s]+)/);
  let out = '';
  let sep = '';
  for (let k = 0; k < parts.length; k += 2) {
    const word = parts[k]!;
    if (word !== '' && !NOISE_WORDS.has(word.toLowerCase())) out += (out === '' ? '' : sep) + word;
    sep = parts[k + 1] ?? '';
  }
  return out;
}

export interface DefaultName {
  name: string;
  from: 'file names' | 'folder name';
}

/**
 * The dataset name when `--dataset` is not given: the cleaned stem shared by every file, else
 * the cleaned name of their folder (the input folder, or the one holding the files).
 * Errors when neither leaves anything.
 */
export function defaultDatasetName(inputs: string[], files: string[]): DefaultName {
  const stems = new Set(files.map((f) => cleanStem(basename(f, extname(f)))));
  const [only] = stems;
  if (stems.size === 1 && only !== '') return { name: only!, from: 'file names' };
  const first = resolve(inputs[0]!);
  const folder = basename(inputs.length === 1 && statSync(first).isDirectory() ? first : dirname(first));
  const fromFolder = cleanStem(folder);
  if (fromFolder !== '') return { name: fromFolder, from: 'folder name' };
  throw new EgmfError(
    `cannot make a dataset name from the file names (${files.map((f) => basename(f)).join(', ')}) or the folder name '${folder}'; pass --dataset NAME`,
    { key: 'dataset' },
  );
}
