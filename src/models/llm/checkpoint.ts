/**
 * Hugging Face checkpoint folders on local disk: `config.json` plus `model.safetensors`
 * or a sharded `model.safetensors.index.json`. Weights may be F32, F16 or BF16; they are
 * computed in float32. Nothing is ever downloaded.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { configToJson, parseDecoderConfig, type DecoderConfig } from './config.ts';
import { Decoder, paramSpecs } from './decoder.ts';
import { SafetensorsFile, writeSafetensors } from './safetensors.ts';

export function readJsonFile(path: string): unknown {
  if (!existsSync(path)) throw new EgmfError('file not found', { file: path });
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new EgmfError(`not valid JSON: ${(e as Error).message}`, { file: path }, { cause: e });
  }
}

export function loadDecoderConfig(dir: string): DecoderConfig {
  const file = join(dir, 'config.json');
  if (!existsSync(dir)) throw new EgmfError('checkpoint folder not found', { file: dir });
  return parseDecoderConfig(readJsonFile(file), file);
}

/** Tensor key → the file that holds it. */
function weightFiles(dir: string): Map<string, string> {
  const index = join(dir, 'model.safetensors.index.json');
  const single = join(dir, 'model.safetensors');
  const map = new Map<string, string>();
  if (existsSync(index)) {
    const j = readJsonFile(index) as { weight_map?: unknown };
    if (j === null || typeof j !== 'object' || j.weight_map === null || typeof j.weight_map !== 'object') {
      throw new EgmfError('index has no weight_map object', { file: index, key: 'weight_map' });
    }
    for (const [k, f] of Object.entries(j.weight_map as Record<string, unknown>)) {
      if (typeof f !== 'string') throw new EgmfError(`weight_map entry is not a file name`, { file: index, key: k });
      map.set(k, join(dir, f));
    }
    return map;
  }
  if (existsSync(single)) {
    const f = SafetensorsFile.open(single);
    for (const k of f.entries.keys()) map.set(k, single);
    f.close();
    return map;
  }
  throw new EgmfError('no weights: expected model.safetensors or model.safetensors.index.json (PyTorch .bin checkpoints are not supported)', { file: dir });
}

/**
 * Loads a checkpoint folder. Every tensor's presence and shape is checked against the
 * config before any data is read; a failure while reading disposes what was created.
 * Tensors are converted one at a time to keep the peak memory near one copy.
 */
export function loadDecoder(dir: string, opts: { trainable?: boolean } = {}): Decoder {
  const config = loadDecoderConfig(dir);
  const files = weightFiles(dir);
  const specs = paramSpecs(config);
  const open = new Map<string, SafetensorsFile>();
  const params = new Map<string, tf.Variable>();
  try {
    const located: { file: SafetensorsFile; spec: (typeof specs)[number] }[] = [];
    for (const s of specs) {
      const file = files.get(s.name);
      if (file === undefined) throw new EgmfError(`missing tensor required by config.json (${config.modelType}, ${config.numLayers} layers)`, { file: files.size > 0 ? [...new Set(files.values())][0] : dir, key: s.name });
      let f = open.get(file);
      if (f === undefined) {
        f = SafetensorsFile.open(file);
        open.set(file, f);
      }
      if (!f.has(s.name)) throw new EgmfError('tensor listed in the index is not in this file', { file, key: s.name });
      const shape = f.entry(s.name).shape;
      if (shape.length !== s.hfShape.length || shape.some((d, i) => d !== s.hfShape[i])) {
        throw new EgmfError(`shape [${shape.join(', ')}] does not match config.json, expected [${s.hfShape.join(', ')}]`, { file, key: s.name });
      }
      located.push({ file: f, spec: s });
    }
    for (const { file, spec } of located) {
      const data = file.float32(spec.name);
      const [r, c] = spec.hfShape as [number, number];
      const t = spec.kind === 'linear' ? tf.tensor(transpose2d(data, r, c), [c, r]) : tf.tensor(data, spec.hfShape);
      params.set(spec.name, tf.variable(t, opts.trainable ?? true));
      t.dispose();
    }
  } catch (e) {
    for (const p of params.values()) p.dispose();
    throw e;
  } finally {
    for (const f of open.values()) f.close();
  }
  return new Decoder(config, params);
}

/**
 * Saves config.json + model.safetensors (HF orientation and names, loadable by
 * transformers). Each file is written to a temporary name, then renamed.
 */
export function saveDecoder(model: Decoder, dir: string, opts: { dtype?: 'F32' | 'BF16' | 'F16' } = {}): void {
  const dtype = opts.dtype ?? 'F32';
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, { dtype: 'F32' | 'BF16' | 'F16'; shape: number[]; data: Float32Array }> = {};
  for (const s of paramSpecs(model.config)) {
    const p = model.param(s.name);
    const data = p.dataSync() as Float32Array;
    tensors[s.name] = { dtype, shape: s.hfShape, data: s.kind === 'linear' ? transpose2d(data, p.shape[0]!, p.shape[1]!) : data };
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  // A stale index would take precedence over the file just written.
  rmSync(join(dir, 'model.safetensors.index.json'), { force: true });
  const torchDtype = dtype === 'F32' ? 'float32' : dtype === 'BF16' ? 'bfloat16' : 'float16';
  const cfg = join(dir, 'config.json');
  writeFileSync(`${cfg}.tmp`, JSON.stringify(configToJson(model.config, torchDtype), null, 2) + '\n');
  renameSync(`${cfg}.tmp`, cfg);
}

/** Row-major [rows, cols] → [cols, rows]. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[base + c]!;
  }
  return out;
}
