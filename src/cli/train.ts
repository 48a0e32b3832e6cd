import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { EgmfError } from '../errors.ts';
import { loadExperiment } from '../config/experiment.ts';
import type { ExperimentConfig } from '../config/experiment.ts';
import { createStore, defaultTrackingUri, startRun } from '../tracking/index.ts';
import type { TrackingStore } from '../tracking/index.ts';
import { trainExperiment } from '../train/trainer.ts';
import type { TrainResult } from '../train/trainer.ts';
import { publicConfig } from '../train/run-logger.ts';
import { formatMeanStd, meanStdMetrics } from '../train/seeds.ts';

export interface TrainArgs {
  config: string;
  set: string[];
  seed?: number;
  resume: boolean;
  'tracking-uri'?: string;
  experiment?: string;
  out?: string;
  backend?: string;
  json: boolean;
  tracking: boolean;
  'parent-run'?: string;
  tag: string[];
  'run-name'?: string;
}

/** `--tag key=value` flags → a tag record; a flag without `=` or with an empty key is an error naming it. */
export function parseTags(flags: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of flags) {
    const i = f.indexOf('=');
    if (i <= 0) throw new EgmfError(`must be key=value, got '${f}'`, { key: 'tag' });
    out[f.slice(0, i)] = f.slice(i + 1);
  }
  return out;
}

/** Tracking URI: flag, then config, then MLFLOW_TRACKING_URI, then ./mlruns. */
export function trackingUriFor(flag: string | undefined, cfg: ExperimentConfig): string {
  return flag ?? cfg.tracking.uri ?? defaultTrackingUri();
}

/** Experiment name: flag, then MLFLOW_EXPERIMENT_NAME, then config, then the config name. */
export function experimentNameFor(flag: string | undefined, cfg: ExperimentConfig): string {
  return flag ?? process.env.MLFLOW_EXPERIMENT_NAME ?? cfg.tracking.experiment ?? cfg.name;
}

export function defaultOutDir(cfg: ExperimentConfig, seed: number): string {
  return resolve('outputs', cfg.name, `seed${seed}`);
}

export const trainCommand: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'Train EGMF on an experiment config, tracked in MLflow',
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string', demandOption: true, describe: 'Experiment YAML (experiments/...)' })
      .option('set', { type: 'string', array: true, default: [], describe: 'Override a config key: --set train.lr=5e-4 (repeatable)' })
      .option('seed', { type: 'number', describe: 'Seed of this run (default: config seed, or every seed in `seeds`)' })
      .option('resume', { type: 'boolean', default: false, describe: 'Continue from the latest checkpoint in the run folder' })
      .option('tracking-uri', { type: 'string', describe: 'MLflow tracking URI (default: MLFLOW_TRACKING_URI, else ./mlruns)' })
      .option('experiment', { type: 'string', describe: 'MLflow experiment name (default: MLFLOW_EXPERIMENT_NAME, else the config name)' })
      .option('out', { type: 'string', describe: 'Run folder (default outputs/<name>/seed<seed>)' })
      .option('backend', { type: 'string', choices: ['auto', 'wasm', 'cpu', 'tensorflow'], describe: 'TensorFlow.js backend (overrides the config)' })
      .option('tracking', { type: 'boolean', default: true, describe: 'Log to MLflow (--no-tracking to skip)' })
      .option('parent-run', { type: 'string', describe: 'Log the run(s) as children of this MLflow run (reports, sweeps)' })
      .option('tag', { type: 'string', array: true, default: [], describe: 'Tag the run: --tag key=value (repeatable)' })
      .option('run-name', { type: 'string', describe: 'MLflow run name (default: generated)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the result as one JSON object on the last line' }) as unknown as Argv<TrainArgs>,
  handler: async (argv) => {
    const sets = [...(argv.set ?? []), ...(argv.backend ? [`backend=${argv.backend}`] : [])];
    const cfg = loadExperiment(argv.config, sets);
    const say = (m: string) => process.stderr.write(`${m}\n`);
    const store = !argv.tracking ? null : createStore(trackingUriFor(argv['tracking-uri'], cfg));
    const experimentName = experimentNameFor(argv.experiment, cfg);
    const seeds = argv.seed !== undefined ? [argv.seed] : cfg.seeds.length > 0 ? cfg.seeds : [cfg.seed];
    if (store) say(`tracking: ${store.uri} (experiment '${experimentName}')`);
    const target = { tags: parseTags(argv.tag ?? []), ...(argv['run-name'] ? { runName: argv['run-name'] } : {}) };

    if (seeds.length === 1) {
      const seed = seeds[0]!;
      const outDir = argv.out ? resolve(argv.out) : defaultOutDir(cfg, seed);
      const r = await trainOne(cfg, seed, outDir, argv.resume, store, experimentName, argv['parent-run'], say, true, target);
      printResult(r, argv.json);
      return;
    }
    // Several seeds: a parent run holds one child run per seed and the mean of their metrics.
    const parent = store ? await startRun(store, {
      experimentName, runName: target.runName ?? `${cfg.name}-seeds`, tags: { ...target.tags, 'egmf.seeds': seeds.join(',') },
      ...(argv['parent-run'] ? { parentRunId: argv['parent-run'] } : {}),
    }) : null;
    if (parent) {
      process.stdout.write(`run_id: ${parent.runId}\n`);
      await parent.logParams(publicConfig(cfg));
    }
    const results: TrainResult[] = [];
    for (const seed of seeds) {
      const outDir = argv.out ? join(resolve(argv.out), `seed${seed}`) : defaultOutDir(cfg, seed);
      results.push(await trainOne(cfg, seed, outDir, argv.resume, store, experimentName, parent?.runId, say, false, { tags: target.tags }));
    }
    const test = meanStdMetrics(results.map((r) => r.test));
    const baselines = meanStdMetrics(results.map((r) => r.baselines));
    const mean = Object.fromEntries(Object.entries(test).map(([k, v]) => [k, v.mean]));
    if (parent) {
      await parent.logMetrics({
        ...Object.fromEntries(Object.entries(test).flatMap(([k, v]) => [[`test/${k}`, v.mean], [`test/${k}_std`, v.std]])),
        ...Object.fromEntries(Object.entries(baselines).map(([k, v]) => [`baseline/${k}/valid/${results[0]!.metricName}`, v.mean])),
      }, 0);
      await parent.end('FINISHED');
    }
    const out = {
      run_id: parent?.runId ?? null, seeds, test_mean: mean, test_std: Object.fromEntries(Object.entries(test).map(([k, v]) => [k, v.std])),
      baselines: Object.fromEntries(Object.entries(baselines).map(([k, v]) => [k, v.mean])),
      runs: results.map((r) => ({ run_id: r.runId, test: r.test, best_valid: r.bestValid, learned: r.learned })),
    };
    if (argv.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else {
      const shown = Object.entries(test).filter(([k]) => !k.startsWith('f1_')).map(([k, v]) => `${k} ${formatMeanStd(v)}`).join(', ');
      process.stdout.write(`test, mean ± std over seeds ${seeds.join(', ')}: ${shown}\n`);
      process.stdout.write(`baselines, valid ${results[0]!.metricName}: ${Object.entries(baselines).map(([k, v]) => `${k} ${formatMeanStd(v)}`).join(', ')}\n`);
    }
  },
};

async function trainOne(
  cfg: ExperimentConfig, seed: number, outDir: string, resume: boolean, store: TrackingStore | null,
  experimentName: string, parentRunId: string | undefined, say: (m: string) => void, printRunId = true,
  target: { tags?: Record<string, string>; runName?: string } = {},
): Promise<TrainResult> {
  mkdirSync(outDir, { recursive: true });
  const cfgFile = join(outDir, 'config.json');
  if (!resume || !existsSync(cfgFile)) writeFileSync(cfgFile, `${JSON.stringify({ ...cfg, seed }, null, 2)}\n`);
  return trainExperiment(cfg, {
    outDir, resume, seed, say,
    tracking: store ? { store, experimentName, ...(parentRunId ? { parentRunId } : {}), ...target } : null,
    onRunStarted: (id) => {
      if (printRunId) process.stdout.write(`run_id: ${id}\n`);
      else say(`seed ${seed}: run_id ${id}`);
    },
  });
}

function fmtMetrics(m: Record<string, number>): string {
  return Object.entries(m).filter(([k]) => !k.startsWith('f1_')).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
}

function printResult(r: TrainResult, json: boolean): void {
  const line = {
    run_id: r.runId, out_dir: r.outDir, metric: r.metricName, best_epoch: r.bestEpoch, best_valid: r.bestValid,
    valid: r.valid, test: r.test, baselines: r.baselines, learned: r.learned, steps: r.steps, seconds: Math.round(r.seconds * 10) / 10,
    train_samples_per_s: Math.round(r.trainSamplesPerSecond * 10) / 10,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return;
  }
  process.stdout.write(`best epoch ${r.bestEpoch + 1}: valid ${r.metricName} ${r.bestValid?.toFixed(4) ?? 'n/a'}\n`);
  process.stdout.write(`baselines, valid ${r.metricName}: ${Object.entries(r.baselines).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}${r.learned ? '' : ' (not beaten: the run learned nothing beyond the class prior)'}\n`);
  process.stdout.write(`test: ${fmtMetrics(r.test)}\n`);
  process.stdout.write(`run folder: ${r.outDir}\n`);
}

