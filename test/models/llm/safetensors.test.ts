import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, readSafetensors, writeSafetensors, f32ToBf16, f32ToF16, bf16ToF32, f16ToF32 } from '../../../src/models/llm/safetensors.ts';
import { REPO, tempDir } from '../../helpers.ts';

const FIX = join(REPO, 'test/fixtures/llm');
const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('safetensors', () => {
  it('reads files written by Python safetensors: F32, BF16 shards, F16, I64', () => {
    const exp = readSafetensors(join(FIX, 'qwen2_tied.expected.safetensors'));
    expect(exp.get('input_ids')!.dtype).toBe('I64');
    expect(exp.get('input_ids')!.shape).toEqual([2, 10]);
    expect(Array.from(exp.get('attention_mask')!.data)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
    const shard = SafetensorsFile.open(join(FIX, 'qwen3_bf16/model-00001-of-00004.safetensors'));
    const e = shard.entry('model.embed_tokens.weight');
    expect(e.dtype).toBe('BF16');
    expect(e.shape).toEqual([160, 64]);
    const v = shard.float32('model.embed_tokens.weight');
    // bf16 values are float32 with the low 16 bits zero.
    expect(new Uint32Array(v.buffer).every((b) => (b & 0xffff) === 0)).toBe(true);
    shard.close();
    const f16 = SafetensorsFile.open(join(FIX, 'llama_f16/model.safetensors'));
    expect(f16.entry('model.norm.weight').dtype).toBe('F16');
    expect(f16.float32('model.norm.weight').every((x) => Number.isFinite(x) && x > 0)).toBe(true);
    f16.close();
  });

  it('round-trips F32, F16, BF16, I32, I64 with metadata, byte-identical layout to Python (sorted keys, 8-byte aligned header)', () => {
    const path = join(tmp.path, 'rt.safetensors');
    const vals = Float32Array.from([0, 1, -2.5, 65504, 1e-7, -0.1, 3.140625]);
    writeSafetensors(path, {
      b: { dtype: 'F16', shape: [7], data: vals },
      a: { dtype: 'F32', shape: [7, 1], data: vals },
      c: { dtype: 'BF16', shape: [7], data: vals },
      d: { dtype: 'I64', shape: [2], data: [-3, 2147483647] },
      e: { dtype: 'I32', shape: [1, 2], data: Int32Array.from([7, -8]) },
    }, { format: 'pt' });
    const buf = readFileSync(path);
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect(Object.keys(JSON.parse(buf.subarray(8, 8 + n).toString()))).toEqual(['__metadata__', 'a', 'b', 'c', 'd', 'e']);
    const r = readSafetensors(path);
    expect(Array.from(r.get('a')!.data)).toEqual(Array.from(vals));
    expect(Array.from(r.get('b')!.data)).toEqual(Array.from(f16ToF32(Uint16Array.from(vals, f32ToF16))));
    expect(Array.from(r.get('c')!.data)).toEqual(Array.from(bf16ToF32(Uint16Array.from(vals, f32ToBf16))));
    expect(Array.from(r.get('d')!.data)).toEqual([-3, 2147483647]);
    expect(r.get('e')!.shape).toEqual([1, 2]);
    expect(SafetensorsFile.open(path).metadata).toEqual({ format: 'pt' });
  });

  it('converts half precision with round-to-nearest-even like torch', () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(70000)).toBe(0x7c00);
    expect(f32ToF16(2 ** -24)).toBe(0x0001);
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(Array.from(f16ToF32(Uint16Array.from([0x0001, 0xbc00, 0x7c00])))).toEqual([2 ** -24, -1, Infinity]);
  });

  it('bad files give errors naming the file and the tensor, and a failed write leaves nothing', () => {
    const good = join(tmp.path, 'good.safetensors');
    writeSafetensors(good, { w: { dtype: 'F32', shape: [4], data: [1, 2, 3, 4] } });
    const bytes = readFileSync(good);
    const trunc = join(tmp.path, 'trunc.safetensors');
    writeFileSync(trunc, bytes.subarray(0, bytes.length - 4));
    expect(() => SafetensorsFile.open(trunc)).toThrow(/trunc\.safetensors, key 'w': data_offsets end 16 beyond the 12-byte data section/);
    const badJson = join(tmp.path, 'json.safetensors');
    const hdr = Buffer.from('{"w": [');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hdr.length));
    writeFileSync(badJson, Buffer.concat([len, hdr]));
    expect(() => SafetensorsFile.open(badJson)).toThrow(/json\.safetensors: safetensors header is not valid JSON/);
    const mis = join(tmp.path, 'mis.safetensors');
    const h2 = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }));
    len.writeBigUInt64LE(BigInt(h2.length));
    writeFileSync(mis, Buffer.concat([len, h2, Buffer.alloc(16)]));
    expect(() => SafetensorsFile.open(mis)).toThrow(/mis\.safetensors, key 'w': data_offsets \[0, 16\] hold 16 bytes, shape \[3\] of F32 needs 12/);
    const f = SafetensorsFile.open(good);
    expect(() => f.float32('nope')).toThrow(/good\.safetensors, key 'nope': tensor not found/);
    f.close();
    const out = join(tmp.path, 'partial.safetensors');
    expect(() => writeSafetensors(out, { x: { dtype: 'F32', shape: [3], data: [1, 2] } })).toThrow(/key 'x': tensor has 2 values but shape \[3\] needs 3/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp.path).some((n) => n.includes('.tmp-'))).toBe(false);
  });
});
