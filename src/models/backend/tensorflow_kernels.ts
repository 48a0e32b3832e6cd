/**
 * Kernel fixes for the tensorflow (tfjs-node) backend: a `Reshape` to the shape a tensor
 * already has, and a `Cast` to its own dtype, share the tensor (one more reference to its
 * TensorFlow handle) instead of running a TensorFlow op. tfjs-core's gradients emit both for
 * every element-wise op (`reshape(res, a.shape)`, `cast(b, 'float32')`): 203 such reshapes
 * and 218 such casts among the 3,821 kernels of a tiny-EGMF training step, each paying
 * TensorFlow's eager dispatch (~15 µs). The wasm and cpu backends already share in both cases.
 *
 * A float32 `Mean` without the `Cast` to float32 that tfjs-node's kernel dispatches first
 * (56 of a tiny-EGMF step's forward kernels).
 *
 * And a `GatherV2` that does not read its indices back to JavaScript on a CPU device:
 * tfjs-node's own checks every index in JavaScript first, a host read of each gather's
 * indices that also stops a captured graph (`tensorflow_graph.ts`) at the first gather whose
 * indices are computed. TensorFlow's CPU kernel checks the same bounds itself and fails with
 * "indices[i] = v is not in [0, n)"; on a GPU, where TensorFlow does not check, tfjs-node's
 * kernel stays.
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
  const gather = tf.getKernel('GatherV2', 'tensorflow');
  const mean = tf.getKernel('Mean', 'tensorflow');
  if (reshape === undefined || cast === undefined || gather === undefined || mean === undefined) return;
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
  replaceKernel({
    kernelName: 'Mean',
    backendName: 'tensorflow',
    kernelFunc: (args) => {
      const backend = args.backend as NodeBackend;
      const x = args.inputs['x'] as TensorInfo;
      // tfjs-node's own casts its input to float32 first: a Cast kernel for every float32 mean.
      if (x.dtype !== 'float32') return mean.kernelFunc(args) as TensorInfo;
      const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
      const axes = tf.tensor1d(tf.util.parseAxisParam(axis, x.shape), 'int32');
      const res = backend.executeSingleOutput('Mean', backend.createReductionOpAttrs(x, keepDims), [x, axes]);
      axes.dispose();
      return res;
    },
  });
  replaceKernel({
    kernelName: 'GatherV2',
    backendName: 'tensorflow',
    kernelFunc: (args) => {
      const backend = args.backend as NodeBackend;
      const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
      const b = backend.binding;
      if (backend.isUsingGpuDevice || tensorflowDtype(b, x.dtype) < 0) return gather.kernelFunc(args) as TensorInfo;
      const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
      tf.backend_util.segment_util.collectGatherOpShapeInfo(x as tf.Tensor, indices as tf.Tensor, axis, batchDims);
      const axisTensor = tf.scalar(axis, 'int32');
      const attrs = [
        { name: 'batch_dims', type: b.TF_ATTR_INT, value: batchDims },
        { name: 'Tparams', type: b.TF_ATTR_TYPE, value: tensorflowDtype(b, x.dtype) },
        { name: 'Tindices', type: b.TF_ATTR_TYPE, value: tensorflowDtype(b, indices.dtype) },
        { name: 'Taxis', type: b.TF_ATTR_TYPE, value: b.TF_INT32 },
      ];
      const res = backend.executeSingleOutput('GatherV2', attrs, [x, indices, axisTensor]);
      axisTensor.dispose();
      return res;
    },
  });
}

interface NodeBackend extends KernelBackend {
  isUsingGpuDevice: boolean;
  binding: { TF_INT32: number; TF_FLOAT: number; TF_BOOL: number; TF_ATTR_INT: number; TF_ATTR_TYPE: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: TensorInfo[]): TensorInfo;
  createReductionOpAttrs(x: TensorInfo, keepDims: boolean): unknown[];
}

function share(backend: KernelBackend, x: TensorInfo): TensorInfo {
  (backend as KernelBackend & { incRef(dataId: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}

/** TensorFlow's code for a tfjs dtype (the binding's TF_* constants); −1 for one the captured graphs and these kernels do not take. */
export function tensorflowDtype(b: { TF_INT32: number; TF_FLOAT: number; TF_BOOL: number }, dtype: tf.DataType): number {
  switch (dtype) {
    case 'float32': return b.TF_FLOAT;
    case 'int32': return b.TF_INT32;
    case 'bool': return b.TF_BOOL;
    default: return -1;
  }
}
