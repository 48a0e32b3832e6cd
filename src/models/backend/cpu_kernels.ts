/**
 * Kernel fix for the pure-JS cpu backend: its `UnsortedSegmentSum` (the gradient of
 * `gather`, i.e. of every embedding lookup) runs one masked reduction per segment, which
 * made a tiny decoder's training step take ~100 s at V=1000. One pass over the rows does
 * the same work.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { replaceKernel, segmentSumInto } from './wasm_kernels.ts';

interface CpuBackendLike extends KernelBackend {
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): TensorInfo;
}

let registered = false;

export function registerCpuKernelFixes(): void {
  if (registered) return;
  registered = true;
  replaceKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'cpu', kernelFunc: unsortedSegmentSum as unknown as KernelFunc });
}

function unsortedSegmentSum(args: { inputs: { x: TensorInfo; segmentIds: TensorInfo }; backend: CpuBackendLike; attrs: NamedAttrMap }): TensorInfo {
  const { x, segmentIds } = args.inputs;
  const numSegments = args.attrs['numSegments'] as number;
  const n = segmentIds.shape.reduce((p, d) => p * d, 1);
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = innerShape.reduce((p, d) => p * d, 1);
  if (x.dtype !== 'float32' && x.dtype !== 'int32') throw new Error(`UnsortedSegmentSum: unsupported dtype ${x.dtype}`);
  const out = x.dtype === 'float32' ? new Float32Array(numSegments * inner) : new Int32Array(numSegments * inner);
  const xv = args.backend.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = args.backend.readSync(segmentIds.dataId) as Int32Array;
  segmentSumInto(out, xv, ids, n, inner, numSegments);
  return args.backend.makeTensorInfo([numSegments, ...innerShape], x.dtype, out);
}
