/**
 * Kernel fixes for the tensorflow (tfjs-node) backend: a `Reshape` to the shape a tensor
 * already has, and a `Cast` to its own dtype, share the tensor (one more reference to its
 * TensorFlow handle) instead of running a TensorFlow op. tfjs-core's gradients emit both for
 * every element-wise op (`reshape(res, a.shape)`, `cast(b, 'float32')`): 203 such reshapes
 * and 218 such casts among the 3,821 kernels of a tiny-EGMF training step, each paying
 * TensorFlow's eager dispatch (~15 µs). The wasm and cpu backends already share in both cases.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';
import { replaceKernel } from './wasm_kernels.ts';

let registered = false;

/** Idempotent; call once tfjs-node has registered its kernels. */
export function registerTensorflowKernelFixes(): void {
  if (registered) return;
  const reshape = tf.getKernel('Reshape', 'tensorflow');
  const cast = tf.getKernel('Cast', 'tensorflow');
  if (reshape === undefined || cast === undefined) return;
  registered = true;
  replaceKernel({
    kernelName: 'Reshape',
    backendName: 'tensorflow',
    kernelFunc: (args) => {
      const x = args.inputs['x'] as TensorInfo;
      const wanted = (args.attrs as { shape: number[] }).shape;
      const shape = tf.util.inferFromImplicitShape([...wanted], tf.util.sizeFromShape(x.shape));
      return shape.join(',') === x.shape.join(',') ? share(args.backend as KernelBackend, x) : (reshape.kernelFunc(args) as TensorInfo);
    },
  });
  replaceKernel({
    kernelName: 'Cast',
    backendName: 'tensorflow',
    kernelFunc: (args) => {
      const x = args.inputs['x'] as TensorInfo;
      const dtype = (args.attrs as { dtype: tf.DataType }).dtype;
      return dtype === x.dtype && x.dtype !== 'string' ? share(args.backend as KernelBackend, x) : (cast.kernelFunc(args) as TensorInfo);
    },
  });
}

function share(backend: KernelBackend, x: TensorInfo): TensorInfo {
  (backend as KernelBackend & { incRef(dataId: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}
