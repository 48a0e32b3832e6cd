/**
 * Any text-labelled CSV or JSONL → text-only split files.
 *
 * Inputs: one file (its split from `--split-column` or `--split`), several files, or a
 * folder of `.csv`/`.jsonl` files; with several files each file's split comes from its
 * name (a `train`/`dev`/`val`/`valid`/`validation`/`test` word in it) unless
 * `--split-column` is given.
 * Labels (classification): `--labels a,b,c` fixes the set and order; otherwise the sorted
 * unique values over all splits (numerically when every value is an integer, else by code
 * point). Regression needs `--range lo,hi`. One language per dataset.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { columnIndex, readCsvTable, readInputFile } from '../csv.ts';
import { readJsonl } from '../jsonl.ts';
import type { Language, SplitName, TaskKind } from '../schema.ts';
import { splitAlias, writeTextDataset } from './text.ts';
import type { LabelSpec, TextRow, TextSplit } from './text.ts';
import type { Importer } from './types.ts';

type Format = 'csv' | 'jsonl';

interface GenericOptions {
  inputs: string[];
  format: Format | 'auto';
  textColumn: string;
  labelColumn: string;
  splitColumn?: string;
  split?: SplitName;
  languageColumn?: string;
  language?: Language;
  task: TaskKind;
  labels?: string[];
  range?: [number, number];
  idColumn?: string;
  dataset?: string;
  license: string;
}

/** A source row as named fields, whatever the format. */
interface SourceRecord {
  get(column: string): string;
  line: number;
}

function opt(args: Record<string, unknown>, key: string): string | undefined {
  const v = args[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') throw new EgmfError(`--${key} takes one value`, { key });
  return String(v);
}

function parseOptions(args: { input: unknown } & Record<string, unknown>): GenericOptions {
  const raw = args.input;
  const inputs = (Array.isArray(raw) ? raw : [raw]).map(String);
  const format = opt(args, 'format') ?? 'auto';
  if (format !== 'csv' && format !== 'jsonl' && format !== 'auto') throw new EgmfError(`--format must be csv, jsonl or auto, got ${JSON.stringify(format)}`, { key: 'format' });
  const task = opt(args, 'task') ?? 'classification';
  if (task !== 'classification' && task !== 'regression') throw new EgmfError(`--task must be classification or regression, got ${JSON.stringify(task)}`, { key: 'task' });
  const language = opt(args, 'language');
  if (language !== undefined && language !== 'en' && language !== 'zh') throw new EgmfError(`--language must be en or zh, got ${JSON.stringify(language)}`, { key: 'language' });
  const languageColumn = opt(args, 'language-column');
  if ((language === undefined) === (languageColumn === undefined)) {
    throw new EgmfError('name the language with exactly one of --language en|zh or --language-column', { key: 'language' });
  }
  const splitRaw = opt(args, 'split');
  const split = splitRaw === undefined ? undefined : splitAlias(splitRaw);
  if (splitRaw !== undefined && split === undefined) throw new EgmfError(`--split must be train, dev, valid, validation or test, got ${JSON.stringify(splitRaw)}`, { key: 'split' });
  const labelsRaw = opt(args, 'labels');
  let labels: string[] | undefined;
  if (labelsRaw !== undefined) {
    labels = labelsRaw.split(',').map((s) => s.trim());
    if (labels.some((l) => l === '') || new Set(labels).size !== labels.length || labels.length < 2) {
      throw new EgmfError(`--labels must list at least two distinct, non-empty labels, got ${JSON.stringify(labelsRaw)}`, { key: 'labels' });
    }
  }
  const rangeRaw = opt(args, 'range');
  let range: [number, number] | undefined;
  if (rangeRaw !== undefined) {
    const p = rangeRaw.split(',').map((s) => Number(s.trim()));
    if (p.length !== 2 || !p.every(Number.isFinite) || !(p[0]! < p[1]!)) {
      throw new EgmfError(`--range must be lo,hi with lo < hi (e.g. --range=-3,3), got ${JSON.stringify(rangeRaw)}`, { key: 'range' });
    }
    range = [p[0]!, p[1]!];
  }
  if (task === 'regression' && range === undefined) throw new EgmfError('--task regression needs --range lo,hi (e.g. --range=-3,3)', { key: 'range' });
  if (task === 'regression' && labels !== undefined) throw new EgmfError('--labels is for classification; regression takes --range', { key: 'labels' });
  if (task === 'classification' && range !== undefined) throw new EgmfError('--range is for regression; classification takes --labels', { key: 'range' });
  return {
    inputs, format, task, language, languageColumn, split, labels, range,
    textColumn: opt(args, 'text-column') ?? 'text',
    labelColumn: opt(args, 'label-column') ?? 'label',
    splitColumn: opt(args, 'split-column'),
    idColumn: opt(args, 'id-column'),
    dataset: opt(args, 'dataset'),
    license: opt(args, 'license') ?? 'unspecified',
  };
}

const EXTENSIONS: Record<string, Format> = { '.csv': 'csv', '.jsonl': 'jsonl', '.ndjson': 'jsonl' };

/** Expands a folder into its CSV/JSONL files; checks every named path exists. */
function listFiles(inputs: string[]): string[] {
  if (inputs.length === 1) {
    requireExists(inputs[0]!);
    if (statSync(inputs[0]!).isDirectory()) {
      const dir = inputs[0]!;
      const files = readdirSync(dir).filter((f) => EXTENSIONS[extname(f).toLowerCase()] !== undefined).sort().map((f) => join(dir, f));
      if (files.length === 0) throw new EgmfError('folder holds no .csv, .jsonl or .ndjson files', { file: dir });
      return files;
    }
    return inputs;
  }
  for (const f of inputs) readInputFile(f);
  return inputs;
}

function requireExists(path: string): void {
  try {
    statSync(path);
  } catch {
    throw new EgmfError('file or folder not found', { file: path });
  }
}

function formatOf(file: string, format: Format | 'auto'): Format {
  if (format !== 'auto') return format;
  const f = EXTENSIONS[extname(file).toLowerCase()];
  if (f === undefined) throw new EgmfError('cannot tell the format from the file name; pass --format csv or --format jsonl', { file });
  return f;
}

/** The split a file name names (`dev_sent_emo.csv` → valid), if exactly one. */
export function splitFromFileName(file: string): SplitName | undefined {
  const stem = basename(file, extname(file)).toLowerCase();
  const found = new Set(stem.split(/[^a-z]+/).map(splitAlias).filter((s): s is SplitName => s !== undefined));
  return found.size === 1 ? [...found][0] : undefined;
}

function readRecords(file: string, format: Format): SourceRecord[] {
  if (format === 'csv') {
    const t = readCsvTable(file);
    const cols = new Map<string, number>();
    const index = (c: string): number => {
      let i = cols.get(c);
      if (i === undefined) cols.set(c, (i = columnIndex(t, c)));
      return i;
    };
    return t.rows.map((r, k) => ({ line: t.lines[k]!, get: (c: string) => r[index(c)]! }));
  }
  return readJsonl(file).map(({ value, line }) => ({
    line,
    get: (c: string): string => {
      const v = value[c];
      if (v === undefined) throw new EgmfError(`missing field '${c}'`, { file, line, key: c });
      if (typeof v === 'string') return v;
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      throw new EgmfError(`field '${c}' must be a string or number, got ${v === null ? 'null' : typeof v}`, { file, line, key: c });
    },
  }));
}

function inferLabels(splits: TextSplit[]): string[] {
  const values = [...new Set(splits.flatMap((s) => s.rows.map((r) => r.label)))];
  if (values.every((v) => /^[+-]?\d+$/.test(v))) return values.sort((a, b) => Number(a) - Number(b));
  return values.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A single file's stem, a folder's name, or the folder holding several files. */
function defaultName(inputs: string[]): string {
  const first = resolve(inputs[0]!);
  if (inputs.length > 1) return basename(dirname(first));
  return statSync(first).isDirectory() ? basename(first) : basename(first, extname(first));
}

/** Reads every file into rows per split, checking splits and that there is one language. */
function gatherSplits(o: GenericOptions, files: string[]): { splits: TextSplit[]; language: Language } {
  if (o.split !== undefined && files.length > 1) throw new EgmfError('--split is for a single file; with several files name the split in each file name or use --split-column', { key: 'split' });
  if (o.split !== undefined && o.splitColumn !== undefined) throw new EgmfError('give --split or --split-column, not both', { key: 'split' });
  const bySplit = new Map<SplitName, { rows: TextRow[]; files: Set<string> }>();
  let language: { value: Language; where: string } | undefined = o.language === undefined ? undefined : { value: o.language, where: '--language' };
  for (const file of files) {
    let fileSplit = o.split;
    if (fileSplit === undefined && o.splitColumn === undefined) {
      fileSplit = files.length > 1 ? splitFromFileName(file) : undefined;
      if (fileSplit === undefined) {
        throw new EgmfError(files.length > 1
          ? 'cannot tell this file\'s split from its name (use train/dev/valid/validation/test in it, or --split-column)'
          : 'name the split: --split train|valid|test, or --split-column', { file });
      }
    }
    const records = readRecords(file, formatOf(file, o.format));
    if (records.length === 0) throw new EgmfError('no data rows', { file });
    for (const [k, rec] of records.entries()) {
      const where = { file, line: rec.line };
      let split = fileSplit;
      if (split === undefined) {
        const v = rec.get(o.splitColumn!);
        split = splitAlias(v);
        if (split === undefined) throw new EgmfError(`unknown split ${JSON.stringify(v)} (expected train, dev, valid, validation or test)`, { ...where, key: o.splitColumn });
      }
      if (o.languageColumn !== undefined) {
        const v = rec.get(o.languageColumn).trim().toLowerCase();
        if (v !== 'en' && v !== 'zh') throw new EgmfError(`unknown language ${JSON.stringify(v)} (expected en or zh)`, { ...where, key: o.languageColumn });
        if (language === undefined) language = { value: v, where: `${file} line ${rec.line}` };
        else if (language.value !== v) {
          throw new EgmfError(`mixed languages: '${v}' here and '${language.value}' at ${language.where}; a dataset holds one language, so import each language as its own dataset`, { ...where, key: o.languageColumn });
        }
      }
      const row: TextRow = {
        id: o.idColumn !== undefined ? rec.get(o.idColumn) : files.length > 1 ? `${basename(file)}:${k + 1}` : String(k + 1),
        text: rec.get(o.textColumn), label: rec.get(o.labelColumn), line: rec.line, file,
      };
      if (row.id === '') throw new EgmfError('empty id', { ...where, key: o.idColumn });
      let s = bySplit.get(split);
      if (s === undefined) bySplit.set(split, (s = { rows: [], files: new Set() }));
      s.files.add(file);
      s.rows.push(row);
    }
  }
  const splits: TextSplit[] = (['train', 'valid', 'test'] as const).flatMap((split) => {
    const s = bySplit.get(split);
    return s === undefined ? [] : [{ split, file: [...s.files].join(', '), rows: s.rows }];
  });
  return { splits, language: language!.value };
}

export const genericImporter: Importer = {
  name: 'generic',
  describe: 'Any text-labelled CSV or JSONL (one file, several, or a folder with one file per split), text only',
  options: {
    format: { choices: ['csv', 'jsonl', 'auto'], default: 'auto', describe: 'Input format (auto: from the file extension)' },
    'text-column': { type: 'string', default: 'text', describe: 'Column/field holding the text' },
    'label-column': { type: 'string', default: 'label', describe: 'Column/field holding the label' },
    'split-column': { type: 'string', describe: 'Column/field naming each row\'s split (train/dev/valid/validation/test)' },
    split: { type: 'string', describe: 'The split of a single-split file' },
    'language-column': { type: 'string', describe: 'Column/field holding the language (en/zh; must be one value)' },
    language: { choices: ['en', 'zh'], describe: 'Language of the whole dataset' },
    task: { choices: ['classification', 'regression'], default: 'classification' },
    labels: { type: 'string', describe: 'Label set and order, comma-separated (default: sorted unique values)' },
    range: { type: 'string', nargs: 1, describe: 'Label range for regression, lo,hi (e.g. --range -3,3)' },
    'id-column': { type: 'string', describe: 'Column/field with a unique id per split (default: row number)' },
    dataset: { type: 'string', describe: 'Dataset name (default: the input file or folder name; with several files, their folder\'s)' },
    license: { type: 'string', default: 'unspecified', describe: 'Licence recorded in the metadata' },
  },
  async run(args) {
    const o = parseOptions(args);
    const files = listFiles(o.inputs);
    const { splits, language } = gatherSplits(o, files);
    const notes: string[] = [];
    let spec: LabelSpec;
    if (o.task === 'regression') {
      spec = { task: 'regression', range: o.range! };
      notes.push(`regression labels in [${o.range![0]}, ${o.range![1]}]`);
    } else {
      const values = o.labels ?? inferLabels(splits);
      if (values.length < 2) throw new EgmfError(`classification needs at least two labels; found only ${JSON.stringify(values)}`, { file: files.join(', '), key: o.labelColumn });
      spec = { task: 'classification', values, labelNamesEn: language === 'en' ? values : undefined };
      notes.push(`labels (${o.labels ? 'from --labels' : 'inferred: sorted unique values'}): ${values.map((v, i) => `${v}:${i}`).join(', ')}`);
    }
    const dataset = o.dataset ?? defaultName(o.inputs);
    return writeTextDataset(args.out, {
      dataset, language, source: `generic ${o.format} import of ${files.map((f) => basename(f)).join(', ')}`, license: o.license,
      extra: { textColumn: o.textColumn, labelColumn: o.labelColumn, idColumn: o.idColumn ?? null, splitColumn: o.splitColumn ?? null },
    }, spec, splits, o.labelColumn, notes);
  },
};
