/**
 * Typed access to unpickled values for importers: every failure is an EgmfError that
 * names the file and the dotted key (and row where there is one).
 */
import { EgmfError } from '../../errors.ts';
import { NdArray } from './numpy.ts';
import { LargeText, PickleFault, pyTypeName } from './values.ts';
import type { PyDict, PyValue } from './values.ts';

export class PyReader {
  constructor(readonly file: string) {}

  fail(key: string, msg: string, row?: number): never {
    throw new EgmfError(msg, { file: this.file, key, row });
  }

  /** Runs `fn`, turning a PickleFault (bad array content) into an error naming the key. */
  guard<T>(key: string, fn: () => T, row?: number): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof PickleFault) this.fail(key, e.message, row);
      throw e;
    }
  }

  dict(v: PyValue | undefined, key: string, row?: number): PyDict {
    if (!(v instanceof Map)) this.fail(key, `expected a dict, got ${pyTypeName(v)}`, row);
    return v as PyDict;
  }

  list(v: PyValue | undefined, key: string): PyValue[] {
    if (!Array.isArray(v)) this.fail(key, `expected a list, got ${pyTypeName(v)}`);
    return v as PyValue[];
  }

  /** `d[name]`; a missing key is an error naming `prefix.name`. */
  get(d: PyDict, prefix: string, name: string, row?: number): PyValue {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    if (!d.has(name)) {
      const have = [...d.keys()].map((k) => String(k)).join(', ');
      this.fail(key, `missing key '${name}' (present: ${have})`, row);
    }
    return d.get(name)!;
  }

  array(v: PyValue, key: string, ndim?: number): NdArray {
    if (!(v instanceof NdArray)) this.fail(key, `expected a numpy array, got ${pyTypeName(v)}`);
    const a = v as NdArray;
    if (ndim !== undefined && a.ndim !== ndim) this.fail(key, `expected a ${ndim}-d array, got shape (${a.shape.join(', ')})`);
    return a;
  }

  /** A numpy array or list of numbers (ints, floats, numpy scalars). */
  numbers(v: PyValue, key: string): number[] {
    if (v instanceof NdArray) return this.guard(key, () => v.numbers());
    return this.list(v, key).map((x, row) => {
      if (typeof x === 'number') return x;
      if (typeof x === 'bigint' || typeof x === 'boolean') return Number(x);
      if (x instanceof NdArray && x.size === 1) return this.guard(key, () => x.numbers()[0]!, row);
      return this.fail(key, `expected a number, got ${pyTypeName(x)}`, row);
    });
  }

  /** A numpy str/bytes/object array or a list of str. */
  strings(v: PyValue, key: string): string[] {
    if (v instanceof NdArray) return this.guard(key, () => v.strings());
    return this.list(v, key).map((x, row) => this.string(x, key, row));
  }

  string(x: PyValue | undefined, key: string, row?: number): string {
    if (typeof x === 'string') return x;
    if (x instanceof LargeText) return x.decode();
    if (x instanceof Uint8Array) return new TextDecoder('utf-8').decode(x);
    if (x instanceof NdArray && x.size === 1 && x.dtype.kind !== 'O') return this.guard(key, () => x.strings()[0]!, row);
    return this.fail(key, `expected a str, got ${pyTypeName(x)}`, row);
  }
}
