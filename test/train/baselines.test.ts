/**
 * The run baselines against scikit-learn on real text: MELD (English, word 1-2-grams) and
 * CPED (Chinese, character 1-3-grams). Features must be identical (vocabulary and idf), and
 * the fitted models agree because both minimise the same strictly convex objective.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { columnIndex, readCsvTable } from '../../src/data/csv.ts';
import type { DatasetMeta } from '../../src/data/schema.ts';
import {
  analyze, baselineValues, beats, cachedBaselines, computeBaselines, fitLogistic, hstackCsr, fitRidge, predictProba, predictRidge, TfidfVectorizer,
} from '../../src/train/baselines/index.ts';
import type { Baselines } from '../../src/train/baselines/index.ts';
import { classificationMetrics } from '../../src/train/metrics.ts';
import { runPython, setEnv, SHARED_DATA, tempDir } from '../helpers.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function readTexts(file: string, textCol: string, labelCol: string, limit: number): { texts: string[]; labels: string[] } {
  const t = readCsvTable(file);
  const ti = columnIndex(t, textCol);
  const li = columnIndex(t, labelCol);
  const rows = t.rows.slice(0, limit);
  return { texts: rows.map((r) => r[ti]!), labels: rows.map((r) => r[li]!) };
}

const ORACLE = `
import json, sys
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
d = json.load(open(sys.argv[1]))
vec = TfidfVectorizer(analyzer=d['analyzer'], ngram_range=tuple(d['ngram']))
Xtr = vec.fit_transform(d['train'])
Xte = vec.transform(d['test'])
out = {'vocabulary': len(vec.vocabulary_), 'idf': {t: float(vec.idf_[vec.vocabulary_[t]]) for t in d['probe'] if t in vec.vocabulary_},
       'analyzed': vec.build_analyzer()(d['train'][0])}
if d['task'] == 'classification':
    m = LogisticRegression(C=d['C'], max_iter=10000, tol=1e-10).fit(Xtr, d['y'])
    p = np.zeros((Xte.shape[0], d['K']))
    p[:, m.classes_] = m.predict_proba(Xte)
    out['proba'] = p.tolist()
else:
    m = Ridge(alpha=d['alpha'], solver='sparse_cg', tol=1e-12, max_iter=100000).fit(Xtr, d['y'])
    out['pred'] = m.predict(Xte).tolist()
print(json.dumps(out))
`;

function oracle(payload: Record<string, unknown>): { vocabulary: number; idf: Record<string, number>; analyzed: string[]; proba?: number[][]; pred?: number[] } {
  const file = join(tmp.path, `oracle-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(payload));
  const r = runPython(ORACLE, [file]);
  if (r.status !== 0) throw new Error(`python oracle failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ReturnType<typeof oracle>;
}

/** Largest difference between scikit-learn's [rows][K] probabilities and ours (row-major). */
function maxProbaDiff(py: number[][], ours: Float64Array, K: number): number {
  let d = 0;
  py.forEach((row, i) => row.forEach((v, k) => { d = Math.max(d, Math.abs(v - ours[i * K + k]!)); }));
  return d;
}

describe('TF-IDF baselines match scikit-learn', () => {
  it('English MELD, word 1-2-grams + logistic regression: same features, same probabilities', () => {
    const train = readTexts(join(SHARED_DATA, 'meld', 'train_sent_emo.csv'), 'Utterance', 'Emotion', 2000);
    const test = readTexts(join(SHARED_DATA, 'meld', 'dev_sent_emo.csv'), 'Utterance', 'Emotion', 400);
    const names = [...new Set(train.labels)].sort();
    const y = train.labels.map((l) => names.indexOf(l));
    const vec = new TfidfVectorizer({ analyzer: 'word', ngram: [1, 2] }).fit(train.texts);
    const probe = ['the', 'oh my', 'you', 'okay', 'what', 'ross'];
    const py = oracle({ analyzer: 'word', ngram: [1, 2], train: train.texts, test: test.texts, y, K: names.length, C: 4, task: 'classification', probe });
    expect(analyze(train.texts[0]!, { analyzer: 'word', ngram: [1, 2] })).toEqual(py.analyzed);
    expect(vec.vocabulary.size).toBe(py.vocabulary);
    for (const [t, v] of Object.entries(py.idf)) expect(vec.idf[vec.vocabulary.get(t)!]).toBeCloseTo(v, 10);
    const m = fitLogistic(vec.transform(train.texts), y, names.length, 4);
    expect(maxProbaDiff(py.proba!, predictProba(m, vec.transform(test.texts)), names.length)).toBeLessThan(2e-4);
  });

  it('Chinese CPED, character 1-3-grams: same features and probabilities', () => {
    const train = readTexts(join(SHARED_DATA, 'cped', 'valid_split.csv'), 'Utterance', 'Emotion', 1200);
    const test = readTexts(join(SHARED_DATA, 'cped', 'test_split.csv'), 'Utterance', 'Emotion', 300);
    const names = [...new Set([...train.labels])].sort();
    const keep = test.labels.map((l) => names.includes(l));
    const testTexts = test.texts.filter((_, i) => keep[i]);
    const y = train.labels.map((l) => names.indexOf(l));
    const opts = { analyzer: 'char' as const, ngram: [1, 3] as [number, number] };
    const vec = new TfidfVectorizer(opts).fit(train.texts);
    const py = oracle({ ...opts, train: train.texts, test: testTexts, y, K: names.length, C: 1, task: 'classification', probe: ['的', '我', '你们', '不知道'] });
    expect(analyze(train.texts[0]!, opts)).toEqual(py.analyzed);
    expect(vec.vocabulary.size).toBe(py.vocabulary);
    expect(Object.keys(py.idf).length).toBeGreaterThan(2);
    for (const [t, v] of Object.entries(py.idf)) expect(vec.idf[vec.vocabulary.get(t)!]).toBeCloseTo(v, 10);
    const p = predictProba(fitLogistic(vec.transform(train.texts), y, names.length, 1), vec.transform(testTexts));
    expect(maxProbaDiff(py.proba!, p, names.length)).toBeLessThan(2e-4);
  });

  it('ridge regression on TF-IDF matches scikit-learn Ridge', () => {
    const train = readTexts(join(SHARED_DATA, 'meld', 'train_sent_emo.csv'), 'Utterance', 'Sentiment', 1500);
    const test = readTexts(join(SHARED_DATA, 'meld', 'dev_sent_emo.csv'), 'Utterance', 'Sentiment', 300);
    const score = (l: string) => ({ negative: -1, neutral: 0, positive: 1 })[l]!;
    const y = train.labels.map(score);
    const vec = new TfidfVectorizer({ analyzer: 'word', ngram: [1, 2] }).fit(train.texts);
    const py = oracle({ analyzer: 'word', ngram: [1, 2], train: train.texts, test: test.texts, y, alpha: 1, task: 'regression', probe: [] });
    const pred = predictRidge(fitRidge(vec.transform(train.texts), y, 1), vec.transform(test.texts));
    const maxDiff = py.pred!.reduce((m, v, i) => Math.max(m, Math.abs(v - pred[i]!)), 0);
    expect(maxDiff).toBeLessThan(1e-4);
  });
});

const MELD_META: DatasetMeta = {
  schemaVersion: 1, dataset: 'meld', language: 'en', task: 'classification', audioDim: 0, visionDim: 0, textOnly: true,
  hasUnimodalLabels: false, source: 'test', license: 'GPL-3.0',
  labelNames: ['anger', 'disgust', 'fear', 'joy', 'neutral', 'sadness', 'surprise'],
  labelNamesEn: ['anger', 'disgust', 'fear', 'joy', 'neutral', 'sadness', 'surprise'],
};

describe('computeBaselines', () => {
  const load = (file: string, limit: number) => {
    const t = readTexts(join(SHARED_DATA, 'meld', file), 'Utterance', 'Emotion', limit);
    return { texts: t.texts, labels: t.labels.map((l) => MELD_META.labelNames!.indexOf(l)) };
  };

  it('real MELD text: majority is the training prior, TF-IDF beats it, and C is chosen on valid', () => {
    const train = load('train_sent_emo.csv', 3000);
    const valid = load('dev_sent_emo.csv', 1109);
    const test = load('test_sent_emo.csv', 800);
    const b = computeBaselines(MELD_META, train, valid, test, { metric: 'weighted_f1', goal: 'max' });
    const neutral = MELD_META.labelNames!.indexOf('neutral');
    expect(b.majority.prediction).toBe(neutral);
    // Predicting neutral everywhere, scored by the same metric code.
    expect(b.majority.valid.weighted_f1).toBeCloseTo(classificationMetrics(new Array(valid.labels.length).fill(neutral), valid.labels, 7).weighted_f1!, 12);
    expect(b.tfidf!.model).toBe('logistic');
    expect([0.25, 1, 4, 16]).toContain(b.tfidf!.C);
    expect(b.tfidf!.valid.weighted_f1!).toBeGreaterThan(b.majority.valid.weighted_f1! + 0.1);
    expect(b.tfidf!.test!.weighted_f1!).toBeGreaterThan(b.majority.test!.weighted_f1! + 0.1);
    expect(baselineValues(b, 'weighted_f1')).toEqual({ majority: b.majority.valid.weighted_f1, tfidf: b.tfidf!.valid.weighted_f1 });
  });

  it('dialogue context: TF-IDF of the utterance beside TF-IDF of its context equals scikit-learn on the hstack of two vectorizers', () => {
    // Real MELD dialogues: each utterance's context is the utterance before it in its dialogue.
    const read = (file: string, limit: number) => {
      const t = readCsvTable(join(SHARED_DATA, 'meld', file));
      const [ti, li, di] = ['Utterance', 'Emotion', 'Dialogue_ID'].map((c) => columnIndex(t, c));
      const rows = t.rows.slice(0, limit);
      return {
        texts: rows.map((r) => r[ti!]!), labels: rows.map((r) => MELD_META.labelNames!.indexOf(r[li!]!)),
        contexts: rows.map((r, i) => (i > 0 && rows[i - 1]![di!] === r[di!] ? [rows[i - 1]![ti!]!] : [])),
      };
    };
    const train = read('train_sent_emo.csv', 1500);
    const valid = read('dev_sent_emo.csv', 400);
    const b = computeBaselines(MELD_META, train, valid, null, { metric: 'weighted_f1', goal: 'max', cGrid: [4] });
    expect(b.tfidf_context!.C).toBe(4);
    const py = runPython(`
import json, sys, scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
d = json.load(open(sys.argv[1]))
u, c = TfidfVectorizer(ngram_range=(1, 2)), TfidfVectorizer(ngram_range=(1, 2))
j = lambda s: [' '.join(x) for x in s['contexts']]
X = sp.hstack([u.fit_transform(d['train']['texts']), c.fit_transform(j(d['train']))]).tocsr()
V = sp.hstack([u.transform(d['valid']['texts']), c.transform(j(d['valid']))]).tocsr()
m = LogisticRegression(C=4, max_iter=10000, tol=1e-10).fit(X, d['train']['labels'])
print(json.dumps({'wf1': f1_score(d['valid']['labels'], m.predict(V), average='weighted'), 'cols': X.shape[1], 'ctx': len(c.vocabulary_)}))
`, [(() => { const f = join(tmp.path, 'ctx.json'); writeFileSync(f, JSON.stringify({ train, valid })); return f; })()]);
    expect(py.status, py.stderr).toBe(0);
    const want = JSON.parse(py.stdout) as { wf1: number; cols: number; ctx: number };
    expect(b.tfidf_context!.context_vocabulary).toBe(want.ctx);
    expect(b.tfidf_context!.features.vocabulary + b.tfidf_context!.context_vocabulary).toBe(want.cols);
    expect(b.tfidf_context!.valid.weighted_f1!).toBeCloseTo(want.wf1, 2);
    expect(baselineValues(b, 'weighted_f1').tfidf_context).toBe(b.tfidf_context!.valid.weighted_f1);
    // Without contexts there is no such baseline; contexts of the wrong length are named.
    expect(computeBaselines(MELD_META, { texts: train.texts, labels: train.labels }, valid, null, { metric: 'weighted_f1', goal: 'max', cGrid: [4] }).tfidf_context).toBeUndefined();
    expect(() => computeBaselines(MELD_META, { ...train, contexts: train.contexts.slice(1) }, valid, null, { metric: 'weighted_f1', goal: 'max' })).toThrow(/key 'data\.context'.*train split has 1500 texts but 1499 contexts/);
  });

  it('hstackCsr puts the second matrix\'s columns after the first\'s, row by row', () => {
    const a = { rows: 2, cols: 3, indptr: Int32Array.from([0, 1, 3]), indices: Int32Array.from([2, 0, 1]), values: Float64Array.from([1, 2, 3]) };
    const c = { rows: 2, cols: 2, indptr: Int32Array.from([0, 0, 1]), indices: Int32Array.from([1]), values: Float64Array.from([4]) };
    const h = hstackCsr(a, c);
    expect([h.rows, h.cols, Array.from(h.indptr), Array.from(h.indices), Array.from(h.values)]).toEqual([2, 5, [0, 1, 4], [2, 0, 1, 4], [1, 2, 3, 4]]);
    expect(() => hstackCsr(a, { ...c, rows: 3 })).toThrow(/hstack of 2 and 3 rows/);
  });

  it('regression: the majority baseline predicts the training mean', () => {
    const meta: DatasetMeta = { ...MELD_META, dataset: 'sims-v2', language: 'zh', task: 'regression', labelRange: [-1, 1] };
    delete meta.labelNames;
    const train = { texts: ['很好', '太差了', '一般'], labels: [0.8, -0.6, 0.1] };
    const valid = { texts: ['很好啊', '差'], labels: [0.6, -0.4] };
    const b = computeBaselines(meta, train, valid, null, { metric: 'MAE', goal: 'min' });
    expect(b.majority.prediction).toBeCloseTo(0.1, 12);
    expect(b.majority.valid.MAE).toBeCloseTo((0.5 + 0.5) / 2, 12);
    expect(b.tfidf!.model).toBe('ridge');
    expect(b.majority.test).toBeUndefined();
  });

  it('texts without terms leave only the majority baseline; bad input is named', () => {
    const empty = { texts: ['', ' ', 'a'], labels: [0, 1, 1] };
    const b = computeBaselines(MELD_META, empty, empty, null, { metric: 'weighted_f1', goal: 'max' });
    expect(b.majority.prediction).toBe(1);
    expect(b.tfidf).toBeUndefined();
    expect(() => computeBaselines(MELD_META, { texts: [], labels: [] }, empty, null, { metric: 'weighted_f1', goal: 'max' })).toThrow(/train split is empty/);
    expect(() => computeBaselines(MELD_META, { texts: ['x y'], labels: [0, 1] }, empty, null, { metric: 'weighted_f1', goal: 'max' })).toThrow(/train split has 1 texts but 2 labels/);
    expect(() => computeBaselines(MELD_META, load('dev_sent_emo.csv', 50), load('dev_sent_emo.csv', 50), null, { metric: 'nope', goal: 'max' })).toThrow(/metric 'nope' does not exist/);
    expect(() => new TfidfVectorizer({ analyzer: 'word', ngram: [2, 1] })).toThrow(/ngram/);
  });

  it('caches by what it reads: a second call reads the file, other data is a new entry, NaN survives', () => {
    const restore = setEnv({ EGMF_CACHE: join(tmp.path, 'cache') });
    try {
      const train = load('train_sent_emo.csv', 400);
      const valid = load('dev_sent_emo.csv', 150);
      const o = { metric: 'weighted_f1', goal: 'max' as const };
      const a = cachedBaselines(MELD_META, train, valid, null, o);
      expect(a).toEqual(computeBaselines(MELD_META, train, valid, null, o));
      const dir = join(tmp.path, 'cache', 'baselines');
      const [file] = readdirSync(dir);
      const stored = JSON.parse(readFileSync(join(dir, file!), 'utf8')) as Baselines;
      stored.majority.prediction = 99; // what the cache says is what comes back
      writeFileSync(join(dir, file!), JSON.stringify(stored));
      expect(cachedBaselines(MELD_META, train, valid, null, o).majority.prediction).toBe(99);
      cachedBaselines(MELD_META, { ...train, labels: train.labels.map((l) => (l + 1) % 7) }, valid, null, o);
      expect(readdirSync(dir)).toHaveLength(2);
      // A constant prediction has no correlation: Corr is NaN, and stays NaN through the file.
      const sims: DatasetMeta = { ...MELD_META, dataset: 'sims-v2', language: 'zh', task: 'regression', labelRange: [-1, 1] };
      const split = { texts: ['很好', '太差了', '一般', '还行'], labels: [0.8, -0.6, 0.1, 0.3] };
      const first = cachedBaselines(sims, split, split, null, { metric: 'MAE', goal: 'min' });
      expect(first.majority.valid.Corr).toBeNaN();
      expect(cachedBaselines(sims, split, split, null, { metric: 'MAE', goal: 'min' }).majority.valid.Corr).toBeNaN();
      expect(readdirSync(dir)).toHaveLength(3);
    } finally {
      restore();
    }
  });

  it('a warm start reaches the same optimum as a cold one', () => {
    const t = load('train_sent_emo.csv', 600);
    const X = new TfidfVectorizer({ analyzer: 'word', ngram: [1, 2] }).fit(t.texts).transform(t.texts);
    const cold = fitLogistic(X, t.labels, 7, 4);
    const warm = fitLogistic(X, t.labels, 7, 4, { init: fitLogistic(X, t.labels, 7, 1) });
    const pc = predictProba(cold, X);
    const pw = predictProba(warm, X);
    expect(pc.reduce((m, v, i) => Math.max(m, Math.abs(v - pw[i]!)), 0)).toBeLessThan(1e-4);
  });

  it('beats() respects the goal and never counts a tie or NaN as learning', () => {
    expect(beats(0.5, 0.4, 'max')).toBe(true);
    expect(beats(0.4, 0.4, 'max')).toBe(false);
    expect(beats(0.3, 0.4, 'min')).toBe(true);
    expect(beats(Number.NaN, 0.4, 'max')).toBe(false);
    expect(beats(null, 0.4, 'min')).toBe(false);
  });
});
