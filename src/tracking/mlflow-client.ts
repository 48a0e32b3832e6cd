/**
 * A small typed HTTP client for MLflow's REST API on Node's global fetch: auth from the
 * environment, bounded retries with exponential backoff and full jitter, and MLflow's
 * `{error_code, message}` surfaced as {@link MlflowError}. Credentials never reach messages.
 */
import { MlflowError } from './errors.ts';
import { redact } from './secrets.ts';

export interface RetryPolicy {
  /** Retries after the first try (0 = try once). */
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface ClientOptions {
  retry?: Partial<RetryPolicy>;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Defaults to MLFLOW_TRACKING_TOKEN / MLFLOW_TRACKING_USERNAME+PASSWORD, or user:pass in the URI. */
  auth?: { token: string } | { username: string; password: string } | null;
  env?: NodeJS.ProcessEnv;
  /** For tests: random in [0,1). */
  random?: () => number;
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /**
   * Resending after an unclear failure could apply the request twice (run creation, metrics):
   * such requests are only retried when the server surely never processed them.
   */
  idempotent?: boolean;
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
// Connection refused before sending, throttling and "unavailable" mean nothing was applied.
const SURELY_UNPROCESSED = new Set([429, 503]);
const SAFE_NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new MlflowError('INVALID_PARAMETER_VALUE', `environment variable must be a nonnegative number, got '${v}'`, { key: name });
  return n;
}

function networkCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur && typeof cur === 'object'; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

export class MlflowHttpClient {
  readonly baseUrl: string;
  readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly authHeader: string | undefined;
  private readonly random: () => number;

  constructor(uri: string, opts: ClientOptions = {}) {
    const env = opts.env ?? process.env;
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new MlflowError('INVALID_PARAMETER_VALUE', `not a valid tracking URI: '${redact(uri)}'`, { key: 'MLFLOW_TRACKING_URI' });
    }
    let auth = opts.auth;
    if (auth === undefined) {
      if (env.MLFLOW_TRACKING_TOKEN) auth = { token: env.MLFLOW_TRACKING_TOKEN };
      else if (env.MLFLOW_TRACKING_USERNAME && env.MLFLOW_TRACKING_PASSWORD) auth = { username: env.MLFLOW_TRACKING_USERNAME, password: env.MLFLOW_TRACKING_PASSWORD };
      else if (url.username) auth = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
    }
    url.username = '';
    url.password = '';
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.authHeader = !auth ? undefined : 'token' in auth ? `Bearer ${auth.token}` : `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    this.retry = {
      maxRetries: opts.retry?.maxRetries ?? envInt(env, 'MLFLOW_HTTP_REQUEST_MAX_RETRIES') ?? 5,
      baseDelayMs: opts.retry?.baseDelayMs ?? 500,
      maxDelayMs: opts.retry?.maxDelayMs ?? 30_000,
    };
    this.timeoutMs = opts.timeoutMs ?? (envInt(env, 'MLFLOW_HTTP_REQUEST_TIMEOUT') ?? 120) * 1000;
    this.random = opts.random ?? Math.random;
  }

  /** One try at the server's `/health`, without retries. */
  async ping(timeoutMs = 5000): Promise<boolean> {
    try {
      const res = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(timeoutMs), headers: this.authHeader ? { Authorization: this.authHeader } : {} });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  /** JSON API under `/api/2.0/mlflow/`. */
  get<T>(endpoint: string, query?: RequestOptions['query']): Promise<T> {
    return this.json<T>('GET', `/api/2.0/mlflow/${endpoint}`, { query, idempotent: true });
  }
  post<T>(endpoint: string, body: unknown, opts: { idempotent?: boolean } = {}): Promise<T> {
    return this.json<T>('POST', `/api/2.0/mlflow/${endpoint}`, { body, idempotent: opts.idempotent ?? true });
  }

  async json<T>(method: string, path: string, opts: RequestOptions): Promise<T> {
    const res = await this.request(method, path, opts.query, opts.body === undefined ? undefined : JSON.stringify(opts.body), 'application/json', opts.idempotent ?? true);
    const text = await res.text();
    if (text.trim() === '') return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new MlflowError('BAD_RESPONSE', `${method} ${path}: server sent a body that is not JSON: ${text.slice(0, 200)}`, { status: res.status });
    }
  }

  /** Raw bytes (artifact proxy); PUT of a whole file is idempotent. */
  async putBytes(path: string, bytes: Uint8Array): Promise<void> {
    const res = await this.request('PUT', path, undefined, bytes, 'application/octet-stream', true);
    await res.arrayBuffer();
  }
  async getBytes(path: string, query?: RequestOptions['query']): Promise<Uint8Array> {
    const res = await this.request('GET', path, query, undefined, undefined, true);
    return new Uint8Array(await res.arrayBuffer());
  }

  private delayFor(attempt: number, retryAfter: string | null): number {
    const backoff = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** attempt);
    const jittered = this.random() * backoff;
    const ra = retryAfter !== null ? Number(retryAfter) * 1000 : NaN;
    return Number.isFinite(ra) ? Math.min(this.retry.maxDelayMs, Math.max(ra, jittered)) : jittered;
  }

  private async request(method: string, path: string, query: RequestOptions['query'], body: string | Uint8Array | undefined, contentType: string | undefined, idempotent: boolean): Promise<Response> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { 'User-Agent': 'egmf-tracking' };
    if (contentType) headers['Content-Type'] = contentType;
    if (this.authHeader) headers.Authorization = this.authHeader;
    const where = `${method} ${path}`;
    for (let attempt = 0; ; attempt++) {
      let err: MlflowError | undefined;
      let retryAfter: string | null = null;
      let res: Response | undefined;
      try {
        res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (e) {
        const code = networkCode(e) ?? (e instanceof Error ? e.name : 'unknown');
        const safe = SAFE_NETWORK_CODES.has(code);
        err = new MlflowError('NETWORK_ERROR', `${where}: cannot reach the tracking server at ${this.baseUrl} (${code})`, { ambiguous: !safe, cause: e });
        if (!idempotent && !safe) throw err;
      }
      if (res) {
        if (res.ok) return res;
        retryAfter = res.headers.get('retry-after');
        err = await this.errorFrom(res, where);
        if (!RETRY_STATUSES.has(res.status) || (!idempotent && !SURELY_UNPROCESSED.has(res.status))) throw err;
      }
      if (attempt >= this.retry.maxRetries && err) throw err;
      await new Promise((r) => setTimeout(r, this.delayFor(attempt, retryAfter)));
    }
  }

  private async errorFrom(res: Response, where: string): Promise<MlflowError> {
    const text = await res.text().catch(() => '');
    let code = res.status === 429 ? 'REQUEST_LIMIT_EXCEEDED' : res.status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST';
    let message = text.slice(0, 500) || res.statusText;
    try {
      const j = JSON.parse(text) as { error_code?: unknown; message?: unknown };
      if (typeof j.error_code === 'string') code = j.error_code;
      if (typeof j.message === 'string') message = j.message;
    } catch {
      // Not JSON (a proxy's HTML error page): keep the text.
    }
    // A 5xx other than 503 may come after the server applied part of the request.
    return new MlflowError(code, `${where} (HTTP ${res.status}): ${message}`, { status: res.status, ambiguous: res.status >= 500 && res.status !== 503 });
  }
}
