import { relative } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { EgmfError } from '../errors.ts';
import { runDataBench } from '../bench/data.ts';
import type { DataBenchResult } from '../bench/data.ts';
import { benchOne, runTrainBench } from '../bench/train.ts';
import type { TrainBenchResult } from '../bench/train.ts';
import { formatLearning, LEARNING_SEEDS, parseVariants, runLearningBench } from '../bench/learning.ts';
import type { LearningResult } from '../bench/learning.ts';
import { parseSeedList } from '../train/seeds.ts';
import { formatWorkers, runWorkersBench, WORKERS_SPEC } from '../bench/workers.ts';
import type { WorkersResult } from '../bench/workers.ts';

/** Options every bench target receives; a target ignores what it has no use for. */
export interface BenchRunOptions {
  /** Problem size (samples); each target has its own default. */
  samples?: number;
  seed: number;
  /** Seeds of targets that train over several (learning); default theirs. */
  seeds?: number[];
  /** Variants of the learning target (names, or `all`); default full and linear. */
  variants?: string;
  /** learning: training processes at a time (default 2); workers: the pool size compared with one process (default 2). */
  parallel?: number;
  /** workers: the sweep spec (default sweeps/speedup.yaml). */
  spec?: string;
  /** workers: times through the pool sizes, in ABBA order (default 1). */
  rounds?: number;
  /** train: backends and thread counts to measure, and whether to time PyTorch beside them. */
  backends?: string[];
  threads?: number[];
  pytorch?: boolean;
  /** train, learning, workers: experiment overrides (KEY=VALUE). */
  overrides?: string[];
}

/** One benchmark: `run` returns flat, JSON-ready numbers; `format` renders them for people. */
export interface BenchTarget {
  name: string;
  describe: string;
  run(opts: BenchRunOptions): Promise<Record<string, unknown>>;
  format?(result: Record<string, unknown>): string;
  /** Runs only when named with --target (too long for `egmf bench` alone). */
  optIn?: boolean;
}

const dataTarget: BenchTarget = {
  name: 'data',
  describe: 'Batch loader vs. a plain copy of the same feature bytes (MOSEI-shaped split)',
  run: (opts) => runDataBench({ samples: opts.samples, seed: opts.seed }),
  format: (raw) => {
    const r = raw as DataBenchResult;
    const rows = [
      ['', 'samples/s', 'MB/s'],
      ['loader (batch 32, shuffled)', String(r.samples_per_s), String(r.loader_mb_per_s)],
      ['plain copy (baseline)', String(r.baseline_samples_per_s), String(r.baseline_mb_per_s)],
      ['loader, batches not released', String(r.no_release_samples_per_s), ''],
    ];
    const w = rows[0]!.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
    const lines = rows.map((x) => x.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd());
    return [
      `${r.samples} MOSEI-shaped samples (${r.file_mb} MB), median of ${r.epochs} timed epochs after a warm-up`,
      ...lines,
      `ratio = loader / plain copy = ${r.ratio}`,
      `time to first batch ${r.first_batch_ms} ms (open ${r.open_ms} ms)`,
    ].join('\n');
  },
};

const trainTarget: BenchTarget = {
  name: 'train',
  describe: 'Training step of the default tiny EGMF (experiments/synthetic/meld.yaml) on each available backend, beside the same step in PyTorch',
  run: (opts) => runTrainBench({ steps: opts.samples, seed: opts.seed, backends: opts.backends, threads: opts.threads, pytorch: opts.pytorch, overrides: opts.overrides }),
  format: (raw) => {
    const r = raw as TrainBenchResult;
    const ratios = (r['ratio_to_pytorch'] ?? {}) as Record<string, number>;
    const lines = Object.entries(r).filter(([b]) => b !== 'ratio_to_pytorch').map(([b, x]) => {
      if ('error' in x) return `${b.padEnd(22)} unavailable: ${String(x.error)}`;
      const e = x as Record<string, unknown>;
      const ours = 'kernels_per_step' in e;
      return `${b.padEnd(22)} ${String(e['ms_per_step']).padStart(6)} ms/step  ${ours ? `${String(e['samples_per_s']).padStart(7)} samples/s  ${String(e['kernels_per_step']).padStart(5)} kernels/step` : `torch ${String(e['torch'])}`.padEnd(39)}  ` +
        `peak RSS ${String(e['peak_rss_mb'])} MB  ${e['threads']} thread(s)${ratios[b] !== undefined ? `  ${ratios[b]}× PyTorch's speed` : ''}` +
        (Array.isArray(e['rss_trace_mb']) ? `  RSS by quarter ${(e['rss_trace_mb'] as number[]).join('/')} MB` : '') +
        (Array.isArray(e['js_heap_trace_mb']) ? ` (V8 heap ${(e['js_heap_trace_mb'] as number[]).join('/')}, external ${(e['external_trace_mb'] as number[]).join('/')} MB)` : '');
    });
    return ['default tiny EGMF training step (synthetic MELD, built-in LLM shape, batch 16); ×PyTorch = PyTorch ms/step ÷ ours at the same threads:', ...lines].join('\n');
  },
};

const learningTarget: BenchTarget = {
  name: 'learning',
  describe: `EGMF against the same fusion network with a linear head (and, with --variants, the ablation variants) on the default synthetic experiment, seeds ${LEARNING_SEEDS.join(', ')}; ~15 min on 2 cores for the default two variants`,
  optIn: true,
  run: (opts) => runLearningBench({ variants: parseVariants(opts.variants), seeds: opts.seeds, sets: opts.overrides ?? [], ...(opts.parallel !== undefined ? { parallel: opts.parallel } : {}), say: (m) => process.stderr.write(`${m}\n`) }),
  format: (raw) => formatLearning(raw as LearningResult),
};

const workersTarget: BenchTarget = {
  name: 'workers',
  describe: 'A local sweep (sweeps/speedup.yaml: 8 equal trials) with one trial process, then with --parallel (default 2): wall time and trials per hour, side by side; ~1.5 min with the tensorflow backend on 2 cores',
  optIn: true,
  run: async (opts) => {
    const p = opts.parallel ?? 2;
    return { ...(await runWorkersBench({ spec: opts.spec ?? WORKERS_SPEC, parallel: p === 1 ? [1] : [1, p], sets: opts.overrides ?? [], ...(opts.rounds !== undefined ? { rounds: opts.rounds } : {}), say: (m) => process.stderr.write(`${m}\n`) })) };
  },
  format: (raw) => formatWorkers(raw as unknown as WorkersResult),
};

/** Registered targets; `egmf bench` with no --target runs all that are not opt-in, in this order. */
export const benchTargets: BenchTarget[] = [dataTarget, trainTarget, learningTarget, workersTarget];

/** Adds a target (e.g. `train`); names must be unique. */
export function registerBenchTarget(t: BenchTarget): void {
  if (benchTargets.some((x) => x.name === t.name)) throw new EgmfError(`bench target '${t.name}' is already registered`, { key: 'target' });
  benchTargets.push(t);
}

/** Runs the named targets (all when none are named); results keyed by target name. */
export async function runBench(names: string[], opts: BenchRunOptions): Promise<Record<string, Record<string, unknown>>> {
  const chosen = names.length === 0 ? benchTargets.filter((t) => !t.optIn) : names.map((n) => {
    const t = benchTargets.find((x) => x.name === n);
    if (t === undefined) throw new EgmfError(`unknown bench target '${n}' (known: ${benchTargets.map((x) => x.name).join(', ')})`, { key: 'target' });
    return t;
  });
  const out: Record<string, Record<string, unknown>> = {};
  for (const t of chosen) out[t.name] = await t.run(opts);
  return out;
}

export const benchCommand: CommandModule = {
  command: 'bench',
  describe: 'Run benchmarks: speed (data loader, training step) and, opt-in, learning (EGMF against its baselines over seeds)',
  builder: (y: Argv) =>
    y
      .option('target', { type: 'string', array: true, default: [] as string[], describe: `Targets to run (default all): ${benchTargets.map((t) => t.name).join(', ')}` })
      .option('samples', { type: 'number', describe: 'Problem size in samples (each target has its own default)' })
      .option('seed', { type: 'number', default: 0, describe: 'Seed of generated data and shuffles' })
      .option('seeds', { type: 'string', describe: `Comma-separated seeds of the learning target (default ${LEARNING_SEEDS.join(',')})` })
      .option('variants', { type: 'string', describe: 'Variants of the learning target: comma-separated names, or all (default full,linear)' })
      .option('parallel', { type: 'number', describe: 'learning: training processes at a time (default 2); workers: the trial processes compared with one (default 2)' })
      .option('rounds', { type: 'number', describe: 'workers: times through 1 and --parallel, every other time in reverse (ABBA), for ratios of mean times and a mean ± std over rounds (default 1)' })
      .option('spec', { type: 'string', describe: `workers: the sweep spec to time (default ${relative(process.cwd(), WORKERS_SPEC) || WORKERS_SPEC})` })
      .option('backends', { type: 'string', describe: 'train: comma-separated backends (default: tensorflow when built, wasm, cpu)' })
      .option('threads', { type: 'string', describe: 'train: comma-separated thread counts (default 1)' })
      .option('pytorch', { type: 'boolean', default: true, describe: 'train: time the same step in PyTorch (--no-pytorch to skip)' })
      .option('set', { type: 'string', array: true, default: [] as string[], describe: "train: override a key of the benchmarked experiment, for ours and PyTorch alike (repeatable), e.g. model.width=256; learning: of every variant's runs, e.g. backend=wasm; workers: of the sweep's trials" })
      .option('one', { type: 'string', hidden: true, describe: 'train: measure BACKEND:THREADS in this process (what the bench runs per child)' })
      .option('llm-dir', { type: 'string', hidden: true })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object keyed by target' }),
  handler: async (argv) => {
    if (argv.one !== undefined) {
      const [backend, t] = String(argv.one).split(':');
      if (argv['llm-dir'] === undefined) throw new EgmfError('--one needs --llm-dir', { key: 'llm-dir' });
      const r = await benchOne(backend!, Number(t ?? 1), String(argv['llm-dir']), Number(argv.samples ?? 20), Number(argv.seed), argv.set as string[]);
      process.stdout.write(`${JSON.stringify({ train: r })}\n`);
      process.exit(0);
    }
    const samples = argv.samples as number | undefined;
    if (samples !== undefined && !(Number.isInteger(samples) && samples > 0)) {
      throw new EgmfError(`must be a positive integer, got ${String(samples)}`, { key: 'samples' });
    }
    const seeds = argv.seeds === undefined ? undefined : parseSeedList(String(argv.seeds));
    const parallel = argv.parallel as number | undefined;
    if (parallel !== undefined && !(Number.isInteger(parallel) && parallel > 0)) {
      throw new EgmfError(`must be a positive integer, got ${String(parallel)}`, { key: 'parallel' });
    }
    const rounds = argv.rounds as number | undefined;
    if (rounds !== undefined && !(Number.isInteger(rounds) && rounds > 0)) {
      throw new EgmfError(`must be a positive integer, got ${String(rounds)}`, { key: 'rounds' });
    }
    const list = (v: unknown) => (v === undefined ? undefined : String(v).split(',').map((x) => x.trim()).filter((x) => x !== ''));
    const threads = list(argv.threads)?.map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 1) throw new EgmfError(`thread counts must be positive integers, got '${x}'`, { key: 'threads' });
      return n;
    });
    const results = await runBench(argv.target as string[], {
      samples, seed: Number(argv.seed), seeds, variants: argv.variants as string | undefined, ...(parallel !== undefined ? { parallel } : {}),
      ...(argv.spec !== undefined ? { spec: String(argv.spec) } : {}), ...(rounds !== undefined ? { rounds } : {}),
      backends: list(argv.backends), threads, pytorch: argv.pytorch as boolean, overrides: argv.set as string[],
    });
    if (argv.json) {
      process.stdout.write(`${JSON.stringify(results)}\n`);
      return;
    }
    for (const [name, r] of Object.entries(results)) {
      const t = benchTargets.find((x) => x.name === name)!;
      const body = t.format ? t.format(r) : Object.entries(r).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n');
      process.stdout.write(`bench ${name}: ${t.describe}\n${body.replace(/^/gm, '  ')}\n`);
    }
  },
};
