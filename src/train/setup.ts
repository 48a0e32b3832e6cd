/**
 * Builds everything a training or evaluation run needs from an experiment config: the
 * backend, the dataset (generated/imported on first use), the LLM (the built-in one
 * pretrained on first use), tokenizer, answer grammar, prompt, LoRA and the EGMF model.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { EgmfError } from '../errors.ts';
import type { ExperimentConfig } from '../config/experiment.ts';
import { GraphCapture, initBackend } from '../models/backend/index.ts';
import type { BackendInfo } from '../models/backend/index.ts';
import { loadDecoder, loadTokenizer, LoraModel } from '../models/llm/index.ts';
import type { Decoder } from '../models/llm/index.ts';
import { resolveLlm } from './pretrain/index.ts';
import { AnswerGrammar, buildPromptParts, EgmfModel, grammarTokenizer } from '../models/egmf/index.ts';
import type { AnswerTask, TextTokenizer } from '../models/egmf/index.ts';
import { openLoader } from '../data/loader.ts';
import type { BatchLoader, LoaderOptions } from '../data/loader.ts';
import type { DatasetMeta, SplitName } from '../data/schema.ts';
import { resolveDataset } from './data-source.ts';
import type { ResolvedData } from './data-source.ts';

export interface Setup {
  cfg: ExperimentConfig;
  backend: BackendInfo;
  data: ResolvedData;
  meta: DatasetMeta;
  llmDir: string;
  decoder: Decoder;
  lora: LoraModel | null;
  tokenizer: TextTokenizer;
  grammar: AnswerGrammar;
  model: EgmfModel;
  loaders: Partial<Record<SplitName, BatchLoader>>;
  /** Trainable variables by stable name (fusion params, LoRA A/B). */
  variables: Map<string, tf.Variable>;
}

export interface SetupOptions {
  say?: (msg: string) => void;
  /** Seed of this run (overrides cfg.seed, e.g. one of cfg.seeds). */
  seed?: number;
  /** Build without the training loader (evaluation only). */
  evalOnly?: boolean;
}

export async function buildSetup(cfg: ExperimentConfig, o: SetupOptions = {}): Promise<Setup> {
  const say = o.say ?? (() => undefined);
  const seed = o.seed ?? cfg.seed;
  const backend = await initBackend(cfg.backend, cfg.threads > 0 ? { threads: cfg.threads } : {});
  const data = await resolveDataset(cfg, say);
  const loaders: Partial<Record<SplitName, BatchLoader>> = {};
  const common = evalLoaderOptions(cfg, seed);
  // Roles → split files (a release without a train split can train on another one).
  const roles: [SplitName, SplitName | 'none'][] = [['train', cfg.data.train_split], ['valid', cfg.data.valid_split], ['test', cfg.data.test_split]];
  for (const [role, file] of roles) {
    if (file === 'none' || (role === 'train' && o.evalOnly)) continue;
    const path = join(data.dir, `${file}.arrow`);
    if (!existsSync(path)) {
      if (role === 'test' && file === 'test') continue;
      throw new EgmfError(`missing ${file}.arrow (the ${role} split)`, { file: data.dir, key: `data.${role}_split` });
    }
    loaders[role] = openLoader(path, { ...common, ...(role === 'train' ? { batchSize: cfg.train.batch_size } : {}), shuffle: role === 'train', bucket: role === 'train' && cfg.data.bucket ? 4 : 0 });
  }
  const meta = (loaders.valid ?? loaders.train)!.meta;
  checkModalities(cfg, meta);

  const llmDir = await resolveLlm(cfg.llm.path, { pretrainSteps: cfg.llm.pretrain_steps, textFiles: llmTextFiles(cfg, data.dir), say });
  const decoder = loadDecoder(llmDir);
  // The model's own end-of-text (config.json) ends answers: it is the separator the LLM was
  // trained on, while tokenizer_config.json may name a chat token instead (Qwen3: <|im_end|>).
  const cfgEos = decoder.config.eosTokenId;
  const eos = Array.isArray(cfgEos) ? cfgEos[0] : cfgEos ?? undefined;
  const tokenizer: TextTokenizer = grammarTokenizer(loadTokenizer(llmDir), eos, join(llmDir, 'tokenizer_config.json'));

  const task: AnswerTask = meta.task === 'classification'
    ? { kind: 'classification', labelNames: meta.labelNames!, target: cfg.model.target }
    : { kind: 'regression', range: meta.labelRange! };
  const grammar = new AnswerGrammar(task, tokenizer);
  const lang = cfg.model.prompt.language === 'auto' ? meta.language : cfg.model.prompt.language;
  const prompt = buildPromptParts(tokenizer, lang, task, cfg.model.prompt.template);

  let lora: LoraModel | null = null;
  // A linear head never runs the LLM, so adapters on it would have nothing to learn from.
  if (cfg.llm.lora.enabled && cfg.model.head === 'llm') {
    lora = new LoraModel(decoder);
    lora.addAdapter('default', {
      r: cfg.llm.lora.rank, alpha: cfg.llm.lora.alpha, dropout: cfg.llm.lora.dropout,
      targetModules: cfg.llm.lora.targets, baseModelNameOrPath: cfg.llm.path,
    }, { seed });
  }
  const model = new EgmfModel({
    model: cfg.model,
    llm: decoder,
    llmTrainable: () => lora?.trainableVariables() ?? [],
    tokenizer,
    grammar,
    prompt,
    features: { audio: meta.audioDim, vision: meta.visionDim },
    maxTextTokens: cfg.data.max_text_tokens,
    ...(cfg.data.context > 0 ? { maxContextTokens: cfg.data.max_context_tokens } : {}),
    seed,
    padToMultipleOf: cfg.data.pad_to_multiple_of,
    // Evaluation's first decoding step as a captured graph, like the training step.
    regions: cfg.graph ? GraphCapture.forCurrentBackend() : null,
  });
  const variables = namedVariables(model, lora);
  return { cfg, backend, data, meta, llmDir, decoder, lora, tokenizer, grammar, model, loaders, variables };
}

/**
 * Loader options of a run's evaluation splits (batch size, frame caps, shortening): also
 * what another dataset's split is opened with to evaluate the run on it.
 */
/**
 * The extra pretraining text of the built-in LLM (`llm.pretrain_train_text`): the training
 * split's Arrow file in the resolved dataset folder, or none.
 */
export function llmTextFiles(cfg: ExperimentConfig, dataDir: string): string[] {
  if (!cfg.llm.pretrain_train_text) return [];
  const path = join(dataDir, `${cfg.data.train_split}.arrow`);
  if (!existsSync(path)) throw new EgmfError(`missing ${cfg.data.train_split}.arrow, the training split the LLM pretrains on`, { file: dataDir, key: 'llm.pretrain_train_text' });
  return [path];
}

export function evalLoaderOptions(cfg: ExperimentConfig, seed: number = cfg.seed): LoaderOptions {
  return {
    batchSize: cfg.train.eval_batch_size ?? cfg.train.batch_size,
    seed,
    maxLen: { audio: cfg.data.max_audio_len, vision: cfg.data.max_vision_len },
    shorten: cfg.data.shorten,
    padToMultipleOf: cfg.data.pad_to_multiple_of,
    ...(cfg.data.context > 0 ? { context: cfg.data.context } : {}),
  };
}

function checkModalities(cfg: ExperimentConfig, meta: DatasetMeta): void {
  for (const m of cfg.model.modalities) {
    if (m === 'audio' && meta.audioDim === 0) {
      throw new EgmfError(`dataset '${meta.dataset}' has no audio features; use model.modalities=[text] (or without audio)`, { key: 'model.modalities' });
    }
    if (m === 'vision' && meta.visionDim === 0) {
      throw new EgmfError(`dataset '${meta.dataset}' has no vision features; use model.modalities=[text] (or without vision)`, { key: 'model.modalities' });
    }
  }
}

/** Stable names for every trainable variable: checkpoints and the optimiser key on them. */
function namedVariables(model: EgmfModel, lora: LoraModel | null): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [name, v] of model.fusion.params.vars) out.set(name, v);
  if (lora) {
    for (const name of lora.adapterNames()) {
      for (const [module, w] of lora.adapter(name).modules) {
        out.set(`lora.${name}.${module}.A`, w.A);
        out.set(`lora.${name}.${module}.B`, w.B);
      }
    }
  }
  const expected = model.trainableVariables().length;
  if (out.size !== expected) throw new Error(`named ${out.size} trainable variables but the model has ${expected}`);
  return out;
}

/** Releases tensors held by a setup. */
export function disposeSetup(s: Setup): void {
  s.model.dispose();
  s.lora?.dispose();
  s.decoder.dispose();
}
