/**
 * Semantic correlation expert: cross-modal attention. Each modality's sequence attends to
 * the other modalities' sequences (their padding masked out), `depth` pre-LN blocks with
 * separate weights per target modality, all modalities updated together; then a masked
 * mean-pool per modality.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Modality } from '../../config/experiment.ts';
import type { ModalitySeq } from './encoders.ts';
import { AttentionBlock, keyBias, LayerNorm, Linear, maskedMean, zeroPadding, type ForwardCtx, type Scope } from './layers.ts';
import type { Expert } from './experts.ts';

export interface SemanticExpertConfig {
  width: number;
  depth: number;
  heads: number;
}

export class SemanticExpert implements Expert {
  readonly kind = 'semantic' as const;
  private readonly inProj: Linear;
  private readonly blocks: AttentionBlock[][]; // [depth][M]
  private readonly lnOut: LayerNorm;
  private readonly out: Linear;

  constructor(scope: Scope, readonly name: string, readonly modalities: readonly Modality[], width: number, cfg: SemanticExpertConfig) {
    if (modalities.length < 2) throw new Error('the semantic correlation expert needs at least two modalities');
    this.inProj = new Linear(scope.sub('in'), width, cfg.width);
    this.blocks = Array.from({ length: cfg.depth }, (_, l) => modalities.map((m) => new AttentionBlock(scope.sub(`l${l}.${m}`), cfg.width, cfg.heads, true)));
    this.lnOut = new LayerNorm(scope.sub('ln_out'), cfg.width);
    this.out = new Linear(scope.sub('out'), cfg.width, width);
  }

  /** seqs: M × {[B, L_m, d], [B, L_m]} → [B, M, d]. */
  apply(seqs: readonly ModalitySeq[], ctx: ForwardCtx): tf.Tensor3D {
    const masks = seqs.map((s) => s.mask);
    // Keys of modality m: every other modality's frames, concatenated in time.
    const otherMask = masks.map((_, m) => tf.concat(masks.filter((_, j) => j !== m), 1) as tf.Tensor2D); // [B, S_m]
    const otherBias = otherMask.map((mk) => keyBias(mk)); // [B, 1, 1, S_m]
    // A sample with no frames in any other modality attends to nothing: its update is zeroed.
    const hasKeys = otherMask.map((mk) => tf.reshape(tf.minimum(tf.sum(mk, 1), 1), [-1, 1, 1])); // [B, 1, 1]
    let xs = seqs.map((s) => this.inProj.apply(s.x) as tf.Tensor3D); // M × [B, L_m, w]
    for (const layer of this.blocks) {
      xs = xs.map((x, m) => {
        const src = tf.concat(xs.filter((_, j) => j !== m), 1) as tf.Tensor3D; // [B, S_m, w]
        const y = layer[m]!.apply(x, otherBias[m]!, ctx, src); // [B, L_m, w]
        const updated = tf.add(x, tf.mul(tf.sub(y, x), hasKeys[m]!)) as tf.Tensor3D;
        return zeroPadding(updated, masks[m]!);
      });
    }
    const pooled = xs.map((x, m) => maskedMean(this.lnOut.apply(x) as tf.Tensor3D, masks[m]!)); // M × [B, w]
    return this.out.apply(tf.stack(pooled, 1)) as tf.Tensor3D; // [B, M, d]
  }
}
