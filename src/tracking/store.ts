/**
 * The tracking store interface, shaped like MLflow's store layer: a small required core that
 * every backend implements, and helpers derived from it. There is no global "active run":
 * callers hold a {@link RunHandle} and pass it where logging happens.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { MlflowError } from './errors.ts';
import { userInfo } from 'node:os';

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export const RUN_STATUSES: readonly RunStatus[] = ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'];

export const PARENT_RUN_TAG = 'mlflow.parentRunId';
export const RUN_NAME_TAG = 'mlflow.runName';

export interface Experiment {
  experimentId: string;
  name: string;
  artifactLocation: string;
  lifecycleStage: 'active' | 'deleted';
  creationTime?: number;
  lastUpdateTime?: number;
}

export interface MetricPoint {
  key: string;
  value: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
  step: number;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface Dataset {
  name: string;
  /** MLflow allows at most 36 characters. */
  digest: string;
  sourceType: string;
  source: string;
  schema?: string;
  profile?: string;
}

export interface DatasetInput {
  dataset: Dataset;
  /** e.g. `mlflow.data.context: train`. */
  tags: Record<string, string>;
}

export interface RunInfo {
  runId: string;
  experimentId: string;
  runName: string;
  status: RunStatus;
  startTime: number;
  endTime: number | null;
  artifactUri: string;
  lifecycleStage: string;
  userId: string;
}

export interface Run {
  info: RunInfo;
  data: {
    /** Latest value per key (highest step, then timestamp), as MLflow reports it. */
    metrics: Record<string, number>;
    params: Record<string, string>;
    tags: Record<string, string>;
  };
  inputs: DatasetInput[];
}

export interface ArtifactEntry {
  /** Relative to the run's artifact root, `/`-separated. */
  path: string;
  isDir: boolean;
  fileSize?: number;
}

export interface CreateRunOptions {
  experimentId: string;
  runName?: string;
  startTime?: number;
  tags?: Record<string, string>;
  /** Sets the `mlflow.parentRunId` tag that MLflow's UI nests by. */
  parentRunId?: string;
}

export interface UpdateRunOptions {
  status?: RunStatus;
  endTime?: number;
  runName?: string;
}

export interface LogBatch {
  metrics?: MetricPoint[];
  params?: KeyValue[];
  tags?: KeyValue[];
}

export interface SearchRunsOptions {
  experimentIds: string[];
  /** MLflow's filter syntax, e.g. `tags.mlflow.parentRunId = 'abc' and attributes.status = 'FINISHED'`. */
  filter?: string;
  maxResults?: number;
  /** e.g. `['metrics.loss ASC', 'attributes.start_time DESC']`. */
  orderBy?: string[];
}

/** The required core every backend implements. */
export interface TrackingStoreCore {
  /** Printable description (credentials redacted). */
  readonly uri: string;
  getExperimentByName(name: string): Promise<Experiment | null>;
  createExperiment(name: string, tags?: Record<string, string>): Promise<string>;
  createRun(opts: CreateRunOptions): Promise<Run>;
  updateRun(runId: string, opts: UpdateRunOptions): Promise<void>;
  logBatch(runId: string, batch: LogBatch): Promise<void>;
  logInputs(runId: string, datasets: DatasetInput[]): Promise<void>;
  getRun(runId: string): Promise<Run>;
  getMetricHistory(runId: string, key: string): Promise<MetricPoint[]>;
  searchRuns(opts: SearchRunsOptions): Promise<Run[]>;
  /** Stores `localFile` as `<artifactPath>/<basename>` (MLflow's `log_artifact`). */
  logArtifact(runId: string, localFile: string, artifactPath?: string): Promise<void>;
  logArtifactBytes(runId: string, relPath: string, bytes: Uint8Array): Promise<void>;
  listArtifacts(runId: string, path?: string): Promise<ArtifactEntry[]>;
  downloadArtifact(runId: string, relPath: string): Promise<Uint8Array>;
}

export interface TrackingStore extends TrackingStoreCore {
  getOrCreateExperiment(name: string): Promise<string>;
  logMetric(runId: string, key: string, value: number, step?: number, timestamp?: number): Promise<void>;
  logParam(runId: string, key: string, value: string | number | boolean): Promise<void>;
  setTag(runId: string, key: string, value: string): Promise<void>;
  logParams(runId: string, params: Record<string, string | number | boolean | null>): Promise<void>;
  /** Makes pending writes durable where they can go; a no-op for stores that write through. */
  flush(): Promise<void>;
}

/** Derived helpers over the core; backends extend this. */
export abstract class BaseStore implements TrackingStore {
  abstract readonly uri: string;
  abstract getExperimentByName(name: string): Promise<Experiment | null>;
  abstract createExperiment(name: string, tags?: Record<string, string>): Promise<string>;
  abstract createRun(opts: CreateRunOptions): Promise<Run>;
  abstract updateRun(runId: string, opts: UpdateRunOptions): Promise<void>;
  abstract logBatch(runId: string, batch: LogBatch): Promise<void>;
  abstract logInputs(runId: string, datasets: DatasetInput[]): Promise<void>;
  abstract getRun(runId: string): Promise<Run>;
  abstract getMetricHistory(runId: string, key: string): Promise<MetricPoint[]>;
  abstract searchRuns(opts: SearchRunsOptions): Promise<Run[]>;
  abstract logArtifactBytes(runId: string, relPath: string, bytes: Uint8Array): Promise<void>;
  abstract listArtifacts(runId: string, path?: string): Promise<ArtifactEntry[]>;
  abstract downloadArtifact(runId: string, relPath: string): Promise<Uint8Array>;

  /** Several processes may race to create the same experiment: the loser re-reads. */
  async getOrCreateExperiment(name: string): Promise<string> {
    const found = await this.getExperimentByName(name);
    if (found) return found.experimentId;
    try {
      return await this.createExperiment(name);
    } catch (e) {
      const again = await this.getExperimentByName(name);
      if (again) return again.experimentId;
      throw e;
    }
  }

  /** `<artifactPath>/<basename>` from the file's bytes; stores with a cheaper copy override it. */
  async logArtifact(runId: string, localFile: string, artifactPath?: string): Promise<void> {
    let isFile = false;
    try {
      isFile = statSync(localFile).isFile();
    } catch {
      isFile = false;
    }
    if (!isFile) throw new MlflowError('INVALID_PARAMETER_VALUE', 'artifact to log is not a file', { file: localFile });
    await this.logArtifactBytes(runId, [artifactPath ?? '', basename(localFile)].filter(Boolean).join('/'), readFileSync(localFile));
  }

  logMetric(runId: string, key: string, value: number, step = 0, timestamp = Date.now()): Promise<void> {
    return this.logBatch(runId, { metrics: [{ key, value, step, timestamp }] });
  }

  logParam(runId: string, key: string, value: string | number | boolean): Promise<void> {
    return this.logBatch(runId, { params: [{ key, value: String(value) }] });
  }

  setTag(runId: string, key: string, value: string): Promise<void> {
    return this.logBatch(runId, { tags: [{ key, value }] });
  }

  logParams(runId: string, params: Record<string, string | number | boolean | null>): Promise<void> {
    const list = Object.entries(params).map(([key, value]) => ({ key, value: value === null ? 'None' : String(value) }));
    return list.length === 0 ? Promise.resolve() : this.logBatch(runId, { params: list });
  }

  async flush(): Promise<void> {}
}

/** `MLFLOW_EXPERIMENT_NAME` wins over the configured name, like MLflow's clients; then "Default". */
export function resolveExperimentName(configured?: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.MLFLOW_EXPERIMENT_NAME || configured || 'Default';
}

/** Standard MLflow system tags for a run started by this harness. */
export function defaultRunTags(): Record<string, string> {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): MLflow also falls back to "unknown".
  }
  return { 'mlflow.user': user, 'mlflow.source.name': basename(process.argv[1] ?? 'egmf'), 'mlflow.source.type': 'LOCAL' };
}

/**
 * A run passed explicitly to the code that logs to it. Metrics get a shared timestamp per call
 * so a step's values line up in MLflow's charts.
 */
export class RunHandle {
  constructor(
    readonly store: TrackingStore,
    readonly runId: string,
    readonly experimentId: string,
    readonly runName: string,
  ) {}

  logMetrics(values: Record<string, number>, step: number, timestamp = Date.now()): Promise<void> {
    const metrics = Object.entries(values).map(([key, value]) => ({ key, value, step, timestamp }));
    return metrics.length === 0 ? Promise.resolve() : this.store.logBatch(this.runId, { metrics });
  }
  logMetric(key: string, value: number, step = 0): Promise<void> {
    return this.store.logMetric(this.runId, key, value, step);
  }
  logParams(params: Record<string, string | number | boolean | null>): Promise<void> {
    return this.store.logParams(this.runId, params);
  }
  setTag(key: string, value: string): Promise<void> {
    return this.store.setTag(this.runId, key, value);
  }
  logInputs(datasets: DatasetInput[]): Promise<void> {
    return this.store.logInputs(this.runId, datasets);
  }
  logArtifact(localFile: string, artifactPath?: string): Promise<void> {
    return this.store.logArtifact(this.runId, localFile, artifactPath);
  }
  logArtifactBytes(relPath: string, bytes: Uint8Array): Promise<void> {
    return this.store.logArtifactBytes(this.runId, relPath, bytes);
  }
  /** Ends the run and pushes anything spooled while the server was away. */
  async end(status: RunStatus = 'FINISHED'): Promise<void> {
    await this.store.updateRun(this.runId, { status, endTime: Date.now() });
    await this.store.flush();
  }
}

/** Creates a run with MLflow's standard tags and returns its handle. */
export async function startRun(store: TrackingStore, opts: { experimentName?: string; experimentId?: string; runName?: string; parentRunId?: string; tags?: Record<string, string> }): Promise<RunHandle> {
  const experimentId = opts.experimentId ?? (await store.getOrCreateExperiment(resolveExperimentName(opts.experimentName)));
  const run = await store.createRun({
    experimentId,
    runName: opts.runName,
    startTime: Date.now(),
    tags: { ...defaultRunTags(), ...opts.tags },
    parentRunId: opts.parentRunId,
  });
  return new RunHandle(store, run.info.runId, experimentId, run.info.runName);
}
