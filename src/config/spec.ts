/**
 * A small declarative schema for nested configs: defaults, validation with errors that
 * name the key path, `--set a.b=c` overrides, flattening for tracking params, and the
 * list of settable paths (sweeps check their parameter paths against it).
 */
import { parse as parseYaml } from 'yaml';
import { EgmfError } from '../errors.ts';

export type FieldSpec =
  | { kind: 'number'; default?: number; min?: number; max?: number; int?: boolean; exclusiveMin?: boolean; doc: string; nullable?: boolean }
  | { kind: 'string'; default?: string; doc: string; nullable?: boolean; nonEmpty?: boolean }
  | { kind: 'boolean'; default?: boolean; doc: string }
  | { kind: 'enum'; values: readonly string[]; default?: string; doc: string }
  | { kind: 'list'; of: 'number' | 'string' | 'int'; default?: readonly (number | string)[]; doc: string; allowed?: readonly string[]; minItems?: number; nonNegative?: boolean; positive?: boolean }
  | { kind: 'record'; of: 'number' | 'string'; default?: Record<string, number | string>; doc: string }
  | { kind: 'object'; fields: Record<string, FieldSpec>; doc: string };

export type ObjectSpec = Extract<FieldSpec, { kind: 'object' }>;

type Json = unknown;

/** Validates `raw` against `spec`, filling defaults; errors name the dotted key path. */
export function validateObject(spec: ObjectSpec, raw: Json, path = '', file?: string): Record<string, unknown> {
  const obj = raw === undefined || raw === null ? {} : raw;
  if (typeof obj !== 'object' || Array.isArray(obj)) {
    throw new EgmfError(`must be a mapping, got ${describe(obj)}`, { file, key: path || '(root)' });
  }
  const input = obj as Record<string, unknown>;
  for (const k of Object.keys(input)) {
    if (!(k in spec.fields)) {
      const near = closest(k, Object.keys(spec.fields));
      throw new EgmfError(`unknown key${near ? ` (did you mean '${join(path, near)}'?)` : ''}`, { file, key: join(path, k) });
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(spec.fields)) {
    out[k] = validateField(f, input[k], join(path, k), file);
  }
  return out;
}

function validateField(f: FieldSpec, v: Json, path: string, file?: string): unknown {
  const fail = (msg: string): never => {
    throw new EgmfError(msg, { file, key: path });
  };
  if (f.kind === 'object') return validateObject(f, v, path, file);
  if (v === undefined) {
    if (f.kind !== 'boolean' && 'nullable' in f && f.nullable && f.default === undefined) return null;
    if (f.default === undefined) fail('is required');
    return Array.isArray(f.default) ? [...f.default] : typeof f.default === 'object' ? { ...f.default } : f.default;
  }
  if (v === null) {
    if ('nullable' in f && f.nullable) return null;
    fail('must not be null');
  }
  switch (f.kind) {
    case 'number': {
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(`must be a number, got ${describe(v)}`);
      const n = v as number;
      if (f.int && !Number.isInteger(n)) fail(`must be an integer, got ${n}`);
      if (f.min !== undefined && (f.exclusiveMin ? n <= f.min : n < f.min)) fail(`must be ${f.exclusiveMin ? '>' : '>='} ${f.min}, got ${n}`);
      if (f.max !== undefined && n > f.max) fail(`must be <= ${f.max}, got ${n}`);
      return n;
    }
    case 'string':
      if (typeof v !== 'string') fail(`must be a string, got ${describe(v)}`);
      if (f.nonEmpty && (v as string).length === 0) fail('must not be empty');
      return v;
    case 'boolean':
      if (typeof v !== 'boolean') fail(`must be true or false, got ${describe(v)}`);
      return v;
    case 'enum':
      if (typeof v !== 'string' || !f.values.includes(v)) fail(`must be one of ${f.values.join(', ')}; got ${describe(v)}`);
      return v;
    case 'list': {
      if (!Array.isArray(v)) fail(`must be a list, got ${describe(v)}`);
      const arr = v as unknown[];
      if (f.minItems !== undefined && arr.length < f.minItems) fail(`must have at least ${f.minItems} item(s)`);
      arr.forEach((x, i) => {
        const at = `${path}[${i}]`;
        if (f.of === 'string') {
          if (typeof x !== 'string') throw new EgmfError(`must be a string, got ${describe(x)}`, { file, key: at });
          if (f.allowed && !f.allowed.includes(x)) throw new EgmfError(`must be one of ${f.allowed.join(', ')}; got '${x}'`, { file, key: at });
        } else {
          if (typeof x !== 'number' || !Number.isFinite(x)) throw new EgmfError(`must be a number, got ${describe(x)}`, { file, key: at });
          if (f.of === 'int' && !Number.isInteger(x)) throw new EgmfError(`must be an integer, got ${x}`, { file, key: at });
          if (f.positive && x <= 0) throw new EgmfError(`must be > 0, got ${x}`, { file, key: at });
          if (f.nonNegative && x < 0) throw new EgmfError(`must be >= 0, got ${x}`, { file, key: at });
        }
      });
      return [...arr];
    }
    case 'record': {
      if (typeof v !== 'object' || Array.isArray(v)) fail(`must be a mapping, got ${describe(v)}`);
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (typeof x !== f.of) throw new EgmfError(`must be a ${f.of}, got ${describe(x)}`, { file, key: `${path}.${k}` });
      }
      return { ...(v as Record<string, unknown>) };
    }
  }
}

/** Every leaf path the schema accepts (list and record fields count as leaves). */
export function leafPaths(spec: ObjectSpec, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, f] of Object.entries(spec.fields)) {
    const p = join(prefix, k);
    if (f.kind === 'object') out.push(...leafPaths(f, p));
    else out.push(p);
  }
  return out;
}

/** The field at a dotted path, or undefined. */
export function fieldAt(spec: ObjectSpec, path: string): FieldSpec | undefined {
  let cur: FieldSpec = spec;
  for (const part of path.split('.')) {
    if (cur.kind !== 'object' || !(part in cur.fields)) return undefined;
    cur = cur.fields[part]!;
  }
  return cur;
}

/** Sets `obj[path] = value`, creating intermediate mappings. */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

export function getPath(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const p of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/**
 * Applies `key=value` overrides. Values are parsed as YAML scalars/flow collections
 * (`lr=1e-3`, `experts=[a,b]`, `flag=true`); the key must exist in the schema.
 */
export function applySets(spec: ObjectSpec, raw: Record<string, unknown>, sets: readonly string[]): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new EgmfError(`--set expects key=value, got '${s}'`, { key: s });
    const key = s.slice(0, eq).trim();
    const text = s.slice(eq + 1);
    if (fieldAt(spec, key) === undefined) {
      const near = closest(key, leafPaths(spec));
      throw new EgmfError(`unknown config key in --set${near ? ` (did you mean '${near}'?)` : ''}`, { key });
    }
    setPath(out, key, parseScalar(text));
  }
  return out;
}

export function parseScalar(text: string): unknown {
  if (text === '') return '';
  try {
    return parseYaml(text) as unknown;
  } catch {
    return text;
  }
}

/** Flattens nested config into `a.b.c -> string` for tracking params. */
export function flatten(obj: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (typeof obj === 'object' && obj !== null && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, join(prefix, k), out);
  } else {
    out[prefix] = Array.isArray(obj) ? JSON.stringify(obj) : obj === null ? 'null' : String(obj);
  }
  return out;
}

function join(prefix: string, k: string): string {
  return prefix ? `${prefix}.${k}` : k;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** The candidate within edit distance 2 (for "did you mean"), if any. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}
