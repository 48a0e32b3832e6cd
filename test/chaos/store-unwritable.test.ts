/**
 * Fault injection with real processes: the sweep folder (EGMF_SWEEP_DIR: journal, runs log,
 * metadata, the trials' checkpoints) stops taking writes while trials train. The sweep must
 * stop with an error naming the file it could not write and exit non-zero, leave nothing
 * half-written (no torn journal or runs-log line, no unparsable JSON, no temporary copies),
 * and, once the fault is removed, its state must load (`sweep status`) and `sweep resume` must
 * finish it with nothing lost, duplicated or wrongly failed.
 *
 * The faults, as the machine allows them:
 *  - full: the folder is a tiny tmpfs (needs root and mount), filled up mid-sweep;
 *  - read-only: `chmod -R a-w` (not as root: root writes through permissions);
 *  - not a folder: as root without mount, the trials' folder is swapped for a file (ENOTDIR).
 * CI runs the first one the machine allows; EGMF_CHAOS_FULL=1 (`npm run chaos`) runs each.
 */
import { afterAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.ts';
import { FULL, baseTable, checkpointOf, egmf, journal, mlflowRuns, onlySweep, orphansAfter, sweepStatus, waitFor, writeSpec, zeros, reportFault } from './harness.ts';

const tmp = tempDir('egmf-chaos-store-');
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  tmp.cleanup();
});

const root = process.getuid?.() === 0;
function canMount(): boolean {
  if (!root) return false;
  const probe = join(tmp.path, 'mount-probe');
  mkdirSync(probe, { recursive: true });
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  return ok;
}
type Fault = 'full' | 'read-only' | 'not-a-folder';
const available: Fault[] = [...(canMount() ? ['full' as const] : []), root ? 'not-a-folder' : 'read-only'];
const faults = FULL ? available : available.slice(0, 1);

/** Writes until the filesystem is full (down to its last free page). */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const buf = Buffer.alloc(size);
      try {
        for (;;) writeSync(fd, buf);
      } catch {
        // ENOSPC at this chunk size: go on with a smaller one.
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Every file in `dir` (recursively) but the trials' checkpoints and outputs. */
function sweepFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => !f.startsWith('trials')).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

it.each(faults)('the sweep folder stops taking writes mid-sweep (%s): a clear error, nothing half-written, and resume finishes', async (fault) => {
  const base = join(tmp.path, fault);
  const sweeps = join(base, 'sweeps');
  mkdirSync(sweeps, { recursive: true });
  if (fault === 'full') {
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', sweeps]).status).toBe(0);
    mounts.push(sweeps);
  }
  const store = join(base, 'mlruns');
  const env = { EGMF_CACHE: join(tmp.path, 'cache'), EGMF_SWEEP_DIR: sweeps, EGMF_TRIAL_COMMAND: '', MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' };
  const needle = `EGMF_SWEEP_DIR=${sweeps}\0`;
  // Four epochs: a trial that has checkpointed its first still has three to train.
  const spec = writeSpec(join(base, 'store.yaml'), { name: 'store', lrs: [0.002, 0.003, 0.004], epochs: 4, parallel: 2 });
  const run = egmf(['sweep', 'run', spec, '--tracking-uri', store, '--json'], env, base);
  let dir = '';
  // The fault strikes once a trial has finished and another, still training, has checkpointed
  // an epoch. The trials are read from the journal: a trial process is reused for later trials,
  // so its environment names only its first.
  await waitFor(() => {
    dir = onlySweep(sweeps) ?? '';
    if (dir === '') return false;
    const events = journal(dir);
    const told = new Set(events.filter((e) => e.type === 'tell').map((e) => e.id));
    return told.size > 0 && events.some((e) => e.type === 'report' && e.id !== undefined && !told.has(e.id) && (checkpointOf(dir, e.id)?.epoch ?? 0) >= 1);
  }, 400_000, 'a finished trial and a checkpointed one', run);
  const filler = join(sweeps, 'filler');
  const trials = join(dir, 'trials');
  if (fault === 'full') fill(filler);
  else if (fault === 'read-only') spawnSync('chmod', ['-R', 'a-w', sweeps]);
  else {
    renameSync(trials, `${trials}.away`);
    writeFileSync(trials, 'not a folder\n');
  }
  const code = await Promise.race([run.done, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 300_000))]);
  if (code === 'hung') run.child.kill('SIGKILL');
  const orphansAtFault = await orphansAfter(needle, 5000);
  const error = run.err().split('\n').filter((l) => l.startsWith('error: ')).pop() ?? '';
  // The fault goes away.
  if (fault === 'full') rmSync(filler);
  else if (fault === 'read-only') spawnSync('chmod', ['-R', 'u+w', sweeps]);
  else {
    rmSync(trials);
    renameSync(`${trials}.away`, trials);
  }

  // Nothing half-written: whole lines, parsable JSON, no temporary copies.
  const files = sweepFiles(dir);
  const torn = files.filter((f) => {
    const text = readFileSync(f, 'utf8');
    if (f.endsWith('.jsonl')) return text !== '' && (!text.endsWith('\n') || text.trimEnd().split('\n').some((l) => { try { JSON.parse(l); return false; } catch { return true; } }));
    if (f.endsWith('.json')) { try { JSON.parse(text); return false; } catch { return true; } }
    return false;
  });
  const temps = files.filter((f) => /\.tmp$|\.tmp-\d+$/.test(f));
  const sweepId = dir.split('/').pop()!;
  let loads = true;
  try {
    await sweepStatus(sweepId, env, base);
  } catch {
    loads = false;
  }
  const resume = egmf(['sweep', 'resume', sweepId, '--json'], env, base);
  const resumed = await resume.done;
  const orphans = await orphansAfter(needle, 5000);
  const st = await sweepStatus(sweepId, env, base);
  const runs = mlflowRuns(store);
  const table = {
    ...baseTable(st, runs, { orphans: orphans.length + orphansAtFault.length }),
    fault_not_stopping_the_sweep: code !== 'hung' && code !== 0 ? 0 : 1,
    error_not_naming_a_sweep_file: error.startsWith(`error: ${sweeps}/`) && /cannot write \((ENOSPC|EACCES|EROFS|ENOTDIR)/.test(error) ? 0 : 1,
    files_half_written: torn.length,
    temporary_files_left: temps.length,
    state_not_loading: loads ? 0 : 1,
    resume_not_finishing: resumed === 0 && st.state === 'finished' ? 0 : 1,
  };
  reportFault(`store-${fault}`, `${fault === 'full' ? 'sweep folder full (tmpfs filled)' : fault === 'read-only' ? 'sweep folder read-only (chmod)' : 'the sweep\'s trials folder replaced by a file (ENOTDIR)'} mid-sweep, then resumed`, table, `the error: ${error}`);
  expect(table, JSON.stringify({ error, torn, temps, trials: st.trial_list, runs: runs.map((r) => [r.trial, r.status, r.state]), log: run.err().slice(-3000), resume: resume.err().slice(-2000) })).toEqual(zeros(table));
}, 900_000);
