/**
 * Hierarchical dynamic gating: input-conditioned softmax gates (context = the pooled
 * encoder outputs) that weigh the experts' per-modality vectors into one fused vector.
 *   depth 1: one flat gate over experts; each expert's modalities are averaged.
 *   depth 2: per expert, a gate over modalities; then a gate over experts.
 *   depth 3: per expert, a gate over modalities; a gate over the experts of each kind;
 *            a gate over kinds. An expert's weight is kind weight × within-kind weight.
 * Top-k keeps the k largest expert weights per sample (chosen on a non-differentiated
 * copy) and renormalises them. The load-balancing loss is Switch Transformer's
 * E · Σ_i f_i · P_i (f_i: share of routing slots given to expert i; P_i: its mean weight).
 */
import * as tf from '@tensorflow/tfjs-core';
import { EgmfError } from '../../errors.ts';
import type { ExpertKind } from './experts.ts';
import { LayerNorm, Linear, split, type Scope } from './layers.ts';

export interface GatingConfig {
  /** 1, 2 or 3 levels (see above). */
  depth: number;
  /** Softmax temperature of every gate (lower = sharper). */
  temperature: number;
  /** Keep only the k largest expert weights (0 = dense). */
  top_k: number;
}

export interface GateOutput {
  fused: tf.Tensor2D; // [B, d]
  /** Unweighted load-balancing loss (1 when perfectly balanced). */
  balance: tf.Scalar;
  /** Final expert weights after top-k [B, E] (rows sum to 1). */
  expert: tf.Tensor2D;
  /** Modality weights per expert [B, E, M] (depth ≥ 2). */
  modality: tf.Tensor3D | null;
  /** Kind weights [B, K] (depth 3). */
  kind: tf.Tensor2D | null;
}

export function gateSoftmax(logits: tf.Tensor, temperature: number): tf.Tensor {
  return tf.softmax(tf.div(logits, temperature));
}

/**
 * A 0/1 mask [B, E] of each row's k largest weights (ties to the lower index, as TensorFlow's
 * TopKV2 and ArgMax break them). Computed by kernels, not read back: a host read here would
 * stop a captured training step (`tensorflow_graph.ts`) in the middle. No gradient flows
 * through the choice.
 */
function topMask(p: tf.Tensor2D, k: number): tf.Tensor2D {
  const e = p.shape[1];
  if (k >= e) return tf.onesLike(p);
  // Ops inside a custom gradient stay off the tape: TopK has no gradient of its own.
  const mask = tf.customGrad((input) => {
    const x = input as tf.Tensor2D;
    const shape = x.shape;
    return {
      value: k === 1
        ? tf.cast(tf.oneHot(tf.argMax(x, 1), e), 'float32')
        : tf.cast(tf.sum(tf.oneHot(tf.topk(x, k).indices, e), 1), 'float32'), // [B, k, E] → [B, E]
      gradFunc: () => tf.zeros(shape),
    };
  });
  return mask(p) as tf.Tensor2D;
}

/** Keeps each row's k largest weights and renormalises; the choice is not differentiated. */
export function applyTopK(p: tf.Tensor2D, k: number): tf.Tensor2D {
  const e = p.shape[1];
  if (k <= 0 || k >= e) return p;
  const kept = tf.mul(p, topMask(p, k));
  return tf.div(kept, tf.sum(kept, 1, true)) as tf.Tensor2D;
}

/** E · Σ_i f_i · P_i for weights p [B, E] routed to the top k (top 1 when dense); f_i, the share routed to i, is not differentiated. */
export function balanceLoss(p: tf.Tensor2D, k: number): tf.Scalar {
  const [b, e] = p.shape;
  const slots = k <= 0 ? 1 : Math.min(k, e);
  return tf.tidy(() => {
    const f = tf.mul(tf.sum(topMask(p, slots), 0), 1 / (b * slots));
    return tf.mul(e, tf.sum(tf.mul(f, tf.mean(p, 0)))) as tf.Scalar;
  });
}

export class HierarchicalGate {
  private readonly ln: LayerNorm;
  private readonly modalityGate: Linear | null; // ctx → E·M
  private readonly expertGate: Linear; // ctx → E
  private readonly kindGate: Linear | null; // ctx → K
  /** Expert indices per kind present, in kind order (contiguous: depth 3 slices them). */
  private readonly groups: { kind: ExpertKind; members: number[] }[];

  constructor(scope: Scope, readonly experts: readonly { kind: ExpertKind; name: string }[], readonly modalities: number, contextDim: number, readonly cfg: GatingConfig) {
    const e = experts.length;
    if (![1, 2, 3].includes(cfg.depth)) throw new EgmfError(`gating depth must be 1, 2 or 3, got ${cfg.depth}`, { key: 'model.gating.depth' });
    if (cfg.top_k > e) throw new EgmfError(`top_k ${cfg.top_k} exceeds the ${e} enabled experts`, { key: 'model.gating.top_k' });
    if (!(cfg.temperature > 0)) throw new EgmfError(`temperature must be positive, got ${cfg.temperature}`, { key: 'model.gating.temperature' });
    this.ln = new LayerNorm(scope.sub('ln'), contextDim);
    // Small initial weights: every gate starts close to uniform.
    this.modalityGate = cfg.depth >= 2 ? new Linear(scope.sub('modality'), contextDim, e * modalities, { std: 0.02 }) : null;
    this.expertGate = new Linear(scope.sub('expert'), contextDim, e, { std: 0.02 });
    this.groups = [];
    for (const [i, ex] of experts.entries()) {
      const g = this.groups.find((x) => x.kind === ex.kind);
      if (g) g.members.push(i);
      else this.groups.push({ kind: ex.kind, members: [i] });
    }
    for (const g of this.groups) {
      if (g.members.some((m, j) => m !== g.members[0]! + j)) throw new Error(`experts of kind ${g.kind} must be contiguous`);
    }
    this.kindGate = cfg.depth === 3 ? new Linear(scope.sub('kind'), contextDim, this.groups.length, { std: 0.02 }) : null;
  }

  get kinds(): ExpertKind[] {
    return this.groups.map((g) => g.kind);
  }

  /** context [B, C]; outs: E × [B, M, d] → fused [B, d] and the gate weights. */
  apply(context: tf.Tensor2D, outs: readonly tf.Tensor3D[]): GateOutput {
    const [b] = context.shape;
    const e = outs.length;
    const t = this.cfg.temperature;
    const c = this.ln.apply(context); // [B, C]
    const stacked = tf.stack([...outs], 1) as tf.Tensor4D; // [B, E, M, d]
    let modality: tf.Tensor3D | null = null;
    let perExpert: tf.Tensor3D; // [B, E, d]
    if (this.modalityGate === null) {
      perExpert = tf.mean(stacked, 2) as tf.Tensor3D;
    } else {
      modality = gateSoftmax(tf.reshape(this.modalityGate.apply(c), [b, e, this.modalities]), t) as tf.Tensor3D; // [B, E, M]
      perExpert = tf.sum(tf.mul(stacked, tf.expandDims(modality, 3)), 2) as tf.Tensor3D;
    }
    const logits = this.expertGate.apply(c) as tf.Tensor2D; // [B, E]
    let kind: tf.Tensor2D | null = null;
    let p: tf.Tensor2D;
    if (this.kindGate === null) {
      p = gateSoftmax(logits, t) as tf.Tensor2D;
    } else {
      kind = gateSoftmax(this.kindGate.apply(c), t) as tf.Tensor2D; // [B, K]
      const kindCols = split(kind, this.groups.length, 1);
      const cols: tf.Tensor[] = new Array<tf.Tensor>(e);
      this.groups.forEach((g, gi) => {
        const within = gateSoftmax(tf.slice(logits, [0, g.members[0]!], [-1, g.members.length]), t); // [B, |g|]
        split(tf.mul(within, kindCols[gi]!), g.members.length, 1).forEach((col, j) => (cols[g.members[j]!] = col));
      });
      p = tf.concat(cols, 1) as tf.Tensor2D; // [B, E], kind order = expert order
    }
    const balance = balanceLoss(p, this.cfg.top_k);
    const expert = applyTopK(p, this.cfg.top_k);
    const fused = tf.sum(tf.mul(perExpert, tf.expandDims(expert, 2)), 1) as tf.Tensor2D; // [B, d]
    return { fused, balance, expert, modality, kind };
  }
}
