import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NdArray, openPickle, unpickleBytes } from '../../src/data/pickle/index.ts';
import type { OpenPickle, PyValue } from '../../src/data/pickle/index.ts';
import { decodeNumeric, DType } from '../../src/data/pickle/numpy.ts';
import { isEgmfError } from '../../src/errors.ts';
import { REPO, errorOf } from '../helpers.ts';

const DIR = join(REPO, 'test', 'fixtures', 'pickle');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8'));

type Loader = (file: string) => PyValue;
const loaders: Record<string, Loader> = {
  'in memory': (f) => unpickleBytes(readFileSync(f), { file: f }),
  // Tiny thresholds push every array payload through FileSpan (read from disk on demand).
  'from file, lazy': (f) => {
    const p = openPickle(f, { lazyBytes: 16, lazyText: 256 });
    opened.push(p);
    return p.value;
  },
};
const opened: OpenPickle[] = [];
afterAll(() => opened.forEach((p) => p.close()));

function get(v: PyValue, ...path: string[]): PyValue {
  let cur = v;
  for (const k of path) {
    if (!(cur instanceof Map) || !cur.has(k)) throw new Error(`no key ${k}`);
    cur = cur.get(k)!;
  }
  return cur;
}

function arrayValues(a: NdArray): unknown[] {
  if (a.dtype.kind === 'U' || a.dtype.kind === 'S' || a.dtype.kind === 'O') return a.strings();
  if (a.dtype.kind === 'b') return Array.from(a.numeric() as Uint8Array, (x) => x !== 0);
  return a.numbers();
}

describe('pickle VM with numpy arrays', () => {
  for (const [mode, load] of Object.entries(loaders)) {
    for (const p of [0, 2, 4, 5]) {
      it(`reads every dtype, byte order and memory order at protocol ${p} (${mode})`, () => {
        const v = load(join(DIR, `edge_p${p}.pkl`));
        for (const [key, want] of Object.entries(expected.edge as Record<string, { shape: number[]; descr: string; values: unknown[] }>)) {
          const a = get(v, key);
          expect(a, key).toBeInstanceOf(NdArray);
          const arr = a as NdArray;
          expect(arr.shape, key).toEqual(want.shape);
          if (!want.descr.includes('O')) expect(arr.dtype.descr, key).toBe(want.descr);
          expect(arrayValues(arr), key).toEqual(want.values);
        }
        expect(get(v, 'scalars')).toEqual([1.5, -7, true, -0.25]);
        expect(get(v, 'ints')).toEqual([-1, -300, 2 ** 40, -(2 ** 40), 255, 65536]);
        const nested = get(v, 'nested') as Map<string, PyValue>;
        expect(nested.get('t')).toEqual([1, 2.5, null]);
        expect(nested.get('s')).toEqual(new Set([3]));
        expect(Array.from(nested.get('b') as Uint8Array)).toEqual([0, 255]);
        expect(nested.get('f')).toBe(Infinity);
      });
    }

    it(`reads the same MMSA arrays at protocols 2, 4 and 5 (${mode})`, () => {
      const ref = load(join(DIR, 'mosei_unaligned_p4.pkl'));
      for (const p of [2, 5]) {
        const v = load(join(DIR, `mosei_unaligned_p${p}.pkl`));
        for (const split of ['train', 'valid', 'test']) {
          for (const key of ['audio', 'vision', 'text']) {
            const a = get(v, split, key) as NdArray;
            const b = get(ref, split, key) as NdArray;
            expect(a.shape).toEqual(b.shape);
            expect(Array.from(a.float32())).toEqual(Array.from(b.float32()));
          }
          expect((get(v, split, 'id') as NdArray).strings()).toEqual(expected.mosei[split].ids);
          expect((get(v, split, 'raw_text') as NdArray).strings()).toEqual(expected.mosei[split].text);
          expect((get(v, split, 'text_bert') as NdArray).numbers()).toEqual((get(ref, split, 'text_bert') as NdArray).numbers());
        }
      }
    });
  }

  it('returns rows equal to slices of the whole array, in C order, for C and Fortran layouts', () => {
    const p = openPickle(join(DIR, 'ch-simsv2s.pkl'), { lazyBytes: 16 });
    opened.push(p);
    const v = p.value;
    for (const split of ['train', 'valid']) {
      const a = get(v, split, 'vision') as NdArray;
      const all = a.float32();
      const per = a.size / a.shape[0]!;
      for (let i = 0; i < a.shape[0]!; i++) expect(Array.from(a.rowFloat32(i))).toEqual(Array.from(all.subarray(i * per, (i + 1) * per)));
    }
    expect((get(v, 'valid', 'vision') as NdArray).fortran).toBe(true);
    expect((get(v, 'train', 'raw_text') as NdArray).strings()).toEqual(expected['sims-v2'].train.text);
  });

  it('views aligned little-endian data without copying and copies (and swaps) otherwise', () => {
    const bytes = new Uint8Array(20);
    new DataView(bytes.buffer).setFloat32(4, 1.5, true);
    new DataView(bytes.buffer).setFloat32(9, -2.25, false);
    const view = decodeNumeric(bytes.subarray(4, 8), DType.parse('<f4')) as Float32Array;
    expect(view.buffer).toBe(bytes.buffer);
    expect(view[0]).toBe(1.5);
    const swapped = decodeNumeric(bytes.subarray(9, 13), DType.parse('>f4')) as Float32Array;
    expect(swapped.buffer).not.toBe(bytes.buffer);
    expect(swapped[0]).toBe(-2.25);
  });

  const bad: [string, RegExp[]][] = [
    ['truncated.pkl', [/truncated pickle/, /0x42 BINBYTES/, new RegExp(`file has ${expected.truncatedSize} bytes`), /key 'valid\.audio'/]],
    ['custom_class.pkl', [/unsupported global 'my_lab_utils\.Custom'/, /0x63 GLOBAL at byte 32/, /key 'train\.audio'/]],
    ['persid.pkl', [/unsupported opcode 0x51 BINPERSID at byte 34/, /key 'weights'/]],
    ['mosei_complex.pkl', [/unsupported dtype 'c8' \(complex\)/, /0x52 REDUCE/, /key 'train\.audio'/]],
  ];
  for (const [name, patterns] of bad) {
    it(`rejects ${name} with an error naming the file, opcode and key`, () => {
      const file = join(DIR, name);
      const e = errorOf(() => openPickle(file));
      expect(isEgmfError(e)).toBe(true);
      expect(e.message).toContain(file);
      for (const p of patterns) expect(e.message).toMatch(p);
    });
  }

  it('rejects non-pickle bytes, empty input, unknown protocols and bad array data', () => {
    const cases: [number[], RegExp][] = [
      [[0x80, 0x04, 0xff], /unsupported opcode 0xff \(not a pickle opcode\) at byte 2/],
      [[], /truncated pickle: no STOP opcode/],
      [[0x80, 0x06, 0x4e, 0x2e], /unsupported pickle protocol 6 \(opcode 0x80 PROTO at byte 0\)/],
      [[0x80, 0x02, 0x4e], /truncated pickle: no STOP opcode/],
      [[0x30, 0x2e], /stack underflow \(opcode 0x30 POP at byte 0\)/],
    ];
    for (const [bytes, re] of cases) expect(errorOf(() => unpickleBytes(Uint8Array.from(bytes), { file: 'x.pkl' })).message).toMatch(re);
    const short = errorOf(() => openPickle(join(DIR, 'short_data.pkl')));
    expect(short.message).toMatch(/ndarray data has 23 bytes; shape \(2,3\) of '<f4' needs 24 \(opcode 0x62 BUILD at byte \d+\)/);
    expect(short.message).toMatch(/key 'train\.audio'/);
  });

  it('names the out-of-band buffer problem for protocol-5 pickles written with a buffer_callback', () => {
    const e = errorOf(() => unpickleBytes(Uint8Array.from([0x80, 0x05, 0x97, 0x2e]), { file: 'oob.pkl' }));
    expect(e.message).toMatch(/out-of-band buffer requested.*0x97 NEXT_BUFFER at byte 2/);
    const v = unpickleBytes(Uint8Array.from([0x80, 0x05, 0x97, 0x98, 0x2e]), { file: 'oob.pkl', buffers: [Uint8Array.from([7, 8])] });
    expect(Array.from(v as Uint8Array)).toEqual([7, 8]);
  });
});
