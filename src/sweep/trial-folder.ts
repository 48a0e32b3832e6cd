/**
 * A trial's folder (`<sweep root>/<sweep id>/trials/<trial id>`: its checkpoints, summary and
 * owner) and the rule that one trial never trains in two processes at once.
 *
 * A delivery of a trial can outlive the job lock it was given: a worker that is frozen, or slow
 * to die, holds its trial process while the queue hands the job to another worker once the lock
 * expires. Both would then train one trial, writing the same checkpoints and run. So each
 * delivery records its trial process in the folder's `owner.json` (host, pid and the process's
 * start time, which tells a live owner from a later process given the same pid), and the next
 * delivery, before it starts its own process, stops a live owner on this host and waits for it
 * to be gone. An owner on another host cannot be stopped from here; its worker stops it when it
 * finds its job lock lost (see executors/worker.ts).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

/** Where sweeps are persisted: `EGMF_SWEEP_DIR`, else `.egmf/sweeps` under the working directory. */
export function sweepRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.EGMF_SWEEP_DIR || join('.egmf', 'sweeps'));
}

/** A trial's folder under a sweep root. */
export function trialFolder(sweepId: string, trialId: string, root: string = sweepRoot()): string {
  return join(root, sweepId, 'trials', trialId);
}

export const OWNER_FILE = 'owner.json';

export interface TrialOwner {
  host: string;
  pid: number;
  /** The process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22), or null where unknown. */
  start: number | null;
}

/** A process's start time (field 22 of /proc/<pid>/stat), or null when it is gone or there is no /proc. */
export function processStart(pid: number): number | null {
  try {
    // "pid (comm) state ppid …": fields after the command, which may hold spaces, start at field 3.
    const fields = readFileSync(`/proc/${pid}/stat`, 'latin1').replace(/^.*\) /s, '').split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** Records `pid` as the process training the trial of `folder` (written whole: a reader sees the old owner or the new one). */
export function recordOwner(folder: string, pid: number): void {
  mkdirSync(folder, { recursive: true });
  const owner: TrialOwner = { host: hostname(), pid, start: processStart(pid) };
  const tmp = join(folder, `.${OWNER_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(owner)}\n`);
  renameSync(tmp, join(folder, OWNER_FILE));
}

/** The folder's recorded owner, or null when there is none (or it cannot be read: a torn owner owns nothing). */
export function readOwner(folder: string): TrialOwner | null {
  try {
    const o = JSON.parse(readFileSync(join(folder, OWNER_FILE), 'utf8')) as Partial<TrialOwner>;
    if (typeof o.host !== 'string' || !Number.isInteger(o.pid) || (o.start !== null && typeof o.start !== 'number')) return null;
    return { host: o.host, pid: o.pid!, start: o.start ?? null };
  } catch {
    return null;
  }
}

/** Whether the recorded owner is a live process on this host (the same process: same pid and start time). */
export function ownerAlive(o: TrialOwner): boolean {
  if (o.host !== hostname() || o.pid === process.pid) return false;
  const start = processStart(o.pid);
  return start !== null && (o.start === null || start === o.start);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Stops the trial's recorded owner if it still lives on this host (SIGKILL: its checkpoints are
 * written whole, so the next delivery resumes from the last one) and waits up to `waitMs` for it
 * to be gone. Returns what it did, for the executor's log, or null when there was no live owner.
 * `except` is a pid never to stop (an executor's own idle trial process).
 */
export async function evictOwner(folder: string, o: { except?: number; waitMs?: number } = {}): Promise<string | null> {
  const owner = readOwner(folder);
  if (owner === null || owner.pid === o.except || !ownerAlive(owner)) return null;
  try {
    process.kill(owner.pid, 'SIGKILL');
  } catch {
    return null; // gone meanwhile
  }
  const t0 = Date.now();
  const waitMs = o.waitMs ?? 10_000;
  while (ownerAlive(owner) && Date.now() - t0 < waitMs) await sleep(50);
  const still = ownerAlive(owner);
  return `an earlier delivery's process ${owner.pid} still trained it; ${still ? `killed, but still there after ${waitMs} ms` : `stopped it (${Date.now() - t0} ms)`}`;
}
