/**
 * The distributed executor, worker side (`egmf worker`): pulls trial jobs, runs each in its
 * own process (the trial protocol), relays reports as job progress and waits for the
 * controller's prune decision on a Redis list. A trial process that dies without a result fails
 * the job so BullMQ retries it; one that reports its own failure fails it for good; a released trial (forced shutdown) goes back to the queue for another worker.
 */
import { randomUUID } from 'node:crypto';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { parseTrialPayload, runTrialProcess, trialCommand, type TrialOutcome } from '../trial-protocol.ts';
import { detectGpus } from './local.ts';
import { trialFolder } from '../trial-folder.ts';
import { DEFAULT_QUEUE_NAME, decisionKey, redactRedisUrl, redisOptions, type QueueProgress } from './queue-common.ts';

export interface TrialWorkerOptions {
  url: string;
  queueName?: string;
  concurrency?: number;
  command?: readonly string[];
  /** BullMQ lock: a worker silent this long is presumed dead and its trial re-run elsewhere. */
  lockDurationMs?: number;
  /** How often this worker checks for stalled jobs (of dead workers). */
  stalledIntervalMs?: number;
  /** How many times a trial may stall before it is failed (default 3). */
  maxStalledCount?: number;
  /** Seconds between re-sending an unanswered report (the controller may be restarting). */
  decisionWaitS?: number;
  gpus?: readonly number[];
  log?: (line: string) => void;
}

interface Active {
  job: Job;
  token: string | undefined;
  abort: AbortController;
  released: boolean;
  /** Why this delivery lost its job (its lock could not be renewed, or the job is gone from Redis). */
  lost?: string;
}

export class TrialWorker {
  readonly description: string;
  private readonly active = new Map<string, Active>();
  private readonly freeSlots: number[];
  private readonly gpus: readonly number[];
  private readonly command: string[];
  private readonly worker: Worker;
  private readonly redis: Redis;
  private readonly log: (line: string) => void;
  private closed = false;

  constructor(private readonly opts: TrialWorkerOptions) {
    const concurrency = opts.concurrency ?? 1;
    const connection = redisOptions(opts.url);
    const queueName = opts.queueName ?? DEFAULT_QUEUE_NAME;
    this.command = trialCommand(opts.command);
    this.gpus = opts.gpus ?? detectGpus();
    this.freeSlots = Array.from({ length: concurrency }, (_, i) => i);
    this.log = opts.log ?? (() => undefined);
    this.redis = new Redis(connection);
    // ioredis reconnects by itself; BullMQ's own connections report an outage as 'worker error'.
    this.redis.on('error', () => undefined);
    this.description = `worker on queue '${queueName}' at ${redactRedisUrl(opts.url)} (concurrency ${concurrency}${this.gpus.length ? `, GPUs ${this.gpus.join(',')}` : ''})`;
    this.worker = new Worker(queueName, (job, token) => this.process(job, token, queueName), {
      connection,
      concurrency,
      autorun: false,
      ...(opts.lockDurationMs !== undefined ? { lockDuration: opts.lockDurationMs } : {}),
      ...(opts.stalledIntervalMs !== undefined ? { stalledInterval: opts.stalledIntervalMs } : {}),
      maxStalledCount: opts.maxStalledCount ?? 3,
    });
    this.worker.on('error', (e) => this.log(`worker error: ${e.message}`));
    // A lock this worker cannot renew means the job is no longer its own: its lock expired and
    // the stalled-job check handed it to another worker, or Redis lost it (a restart without
    // persistence; the controller enqueues it again). The trial must stop now, or two
    // deliveries would train it at once.
    this.worker.on('lockRenewalFailed', (ids) => {
      for (const a of this.active.values()) if (a.job.id !== undefined && ids.includes(a.job.id)) this.lose(a, 'its queue lock could not be renewed');
    });
  }

  private lose(a: Active, why: string): void {
    if (a.lost !== undefined || a.released) return;
    a.lost = why;
    a.abort.abort();
  }

  /** Runs until {@link drain} or {@link release}. */
  async run(): Promise<void> {
    await this.worker.waitUntilReady();
    await this.worker.run();
  }

  get running(): number {
    return this.active.size;
  }

  /** Takes no new trials and waits for the running ones (at most `graceMs`, then releases them). */
  async drain(graceMs = Infinity): Promise<void> {
    const closing = this.worker.close();
    if (Number.isFinite(graceMs)) {
      const timer = setTimeout(() => void this.release(), graceMs);
      await closing;
      clearTimeout(timer);
    } else {
      await closing;
    }
    this.shutdownConnections();
  }

  /** Stops running trials at once and hands them back to the queue for other workers. */
  async release(): Promise<void> {
    for (const a of this.active.values()) {
      a.released = true;
      a.abort.abort();
    }
    await this.worker.close();
    this.shutdownConnections();
  }

  private shutdownConnections(): void {
    if (this.closed) return;
    this.closed = true;
    this.redis.disconnect();
  }

  private async process(job: Job, token: string | undefined, queueName: string): Promise<TrialOutcome> {
    let payload;
    try {
      payload = parseTrialPayload(job.data, `job ${job.id}`);
    } catch (e) {
      throw new UnrecoverableError((e as Error).message);
    }
    const delivery = randomUUID();
    const a: Active = { job, token, abort: new AbortController(), released: false };
    const slot = this.freeSlots.shift() ?? 0;
    this.active.set(delivery, a);
    this.log(`trial ${payload.trialId} started (delivery ${delivery.slice(0, 8)}, attempt ${job.attemptsMade + 1})`);
    const blocking = this.redis.duplicate();
    blocking.on('error', () => undefined);
    try {
      const env: NodeJS.ProcessEnv = { EGMF_WORKER_SLOT: String(slot) };
      if (this.gpus.length > 0) env.CUDA_VISIBLE_DEVICES = String(this.gpus[slot % this.gpus.length]);
      // A progress update fails only when the job is gone or no longer ours (a lost connection
      // waits for Redis instead): the delivery is lost, never a reason to prune the trial.
      const progress = async (m: QueueProgress): Promise<boolean> => {
        try {
          await job.updateProgress(m);
          return true;
        } catch (e) {
          this.lose(a, `its job cannot be updated (${(e as Error).message})`);
          return false;
        }
      };
      const outcome = await runTrialProcess({
        command: this.command,
        payload,
        env,
        signal: a.abort.signal,
        folder: trialFolder(payload.sweepId, payload.trialId),
        onEvicted: (what) => this.log(`trial ${payload.trialId}: ${what}`),
        onStarted: async (runId) => void (await progress({ kind: 'started', token: delivery, runId })),
        onReport: async (step, value) => {
          const key = decisionKey(queueName, payload.trialId, delivery, step);
          const msg: QueueProgress = { kind: 'report', token: delivery, step, value };
          if (!(await progress(msg))) return true;
          // Re-ask until answered: a controller that restarted missed the first event.
          while (!a.abort.signal.aborted) {
            const r = await blocking.blpop(key, this.opts.decisionWaitS ?? 5);
            if (r) return (JSON.parse(r[1]) as { prune: boolean }).prune;
            if (!(await progress(msg))) return true;
          }
          return true;
        },
      });
      if (a.lost !== undefined) {
        // Not this worker's job any more: leave it to its next delivery (BullMQ is not told).
        this.log(`trial ${payload.trialId} stopped: ${a.lost}; it resumes from its last checkpoint in its next delivery`);
        throw new WaitingError();
      }
      if (a.released) {
        if (token !== undefined) await job.moveToWait(token);
        this.log(`trial ${payload.trialId} released back to the queue`);
        throw new WaitingError();
      }
      this.log(`trial ${payload.trialId} ${outcome.state}${outcome.value !== undefined ? ` (${outcome.value})` : ''}`);
      // A lost delivery (the process died without a result) is retried by BullMQ up to the job's
      // attempts; a failure the trial reported itself would fail again, so it fails the job now.
      // A disk that refused the trial's writes is this machine's fault: another worker may do.
      if (outcome.state === 'failed') throw outcome.lost || outcome.storage !== undefined ? new Error(outcome.error ?? 'trial failed') : new UnrecoverableError(outcome.error ?? 'trial failed');
      return outcome;
    } finally {
      blocking.disconnect();
      this.active.delete(delivery);
      this.freeSlots.push(slot);
    }
  }
}
