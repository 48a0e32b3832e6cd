/**
 * A pickle virtual machine (protocols 0-5) that builds plain TypeScript values.
 *
 * Why not the `pickleparser` package: it decodes negative LONG1 integers as unsigned,
 * stores dict keys on plain objects (a '__proto__' key replaces the prototype), turns any
 * unknown class into an empty placeholder instead of failing, reports errors without the
 * opcode or byte offset, and needs the whole file in one buffer (MOSEI's MMSA pickle is
 * larger than Node's 2 GiB readFileSync limit). numpy reconstruction it lacks entirely.
 */
import { Buffer } from 'node:buffer';
import { EgmfError } from '../../errors.ts';
import { describeOpcode } from './opcodes.ts';
import { resolveGlobal } from './registry.ts';
import { ByteSource, FileSpan, Truncated } from './source.ts';
import { isBuildable, LargeText, PickleFault, PyGlobal, pyTypeName } from './values.ts';
import type { PyDict, PyValue } from './values.ts';

export interface UnpickleOptions {
  /** Named in every error. */
  file: string;
  /** bytes payloads of at least this many bytes stay in the file until read (default 1 MiB). */
  lazyBytes?: number;
  /**
   * str payloads of at least this many bytes stay in the file as LargeText (default 64 MiB):
   * only protocol-2 array data (`_codecs.encode`) is that big, and it is converted without
   * ever becoming a JS string.
   */
  lazyText?: number;
  /** Out-of-band buffers for NEXT_BUFFER (protocol 5 with a buffer_callback). */
  buffers?: Uint8Array[];
}

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

export function unpickle(src: ByteSource, opts: UnpickleOptions): PyValue {
  const lazy = opts.lazyBytes ?? 1 << 20;
  const lazyText = opts.lazyText ?? 1 << 26;
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let nextBuffer = 0;
  let op = -1;
  let at = 0;

  const pop = (): PyValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) throw new PickleFault('stack underflow');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0) throw new PickleFault('stack underflow');
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw new PickleFault('no MARK on the stack');
    return stack.splice(m);
  };
  const bytes = (n: number): Uint8Array | FileSpan => (n >= lazy ? src.span(n) : src.take(n));
  const text = (n: number): string | LargeText => (n >= lazyText ? new LargeText(src.span(n)) : utf8.decode(src.take(n)));
  const lineText = (): string => latin1.decode(src.line());
  const memoGet = (k: number): PyValue => {
    if (!memo.has(k)) throw new PickleFault(`memo entry ${k} was never stored`);
    return memo.get(k)!;
  };
  const call = (f: PyValue, args: PyValue): PyValue => {
    if (!(f instanceof PyGlobal) || f.impl.call === undefined) throw new PickleFault(`${pyTypeName(f)} is not callable here`);
    if (!Array.isArray(args)) throw new PickleFault(`call arguments are ${pyTypeName(args)}, not a tuple`);
    return f.impl.call(args);
  };
  const dictOf = (v: PyValue): PyDict => {
    if (!(v instanceof Map)) throw new PickleFault(`expected a dict, got ${pyTypeName(v)}`);
    return v;
  };
  const listOf = (v: PyValue): PyValue[] => {
    if (!Array.isArray(v)) throw new PickleFault(`expected a list, got ${pyTypeName(v)}`);
    return v;
  };

  try {
    for (;;) {
      at = src.pos;
      if (at >= src.size) throw new Truncated(1, 0);
      op = src.u8();
      switch (op) {
        case 0x80: { // PROTO
          const v = src.u8();
          if (v > 5) throw new PickleFault(`unsupported pickle protocol ${v}`);
          break;
        }
        case 0x95: src.u64(); break; // FRAME: frames only batch small reads
        case 0x2e: { // STOP
          const v = pop();
          return v;
        }
        case 0x28: marks.push(stack.length); break;
        case 0x30: pop(); break;
        case 0x31: popMark(); break;
        case 0x32: stack.push(top()); break;
        case 0x4e: stack.push(null); break;
        case 0x88: stack.push(true); break;
        case 0x89: stack.push(false); break;
        case 0x49: { // INT
          const s = lineText();
          stack.push(s === '01' ? true : s === '00' ? false : parseInt10(s));
          break;
        }
        case 0x4c: stack.push(parseInt10(lineText().replace(/L$/, ''))); break;
        case 0x4a: stack.push(src.i32()); break;
        case 0x4b: stack.push(src.u8()); break;
        case 0x4d: stack.push(src.u16()); break;
        case 0x8a: stack.push(twosComplement(src.take(src.u8()))); break;
        case 0x8b: {
          const n = src.i32();
          if (n < 0) throw new PickleFault('negative LONG4 length');
          stack.push(twosComplement(src.take(n)));
          break;
        }
        case 0x46: stack.push(parseFloatLine(lineText())); break;
        case 0x47: stack.push(src.f64be()); break;
        case 0x53: stack.push(unquote(lineText())); break;
        case 0x54: { // BINSTRING: Python 2 str, read as latin-1 like encoding='latin1'
          const n = src.i32();
          if (n < 0) throw new PickleFault('negative BINSTRING length');
          stack.push(n >= lazy ? src.span(n) : latin1Str(src.take(n)));
          break;
        }
        case 0x55: stack.push(latin1Str(src.take(src.u8()))); break;
        case 0x56: stack.push(rawUnicodeEscape(src.line())); break;
        case 0x58: stack.push(text(src.u32())); break;
        case 0x8c: stack.push(text(src.u8())); break;
        case 0x8d: stack.push(text(src.u64())); break;
        case 0x42: stack.push(bytes(src.u32())); break;
        case 0x43: stack.push(bytes(src.u8())); break;
        case 0x8e: case 0x96: stack.push(bytes(src.u64())); break;
        case 0x97: { // NEXT_BUFFER
          const b = opts.buffers?.[nextBuffer++];
          if (b === undefined) throw new PickleFault('out-of-band buffer requested: the pickle was written with a buffer_callback and its buffers are not in the file');
          stack.push(b);
          break;
        }
        case 0x98: break; // READONLY_BUFFER: read-only-ness does not matter here
        case 0x29: stack.push([]); break;
        case 0x74: stack.push(popMark()); break;
        case 0x85: stack.push([pop()]); break;
        case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; }
        case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; }
        case 0x5d: stack.push([]); break;
        case 0x6c: stack.push(popMark()); break;
        case 0x61: { const v = pop(); listOf(top()).push(v); break; }
        case 0x65: { const items = popMark(); const l = listOf(top()); for (const v of items) l.push(v); break; }
        case 0x7d: stack.push(new Map()); break;
        case 0x64: { // DICT
          const items = popMark();
          const d: PyDict = new Map();
          for (let k = 0; k + 1 < items.length; k += 2) d.set(items[k]!, items[k + 1]!);
          stack.push(d);
          break;
        }
        case 0x73: { const v = pop(); const k = pop(); dictOf(top()).set(k, v); break; }
        case 0x75: {
          const items = popMark();
          const d = dictOf(top());
          for (let k = 0; k + 1 < items.length; k += 2) d.set(items[k]!, items[k + 1]!);
          break;
        }
        case 0x8f: stack.push(new Set()); break;
        case 0x90: {
          const items = popMark();
          const s = top();
          if (!(s instanceof Set)) throw new PickleFault(`ADDITEMS on ${pyTypeName(s)}`);
          for (const v of items) s.add(v);
          break;
        }
        case 0x91: stack.push(new Set(popMark())); break;
        case 0x70: memo.set(parseInt10Number(lineText()), top()); break;
        case 0x71: memo.set(src.u8(), top()); break;
        case 0x72: memo.set(src.u32(), top()); break;
        case 0x94: memo.set(memo.size, top()); break;
        case 0x67: stack.push(memoGet(parseInt10Number(lineText()))); break;
        case 0x68: stack.push(memoGet(src.u8())); break;
        case 0x6a: stack.push(memoGet(src.u32())); break;
        case 0x63: { // GLOBAL
          const module = lineText();
          stack.push(resolveGlobal(module, lineText()));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = pop();
          const module = pop();
          if (typeof module !== 'string' || typeof name !== 'string') throw new PickleFault('STACK_GLOBAL needs two str');
          stack.push(resolveGlobal(module, name));
          break;
        }
        case 0x52: { const args = pop(); stack.push(call(pop(), args)); break; }
        case 0x81: { const args = pop(); stack.push(call(pop(), args)); break; }
        case 0x92: { pop(); const args = pop(); stack.push(call(pop(), args)); break; }
        case 0x69: { // INST
          const module = lineText();
          const cls = resolveGlobal(module, lineText());
          stack.push(call(cls, popMark()));
          break;
        }
        case 0x6f: { const items = popMark(); stack.push(call(items[0] ?? null, items.slice(1))); break; }
        case 0x62: { // BUILD
          const state = pop();
          const obj = top();
          if (isBuildable(obj)) obj.setState(state);
          else if (obj instanceof Map && state instanceof Map) for (const [k, v] of state) obj.set(k, v);
          else throw new PickleFault(`cannot restore the state of ${pyTypeName(obj)}`);
          break;
        }
        default:
          throw new UnsupportedOpcode(UNSUPPORTED_WHY[op] ?? (describeOpcode(op).includes('not a pickle') ? 'the file is corrupted or not a pickle' : 'not implemented'));
      }
    }
  } catch (e) {
    const where = `opcode ${describeOpcode(op)} at byte ${at}`;
    const key = keyPath(stack, marks);
    if (e instanceof Truncated) {
      throw new EgmfError(`truncated pickle: ${op < 0 || at >= src.size ? 'no STOP opcode before the end' : where} (file has ${src.size} bytes)`, { file: opts.file, key });
    }
    if (e instanceof UnsupportedOpcode) throw new EgmfError(`unsupported ${where}: ${e.message}`, { file: opts.file, key }, { cause: e });
    if (e instanceof PickleFault) throw new EgmfError(`${e.message} (${where})`, { file: opts.file, key }, { cause: e });
    throw e;
  }
}

class UnsupportedOpcode extends PickleFault {}

const UNSUPPORTED_WHY: Record<number, string> = {
  0x50: 'persistent ids can only be resolved by the program that wrote the pickle (torch.save files are not MMSA pickles)',
  0x51: 'persistent ids can only be resolved by the program that wrote the pickle (torch.save files are not MMSA pickles)',
  0x82: 'copyreg extension codes are not supported',
  0x83: 'copyreg extension codes are not supported',
  0x84: 'copyreg extension codes are not supported',
};

/** Best-effort dotted path of the dict keys being filled when an error happens. */
function keyPath(stack: PyValue[], marks: number[]): string | undefined {
  const parts: string[] = [];
  let finishedUntil = -1; // stack[..finishedUntil] are complete pairs of a SETITEMS batch
  for (let i = 0; i + 1 < stack.length; i++) {
    if (!(stack[i] instanceof Map) || i <= finishedUntil) continue;
    const k = marks.indexOf(i + 1);
    let key: PyValue | undefined = stack[i + 1];
    if (k >= 0) { // SETITEMS batch: its last key is the one being filled
      const end = k + 1 < marks.length ? marks[k + 1]! : stack.length;
      const seg = stack.slice(i + 1, end);
      key = seg.length % 2 === 1 ? seg[seg.length - 1] : seg[seg.length - 2];
      finishedUntil = seg.length % 2 === 1 ? end - 2 : end - 3;
    }
    if (typeof key === 'string' || typeof key === 'number') parts.push(String(key));
  }
  return parts.length > 0 ? parts.join('.') : undefined;
}

function latin1Str(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

function parseInt10(s: string): number | bigint {
  if (!/^[+-]?\d+$/.test(s.trim())) throw new PickleFault(`bad integer literal '${s}'`);
  const b = BigInt(s.trim());
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

function parseInt10Number(s: string): number {
  const v = parseInt10(s);
  if (typeof v !== 'number') throw new PickleFault(`memo index ${s} too large`);
  return v;
}

function parseFloatLine(s: string): number {
  const t = s.trim();
  if (t === 'inf') return Infinity;
  if (t === '-inf') return -Infinity;
  if (t === 'nan') return NaN;
  const v = Number(t);
  if (Number.isNaN(v)) throw new PickleFault(`bad float literal '${s}'`);
  return v;
}

/** Little-endian two's complement (LONG1/LONG4). */
function twosComplement(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let k = b.length - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[k]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Protocol-0 STRING: a quoted Python literal with backslash escapes, bytes read as latin-1. */
function unquote(s: string): string {
  const q = s[0];
  if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q) throw new PickleFault('STRING operand is not quoted');
  const body = s.slice(1, -1);
  const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' };
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8) & 0xff);
    return simple[e] ?? `\\${e}`;
  });
}

/** Protocol-0 UNICODE: raw-unicode-escape (latin-1 bytes plus \uXXXX / \UXXXXXXXX). */
function rawUnicodeEscape(b: Uint8Array): string {
  return latin1Str(b).replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, u: string | undefined, U: string | undefined) =>
    String.fromCodePoint(parseInt((u ?? U)!, 16)));
}
