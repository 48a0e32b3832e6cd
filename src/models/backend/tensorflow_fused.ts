/**
 * Fused kernels of the tensorflow (tfjs-node) backend: one tfjs kernel dispatch for a block
 * that is several kernels elsewhere. Each runs exactly the TensorFlow ops the unfused block
 * runs, in the same order (through tfjs-node's own kernel functions), so values are the
 * same bit for bit and a captured graph (`tensorflow_graph.ts`) is the same graph; what is
 * saved is tfjs-core's per-kernel bookkeeping (engine, tape, tensor tracking), which is most
 * of what a captured training step still spends in JavaScript. `ops.ts` uses them on this
 * backend:
 *
 *  - `EgmfLinear` {x, w, b?}: x [..., in] · w [in, out] (+ b), reshaped around a 2-D product
 *    (4 kernels → 1); its gradient is registered in `ops.ts`;
 *  - `EgmfRmsNormParts` {x, w?} (attr eps) → [y, r, u] and `EgmfLayerNormParts` {x, gamma,
 *    beta} (eps) → [y, r, x̂]: a norm's forward pass with the tensors its custom gradient
 *    saves (6–8 kernels → 1);
 *  - `EgmfGeluParts` {x} → [y, x², s] (7 kernels → 1).
 *
 * The *Parts kernels have no gradient of their own: they run inside the custom-gradient ops
 * of `ops.ts`, whose forward passes are not taped.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

export const FUSED_LINEAR = 'EgmfLinear';
export const FUSED_RMS_NORM = 'EgmfRmsNormParts';
export const FUSED_LAYER_NORM = 'EgmfLayerNormParts';
export const FUSED_GELU = 'EgmfGeluParts';

/** Runs tfjs-node's own kernel `name` (as registered now) without a dispatch of its own. */
function run(backend: KernelBackend, name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
  const k = tf.getKernel(name, 'tensorflow');
  if (k === undefined) throw new Error(`the tensorflow backend has no ${name} kernel`);
  return k.kernelFunc({ inputs, attrs, backend }) as TensorInfo;
}

/** Frees intermediate results (tfjs-node's kernels return tracked tensors). */
function free(...ts: TensorInfo[]): void {
  for (const t of ts) (t as tf.Tensor).dispose();
}

/** A float32 scalar as tfjs makes one from a number operand. */
function scalar(v: number): TensorInfo {
  return tf.scalar(v, 'float32');
}

let registered = false;

/** Idempotent; call once tfjs-node has registered its kernels (and the kernel fixes theirs). */
export function registerTensorflowFusedKernels(): void {
  if (registered || tf.getKernel('BatchMatMul', 'tensorflow') === undefined) return;
  registered = true;

  tf.registerKernel({
    kernelName: FUSED_LINEAR,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend: be }) => {
      const backend = be as KernelBackend;
      const { x, w, b } = inputs as { x: TensorInfo; w: TensorInfo; b?: TensorInfo };
      const inDim = x.shape[x.shape.length - 1]!;
      const x2 = x.shape.length === 2 ? x : run(backend, 'Reshape', { x }, { shape: [-1, inDim] });
      let y = run(backend, 'BatchMatMul', { a: x2, b: w }, { transposeA: false, transposeB: false });
      if (b !== undefined) {
        const yb = run(backend, 'Add', { a: y, b });
        free(y);
        y = yb;
      }
      if (x2 !== x) free(x2);
      if (x.shape.length === 2) return y;
      const out = run(backend, 'Reshape', { x: y }, { shape: [...x.shape.slice(0, -1), w.shape[1]!] });
      free(y);
      return out;
    },
  });

  tf.registerKernel({
    kernelName: FUSED_RMS_NORM,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, attrs, backend: be }) => {
      const backend = be as KernelBackend;
      const { x, w } = inputs as { x: TensorInfo; w?: TensorInfo };
      const eps = scalar((attrs as { eps: number }).eps);
      const sq = run(backend, 'Square', { x });
      const ms = run(backend, 'Mean', { x: sq }, { axis: -1, keepDims: true });
      const shifted = run(backend, 'Add', { a: ms, b: eps });
      const r = run(backend, 'Rsqrt', { x: shifted });
      const u = run(backend, 'Multiply', { a: x, b: r });
      free(eps, sq, ms, shifted);
      if (w === undefined) return [run(backend, 'Reshape', { x: u }, { shape: u.shape }), r, u];
      return [run(backend, 'Multiply', { a: u, b: w }), r, u];
    },
  });

  tf.registerKernel({
    kernelName: FUSED_LAYER_NORM,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, attrs, backend: be }) => {
      const backend = be as KernelBackend;
      const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
      const eps = scalar((attrs as { eps: number }).eps);
      const mu = run(backend, 'Mean', { x }, { axis: -1, keepDims: true });
      const centred = run(backend, 'Sub', { a: x, b: mu });
      const sq = run(backend, 'Square', { x: centred });
      const ms = run(backend, 'Mean', { x: sq }, { axis: -1, keepDims: true });
      const shifted = run(backend, 'Add', { a: ms, b: eps });
      const r = run(backend, 'Rsqrt', { x: shifted });
      const xh = run(backend, 'Multiply', { a: centred, b: r });
      const scaled = run(backend, 'Multiply', { a: xh, b: gamma });
      const y = run(backend, 'Add', { a: scaled, b: beta });
      free(eps, mu, centred, sq, ms, shifted, scaled);
      return [y, r, xh];
    },
  });

  tf.registerKernel({
    kernelName: FUSED_GELU,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, attrs, backend: be }) => {
      const backend = be as KernelBackend;
      const { x } = inputs as { x: TensorInfo };
      const { a, c } = attrs as { a: number; c: number };
      const [ta, one, tc] = [scalar(a), scalar(1), scalar(c)];
      const x2 = run(backend, 'Square', { x });
      const ax2 = run(backend, 'Multiply', { a: x2, b: ta });
      const inner = run(backend, 'Add', { a: ax2, b: one });
      const xi = run(backend, 'Multiply', { a: x, b: inner });
      const z = run(backend, 'Multiply', { a: xi, b: tc });
      const s = run(backend, 'Sigmoid', { x: z });
      const y = run(backend, 'Multiply', { a: x, b: s });
      free(ta, one, tc, ax2, inner, xi, z);
      return [y, x2, s];
    },
  });
}
