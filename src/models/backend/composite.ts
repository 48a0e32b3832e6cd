/**
 * Composite kernels: one tfjs kernel dispatch that runs several of the backend's own kernels
 * directly, without tfjs-core's per-kernel bookkeeping (engine scopes, tape, tensor tracking,
 * profiling) for each. Values are those of the same kernels dispatched one by one.
 *
 *     defineComposite('EgmfThing', ['wasm'], (k, { x }) => k.mul(x, k.scalar(2)));
 *
 * Everything a composite makes through `k` and does not return is freed when it returns (or
 * throws); an input returned as it is gets its own reference.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataType, KernelBackend, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

interface RefBackend extends KernelBackend {
  incRef(dataId: tf.DataId): void;
}

/** The intermediates of one composite call, and the kernels it runs. */
export class KernelScope {
  private readonly made: TensorInfo[] = [];

  constructor(readonly backend: KernelBackend, readonly backendName: string) {}

  /** Runs the backend's kernel `name` as registered now. */
  run(name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    const kernel = tf.getKernel(name, this.backendName);
    if (kernel === undefined) throw new Error(`the ${this.backendName} backend has no ${name} kernel`);
    const out = kernel.kernelFunc({ inputs, attrs, backend: this.backend }) as TensorInfo;
    this.made.push(out);
    return out;
  }

  /** A new tensor holding `values`. */
  tensor(values: Float32Array | Int32Array, shape: number[], dtype: DataType = 'float32'): TensorInfo {
    if (this.backendName === 'tensorflow') {
      const t = tf.tensor(values, shape, dtype);
      this.made.push(t);
      return t;
    }
    const t: TensorInfo = { dataId: this.backend.write(values, shape, dtype), shape, dtype };
    this.made.push(t);
    return t;
  }

  scalar(v: number): TensorInfo {
    return this.tensor(Float32Array.of(v), []);
  }

  ones(shape: number[]): TensorInfo {
    return this.tensor(new Float32Array(shape.reduce((a, d) => a * d, 1)).fill(1), shape);
  }

  add(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('Add', { a, b });
  }

  sub(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('Sub', { a, b });
  }

  mul(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('Multiply', { a, b });
  }

  square(x: TensorInfo): TensorInfo {
    return this.run('Square', { x });
  }

  rsqrt(x: TensorInfo): TensorInfo {
    return this.run('Rsqrt', { x });
  }

  sigmoid(x: TensorInfo): TensorInfo {
    return this.run('Sigmoid', { x });
  }

  /** Mean over the last axis, kept as size 1. */
  meanLast(x: TensorInfo): TensorInfo {
    return this.run('Mean', { x }, { axis: -1, keepDims: true });
  }

  sum(x: TensorInfo, axis: number | number[], keepDims = false): TensorInfo {
    return this.run('Sum', { x }, { axis, keepDims });
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  matMul(a: TensorInfo, b: TensorInfo, transposeA = false, transposeB = false): TensorInfo {
    return this.run('BatchMatMul', { a, b }, { transposeA, transposeB });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  /**
   * Frees what this scope made, except `keep`. What is kept but was not made here (an input
   * returned as it is) comes back as a new tensor record holding a reference of its own: the
   * engine would otherwise hand out the input's own tensor object as the output.
   */
  finish(keep: TensorInfo[]): TensorInfo[] {
    const kept = new Set(keep);
    for (const t of this.made) if (!kept.has(t)) this.free(t);
    const made = new Set(this.made);
    this.made.length = 0;
    return keep.map((t) => (made.has(t) ? t : this.retain(t)));
  }

  private free(t: TensorInfo): void {
    if (t instanceof tf.Tensor) t.dispose();
    else this.backend.disposeData(t.dataId);
  }

  private retain(t: TensorInfo): TensorInfo {
    // tfjs-node's tensors hold a TensorFlow handle each: a reshape to the same shape shares it.
    if (this.backendName === 'tensorflow') return this.run('Reshape', { x: t }, { shape: t.shape });
    (this.backend as RefBackend).incRef(t.dataId);
    return { dataId: t.dataId, shape: t.shape, dtype: t.dtype };
  }
}

export type CompositeFn = (k: KernelScope, inputs: NamedTensorInfoMap, attrs: NamedAttrMap) => TensorInfo | TensorInfo[];

/** Registers kernel `name` on each of `backends` (idempotent per backend). */
export function defineComposite(name: string, backends: readonly string[], fn: CompositeFn): void {
  for (const backendName of backends) {
    if (tf.getKernel(name, backendName) !== undefined) continue;
    tf.registerKernel({
      kernelName: name,
      backendName,
      kernelFunc: ({ inputs, attrs, backend }) => {
        const k = new KernelScope(backend as KernelBackend, backendName);
        let out: TensorInfo | TensorInfo[];
        try {
          out = fn(k, inputs, attrs ?? {});
        } catch (e) {
          k.finish([]);
          throw e;
        }
        const outs = k.finish(Array.isArray(out) ? out : [out]);
        return Array.isArray(out) ? outs : outs[0]!;
      },
    });
  }
}

/** The current backend has kernel `name`. */
export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}
