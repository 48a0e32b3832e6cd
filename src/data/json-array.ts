/**
 * JSON array reading for importers: a file holding one top-level array of objects
 * (`[ {...}, {...} ]`), strict UTF-8. Errors name the file, the element and the line it
 * starts on.
 *
 * Each element is located by a scan that only tracks strings and bracket depth, then parsed
 * on its own with JSON.parse. That is what lets a truncated or malformed file say which
 * element broke (JSON.parse of the whole text only gives a character offset), and it gives
 * every record the line it starts on for later error messages. Element indices are 0-based,
 * as in `jq '.[3]'`; the line number disambiguates.
 */
import { EgmfError } from '../errors.ts';
import { decodeUtf8, readInputFile } from './csv.ts';

export interface JsonArrayRecord {
  value: Record<string, unknown>;
  /** 1-based line the element starts on. */
  line: number;
  /** 0-based position in the array. */
  index: number;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

export function readJsonArray(file: string): JsonArrayRecord[] {
  const text = decodeUtf8(readInputFile(file), file);
  // Line starts, so an offset can be turned into a line number with a binary search.
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 0x0a) lineStarts.push(i + 1);
  const lineAt = (offset: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const skip = (i: number): number => {
    while (i < text.length && WS.has(text.charCodeAt(i))) i++;
    return i;
  };

  let i = skip(0);
  if (i === text.length) throw new EgmfError('empty file: expected a JSON array of objects ([ {...}, {...} ])', { file });
  if (text[i] !== '[') {
    const what = text[i] === '{' ? 'an object' : 'not an array';
    throw new EgmfError(`the top-level JSON value is ${what}; expected an array of objects ([ {...}, {...} ])${text[i] === '{' ? ' (for one object per line use --format jsonl)' : ''}`, { file, line: lineAt(i) });
  }
  const out: JsonArrayRecord[] = [];
  i = skip(i + 1);
  if (text[i] === ']') return finish(i);
  for (;;) {
    const index = out.length;
    if (i >= text.length) throw truncated(i, `the file ends before element ${index}`);
    const start = i;
    const end = elementEnd(start, index);
    const line = lineAt(start);
    let v: unknown;
    try {
      v = JSON.parse(text.slice(start, end));
    } catch (e) {
      throw new EgmfError(`element ${index}: invalid JSON (${(e as Error).message})`, { file, line });
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new EgmfError(`element ${index} is not a JSON object (got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`})`, { file, line });
    }
    out.push({ value: v as Record<string, unknown>, line, index });
    i = skip(end);
    if (i >= text.length) throw truncated(i, `no closing ] after element ${index}`);
    if (text[i] === ']') return finish(i);
    if (text[i] !== ',') throw new EgmfError(`expected , or ] after element ${index}, got ${JSON.stringify(text[i])}`, { file, line: lineAt(i) });
    i = skip(i + 1);
    if (text[i] === ']') throw new EgmfError(`trailing comma after element ${index}`, { file, line: lineAt(i) });
  }

  function finish(close: number): JsonArrayRecord[] {
    const rest = skip(close + 1);
    if (rest < text.length) throw new EgmfError(`unexpected ${JSON.stringify(text[rest])} after the closing ] of the array`, { file, line: lineAt(rest) });
    return out;
  }

  function truncated(at: number, what: string): EgmfError {
    const done = out.length === 0 ? 'no element was complete' : out.length === 1 ? 'element 0 was complete' : `elements 0-${out.length - 1} were complete`;
    return new EgmfError(`truncated JSON array: ${what}; ${done}`, { file, line: lineAt(Math.min(at, text.length)) });
  }

  /** Offset just past the element starting at `start`: its closing bracket, or the next top-level , or ]. */
  function elementEnd(start: number, index: number): number {
    let depth = 0;
    let j = start;
    while (j < text.length) {
      const c = text.charCodeAt(j);
      if (c === 0x22) {
        const from = j;
        j++;
        while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
        if (j >= text.length) {
          throw truncated(from, `a string in element ${index} (which starts on line ${lineAt(start)}) is never closed`);
        }
        j++;
        if (depth === 0) return j;
        continue;
      }
      if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        if (depth === 0) return j; // a bare scalar followed by ]
        depth--;
        if (depth === 0) return j + 1;
      } else if (depth === 0 && (c === 0x2c || WS.has(c))) return j;
      j++;
    }
    if (depth > 0) {
      throw truncated(start, `element ${index} is not closed (the file ends on line ${lineAt(text.length)})`);
    }
    return j;
  }
}
