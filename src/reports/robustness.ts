/**
 * Robustness of a trained run under test-time perturbations: modality ablation, feature
 * noise, text corruption (word dropout and shuffle, character noise; Chinese by character),
 * cross-dataset transfer (the model's answers mapped into the target's label space or
 * range), robustness curves with their area, and confidence intervals (bootstrap over test
 * samples, Student t over seeds). The engine of the cross-lingual robustness report.
 *
 *     const run = await loadRun('outputs/synthetic-meld/seed1111');
 *     const r = evaluatePerturbed(run, parsePerturbation('drop:audio,vision'), { seed: 1 });
 *     const c = robustnessCurve(run, (x) => ({ kind: 'token_dropout', rate: x }), [0, 0.2, 0.4]);
 *     run.dispose();
 *
 * Every random choice is keyed by (seed, perturbation, sample id), so a sample is perturbed
 * the same way whatever batch it lands in and however far the evaluation goes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { EgmfError } from '../errors.ts';
import type { ExperimentConfig } from '../config/experiment.ts';
import { openLoader } from '../data/loader.ts';
import type { Batch, BatchLoader } from '../data/loader.ts';
import type { DatasetMeta, SplitName } from '../data/schema.ts';
import { evaluate } from '../train/evaluate.ts';
import { metricsForMeta, primaryMetric } from '../train/metrics.ts';
import { openRunFolder } from '../train/run-folder.ts';
import { disposeSetup, evalLoaderOptions } from '../train/setup.ts';
import type { Setup } from '../train/setup.ts';

export type Modality = 'text' | 'audio' | 'vision';
export type Perturbation =
  | { kind: 'none' }
  | { kind: 'drop'; modalities: Modality[] }
  | { kind: 'feature_noise'; modality: 'audio' | 'vision'; sigma: number }
  | { kind: 'token_dropout'; rate: number }
  | { kind: 'word_shuffle'; rate: number }
  | { kind: 'char_noise'; rate: number };

const MODALITY_ORDER: readonly Modality[] = ['text', 'audio', 'vision'];
const RATE_KINDS = ['token_dropout', 'word_shuffle', 'char_noise'] as const;
const FORMS = "none, drop:<text|audio|vision>[,...] (e.g. drop:audio,vision), noise:<audio|vision>:<sigma ≥ 0> (e.g. noise:audio:0.5), token_dropout:<rate>, word_shuffle:<rate>, char_noise:<rate> (rates in [0, 1])";

// ---------------------------------------------------------------------------------------
// Perturbations: names, parsing, checks

function percent(rate: number): string {
  return `${+(rate * 100).toFixed(4)}%`;
}

/** 'none', 'drop audio+vision', 'audio noise σ=0.5', 'token dropout 20%', 'word shuffle 30%', 'char noise 10%'. */
export function describePerturbation(p: Perturbation): string {
  switch (p.kind) {
    case 'none': return 'none';
    case 'drop': return `drop ${canonicalModalities(p.modalities).join('+')}`;
    case 'feature_noise': return `${p.modality} noise σ=${p.sigma}`;
    case 'token_dropout': return `token dropout ${percent(p.rate)}`;
    case 'word_shuffle': return `word shuffle ${percent(p.rate)}`;
    case 'char_noise': return `char noise ${percent(p.rate)}`;
  }
}

/** The string form `parsePerturbation` reads back ('drop:audio,vision', 'noise:audio:0.5', ...). */
export function formatPerturbation(p: Perturbation): string {
  switch (p.kind) {
    case 'none': return 'none';
    case 'drop': return `drop:${canonicalModalities(p.modalities).join(',')}`;
    case 'feature_noise': return `noise:${p.modality}:${p.sigma}`;
    default: return `${p.kind}:${p.rate}`;
  }
}

function canonicalModalities(ms: readonly Modality[]): Modality[] {
  return MODALITY_ORDER.filter((m) => ms.includes(m));
}

/** Why a perturbation is invalid, or null. */
function perturbationProblem(p: Perturbation): string | null {
  if (typeof p !== 'object' || p === null) return 'not a perturbation object';
  switch (p.kind) {
    case 'none': return null;
    case 'drop': {
      if (!Array.isArray(p.modalities) || p.modalities.length === 0) return 'drop needs at least one modality';
      const bad = p.modalities.filter((m) => !MODALITY_ORDER.includes(m));
      if (bad.length > 0) return `unknown modality ${bad.map((m) => `'${m}'`).join(', ')} (expected text, audio or vision)`;
      if (new Set(p.modalities).size !== p.modalities.length) return 'a modality is listed twice';
      return null;
    }
    case 'feature_noise':
      if (p.modality !== 'audio' && p.modality !== 'vision') return `feature noise applies to audio or vision, not '${String(p.modality)}'`;
      if (typeof p.sigma !== 'number' || !Number.isFinite(p.sigma) || p.sigma < 0) return `sigma must be a finite number ≥ 0, got ${String(p.sigma)}`;
      return null;
    case 'token_dropout':
    case 'word_shuffle':
    case 'char_noise':
      if (typeof p.rate !== 'number' || !(p.rate >= 0 && p.rate <= 1)) return `rate must be a number in [0, 1], got ${String(p.rate)}`;
      return null;
    default:
      return `unknown kind '${String((p as { kind: unknown }).kind)}'`;
  }
}

function checkPerturbation(p: Perturbation): void {
  const why = perturbationProblem(p);
  if (why !== null) throw new EgmfError(`bad perturbation ${JSON.stringify(p)}: ${why}; allowed forms: ${FORMS}`, { key: 'perturbation' });
}

function parseNumber(s: string | undefined): number {
  if (s === undefined || s.trim() === '') return NaN;
  const v = Number(s);
  return Number.isFinite(v) ? v : NaN;
}

/** 'none', 'drop:audio,vision', 'noise:audio:0.5', 'token_dropout:0.2', 'word_shuffle:0.3', 'char_noise:0.1'. */
export function parsePerturbation(s: string): Perturbation {
  const fail = (why: string): never => {
    throw new EgmfError(`bad perturbation '${s}': ${why}; allowed forms: ${FORMS}`, { key: 'perturbation' });
  };
  if (typeof s !== 'string') return fail('not a string');
  const parts = s.trim().split(':');
  const [kind, ...args] = parts;
  const arity = (n: number) => {
    if (args.length !== n) fail(`${kind} takes ${n === 0 ? 'no argument' : n === 1 ? 'one argument' : `${n} arguments`}, got ${args.length}`);
  };
  let p: Perturbation;
  switch (kind) {
    case 'none':
      arity(0);
      p = { kind: 'none' };
      break;
    case 'drop': {
      arity(1);
      const ms = args[0]!.split(',').map((m) => m.trim()).filter((m) => m.length > 0);
      p = { kind: 'drop', modalities: ms as Modality[] };
      break;
    }
    case 'noise':
    case 'feature_noise': {
      arity(2);
      const sigma = parseNumber(args[1]);
      if (Number.isNaN(sigma)) fail(`sigma '${args[1]}' is not a number`);
      p = { kind: 'feature_noise', modality: args[0]!.trim() as 'audio' | 'vision', sigma };
      break;
    }
    case 'token_dropout':
    case 'word_shuffle':
    case 'char_noise': {
      arity(1);
      const rate = parseNumber(args[0]);
      if (Number.isNaN(rate)) fail(`rate '${args[0]}' is not a number`);
      p = { kind, rate };
      break;
    }
    default:
      return fail(`unknown kind '${kind}'`);
  }
  const why = perturbationProblem(p);
  if (why !== null) fail(why);
  if (p.kind === 'drop') p = { kind: 'drop', modalities: canonicalModalities(p.modalities) };
  return p;
}

// ---------------------------------------------------------------------------------------
// Text perturbations

const CJK = /[\u2e80-\u2fff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u{20000}-\u{2fa1f}]/u;

/**
 * Units of a text: whitespace-separated words, or, for Chinese (at least half of its
 * non-space characters CJK), its non-space characters (code points; joined without spaces).
 */
export function textUnits(text: string): { units: string[]; sep: '' | ' ' } {
  const chars = [...text];
  const visible = chars.filter((c) => !/\s/u.test(c));
  const cjk = visible.filter((c) => CJK.test(c)).length;
  if (visible.length > 0 && cjk * 2 >= visible.length) return { units: visible, sep: '' };
  return { units: text.split(/\s+/u).filter((w) => w.length > 0), sep: ' ' };
}

/**
 * A text perturbation applied to one string, with the random stream of `key` (the same key
 * gives the same result). `drop` with text gives ''; kinds that do not touch text return it.
 *   token_dropout: each unit dropped with probability rate (rate 1 → '').
 *   word_shuffle: round(rate × n) unit positions chosen at random and cyclically permuted
 *                 among themselves (a random cycle, so every chosen unit moves).
 *   char_noise: each non-space character, with probability rate, is replaced, deleted, or
 *               followed by an inserted character (equally likely); replacements and
 *               insertions are drawn from the text's own characters (Chinese stays Chinese).
 * Nothing changed → the text itself (whitespace untouched).
 */
export function perturbText(text: string, p: Perturbation, key: string): string {
  const rng = seedrandom(key);
  switch (p.kind) {
    case 'drop':
      return p.modalities.includes('text') ? '' : text;
    case 'token_dropout': {
      if (p.rate <= 0) return text;
      const { units, sep } = textUnits(text);
      const kept = units.filter(() => rng() >= p.rate);
      return kept.length === units.length ? text : kept.join(sep);
    }
    case 'word_shuffle': {
      const { units, sep } = textUnits(text);
      const k = Math.round(p.rate * units.length);
      if (k < 2) return text;
      // k random positions (a partial Fisher–Yates), then Sattolo's random cycle over them.
      const idx = units.map((_, i) => i);
      for (let i = 0; i < k; i++) {
        const j = i + Math.floor(rng() * (idx.length - i));
        [idx[i], idx[j]] = [idx[j]!, idx[i]!];
      }
      const pos = idx.slice(0, k);
      const perm = pos.slice();
      for (let i = k - 1; i > 0; i--) {
        const j = Math.floor(rng() * i);
        [perm[i], perm[j]] = [perm[j]!, perm[i]!];
      }
      const out = units.slice();
      pos.forEach((at, i) => (out[at] = units[perm[i]!]!));
      return out.join(sep);
    }
    case 'char_noise': {
      if (p.rate <= 0) return text;
      const chars = [...text];
      const pool = [...new Set(chars.filter((c) => !/\s/u.test(c)))];
      if (pool.length === 0) return text;
      const draw = (not?: string): string => {
        const choices = pool.length > 1 && not !== undefined ? pool.filter((c) => c !== not) : pool;
        return choices[Math.floor(rng() * choices.length)]!;
      };
      const out: string[] = [];
      let changed = false;
      for (const c of chars) {
        if (/\s/u.test(c) || rng() >= p.rate) {
          out.push(c);
          continue;
        }
        changed = true;
        const op = Math.floor(rng() * 3);
        if (op === 0) out.push(draw(c));
        else if (op === 2) out.push(c, draw());
        // op 1: deleted
      }
      return changed ? out.join('') : text;
    }
    default:
      return text;
  }
}

// ---------------------------------------------------------------------------------------
// Feature perturbations

/** Standard normal deviates from a uniform stream (Box–Muller). */
function gaussians(rng: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = rng();
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

const stdCache = new WeakMap<BatchLoader, Partial<Record<'audio' | 'vision', Float64Array>>>();

/** Per-feature standard deviation over a split's real frames (as its loader shapes them), computed once per loader. */
export function featureStd(loader: BatchLoader, modality: 'audio' | 'vision'): Float64Array {
  let entry = stdCache.get(loader);
  if (entry === undefined) stdCache.set(loader, (entry = {}));
  const hit = entry[modality];
  if (hit !== undefined) return hit;
  const dim = modality === 'audio' ? loader.meta.audioDim : loader.meta.visionDim;
  const sum = new Float64Array(dim);
  const sq = new Float64Array(dim);
  let frames = 0;
  for (const b of loader.epochSync(0)) {
    const [x, mask, len] = modality === 'audio' ? [b.audio, b.audioMask, b.audioPadLen] : [b.vision, b.visionMask, b.visionPadLen];
    for (let f = 0; f < b.size * len; f++) {
      if (mask[f] !== 1) continue;
      frames++;
      for (let d = 0; d < dim; d++) {
        const v = x[f * dim + d]!;
        sum[d]! += v;
        sq[d]! += v * v;
      }
    }
  }
  const std = new Float64Array(dim);
  for (let d = 0; d < dim; d++) {
    const mean = frames > 0 ? sum[d]! / frames : 0;
    std[d] = frames > 0 ? Math.sqrt(Math.max(0, sq[d]! / frames - mean * mean)) : 0;
  }
  entry[modality] = std;
  return std;
}

/**
 * Audio/vision removed: no frames (the model reads one masked zero frame), lengths 0; text
 * '' (and no dialogue context, which is text too).
 */
function dropModalities(b: Batch, ms: readonly Modality[]): Batch {
  const out: Batch = { ...b };
  if (ms.includes('text')) {
    out.texts = b.texts.map(() => '');
    if (b.contexts !== undefined) out.contexts = b.contexts.map(() => []);
  }
  if (ms.includes('audio')) {
    Object.assign(out, { audio: new Float32Array(0), audioMask: new Uint8Array(0), audioLengths: new Int32Array(b.size), audioPadLen: 0 });
  }
  if (ms.includes('vision')) {
    Object.assign(out, { vision: new Float32Array(0), visionMask: new Uint8Array(0), visionLengths: new Int32Array(b.size), visionPadLen: 0 });
  }
  return out;
}

function addNoise(b: Batch, m: 'audio' | 'vision', sigma: number, std: Float64Array, key: (id: string) => string): Batch {
  const [x, mask, len, dim] = m === 'audio' ? [b.audio, b.audioMask, b.audioPadLen, b.audioDim] : [b.vision, b.visionMask, b.visionPadLen, b.visionDim];
  const y = Float32Array.from(x);
  for (let s = 0; s < b.size; s++) {
    const z = gaussians(seedrandom(key(b.ids[s]!)));
    for (let t = 0; t < len; t++) {
      const f = s * len + t;
      if (mask[f] !== 1) continue;
      for (let d = 0; d < dim; d++) y[f * dim + d]! += sigma * std[d]! * z();
    }
  }
  return m === 'audio' ? { ...b, audio: y } : { ...b, vision: y };
}

/** The batch transform of a perturbation (undefined: the identity). */
export function batchTransform(p: Perturbation, seed: number, loader: BatchLoader): ((b: Batch) => Batch) | undefined {
  const key = (id: string) => `egmf-robustness/${seed}/${formatPerturbation(p)}/${id}`;
  switch (p.kind) {
    case 'none':
      return undefined;
    case 'drop':
      return (b) => dropModalities(b, p.modalities);
    case 'feature_noise': {
      if (p.sigma === 0) return undefined;
      const dim = p.modality === 'audio' ? loader.meta.audioDim : loader.meta.visionDim;
      if (dim === 0) throw new EgmfError(`dataset '${loader.meta.dataset}' has no ${p.modality} features to add noise to`, { file: loader.files[0], key: 'perturbation' });
      const std = featureStd(loader, p.modality);
      return (b) => addNoise(b, p.modality, p.sigma, std, key);
    }
    default:
      // The dialogue context, when the model reads one, is perturbed like the utterance (each of its utterances with a key of its own).
      return (b) => ({
        ...b, texts: b.texts.map((t, i) => perturbText(t, p, key(b.ids[i]!))),
        ...(b.contexts !== undefined ? { contexts: b.contexts.map((c, i) => c.map((t, j) => perturbText(t, p, `${key(b.ids[i]!)}/context/${j}`))) } : {}),
      });
  }
}

// ---------------------------------------------------------------------------------------
// Runs

export interface LoadedRun {
  runDir: string;
  /** The checkpoint folder the weights came from (checkpoints/best, else latest). */
  ckptDir: string;
  cfg: ExperimentConfig;
  setup: Setup;
  dispose(): void;
}

/** A finished run folder rebuilt for evaluation (as `egmf eval` does); `sets` override config keys. */
export async function loadRun(runDir: string, o: { sets?: string[]; say?: (m: string) => void } = {}): Promise<LoadedRun> {
  const r = await openRunFolder(runDir, { sets: o.sets ?? [], say: o.say, evalOnly: true });
  let disposed = false;
  return {
    runDir: r.runDir, ckptDir: r.ckptDir, cfg: r.cfg, setup: r.setup,
    dispose: () => {
      if (!disposed) disposeSetup(r.setup);
      disposed = true;
    },
  };
}

export interface TransferTarget {
  loader: BatchLoader;
  meta: DatasetMeta;
  /** Source class index → target class index (default: `emotionLabelMap(source, target)`). */
  labelMap?: number[];
}

/** Another dataset's split opened the way the run opens its own (batch size, frame caps). */
export function openTarget(run: LoadedRun, dir: string, split: SplitName = 'test'): TransferTarget {
  const file = join(dir, `${split}.arrow`);
  if (!existsSync(file)) throw new EgmfError(`no ${split} split to transfer to`, { file });
  const loader = openLoader(file, evalLoaderOptions(run.cfg));
  return { loader, meta: loader.meta };
}

export interface PerturbedEval {
  /** describePerturbation's name. */
  perturbation: string;
  /** formatPerturbation's string (parsePerturbation reads it back). */
  spec: string;
  /** The evaluated dataset's metrics (the target's, in transfer), with `unparsed`. */
  metrics: Record<string, number>;
  predictions: { id: string; truth: number; pred: number | null }[];
  /** Mean flat gate weights (`gate/<level>/<name>`). */
  gates: Record<string, number>;
  /** Class label (English where known) → mean flat gate weights of its samples; classification only. */
  gatesByClass?: Record<string, Record<string, number>>;
  n: number;
}

export interface PerturbedOptions {
  /** The run's split (default test, or valid when the run has no test split); ignored with `target`. */
  split?: 'valid' | 'test';
  /** Seed of the random perturbations (default 0). */
  seed?: number;
  /** Samples evaluated (whole batches: stops after the batch that reaches it). */
  limit?: number;
  /** Evaluate on another dataset's split (cross-lingual transfer). */
  target?: TransferTarget;
}

/** The loader, metadata and answer mapping of an evaluation: the run's own split or a transfer target. */
function evaluationData(run: LoadedRun, o: PerturbedOptions): { loader: BatchLoader; meta: DatasetMeta; mapPrediction?: (v: number) => number } {
  const src = run.setup.meta;
  if (o.target === undefined) {
    const split = o.split ?? (run.setup.loaders.test ? 'test' : 'valid');
    const loader = run.setup.loaders[split];
    if (!loader) throw new EgmfError(`the run has no ${split} split (cfg data.${split}_split is '${run.cfg.data[`${split}_split`]}')`, { file: run.runDir, key: 'split' });
    return { loader, meta: src };
  }
  const { loader, meta: tgt } = o.target;
  checkTransferWidths(run, tgt);
  if (src.task !== tgt.task) {
    throw new EgmfError(`cannot transfer ${src.dataset} (${src.task}) to ${tgt.dataset} (${tgt.task}): the tasks differ`, { file: loader.files[0] });
  }
  if (src.task === 'regression') {
    const from = src.labelRange!;
    const to = tgt.labelRange!;
    return { loader, meta: tgt, mapPrediction: (v) => rescaleSentiment(v, from, to) };
  }
  const map = o.target.labelMap ?? emotionLabelMap(src, tgt);
  const nSrc = src.labelNames!.length;
  const nTgt = tgt.labelNames!.length;
  if (map.length !== nSrc || map.some((t) => !Number.isInteger(t) || t < 0 || t >= nTgt)) {
    throw new EgmfError(`labelMap must give each of ${src.dataset}'s ${nSrc} classes a class index of ${tgt.dataset} in 0..${nTgt - 1}, got [${map.join(', ')}]`, { key: 'labelMap' });
  }
  return { loader, meta: tgt, mapPrediction: (v) => map[v]! };
}

/** The model reads its audio/vision at the source's widths: the target's must be the same. */
function checkTransferWidths(run: LoadedRun, tgt: DatasetMeta): void {
  const src = run.setup.meta;
  const used = run.cfg.model.modalities.filter((m) => m !== 'text');
  const bad = used.filter((m) => (m === 'audio' ? src.audioDim !== tgt.audioDim : src.visionDim !== tgt.visionDim));
  if (bad.length === 0) return;
  const widths = bad.map((m) => `${m} ${m === 'audio' ? src.audioDim : src.visionDim} vs ${m === 'audio' ? tgt.audioDim : tgt.visionDim}`).join(', ');
  throw new EgmfError(
    `cannot evaluate the ${src.dataset} model on ${tgt.dataset}: feature widths differ (${src.dataset} audio×vision ${src.audioDim}×${src.visionDim}, ` +
    `${tgt.dataset} ${tgt.audioDim}×${tgt.visionDim}; ${widths}); only a text-only model (model.modalities=[text]) transfers between them`,
    { key: 'model.modalities' },
  );
}

/** Evaluates the run under one perturbation (deterministic for a seed); uses evaluate(). */
export function evaluatePerturbed(run: LoadedRun, p: Perturbation, o: PerturbedOptions = {}): PerturbedEval {
  checkPerturbation(p);
  const seed = o.seed ?? 0;
  const { loader, meta, mapPrediction } = evaluationData(run, o);
  const transform = batchTransform(p, seed, loader);
  const r = evaluate(run.setup.model, loader, meta, {
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
    ...(transform ? { transform } : {}),
    ...(mapPrediction ? { mapPrediction } : {}),
    sampleGates: meta.task === 'classification',
  });
  const out: PerturbedEval = {
    perturbation: describePerturbation(p),
    spec: formatPerturbation(p),
    metrics: r.metrics,
    predictions: r.predictions.map(({ id, truth, pred }) => ({ id, truth, pred })),
    gates: r.gates,
    n: r.predictions.length,
  };
  if (meta.task === 'classification' && r.sampleGates) {
    const names = meta.labelNamesEn ?? meta.labelNames!;
    const sums = new Map<number, { n: number; g: Record<string, number> }>();
    r.predictions.forEach((pr, i) => {
      const s = sums.get(pr.truth) ?? { n: 0, g: {} };
      for (const [k, v] of Object.entries(r.sampleGates![i]!)) s.g[k] = (s.g[k] ?? 0) + v;
      s.n += 1;
      sums.set(pr.truth, s);
    });
    out.gatesByClass = Object.fromEntries([...sums].sort(([a], [b]) => a - b).map(([c, s]) => [
      names[c] ?? String(c), Object.fromEntries(Object.entries(s.g).map(([k, v]) => [k, v / s.n])),
    ]));
  }
  return out;
}

/** Trapezoid area under values over levels rescaled to [0, 1] (one level: its value). */
export function trapezoidAuc(levels: readonly number[], values: readonly number[]): number {
  if (levels.length !== values.length || levels.length === 0) throw new EgmfError(`need as many values as levels (got ${values.length} and ${levels.length})`, { key: 'levels' });
  for (let i = 1; i < levels.length; i++) {
    if (!(levels[i]! > levels[i - 1]!)) throw new EgmfError(`levels must be strictly increasing, got [${levels.join(', ')}]`, { key: 'levels' });
  }
  if (levels.length === 1) return values[0]!;
  const lo = levels[0]!;
  const span = levels[levels.length - 1]! - lo;
  let a = 0;
  for (let i = 1; i < levels.length; i++) a += ((levels[i]! - levels[i - 1]!) / span) * (values[i]! + values[i - 1]!) / 2;
  return a;
}

/**
 * The evaluated dataset's primary metric (weighted F1, or MAE: lower is better) at each
 * perturbation level, and its area by the trapezoid rule over the levels normalised to [0, 1].
 */
export function robustnessCurve(
  run: LoadedRun, make: (level: number) => Perturbation, levels: number[], o: PerturbedOptions & { metric?: string } = {},
): { levels: number[]; values: number[]; auc: number; metric: string } {
  const meta = o.target?.meta ?? run.setup.meta;
  const metric = o.metric ?? primaryMetric(meta.task, meta.dataset).name;
  trapezoidAuc(levels, levels.map(() => 0)); // checks the levels before any evaluation
  const values = levels.map((x) => {
    const r = evaluatePerturbed(run, make(x), o);
    const v = r.metrics[metric];
    if (v === undefined) throw new EgmfError(`metric '${metric}' does not exist; choose one of ${Object.keys(r.metrics).join(', ')}`, { key: 'metric' });
    return v;
  });
  return { levels: [...levels], values, auc: trapezoidAuc(levels, values), metric };
}

// ---------------------------------------------------------------------------------------
// Confidence intervals

/** One metric of a dataset as a function (default: its primary metric), for bootstrapCI. */
export function metricFn(meta: DatasetMeta, name: string = primaryMetric(meta.task, meta.dataset).name): (pred: number[], truth: number[]) => number {
  const all = metricsForMeta(meta);
  return (pred, truth) => {
    const v = all(pred, truth)[name];
    if (v === undefined) throw new EgmfError(`metric '${name}' does not exist for ${meta.dataset}`, { key: 'metric' });
    return v;
  };
}

/** Linear-interpolated quantile of sorted values (type 7). */
function quantile(sorted: readonly number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const i = Math.floor(h);
  const j = Math.min(sorted.length - 1, i + 1);
  return sorted[i]! + (h - i) * (sorted[j]! - sorted[i]!);
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) throw new EgmfError(`confidence level must be in (0, 1), got ${level}`, { key: 'level' });
}

/**
 * Percentile bootstrap over samples (unparsed predictions left out, as in the metrics):
 * `resamples` (default 1000) resamples with replacement, seeded (default seed 0), and the
 * (1 ± level)/2 quantiles (default level 0.95). Resamples whose metric is not finite are skipped.
 */
export function bootstrapCI(
  preds: { truth: number; pred: number | null }[], metric: (pred: number[], truth: number[]) => number,
  o: { resamples?: number; seed?: number; level?: number } = {},
): { value: number; lo: number; hi: number } {
  const level = o.level ?? 0.95;
  checkLevel(level);
  const resamples = o.resamples ?? 1000;
  if (!Number.isInteger(resamples) || resamples < 1) throw new EgmfError(`resamples must be a positive integer, got ${resamples}`, { key: 'resamples' });
  const ok = preds.filter((p) => p.pred !== null);
  if (ok.length === 0) throw new EgmfError('no parsed predictions to bootstrap', { key: 'predictions' });
  const pred = ok.map((p) => p.pred!);
  const truth = ok.map((p) => p.truth);
  const value = metric(pred, truth);
  const rng = seedrandom(`egmf-bootstrap/${o.seed ?? 0}`);
  const n = ok.length;
  const stats: number[] = [];
  const bp = new Array<number>(n);
  const bt = new Array<number>(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) {
      const k = Math.floor(rng() * n);
      bp[i] = pred[k]!;
      bt[i] = truth[k]!;
    }
    const v = metric(bp, bt);
    if (Number.isFinite(v)) stats.push(v);
  }
  if (stats.length === 0) return { value, lo: NaN, hi: NaN };
  stats.sort((a, b) => a - b);
  return { value, lo: quantile(stats, (1 - level) / 2), hi: quantile(stats, (1 + level) / 2) };
}

/** ln Γ(x), Lanczos (g = 7, 9 terms): ~15 digits for x > 0. */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaCf(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b). */
function betaInc(a: number, b: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaCf(a, b, x)) / a : 1 - (front * betaCf(b, a, 1 - x)) / b;
}

/** Upper tail P(T > t) of Student's t with df degrees of freedom, t ≥ 0. */
function tUpperTail(t: number, df: number): number {
  return 0.5 * betaInc(df / 2, 0.5, df / (df + t * t));
}

/**
 * Quantile of Student's t (P(T ≤ t) = p) for any df > 0, by bisection on the exact CDF
 * (the regularised incomplete beta function): e.g. p 0.975 → 12.706 (df 1), 2.776 (df 4).
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new EgmfError(`probability must be in (0, 1), got ${p}`, { key: 'p' });
  if (!(df > 0)) throw new EgmfError(`degrees of freedom must be positive, got ${df}`, { key: 'df' });
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  const tail = 1 - p;
  let lo = 0;
  let hi = 1;
  while (tUpperTail(hi, df) > tail) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (tUpperTail(mid, df) > tail) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Student-t interval of the mean over seeds: mean ± t_{(1+level)/2, n−1} · s/√n (s with
 * n − 1 in the denominator; default level 0.95). One value: lo and hi are NaN.
 */
export function seedCI(values: number[], level = 0.95): { mean: number; lo: number; hi: number; n: number } {
  checkLevel(level);
  const n = values.length;
  if (n === 0) throw new EgmfError('no values to average', { key: 'values' });
  if (values.some((v) => !Number.isFinite(v))) throw new EgmfError(`values must be finite, got [${values.join(', ')}]`, { key: 'values' });
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, lo: NaN, hi: NaN, n };
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  const h = (studentTQuantile((1 + level) / 2, n - 1) * sd) / Math.sqrt(n);
  return { mean, lo: mean - h, hi: mean + h, n };
}

/**
 * Welch's interval of the difference of two means over seeds (b − a): independent runs of two
 * configurations (two languages) with unequal variances; Welch–Satterthwaite degrees of
 * freedom. Fewer than two values on a side, or no spread at all: lo and hi are NaN.
 */
export function welchCI(a: number[], b: number[], level = 0.95): { diff: number; lo: number; hi: number; df: number } {
  checkLevel(level);
  for (const [name, v] of [['a', a], ['b', b]] as const) {
    if (v.length === 0) throw new EgmfError(`no values in ${name}`, { key: name });
    if (v.some((x) => !Number.isFinite(x))) throw new EgmfError(`values must be finite, got [${v.join(', ')}]`, { key: name });
  }
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
  const variance = (v: number[], m: number) => v.reduce((x, y) => x + (y - m) ** 2, 0) / (v.length - 1);
  const ma = mean(a);
  const mb = mean(b);
  const diff = mb - ma;
  if (a.length < 2 || b.length < 2) return { diff, lo: NaN, hi: NaN, df: NaN };
  const qa = variance(a, ma) / a.length;
  const qb = variance(b, mb) / b.length;
  const se = Math.sqrt(qa + qb);
  if (se === 0) return { diff, lo: NaN, hi: NaN, df: NaN };
  const df = (qa + qb) ** 2 / (qa ** 2 / (a.length - 1) + qb ** 2 / (b.length - 1));
  const h = studentTQuantile((1 + level) / 2, df) * se;
  return { diff, lo: diff - h, hi: diff + h, df };
}

/**
 * Percentile bootstrap over test samples of a metric averaged over seeds: each resample draws
 * sample ids with replacement (the ids every seed evaluated, unparsed answers kept out of the
 * metric as usual) and averages the seeds' metric on it, so the interval covers the test set's
 * sampling of the seed-mean, where {@link seedCI} covers training noise.
 */
export function bootstrapMeanCI(
  perSeed: { id: string; truth: number; pred: number | null }[][], metric: (pred: number[], truth: number[]) => number,
  o: { resamples?: number; seed?: number; level?: number } = {},
): { value: number; lo: number; hi: number; n: number } {
  const level = o.level ?? 0.95;
  checkLevel(level);
  const resamples = o.resamples ?? 1000;
  if (!Number.isInteger(resamples) || resamples < 1) throw new EgmfError(`resamples must be a positive integer, got ${resamples}`, { key: 'resamples' });
  if (perSeed.length === 0) throw new EgmfError('no seeds to bootstrap', { key: 'predictions' });
  const byId = perSeed.map((ps) => new Map(ps.map((p) => [p.id, p])));
  const ids = [...byId[0]!.keys()].filter((id) => byId.every((m) => m.has(id)));
  if (ids.length === 0) throw new EgmfError('the seeds share no evaluated sample', { key: 'predictions' });
  const score = (pick: readonly string[]): number => {
    let sum = 0;
    for (const m of byId) {
      const pred: number[] = [];
      const truth: number[] = [];
      for (const id of pick) {
        const p = m.get(id)!;
        if (p.pred === null) continue;
        pred.push(p.pred);
        truth.push(p.truth);
      }
      sum += pred.length > 0 ? metric(pred, truth) : NaN;
    }
    return sum / byId.length;
  };
  const value = score(ids);
  const rng = seedrandom(`egmf-bootstrap-mean/${o.seed ?? 0}`);
  const stats: number[] = [];
  const pick = new Array<string>(ids.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < ids.length; i++) pick[i] = ids[Math.floor(rng() * ids.length)]!;
    const v = score(pick);
    if (Number.isFinite(v)) stats.push(v);
  }
  if (stats.length === 0) return { value, lo: NaN, hi: NaN, n: ids.length };
  stats.sort((x, y) => x - y);
  return { value, lo: quantile(stats, (1 - level) / 2), hi: quantile(stats, (1 + level) / 2), n: ids.length };
}

// ---------------------------------------------------------------------------------------
// Label spaces across datasets

/** Emotion (and sentiment) concepts and the label names, English or Chinese, that mean them. */
const CONCEPTS: Record<string, readonly string[]> = {
  neutral: ['neutral', 'calm', '平静', '中性', '中立'],
  joy: ['joy', 'happy', 'happiness', '高兴', '快乐', '开心', '喜悦'],
  sadness: ['sadness', 'sad', '悲伤', '伤心', '难过'],
  anger: ['anger', 'angry', '愤怒', '生气'],
  fear: ['fear', 'fearful', 'afraid', '恐惧', '害怕'],
  disgust: ['disgust', 'disgusted', '厌恶'],
  surprise: ['surprise', 'surprised', 'astonished', '惊奇', '惊讶'],
  negative: ['negative', '负面', '消极'],
  positive: ['positive', '正面', '积极'],
};
const CONCEPT_OF = new Map(Object.entries(CONCEPTS).flatMap(([c, names]) => names.map((n) => [n, c] as const)));

function conceptsOf(meta: DatasetMeta): (string | null)[] {
  if (meta.task !== 'classification' || !meta.labelNames) {
    throw new EgmfError(`dataset '${meta.dataset}' is not a classification dataset: it has no emotion labels to map`, { key: 'task' });
  }
  return meta.labelNames.map((name, i) => CONCEPT_OF.get((meta.labelNamesEn?.[i] ?? '').trim().toLowerCase()) ?? CONCEPT_OF.get(name.trim().toLowerCase()) ?? null);
}

function labelName(meta: DatasetMeta, i: number): string {
  const zh = meta.labelNames![i]!;
  const en = meta.labelNamesEn?.[i];
  return en !== undefined && en !== zh ? `${zh} (${en})` : zh;
}

/**
 * Source class index → target class index by emotion meaning (MELD joy ↔ CHERMA 高兴 happy,
 * neutral ↔ 平静, ...). Every source class needs a counterpart: otherwise an error lists
 * the source labels without one.
 */
export function emotionLabelMap(from: DatasetMeta, to: DatasetMeta): number[] {
  const src = conceptsOf(from);
  const tgt = conceptsOf(to);
  const index = new Map<string, number>();
  tgt.forEach((c, i) => {
    if (c === null) return;
    if (index.has(c)) {
      throw new EgmfError(`${to.dataset}'s labels ${labelName(to, index.get(c)!)} and ${labelName(to, i)} both mean '${c}': give labelMap explicitly`, { key: 'labelMap' });
    }
    index.set(c, i);
  });
  const unmatched = src.flatMap((c, i) => (c === null || !index.has(c) ? [labelName(from, i)] : []));
  if (unmatched.length > 0) {
    throw new EgmfError(
      `no full emotion mapping from ${from.dataset} to ${to.dataset}: ${unmatched.join(', ')} ha${unmatched.length === 1 ? 's' : 've'} no counterpart among ${to.dataset}'s labels (${to.labelNames!.map((_, i) => labelName(to, i)).join(', ')})`,
      { key: 'labelMap' },
    );
  }
  return src.map((c) => index.get(c!)!);
}

/** A sentiment score moved linearly from one range onto another (MOSEI [-3, 3] → SIMS [-1, 1]: ÷3). */
export function rescaleSentiment(value: number, from: [number, number], to: [number, number]): number {
  for (const [name, r] of [['from', from], ['to', to]] as const) {
    if (!Array.isArray(r) || r.length !== 2 || !Number.isFinite(r[0]) || !Number.isFinite(r[1]) || !(r[0] < r[1])) {
      throw new EgmfError(`range must be [min, max] with min < max, got ${JSON.stringify(r)}`, { key: name });
    }
  }
  return to[0] + ((value - from[0]) / (from[1] - from[0])) * (to[1] - to[0]);
}
