/**
 * Evaluation: greedy decoding over a split, parsed answers, the benchmark's metrics.
 * Outputs that do not parse are excluded from the metrics and counted (`unparsed`),
 * never turned into a default value.
 */
import type { BatchLoader } from '../data/loader.ts';
import type { DatasetMeta } from '../data/schema.ts';
import type { EgmfModel, GateReport } from '../models/egmf/index.ts';
import { confusionMatrix, metricsForMeta } from './metrics.ts';

export interface Prediction {
  id: string;
  truth: number;
  /** Parsed value, or null when the output did not parse. */
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
}

export function evaluate(model: EgmfModel, loader: BatchLoader, meta: DatasetMeta, opts: { mode?: 'constrained' | 'free'; limit?: number } = {}): EvalResult {
  const predictions: Prediction[] = [];
  const gateSums = new Map<string, number>();
  let seen = 0;
  for (const batch of loader.epochSync(0)) {
    if (opts.limit !== undefined && seen >= opts.limit) break;
    const r = model.predict(batch, { mode: opts.mode ?? 'constrained' });
    for (let i = 0; i < batch.size; i++) {
      const a = r.answers[i]!;
      predictions.push({
        id: batch.ids[i]!,
        truth: batch.labels[i]!,
        pred: r.values[i] ?? null,
        text: a.ok ? model.opts.grammar.answers[model.opts.grammar.values.indexOf(a.value)] ?? String(a.value) : a.text,
      });
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
  if (meta.task === 'classification' && parsed.length > 0) {
    out.confusion = confusionMatrix(parsed.map((p) => p.pred!), parsed.map((p) => p.truth), meta.labelNames!.length);
  }
  return out;
}

/** Gate report → flat `gate/<level>/<name>` batch means for logging. */
export function flattenGates(g: GateReport): Record<string, number> {
  const out: Record<string, number> = {};
  g.expert.names.forEach((n, i) => {
    out[`gate/expert/${n}`] = g.expert.mean[i]!;
  });
  g.kind?.names.forEach((n, i) => {
    out[`gate/kind/${n}`] = g.kind!.mean[i]!;
  });
  g.modality?.experts.forEach((e, i) => {
    g.modality!.modalities.forEach((m, j) => {
      out[`gate/modality/${e}/${m}`] = g.modality!.mean[i]![j]!;
    });
  });
  return out;
}
