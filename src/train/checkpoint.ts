/**
 * Training checkpoints: every trainable parameter and the optimiser's moments in one
 * safetensors file, plus a small JSON with the step, epoch, position in the epoch,
 * early-stopping state and the tracking run id. Written to a temporary folder and renamed,
 * so a process killed mid-write leaves the previous checkpoint intact.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { EgmfError } from '../errors.ts';
import { readSafetensors, writeSafetensors } from '../models/llm/safetensors.ts';
import type { TensorToWrite } from '../models/llm/safetensors.ts';
import type { AdamW, AdamWState } from './optimizer.ts';

export const CHECKPOINT_VERSION = 1;

/** Where training stands; enough to continue exactly where it stopped. */
export interface TrainerState {
  version: number;
  /** Optimiser steps taken. */
  step: number;
  /** Current epoch (0-based). */
  epoch: number;
  /** Batches of `epoch` already trained. */
  batchInEpoch: number;
  seed: number;
  /** Digest of the config the run was started with (resume refuses a different one). */
  configDigest: string;
  earlyStopping: { best: number | null; bestEpoch: number; bad: number };
  /** Tracking run to continue logging into. */
  runId: string | null;
  /** Validation metric history per finished epoch. */
  history: { epoch: number; step: number; metrics: Record<string, number> }[];
  /** True once training ended (early stop or last epoch). */
  finished: boolean;
  /** True when it ended because onEpoch said stop (a pruned sweep trial); absent in older checkpoints. */
  pruned?: boolean;
}

/** Non-trainable values saved with the parameters (the model's buffers), by name. */
export type Buffers = ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;

export function saveCheckpoint(dir: string, vars: ReadonlyMap<string, tf.Variable>, opt: AdamW | null, state: TrainerState, buffers: Buffers = new Map()): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, v] of vars) tensors[`param.${name}`] = { dtype: 'F32', shape: [...v.shape], data: v.dataSync() as Float32Array };
  for (const [name, b] of buffers) tensors[`buffer.${name}`] = { dtype: 'F32', shape: [...b.shape], data: b.data };
  if (opt) {
    const s = opt.state();
    for (const [name, t] of Object.entries(s.m)) tensors[`adamw.m.${name}`] = { dtype: 'F32', shape: t.shape, data: t.data };
    for (const [name, t] of Object.entries(s.v)) tensors[`adamw.v.${name}`] = { dtype: 'F32', shape: t.shape, data: t.data };
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeSafetensors(join(tmp, 'state.safetensors'), tensors, { format: 'egmf-checkpoint', step: String(state.step) });
  writeFileSync(join(tmp, 'state.json'), `${JSON.stringify({ ...state, optimizerStep: opt?.step ?? 0 }, null, 2)}\n`);
  mkdirSync(dirname(dir), { recursive: true });
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

export function readCheckpointState(dir: string): TrainerState & { optimizerStep: number } {
  const file = join(dir, 'state.json');
  if (!existsSync(file)) throw new EgmfError('no checkpoint here (state.json missing)', { file });
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new EgmfError(`not valid JSON: ${(e as Error).message}`, { file });
  }
  const s = raw as TrainerState & { optimizerStep: number };
  if (s.version !== CHECKPOINT_VERSION) throw new EgmfError(`unsupported checkpoint version ${String(s.version)}`, { file, key: 'version' });
  return s;
}

/** Restores parameters, buffers (and the optimiser, when given) from a checkpoint folder. */
export function loadCheckpoint(dir: string, vars: ReadonlyMap<string, tf.Variable>, opt: AdamW | null, buffers: Buffers = new Map()): TrainerState {
  const state = readCheckpointState(dir);
  const file = join(dir, 'state.safetensors');
  if (!existsSync(file)) throw new EgmfError('checkpoint tensors missing', { file });
  const t = readSafetensors(file);
  const get = (key: string, shape: readonly number[]): Float32Array => {
    const e = t.get(key);
    if (e === undefined) throw new EgmfError('missing tensor (checkpoint of a different model config?)', { file, key });
    if (e.shape.join(',') !== shape.join(',')) throw new EgmfError(`shape [${e.shape}] differs from the model's [${shape}]`, { file, key });
    return e.data as Float32Array;
  };
  const params = new Map([...vars].map(([n, v]) => [n, get(`param.${n}`, v.shape)]));
  const bufs = new Map([...buffers].map(([n, b]) => [n, get(`buffer.${n}`, b.shape)]));
  const optState: AdamWState | null = opt
    ? {
      step: state.optimizerStep,
      m: Object.fromEntries([...vars].map(([n, v]) => [n, { shape: [...v.shape], data: get(`adamw.m.${n}`, v.shape) }])),
      v: Object.fromEntries([...vars].map(([n, v]) => [n, { shape: [...v.shape], data: get(`adamw.v.${n}`, v.shape) }])),
    }
    : null;
  for (const [n, v] of vars) tf.tidy(() => v.assign(tf.tensor(params.get(n)!, v.shape)));
  for (const [n, b] of buffers) b.data.set(bufs.get(n)!);
  if (opt && optState) opt.load(optState, file);
  return state;
}
