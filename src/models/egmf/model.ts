/**
 * EgmfModel: the fusion network feeding a frozen decoder LLM (LoRA trainable) through
 * pseudo tokens, trained to write the answer text.
 *
 *     const model = new EgmfModel({ model: cfg.model, llm, llmTrainable: () => lora.trainableVariables(), tokenizer, grammar, prompt, features, maxTextTokens, seed });
 *     optimizer.minimize(() => model.loss(batch), false, model.trainableVariables());
 *     const { values, unparsed, gates } = model.predict(batch);
 *
 * Only the grammar's tokens are scored (the head restricted by `logitsFor(·, grammar.vocab)`), so the
 * full output layer (150k rows for Qwen) is never computed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../../data/loader.ts';
import { EgmfError } from '../../errors.ts';
import type { MaskLike } from '../ops.ts';
import { linear, softmaxCrossEntropy } from '../ops.ts';
import type { AnswerGrammar, ParsedAnswer, TextTokenizer } from './answers.ts';
import { assembleInputs, type AssembledInputs } from './assemble.ts';
import { padLength } from '../../data/pad.ts';
import type { ModalitySeq } from './encoders.ts';
import { FusionNetwork, type FusionConfig } from './fusion.ts';
import type { GateOutput } from './gating.ts';
import { gateReport, type GateReport, type GateWeights } from './report.ts';
import { evalCtx, type ForwardCtx } from './layers.ts';
import { layoutSample, type PromptLayout, type PromptParts } from './prompts.ts';
import { loadFusionWeights, saveFusionWeights } from './weights.ts';

/** What EgmfModel needs from the decoder (src/models/llm's Decoder satisfies it). */
export interface EgmfLlm {
  readonly config: { hiddenSize: number };
  /** ids [B, T] → embeddings [B, T, D]. */
  embed(ids: tf.Tensor | number[][]): tf.Tensor3D;
  /** Final hidden states [B, T, D]. */
  forward(input: { inputsEmbeds: tf.Tensor3D; attentionMask: MaskLike; positionIds: ArrayLike<number>; training?: boolean }): tf.Tensor3D;
  /** hidden [..., D] → logits over vocabIds only [..., |vocabIds|]. */
  logitsFor(hidden: tf.Tensor, vocabIds: ArrayLike<number>): tf.Tensor;
}

/** The batch fields the model reads (a loader Batch fits). */
export type EgmfBatch = Pick<Batch, 'size' | 'ids' | 'texts' | 'contexts' | 'labels' | 'audio' | 'audioMask' | 'audioPadLen' | 'audioDim' | 'vision' | 'visionMask' | 'visionPadLen' | 'visionDim'>;

export interface EgmfModelOptions {
  /** The `model` section of the experiment config. */
  model: FusionConfig;
  llm: EgmfLlm;
  /** The LLM's trainable variables (LoRA adapters); default none. */
  llmTrainable?: () => tf.Variable[];
  tokenizer: TextTokenizer;
  grammar: AnswerGrammar;
  prompt: PromptParts;
  /** Feature widths of the dataset (needed for the modalities in use). */
  features: { audio?: number; vision?: number };
  /** Utterance tokens kept per sample. */
  maxTextTokens: number;
  /**
   * Dialogue context (`data.context`): the text encoder reads up to this many tokens of the
   * batch's `contexts` (the most recent ones) before each utterance. Absent = no context.
   * The LLM's prompt keeps the utterance alone; the context reaches it through the pseudo tokens.
   */
  maxContextTokens?: number;
  seed: number;
  /**
   * Pads the text encoder's tokens and the LLM's input to a multiple of this many positions
   * (`data.pad_to_multiple_of`; padded positions are masked): batches fall into a few
   * shapes, one captured graph each. Default 1 (to the batch's longest).
   */
  padToMultipleOf?: number;
  /**
   * Runs a region of tensor ops as one captured graph (the tensorflow backend's
   * `GraphCapture`, when `graph: true`): `predict` runs its first decoding step (the fusion
   * network and the LLM pass that scores every sample's first answer token) through it.
   * Absent or null: eager.
   */
  regions?: RegionRunner | null;
}

/** Name of `predict`'s captured region (its first decoding step). */
export const PREDICT_REGION = 'egmf-predict';

/** Runs `fn` as a captured region named `key` (see `EgmfModelOptions.regions`). */
export interface RegionRunner {
  run<T>(key: string, fn: () => T): T;
}

export interface LossStats {
  /** Cross-entropy on the answer tokens. */
  ce: number;
  /** Unweighted load-balancing loss. */
  balance: number;
  /** Unweighted auxiliary probe loss, when there is a probe. */
  probe?: number;
  gates: GateReport;
}

export interface PredictResult {
  /** Parsed value per sample; null where the output did not parse (never 0). */
  values: (number | null)[];
  answers: ParsedAnswer[];
  /** Generated token ids (EOS included when produced). */
  tokens: number[][];
  unparsed: { index: number; id: string; text: string }[];
  gates: GateReport;
}

export class EgmfModel {
  readonly fusion: FusionNetwork;
  /**
   * The tensors behind `lastStats`, kept by every `loss` call and read only when asked for:
   * a read inside `loss` would stop a captured training step (`tensorflow_graph.ts`) halfway.
   */
  private statsSource: { ce: tf.Scalar; balance: tf.Scalar; probe: tf.Scalar | null; gates: GateOutput } | null = null;
  private statsRead: LossStats | null = null;
  private classWeights: Float32Array | null = null;
  private readonly textCache = new Map<string, number[]>();
  private readonly contextCache = new Map<string, number[]>();
  private dropoutCalls = 0;
  private dropoutStep = 0;

  constructor(readonly opts: EgmfModelOptions) {
    const d = opts.llm.config.hiddenSize;
    const task = opts.grammar.task;
    const probeOutputs = task.kind === 'classification' ? task.labelNames.length : 1;
    this.fusion = new FusionNetwork(opts.model, { inputs: { text: d, audio: opts.features.audio, vision: opts.features.vision }, llmWidth: d, embeddingNorm: this.embeddingNorm(), probeOutputs, context: opts.maxContextTokens !== undefined }, opts.seed);
  }

  /**
   * Makes dropout masks a function of (seed, step, call order), so a resumed run draws the
   * same masks as an uninterrupted one. Call before each training step.
   */
  setStep(step: number): void {
    this.dropoutStep = step;
    this.dropoutCalls = 0;
  }

  /** Fusion variables, then the LLM's trainable ones (LoRA). */
  trainableVariables(): tf.Variable[] {
    return [...this.fusion.variables(), ...(this.opts.llmTrainable?.() ?? [])];
  }

  /** Mean loss of a batch: answer-token cross-entropy + balance_weight · balance loss. */
  loss(batch: EgmfBatch, opts: { training?: boolean } = {}): tf.Scalar {
    const training = opts.training ?? true;
    const g = this.opts.grammar;
    if (this.opts.model.head === 'linear') return this.linearLoss(batch, training);
    return tf.tidy(() => {
      const { pseudo, gates, probe } = this.fusion.apply(this.modalityInputs(batch), this.ctx(training));
      const layouts = this.layouts(batch, (i) => this.targetTokens(batch, i));
      const a = assembleInputs(layouts, this.opts.model.pseudo_tokens, this.opts.padToMultipleOf);
      const hidden = this.runLlm(a, pseudo, training); // [B, N, D]
      const t = a.targetWidth;
      const pred = tf.slice(hidden, [0, a.length - t - 1, 0], [-1, t, -1]); // [B, T, D] predicts the last T tokens
      const logits = linear(pred, this.answerHead(), undefined, true); // [B, T, V']
      const targets = Array.from(a.targets, (id) => (id < 0 ? 0 : g.vocabIndex.get(id)!)); // every target token is in the grammar
      const sw = this.sampleWeights(batch);
      const mask = Array.from(a.targets, (id, k) => (id < 0 ? 0 : sw === null ? 1 : sw[Math.floor(k / t)]!));
      const ce = softmaxCrossEntropy(logits, targets, mask);
      let total = tf.add(ce, tf.mul(this.opts.model.gating.balance_weight, gates.balance)) as tf.Scalar;
      let probeLoss: tf.Scalar | null = null;
      if (probe !== null) {
        // The probe trains the fusion network directly, at the speed of a linear head, while
        // the answer loss reaches it only through the frozen LLM.
        probeLoss = this.probeLoss(probe, batch);
        total = tf.add(total, tf.mul(this.opts.model.aux_probe.weight, probeLoss)) as tf.Scalar;
      }
      this.keepStats(ce, gates, probeLoss);
      return total;
    });
  }

  /** The last `loss` call's parts (null before the first), read from its kept tensors on first access. */
  get lastStats(): LossStats | null {
    const src = this.statsSource;
    if (this.statsRead === null && src !== null) {
      this.statsRead = {
        ce: src.ce.dataSync()[0]!, balance: src.balance.dataSync()[0]!, gates: gateReport(this.fusion, src.gates),
        ...(src.probe !== null ? { probe: src.probe.dataSync()[0]! } : {}),
      };
    }
    return this.statsRead;
  }

  private keepStats(ce: tf.Scalar, gates: GateOutput, probe: tf.Scalar | null): void {
    this.disposeStats();
    const keep = <T extends tf.Tensor | null>(t: T): T => (t === null ? t : (tf.keep(t) as T));
    this.statsSource = {
      ce: keep(ce), balance: keep(gates.balance), probe: keep(probe),
      gates: { ...gates, expert: keep(gates.expert), kind: keep(gates.kind), modality: keep(gates.modality) },
    };
  }

  private disposeStats(): void {
    const src = this.statsSource;
    if (src !== null) {
      const kept: (tf.Tensor | null)[] = [src.ce, src.balance, src.probe, src.gates.expert, src.gates.kind, src.gates.modality];
      tf.dispose(kept.filter((t): t is tf.Tensor => t !== null));
    }
    this.statsSource = null;
    this.statsRead = null;
  }

  /**
   * `head: linear`: the probe is the answer head (cross-entropy on classes, L1 on scores),
   * beside the balance loss; the LLM is never run. The baseline that tells what the LLM path
   * adds to the same fusion network on the same data.
   */
  private linearLoss(batch: EgmfBatch, training: boolean): tf.Scalar {
    return tf.tidy(() => {
      const { gates, probe } = this.fusion.apply(this.modalityInputs(batch), this.ctx(training), { pseudo: false });
      const head = this.probeLoss(probe!, batch);
      const total = tf.add(head, tf.mul(this.opts.model.gating.balance_weight, gates.balance)) as tf.Scalar;
      this.keepStats(head, gates, head);
      return total;
    });
  }

  /** Probe loss: cross-entropy over the classes, or L1 on the score. */
  private probeLoss(probe: tf.Tensor2D, batch: EgmfBatch): tf.Scalar {
    for (let i = 0; i < batch.size; i++) if (!Number.isFinite(batch.labels[i]!)) this.targetTokens(batch, i); // names the sample
    return this.opts.grammar.task.kind === 'classification'
      ? softmaxCrossEntropy(probe, batch.labels, this.sampleWeights(batch) ?? undefined)
      : (tf.mean(tf.abs(tf.sub(tf.reshape(probe, [-1]), tf.tensor1d(Float32Array.from(batch.labels))))) as tf.Scalar);
  }

  /** `head: linear` predictions: the probe's best class, or its score clipped to the task's range. */
  private predictLinear(batch: EgmfBatch): PredictResult {
    const task = this.opts.grammar.task;
    let gates: GateReport | null = null;
    const out = tf.tidy(() => {
      const o = this.fusion.apply(this.modalityInputs(batch), evalCtx(), { pseudo: false });
      gates = gateReport(this.fusion, o.gates);
      return o.probe!.dataSync();
    });
    const p = out.length / batch.size;
    const values = Array.from({ length: batch.size }, (_, i) => {
      if (task.kind === 'classification') {
        let best = 0;
        for (let c = 1; c < p; c++) if (out[i * p + c]! > out[i * p + best]!) best = c;
        return best;
      }
      return Math.min(task.range[1], Math.max(task.range[0], out[i]!));
    });
    return { values, answers: values.map((value) => ({ ok: true, value })), tokens: values.map(() => []), unparsed: [], gates: gates! };
  }

  /**
   * Greedy decoding of the answers. `constrained` (default) allows at each step only the
   * tokens that continue some answer of the grammar; `free` takes the best token of the
   * grammar vocabulary, so its outputs can fail to parse: those come back as unparsed.
   * In `constrained` mode a step with a single allowed token (the end of text after an
   * answer's last token, or the rest of an answer no other shares) takes it without running
   * the LLM: greedy decoding would choose it whatever the scores, so the outputs are the
   * same, and a batch of one-token answers needs one LLM pass instead of two.
   */
  predict(batch: EgmfBatch, opts: { mode?: 'constrained' | 'free' } = {}): PredictResult {
    if (this.opts.model.head === 'linear') return this.predictLinear(batch);
    const mode = opts.mode ?? 'constrained';
    const g = this.opts.grammar;
    const eos = this.opts.tokenizer.eosId;
    const tokens: number[][] = Array.from({ length: batch.size }, () => []);
    const done = new Array<boolean>(batch.size).fill(false);
    const take = (i: number, id: number): void => {
      tokens[i]!.push(id);
      if (id === eos || (mode === 'constrained' && g.allowedNext(tokens[i]!).length === 0)) done[i] = true;
    };
    const allowedAt = (i: number): number[] => (mode === 'constrained' ? g.allowedNext(tokens[i]!) : g.vocab);
    /** The LLM's scores of the grammar's vocabulary for the next token of the `active` samples [B', V']. */
    const score = (pseudo: tf.Tensor3D, active: number[]): tf.Tensor2D => {
      const layouts = this.layouts(batch, (i) => tokens[i]!).filter((_, i) => active.includes(i));
      const a = assembleInputs(layouts, this.opts.model.pseudo_tokens, this.opts.padToMultipleOf);
      // No pseudo tokens (`pseudo_tokens: 0`), or every sample active: nothing to gather (wasm mis-shapes a gather of an empty tensor).
      const rows = this.opts.model.pseudo_tokens === 0 || active.length === batch.size ? pseudo : tf.gather(pseudo, active);
      const hidden = this.runLlm(a, rows, false); // [B', N, D]
      const last = tf.slice(hidden, [0, a.length - 1, 0], [-1, 1, -1]); // [B', 1, D]
      return linear(tf.reshape(last, [active.length, -1]), this.answerHead(), undefined, true) as tf.Tensor2D;
    };
    // Every sample starts from the same empty answer: the first step scores all of them or
    // none (a single allowed first token).
    const firstChoices = allowedAt(0);
    const firstForced = mode === 'constrained' && firstChoices.length === 1;
    const all = Array.from({ length: batch.size }, (_, i) => i);
    // One region: the fusion network and the first step's LLM pass, read after it ends.
    type Start = { pseudo: tf.Tensor3D; gates: GateWeights; scores: tf.Tensor2D | null };
    const first = (): Start => tf.tidy(() => {
      const out = this.fusion.apply(this.modalityInputs(batch), evalCtx());
      const { expert, kind, modality } = out.gates;
      return { pseudo: out.pseudo, gates: { expert, kind, modality }, scores: firstForced ? null : score(out.pseudo, all) } as unknown as tf.TensorContainer;
    }) as unknown as Start;
    const start = this.opts.regions ? this.opts.regions.run(PREDICT_REGION, first) : first();
    const pseudo = start.pseudo;
    let gates: GateReport;
    try {
      gates = gateReport(this.fusion, start.gates);
    } finally {
      tf.dispose(start.gates as unknown as tf.TensorContainer);
    }
    try {
      for (let step = 0; step < g.maxTokens; step++) {
        const choices = new Map<number, number[]>();
        for (let i = 0; i < batch.size; i++) {
          if (done[i]) continue;
          const allowed = step === 0 ? firstChoices : allowedAt(i);
          if (mode === 'constrained' && allowed.length === 1) take(i, allowed[0]!);
          else choices.set(i, allowed);
        }
        const active = [...choices.keys()];
        if (active.length === 0) {
          if (done.every(Boolean)) break;
          continue;
        }
        let scores: Float32Array;
        if (step === 0 && start.scores !== null) {
          scores = start.scores.dataSync() as Float32Array;
          start.scores.dispose();
        } else {
          scores = tf.tidy(() => score(pseudo, active).dataSync() as Float32Array);
        }
        const v = g.vocab.length;
        active.forEach((i, r) => {
          const allowed = choices.get(i)!;
          let best = allowed[0]!;
          for (const id of allowed) if (scores[r * v + g.vocabIndex.get(id)!]! > scores[r * v + g.vocabIndex.get(best)!]!) best = id;
          take(i, best);
        });
      }
    } finally {
      pseudo.dispose();
      if (start.scores !== null && !start.scores.isDisposed) start.scores.dispose();
    }
    const answers = tokens.map((t) => g.parse(t));
    const unparsed = answers.flatMap((a, i) => (a.ok ? [] : [{ index: i, id: batch.ids[i]!, text: a.text }]));
    return { values: answers.map((a) => (a.ok ? a.value : null)), answers, tokens, unparsed, gates };
  }

  /** Writes the fusion weights (`egmf.…` names) as safetensors. */
  saveWeights(path: string, metadata: Record<string, string> = {}): void {
    saveFusionWeights(this.fusion.params, path, metadata);
  }

  /** Loads fusion weights saved by `saveWeights`; checks every name and shape before assigning any. */
  loadWeights(path: string): void {
    loadFusionWeights(this.fusion.params, path);
  }

  /**
   * Chooses the tokens that get text offsets (`model.text_offsets`) from the training
   * split's utterances, tokenized and truncated as the model reads them. Returns how many
   * got a row (0 when the model has none).
   */
  /**
   * Loss weight per class (`train.class_weights`), indexed by label; null = all 1. Weights
   * the probe's and the answer tokens' cross-entropy of each sample by its class.
   */
  setClassWeights(w: Float32Array | null): void {
    if (w !== null) {
      const task = this.opts.grammar.task;
      if (task.kind !== 'classification') throw new EgmfError('class weights need a classification task', { key: 'train.class_weights' });
      if (w.length !== task.labelNames.length || !w.every((x) => Number.isFinite(x) && x > 0)) {
        throw new EgmfError(`need ${task.labelNames.length} positive weights, got [${Array.from(w).join(', ')}]`, { key: 'train.class_weights' });
      }
    }
    this.classWeights = w;
  }

  /** Per-sample loss weights of a batch from the class weights, or null when there are none. */
  private sampleWeights(batch: EgmfBatch): Float32Array | null {
    const w = this.classWeights;
    if (w === null) return null;
    return Float32Array.from(batch.labels, (y) => w[y] ?? 1);
  }

  fitTextOffsets(texts: Iterable<string>): number {
    const offsets = this.fusion.textOffsets;
    if (offsets === null) return 0;
    const max = this.opts.maxTextTokens;
    const tok = this.opts.tokenizer;
    return offsets.fit((function* () {
      for (const t of texts) yield tok.encode(t).slice(0, max);
    })());
  }

  dispose(): void {
    this.disposeStats();
    this.fusion.dispose();
  }

  /** Utterance token ids, truncated, tokenized once per sample. */
  textIds(id: string, text: string): number[] {
    const key = `${id}\u0000${text}`;
    let ids = this.textCache.get(key);
    if (ids === undefined) {
      ids = this.opts.tokenizer.encode(text).slice(0, this.opts.maxTextTokens);
      this.textCache.set(key, ids);
    }
    return ids;
  }

  /** Answer tokens of sample i; a missing or non-finite label is an error naming the sample. */
  private targetTokens(batch: EgmfBatch, i: number): number[] {
    const y = batch.labels[i]!;
    if (!Number.isFinite(y)) throw new EgmfError(`sample '${batch.ids[i]}' has no usable label (${y})`, { row: i, key: 'label' });
    return this.opts.grammar.targetTokens(y);
  }

  private layouts(batch: EgmfBatch, target: (i: number) => number[]): PromptLayout[] {
    return batch.ids.map((id, i) => layoutSample(this.opts.prompt, this.textIds(id, batch.texts[i]!), this.opts.maxTextTokens, target(i)));
  }

  /** LLM input embeddings with the pseudo tokens scattered into their slots, then the decoder. */
  private runLlm(a: AssembledInputs, pseudo: tf.Tensor3D, training: boolean): tf.Tensor3D {
    const [b, k, d] = pseudo.shape;
    const ids = tf.tensor2d(a.ids, [a.batch, a.length], 'int32');
    const attentionMask = { data: a.attentionMask, batch: a.batch, length: a.length };
    if (k === 0) return this.opts.llm.forward({ inputsEmbeds: this.embed(ids), attentionMask, positionIds: a.positions, training });
    const tokens = tf.mul(this.embed(ids), tf.sub(1, tf.tensor3d(a.pseudoMask, [a.batch, a.length, 1]))); // [B, N, D]
    const rows = tf.concat([tf.reshape(pseudo, [b * k, d]), tf.zeros([1, d])], 0); // [B·K + 1, D]
    const placed = tf.reshape(tf.gather(rows, tf.tensor1d(a.pseudoIndex, 'int32')), [a.batch, a.length, d]); // [B, N, D]
    const inputsEmbeds = tf.add(tokens, placed) as tf.Tensor3D;
    return this.opts.llm.forward({ inputsEmbeds, attentionMask, positionIds: a.positions, training });
  }

  /**
   * Frozen token embeddings, looked up off the gradient tape: a taped gather saves its
   * input for the backward pass, and on wasm saving is a full copy of the table (622 MB
   * per lookup for Qwen3-0.6B).
   */
  private embed(ids: tf.Tensor | number[][]): tf.Tensor3D {
    return untaped(() => this.opts.llm.embed(ids));
  }

  /**
   * The output layer restricted to the grammar's tokens, [D, V'] = logitsFor(I): the same
   * product as logitsFor(hidden) for the bias-free heads of Qwen and LLaMA, with the
   * gather of the (frozen) head rows kept off the tape for the reason given at `embed`.
   */
  private answerHead(): tf.Tensor2D {
    const d = this.opts.llm.config.hiddenSize;
    return untaped(() => tf.tidy(() => this.opts.llm.logitsFor(tf.eye(d), this.opts.grammar.vocab) as tf.Tensor2D));
  }

  /** Batch → the configured modalities' raw sequences with masks. */
  private modalityInputs(batch: EgmfBatch): ModalitySeq[] {
    return this.opts.model.modalities.map((m) => {
      if (m === 'text') return this.textInput(batch);
      const [data, mask, len, dim] = m === 'audio' ? [batch.audio, batch.audioMask, batch.audioPadLen, batch.audioDim] : [batch.vision, batch.visionMask, batch.visionPadLen, batch.visionDim];
      const want = this.opts.features[m];
      if (dim !== want) throw new Error(`batch ${m} features are ${dim} wide but the model was built for ${want}`);
      return sequence(batch.size, data, Float32Array.from(mask), len, dim);
    });
  }

  /** The text encoder's padded length for a batch whose longest token sequence is `longest`. */
  textLength(longest: number): number {
    return padLength(longest, this.opts.padToMultipleOf ?? 1, this.opts.maxTextTokens + (this.opts.maxContextTokens ?? 0));
  }

  private textInput(batch: EgmfBatch): ModalitySeq {
    const utterances = batch.ids.map((id, i) => this.textIds(id, batch.texts[i]!));
    const context = this.contextIds(batch);
    const ids = context === null ? utterances : utterances.map((u, i) => [...context[i]!, ...u]);
    const len = this.textLength(Math.max(1, ...ids.map((t) => t.length)));
    const padded = ids.map((t) => [...t, ...new Array<number>(len - t.length).fill(0)]);
    const mask = new Float32Array(batch.size * len);
    ids.forEach((t, i) => mask.fill(1, i * len, i * len + t.length));
    const frozen = this.embed(padded); // [B, Tt, D_llm]
    const offsets = this.fusion.textOffsets;
    let x = offsets === null ? frozen : (tf.add(frozen, offsets.apply(ids, len)) as tf.Tensor3D);
    const ctxEmb = this.fusion.contextEmbedding;
    if (context !== null && ctxEmb !== null) {
      const segment = new Float32Array(batch.size * len); // 1 at the context tokens
      context.forEach((c, i) => segment.fill(1, i * len, i * len + c.length));
      x = tf.add(x, tf.mul(tf.tensor3d(segment, [batch.size, len, 1]), ctxEmb)) as tf.Tensor3D;
    }
    return { x, mask: tf.tensor2d(mask, [batch.size, len]) };
  }

  /**
   * Each sample's dialogue context as token ids (its preceding utterances, each tokenized
   * and truncated as an utterance is, joined oldest first, keeping the last
   * `maxContextTokens`), or null when the model reads no context.
   */
  private contextIds(batch: EgmfBatch): number[][] | null {
    const max = this.opts.maxContextTokens;
    if (max === undefined) return null;
    if (batch.contexts === undefined) throw new EgmfError('the model reads dialogue context but the batch has none (open its loader with the context option)', { key: 'data.context' });
    return batch.contexts.map((texts) => {
      const ids: number[] = [];
      for (const t of texts) {
        let tokens = this.contextCache.get(t);
        if (tokens === undefined) this.contextCache.set(t, (tokens = this.opts.tokenizer.encode(t).slice(0, this.opts.maxTextTokens)));
        ids.push(...tokens);
      }
      return ids.slice(Math.max(0, ids.length - max));
    });
  }

  private ctx(training: boolean): ForwardCtx {
    if (!training) return evalCtx();
    return { training: true, dropout: this.opts.model.dropout, nextSeed: () => (this.opts.seed * 1_000_003 + this.dropoutStep * 7_919 + this.dropoutCalls++ * 104_729) % 2_147_483_647 };
  }

  /** Mean L2 norm of the prompt's token embeddings: the scale of real LLM inputs. */
  private embeddingNorm(): number {
    const p = this.opts.prompt;
    const ids = [...p.open, ...p.close, ...p.task];
    if (ids.length === 0) throw new Error('the prompt has no tokens');
    return tf.tidy(() => tf.mean(tf.norm(this.opts.llm.embed([ids]), 'euclidean', -1)).dataSync()[0]!);
  }
}

/** Runs f as one untaped step: kernels nested in a customGrad forward are not recorded. */
function untaped<T extends tf.Tensor>(f: () => T): T {
  const anchor = tf.scalar(0);
  const out = tf.customGrad((a) => ({ value: f(), gradFunc: () => tf.zerosLike(a as tf.Tensor) }))(anchor) as T;
  anchor.dispose();
  return out;
}

/** A padded sequence; a batch padded to length 0 becomes one masked frame of zeros. */
function sequence(b: number, data: Float32Array, mask: Float32Array, len: number, dim: number): ModalitySeq {
  if (len === 0) return { x: tf.zeros([b, 1, dim]), mask: tf.zeros([b, 1]) };
  return { x: tf.tensor3d(data, [b, len, dim]), mask: tf.tensor2d(mask, [b, len]) };
}
