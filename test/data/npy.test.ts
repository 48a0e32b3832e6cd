import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseNpy, readNpy } from '../../src/data/npy.ts';
import { isEgmfError } from '../../src/errors.ts';
import { REPO, tempDir, errorOf } from '../helpers.ts';

const DIR = join(REPO, 'test', 'fixtures', 'pickle', 'npy');
const expected = JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'pickle', 'expected.json'), 'utf8')).npy as
  Record<string, { shape: number[]; descr: string; values: unknown[] }>;

describe('.npy reader', () => {
  for (const [name, want] of Object.entries(expected)) {
    it(`reads ${name}.npy as numpy wrote it`, () => {
      const a = readNpy(join(DIR, `${name}.npy`));
      expect(a.shape).toEqual(want.shape);
      const kind = a.dtype.kind;
      expect(kind === 'U' || kind === 'O' ? a.strings() : a.numbers()).toEqual(want.values);
      if (kind !== 'O') expect(a.dtype.descr).toBe(want.descr);
    });
  }

  it('reads the header versions 1.0, 2.0 and 3.0', () => {
    const version = (n: string) => Array.from(readFileSync(join(DIR, `${n}.npy`)).subarray(6, 8));
    expect(version('f4_v1')).toEqual([1, 0]);
    expect(version('be_f8_v2')).toEqual([2, 0]);
    expect(version('ustr_v3')).toEqual([3, 0]);
  });

  it('gives float32 rows in C order for a Fortran-order file', () => {
    const a = readNpy(join(DIR, 'fortran_i16_v1.npy'));
    expect(a.fortran).toBe(true);
    expect(Array.from(a.rowFloat32(1))).toEqual([-2, -1, 0, 1]);
  });

  it('rejects complex, truncated, missing and non-npy files naming the file', () => {
    const complex = join(DIR, 'complex.npy');
    const e1 = errorOf(() => readNpy(complex));
    expect(isEgmfError(e1)).toBe(true);
    expect(e1.message).toMatch(new RegExp(`^${complex}, key 'descr': unsupported dtype '<c16' \\(complex\\)`));
    const trunc = join(DIR, 'truncated.npy');
    expect(errorOf(() => readNpy(trunc)).message).toMatch(/truncated\.npy: truncated \.npy: shape \(3,5\) of '<f4' needs 60 data bytes, the file has 50/);
    expect(errorOf(() => readNpy(join(DIR, 'nope.npy'))).message).toMatch(/nope\.npy: file not found/);
    expect(errorOf(() => parseNpy(new TextEncoder().encode('hello world'), 'x.npy')).message).toBe('x.npy: not a .npy file (no \\x93NUMPY magic)');
    expect(errorOf(() => parseNpy(readFileSync(join(DIR, 'f4_v1.npy')).subarray(0, 30), 'y.npy')).message).toMatch(/y\.npy: truncated \.npy: the file ends inside the header/);
  });

  it('rejects a structured dtype naming the key', () => {
    const tmp = tempDir();
    try {
      const src = readFileSync(join(DIR, 'f4_v1.npy'));
      const header = src.subarray(10, 10 + src.readUInt16LE(8)).toString('latin1').replace(/'descr': '<f4'/, "'descr': [('a', '<f4')]");
      const path = join(tmp.path, 's.npy');
      const h = Buffer.alloc(10 + header.length);
      src.copy(h, 0, 0, 8);
      h.writeUInt16LE(header.length, 8);
      h.write(header, 10, 'latin1');
      writeFileSync(path, Buffer.concat([h, src.subarray(10 + src.readUInt16LE(8))]));
      expect(errorOf(() => readNpy(path)).message).toMatch(/s\.npy, key 'descr': unsupported dtype: structured arrays/);
    } finally {
      tmp.cleanup();
    }
  });
});
