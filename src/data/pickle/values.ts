/**
 * What an unpickled Python object becomes in TypeScript.
 *
 *   None → null, bool → boolean, int → number (bigint beyond 2^53), float → number,
 *   str → string (LargeText when big), bytes/bytearray → Uint8Array (FileSpan when big),
 *   list and tuple → array, dict → Map, set/frozenset → Set, numpy array → NdArray,
 *   numpy scalar → number/string, class or function reference → PyGlobal.
 */
import type { FileSpan } from './source.ts';
import type { DType, NdArray } from './numpy.ts';

export type PyValue =
  | null | boolean | number | bigint | string
  | Uint8Array | FileSpan | LargeText
  | PyValue[] | PyDict | Set<PyValue>
  | NdArray | DType | PyGlobal;

export type PyDict = Map<PyValue, PyValue>;

/** A problem in the pickle's content; the VM adds file, opcode, offset and key. */
export class PickleFault extends Error {}

/** A str payload too big to decode eagerly (only seen as array data in protocol 2). */
export class LargeText {
  constructor(readonly span: FileSpan) {}

  decode(): string {
    return new TextDecoder('utf-8').decode(this.span.read());
  }
}

/** What REDUCE / NEWOBJ / INST do with a registered global. */
export interface GlobalImpl {
  /** Calls the global with positional arguments; absent for class markers. */
  call?(args: PyValue[]): PyValue;
}

/** A reference to `module.name`, resolved through the registry. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string, readonly impl: GlobalImpl) {}

  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Objects whose pickled state BUILD restores. */
export interface Buildable {
  setState(state: PyValue): void;
}

export function isBuildable(v: unknown): v is Buildable {
  return typeof v === 'object' && v !== null && typeof (v as Partial<Buildable>).setState === 'function';
}

export function isDict(v: PyValue | undefined): v is PyDict {
  return v instanceof Map;
}

/** A short Python-ish name of a value's type, for messages. */
export function pyTypeName(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string' || v instanceof LargeText) return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'list/tuple';
  if (v instanceof Map) return 'dict';
  if (v instanceof Set) return 'set';
  if (v instanceof PyGlobal) return v.qualname;
  return v.constructor.name === 'NdArray' ? 'numpy.ndarray' : v.constructor.name === 'DType' ? 'numpy.dtype' : 'bytes';
}
