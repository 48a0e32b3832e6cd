/**
 * The baselines every run is judged against, computed from the run's own data:
 *  - majority: the training split's most frequent class (classification; the first on ties,
 *    as scikit-learn's DummyClassifier) or its mean label (regression);
 *  - tfidf: TF-IDF + logistic regression (classification) or ridge regression (regression)
 *    on the text alone; word 1-2-grams for English, character 1-3-grams for Chinese. Its one
 *    hyper-parameter (C, or alpha) is chosen on the validation split by the run's metric,
 *    just as the run chooses its best epoch there.
 *  - tfidf_context: with dialogue context (`data.context`, the splits' `contexts`), the same
 *    TF-IDF model on the utterance's features beside those of its preceding utterances (a
 *    second vectorizer over the context joined by spaces): the text baseline given the same
 *    information the model reads.
 * A run that does not beat the majority baseline on validation has learned nothing beyond
 * the class prior, and says so.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheDir } from '../../cache.ts';
import { EgmfError } from '../../errors.ts';
import type { DatasetMeta } from '../../data/schema.ts';
import { metricsForMeta } from '../metrics.ts';
import type { MetricRecord } from '../metrics.ts';
import { fitLogistic, fitRidge, predictClass, predictRidge } from './linear.ts';
import type { LogisticModel, RidgeModel } from './linear.ts';
import { TfidfVectorizer } from './tfidf.ts';
import type { Csr, TfidfOptions } from './tfidf.ts';

export { analyze, TfidfVectorizer } from './tfidf.ts';
export type { Analyzer, Csr, TfidfOptions } from './tfidf.ts';
export { fitLogistic, fitRidge, lbfgs, predictClass, predictProba, predictRidge } from './linear.ts';

/** One split's texts and labels (class index or score). */
export interface SplitTexts {
  texts: readonly string[];
  labels: ArrayLike<number>;
  /** Each sample's preceding utterances in its dialogue (dialogue context), when the run reads them. */
  contexts?: readonly (readonly string[])[];
}

export interface BaselineScores {
  valid: MetricRecord;
  test?: MetricRecord;
}

export type TfidfBaseline = BaselineScores & { features: TfidfOptions & { vocabulary: number }; model: 'logistic' | 'ridge'; C?: number; alpha?: number };

export interface Baselines {
  majority: BaselineScores & { prediction: number };
  /** Absent when the texts hold no terms (e.g. a dataset without text). */
  tfidf?: TfidfBaseline;
  /** TF-IDF over the utterance and its dialogue context; only when the splits carry contexts. */
  tfidf_context?: TfidfBaseline & { context_vocabulary: number };
}

export interface BaselineOptions {
  /** The metric that picks the TF-IDF model's hyper-parameter on validation. */
  metric: string;
  goal: 'max' | 'min';
  cGrid?: readonly number[];
  alphaGrid?: readonly number[];
}

const C_GRID = [0.25, 1, 4, 16] as const;
const ALPHA_GRID = [0.1, 1, 10] as const;

/** How reports and logs name each baseline. */
export const BASELINE_LABELS: Readonly<Record<string, string>> = { majority: 'majority class', tfidf: 'TF-IDF', tfidf_context: 'TF-IDF with context' };

/** `majority class 0.28, TF-IDF 0.45`, values formatted by `fmt`, in the given key order. */
export function formatBaselines(values: Readonly<Record<string, number>>, fmt: (v: number) => string, keys: readonly string[] = Object.keys(values)): string {
  const parts = keys.filter((k) => values[k] !== undefined).map((k) => `${BASELINE_LABELS[k] ?? k} ${fmt(values[k]!)}`);
  return parts.length > 0 ? parts.join(', ') : 'not recorded';
}

/** The TF-IDF features a language gets. */
export function tfidfOptionsFor(language: string): TfidfOptions {
  return language === 'zh' ? { analyzer: 'char', ngram: [1, 3] } : { analyzer: 'word', ngram: [1, 2] };
}

function checkSplit(s: SplitTexts, name: string): void {
  if (s.texts.length === 0) throw new EgmfError(`the ${name} split is empty: baselines need samples`, { key: `data.${name}_split` });
  if (s.texts.length !== s.labels.length) throw new EgmfError(`the ${name} split has ${s.texts.length} texts but ${s.labels.length} labels`, { key: `data.${name}_split` });
  if (s.contexts !== undefined && s.contexts.length !== s.texts.length) throw new EgmfError(`the ${name} split has ${s.texts.length} texts but ${s.contexts.length} contexts`, { key: 'data.context' });
}

/** Columns of `b` after those of `a` (same rows): scikit-learn's `hstack` of two CSR matrices. */
export function hstackCsr(a: Csr, b: Csr): Csr {
  if (a.rows !== b.rows) throw new Error(`hstack of ${a.rows} and ${b.rows} rows`);
  const indptr = new Int32Array(a.rows + 1);
  const nnz = a.indices.length + b.indices.length;
  const indices = new Int32Array(nnz);
  const values = new Float64Array(nnz);
  let k = 0;
  for (let i = 0; i < a.rows; i++) {
    for (let j = a.indptr[i]!; j < a.indptr[i + 1]!; j++, k++) { indices[k] = a.indices[j]!; values[k] = a.values[j]!; }
    for (let j = b.indptr[i]!; j < b.indptr[i + 1]!; j++, k++) { indices[k] = a.cols + b.indices[j]!; values[k] = b.values[j]!; }
    indptr[i + 1] = k;
  }
  return { rows: a.rows, cols: a.cols + b.cols, indptr, indices, values };
}

export function computeBaselines(meta: DatasetMeta, train: SplitTexts, valid: SplitTexts, test: SplitTexts | null, o: BaselineOptions): Baselines {
  checkSplit(train, 'train');
  checkSplit(valid, 'valid');
  if (test) checkSplit(test, 'test');
  const metrics = metricsForMeta(meta);
  const score = (pred: ArrayLike<number>, s: SplitTexts): MetricRecord => metrics(pred, s.labels);
  const classification = meta.task === 'classification';
  const K = meta.labelNames?.length ?? 0;

  let prediction: number;
  if (classification) {
    const counts = new Array<number>(K).fill(0);
    for (let i = 0; i < train.labels.length; i++) counts[train.labels[i]!]! += 1;
    prediction = counts.indexOf(Math.max(...counts));
  } else {
    let sum = 0;
    for (let i = 0; i < train.labels.length; i++) sum += train.labels[i]!;
    prediction = sum / train.labels.length;
  }
  const constant = (s: SplitTexts) => new Float64Array(s.labels.length).fill(prediction);
  const out: Baselines = {
    majority: { prediction, valid: score(constant(valid), valid), ...(test ? { test: score(constant(test), test) } : {}) },
  };

  const better = (a: number, b: number) => (o.goal === 'max' ? a > b : a < b);
  const labels = Int32Array.from(train.labels);
  // The hyper-parameter (C, or alpha) chosen on validation by the run's metric. Each fit
  // starts from the previous one (C ascending, alpha descending: ever weaker
  // regularisation), and stops at the tolerance that scikit-learn's lbfgs uses by default.
  const fitBest = (Xtr: Csr, Xva: Csr, Xte: Csr | null): Pick<TfidfBaseline, 'C' | 'alpha' | 'valid' | 'test'> => {
    const fit = { maxIter: 500, gradTol: 1e-4 };
    let best: { value: number; param: number; predict: (X: Csr) => ArrayLike<number> } | null = null;
    let logistic: LogisticModel | undefined;
    let ridge: RidgeModel | undefined;
    const grid = classification ? [...(o.cGrid ?? C_GRID)].sort((a, b) => a - b) : [...(o.alphaGrid ?? ALPHA_GRID)].sort((a, b) => b - a);
    for (const param of grid) {
      let predict: (X: Csr) => ArrayLike<number>;
      if (classification) {
        const m = (logistic = fitLogistic(Xtr, labels, K, param, { ...fit, ...(logistic ? { init: logistic } : {}) }));
        predict = (X) => predictClass(m, X);
      } else {
        const m = (ridge = fitRidge(Xtr, train.labels, param, { ...fit, ...(ridge ? { init: ridge } : {}) }));
        predict = (X) => predictRidge(m, X);
      }
      const value = score(predict(Xva), valid)[o.metric];
      if (value === undefined) throw new EgmfError(`metric '${o.metric}' does not exist for this dataset`, { key: 'train.metric' });
      if (best === null || better(value, best.value)) best = { value, param, predict };
    }
    return {
      ...(classification ? { C: best!.param } : { alpha: best!.param }),
      valid: score(best!.predict(Xva), valid),
      ...(Xte && test ? { test: score(best!.predict(Xte), test) } : {}),
    };
  };

  const features = tfidfOptionsFor(meta.language);
  const vec = new TfidfVectorizer(features);
  try {
    vec.fit(train.texts);
  } catch (e) {
    if (e instanceof EgmfError) return out; // no usable text: the majority baseline only
    throw e;
  }
  const X = { train: vec.transform(train.texts), valid: vec.transform(valid.texts), test: test ? vec.transform(test.texts) : null };
  const base = { features: { ...features, vocabulary: vec.vocabulary.size }, model: classification ? 'logistic' as const : 'ridge' as const };
  out.tfidf = { ...base, ...fitBest(X.train, X.valid, X.test) };
  if (train.contexts !== undefined && valid.contexts !== undefined && (test === null || test.contexts !== undefined)) {
    // The context's own vocabulary and weights, beside the utterance's (not one bag of both).
    const joined = (s: SplitTexts) => s.contexts!.map((c) => c.join(' '));
    const cvec = new TfidfVectorizer(features);
    try {
      cvec.fit(joined(train));
    } catch (e) {
      if (e instanceof EgmfError) return out; // no context has any term: nothing to add
      throw e;
    }
    const C = { train: cvec.transform(joined(train)), valid: cvec.transform(joined(valid)), test: test ? cvec.transform(joined(test)) : null };
    out.tfidf_context = {
      ...base, context_vocabulary: cvec.vocabulary.size,
      ...fitBest(hstackCsr(X.train, C.train), hstackCsr(X.valid, C.valid), X.test && C.test ? hstackCsr(X.test, C.test) : null),
    };
  }
  return out;
}

/** `{majority: x, tfidf: y}`: each baseline's validation value of `metric` (summary.json, sweep summaries). */
export function baselineValues(b: Baselines, metric: string): Record<string, number> {
  const out: Record<string, number> = {};
  const m = b.majority.valid[metric];
  if (m !== undefined) out.majority = m;
  const t = b.tfidf?.valid[metric];
  if (t !== undefined) out.tfidf = t;
  const c = b.tfidf_context?.valid[metric];
  if (c !== undefined) out.tfidf_context = c;
  return out;
}

/** Whether `value` beats `baseline` under the goal (NaN beats nothing). */
export function beats(value: number | null, baseline: number, goal: 'max' | 'min'): boolean {
  if (value === null || !Number.isFinite(value)) return false;
  return goal === 'max' ? value > baseline + 1e-9 : value < baseline - 1e-9;
}

/** Flat MLflow metrics: `baseline/<name>/<split>/<metric>`. */
export function baselineMetrics(b: Baselines): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, s] of Object.entries(b) as [string, BaselineScores | undefined][]) {
    if (s === undefined) continue;
    for (const [split, rec] of [['valid', s.valid], ['test', s.test]] as const) {
      if (rec === undefined) continue;
      for (const [k, v] of Object.entries(rec)) if (Number.isFinite(v)) out[`baseline/${name}/${split}/${k}`] = v;
    }
  }
  return out;
}

/** One line for the run's log: each baseline's validation value of `metric`. */
export function describeBaselines(b: Baselines, metric: string): string {
  const v = baselineValues(b, metric);
  const hp = (t: TfidfBaseline) => (t.C !== undefined ? `C ${t.C}` : `alpha ${t.alpha}`);
  const parts = [`majority class ${v.majority?.toFixed(4) ?? 'n/a'}`];
  if (b.tfidf) parts.push(`TF-IDF (${b.tfidf.features.analyzer} ${b.tfidf.features.ngram.join('-')}-grams) + ${b.tfidf.model} (${hp(b.tfidf)}) ${v.tfidf?.toFixed(4) ?? 'n/a'}`);
  if (b.tfidf_context) parts.push(`the same with the dialogue context (${hp(b.tfidf_context)}) ${v.tfidf_context?.toFixed(4) ?? 'n/a'}`);
  return `baselines, valid ${metric}: ${parts.join(', ')}`;
}

/** Bumped whenever a baseline's definition changes, so cached results are not reused. */
export const BASELINE_VERSION = 1;

/**
 * `computeBaselines`, cached under `<cache>/baselines/` by a digest of everything it reads
 * (texts, labels, metadata, metric and grids): seeds that train on the same data and sweep
 * trials of the same dataset fit the TF-IDF models once. NaN survives the JSON round trip.
 */
export function cachedBaselines(meta: DatasetMeta, train: SplitTexts, valid: SplitTexts, test: SplitTexts | null, o: BaselineOptions): Baselines {
  const h = createHash('sha256');
  const add = (v: unknown) => h.update(JSON.stringify(v)).update('\0');
  add({ v: BASELINE_VERSION, meta, o });
  for (const s of [train, valid, test]) {
    if (s === null) add(null);
    else { add(s.texts); add(Array.from(s.labels)); if (s.contexts !== undefined) add(s.contexts); }
  }
  const file = join(cacheDir(), 'baselines', `${h.digest('hex').slice(0, 24)}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'), (_k, v) => (v === 'NaN' ? Number.NaN : v)) as Baselines;
  const b = computeBaselines(meta, train, valid, test, o);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(b, (_k, v) => (typeof v === 'number' && Number.isNaN(v) ? 'NaN' : v)));
  renameSync(tmp, file); // atomic: a concurrent reader sees the whole file or none
  return b;
}
