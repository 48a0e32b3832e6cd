/**
 * A real `redis-server` for the distributed-sweep tests, one per test file: 127.0.0.1, a free
 * port, in a temp folder; no persistence unless asked for (`persist: true`: an append-only file
 * fsynced on every write, as BullMQ's production guide asks for). A missing binary is a
 * failure, not a skip (`npm test` installs the Debian package).
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
  /** Stops the server and deletes its folder. */
  stop(): Promise<void>;
  /** Stops the server (SIGTERM: a clean shutdown), waits `downMs`, starts it again on the same port and folder. */
  restart(downMs?: number): Promise<void>;
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

export async function startRedisServer(opts: { timeoutMs?: number; persist?: boolean } = {}): Promise<RedisServer> {
  const bin = redisBin();
  const tmp = tempDir('egmf-redis-');
  const port = await freePort();
  const logPath = join(tmp.path, 'redis.log');
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const persistence = opts.persist ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', ''] : ['--save', '', '--appendonly', 'no'];
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const log = openSync(logPath, 'a');
    const c = spawn(bin, ['--bind', '127.0.0.1', '--port', String(port), ...persistence, '--dir', tmp.path], { stdio: ['ignore', log, log] });
    child = c;
    closeSync(log);
    let exited = false;
    c.once('exit', () => { exited = true; });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new Error(`redis-server exited during start-up; log ${logPath}:\n${readFileSync(logPath, 'utf8').slice(-2000)}`);
      const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined);
      try {
        await r.connect();
        if ((await r.ping()) === 'PONG') {
          r.disconnect();
          return;
        }
      } catch {
        // Not listening yet (or still loading its append-only file).
      }
      r.disconnect();
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port} within ${timeoutMs} ms; log ${logPath}`);
      await sleep(100);
    }
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await gone;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir: tmp.path,
    stop: async () => {
      await halt('SIGKILL');
      tmp.cleanup();
    },
    restart: async (downMs = 0) => {
      await halt('SIGTERM');
      await sleep(downMs);
      await start();
    },
  };
}
