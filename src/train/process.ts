/**
 * Training runs as real `egmf train` processes, for the benchmarks and reports that train many
 * configurations: each run gets its own process (its own backend state, no leaks between runs),
 * `parallel` of them at a time. A run's result is its `--json` line plus its `summary.json`
 * (baselines with their test scores, gate weights, history).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EgmfError } from '../errors.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

/**
 * Node flags of every process this project starts to train (sweep trials, reports' and
 * benchmarks' runs): V8's young generation at 64 MB semi-spaces instead of 16. A training
 * step makes tens of thousands of short-lived objects (tfjs's tensors, attributes, tape
 * nodes), and scavenging them took ~12 ms of a captured tensorflow step: 100 / 103 → 81 / 87
 * ms/step with it, wasm 162 / 163 → 161 / 150 (two alternating bench runs). For `egmf train`
 * run by hand: NODE_OPTIONS=--max-semi-space-size=64.
 */
export const TRAINING_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

export interface TrainProcessOptions {
  /** Experiment YAML. */
  config: string;
  seed: number;
  sets?: readonly string[];
  /** Run folder. */
  out: string;
  backend?: 'auto' | 'wasm' | 'cpu' | 'tensorflow';
  /** MLflow target; absent = `--no-tracking`. */
  tracking?: { uri: string; experiment: string; parentRunId?: string; runName?: string; tags?: Record<string, string> };
  env?: NodeJS.ProcessEnv;
}

/** The `egmf train --json` line. */
export interface TrainLine {
  run_id: string | null;
  out_dir: string;
  metric: string;
  best_epoch: number;
  best_valid: number | null;
  valid: Record<string, number | null>;
  test: Record<string, number | null>;
  baselines: Record<string, number>;
  learned: boolean;
  steps: number;
  seconds: number;
}

/** What reports read from a run's summary.json. */
export interface RunSummary {
  run_id: string | null;
  dataset: string;
  language: string;
  task: 'classification' | 'regression';
  metric: string;
  goal: 'max' | 'min';
  best_valid: number | null;
  baselines: Record<string, number>;
  baselines_detail: Record<string, { valid: Record<string, number | null>; test?: Record<string, number | null> } | undefined>;
  valid: Record<string, number | null>;
  test: Record<string, number | null>;
  gates_test?: Record<string, number>;
}

export interface TrainProcessResult { line: TrainLine; summary: RunSummary }

/** One `egmf train` process. Rejects with an EgmfError naming the config, overrides and seed. */
export function runTrainProcess(o: TrainProcessOptions): Promise<TrainProcessResult> {
  const sets = o.sets ?? [];
  const t = o.tracking;
  const args = [
    ...TRAINING_NODE_FLAGS, join(REPO_ROOT, 'bin', 'egmf.mjs'), 'train', '--config', o.config, '--seed', String(o.seed), '--backend', o.backend ?? 'wasm',
    '--json', '--out', o.out, ...sets.flatMap((s) => ['--set', s]),
    ...(t
      ? ['--tracking-uri', t.uri, '--experiment', t.experiment, ...(t.parentRunId ? ['--parent-run', t.parentRunId] : []),
        ...(t.runName ? ['--run-name', t.runName] : []), ...Object.entries(t.tags ?? {}).flatMap(([k, v]) => ['--tag', `${k}=${v}`])]
      : ['--no-tracking']),
  ];
  const what = `egmf train ${o.config} (${sets.join(' ') || 'as configured'}, seed ${o.seed})`;
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('error', (e) => fail(new EgmfError(`${what} could not start: ${e.message}`, { file: o.config })));
    child.on('close', (code, signal) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) {
        const how = signal ? `was killed by ${signal}` : `exited ${code}`;
        fail(new EgmfError(`${what} ${how}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`, { file: o.config }));
        return;
      }
      try {
        const line = JSON.parse(last) as TrainLine;
        const summary = JSON.parse(readFileSync(join(o.out, 'summary.json'), 'utf8')) as RunSummary;
        ok({ line, summary });
      } catch (e) {
        fail(new EgmfError(`${what}: unreadable result: ${(e as Error).message}`, { file: join(o.out, 'summary.json') }));
      }
    });
  });
}

/** Runs `fn` over `items`, at most `parallel` at a time; results in input order. */
export async function mapPool<T, R>(items: readonly T[], parallel: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, items.length)) }, worker));
  return out;
}
