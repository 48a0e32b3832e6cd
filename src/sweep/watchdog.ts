/**
 * A trial never outlives its executor (the controller's local pool or an `egmf worker`). The
 * executor puts its pid in EGMF_TRIAL_PARENT; `bin/egmf.mjs` calls {@link watchExecutor} for
 * `egmf trial` before it imports anything else, because a trial spawned just before its
 * executor was killed spends seconds loading modules on a busy machine, and nothing else runs
 * then. The check is made once at once (re-parented already: exit) and then by a worker
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

export function watchExecutor(parent: number = executorPid()): void {
  if (process.ppid !== parent) {
    writeSync(2, GONE);
    process.exit(70);
  }
  const code = `const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
setInterval(() => {
  if (process.ppid !== workerData.parent) {
    writeSync(2, workerData.gone);
    process.kill(workerData.pid, 'SIGKILL');
  }
}, 500);`;
  new Worker(code, { eval: true, workerData: { parent, pid: process.pid, gone: GONE } }).unref();
}
