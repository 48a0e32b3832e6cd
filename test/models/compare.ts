/** Runs a computation on a given backend and compares results across backends. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';

export interface Run {
  value: Float32Array;
  grads: Float32Array[];
}

/**
 * On `backend`: builds inputs with `make`, computes `f` and the gradients of
 * sum(f · weights) with respect to every float input (weights fixed, non-uniform).
 */
export async function runOn(backend: 'cpu' | 'wasm', make: () => tf.Tensor[], f: (...xs: tf.Tensor[]) => tf.Tensor, gradOf?: number[]): Promise<Run> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = make();
    const idx = gradOf ?? xs.map((x, i) => (x.dtype === 'float32' ? i : -1)).filter((i) => i >= 0);
    const value = f(...xs);
    const w = tf.sin(tf.add(tf.mul(tf.range(0, value.size), 0.37), 0.1));
    const loss = (...ys: tf.Tensor[]) => {
      const args = xs.slice();
      idx.forEach((j, k) => (args[j] = ys[k]!));
      return tf.sum(tf.mul(tf.reshape(f(...args), [-1]), w));
    };
    const grads = idx.length === 0 ? [] : tf.grads(loss)(idx.map((j) => xs[j]!));
    return { value: value.dataSync() as Float32Array, grads: grads.map((g) => g.dataSync() as Float32Array) };
  });
}

/** max |a - b| / max |b| ≤ tol (relative to the tensor's scale). */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-4, what = ''): void {
  expect(a.length, `${what} length`).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  expect(Number.isFinite(diff), `${what} finite`).toBe(true);
  expect(diff / Math.max(scale, 1e-6), `${what}: max diff ${diff} at scale ${scale}`).toBeLessThanOrEqual(tol);
}

/** Same computation on wasm and cpu; value and every gradient within `tol`. */
export async function expectWasmMatchesCpu(make: () => tf.Tensor[], f: (...xs: tf.Tensor[]) => tf.Tensor, tol = 1e-4, gradOf?: number[]): Promise<Run> {
  const cpu = await runOn('cpu', make, f, gradOf);
  const wasm = await runOn('wasm', make, f, gradOf);
  expectClose(wasm.value, cpu.value, tol, 'value');
  expect(wasm.grads.length).toBe(cpu.grads.length);
  wasm.grads.forEach((g, i) => expectClose(g, cpu.grads[i]!, tol, `grad ${i}`));
  return wasm;
}

/** Seeded uniform values in [-s, s) without touching any backend's RNG. */
export function rand(shape: number[], seed: number, s = 1): tf.Tensor {
  let x = seed * 2654435761 % 4294967296;
  const n = shape.reduce((p, d) => p * d, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (1664525 * x + 1013904223) % 4294967296;
    v[i] = (x / 4294967296 * 2 - 1) * s;
  }
  return tf.tensor(v, shape);
}
