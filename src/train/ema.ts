/**
 * An exponential moving average of the trainable weights (`train.ema`), as timm's ModelEma
 * and TensorFlow's ExponentialMovingAverage keep one: after every optimiser step
 *     shadow ← d · shadow + (1 − d) · weight,   d = min(decay, (1 + n) / (10 + n))
 * (n = updates so far, so the first steps do not drag the start in). Validation, the best
 * checkpoint and the final scores use the averaged weights; training continues on the raw
 * ones. The average is kept on the host (Float32Array per variable), so it adds no kernels
 * to a step, and it travels with the resumable checkpoint as buffers (`ema.<name>`,
 * `ema.updates`), so a resumed run averages exactly as an uninterrupted one.
 */
import * as tf from '@tensorflow/tfjs-core';
import { EgmfError } from '../errors.ts';
import type { Buffers } from './checkpoint.ts';

export class WeightEma {
  /** The averaged weights, by variable name. */
  readonly shadow = new Map<string, Float32Array>();
  private readonly count = new Float32Array(1);

  constructor(private readonly vars: ReadonlyMap<string, tf.Variable>, readonly decay: number) {
    if (!(decay > 0 && decay < 1)) throw new EgmfError(`the average's decay must be in (0, 1), got ${decay}`, { key: 'train.ema' });
    for (const [name, v] of vars) this.shadow.set(name, Float32Array.from(v.dataSync() as Float32Array));
  }

  /** Updates so far. */
  get updates(): number {
    return this.count[0]!;
  }

  /** Folds the current weights into the average (after an optimiser step). */
  update(): void {
    const n = this.count[0]!;
    const d = Math.min(this.decay, (1 + n) / (10 + n));
    for (const [name, v] of this.vars) {
      const s = this.shadow.get(name)!;
      const w = v.dataSync() as Float32Array;
      for (let i = 0; i < s.length; i++) s[i] = d * s[i]! + (1 - d) * w[i]!;
    }
    this.count[0] = n + 1;
  }

  /**
   * Runs `f` with the averaged weights in the variables, then puts the raw weights back
   * (also when `f` throws).
   */
  async withAverage<T>(f: () => T | Promise<T>): Promise<T> {
    const raw = new Map<string, Float32Array>();
    for (const [name, v] of this.vars) {
      raw.set(name, Float32Array.from(v.dataSync() as Float32Array));
      assign(v, this.shadow.get(name)!);
    }
    try {
      return await f();
    } finally {
      for (const [name, v] of this.vars) assign(v, raw.get(name)!);
    }
  }

  /** The average as checkpoint buffers; loading a checkpoint fills them in place. */
  buffers(): Buffers {
    const out = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const [name, v] of this.vars) out.set(`ema.${name}`, { shape: v.shape, data: this.shadow.get(name)! });
    out.set('ema.updates', { shape: [1], data: this.count });
    return out;
  }
}

function assign(v: tf.Variable, data: Float32Array): void {
  tf.tidy(() => v.assign(tf.tensor(data, v.shape, 'float32')));
}
