/**
 * Search spaces: one distribution per parameter plus activation conditions.
 *
 * Every distribution maps values to an "internal" real line that samplers work on:
 * log distributions are searched on ln(value), quantised and integer distributions on a
 * range widened by half a step at each end (so every grid point owns an equal-width bin,
 * as in Optuna), categoricals by choice index. `fromInternal` snaps back onto the grid.
 */
import seedrandom from 'seedrandom';
import { EgmfError } from '../errors.ts';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Params = Record<string, JsonValue>;
/** Uniform random numbers in [0, 1). */
export type Rng = () => number;
export type Goal = 'maximize' | 'minimize';
export type TrialState = 'running' | 'complete' | 'pruned' | 'failed';

/** What samplers and pruners see of a trial; finished records never change. */
export interface FrozenTrial {
  readonly id: string;
  readonly number: number;
  readonly params: Readonly<Params>;
  readonly state: TrialState;
  /** Objective value; set for complete trials. */
  readonly value?: number;
  /** Intermediate values as [step, value], sorted by step. */
  readonly intermediate: ReadonlyArray<readonly [number, number]>;
}

export const NUMERIC_DISTRIBUTIONS = ['uniform', 'log_uniform', 'int_uniform', 'q_uniform', 'q_log_uniform'] as const;
export type NumericName = (typeof NUMERIC_DISTRIBUTIONS)[number];

/** Plain-data description of one parameter's distribution (what a sweep spec holds). */
export type DistributionSpec =
  | { type: 'constant'; value: JsonValue }
  | { type: 'categorical'; values: JsonValue[]; probabilities?: number[] }
  | { type: NumericName; min: number; max: number; q?: number };

/** `when`: every listed parameter must be active and take one of the listed values. */
export type ConditionSpec = Record<string, JsonValue[]>;

export interface ParamDef {
  name: string;
  dist: DistributionSpec;
  when?: ConditionSpec;
}

/** Canonical JSON (sorted keys) so equal values compare equal whatever their key order. */
export function canonicalJson(v: JsonValue): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function rngFor(seed: number | string, ...parts: (number | string)[]): Rng {
  return seedrandom([String(seed), ...parts.map(String)].join('/'));
}

export interface Distribution {
  readonly spec: DistributionSpec;
  /** Internal bounds; categoricals use [0, n). */
  readonly low: number;
  readonly high: number;
  sample(rng: Rng): JsonValue;
  contains(v: JsonValue): boolean;
  toInternal(v: JsonValue): number;
  fromInternal(x: number): JsonValue;
  /** The finite set of values, or undefined for continuous distributions. */
  enumerate(): JsonValue[] | undefined;
  /** Internal interval owned by a discrete value (undefined for continuous ones). */
  bin(v: JsonValue): [number, number] | undefined;
}

const roundClean = (x: number): number => Number(x.toPrecision(12));

class ConstantDistribution implements Distribution {
  readonly low = 0;
  readonly high = 1;
  private readonly key: string;
  constructor(readonly spec: Extract<DistributionSpec, { type: 'constant' }>) {
    this.key = canonicalJson(spec.value);
  }
  sample(): JsonValue { return this.spec.value; }
  contains(v: JsonValue): boolean { return canonicalJson(v) === this.key; }
  toInternal(): number { return 0; }
  fromInternal(): JsonValue { return this.spec.value; }
  enumerate(): JsonValue[] { return [this.spec.value]; }
  bin(): [number, number] { return [0, 1]; }
}

export class CategoricalDistribution implements Distribution {
  readonly low = 0;
  readonly high: number;
  private readonly keys: string[];
  private readonly cumulative: number[];
  constructor(readonly spec: Extract<DistributionSpec, { type: 'categorical' }>) {
    this.high = spec.values.length;
    this.keys = spec.values.map(canonicalJson);
    const p = this.prior();
    let acc = 0;
    this.cumulative = p.map((w) => (acc += w));
  }
  /** Choice probabilities under random search (the spec's `probabilities` or uniform). */
  prior(): number[] {
    const n = this.spec.values.length;
    const p = this.spec.probabilities ?? new Array<number>(n).fill(1);
    const s = p.reduce((a, b) => a + b, 0);
    return p.map((w) => w / s);
  }
  indexOf(v: JsonValue): number { return this.keys.indexOf(canonicalJson(v)); }
  sample(rng: Rng): JsonValue {
    const u = rng() * this.cumulative[this.cumulative.length - 1];
    const i = this.cumulative.findIndex((c) => u < c);
    return this.spec.values[i < 0 ? this.spec.values.length - 1 : i];
  }
  contains(v: JsonValue): boolean { return this.indexOf(v) >= 0; }
  toInternal(v: JsonValue): number { return this.indexOf(v); }
  fromInternal(x: number): JsonValue {
    return this.spec.values[Math.min(this.spec.values.length - 1, Math.max(0, Math.floor(x)))];
  }
  enumerate(): JsonValue[] { return [...this.spec.values]; }
  bin(v: JsonValue): [number, number] { const i = this.indexOf(v); return [i, i + 1]; }
}

export class NumericDistribution implements Distribution {
  readonly low: number;
  readonly high: number;
  readonly log: boolean;
  /** Grid step for int/quantised distributions. */
  readonly step: number | undefined;
  /** Number of grid points minus one (discrete only). */
  private readonly kMax: number;
  private readonly gridMax: number;
  constructor(readonly spec: Extract<DistributionSpec, { min: number }>) {
    const { type, min, max } = spec;
    this.log = type === 'log_uniform' || type === 'q_log_uniform';
    this.step = type === 'int_uniform' ? spec.q ?? 1 : type === 'q_uniform' || type === 'q_log_uniform' ? spec.q : undefined;
    if (this.step !== undefined) {
      this.kMax = Math.floor((max - min) / this.step + 1e-9);
      this.gridMax = roundClean(min + this.kMax * this.step);
    } else {
      this.kMax = 0;
      this.gridMax = max;
    }
    if (this.log) {
      // Quantisation happens in value space for q_log_uniform (W&B's round(exp(X)/q)*q).
      this.low = Math.log(min);
      this.high = Math.log(this.gridMax);
    } else if (this.step !== undefined) {
      this.low = min - this.step / 2;
      this.high = this.gridMax + this.step / 2;
    } else {
      this.low = min;
      this.high = max;
    }
  }
  get discrete(): boolean { return this.step !== undefined; }
  private snap(v: number): number {
    if (this.step === undefined) return Math.min(this.spec.max, Math.max(this.spec.min, v));
    const k = Math.min(this.kMax, Math.max(0, Math.round((v - this.spec.min) / this.step)));
    return roundClean(this.spec.min + k * this.step);
  }
  sample(rng: Rng): number { return this.fromInternal(this.low + rng() * (this.high - this.low)); }
  contains(v: JsonValue): boolean {
    if (typeof v !== 'number' || !Number.isFinite(v)) return false;
    if (v < this.spec.min - 1e-12 || v > this.gridMax + 1e-12) return false;
    if (this.step === undefined) return true;
    const k = (v - this.spec.min) / this.step;
    return Math.abs(k - Math.round(k)) < 1e-6;
  }
  toInternal(v: JsonValue): number {
    const x = v as number;
    return this.log ? Math.log(x) : x;
  }
  fromInternal(x: number): number {
    const clamped = Math.min(this.high, Math.max(this.low, x));
    return this.snap(this.log ? Math.exp(clamped) : clamped);
  }
  enumerate(): number[] | undefined {
    if (this.step === undefined) return undefined;
    return Array.from({ length: this.kMax + 1 }, (_, k) => roundClean(this.spec.min + k * (this.step as number)));
  }
  bin(v: JsonValue): [number, number] | undefined {
    if (this.step === undefined) return undefined;
    const x = v as number;
    const h = this.step / 2;
    if (!this.log) return [x - h, x + h];
    return [Math.log(Math.max(x - h, this.spec.min)), Math.log(Math.min(x + h, this.gridMax))];
  }
}

export function makeDistribution(spec: DistributionSpec): Distribution {
  if (spec.type === 'constant') return new ConstantDistribution(spec);
  if (spec.type === 'categorical') return new CategoricalDistribution(spec);
  return new NumericDistribution(spec);
}

export interface ParamEntry {
  readonly name: string;
  readonly dist: Distribution;
  readonly when: ReadonlyArray<{ param: string; keys: ReadonlySet<string> }>;
}

/**
 * The parameters in topological order of their conditions. A parameter is active when all
 * its conditions hold on the parameters sampled before it; a condition on an inactive
 * parameter is false, so conditions chain.
 */
export class SearchSpace {
  readonly order: readonly string[];
  private readonly entries: Map<string, ParamEntry>;

  constructor(defs: readonly ParamDef[], file?: string) {
    this.entries = new Map();
    for (const d of defs) {
      if (this.entries.has(d.name)) throw new EgmfError('duplicate parameter', { file, key: `parameters.${d.name}` });
      const when = Object.entries(d.when ?? {}).map(([param, values]) => ({ param, keys: new Set(values.map(canonicalJson)) }));
      this.entries.set(d.name, { name: d.name, dist: makeDistribution(d.dist), when });
    }
    for (const e of this.entries.values()) {
      for (const c of e.when) {
        const key = `parameters.${e.name}.when.${c.param}`;
        if (c.param === e.name) throw new EgmfError('a parameter cannot be conditional on itself', { file, key });
        const ref = this.entries.get(c.param);
        if (!ref) throw new EgmfError(`condition refers to unknown parameter '${c.param}'`, { file, key });
        const possible = ref.dist.enumerate();
        for (const k of c.keys) {
          const v = JSON.parse(k) as JsonValue;
          if (!ref.dist.contains(v)) {
            const hint = possible ? ` (possible values: ${possible.map((p) => JSON.stringify(p)).join(', ')})` : '';
            throw new EgmfError(`value ${k} can never be taken by '${c.param}'${hint}`, { file, key });
          }
        }
      }
    }
    this.order = topoOrder(this.entries, file);
  }

  get size(): number { return this.order.length; }
  has(name: string): boolean { return this.entries.has(name); }
  entry(name: string): ParamEntry {
    const e = this.entries.get(name);
    if (!e) throw new EgmfError(`unknown parameter '${name}'`);
    return e;
  }
  dist(name: string): Distribution { return this.entry(name).dist; }

  /** Whether `name` is active given the parameters decided so far. */
  isActive(name: string, partial: Readonly<Params>): boolean {
    return this.entry(name).when.every((c) => c.param in partial && c.keys.has(canonicalJson(partial[c.param])));
  }

  /** Random search: every active parameter drawn from its own distribution. */
  sampleRandom(rng: Rng): Params {
    const out: Params = {};
    for (const name of this.order) if (this.isActive(name, out)) out[name] = this.dist(name).sample(rng);
    return out;
  }

  /** Why `params` is not a point of this space (undefined when it is). */
  check(params: Readonly<Params>): string | undefined {
    const seen: Params = {};
    for (const name of this.order) {
      const active = this.isActive(name, seen);
      if (active && !(name in params)) return `active parameter '${name}' is missing`;
      if (!active && name in params) return `parameter '${name}' is set but its condition does not hold`;
      if (!active) continue;
      if (!this.dist(name).contains(params[name])) return `parameter '${name}' = ${JSON.stringify(params[name])} is outside its distribution`;
      seen[name] = params[name];
    }
    const extra = Object.keys(params).find((k) => !this.entries.has(k));
    return extra === undefined ? undefined : `unknown parameter '${extra}'`;
  }
  contains(params: Readonly<Params>): boolean { return this.check(params) === undefined; }
}

function topoOrder(entries: Map<string, ParamEntry>, file?: string): string[] {
  const names = [...entries.keys()];
  const state = new Map<string, 'visiting' | 'done'>();
  const out: string[] = [];
  // Depth-first over declaration order keeps the order stable and readable.
  const visit = (name: string, path: string[]): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw new EgmfError(`conditions form a cycle: ${cycle.join(' -> ')}`, { file, key: `parameters.${name}.when` });
    }
    state.set(name, 'visiting');
    for (const c of (entries.get(name) as ParamEntry).when) visit(c.param, [...path, name]);
    state.set(name, 'done');
    out.push(name);
  };
  for (const n of names) visit(n, []);
  return out;
}
