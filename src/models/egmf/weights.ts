/**
 * Fusion weights on disk: one safetensors file of F32 tensors named as the parameters
 * (`egmf.experts.local.0.text.l0.conv.k3.weight`, …). Loading checks that the file holds
 * exactly this network's names and shapes before any variable changes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { EgmfError } from '../../errors.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../llm/safetensors.ts';
import type { Params } from './layers.ts';

export function saveFusionWeights(params: Params, path: string, metadata: Record<string, string> = {}): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, v] of params.vars) tensors[name] = { dtype: 'F32', shape: [...v.shape], data: v.dataSync() as Float32Array };
  for (const [name, b] of params.buffers) tensors[name] = { dtype: 'F32', shape: [...b.shape], data: b.data };
  writeSafetensors(path, tensors, { format: 'egmf-fusion', ...metadata });
}

export function loadFusionWeights(params: Params, path: string): void {
  const file = readSafetensors(path);
  const shapes = new Map<string, readonly number[]>([...params.vars].map(([n, v]) => [n, v.shape]));
  for (const [n, b] of params.buffers) shapes.set(n, b.shape);
  for (const [name, shape] of shapes) {
    const t = file.get(name);
    if (t === undefined) throw new EgmfError('fusion weights lack this parameter (saved from a different model config?)', { file: path, key: name });
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new EgmfError(`shape [${t.shape.join(', ')}] does not match the model's [${shape.join(', ')}]`, { file: path, key: name });
    }
    if (!(t.data instanceof Float32Array)) throw new EgmfError(`expected a float tensor, got ${t.dtype}`, { file: path, key: name });
  }
  for (const name of file.keys()) {
    if (!shapes.has(name)) throw new EgmfError('unexpected parameter (saved from a different model config?)', { file: path, key: name });
  }
  for (const [name, v] of params.vars) {
    const t = file.get(name)!;
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape)));
  }
  for (const [name, b] of params.buffers) b.data.set(file.get(name)!.data as Float32Array);
}
