/**
 * The globals a pickle may name. Anything else (a user's own class, numpy.ma, pandas)
 * is refused at GLOBAL / STACK_GLOBAL time, so a pickle can never run code and an
 * unknown object never turns silently into an empty placeholder.
 */
import { DType, latin1Bytes, NdArray, numpyScalar } from './numpy.ts';
import { FileSpan } from './source.ts';
import { LargeText, PickleFault, PyGlobal, pyTypeName } from './values.ts';
import type { GlobalImpl, PyValue } from './values.ts';

const NDARRAY_CLASS: GlobalImpl = {};

function argc(name: string, args: PyValue[], min: number, max = min): void {
  if (args.length < min || args.length > max) throw new PickleFault(`${name} takes ${min === max ? min : `${min}-${max}`} arguments, got ${args.length}`);
}

const reconstruct: GlobalImpl = {
  call(args) {
    argc('_reconstruct', args, 3);
    const cls = args[0];
    if (!(cls instanceof PyGlobal) || cls.impl !== NDARRAY_CLASS) {
      throw new PickleFault(`unsupported ndarray subclass ${pyTypeName(cls)} (only numpy.ndarray is read)`);
    }
    return NdArray.empty();
  },
};

const frombuffer: GlobalImpl = {
  call(args) {
    argc('_frombuffer', args, 4);
    const [buf, dtype, shape, order] = args;
    if (!(dtype instanceof DType)) throw new PickleFault(`_frombuffer dtype is ${pyTypeName(dtype)}`);
    if (!(buf instanceof Uint8Array || buf instanceof FileSpan)) throw new PickleFault(`_frombuffer buffer is ${pyTypeName(buf)}`);
    const dims = (Array.isArray(shape) ? shape : [shape]).map(Number);
    return new NdArray(dims, dtype, order === 'F', buf);
  },
};

const dtype: GlobalImpl = {
  call(args) {
    argc('numpy.dtype', args, 1, 3);
    if (typeof args[0] !== 'string') throw new PickleFault(`numpy.dtype argument is ${pyTypeName(args[0])}`);
    return DType.parse(args[0]);
  },
};

const scalar: GlobalImpl = {
  call(args) {
    argc('scalar', args, 1, 2);
    if (!(args[0] instanceof DType)) throw new PickleFault(`numpy scalar dtype is ${pyTypeName(args[0])}`);
    return numpyScalar(args[0], args[1] ?? null);
  },
};

function iterable(name: string, v: PyValue | undefined): PyValue[] {
  if (v === undefined) return [];
  if (Array.isArray(v)) return v;
  if (v instanceof Set) return [...v];
  throw new PickleFault(`${name} argument is ${pyTypeName(v)}`);
}

const set: GlobalImpl = { call: (args) => new Set(iterable('set', args[0])) };

const bytearray: GlobalImpl = {
  call(args) {
    const [v, enc] = args;
    if (v === undefined) return new Uint8Array(0);
    if (v instanceof Uint8Array) return v.slice();
    if (v instanceof FileSpan) return v;
    if (typeof v === 'string' && (enc === 'latin-1' || enc === 'latin1')) return latin1Bytes(v);
    if (Array.isArray(v)) return Uint8Array.from(v.map(Number));
    throw new PickleFault(`bytearray argument is ${pyTypeName(v)}`);
  },
};

/** How Python 3 pickles bytes at protocol <= 2: _codecs.encode(latin-1 text, 'latin1'). */
const codecsEncode: GlobalImpl = {
  call(args) {
    const [text, enc] = args;
    if (enc !== 'latin1' && enc !== 'latin-1') throw new PickleFault(`_codecs.encode with encoding ${String(enc)}`);
    if (typeof text === 'string') return latin1Bytes(text);
    if (text instanceof LargeText) return utf8ToLatin1InPlace(text.span.readOwned());
    throw new PickleFault(`_codecs.encode argument is ${pyTypeName(text)}`);
  },
};

/**
 * UTF-8 text whose code points are all < 256 → those code points as bytes, in place
 * (the output is never longer than the input), avoiding a JS string of the whole array.
 */
export function utf8ToLatin1InPlace(b: Uint8Array): Uint8Array {
  const n = b.length;
  let w = 0;
  let r = 0;
  while (r < n) {
    const c = b[r]!;
    if (c < 0x80) {
      b[w] = c;
      r += 1;
    } else {
      if ((c !== 0xc2 && c !== 0xc3) || r + 1 >= n) throw new PickleFault(`latin-1 payload holds a character above U+00FF at byte ${r}`);
      b[w] = ((c & 0x03) << 6) | (b[r + 1]! & 0x3f);
      r += 2;
    }
    w += 1;
  }
  return b.subarray(0, w);
}

const orderedDict: GlobalImpl = { call: () => new Map<PyValue, PyValue>() };

const IMPLS = new Map<string, GlobalImpl>();
for (const np of ['numpy.core', 'numpy._core']) {
  IMPLS.set(`${np}.multiarray._reconstruct`, reconstruct);
  IMPLS.set(`${np}.multiarray.scalar`, scalar);
  IMPLS.set(`${np}.numeric._frombuffer`, frombuffer);
}
IMPLS.set('numpy.ndarray', NDARRAY_CLASS);
IMPLS.set('numpy.dtype', dtype);
// Python 3 writes builtins as __builtin__ at protocol <= 2 (fix_imports); Python 2 always does.
for (const b of ['builtins', '__builtin__']) {
  IMPLS.set(`${b}.set`, set);
  IMPLS.set(`${b}.frozenset`, set);
  IMPLS.set(`${b}.bytearray`, bytearray);
}
IMPLS.set('_codecs.encode', codecsEncode);
IMPLS.set('collections.OrderedDict', orderedDict);

/** Resolves `module.name` or throws a PickleFault naming it. */
export function resolveGlobal(module: string, name: string): PyGlobal {
  const impl = IMPLS.get(`${module}.${name}`);
  if (impl === undefined) {
    throw new PickleFault(`unsupported global '${module}.${name}': only numpy arrays, numpy scalars and Python containers can be read`);
  }
  return new PyGlobal(module, name, impl);
}
