import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { cpSync, existsSync, readFileSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../../src/models/backend/index.ts';
import { Decoder, loadDecoder, makeDecoderConfig, readSafetensors, saveDecoder, writeSafetensors, SafetensorsFile } from '../../../src/models/llm/index.ts';
import { expectClose } from '../compare.ts';
import { REPO, tempDir } from '../../helpers.ts';

const FIX = join(REPO, 'test/fixtures/llm');
const tmp = tempDir();
afterAll(() => tmp.cleanup());
beforeAll(async () => {
  await initBackend('cpu');
  await initBackend('wasm', { threads: 1 });
});

function expected(name: string) {
  const e = readSafetensors(join(FIX, `${name}.expected.safetensors`));
  const ids = e.get('input_ids')!;
  const [b, t] = ids.shape as [number, number];
  return { ids: tf.tensor2d(ids.data as Int32Array, [b, t], 'int32'), mask: { data: e.get('attention_mask')!.data, batch: b, length: t }, logits: e.get('logits')!.data as Float32Array, b, t };
}

/** Logits of real (unpadded) positions only: HF leaves padded rows unspecified. */
function realRows(logits: ArrayLike<number>, mask: ArrayLike<number>, v: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) for (let j = 0; j < v; j++) out.push(logits[i * v + j]!);
  return out;
}

function logitsOf(model: Decoder, name: string): { got: number[]; want: number[] } {
  const e = expected(name);
  const got = tf.tidy(() => model.logits(model.forward({ inputIds: e.ids, attentionMask: e.mask })).dataSync());
  e.ids.dispose();
  return { got: realRows(got, e.mask.data, model.config.vocabSize), want: realRows(e.logits, e.mask.data, model.config.vocabSize) };
}

describe('decoder parity with Hugging Face transformers (recorded logits)', () => {
  for (const [name, backend] of [['qwen2_tied', 'wasm'], ['qwen3_bf16', 'wasm'], ['llama_f16', 'wasm'], ['qwen3_bf16', 'cpu']] as const) {
    it(`${name} on ${backend}`, async () => {
      await tf.setBackend(backend);
      const model = loadDecoder(join(FIX, name));
      const { got, want } = logitsOf(model, name);
      expectClose(got, want, 1e-4, name);
      model.dispose();
    });
  }

  it('reads each family’s specifics from config.json', () => {
    const q2 = loadDecoder(join(FIX, 'qwen2_tied'));
    expect([q2.config.qkvBias, q2.config.oBias, q2.config.tieWordEmbeddings, q2.config.qkNorm]).toEqual([true, false, true, false]);
    expect(q2.params.has('lm_head.weight')).toBe(false);
    const q3 = loadDecoder(join(FIX, 'qwen3_bf16'));
    expect([q3.config.headDim, q3.config.numKvHeads, q3.config.qkNorm, q3.config.ropeTheta]).toEqual([24, 2, true, 1e6]);
    q2.dispose();
    q3.dispose();
  });
});

describe('decoder API', () => {
  it('logitsFor(vocabIds) equals the matching columns of the full logits; inputsEmbeds equals inputIds', async () => {
    await tf.setBackend('wasm');
    const model = loadDecoder(join(FIX, 'qwen3_bf16'));
    const e = expected('qwen3_bf16');
    const ids = [5, 0, 159, 42, 42];
    tf.tidy(() => {
      const h = model.forward({ inputIds: e.ids, attentionMask: e.mask });
      const full = model.logits(h).arraySync() as number[][][];
      const sub = model.logitsFor(h, ids).arraySync() as number[][][];
      expectClose(sub.flat(2), full.flatMap((r) => r.map((row) => ids.map((i) => row[i]!))).flat(), 1e-6, 'subset');
      const h2 = model.forward({ inputsEmbeds: model.embed(e.ids), attentionMask: e.mask });
      expectClose(h2.dataSync(), h.dataSync(), 1e-6, 'embeds');
    });
    expect(() => model.logitsFor(tf.zeros([1, 64]), [160])).toThrow(/vocabulary id 160 at index 0 outside \[0, 160\)/);
    e.ids.dispose();
    model.dispose();
  });

  it('padding does not change the logits of real tokens (right padding)', async () => {
    await tf.setBackend('wasm');
    const model = loadDecoder(join(FIX, 'llama_f16'));
    tf.tidy(() => {
      const short = model.logits(model.forward({ inputIds: [[3, 1, 4, 1]] })).dataSync();
      const padded = model.logits(model.forward({ inputIds: [[3, 1, 4, 1, 0, 0], [2, 7, 1, 8, 2, 8]], attentionMask: [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]] })).dataSync();
      expectClose(padded.slice(0, 4 * 96), short, 1e-5, 'right padding');
    });
    model.dispose();
  });

  it('saves a checkpoint that loads back identically (F32) and within bf16 rounding (BF16)', async () => {
    await tf.setBackend('wasm');
    const model = loadDecoder(join(FIX, 'qwen2_tied'));
    const out = join(tmp.path, 'saved');
    saveDecoder(model, out);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors']);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect([cfg['model_type'], cfg['tie_word_embeddings'], cfg['dtype']]).toEqual(['qwen2', true, 'float32']);
    const f = SafetensorsFile.open(join(out, 'model.safetensors'));
    expect(f.entry('model.layers.0.mlp.down_proj.weight').shape).toEqual([32, 64]); // HF [out, in]
    expect(f.has('lm_head.weight')).toBe(false);
    f.close();
    const back = loadDecoder(out);
    const a = logitsOf(model, 'qwen2_tied');
    const b = logitsOf(back, 'qwen2_tied');
    expect(b.got).toEqual(a.got);
    saveDecoder(model, join(tmp.path, 'bf16'), { dtype: 'BF16' });
    const half = loadDecoder(join(tmp.path, 'bf16'));
    expectClose(logitsOf(half, 'qwen2_tied').got, a.got, 0.05, 'bf16');
    for (const m of [model, back, half]) m.dispose();
  });

  it('random init is deterministic for a seed', () => {
    const config = makeDecoderConfig({ modelType: 'llama', vocabSize: 20, hiddenSize: 8, intermediateSize: 16, numLayers: 1, numHeads: 2 });
    const a = Decoder.random(config, 3);
    const b = Decoder.random(config, 3);
    const c = Decoder.random(config, 4);
    const w = (m: Decoder) => Array.from(m.param('model.layers.0.self_attn.q_proj.weight').dataSync());
    expect(w(a)).toEqual(w(b));
    expect(w(a)).not.toEqual(w(c));
    for (const m of [a, b, c]) m.dispose();
  });
});

describe('checkpoint errors name the file and the tensor, and allocate nothing', () => {
  function copyFixture(name: string, to: string): string {
    const dir = join(tmp.path, to);
    cpSync(join(FIX, name), dir, { recursive: true });
    return dir;
  }

  it('missing tensor', () => {
    const dir = copyFixture('llama_f16', 'missing');
    const all = readSafetensors(join(dir, 'model.safetensors'));
    all.delete('model.layers.1.mlp.up_proj.weight');
    const tensors = Object.fromEntries([...all].map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }]));
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
    const before = tf.memory().numTensors;
    expect(() => loadDecoder(dir)).toThrow(/model\.safetensors, key 'model\.layers\.1\.mlp\.up_proj\.weight': missing tensor/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('misshapen tensor (config disagrees with the weights)', () => {
    const dir = copyFixture('qwen3_bf16', 'shape');
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    cfg['intermediate_size'] = 100;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    expect(() => loadDecoder(dir)).toThrow(/model-0000\d-of-00004\.safetensors, key 'model\.layers\.0\.mlp\.gate_proj\.weight': shape \[96, 64\] does not match config\.json, expected \[100, 64\]/);
  });

  it('missing shard, missing config, unsupported model, no weights', () => {
    const dir = copyFixture('qwen3_bf16', 'shard');
    rmSync(join(dir, 'model-00004-of-00004.safetensors'));
    expect(() => loadDecoder(dir)).toThrow(/model-00004-of-00004\.safetensors: cannot open safetensors file/);
    expect(() => loadDecoder(join(tmp.path, 'nowhere'))).toThrow(/nowhere: checkpoint folder not found/);
    const noCfg = copyFixture('llama_f16', 'nocfg');
    rmSync(join(noCfg, 'config.json'));
    expect(() => loadDecoder(noCfg)).toThrow(/config\.json: file not found/);
    const gpt = copyFixture('llama_f16', 'gpt');
    writeFileSync(join(gpt, 'config.json'), JSON.stringify({ model_type: 'gpt2' }));
    expect(() => loadDecoder(gpt)).toThrow(/config\.json, key 'model_type': unsupported model_type "gpt2"/);
    const bad = copyFixture('llama_f16', 'badcfg');
    const cfg = JSON.parse(readFileSync(join(bad, 'config.json'), 'utf8')) as Record<string, unknown>;
    cfg['num_key_value_heads'] = 3;
    writeFileSync(join(bad, 'config.json'), JSON.stringify(cfg));
    expect(() => loadDecoder(bad)).toThrow(/key 'num_key_value_heads': num_attention_heads 4 is not a multiple of num_key_value_heads 3/);
    const empty = copyFixture('llama_f16', 'empty');
    rmSync(join(empty, 'model.safetensors'));
    expect(() => loadDecoder(empty)).toThrow(/empty: no weights: expected model\.safetensors or model\.safetensors\.index\.json/);
    expect(existsSync(join(empty, 'config.json'))).toBe(true);
  });
});
