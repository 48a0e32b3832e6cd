import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeUtf8, firstInvalidUtf8, parseCsv, readCsvTable } from '../../src/data/csv.ts';
import { readJsonl } from '../../src/data/jsonl.ts';
import { REPO, runPython, SHARED_DATA, tempDir, errorOf } from '../helpers.ts';

const FIX = join(REPO, 'test', 'fixtures', 'csv');
const fields = (text: string) => [...parseCsv(text, 'mem.csv')].map((r) => r.fields);

/** Python's csv module reading a file (utf-8-sig, newline=''), blank records dropped. */
function pythonRows(file: string): string[][] {
  const r = runPython(`
import csv, json, sys
with open(sys.argv[1], encoding='utf-8-sig', newline='') as f:
    print(json.dumps([row for row in csv.reader(f) if row]))
`, [file]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as string[][];
}

describe('parseCsv', () => {
  it('handles quoted commas, doubled quotes, line breaks inside quotes, CRLF, a BOM and a blank line like Python', () => {
    const file = join(FIX, 'tricky.csv');
    const t = readCsvTable(file);
    const py = pythonRows(file);
    expect([t.header, ...t.rows]).toEqual(py);
    expect(t.header[0]).toBe('id');
    expect(t.rows[2]![1]).toBe('line one\r\nline two');
    expect(t.rows[3]![1]).toBe('lf only\ninside a CRLF file');
    expect(t.rows[7]![1]).toBe('’curly’ Â \u0092 kept');
    // Records start on the line they begin on, counting line breaks inside quotes.
    expect(t.lines).toEqual([2, 3, 4, 6, 8, 9, 10, 11, 13, 14]);
  });

  it('accepts LF-only and CR-only record ends and trailing empty fields', () => {
    expect(fields('a,b\n1,2\n')).toEqual([['a', 'b'], ['1', '2']]);
    expect(fields('a,b\r1,2\r')).toEqual([['a', 'b'], ['1', '2']]);
    expect(fields('a,b,\n,,\n')).toEqual([['a', 'b', ''], ['', '', '']]);
    expect(fields('"x"\n""\n')).toEqual([['x'], ['']]);
    expect(fields('')).toEqual([]);
    const lines = (text: string) => [...parseCsv(text, 'mem.csv')].map((r) => r.line);
    expect(lines('a\r"x\ry"\rb\r')).toEqual([1, 2, 4]);
    expect(lines('a\r\n"x\r\ny\n"\r\n\r\nb')).toEqual([1, 2, 6]);
  });

  it('reads every real MELD and CPED file exactly as Python\'s csv module does', () => {
    const files = [
      ...['train_sent_emo.csv', 'dev_sent_emo.csv', 'test_sent_emo.csv'].map((f) => join(SHARED_DATA, 'meld', f)),
      ...['valid_split.csv', 'test_split.csv'].map((f) => join(SHARED_DATA, 'cped', f)),
    ];
    const r = runPython(`
import csv, hashlib, sys
for p in sys.argv[1:]:
    with open(p, encoding='utf-8-sig', newline='') as f:
        rows = [r for r in csv.reader(f) if r]
    print(len(rows), hashlib.sha256('\\x1e'.join('\\x1f'.join(r) for r in rows).encode()).hexdigest())
`, files);
    expect(r.status, r.stderr).toBe(0);
    const want = r.stdout.trim().split('\n');
    const got = files.map((f) => {
      const t = readCsvTable(f);
      const all = [t.header, ...t.rows];
      const digest = createHash('sha256').update(all.map((row) => row.join('\x1f')).join('\x1e'), 'utf8').digest('hex');
      return `${all.length} ${digest}`;
    });
    expect(got).toEqual(want);
  });
});

describe('bad CSV input', () => {
  it('names the file, line and byte of invalid UTF-8', () => {
    const file = join(FIX, 'invalid-utf8.csv');
    const e = errorOf(() => readCsvTable(file));
    expect(e.message).toContain(file);
    expect(e.message).toContain('line 3');
    expect(e.message).toMatch(/invalid UTF-8 at byte 29 \(bytes 92 /);
  });

  it('finds the first invalid byte of overlong, surrogate and truncated sequences', () => {
    const at = (bytes: number[]) => firstInvalidUtf8(Uint8Array.from(bytes));
    expect(at([0x61, 0xc0, 0x80])).toBe(1);
    expect(at([0xed, 0xa0, 0x80])).toBe(0);
    expect(at([0x61, 0x62, 0xe4, 0xb8])).toBe(2);
    expect(at([0xf4, 0x90, 0x80, 0x80])).toBe(0);
    expect(at([0xe4, 0xb8, 0xad, 0xf0, 0x9f, 0x98, 0x80])).toBe(7);
    expect(decodeUtf8(Uint8Array.from([0xef, 0xbb, 0xbf, 0xe4, 0xb8, 0xad]), 'x')).toBe('中');
  });

  it('names the file and line of a ragged row', () => {
    const file = join(FIX, 'ragged.csv');
    expect(() => readCsvTable(file)).toThrow(`${file}, line 3: row has 4 fields, the header has 3`);
  });

  it('names the line where an unterminated quote opened', () => {
    const file = join(FIX, 'unterminated.csv');
    expect(() => readCsvTable(file)).toThrow(`${file}, line 3: unterminated quoted field`);
  });

  it('refuses stray quotes instead of guessing', () => {
    expect(() => readCsvTable(join(FIX, 'bare-quote.csv'))).toThrow(/bare-quote\.csv, line 2: quote inside an unquoted field/);
    expect(() => readCsvTable(join(FIX, 'after-quote.csv'))).toThrow(/after-quote\.csv, line 2: unexpected "h" after a closing quote/);
  });

  it('names a missing file and an empty file', () => {
    const tmp = tempDir();
    try {
      expect(() => readCsvTable(join(tmp.path, 'nope.csv'))).toThrow(`${join(tmp.path, 'nope.csv')}: file not found`);
      writeFileSync(join(tmp.path, 'empty.csv'), '\n\n');
      expect(() => readCsvTable(join(tmp.path, 'empty.csv'))).toThrow('empty file: no header row');
    } finally {
      tmp.cleanup();
    }
  });
});

describe('readJsonl', () => {
  it('reads objects line by line and names the line of bad JSON', () => {
    const tmp = tempDir();
    try {
      const file = join(tmp.path, 'a.jsonl');
      writeFileSync(file, '{"text":"中文","label":1}\r\n\n{"text":"b","label":"x"}\n');
      expect(readJsonl(file)).toEqual([
        { value: { text: '中文', label: 1 }, line: 1 },
        { value: { text: 'b', label: 'x' }, line: 3 },
      ]);
      writeFileSync(file, '{"a":1}\n{"a":\n');
      expect(() => readJsonl(file)).toThrow(`${file}, line 2: invalid JSON`);
      writeFileSync(file, '[1,2]\n');
      expect(() => readJsonl(file)).toThrow(`${file}, line 1: each line must be one JSON object`);
    } finally {
      tmp.cleanup();
    }
  });
});
