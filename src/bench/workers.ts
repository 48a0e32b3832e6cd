/**
 * Workers benchmark: how much faster a local sweep runs with more trial processes at once.
 *
 * Protocol: one fixed sweep (`sweeps/speedup.yaml` by default: a grid of 8 equal trials, no
 * early stopping, so every run trains exactly the same trials) is run to the end once per
 * `--parallel` value, each as a real `egmf sweep run` process with a store and sweep folder of
 * its own, one after the other; the data and the built-in LLM are made first, so no run pays
 * for them. Two figures per run:
 *   - the whole sweep's wall time (the controller's start and end included), and
 *   - trials per hour while trials run: trials ÷ (the last trial run's end − the first one's
 *     start, from the trial runs' MLflow times). A sweep's start and end happen once per sweep,
 *     not per trial, so this is what a longer sweep's trials per hour tends to.
 * `ratio` = the first run's time ÷ each run's (trials per hour relative to the first). Each
 * trial's value must be the same in every run (`same_results`): the pool changes when trials
 * run, never what they compute. Each run also gives its mean trial length: a trial's own
 * fixed costs (its process's warm-up, new graphs, evaluation) weigh more in short trials, so
 * the ratio depends on it; `--set` sizes the trials like the default sweep's (300 steps).
 *
 * This machine's speed drifts by more than the effect measured (one pair of runs has given
 * 2.2× on two cores). `--rounds N` repeats the runs in ABBA order (1, 2, then 2, 1, ...), so a
 * drift during the bench weighs on both sides alike: the ratios are then of each value's mean
 * time, and each round's own ratio (its two adjacent runs) is given for a mean ± std.
 *
 *     npm run bench -- --target workers                 # parallel 1 and 2, 60-step trials
 *     npm run bench -- --target workers --set data.limit_train=1200 --set train.epochs=4
 *     npm run bench -- --target workers --rounds 3     # 1,2 · 2,1 · 1,2
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgmfError } from '../errors.ts';
import { parseSweepSpec } from '../sweep/spec.ts';
import { editSpecText } from '../cli/sweep.ts';
import { checkExperimentPath } from '../config/experiment.ts';
import { prepareSweep } from '../sweep/prepare.ts';
import { createStore } from '../tracking/index.ts';
import { REPO_ROOT } from '../train/process.ts';

export const WORKERS_SPEC = join(REPO_ROOT, 'sweeps', 'speedup.yaml');

export interface WorkersOptions {
  /** The sweep spec (default sweeps/speedup.yaml). */
  spec?: string;
  /** `--parallel` values, in the order run; the first is the reference (default 1, 2). */
  parallel?: readonly number[];
  /** Times through the `parallel` values, every other one in reverse order (default 1). */
  rounds?: number;
  /** Extra `--set` overrides of every run's trials. */
  sets?: readonly string[];
  /** Environment of the sweep processes (default this process's). */
  env?: NodeJS.ProcessEnv;
  say?: (m: string) => void;
}

export interface SweepTiming {
  parallel: number;
  /** Which time through the values (1-based). */
  round: number;
  wall_s: number;
  trials: number;
  trials_per_hour: number;
  /** Seconds from the first trial run's start to the last one's end. */
  trials_span_s: number;
  trials_per_hour_running: number;
  /** Mean seconds of one trial run (its MLflow start to end): the fixed cost of a sweep's start and end weighs less the longer its trials are. */
  trial_s: number;
  best: { trial: number; metric: number } | null;
}

export interface WorkersResult {
  spec: string;
  /** The `--set` overrides every run's trials had (e.g. a longer trial than the spec's). */
  sets: string[];
  runs: SweepTiming[];
  rounds: number;
  /**
   * Per `--parallel` value after the first: its speed relative to the first's (whole sweep,
   * and while trials run), from each value's mean time over the rounds.
   */
  ratio_wall: Record<string, number>;
  ratio_running: Record<string, number>;
  /** The same ratios within each round, and their mean and standard deviation (n − 1; 0 for one round). */
  rounds_ratio_wall: Record<string, RoundRatios>;
  rounds_ratio_running: Record<string, RoundRatios>;
  /** Every trial's value is the same in every run. */
  same_results: boolean;
}

export interface RoundRatios { each: number[]; mean: number; std: number }

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: readonly number[]): number => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

/** The order of the runs: the values, then reversed, and so on (ABBA), each with its round. */
export function runOrder(parallel: readonly number[], rounds: number): { parallel: number; round: number }[] {
  return Array.from({ length: rounds }, (_, i) => (i % 2 === 0 ? parallel : [...parallel].reverse()).map((p) => ({ parallel: p, round: i + 1 }))).flat();
}

interface SweepOut { sweep_id: string; parent_run_id: string; trials: { completed: number; pruned: number; failed: number }; best: { trial_id: string; metric: number } | null }

/** Runs `egmf sweep run` to its end; resolves with its JSON result and wall seconds. */
function runSweep(spec: string, parallel: number, dir: string, o: WorkersOptions): Promise<{ out: SweepOut; wall: number }> {
  const args = [join(REPO_ROOT, 'bin', 'egmf.mjs'), 'sweep', 'run', spec, '--parallel', String(parallel), '--tracking-uri', join(dir, 'mlruns'),
    '--sweep-dir', join(dir, 'sweeps'), '--json', ...(o.sets ?? []).flatMap((s) => ['--set', s])];
  const t0 = performance.now();
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...(o.env ?? process.env), MLFLOW_EXPERIMENT_NAME: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('error', fail);
    child.on('close', (code) => {
      const wall = (performance.now() - t0) / 1000;
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0) return fail(new EgmfError(`egmf sweep run --parallel ${parallel} exited with code ${code}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`, { file: spec }));
      try {
        ok({ out: JSON.parse(last) as SweepOut, wall });
      } catch {
        fail(new EgmfError(`egmf sweep run --parallel ${parallel} printed no JSON result (last line: ${last.slice(0, 200)})`, { file: spec }));
      }
    });
  });
}

/** A trial's number, from its id (`<sweep id>-t<number>-s<seed index>`). */
const trialNumber = (id: string): number => Number(/-t(\d+)-s\d+$/.exec(id)?.[1] ?? NaN);

/** Each finished trial's value by trial number, and the first failed trial's error, from the sweep's journal. */
function trialValues(journal: string): { values: Map<number, number | null>; failure?: string } {
  const values = new Map<number, number | null>();
  let failure: string | undefined;
  for (const line of readFileSync(journal, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { type: string; id?: string; value?: number; state?: string; error?: string };
    if (e.type === 'tell' && e.id !== undefined) values.set(trialNumber(e.id), e.value ?? null);
    if (e.type === 'tell' && e.state === 'failed') failure ??= `trial ${e.id}: ${(e.error ?? 'failed').split('\n')[0]}`;
  }
  return failure !== undefined ? { values, failure } : { values };
}

export async function runWorkersBench(o: WorkersOptions = {}): Promise<WorkersResult> {
  const spec = o.spec ?? WORKERS_SPEC;
  if (!existsSync(spec)) throw new EgmfError('sweep spec not found', { file: spec });
  const parallel = o.parallel ?? [1, 2];
  if (parallel.length === 0 || parallel.some((p) => !Number.isInteger(p) || p < 1)) throw new EgmfError(`--parallel values must be integers >= 1, got ${parallel.join(',')}`, { key: 'parallel' });
  if (new Set(parallel).size !== parallel.length) throw new EgmfError(`--parallel values must differ, got ${parallel.join(',')}`, { key: 'parallel' });
  const rounds = o.rounds ?? 1;
  if (!Number.isInteger(rounds) || rounds < 1) throw new EgmfError(`--rounds must be an integer >= 1, got ${rounds}`, { key: 'rounds' });
  const say = o.say ?? (() => undefined);
  // The data and the LLM first, as the controller would make them (the spec with the same
  // --set applied): no timed run pays for them.
  const text = editSpecText(readFileSync(spec, 'utf8'), undefined, o.sets ?? []);
  await prepareSweep(parseSweepSpec(text, { file: spec, validateParamPath: checkExperimentPath }), say);
  const tmp = mkdtempSync(join(tmpdir(), 'egmf-bench-workers-'));
  try {
    const runs: SweepTiming[] = [];
    const values: Map<number, number | null>[] = [];
    for (const { parallel: p, round: k } of runOrder(parallel, rounds)) {
      const dir = join(tmp, `r${k}-p${p}`);
      say(`sweep ${spec} --parallel ${p}${rounds > 1 ? ` (round ${k} of ${rounds})` : ''} ...`);
      const { out, wall } = await runSweep(spec, p, dir, o);
      const store = createStore(join(dir, 'mlruns'));
      const parent = await store.getRun(out.parent_run_id);
      const children = await store.searchRuns({ experimentIds: [parent.info.experimentId], filter: `tags.mlflow.parentRunId = '${out.parent_run_id}'` });
      const ends = children.map((r) => r.info.endTime).filter((t): t is number => t !== null);
      const span = ends.length > 0 ? (Math.max(...ends) - Math.min(...children.map((r) => r.info.startTime))) / 1000 : NaN;
      const ran = children.filter((r) => r.info.endTime !== null).map((r) => (r.info.endTime! - r.info.startTime) / 1000);
      const trialSeconds = mean(ran); // NaN when no trial run ended
      const trials = out.trials.completed + out.trials.pruned + out.trials.failed;
      const told = trialValues(join(dir, 'sweeps', out.sweep_id, 'journal.jsonl'));
      // A failed trial takes less time than one that trains: the timing would mean nothing.
      if (out.trials.failed > 0) throw new EgmfError(`${out.trials.failed} of ${trials} trials failed with --parallel ${p}, so its time measures nothing (${told.failure ?? 'no cause recorded'})`, { file: spec });
      values.push(told.values);
      const best = out.best ? { trial: trialNumber(out.best.trial_id), metric: out.best.metric } : null;
      runs.push({ parallel: p, round: k, wall_s: round(wall), trials, trials_per_hour: round((trials / wall) * 3600, 0), trials_span_s: round(span), trials_per_hour_running: round((trials / span) * 3600, 0), trial_s: round(trialSeconds), best });
      say(`  ${round(wall)} s, ${trials} trials of ${round(trialSeconds)} s on average (${round(span)} s from the first trial's start to the last one's end)`);
    }
    const [first, ...others] = parallel as [number, ...number[]];
    const time = (p: number, f: (r: SweepTiming) => number, k?: number) => mean(runs.filter((r) => r.parallel === p && (k === undefined || r.round === k)).map(f));
    const ratio = (f: (r: SweepTiming) => number) => Object.fromEntries(others.map((p) => [String(p), round(time(first, f) / time(p, f))]));
    const perRound = (f: (r: SweepTiming) => number) => Object.fromEntries(others.map((p) => {
      const each = Array.from({ length: rounds }, (_, i) => time(first, f, i + 1) / time(p, f, i + 1));
      return [String(p), { each: each.map((x) => round(x)), mean: round(mean(each)), std: round(std(each)) }];
    }));
    const key = (m: Map<number, number | null>) => JSON.stringify([...m].sort((a, b) => a[0] - b[0]));
    return {
      spec, sets: [...(o.sets ?? [])], runs,
      rounds,
      ratio_wall: ratio((r) => r.wall_s),
      ratio_running: ratio((r) => r.trials_span_s),
      rounds_ratio_wall: perRound((r) => r.wall_s),
      rounds_ratio_running: perRound((r) => r.trials_span_s),
      same_results: values.every((v) => key(v) === key(values[0]!)),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatWorkers(r: WorkersResult): string {
  const sets = r.sets.length > 0 ? ` with ${r.sets.map((x) => `--set ${x}`).join(' ')}` : '';
  const many = r.rounds > 1;
  const lines = [`${r.spec}${sets}: the same sweep ${many ? `${r.rounds} times per --parallel value, in ABBA order` : 'once per --parallel value'} (data and LLM made first)`];
  for (const x of r.runs) {
    // One round: each run's ratio beside it; several: the ratios of the means, below.
    const rw = many ? undefined : r.ratio_wall[String(x.parallel)];
    const rr = many ? undefined : r.ratio_running[String(x.parallel)];
    lines.push(`  ${many ? `round ${x.round}, ` : ''}--parallel ${x.parallel}: ${x.wall_s} s for ${x.trials} trials of ${x.trial_s} s on average (${x.trials_per_hour} trials/h${rw !== undefined ? `, ${rw}×` : ''}); ` +
      `while trials ran ${x.trials_span_s} s (${x.trials_per_hour_running} trials/h${rr !== undefined ? `, ${rr}×` : ''})` +
      (x.best ? `; best trial ${x.best.trial} at ${x.best.metric}` : ''));
  }
  if (many) {
    const ref = r.runs[0]!.parallel;
    const each = (q: RoundRatios) => `${q.each.join(' / ')} (${q.mean} ± ${q.std})`;
    for (const p of Object.keys(r.ratio_wall)) {
      lines.push(`  --parallel ${p} against ${ref}, from the mean times: ${r.ratio_wall[p]}× whole sweep, ${r.ratio_running[p]}× while trials ran; ` +
        `round by round ${each(r.rounds_ratio_wall[p]!)} and ${each(r.rounds_ratio_running[p]!)}`);
    }
  }
  lines.push(r.same_results ? '  every trial gave the same value in every run' : '  TRIAL VALUES DIFFER between runs');
  return lines.join('\n');
}
