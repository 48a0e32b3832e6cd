import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { MlflowError, MlflowHttpClient, RestStore, isMlflowError, splitBatch } from '../../src/tracking/index.ts';
import { freePort } from '../tracking-server.ts';

/** A stand-in server whose behaviour each test scripts; it records every request. */
interface Seen { method: string; url: string; headers: IncomingMessage['headers']; body: string }
let server: Server;
let base: string;
const seen: Seen[] = [];
let handler: (req: Seen, res: ServerResponse) => void = (_q, res) => res.end('{}');

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(s);
      handler(s, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
const fast = { retry: { maxRetries: 3, baseDelayMs: 5, maxDelayMs: 20 }, auth: null, env: {} };

describe('MLflow HTTP client', () => {
  it('retries 503 twice, then succeeds', async () => {
    seen.length = 0;
    let n = 0;
    handler = (_q, res) => (++n <= 2 ? json(res, 503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' }) : json(res, 200, { experiment_id: '7' }));
    const store = new RestStore(base, fast);
    expect(await store.createExperiment('e')).toBe('7');
    expect(seen.map((s) => s.url)).toEqual(Array(3).fill('/api/2.0/mlflow/experiments/create'));
  });

  it('retries 429 (honouring Retry-After) even for non-idempotent requests', async () => {
    seen.length = 0;
    let n = 0;
    handler = (_q, res) => (++n === 1 ? json(res, 429, { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'slow down' }, { 'Retry-After': '0' }) : json(res, 200, {}));
    const store = new RestStore(base, fast);
    await store.logBatch('r1', { metrics: [{ key: 'm', value: 1, timestamp: 1, step: 0 }] });
    expect(seen).toHaveLength(2);
    expect(JSON.parse(seen[1]!.body)).toEqual({ run_id: 'r1', metrics: [{ key: 'm', value: 1, timestamp: 1, step: 0 }], params: [], tags: [] });
  });

  it('gives up after the configured number of retries with a transient MlflowError', async () => {
    seen.length = 0;
    handler = (_q, res) => json(res, 503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'down for maintenance' });
    const client = new MlflowHttpClient(base, { ...fast, retry: { maxRetries: 2, baseDelayMs: 1 } });
    const err = await client.get('runs/get', { run_id: 'x' }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowError);
    expect((err as MlflowError).errorCode).toBe('TEMPORARILY_UNAVAILABLE');
    expect((err as MlflowError).transient).toBe(true);
    expect((err as MlflowError).message).toContain('down for maintenance');
    expect(seen).toHaveLength(3);
  });

  it('retries network errors, then reports NETWORK_ERROR', async () => {
    const port = await freePort();
    const client = new MlflowHttpClient(`http://127.0.0.1:${port}`, { ...fast, retry: { maxRetries: 2, baseDelayMs: 1 } });
    const t0 = Date.now();
    const err = await client.get('experiments/get-by-name', { experiment_name: 'x' }).then(() => null, (e: unknown) => e);
    expect(isMlflowError(err, 'NETWORK_ERROR')).toBe(true);
    expect((err as MlflowError).message).toContain('ECONNREFUSED');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("surfaces MLflow's error_code and message and does not retry 4xx", async () => {
    seen.length = 0;
    handler = (_q, res) => json(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: "Changing param values is not allowed. Param with key='lr'" });
    const err = await new RestStore(base, fast).logParam('r1', 'lr', 2).then(() => null, (e: unknown) => e);
    expect(isMlflowError(err, 'INVALID_PARAMETER_VALUE')).toBe(true);
    expect((err as MlflowError).status).toBe(400);
    expect((err as Error).message).toMatch(/INVALID_PARAMETER_VALUE.*key='lr'/);
    expect(seen).toHaveLength(1);
  });

  it('after an unclear 500 on log-batch, resends only the metric points the server lacks', async () => {
    seen.length = 0;
    const stored: { key: string; value: number; timestamp: number; step: number }[] = [];
    let batches = 0;
    handler = (q, res) => {
      if (q.url.startsWith('/api/2.0/mlflow/runs/log-batch')) {
        const b = JSON.parse(q.body) as { metrics: typeof stored };
        batches++;
        // First request: the server applies half of the points, then fails.
        if (batches === 1) {
          stored.push(...b.metrics.slice(0, 2));
          return json(res, 500, { error_code: 'INTERNAL_ERROR', message: 'database is locked' });
        }
        stored.push(...b.metrics);
        return json(res, 200, {});
      }
      if (q.url.startsWith('/api/2.0/mlflow/metrics/get-history')) {
        const key = new URL(q.url, base).searchParams.get('metric_key');
        return json(res, 200, { metrics: stored.filter((m) => m.key === key) });
      }
      json(res, 404, { error_code: 'ENDPOINT_NOT_FOUND', message: q.url });
    };
    const metrics = [0, 1, 2, 3].map((step) => ({ key: 'loss', value: step / 2, timestamp: 100 + step, step }));
    await new RestStore(base, fast).logBatch('r1', { metrics });
    expect(batches).toBe(2);
    expect(stored.map((m) => m.step)).toEqual([0, 1, 2, 3]);
  });

  it('sends Bearer auth from MLFLOW_TRACKING_TOKEN and Basic auth from username/password or the URI', async () => {
    seen.length = 0;
    handler = (_q, res) => json(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no such experiment' });
    await new RestStore(base, { env: { MLFLOW_TRACKING_TOKEN: 'tok-123' } }).getExperimentByName('a');
    await new RestStore(base, { env: { MLFLOW_TRACKING_USERNAME: 'ann', MLFLOW_TRACKING_PASSWORD: 'pw' } }).getExperimentByName('a');
    const withCreds = base.replace('http://', 'http://bob:hunter2@');
    const store = new RestStore(withCreds, { env: {}, retry: { maxRetries: 0 } });
    const err = await store.getRun('missing').then(() => null, (e: unknown) => e);
    expect(seen.map((s) => s.headers.authorization)).toEqual([
      'Bearer tok-123',
      `Basic ${Buffer.from('ann:pw').toString('base64')}`,
      `Basic ${Buffer.from('bob:hunter2').toString('base64')}`,
    ]);
    expect(store.uri).not.toContain('hunter2');
    expect((err as Error).message).not.toContain('hunter2');
    const down = new RestStore(`http://bob:hunter2@127.0.0.1:${await freePort()}`, { env: {}, retry: { maxRetries: 0 } });
    const netErr = await down.getRun('x').then(() => null, (e: unknown) => e);
    expect((netErr as Error).message).not.toContain('hunter2');
  });

  it('rejects an unparsable tracking URI naming the setting, without echoing credentials', () => {
    expect(() => new MlflowHttpClient('not a uri')).toThrow(/MLFLOW_TRACKING_URI/);
    expect(() => new MlflowHttpClient('http://u:s3cret@exa mple.com')).toThrow(/\*\*\*/);
  });
});

describe('batch splitting', () => {
  it('keeps every request under 1000 metrics, 100 params, 100 tags, 1000 items and ~1 MB', () => {
    const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: `metric_${i % 7}`, value: i, timestamp: 1, step: i }));
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: 'x'.repeat(5000) }));
    const tags = Array.from({ length: 120 }, (_, i) => ({ key: `t${i}`, value: 'v' }));
    const chunks = splitBatch({ metrics, params, tags });
    for (const c of chunks) {
      expect(c.metrics.length).toBeLessThanOrEqual(1000);
      expect(c.params.length).toBeLessThanOrEqual(100);
      expect(c.tags.length).toBeLessThanOrEqual(100);
      expect(c.metrics.length + c.params.length + c.tags.length).toBeLessThanOrEqual(1000);
      expect(JSON.stringify({ run_id: 'x'.repeat(32), ...c }).length).toBeLessThan(1_000_000);
    }
    expect(chunks.flatMap((c) => c.metrics)).toEqual(metrics);
    expect(chunks.flatMap((c) => c.params)).toEqual(params);
    expect(chunks.flatMap((c) => c.tags)).toEqual(tags);
  });
});

describe('test server helper', () => {
  it('fails (does not skip) with a clear message when the mlflow binary is missing', async () => {
    const { mlflowBin } = await import('../tracking-server.ts');
    const saved = process.env.EGMF_MLFLOW;
    process.env.EGMF_MLFLOW = '/nonexistent/bin/mlflow';
    try {
      expect(() => mlflowBin()).toThrow(/MLflow server binary not found at \/nonexistent\/bin\/mlflow: run 'bash scripts\/test-env.sh'/);
    } finally {
      if (saved === undefined) delete process.env.EGMF_MLFLOW;
      else process.env.EGMF_MLFLOW = saved;
    }
  });
});
