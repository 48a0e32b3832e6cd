/** On-disk conventions of MLflow's file store shared by its reader and writer. */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { MlflowError } from './errors.ts';

/** `file:///abs`, `file:rel` or a plain path → an absolute directory. */
export function fileStoreRoot(uri: string): string {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  if (uri.startsWith('file:')) return resolve(uri.slice('file:'.length));
  return resolve(uri);
}

/** An 18-digit id derived from the name, so racing creators of one experiment agree on its folder. */
export function experimentIdFor(name: string): string {
  const digits = BigInt(`0x${createHash('sha256').update(name).digest('hex')}`).toString().slice(0, 18);
  return digits[0] === '0' ? `1${digits.slice(1)}` : digits;
}

export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function yamlText(obj: Record<string, unknown>): string {
  // PyYAML's safe_dump sorts keys; keep the same order so files diff cleanly against MLflow's.
  const sorted = Object.fromEntries(Object.keys(obj).sort().map((k) => [k, obj[k]]));
  return YAML.stringify(sorted);
}

export function readYaml(path: string): Record<string, unknown> | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const v: unknown = YAML.parse(text);
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
}

/** Python's repr of a float, which MLflow's reader and writer use. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  return String(v);
}
export function parseValue(s: string): number {
  const l = s.toLowerCase();
  if (l === 'inf' || l === 'infinity' || l === '+inf') return Infinity;
  if (l === '-inf' || l === '-infinity') return -Infinity;
  return Number(s);
}

/** All files under `dir`, as `/`-joined keys (keys with `/` are subfolders). */
export function walkKeys(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...walkKeys(join(dir, e.name), `${prefix}${e.name}/`));
    else if (!e.name.endsWith('.tmp')) out.push(`${prefix}${e.name}`);
  }
  return out;
}

export function safeRelPath(rel: string): string {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (rel.startsWith('/') || parts.includes('..')) throw new MlflowError('INVALID_PARAMETER_VALUE', `artifact path must be relative and stay inside the run's artifacts`, { key: rel });
  return parts.join('/');
}
