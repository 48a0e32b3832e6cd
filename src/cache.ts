import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EgmfError } from './errors.ts';

/** Where generated data, imports and the built-in LLM are cached: EGMF_CACHE, else ./.egmf-cache. */
export function cacheDir(): string {
  return resolve(process.env.EGMF_CACHE || '.egmf-cache');
}

const digests = new Map<string, string>();

/**
 * A file's identity and change stamps (its absolute path, device, inode, size, modification
 * and change times in nanoseconds): equal stamps mean an unchanged file, as in git's index. A
 * rewritten file gets a new change time. Throws the stat's error for a missing file.
 */
export function fileStamp(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${resolve(path)}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * What this process built from files, kept by the files' stamps (see {@link fileStamp}): a
 * rewritten file is a new key, so nothing stale is ever returned. Entries have sizes (1 each
 * by default, or bytes); once their total would pass `budget()` the least recently used go
 * first, and a value larger than the whole budget is not kept.
 */
export class StampCache<T> {
  private readonly entries = new Map<string, { value: T; size: number }>();
  private total = 0;

  constructor(private readonly budget: () => number) {}

  get(key: string): T | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  set(key: string, value: T, size = 1): void {
    const budget = this.budget();
    this.drop(key);
    if (size > budget) return;
    for (const k of this.entries.keys()) {
      if (this.total + size <= budget) break;
      this.drop(k);
    }
    this.entries.set(key, { value, size });
    this.total += size;
  }

  /** How many values are kept, and their total size. */
  usage(): { entries: number; size: number } {
    return { entries: this.entries.size, size: this.total };
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    this.total -= e.size;
  }
}

/**
 * The first 16 hex digits of a file's SHA-256, remembered by the file's identity and
 * change stamps (device, inode, size, modification and change times in nanoseconds), in this
 * process and under `<cache>/digests/`, the way git's index and make skip unchanged files. A
 * run logs its three data splits' digests (126 MB for synthetic MELD at the default scale,
 * ~0.45 s of every sweep trial's start when hashed each time); a rewritten file gets a new
 * change time, so it is hashed again. A cache that cannot be written is only a missed saving.
 */
export function fileDigest(path: string): string {
  let stamp: string;
  try {
    stamp = fileStamp(path);
  } catch (e) {
    throw new EgmfError(`cannot read the file to digest it: ${(e as Error).message}`, { file: path }, { cause: e });
  }
  const known = digests.get(stamp);
  if (known !== undefined) return known;
  const file = join(cacheDir(), 'digests', `${createHash('sha256').update(stamp).digest('hex').slice(0, 24)}.txt`);
  let digest: string | undefined;
  try {
    const saved = readFileSync(file, 'utf8');
    if (/^[0-9a-f]{16}$/.test(saved)) digest = saved;
  } catch {
    // not cached yet
  }
  if (digest === undefined) {
    digest = createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16);
    try {
      mkdirSync(join(cacheDir(), 'digests'), { recursive: true });
      const tmp = `${file}.tmp-${process.pid}`;
      writeFileSync(tmp, digest);
      renameSync(tmp, file); // atomic: a concurrent reader sees the whole file or none
    } catch {
      // a read-only cache: hash again next time
    }
  }
  digests.set(stamp, digest);
  return digest;
}
