/**
 * The expert pool: `count` experts of each enabled kind, each with its own weights, each
 * mapping the encoded modalities to one d-wide vector per modality.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ExperimentConfig, Modality } from '../../config/experiment.ts';
import type { ModalitySeq } from './encoders.ts';
import { GlobalExpert } from './expert-global.ts';
import { LocalExpert } from './expert-local.ts';
import { SemanticExpert } from './expert-semantic.ts';
import type { ForwardCtx, Scope } from './layers.ts';

export const EXPERT_KINDS = ['local', 'semantic', 'global'] as const;
export type ExpertKind = (typeof EXPERT_KINDS)[number];

export interface Expert {
  readonly kind: ExpertKind;
  /** e.g. `local.0`. */
  readonly name: string;
  /** seqs in `modalities` order, M × {[B, L_m, d], [B, L_m]} → [B, M, d]. */
  apply(seqs: readonly ModalitySeq[], ctx: ForwardCtx): tf.Tensor3D;
}

/** Builds every enabled expert, in kind order (local, semantic, global), under `egmf.experts`. */
export function buildExperts(scope: Scope, model: ExperimentConfig['model']): Expert[] {
  const ex = model.experts;
  const mods: readonly Modality[] = model.modalities;
  const d = model.width;
  const out: Expert[] = [];
  for (const kind of EXPERT_KINDS) {
    if (!ex[kind].enabled) continue;
    for (let i = 0; i < ex[kind].count; i++) {
      const s = scope.sub(`${kind}.${i}`);
      const name = `${kind}.${i}`;
      if (kind === 'local') out.push(new LocalExpert(s, name, mods, d, ex.local));
      else if (kind === 'semantic') out.push(new SemanticExpert(s, name, mods, d, ex.semantic));
      else out.push(new GlobalExpert(s, name, mods, d, ex.global));
    }
  }
  return out;
}
