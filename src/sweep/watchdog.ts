/**
 * A trial never outlives its executor (the controller's local pool or an `egmf worker`). The
 * executor puts its pid in EGMF_TRIAL_PARENT; `bin/egmf.mjs` calls {@link watchExecutor} for
 * `egmf trial` before it imports anything else, because a trial spawned just before its
 * executor was killed spends seconds loading modules on a busy machine, and nothing else runs
 * then. The check is made once at start (executor gone already: exit) and then by a worker
 * thread twice a second, which keeps working while the trial's main thread is blocked in a
 * training step, an evaluation or a baseline fit. A re-parented trial is SIGKILLed; its
 * checkpoints are written to a temporary folder and renamed, so the kill never leaves a torn
 * one, and the next delivery (`sweep resume`, or another worker) resumes from the last.
 */
import { Worker } from 'node:worker_threads';
import { writeSync } from 'node:fs';

export const TRIAL_PARENT_ENV = 'EGMF_TRIAL_PARENT';
const GONE = 'trial: its executor is gone; stopping (the last checkpoint stays for the next delivery)\n';

/** The executor's pid this process must stay a child of: EGMF_TRIAL_PARENT, else the current parent. */
export function executorPid(env: NodeJS.ProcessEnv = process.env): number {
  const v = env[TRIAL_PARENT_ENV];
  const n = v !== undefined && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n > 0 ? n : process.ppid;
}

/** Whether a process with this pid exists (a zombie still counts until it is reaped). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Started by the executor itself (the usual case), the trial stops once it is re-parented.
 * Started through a wrapper (an EGMF_TRIAL_COMMAND such as a shell script), its parent is the
 * wrapper, so it stops once the executor's pid is gone. An executor already gone at start
 * means exit at once. The notice on stderr is best-effort: stderr is usually a pipe to the
 * executor that just died, and writing to it fails (EPIPE); that must never stop the kill.
 */
export function watchExecutor(parent: number = executorPid()): void {
  if (process.ppid !== parent && !alive(parent)) {
    try {
      writeSync(2, GONE);
    } catch {
      // No one reads stderr any more.
    }
    process.exit(70);
  }
  const code = `const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
setInterval(() => {
  if (workerData.direct ? process.ppid !== workerData.parent : !alive(workerData.parent)) {
    try { writeSync(2, workerData.gone); } catch {}
    process.kill(workerData.pid, 'SIGKILL');
  }
}, 500);`;
  new Worker(code, { eval: true, workerData: { parent, direct: process.ppid === parent, pid: process.pid, gone: GONE } }).unref();
}
