/**
 * Fault injection with real processes: `egmf sweep run` is SIGKILLed while trials run (real
 * `egmf trial` processes training EGMF on tiny synthetic data), then `egmf sweep resume`
 * finishes the sweep. Counted afterwards, each of which must be 0: trials lost, trials
 * duplicated (more than one MLflow run), trials wrongly failed, orphaned trial processes
 * left running after the kill, MLflow trial runs not FINISHED.
 *
 * `npm run chaos` runs this folder; EGMF_CHAOS_ROUNDS=N (default 1 in CI, 3 in `npm run chaos`) repeats the kill at
 * different moments (after 1, 2, ... finished trials).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, runPython, tempDir } from '../helpers.ts';
import { FULL, reportFault } from './harness.ts';

const tmp = tempDir('egmf-chaos-');
afterAll(() => tmp.cleanup());
const ROUNDS = Math.max(1, Number(process.env.EGMF_CHAOS_ROUNDS ?? (FULL ? 3 : 1)));
const TRIALS = 4;

/** Live processes whose environment holds `needle` (the trials inherit EGMF_SWEEP_DIR). */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').includes(needle) && readFileSync(`/proc/${d}/cmdline`, 'latin1').includes('trial')) out.push(Number(d));
    } catch {
      // gone, or not ours
    }
  }
  return out;
}

function journalCounts(sweepDir: string): { tells: number; asks: number } {
  let text = '';
  try {
    text = readFileSync(join(sweepDir, 'journal.jsonl'), 'utf8');
  } catch {
    return { tells: 0, asks: 0 };
  }
  return { tells: (text.match(/"type":"tell"/g) ?? []).length, asks: (text.match(/"type":"ask"/g) ?? []).length };
}

function egmf(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [join(REPO, 'bin', 'egmf.mjs'), ...args], { cwd: tmp.path, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-6000)));
  const done = new Promise<number | null>((ok) => child.on('close', (code) => ok(code)));
  return { child, done, out: () => stdout, err: () => stderr };
}

describe.each(Array.from({ length: ROUNDS }, (_, i) => i + 1))('SIGKILL the controller after %i finished trial(s), then resume', (after) => {
  it('loses, duplicates and wrongly fails no trial, and leaves no orphan', async () => {
    const root = join(tmp.path, `round${after}`);
    const sweeps = join(root, 'sweeps');
    const store = join(root, 'mlruns');
    const env = { EGMF_CACHE: join(tmp.path, 'cache'), EGMF_SWEEP_DIR: sweeps, EGMF_TRIAL_COMMAND: '', MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' };
    const spec = join(tmp.path, `chaos${after}.yaml`);
    writeFileSync(spec, [
      `name: chaos${after}`, 'method: random',
      'metric: {name: valid/weighted_f1, goal: maximize}',
      `base_config: ${join(REPO, 'experiments', 'synthetic', 'meld.yaml')}`,
      'set: {data.scale: 0.03, data.limit_train: 96, llm.pretrain_steps: 20, train.epochs: 3, train.batch_size: 4}',
      'parameters:', '  train.lr: {values: [0.001, 0.002, 0.003, 0.004]}',
      `run_cap: ${TRIALS}`, 'parallel: 2', 'sampler: {seed: 1}', '',
    ].join('\n'));
    const run = egmf(['sweep', 'run', spec, '--tracking-uri', store, '--json'], env);
    // Wait for `after` finished trials with another one running, then kill the controller.
    let sweepDir = '';
    const t0 = Date.now();
    for (;;) {
      const ids = (() => { try { return readdirSync(sweeps); } catch { return []; } })();
      if (ids.length > 0) sweepDir = join(sweeps, ids[0]!);
      const c = sweepDir ? journalCounts(sweepDir) : { tells: 0, asks: 0 };
      // A trial asked for but not yet started (or just ending) is no moment to kill at.
      if (c.tells >= after && c.asks > c.tells && processesWith(`EGMF_SWEEP_DIR=${sweeps}`).length > 0) break;
      if (Date.now() - t0 > 400_000) throw new Error(`no moment to kill at: ${JSON.stringify(c)}\n${run.err()}`);
      if (run.child.exitCode !== null) throw new Error(`the sweep ended before the kill:\n${run.err()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const running = processesWith(`EGMF_SWEEP_DIR=${sweeps}`);
    expect(running.length, 'trial processes running at the kill').toBeGreaterThan(0);
    run.child.kill('SIGKILL');
    await run.done;
    const tk = Date.now();
    while (processesWith(`EGMF_SWEEP_DIR=${sweeps}`).length > 0 && Date.now() - tk < 10_000) await new Promise((r) => setTimeout(r, 200));
    const orphans = processesWith(`EGMF_SWEEP_DIR=${sweeps}`);
    for (const pid of orphans) process.kill(pid, 'SIGKILL');

    const id = sweepDir.split('/').pop()!;
    const resume = egmf(['sweep', 'resume', id, '--json'], env);
    expect(await resume.done, resume.err()).toBe(0);
    const status = egmf(['sweep', 'status', id, '--json'], env);
    await status.done;
    const st = JSON.parse(status.out().trim().split('\n').pop()!) as { trials: Record<string, number>; trial_list: { id: string; state: string; value: number | null; error?: string }[] };
    const py = runPython(`
import sys, os, json, collections
os.environ['MLFLOW_ALLOW_FILE_STORE'] = 'true'
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri='file:' + sys.argv[1])
runs = [r for e in c.search_experiments() for r in c.search_runs([e.experiment_id])]
trials = [r for r in runs if r.data.tags.get('sweep.trial_id')]
# A delivery superseded by a newer one is kept, marked (tag sweep.state=superseded, KILLED):
# each trial must have exactly one run that is not.
final = [r for r in trials if r.data.tags.get('sweep.state') != 'superseded']
per = collections.Counter(r.data.tags['sweep.trial_id'] for r in final)
print(json.dumps({'per_trial': per, 'unfinished': [r.info.run_id for r in final if r.info.status != 'FINISHED'],
  'runs': [[r.data.tags['sweep.trial_id'], r.info.status, r.data.tags.get('sweep.state')] for r in trials]}))
`, [store]);
    const ml = JSON.parse(py.stdout.trim().split('\n').pop()!) as { per_trial: Record<string, number>; unfinished: string[]; runs: string[][] };
    const table = {
      trials_lost: TRIALS - st.trial_list.filter((t) => t.state === 'complete' || t.state === 'pruned').length,
      trials_duplicated: Object.values(ml.per_trial).filter((n) => n > 1).length,
      trials_wrongly_failed: st.trial_list.filter((t) => t.state === 'failed').length,
      trials_without_metric: st.trial_list.filter((t) => t.value === null).length,
      mlflow_runs_missing: st.trial_list.filter((t) => !(t.id in ml.per_trial)).length,
      mlflow_runs_unfinished: ml.unfinished.length,
      orphans_left: orphans.length,
    };
    reportFault(`controller-kill-${after}`, `controller SIGKILL after ${after} finished trial(s), ${running.length} running, then resume`, table);
    expect(table, JSON.stringify({ errors: st.trial_list.filter((t) => t.error), runs: ml.runs })).toEqual({
      trials_lost: 0, trials_duplicated: 0, trials_wrongly_failed: 0, trials_without_metric: 0, mlflow_runs_missing: 0, mlflow_runs_unfinished: 0, orphans_left: 0,
    });
  }, 900_000);
});
