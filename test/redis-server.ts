/**
 * A real `redis-server` for the distributed-sweep tests, one per test file: 127.0.0.1, a free
 * port, no persistence, in a temp folder. A missing binary is a failure, not a skip (`npm test`
 * installs the Debian package).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { tempDir } from './helpers.ts';
import { freePort } from './tracking-server.ts';

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export function redisBin(): string {
  const bin = process.env.EGMF_REDIS_SERVER ?? 'redis-server';
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`redis-server not found ('${bin} --version' failed${r.error ? `: ${r.error.message}` : ''}): install the Debian package redis-server (scripts/test-env.sh does) or set EGMF_REDIS_SERVER`);
  }
  return bin;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startRedisServer(timeoutMs = 20_000): Promise<RedisServer> {
  const bin = redisBin();
  const tmp = tempDir('egmf-redis-');
  const port = await freePort();
  const logPath = join(tmp.path, 'redis.log');
  const log = openSync(logPath, 'a');
  const child: ChildProcess = spawn(bin, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', tmp.path], { stdio: ['ignore', log, log] });
  closeSync(log);
  let exited = false;
  child.once('exit', () => { exited = true; });
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`redis-server exited during start-up; log ${logPath}:\n${readFileSync(logPath, 'utf8').slice(-2000)}`);
    const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    try {
      await c.connect();
      if ((await c.ping()) === 'PONG') {
        c.disconnect();
        break;
      }
    } catch {
      // Not listening yet.
    }
    c.disconnect();
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port} within ${timeoutMs} ms; log ${logPath}`);
    await sleep(100);
  }
  return {
    url,
    port,
    dir: tmp.path,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGKILL');
        await gone;
      }
      tmp.cleanup();
    },
  };
}
