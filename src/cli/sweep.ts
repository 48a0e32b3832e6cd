import type { Argv, CommandModule } from 'yargs';
import { EgmfError } from '../errors.ts';
import { defaultTrackingUri } from '../tracking/index.ts';
import {
  bestTrial, countTrials, liveController, loadSweepOf, readMeta, resumeSweep, startSweep, studyFromJournal, sweepDir, sweepRoot,
  type ControllerOptions, type SweepResult,
} from '../sweep/controller.ts';
import { LocalExecutor, defaultParallelism } from '../sweep/executors/local.ts';
import { QueueExecutor } from '../sweep/executors/queue.ts';
import { DEFAULT_QUEUE_NAME, redactRedisUrl, redisOptions } from '../sweep/executors/queue-common.ts';
import type { Executor } from '../sweep/executors/types.ts';
import { join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { parseScalar } from '../config/spec.ts';
import { prepareSweep } from '../sweep/prepare.ts';
import type { SweepSpec } from '../sweep/spec.ts';
import { TRIAL_COMMAND_ENV } from '../sweep/trial-protocol.ts';
import { formatBaselines } from '../train/baselines/index.ts';
import { confirmBest } from '../sweep/confirm.ts';
import { formatMeanStd, parseSeedList } from '../train/seeds.ts';

interface CommonArgs { json?: boolean; parallel?: number; 'sweep-dir'?: string; attempts: number; 'queue-name': string }
interface RunArgs extends CommonArgs { spec: string; 'tracking-uri'?: string; queue?: string; experiment?: string; 'run-cap'?: number; set?: string[]; prepare?: boolean }
interface ResumeArgs extends CommonArgs { 'sweep-id': string; 'tracking-uri'?: string; queue?: string }
interface StatusArgs { 'sweep-id': string; json?: boolean; 'sweep-dir'?: string }
interface ConfirmArgs { 'sweep-id': string; seeds: string; json?: boolean; 'sweep-dir'?: string; tracking: boolean }

const common = <T>(y: Argv<T>): Argv<T> => y
  .option('parallel', { type: 'number', describe: 'trials at once (default: the spec\'s `parallel`, else one per GPU or core; with --queue: the spec\'s, else 4)' })
  .option('json', { type: 'boolean', describe: 'print progress on stderr and, as the last stdout line, one JSON object with the results' })
  .option('sweep-dir', { type: 'string', describe: 'where sweeps are persisted (default: EGMF_SWEEP_DIR, else .egmf/sweeps)' })
  .option('attempts', { type: 'number', default: 3, describe: 'deliveries of a trial whose process dies without a result (killed, crashed) before it counts as failed; each resumes from its last checkpoint. A trial that reports its own error fails at once' })
  .option('queue-name', { type: 'string', default: DEFAULT_QUEUE_NAME, describe: 'with --queue: the BullMQ queue name workers listen on' }) as Argv<T>;

function checkParallel(p: number | undefined): number | undefined {
  if (p !== undefined && (!Number.isInteger(p) || p < 1)) throw new EgmfError(`must be an integer >= 1, got ${p}`, { key: 'parallel' });
  return p;
}

function executorFor(queue: string | null | undefined, args: CommonArgs, progress: (l: string) => void): (parallel: number) => Promise<Executor> {
  if (!Number.isInteger(args.attempts) || args.attempts < 1) throw new EgmfError(`must be an integer >= 1, got ${args.attempts}`, { key: 'attempts' });
  if (queue) {
    redisOptions(queue);
    return async () => {
      try {
        return await QueueExecutor.connect({ url: queue, queueName: args['queue-name'], attempts: args.attempts, log: progress });
      } catch (e) {
        throw new EgmfError(`cannot reach Redis at ${redactRedisUrl(queue)}: ${(e as Error).message}`, { key: 'queue' });
      }
    };
  }
  const verbose = process.env.EGMF_SWEEP_VERBOSE === '1';
  // Local trials keep their folders (checkpoints, summaries) under the sweep's own root.
  const env = args['sweep-dir'] ? { env: { EGMF_SWEEP_DIR: resolve(args['sweep-dir']) } } : {};
  return async (parallel) => new LocalExecutor({ parallel, attempts: args.attempts, log: progress, ...env, ...(verbose ? { onOutput: (id: string, line: string) => progress(`[${id}] ${line}`) } : {}) });
}

/** Ctrl-C stops asking and leaves in-flight trials for `sweep resume`; a second one exits at once. */
function stopSignal(progress: (l: string) => void): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const onSig = (sig: NodeJS.Signals): void => {
    if (ac.signal.aborted) process.exit(130);
    progress(`${sig}: stopping; running trials are left for 'egmf sweep resume'`);
    ac.abort();
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  return { signal: ac.signal, dispose: () => { process.off('SIGINT', onSig); process.off('SIGTERM', onSig); } };
}

/** Applies --run-cap and --set to the spec text (kept with the sweep, so resume sees them). */
export function editSpecText(text: string, runCap: number | undefined, sets: readonly string[]): string {
  if (runCap === undefined && sets.length === 0) return text;
  const doc = parseDocument(text);
  if (runCap !== undefined) {
    if (!Number.isInteger(runCap) || runCap < 1) throw new EgmfError(`must be an integer >= 1, got ${runCap}`, { key: 'run-cap' });
    doc.set('run_cap', runCap);
  }
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new EgmfError(`expects key=value, got '${s}'`, { key: 'set' });
    doc.setIn(['set', s.slice(0, eq).trim()], parseScalar(s.slice(eq + 1)));
  }
  return doc.toString();
}

function printResult(r: SweepResult, json: boolean | undefined): void {
  if (json) {
    const out = {
      sweep_id: r.sweepId,
      parent_run_id: r.parentRunId,
      trials: r.trials,
      best: r.best ? { run_id: r.best.runId, trial_id: r.best.trialId, params: r.best.params, metric: r.best.metric } : null,
      baselines: r.baselines,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const t = r.trials;
  const lines = [`sweep ${r.sweepId}: ${t.completed} completed, ${t.pruned} pruned, ${t.failed} failed${r.finished ? '' : ' (stopped; resume with: egmf sweep resume ' + r.sweepId + ')'}`];
  if (r.best) {
    lines.push(`best configuration (trial ${r.best.trialId}, run ${r.best.runId}): metric = ${r.best.metric}`);
    for (const [k, v] of Object.entries(r.best.params)) lines.push(`  ${k} = ${JSON.stringify(v)}`);
    lines.push(`baselines on the best trial's data: ${formatBaselines(r.baselines, String)}`);
  } else {
    lines.push('no trial completed: there is no best configuration');
  }
  lines.push(`tracking store: ${r.trackingUri} (parent run ${r.parentRunId})`);
  if (r.finished) lines.push(`summary: ${r.summaryDir} (also the parent run's artifact folder summary/)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function execute(args: CommonArgs, go: (opts: ControllerOptions) => Promise<SweepResult>, queue: string | null | undefined): Promise<void> {
  const progress = (l: string): void => void (args.json ? process.stderr : process.stdout).write(`${l}\n`);
  const stop = stopSignal(progress);
  try {
    const parallel = checkParallel(args.parallel);
    const r = await go({
      ...(args['sweep-dir'] ? { root: args['sweep-dir'] } : {}),
      executor: executorFor(queue, args, progress),
      ...(parallel !== undefined ? { parallel } : {}),
      log: progress,
      signal: stop.signal,
    });
    printResult(r, args.json);
    if (!r.finished) process.exitCode = 130;
  } finally {
    stop.dispose();
  }
}

const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <spec>',
  describe: 'Run a sweep: locally in parallel processes, or as the controller of `egmf worker`s with --queue',
  builder: (y: Argv) => common(y
    .positional('spec', { type: 'string', demandOption: true, describe: 'sweep spec YAML' })
    .option('tracking-uri', { type: 'string', describe: 'file store path or MLflow server (default: MLFLOW_TRACKING_URI, else ./mlruns)' })
    .option('queue', { type: 'string', describe: 'redis://host:port: enqueue trials for `egmf worker`s instead of running them here' })
    .option('experiment', { type: 'string', describe: 'MLflow experiment (default: MLFLOW_EXPERIMENT_NAME, else the spec name)' })
    .option('run-cap', { type: 'number', describe: "override the spec's run_cap (e.g. a quick reduced sweep)" })
    .option('set', { type: 'string', array: true, default: [], describe: "add a fixed config override to the spec's `set` (key=value, repeatable)" })
    .option('prepare', { type: 'boolean', default: true, describe: 'generate synthetic data and pretrain the built-in LLM before trials start (--no-prepare to skip)' })) as Argv<RunArgs>,
  handler: (args) => {
    const uri = args['tracking-uri'] ?? defaultTrackingUri();
    if (args.queue && !/^https?:\/\//i.test(uri)) {
      process.stderr.write(`warning: trials log to the file store ${uri}; workers on other machines need an http(s) MLflow server (--tracking-uri)\n`);
    }
    return execute(args, (opts) => startSweep(args.spec, {
    ...opts,
    trackingUri: uri,
    ...(args.experiment ?? process.env.MLFLOW_EXPERIMENT_NAME ? { experimentName: args.experiment ?? process.env.MLFLOW_EXPERIMENT_NAME } : {}),
    queue: args.queue ?? null,
    queueName: args.queue ? args['queue-name'] : null,
    defaultParallel: () => (args.queue ? 4 : defaultParallelism()),
    editSpec: (text) => editSpecText(text, args['run-cap'], args.set ?? []),
    // Trials share the synthetic data and the built-in LLM: make them once, here. A custom
    // trial command (EGMF_TRIAL_COMMAND) brings its own needs.
    ...(args.prepare && !process.env[TRIAL_COMMAND_ENV] ? { prepare: (spec: SweepSpec) => prepareSweep(spec, (m) => process.stderr.write(`${m}\n`)) } : {}),
  }), args.queue);
  },
};

const resumeCommand: CommandModule<object, ResumeArgs> = {
  command: 'resume <sweep-id>',
  describe: 'Resume a stopped or killed sweep: finished trials are kept, interrupted ones run again',
  builder: (y: Argv) => common(y
    .positional('sweep-id', { type: 'string', demandOption: true })
    .option('tracking-uri', { type: 'string', describe: 'override the tracking store recorded with the sweep' })
    .option('queue', { type: 'string', describe: 'override the Redis queue recorded with the sweep' })) as Argv<ResumeArgs>,
  handler: async (args) => {
    const dir = sweepDir(args['sweep-dir'] ?? sweepRoot(), args['sweep-id']);
    const queue = args.queue ?? readMeta(dir).queue;
    await execute(args, (opts) => resumeSweep(args['sweep-id'], { ...opts, ...(args.queue ? { queue: args.queue } : {}), ...(args['tracking-uri'] ? { trackingUri: args['tracking-uri'] } : {}) }), queue);
  },
};

const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status <sweep-id>',
  describe: 'Show a sweep\'s trials, their states and the best configuration so far',
  builder: (y: Argv) => y
    .positional('sweep-id', { type: 'string', demandOption: true })
    .option('json', { type: 'boolean', describe: 'print one JSON object' })
    .option('sweep-dir', { type: 'string', describe: 'where sweeps are persisted (default: EGMF_SWEEP_DIR, else .egmf/sweeps)' }) as Argv<StatusArgs>,
  handler: (args) => {
    const dir = sweepDir(args['sweep-dir'] ?? sweepRoot(), args['sweep-id']);
    const meta = readMeta(dir);
    const spec = loadSweepOf(dir, meta);
    const study = studyFromJournal(spec, meta.sweepId, join(dir, 'journal.jsonl'));
    const trials = study.trials();
    const counts = countTrials(trials);
    const best = study.best();
    const top = bestTrial(study);
    const state = meta.finishedAt ? 'finished' : liveController(dir) !== undefined ? 'running' : 'stopped';
    if (args.json) {
      process.stdout.write(`${JSON.stringify({
        sweep_id: meta.sweepId, state, parent_run_id: meta.parentRunId, tracking_uri: meta.trackingUri, queue: meta.queue ? redactRedisUrl(meta.queue) : null,
        trials: counts, best: best && top ? { trial_id: top.id, params: best.params, metric: best.value } : null,
        trial_list: trials.map((t) => ({ id: t.id, state: t.state, value: t.value ?? null, steps: t.intermediate.length, params: t.params, ...(t.error ? { error: t.error } : {}) })),
      })}\n`);
      return;
    }
    const lines = [
      `sweep ${meta.sweepId} (${state}): ${spec.method}, ${spec.metric.goal} ${spec.metric.name}`,
      `trials: ${counts.completed} completed, ${counts.pruned} pruned, ${counts.failed} failed, ${counts.running} running`,
      ...trials.map((t) => `  ${t.id}  ${t.state.padEnd(8)} ${t.value !== undefined ? String(t.value) : '-'}  steps=${t.intermediate.length}${t.error ? `  error: ${t.error.trim().split('\n').pop()}` : ''}`),
      best && top ? `best so far: trial ${top.id}, ${spec.metric.name} = ${best.value}, params ${JSON.stringify(best.params)}` : 'best so far: none',
      `tracking store: ${meta.trackingUri} (parent run ${meta.parentRunId})`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};

const confirmCommand: CommandModule<object, ConfirmArgs> = {
  command: 'confirm <sweep-id>',
  describe: 'Re-train the best configuration with other seeds: what it is worth beyond the seed it was selected on',
  builder: (y: Argv) => y
    .positional('sweep-id', { type: 'string', demandOption: true })
    .option('seeds', { type: 'string', default: '2222,3333', describe: 'comma-separated seeds to re-train with' })
    .option('tracking', { type: 'boolean', default: true, describe: 'log the runs under the sweep\'s parent run (--no-tracking to skip)' })
    .option('json', { type: 'boolean', describe: 'print progress on stderr and, as the last stdout line, one JSON object' })
    .option('sweep-dir', { type: 'string', describe: 'where sweeps are persisted (default: EGMF_SWEEP_DIR, else .egmf/sweeps)' }) as Argv<ConfirmArgs>,
  handler: async (args) => {
    const seeds = parseSeedList(String(args.seeds));
    const say = (m: string) => process.stderr.write(`${m}\n`);
    const r = await confirmBest(args['sweep-id'], { seeds, tracking: args.tracking, say, ...(args['sweep-dir'] ? { root: args['sweep-dir'] } : {}) });
    if (args.json) {
      process.stdout.write(`${JSON.stringify({
        sweep_id: r.sweepId, trial_id: r.trialId, params: r.params, metric: r.metric, sweep_value: r.sweepValue,
        runs: r.runs.map((x) => ({ seed: x.seed, value: x.value, run_id: x.runId })), mean: r.summary.mean, std: r.summary.std, max_diff: r.maxDiff, baselines: r.baselines,
      })}\n`);
      return;
    }
    process.stdout.write([
      `best trial ${r.trialId}: ${r.metric} ${r.sweepValue.toFixed(4)} in the sweep`,
      ...r.runs.map((x) => `  seed ${x.seed}: ${x.value.toFixed(4)} (${(x.value - r.sweepValue >= 0 ? '+' : '')}${(x.value - r.sweepValue).toFixed(4)})`),
      `re-trained, mean ± std over seeds ${seeds.join(', ')}: ${formatMeanStd(r.summary)}; largest difference from the sweep's value ${r.maxDiff.toFixed(4)}`,
      `baselines on its data: ${formatBaselines(r.baselines, (v) => v.toFixed(4))}`,
    ].join('\n') + '\n');
  },
};

export const sweepCommand: CommandModule = {
  command: 'sweep <command>',
  describe: 'Hyperparameter sweeps tracked in MLflow: run, resume, status, confirm',
  builder: (y: Argv) => y.command(runCommand).command(resumeCommand).command(statusCommand).command(confirmCommand).demandCommand(1, 'Name a sweep command (see egmf sweep --help).'),
  handler: () => undefined,
};
