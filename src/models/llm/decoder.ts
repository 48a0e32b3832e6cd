/**
 * Decoder-only transformer of the Qwen2 / Qwen3 / LLaMA family: RMSNorm, rotary
 * embeddings (HF rotate_half), grouped-query attention, SwiGLU MLP; Qwen2's q/k/v biases,
 * Qwen3's q/k norms, tied or untied embeddings.
 *
 * Parameters are tf.Variables keyed by their Hugging Face names. Projection weights are
 * stored as [in, out] (HF stores [out, in]) so every projection is a plain 2-D matMul,
 * the fast path on wasm; embedding and lm_head tables stay [V, D] so that rows can be
 * gathered for a restricted vocabulary.
 */
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import type { DecoderConfig } from './config.ts';
import { attentionBias, attentionMerged, defaultPositions, embeddingLookup, linear, rmsNorm, rope, ropeTables, splitHeads, swiGlu, type MaskLike } from '../ops.ts';

export type ParamKind = 'linear' | 'bias' | 'norm' | 'table';

export interface ParamSpec {
  /** Hugging Face key, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  /** Shape in the checkpoint (HF orientation). */
  hfShape: number[];
  kind: ParamKind;
}

/** Names of the projections LoRA can target, in layer order. */
export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type ProjectionName = (typeof PROJECTIONS)[number];

/** Every parameter a checkpoint of this config must hold. */
export function paramSpecs(c: DecoderConfig): ParamSpec[] {
  const d = c.hiddenSize;
  const qw = c.numHeads * c.headDim;
  const kvw = c.numKvHeads * c.headDim;
  const specs: ParamSpec[] = [{ name: 'model.embed_tokens.weight', hfShape: [c.vocabSize, d], kind: 'table' }];
  const lin = (name: string, out: number, inp: number, bias: boolean) => {
    specs.push({ name: `${name}.weight`, hfShape: [out, inp], kind: 'linear' });
    if (bias) specs.push({ name: `${name}.bias`, hfShape: [out], kind: 'bias' });
  };
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    specs.push({ name: `${p}.input_layernorm.weight`, hfShape: [d], kind: 'norm' });
    lin(`${p}.self_attn.q_proj`, qw, d, c.qkvBias);
    lin(`${p}.self_attn.k_proj`, kvw, d, c.qkvBias);
    lin(`${p}.self_attn.v_proj`, kvw, d, c.qkvBias);
    lin(`${p}.self_attn.o_proj`, d, qw, c.oBias);
    if (c.qkNorm) {
      specs.push({ name: `${p}.self_attn.q_norm.weight`, hfShape: [c.headDim], kind: 'norm' });
      specs.push({ name: `${p}.self_attn.k_norm.weight`, hfShape: [c.headDim], kind: 'norm' });
    }
    specs.push({ name: `${p}.post_attention_layernorm.weight`, hfShape: [d], kind: 'norm' });
    lin(`${p}.mlp.gate_proj`, c.intermediateSize, d, c.mlpBias);
    lin(`${p}.mlp.up_proj`, c.intermediateSize, d, c.mlpBias);
    lin(`${p}.mlp.down_proj`, d, c.intermediateSize, c.mlpBias);
  }
  specs.push({ name: 'model.norm.weight', hfShape: [d], kind: 'norm' });
  if (!c.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', hfShape: [c.vocabSize, d], kind: 'table' });
  return specs;
}

/** Module name (PEFT's) of a projection, e.g. `model.layers.3.mlp.up_proj`. */
export function projectionModule(layer: number, proj: ProjectionName): string {
  const group = proj === 'gate_proj' || proj === 'up_proj' || proj === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${group}.${proj}`;
}

/**
 * Adds to a projection's output. LoRA installs one; `module` is PEFT's module name and
 * `base` the frozen projection's output for `x`.
 */
export type ProjectionHook = (module: string, x: tf.Tensor, base: tf.Tensor, training: boolean) => tf.Tensor;

export interface ForwardInput {
  /** Token ids [B, T] (int32); or give inputsEmbeds. */
  inputIds?: tf.Tensor2D | number[][];
  /** Input embeddings [B, T, D], e.g. text embeddings with injected pseudo tokens. */
  inputsEmbeds?: tf.Tensor3D;
  /** [B, T] 1 for real tokens, 0 for padding (default all ones). */
  attentionMask?: MaskLike;
  /** Rotary positions [B·T] row-major (default 0..T-1 on every row, as HF without position_ids). */
  positionIds?: ArrayLike<number>;
  /** Enables dropout in hooks such as LoRA. */
  training?: boolean;
}

export class Decoder {
  /** Hook that LoRA installs on projections; null for the plain model. */
  projectionHook: ProjectionHook | null = null;
  private lmHeadT: tf.Tensor2D | null = null;

  /** `params` maps HF names to variables (linear weights [in, out]). */
  constructor(
    readonly config: DecoderConfig,
    readonly params: Map<string, tf.Variable>,
  ) {}

  /** A freshly initialised model (normal(0, 0.02) weights, unit norms, zero biases). */
  static random(config: DecoderConfig, seed: number, opts: { std?: number; trainable?: boolean } = {}): Decoder {
    const rng = seedrandom(String(seed));
    const std = opts.std ?? 0.02;
    const params = new Map<string, tf.Variable>();
    for (const s of paramSpecs(config)) {
      const n = s.hfShape.reduce((p, d) => p * d, 1);
      const v = new Float32Array(n);
      if (s.kind === 'norm') v.fill(1);
      else if (s.kind !== 'bias') for (let i = 0; i < n; i++) v[i] = std * gaussian(rng);
      const shape = s.kind === 'linear' ? [s.hfShape[1]!, s.hfShape[0]!] : s.hfShape;
      params.set(s.name, tf.variable(tf.tensor(v, shape), opts.trainable ?? true));
    }
    return new Decoder(config, params);
  }

  param(name: string): tf.Variable {
    const p = this.params.get(name);
    if (p === undefined) throw new Error(`decoder has no parameter '${name}'`);
    return p;
  }

  /** Embedding rows for ids [B, T] → [B, T, D]. */
  embed(ids: tf.Tensor | number[][]): tf.Tensor3D {
    return tf.tidy(() => {
      const t = ids instanceof tf.Tensor ? tf.cast(ids, 'int32') : tf.tensor2d(ids, undefined, 'int32');
      return embeddingLookup(this.param('model.embed_tokens.weight') as tf.Tensor2D, t) as tf.Tensor3D;
    });
  }

  /** Final hidden states [B, T, D] (after the last RMSNorm). */
  forward(input: ForwardInput): tf.Tensor3D {
    const c = this.config;
    return tf.tidy(() => {
      let x: tf.Tensor3D;
      if (input.inputsEmbeds !== undefined) x = input.inputsEmbeds;
      else if (input.inputIds !== undefined) x = this.embed(input.inputIds);
      else throw new Error('forward needs inputIds or inputsEmbeds');
      const [b, t] = x.shape;
      const mask = input.attentionMask ?? { data: new Float32Array(b * t).fill(1), batch: b, length: t };
      const bias = attentionBias(mask, true); // [B, 1, T, T]
      if (bias.shape[0] !== b || bias.shape[2] !== t) throw new Error(`attention mask is [${bias.shape[0]}, ${bias.shape[2]}] but the input is [${b}, ${t}]`);
      const positions = input.positionIds ?? defaultPositions(b, t);
      const { cos, sin } = ropeTables(positions, b, c.headDim, c.ropeTheta);
      const training = input.training ?? false;
      for (let l = 0; l < c.numLayers; l++) x = this.layer(l, x, bias, cos, sin, training);
      return rmsNorm(x, this.param('model.norm.weight') as tf.Tensor1D, c.rmsNormEps) as tf.Tensor3D;
    });
  }

  private proj(layer: number, name: ProjectionName, x: tf.Tensor, training: boolean): tf.Tensor {
    const module = projectionModule(layer, name);
    const w = this.param(`${module}.weight`) as tf.Tensor2D;
    const b = this.params.get(`${module}.bias`) as tf.Tensor1D | undefined;
    const y = linear(x, w, b);
    return this.projectionHook === null ? y : this.projectionHook(module, x, y, training);
  }

  private layer(l: number, x: tf.Tensor3D, bias: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D, training: boolean): tf.Tensor3D {
    const c = this.config;
    const p = `model.layers.${l}`;
    const h = rmsNorm(x, this.param(`${p}.input_layernorm.weight`) as tf.Tensor1D, c.rmsNormEps); // [B, T, D]
    let q = splitHeads(this.proj(l, 'q_proj', h, training), c.numHeads); // [B, H, T, hd]
    let k = splitHeads(this.proj(l, 'k_proj', h, training), c.numKvHeads); // [B, KV, T, hd]
    const v = splitHeads(this.proj(l, 'v_proj', h, training), c.numKvHeads);
    if (c.qkNorm) {
      q = rmsNorm(q, this.param(`${p}.self_attn.q_norm.weight`) as tf.Tensor1D, c.rmsNormEps) as tf.Tensor4D;
      k = rmsNorm(k, this.param(`${p}.self_attn.k_norm.weight`) as tf.Tensor1D, c.rmsNormEps) as tf.Tensor4D;
    }
    const a = attentionMerged(rope(q, cos, sin), rope(k, cos, sin), v, bias); // [B, T, H·hd]
    const x1 = tf.add(x, this.proj(l, 'o_proj', a, training));
    const h2 = rmsNorm(x1, this.param(`${p}.post_attention_layernorm.weight`) as tf.Tensor1D, c.rmsNormEps);
    const m = swiGlu(this.proj(l, 'gate_proj', h2, training), this.proj(l, 'up_proj', h2, training));
    return tf.add(x1, this.proj(l, 'down_proj', m, training)) as tf.Tensor3D;
  }

  /** The output table [V, D] (embed_tokens when tied). */
  lmHead(): tf.Variable {
    return this.config.tieWordEmbeddings ? this.param('model.embed_tokens.weight') : this.param('lm_head.weight');
  }

  /**
   * Logits over `vocabIds` only (e.g. the answer tokens): hidden [..., D] → [..., K].
   * Gathering K rows keeps training cheap when the vocabulary has 150k entries.
   */
  logitsFor(hidden: tf.Tensor, vocabIds: ArrayLike<number>): tf.Tensor {
    const v = this.config.vocabSize;
    for (let i = 0; i < vocabIds.length; i++) {
      const id = vocabIds[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= v) throw new Error(`logitsFor: vocabulary id ${id} at index ${i} outside [0, ${v})`);
    }
    const head = this.lmHead();
    return tf.tidy(() => {
      const rows = tf.gather(head, tf.tensor1d(Int32Array.from(vocabIds), 'int32')); // [K, D]
      return linear(hidden, tf.transpose(rows) as tf.Tensor2D, undefined, !head.trainable);
    });
  }

  /** Logits over the whole vocabulary: hidden [..., D] → [..., V]. */
  logits(hidden: tf.Tensor): tf.Tensor {
    const head = this.lmHead();
    if (head.trainable) return tf.tidy(() => linear(hidden, tf.transpose(head) as tf.Tensor2D));
    // A frozen head's transpose is cached: at V=150k it costs more than the product.
    if (this.lmHeadT === null) this.lmHeadT = tf.keep(tf.transpose(head) as tf.Tensor2D);
    return linear(hidden, this.lmHeadT, undefined, true);
  }

  /** Marks every base parameter (non-)trainable; LoRA freezes the base this way. */
  setTrainable(trainable: boolean): void {
    for (const p of this.params.values()) p.trainable = trainable;
    this.invalidateCaches();
  }

  /** Call after changing parameter values in place (e.g. merging adapters). */
  invalidateCaches(): void {
    this.lmHeadT?.dispose();
    this.lmHeadT = null;
  }

  /** The trainable base parameters (none once frozen). */
  trainableVariables(): tf.Variable[] {
    return [...this.params.values()].filter((p) => p.trainable);
  }

  dispose(): void {
    this.invalidateCaches();
    for (const p of this.params.values()) p.dispose();
    this.params.clear();
  }
}

function gaussian(rng: () => number): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
