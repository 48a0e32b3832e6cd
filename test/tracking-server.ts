/**
 * A real `mlflow server` for tests (sqlite backend, artifact proxy), one per test file.
 * Missing MLflow is a failure, not a skip: these tests must run in CI (`npm test` installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync, closeSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { REPO, tempDir } from './helpers.ts';

export interface MlflowServer {
  uri: string;
  port: number;
  /** Holds mlflow.db, artifacts/ and server.log. */
  dir: string;
  stop(): Promise<void>;
  /** Stops if running, then starts again on the same port with the same database. */
  restart(): Promise<void>;
  /** Stops the server and deletes its folder. */
  dispose(): Promise<void>;
}

export function mlflowBin(): string {
  const bin = process.env.EGMF_MLFLOW ?? join(REPO, '.venv', 'bin', 'mlflow');
  if (!existsSync(bin)) {
    throw new Error(`MLflow server binary not found at ${bin}: run 'bash scripts/test-env.sh' (npm test does) to install requirements-test.txt into .venv, or set EGMF_MLFLOW`);
  }
  return bin;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startMlflowServer(opts: { timeoutMs?: number } = {}): Promise<MlflowServer> {
  const bin = mlflowBin();
  const tmp = tempDir('egmf-mlflow-');
  const port = await freePort();
  const uri = `http://127.0.0.1:${port}`;
  const logPath = join(tmp.path, 'server.log');
  let child: ChildProcess | undefined;

  const start = async () => {
    const log = openSync(logPath, 'a');
    child = spawn(bin, [
      'server', '--backend-store-uri', `sqlite:///${join(tmp.path, 'mlflow.db')}`, '--artifacts-destination', join(tmp.path, 'artifacts'),
      '--host', '127.0.0.1', '--port', String(port), '--workers', '1',
    ], {
      // Own process group, so stop() takes down uvicorn's workers too.
      detached: true,
      stdio: ['ignore', log, log],
      // The job runner and its consumers are not needed and double the start time.
      env: { ...process.env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false', PYTHONUNBUFFERED: '1' },
    });
    closeSync(log);
    let exited = false;
    child.once('exit', () => { exited = true; });
    const deadline = Date.now() + (opts.timeoutMs ?? 150_000);
    while (Date.now() < deadline) {
      if (exited) throw new Error(`mlflow server exited during start-up; log ${logPath}:\n${readFileSync(logPath, 'utf8').slice(-3000)}`);
      try {
        const r = await fetch(`${uri}/health`, { signal: AbortSignal.timeout(2000) });
        if (r.ok) return;
      } catch {
        // Not listening yet.
      }
      await sleep(250);
    }
    throw new Error(`mlflow server did not answer /health within ${opts.timeoutMs ?? 150_000} ms; log ${logPath}:\n${readFileSync(logPath, 'utf8').slice(-3000)}`);
  };

  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.pid === undefined) return;
    const gone = new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
    try {
      process.kill(-c.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => { try { process.kill(-c.pid!, 'SIGKILL'); } catch { /* gone */ } }, 8000);
    await gone;
    // Workers in the group may outlive the parent for a moment: wait until the port is released.
    for (let i = 0; i < 80 && (await portOpen(port)); i++) {
      if (i === 40) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
      await sleep(100);
    }
    clearTimeout(timer);
  };

  await start();
  return {
    uri, port, dir: tmp.path,
    stop,
    restart: async () => { await stop(); await start(); },
    dispose: async () => { await stop(); tmp.cleanup(); },
  };
}
