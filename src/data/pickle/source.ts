/**
 * Sequential byte access to a pickle (or .npy) held in memory or in a file.
 *
 * Files are read through a sliding window with positioned reads rather than readFileSync:
 * MMSA's MOSEI pickle is several GB (over Node's 2 GiB readFileSync limit), and most of it
 * is arrays an importer reads row by row or not at all (BERT text features). Payloads of
 * `lazyBytes` or more are therefore not read during unpickling; they become a `FileSpan`
 * that is read, with one copy, when someone asks for it.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Thrown when the data ends before an opcode's operand; the VM adds the context. */
export class Truncated extends Error {
  constructor(readonly needed: number, readonly available: number) {
    super(`needs ${needed} bytes, ${available} left`);
  }
}

const WINDOW = 1 << 20;

export class ByteSource {
  readonly size: number;
  pos = 0;
  private buf: Uint8Array;
  private bufStart = 0;
  private view: DataView;
  private fd: number | null;

  private constructor(size: number, buf: Uint8Array, fd: number | null) {
    this.size = size;
    this.buf = buf;
    this.fd = fd;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    if (fd !== null) this.bufStart = -1;
  }

  static fromBytes(bytes: Uint8Array): ByteSource {
    // A Node Buffer's slice() is a view, not a copy: keep to plain Uint8Array semantics.
    return new ByteSource(bytes.byteLength, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), null);
  }

  /** Opens a file for windowed reading; call `close()` when every FileSpan has been read. */
  static fromFile(path: string): ByteSource {
    const fd = openSync(path, 'r');
    return new ByteSource(fstatSync(fd).size, new Uint8Array(0), fd);
  }

  get inMemory(): boolean {
    return this.fd === null;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.buf = new Uint8Array(0);
  }

  /** Makes bytes [pos, pos+n) addressable; returns the index of `pos` in `buf`. */
  private need(n: number): number {
    if (this.pos + n > this.size) throw new Truncated(n, this.size - this.pos);
    if (this.fd === null) return this.pos;
    const local = this.pos - this.bufStart;
    if (this.bufStart >= 0 && local >= 0 && local + n <= this.buf.byteLength) return local;
    const len = Math.min(Math.max(WINDOW, n), this.size - this.pos);
    if (this.buf.byteLength < len) this.buf = new Uint8Array(Math.max(len, WINDOW));
    readFully(this.fd, this.buf, len, this.pos);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.bufStart = this.pos;
    return 0;
  }

  u8(): number {
    const i = this.need(1);
    this.pos += 1;
    return this.buf[i]!;
  }

  u16(): number {
    const i = this.need(2);
    this.pos += 2;
    return this.view.getUint16(i, true);
  }

  i32(): number {
    const i = this.need(4);
    this.pos += 4;
    return this.view.getInt32(i, true);
  }

  u32(): number {
    const i = this.need(4);
    this.pos += 4;
    return this.view.getUint32(i, true);
  }

  /** Little-endian u64 as a number; lengths beyond 2^53 cannot be real files. */
  u64(): number {
    const i = this.need(8);
    this.pos += 8;
    return this.view.getUint32(i, true) + this.view.getUint32(i + 4, true) * 2 ** 32;
  }

  f64be(): number {
    const i = this.need(8);
    this.pos += 8;
    return this.view.getFloat64(i, false);
  }

  /** The next n bytes: a view into memory, or a private copy when reading a file. */
  take(n: number): Uint8Array {
    const i = this.need(n);
    this.pos += n;
    return this.fd === null ? this.buf.subarray(i, i + n) : this.buf.slice(i, i + n);
  }

  /** Skips n bytes and returns where they are, to be read later. */
  span(n: number): FileSpan {
    if (this.pos + n > this.size) throw new Truncated(n, this.size - this.pos);
    const s = new FileSpan(this, this.pos, n);
    this.pos += n;
    return s;
  }

  /** Bytes up to (not including) the next newline, which is consumed. */
  line(): Uint8Array {
    for (let want = 64; ; want *= 4) {
      const avail = Math.min(want, this.size - this.pos);
      if (avail === 0) throw new Truncated(1, 0);
      const i = this.need(avail);
      const nl = this.buf.subarray(i, i + avail).indexOf(0x0a);
      if (nl >= 0) {
        const out = this.take(nl);
        this.pos += 1;
        return out;
      }
      if (avail === this.size - this.pos) throw new Truncated(avail + 1, avail);
    }
  }

  /** Bytes [offset, offset+len): a view in memory, a fresh (aligned) buffer from a file. */
  readAt(offset: number, len: number): Uint8Array {
    if (offset < 0 || offset + len > this.size) throw new Truncated(len, Math.max(0, this.size - offset));
    if (this.fd === null) return this.buf.subarray(offset, offset + len);
    const out = new Uint8Array(len);
    readFully(this.fd, out, len, offset);
    return out;
  }
}

function readFully(fd: number, into: Uint8Array, len: number, position: number): void {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, into, done, len - done, position + done);
    if (n === 0) throw new Truncated(len, done);
    done += n;
  }
}

/** A byte range of the source, read on demand. */
export class FileSpan {
  constructor(private readonly src: ByteSource, readonly offset: number, readonly length: number) {}

  /** Reads `len` bytes starting `start` bytes into the span. */
  read(start = 0, len = this.length - start): Uint8Array {
    if (start < 0 || start + len > this.length) throw new RangeError(`span read [${start}, ${start + len}) outside 0..${this.length}`);
    return this.src.readAt(this.offset + start, len);
  }

  /** Like read(), but the caller may modify the bytes (a copy only when the source is in memory). */
  readOwned(): Uint8Array {
    const b = this.read();
    return this.src.inMemory ? b.slice() : b;
  }
}
