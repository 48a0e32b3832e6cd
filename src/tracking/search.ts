/**
 * MLflow's run search language for the file store: `and`-joined comparisons on
 * metrics/params/tags/attributes, plus `order_by`, evaluated in memory like MLflow's FileStore.
 */
import { MlflowError } from './errors.ts';
import type { Run } from './store.ts';

type Entity = 'metrics' | 'params' | 'tags' | 'attributes';
interface Clause {
  entity: Entity;
  key: string;
  op: string;
  value: string | number | null;
}

const ENTITY_ALIASES: Record<string, Entity> = {
  metric: 'metrics', metrics: 'metrics', param: 'params', params: 'params', parameter: 'params', parameters: 'params',
  tag: 'tags', tags: 'tags', attribute: 'attributes', attributes: 'attributes', attr: 'attributes', run: 'attributes',
};
const ATTRIBUTE_ALIASES: Record<string, string> = { run_name: 'run_name', run_id: 'run_id', status: 'status', start_time: 'start_time', end_time: 'end_time', user_id: 'user_id', artifact_uri: 'artifact_uri', created: 'start_time', Created: 'start_time' };

// entity.key (key bare, dotted, or quoted/backquoted), operator, value
const CLAUSE = /^\s*(\w+)\.(`[^`]+`|"[^"]+"|[\w./:-]+)\s*(=|!=|<=|>=|<|>|LIKE|ILIKE|IS\s+NULL|IS\s+NOT\s+NULL)\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?[\d.eE+-]+)?\s*$/i;

function unquote(s: string): string {
  return /^['"`]/.test(s) ? s.slice(1, -1).replace(/\\(.)/g, '$1') : s;
}

export function parseFilter(filter: string | undefined): Clause[] {
  if (!filter || !filter.trim()) return [];
  // Split on `and` outside quotes.
  const parts: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (let i = 0; i < filter.length; i++) {
    const ch = filter[i]!;
    if (quote) {
      if (ch === quote && filter[i - 1] !== '\\') quote = null;
      cur += ch;
    } else if (ch === "'" || ch === '"' || ch === '`') {
      quote = ch;
      cur += ch;
    } else if (/\s/.test(ch) && /^and\s/i.test(filter.slice(i + 1, i + 5)) && cur.trim() !== '') {
      parts.push(cur);
      cur = '';
      i += 4;
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => {
    const m = CLAUSE.exec(p);
    const entity = m ? ENTITY_ALIASES[m[1]!.toLowerCase()] : undefined;
    if (!m || !entity) throw new MlflowError('INVALID_PARAMETER_VALUE', `cannot parse search filter clause '${p.trim()}'`);
    const op = m[3]!.toUpperCase().replace(/\s+/g, ' ');
    let key = unquote(m[2]!);
    if (entity === 'attributes') {
      const a = ATTRIBUTE_ALIASES[key];
      if (!a) throw new MlflowError('INVALID_PARAMETER_VALUE', `unknown run attribute in search filter`, { key });
      key = a;
    }
    const raw = m[4];
    if (raw === undefined && !op.startsWith('IS')) throw new MlflowError('INVALID_PARAMETER_VALUE', `search filter clause '${p.trim()}' has no value`);
    const value = raw === undefined ? null : /^['"]/.test(raw) ? unquote(raw) : Number(raw);
    return { entity, key, op, value };
  });
}

function likeToRegex(pattern: string, flags: string): RegExp {
  const esc = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%/g, '.*').replace(/_/g, '.');
  return new RegExp(`^${esc}$`, flags);
}

function attribute(run: Run, key: string): string | number | null {
  const i = run.info;
  switch (key) {
    case 'run_name': return i.runName;
    case 'run_id': return i.runId;
    case 'status': return i.status;
    case 'start_time': return i.startTime;
    case 'end_time': return i.endTime;
    case 'user_id': return i.userId;
    default: return i.artifactUri;
  }
}

function lookup(run: Run, entity: Entity, key: string): string | number | null {
  if (entity === 'metrics') return run.data.metrics[key] ?? null;
  if (entity === 'params') return run.data.params[key] ?? null;
  if (entity === 'tags') return run.data.tags[key] ?? null;
  return attribute(run, key);
}

function compare(actual: string | number | null, op: string, want: string | number | null): boolean {
  if (op === 'IS NULL') return actual === null;
  if (op === 'IS NOT NULL') return actual !== null;
  if (actual === null || want === null) return false;
  if (op === 'LIKE' || op === 'ILIKE') return likeToRegex(String(want), op === 'ILIKE' ? 'i' : '').test(String(actual));
  const a = typeof want === 'number' ? Number(actual) : String(actual);
  switch (op) {
    case '=': return a === want;
    case '!=': return a !== want;
    case '<': return a < want;
    case '<=': return a <= want;
    case '>': return a > want;
    default: return a >= want;
  }
}

export function filterRuns(runs: Run[], filter: string | undefined): Run[] {
  const clauses = parseFilter(filter);
  return runs.filter((r) => clauses.every((c) => compare(lookup(r, c.entity, c.key), c.op, c.value)));
}

/** MLflow's default order is start_time DESC, then run_id; runs missing an ordering key sort last. */
export function sortRuns(runs: Run[], orderBy: string[] | undefined): Run[] {
  const keys = (orderBy ?? []).map((o) => {
    const m = /^\s*(\w+)\.(`[^`]+`|"[^"]+"|[\w./:-]+)(?:\s+(ASC|DESC))?\s*$/i.exec(o);
    const entity = m ? ENTITY_ALIASES[m[1]!.toLowerCase()] : undefined;
    if (!m || !entity) throw new MlflowError('INVALID_PARAMETER_VALUE', `cannot parse order_by clause '${o}'`);
    let key = unquote(m[2]!);
    if (entity === 'attributes') key = ATTRIBUTE_ALIASES[key] ?? key;
    return { entity, key, desc: (m[3] ?? 'ASC').toUpperCase() === 'DESC' };
  });
  keys.push({ entity: 'attributes', key: 'start_time', desc: true }, { entity: 'attributes', key: 'run_id', desc: false });
  return [...runs].sort((x, y) => {
    for (const k of keys) {
      const a = lookup(x, k.entity, k.key);
      const b = lookup(y, k.entity, k.key);
      if (a === b) continue;
      if (a === null) return 1;
      if (b === null) return -1;
      const c = a < b ? -1 : 1;
      return k.desc ? -c : c;
    }
    return 0;
  });
}
