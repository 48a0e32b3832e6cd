/**
 * TF-IDF features with scikit-learn's `TfidfVectorizer` definitions, so the baseline a run
 * logs is the one a researcher would compute in Python (checked against scikit-learn in
 * test/train/baselines.test.ts): lower-cased; `word` terms are runs of two or more word
 * characters (`(?u)\b\w\w+\b`) joined into n-grams by a space; `char` terms are character
 * n-grams of the text with runs of whitespace collapsed to one space (the analyzer for
 * Chinese, which has no spaces between words); idf = ln((1 + n) / (1 + df)) + 1; rows are
 * L2-normalised.
 */
import { EgmfError } from '../../errors.ts';

export type Analyzer = 'word' | 'char';

export interface TfidfOptions {
  analyzer: Analyzer;
  /** Inclusive n-gram range, e.g. [1, 2]. */
  ngram: [number, number];
}

/** Compressed sparse rows: row i's columns are `indices[indptr[i] .. indptr[i+1])`. */
export interface Csr {
  rows: number;
  cols: number;
  indptr: Int32Array;
  indices: Int32Array;
  values: Float64Array;
}

// Python's `\w` under (?u): letters, digits (all numeric categories) and the underscore.
const WORD = /[\p{L}\p{N}_]{2,}/gu;
const MULTI_SPACE = /\s\s+/gu;

/** The terms of one document, in order, with repeats (sklearn's `build_analyzer()`). */
export function analyze(text: string, o: TfidfOptions): string[] {
  const [lo, hi] = o.ngram;
  const doc = text.toLowerCase();
  const out: string[] = [];
  if (o.analyzer === 'word') {
    const tokens = doc.match(WORD) ?? [];
    for (let n = lo; n <= hi; n++) {
      for (let i = 0; i + n <= tokens.length; i++) out.push(n === 1 ? tokens[i]! : tokens.slice(i, i + n).join(' '));
    }
  } else {
    const chars = Array.from(doc.replace(MULTI_SPACE, ' '));
    for (let n = lo; n <= hi; n++) {
      for (let i = 0; i + n <= chars.length; i++) out.push(chars.slice(i, i + n).join(''));
    }
  }
  return out;
}

export class TfidfVectorizer {
  readonly options: TfidfOptions;
  /** Term → column, columns in sorted term order as sklearn's. */
  vocabulary = new Map<string, number>();
  idf = new Float64Array(0);

  constructor(options: TfidfOptions) {
    const [lo, hi] = options.ngram;
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi < lo) {
      throw new EgmfError(`must be [lo, hi] with 1 <= lo <= hi, got [${lo}, ${hi}]`, { key: 'ngram' });
    }
    this.options = options;
  }

  fit(docs: readonly string[]): this {
    if (docs.length === 0) throw new EgmfError('TF-IDF needs at least one training text', { key: 'text' });
    const df = new Map<string, number>();
    for (const d of docs) for (const t of new Set(analyze(d, this.options))) df.set(t, (df.get(t) ?? 0) + 1);
    if (df.size === 0) throw new EgmfError('the training texts hold no terms (empty or one-character words only)', { key: 'text' });
    const terms = [...df.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.vocabulary = new Map(terms.map((t, i) => [t, i]));
    const n = docs.length;
    this.idf = Float64Array.from(terms, (t) => Math.log((1 + n) / (1 + df.get(t)!)) + 1);
    return this;
  }

  /** Documents → L2-normalised TF-IDF rows; terms unseen in training are dropped. */
  transform(docs: readonly string[]): Csr {
    if (this.idf.length === 0) throw new Error('TfidfVectorizer.transform before fit');
    const indptr = new Int32Array(docs.length + 1);
    const indices: number[] = [];
    const values: number[] = [];
    docs.forEach((d, i) => {
      const tf = new Map<number, number>();
      for (const t of analyze(d, this.options)) {
        const c = this.vocabulary.get(t);
        if (c !== undefined) tf.set(c, (tf.get(c) ?? 0) + 1);
      }
      const cols = [...tf.keys()].sort((a, b) => a - b);
      const w = cols.map((c) => tf.get(c)! * this.idf[c]!);
      const norm = Math.sqrt(w.reduce((s, x) => s + x * x, 0));
      for (let k = 0; k < cols.length; k++) {
        indices.push(cols[k]!);
        values.push(norm > 0 ? w[k]! / norm : 0);
      }
      indptr[i + 1] = indices.length;
    });
    return { rows: docs.length, cols: this.idf.length, indptr, indices: Int32Array.from(indices), values: Float64Array.from(values) };
  }
}
