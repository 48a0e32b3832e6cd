/**
 * Source records of the generic importer as named fields, whatever the file format (CSV,
 * JSON Lines, JSON array), and detection of the text and label columns when they are not
 * named on the command line.
 *
 * Detection looks for common column names, case-insensitively, in a fixed priority order;
 * the first name present wins. When a lower-priority candidate is present too (a file with
 * both `emotion` and `sentiment`), the import still goes ahead with the higher one and the
 * report's notes say which other candidates were seen, so the choice is visible and
 * `--label-column` can override it. Erroring instead would make the common "label plus
 * some other tag" file need a flag every time.
 */
import { EgmfError } from '../../errors.ts';
import { columnIndex, readCsvTable } from '../csv.ts';
import { readJsonArray } from '../json-array.ts';
import { readJsonl } from '../jsonl.ts';

export type Format = 'csv' | 'jsonl' | 'json';

/** A source row as named fields. */
export interface SourceRecord {
  /** A required field as a string; errors name the file, line (and element) and field. */
  get(column: string): string;
  /** An optional field: null when absent, null or empty. */
  getOptional(column: string): string | null;
  line: number;
}

export interface SourceFile {
  file: string;
  format: Format;
  /** The CSV header, or the keys of the first JSON record. */
  columns: string[];
  records: SourceRecord[];
}

export function readSource(file: string, format: Format): SourceFile {
  if (format === 'csv') {
    const t = readCsvTable(file);
    const cols = new Map<string, number>();
    const index = (c: string): number => {
      let i = cols.get(c);
      if (i === undefined) cols.set(c, (i = columnIndex(t, c)));
      return i;
    };
    const records = t.rows.map((r, k): SourceRecord => ({
      line: t.lines[k]!,
      get: (c) => r[index(c)]!,
      getOptional: (c) => {
        const v = r[index(c)]!;
        return v === '' ? null : v;
      },
    }));
    return { file, format, columns: t.header, records };
  }
  const rows = format === 'json'
    ? readJsonArray(file).map((r) => ({ value: r.value, line: r.line, where: `element ${r.index}: ` }))
    : readJsonl(file).map((r) => ({ value: r.value, line: r.line, where: '' }));
  const records = rows.map(({ value, line, where }): SourceRecord => {
    const scalar = (c: string, v: unknown): string => {
      if (typeof v === 'string') return v;
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      throw new EgmfError(`${where}field '${c}' must be a string or number, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`, { file, line, key: c });
    };
    return {
      line,
      get: (c) => {
        const v = value[c];
        if (v === undefined) throw new EgmfError(`${where}missing field '${c}' (this record has: ${Object.keys(value).join(', ')})`, { file, line, key: c });
        return scalar(c, v);
      },
      getOptional: (c) => {
        const v = value[c];
        if (v === undefined || v === null || v === '') return null;
        return scalar(c, v);
      },
    };
  });
  return { file, format, columns: rows.length > 0 ? Object.keys(rows[0]!.value) : [], records };
}

/** Text column candidates, highest priority first. */
export const TEXT_CANDIDATES = ['text', 'utterance', 'sentence', 'content', 'transcript', 'transcription'] as const;
/** Label column candidates, highest priority first (an explicit `label` beats a named kind of label). */
export const LABEL_CANDIDATES = ['label', 'emotion', 'emotion_label', 'sentiment', 'class'] as const;

export interface Detected {
  column: string;
  /** Other candidates present in the file, lower in priority. */
  alsoFound: string[];
}

/** Finds the first candidate among the file's columns (case-insensitive); errors list the columns found. */
export function detectColumn(src: SourceFile, role: 'text' | 'label', candidates: readonly string[]): Detected {
  const hits: string[] = [];
  for (const cand of candidates) {
    const matches = src.columns.filter((c) => c.trim().toLowerCase() === cand);
    if (matches.length > 1) {
      throw new EgmfError(`columns ${matches.map((m) => `'${m}'`).join(' and ')} both look like the ${role} column; pass --${role}-column to choose`, { file: src.file });
    }
    if (matches.length === 1) hits.push(matches[0]!);
  }
  if (hits.length === 0) {
    const what = src.format === 'csv' ? 'the header has' : 'the first record has the keys';
    throw new EgmfError(
      `cannot find the ${role} column: none of ${candidates.join(', ')} (any case); ${what}: ${src.columns.join(', ') || '(none)'}; pass --${role}-column NAME`,
      { file: src.file },
    );
  }
  return { column: hits[0]!, alsoFound: hits.slice(1) };
}
