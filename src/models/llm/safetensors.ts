/**
 * safetensors reader and writer: u64 little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}`, then
 * the raw little-endian row-major data. Tensors are read one at a time from an open file
 * (checkpoints may exceed what one Buffer can hold); floats come back as Float32Array.
 */
import { closeSync, openSync, readSync, fstatSync, writeSync, renameSync, rmSync } from 'node:fs';
import { EgmfError } from '../../errors.ts';

export type SafeDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const ITEM_SIZE: Record<SafeDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** Bigger headers are certainly corrupt (the format itself caps them at 100 MB). */
const MAX_HEADER = 100_000_000;

export interface TensorEntry {
  dtype: SafeDtype;
  shape: number[];
  /** Byte range within the data section. */
  begin: number;
  end: number;
}

/** An open safetensors file: the header is parsed, data is read on demand. */
export class SafetensorsFile {
  readonly entries: ReadonlyMap<string, TensorEntry>;
  readonly metadata: Record<string, string>;
  private fd: number | null;
  private readonly dataStart: number;

  private constructor(readonly path: string, fd: number, entries: Map<string, TensorEntry>, metadata: Record<string, string>, dataStart: number) {
    this.fd = fd;
    this.entries = entries;
    this.metadata = metadata;
    this.dataStart = dataStart;
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new EgmfError(`cannot open safetensors file: ${(e as Error).message}`, { file: path }, { cause: e });
    }
    try {
      const size = fstatSync(fd).size;
      const lenBuf = Buffer.alloc(8);
      if (size < 8 || readSync(fd, lenBuf, 0, 8, 0) !== 8) throw new EgmfError('not a safetensors file (shorter than its 8-byte header length)', { file: path });
      const n = Number(lenBuf.readBigUInt64LE(0));
      if (n > MAX_HEADER || 8 + n > size) throw new EgmfError(`not a safetensors file (header length ${n} for a ${size}-byte file)`, { file: path });
      const headerBuf = Buffer.alloc(n);
      readSync(fd, headerBuf, 0, n, 8);
      let header: unknown;
      try {
        header = JSON.parse(headerBuf.toString('utf8'));
      } catch (e) {
        throw new EgmfError(`safetensors header is not valid JSON: ${(e as Error).message}`, { file: path }, { cause: e });
      }
      if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new EgmfError('safetensors header is not a JSON object', { file: path });
      const { entries, metadata } = parseHeader(header as Record<string, unknown>, path, size - 8 - n);
      return new SafetensorsFile(path, fd, entries, metadata, 8 + n);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  entry(key: string): TensorEntry {
    const e = this.entries.get(key);
    if (e === undefined) throw new EgmfError('tensor not found', { file: this.path, key });
    return e;
  }

  /** Raw little-endian bytes of a tensor. */
  bytes(key: string): Buffer {
    const e = this.entry(key);
    if (this.fd === null) throw new EgmfError('safetensors file already closed', { file: this.path, key });
    const buf = Buffer.alloc(e.end - e.begin);
    let done = 0;
    while (done < buf.length) {
      const got = readSync(this.fd, buf, done, buf.length - done, this.dataStart + e.begin + done);
      if (got <= 0) throw new EgmfError('file truncated while reading tensor', { file: this.path, key });
      done += got;
    }
    return buf;
  }

  /** A floating-point tensor (F64/F32/F16/BF16) as float32 values. */
  float32(key: string): Float32Array {
    const e = this.entry(key);
    const b = this.bytes(key);
    switch (e.dtype) {
      case 'F32':
        return new Float32Array(b.buffer, b.byteOffset, b.length / 4).slice();
      case 'F64':
        return Float32Array.from(new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));
      case 'F16':
        return f16ToF32(new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));
      case 'BF16':
        return bf16ToF32(new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));
      default:
        throw new EgmfError(`expected a floating-point tensor, found dtype ${e.dtype}`, { file: this.path, key });
    }
  }

  /** An integer or bool tensor as int32 values (I64 must fit in int32). */
  int32(key: string): Int32Array {
    const e = this.entry(key);
    const b = this.bytes(key);
    const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
    switch (e.dtype) {
      case 'I32':
        return new Int32Array(ab);
      case 'I64': {
        const big = new BigInt64Array(ab);
        const out = new Int32Array(big.length);
        for (let i = 0; i < big.length; i++) {
          const v = big[i]!;
          if (v > 2147483647n || v < -2147483648n) throw new EgmfError(`value ${v} at index ${i} does not fit in int32`, { file: this.path, key });
          out[i] = Number(v);
        }
        return out;
      }
      case 'I16':
        return Int32Array.from(new Int16Array(ab));
      case 'I8':
        return Int32Array.from(new Int8Array(ab));
      case 'U8':
      case 'BOOL':
        return Int32Array.from(new Uint8Array(ab));
      default:
        throw new EgmfError(`expected an integer tensor, found dtype ${e.dtype}`, { file: this.path, key });
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function parseHeader(header: Record<string, unknown>, path: string, dataLen: number): { entries: Map<string, TensorEntry>; metadata: Record<string, string> } {
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [key, raw] of Object.entries(header)) {
    if (key === '__metadata__') {
      if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) metadata = raw as Record<string, string>;
      continue;
    }
    const v = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (v === null || typeof v !== 'object') throw new EgmfError('header entry is not an object', { file: path, key });
    if (typeof v.dtype !== 'string' || !(v.dtype in ITEM_SIZE)) throw new EgmfError(`unsupported dtype ${JSON.stringify(v.dtype)}`, { file: path, key });
    if (!Array.isArray(v.shape) || !v.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new EgmfError(`bad shape ${JSON.stringify(v.shape)}`, { file: path, key });
    const off = v.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && o >= 0)) throw new EgmfError(`bad data_offsets ${JSON.stringify(off)}`, { file: path, key });
    const dtype = v.dtype as SafeDtype;
    const shape = v.shape as number[];
    const [begin, end] = off as [number, number];
    const want = shape.reduce((p, d) => p * d, 1) * ITEM_SIZE[dtype];
    if (end < begin || end - begin !== want) throw new EgmfError(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes, shape [${shape.join(', ')}] of ${dtype} needs ${want}`, { file: path, key });
    if (end > dataLen) throw new EgmfError(`data_offsets end ${end} beyond the ${dataLen}-byte data section (file truncated?)`, { file: path, key });
    entries.set(key, { dtype, shape, begin, end });
  }
  return { entries, metadata };
}

/** Reads every tensor of a (small) file as float32 or int32 values. */
export function readSafetensors(path: string): Map<string, { dtype: SafeDtype; shape: number[]; data: Float32Array | Int32Array }> {
  const f = SafetensorsFile.open(path);
  try {
    const out = new Map<string, { dtype: SafeDtype; shape: number[]; data: Float32Array | Int32Array }>();
    for (const [key, e] of f.entries) {
      const isFloat = e.dtype === 'F32' || e.dtype === 'F16' || e.dtype === 'BF16' || e.dtype === 'F64';
      out.set(key, { dtype: e.dtype, shape: e.shape, data: isFloat ? f.float32(key) : f.int32(key) });
    }
    return out;
  } finally {
    f.close();
  }
}

export interface TensorToWrite {
  /** Stored dtype: F32, F16 and BF16 take float data; I64 and I32 take integers. */
  dtype: 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';
  shape: number[];
  data: Float32Array | Int32Array | ArrayLike<number>;
}

/**
 * Writes a safetensors file atomically (temp file, then rename): keys sorted as Python's
 * safetensors writes them, header padded with spaces to 8-byte alignment.
 */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): void {
  const keys = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header['__metadata__'] = metadata;
  const blobs: Buffer[] = [];
  let offset = 0;
  for (const key of keys) {
    const t = tensors[key]!;
    const n = t.shape.reduce((p, d) => p * d, 1);
    if (t.data.length !== n) throw new EgmfError(`tensor has ${t.data.length} values but shape [${t.shape.join(', ')}] needs ${n}`, { file: path, key });
    const blob = encode(t);
    header[key] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + blob.length] };
    blobs.push(blob);
    offset += blob.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    for (const b of [len, json, ...blobs]) writeSync(fd, b);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}

function encode(t: TensorToWrite): Buffer {
  const n = t.data.length;
  switch (t.dtype) {
    case 'F32': {
      const a = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
      return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    }
    case 'F16':
    case 'BF16': {
      const out = new Uint16Array(n);
      const conv = t.dtype === 'F16' ? f32ToF16 : f32ToBf16;
      for (let i = 0; i < n; i++) out[i] = conv(t.data[i]!);
      return Buffer.from(out.buffer);
    }
    case 'I32': {
      const a = Int32Array.from(t.data);
      return Buffer.from(a.buffer);
    }
    case 'I64': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(Math.trunc(t.data[i]!));
      return Buffer.from(a.buffer);
    }
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

/** Round to nearest even, as torch does; NaN stays NaN. */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i]!;
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    out[i] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

/** float32 → IEEE half, round to nearest even. */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}
