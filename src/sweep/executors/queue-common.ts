/** What the sweep controller and `egmf worker` agree on when trials travel through BullMQ. */
import { EgmfError } from '../../errors.ts';

export const DEFAULT_QUEUE_NAME = 'egmf-trials';
export const JOB_NAME = 'trial';
/** Finished jobs are kept this long so a controller that was down can still read their results. */
export const KEEP_FINISHED_S = 7 * 24 * 3600;

/**
 * Job progress messages from a worker. `token` names one delivery of the job (a re-run
 * after a stall or a retry has a new one), so decisions reach the delivery that asked.
 */
export type QueueProgress =
  | { kind: 'started'; token: string; runId: string }
  | { kind: 'report'; token: string; step: number; value: number };

export function parseProgress(data: unknown): QueueProgress | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  if (typeof d.token !== 'string') return undefined;
  if (d.kind === 'started' && typeof d.runId === 'string') return { kind: 'started', token: d.token, runId: d.runId };
  if (d.kind === 'report' && Number.isInteger(d.step) && typeof d.value === 'number') return { kind: 'report', token: d.token, step: d.step as number, value: d.value };
  return undefined;
}

/** Redis list a worker blocks on for the prune decision of one report. */
export function decisionKey(queueName: string, jobId: string, token: string, step: number): string {
  return `egmf:${queueName}:decision:${jobId}:${token}:${step}`;
}

/** `redis://[user:pass@]host:port[/db]` (or `rediss://`) → ioredis options usable by BullMQ. */
/** The connection fields both ioredis and BullMQ accept. */
export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: Record<string, never>;
  maxRetriesPerRequest: null;
}

export function redisOptions(url: string, key = 'queue'): RedisConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EgmfError(`not a Redis URL: '${url}' (expected redis://host:port)`, { key });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new EgmfError(`Redis URL must start with redis:// or rediss://, got '${u.protocol}'`, { key });
  if (!u.hostname) throw new EgmfError(`Redis URL '${url}' has no host`, { key });
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new EgmfError(`Redis database must be an integer, got '${u.pathname.slice(1)}'`, { key });
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ's blocking connections must retry forever rather than fail a command.
    maxRetriesPerRequest: null,
  };
}

export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
