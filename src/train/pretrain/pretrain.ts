/**
 * Causal-LM pretraining of the built-in tiny Qwen3 on the datasets' own text, on CPU.
 *
 * Qwen3's vocabulary has 151,669 tokens; a full softmax over it at every position would
 * dominate the step, and so would dense gradients and AdamW updates of the tied [V, D]
 * table. So every step works on a small *step vocabulary*:
 *  - output layer: a **sampled softmax**. Candidates are the unique target ids of the
 *    batch plus N ids drawn uniformly (seeded) from the rest of the vocabulary; logits
 *    come from `Decoder.logitsFor` over the candidates only. No log-Q correction is
 *    applied, so the loss is a biased estimate of the full-softmax loss: it is lower,
 *    and tokens that never appear in a batch are only pushed down when drawn as
 *    negatives, so their full-vocabulary probability stays higher than a full softmax
 *    would leave it. EGMF restricts decoding to its answer grammar, where this matters
 *    little.
 *  - embedding table: the rows a step touches (inputs and candidates) are copied into a
 *    small trainable [R, D] table, and a lazy ("sparse") AdamW updates only those rows,
 *    with no weight decay. Rows never touched keep their initial values exactly.
 * The transformer layers train with the dense AdamW of src/train/optimizer.ts.
 * Everything random is seeded; on one backend the same options give identical weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { readSplitTable } from '../../data/arrow.ts';
import { PRESET_NAMES, PRESETS, resolveKnobs, splitSamples } from '../../data/synthetic/index.ts';
import type { PresetName } from '../../data/synthetic/index.ts';
import { enumerateAnswers, PROMPTS, renderTaskPrompt } from '../../models/egmf/index.ts';
import type { AnswerTask } from '../../models/egmf/index.ts';
import { AdamW, clipByGlobalNorm } from '../optimizer.ts';
import { warmupCosine } from '../schedule.ts';
import { Progress, type ProgressStream } from '../progress.ts';
import { softmaxCrossEntropy } from '../../models/ops.ts';
import type { DecoderConfig } from '../../models/llm/config.ts';
import { Decoder } from '../../models/llm/decoder.ts';
import type { TextTokenizer } from '../../models/llm/tokenizer.ts';

export interface PretrainOptions {
  /** Optimiser steps (default DEFAULT_PRETRAIN_STEPS). */
  steps?: number;
  seed?: number;
  /** Training text; default: `synthetic` + `textDirs`. */
  corpus?: string[];
  /** Arrow split files, or folders of them, whose `text` column is added to the corpus. */
  textDirs?: string[];
  /** Include the synthetic suite's text (default true unless `corpus` is given). */
  synthetic?: boolean;
  /** Include EGMF prompt documents (`promptCorpus`; default: as `synthetic`). */
  prompts?: boolean;
  /** Sequences per step (default 8). */
  batchSize?: number;
  /**
   * Tokens per sequence (default 128; sentences are packed, separated by EOS). Long enough
   * for EGMF prompts (instruction, utterance, pseudo tokens, label set), so rotary
   * positions they use are trained: 8 × 128 costs ~1.4× the step of 16 × 64.
   */
  seqLen?: number;
  /** Uniformly sampled negative ids per step, besides the batch's targets. */
  negatives?: number;
  /** Peak learning rate (warm-up 10%, then cosine to 10%). */
  lr?: number;
  weightDecay?: number;
  clipNorm?: number;
  /** Where the progress bar goes (default stderr); null = none. */
  progress?: ProgressStream | null;
}

export const DEFAULT_PRETRAIN_STEPS = 300;

export interface PretrainResult {
  model: Decoder;
  steps: number;
  seed: number;
  /** Mean sampled-softmax training loss of the first and last 10% of steps. */
  startLoss: number;
  finalLoss: number;
  /** Training loss of every step. */
  losses: number[];
  /** Held-out loss over the evaluation vocabulary, before and after training. */
  heldout: { before: number; after: number; vocab: number; tokens: number };
  corpus: { sentences: number; heldoutSentences: number; tokens: number; digest: string; sources: string[] };
  /** The recipe actually used (defaults filled in). */
  recipe: { batchSize: number; seqLen: number; negatives: number; lr: number; weightDecay: number; clipNorm: number; warmupRatio: number };
  /** 1 for each vocabulary row that any step touched; the others kept their init. */
  touched: Uint8Array;
  seconds: number;
}

/** Unique sentences of the synthetic suite (all four presets, every split), in a fixed order. */
export function syntheticCorpus(seed = 1111, scale = 0.1): string[] {
  return PRESET_NAMES.flatMap((name) => presetTexts(name, seed, scale));
}

/** One preset's utterances (every split), in a fixed order. */
function presetTexts(name: PresetName, seed: number, scale: number): string[] {
  // Features do not affect the text (it is drawn first), so they are made as small as possible.
  const k = resolveKnobs({ seed, scale, audioDim: 1, visionDim: 1, maxAudioFrames: 1, maxVisionFrames: 1 });
  const out: string[] = [];
  for (const split of ['train', 'valid', 'test'] as const) for (const s of splitSamples(name, split, k)) out.push(s.sample.text);
  return out;
}

/**
 * EGMF prompt documents, so the built-in LLM knows the inputs and outputs EGMF gives it
 * as a real LLM would: for a `share` of each preset's utterances (seeded pick), the
 * utterance between the modality markers, the preset's task prompt (label set or score
 * range, in its language), then an answer of its grammar (class index, label word or
 * one-decimal score) drawn uniformly at random. The answers are never the samples'
 * labels: the documents teach the format and the answer tokens, not the task. Without
 * them the prompt's and the answers' token embeddings keep their random initial rows
 * (norm ~0.14 against ~1.2 for trained tokens), and EGMF's restricted output layer cannot
 * separate the classes by more than a fraction of a logit.
 * (Answering with the affect the words express instead, on training utterances, was
 * tried: the tiny model only learned the class prior from it in 300 steps, and EGMF
 * training then left the majority class later than with random answers.)
 */
export function promptCorpus(seed = 1111, scale = 0.1, share = 0.25): string[] {
  const rng = seedrandom(`${seed}/prompt-corpus`);
  const out: string[] = [];
  for (const name of PRESET_NAMES) {
    const p = PRESETS[name];
    const t = PROMPTS[p.language];
    const tasks: AnswerTask[] = p.task === 'classification'
      ? [{ kind: 'classification', labelNames: p.labelNames, target: 'index' }, { kind: 'classification', labelNames: p.labelNames, target: 'word' }]
      : [{ kind: 'regression', range: p.labelRange }];
    const forms = tasks.map((task) => ({
      prompt: renderTaskPrompt(task.kind === 'classification' ? t.classification : t.regression, task),
      answers: enumerateAnswers(task).answers,
    }));
    for (const text of presetTexts(name, seed, scale)) {
      if (rng() >= share) continue;
      const f = forms[Math.floor(rng() * forms.length)]!;
      out.push(`${t.open}${text}${t.close}${f.prompt}${f.answers[Math.floor(rng() * f.answers.length)]!}`);
    }
  }
  return out;
}

/** Texts of Arrow split files: `path` is one `.arrow` file or a folder of them. */
export function arrowCorpus(path: string): string[] {
  if (!existsSync(path)) throw new EgmfError('text source not found', { file: path });
  const files = statSync(path).isDirectory()
    ? readdirSync(path).filter((f) => f.endsWith('.arrow')).sort().map((f) => join(path, f))
    : [path];
  if (files.length === 0) throw new EgmfError('folder holds no .arrow split files', { file: path });
  const out: string[] = [];
  for (const f of files) {
    const col = readSplitTable(f).table.getChild('text')!;
    for (let i = 0; i < col.length; i++) {
      const t: unknown = col.get(i);
      if (typeof t === 'string' && t.trim() !== '') out.push(t);
    }
  }
  return out;
}

interface Corpus {
  train: Int32Array;
  heldout: Int32Array;
  sentences: number;
  heldoutSentences: number;
  digest: string;
}

/**
 * Deduplicates, tokenises and packs sentences into two EOS-separated streams. Every 20th
 * unique sentence (at least one) is held out, so held-out text is never trained on.
 */
function buildCorpus(texts: string[], tok: TextTokenizer, eos: number): Corpus {
  const unique = [...new Set(texts.map((t) => t.trim()).filter((t) => t !== ''))];
  if (unique.length < 2) throw new EgmfError(`the pretraining corpus needs at least 2 distinct sentences, got ${unique.length}`, { key: 'text' });
  const digest = createHash('sha256').update(unique.join('\n')).digest('hex').slice(0, 16);
  const train: number[] = [];
  const held: number[] = [];
  let heldoutSentences = 0;
  unique.forEach((s, i) => {
    const dst = i % 20 === 19 || (unique.length < 20 && i === unique.length - 1) ? held : train;
    if (dst === held) heldoutSentences++;
    for (const id of tok.encode(s)) dst.push(id);
    dst.push(eos);
  });
  return { train: Int32Array.from(train), heldout: Int32Array.from(held), sentences: unique.length, heldoutSentences, digest };
}

/** Sorted candidate ids: the unique `targets` plus `n` other ids drawn uniformly from [0, V). */
export function sampledVocab(targets: ArrayLike<number>, n: number, vocabSize: number, rng: () => number): Int32Array {
  const set = new Set<number>(Array.from(targets));
  const want = Math.min(vocabSize, set.size + n);
  while (set.size < want) set.add(Math.floor(rng() * vocabSize));
  return Int32Array.from(set).sort();
}

/**
 * Losses over a step vocabulary. `rows` are the vocabulary ids whose embeddings the
 * small table holds; ids and candidates are re-indexed into it, and a view of the model
 * whose embedding is that table runs the ordinary Decoder code.
 */
class StepVocab {
  readonly rows: Int32Array;
  private readonly index = new Map<number, number>();

  constructor(ids: ArrayLike<number>, candidates: Int32Array) {
    const all = new Set<number>(Array.from(ids));
    for (const c of candidates) all.add(c);
    this.rows = Int32Array.from(all).sort();
    this.rows.forEach((id, i) => this.index.set(id, i));
  }

  local(ids: ArrayLike<number>): Int32Array {
    return Int32Array.from(ids, (id) => this.index.get(id)!);
  }

  gather(table: Float32Array, d: number): Float32Array {
    const out = new Float32Array(this.rows.length * d);
    this.rows.forEach((id, i) => out.set(table.subarray(id * d, (id + 1) * d), i * d));
    return out;
  }
}

/** Mean loss of `targets` [B·T] given `inputs` [B·T] over `candidates`, on a model view. */
function lossOn(view: Decoder, sv: StepVocab, inputs: Int32Array, targets: Int32Array, candidates: Int32Array, b: number, t: number): tf.Scalar {
  const ids = tf.tensor2d(sv.local(inputs), [b, t], 'int32');
  const hidden = view.forward({ inputIds: ids }); // [B, T, D]
  const logits = view.logitsFor(hidden, sv.local(candidates)); // [B, T, K]
  const pos = new Map<number, number>();
  candidates.forEach((id, i) => pos.set(id, i));
  return softmaxCrossEntropy(logits, Int32Array.from(targets, (id) => pos.get(id)!));
}

/** The model with `table` [R, D] as its (tied) embedding; a plain tensor suits forward-only use. */
function viewWith(model: Decoder, table: tf.Tensor2D): Decoder {
  const params = new Map(model.params);
  params.set('model.embed_tokens.weight', table as tf.Variable);
  return new Decoder({ ...model.config, vocabSize: table.shape[0] }, params);
}

/** Held-out loss over a fixed vocabulary (every corpus id plus seeded negatives). */
function heldoutLoss(model: Decoder, table: Float32Array, corpus: Corpus, seqLen: number, evalVocab: Int32Array): { loss: number; tokens: number } {
  const d = model.config.hiddenSize;
  const s = corpus.heldout;
  const t = Math.min(seqLen, s.length - 1);
  const windows: number[] = [];
  for (let o = 0; o + t < s.length; o += t) windows.push(o);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < windows.length; i += 16) {
    const batch = windows.slice(i, i + 16);
    const inputs = new Int32Array(batch.length * t);
    const targets = new Int32Array(batch.length * t);
    batch.forEach((o, r) => {
      inputs.set(s.subarray(o, o + t), r * t);
      targets.set(s.subarray(o + 1, o + t + 1), r * t);
    });
    const sv = new StepVocab(inputs, evalVocab);
    const loss = tf.tidy(() => {
      const sub = tf.tensor2d(sv.gather(table, d), [sv.rows.length, d]);
      return lossOn(viewWith(model, sub), sv, inputs, targets, evalVocab, batch.length, t).dataSync()[0]!;
    });
    sum += loss * targets.length;
    count += targets.length;
  }
  return { loss: sum / count, tokens: count };
}

function positiveInt(v: number, key: string): number {
  if (!Number.isInteger(v) || v < 1) throw new EgmfError(`must be a positive integer, got ${v}`, { key });
  return v;
}

/**
 * Pretrains a freshly initialised model of `config` (seeded) on the corpus. The backend
 * must be initialised (`initBackend`). The returned model holds the trained weights.
 */
export function pretrain(config: DecoderConfig, tok: TextTokenizer, eos: number, o: PretrainOptions = {}): PretrainResult {
  const started = performance.now();
  const steps = positiveInt(o.steps ?? DEFAULT_PRETRAIN_STEPS, 'steps');
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new EgmfError(`must be an integer, got ${seed}`, { key: 'seed' });
  const bsz = positiveInt(o.batchSize ?? 8, 'batch-size');
  const negatives = o.negatives ?? 256;
  if (!Number.isInteger(negatives) || negatives < 0) throw new EgmfError(`must be a non-negative integer, got ${negatives}`, { key: 'negatives' });
  const weightDecay = o.weightDecay ?? 0.1;
  const clipNorm = o.clipNorm ?? 1.0;
  const warmupRatio = 0.1;
  const useSynthetic = o.synthetic ?? o.corpus === undefined;
  const usePrompts = o.prompts ?? useSynthetic;
  const texts = [
    ...(o.corpus ?? []), ...(useSynthetic ? syntheticCorpus() : []), ...(usePrompts ? promptCorpus() : []),
    ...(o.textDirs ?? []).flatMap(arrowCorpus),
  ];
  const sources = [
    ...(o.corpus !== undefined ? ['inline'] : []), ...(useSynthetic ? ['synthetic'] : []), ...(usePrompts ? ['egmf-prompts'] : []),
    ...(o.textDirs ?? []).map((d) => resolve(d)),
  ];
  const corpus = buildCorpus(texts, tok, eos);
  const seqLen = Math.min(positiveInt(o.seqLen ?? 128, 'seq-len'), corpus.train.length - 1);
  const v = config.vocabSize;
  const d = config.hiddenSize;

  // Built inside tidy: the tensors that initialise variables are otherwise left alive.
  const model = tidyBuild(() => Decoder.random(config, seed));
  const embed = model.param('model.embed_tokens.weight');
  const table = (embed.dataSync() as Float32Array).slice(); // master copy [V·D], updated row-wise
  const mTab = new Float32Array(table.length);
  const vTab = new Float32Array(table.length);
  const touched = new Uint8Array(v);
  const layerVars = new Map([...model.params].filter(([n]) => n !== 'model.embed_tokens.weight'));
  const byVarName = new Map([...layerVars].map(([n, x]) => [x.name, n]));
  const opt = tidyBuild(() => new AdamW(layerVars, { weightDecay, beta2: 0.98 }));
  const [b1, b2, eps] = [0.9, 0.98, 1e-8];

  const evalRng = seedrandom(`${seed}/eval-vocab`);
  const evalVocab = sampledVocab(Int32Array.from(new Set([...corpus.train, ...corpus.heldout])), 512, v, evalRng);
  const before = heldoutLoss(model, table, corpus, seqLen, evalVocab);

  const batchRng = seedrandom(`${seed}/batches`);
  const negRng = seedrandom(`${seed}/negatives`);
  const peak = o.lr ?? 3e-3;
  const bar = o.progress === null ? null : new Progress({ total: steps, label: 'pretrain', stream: o.progress });
  const losses: number[] = [];
  const inputs = new Int32Array(bsz * seqLen);
  const targets = new Int32Array(bsz * seqLen);
  for (let step = 0; step < steps; step++) {
    for (let r = 0; r < bsz; r++) {
      const off = Math.floor(batchRng() * (corpus.train.length - seqLen));
      inputs.set(corpus.train.subarray(off, off + seqLen), r * seqLen);
      targets.set(corpus.train.subarray(off + 1, off + seqLen + 1), r * seqLen);
    }
    const candidates = sampledVocab(targets, negatives, v, negRng);
    const sv = new StepVocab(inputs, candidates);
    const sub = tf.tidy(() => tf.variable(tf.tensor2d(sv.gather(table, d), [sv.rows.length, d]), true));
    const view = viewWith(model, sub);
    const { value, grads } = tf.variableGrads(() => lossOn(view, sv, inputs, targets, candidates, bsz, seqLen), [sub, ...layerVars.values()]);
    const named: Record<string, tf.Tensor> = {};
    for (const [k, g] of Object.entries(grads)) named[k === sub.name ? 'embed' : byVarName.get(k)!] = g;
    const { grads: clipped } = clipByGlobalNorm(named, clipNorm);
    const lr = warmupCosine(step, { peak, totalSteps: steps, warmupRatio, minRatio: 0.1 });
    const { embed: gEmbed, ...rest } = clipped;
    opt.apply(rest, lr);
    sparseAdam(table, mTab, vTab, sv.rows, gEmbed!.dataSync() as Float32Array, d, step + 1, lr, b1, b2, eps);
    for (const id of sv.rows) touched[id] = 1;
    const loss = value.dataSync()[0]!;
    losses.push(loss);
    tf.dispose([value, sub, ...Object.values(clipped)]);
    bar?.tick(1, { loss, lr });
  }
  bar?.finish();
  opt.dispose();
  tf.tidy(() => embed.assign(tf.tensor2d(table, [v, d])));
  const after = heldoutLoss(model, table, corpus, seqLen, evalVocab);
  const tenth = Math.max(1, Math.round(steps / 10));
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  return {
    model, steps, seed, losses,
    startLoss: mean(losses.slice(0, tenth)),
    finalLoss: mean(losses.slice(-tenth)),
    heldout: { before: before.loss, after: after.loss, vocab: evalVocab.length, tokens: after.tokens },
    corpus: { sentences: corpus.sentences, heldoutSentences: corpus.heldoutSentences, tokens: corpus.train.length + corpus.heldout.length, digest: corpus.digest, sources },
    recipe: { batchSize: bsz, seqLen, negatives, lr: peak, weightDecay, clipNorm, warmupRatio },
    touched,
    seconds: (performance.now() - started) / 1000,
  };
}

function tidyBuild<T>(make: () => T): T {
  let out: T | undefined;
  tf.tidy(() => {
    out = make();
  });
  return out!;
}

/** Lazy AdamW on the touched rows only (bias correction by the global step, no decay). */
function sparseAdam(table: Float32Array, m: Float32Array, v: Float32Array, rows: Int32Array, g: Float32Array, d: number, t: number, lr: number, b1: number, b2: number, eps: number): void {
  const bc1 = 1 - b1 ** t;
  const bc2 = 1 - b2 ** t;
  rows.forEach((id, i) => {
    for (let j = 0; j < d; j++) {
      const k = id * d + j;
      const gi = g[i * d + j]!;
      m[k] = b1 * m[k]! + (1 - b1) * gi;
      v[k] = b2 * v[k]! + (1 - b2) * gi * gi;
      table[k] = table[k]! - (lr * (m[k]! / bc1)) / (Math.sqrt(v[k]! / bc2) + eps);
    }
  });
}
