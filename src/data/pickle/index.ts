/** Reading Python pickles (with numpy arrays) without Python. */
import { existsSync, statSync } from 'node:fs';
import { EgmfError } from '../../errors.ts';
import { ByteSource } from './source.ts';
import { unpickle } from './vm.ts';
import type { UnpickleOptions } from './vm.ts';
import type { PyValue } from './values.ts';

export { DType, NdArray } from './numpy.ts';
export type { DTypeKind, NumericArray } from './numpy.ts';
export { FileSpan } from './source.ts';
export { LargeText, PyGlobal, pyTypeName } from './values.ts';
export type { PyDict, PyValue } from './values.ts';
export { describeOpcode } from './opcodes.ts';

export type { UnpickleOptions } from './vm.ts';

export interface OpenPickle {
  value: PyValue;
  /** Releases the file; FileSpans (large arrays) cannot be read afterwards. */
  close(): void;
}

/** Unpickles a file; large arrays stay on disk until read. Call `close()` when done. */
export function openPickle(path: string, opts: Omit<UnpickleOptions, 'file'> = {}): OpenPickle {
  if (!existsSync(path)) throw new EgmfError('file not found', { file: path });
  if (statSync(path).isDirectory()) throw new EgmfError('is a directory, expected a pickle file', { file: path });
  const src = ByteSource.fromFile(path);
  try {
    return { value: unpickle(src, { ...opts, file: path }), close: () => src.close() };
  } catch (e) {
    src.close();
    throw e;
  }
}

/** Unpickles bytes held in memory (arrays are views into them where alignment allows). */
export function unpickleBytes(bytes: Uint8Array, opts: UnpickleOptions): PyValue {
  return unpickle(ByteSource.fromBytes(bytes), opts);
}
