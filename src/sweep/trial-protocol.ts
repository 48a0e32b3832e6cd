/**
 * The trial protocol: how a sweep runs one trial in its own process (one trial per process,
 * so a busy training loop can never starve the executor's event loop or lose a queue lock).
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
 *   child → parent  {type:'result', state, value?, runId?, error?, storage?}   last message; then it exits
 *                                                      (storage: the path of a write the disk refused)
 * A child that exits without a result (crash, kill, OOM) is a failed *delivery* (`lost`) whose
 * error is the tail of its stderr; executors re-deliver it a bounded number of times. A child whose parent disappears (channel closed) exits at once, so an
 * orphan never keeps training a trial that another worker will re-run.
 *
 * The trial logs its own params and metric histories to the tracking store (a child run of
 * `parentRunId`, see {@link openTrialRun}); the parent only tags the final state.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EgmfError } from '../errors.ts';
import { createStore, startRun, type RunHandle, type TrackingStore } from '../tracking/index.ts';
import type { Goal, Params } from './space.ts';
import { TRIAL_PARENT_ENV } from './watchdog.ts';
import { TRAINING_NODE_FLAGS } from '../train/process.ts';

export const PAYLOAD_ENV = 'EGMF_TRIAL_PAYLOAD';
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
}

const STDERR_TAIL = 4000;

/** Parent side: runs one trial process to its end. Never rejects for a trial's own failure. */
export async function runTrialProcess(opts: RunTrialOptions): Promise<TrialOutcome> {
  const dir = mkdtempSync(join(tmpdir(), 'egmf-trial-'));
  const payloadPath = join(dir, 'payload.json');
  writeFileSync(payloadPath, `${JSON.stringify(opts.payload)}\n`);
  const [exe, ...args] = opts.command;
  try {
    return await new Promise<TrialOutcome>((resolveOutcome) => {
      let stderr = '';
      let result: TrialResult | undefined;
      let runId: string | undefined;
      let protocolError: string | undefined;
      let chain: Promise<void> = Promise.resolve();
      const child = spawn(exe!, args, {
        env: { ...process.env, ...opts.env, [PAYLOAD_ENV]: payloadPath, [TRIAL_PARENT_ENV]: String(process.pid) },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        serialization: 'json',
      });
      const lines = (stream: 'stdout' | 'stderr') => {
        let buf = '';
        return (chunk: Buffer) => {
          const text = chunk.toString('utf8');
          if (stream === 'stderr') stderr = (stderr + text).slice(-STDERR_TAIL);
          if (!opts.onOutput) return;
          buf += text;
          const parts = buf.split('\n');
          buf = parts.pop() ?? '';
          for (const l of parts) opts.onOutput(l, stream);
        };
      };
      child.stdout!.on('data', lines('stdout'));
      child.stderr!.on('data', lines('stderr'));
      const kill = (): void => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), opts.killGraceMs ?? 3000).unref();
      };
      opts.signal?.addEventListener('abort', kill, { once: true });
      // Messages are handled in order: a report's decision goes out before the next message is read.
      child.on('message', (raw: unknown) => {
        chain = chain.then(async () => {
          const m = parseChildMessage(raw);
          if (!m) {
            protocolError = `trial sent a malformed message: ${JSON.stringify(raw).slice(0, 200)}`;
            kill();
            return;
          }
          if (m.type === 'started') {
            runId = m.runId;
            try {
              await opts.onStarted?.(m.runId);
            } catch (e) {
              // The chain must go on (a rejected link would stall every later message).
              protocolError = `the executor could not record the trial's run: ${(e as Error).message}`;
              kill();
            }
          } else if (m.type === 'report') {
            let prune: boolean;
            try {
              prune = await opts.onReport(m.step, m.value);
            } catch (e) {
              protocolError = `report at step ${m.step} was rejected: ${(e as Error).message}`;
              prune = true;
            }
            const reply: ParentMessage = { type: 'decision', step: m.step, prune };
            // An aborted delivery is being stopped, not pruned: a prune it records would stick.
            if (child.connected && opts.signal?.aborted !== true) child.send(reply);
          } else {
            result ??= m;
          }
        });
      });
      child.on('error', (e) => {
        protocolError = `cannot start trial command ${JSON.stringify(opts.command)}: ${e.message}`;
      });
      child.on('close', (code, sig) => {
        opts.signal?.removeEventListener('abort', kill);
        void chain.then(() => {
          const rid = result?.runId ?? runId;
          const withRun = rid !== undefined ? { runId: rid } : {};
          if (result && !protocolError) {
            const { type: _t, ...rest } = result;
            resolveOutcome({ ...rest, ...withRun });
            return;
          }
          const how = sig ? `killed by ${sig}` : `exited with code ${code}`;
          const tail = stderr.trim();
          const why = protocolError ?? `trial process ${how} without a result`;
          // A protocol breach (malformed message, a command that cannot start) is no lost delivery.
          resolveOutcome({ state: 'failed', error: tail ? `${why}\n${tail}` : why, ...withRun, ...(protocolError === undefined ? { lost: true as const } : {}) });
        });
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
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

/** Child side: reads the payload and opens the channel to the executor. */
export function connectTrial(env: NodeJS.ProcessEnv = process.env): TrialConnection {
  const path = env[PAYLOAD_ENV];
  if (!path) throw new EgmfError(`not started by a sweep executor: ${PAYLOAD_ENV} is not set`, { key: PAYLOAD_ENV });
  const send = process.send?.bind(process);
  if (!send) throw new EgmfError('a trial needs the IPC channel its executor opens (spawned with stdio "ipc")', { key: PAYLOAD_ENV });
  const payload = readTrialPayload(path);
  const waiting = new Map<number, (prune: boolean) => void>();
  process.on('message', (m: unknown) => {
    if (!isObj(m) || m.type !== 'decision' || typeof m.step !== 'number') return;
    const done = waiting.get(m.step);
    waiting.delete(m.step);
    done?.(m.prune === true);
  });
  // The executor is gone (a killed worker or controller): stop, another delivery will redo it.
  process.on('disconnect', () => process.exit(70));
  const post = (m: ChildMessage): Promise<void> => new Promise((res, rej) => send(m, undefined, {}, (e: Error | null) => (e ? rej(e) : res())));
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
      process.disconnect?.();
    },
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
