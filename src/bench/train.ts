/**
 * Training throughput of the default tiny EGMF (experiments/synthetic/meld.yaml) on each
 * available backend and thread count, through the trainer's own step, beside the same step
 * in PyTorch (bench/torch_egmf.py: same shapes, initial weights exported from ours, same
 * batch, AdamW and clipping) measured in the same run.
 *
 * Each (backend, threads) runs in a child process of its own, so its thread settings take
 * effect (both wasm's and TensorFlow's are fixed when they first load) and its peak RSS is
 * its own. The decoder has the built-in LLM's shape with seeded random weights: pretrained
 * weights would not change the speed, and the bench should not wait for pretraining.
 *
 * `ratio_to_pytorch` is PyTorch's ms/step over ours at the same thread count: 1.0 means as
 * fast as PyTorch, 0.5 half as fast. The tensorflow backend runs twice: `tensorflow` with
 * its training step as one captured graph (the default, `graph: true`), `tensorflow_eager`
 * op by op.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { EgmfError } from '../errors.ts';
import { loadExperiment } from '../config/experiment.ts';
import { GraphCapture, initBackend, parseBackendName } from '../models/backend/index.ts';
import { Decoder, saveDecoder } from '../models/llm/index.ts';
import { qwen3TokenizerDir, tinyQwen3Config } from '../models/llm/builtin.ts';
import { tfNodeAddon } from '../models/backend/install.ts';
import { TRAINING_NODE_FLAGS } from '../train/process.ts';
import { buildSetup, disposeSetup } from '../train/setup.ts';
import { trainStep } from '../train/trainer.ts';
import { AdamW } from '../train/optimizer.ts';
import { exportTorchReference, runTorchReference, torchPython, TORCH_INSTALL_HINT } from './torch-reference.ts';
import type { TorchBench } from './torch-reference.ts';

export interface TrainBenchBackend {
  samples_per_s: number;
  /** Median over the timed steps. */
  ms_per_step: number;
  steps: number;
  batch_size: number;
  threads: number;
  /** Kernels one training step launches (tfjs's profiler). */
  kernels_per_step: number;
  /** Peak resident memory of the process that ran it. */
  peak_rss_mb: number;
  /** Tensors alive before and after the timed steps (equal: nothing leaks). */
  live_tensors: [number, number];
  /** Resident memory before and after the timed steps. */
  rss_mb: [number, number];
  /**
   * Resident memory after each quarter of the timed steps: flat after the first quarter means
   * nothing grows with the run (allocators keep their high-water mark, so the first steps grow it).
   */
  rss_trace_mb: number[];
  /**
   * At the same points, V8's heap in use and the memory outside it (ArrayBuffers, the wasm
   * heap, the native backend's buffers): tells which part of the process grows.
   */
  js_heap_trace_mb: number[];
  external_trace_mb: number[];
  /** wasm only: the WebAssembly heap before and after the timed steps (it never shrinks). */
  wasm_heap_mb?: [number, number];
  /** Trainable parameters. */
  parameters: number;
  /**
   * tensorflow with `graph: true`: the captured step (tensorflow_graph.ts). The warm-up
   * records one trace per shape signature of the epoch's batches (each an eager step, a
   * graph build and the graph's first run) and confirms each by a full replay; the timed
   * steps then replay, `forward_only` of them running only the forward pass in JavaScript.
   * `tensorflow_ops_per_step`: what TensorFlow itself executes each timed step (one session
   * run, against `kernels_per_step` eager ops without the graph).
   */
  graph?: {
    traces: number; replays: number; forward_only: number; fallbacks: number; eager: number; graph_nodes: number; warmup_s: number;
    session_ms_per_step: number; tensorflow_ops_per_step: number | null;
  };
}

export type TrainBenchResult = Record<string, TrainBenchBackend | TorchBench | Record<string, number> | { error: string }>;

const REPO = resolve(import.meta.dirname, '..', '..');
const CONFIG = join(REPO, 'experiments', 'synthetic', 'meld.yaml');

/** Size of the wasm backend's WebAssembly memory, or null on other backends. */
function wasmHeapBytes(): number | null {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return tf.getBackend() === 'wasm' && b.wasm?.HEAPU8 !== undefined ? b.wasm.HEAPU8.byteLength : null;
}

/** Result key of a backend at a thread count: `wasm` at 1 thread, `wasm_2threads` at 2. */
export function benchKey(backend: string, threads: number): string {
  return threads === 1 ? backend : `${backend}_${threads}threads`;
}

/** Backends that can start here: tensorflow once built (`egmf backend install tensorflow`), wasm, cpu. */
function availableBackends(): string[] {
  const tf = existsSync(tfNodeAddon(REPO)) || existsSync(tfNodeAddon(REPO, true));
  return [...(tf ? ['tensorflow'] : []), 'wasm', 'cpu'];
}

export interface TrainBenchOptions {
  steps?: number;
  seed: number;
  backends?: string[];
  /** Thread counts to measure (default [1]); the pure-JS cpu backend always runs 1. */
  threads?: number[];
  /** Also time PyTorch (default true; an error entry says why when it cannot run). */
  pytorch?: boolean;
  /** `--set`-style overrides of the experiment (e.g. wider experts), for ours and PyTorch alike. */
  overrides?: string[];
}

export async function runTrainBench(opts: TrainBenchOptions): Promise<TrainBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'egmf-bench-llm-'));
  const result: TrainBenchResult = {};
  const threads = opts.threads ?? [1];
  for (const t of threads) if (!Number.isInteger(t) || t < 1) throw new EgmfError(`thread counts must be positive integers, got ${t}`, { key: 'threads' });
  try {
    await initBackend('wasm', { threads: 1 });
    const decoder = Decoder.random(tinyQwen3Config(), opts.seed);
    saveDecoder(decoder, dir);
    decoder.dispose();
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(qwen3TokenizerDir(), f), join(dir, f));
    for (const backend of opts.backends ?? availableBackends()) {
      parseBackendName(backend, { key: 'backends' });
      for (const t of backend === 'cpu' ? [1] : threads) {
        const steps = opts.steps ?? (backend === 'cpu' ? 3 : 20);
        result[benchKey(backend, t)] = benchInChild(backend, t, dir, steps, opts.seed, opts.overrides ?? []);
        // tensorflow also eagerly (graph=false), beside its captured graph, unless the overrides choose.
        if (backend === 'tensorflow' && !(opts.overrides ?? []).some((o) => o.startsWith('graph='))) {
          result[benchKey('tensorflow_eager', t)] = benchInChild(backend, t, dir, steps, opts.seed, [...(opts.overrides ?? []), 'graph=false']);
        }
      }
    }
    if (opts.pytorch !== false) {
      const python = torchPython();
      const torchDir = join(dir, 'torch');
      let exported = false;
      for (const t of threads) {
        const key = benchKey('pytorch', t);
        if (python === null) {
          result[key] = { error: TORCH_INSTALL_HINT };
          continue;
        }
        try {
          if (!exported) {
            await exportTorchReference(torchDir, { seed: opts.seed, overrides: opts.overrides ?? [] });
            exported = true;
          }
          result[key] = runTorchReference(torchDir, { python, mode: 'bench', steps: opts.steps ?? 20, threads: t });
        } catch (e) {
          result[key] = { error: (e as Error).message };
        }
      }
      const ratios: Record<string, number> = {};
      for (const [key, entry] of Object.entries(result)) {
        if (key.startsWith('pytorch') || !('ms_per_step' in entry)) continue;
        const ref = result[benchKey('pytorch', (entry as TrainBenchBackend).threads)];
        if (ref !== undefined && 'ms_per_step' in ref) ratios[key] = Math.round((Number(ref.ms_per_step) / Number(entry.ms_per_step)) * 1000) / 1000;
      }
      result['ratio_to_pytorch'] = ratios;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

function benchInChild(backend: string, threads: number, llmDir: string, steps: number, seed: number, overrides: string[]): TrainBenchBackend | { error: string } {
  const r = spawnSync(process.execPath, [...TRAINING_NODE_FLAGS, join(REPO, 'bin', 'egmf.mjs'), 'bench', '--target', 'train', '--json', '--one', `${backend}:${threads}`, '--llm-dir', llmDir, '--samples', String(steps), '--seed', String(seed), ...overrides.flatMap((o) => ['--set', o])], {
    encoding: 'utf8', timeout: 900_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  if (r.error) return { error: r.error.message };
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) {
    return { error: (r.stderr.trim().split('\n').filter((l) => l.startsWith('error:')).pop() ?? `exit ${r.status}`).replace(/^error: /, '') };
  }
  return (JSON.parse(line) as { train: TrainBenchBackend }).train;
}

/** One backend at one thread count, in this process (the child side of `runTrainBench`). */
export async function benchOne(backend: string, threads: number, llmDir: string, steps: number, seed: number, overrides: string[] = []): Promise<TrainBenchBackend> {
  const name = parseBackendName(backend, { key: 'one' });
  if (name === 'auto') throw new EgmfError('name a backend, not auto', { key: 'one' });
  await initBackend(name, { threads });
  const cfg = loadExperiment(CONFIG, [`backend=${backend}`, `llm.path=${llmDir}`, `seed=${seed}`, `threads=${threads}`, ...overrides]);
  const setup = await buildSetup(cfg, { seed });
  try {
    const loader = setup.loaders.train!;
    const plan = loader.plan(0);
    const opt = new AdamW(setup.variables, { eps: cfg.train.adam_eps, weightDecay: cfg.train.weight_decay });
    const run = (i: number) => {
      const batch = loader.batch(plan[i % plan.length]!);
      trainStep(setup, opt, batch, cfg.train.lr, i, cfg.train.grad_clip);
      return batch.size;
    };
    const capture = cfg.graph ? GraphCapture.forCurrentBackend() : null;
    const tw = performance.now();
    // Warm-up: kernels compiled, caches filled; with a captured graph, every batch shape of the
    // epoch traced and then confirmed by a full replay (later replays run only the forward pass).
    for (let i = 0; i < (capture === null ? 1 : 2 * plan.length); i++) run(i);
    const warmup = (performance.now() - tw) / 1000;
    const profile = await tf.profile(() => {
      run(1);
    });
    const g0 = capture === null ? null : { ...capture.stats };
    const before = tf.memory().numTensors;
    const rss0 = process.memoryUsage().rss;
    const heap0 = wasmHeapBytes();
    const mb = (b: number) => Math.round(b / 2 ** 20);
    const quarters = new Set([1, 2, 3, 4].map((q) => Math.max(1, Math.round((q * steps) / 4))));
    const trace: number[] = [];
    const jsTrace: number[] = [];
    const extTrace: number[] = [];
    let samples = 0;
    const times: number[] = [];
    for (let i = 2; i < steps + 2; i++) {
      const t0 = performance.now();
      samples += run(i);
      times.push(performance.now() - t0);
      if (quarters.has(i - 1)) {
        const m = process.memoryUsage();
        trace.push(mb(m.rss));
        jsTrace.push(mb(m.heapUsed));
        extTrace.push(mb(m.external));
      }
    }
    const after = tf.memory().numTensors;
    const rss1 = process.memoryUsage().rss;
    const g1 = capture === null ? null : { ...capture.stats };
    const heap1 = wasmHeapBytes();
    opt.dispose();
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    const total = times.reduce((a, b) => a + b, 0) / 1000;
    return {
      samples_per_s: Math.round((samples / total) * 10) / 10,
      ms_per_step: Math.round(median),
      steps,
      batch_size: cfg.train.batch_size,
      threads: setup.backend.threads,
      kernels_per_step: profile.kernels.length,
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      live_tensors: [before, after],
      rss_mb: [mb(rss0), mb(rss1)],
      rss_trace_mb: trace,
      js_heap_trace_mb: jsTrace,
      external_trace_mb: extTrace,
      ...(heap0 !== null && heap1 !== null ? { wasm_heap_mb: [mb(heap0), mb(heap1)] as [number, number] } : {}),
      parameters: [...setup.variables.values()].filter((v) => v.trainable).reduce((a, v) => a + v.size, 0),
      ...(g0 !== null && g1 !== null ? {
        graph: {
          traces: g1.traces, replays: g1.replays - g0.replays, forward_only: g1.forwardOnly - g0.forwardOnly, fallbacks: g1.fallbacks - g0.fallbacks, eager: g1.eager - g0.eager, graph_nodes: g1.nodes,
          warmup_s: Math.round(warmup * 10) / 10,
          session_ms_per_step: Math.round(((g1.runMs - g0.runMs) / Math.max(1, g1.replays - g0.replays)) * 10) / 10,
          // null: some timed steps fell back or ran eagerly (see fallbacks and eager).
          tensorflow_ops_per_step: g1.replays - g0.replays === steps ? 1 : null,
        },
      } : {}),
    };
  } finally {
    disposeSetup(setup);
  }
}
