/**
 * The engine keeps every tensor a kernel's gradient will need by cloning it, and a clone is
 * a full kernel launch (`Identity`) plus a tape node of its own (1,235 of a tiny-EGMF step's
 * 4,172 kernels). On wasm, cpu and tensorflow (tfjs-node) an Identity output shares its
 * input's buffer anyway, so the saved copy is made directly: the same buffer reference count
 * and tracked tensor the kernel would give, without the launch and the tape node. Other
 * backends keep the engine's own clone. Written against tfjs-core 4.22's engine (checked at install: the method must exist).
 */
import * as tf from '@tensorflow/tfjs-core';

interface EngineLike {
  backendName: string;
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
  engine.saveTensorsForBackwardMode = function (this: EngineLike, tensors: tf.Tensor[]): tf.Tensor[] {
    if (!SHARING.has(this.backendName) || typeof this.backend.incRef !== 'function') return original.call(this, tensors);
    return tensors.map((t) => {
      if (t.dtype === 'string') return this.keep(t.clone());
      this.backend.incRef!(t.dataId);
      return this.keep(this.makeTensorFromTensorInfo({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }));
    });
  };
}
