/** The decoder's configuration, read from and written back to a Hugging Face `config.json`. */
import { EgmfError } from '../../errors.ts';

export type ModelType = 'qwen2' | 'qwen3' | 'llama';
export const MODEL_TYPES: readonly ModelType[] = ['qwen2', 'qwen3', 'llama'];

export interface DecoderConfig {
  /** Architecture family: decides biases and q/k norms. */
  modelType: ModelType;
  vocabSize: number;
  /** Model width D. */
  hiddenSize: number;
  /** SwiGLU inner width. */
  intermediateSize: number;
  numLayers: number;
  /** Query heads H. */
  numHeads: number;
  /** Key/value heads (grouped-query attention); divides numHeads. */
  numKvHeads: number;
  /** Per-head width; Qwen3 sets it explicitly, otherwise hiddenSize / numHeads. */
  headDim: number;
  rmsNormEps: number;
  /** Rotary base frequency. */
  ropeTheta: number;
  /** lm_head shares embed_tokens' weights. */
  tieWordEmbeddings: boolean;
  /** q/k/v projections have biases (always for Qwen2; `attention_bias` otherwise). */
  qkvBias: boolean;
  /** o_proj has a bias (`attention_bias` for LLaMA/Qwen3; never for Qwen2). */
  oBias: boolean;
  /** gate/up/down have biases (LLaMA `mlp_bias`). */
  mlpBias: boolean;
  /** Qwen3's per-head RMSNorm of queries and keys. */
  qkNorm: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /** The JSON this came from, kept so that saving preserves fields we do not use. */
  raw: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function int(raw: Json, key: string, file: string | undefined, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new EgmfError(`expected a positive integer, got ${JSON.stringify(v)}`, { file, key });
  return v;
}

function num(raw: Json, key: string, file: string | undefined, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new EgmfError(`expected a positive number, got ${JSON.stringify(v)}`, { file, key });
  return v;
}

function bool(raw: Json, key: string, file: string | undefined, fallback: boolean): boolean {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'boolean') throw new EgmfError(`expected true or false, got ${JSON.stringify(v)}`, { file, key });
  return v;
}

function tokenId(raw: Json, key: string, file: string | undefined): number | null {
  const v = raw[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new EgmfError(`expected a token id, got ${JSON.stringify(v)}`, { file, key });
  return v;
}

/** Parses a Hugging Face config.json object; `file` names it in errors. */
export function parseDecoderConfig(raw: unknown, file?: string): DecoderConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new EgmfError('config is not a JSON object', { file });
  const r = raw as Json;
  const modelType = r['model_type'];
  if (typeof modelType !== 'string' || !(MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new EgmfError(`unsupported model_type ${JSON.stringify(modelType)} (supported: ${MODEL_TYPES.join(', ')})`, { file, key: 'model_type' });
  }
  const act = r['hidden_act'] ?? 'silu';
  if (act !== 'silu') throw new EgmfError(`unsupported hidden_act ${JSON.stringify(act)} (only silu)`, { file, key: 'hidden_act' });
  if (r['use_sliding_window'] === true) throw new EgmfError('sliding-window attention is not supported', { file, key: 'use_sliding_window' });
  // transformers >= 5 nests rope settings in rope_parameters; older files use rope_theta/rope_scaling.
  const ropeParams = (r['rope_parameters'] ?? r['rope_scaling'] ?? null) as Json | null;
  const ropeType = ropeParams?.['rope_type'] ?? ropeParams?.['type'] ?? 'default';
  if (ropeType !== 'default') throw new EgmfError(`unsupported rope type ${JSON.stringify(ropeType)} (only default rotary embeddings)`, { file, key: r['rope_parameters'] !== undefined ? 'rope_parameters' : 'rope_scaling' });
  const ropeTheta = num({ rope_theta: r['rope_theta'] ?? ropeParams?.['rope_theta'] }, 'rope_theta', file, 10000);
  const hiddenSize = int(r, 'hidden_size', file);
  const numHeads = int(r, 'num_attention_heads', file);
  const numKvHeads = int(r, 'num_key_value_heads', file, numHeads);
  if (numHeads % numKvHeads !== 0) throw new EgmfError(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`, { file, key: 'num_key_value_heads' });
  const headDim = r['head_dim'] == null ? hiddenSize / numHeads : int(r, 'head_dim', file);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new EgmfError(`head dimension ${headDim} must be an even integer`, { file, key: 'head_dim' });
  const attentionBias = bool(r, 'attention_bias', file, false);
  const eos = r['eos_token_id'];
  if (eos != null && !(typeof eos === 'number' || (Array.isArray(eos) && eos.every((e) => typeof e === 'number')))) {
    throw new EgmfError(`expected a token id or a list of them, got ${JSON.stringify(eos)}`, { file, key: 'eos_token_id' });
  }
  return {
    modelType: modelType as ModelType,
    vocabSize: int(r, 'vocab_size', file),
    hiddenSize,
    intermediateSize: int(r, 'intermediate_size', file),
    numLayers: int(r, 'num_hidden_layers', file),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num(r, 'rms_norm_eps', file, 1e-6),
    ropeTheta,
    tieWordEmbeddings: bool(r, 'tie_word_embeddings', file, false),
    qkvBias: modelType === 'qwen2' ? true : attentionBias,
    oBias: modelType === 'qwen2' ? false : attentionBias,
    mlpBias: modelType === 'llama' ? bool(r, 'mlp_bias', file, false) : false,
    qkNorm: modelType === 'qwen3',
    maxPositionEmbeddings: int(r, 'max_position_embeddings', file, 32768),
    bosTokenId: tokenId(r, 'bos_token_id', file),
    eosTokenId: (eos as number | number[] | null | undefined) ?? null,
    padTokenId: tokenId(r, 'pad_token_id', file),
    raw: { ...r },
  };
}

/** Builds a config from our fields (for models made from scratch). */
export function makeDecoderConfig(c: Partial<Omit<DecoderConfig, 'raw'>> & Pick<DecoderConfig, 'modelType' | 'vocabSize' | 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads'>): DecoderConfig {
  const numKvHeads = c.numKvHeads ?? c.numHeads;
  const headDim = c.headDim ?? c.hiddenSize / c.numHeads;
  const raw: Json = {
    architectures: [{ qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', llama: 'LlamaForCausalLM' }[c.modelType]],
    model_type: c.modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: numKvHeads,
    head_dim: headDim,
    hidden_act: 'silu',
    rms_norm_eps: c.rmsNormEps ?? 1e-6,
    rope_theta: c.ropeTheta ?? 10000,
    tie_word_embeddings: c.tieWordEmbeddings ?? false,
    attention_bias: c.modelType === 'qwen2' ? undefined : (c.qkvBias ?? false),
    mlp_bias: c.modelType === 'llama' ? (c.mlpBias ?? false) : undefined,
    max_position_embeddings: c.maxPositionEmbeddings ?? 2048,
    bos_token_id: c.bosTokenId ?? null,
    eos_token_id: c.eosTokenId ?? null,
    pad_token_id: c.padTokenId ?? null,
  };
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
  return parseDecoderConfig(raw);
}

/** config.json content for saving: the original fields with ours written over them. */
export function configToJson(c: DecoderConfig, dtype: 'float32' | 'bfloat16' | 'float16'): Json {
  const out: Json = { ...c.raw };
  out['vocab_size'] = c.vocabSize;
  out['tie_word_embeddings'] = c.tieWordEmbeddings;
  // Both spellings: transformers 5 reads `dtype`, 4.x `torch_dtype`.
  out['dtype'] = dtype;
  out['torch_dtype'] = dtype;
  return out;
}
