/** Chooses and initialises the tfjs backend that all model code runs on. */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as wasmBackend from '@tensorflow/tfjs-backend-wasm';
import os from 'node:os';
import { EgmfError } from '../../errors.ts';
import { ensureGradients } from './gradients.ts';
import { registerWasmKernelFixes } from './wasm_kernels.ts';
import { registerCpuKernelFixes } from './cpu_kernels.ts';
import { initThreadedWasm } from './wasm_threads.ts';
import { defaultThreads } from './threads.ts';
import { registerTensorflowKernelFixes } from './tensorflow_kernels.ts';
import { installSavedTensorSharing } from './saved_tensors.ts';
import { installFusedGradients, registerFusedKernels } from './fused.ts';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'tensorflow';
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'wasm', 'cpu', 'tensorflow'];

export interface BackendOptions {
  /**
   * XNNPACK threads for wasm (worker_threads). Default: env EGMF_WASM_THREADS, else
   * `defaultThreads()`. Fixed by the first wasm initialisation in a process. tensorflow:
   * intra-op threads (default env TF_NUM_INTRAOP_THREADS, else `defaultThreads()`), fixed
   * when tfjs-node first loads.
   */
  threads?: number;
}

export interface BackendInfo {
  /** The tfjs backend now current: 'wasm', 'cpu' or 'tensorflow'. */
  name: 'wasm' | 'cpu' | 'tensorflow';
  /** wasm: XNNPACK threads; tensorflow: TensorFlow's intra-op threads; cpu: 1. */
  threads: number;
  /** tensorflow: the npm package that provided it. */
  package?: string;
  /** wasm: whether the SIMD build runs. */
  simd?: boolean;
  /** auto: why a preferred backend was skipped (a broken tfjs-node install, wasm failing). */
  fallbackReason?: string;
}

const TF_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;
const INSTALL_HINT =
  'install it with `npm run setup:tensorflow` (CPU) or `npx egmf backend install tensorflow --gpu` (CUDA 12): ' +
  'it builds tfjs-node against the PyPI TensorFlow wheel, without tfjs-node\'s own download';

let wasmThreads: number | null = null;
let tfNodePackage: string | null = null;
let tfThreads: number | null = null;
let savedTfEnv: Record<string, string | undefined> | null = null;

/** Puts back the environment loadTfNode set for TensorFlow's start. */
function restoreTfEnv(): void {
  if (savedTfEnv === null) return;
  for (const [k, v] of Object.entries(savedTfEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  savedTfEnv = null;
}

/** Validates a backend name from a config file or the CLI. */
export function parseBackendName(value: string, ctx: { file?: string; key?: string } = {}): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new EgmfError(`unknown backend '${value}' (expected one of ${BACKEND_NAMES.join(', ')})`, ctx);
}

/**
 * Makes `name` the current backend. `auto` prefers tfjs-node (GPU, then CPU) when
 * installed, then wasm, then the pure-JS cpu backend. Gradients and the wasm kernel fixes
 * are registered on the way, so model code can train on whichever comes out.
 */
export async function initBackend(name: BackendName = 'auto', opts: BackendOptions = {}): Promise<BackendInfo> {
  await ensureGradients();
  installFusedGradients();
  installSavedTensorSharing();
  // The cpu backend also serves as the fallback for wasm's missing kernels.
  registerCpuKernelFixes();
  registerFusedKernels('cpu');
  switch (name) {
    case 'cpu':
      await setOrThrow('cpu');
      return { name: 'cpu', threads: 1 };
    case 'wasm':
      return initWasm(opts);
    case 'tensorflow': {
      const pkg = await loadTfNode(opts);
      if (pkg === null) throw new EgmfError(`backend 'tensorflow' requested but neither ${TF_NODE_PACKAGES.join(' nor ')} is installed: ${INSTALL_HINT}`);
      try {
        await setOrThrow('tensorflow');
      } finally {
        restoreTfEnv();
      }
      return { name: 'tensorflow', threads: tfThreads!, package: pkg };
    }
    case 'auto': {
      // auto never fails for a broken optional install: it says why it fell back.
      let reason: string | undefined;
      try {
        const pkg = await loadTfNode(opts);
        const ok = pkg !== null && (await tf.setBackend('tensorflow').finally(restoreTfEnv));
        if (ok) return { name: 'tensorflow', threads: tfThreads!, package: pkg };
      } catch (e) {
        reason = (e as Error).message;
      }
      try {
        return { ...(await initWasm(opts)), ...(reason === undefined ? {} : { fallbackReason: reason }) };
      } catch (e) {
        await setOrThrow('cpu');
        return { name: 'cpu', threads: 1, fallbackReason: [reason, (e as Error).message].filter(Boolean).join('; ') };
      }
    }
    default:
      throw new EgmfError(`unknown backend '${String(name)}'`);
  }
}

/** The tfjs-node package that provides the tensorflow backend (null: not loaded). */
export function tensorflowPackage(): string | null {
  return tfNodePackage;
}

/** TensorFlow's intra-op threads, fixed when tfjs-node loaded (null: not loaded). */
export function tensorflowThreads(): number | null {
  return tfThreads;
}

/** The current backend's name, for code that picks a per-backend fast path. */
export function currentBackend(): string {
  return tf.getBackend();
}

async function initWasm(opts: BackendOptions): Promise<BackendInfo> {
  registerWasmKernelFixes();
  registerFusedKernels('wasm');
  const cores = Math.max(os.availableParallelism(), 1);
  const wanted = opts.threads ?? envThreads() ?? defaultThreads(cores);
  if (!Number.isInteger(wanted) || wanted < 1) throw new EgmfError(`wasm threads must be a positive integer, got ${wanted}`, { key: 'threads' });
  if (wasmThreads === null) {
    wasmThreads = wanted > 1 ? await initThreadedWasm(Math.min(wanted, cores * 2)) : await initSingle();
  } else {
    await setOrThrow('wasm');
  }
  return { name: 'wasm', threads: wasmThreads, simd: (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true };
}

async function initSingle(): Promise<number> {
  wasmBackend.setThreadsCount(1);
  await setOrThrow('wasm');
  return 1;
}

function envThreads(): number | undefined {
  const v = process.env['EGMF_WASM_THREADS'];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new EgmfError(`EGMF_WASM_THREADS must be a positive integer, got '${v}'`, { key: 'EGMF_WASM_THREADS' });
  return n;
}

async function setOrThrow(name: string): Promise<void> {
  if (tf.getBackend() === name) return;
  if (!(await tf.setBackend(name))) throw new EgmfError(`tfjs backend '${name}' failed to initialise`);
}

/** The packages' own install scripts are skipped, so they are found only once built (`egmf backend install`). */
async function loadTfNode(opts: BackendOptions): Promise<string | null> {
  if (tfNodePackage !== null) return tfNodePackage;
  // TensorFlow reads these once, when the library loads: quiet start-up logs, a fixed
  // thread count (so two sweep workers on two cores do not fight), deterministic kernels.
  const cores = Math.max(os.availableParallelism(), 1);
  const fromEnv = Number(process.env['TF_NUM_INTRAOP_THREADS']);
  const threads = opts.threads ?? (Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : defaultThreads(cores));
  if (!Number.isInteger(threads) || threads < 1) throw new EgmfError(`tensorflow threads must be a positive integer, got ${threads}`, { key: 'threads' });
  const set = { TF_NUM_INTRAOP_THREADS: String(threads), TF_NUM_INTEROP_THREADS: process.env['TF_NUM_INTEROP_THREADS'] ?? '1', TF_CPP_MIN_LOG_LEVEL: process.env['TF_CPP_MIN_LOG_LEVEL'] ?? '2', TF_DETERMINISTIC_OPS: process.env['TF_DETERMINISTIC_OPS'] ?? '1' };
  // Only until the backend has started: child processes (sweep trials) choose their own.
  savedTfEnv = Object.fromEntries(Object.keys(set).map((k) => [k, process.env[k]]));
  Object.assign(process.env, set);
  for (const pkg of TF_NODE_PACKAGES) {
    try {
      await import(pkg);
      registerTensorflowKernelFixes();
      registerFusedKernels('tensorflow');
      // tfjs-node's import registered tfjs's own gradients again.
      installFusedGradients();
      tfThreads = threads;
      tfNodePackage = pkg;
      return pkg;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') {
        throw new EgmfError(`${pkg} is installed but failed to load: ${(e as Error).message}; ${INSTALL_HINT}`, {}, { cause: e });
      }
    }
  }
  return null;
}
