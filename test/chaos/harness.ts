/**
 * Shared by the fault-injection scenarios in this folder: real `egmf` processes (a sweep
 * controller, workers, trials training EGMF on tiny synthetic data), the trial processes of a
 * sweep found through /proc, the sweep's journal and status, and MLflow's own Python client as
 * the oracle of what reached the tracking store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, runPython } from '../helpers.ts';

/** `EGMF_CHAOS_FULL=1` (set by `npm run chaos`; `npm test` runs the short versions) runs the longer versions of the scenarios. */
export const FULL = process.env.EGMF_CHAOS_FULL === '1';

/** The sweep settings every scenario trains with: tiny data, a tiny LLM, a few steps per epoch. */
export const TINY_SETS: Record<string, number> = { 'data.scale': 0.03, 'data.limit_train': 96, 'llm.pretrain_steps': 20, 'train.batch_size': 4 };
export const TINY = Object.entries(TINY_SETS).map(([k, v]) => `${k}: ${v}`).join(', ');
export const BASE_CONFIG = join(REPO, 'experiments', 'synthetic', 'meld.yaml');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A grid sweep over `train.lr` on the synthetic MELD config (grid: trial n gets `lrs[n]`). */
export function writeSpec(path: string, o: { name: string; lrs: number[]; epochs: number; parallel: number }): string {
  writeFileSync(path, [
    `name: ${o.name}`, 'method: grid',
    'metric: {name: valid/weighted_f1, goal: maximize}',
    `base_config: ${BASE_CONFIG}`,
    `set: {${TINY}, train.epochs: ${o.epochs}}`,
    'parameters:', `  train.lr: {values: [${o.lrs.join(', ')}]}`,
    `parallel: ${o.parallel}`, '',
  ].join('\n'));
  return path;
}

export interface Proc {
  child: ChildProcess;
  done: Promise<number | null>;
  out: () => string;
  err: () => string;
}

/** `egmf <args>` in the background, as a user would start it. */
export function egmf(args: string[], env: NodeJS.ProcessEnv, cwd: string): Proc {
  const child = spawn(process.execPath, [join(REPO, 'bin', 'egmf.mjs'), ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-200_000)));
  const done = new Promise<number | null>((ok) => child.on('close', (code) => ok(code)));
  return { child, done, out: () => stdout, err: () => stderr };
}

export const alive = (p: Proc): boolean => p.child.exitCode === null && p.child.signalCode === null;

/** Waits for `cond`; fails with `what` (and the tail of `proc`'s stderr) after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, proc?: Proc): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (proc && !alive(proc)) throw new Error(`waiting for ${what}: the process ended (code ${proc.child.exitCode})\n${proc.err().slice(-4000)}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${proc?.err().slice(-4000) ?? ''}`);
    await sleep(200);
  }
}

/** A live `egmf trial` process: its pid, its parent now, the executor that started it, the trial it trains. */
export interface TrialProc { pid: number; ppid: number; executor: number; trialId: string }

/** Live trial processes whose environment holds `needle` (e.g. the sweep's EGMF_SWEEP_DIR). */
export function trialProcesses(needle: string): TrialProc[] {
  const out: TrialProc[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${d}/environ`, 'latin1');
      if (!env.includes(needle) || !readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0').includes('trial')) continue;
      // "pid (comm) state ppid ...": a zombie has already stopped.
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1').replace(/^.*\) /, '').split(' ');
      if (stat[0] === 'Z') continue;
      const payload = env.split('\0').find((kv) => kv.startsWith('EGMF_TRIAL_PAYLOAD='))?.slice('EGMF_TRIAL_PAYLOAD='.length);
      let trialId = '';
      try {
        trialId = payload ? (JSON.parse(readFileSync(payload, 'utf8')) as { trialId: string }).trialId : '';
      } catch {
        // The payload is removed once its trial ended.
      }
      const executor = Number(env.split('\0').find((kv) => kv.startsWith('EGMF_TRIAL_PARENT='))?.slice('EGMF_TRIAL_PARENT='.length) ?? NaN);
      out.push({ pid: Number(d), ppid: Number(stat[1]), executor, trialId });
    } catch {
      // Gone, or not ours.
    }
  }
  return out;
}

/** Waits up to `ms` for the sweep's trial processes to go, then SIGKILLs and returns what was left. */
export async function orphansAfter(needle: string, ms: number): Promise<TrialProc[]> {
  const t0 = Date.now();
  while (trialProcesses(needle).length > 0 && Date.now() - t0 < ms) await sleep(200);
  const left = trialProcesses(needle);
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  return left;
}

export type JournalEvent = { type: string; id?: string; step?: number; state?: string };

export function journal(sweepDir: string): JournalEvent[] {
  const path = join(sweepDir, 'journal.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l) as JournalEvent);
}

/** The one sweep under `sweeps` (its folder), once the controller made it. */
export function onlySweep(sweeps: string): string | undefined {
  const ids = existsSync(sweeps) ? readdirSync(sweeps) : [];
  return ids.length > 0 ? join(sweeps, ids[0]!) : undefined;
}

/** A trial's last checkpoint (epochs done, finished), if it has one. */
export function checkpointOf(sweepDir: string, trialId: string): { epoch: number; finished: boolean } | undefined {
  try {
    return JSON.parse(readFileSync(join(sweepDir, 'trials', trialId, 'checkpoints', 'latest', 'state.json'), 'utf8')) as { epoch: number; finished: boolean };
  } catch {
    return undefined;
  }
}

export interface StatusTrial { id: string; state: string; value: number | null; steps: number; error?: string }
export interface Status { state: string; trials: Record<string, number>; trial_list: StatusTrial[] }

export async function sweepStatus(id: string, env: NodeJS.ProcessEnv, cwd: string): Promise<Status> {
  const p = egmf(['sweep', 'status', id, '--json'], env, cwd);
  const code = await p.done;
  if (code !== 0) throw new Error(`sweep status failed (${code}):\n${p.err()}`);
  return JSON.parse(p.out().trim().split('\n').pop()!) as Status;
}

export interface OracleRun {
  run_id: string;
  trial: string | null;
  status: string;
  state: string | null;
  parent: string | null;
  params: Record<string, string>;
  tags: Record<string, string>;
  /** Metric key → [step, value, timestamp] in the server's order (only with `histories`). */
  history?: Record<string, [number, number, number][]>;
}

/** Every run of the store as MLflow's own Python client reads it. */
export function mlflowRuns(uri: string, opts: { histories?: boolean } = {}): OracleRun[] {
  const py = runPython(`
import sys, os, json
os.environ['MLFLOW_ALLOW_FILE_STORE'] = 'true'
from mlflow.tracking import MlflowClient
uri = sys.argv[1]
c = MlflowClient(tracking_uri=uri if uri.startswith('http') else 'file:' + uri)
out = []
for e in c.search_experiments():
  for r in c.search_runs([e.experiment_id], max_results=50000):
    t = r.data.tags
    o = {'run_id': r.info.run_id, 'trial': t.get('sweep.trial_id'), 'status': r.info.status, 'state': t.get('sweep.state'),
         'parent': t.get('mlflow.parentRunId'), 'params': r.data.params, 'tags': t}
    if sys.argv[2] == '1':
      o['history'] = {k: [[m.step, m.value, m.timestamp] for m in c.get_metric_history(r.info.run_id, k)] for k in r.data.metrics}
    out.append(o)
print(json.dumps(out))
`, [uri, opts.histories ? '1' : '0']);
  if (py.status !== 0) throw new Error(`MLflow client failed:\n${py.stderr.slice(-3000)}`);
  return JSON.parse(py.stdout.trim().split('\n').pop()!) as OracleRun[];
}

/** Final (not superseded) trial runs per trial id. */
export function finalRuns(runs: readonly OracleRun[]): Map<string, OracleRun[]> {
  const m = new Map<string, OracleRun[]>();
  for (const r of runs) if (r.trial && r.state !== 'superseded') m.set(r.trial, [...(m.get(r.trial) ?? []), r]);
  return m;
}

/**
 * The counts every scenario reports (each must be 0): trials lost (not complete or pruned),
 * duplicated (more than one final MLflow run), wrongly failed, without a metric, MLflow runs
 * missing or not FINISHED (pruned trials end KILLED), and `egmf trial` processes left running.
 */
export function baseTable(st: Status, runs: readonly OracleRun[], o: { expectFailed?: ReadonlySet<string>; orphans: number }) {
  const expectFailed = o.expectFailed ?? new Set<string>();
  const good = st.trial_list.filter((t) => !expectFailed.has(t.id));
  const final = finalRuns(runs);
  return {
    trials_lost: good.filter((t) => t.state !== 'complete' && t.state !== 'pruned').length,
    trials_duplicated: [...final.values()].filter((rs) => rs.length > 1).length,
    trials_wrongly_failed: good.filter((t) => t.state === 'failed').length,
    trials_without_metric: good.filter((t) => t.value === null).length,
    mlflow_runs_missing: st.trial_list.filter((t) => !final.has(t.id)).length,
    mlflow_runs_unfinished: good.filter((t) => final.get(t.id)?.some((r) => r.status !== (t.state === 'pruned' ? 'KILLED' : 'FINISHED'))).length,
    orphans_left: o.orphans,
  };
}

/** `{key: 0, ...}` for every key of `table`: what each scenario asserts. */
export const zeros = <T extends Record<string, number>>(table: T): T => Object.fromEntries(Object.keys(table).map((k) => [k, 0])) as T;

/**
 * Samples the sweep's trial processes twice a second until stopped; `stop()` returns how many
 * trials were ever seen with two live processes at once (two deliveries training one trial);
 * `seen()` gives each such trial's processes when first seen together, with the time.
 */
export function watchDoubleDeliveries(needle: string): { stop: () => number; seen: () => Record<string, { at: string; procs: TrialProc[] }> } {
  const doubled = new Map<string, { at: string; procs: TrialProc[] }>();
  const timer = setInterval(() => {
    const seen = new Map<string, TrialProc[]>();
    for (const p of trialProcesses(needle)) if (p.trialId) seen.set(p.trialId, [...(seen.get(p.trialId) ?? []), p]);
    for (const [t, ps] of seen) if (ps.length > 1 && !doubled.has(t)) doubled.set(t, { at: new Date().toISOString(), procs: ps });
  }, 500);
  return { stop: () => { clearInterval(timer); return doubled.size; }, seen: () => Object.fromEntries(doubled) };
}

/** Where each scenario's table is kept (`test-artifacts/chaos/<scenario>.md`), beside the Chromium screenshots. */
export const CHAOS_ARTIFACTS = join(REPO, 'test-artifacts', 'chaos');

/**
 * Prints a fault's table (every count, one per line) and keeps it as Markdown in
 * {@link CHAOS_ARTIFACTS}, so a full `npm run chaos` leaves one table per fault behind.
 */
export function reportFault(scenario: string, fault: string, table: Record<string, number>, note?: string): void {
  const width = Math.max(...Object.keys(table).map((k) => k.length));
  const lines = [`chaos: ${fault}`, ...Object.entries(table).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`), ...(note ? [`  ${note}`] : [])];
  console.log(lines.join('\n'));
  mkdirSync(CHAOS_ARTIFACTS, { recursive: true });
  const md = [`### ${fault}`, '', '| count | value |', '|---|---:|', ...Object.entries(table).map(([k, v]) => `| ${k.replaceAll('_', ' ')} | ${v} |`), ...(note ? ['', note] : []), ''];
  writeFileSync(join(CHAOS_ARTIFACTS, `${scenario}.md`), `${md.join('\n')}\n`);
}
