/**
 * The PyTorch reference of the tiny EGMF training step (bench/torch_egmf.py): what the
 * training benchmark compares our step with ("ours / PyTorch"), and a parity check of the
 * whole step (loss, gradient norm, one AdamW update) against an independent implementation.
 *
 *     const ours = await exportTorchReference(dir, { seed: 1111, overrides: ['model.dropout=0', 'llm.lora.dropout=0'] });
 *     const torch = runTorchReference(dir, { mode: 'check' });   // same batch, same weights
 *
 * The setup is built as src/bench/train.ts builds it (experiments/synthetic/meld.yaml on
 * wasm, a decoder of the built-in LLM's shape with seeded random weights). The export folder
 * holds plain safetensors files (read in Python with numpy alone) and meta.json:
 *   weights.safetensors  every trainable variable by its setup name, and the frozen decoder
 *                        as `decoder.<Hugging Face name>`, in our orientation ([in, out]);
 *   batch.safetensors    one training batch as the model sees it: token ids, features,
 *                        masks, labels, the assembled LLM inputs and the answer targets;
 *   after.safetensors    our trainable variables after one step on that batch;
 *   meta.json            the config values the Python side needs, names, shapes, our numbers.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { EgmfError } from '../errors.ts';
import { loadExperiment } from '../config/experiment.ts';
import { initBackend } from '../models/backend/index.ts';
import { Decoder, saveDecoder, writeSafetensors } from '../models/llm/index.ts';
import type { TensorToWrite } from '../models/llm/index.ts';
import { qwen3TokenizerDir, tinyQwen3Config } from '../models/llm/builtin.ts';
import { assembleInputs } from '../models/egmf/assemble.ts';
import { layoutSample } from '../models/egmf/index.ts';
import { buildSetup, disposeSetup } from '../train/setup.ts';
import type { Setup } from '../train/setup.ts';
import { trainStep } from '../train/trainer.ts';
import { AdamW } from '../train/optimizer.ts';
import type { Batch } from '../data/loader.ts';

const REPO = resolve(import.meta.dirname, '..', '..');
const CONFIG = join(REPO, 'experiments', 'synthetic', 'meld.yaml');
export const TORCH_SCRIPT = join(REPO, 'bench', 'torch_egmf.py');
export const TORCH_VERSION = '2.15.0';
/** Bumped whenever the export layout changes; the Python side refuses other versions. */
export const EXPORT_FORMAT = 1;

/** AdamW's defaults (src/train/optimizer.ts) that the trainer does not override. */
const ADAM_BETAS: [number, number] = [0.9, 0.999];

export interface ExportOptions {
  seed: number;
  /** `--set`-style overrides applied after the bench's own (`model.dropout=0`, …). */
  overrides?: string[];
  /** Learning rate of the exported step (default: train.lr, as src/bench/train.ts steps). */
  lr?: number;
}

/** The numbers of one step on the exported batch, as both sides compute them. */
export interface StepNumbers {
  /** Total loss of the step (answer CE + weighted balance + weighted probe). */
  loss: number;
  ce: number;
  balance: number;
  probe: number | null;
  /** Global gradient norm before clipping. */
  grad_norm: number;
  /** Loss on the same batch after the AdamW update. */
  loss_after: number;
}

/** Our own numbers for the exported batch, computed by `trainStep`. */
export interface OurStep extends StepNumbers {
  lr: number;
  batch_size: number;
  /** Whether dropout was off, i.e. the numbers are deterministic and comparable. */
  deterministic: boolean;
}

export async function exportTorchReference(dir: string, o: ExportOptions): Promise<OurStep> {
  const llmDir = mkdtempSync(join(tmpdir(), 'egmf-torchref-llm-'));
  try {
    await initBackend('wasm');
    const decoder = Decoder.random(tinyQwen3Config(), o.seed);
    saveDecoder(decoder, llmDir);
    decoder.dispose();
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(qwen3TokenizerDir(), f), join(llmDir, f));
    const cfg = loadExperiment(CONFIG, ['backend=wasm', `llm.path=${llmDir}`, `seed=${o.seed}`, ...(o.overrides ?? [])]);
    if (cfg.model.text_offsets.vocab > 0) throw new EgmfError('the PyTorch port has no text offsets; set model.text_offsets.vocab=0', { key: 'model.text_offsets.vocab' });
    const setup = await buildSetup(cfg, { seed: o.seed });
    try {
      mkdirSync(dir, { recursive: true });
      const loader = setup.loaders.train!;
      const batch = loader.batch(loader.plan(0)[0]!);
      const lr = o.lr ?? cfg.train.lr;
      writeSafetensors(join(dir, 'weights.safetensors'), weightTensors(setup), { format: 'egmf-torch-reference' });
      writeSafetensors(join(dir, 'batch.safetensors'), batchTensors(setup, batch), { format: 'egmf-torch-reference' });

      const opt = new AdamW(setup.variables, { eps: cfg.train.adam_eps, weightDecay: cfg.train.weight_decay });
      const { loss, gradNorm } = trainStep(setup, opt, batch, lr, 0, cfg.train.grad_clip);
      const stats = setup.model.lastStats!;
      writeSafetensors(join(dir, 'after.safetensors'), trainableTensors(setup), { format: 'egmf-torch-reference' });
      setup.model.setStep(1);
      setup.lora?.setStep(1);
      const after = tf.tidy(() => setup.model.loss(batch, { training: true }).dataSync()[0]!);
      opt.dispose();

      const deterministic = cfg.model.dropout === 0 && (setup.lora === null || cfg.llm.lora.dropout === 0);
      const ours: OurStep = {
        loss, ce: stats.ce, balance: stats.balance, probe: stats.probe ?? null, grad_norm: gradNorm, loss_after: after,
        lr, batch_size: batch.size, deterministic,
      };
      writeFileSync(join(dir, 'meta.json'), `${JSON.stringify(metaOf(setup, batch, lr, ours), null, 2)}\n`);
      return ours;
    } finally {
      disposeSetup(setup);
    }
  } finally {
    rmSync(llmDir, { recursive: true, force: true });
  }
}

function f32(v: tf.Tensor): TensorToWrite {
  return { dtype: 'F32', shape: [...v.shape], data: v.dataSync() as Float32Array };
}

function trainableTensors(s: Setup): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {};
  for (const [name, v] of s.variables) out[name] = f32(v);
  return out;
}

function weightTensors(s: Setup): Record<string, TensorToWrite> {
  const out = trainableTensors(s);
  for (const [name, v] of s.decoder.params) out[`decoder.${name}`] = f32(v);
  return out;
}

/** The batch as the model consumes it, with the tokenisation and the LLM layout done here. */
function batchTensors(s: Setup, batch: Batch): Record<string, TensorToWrite> {
  const model = s.model;
  const g = s.grammar;
  const b = batch.size;
  const text = batch.ids.map((id, i) => model.textIds(id, batch.texts[i]!));
  const tt = model.textLength(Math.max(1, ...text.map((t) => t.length)));
  const textIds = new Int32Array(b * tt);
  const textMask = new Float32Array(b * tt);
  text.forEach((t, i) => {
    textIds.set(t, i * tt);
    textMask.fill(1, i * tt, i * tt + t.length);
  });
  const layouts = batch.ids.map((id, i) => layoutSample(model.opts.prompt, model.textIds(id, batch.texts[i]!), model.opts.maxTextTokens, g.targetTokens(batch.labels[i]!)));
  const a = assembleInputs(layouts, s.cfg.model.pseudo_tokens, model.opts.padToMultipleOf);
  const targets = Int32Array.from(a.targets, (id) => (id < 0 ? -100 : g.vocabIndex.get(id)!));
  const seq = (data: Float32Array, mask: Uint8Array, len: number, dim: number): [TensorToWrite, TensorToWrite] => len === 0
    ? [{ dtype: 'F32', shape: [b, 1, dim], data: new Float32Array(b * dim) }, { dtype: 'F32', shape: [b, 1], data: new Float32Array(b) }]
    : [{ dtype: 'F32', shape: [b, len, dim], data: data.subarray(0, b * len * dim) }, { dtype: 'F32', shape: [b, len], data: Float32Array.from(mask.subarray(0, b * len)) }];
  const [audio, audioMask] = seq(batch.audio, batch.audioMask, batch.audioPadLen, batch.audioDim);
  const [vision, visionMask] = seq(batch.vision, batch.visionMask, batch.visionPadLen, batch.visionDim);
  const p = model.opts.prompt;
  const n = a.length;
  return {
    text_ids: { dtype: 'I32', shape: [b, tt], data: textIds },
    text_mask: { dtype: 'F32', shape: [b, tt], data: textMask },
    audio, audio_mask: audioMask, vision, vision_mask: visionMask,
    labels: { dtype: 'F32', shape: [b], data: batch.labels.subarray(0, b) },
    llm_ids: { dtype: 'I32', shape: [b, n], data: a.ids },
    llm_pseudo_index: { dtype: 'I32', shape: [b, n], data: a.pseudoIndex },
    llm_pseudo_mask: { dtype: 'F32', shape: [b, n], data: a.pseudoMask },
    llm_attention_mask: { dtype: 'F32', shape: [b, n], data: a.attentionMask },
    llm_positions: { dtype: 'I32', shape: [b, n], data: a.positions },
    targets: { dtype: 'I32', shape: [b, a.targetWidth], data: targets },
    answer_vocab: { dtype: 'I32', shape: [g.vocab.length], data: Int32Array.from(g.vocab) },
    prompt_ids: { dtype: 'I32', shape: [p.open.length + p.close.length + p.task.length], data: Int32Array.from([...p.open, ...p.close, ...p.task]) },
  };
}

function metaOf(s: Setup, batch: Batch, lr: number, ours: OurStep): Record<string, unknown> {
  const c = s.decoder.config;
  const m = s.cfg.model;
  const task = s.grammar.task;
  const lora = s.lora === null ? null : s.lora.adapter('default');
  return {
    format: EXPORT_FORMAT,
    seed: s.cfg.seed,
    dataset: s.meta.dataset,
    batch_size: batch.size,
    features: { audio: s.meta.audioDim, vision: s.meta.visionDim },
    task: task.kind === 'classification' ? { kind: 'classification', classes: task.labelNames.length } : { kind: 'regression' },
    model: {
      width: m.width, dropout: m.dropout, modalities: m.modalities, positions: m.positions, head: m.head,
      pseudo_tokens: m.pseudo_tokens, aux_probe_weight: m.aux_probe.weight, experts: m.experts, gating: m.gating,
      max_text_tokens: s.cfg.data.max_text_tokens,
    },
    llm: {
      model_type: c.modelType, hidden_size: c.hiddenSize, intermediate_size: c.intermediateSize, num_layers: c.numLayers,
      num_heads: c.numHeads, num_kv_heads: c.numKvHeads, head_dim: c.headDim, rms_norm_eps: c.rmsNormEps, rope_theta: c.ropeTheta,
      tie_word_embeddings: c.tieWordEmbeddings, qkv_bias: c.qkvBias, o_bias: c.oBias, mlp_bias: c.mlpBias, qk_norm: c.qkNorm,
      vocab_size: c.vocabSize,
    },
    lora: lora === null ? null : { rank: lora.config.r, alpha: lora.config.alpha, scaling: lora.scaling, dropout: lora.config.dropout, modules: [...lora.modules.keys()] },
    train: {
      lr, weight_decay: s.cfg.train.weight_decay, adam_eps: s.cfg.train.adam_eps, betas: ADAM_BETAS, grad_clip: s.cfg.train.grad_clip,
    },
    // In setup order; `decay` is AdamW's default rule (matrices decay, vectors do not).
    variables: [...s.variables].map(([name, v]) => ({ name, shape: v.shape, decay: v.rank >= 2 })),
    frozen: [...s.decoder.params].map(([name, v]) => ({ name: `decoder.${name}`, shape: v.shape })),
    ours,
  };
}

/** The Python with torch: EGMF_TORCH_PYTHON, else `.venv-torch/bin/python` in the repository; null when neither. */
export function torchPython(): string | null {
  const env = process.env.EGMF_TORCH_PYTHON;
  if (env) return env;
  const venv = join(REPO, '.venv-torch', 'bin', 'python');
  return existsSync(venv) ? venv : null;
}

export const TORCH_INSTALL_HINT = `no Python with PyTorch found: set EGMF_TORCH_PYTHON, or install it into .venv-torch (python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==${TORCH_VERSION}, or -r requirements-bench.txt)`;

export interface RunOptions {
  python?: string;
  mode: 'check' | 'bench';
  /** Timed steps of `bench` (after one warm-up step). */
  steps?: number;
  threads?: number;
  timeoutMs?: number;
}

/** PyTorch's numbers for an exported step (`check`) or its timing (`bench`). */
export interface TorchCheck extends StepNumbers {
  /** Largest absolute difference between PyTorch's and our variables after the step. */
  max_param_diff: number;
  max_param_diff_name: string;
  torch: string;
}

export interface TorchBench {
  ms_per_step: number;
  steps: number;
  threads: number;
  torch: string;
  peak_rss_mb: number;
}

export function runTorchReference(dir: string, o: RunOptions & { mode: 'check' }): TorchCheck;
export function runTorchReference(dir: string, o: RunOptions & { mode: 'bench' }): TorchBench;
export function runTorchReference(dir: string, o: RunOptions): TorchCheck | TorchBench {
  const python = o.python ?? torchPython();
  if (python === null) throw new EgmfError(TORCH_INSTALL_HINT, { key: 'EGMF_TORCH_PYTHON' });
  const args = [TORCH_SCRIPT, '--weights', dir, o.mode === 'check' ? '--check' : '--bench'];
  if (o.mode === 'bench') args.push('--steps', String(o.steps ?? 10), '--threads', String(o.threads ?? 1));
  else if (o.threads !== undefined) args.push('--threads', String(o.threads));
  const r = spawnSync(python, args, { encoding: 'utf8', timeout: o.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new EgmfError(`cannot run ${python}: ${r.error.message}`, { file: python, key: 'EGMF_TORCH_PYTHON' }, { cause: r.error });
  if (r.status !== 0) {
    const msg = r.stderr.trim().split('\n').filter((l) => l.trim() !== '').pop() ?? `exit ${r.status}`;
    throw new EgmfError(`${TORCH_SCRIPT} failed: ${msg.replace(/^error: /, '')}`);
  }
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as TorchCheck | TorchBench;
  } catch {
    throw new EgmfError(`${TORCH_SCRIPT} printed no JSON line: ${JSON.stringify(line.slice(0, 200))}`);
  }
}

/** Reads back the meta.json of an export (e.g. our numbers, to compare with `runTorchReference`). */
export function readExportMeta(dir: string): { ours: OurStep } & Record<string, unknown> {
  const path = join(dir, 'meta.json');
  if (!existsSync(path)) throw new EgmfError('not a torch reference export (no meta.json)', { file: path });
  return JSON.parse(readFileSync(path, 'utf8'));
}
