/**
 * The MLflow REST store: a tracking server over HTTP, with artifacts through the server's
 * artifact proxy (`mlflow-artifacts:/`). Batches are split under MLflow's limits, and requests
 * that could double-apply (run creation, metrics) are recovered by checking what arrived.
 */
import { randomUUID } from 'node:crypto';
import { MlflowError, isMlflowError } from './errors.ts';
import { MlflowHttpClient, type ClientOptions } from './mlflow-client.ts';
import { redactUri } from './secrets.ts';
import {
  BaseStore, PARENT_RUN_TAG, RUN_STATUSES,
  type ArtifactEntry, type CreateRunOptions, type DatasetInput, type Experiment, type KeyValue, type LogBatch,
  type MetricPoint, type Run, type RunStatus, type SearchRunsOptions, type UpdateRunOptions,
} from './store.ts';
import { LIMITS, validateBatch } from './validation.ts';

/** Tag with a client-chosen id on every run we create: finds the run again after an unclear failure. */
export const CLIENT_RUN_ID_TAG = 'egmf.clientRunId';

interface WireRun {
  info: { run_id: string; experiment_id: string; run_name?: string; status?: string; start_time?: string | number; end_time?: string | number; artifact_uri?: string; lifecycle_stage?: string; user_id?: string };
  data?: { metrics?: { key: string; value: number | string }[]; params?: KeyValue[]; tags?: KeyValue[] };
  inputs?: { dataset_inputs?: { tags?: KeyValue[]; dataset: { name: string; digest: string; source_type: string; source: string; schema?: string; profile?: string } }[] };
}
type WireMetric = { key: string; value: number | string; timestamp: string | number; step?: string | number };

/** Protobuf JSON spells non-finite doubles as strings. */
function wireValue(v: number): number | string {
  return Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v;
}
function fromWireValue(v: number | string): number {
  return typeof v === 'number' ? v : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : Number(v);
}
const kvs = (r: Record<string, string>): KeyValue[] => Object.entries(r).map(([key, value]) => ({ key, value }));
const record = (l: KeyValue[] | undefined): Record<string, string> => Object.fromEntries((l ?? []).map((t) => [t.key, t.value]));
const pointKey = (m: MetricPoint) => `${m.key}\u0000${m.step}\u0000${m.timestamp}\u0000${Object.is(m.value, NaN) ? 'nan' : m.value}`;

function toRun(w: WireRun): Run {
  const i = w.info;
  const status = (RUN_STATUSES as readonly string[]).includes(i.status ?? '') ? (i.status as RunStatus) : 'RUNNING';
  return {
    info: {
      runId: i.run_id, experimentId: i.experiment_id, runName: i.run_name ?? '', status, startTime: Number(i.start_time ?? 0),
      endTime: i.end_time === undefined ? null : Number(i.end_time), artifactUri: i.artifact_uri ?? '', lifecycleStage: i.lifecycle_stage ?? 'active', userId: i.user_id ?? '',
    },
    data: {
      metrics: Object.fromEntries((w.data?.metrics ?? []).map((m) => [m.key, fromWireValue(m.value)])),
      params: record(w.data?.params),
      tags: record(w.data?.tags),
    },
    inputs: (w.inputs?.dataset_inputs ?? []).map((d) => ({
      dataset: {
        name: d.dataset.name, digest: d.dataset.digest, sourceType: d.dataset.source_type, source: d.dataset.source,
        ...(d.dataset.schema !== undefined ? { schema: d.dataset.schema } : {}), ...(d.dataset.profile !== undefined ? { profile: d.dataset.profile } : {}),
      },
      tags: record(d.tags),
    })),
  };
}

interface Chunk { metrics: MetricPoint[]; params: KeyValue[]; tags: KeyValue[]; bytes: number }

/** Splits a batch under MLflow's per-request limits, params first as MLflow applies them. */
export function splitBatch(b: Required<LogBatch>, maxBytes = LIMITS.batchBytes * 0.9): Chunk[] {
  const chunks: Chunk[] = [];
  let cur: Chunk = { metrics: [], params: [], tags: [], bytes: 100 };
  const push = (kind: 'metrics' | 'params' | 'tags', item: MetricPoint | KeyValue) => {
    const size = JSON.stringify(item).length + 1;
    const cap = kind === 'metrics' ? LIMITS.metricsPerBatch : kind === 'params' ? LIMITS.paramsPerBatch : LIMITS.tagsPerBatch;
    const n = cur.metrics.length + cur.params.length + cur.tags.length;
    if (n > 0 && (cur[kind].length >= cap || n >= LIMITS.entitiesPerBatch || cur.bytes + size > maxBytes)) {
      chunks.push(cur);
      cur = { metrics: [], params: [], tags: [], bytes: 100 };
    }
    (cur[kind] as (MetricPoint | KeyValue)[]).push(item);
    cur.bytes += size;
  };
  for (const p of b.params) push('params', p);
  for (const t of b.tags) push('tags', t);
  for (const m of b.metrics) push('metrics', m);
  if (cur.metrics.length + cur.params.length + cur.tags.length > 0) chunks.push(cur);
  return chunks;
}

export class RestStore extends BaseStore {
  readonly client: MlflowHttpClient;
  readonly uri: string;
  private readonly artifactUris = new Map<string, string>();

  constructor(uri: string, opts: ClientOptions = {}) {
    super();
    this.client = new MlflowHttpClient(uri, opts);
    this.uri = redactUri(this.client.baseUrl);
  }

  async getExperimentByName(name: string): Promise<Experiment | null> {
    try {
      const r = await this.client.get<{ experiment: { experiment_id: string; name: string; artifact_location: string; lifecycle_stage: string; creation_time?: number; last_update_time?: number } }>('experiments/get-by-name', { experiment_name: name });
      const e = r.experiment;
      return {
        experimentId: e.experiment_id, name: e.name, artifactLocation: e.artifact_location, lifecycleStage: e.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
        creationTime: e.creation_time === undefined ? undefined : Number(e.creation_time), lastUpdateTime: e.last_update_time === undefined ? undefined : Number(e.last_update_time),
      };
    } catch (e) {
      if (isMlflowError(e, 'RESOURCE_DOES_NOT_EXIST')) return null;
      throw e;
    }
  }

  async createExperiment(name: string, tags: Record<string, string> = {}): Promise<string> {
    const r = await this.client.post<{ experiment_id: string }>('experiments/create', { name, tags: kvs(tags) });
    return r.experiment_id;
  }

  async createRun(opts: CreateRunOptions): Promise<Run> {
    const clientId = opts.tags?.[CLIENT_RUN_ID_TAG] ?? randomUUID().replace(/-/g, '');
    const tags: Record<string, string> = { ...opts.tags, [CLIENT_RUN_ID_TAG]: clientId };
    if (opts.parentRunId !== undefined) tags[PARENT_RUN_TAG] = opts.parentRunId;
    validateBatch({ metrics: [], params: [], tags: kvs(tags) });
    const body = { experiment_id: opts.experimentId, run_name: opts.runName, start_time: opts.startTime ?? Date.now(), user_id: tags['mlflow.user'], tags: kvs(tags) };
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.client.post<{ run: WireRun }>('runs/create', body, { idempotent: false });
        return this.remember(toRun(r.run));
      } catch (e) {
        if (!isMlflowError(e) || !e.ambiguous || attempt >= this.client.retry.maxRetries) throw e;
        await this.backoff(attempt);
        const found = await this.findByClientId(opts.experimentId, clientId).catch(() => null);
        if (found) return this.remember(found);
      }
    }
  }

  /** The run created with this client id, if the server has it (after an unclear failure). */
  async findByClientId(experimentId: string, clientId: string): Promise<Run | null> {
    const runs = await this.searchRuns({ experimentIds: [experimentId], filter: `tags.\`${CLIENT_RUN_ID_TAG}\` = '${clientId}'`, maxResults: 1 });
    return runs[0] ? this.remember(runs[0]) : null;
  }

  private remember(run: Run): Run {
    this.artifactUris.set(run.info.runId, run.info.artifactUri);
    return run;
  }

  private backoff(attempt: number): Promise<void> {
    const { baseDelayMs, maxDelayMs } = this.client.retry;
    return new Promise((r) => setTimeout(r, Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt)));
  }

  async updateRun(runId: string, opts: UpdateRunOptions): Promise<void> {
    await this.client.post('runs/update', { run_id: runId, status: opts.status, end_time: opts.endTime, run_name: opts.runName });
  }

  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    const full = { metrics: batch.metrics ?? [], params: batch.params ?? [], tags: batch.tags ?? [] };
    validateBatch(full);
    for (const chunk of splitBatch(full)) {
      try {
        await this.sendChunk(runId, chunk);
      } catch (e) {
        if (!isMlflowError(e) || !e.ambiguous) throw e;
        await this.resendMissing(runId, chunk, e);
      }
    }
  }

  private sendChunk(runId: string, c: { metrics: MetricPoint[]; params: KeyValue[]; tags: KeyValue[] }): Promise<unknown> {
    return this.client.post('runs/log-batch', {
      run_id: runId,
      metrics: c.metrics.map((m) => ({ key: m.key, value: wireValue(m.value), timestamp: m.timestamp, step: m.step })),
      params: c.params,
      tags: c.tags,
    }, { idempotent: c.metrics.length === 0 });
  }

  /**
   * Sends only the metric points the server does not have yet. Params (immutable, same value is
   * accepted) and tags (overwrite) are safe to resend. Identical points (same key, step,
   * timestamp and value) count as one.
   */
  async logBatchExactlyOnce(runId: string, batch: LogBatch): Promise<void> {
    const full = { metrics: batch.metrics ?? [], params: batch.params ?? [], tags: batch.tags ?? [] };
    validateBatch(full);
    const missing = await this.missingMetrics(runId, full.metrics);
    await this.logBatch(runId, { ...full, metrics: missing });
  }

  async missingMetrics(runId: string, metrics: MetricPoint[]): Promise<MetricPoint[]> {
    const have = new Set<string>();
    for (const key of new Set(metrics.map((m) => m.key))) {
      for (const p of await this.getMetricHistory(runId, key)) have.add(pointKey(p));
    }
    const seen = new Set<string>();
    return metrics.filter((m) => {
      const k = pointKey(m);
      if (have.has(k) || seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }

  private async resendMissing(runId: string, chunk: Chunk, first: MlflowError): Promise<void> {
    let last = first;
    for (let attempt = 0; attempt < Math.max(1, this.client.retry.maxRetries); attempt++) {
      await this.backoff(attempt);
      try {
        const metrics = await this.missingMetrics(runId, chunk.metrics);
        await this.sendChunk(runId, { ...chunk, metrics });
        return;
      } catch (e) {
        if (!isMlflowError(e) || !(e.ambiguous || e.transient)) throw e;
        last = e;
      }
    }
    throw last;
  }

  /**
   * Records dataset inputs. MLflow's SQL store looks a dataset up and inserts it when missing in
   * one transaction, so runs logging the same new dataset at once (sweep trials starting together)
   * can lose the race on its unique key: the server rolls the whole request back and answers 400.
   * By then the winner has stored the dataset, so the request is sent again.
   */
  async logInputs(runId: string, datasets: DatasetInput[]): Promise<void> {
    const body = {
      run_id: runId,
      datasets: datasets.map((d) => ({
        tags: kvs(d.tags),
        dataset: { name: d.dataset.name, digest: d.dataset.digest, source_type: d.dataset.sourceType, source: d.dataset.source, schema: d.dataset.schema, profile: d.dataset.profile },
      })),
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.post('runs/log-inputs', body);
        return;
      } catch (e) {
        if (!isUniqueKeyRace(e) || attempt >= Math.max(3, this.client.retry.maxRetries)) throw e;
        await this.backoff(attempt);
      }
    }
  }

  async getRun(runId: string): Promise<Run> {
    const r = await this.client.get<{ run: WireRun }>('runs/get', { run_id: runId });
    return this.remember(toRun(r.run));
  }

  async getMetricHistory(runId: string, key: string): Promise<MetricPoint[]> {
    const out: MetricPoint[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.get<{ metrics?: WireMetric[]; next_page_token?: string }>('metrics/get-history', { run_id: runId, metric_key: key, max_results: 25000, page_token: token });
      for (const m of r.metrics ?? []) out.push({ key: m.key, value: fromWireValue(m.value), timestamp: Number(m.timestamp), step: Number(m.step ?? 0) });
      token = r.next_page_token || undefined;
    } while (token);
    return out;
  }

  async searchRuns(opts: SearchRunsOptions): Promise<Run[]> {
    const want = opts.maxResults ?? 1000;
    const out: Run[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.post<{ runs?: WireRun[]; next_page_token?: string }>('runs/search', {
        experiment_ids: opts.experimentIds, filter: opts.filter ?? '', max_results: Math.min(1000, want - out.length), order_by: opts.orderBy ?? [], page_token: token,
      });
      for (const w of r.runs ?? []) out.push(this.remember(toRun(w)));
      token = r.next_page_token || undefined;
    } while (token && out.length < want);
    return out;
  }

  /** `mlflow-artifacts:/1/<run>/artifacts` → the proxy path `1/<run>/artifacts`. */
  private async proxyBase(runId: string): Promise<string> {
    const uri = this.artifactUris.get(runId) ?? (await this.getRun(runId)).info.artifactUri;
    const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/(.*)$/.exec(uri);
    if (!m) throw new MlflowError('INVALID_PARAMETER_VALUE', `run ${runId} stores artifacts at '${redactUri(uri)}', not through the server's artifact proxy (start the server with artifact serving)`);
    return m[1]!.replace(/\/+$/, '');
  }

  private async artifactPath(runId: string, rel: string): Promise<string> {
    const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
    if (rel.startsWith('/') || parts.includes('..') || parts.length === 0) throw new MlflowError('INVALID_PARAMETER_VALUE', `artifact path must be relative and stay inside the run's artifacts`, { key: rel });
    const base = await this.proxyBase(runId);
    return `/api/2.0/mlflow-artifacts/artifacts/${[...base.split('/'), ...parts].map(encodeURIComponent).join('/')}`;
  }

  async logArtifactBytes(runId: string, relPath: string, bytes: Uint8Array): Promise<void> {
    await this.client.putBytes(await this.artifactPath(runId, relPath), bytes);
  }

  async listArtifacts(runId: string, path?: string): Promise<ArtifactEntry[]> {
    const r = await this.client.get<{ files?: { path: string; is_dir: boolean; file_size?: string | number }[] }>('artifacts/list', { run_id: runId, path: path || undefined });
    return (r.files ?? []).map((f) => (f.is_dir ? { path: f.path, isDir: true } : { path: f.path, isDir: false, fileSize: Number(f.file_size ?? 0) }));
  }

  async downloadArtifact(runId: string, relPath: string): Promise<Uint8Array> {
    return this.client.getBytes(await this.artifactPath(runId, relPath));
  }
}

/** A server's 400 for a unique key a concurrent request inserted first (SQLite, PostgreSQL, MySQL wording). */
function isUniqueKeyRace(e: unknown): boolean {
  return isMlflowError(e) && e.status === 400 && /UNIQUE constraint failed|IntegrityError|duplicate key value|Duplicate entry/i.test(e.message);
}
