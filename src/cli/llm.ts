import type { Argv, CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EgmfError } from '../errors.ts';
import { initBackend, parseBackendName } from '../models/backend/index.ts';
import { checkCheckpointDir, checkOutDir, parameterCount, TINY_SHAPE } from '../models/llm/builtin.ts';
import { pretrainSummary, pretrainTinyQwen3 } from '../train/pretrain/index.ts';
import { loadDecoderConfig, readJsonFile } from '../models/llm/checkpoint.ts';
import { DEFAULT_PRETRAIN_STEPS } from '../train/pretrain/index.ts';
import { SafetensorsFile } from '../models/llm/safetensors.ts';

interface PretrainArgs {
  out: string;
  steps: number;
  seed: number;
  backend: string;
  text: string[];
  json: boolean;
}

/** The safetensors files of a checkpoint: model.safetensors, or the shards its index names. */
function weightFiles(dir: string): string[] {
  const index = join(dir, 'model.safetensors.index.json');
  if (!existsSync(index)) return [join(dir, 'model.safetensors')];
  const j = readJsonFile(index) as { weight_map?: Record<string, unknown> } | null;
  const map = j?.weight_map;
  if (map === null || typeof map !== 'object') throw new EgmfError('index has no weight_map object', { file: index, key: 'weight_map' });
  return [...new Set(Object.values(map).map(String))].sort().map((f) => join(dir, f));
}

function integer(v: unknown, key: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new EgmfError(`must be an integer ≥ ${min}, got ${String(v)}`, { key });
  }
  return v;
}

const pretrainCommand: CommandModule<object, PretrainArgs> = {
  command: 'pretrain',
  describe: 'Pretrain the built-in tiny bilingual Qwen3 (real Qwen3 tokenizer) on the datasets\' text; writes a Hugging Face checkpoint',
  builder: (y: Argv) =>
    y
      .option('out', { type: 'string', demandOption: true, describe: 'New checkpoint folder (config.json, model.safetensors, tokenizer files)' })
      .option('steps', { type: 'number', default: DEFAULT_PRETRAIN_STEPS, describe: 'Optimiser steps (8 sequences of 128 tokens each)' })
      .option('seed', { type: 'number', default: 0, describe: 'Seed of the initialisation, batches and sampled negatives' })
      .option('backend', { type: 'string', default: 'auto', describe: 'auto, wasm, cpu or tensorflow' })
      .option('text', { type: 'string', array: true, default: [] as string[], describe: 'Arrow split file or dataset folder whose text column is added to the synthetic suite\'s (repeatable)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the summary as one JSON object' }) as unknown as Argv<PretrainArgs>,
  handler: async (argv) => {
    const steps = integer(argv.steps, 'steps', 1);
    const seed = integer(argv.seed, 'seed', 0);
    const backend = parseBackendName(argv.backend, { key: 'backend' });
    const out = resolve(argv.out);
    checkOutDir(out);
    for (const t of argv.text) if (!existsSync(t)) throw new EgmfError('text source not found', { file: t });
    const info = await initBackend(backend);
    const r = pretrainTinyQwen3(out, { steps, seed, textDirs: argv.text });
    const summary = { out, ...pretrainSummary(r, info.name) };
    const parameters = parameterCount(r.model.config);
    r.model.dispose();
    if (argv.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      return;
    }
    const f = (x: number) => x.toFixed(3);
    process.stdout.write(
      `pretrained tiny-qwen3 (${parameters.toLocaleString('en-US')} parameters, ${TINY_SHAPE.numLayers} layers × ${TINY_SHAPE.hiddenSize}) in ${r.seconds.toFixed(1)} s on ${info.name}\n` +
        `corpus: ${r.corpus.sentences} sentences, ${r.corpus.tokens} tokens (digest ${r.corpus.digest})\n` +
        `training loss (sampled softmax): ${f(r.startLoss)} → ${f(r.finalLoss)}\n` +
        `held-out loss over ${r.heldout.vocab} ids (${r.heldout.tokens} tokens): ${f(r.heldout.before)} → ${f(r.heldout.after)}\n` +
        `wrote ${out}\n`,
    );
  },
};

const infoCommand: CommandModule<object, { dir: string; json: boolean }> = {
  command: 'info <dir>',
  describe: 'Summarise a Hugging Face checkpoint folder: architecture, sizes, parameter count, dtype',
  builder: (y: Argv) => y.positional('dir', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }) as unknown as Argv<{ dir: string; json: boolean }>,
  handler: (argv) => {
    const dir = argv.dir;
    checkCheckpointDir(dir, { tokenizer: false });
    const c = loadDecoderConfig(dir);
    const dtypes = new Set<string>();
    let stored = 0;
    for (const file of weightFiles(dir)) {
      const f = SafetensorsFile.open(file);
      for (const e of f.entries.values()) {
        dtypes.add(e.dtype);
        stored += e.shape.reduce((p, d) => p * d, 1);
      }
      f.close();
    }
    const pretrain = join(dir, 'egmf_pretrain.json');
    const summary = {
      dir, model_type: c.modelType, architectures: c.raw['architectures'], vocab_size: c.vocabSize,
      hidden_size: c.hiddenSize, layers: c.numLayers, heads: c.numHeads, kv_heads: c.numKvHeads, head_dim: c.headDim,
      intermediate_size: c.intermediateSize, tie_word_embeddings: c.tieWordEmbeddings,
      parameters: parameterCount(c), stored_values: stored, dtype: [...dtypes].sort().join(','),
      tokenizer: existsSync(join(dir, 'tokenizer.json')),
      egmf_pretrain: existsSync(pretrain),
    };
    if (argv.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      return;
    }
    process.stdout.write(
      `${dir}: ${c.modelType} (${String(c.raw['architectures'] ?? '?')}), vocab ${c.vocabSize}, ${c.numLayers} layers, hidden ${c.hiddenSize}, ` +
        `${c.numHeads} heads / ${c.numKvHeads} kv heads of ${c.headDim}, intermediate ${c.intermediateSize}, ` +
        `${c.tieWordEmbeddings ? 'tied' : 'untied'} embeddings\n` +
        `parameters ${summary.parameters.toLocaleString('en-US')}, dtype ${summary.dtype}, ` +
        `${summary.tokenizer ? 'tokenizer.json present' : 'no tokenizer.json'}${summary.egmf_pretrain ? ', pretrained by egmf (egmf_pretrain.json)' : ''}\n`,
    );
  },
};

/** `egmf llm <pretrain|info>`: the built-in tiny LLM and checkpoint folders. */
export const llmCommand: CommandModule = {
  command: 'llm <command>',
  describe: 'Pretrain the built-in tiny bilingual LLM, inspect LLM checkpoints',
  builder: (y: Argv) => y.command(pretrainCommand).command(infoCommand).demandCommand(1, 'Name an llm command (see egmf llm --help).'),
  handler: () => undefined,
};
