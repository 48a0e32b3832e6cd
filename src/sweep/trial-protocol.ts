/**
 * The trial protocol: how a sweep runs a trial in a process of its own (never in the
 * executor's, so a busy training loop can never starve the executor's event loop or lose a
 * queue lock). A process runs one trial at a time; a local slot's process may run its next
 * trials too (see {@link TrialHost}).
 *
 * Parent side (an executor): writes the {@link TrialPayload} to a JSON file, spawns the trial
 * command with an IPC channel (Node's `child_process` 'ipc' stdio, as `fork` does) and the
 * environment variable `EGMF_TRIAL_PAYLOAD` = that file's path.
 *
 * Child side (the trainer, through {@link connectTrial}):
 *   child → parent  {type:'started', runId}            once its MLflow child run exists
 *   child → parent  {type:'report', step, value}       after each epoch's validation metric;
 *                                                      step = epochs completed (1, 2, …), so ASHA's
 *                                                      resources and median's warmup count epochs
 *   parent → child  {type:'decision', step, prune}     the study's pruner answer; the child waits for it
 *   child → parent  {type:'result', state, value?, runId?, error?, storage?}   the trial's last message;
 *                                                      then it exits (storage: the path of a write the disk refused)
 *   child → parent  {type:'ready'}                     instead of exiting, when EGMF_TRIAL_HOST=1: it takes another
 *   parent → child  {type:'trial', payload}            the next trial's payload file (the channel closing ends it)
 * A child that exits without a result (crash, kill, OOM) is a failed *delivery* (`lost`) whose
 * error is the tail of its stderr; executors re-deliver it a bounded number of times. A child whose parent disappears (channel closed) exits at once, so an
 * orphan never keeps training a trial that another worker will re-run.
 *
 * The trial logs its own params and metric histories to the tracking store (a child run of
 * `parentRunId`, see {@link openTrialRun}); the parent only tags the final state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EgmfError } from '../errors.ts';
import { createStore, startRun, type RunHandle, type TrackingStore } from '../tracking/index.ts';
import type { Goal, Params } from './space.ts';
import { TRIAL_PARENT_ENV } from './watchdog.ts';
import { evictOwner, recordOwner } from './trial-folder.ts';
import { TRAINING_NODE_FLAGS } from '../train/process.ts';

export const PAYLOAD_ENV = 'EGMF_TRIAL_PAYLOAD';
/** Set to 1 by a reusing executor: the trial process may take further trials (see TrialHost). */
export const HOST_ENV = 'EGMF_TRIAL_HOST';
export const TRIAL_COMMAND_ENV = 'EGMF_TRIAL_COMMAND';
export const PROTOCOL_VERSION = 1;
/** Tags every trial's child run carries (the trial sets them; the controller re-asserts them). */
export const TAG_SWEEP_ID = 'sweep.id';
export const TAG_TRIAL_ID = 'sweep.trial_id';

/** The run's validation metric a sweep metric names: `valid/weighted_f1` → `weighted_f1`. */
export function sweepMetricKey(name: string): string {
  return name.startsWith('valid/') ? name.slice('valid/'.length) : name;
}

export interface TrialPayload {
  version: 1;
  sweepId: string;
  /** `<sweepId>-t<number>-s<seedIndex>`: the idempotency key of every delivery. */
  trialId: string;
  number: number;
  seedIndex: number;
  /** Training seed, or null to keep the base config's seed. */
  seed: number | null;
  /** The swept parameters (dotted config path → value). */
  params: Params;
  /** `key=value` overrides for `loadExperiment(baseConfig, overrides)`: the spec's `set`, the params, the seed. */
  overrides: string[];
  /** Absolute path of the experiment YAML, or null for the built-in defaults. */
  baseConfig: string | null;
  trackingUri: string;
  experimentName: string;
  /** The sweep's MLflow parent run; trial runs nest under it. */
  parentRunId: string | null;
  metric: { name: string; goal: Goal };
  /** Epoch budget (ASHA's max_resource or the spec's `train.epochs`), null when unbounded; the last report's step. */
  maxEpochs: number | null;
}

/** A trial's final word (the value of a pruned trial is its last report). */
export type TrialFinish =
  | { state: 'complete'; value: number; runId?: string }
  | { state: 'pruned'; value?: number; runId?: string }
  | { state: 'failed'; error: string; runId?: string; storage?: string };
export type TrialResult = { type: 'result' } & TrialFinish;

export type ChildMessage = { type: 'started'; runId: string } | { type: 'report'; step: number; value: number } | TrialResult;
export type ParentMessage = { type: 'decision'; step: number; prune: boolean };

/** What the parent learns about one trial process. */
export interface TrialOutcome {
  state: 'complete' | 'pruned' | 'failed';
  value?: number;
  error?: string;
  runId?: string;
  /**
   * A failure without the trial's own word: its process ended without a result (killed by a
   * signal, OOM, a crash), so the delivery was lost rather than the trial judged; executors
   * deliver it again (it resumes from its last checkpoint). A failure the trial reported
   * itself (a bad config, a diverged loss) is final and has no `lost`.
   */
  lost?: true;
  /**
   * The file a trial could not write because the disk refused it (full, read-only): no fault of
   * the trial's, so it is not failed; its sweep stops with this path instead (see storage.ts).
   */
  storage?: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isFiniteNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Validates a payload (from a file or a queue job); errors name the offending key. */
export function parseTrialPayload(raw: unknown, file?: string): TrialPayload {
  const fail = (key: string, msg: string): never => {
    throw new EgmfError(msg, { file, key });
  };
  if (!isObj(raw)) return fail('', 'trial payload must be a JSON object');
  if (raw.version !== PROTOCOL_VERSION) fail('version', `unsupported trial protocol version ${JSON.stringify(raw.version)} (expected ${PROTOCOL_VERSION})`);
  for (const k of ['sweepId', 'trialId', 'trackingUri', 'experimentName'] as const) {
    if (typeof raw[k] !== 'string' || raw[k] === '') fail(k, 'must be a non-empty string');
  }
  for (const k of ['number', 'seedIndex'] as const) if (!Number.isInteger(raw[k]) || (raw[k] as number) < 0) fail(k, 'must be an integer >= 0');
  if (raw.seed !== null && !Number.isInteger(raw.seed)) fail('seed', 'must be an integer or null');
  if (!isObj(raw.params)) fail('params', 'must be an object');
  if (!Array.isArray(raw.overrides) || raw.overrides.some((s) => typeof s !== 'string' || !s.includes('='))) fail('overrides', 'must be a list of key=value strings');
  if (raw.baseConfig !== null && typeof raw.baseConfig !== 'string') fail('baseConfig', 'must be a path or null');
  if (raw.parentRunId !== null && typeof raw.parentRunId !== 'string') fail('parentRunId', 'must be a run id or null');
  const m = raw.metric;
  if (!isObj(m) || typeof m.name !== 'string' || (m.goal !== 'maximize' && m.goal !== 'minimize')) fail('metric', 'must be {name, goal: maximize|minimize}');
  if (raw.maxEpochs !== null && (!Number.isInteger(raw.maxEpochs) || (raw.maxEpochs as number) < 1)) fail('maxEpochs', 'must be an integer >= 1 or null');
  return raw as unknown as TrialPayload;
}

export function readTrialPayload(path: string): TrialPayload {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new EgmfError(`cannot read trial payload: ${(e as Error).message}`, { file: path }, { cause: e });
  }
  return parseTrialPayload(raw, path);
}

function parseChildMessage(m: unknown): ChildMessage | undefined {
  if (!isObj(m)) return undefined;
  if (m.type === 'started' && typeof m.runId === 'string') return { type: 'started', runId: m.runId };
  if (m.type === 'report' && Number.isInteger(m.step) && typeof m.value === 'number') return { type: 'report', step: m.step as number, value: m.value };
  if (m.type !== 'result') return undefined;
  const runId = typeof m.runId === 'string' ? { runId: m.runId } : {};
  if (m.state === 'complete' && isFiniteNum(m.value)) return { type: 'result', state: 'complete', value: m.value, ...runId };
  if (m.state === 'pruned') return { type: 'result', state: 'pruned', ...(isFiniteNum(m.value) ? { value: m.value } : {}), ...runId };
  if (m.state === 'failed') return { type: 'result', state: 'failed', error: typeof m.error === 'string' ? m.error : 'trial failed', ...runId, ...(typeof m.storage === 'string' ? { storage: m.storage } : {}) };
  return undefined;
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The command that runs one trial: an explicit override, else `EGMF_TRIAL_COMMAND` (a JSON
 * array), else `node bin/egmf.mjs trial`. It must be a Node program (it needs the IPC channel).
 */
export function trialCommand(override?: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  if (override && override.length > 0) return [...override];
  const raw = env[TRIAL_COMMAND_ENV];
  if (raw) {
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new EgmfError(`must be a JSON array of strings: ${(e as Error).message}`, { key: TRIAL_COMMAND_ENV });
    }
    if (!Array.isArray(v) || v.length === 0 || v.some((s) => typeof s !== 'string' || s === '')) {
      throw new EgmfError('must be a non-empty JSON array of strings, e.g. ["node", "train.mjs"]', { key: TRIAL_COMMAND_ENV });
    }
    return v as string[];
  }
  return [process.execPath, ...TRAINING_NODE_FLAGS, join(REPO_ROOT, 'bin', 'egmf.mjs'), 'trial'];
}

export interface RunTrialOptions {
  command: readonly string[];
  payload: TrialPayload;
  /** Extra environment (e.g. CUDA_VISIBLE_DEVICES) on top of this process's. */
  env?: NodeJS.ProcessEnv;
  onStarted?: (runId: string) => void | Promise<void>;
  /** Returns the prune decision for this report. */
  onReport: (step: number, value: number) => boolean | Promise<boolean>;
  /** Aborting kills the child (SIGTERM, then SIGKILL after `killGraceMs`). */
  signal?: AbortSignal;
  killGraceMs?: number;
  /** Child output lines, for logs (stderr is also kept for the error of a crash). */
  onOutput?: (line: string, stream: 'stdout' | 'stderr') => void;
  /**
   * The trial's folder: an earlier delivery's process still training it on this host is
   * stopped before this one starts, and this delivery's process is recorded as its owner
   * (see trial-folder.ts). Absent: neither.
   */
  folder?: string;
  /** Told when an earlier delivery's process had to be stopped. */
  onEvicted?: (what: string) => void;
}

const STDERR_TAIL = 4000;

/** Parent side: runs one trial process to its end. Never rejects for a trial's own failure. */
export async function runTrialProcess(opts: RunTrialOptions): Promise<TrialOutcome> {
  const host = new TrialHost({ reuse: false });
  try {
    return await host.run(opts);
  } finally {
    host.close();
  }
}

/** Whether a child process (its IPC channel and output pipes too) keeps this process's event loop alive. */
function holdOpen(child: ChildProcess, on: boolean): void {
  const handles = [child, (child as unknown as { channel?: { ref(): void; unref(): void } }).channel, child.stdout, child.stderr] as ({ ref?(): void; unref?(): void } | null | undefined)[];
  for (const h of handles) (on ? h?.ref : h?.unref)?.call(h);
}

/** The outcome a trial's own result gives, with its run (from the result, else from 'started'). */
function resultOutcome(s: Session, result: TrialResult): TrialOutcome {
  const { type: _t, ...rest } = result;
  const rid = result.runId ?? s.runId;
  return { ...rest, ...(rid !== undefined ? { runId: rid } : {}) };
}

/** One trial's delivery to a process: what the process said about it so far. */
interface Session {
  opts: RunTrialOptions;
  stderr: string;
  result?: TrialResult;
  runId?: string;
  protocolError?: string;
  /** Messages are handled in order: a report's decision goes out before the next message is read. */
  chain: Promise<void>;
  resolve: (o: TrialOutcome) => void;
  done: boolean;
}

/**
 * Parent side: runs trials in a process of their own, one at a time. With `reuse`, a trial
 * process that says it can take another (`EGMF_TRIAL_HOST=1`: after its result it sends
 * {type:'ready'}) gets the next trial of this host as {type:'trial', payload: <file>}, up to
 * `maxTrials` trials, instead of a new process: each later trial skips the process start
 * (imports, TensorFlow's library) and the JIT's warm-up, ~1.9 s of an 8 s trial. Every trial
 * still starts from nothing the earlier one left in the process's training state (a run drops
 * its captured graphs; the model, data and optimizer are the run's own), and one whose
 * process dies is a lost delivery as before. A trial command that exits after its result (no
 * 'ready') simply gets a new process each time.
 */
export class TrialHost {
  private child: ChildProcess | null = null;
  private session: Session | null = null;
  /** A trial was given and has no outcome yet (its session starts once an earlier owner is gone). */
  private busy = false;
  /** The child took its last trial's result and waits for another. */
  private ready = false;
  private trials = 0;
  private key = '';

  constructor(private readonly o: { reuse: boolean; maxTrials?: number }) {}

  async run(opts: RunTrialOptions): Promise<TrialOutcome> {
    if (this.busy) throw new Error('TrialHost runs one trial at a time');
    this.busy = true;
    try {
      if (opts.folder !== undefined) {
        const evicted = await evictOwner(opts.folder, this.child?.pid !== undefined ? { except: this.child.pid } : {});
        if (evicted !== null) opts.onEvicted?.(evicted);
      }
      return await this.start(opts);
    } finally {
      this.busy = false;
    }
  }

  private start(opts: RunTrialOptions): Promise<TrialOutcome> {
    const dir = mkdtempSync(join(tmpdir(), 'egmf-trial-'));
    const payloadPath = join(dir, 'payload.json');
    writeFileSync(payloadPath, `${JSON.stringify(opts.payload)}\n`);
    const key = JSON.stringify([opts.command, opts.env ?? {}]);
    return new Promise<TrialOutcome>((resolveOutcome) => {
      const session: Session = {
        opts, stderr: '', chain: Promise.resolve(), done: false,
        resolve: (o) => {
          if (session.done) return;
          session.done = true;
          opts.signal?.removeEventListener('abort', onAbort);
          this.session = null;
          rmSync(dir, { recursive: true, force: true });
          resolveOutcome(o);
        },
      };
      this.session = session;
      const onAbort = (): void => this.kill(opts.killGraceMs);
      const reusable = this.child !== null && this.ready && this.child.connected && key === this.key && this.trials < (this.o.maxTrials ?? 16);
      if (reusable) {
        this.ready = false;
        this.trials++;
        holdOpen(this.child!, true);
        this.child!.send({ type: 'trial', payload: payloadPath });
      } else {
        this.retire();
        this.spawn(opts, payloadPath, key);
      }
      if (opts.folder !== undefined && this.child?.pid !== undefined) {
        try {
          recordOwner(opts.folder, this.child.pid);
        } catch {
          // The trial records itself too once it runs; a folder it cannot write fails it there, with the path.
        }
      }
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stops the process (an idle one at once; a running trial's is killed, its delivery lost). */
  close(): void {
    if (this.session !== null) this.kill();
    else this.retire();
  }

  private spawn(opts: RunTrialOptions, payloadPath: string, key: string): void {
    const [exe, ...args] = opts.command;
    const child = spawn(exe!, args, {
      env: { ...process.env, ...opts.env, [PAYLOAD_ENV]: payloadPath, [TRIAL_PARENT_ENV]: String(process.pid), ...(this.o.reuse ? { [HOST_ENV]: '1' } : {}) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.child = child;
    this.key = key;
    this.trials = 1;
    this.ready = false;
    const lines = (stream: 'stdout' | 'stderr') => {
      let buf = '';
      return (chunk: Buffer) => {
        const s = this.child === child ? this.session : null;
        if (s === null) return; // an idle host's output belongs to no trial
        const text = chunk.toString('utf8');
        if (stream === 'stderr') s.stderr = (s.stderr + text).slice(-STDERR_TAIL);
        if (!s.opts.onOutput) return;
        buf += text;
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        for (const l of parts) s.opts.onOutput(l, stream);
      };
    };
    child.stdout!.on('data', lines('stdout'));
    child.stderr!.on('data', lines('stderr'));
    child.on('message', (raw: unknown) => {
      const s = this.child === child ? this.session : null;
      if (s === null) return;
      s.chain = s.chain.then(() => this.onMessage(child, s, raw));
    });
    child.on('error', (e) => {
      const s = this.child === child ? this.session : null;
      if (s !== null) s.protocolError = `cannot start trial command ${JSON.stringify(opts.command)}: ${e.message}`;
    });
    child.on('close', (code, sig) => {
      const s = this.child === child ? this.session : null;
      if (this.child === child) {
        this.child = null;
        this.ready = false;
      }
      if (s === null) return;
      void s.chain.then(() => {
        const rid = s.result?.runId ?? s.runId;
        const withRun = rid !== undefined ? { runId: rid } : {};
        if (s.result && !s.protocolError) {
          s.resolve(resultOutcome(s, s.result));
          return;
        }
        const how = sig ? `killed by ${sig}` : `exited with code ${code}`;
        const tail = s.stderr.trim();
        const why = s.protocolError ?? `trial process ${how} without a result`;
        // A protocol breach (malformed message, a command that cannot start) is no lost delivery.
        s.resolve({ state: 'failed', error: tail ? `${why}\n${tail}` : why, ...withRun, ...(s.protocolError === undefined ? { lost: true as const } : {}) });
      });
    });
  }

  private async onMessage(child: ChildProcess, s: Session, raw: unknown): Promise<void> {
    if (isObj(raw) && raw.type === 'ready' && this.o.reuse) {
      // The trial's result came first; the process now waits for the next trial.
      if (s.result === undefined || s.protocolError !== undefined) {
        s.protocolError ??= 'trial process said it was ready before sending a result';
        this.kill();
        return;
      }
      this.ready = true;
      holdOpen(child, false); // an idle host keeps no one waiting
      s.resolve(resultOutcome(s, s.result));
      return;
    }
    const m = parseChildMessage(raw);
    if (!m) {
      s.protocolError = `trial sent a malformed message: ${JSON.stringify(raw).slice(0, 200)}`;
      this.kill();
      return;
    }
    if (m.type === 'started') {
      s.runId = m.runId;
      try {
        await s.opts.onStarted?.(m.runId);
      } catch (e) {
        // The chain must go on (a rejected link would stall every later message).
        s.protocolError = `the executor could not record the trial's run: ${(e as Error).message}`;
        this.kill();
      }
    } else if (m.type === 'report') {
      let prune: boolean;
      try {
        prune = await s.opts.onReport(m.step, m.value);
      } catch (e) {
        s.protocolError = `report at step ${m.step} was rejected: ${(e as Error).message}`;
        prune = true;
      }
      const reply: ParentMessage = { type: 'decision', step: m.step, prune };
      // An aborted delivery is being stopped, not pruned: a prune it records would stick.
      if (child.connected && s.opts.signal?.aborted !== true) child.send(reply);
    } else {
      s.result ??= m;
    }
  }

  /** Kills the process: SIGTERM, then SIGKILL after the grace time. */
  private kill(graceMs?: number): void {
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), graceMs ?? this.session?.opts.killGraceMs ?? 3000).unref();
  }

  /** Lets an idle process go: it exits when its channel closes. */
  private retire(): void {
    const child = this.child;
    this.child = null;
    this.ready = false;
    if (child !== null && child.connected) child.disconnect();
  }
}

export interface TrialConnection {
  payload: TrialPayload;
  /** Announces the trial's MLflow run (call once, as soon as it exists). */
  started(runId: string): void;
  /** Reports the metric after epoch `step` (1-based); resolves true when the trial must stop (pruned). */
  report(step: number, value: number): Promise<boolean>;
  /** Sends the final result; resolves once it is on the wire. */
  finish(result: TrialFinish): Promise<void>;
}

/** Child side: reads the payload and opens the channel to the executor (one trial; `finish` closes the channel). */
export function connectTrial(env: NodeJS.ProcessEnv = process.env): TrialConnection {
  const channel = openChannel(env);
  return channel.trial(readTrialPayload(channel.firstPath), true);
}

/**
 * Child side of a trial process: runs the trial its executor started it for, then, when the
 * executor lets it host more (`EGMF_TRIAL_HOST=1`), says {type:'ready'} and runs each trial
 * the executor sends next ({type:'trial', payload: <file>}) until the executor closes the
 * channel. `run` reports and finishes each trial through its connection.
 */
export async function serveTrials(run: (conn: TrialConnection) => Promise<void>, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const channel = openChannel(env);
  let path = channel.firstPath;
  for (;;) {
    process.exitCode = undefined;
    await run(channel.trial(readTrialPayload(path), false));
    if (env[HOST_ENV] !== '1') break;
    path = await channel.next();
  }
  process.disconnect?.();
}

function openChannel(env: NodeJS.ProcessEnv): { firstPath: string; trial(payload: TrialPayload, closeAfter: boolean): TrialConnection; next(): Promise<string> } {
  const firstPath = env[PAYLOAD_ENV];
  if (!firstPath) throw new EgmfError(`not started by a sweep executor: ${PAYLOAD_ENV} is not set`, { key: PAYLOAD_ENV });
  const send = process.send?.bind(process);
  if (!send) throw new EgmfError('a trial needs the IPC channel its executor opens (spawned with stdio "ipc")', { key: PAYLOAD_ENV });
  let waiting = new Map<number, (prune: boolean) => void>();
  let nextTrial: ((path: string) => void) | null = null;
  process.on('message', (m: unknown) => {
    if (isObj(m) && m.type === 'trial' && typeof m.payload === 'string' && nextTrial !== null) {
      const go = nextTrial;
      nextTrial = null;
      go(m.payload);
      return;
    }
    if (!isObj(m) || m.type !== 'decision' || typeof m.step !== 'number') return;
    const done = waiting.get(m.step);
    waiting.delete(m.step);
    done?.(m.prune === true);
  });
  // The executor is gone (a killed worker or controller) or lets this host go: stop; another
  // delivery redoes an unfinished trial.
  process.on('disconnect', () => process.exit(70));
  const post = (m: ChildMessage | { type: 'ready' }): Promise<void> => new Promise((res, rej) => send(m, undefined, {}, (e: Error | null) => (e ? rej(e) : res())));
  return {
    firstPath,
    trial: (payload, closeAfter) => {
      waiting = new Map();
      return {
        payload,
        started: (runId) => void post({ type: 'started', runId }),
        report: (step, value) => {
          if (!Number.isInteger(step) || step < 0) throw new EgmfError(`step must be an integer >= 0, got ${step}`, { key: payload.trialId });
          const decision = new Promise<boolean>((res) => waiting.set(step, res));
          void post({ type: 'report', step, value });
          return decision;
        },
        finish: async (result) => {
          await post({ type: 'result', ...result });
          if (closeAfter) process.disconnect?.();
        },
      };
    },
    next: () => new Promise<string>((res, rej) => {
      nextTrial = res;
      post({ type: 'ready' }).catch(rej);
    }),
  };
}

/** The params a trial run logs: the swept values, as MLflow strings (lists/objects as JSON). */
export function trialRunParams(payload: TrialPayload): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(payload.params)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  if (payload.seed !== null && !('seed' in out)) out.seed = String(payload.seed);
  return out;
}

/** Creates the trial's child run under the sweep's parent run, tagged and with its params. */
export async function openTrialRun(payload: TrialPayload, store: TrackingStore = createStore(payload.trackingUri)): Promise<RunHandle> {
  // The payload's experiment wins over MLFLOW_EXPERIMENT_NAME: the trial must nest under its parent.
  const experimentId = await store.getOrCreateExperiment(payload.experimentName);
  const run = await startRun(store, {
    experimentId,
    runName: payload.trialId,
    ...(payload.parentRunId ? { parentRunId: payload.parentRunId } : {}),
    tags: { [TAG_SWEEP_ID]: payload.sweepId, [TAG_TRIAL_ID]: payload.trialId },
  });
  await run.logParams(trialRunParams(payload));
  return run;
}
