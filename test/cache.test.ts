import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileDigest, StampCache } from '../src/cache.ts';
import { REPO, setEnv } from './helpers.ts';

const sha16 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex').slice(0, 16);

/** fileDigest in a fresh process (no in-process memory), with the given cache folder. */
function digestElsewhere(path: string, cache: string): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', `import('./src/cache.ts').then((m) => process.stdout.write(m.fileDigest(${JSON.stringify(path)})))`], {
    cwd: REPO,
    env: { ...process.env, EGMF_CACHE: cache },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

describe('fileDigest', () => {
  let restore: (() => void) | undefined;
  afterEach(() => restore?.());

  it('is the SHA-256 prefix of the content, remembered across processes until the file changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'egmf-digest-'));
    const cache = join(dir, 'cache');
    restore = setEnv({ EGMF_CACHE: cache });
    const data = join(dir, 'train.arrow');
    const content = Buffer.alloc(3_000_000, 7);
    writeFileSync(data, content);
    expect(fileDigest(data)).toBe(sha16(content));
    const saved = readdirSync(join(cache, 'digests'));
    expect(saved).toHaveLength(1);
    expect(readFileSync(join(cache, 'digests', saved[0]!), 'utf8')).toBe(sha16(content));
    // Another process takes the saved digest instead of reading the file: shown by planting one.
    writeFileSync(join(cache, 'digests', saved[0]!), 'feedfacefeedface');
    expect(digestElsewhere(data, cache)).toBe('feedfacefeedface');
    // Rewriting the file (same size) changes its stamps: hashed again, in this process too.
    const changed = Buffer.alloc(3_000_000, 8);
    writeFileSync(data, changed);
    expect(fileDigest(data)).toBe(sha16(changed));
    expect(digestElsewhere(data, cache)).toBe(sha16(changed));
  });

  it('still digests with a cache it cannot write, and names a missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'egmf-digest-'));
    const cache = join(dir, 'cache');
    writeFileSync(cache, 'not a folder');
    chmodSync(cache, 0o444);
    restore = setEnv({ EGMF_CACHE: cache });
    const data = join(dir, 'valid.arrow');
    writeFileSync(data, 'abc');
    expect(fileDigest(data)).toBe(sha16('abc'));
    expect(() => fileDigest(join(dir, 'nope.arrow'))).toThrow(/cannot read the file to digest it.*nope\.arrow|nope\.arrow.*cannot read/s);
  });
});

describe('StampCache', () => {
  it('keeps values within its budget, least recently used out first; a value larger than the budget is not kept', () => {
    let budget = 10;
    const c = new StampCache<string>(() => budget);
    c.set('a', 'A', 4);
    c.set('b', 'B', 4);
    expect(c.get('a')).toBe('A'); // a is now the most recently used
    c.set('c', 'C', 4); // 12 > 10: b goes
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe('A');
    expect(c.usage()).toEqual({ entries: 2, size: 8 });
    c.set('a', 'A2', 2); // setting a key again replaces its size
    expect(c.usage()).toEqual({ entries: 2, size: 6 });
    c.set('huge', 'H', 11);
    expect(c.get('huge')).toBeUndefined();
    expect(c.usage()).toEqual({ entries: 2, size: 6 });
    budget = 0;
    c.set('d', 'D', 1);
    expect(c.get('d')).toBeUndefined();
    const n = new StampCache<number>(() => 2); // sizes default to 1: a count
    for (const k of ['x', 'y', 'z']) n.set(k, k.length);
    expect(n.usage()).toEqual({ entries: 2, size: 2 });
    expect(n.get('x')).toBeUndefined();
  });
});
