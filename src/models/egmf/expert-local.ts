/**
 * Fine-grained local expert: per modality, multi-kernel temporal convolutions (kernel
 * sizes from the config, each unfold + linear through ops.conv1d) whose outputs are
 * concatenated and mixed back to the expert width, GELU; `depth` such layers; then a
 * masked max-pool over time picks the strongest local cue per channel.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Modality } from '../../config/experiment.ts';
import { conv1d, gelu } from '../ops.ts';
import type { ModalitySeq } from './encoders.ts';
import { dropout, Linear, maskedMax, zeroPadding, type ForwardCtx, type Scope } from './layers.ts';
import type { Expert } from './experts.ts';

export interface LocalExpertConfig {
  /** Hidden width w. */
  width: number;
  /** Convolution layers. */
  depth: number;
  /** Temporal kernel sizes, one convolution each per layer. */
  kernels: number[];
}

class MultiKernelConv {
  private readonly convs: { k: number; w: tf.Variable; b: tf.Variable }[];
  private readonly mix: Linear;

  constructor(scope: Scope, inDim: number, width: number, kernels: number[]) {
    this.convs = kernels.map((k) => ({
      k,
      w: scope.create(`conv.k${k}.weight`, [k, inDim, width], 1 / Math.sqrt(k * inDim)),
      b: scope.create(`conv.k${k}.bias`, [width], 0),
    }));
    this.mix = new Linear(scope.sub('mix'), kernels.length * width, width);
  }

  /** x [B, L, in] with zeroed padding → [B, L, w] with zeroed padding. */
  apply(x: tf.Tensor3D, mask: tf.Tensor2D, ctx: ForwardCtx): tf.Tensor3D {
    const outs = this.convs.map((c) => conv1d(x, c.w as tf.Tensor3D, c.b as tf.Tensor1D)); // K × [B, L, w]
    const cat = outs.length === 1 ? outs[0]! : tf.concat(outs, 2); // [B, L, K·w]
    const h = dropout(gelu(this.mix.apply(cat)), ctx) as tf.Tensor3D; // [B, L, w]
    return zeroPadding(h, mask);
  }
}

export class LocalExpert implements Expert {
  readonly kind = 'local' as const;
  private readonly layers: Map<Modality, MultiKernelConv[]>;
  private readonly out: Linear;

  constructor(scope: Scope, readonly name: string, readonly modalities: readonly Modality[], width: number, cfg: LocalExpertConfig) {
    this.layers = new Map(
      modalities.map((m) => [m, Array.from({ length: cfg.depth }, (_, l) => new MultiKernelConv(scope.sub(`${m}.l${l}`), l === 0 ? width : cfg.width, cfg.width, cfg.kernels))]),
    );
    this.out = new Linear(scope.sub('out'), cfg.width, width);
  }

  /** seqs: M × {[B, L_m, d], [B, L_m]} → [B, M, d]. */
  apply(seqs: readonly ModalitySeq[], ctx: ForwardCtx): tf.Tensor3D {
    const pooled = this.modalities.map((m, i) => {
      let h = seqs[i]!.x; // [B, L, d]
      for (const layer of this.layers.get(m)!) h = layer.apply(h, seqs[i]!.mask, ctx); // [B, L, w]
      return maskedMax(h, seqs[i]!.mask); // [B, w]
    });
    return this.out.apply(tf.stack(pooled, 1)) as tf.Tensor3D; // [B, M, d]
  }
}
