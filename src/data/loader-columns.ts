/**
 * Raw, zero-copy access to the columns of affect-schema split tables, one record batch
 * ("chunk") at a time. Arrow JS `Vector.get(i)` builds objects per call; these helpers read
 * the underlying buffers directly (offsets, values, validity bitmaps) so that the loader,
 * the inspect statistics and the validator can touch millions of rows cheaply.
 */
import type { Data, Table } from 'apache-arrow';
import { EgmfError } from '../errors.ts';

const decoder = new TextDecoder('utf-8');

/** One record batch of a utf8 column. */
export interface Utf8Chunk {
  rows: number;
  offsets: Int32Array;
  bytes: Uint8Array;
  validity: Uint8Array | null;
}

/** One record batch of a float32 or int32 column. */
export interface NumberChunk<T extends Float32Array | Int32Array> {
  values: T;
  validity: Uint8Array | null;
}

/**
 * One record batch of a list<fixed_size_list<float32>[dim]> column: sample `r` has frames
 * `offsets[r] .. offsets[r+1]`, whose values are `values[offsets[r]*dim .. offsets[r+1]*dim]`.
 */
export interface SequenceChunk {
  offsets: Int32Array;
  values: Float32Array;
  dim: number;
}

function validityOf(d: Data): Uint8Array | null {
  return d.nullCount > 0 && d.nullBitmap !== undefined && d.nullBitmap.length > 0 ? d.nullBitmap : null;
}

/** True when row `r` of a chunk holds a value (Arrow validity bit set, or no bitmap). */
export function isValid(validity: Uint8Array | null, r: number): boolean {
  return validity === null || (validity[r >> 3]! & (1 << (r & 7))) !== 0;
}

// Tables read from IPC files have unsliced data (offset 0); the raw readers rely on it.
function requireUnsliced(d: Data, file: string, key: string): void {
  if (d.offset !== 0) throw new EgmfError('sliced Arrow data is not supported by the raw column reader', { file, key });
}

function childData(table: Table, key: string, file: string): Data[] {
  const col = table.getChild(key);
  if (col === null) throw new EgmfError('missing column', { file, key });
  return col.data as Data[];
}

export function utf8Chunks(table: Table, key: string, file: string): Utf8Chunk[] {
  return childData(table, key, file).map((d) => {
    requireUnsliced(d, file, key);
    return { rows: d.length, offsets: d.valueOffsets as Int32Array, bytes: d.values as Uint8Array, validity: validityOf(d) };
  });
}

export function float32Chunks(table: Table, key: string, file: string): NumberChunk<Float32Array>[] {
  return childData(table, key, file).map((d) => {
    requireUnsliced(d, file, key);
    return { values: d.values as Float32Array, validity: validityOf(d) };
  });
}

export function int32Chunks(table: Table, key: string, file: string): NumberChunk<Int32Array>[] {
  return childData(table, key, file).map((d) => {
    requireUnsliced(d, file, key);
    return { values: d.values as Int32Array, validity: validityOf(d) };
  });
}

export function sequenceChunks(table: Table, key: string, dim: number, file: string): SequenceChunk[] {
  return childData(table, key, file).map((d) => {
    requireUnsliced(d, file, key);
    const frames = d.children[0]!;
    const floats = frames.children[0]!;
    requireUnsliced(frames, file, key);
    requireUnsliced(floats, file, key);
    return { offsets: d.valueOffsets as Int32Array, values: floats.values as Float32Array, dim };
  });
}

/** The string at row `r`, or null. */
export function utf8At(c: Utf8Chunk, r: number): string | null {
  if (!isValid(c.validity, r)) return null;
  return decoder.decode(c.bytes.subarray(c.offsets[r]!, c.offsets[r + 1]!));
}

const decodedChunks = new WeakMap<Utf8Chunk, (string | null)[]>();

/**
 * Every string of a chunk, decoded once and cached. One TextDecoder call for the whole
 * chunk plus string slices is many times faster than a decoder call per row, which costs
 * microseconds for short strings.
 */
export function utf8All(c: Utf8Chunk): (string | null)[] {
  const cached = decodedChunks.get(c);
  if (cached !== undefined) return cached;
  const rows = c.rows;
  const start = c.offsets[0] ?? 0;
  const end = c.offsets[rows] ?? 0;
  const whole = decoder.decode(c.bytes.subarray(start, end));
  const out: (string | null)[] = new Array<string | null>(rows);
  if (whole.length === end - start) {
    // Pure ASCII: byte offsets are string offsets.
    for (let r = 0; r < rows; r++) out[r] = isValid(c.validity, r) ? whole.slice(c.offsets[r]! - start, c.offsets[r + 1]! - start) : null;
  } else {
    // Map byte offsets to UTF-16 offsets: lead bytes count one unit, 4-byte sequences two.
    let unit = 0;
    let at = start;
    for (let r = 0; r < rows; r++) {
      const from = unit;
      const stop = c.offsets[r + 1]!;
      for (; at < stop; at++) {
        const byte = c.bytes[at]!;
        if ((byte & 0xc0) !== 0x80) unit += byte >= 0xf0 ? 2 : 1;
      }
      out[r] = isValid(c.validity, r) ? whole.slice(from, unit) : null;
    }
    // Invalid UTF-8 decodes to replacement characters that break the mapping: decode per row.
    if (unit !== whole.length) for (let r = 0; r < rows; r++) out[r] = utf8At(c, r);
  }
  decodedChunks.set(c, out);
  return out;
}

/** Byte length of the string at row `r` (0 for null), without decoding it. */
export function utf8ByteLength(c: Utf8Chunk, r: number): number {
  return c.offsets[r + 1]! - c.offsets[r]!;
}

export function numberAt<T extends Float32Array | Int32Array>(c: NumberChunk<T>, r: number): number | null {
  return isValid(c.validity, r) ? c.values[r]! : null;
}

/** Number of frames of sample `r`. */
export function framesAt(c: SequenceChunk, r: number): number {
  return c.offsets[r + 1]! - c.offsets[r]!;
}

/** The frames of sample `r` as a view (no copy) of `frames × dim` values. */
export function framesView(c: SequenceChunk, r: number): Float32Array {
  return c.values.subarray(c.offsets[r]! * c.dim, c.offsets[r + 1]! * c.dim);
}
