/**
 * numpy `.npy` files (format versions 1.0, 2.0, 3.0).
 *
 * Why not the `npyjs` package: it refuses big-endian dtypes, ignores fortran_order (the
 * data comes back in the wrong order), decodes the v3 UTF-8 header as latin-1, has no
 * `|S` or object arrays, silently returns complex data as interleaved floats, and does not
 * check that the data is as long as the shape says (a truncated file reads as a short array).
 */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { EgmfError } from '../errors.ts';
import { DType, NdArray } from './pickle/numpy.ts';
import { ByteSource, Truncated } from './pickle/source.ts';
import { unpickle } from './pickle/vm.ts';
import { PickleFault } from './pickle/values.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export interface NpyHeader {
  version: [number, number];
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the data. */
  dataOffset: number;
}

/** Reads a whole .npy file into memory (for per-utterance feature files). */
export function readNpy(path: string): NdArray {
  if (!existsSync(path)) throw new EgmfError('file not found', { file: path });
  if (statSync(path).isDirectory()) throw new EgmfError('is a directory, expected a .npy file', { file: path });
  return parseNpy(readFileSync(path), path);
}

/** Parses .npy bytes; `file` is named in errors. */
export function parseNpy(bytes: Uint8Array, file: string): NdArray {
  const src = ByteSource.fromBytes(bytes);
  const header = readHeader(src, file);
  try {
    const dtype = DType.parse(header.descr);
    if (dtype.kind === 'O') {
      // np.save writes object arrays as a pickle of the array after the header.
      const v = unpickle(src, { file });
      if (!(v instanceof NdArray)) throw new EgmfError('object array payload is not a pickled ndarray', { file });
      return v;
    }
    const size = header.shape.reduce((a, b) => a * b, 1);
    const need = size * dtype.itemsize;
    const have = bytes.byteLength - header.dataOffset;
    if (have < need) {
      throw new EgmfError(`truncated .npy: shape (${header.shape}) of '${header.descr}' needs ${need} data bytes, the file has ${have}`, { file });
    }
    return new NdArray(header.shape, dtype, header.fortranOrder, src.readAt(header.dataOffset, need));
  } catch (e) {
    if (e instanceof PickleFault) throw new EgmfError(e.message, { file, key: 'descr' }, { cause: e });
    throw e;
  }
}

export function readHeader(src: ByteSource, file: string): NpyHeader {
  try {
    const magic = src.take(6);
    if (!MAGIC.every((b, k) => magic[k] === b)) throw new EgmfError('not a .npy file (no \\x93NUMPY magic)', { file });
    const major = src.u8();
    const minor = src.u8();
    if (major < 1 || major > 3) throw new EgmfError(`unsupported .npy format version ${major}.${minor}`, { file });
    const len = major === 1 ? src.u16() : src.u32();
    const raw = src.take(len);
    const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(raw);
    const dict = parseHeaderDict(text, file);
    return { version: [major, minor], ...dict, dataOffset: src.pos };
  } catch (e) {
    if (e instanceof Truncated) throw new EgmfError('truncated .npy: the file ends inside the header', { file });
    throw e;
  }
}

/** The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } */
function parseHeaderDict(text: string, file: string): Omit<NpyHeader, 'version' | 'dataOffset'> {
  const fail = (key: string, msg: string): never => {
    throw new EgmfError(msg, { file, key });
  };
  const descr = /'descr'\s*:\s*('([^']*)'|\[)/.exec(text);
  if (descr === null) fail('descr', 'header has no descr');
  if (descr![2] === undefined) fail('descr', 'unsupported dtype: structured arrays (a list descr) cannot be read');
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  if (fortran === null) fail('fortran_order', 'header has no fortran_order');
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (shape === null) fail('shape', 'header has no shape tuple');
  const dims = shape![1]!.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const n = Number(s.replace(/L$/, ''));
    if (!Number.isInteger(n) || n < 0) fail('shape', `bad dimension '${s}'`);
    return n;
  });
  return { descr: descr![2]!, fortranOrder: fortran![1] === 'True', shape: dims };
}
