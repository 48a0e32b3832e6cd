/** The JSON array reader: element boundaries, lines, and where a broken file broke. */
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonArray } from '../../src/data/json-array.ts';
import { tempDir } from '../helpers.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let n = 0;
const file = (content: string | Buffer): string => {
  const f = join(tmp.path, `a${n++}.json`);
  writeFileSync(f, content);
  return f;
};

describe('readJsonArray', () => {
  it('finds elements whose strings hold brackets, commas and escaped quotes, with their start lines', () => {
    const f = file('\ufeff[\r\n  {"t": "a ] } , [ {", "n": 1},\r\n  {"t": "say \\"hi\\" \\\\", "x": {"y": [1, {"z": "]"}]}}\r\n,{"t":"好"}]\r\n');
    const recs = readJsonArray(f);
    expect(recs.map((r) => [r.index, r.line])).toEqual([[0, 2], [1, 3], [2, 4]]);
    expect(recs.map((r) => r.value.t)).toEqual(['a ] } , [ {', 'say "hi" \\', '好']);
    expect(recs[1]!.value.x).toEqual({ y: [1, { z: ']' }] });
  });

  it('reads an empty array as no records', () => {
    expect(readJsonArray(file(' [ ] \n'))).toEqual([]);
  });

  it('names the element and line where a file breaks', () => {
    const cases: [string, string][] = [
      ['', 'empty file: expected a JSON array of objects'],
      ['[', 'line 1: truncated JSON array: the file ends before element 0; no element was complete'],
      ['[{"a":1},\n{"a":2},\n', 'line 3: truncated JSON array: the file ends before element 2; elements 0-1 were complete'],
      ['[{"a":1},\n{"a":[2,\n3', 'line 2: truncated JSON array: element 1 is not closed (the file ends on line 3); element 0 was complete'],
      ['[{"a":1} {"a":2}]', 'line 1: expected , or ] after element 0, got "{"'],
      ['[{"a":1},\n\n  [1, 2]]', 'line 3: element 1 is not a JSON object (got an array)'],
      ['[null]', 'line 1: element 0 is not a JSON object (got null)'],
      ['[{"a":1},\n7]', 'line 2: element 1 is not a JSON object (got a number)'],
      ['[{"a":01}]', 'line 1: element 0: invalid JSON'],
      ['"text"', 'line 1: the top-level JSON value is not an array; expected an array of objects'],
    ];
    for (const [text, msg] of cases) {
      const f = file(text);
      expect(() => readJsonArray(f), text).toThrow(`${f}${text === '' ? ': ' : ', '}${msg}`);
    }
  });

  it('names invalid UTF-8 with its line', () => {
    const f = file(Buffer.concat([Buffer.from('[{"a":"ok"},\n{"a":"caf'), Buffer.from([0xe9]), Buffer.from('"}]')]));
    expect(() => readJsonArray(f)).toThrow(`${f}, line 2: invalid UTF-8 at byte 22`);
  });
});
