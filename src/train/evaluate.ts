/**
 * Evaluation: greedy decoding over a split, parsed answers, the benchmark's metrics.
 * Outputs that do not parse are excluded from the metrics and counted (`unparsed`),
 * never turned into a default value.
 */
import type { Batch, BatchLoader } from '../data/loader.ts';
import type { DatasetMeta } from '../data/schema.ts';
import type { EgmfModel, GateReport } from '../models/egmf/index.ts';
import { confusionMatrix, metricsForMeta } from './metrics.ts';

export interface Prediction {
  id: string;
  truth: number;
  /** Parsed value (after `mapPrediction`, when given), or null when the output did not parse. */
  pred: number | null;
  /** The decoded answer text. */
  text: string;
}

export interface EvalResult {
  metrics: Record<string, number>;
  predictions: Prediction[];
  unparsed: number;
  confusion?: number[][];
  /** Mean gate weights over the split, per level and name. */
  gates: Record<string, number>;
  /** Flat gate weights of every sample, parallel to `predictions` (with `sampleGates`). */
  sampleGates?: Record<string, number>[];
}

export interface EvaluateOptions {
  mode?: 'constrained' | 'free';
  /** Stop after the batch that reaches this many samples. */
  limit?: number;
  /** Applied to every batch before the model sees it (test-time perturbations); must not change ids or labels. */
  transform?: (batch: Batch) => Batch;
  /**
   * Maps a parsed answer into `meta`'s label space before the metrics (cross-dataset
   * transfer: the model answers in its own label set or range).
   */
  mapPrediction?: (value: number) => number;
  /** Also keep every sample's flat gate weights (`sampleGates`). */
  sampleGates?: boolean;
}

export function evaluate(model: EgmfModel, loader: BatchLoader, meta: DatasetMeta, opts: EvaluateOptions = {}): EvalResult {
  const predictions: Prediction[] = [];
  const sampleGates: Record<string, number>[] = [];
  const gateSums = new Map<string, number>();
  const map = opts.mapPrediction ?? ((v: number) => v);
  let seen = 0;
  for (const raw of loader.epochSync(0)) {
    if (opts.limit !== undefined && seen >= opts.limit) break;
    const batch = opts.transform ? opts.transform(raw) : raw;
    const r = model.predict(batch, { mode: opts.mode ?? 'constrained' });
    for (let i = 0; i < batch.size; i++) {
      const a = r.answers[i]!;
      const value = r.values[i] ?? null;
      predictions.push({
        id: batch.ids[i]!,
        truth: batch.labels[i]!,
        pred: value === null ? null : map(value),
        text: a.ok ? model.opts.grammar.answers[model.opts.grammar.values.indexOf(a.value)] ?? String(a.value) : a.text,
      });
      if (opts.sampleGates) sampleGates.push(flattenSampleGates(r.gates, i));
    }
    for (const [k, v] of Object.entries(flattenGates(r.gates))) gateSums.set(k, (gateSums.get(k) ?? 0) + v * batch.size);
    seen += batch.size;
  }
  const parsed = predictions.filter((p) => p.pred !== null);
  const metrics: Record<string, number> = parsed.length > 0
    ? metricsForMeta(meta)(parsed.map((p) => p.pred!), parsed.map((p) => p.truth))
    : {};
  const unparsed = predictions.length - parsed.length;
  metrics.unparsed = unparsed;
  const gates = Object.fromEntries([...gateSums].map(([k, v]) => [k, v / Math.max(1, seen)]));
  const out: EvalResult = { metrics, predictions, unparsed, gates };
  if (opts.sampleGates) out.sampleGates = sampleGates;
  if (meta.task === 'classification' && parsed.length > 0) {
    out.confusion = confusionMatrix(parsed.map((p) => p.pred!), parsed.map((p) => p.truth), meta.labelNames!.length);
  }
  return out;
}

/** Gate report → flat `gate/<level>/<name>` batch means for logging. */
export function flattenGates(g: GateReport): Record<string, number> {
  return flatGates(g, g.expert.mean, g.kind?.mean, g.modality?.mean);
}

/** Gate report → the flat `gate/<level>/<name>` weights of sample `i` of the batch. */
export function flattenSampleGates(g: GateReport, i: number): Record<string, number> {
  return flatGates(g, g.expert.perSample[i]!, g.kind?.perSample[i], g.modality?.perSample[i]);
}

function flatGates(g: GateReport, expert: number[], kind: number[] | undefined, modality: number[][] | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  g.expert.names.forEach((n, i) => {
    out[`gate/expert/${n}`] = expert[i]!;
  });
  g.kind?.names.forEach((n, i) => {
    out[`gate/kind/${n}`] = kind![i]!;
  });
  g.modality?.experts.forEach((e, i) => {
    g.modality!.modalities.forEach((m, j) => {
      out[`gate/modality/${e}/${m}`] = modality![i]![j]!;
    });
  });
  return out;
}
