/**
 * The engine keeps every tensor a kernel's gradient will need by cloning it, and a clone is
 * a full kernel launch (`Identity`) plus a tape node of its own (1,235 of a tiny-EGMF step's
 * 4,172 kernels). On wasm, cpu and tensorflow (tfjs-node) an Identity output shares its
 * input's buffer anyway, so the saved copy is made directly: the same buffer reference count
 * and tracked tensor the kernel would give, without the launch and the tape node. Other
 * backends keep the engine's own clone. The tensors a custom-gradient op (`tf.customGrad`,
 * every fused block of `ops.ts`) saves go through the engine's `clone` instead (273 of a
 * tiny-EGMF step's 2,979 kernels on wasm): that is shared the same way while no tape is
 * recording (a custom op's forward pass runs inside a kernel, where none is); a clone made
 * with the tape on keeps its Identity launch and tape node. Written against tfjs-core
 * 4.22's engine (checked at install: the methods must exist).
 */
import * as tf from '@tensorflow/tfjs-core';

interface EngineLike {
  backendName: string;
  clone(x: tf.Tensor): tf.Tensor;
  isTapeOn(): boolean;
  backend: { incRef?(dataId: tf.DataId): void };
  saveTensorsForBackwardMode(tensors: tf.Tensor[]): tf.Tensor[];
  makeTensorFromTensorInfo(info: { dataId: tf.DataId; shape: number[]; dtype: tf.DataType }): tf.Tensor;
  keep<T extends tf.Tensor>(t: T): T;
}

const SHARING = new Set(['wasm', 'cpu', 'tensorflow']);
let installed = false;

/** Idempotent. */
export function installSavedTensorSharing(): void {
  if (installed) return;
  const engine = tf.engine() as unknown as EngineLike;
  const original = engine.saveTensorsForBackwardMode;
  if (typeof original !== 'function' || typeof engine.makeTensorFromTensorInfo !== 'function') return;
  installed = true;
  const share = (e: EngineLike, t: tf.Tensor): tf.Tensor => {
    e.backend.incRef!(t.dataId);
    return e.makeTensorFromTensorInfo({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });
  };
  const originalClone = engine.clone;
  if (typeof originalClone === 'function' && typeof engine.isTapeOn === 'function') {
    engine.clone = function (this: EngineLike, x: tf.Tensor): tf.Tensor {
      if (!SHARING.has(this.backendName) || typeof this.backend.incRef !== 'function' || x.dtype === 'string' || this.isTapeOn()) return originalClone.call(this, x);
      return share(this, x);
    };
  }
  engine.saveTensorsForBackwardMode = function (this: EngineLike, tensors: tf.Tensor[]): tf.Tensor[] {
    if (!SHARING.has(this.backendName) || typeof this.backend.incRef !== 'function') return original.call(this, tensors);
    return tensors.map((t) => {
      if (t.dtype === 'string') return this.keep(t.clone());
      return this.keep(share(this, t));
    });
  };
}
