/**
 * numpy dtypes and arrays as numpy pickles them (and as .npy files store them).
 *
 * An array's bytes stay as they were in the file (a view, or a FileSpan not yet read)
 * until a typed accessor is called; little-endian, aligned data then becomes a typed array
 * over the same memory, anything else costs one copy. Every accessor returns C order.
 */
import { Buffer } from 'node:buffer';
import { FileSpan } from './source.ts';
import { LargeText, PickleFault, pyTypeName } from './values.ts';
import type { Buildable, PyValue } from './values.ts';

export type DTypeKind = 'f' | 'i' | 'u' | 'b' | 'U' | 'S' | 'O';

export type NumericArray =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array;

const NUMERIC_SIZES: Record<string, number[]> = { f: [2, 4, 8], i: [1, 2, 4, 8], u: [1, 2, 4, 8], b: [1] };
const UNSUPPORTED_KINDS: Record<string, string> = {
  c: 'complex', M: 'datetime64', m: 'timedelta64', V: 'void/structured', G: 'complex', g: 'long double',
};

export class DType implements Buildable {
  constructor(public kind: DTypeKind, public itemsize: number, public littleEndian = true) {}

  /**
   * Parses a numpy type string: `<f4`, `f4`, `|b1`, `?`, `<U7`, `S5`, `O`, `O8`, `>i8`...
   * Throws PickleFault for kinds this reader does not convert (complex, datetime, structured).
   */
  static parse(descr: string): DType {
    const m = /^([<>|=]?)([a-zA-Z?])(\d*)(\[.*\])?$/.exec(descr);
    if (m === null) throw new PickleFault(`unsupported dtype '${descr}'`);
    const [, order, rawKind, digits] = m;
    const kind = rawKind === '?' ? 'b' : rawKind!;
    const size = digits === '' ? (kind === 'b' ? 1 : kind === 'O' ? 8 : 0) : Number(digits);
    if (UNSUPPORTED_KINDS[kind] !== undefined || kind === 'f' && size === 16) {
      throw new PickleFault(`unsupported dtype '${descr}' (${UNSUPPORTED_KINDS[kind] ?? 'float128'}): only bool, int, uint, float16/32/64, str, bytes and object arrays can be read`);
    }
    const little = order !== '>';
    if (kind === 'U') return new DType('U', size * 4, little);
    if (kind === 'S' || kind === 'a') return new DType('S', size, true);
    if (kind === 'O') return new DType('O', 8, true);
    if (NUMERIC_SIZES[kind]?.includes(size)) return new DType(kind as DTypeKind, size, little);
    throw new PickleFault(`unsupported dtype '${descr}'`);
  }

  /** numpy.dtype.__setstate__: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]). */
  setState(state: PyValue): void {
    if (!Array.isArray(state) || state.length < 8) throw new PickleFault(`dtype state is not an 8- or 9-tuple (got ${pyTypeName(state)})`);
    const [, byteorder, subarray, names, , elsize] = state;
    if (subarray !== null || names !== null) throw new PickleFault(`unsupported dtype: structured or sub-array dtypes (based on '${this.descr}') cannot be read`);
    if (byteorder === '>') this.littleEndian = false;
    else if (byteorder === '<' || byteorder === '|' || byteorder === '=') this.littleEndian = true;
    if ((this.kind === 'U' || this.kind === 'S') && typeof elsize === 'number' && elsize > 0) this.itemsize = elsize;
  }

  get descr(): string {
    const order = this.itemsize === 1 || this.kind === 'S' || this.kind === 'O' ? '|' : this.littleEndian ? '<' : '>';
    return `${order}${this.kind}${this.kind === 'U' ? this.itemsize / 4 : this.itemsize}`;
  }
}

export class NdArray implements Buildable {
  private cOrderF32: Float32Array | null = null;

  constructor(
    public shape: number[],
    public dtype: DType,
    public fortran: boolean,
    private data: Uint8Array | FileSpan | PyValue[],
  ) {
    this.check();
  }

  /** What `_reconstruct(ndarray, (0,), b'b')` returns before BUILD fills it in. */
  static empty(): NdArray {
    return new NdArray([0], new DType('u', 1), false, new Uint8Array(0));
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** ndarray.__setstate__: (version, shape, dtype, is_fortran, rawdata) or the 4-tuple without version. */
  setState(state: PyValue): void {
    if (!Array.isArray(state) || (state.length !== 5 && state.length !== 4)) {
      throw new PickleFault(`ndarray state is not a 4- or 5-tuple (got ${pyTypeName(state)})`);
    }
    const [shape, dtype, fortran, raw] = state.length === 5 ? state.slice(1) : state;
    if (!(dtype instanceof DType)) throw new PickleFault(`ndarray state has no dtype (got ${pyTypeName(dtype)})`);
    this.shape = toShape(shape);
    this.dtype = dtype;
    this.fortran = fortran === true || fortran === 1;
    this.data = toRawData(raw, dtype);
    this.cOrderF32 = null;
    this.check();
  }

  private check(): void {
    const { data, dtype } = this;
    if (Array.isArray(data)) {
      if (dtype.kind !== 'O') throw new PickleFault(`ndarray of dtype '${dtype.descr}' holds a list instead of raw bytes`);
      if (data.length !== this.size) throw new PickleFault(`object array of shape (${this.shape}) holds ${data.length} items`);
      return;
    }
    if (dtype.kind === 'O') throw new PickleFault('object array holds raw bytes instead of a list');
    const want = this.size * dtype.itemsize;
    if (data.length !== want) {
      throw new PickleFault(`ndarray data has ${data.length} bytes; shape (${this.shape}) of '${dtype.descr}' needs ${want}`);
    }
  }

  private bytes(firstItem: number, count: number): Uint8Array {
    const d = this.data as Uint8Array | FileSpan;
    const size = this.dtype.itemsize;
    return d instanceof FileSpan ? d.read(firstItem * size, count * size) : d.subarray(firstItem * size, (firstItem + count) * size);
  }

  /** The whole array as native-endian numbers in C order (a view when possible). */
  numeric(): NumericArray {
    this.requireKind('numeric', 'f', 'i', 'u', 'b');
    const flat = decodeNumeric(this.bytes(0, this.size), this.dtype);
    return this.fortran && this.ndim > 1 ? fortranToC(flat, this.shape, newLike(flat, flat.length)) : flat;
  }

  float32(): Float32Array {
    if (this.cOrderF32 !== null) return this.cOrderF32;
    return toFloat32(this.numeric());
  }

  /** Element block `i` along the first axis as float32, C order; reads only that block from a file. */
  rowFloat32(i: number): Float32Array {
    if (this.ndim === 0 || i < 0 || i >= this.shape[0]!) throw new RangeError(`row ${i} outside 0..${(this.shape[0] ?? 0) - 1}`);
    const per = this.size / this.shape[0]!;
    if (this.fortran && this.ndim > 1) {
      this.cOrderF32 ??= toFloat32(this.numeric());
      return this.cOrderF32.subarray(i * per, (i + 1) * per);
    }
    this.requireKind('numeric', 'f', 'i', 'u', 'b');
    return toFloat32(decodeNumeric(this.bytes(i * per, per), this.dtype));
  }

  numbers(): number[] {
    if (this.dtype.kind === 'O') {
      return this.items().map((v, k) => {
        if (typeof v === 'number') return v;
        if (typeof v === 'bigint' || typeof v === 'boolean') return Number(v);
        throw new PickleFault(`object array item ${k} is ${pyTypeName(v)}, not a number`);
      });
    }
    return Array.from(this.numeric() as ArrayLike<number | bigint>, Number);
  }

  /** str (`<U`), bytes (`|S`, UTF-8 decoded) and object arrays of str/bytes as strings, C order. */
  strings(): string[] {
    const { kind, itemsize, littleEndian } = this.dtype;
    let flat: string[];
    if (kind === 'O') {
      return this.items().map((v, k) => {
        if (typeof v === 'string') return v;
        if (v instanceof Uint8Array) return utf8(v);
        if (v instanceof LargeText) return v.decode();
        throw new PickleFault(`object array item ${k} is ${pyTypeName(v)}, not a str`);
      });
    } else if (kind === 'U') {
      const raw = this.bytes(0, this.size);
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const chars = itemsize / 4;
      flat = new Array<string>(this.size);
      for (let k = 0; k < this.size; k++) {
        const cps: number[] = [];
        for (let c = 0; c < chars; c++) cps.push(dv.getUint32((k * chars + c) * 4, littleEndian));
        while (cps.length > 0 && cps[cps.length - 1] === 0) cps.pop();
        flat[k] = String.fromCodePoint(...cps);
      }
    } else if (kind === 'S') {
      const raw = this.bytes(0, this.size);
      flat = new Array<string>(this.size);
      for (let k = 0; k < this.size; k++) {
        let end = (k + 1) * itemsize;
        while (end > k * itemsize && raw[end - 1] === 0) end--;
        flat[k] = utf8(raw.subarray(k * itemsize, end));
      }
    } else {
      throw new PickleFault(`expected a str array, got dtype '${this.dtype.descr}'`);
    }
    return this.fortran && this.ndim > 1 ? fortranToC(flat, this.shape, new Array<string>(flat.length)) : flat;
  }

  /** Items of an object array, C order (numpy pickles them in C order whatever the layout). */
  items(): PyValue[] {
    this.requireKind('object', 'O');
    return this.data as PyValue[];
  }

  private requireKind(what: string, ...kinds: DTypeKind[]): void {
    if (!kinds.includes(this.dtype.kind)) throw new PickleFault(`expected a ${what} array, got dtype '${this.dtype.descr}'`);
  }
}

function toShape(v: PyValue): number[] {
  const dims = Array.isArray(v) ? v : [v];
  return dims.map((d) => {
    const n = typeof d === 'bigint' ? Number(d) : d;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new PickleFault(`bad array shape ${String(v)}`);
    return n;
  });
}

function toRawData(raw: PyValue, dtype: DType): Uint8Array | FileSpan | PyValue[] {
  if (Array.isArray(raw) || raw instanceof Uint8Array || raw instanceof FileSpan) return raw;
  // Python 2 pickles (and protocol 0/1) carry the bytes as a latin-1 str.
  if (typeof raw === 'string') return latin1Bytes(raw);
  throw new PickleFault(`ndarray of '${dtype.descr}' has ${pyTypeName(raw)} data, expected bytes or a list`);
}

export function latin1Bytes(s: string): Uint8Array {
  const b = Buffer.from(s, 'latin1');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

const utf8Decoder = new TextDecoder('utf-8');
function utf8(b: Uint8Array): string {
  return utf8Decoder.decode(b);
}

type TypedCtor = { new (buf: ArrayBuffer, off: number, len: number): NumericArray; new (len: number): NumericArray; BYTES_PER_ELEMENT: number };

function ctorFor(dtype: DType): TypedCtor {
  const c: Record<string, unknown> = {
    f4: Float32Array, f8: Float64Array, i1: Int8Array, i2: Int16Array, i4: Int32Array, i8: BigInt64Array,
    u1: Uint8Array, u2: Uint16Array, u4: Uint32Array, u8: BigUint64Array, b1: Uint8Array, f2: Uint16Array,
  };
  return c[`${dtype.kind}${dtype.itemsize}`] as TypedCtor;
}

/** Raw item bytes → native typed array: a view if aligned little-endian, else one copy. */
export function decodeNumeric(bytes: Uint8Array, dtype: DType): NumericArray {
  const Ctor = ctorFor(dtype);
  const size = dtype.itemsize;
  const n = bytes.byteLength / size;
  let out: NumericArray;
  if (dtype.littleEndian && bytes.byteOffset % size === 0) {
    out = new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
  } else {
    const copy = new Uint8Array(bytes); // a copy, even when handed a Node Buffer
    if (!dtype.littleEndian && size > 1) {
      for (let k = 0; k < copy.length; k += size) copy.subarray(k, k + size).reverse();
    }
    out = new Ctor(copy.buffer as ArrayBuffer, 0, n);
  }
  if (dtype.kind === 'f' && size === 2) return halfToFloat32(out as Uint16Array);
  return out;
}

function halfToFloat32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let k = 0; k < h.length; k++) {
    const v = h[k]!;
    const s = v & 0x8000 ? -1 : 1;
    const e = (v >> 10) & 0x1f;
    const f = v & 0x3ff;
    out[k] = e === 0 ? s * 2 ** -14 * (f / 1024) : e === 31 ? (f ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + f / 1024);
  }
  return out;
}

export function toFloat32(t: NumericArray): Float32Array {
  if (t instanceof Float32Array) return t;
  if (t instanceof BigInt64Array || t instanceof BigUint64Array) return Float32Array.from(t, Number);
  return new Float32Array(t);
}

function newLike(t: NumericArray, n: number): NumericArray {
  return new (t.constructor as TypedCtor)(n);
}

/** Reorders a Fortran-order flat array into C order. */
export function fortranToC<T extends { [k: number]: unknown; length: number }>(src: T, shape: number[], out: T): T {
  const n = shape.length;
  const fStride: number[] = [];
  let acc = 1;
  for (let k = 0; k < n; k++) {
    fStride.push(acc);
    acc *= shape[k]!;
  }
  const idx = new Array<number>(n).fill(0);
  let f = 0;
  for (let c = 0; c < src.length; c++) {
    out[c] = src[f];
    for (let k = n - 1; k >= 0; k--) {
      idx[k]!++;
      f += fStride[k]!;
      if (idx[k]! < shape[k]!) break;
      f -= fStride[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
  return out;
}

/** numpy.core.multiarray.scalar(dtype, data): a numpy scalar as a plain value. */
export function numpyScalar(dtype: DType, data: PyValue): PyValue {
  if (dtype.kind === 'O') return data;
  const raw = typeof data === 'string' ? latin1Bytes(data) : data;
  if (!(raw instanceof Uint8Array)) throw new PickleFault(`numpy scalar of '${dtype.descr}' has ${pyTypeName(data)} data`);
  const arr = new NdArray([], dtype, false, raw);
  if (dtype.kind === 'U' || dtype.kind === 'S') return arr.strings()[0]!;
  const v = arr.numeric()[0]!;
  if (dtype.kind === 'b') return v !== 0;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  return v;
}
