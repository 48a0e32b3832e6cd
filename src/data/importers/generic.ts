/**
 * Any text-labelled CSV, JSON array or JSON Lines file → text-only split files.
 *
 * Inputs: one file (its split from `--split-column` or `--split`), several files (`--input
 * a b c` or repeated `--input`), or a folder of `.csv`/`.json`/`.jsonl` files; with several
 * files each file's split comes from its name (a train/dev/val/valid/validation/eval/test
 * word in it) unless `--split-column` is given.
 * Columns: `--text-column`/`--label-column`, else detected from common names (columns.ts);
 * `--speaker-column`, `--dialogue-column` and `--utterance-index-column` keep dialogue
 * context.
 * Labels (classification): `--labels a,b,c` fixes the set and order; otherwise the sorted
 * unique values over all splits (numerically when every value is an integer, else by code
 * point). Regression needs `--range lo,hi`. One language per dataset.
 * Splits may be imported one at a time into the same `--out` (existing.ts): an added split
 * takes the label order and metadata of the splits already there.
 */
import { basename } from 'node:path';
import { EgmfError } from '../../errors.ts';
import type { Language, SplitName, TaskKind } from '../schema.ts';
import { detectColumn, LABEL_CANDIDATES, readSource, TEXT_CANDIDATES } from './columns.ts';
import type { Format, SourceFile } from './columns.ts';
import { checkAddition, existingSplits } from './existing.ts';
import { defaultDatasetName, formatOf, listFiles, splitFromFileName } from './generic-files.ts';
import type { DefaultName } from './generic-files.ts';
import { parseIndex, SPLIT_NAMES_TEXT, splitAlias, writeTextDataset } from './text.ts';
import type { LabelSpec, TextRow, TextSplit } from './text.ts';
import type { Importer } from './types.ts';

export { splitFromFileName } from './generic-files.ts';

interface GenericOptions {
  inputs: string[];
  format: Format | 'auto';
  textColumn?: string;
  labelColumn?: string;
  splitColumn?: string;
  split?: SplitName;
  languageColumn?: string;
  language?: Language;
  task: TaskKind;
  labels?: string[];
  range?: [number, number];
  idColumn?: string;
  speakerColumn?: string;
  dialogueColumn?: string;
  utteranceIndexColumn?: string;
  dataset?: string;
  license?: string;
  replace: boolean;
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
  if (format !== 'csv' && format !== 'jsonl' && format !== 'json' && format !== 'auto') {
    throw new EgmfError(`--format must be csv, jsonl, json or auto, got ${JSON.stringify(format)}`, { key: 'format' });
  }
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
  if (splitRaw !== undefined && split === undefined) throw new EgmfError(`--split must be ${SPLIT_NAMES_TEXT}, got ${JSON.stringify(splitRaw)}`, { key: 'split' });
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
  const replace = args.replace ?? false;
  if (typeof replace !== 'boolean') throw new EgmfError('--replace takes no value', { key: 'replace' });
  return {
    inputs, format, task, language, languageColumn, split, labels, range, replace,
    textColumn: opt(args, 'text-column'),
    labelColumn: opt(args, 'label-column'),
    splitColumn: opt(args, 'split-column'),
    idColumn: opt(args, 'id-column'),
    speakerColumn: opt(args, 'speaker-column'),
    dialogueColumn: opt(args, 'dialogue-column'),
    utteranceIndexColumn: opt(args, 'utterance-index-column'),
    dataset: opt(args, 'dataset'),
    license: opt(args, 'license'),
  };
}

function inferLabels(splits: TextSplit[]): string[] {
  const values = [...new Set(splits.flatMap((s) => s.rows.map((r) => r.label)))];
  if (values.every((v) => /^[+-]?\d+$/.test(v))) return values.sort((a, b) => Number(a) - Number(b));
  return values.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The text and label columns: as given, or detected in the first file (the others must have them too). */
function chooseColumns(o: GenericOptions, first: SourceFile, notes: string[]): { text: string; label: string } {
  const pick = (given: string | undefined, role: 'text' | 'label', candidates: readonly string[]): string => {
    if (given !== undefined) return given;
    const d = detectColumn(first, role, candidates);
    if (d.alsoFound.length > 0) {
      notes.push(`${role} column: also found ${d.alsoFound.map((c) => `'${c}'`).join(', ')}; used '${d.column}' by priority (${candidates.join(' > ')}); pass --${role}-column to choose`);
    }
    return d.column;
  };
  const text = pick(o.textColumn, 'text', TEXT_CANDIDATES);
  const label = pick(o.labelColumn, 'label', LABEL_CANDIDATES);
  const how = o.textColumn !== undefined && o.labelColumn !== undefined ? 'as given'
    : `${o.textColumn === undefined && o.labelColumn === undefined ? 'both' : o.textColumn === undefined ? 'text' : 'label'} auto-detected in ${basename(first.file)}; pass --text-column/--label-column to choose`;
  notes.push(`text column '${text}', label column '${label}' (${how})`);
  return { text, label };
}

interface Gathered {
  splits: TextSplit[];
  language: Language;
  labelKey: string;
  columns: { text: string; label: string };
  formats: Set<Format>;
}

/** Reads every file into rows per split, checking splits and that there is one language. */
function gatherSplits(o: GenericOptions, files: string[], notes: string[]): Gathered {
  if (o.split !== undefined && files.length > 1) throw new EgmfError('--split is for a single file; with several files name the split in each file name or use --split-column', { key: 'split' });
  if (o.split !== undefined && o.splitColumn !== undefined) throw new EgmfError('give --split or --split-column, not both', { key: 'split' });
  const bySplit = new Map<SplitName, { rows: TextRow[]; files: Set<string> }>();
  let language: { value: Language; where: string } | undefined = o.language === undefined ? undefined : { value: o.language, where: '--language' };
  let columns: { text: string; label: string } | undefined;
  const formats = new Set<Format>();
  // Utterance positions within each dialogue, when no column gives them.
  const positions = new Map<string, number>();
  for (const file of files) {
    let fileSplit = o.split;
    if (fileSplit === undefined && o.splitColumn === undefined) {
      fileSplit = files.length > 1 ? splitFromFileName(file) : undefined;
      if (fileSplit === undefined) {
        throw new EgmfError(files.length > 1
          ? `cannot tell this file's split from its name (use one of ${SPLIT_NAMES_TEXT} in it, or --split-column)`
          : 'name the split: --split train|valid|test (or dev, val, validation, eval), or --split-column', { file });
      }
    }
    const format = formatOf(file, o.format);
    formats.add(format);
    const src = readSource(file, format);
    if (src.records.length === 0) throw new EgmfError('no data rows', { file });
    columns ??= chooseColumns(o, src, notes);
    for (const [k, rec] of src.records.entries()) {
      const where = { file, line: rec.line };
      let split = fileSplit;
      if (split === undefined) {
        const v = rec.get(o.splitColumn!);
        split = splitAlias(v);
        if (split === undefined) throw new EgmfError(`unknown split ${JSON.stringify(v)} (expected ${SPLIT_NAMES_TEXT})`, { ...where, key: o.splitColumn });
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
        text: rec.get(columns.text), label: rec.get(columns.label), line: rec.line, file,
      };
      if (row.id === '') throw new EgmfError('empty id', { ...where, key: o.idColumn });
      if (o.speakerColumn !== undefined) row.speaker = rec.getOptional(o.speakerColumn);
      if (o.dialogueColumn !== undefined) row.dialogueId = rec.getOptional(o.dialogueColumn);
      if (o.utteranceIndexColumn !== undefined) {
        const v = rec.getOptional(o.utteranceIndexColumn);
        row.utteranceIndex = v === null ? null : parseIndex(v, file, rec.line, o.utteranceIndexColumn);
      } else if (row.dialogueId !== undefined && row.dialogueId !== null) {
        const key = `${split}\u0000${row.dialogueId}`;
        const at = positions.get(key) ?? 0;
        positions.set(key, at + 1);
        row.utteranceIndex = at;
      }
      let s = bySplit.get(split);
      if (s === undefined) bySplit.set(split, (s = { rows: [], files: new Set() }));
      s.files.add(file);
      s.rows.push(row);
    }
  }
  if (o.dialogueColumn !== undefined && o.utteranceIndexColumn === undefined) {
    notes.push('utterance index: the order of the rows within each dialogue, from 0 (pass --utterance-index-column to take it from a column)');
  }
  const splits: TextSplit[] = (['train', 'valid', 'test'] as const).flatMap((split) => {
    const s = bySplit.get(split);
    return s === undefined ? [] : [{ split, file: [...s.files].join(', '), rows: s.rows }];
  });
  return { splits, language: language!.value, labelKey: columns!.label, columns: columns!, formats };
}

export const genericImporter: Importer = {
  name: 'generic',
  describe: 'Any text-labelled CSV, JSON array or JSONL (one file, several, or a folder with one file per split), text only',
  manyInputs: true,
  options: {
    format: { choices: ['csv', 'jsonl', 'json', 'auto'], default: 'auto', describe: 'Input format (auto: from the extension: .csv, .jsonl/.ndjson, .json = one array of objects)' },
    'text-column': { type: 'string', describe: `Column/field holding the text (default: auto-detect ${TEXT_CANDIDATES.join(', ')}, any case)` },
    'label-column': { type: 'string', describe: `Column/field holding the label (default: auto-detect by priority ${LABEL_CANDIDATES.join(', ')}, any case)` },
    'split-column': { type: 'string', describe: 'Column/field naming each row\'s split (train, dev/val/valid/validation/eval, test)' },
    split: { type: 'string', describe: 'The split of a single-split file (train, dev/val/valid/validation/eval, test)' },
    'language-column': { type: 'string', describe: 'Column/field holding the language (en/zh; must be one value)' },
    language: { choices: ['en', 'zh'], describe: 'Language of the whole dataset' },
    task: { choices: ['classification', 'regression'], default: 'classification' },
    labels: { type: 'string', describe: 'Label set and order, comma-separated (default: sorted unique values, or the order of the splits already in --out)' },
    range: { type: 'string', nargs: 1, describe: 'Label range for regression, lo,hi (e.g. --range -3,3)' },
    'id-column': { type: 'string', describe: 'Column/field with a unique id per split (default: row number)' },
    'speaker-column': { type: 'string', describe: 'Column/field naming the speaker (kept as dialogue context)' },
    'dialogue-column': { type: 'string', describe: 'Column/field naming the dialogue a row belongs to' },
    'utterance-index-column': { type: 'string', describe: 'Column/field with the utterance position in its dialogue (default with --dialogue-column: row order)' },
    dataset: { type: 'string', describe: 'Dataset name (default: the file names without split/suffix words, else the folder name)' },
    license: { type: 'string', describe: 'Licence recorded in the metadata (default: unspecified)' },
    replace: { type: 'boolean', describe: 'Overwrite split files --out already holds for the splits this import brings (others are kept)' },
  },
  async run(args) {
    const o = parseOptions(args);
    const files = listFiles(o.inputs);
    const notes: string[] = [];
    const { splits, language, labelKey, columns, formats } = gatherSplits(o, files, notes);
    const existing = existingSplits(args.out, splits.map((s) => s.split), o.replace);
    let derived: DefaultName | undefined;
    let nameError: unknown;
    if (o.dataset === undefined) {
      try {
        derived = defaultDatasetName(o.inputs, files);
      } catch (e) {
        nameError = e;
      }
    }
    const info = {
      language, license: o.license ?? 'unspecified',
      source: `generic ${[...formats].join('/')} import of ${files.map((f) => basename(f)).join(', ')}`,
      extra: {
        textColumn: columns.text, labelColumn: columns.label, idColumn: o.idColumn ?? null, splitColumn: o.splitColumn ?? null,
        speakerColumn: o.speakerColumn ?? null, dialogueColumn: o.dialogueColumn ?? null, utteranceIndexColumn: o.utteranceIndexColumn ?? null,
      },
    };
    let spec: LabelSpec;
    if (existing.meta !== undefined) {
      // Adding splits beside kept ones: their metadata, label order included, is the dataset's.
      const meta = existing.meta;
      const dataset = checkAddition({ meta, metaFile: existing.metaFile! }, {
        dataset: o.dataset !== undefined ? { name: o.dataset, what: '--dataset' } : derived && { name: derived.name, what: `the dataset name (from the ${derived.from})` },
        language, task: o.task, labels: o.labels, range: o.range, license: o.license, labelKey,
      }, splits);
      spec = meta.task === 'regression'
        ? { task: 'regression', range: meta.labelRange! }
        : { task: 'classification', values: meta.labelNames!, labelNamesEn: meta.labelNamesEn };
      if (o.dataset === undefined) notes.push(`dataset name '${dataset}' (from the existing ${existing.metaFile})`);
      if (spec.task === 'classification') notes.push(`labels (from the existing ${existing.metaFile}): ${spec.values.map((v, i) => `${v}:${i}`).join(', ')}`);
      notes.push(`added ${splits.map((s) => s.split).join(', ')} beside the kept ${existing.kept.join(', ')} in ${args.out}; metadata (source, licence, column map) copied from ${existing.metaFile} so the folder stays one dataset`);
      if (existing.replaced.length > 0) notes.push(`replaced ${existing.replaced.map((s) => `${s}.arrow`).join(', ')} (--replace)`);
      return writeTextDataset(args.out, { ...info, dataset }, spec, splits, labelKey, notes, { meta, keep: existing.kept });
    }
    if (nameError !== undefined) throw nameError;
    const dataset = o.dataset ?? derived!.name;
    if (derived !== undefined) notes.push(`dataset name '${dataset}' (from the ${derived.from}; pass --dataset to choose)`);
    if (o.task === 'regression') {
      spec = { task: 'regression', range: o.range! };
      notes.push(`regression labels in [${o.range![0]}, ${o.range![1]}]`);
    } else {
      const values = o.labels ?? inferLabels(splits);
      if (values.length < 2) throw new EgmfError(`classification needs at least two labels; found only ${JSON.stringify(values)}`, { file: files.join(', '), key: labelKey });
      spec = { task: 'classification', values, labelNamesEn: language === 'en' ? values : undefined };
      notes.push(`labels (${o.labels ? 'from --labels' : 'inferred: sorted unique values'}): ${values.map((v, i) => `${v}:${i}`).join(', ')}`);
    }
    if (existing.replaced.length > 0) notes.push(`replaced ${existing.replaced.map((s) => `${s}.arrow`).join(', ')} (--replace)`);
    return writeTextDataset(args.out, { ...info, dataset }, spec, splits, labelKey, notes);
  },
};
