/**
 * The distributed executor, controller side: each trial becomes a BullMQ job whose id is the
 * trial id (adding it again is a no-op, so re-dispatching after a restart is safe). Reports
 * arrive as job progress events; the prune decision goes back on a Redis list the worker
 * blocks on. Trials whose process died without a result are retried by BullMQ up to
 * `attempts`; a stalled job (its worker died) is re-run by another worker without using an
 * attempt. Every `checkMs` the controller looks up the jobs it waits for: one finished while
 * its event was missed is told, one gone from Redis (a restart without persistence) is
 * enqueued again, so a sweep never waits for a job that no longer exists.
 */
import { Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { TrialOutcome, TrialPayload } from '../trial-protocol.ts';
import { DEFAULT_QUEUE_NAME, JOB_NAME, KEEP_FINISHED_S, decisionKey, parseProgress, redactRedisUrl, redisOptions, type RedisConnection } from './queue-common.ts';
import type { Executor, TrialHandlers } from './types.ts';

export interface QueueExecutorOptions {
  url: string;
  queueName?: string;
  /** Deliveries of a failing trial before it is recorded as failed (default 3). */
  attempts?: number;
  /** First retry delay, doubled each time (default 2000 ms). */
  backoffMs?: number;
  /** Give up connecting to Redis after this long (default 10 s). */
  connectTimeoutMs?: number;
  /** How often the jobs waited for are looked up in Redis (default 10 s). */
  checkMs?: number;
  /** One line per job enqueued again (for the sweep's progress log). */
  log?: (line: string) => void;
}

interface Pending {
  payload: TrialPayload;
  /** Its job was added once (only then can it go missing). */
  enqueued?: boolean;
  handlers: TrialHandlers;
  resolve: (o: TrialOutcome) => void;
  runId?: string;
  /** Serialises one trial's events so reports are told in order. */
  chain: Promise<void>;
}

function outcomeFrom(value: unknown): TrialOutcome {
  const v = (typeof value === 'string' ? JSON.parse(value) : value) as Partial<TrialOutcome> | null;
  if (v && (v.state === 'complete' || v.state === 'pruned') ) return v as TrialOutcome;
  return { state: 'failed', error: `worker returned an unexpected result: ${JSON.stringify(value).slice(0, 200)}` };
}

/**
 * One connection attempt without retries: BullMQ's connections retry forever, so an unreachable
 * server must be caught before any of them exists.
 */
async function probe(connection: RedisConnection, timeoutMs: number): Promise<void> {
  const c = new Redis({ ...connection, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs });
  let cause: Error | undefined;
  c.on('error', (e: Error) => { cause ??= e; });
  try {
    await c.connect();
    await c.ping();
  } catch (e) {
    throw cause ?? e;
  } finally {
    c.disconnect();
  }
}

export class QueueExecutor implements Executor {
  readonly description: string;
  readonly queueName: string;
  private readonly pending = new Map<string, Pending>();
  private readonly timer: NodeJS.Timeout;
  private checking = false;

  private constructor(
    private readonly opts: QueueExecutorOptions,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly redis: Redis,
  ) {
    this.queueName = opts.queueName ?? DEFAULT_QUEUE_NAME;
    this.description = `BullMQ queue '${this.queueName}' on ${redactRedisUrl(opts.url)}`;
    events.on('progress', ({ jobId, data }) => this.onProgress(jobId, data));
    events.on('completed', ({ jobId, returnvalue }) => this.finish(jobId, () => outcomeFrom(returnvalue)));
    events.on('failed', ({ jobId, failedReason }) => this.finish(jobId, () => ({ state: 'failed', error: failedReason || 'trial failed on the worker' })));
    this.timer = setInterval(() => void this.check(), opts.checkMs ?? 10_000);
    this.timer.unref();
  }

  static async connect(opts: QueueExecutorOptions): Promise<QueueExecutor> {
    const connection = redisOptions(opts.url);
    const name = opts.queueName ?? DEFAULT_QUEUE_NAME;
    await probe(connection, opts.connectTimeoutMs ?? 10_000);
    const queue = new Queue(name, { connection });
    const events = new QueueEvents(name, { connection });
    const redis = new Redis(connection);
    redis.on('error', () => undefined); // ioredis reconnects by itself
    // Without listeners an outage would print a stack trace per reconnection attempt: one line per new error.
    let last = { message: '', at: 0 };
    const onError = (e: Error): void => {
      if (e.message !== last.message || Date.now() - last.at > 60_000) {
        opts.log?.(`queue: ${e.message} (reconnecting)`);
        last = { message: e.message, at: Date.now() };
      }
    };
    queue.on('error', onError);
    events.on('error', onError);
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), redis.ping()]);
    return new QueueExecutor(opts, queue, events, redis);
  }

  async run(payload: TrialPayload, handlers: TrialHandlers): Promise<TrialOutcome> {
    const id = payload.trialId;
    const done = new Promise<TrialOutcome>((resolve) => this.pending.set(id, { payload, handlers, resolve, chain: Promise.resolve() }));
    await this.enqueue(payload);
    this.pending.get(id)!.enqueued = true;
    // The job may have finished before this controller was listening (it was restarted).
    await this.settled(id);
    const outcome = await done;
    const p = this.pending.get(id);
    this.pending.delete(id);
    const runId = outcome.runId ?? p?.runId;
    return runId !== undefined ? { ...outcome, runId } : outcome;
  }

  /** Adds the trial's job; a no-op while a job with its id exists. */
  private async enqueue(payload: TrialPayload): Promise<void> {
    await this.queue.add(JOB_NAME, payload, {
      jobId: payload.trialId,
      attempts: this.opts.attempts ?? 3,
      backoff: { type: 'exponential', delay: this.opts.backoffMs ?? 2000 },
      removeOnComplete: { age: KEEP_FINISHED_S },
      removeOnFail: { age: KEEP_FINISHED_S },
    });
  }

  /** Tells a job's result when it has one already; false when the job does not exist. */
  private async settled(id: string): Promise<boolean> {
    const job = await Job.fromId(this.queue, id);
    if (!job) return false;
    const state = await job.getState();
    if (state === 'completed') this.finish(id, () => outcomeFrom(job.returnvalue));
    else if (state === 'failed') this.finish(id, () => ({ state: 'failed', error: job.failedReason || 'trial failed on the worker' }));
    return true;
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const [id, p] of [...this.pending]) {
        if (!p.enqueued || (await this.settled(id))) continue;
        if (this.pending.get(id) !== p) continue;
        this.opts.log?.(`${id}: its job is gone from Redis (restarted without persistence?); enqueued again, to resume from its last checkpoint`);
        await this.enqueue(p.payload);
      }
    } catch {
      // Redis is away: the next check tries again.
    } finally {
      this.checking = false;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.redis.disconnect();
  }

  private onProgress(jobId: string, data: unknown): void {
    const p = this.pending.get(jobId);
    const m = parseProgress(data);
    if (!p || !m) return;
    p.chain = p.chain.then(async () => {
      if (m.kind === 'started') {
        p.runId = m.runId;
        await p.handlers.onStarted(m.runId);
        return;
      }
      let prune: boolean;
      try {
        prune = await p.handlers.onReport(m.step, m.value);
      } catch {
        prune = true;
      }
      const key = decisionKey(this.queueName, jobId, m.token, m.step);
      await this.redis.multi().rpush(key, JSON.stringify({ prune })).expire(key, 3600).exec();
    }).catch(() => undefined);
  }

  private finish(jobId: string, outcome: () => TrialOutcome): void {
    const p = this.pending.get(jobId);
    if (!p) return;
    // Let in-flight progress (a 'started' with the run id) land before the outcome.
    void p.chain.then(() => p.resolve(outcome()));
  }
}
