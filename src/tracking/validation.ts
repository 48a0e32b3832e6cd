import { MlflowError } from './errors.ts';
import type { MetricPoint } from './store.ts';

/** MLflow's limits (mlflow/utils/validation.py). */
export const LIMITS = {
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
  experimentNameLength: 500,
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  entitiesPerBatch: 1000,
  batchBytes: 1_000_000,
} as const;

const KEY_CHARS = /^[/\w.\- :]*$/;

function normPosix(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..' && parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
    else parts.push(seg);
  }
  const body = parts.join('/');
  return p.startsWith('/') ? `/${body}` : body || '.';
}

/** MLflow's key check: allowed characters, a normalised relative path, at most 250 characters. */
export function validateKey(kind: 'metric' | 'param' | 'tag', key: string): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new MlflowError('INVALID_PARAMETER_VALUE', `${kind} key must be a non-empty string`, { key: String(key) });
  }
  if (!KEY_CHARS.test(key)) {
    throw new MlflowError('INVALID_PARAMETER_VALUE', `invalid ${kind} key: names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)`, { key });
  }
  const norm = normPosix(key);
  if (norm !== key || norm === '.' || norm.startsWith('..') || norm.startsWith('/')) {
    throw new MlflowError('INVALID_PARAMETER_VALUE', `invalid ${kind} key: it would resolve to the path '${norm}'`, { key });
  }
  if (key.length > LIMITS.keyLength) {
    throw new MlflowError('INVALID_PARAMETER_VALUE', `${kind} key is longer than ${LIMITS.keyLength} characters`, { key });
  }
}

export function validateParam(key: string, value: string): void {
  validateKey('param', key);
  if (value.length > LIMITS.paramValueLength) {
    throw new MlflowError('INVALID_PARAMETER_VALUE', `param value is longer than ${LIMITS.paramValueLength} characters`, { key });
  }
}

export function validateTag(key: string, value: string): void {
  validateKey('tag', key);
  if (value.length > LIMITS.tagValueLength) {
    throw new MlflowError('INVALID_PARAMETER_VALUE', `tag value is longer than ${LIMITS.tagValueLength} characters`, { key });
  }
}

export function validateMetric(m: MetricPoint): void {
  validateKey('metric', m.key);
  if (typeof m.value !== 'number') throw new MlflowError('INVALID_PARAMETER_VALUE', `metric value must be a number, got ${typeof m.value}`, { key: m.key });
  if (!Number.isInteger(m.timestamp) || m.timestamp < 0) throw new MlflowError('INVALID_PARAMETER_VALUE', `metric timestamp must be a nonnegative integer (ms), got ${m.timestamp}`, { key: m.key });
  if (!Number.isInteger(m.step)) throw new MlflowError('INVALID_PARAMETER_VALUE', `metric step must be an integer, got ${m.step}`, { key: m.key });
}

export function validateExperimentName(name: string): void {
  if (typeof name !== 'string' || name.trim() === '') throw new MlflowError('INVALID_PARAMETER_VALUE', 'experiment name must be a non-empty string');
  if (name.length > LIMITS.experimentNameLength) throw new MlflowError('INVALID_PARAMETER_VALUE', `experiment name is longer than ${LIMITS.experimentNameLength} characters`, { key: name.slice(0, 40) });
}

const RUN_ID = /^[a-zA-Z0-9][\w-]{0,255}$/;
export function validateRunId(runId: string): void {
  if (!RUN_ID.test(runId)) throw new MlflowError('INVALID_PARAMETER_VALUE', `invalid run id '${runId}'`);
}

/** Checks a whole batch up front so nothing of a bad batch is written; also rejects a param key given twice. */
export function validateBatch(b: { metrics: MetricPoint[]; params: { key: string; value: string }[]; tags: { key: string; value: string }[] }): void {
  for (const m of b.metrics) validateMetric(m);
  const seen = new Map<string, string>();
  for (const p of b.params) {
    validateParam(p.key, p.value);
    const prev = seen.get(p.key);
    if (prev !== undefined && prev !== p.value) throw new MlflowError('INVALID_PARAMETER_VALUE', `param given twice in one batch with different values`, { key: p.key });
    seen.set(p.key, p.value);
  }
  for (const t of b.tags) validateTag(t.key, t.value);
}
