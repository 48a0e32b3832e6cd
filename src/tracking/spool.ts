/**
 * The offline spool: what could not reach the tracking server, kept on disk until
 * `egmf runs sync` (or a run's end) replays it.
 *
 * Layout under `.egmf/spool/<hash of the server URI>/`:
 *   target.json                  the server (credentials removed) this spool belongs to
 *   ids.jsonl                    provisional run id → server run id, once created
 *   runs/<run key>/records.jsonl one record per call, in call order
 *   runs/<run key>/files/<id>    artifact bytes copied at spool time
 *   runs/<run key>/journal.jsonl `begin` before each replayed call, `ack` after it succeeded
 *
 * Guarantee: every record is applied once. A record with `begin` but no `ack` (a crash or a
 * failed call mid-sync), or one whose live call failed unclearly, may already be on the server,
 * so it is replayed idempotently: a run is looked up by its client id tag before creating it
 * again, and only metric points the server's history lacks are sent (identical points, same
 * key/step/timestamp/value, count as one). Params, tags, inputs, status and artifact uploads
 * are idempotent. Two syncs of one spool exclude each other with a lock directory per run.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EgmfError } from '../errors.ts';
import { isMlflowError } from './errors.ts';
import { CLIENT_RUN_ID_TAG, type RestStore } from './rest-store.ts';
import { redactUri } from './secrets.ts';
import { PARENT_RUN_TAG, type DatasetInput, type KeyValue, type MetricPoint, type RunStatus } from './store.ts';

export const PROVISIONAL_PREFIX = 'offline-';
export const isProvisional = (id: string) => id.startsWith(PROVISIONAL_PREFIX);
export const newProvisionalId = () => `${PROVISIONAL_PREFIX}${randomBytes(12).toString('hex')}`;

/** Metric points as tuples; the value is a string for NaN/±Infinity, which JSON cannot hold. */
type SpooledMetric = [key: string, value: number | string, timestamp: number, step: number];

export type SpoolRecord = { id: string; attempted?: boolean } & (
  | { kind: 'createRun'; provisionalId: string; experimentId?: string; experimentName?: string; runName?: string; startTime: number; tags: Record<string, string>; parentRunId?: string }
  | { kind: 'logBatch'; metrics: SpooledMetric[]; params: KeyValue[]; tags: KeyValue[] }
  | { kind: 'logInputs'; datasets: DatasetInput[] }
  | { kind: 'artifact'; relPath: string }
  | { kind: 'updateRun'; status?: RunStatus; endTime?: number; runName?: string }
);
type NewRecord = SpoolRecord extends infer R ? (R extends SpoolRecord ? Omit<R, 'id'> : never) : never;

interface JournalEntry { rec: string; phase: 'begin' | 'ack' | 'failed'; error?: string }

export function encodeMetrics(ms: MetricPoint[]): SpooledMetric[] {
  return ms.map((m) => [m.key, Number.isFinite(m.value) ? m.value : String(m.value), m.timestamp, m.step]);
}
export function decodeMetrics(ms: SpooledMetric[]): MetricPoint[] {
  return ms.map(([key, v, timestamp, step]) => ({ key, value: typeof v === 'number' ? v : Number(v), timestamp, step }));
}

/** Same server, same spool, whichever credentials are used to reach it. */
export function spoolDirFor(uri: string, base = process.env.EGMF_SPOOL_DIR ?? join('.egmf', 'spool')): string {
  const u = new URL(uri);
  u.username = '';
  u.password = '';
  const key = u.href.replace(/\/+$/, '');
  return resolve(base, createHash('sha256').update(key).digest('hex').slice(0, 16));
}

/**
 * Appends one line and fsyncs it. A torn last line (a crash mid-append) belongs to a call that
 * never returned; it is cut off first so the file stays one JSON object per line.
 */
function appendDurable(path: string, line: string): void {
  const fd = openSync(path, 'a+');
  try {
    const size = fstatSync(fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) {
        const text = readFileSync(path);
        ftruncateSync(fd, text.lastIndexOf(0x0a) + 1);
      }
    }
    appendFileSync(fd, line);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readJsonl<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  const out: T[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      // A torn last line is what a crash mid-append leaves: that call never returned, drop it.
      if (i === lines.length - 1) break;
      throw new EgmfError('spool file is corrupt', { file: path, line: i + 1 }, { cause: e });
    }
  }
  return out;
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    return process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Another live process that writes this run's records (this process never races itself here). */
function ownerAlive(dir: string): boolean {
  const p = join(dir, 'owner');
  const pid = existsSync(p) ? Number(readFileSync(p, 'utf8')) : NaN;
  return pid !== process.pid && pidAlive(pid);
}

export interface SyncReport {
  /** Records applied during this sync. */
  replayed: number;
  /** Records the server rejected for good (bad input); kept in the journal, not retried. */
  failed: { run: string; record: string; error: string }[];
  /** Records left for a later sync because the server is unreachable. */
  pending: number;
  /** Provisional ids that now have server ids. */
  created: Record<string, string>;
}

export class Spool {
  readonly dir: string;

  constructor(readonly uri: string, dir?: string) {
    this.dir = dir ?? spoolDirFor(uri);
  }

  private runDir(runKey: string): string {
    if (!/^[\w-]+$/.test(runKey)) throw new EgmfError('invalid run id for the spool', { key: runKey });
    return join(this.dir, 'runs', runKey);
  }

  append(runKey: string, rec: NewRecord, bytes?: Uint8Array): string {
    const dir = this.runDir(runKey);
    mkdirSync(join(dir, 'files'), { recursive: true });
    if (!existsSync(join(this.dir, 'target.json'))) writeFileSync(join(this.dir, 'target.json'), `${JSON.stringify({ uri: redactUri(this.uri) })}\n`);
    const id = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    if (bytes) writeFileSync(join(dir, 'files', id), bytes);
    writeFileSync(join(dir, 'owner'), String(process.pid));
    appendDurable(join(dir, 'records.jsonl'), `${JSON.stringify({ ...rec, id })}\n`);
    return id;
  }

  runKeys(): string[] {
    const d = join(this.dir, 'runs');
    return existsSync(d) ? readdirSync(d).filter((k) => existsSync(join(d, k, 'records.jsonl'))).sort() : [];
  }

  /** Provisional id → server run id. */
  mapping(): Map<string, string> {
    return new Map(readJsonl<{ provisional: string; runId: string }>(join(this.dir, 'ids.jsonl')).map((e) => [e.provisional, e.runId]));
  }

  /** Records not yet acknowledged or failed. */
  pendingCount(runKey?: string): number {
    let n = 0;
    for (const k of runKey ? [runKey] : this.runKeys()) {
      const dir = this.runDir(k);
      const done = new Set(readJsonl<JournalEntry>(join(dir, 'journal.jsonl')).filter((j) => j.phase !== 'begin').map((j) => j.rec));
      n += readJsonl<SpoolRecord>(join(dir, 'records.jsonl')).filter((r) => !done.has(r.id)).length;
    }
    return n;
  }

  private lock(runKey: string): (() => void) | null {
    const lockDir = join(this.runDir(runKey), '.lock');
    try {
      mkdirSync(lockDir);
    } catch {
      const owner = Number(existsSync(join(lockDir, 'pid')) ? readFileSync(join(lockDir, 'pid'), 'utf8') : NaN);
      // A lock left by a crashed sync is taken over; a live one means another sync is on it.
      if (pidAlive(owner)) return null;
      rmSync(lockDir, { recursive: true, force: true });
      try {
        mkdirSync(lockDir);
      } catch {
        return null;
      }
    }
    writeFileSync(join(lockDir, 'pid'), String(process.pid));
    return () => rmSync(lockDir, { recursive: true, force: true });
  }

  /** Replays every run's records in order; parents before children created offline. */
  async replay(store: RestStore): Promise<SyncReport> {
    const report: SyncReport = { replayed: 0, failed: [], pending: 0, created: {} };
    const done = new Set<string>();
    let serverDown = false;
    const parentOf = (k: string): string | undefined => {
      const first = readJsonl<SpoolRecord>(join(this.runDir(k), 'records.jsonl'))[0];
      return first?.kind === 'createRun' && first.parentRunId && isProvisional(first.parentRunId) ? first.parentRunId : undefined;
    };
    const visit = async (k: string, depth: number): Promise<void> => {
      if (done.has(k) || depth > 50) return;
      done.add(k);
      const parent = parentOf(k);
      if (parent && existsSync(this.runDir(parent))) await visit(parent, depth + 1);
      if (!serverDown) serverDown = !(await this.replayRun(store, k, report));
    };
    for (const k of this.runKeys()) await visit(k, 0);
    report.pending = this.pendingCount();
    return report;
  }

  /** Returns false when the server became unreachable (stop and keep the rest). */
  private async replayRun(store: RestStore, runKey: string, report: SyncReport): Promise<boolean> {
    const unlock = this.lock(runKey);
    if (!unlock) return true;
    const dir = this.runDir(runKey);
    const journalPath = join(dir, 'journal.jsonl');
    try {
      const journal = readJsonl<JournalEntry>(journalPath);
      const begun = new Set(journal.filter((j) => j.phase === 'begin').map((j) => j.rec));
      const finished = new Set(journal.filter((j) => j.phase !== 'begin').map((j) => j.rec));
      const ids = this.mapping();
      const real = (id: string) => (isProvisional(id) ? ids.get(id) : id);
      let runId = real(runKey);
      for (const rec of readJsonl<SpoolRecord>(join(dir, 'records.jsonl'))) {
        if (finished.has(rec.id)) continue;
        const uncertain = begun.has(rec.id) || rec.attempted === true;
        appendDurable(journalPath, `${JSON.stringify({ rec: rec.id, phase: 'begin' })}\n`);
        try {
          if (rec.kind === 'createRun') {
            const experimentId = rec.experimentId ?? (await store.getOrCreateExperiment(rec.experimentName ?? 'Default'));
            const parent = rec.parentRunId === undefined ? undefined : real(rec.parentRunId);
            if (rec.parentRunId !== undefined && parent === undefined) throw new EgmfError(`parent run ${rec.parentRunId} was never created on the server`, { key: PARENT_RUN_TAG });
            const found = uncertain ? await store.findByClientId(experimentId, rec.provisionalId) : null;
            const run = found ?? (await store.createRun({ experimentId, runName: rec.runName, startTime: rec.startTime, tags: { ...rec.tags, [CLIENT_RUN_ID_TAG]: rec.provisionalId }, parentRunId: parent }));
            runId = run.info.runId;
            appendDurable(join(this.dir, 'ids.jsonl'), `${JSON.stringify({ provisional: rec.provisionalId, runId })}\n`);
            ids.set(rec.provisionalId, runId);
            report.created[rec.provisionalId] = runId;
          } else {
            if (runId === undefined) throw new EgmfError('the run of this record was never created on the server', { key: runKey });
            if (rec.kind === 'logBatch') {
              const tags = rec.tags.map((t) => (t.key === PARENT_RUN_TAG && isProvisional(t.value) ? { key: t.key, value: real(t.value) ?? t.value } : t));
              const batch = { metrics: decodeMetrics(rec.metrics), params: rec.params, tags };
              await (uncertain ? store.logBatchExactlyOnce(runId, batch) : store.logBatch(runId, batch));
            } else if (rec.kind === 'logInputs') await store.logInputs(runId, rec.datasets);
            else if (rec.kind === 'artifact') await store.logArtifactBytes(runId, rec.relPath, readFileSync(join(dir, 'files', rec.id)));
            else await store.updateRun(runId, { status: rec.status, endTime: rec.endTime, runName: rec.runName });
          }
          appendDurable(journalPath, `${JSON.stringify({ rec: rec.id, phase: 'ack' })}\n`);
          report.replayed++;
        } catch (e) {
          if (isMlflowError(e) && e.transient) return false;
          const error = e instanceof Error ? e.message : String(e);
          appendDurable(journalPath, `${JSON.stringify({ rec: rec.id, phase: 'failed', error })}\n`);
          report.failed.push({ run: runKey, record: rec.id, error });
        }
      }
      return true;
    } finally {
      unlock();
      // Everything applied: the copy is no longer needed. Rejected records stay for inspection.
      const failed = readJsonl<JournalEntry>(journalPath).some((j) => j.phase === 'failed');
      // A live process that spools this run may append again at any moment: its folder stays.
      if (!failed && this.pendingCount(runKey) === 0 && !existsSync(join(dir, '.lock')) && !ownerAlive(dir)) rmSync(dir, { recursive: true, force: true });
    }
  }
}
