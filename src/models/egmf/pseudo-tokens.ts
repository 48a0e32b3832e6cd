/**
 * Pseudo-token projector: the fused vector [B, d] → MLP → K pseudo tokens [B, K, D_llm]
 * in the LLM's input-embedding space. Each token is RMS-normalised and rescaled to the
 * typical norm of real token embeddings (times a learned per-channel gain), so the frozen
 * LLM sees inputs of the scale it was trained on.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gelu, rmsNorm } from '../ops.ts';
import { dropout, Linear, type ForwardCtx, type Scope } from './layers.ts';

export class PseudoTokenProjector {
  private readonly up: Linear;
  private readonly down: Linear;
  private readonly gain: tf.Variable; // [D_llm]
  /** Target RMS of a pseudo token: mean token-embedding norm / √D_llm. */
  private readonly rms: number;

  constructor(scope: Scope, width: number, readonly count: number, readonly llmWidth: number, embeddingNorm: number) {
    if (!(embeddingNorm > 0)) throw new Error(`embedding norm must be positive, got ${embeddingNorm}`);
    this.up = new Linear(scope.sub('up'), width, 2 * width);
    this.down = new Linear(scope.sub('down'), 2 * width, count * llmWidth);
    this.gain = scope.create('gain', [llmWidth], 0, 1);
    this.rms = embeddingNorm / Math.sqrt(llmWidth);
  }

  /** fused [B, d] → [B, K, D_llm]. */
  apply(fused: tf.Tensor2D, ctx: ForwardCtx): tf.Tensor3D {
    const [b] = fused.shape;
    const h = dropout(gelu(this.up.apply(fused)), ctx); // [B, 2d]
    const tokens = tf.reshape(this.down.apply(h), [b, this.count, this.llmWidth]); // [B, K, D]
    return rmsNorm(tokens, tf.mul(this.gain, this.rms), 1e-6) as tf.Tensor3D;
  }
}
