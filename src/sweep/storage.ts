/**
 * A sweep's files on a disk that fills up or turns read-only. A write the disk refuses stops
 * the sweep with an error naming the file (a {@link StorageError}), and leaves nothing
 * half-written: a line appended in part is cut off again, a file replaced atomically loses its
 * temporary copy. Everything the sweep wrote before still loads, so once the fault is fixed
 * `egmf sweep resume` continues. A trial that cannot write its folder says so in its result
 * (`storage`: the path), which stops its sweep the same way instead of failing the trial: a
 * full disk is no fault of the trial's configuration.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { EgmfError } from '../errors.ts';

/** Codes meaning the disk refused a write, whatever the file. */
const REFUSED = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EFBIG']);
/** Codes meaning the same when they concern the sweep's own files (elsewhere they may be a bad path). */
const DENIED = new Set(['EACCES', 'EPERM', 'ENOTDIR', 'EIO']);

const errnoOf = (e: unknown): NodeJS.ErrnoException | undefined => (e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' ? (e as NodeJS.ErrnoException) : undefined);

const under = (path: string, root: string): boolean => {
  const r = relative(resolve(root), resolve(path));
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
};

export class StorageError extends EgmfError {
  readonly path: string;
  readonly code: string;

  constructor(path: string, cause: NodeJS.ErrnoException | string) {
    const code = typeof cause === 'string' ? (/^(E[A-Z]+)\b/.exec(cause)?.[1] ?? 'EIO') : (cause.code ?? 'EIO');
    const why = typeof cause === 'string' ? cause : cause.message;
    super(`cannot write (${why}); the sweep stopped, its files are intact: make room or make it writable, then run 'egmf sweep resume'`, { file: path }, typeof cause === 'string' ? undefined : { cause });
    this.name = 'StorageError';
    this.path = path;
    this.code = code;
  }
}

export const isStorageError = (e: unknown): e is StorageError => e instanceof StorageError;

/**
 * The path a failed write could not write, when the failure is the disk's (full, read-only, or
 * not writable under one of `roots`); undefined for any other error.
 */
export function storageFault(e: unknown, roots: readonly string[], fallback?: string): string | undefined {
  if (isStorageError(e)) return e.path;
  const err = errnoOf(e);
  if (!err?.code) return undefined;
  const path = (err as NodeJS.ErrnoException & { dest?: string }).dest ?? err.path ?? fallback;
  if (REFUSED.has(err.code)) return path ?? '(unknown file)';
  if (DENIED.has(err.code) && path !== undefined && roots.some((r) => under(path, r))) return path;
  return undefined;
}

/** Rethrows a refused write of `path` as a {@link StorageError}; other errors unchanged. */
function asStorage(e: unknown, path: string): never {
  const err = errnoOf(e);
  if (err?.code && (REFUSED.has(err.code) || DENIED.has(err.code))) throw new StorageError(path, err);
  throw e;
}

/** Writes all of `buf` at the end of `fd` (a short write on a full disk is followed by ENOSPC). */
export function writeAll(fd: number, buf: Buffer): void {
  for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
}

/** Appends one line; on failure the part written is cut off again, so the file stays whole lines. */
export function appendLine(path: string, line: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'a');
  } catch (e) {
    asStorage(e, path);
  }
  const size = fstatSync(fd).size;
  try {
    writeAll(fd, Buffer.from(line.endsWith('\n') ? line : `${line}\n`));
  } catch (e) {
    try {
      ftruncateSync(fd, size);
    } catch {
      // A read-only file took nothing in the first place.
    }
    asStorage(e, path);
  } finally {
    closeSync(fd);
  }
}

/** Replaces a file atomically (a temporary copy renamed over it), removing the copy on failure. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // Nothing to remove, or not removable either.
    }
    asStorage(e, path);
  }
}

/** Cuts a last line without its newline (left by a process killed mid-append) before appending more. */
export function cutTornTail(path: string): void {
  if (!existsSync(path)) return;
  const buf = readFileSync(path);
  if (buf.length === 0 || buf[buf.length - 1] === 0x0a) return;
  try {
    truncateSync(path, buf.lastIndexOf(0x0a) + 1);
  } catch (e) {
    asStorage(e, path);
  }
}

/** mkdir -p, a refusal as a {@link StorageError}. */
export function ensureDir(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (e) {
    asStorage(e, path);
  }
}
