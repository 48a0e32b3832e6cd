/**
 * JSON Lines reading for importers: one JSON object per line, strict UTF-8, blank lines
 * skipped. Errors name the file and the line.
 */
import { EgmfError } from '../errors.ts';
import { decodeUtf8, readInputFile } from './csv.ts';

export interface JsonlRecord {
  value: Record<string, unknown>;
  /** 1-based line in the file. */
  line: number;
}

export function readJsonl(file: string): JsonlRecord[] {
  const text = decodeUtf8(readInputFile(file), file);
  const out: JsonlRecord[] = [];
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const raw = lines[k]!.endsWith('\r') ? lines[k]!.slice(0, -1) : lines[k]!;
    if (raw.trim() === '') continue;
    // JSON Lines stays strict, but a file that opens with `[` is most likely one JSON array
    // saved under a .jsonl name: say so instead of only reporting the parse error.
    const hint = out.length === 0 && raw.trimStart().startsWith('[')
      ? '; the file starts with [ as a JSON array does: for one array of objects use --format json (or name the file .json)'
      : '';
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new EgmfError(`invalid JSON (${(e as Error).message})${hint}`, { file, line: k + 1 });
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new EgmfError(`each line must be one JSON object${hint}`, { file, line: k + 1 });
    }
    out.push({ value: v as Record<string, unknown>, line: k + 1 });
  }
  return out;
}
