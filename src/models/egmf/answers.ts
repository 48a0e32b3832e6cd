/**
 * The generative head's answer grammar: what the LLM is trained to write and what
 * decoding may produce, for classification (class index or label word) and regression
 * (a one-decimal signed score). Answers are token sequences ending in EOS, kept in a
 * trie so greedy decoding can be constrained to the grammar, and the output layer only
 * has to score the grammar's tokens.
 */
import { EgmfError } from '../../errors.ts';

/** The part of a tokenizer the grammar needs. */
export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** Token that ends an answer. */
  eosId: number;
}

export type AnswerTask =
  | { kind: 'classification'; labelNames: readonly string[]; target: 'index' | 'word' }
  | { kind: 'regression'; range: readonly [number, number] };

/** What a decoded string means: a class index, a score, or nothing parseable. */
export type ParsedAnswer = { ok: true; value: number } | { ok: false; text: string };

interface TrieNode {
  children: Map<number, TrieNode>;
  /** Index into `answers` when this node ends an answer (after EOS). */
  answer?: number;
}

export class AnswerGrammar {
  /** The answer strings, e.g. ["0", "1", ...] or ["-3.0", ..., "+3.0"]. */
  readonly answers: string[];
  /** Values the answers stand for (class index or score). */
  readonly values: number[];
  /** Token ids of each answer, EOS included. */
  readonly tokens: number[][];
  /** Every token id that occurs in some answer (EOS included), sorted: the restricted vocabulary. */
  readonly vocab: number[];
  /** Position of each vocabulary id in `vocab`. */
  readonly vocabIndex: Map<number, number>;
  readonly maxTokens: number;
  private readonly root: TrieNode = { children: new Map() };
  private readonly byText = new Map<string, number>();

  constructor(readonly task: AnswerTask, readonly tokenizer: TextTokenizer) {
    const { answers, values } = enumerateAnswers(task);
    this.answers = answers;
    this.values = values;
    this.tokens = answers.map((a) => [...tokenizer.encode(a), tokenizer.eosId]);
    const vocab = new Set<number>();
    this.tokens.forEach((ids, i) => {
      let node = this.root;
      for (const id of ids) {
        vocab.add(id);
        let next = node.children.get(id);
        if (!next) {
          next = { children: new Map() };
          node.children.set(id, next);
        }
        node = next;
      }
      if (node.answer !== undefined) {
        throw new EgmfError(`answers '${answers[node.answer]}' and '${answers[i]}' tokenize identically`, { key: 'answers' });
      }
      node.answer = i;
      this.byText.set(answers[i]!, i);
    });
    this.vocab = [...vocab].sort((a, b) => a - b);
    this.vocabIndex = new Map(this.vocab.map((id, i) => [id, i]));
    this.maxTokens = Math.max(...this.tokens.map((t) => t.length));
  }

  /** The answer text for a label (training target). */
  targetText(label: number): string {
    if (this.task.kind === 'classification') {
      if (!Number.isInteger(label) || label < 0 || label >= this.task.labelNames.length) {
        throw new EgmfError(`label ${label} is outside the label set`, { key: 'label' });
      }
      return this.answers[label]!;
    }
    return formatScore(clamp(label, this.task.range));
  }

  /** Target token ids for a label, EOS included. */
  targetTokens(label: number): number[] {
    const text = this.targetText(label);
    const i = this.byText.get(text);
    return i === undefined ? [...this.tokenizer.encode(text), this.tokenizer.eosId] : this.tokens[i]!;
  }

  /**
   * Token ids allowed after `prefix` (a list of already generated ids), for constrained
   * decoding. Empty when the prefix has left the grammar or completed an answer.
   */
  allowedNext(prefix: readonly number[]): number[] {
    let node: TrieNode | undefined = this.root;
    for (const id of prefix) {
      node = node.children.get(id);
      if (!node) return [];
    }
    return [...node.children.keys()];
  }

  /** Parses generated ids (up to and excluding EOS) into a value, or reports failure. */
  parse(ids: readonly number[]): ParsedAnswer {
    const cut = ids.indexOf(this.tokenizer.eosId);
    const text = this.tokenizer.decode(cut >= 0 ? ids.slice(0, cut) : ids).trim();
    return this.parseText(text);
  }

  parseText(text: string): ParsedAnswer {
    const exact = this.byText.get(text);
    if (exact !== undefined) return { ok: true, value: this.values[exact]! };
    if (this.task.kind === 'regression' && /^[+-]?\d+(\.\d+)?$/.test(text)) {
      const v = Number(text);
      const [lo, hi] = this.task.range;
      if (v >= lo && v <= hi) return { ok: true, value: v };
    }
    return { ok: false, text };
  }
}

/** One-decimal signed score text, e.g. `+0.4`, `-1.2`, `+0.0`. */
export function formatScore(v: number): string {
  const r = Math.round(v * 10) / 10;
  const s = Math.abs(r).toFixed(1);
  return r < 0 && s !== '0.0' ? `-${s}` : `+${s}`;
}

function clamp(v: number, [lo, hi]: readonly [number, number]): number {
  return Math.min(hi, Math.max(lo, v));
}

/** The answer strings of a task and the values they stand for. */
export function enumerateAnswers(task: AnswerTask): { answers: string[]; values: number[] } {
  if (task.kind === 'classification') {
    const n = task.labelNames.length;
    if (n < 2) throw new EgmfError('classification needs at least two labels', { key: 'labelNames' });
    const answers = task.target === 'index' ? Array.from({ length: n }, (_, i) => String(i)) : [...task.labelNames];
    if (new Set(answers).size !== n) throw new EgmfError('label names must be distinct', { key: 'labelNames' });
    return { answers, values: Array.from({ length: n }, (_, i) => i) };
  }
  const [lo, hi] = task.range;
  if (!(lo < hi)) throw new EgmfError(`bad regression range [${lo}, ${hi}]`, { key: 'labelRange' });
  const answers: string[] = [];
  const values: number[] = [];
  for (let k = Math.ceil(lo * 10 - 1e-9); k <= Math.floor(hi * 10 + 1e-9); k++) {
    answers.push(formatScore(k / 10));
    values.push(k / 10);
  }
  return { answers, values };
}

/**
 * Adapts an LLM tokenizer (src/models/llm's `loadTokenizer`) to the grammar's needs;
 * `eosId` overrides the tokenizer's EOS (Qwen chat models end answers with <|im_end|>).
 */
export function grammarTokenizer(
  tok: { encode(text: string): number[]; decode(ids: ArrayLike<number>): string; eosTokenId: number | undefined },
  eosId?: number,
  file?: string,
): TextTokenizer {
  const eos = eosId ?? tok.eosTokenId;
  if (eos === undefined) throw new EgmfError('the tokenizer has no EOS token; name one (eos_token in tokenizer_config.json)', { file, key: 'eos_token' });
  return { encode: (s) => tok.encode(s), decode: (ids) => tok.decode(ids), eosId: eos };
}
