/**
 * A store for runs against a tracking server that never throws a server outage into training:
 * when the server is unreachable or fails mid-run, writes go to the on-disk {@link Spool} and are
 * replayed by `flush()` (called at run end, and at most every `reconnectIntervalMs` while
 * spooling) or by `egmf runs sync`. Bad input (a changed param, an invalid key) still throws.
 */
import { MlflowError, isMlflowError } from './errors.ts';
import { CLIENT_RUN_ID_TAG, RestStore } from './rest-store.ts';
import { redact } from './secrets.ts';
import { Spool, encodeMetrics, isProvisional, newProvisionalId, type SyncReport } from './spool.ts';
import {
  BaseStore, PARENT_RUN_TAG, RUN_NAME_TAG,
  type ArtifactEntry, type CreateRunOptions, type DatasetInput, type Experiment, type LogBatch, type MetricPoint,
  type Run, type SearchRunsOptions, type UpdateRunOptions,
} from './store.ts';
import { validateBatch } from './validation.ts';

export interface ResilientOptions {
  /** Spool folder; default `.egmf/spool/<hash of the URI>` (or under EGMF_SPOOL_DIR). */
  spoolDir?: string;
  /** While spooling, how often a write may try to replay and go back online. */
  reconnectIntervalMs?: number;
  /** Where the one-line "server unreachable, spooling" notices go. */
  warn?: (message: string) => void;
}

const OFFLINE_EXPERIMENT = 'offline-experiment:';

export class ResilientStore extends BaseStore {
  readonly uri: string;
  readonly spool: Spool;
  /** Run keys (provisional or server ids) whose writes currently go to the spool. */
  private readonly spooling = new Set<string>();
  private readonly reconnectIntervalMs: number;
  private readonly warn: (m: string) => void;
  private lastReplay = 0;
  lastSync: SyncReport | undefined;

  constructor(readonly inner: RestStore, opts: ResilientOptions = {}) {
    super();
    this.uri = inner.uri;
    this.spool = new Spool(inner.client.baseUrl, opts.spoolDir);
    this.reconnectIntervalMs = opts.reconnectIntervalMs ?? 30_000;
    this.warn = opts.warn ?? ((m) => process.stderr.write(`warning: ${m}\n`));
  }

  private isOutage(e: unknown): e is MlflowError {
    return isMlflowError(e) && (e.transient || e.ambiguous);
  }

  private goOffline(runKey: string, e: MlflowError): void {
    if (!this.spooling.has(runKey)) this.warn(redact(`tracking server unreachable (${e.message}); spooling run ${runKey} to ${this.spool.dir}`));
    this.spooling.add(runKey);
    this.lastReplay = Date.now();
  }

  /** The server id for a run key, once known. */
  private resolve(runId: string): string | undefined {
    return isProvisional(runId) ? this.spool.mapping().get(runId) : runId;
  }

  async getExperimentByName(name: string): Promise<Experiment | null> {
    return this.inner.getExperimentByName(name);
  }
  async createExperiment(name: string, tags?: Record<string, string>): Promise<string> {
    return this.inner.createExperiment(name, tags);
  }

  /** With the server away, a placeholder id that the spooled run creation resolves by name. */
  override async getOrCreateExperiment(name: string): Promise<string> {
    try {
      return await this.inner.getOrCreateExperiment(name);
    } catch (e) {
      if (!this.isOutage(e)) throw e;
      return `${OFFLINE_EXPERIMENT}${name}`;
    }
  }

  async createRun(opts: CreateRunOptions): Promise<Run> {
    const provisionalId = newProvisionalId();
    const parent = opts.parentRunId === undefined ? undefined : (this.resolve(opts.parentRunId) ?? opts.parentRunId);
    const tags: Record<string, string> = { ...opts.tags, [CLIENT_RUN_ID_TAG]: provisionalId };
    validateBatch({ metrics: [], params: [], tags: Object.entries(tags).map(([key, value]) => ({ key, value })) });
    const offlineExp = opts.experimentId.startsWith(OFFLINE_EXPERIMENT);
    let attempted = false;
    let error: MlflowError | undefined;
    if (!offlineExp && !(parent && isProvisional(parent))) {
      try {
        return await this.inner.createRun({ ...opts, tags, parentRunId: parent });
      } catch (e) {
        if (!this.isOutage(e)) throw e;
        attempted = true;
        error = e;
      }
    }
    const startTime = opts.startTime ?? Date.now();
    const runName = opts.runName ?? opts.tags?.[RUN_NAME_TAG] ?? `run-${provisionalId.slice(-6)}`;
    this.spool.append(provisionalId, {
      kind: 'createRun', provisionalId, attempted, startTime, tags, runName, parentRunId: parent,
      ...(offlineExp ? { experimentName: opts.experimentId.slice(OFFLINE_EXPERIMENT.length) } : { experimentId: opts.experimentId }),
    });
    this.goOffline(provisionalId, error ?? new MlflowError('NETWORK_ERROR', 'server unreachable earlier in this process'));
    return {
      info: { runId: provisionalId, experimentId: opts.experimentId, runName, status: 'RUNNING', startTime, endTime: null, artifactUri: '', lifecycleStage: 'active', userId: tags['mlflow.user'] ?? '' },
      data: { metrics: {}, params: {}, tags: { ...tags, [RUN_NAME_TAG]: runName, ...(parent ? { [PARENT_RUN_TAG]: parent } : {}) } },
      inputs: [],
    };
  }

  /**
   * Runs a write online, or spools it: spooled runs stay spooled (their records must replay in
   * order) until a replay catches up with them.
   */
  private async write(runId: string, online: (id: string) => Promise<void>, spooled: (key: string, attempted: boolean) => void): Promise<void> {
    const key = this.spoolKey(runId);
    if (this.spooling.has(key) && Date.now() - this.lastReplay >= this.reconnectIntervalMs) await this.flush();
    const real = this.resolve(runId);
    if (!this.spooling.has(key) && real !== undefined) {
      try {
        return await online(real);
      } catch (e) {
        if (!this.isOutage(e)) throw e;
        spooled(key, true);
        this.goOffline(key, e);
        return;
      }
    }
    spooled(key, false);
  }

  /** A run that went offline keeps its spool key (its provisional id) after being created. */
  private spoolKey(runId: string): string {
    if (this.spooling.has(runId) || ![...this.spooling].some(isProvisional)) return runId;
    for (const [prov, real] of this.spool.mapping()) if (real === runId && this.spooling.has(prov)) return prov;
    return runId;
  }

  async updateRun(runId: string, opts: UpdateRunOptions): Promise<void> {
    await this.write(runId, (id) => this.inner.updateRun(id, opts), (key, attempted) => this.spool.append(key, { kind: 'updateRun', attempted, ...opts }));
  }

  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    const full = { metrics: batch.metrics ?? [], params: batch.params ?? [], tags: batch.tags ?? [] };
    validateBatch(full);
    await this.write(runId, (id) => this.inner.logBatch(id, full), (key, attempted) => this.spool.append(key, { kind: 'logBatch', attempted, metrics: encodeMetrics(full.metrics), params: full.params, tags: full.tags }));
  }

  async logInputs(runId: string, datasets: DatasetInput[]): Promise<void> {
    await this.write(runId, (id) => this.inner.logInputs(id, datasets), (key, attempted) => this.spool.append(key, { kind: 'logInputs', attempted, datasets }));
  }

  async logArtifactBytes(runId: string, relPath: string, bytes: Uint8Array): Promise<void> {
    await this.write(runId, (id) => this.inner.logArtifactBytes(id, relPath, bytes), (key, attempted) => this.spool.append(key, { kind: 'artifact', attempted, relPath }, bytes));
  }

  private readable(runId: string): string {
    const real = this.resolve(runId);
    if (real === undefined) throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `run ${runId} exists only in the offline spool ${this.spool.dir}; run 'egmf runs sync' once the server is reachable`);
    return real;
  }

  getRun(runId: string): Promise<Run> {
    return this.inner.getRun(this.readable(runId));
  }
  getMetricHistory(runId: string, key: string): Promise<MetricPoint[]> {
    return this.inner.getMetricHistory(this.readable(runId), key);
  }
  searchRuns(opts: SearchRunsOptions): Promise<Run[]> {
    return this.inner.searchRuns(opts);
  }
  listArtifacts(runId: string, path?: string): Promise<ArtifactEntry[]> {
    return this.inner.listArtifacts(this.readable(runId), path);
  }
  downloadArtifact(runId: string, relPath: string): Promise<Uint8Array> {
    return this.inner.downloadArtifact(this.readable(runId), relPath);
  }

  /** Replays the spool if the server answers; never throws for an outage. */
  override async flush(): Promise<void> {
    this.lastReplay = Date.now();
    if (this.spool.runKeys().length === 0) {
      this.spooling.clear();
      return;
    }
    // One quick probe: while the server is down, don't spend the whole retry budget per attempt.
    if (!(await this.inner.client.ping())) return;
    let report: SyncReport;
    try {
      report = await this.spool.replay(this.inner);
    } catch (e) {
      // A damaged spool must not end a training run; `egmf runs sync` reports it in full.
      this.warn(`tracking sync failed, records stay in ${this.spool.dir}: ${redact(e instanceof Error ? e.message : String(e))}`);
      return;
    }
    this.lastSync = report;
    for (const key of [...this.spooling]) if (this.spool.pendingCount(key) === 0) this.spooling.delete(key);
    if (report.failed.length > 0) this.warn(`tracking sync: ${report.failed.length} spooled record(s) rejected by the server: ${report.failed.map((f) => redact(f.error)).join('; ')}`);
  }

  /** The server's id of a run made offline (a provisional id), once its creation reached the server. */
  serverRunId(runId: string): string | undefined {
    return this.resolve(runId);
  }

  /** Whether a run's writes are currently going to the spool. */
  isSpooling(runId: string): boolean {
    return this.spooling.has(this.spoolKey(runId));
  }
}
