/**
 * Training throughput of the default tiny EGMF (experiments/synthetic/meld.yaml) on each
 * available backend, through the trainer's own step. The decoder has the built-in LLM's
 * shape with seeded random weights: pretrained weights would not change the speed, and
 * the bench should not wait for pretraining.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadExperiment } from '../config/experiment.ts';
import { initBackend } from '../models/backend/index.ts';
import { Decoder, saveDecoder } from '../models/llm/index.ts';
import { qwen3TokenizerDir, tinyQwen3Config } from '../models/llm/builtin.ts';
import { buildSetup, disposeSetup } from '../train/setup.ts';
import { trainStep } from '../train/trainer.ts';
import { AdamW } from '../train/optimizer.ts';

export interface TrainBenchBackend {
  samples_per_s: number;
  ms_per_step: number;
  steps: number;
  batch_size: number;
  threads: number;
}

export type TrainBenchResult = Record<string, TrainBenchBackend | { error: string }>;

const CONFIG = resolve(import.meta.dirname, '..', '..', 'experiments', 'synthetic', 'meld.yaml');

/** Backends that can start here: wasm and cpu always; tensorflow when tfjs-node(-gpu) loads. */
async function availableBackends(): Promise<string[]> {
  const out = ['wasm', 'cpu'];
  try {
    await initBackend('tensorflow');
    out.unshift('tensorflow');
  } catch {
    // not installed: skipped
  }
  return out;
}

export async function runTrainBench(opts: { steps?: number; seed: number; backends?: string[] }): Promise<TrainBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'egmf-bench-llm-'));
  const result: TrainBenchResult = {};
  try {
    await initBackend('wasm');
    const decoder = Decoder.random(tinyQwen3Config(), opts.seed);
    saveDecoder(decoder, dir);
    decoder.dispose();
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(qwen3TokenizerDir(), f), join(dir, f));
    for (const backend of opts.backends ?? (await availableBackends())) {
      try {
        result[backend] = await benchBackend(backend, dir, opts.steps ?? (backend === 'cpu' ? 3 : 10), opts.seed);
      } catch (e) {
        result[backend] = { error: (e as Error).message };
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

async function benchBackend(backend: string, llmDir: string, steps: number, seed: number): Promise<TrainBenchBackend> {
  const cfg = loadExperiment(CONFIG, [`backend=${backend}`, `llm.path=${llmDir}`, `seed=${seed}`]);
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
    run(0); // warm-up: kernels compiled, caches filled
    let samples = 0;
    const t0 = performance.now();
    for (let i = 1; i <= steps; i++) samples += run(i);
    const seconds = (performance.now() - t0) / 1000;
    opt.dispose();
    return {
      samples_per_s: Math.round((samples / seconds) * 10) / 10,
      ms_per_step: Math.round((seconds * 1000) / steps),
      steps,
      batch_size: cfg.train.batch_size,
      threads: setup.backend.threads,
    };
  } finally {
    disposeSetup(setup);
  }
}
