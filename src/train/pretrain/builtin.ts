/**
 * Pretraining the built-in tiny Qwen3 as a job: writing the checkpoint atomically, its
 * summary (egmf_pretrain.json), and `resolveLlm`, which turns `builtin:tiny-qwen3` into a
 * cached checkpoint folder, pretraining it on first use. The model itself (shape, config,
 * tokenizer, cache folder) is src/models/llm/builtin.ts.
 *
 *     const dir = await resolveLlm('builtin:tiny-qwen3', { say: console.error }); // pretrains once, then cached
 *     const model = loadDecoder(dir);
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { currentBackend } from '../../models/backend/index.ts';
import {
  BUILTIN_VERSION, builtinLlmDir, checkCheckpointDir, checkOutDir, isBuiltinLlm, isCheckpoint, parameterCount,
  QWEN3_EOS, qwen3Tokenizer, qwen3TokenizerDir, tinyQwen3Config, type TinyShape,
} from '../../models/llm/builtin.ts';
import { saveDecoder } from '../../models/llm/checkpoint.ts';
import { DEFAULT_PRETRAIN_STEPS, pretrain, type PretrainOptions, type PretrainResult } from './pretrain.ts';

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

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

/**
 * Names the content of the extra pretraining text: a digest of the files' bytes, so the
 * cached LLM is reused for the same split wherever it lies and never for changed text.
 */
export function textDigest(files: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    if (!existsSync(f)) throw new EgmfError('pretraining text not found', { file: f, key: 'llm.pretrain_train_text' });
    h.update(readFileSync(f)).update('\0');
  }
  return h.digest('hex').slice(0, 12);
}

/** Seconds a pretraining takes on a quiet 2-core machine (measured; for messages only). */
export function estimatedSeconds(steps: number): number {
  return Math.round(6 + steps * 0.4);
}

/**
 * Turns an LLM reference into a checkpoint folder. `builtin:tiny-qwen3` is pretrained on
 * first use into the cache (env EGMF_CACHE, default ./.egmf-cache); two processes doing
 * it at once both succeed and the later one uses the earlier one's folder. Anything else
 * must be a Hugging Face checkpoint folder. Needs an initialised backend to pretrain
 * (`beforePretraining` runs first when it must, e.g. to start one only then).
 */
export async function resolveLlm(
  path: string,
  opts: { pretrainSteps?: number; textFiles?: string[]; say?: (s: string) => void; beforePretraining?: () => Promise<void> } = {},
): Promise<string> {
  if (isBuiltinLlm(path)) {
    const steps = opts.pretrainSteps ?? DEFAULT_PRETRAIN_STEPS;
    const textFiles = opts.textFiles ?? [];
    const dir = builtinLlmDir(steps, textFiles.length > 0 ? textDigest(textFiles) : undefined);
    if (isCheckpoint(dir)) return dir;
    await opts.beforePretraining?.();
    const extra = textFiles.length > 0 ? `, with the text of ${textFiles.join(', ')},` : '';
    opts.say?.(`built-in LLM not found: pretraining it${extra} (about ${estimatedSeconds(steps)} s${extra === '' ? '' : ' and the longer corpus'}) into ${dir}`);
    const r = pretrain(tinyQwen3Config(), qwen3Tokenizer(), QWEN3_EOS, { steps, seed: 0, textDirs: textFiles });
    const won = writePretrained(r, dir);
    r.model.dispose();
    opts.say?.(won ? `built-in LLM ready: ${dir}` : `built-in LLM was written by another process meanwhile: using ${dir}`);
    return dir;
  }
  checkCheckpointDir(path);
  return path;
}
