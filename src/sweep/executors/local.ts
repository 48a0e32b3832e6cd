/**
 * The local executor: a pool of slots, each running one trial process at a time. With GPUs
 * present each slot owns one (`CUDA_VISIBLE_DEVICES`), so parallel trials never share a card.
 *
 * A trial process that ends without a result (SIGKILLed, OOM-killed, crashed: a *lost*
 * delivery) is delivered again in its slot, resuming from its last checkpoint, up to
 * `attempts` deliveries in all (as BullMQ's `attempts` for the queue executor, or Optuna's
 * failed-trial retry); then it is failed with the last delivery's cause. A trial that reports
 * its own failure (a bad config, a diverged loss) fails at once: running it again would fail
 * the same way.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { defaultThreads } from '../../models/backend/threads.ts';
import { TrialHost, trialCommand, type TrialOutcome, type TrialPayload } from '../trial-protocol.ts';
import { sweepRoot, trialFolder } from '../trial-folder.ts';
import type { Executor, TrialHandlers } from './types.ts';

/** GPU indices `nvidia-smi -L` lists (empty without a driver or without the tool). */
export function detectGpus(): number[] {
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return [];
  return [...r.stdout.matchAll(/^GPU (\d+):/gm)].map((m) => Number(m[1]));
}

/** Default concurrency: one trial per GPU when there are GPUs, else one per core. */
export function defaultParallelism(gpus: readonly number[] = detectGpus()): number {
  return gpus.length > 0 ? gpus.length : availableParallelism();
}

export interface LocalExecutorOptions {
  parallel: number;
  /** Trial command (default: `EGMF_TRIAL_COMMAND`, else `egmf trial`). */
  command?: readonly string[];
  /** GPU indices to hand out per slot (default: detected). */
  gpus?: readonly number[];
  /** Extra environment for every trial process. */
  env?: NodeJS.ProcessEnv;
  onOutput?: (trialId: string, line: string, stream: 'stdout' | 'stderr') => void;
  /** Deliveries of a trial whose process keeps ending without a result, before it is failed (default 3). */
  attempts?: number;
  /** Wait before the second delivery, doubled for each further one (default 1000 ms). */
  backoffMs?: number;
  /** One line per re-delivery (for the sweep's progress log). */
  log?: (line: string) => void;
  /**
   * Run a slot's next trial in the process its last trial ran in, when that process offers
   * (see TrialHost): default true, unless `EGMF_TRIAL_REUSE=0`. false = a new process for
   * every trial.
   */
  reuse?: boolean;
}

export class LocalExecutor implements Executor {
  readonly description: string;
  private readonly command: string[];
  private readonly gpus: readonly number[];
  private readonly free: number[];
  private readonly waiters: ((slot: number) => void)[] = [];
  private readonly abort = new AbortController();
  /** One trial process (host) per slot. */
  private readonly hosts: TrialHost[];

  constructor(private readonly opts: LocalExecutorOptions) {
    if (!Number.isInteger(opts.parallel) || opts.parallel < 1) throw new Error(`parallel must be an integer >= 1, got ${opts.parallel}`);
    if (opts.attempts !== undefined && (!Number.isInteger(opts.attempts) || opts.attempts < 1)) throw new Error(`attempts must be an integer >= 1, got ${opts.attempts}`);
    this.command = trialCommand(opts.command);
    this.gpus = opts.gpus ?? detectGpus();
    this.free = Array.from({ length: opts.parallel }, (_, i) => i);
    this.hosts = Array.from({ length: opts.parallel }, () => new TrialHost({ reuse: opts.reuse ?? process.env['EGMF_TRIAL_REUSE'] !== '0' }));
    const where = this.gpus.length > 0 ? `, GPUs ${this.gpus.join(',')}` : '';
    this.description = `local pool of ${opts.parallel} process${opts.parallel === 1 ? '' : 'es'}${where}`;
  }

  async run(payload: TrialPayload, handlers: TrialHandlers): Promise<TrialOutcome> {
    if (this.abort.signal.aborted) return { state: 'failed', error: 'executor closed before the trial started' };
    const attempts = this.opts.attempts ?? 3;
    const slot = await this.acquire();
    try {
      for (let attempt = 1; ; attempt++) {
        const outcome = await this.deliver(payload, handlers, slot);
        // Closing kills the running trials on purpose: they are left for `sweep resume`.
        if (outcome.state !== 'failed' || !outcome.lost || this.abort.signal.aborted) return outcome;
        const why = (outcome.error ?? '').split('\n')[0];
        if (attempt >= attempts) return attempts === 1 ? outcome : { ...outcome, error: `lost ${attempts} deliveries (attempts ${attempts}), the last: ${outcome.error ?? 'no result'}` };
        this.opts.log?.(`${payload.trialId}: ${why}; delivering it again (${attempt + 1} of ${attempts}), from its last checkpoint`);
        await sleep((this.opts.backoffMs ?? 1000) * 2 ** (attempt - 1), this.abort.signal);
        if (this.abort.signal.aborted) return outcome;
      }
    } finally {
      this.release(slot);
    }
  }

  private deliver(payload: TrialPayload, handlers: TrialHandlers, slot: number): Promise<TrialOutcome> {
    const env: NodeJS.ProcessEnv = { ...this.opts.env, EGMF_WORKER_SLOT: String(slot) };
    if (this.gpus.length > 0) env.CUDA_VISIBLE_DEVICES = String(this.gpus[slot % this.gpus.length]);
    // On CPUs the trials share the cores: each trial's TensorFlow gets at most its share of
    // them, so `parallel` trials do not fight over the same cores, and no more than a
    // training process takes by default (`defaultThreads`).
    else if (process.env['TF_NUM_INTRAOP_THREADS'] === undefined && this.opts.env?.['TF_NUM_INTRAOP_THREADS'] === undefined) {
      env['TF_NUM_INTRAOP_THREADS'] = String(Math.max(1, Math.min(defaultThreads(), Math.floor(availableParallelism() / this.opts.parallel))));
    }
    return this.hosts[slot]!.run({
      command: this.command,
      payload,
      env,
      signal: this.abort.signal,
      folder: trialFolder(payload.sweepId, payload.trialId, sweepRoot({ ...process.env, ...this.opts.env })),
      onEvicted: (what) => this.opts.log?.(`${payload.trialId}: ${what}`),
      onStarted: (runId) => handlers.onStarted(runId),
      onReport: (step, value) => handlers.onReport(step, value),
      ...(this.opts.onOutput ? { onOutput: (line: string, stream: 'stdout' | 'stderr') => this.opts.onOutput!(payload.trialId, line, stream) } : {}),
    });
  }

  async close(): Promise<void> {
    this.abort.abort();
    for (const h of this.hosts) h.close();
  }

  private acquire(): Promise<number> {
    const slot = this.free.shift();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((res) => this.waiters.push(res));
  }

  private release(slot: number): void {
    const next = this.waiters.shift();
    if (next) next(slot);
    else this.free.push(slot);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((res) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      res();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
