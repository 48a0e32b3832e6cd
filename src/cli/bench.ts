import type { Argv, CommandModule } from 'yargs';
import { EgmfError } from '../errors.ts';
import { runDataBench } from '../bench/data.ts';
import type { DataBenchResult } from '../bench/data.ts';
import { runTrainBench } from '../bench/train.ts';
import type { TrainBenchResult } from '../bench/train.ts';
import { formatLearning, LEARNING_SEEDS, parseVariants, runLearningBench } from '../bench/learning.ts';
import type { LearningResult } from '../bench/learning.ts';
import { parseSeedList } from '../train/seeds.ts';

/** Options every bench target receives; a target ignores what it has no use for. */
export interface BenchRunOptions {
  /** Problem size (samples); each target has its own default. */
  samples?: number;
  seed: number;
  /** Seeds of targets that train over several (learning); default theirs. */
  seeds?: number[];
  /** Variants of the learning target (names, or `all`); default full and linear. */
  variants?: string;
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
  describe: 'Training samples/s of the default tiny EGMF (experiments/synthetic/meld.yaml) on each available backend',
  run: (opts) => runTrainBench({ steps: opts.samples, seed: opts.seed }),
  format: (raw) => {
    const r = raw as TrainBenchResult;
    const lines = Object.entries(r).map(([b, x]) => ('error' in x
      ? `${b.padEnd(11)} unavailable: ${x.error}`
      : `${b.padEnd(11)} ${String(x.samples_per_s).padStart(8)} samples/s  ${String(x.ms_per_step).padStart(6)} ms/step  (batch ${x.batch_size}, ${x.steps} steps, ${x.threads} thread(s))`));
    return ['default tiny EGMF training step (synthetic MELD, built-in LLM shape):', ...lines].join('\n');
  },
};

const learningTarget: BenchTarget = {
  name: 'learning',
  describe: `EGMF against the same fusion network with a linear head (and, with --variants, the ablation variants) on the default synthetic experiment, seeds ${LEARNING_SEEDS.join(', ')}; ~15 min on 2 cores for the default two variants`,
  optIn: true,
  run: (opts) => runLearningBench({ variants: parseVariants(opts.variants), seeds: opts.seeds, say: (m) => process.stderr.write(`${m}\n`) }),
  format: (raw) => formatLearning(raw as LearningResult),
};

/** Registered targets; `egmf bench` with no --target runs all that are not opt-in, in this order. */
export const benchTargets: BenchTarget[] = [dataTarget, trainTarget, learningTarget];

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
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object keyed by target' }),
  handler: async (argv) => {
    const samples = argv.samples as number | undefined;
    if (samples !== undefined && !(Number.isInteger(samples) && samples > 0)) {
      throw new EgmfError(`must be a positive integer, got ${String(samples)}`, { key: 'samples' });
    }
    const seeds = argv.seeds === undefined ? undefined : parseSeedList(String(argv.seeds));
    const results = await runBench(argv.target as string[], { samples, seed: Number(argv.seed), seeds, variants: argv.variants as string | undefined });
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
