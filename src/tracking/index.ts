/** The tracking layer's public surface: one store interface, chosen by URI like MLflow's clients. */
import { EgmfError } from '../errors.ts';
import { FileStore } from './file-store.ts';
import type { ClientOptions } from './mlflow-client.ts';
import { ResilientStore, type ResilientOptions } from './resilient-store.ts';
import { RestStore } from './rest-store.ts';
import { redactUri } from './secrets.ts';
import type { TrackingStore } from './store.ts';

export * from './store.ts';
export { MlflowError, isMlflowError } from './errors.ts';
export { FileStore } from './file-store.ts';
export { RestStore, splitBatch } from './rest-store.ts';
export { MlflowHttpClient } from './mlflow-client.ts';
export { ResilientStore } from './resilient-store.ts';
export { Spool, spoolDirFor } from './spool.ts';
export { redact, redactUri, scrubSecrets } from './secrets.ts';
export { SystemMetricsSampler } from './system-metrics.ts';

export interface CreateStoreOptions extends ClientOptions, ResilientOptions {
  /** For http(s) URIs: spool writes when the server is away (default true). */
  spoolWhenOffline?: boolean;
}

/** `MLFLOW_TRACKING_URI`, else `./mlruns` (MLflow's historical default). */
export function defaultTrackingUri(env: NodeJS.ProcessEnv = process.env): string {
  return env.MLFLOW_TRACKING_URI || './mlruns';
}

/** `file:`/plain path → file store; `http(s)://` → REST store (wrapped to spool through outages). */
export function createStore(uri: string = defaultTrackingUri(), opts: CreateStoreOptions = {}): TrackingStore {
  if (/^https?:\/\//i.test(uri)) {
    const rest = new RestStore(uri, opts);
    return opts.spoolWhenOffline === false ? rest : new ResilientStore(rest, opts);
  }
  if (/^[a-z][a-z0-9+.-]+:/i.test(uri) && !uri.startsWith('file:')) {
    throw new EgmfError(`unsupported tracking URI scheme in '${redactUri(uri)}': use a path, file: or http(s)://`, { key: 'MLFLOW_TRACKING_URI' });
  }
  return new FileStore(uri);
}
