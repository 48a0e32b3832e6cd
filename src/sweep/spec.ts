/**
 * Sweep specs: YAML in, a typed and validated `SweepSpec` out. Every error names the
 * file and the dotted key path (`parameters.model.lora.rank.max`), and nothing is built
 * from a spec that failed validation.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { EgmfError } from '../errors.ts';
import { NUMERIC_DISTRIBUTIONS, SearchSpace, type ConditionSpec, type DistributionSpec, type Goal, type JsonValue, type NumericName, type ParamDef } from './space.ts';

export type SweepMethod = 'grid' | 'random' | 'tpe';

export type EarlyTerminate =
  | { type: 'asha'; min_resource: number; eta: number; max_resource?: number }
  | { type: 'median'; warmup_steps: number; min_trials: number };

export interface SamplerOptions {
  /** Seed of every random choice the sampler makes (default 0). */
  seed: number;
  /** TPE: trials sampled at random before the model is used (Optuna: 10). */
  n_startup_trials: number;
  /** TPE: candidates drawn from l(x) per parameter (Optuna: 24). */
  n_ei_candidates: number;
  /** TPE: good fraction in γ(n) = min(ceil(gamma·n), gamma_max) (Optuna: 0.1, 25). */
  gamma: number;
  gamma_max: number;
  /** TPE: weight of the prior kernel in both Parzen estimators (Optuna: 1). */
  prior_weight: number;
  /** TPE: count running trials as bad observations (constant liar). */
  constant_liar: boolean;
}

export interface SweepSpec {
  name: string;
  description?: string;
  method: SweepMethod;
  metric: { name: string; goal: Goal };
  /** In declaration order. */
  parameters: ParamDef[];
  early_terminate?: EarlyTerminate;
  /** Most runs (seed repeats included) the sweep may start. */
  run_cap?: number;
  /** Trials run at the same time. */
  parallel: number;
  /** Each configuration runs once per seed; its value is the mean over completed seeds. */
  seeds: number[];
  /** Experiment YAML the parameters override, resolved against the sweep file's folder. */
  base_config?: string;
  /** Fixed overrides applied to every trial (dotted config path → value). */
  set: Record<string, JsonValue>;
  sampler: SamplerOptions;
}

export interface SpecOptions {
  /** File the YAML came from (for messages and resolving `base_config`). */
  file?: string;
  /** Returns why `path` is not a settable config key, or undefined when it is. */
  validateParamPath?: (path: string) => string | undefined;
}

const TOP_KEYS = ['name', 'description', 'method', 'metric', 'parameters', 'early_terminate', 'run_cap', 'parallel', 'seeds', 'base_config', 'set', 'sampler'];
const TPE_ONLY = ['n_startup_trials', 'n_ei_candidates', 'gamma', 'gamma_max', 'prior_weight', 'constant_liar'];
const SAMPLER_DEFAULTS: SamplerOptions = { seed: 0, n_startup_trials: 10, n_ei_candidates: 24, gamma: 0.1, gamma_max: 25, prior_weight: 1, constant_liar: true };
const DIST_ALIASES: Record<string, NumericName | 'categorical'> = {
  ...Object.fromEntries(NUMERIC_DISTRIBUTIONS.map((d) => [d, d])),
  log_uniform_values: 'log_uniform',
  q_log_uniform_values: 'q_log_uniform',
  categorical: 'categorical',
};

type Obj = Record<string, unknown>;

class Checker {
  constructor(readonly file: string | undefined) {}
  fail(key: string, msg: string): never {
    throw new EgmfError(msg, { file: this.file, key });
  }
  obj(v: unknown, key: string, allowed: readonly string[]): Obj {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(key, `must be a mapping, got ${describe(v)}`);
    const o = v as Obj;
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.fail(join(key, k), `unknown key (allowed: ${allowed.join(', ')})`);
    }
    return o;
  }
  num(v: unknown, key: string, opts: { int?: boolean; min?: number; gt?: number; max?: number } = {}): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, `must be a number, got ${describe(v)}`);
    const n = v as number;
    if (opts.int && !Number.isInteger(n)) this.fail(key, `must be an integer, got ${n}`);
    if (opts.min !== undefined && n < opts.min) this.fail(key, `must be >= ${opts.min}, got ${n}`);
    if (opts.gt !== undefined && n <= opts.gt) this.fail(key, `must be > ${opts.gt}, got ${n}`);
    if (opts.max !== undefined && n > opts.max) this.fail(key, `must be <= ${opts.max}, got ${n}`);
    return n;
  }
  str(v: unknown, key: string): string {
    if (typeof v !== 'string' || v.length === 0) this.fail(key, `must be a non-empty string, got ${describe(v)}`);
    return v as string;
  }
  oneOf<T extends string>(v: unknown, key: string, values: readonly T[]): T {
    if (typeof v !== 'string' || !values.includes(v as T)) this.fail(key, `must be one of ${values.join(', ')}; got ${describe(v)}`);
    return v as T;
  }
  json(v: unknown, key: string): JsonValue {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number') return this.num(v, key);
    if (Array.isArray(v)) return v.map((x, i) => this.json(x, `${key}[${i}]`));
    if (typeof v === 'object') return Object.fromEntries(Object.entries(v as Obj).map(([k, x]) => [k, this.json(x, join(key, k))]));
    return this.fail(key, `must be a plain YAML value, got ${describe(v)}`);
  }
}

const join = (a: string, b: string): string => (a ? `${a}.${b}` : b);
function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`;
}

/** Parses and validates sweep YAML text. */
export function parseSweepSpec(text: string, opts: SpecOptions = {}): SweepSpec {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new EgmfError(`invalid YAML: ${e.message.split('\n')[0]}`, { file: opts.file, line: e.linePos?.[0]?.line });
  }
  return validateSweepSpec(doc.toJS() as unknown, opts);
}

export function loadSweepSpec(path: string, opts: Omit<SpecOptions, 'file'> = {}): SweepSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new EgmfError(`cannot read sweep spec: ${(e as Error).message}`, { file: path }, { cause: e });
  }
  return parseSweepSpec(text, { ...opts, file: path });
}

/** Validates an already-parsed spec object (e.g. from JSON). */
export function validateSweepSpec(raw: unknown, opts: SpecOptions = {}): SweepSpec {
  const c = new Checker(opts.file);
  const o = c.obj(raw, '', TOP_KEYS);
  const name = c.str(o.name, 'name');
  if (!/^[A-Za-z0-9._-]+$/.test(name)) c.fail('name', `must use only letters, digits, '.', '_' and '-' (it prefixes trial ids); got ${JSON.stringify(name)}`);
  const method = c.oneOf(o.method, 'method', ['grid', 'random', 'tpe'] as const);
  const m = c.obj(o.metric, 'metric', ['name', 'goal']);
  const metric = { name: c.str(m.name, 'metric.name'), goal: c.oneOf(m.goal, 'metric.goal', ['maximize', 'minimize'] as const) };

  const rawParams = c.obj(o.parameters, 'parameters', Object.keys((o.parameters ?? {}) as Obj));
  if (Object.keys(rawParams).length === 0) c.fail('parameters', 'must define at least one parameter');
  const parameters = Object.entries(rawParams).map(([path, p]) => parseParam(c, path, p, method, opts.validateParamPath));
  checkPathOverlaps(c, parameters.map((p) => p.name), 'parameters');

  const spec: SweepSpec = {
    name,
    method,
    metric,
    parameters,
    parallel: o.parallel === undefined ? 1 : c.num(o.parallel, 'parallel', { int: true, min: 1 }),
    seeds: parseSeeds(c, o.seeds),
    set: parseSet(c, o.set, parameters, opts.validateParamPath),
    sampler: parseSampler(c, o.sampler, method),
  };
  if (o.description !== undefined) spec.description = c.str(o.description, 'description');
  if (o.run_cap !== undefined) spec.run_cap = c.num(o.run_cap, 'run_cap', { int: true, min: 1 });
  if (o.base_config !== undefined) {
    const b = c.str(o.base_config, 'base_config');
    spec.base_config = opts.file ? resolve(dirname(opts.file), b) : b;
  }
  if (o.early_terminate !== undefined) spec.early_terminate = parseEarlyTerminate(c, o.early_terminate);
  if (spec.run_cap !== undefined && spec.run_cap < Math.max(1, spec.seeds.length)) {
    c.fail('run_cap', `must allow at least one configuration over all ${spec.seeds.length} seeds`);
  }
  // Builds the space once so that cycles and impossible conditions surface here.
  new SearchSpace(parameters, opts.file);
  return spec;
}

function parseParam(c: Checker, path: string, raw: unknown, method: SweepMethod, validatePath?: (p: string) => string | undefined): ParamDef {
  const key = `parameters.${path}`;
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(path)) c.fail(key, 'parameter names are dotted config paths (letters, digits, _)');
  const why = validatePath?.(path);
  if (why !== undefined) c.fail(key, `not a config key: ${why}`);
  const p = c.obj(raw, key, ['value', 'values', 'probabilities', 'distribution', 'min', 'max', 'q', 'when']);
  const def: ParamDef = { name: path, dist: parseDistribution(c, key, p) };
  if (p.when !== undefined) def.when = parseWhen(c, `${key}.when`, p.when);
  if (method === 'grid' && def.dist.type !== 'constant' && def.dist.type !== 'categorical' && def.dist.type !== 'int_uniform' && def.dist.q === undefined) {
    c.fail(`${key}.distribution`, `'${def.dist.type}' is continuous and cannot be enumerated by grid search; give 'values' or a quantised distribution with 'q'`);
  }
  return def;
}

function parseDistribution(c: Checker, key: string, p: Obj): DistributionSpec {
  const has = (k: string): boolean => p[k] !== undefined;
  const onlyWith = (allowed: string[], what: string): void => {
    for (const k of ['value', 'values', 'probabilities', 'distribution', 'min', 'max', 'q']) {
      if (has(k) && !allowed.includes(k)) c.fail(`${key}.${k}`, `cannot be combined with ${what}`);
    }
  };
  if (has('value')) {
    onlyWith(['value'], "'value'");
    return { type: 'constant', value: c.json(p.value, `${key}.value`) };
  }
  const dist = has('distribution') ? c.oneOf(p.distribution, `${key}.distribution`, Object.keys(DIST_ALIASES)) : undefined;
  if (has('values') || dist === 'categorical') {
    onlyWith(['values', 'probabilities', 'distribution'], "'values'");
    if (!Array.isArray(p.values)) c.fail(`${key}.values`, `must be a list, got ${describe(p.values)}`);
    const values = (p.values as unknown[]).map((v, i) => c.json(v, `${key}.values[${i}]`));
    if (values.length === 0) c.fail(`${key}.values`, 'must not be empty');
    const seen = new Set<string>();
    values.forEach((v, i) => {
      const s = JSON.stringify(v);
      if (seen.has(s)) c.fail(`${key}.values[${i}]`, `duplicate value ${s}`);
      seen.add(s);
    });
    const out: DistributionSpec = { type: 'categorical', values };
    if (has('probabilities')) {
      if (!Array.isArray(p.probabilities) || p.probabilities.length !== values.length) c.fail(`${key}.probabilities`, `must be a list of ${values.length} numbers (one per value)`);
      const probs = (p.probabilities as unknown[]).map((x, i) => c.num(x, `${key}.probabilities[${i}]`, { min: 0 }));
      const sum = probs.reduce((a, b) => a + b, 0);
      if (Math.abs(sum - 1) > 1e-6) c.fail(`${key}.probabilities`, `must sum to 1, got ${sum}`);
      out.probabilities = probs;
    }
    return out;
  }
  if (dist === undefined) return c.fail(key, "needs 'value', 'values' or 'distribution' with 'min' and 'max'");
  onlyWith(['distribution', 'min', 'max', 'q'], `distribution '${dist}'`);
  const type = DIST_ALIASES[dist] as NumericName;
  const min = c.num(p.min, `${key}.min`);
  const max = c.num(p.max, `${key}.max`);
  if (min >= max) c.fail(`${key}.max`, `range is empty: min (${min}) must be < max (${max})`);
  if ((type === 'log_uniform' || type === 'q_log_uniform') && min <= 0) c.fail(`${key}.min`, `must be > 0 for ${dist}, got ${min}`);
  const out: DistributionSpec = { type, min, max };
  if (type === 'int_uniform') {
    if (!Number.isInteger(min)) c.fail(`${key}.min`, `must be an integer for int_uniform, got ${min}`);
    if (!Number.isInteger(max)) c.fail(`${key}.max`, `must be an integer for int_uniform, got ${max}`);
  }
  if (type === 'q_uniform' || type === 'q_log_uniform') {
    if (!has('q')) c.fail(`${key}.q`, `is required for ${dist}`);
  }
  if (has('q')) {
    if (type === 'uniform' || type === 'log_uniform') c.fail(`${key}.q`, `'q' needs a quantised distribution (q_uniform, q_log_uniform, int_uniform), not ${dist}`);
    out.q = c.num(p.q, `${key}.q`, { gt: 0, int: type === 'int_uniform' });
    if (out.q > max - min) c.fail(`${key}.q`, `step ${out.q} is larger than the range ${max - min}`);
  }
  return out;
}

function parseWhen(c: Checker, key: string, raw: unknown): ConditionSpec {
  const w = c.obj(raw, key, Object.keys((raw ?? {}) as Obj));
  if (Object.keys(w).length === 0) c.fail(key, 'must name at least one parameter');
  // A list means "any of"; to match a list-valued parameter, wrap it in another list.
  return Object.fromEntries(Object.entries(w).map(([ref, v]) => {
    const vals = Array.isArray(v) ? v.map((x, i) => c.json(x, `${key}.${ref}[${i}]`)) : [c.json(v, `${key}.${ref}`)];
    if (vals.length === 0) c.fail(`${key}.${ref}`, 'must list at least one value');
    return [ref, vals];
  }));
}

function checkPathOverlaps(c: Checker, paths: string[], section: string): void {
  for (const a of paths) {
    for (const b of paths) {
      if (b.startsWith(`${a}.`)) c.fail(`${section}.${b}`, `overlaps parameter '${a}' (a value and one of its sub-keys cannot both be swept)`);
    }
  }
}

function parseSeeds(c: Checker, raw: unknown): number[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.length === 0) c.fail('seeds', 'must be a non-empty list of integers');
  const seeds = (raw as unknown[]).map((s, i) => c.num(s, `seeds[${i}]`, { int: true, min: 0 }));
  seeds.forEach((s, i) => {
    if (seeds.indexOf(s) !== i) c.fail(`seeds[${i}]`, `duplicate seed ${s}`);
  });
  return seeds;
}

function parseSet(c: Checker, raw: unknown, params: ParamDef[], validatePath?: (p: string) => string | undefined): Record<string, JsonValue> {
  if (raw === undefined) return {};
  const s = c.obj(raw, 'set', Object.keys((raw ?? {}) as Obj));
  const out: Record<string, JsonValue> = {};
  for (const [path, v] of Object.entries(s)) {
    const why = validatePath?.(path);
    if (why !== undefined) c.fail(`set.${path}`, `not a config key: ${why}`);
    const clash = params.find((p) => p.name === path || p.name.startsWith(`${path}.`) || path.startsWith(`${p.name}.`));
    if (clash) c.fail(`set.${path}`, `overlaps swept parameter '${clash.name}'`);
    out[path] = c.json(v, `set.${path}`);
  }
  return out;
}

function parseSampler(c: Checker, raw: unknown, method: SweepMethod): SamplerOptions {
  if (raw === undefined) return { ...SAMPLER_DEFAULTS };
  const s = c.obj(raw, 'sampler', ['seed', ...TPE_ONLY]);
  const out = { ...SAMPLER_DEFAULTS };
  for (const k of TPE_ONLY) {
    if (s[k] !== undefined && method !== 'tpe') c.fail(`sampler.${k}`, `only applies to method 'tpe' (this sweep uses '${method}')`);
  }
  if (s.seed !== undefined) out.seed = c.num(s.seed, 'sampler.seed', { int: true, min: 0 });
  if (s.n_startup_trials !== undefined) out.n_startup_trials = c.num(s.n_startup_trials, 'sampler.n_startup_trials', { int: true, min: 0 });
  if (s.n_ei_candidates !== undefined) out.n_ei_candidates = c.num(s.n_ei_candidates, 'sampler.n_ei_candidates', { int: true, min: 1 });
  if (s.gamma !== undefined) out.gamma = c.num(s.gamma, 'sampler.gamma', { gt: 0, max: 1 });
  if (s.gamma_max !== undefined) out.gamma_max = c.num(s.gamma_max, 'sampler.gamma_max', { int: true, min: 1 });
  if (s.prior_weight !== undefined) out.prior_weight = c.num(s.prior_weight, 'sampler.prior_weight', { gt: 0 });
  if (s.constant_liar !== undefined) {
    if (typeof s.constant_liar !== 'boolean') c.fail('sampler.constant_liar', `must be true or false, got ${describe(s.constant_liar)}`);
    out.constant_liar = s.constant_liar as boolean;
  }
  return out;
}

function parseEarlyTerminate(c: Checker, raw: unknown): EarlyTerminate {
  const t = c.obj(raw, 'early_terminate', ['type', 'min_resource', 'eta', 'max_resource', 'warmup_steps', 'min_trials']);
  const type = c.oneOf(t.type, 'early_terminate.type', ['asha', 'median'] as const);
  if (type === 'asha') {
    for (const k of ['warmup_steps', 'min_trials']) if (t[k] !== undefined) c.fail(`early_terminate.${k}`, "only applies to type 'median'");
    const min_resource = c.num(t.min_resource, 'early_terminate.min_resource', { int: true, min: 1 });
    const eta = t.eta === undefined ? 3 : c.num(t.eta, 'early_terminate.eta', { int: true, min: 2 });
    const out: EarlyTerminate = { type, min_resource, eta };
    if (t.max_resource !== undefined) out.max_resource = c.num(t.max_resource, 'early_terminate.max_resource', { int: true, gt: min_resource });
    return out;
  }
  for (const k of ['min_resource', 'eta', 'max_resource']) if (t[k] !== undefined) c.fail(`early_terminate.${k}`, "only applies to type 'asha'");
  return {
    type,
    warmup_steps: t.warmup_steps === undefined ? 0 : c.num(t.warmup_steps, 'early_terminate.warmup_steps', { int: true, min: 0 }),
    min_trials: t.min_trials === undefined ? 5 : c.num(t.min_trials, 'early_terminate.min_trials', { int: true, min: 1 }),
  };
}
