/**
 * AdamW (decoupled weight decay, as PyTorch's) over named variables, with global-norm
 * gradient clipping and a state that round-trips through checkpoints exactly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { EgmfError } from '../errors.ts';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Which variables decay (default: matrices, i.e. rank ≥ 2; biases and norms do not). */
  decays?: (name: string, v: tf.Variable) => boolean;
}

/** Serialisable optimiser state: step count and first/second moments per variable. */
export interface AdamWState {
  step: number;
  m: Record<string, { shape: number[]; data: Float32Array }>;
  v: Record<string, { shape: number[]; data: Float32Array }>;
}

export class AdamW {
  step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;
  private readonly decays: (name: string, v: tf.Variable) => boolean;

  constructor(readonly vars: ReadonlyMap<string, tf.Variable>, o: AdamWOptions = {}) {
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0;
    this.decays = o.decays ?? ((_n, x) => x.rank >= 2);
    for (const [name, x] of vars) {
      this.m.set(name, tf.variable(tf.zerosLike(x), false));
      this.v.set(name, tf.variable(tf.zerosLike(x), false));
    }
  }

  /** Applies one update with learning rate `lr`; gradients are keyed like `vars`. */
  apply(grads: Record<string, tf.Tensor>, lr: number): void {
    this.step += 1;
    const t = this.step;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    for (const [name, x] of this.vars) {
      const g = grads[name];
      if (g === undefined) continue;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        m.assign(m1);
        v.assign(v1);
        const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), this.eps));
        const decayed = this.weightDecay > 0 && this.decays(name, x) ? tf.mul(x, 1 - lr * this.weightDecay) : x;
        x.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  state(): AdamWState {
    const dump = (vs: Map<string, tf.Variable>) =>
      Object.fromEntries([...vs].map(([n, x]) => [n, { shape: x.shape.slice(), data: x.dataSync() as Float32Array }]));
    return { step: this.step, m: dump(this.m), v: dump(this.v) };
  }

  /** Restores a saved state; names and shapes must match the current variables. */
  load(s: AdamWState, file?: string): void {
    for (const [which, vs] of [['m', this.m], ['v', this.v]] as const) {
      for (const [name, x] of vs) {
        const saved = s[which][name];
        if (saved === undefined) throw new EgmfError(`optimiser state lacks ${which} of '${name}'`, { file, key: name });
        if (saved.shape.join(',') !== x.shape.join(',')) {
          throw new EgmfError(`optimiser ${which} shape [${saved.shape}] differs from the variable's [${x.shape}]`, { file, key: name });
        }
        x.assign(tf.tensor(saved.data, saved.shape));
      }
    }
    this.step = s.step;
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (0 = off). Returns the
 * norm before clipping; the returned gradients replace the inputs (which are disposed).
 */
export function clipByGlobalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): { grads: Record<string, tf.Tensor>; norm: number } {
  const names = Object.keys(grads);
  const norm = tf.tidy(() => tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n]!))))).dataSync()[0]!);
  if (!(maxNorm > 0) || norm <= maxNorm || !Number.isFinite(norm)) return { grads, norm };
  const scale = maxNorm / (norm + 1e-6);
  const out: Record<string, tf.Tensor> = {};
  for (const n of names) {
    out[n] = tf.mul(grads[n]!, scale);
    grads[n]!.dispose();
  }
  return { grads: out, norm };
}
