/** Gate weights as plain arrays for logs and reports: per level, the batch mean and per sample. */
import type { Modality } from '../../config/experiment.ts';
import type { FusionNetwork } from './fusion.ts';
import type { GateOutput } from './gating.ts';

export interface GateLevel {
  /** Names of the weighted items (experts `local.0`, or kinds). */
  names: string[];
  mean: number[];
  /** [B][items]. */
  perSample: number[][];
}

export interface GateReport {
  /** Final expert weights (after top-k). */
  expert: GateLevel;
  /** Kind weights (depth 3 only). */
  kind: GateLevel | null;
  /** Modality weights per expert (depth ≥ 2 only): mean [E][M], perSample [B][E][M]. */
  modality: { experts: string[]; modalities: Modality[]; mean: number[][]; perSample: number[][][] } | null;
}

function rows(data: ArrayLike<number>, b: number, n: number): number[][] {
  return Array.from({ length: b }, (_, i) => Array.from({ length: n }, (_, j) => data[i * n + j]!));
}

function mean(rs: number[][]): number[] {
  return rs[0]!.map((_, j) => rs.reduce((s, r) => s + r[j]!, 0) / rs.length);
}

/** The gate weights a report reads. */
export type GateWeights = Pick<GateOutput, 'expert' | 'kind' | 'modality'>;

export function gateReport(fusion: FusionNetwork, g: GateWeights): GateReport {
  const [b, e] = g.expert.shape;
  const names = fusion.experts.map((x) => x.name);
  const expertRows = rows(g.expert.dataSync(), b, e);
  const expert = { names, mean: mean(expertRows), perSample: expertRows };
  let kind: GateLevel | null = null;
  if (g.kind !== null) {
    const kr = rows(g.kind.dataSync(), b, g.kind.shape[1]);
    kind = { names: fusion.gate.kinds, mean: mean(kr), perSample: kr };
  }
  let modality: GateReport['modality'] = null;
  if (g.modality !== null) {
    const m = g.modality.shape[2];
    const flat = rows(g.modality.dataSync(), b, e * m);
    const perSample = flat.map((r) => rows(r, e, m));
    const meanFlat = mean(flat);
    modality = { experts: names, modalities: [...fusion.modalities], mean: rows(meanFlat, e, m), perSample };
  }
  return { expert, kind, modality };
}
