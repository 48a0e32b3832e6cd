/** Tiny EGMF configs and synthetic inputs shared by the EGMF tests. */
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { validateExperiment, type ExperimentConfig } from '../../../src/config/experiment.ts';
import type { ModalitySeq } from '../../../src/models/egmf/encoders.ts';

export type ModelCfg = ExperimentConfig['model'];

/** A validated tiny model config; `model` overrides go through the real validator. */
export function tinyModel(model: Record<string, unknown> = {}): ModelCfg {
  const base = {
    width: 16,
    dropout: 0,
    pseudo_tokens: 2,
    experts: {
      local: { width: 8, kernels: [1, 3] },
      semantic: { width: 8, heads: 2 },
      global: { width: 8, heads: 2 },
    },
  };
  return validateExperiment({ model: merge(base, model) }).model;
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? merge(cur as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** Random frames [B, L, D] with `lengths[b]` real frames; padding filled with `pad` (garbage by default). */
export function sequence(rng: () => number, lengths: number[], padLen: number, dim: number, pad: 'garbage' | 'zero' = 'garbage', real?: Float32Array): ModalitySeq {
  const b = lengths.length;
  const x = new Float32Array(b * padLen * dim);
  const mask = new Float32Array(b * padLen);
  for (let i = 0; i < b; i++) {
    for (let t = 0; t < padLen; t++) {
      const isReal = t < lengths[i]!;
      if (isReal) mask[i * padLen + t] = 1;
      for (let c = 0; c < dim; c++) {
        const at = (i * padLen + t) * dim + c;
        x[at] = isReal ? (real ? real[at]! : 2 * rng() - 1) : pad === 'garbage' ? 50 * (rng() - 0.5) : 0;
      }
    }
  }
  return { x: tf.tensor3d(x, [b, padLen, dim]), mask: tf.tensor2d(mask, [b, padLen]) };
}

/** The same real frames re-padded to a longer length with garbage. */
export function repad(rng: () => number, seq: ModalitySeq, lengths: number[], padLen: number): ModalitySeq {
  const [b, l, d] = seq.x.shape;
  const src = seq.x.dataSync();
  const real = new Float32Array(b * padLen * d);
  for (let i = 0; i < b; i++) for (let t = 0; t < l; t++) for (let c = 0; c < d; c++) real[(i * padLen + t) * d + c] = src[(i * l + t) * d + c]!;
  return sequence(rng, lengths, padLen, d, 'garbage', real);
}

export function rngFor(seed: number): () => number {
  return seedrandom(String(seed));
}

export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  if (x.length !== y.length) throw new Error(`sizes differ: ${x.length} vs ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}
