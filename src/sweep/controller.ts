/**
 * The sweep controller: ask → dispatch → tell, with everything needed to resume persisted
 * under `<root>/<sweep-id>/`:
 *   meta.json      sweep id, spec file, tracking URI, experiment, parent run, queue (atomic rewrite)
 *   spec.yaml      the spec text as it was when the sweep started
 *   journal.jsonl  the study's write-ahead journal (asks, reports, tells)
 *   runs.jsonl     trial id → MLflow run id, and which trials' runs are final-tagged
 *   controller.pid the live controller (a second controller on one sweep is refused)
 *   summary/       the summary files, also attached to the parent run
 * A killed controller resumes from these: finished trials are never run again, trials that
 * were in flight are dispatched again under the same id (a queue job with that id is reused).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { checkExperimentPath } from '../config/experiment.ts';
import { EgmfError } from '../errors.ts';
import { createStore } from '../tracking/index.ts';
import { defaultParallelism } from './executors/local.ts';
import type { Executor } from './executors/types.ts';
import type { Params } from './space.ts';
import { parseSweepSpec, type SweepSpec } from './spec.ts';
import { Study, configOverrides, readJournal, type StudyJSON, type TellResult, type Trial, type TrialRecord } from './study.ts';
import { buildSummary } from './summary.ts';
import { SweepTracker } from './tracking.ts';
import { sweepMetricKey } from './trial-protocol.ts';
import type { TrialOutcome, TrialPayload } from './trial-protocol.ts';
import { sweepRoot } from './trial-folder.ts';
import { StorageError, appendLine, cutTornTail, ensureDir, isStorageError, writeFileAtomic } from './storage.ts';

export interface SweepMeta {
  version: 1;
  sweepId: string;
  specFile: string;
  trackingUri: string;
  experimentName: string;
  parentRunId: string;
  queue: string | null;
  queueName: string | null;
  parallel: number;
  createdAt: string;
  finishedAt: string | null;
}

export interface SweepResult {
  sweepId: string;
  parentRunId: string;
  trials: { completed: number; pruned: number; failed: number };
  best: { trialId: string; runId: string; params: Params; metric: number } | null;
  /** The baselines' values of the sweep metric on the best trial's own data (`{majority, tfidf}`). */
  baselines: Record<string, number>;
  trackingUri: string;
  summaryDir: string;
  /** False when the sweep was stopped before every trial finished. */
  finished: boolean;
}

export { sweepRoot } from './trial-folder.ts';

export function sweepDir(root: string, sweepId: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(sweepId)) throw new EgmfError('not a sweep id', { key: sweepId });
  return join(root, sweepId);
}

/** A tracking path is made absolute so trial processes and workers find the same store. */
export function absoluteTrackingUri(uri: string): string {
  if (/^[a-z][a-z0-9+.-]+:\/\//i.test(uri)) return uri;
  if (uri.startsWith('file:')) return uri;
  return isAbsolute(uri) ? uri : resolve(uri);
}

/** Whether the spec file sets `parallel` itself (else the executor's default applies). */
export function specSetsParallel(text: string): boolean {
  return parseDocument(text).has('parallel');
}

function writeJsonAtomic(path: string, v: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(v, null, 2)}\n`);
}

export function readMeta(dir: string): SweepMeta {
  const path = join(dir, 'meta.json');
  if (!existsSync(path)) throw new EgmfError('no such sweep (meta.json is missing)', { file: path });
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as SweepMeta;
  } catch (e) {
    throw new EgmfError(`corrupt sweep metadata: ${(e as Error).message}`, { file: path });
  }
}

/** The spec a sweep was started with, re-validated (relative paths resolve as they did then). */
export function loadSweepOf(dir: string, meta: SweepMeta): SweepSpec {
  const text = readFileSync(join(dir, 'spec.yaml'), 'utf8');
  return parseSweepSpec(text, { file: meta.specFile, validateParamPath: checkExperimentPath });
}

interface RunsLog {
  runIds: Record<string, string>;
  finalized: Set<string>;
}

function readRunsLog(path: string): RunsLog {
  const log: RunsLog = { runIds: {}, finalized: new Set() };
  if (!existsSync(path)) return log;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    let e: { trial?: string; run?: string; final?: boolean };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue; // a torn last line from a killed controller
    }
    if (typeof e.trial !== 'string' || typeof e.run !== 'string') continue;
    log.runIds[e.trial] = e.run;
    if (e.final) log.finalized.add(e.trial);
  }
  return log;
}

/** Replays a journal read-only (the controller may be writing it). */
export function studyFromJournal(spec: SweepSpec, sweepId: string, journalPath: string): Study {
  const byId = new Map<string, TrialRecord & { intermediate: [number, number][] }>();
  for (const { event: e } of readJournal(journalPath).events) {
    if (e.type === 'ask') byId.set(e.id, { id: e.id, number: e.number, seedIndex: e.seedIndex, seed: e.seed, params: e.params, state: 'running', intermediate: [] });
    const r = e.type === 'study' || e.type === 'ask' ? undefined : byId.get(e.id);
    if (!r) continue;
    if (e.type === 'report') {
      if (!r.intermediate.some(([s]) => s === e.step)) r.intermediate.push([e.step, e.value]);
    } else if (e.type === 'tell' && r.state === 'running') {
      byId.set(e.id, { ...r, state: e.state, ...('value' in e && e.value !== undefined ? { value: e.value } : {}), ...('error' in e && e.error !== undefined ? { error: e.error } : {}) });
    }
  }
  const json: StudyJSON = { version: 1, sweepId, fingerprint: new Study(spec, { sweepId }).fingerprint, trials: [...byId.values()] };
  return Study.fromJSON(spec, json);
}

export function countTrials(trials: readonly TrialRecord[]): { completed: number; pruned: number; failed: number; running: number } {
  const c = { completed: 0, pruned: 0, failed: 0, running: 0 };
  for (const t of trials) c[t.state === 'complete' ? 'completed' : t.state]++;
  return c;
}

/** The best configuration's best seed-trial (the run to point users at). */
export function bestTrial(study: Study): TrialRecord | undefined {
  const best = study.best();
  if (!best) return undefined;
  const sign = study.spec.metric.goal === 'minimize' ? 1 : -1;
  const seeds = study.trials().filter((t) => t.number === best.number && t.state === 'complete');
  return seeds.reduce<TrialRecord | undefined>((a, t) => (!a || sign * ((t.value as number) - (a.value as number)) < 0 ? t : a), undefined);
}

export interface ControllerOptions {
  root?: string;
  /** Builds the executor once the concurrency is known. */
  executor: (parallel: number) => Promise<Executor>;
  parallel?: number;
  log?: (line: string) => void;
  /** Aborting stops asking; in-flight trials are left for resume (not told failed). */
  signal?: AbortSignal;
}

export interface StartOptions extends ControllerOptions {
  trackingUri: string;
  experimentName?: string;
  queue?: string | null;
  queueName?: string | null;
  /** Default concurrency when neither the spec nor `parallel` sets one. */
  defaultParallel?: () => number;
  /** Rewrites the spec text before it is parsed and stored (CLI overrides such as --run-cap). */
  editSpec?: (text: string) => string;
  /** Runs once the spec is valid, before any trial starts (e.g. shared data and LLM). */
  prepare?: (spec: SweepSpec) => Promise<void>;
}

function newSweepId(name: string): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${name}-${t}-${randomBytes(2).toString('hex')}`;
}

/** Starts a new sweep from a spec file and runs it to the end (or until aborted). */
export async function startSweep(specFile: string, opts: StartOptions): Promise<SweepResult> {
  const specPath = resolve(specFile);
  if (!existsSync(specPath)) throw new EgmfError('sweep spec not found', { file: specFile });
  const raw = readFileSync(specPath, 'utf8');
  const text = opts.editSpec ? opts.editSpec(raw) : raw;
  const spec = parseSweepSpec(text, { file: specPath, validateParamPath: checkExperimentPath });
  await opts.prepare?.(spec);
  const parallel = opts.parallel ?? (specSetsParallel(text) ? spec.parallel : (opts.defaultParallel ?? (() => defaultParallelism()))());
  const root = opts.root ?? sweepRoot();
  const sweepId = newSweepId(spec.name);
  const dir = sweepDir(root, sweepId);
  const trackingUri = absoluteTrackingUri(opts.trackingUri);
  const experimentName = opts.experimentName ?? spec.name;
  const store = createStore(trackingUri);
  // The executor first: an unreachable queue must fail before anything is written.
  const executor = await opts.executor(parallel);
  let tracker: SweepTracker;
  try {
    tracker = await SweepTracker.createParent(store, { experimentName, spec, sweepId });
  } catch (e) {
    await executor.close();
    throw e;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'spec.yaml'), text);
  const meta: SweepMeta = {
    version: 1, sweepId, specFile: specPath, trackingUri, experimentName, parentRunId: tracker.parentRunId,
    queue: opts.queue ?? null, queueName: opts.queueName ?? null, parallel, createdAt: new Date().toISOString(), finishedAt: null,
  };
  writeJsonAtomic(join(dir, 'meta.json'), meta);
  await store.setTag(tracker.parentRunId, 'sweep.dir', dir);
  return drive(dir, meta, spec, tracker, executor, { ...opts, parallel });
}

/** Resumes a persisted sweep; `overrides` may move it to another queue or concurrency. */
export async function resumeSweep(sweepId: string, opts: ControllerOptions & { queue?: string | null; trackingUri?: string }): Promise<SweepResult> {
  const dir = sweepDir(opts.root ?? sweepRoot(), sweepId);
  const meta = readMeta(dir);
  const spec = loadSweepOf(dir, meta);
  const updated: SweepMeta = {
    ...meta,
    ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
    ...(opts.trackingUri !== undefined ? { trackingUri: absoluteTrackingUri(opts.trackingUri) } : {}),
    ...(opts.parallel !== undefined ? { parallel: opts.parallel } : {}),
  };
  const executor = await opts.executor(updated.parallel);
  let tracker: SweepTracker;
  try {
    tracker = await SweepTracker.attach(createStore(updated.trackingUri), meta.parentRunId);
  } catch (e) {
    await executor.close();
    throw e;
  }
  writeJsonAtomic(join(dir, 'meta.json'), updated);
  return drive(dir, updated, spec, tracker, executor, { ...opts, parallel: updated.parallel });
}

/** The pid of a live controller of this sweep on this host, if any (a killed one leaves a stale file). */
export function liveController(dir: string): number | undefined {
  const path = join(dir, 'controller.pid');
  if (!existsSync(path)) return undefined;
  const [pidText, host] = readFileSync(path, 'utf8').trim().split(' ');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

function acquireLock(dir: string): () => void {
  const path = join(dir, 'controller.pid');
  const pid = liveController(dir);
  if (pid !== undefined) throw new EgmfError(`sweep is being run by controller pid ${pid}; stop it first`, { file: path });
  writeFileAtomic(path, `${process.pid} ${hostname()}\n`);
  return () => {
    try {
      rmSync(path, { force: true });
    } catch {
      // A read-only folder keeps a stale pid file; liveController() sees it is stale.
    }
  };
}

function tellOf(o: TrialOutcome): TellResult {
  if (o.state === 'complete' && o.value !== undefined && Number.isFinite(o.value)) return { state: 'complete', value: o.value };
  if (o.state === 'pruned') return o.value !== undefined && Number.isFinite(o.value) ? { state: 'pruned', value: o.value } : { state: 'pruned' };
  if (o.state === 'complete') return { state: 'failed', error: `trial completed without a finite value (${String(o.value)})` };
  return { state: 'failed', error: o.error ?? 'trial failed' };
}

function payloadFor(spec: SweepSpec, meta: SweepMeta, t: Trial): TrialPayload {
  const overrides = Object.entries(configOverrides(spec, t.params)).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  if (t.seed !== null) overrides.push(`seed=${t.seed}`);
  const epochs = spec.early_terminate?.type === 'asha' ? spec.early_terminate.max_resource : undefined;
  const fromSet = spec.set['train.epochs'] ?? t.params['train.epochs'];
  const maxEpochs = epochs ?? (typeof fromSet === 'number' && Number.isInteger(fromSet) && fromSet >= 1 ? fromSet : null);
  return {
    version: 1, sweepId: meta.sweepId, trialId: t.id, number: t.number, seedIndex: t.seedIndex, seed: t.seed,
    params: { ...t.params }, overrides, baseConfig: spec.base_config ?? null, trackingUri: meta.trackingUri,
    experimentName: meta.experimentName, parentRunId: meta.parentRunId, metric: spec.metric, maxEpochs,
  };
}

async function drive(dir: string, meta: SweepMeta, spec: SweepSpec, tracker: SweepTracker, executor: Executor, opts: ControllerOptions & { parallel: number }): Promise<SweepResult> {
  const log = opts.log ?? (() => undefined);
  let release: () => void;
  try {
    release = acquireLock(dir);
  } catch (e) {
    await executor.close();
    throw e;
  }
  const runsPath = join(dir, 'runs.jsonl');
  const runs = readRunsLog(runsPath);
  const note = (e: { trial: string; run: string; final?: boolean }): void => appendLine(runsPath, JSON.stringify(e));
  let opened: ReturnType<typeof Study.open>;
  try {
    cutTornTail(runsPath);
    opened = Study.open(spec, join(dir, 'journal.jsonl'), { sweepId: meta.sweepId });
  } catch (e) {
    release();
    await executor.close();
    throw e;
  }
  const { study, dropped } = opened;
  if (dropped) log(`journal: dropped a half-written line ${dropped.line} left by a killed controller`);
  // A write the disk refuses (full, read-only) stops the sweep: nothing more is asked or told,
  // the trials in flight are stopped and left for `sweep resume`, and the error names the file.
  let fatal: StorageError | undefined;
  let halt: () => void = () => undefined;
  const halted = new Promise<void>((res) => (halt = res));
  let closed: () => void = () => undefined;
  const closing = new Promise<void>((res) => (closed = res));
  const stopFor = (e: unknown): boolean => {
    if (!isStorageError(e)) return false;
    fatal ??= e;
    halt();
    return true;
  };
  const safe = async (what: string, f: () => Promise<void>): Promise<void> => {
    try {
      await f();
    } catch (e) {
      if (!stopFor(e)) log(`warning: tracking (${what}) failed: ${(e as Error).message}`);
    }
  };
  const finalize = async (rec: TrialRecord): Promise<void> => {
    await safe(`tag ${rec.id}`, async () => {
      const runId = await tracker.trialFinished(rec, meta.sweepId, runs.runIds[rec.id]);
      runs.runIds[rec.id] = runId;
      runs.finalized.add(rec.id);
      note({ trial: rec.id, run: runId, final: true });
    });
  };
  const stopped = (): boolean => opts.signal?.aborted === true || fatal !== undefined;
  try {
    // A controller killed between a tell and its tagging: tag now.
    for (const rec of study.trials()) if (rec.state !== 'running' && !runs.finalized.has(rec.id)) await finalize(rec);
    const finished = new Set(study.trials().filter((r) => r.state !== 'running').map((r) => r.id));
    const runOne = async (t: Trial): Promise<void> => {
      const outcome = await executor.run(payloadFor(spec, meta, t), {
        onStarted: async (runId) => {
          const prev = runs.runIds[t.id];
          if (prev === runId) return;
          if (prev !== undefined && !runs.finalized.has(t.id)) await safe(`supersede ${prev}`, () => tracker.supersede(prev, runId));
          if (runs.finalized.has(t.id)) return;
          runs.runIds[t.id] = runId;
          try {
            note({ trial: t.id, run: runId });
          } catch (e) {
            if (!stopFor(e)) throw e;
          }
        },
        onReport: (step, value) => {
          try {
            study.report(t.id, step, value);
          } catch (e) {
            // Unrecorded, the report gets no answer: the trial is stopped with the sweep, unpruned.
            if (stopFor(e)) return closing.then(() => false);
            // A re-delivered trial may disagree with what its first delivery reported; the first stays.
            log(`${t.id}: report at step ${step} ignored: ${(e as Error).message}`);
          }
          // A trial already finished (a late duplicate delivery) is told to stop.
          if (finished.has(t.id)) return true;
          try {
            return study.shouldPrune(t.id);
          } catch {
            return true;
          }
        },
      });
      if (outcome.storage !== undefined) stopFor(new StorageError(outcome.storage, `${(outcome.error ?? '').split('\n')[0]}, in trial ${t.id}`));
      if (stopped()) return;
      try {
        if (outcome.runId !== undefined && runs.runIds[t.id] === undefined) {
          note({ trial: t.id, run: outcome.runId });
          runs.runIds[t.id] = outcome.runId;
        }
        study.tell(t.id, tellOf(outcome));
      } catch (e) {
        if (stopFor(e)) return;
        log(`${t.id}: result ignored (${(e as Error).message})`);
      }
      const rec = study.trials().find((r) => r.id === t.id)!;
      if (rec.state !== 'running') finished.add(rec.id);
      const shown = rec.state === 'failed' ? `: ${(rec.error ?? '').trim().split('\n').pop()}` : rec.value !== undefined ? ` ${spec.metric.name}=${rec.value}` : '';
      log(`${t.id} ${rec.state}${shown}`);
      if (!runs.finalized.has(rec.id)) await finalize(rec);
    };
    const inflight = new Map<string, Promise<void>>();
    const dispatch = (t: Trial): void => {
      log(`${t.id} dispatched ${JSON.stringify(t.params)}`);
      inflight.set(t.id, runOne(t).finally(() => inflight.delete(t.id)));
    };
    for (const rec of study.trials()) if (rec.state === 'running') dispatch(study.trial(rec.id));
    const stop = new Promise<void>((res) => opts.signal?.addEventListener('abort', () => res(), { once: true }));
    for (;;) {
      while (!stopped() && inflight.size < opts.parallel) {
        const t = study.ask();
        if (!t) break;
        dispatch(t);
      }
      if (inflight.size === 0 || stopped()) break;
      await Promise.race([...inflight.values(), stop, halted]);
    }
    if (fatal) throw fatal;
    if (!stopped()) {
      // A trial that started while the tracking server was away made its run offline, under a
      // provisional id: once the spool reached the server, the run's real id replaces it (else
      // the real run would look like an orphan of its trial, and the summary would name no run).
      await safe('spooled records', () => tracker.store.flush());
      for (const [trial, id] of Object.entries(runs.runIds)) {
        const real = tracker.serverRunId(id);
        if (real === id) continue;
        runs.runIds[trial] = real;
        note({ trial, run: real, ...(runs.finalized.has(trial) ? { final: true } : {}) });
      }
    }
    return await conclude(dir, meta, study, tracker, runs, !stopped(), safe, log);
  } finally {
    await executor.close();
    closed();
    study.close();
    release();
  }
}

async function conclude(dir: string, meta: SweepMeta, study: Study, tracker: SweepTracker, runs: RunsLog, finished: boolean, safe: (what: string, f: () => Promise<void>) => Promise<void>, log: (line: string) => void): Promise<SweepResult> {
  const spec = study.spec;
  const trials = study.trials();
  const counts = countTrials(trials);
  const best = study.best();
  const top = bestTrial(study);
  const summaryDir = join(dir, 'summary');
  const baselines: Record<string, Record<string, number>> = {};
  if (finished) {
    for (const t of trials) {
      const runId = runs.runIds[t.id];
      if (t.state !== 'failed') await safe(`baselines of ${t.id}`, async () => { baselines[t.id] = await trialBaselines(dir, t.id, runId, tracker, spec.metric.name); });
    }
    const files = await buildSummary({ spec, trials, runIds: runs.runIds, baselines, ...(top ? { bestTrialId: top.id } : {}) });
    ensureDir(summaryDir);
    for (const [name, text] of Object.entries(files)) writeFileAtomic(join(summaryDir, name), text);
    await safe('orphaned runs', () => tracker.supersedeOrphans(runs.runIds));
    await safe('best trial', () => tracker.markBest(spec.metric.name, best, top?.id, runs.runIds));
    await safe('summary artifact', () => tracker.attachSummary(files));
    await safe('parent run', () => tracker.finish({ completed: counts.completed, pruned: counts.pruned, failed: counts.failed }));
    // The server was away at the end: say where the records wait and how they get there.
    const left = tracker.spooled();
    if (left) log(`warning: ${left.records} tracking record(s) wait in the spool ${left.dir} (the tracking server is unreachable); 'egmf runs sync --tracking-uri ${left.uri}' sends them, each exactly once, when it answers`);
    writeJsonAtomic(join(dir, 'meta.json'), { ...meta, finishedAt: new Date().toISOString() });
  }
  const runId = top ? runs.runIds[top.id] : undefined;
  return {
    sweepId: meta.sweepId,
    parentRunId: meta.parentRunId,
    trials: { completed: counts.completed, pruned: counts.pruned, failed: counts.failed },
    best: best && top && runId !== undefined ? { trialId: top.id, runId, params: best.params, metric: best.value } : null,
    baselines: (top && baselines[top.id]) ?? {},
    trackingUri: meta.trackingUri,
    summaryDir,
    finished,
  };
}

/**
 * A trial's baselines (`{majority, tfidf}`) as values of the sweep metric: from its run
 * folder's summary.json when the trial ran here, else from the `baseline/<name>/<metric>`
 * metrics its run logged (a trial that ran on another machine's worker).
 */
async function trialBaselines(dir: string, trialId: string, runId: string | undefined, tracker: SweepTracker, metric: string): Promise<Record<string, number>> {
  const key = sweepMetricKey(metric);
  const file = join(dir, 'trials', trialId, 'summary.json');
  const out: Record<string, number> = {};
  if (existsSync(file)) {
    const detail = (JSON.parse(readFileSync(file, 'utf8')) as { baselines_detail?: Record<string, { valid?: Record<string, number> }> }).baselines_detail ?? {};
    for (const [name, b] of Object.entries(detail)) if (typeof b?.valid?.[key] === 'number') out[name] = b.valid[key];
    return out;
  }
  if (runId === undefined) return out;
  const run = await tracker.store.getRun(runId);
  for (const name of ['majority', 'tfidf']) {
    const v = run.data.metrics[`baseline/${name}/valid/${key}`];
    if (v !== undefined) out[name] = v;
  }
  return out;
}
