/**
 * Strict text-file reading for importers: UTF-8 decoding that refuses invalid bytes, and an
 * RFC 4180 CSV parser (quoted fields with commas, doubled quotes and line breaks; CRLF, LF or
 * CR record ends). Every error names the file and the line it was found on.
 *
 * Deliberate choices:
 * - A UTF-8 byte-order mark is dropped; nothing else in the text is touched, so a field's
 *   characters (including a LF inside a quoted field of a CRLF file) come back exactly.
 * - A quote inside an unquoted field, or anything but a comma or line end after a closing
 *   quote, is an error rather than a guess (Python's csv module guesses).
 * - Blank lines (outside quotes) are skipped, like Python's csv.DictReader.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { EgmfError } from '../errors.ts';

const BOM = 0xfeff;

/** Reads a file that must exist and be a regular file; errors name it. */
export function readInputFile(path: string): Uint8Array {
  if (!existsSync(path)) throw new EgmfError('file not found', { file: path });
  if (statSync(path).isDirectory()) throw new EgmfError('is a folder, expected a file', { file: path });
  return readFileSync(path);
}

/**
 * Decodes UTF-8 strictly and drops a leading byte-order mark. Invalid bytes are an error that
 * names the file, the line and the byte offset of the first bad byte.
 */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    const hex = Array.from(bytes.subarray(at, at + 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new EgmfError(`invalid UTF-8 at byte ${at} (bytes ${hex}); re-save the file as UTF-8`, { file, line });
  }
  return text.charCodeAt(0) === BOM ? text.slice(1) : text;
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) { i++; continue; }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0; // overlong
      if (c === 0xed) hi = 0x9f; // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90; // overlong
      if (c === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined) return i;
      const [l, h] = k === 1 ? [lo, hi] : [0x80, 0xbf];
      if (d < l || d > h) return i;
    }
    i += n + 1;
  }
  return b.length;
}

/** One CSV record and the 1-based line it starts on. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

const COMMA = 0x2c;
const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

/** Parses CSV text into records; `file` is only used in error messages. */
export function* parseCsv(text: string, file: string): Generator<CsvRecord> {
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let blank = true;
    for (;;) {
      let value: string;
      if (i < n && text.charCodeAt(i) === QUOTE) {
        blank = false;
        const quoteLine = line;
        i++;
        let parts = '';
        let from = i;
        for (;;) {
          const q = text.indexOf('"', i);
          if (q < 0) throw new EgmfError('unterminated quoted field (no closing ")', { file, line: quoteLine });
          line += countLineBreaks(text, i, q);
          if (text.charCodeAt(q + 1) === QUOTE) {
            parts += text.slice(from, q + 1);
            i = q + 2;
            from = i;
            continue;
          }
          value = parts + text.slice(from, q);
          i = q + 1;
          break;
        }
        const c = i < n ? text.charCodeAt(i) : -1;
        if (c !== COMMA && c !== LF && c !== CR && c !== -1) {
          throw new EgmfError(`unexpected ${JSON.stringify(text[i])} after a closing quote (a quote inside a quoted field must be doubled: "")`, { file, line });
        }
      } else {
        const from = i;
        while (i < n) {
          const c = text.charCodeAt(i);
          if (c === COMMA || c === LF || c === CR) break;
          if (c === QUOTE) {
            throw new EgmfError('quote inside an unquoted field (quote the whole field and double the inner quote: "a ""b"" c")', { file, line });
          }
          i++;
        }
        value = text.slice(from, i);
        if (value.length > 0) blank = false;
      }
      fields.push(value);
      const c = i < n ? text.charCodeAt(i) : -1;
      if (c === COMMA) {
        blank = false;
        i++;
        continue;
      }
      if (c === CR) i += text.charCodeAt(i + 1) === LF ? 2 : 1;
      else if (c === LF) i++;
      if (c !== -1) line++;
      break;
    }
    if (!blank) yield { fields, line: start };
  }
}

function countLineBreaks(text: string, from: number, to: number): number {
  let k = 0;
  for (let j = from; j < to; j++) {
    const c = text.charCodeAt(j);
    if (c === LF || (c === CR && text.charCodeAt(j + 1) !== LF)) k++;
  }
  return k;
}

/** A CSV file with a header row, checked to be rectangular. */
export interface CsvTable {
  file: string;
  header: string[];
  /** Data rows, each as long as the header. */
  rows: string[][];
  /** 1-based line each data row starts on (parallel to rows). */
  lines: number[];
}

/** Reads a CSV file with a header; errors for a missing/empty file, invalid UTF-8, ragged rows. */
export function readCsvTable(file: string): CsvTable {
  const text = decodeUtf8(readInputFile(file), file);
  const rows: string[][] = [];
  const lines: number[] = [];
  let header: string[] | undefined;
  for (const rec of parseCsv(text, file)) {
    if (header === undefined) {
      header = rec.fields;
      continue;
    }
    if (rec.fields.length !== header.length) {
      throw new EgmfError(`row has ${rec.fields.length} fields, the header has ${header.length}`, { file, line: rec.line });
    }
    rows.push(rec.fields);
    lines.push(rec.line);
  }
  if (header === undefined) throw new EgmfError('empty file: no header row', { file });
  return { file, header, rows, lines };
}

/** Index of a header column; errors name the column, the file and the columns it has. */
export function columnIndex(t: { file: string; header: string[] }, name: string): number {
  const i = t.header.indexOf(name);
  if (i < 0) {
    throw new EgmfError(`missing column '${name}' (the header has: ${t.header.join(', ')})`, { file: t.file, key: name });
  }
  if (t.header.indexOf(name, i + 1) >= 0) throw new EgmfError(`column '${name}' appears more than once in the header`, { file: t.file, key: name });
  return i;
}
