/**
 * The experiment config: one typed object for data, model, LLM, training and tracking,
 * read from `experiments/*.yaml`, overridden by `--set key=value`, validated where it
 * enters (unknown keys and bad values are errors naming the key).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { EgmfError } from '../errors.ts';
import { applySets, fieldAt, leafPaths, validateObject } from './spec.ts';
import type { FieldSpec, ObjectSpec } from './spec.ts';
import type { SplitName } from '../data/schema.ts';

export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];
export const MODALITIES = ['text', 'audio', 'vision'] as const;
export type Modality = (typeof MODALITIES)[number];

const int = (d: number, min: number, doc: string, max?: number): FieldSpec => ({ kind: 'number', int: true, default: d, min, max, doc });
const num = (d: number, min: number, doc: string, max?: number): FieldSpec => ({ kind: 'number', default: d, min, max, doc });

const expertCommon = (width: number, depth: number): Record<string, FieldSpec> => ({
  enabled: { kind: 'boolean', default: true, doc: 'Whether experts of this kind take part' },
  count: int(1, 1, 'Number of experts of this kind (each with its own weights)', 8),
  width: int(width, 4, 'Hidden width of each expert of this kind', 4096),
  depth: int(depth, 1, 'Layers per expert', 12),
});

export const EXPERIMENT_SPEC: ObjectSpec = {
  kind: 'object',
  doc: 'An EGMF experiment',
  fields: {
    name: { kind: 'string', default: 'egmf', doc: 'Run name prefix', nonEmpty: true },
    seed: int(1111, 0, 'Random seed for initialisation, shuffling and dropout'),
    seeds: { kind: 'list', of: 'int', default: [], doc: 'Run once per seed and report the mean (the paper uses 1111..5555); empty = just `seed`', nonNegative: true },
    backend: { kind: 'enum', values: ['auto', 'wasm', 'cpu', 'tensorflow'], default: 'auto', doc: 'TensorFlow.js backend' },
    threads: int(0, 0, 'Threads for wasm (XNNPACK) or tensorflow (intra-op); 0 = the default: half the cores (at most 4) on 4 or more, else 1', 64),
    graph: { kind: 'boolean', default: true, doc: 'tensorflow backend on a CPU: run each training step (forward and backward) as one captured TensorFlow graph instead of ~2,100 eager ops, and once a batch shape has been seen twice, only its forward pass in JavaScript; the same ops, about a third of the eager step time. false = eager' },
    data: {
      kind: 'object',
      doc: 'Which dataset and how batches are made',
      fields: {
        dataset: { kind: 'string', default: 'meld', doc: 'Dataset name (meld, cherma, mosei, sims-v2, cped, or an imported one)', nonEmpty: true },
        source: { kind: 'enum', values: ['synthetic', 'arrow', 'meld-csv', 'cped-csv'], default: 'arrow', doc: 'synthetic = generated on first use; arrow = a folder of <split>.arrow; *-csv = imported on first use' },
        root: { kind: 'string', nullable: true, doc: 'Folder of the dataset (Arrow splits or source CSVs); default: the cache' },
        scale: num(0.03, 0, 'Synthetic suite size relative to the real dataset', 1),
        synthetic_seed: int(7, 0, 'Seed of the synthetic generator'),
        max_audio_len: int(64, 1, 'Audio frames kept per sample (see shorten)'),
        max_vision_len: int(32, 1, 'Vision frames kept per sample (see shorten)'),
        shorten: { kind: 'enum', values: ['truncate', 'pool'], default: 'truncate', doc: 'Audio/vision longer than max_*_len: truncate = keep the first frames; pool = average runs of frames, keeping the whole utterance aligned in time' },
        max_text_tokens: int(48, 4, 'Text tokens kept per sample'),
        context: int(0, 0, "Dialogue context: how many of the utterances before each sample in its dialogue (same dialogue_id, earlier utterance_index, same split) the text encoder reads before the utterance; 0 = the utterance alone", 64),
        max_context_tokens: int(48, 1, 'Context tokens kept per sample (the most recent ones)'),
        bucket: { kind: 'boolean', default: false, doc: 'Length bucketing of batches' },
        pad_to_multiple_of: int(8, 1, "Pad each batch's audio, vision, text tokens and LLM input to a multiple of this many positions (masked, so values keep), as Hugging Face collators' pad_to_multiple_of: batches fall into a few shapes, and the tensorflow backend captures one graph per shape instead of one per batch length; 1 = to the batch's longest"),
        limit_train: { kind: 'number', int: true, min: 1, nullable: true, doc: 'Use only the first N training samples (after a seeded shuffle)' },
        limit_eval: { kind: 'number', int: true, min: 1, nullable: true, doc: 'Score only the first N validation/test samples (whole batches; smoke runs such as reproduce --quick; baselines still use whole splits)' },
        train_split: { kind: 'enum', values: ['train', 'valid', 'test'], default: 'train', doc: 'Split file trained on (e.g. test when a release lacks train)' },
        valid_split: { kind: 'enum', values: ['train', 'valid', 'test'], default: 'valid', doc: 'Split file used for early stopping' },
        test_split: { kind: 'enum', values: ['train', 'valid', 'test', 'none'], default: 'test', doc: 'Split file evaluated at the end (none = skip)' },
      },
    },
    model: {
      kind: 'object',
      doc: 'The EGMF fusion network',
      fields: {
        width: int(64, 4, 'Common width the modality encoders project to', 4096),
        dropout: num(0.1, 0, 'Dropout in encoders and experts', 0.9),
        modalities: { kind: 'list', of: 'string', allowed: MODALITIES, default: ['text', 'audio', 'vision'], minItems: 1, doc: 'Modalities fed to the experts (text-only ablation: [text])' },
        experts: {
          kind: 'object',
          doc: 'The three expert kinds',
          fields: {
            local: {
              kind: 'object', doc: 'Fine-grained local expert: multi-kernel temporal convolutions per modality',
              fields: { ...expertCommon(64, 1), kernels: { kind: 'list', of: 'int', default: [3, 5], minItems: 1, positive: true, doc: 'Temporal kernel sizes' } },
            },
            semantic: {
              kind: 'object', doc: 'Semantic correlation expert: cross-modal attention',
              fields: { ...expertCommon(64, 1), heads: int(4, 1, 'Attention heads', 64) },
            },
            global: {
              kind: 'object', doc: 'Global context expert: encoder over the joint sequence',
              fields: {
                ...expertCommon(64, 1),
                heads: int(4, 1, 'Attention heads', 64),
                kind: { kind: 'enum', values: ['transformer', 'gru'], default: 'transformer', doc: 'Transformer encoder or a recurrent (GRU) encoder' },
              },
            },
          },
        },
        gating: {
          kind: 'object',
          doc: 'Hierarchical dynamic gating',
          fields: {
            depth: int(2, 1, '1 = one flat gate over experts; 2 = modality gates within experts, then a gate over experts; 3 = also a gate over expert kinds', 3),
            temperature: { kind: 'number', default: 1, min: 0, exclusiveMin: true, doc: 'Softmax temperature of the gates' },
            top_k: int(0, 0, 'Keep only the k largest expert weights (0 = dense)'),
            balance_weight: num(0.01, 0, 'Weight of the load-balancing loss'),
            expert_norm: { kind: 'boolean', default: true, doc: "LayerNorm on each expert's outputs before the gate, so the experts enter on one scale and the gate weights are their shares" },
          },
        },
        positions: { kind: 'enum', values: ['index', 'time'], default: 'index', doc: 'Audio/vision positions: index = frame number; time = normalised time in the utterance, so frames of different rates line up' },
        pseudo_tokens: int(4, 0, 'Number of pseudo tokens injected into the LLM (0 = none: the LLM answers from the prompt alone, the fused vector reaching nothing but the probe; an ablation)', 64),
        head: { kind: 'enum', values: ['llm', 'linear'], default: 'llm', doc: "Where answers come from: llm = the decoder LLM writes them from the pseudo tokens (EGMF); linear = a linear head on the fused vector, the LLM never run (the same fusion network's baseline)" },
        aux_probe: {
          kind: 'object',
          doc: 'Auxiliary probe: a linear head on the fused vector trained beside the answer loss (CE on classes, L1 on scores); answers still come from the LLM',
          fields: {
            weight: num(1, 0, 'Weight of the probe loss in the total (0 = no probe)'),
          },
        },
        text_offsets: {
          kind: 'object',
          doc: "Learned per-token offsets added to the text encoder's input (the frozen LLM embeddings) for the training split's most frequent tokens, as PEFT trains chosen token rows; the LLM's own embeddings, prompt and output layer stay frozen",
          fields: {
            vocab: int(0, 0, 'Tokens that get an offset (0 = off)', 262144),
            min_count: int(2, 1, 'Fewest occurrences in the training split for a token (or a pair) to get one'),
            pairs: int(0, 0, "Adjacent token pairs (bigrams) that get an offset too, the training split's most frequent (0 = tokens only); a pair's row is added at its first token", 262144),
            lr_scale: { kind: 'number', default: 1, min: 0, exclusiveMin: true, doc: "Multiplier on train.lr for the offsets (their own parameter group): a row moves only in the steps whose batch holds its token, so rare tokens barely move at the network's rate" },
          },
        },
        prompt: {
          kind: 'object',
          doc: 'Prompt conditioning',
          fields: {
            template: { kind: 'string', nullable: true, doc: 'Custom task prompt ({labels} and {range} are filled in); default: the bilingual built-in one' },
            language: { kind: 'enum', values: ['auto', 'en', 'zh'], default: 'auto', doc: 'Prompt and marker language (auto = the dataset language)' },
          },
        },
        target: { kind: 'enum', values: ['index', 'word'], default: 'index', doc: 'Classification target text: class index digit or label word' },
      },
    },
    llm: {
      kind: 'object',
      doc: 'The decoder LLM and its adapters',
      fields: {
        path: { kind: 'string', default: 'builtin:tiny-qwen3', doc: 'Hugging Face checkpoint folder, or builtin:tiny-qwen3 (pretrained on first use)', nonEmpty: true },
        pretrain_steps: int(300, 1, 'Steps when the built-in LLM must be pretrained'),
        pretrain_train_text: { kind: 'boolean', default: false, doc: "Domain-adaptive pretraining: add the training split's text (data.train_split's whole file; never valid or test) to the built-in LLM's pretraining corpus; pretrained once per split content and cached" },
        lora: {
          kind: 'object',
          doc: 'LoRA adapters on the frozen LLM',
          fields: {
            enabled: { kind: 'boolean', default: true, doc: 'Train LoRA adapters' },
            rank: int(8, 1, 'LoRA rank r', 1024),
            alpha: num(16, 0, 'LoRA alpha (scaling = alpha / r)'),
            dropout: num(0.05, 0, 'LoRA dropout', 0.9),
            targets: { kind: 'list', of: 'string', allowed: LORA_TARGETS, default: ['q_proj', 'v_proj'], minItems: 1, doc: 'Projections that get adapters' },
          },
        },
      },
    },
    train: {
      kind: 'object',
      doc: 'Optimisation',
      fields: {
        epochs: int(10, 1, 'Maximum epochs'),
        batch_size: int(16, 1, 'Samples per batch', 4096),
        eval_batch_size: { kind: 'number', int: true, min: 1, max: 4096, nullable: true, doc: 'Samples per batch when evaluating (validation, test, egmf eval; default train.batch_size): no gradients, so a larger batch costs little memory and saves per-batch work, with the same predictions as any other size' },
        lr: { kind: 'number', default: 1e-3, min: 0, exclusiveMin: true, doc: 'Peak learning rate (AdamW)' },
        weight_decay: num(0.01, 0, 'AdamW decoupled weight decay'),
        adam_eps: { kind: 'number', default: 1e-4, min: 0, exclusiveMin: true, doc: 'AdamW epsilon (MSE-Adapter protocol: 1e-4)' },
        warmup_ratio: num(0.1, 0, 'Share of steps spent warming up', 1),
        grad_clip: num(1, 0, 'Global gradient-norm clip (0 = off)'),
        ema: num(0, 0, 'Exponential moving average of the weights, decay per step (e.g. 0.999; 0 = off): validation, the best checkpoint and the scores use the averaged weights', 0.99999),
        class_weights: { kind: 'enum', values: ['none', 'balanced', 'sqrt'], default: 'none', doc: "Classification loss weight per class from the training samples' counts: balanced = 1/count (scikit-learn's), sqrt = 1/sqrt(count); scaled so the mean weight over samples is 1" },
        patience: int(8, 1, 'Early stopping: epochs without improvement of the validation metric'),
        metric: { kind: 'string', nullable: true, doc: 'Validation metric for early stopping (default: weighted_f1 or MAE)' },
        goal: { kind: 'enum', values: ['auto', 'max', 'min'], default: 'auto', doc: 'Direction of the validation metric' },
        log_every: int(10, 1, 'Log train/loss every N steps'),
        checkpoint_every: int(0, 0, 'Also checkpoint every N steps (0 = epoch ends only)'),
        max_steps: { kind: 'number', int: true, min: 1, nullable: true, doc: 'Stop after N optimiser steps' },
      },
    },
    tracking: {
      kind: 'object',
      doc: 'MLflow tracking',
      fields: {
        uri: { kind: 'string', nullable: true, doc: 'Tracking URI (default: MLFLOW_TRACKING_URI, else ./mlruns)' },
        experiment: { kind: 'string', nullable: true, doc: 'Experiment name (default: MLFLOW_EXPERIMENT_NAME, else the config name)' },
      },
    },
  },
};

export interface ExpertKindConfig {
  enabled: boolean;
  count: number;
  width: number;
  depth: number;
}

/** The validated experiment config (field docs live in EXPERIMENT_SPEC). */
export interface ExperimentConfig {
  name: string;
  seed: number;
  seeds: number[];
  backend: 'auto' | 'wasm' | 'cpu' | 'tensorflow';
  threads: number;
  graph: boolean;
  data: {
    dataset: string;
    source: 'synthetic' | 'arrow' | 'meld-csv' | 'cped-csv';
    root: string | null;
    scale: number;
    synthetic_seed: number;
    max_audio_len: number;
    max_vision_len: number;
    shorten: 'truncate' | 'pool';
    max_text_tokens: number;
    context: number;
    max_context_tokens: number;
    bucket: boolean;
    pad_to_multiple_of: number;
    limit_train: number | null;
    limit_eval: number | null;
    train_split: SplitName;
    valid_split: SplitName;
    test_split: SplitName | 'none';
  };
  model: {
    width: number;
    dropout: number;
    modalities: Modality[];
    experts: {
      local: ExpertKindConfig & { kernels: number[] };
      semantic: ExpertKindConfig & { heads: number };
      global: ExpertKindConfig & { heads: number; kind: 'transformer' | 'gru' };
    };
    gating: { depth: number; temperature: number; top_k: number; balance_weight: number; expert_norm: boolean };
    positions: 'index' | 'time';
    pseudo_tokens: number;
    head: 'llm' | 'linear';
    aux_probe: { weight: number };
    text_offsets: { vocab: number; min_count: number; pairs: number; lr_scale: number };
    prompt: { template: string | null; language: 'auto' | 'en' | 'zh' };
    target: 'index' | 'word';
  };
  llm: {
    path: string;
    pretrain_steps: number;
    pretrain_train_text: boolean;
    lora: { enabled: boolean; rank: number; alpha: number; dropout: number; targets: LoraTarget[] };
  };
  train: {
    epochs: number;
    batch_size: number;
    eval_batch_size: number | null;
    lr: number;
    weight_decay: number;
    adam_eps: number;
    warmup_ratio: number;
    grad_clip: number;
    ema: number;
    class_weights: 'none' | 'balanced' | 'sqrt';
    patience: number;
    metric: string | null;
    goal: 'auto' | 'max' | 'min';
    log_every: number;
    checkpoint_every: number;
    max_steps: number | null;
  };
  tracking: { uri: string | null; experiment: string | null };
}

/** Validates a raw config object (e.g. parsed YAML with overrides applied). */
export function validateExperiment(raw: unknown, file?: string): ExperimentConfig {
  const cfg = validateObject(EXPERIMENT_SPEC, raw, '', file) as unknown as ExperimentConfig;
  const ex = cfg.model.experts;
  if (!ex.local.enabled && !ex.semantic.enabled && !ex.global.enabled) {
    throw new EgmfError('at least one expert kind must be enabled', { file, key: 'model.experts' });
  }
  if (ex.semantic.enabled && cfg.model.modalities.length < 2) {
    throw new EgmfError('the semantic correlation expert needs at least two modalities; disable it for a single modality', { file, key: 'model.experts.semantic.enabled' });
  }
  for (const kind of ['semantic', 'global'] as const) {
    if (ex[kind].enabled && ex[kind].width % ex[kind].heads !== 0) {
      throw new EgmfError(`width ${ex[kind].width} is not divisible by heads ${ex[kind].heads}`, { file, key: `model.experts.${kind}.heads` });
    }
  }
  const expertCount = (['local', 'semantic', 'global'] as const).filter((k) => ex[k].enabled).reduce((n, k) => n + ex[k].count, 0);
  if (cfg.model.gating.top_k > expertCount) {
    throw new EgmfError(`top_k ${cfg.model.gating.top_k} exceeds the ${expertCount} enabled experts`, { file, key: 'model.gating.top_k' });
  }
  const d = cfg.data;
  if (d.train_split === d.valid_split || d.train_split === d.test_split) {
    throw new EgmfError(`training on '${d.train_split}' while also validating or testing on it`, { file, key: 'data.train_split' });
  }
  if (cfg.llm.pretrain_train_text && !cfg.llm.path.startsWith('builtin:')) {
    throw new EgmfError(`only the built-in LLM is pretrained here; '${cfg.llm.path}' is a checkpoint folder (set pretrain_train_text to false)`, { file, key: 'llm.pretrain_train_text' });
  }
  return cfg;
}

/** Reads an experiment YAML, applies `--set` overrides, validates. Relative `data.root` is resolved against the file. */
export function loadExperiment(path: string, sets: readonly string[] = []): ExperimentConfig {
  if (!existsSync(path)) throw new EgmfError('experiment file not found', { file: path });
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new EgmfError(`not valid YAML: ${(e as Error).message}`, { file: path }, { cause: e });
  }
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new EgmfError('must be a mapping at the top level', { file: path });
  const withSets = applySets(EXPERIMENT_SPEC, raw as Record<string, unknown>, sets);
  const cfg = validateExperiment(withSets, path);
  if (cfg.data.root !== null && !sets.some((s) => s.startsWith('data.root='))) {
    cfg.data.root = resolve(dirname(path), cfg.data.root);
  }
  return cfg;
}

/** Every settable config key; sweeps use it to reject unknown parameter paths. */
export const EXPERIMENT_PATHS: readonly string[] = leafPaths(EXPERIMENT_SPEC);

/** Undefined when `path` is a settable key, else a reason (for sweep spec validation). */
export function checkExperimentPath(path: string): string | undefined {
  const f = fieldAt(EXPERIMENT_SPEC, path);
  if (f === undefined) return `'${path}' is not an experiment config key`;
  if (f.kind === 'object') return `'${path}' is a section, not a single key`;
  return undefined;
}
