/**
 * PEFT's on-disk LoRA format: `adapter_config.json` + `adapter_model.safetensors` with
 * keys `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]
 * (PyTorch Linear orientation: the transposes of our A [in, r] and B [r, out]).
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { readJsonFile, transpose2d } from './checkpoint.ts';
import type { LoraConfig, LoraModel } from './lora.ts';
import { SafetensorsFile, writeSafetensors } from './safetensors.ts';

const PREFIX = 'base_model.model.';

/** Writes the adapter `name` (default: the active one) in PEFT's format. */
export function saveAdapter(lora: LoraModel, dir: string, name?: string): void {
  const adapterName = name ?? lora.activeAdapter;
  if (adapterName === null || adapterName === undefined) throw new Error('no adapter to save');
  const a = lora.adapter(adapterName);
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [m, w] of a.modules) {
    const [inDim, r] = w.A.shape as [number, number];
    const outDim = w.B.shape[1]!;
    tensors[`${PREFIX}${m}.lora_A.weight`] = { dtype: 'F32', shape: [r, inDim], data: transpose2d(w.A.dataSync() as Float32Array, inDim, r) };
    tensors[`${PREFIX}${m}.lora_B.weight`] = { dtype: 'F32', shape: [outDim, r], data: transpose2d(w.B.dataSync() as Float32Array, r, outDim) };
  }
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  const c = a.config;
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: c.baseModelNameOrPath ?? null,
    r: c.r,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    target_modules: c.targetModules,
    use_rslora: c.useRslora ?? false,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_dora: false,
    lora_bias: false,
    revision: null,
  };
  const file = join(dir, 'adapter_config.json');
  writeFileSync(`${file}.tmp`, JSON.stringify(config, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
}

/** Reads and checks adapter_config.json. */
export function readAdapterConfig(dir: string): LoraConfig {
  const file = join(dir, 'adapter_config.json');
  if (!existsSync(dir)) throw new EgmfError('adapter folder not found', { file: dir });
  const raw = readJsonFile(file) as Record<string, unknown>;
  if (raw === null || typeof raw !== 'object') throw new EgmfError('not a JSON object', { file });
  if (raw['peft_type'] !== 'LORA') throw new EgmfError(`only LORA adapters are supported, got ${JSON.stringify(raw['peft_type'])}`, { file, key: 'peft_type' });
  const unsupported: [string, (v: unknown) => boolean][] = [
    ['bias', (v) => v === undefined || v === 'none'],
    ['use_dora', (v) => !v],
    ['fan_in_fan_out', (v) => !v],
    ['lora_bias', (v) => !v],
    ['modules_to_save', (v) => v == null || (Array.isArray(v) && v.length === 0)],
    ['rank_pattern', (v) => v == null || Object.keys(v as object).length === 0],
    ['alpha_pattern', (v) => v == null || Object.keys(v as object).length === 0],
    ['layers_to_transform', (v) => v == null],
  ];
  for (const [key, ok] of unsupported) if (!ok(raw[key])) throw new EgmfError(`unsupported value ${JSON.stringify(raw[key])}`, { file, key });
  const config: LoraConfig = {
    r: raw['r'] as number,
    alpha: raw['lora_alpha'] as number,
    dropout: (raw['lora_dropout'] as number | undefined) ?? 0,
    targetModules: raw['target_modules'] as string[] | string,
    useRslora: raw['use_rslora'] === true,
    baseModelNameOrPath: typeof raw['base_model_name_or_path'] === 'string' ? raw['base_model_name_or_path'] : undefined,
  };
  return config;
}

/**
 * Loads a PEFT LoRA adapter into `lora` under `name` (made active). Every tensor is
 * checked (presence, shape, no strays) before any variable is created.
 */
export function loadAdapter(lora: LoraModel, dir: string, name = 'default'): void {
  const config = readAdapterConfig(dir);
  const file = join(dir, 'adapter_model.safetensors');
  if (!existsSync(file)) throw new EgmfError('adapter weights not found (adapter_model.bin is not supported)', { file });
  const f = SafetensorsFile.open(file);
  const weights = new Map<string, { A: tf.Tensor2D; B: tf.Tensor2D }>();
  try {
    const byModule = new Map<string, { A?: string; B?: string }>();
    for (const key of f.entries.keys()) {
      const m = /^base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/.exec(key);
      if (m === null) throw new EgmfError('unexpected tensor (only lora_A/lora_B weights are supported)', { file, key });
      const slot = byModule.get(m[1]!) ?? {};
      slot[m[2] as 'A' | 'B'] = key;
      byModule.set(m[1]!, slot);
    }
    const known = new Set(lora.moduleNames());
    const data = new Map<string, { A: Float32Array; B: Float32Array; inDim: number; outDim: number }>();
    for (const [module, keys] of byModule) {
      if (!known.has(module)) throw new EgmfError(`module '${module}' does not exist in the base model`, { file, key: keys.A ?? keys.B });
      if (keys.A === undefined || keys.B === undefined) throw new EgmfError(`lora_${keys.A === undefined ? 'A' : 'B'} missing for module '${module}'`, { file, key: keys.A ?? keys.B });
      const [outDim, inDim] = lora.base.param(`${module}.weight`).shape.slice().reverse() as [number, number];
      const sa = f.entry(keys.A).shape;
      const sb = f.entry(keys.B).shape;
      if (sa.length !== 2 || sa[0] !== config.r || sa[1] !== inDim) throw new EgmfError(`shape [${sa.join(', ')}], expected [${config.r}, ${inDim}] (r, in)`, { file, key: keys.A });
      if (sb.length !== 2 || sb[0] !== outDim || sb[1] !== config.r) throw new EgmfError(`shape [${sb.join(', ')}], expected [${outDim}, ${config.r}] (out, r)`, { file, key: keys.B });
      data.set(module, { A: f.float32(keys.A), B: f.float32(keys.B), inDim, outDim });
    }
    for (const [module, d] of data) {
      weights.set(module, { A: tf.tensor2d(transpose2d(d.A, config.r, d.inDim), [d.inDim, config.r]), B: tf.tensor2d(transpose2d(d.B, d.outDim, config.r), [config.r, d.outDim]) });
    }
    lora.addAdapter(name, config, { weights, file });
  } finally {
    f.close();
    for (const w of weights.values()) {
      w.A.dispose();
      w.B.dispose();
    }
  }
}
