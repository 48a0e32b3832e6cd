import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { initBackend } from '../../../src/models/backend/index.ts';
import { Decoder, LoraModel, loadAdapter, loadDecoder, makeDecoderConfig, matchesTarget, readSafetensors, saveAdapter, saveDecoder, SafetensorsFile, writeSafetensors, type LoraConfig } from '../../../src/models/llm/index.ts';
import { softmaxCrossEntropy } from '../../../src/models/ops.ts';
import { expectClose } from '../compare.ts';
import { REPO, tempDir } from '../../helpers.ts';

const FIX = join(REPO, 'test/fixtures/llm');
const BASE = join(FIX, 'qwen3_bf16');
const tmp = tempDir();
afterAll(() => tmp.cleanup());
beforeAll(async () => {
  await initBackend('cpu');
  await initBackend('wasm', { threads: 1 });
});

const ALL: LoraConfig = { r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };

const input = (() => {
  const e = readSafetensors(join(FIX, 'qwen3_lora.expected.safetensors'));
  const ids = e.get('input_ids')!;
  const [b, t] = ids.shape as [number, number];
  return { ids: Array.from({ length: b }, (_, i) => Array.from(ids.data.slice(i * t, (i + 1) * t))), mask: { data: e.get('attention_mask')!.data, batch: b, length: t }, logits: e.get('logits')!.data };
})();

function logits(model: Decoder): Float32Array {
  return tf.tidy(() => model.logits(model.forward({ inputIds: input.ids, attentionMask: input.mask })).dataSync() as Float32Array);
}

function realRows(l: ArrayLike<number>, v = 160): number[] {
  const out: number[] = [];
  for (let i = 0; i < input.mask.data.length; i++) if (input.mask.data[i] !== 0) for (let j = 0; j < v; j++) out.push(l[i * v + j]!);
  return out;
}

/** A few Adam steps on the LoRA weights only; returns the losses. */
function train(model: Decoder, lora: LoraModel, steps: number, opt = tf.train.adam(0.05)): number[] {
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const loss = opt.minimize(() => softmaxCrossEntropy(model.logitsFor(model.forward({ inputIds: input.ids, attentionMask: input.mask, training: true }), [1, 2, 3, 4]),
      Array.from({ length: 20 }, (_, i) => i % 4), input.mask.data), true, lora.trainableVariables())!;
    losses.push(loss.dataSync()[0]!);
    loss.dispose();
  }
  return losses;
}

describe('LoRA', () => {
  it('a fresh adapter changes nothing; only A and B are trainable; A is kaiming-uniform, B zero', async () => {
    await tf.setBackend('wasm');
    const model = loadDecoder(BASE);
    const before = logits(model);
    const lora = new LoraModel(model);
    const adapter = lora.addAdapter('default', ALL, { seed: 1 });
    expect(Array.from(logits(model))).toEqual(Array.from(before));
    expect(adapter.scaling).toBe(2);
    expect(lora.trainableVariables()).toHaveLength(2 * 7 * 2);
    expect(model.trainableVariables()).toHaveLength(0);
    const q = adapter.modules.get('model.layers.0.self_attn.q_proj')!;
    expect(q.A.shape).toEqual([64, 4]);
    expect(q.B.shape).toEqual([4, 96]);
    const a = q.A.dataSync();
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(1 / 8);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.1);
    expect(q.B.dataSync().every((x) => x === 0)).toBe(true);
    const losses = train(model, lora, 3);
    expect(losses[2]!).toBeLessThan(losses[0]!);
    lora.dispose();
    model.dispose();
  });

  it('loads a PEFT adapter and reproduces PEFT’s logits', async () => {
    await tf.setBackend('wasm');
    const model = loadDecoder(BASE);
    const lora = new LoraModel(model);
    loadAdapter(lora, join(FIX, 'qwen3_lora'));
    expect(lora.adapter('default').modules.size).toBe(14);
    expectClose(realRows(logits(model)), realRows(input.logits), 1e-4, 'peft logits');
    lora.dispose();
    model.dispose();
  });

  it('merge folds the adapter into the base weights; unmerge restores them', async () => {
    await tf.setBackend('wasm');
    const model = loadDecoder(BASE);
    const w0 = model.param('model.layers.1.mlp.down_proj.weight').dataSync().slice();
    const lora = new LoraModel(model);
    loadAdapter(lora, join(FIX, 'qwen3_lora'));
    const adapted = logits(model);
    lora.merge();
    expect(lora.isMerged).toBe(true);
    expectClose(logits(model), adapted, 1e-5, 'merged');
    lora.unmerge();
    expectClose(model.param('model.layers.1.mlp.down_proj.weight').dataSync(), w0, 1e-6, 'unmerged weights');
    expectClose(logits(model), adapted, 1e-5, 'unmerged');
    lora.dispose();
    model.dispose();
  });

  it('saves in PEFT’s format ([r, in] / [out, r] keys) and loads back identically', async () => {
    await tf.setBackend('wasm');
    const model = loadDecoder(BASE);
    const lora = new LoraModel(model);
    lora.addAdapter('default', { ...ALL, dropout: 0.1, baseModelNameOrPath: BASE }, { seed: 2 });
    train(model, lora, 2);
    const trained = logits(model);
    const dir = join(tmp.path, 'adapter');
    saveAdapter(lora, dir);
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, lora_dropout: 0.1, bias: 'none', base_model_name_or_path: BASE });
    const f = SafetensorsFile.open(join(dir, 'adapter_model.safetensors'));
    expect(f.entry('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight').shape).toEqual([4, 64]);
    expect(f.entry('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight').shape).toEqual([96, 4]);
    expect(f.entries.size).toBe(28);
    f.close();
    const model2 = loadDecoder(BASE);
    const lora2 = new LoraModel(model2);
    loadAdapter(lora2, dir);
    expect(Array.from(logits(model2))).toEqual(Array.from(trained));
    for (const x of [lora, lora2, model, model2]) x.dispose();
  });

  it('transformers + PEFT load a checkpoint and an adapter saved here, with the same logits (needs /work/pyhf or EGMF_HF_PYTHON)', async (ctx) => {
    const python = process.env['EGMF_HF_PYTHON'] ?? '/work/pyhf/bin/python';
    if (!existsSync(python)) ctx.skip();
    await tf.setBackend('wasm');
    // One Python run checks both formats: the adapted logits depend on the base weights too.
    const config = makeDecoderConfig({ modelType: 'qwen3', vocabSize: 160, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 12, ropeTheta: 1e6 });
    const model = Decoder.random(config, 9, { std: 0.2 });
    const base = join(tmp.path, 'base-for-hf');
    saveDecoder(model, base);
    const lora = new LoraModel(model);
    lora.addAdapter('default', { ...ALL, targetModules: ['q_proj', 'v_proj', 'down_proj'], alpha: 16, baseModelNameOrPath: base }, { seed: 3 });
    for (const w of lora.adapter('default').modules.values()) w.B.assign(tf.randomUniform(w.B.shape, -0.3, 0.3, 'float32', 5));
    const ours = logits(model);
    const dir = join(tmp.path, 'for-peft');
    saveAdapter(lora, dir);
    const r = spawnSync(python, [join(REPO, 'scripts/make_llm_fixtures.py'), 'check-adapter', dir, '--inputs', join(FIX, 'qwen3_lora.expected.safetensors')], { encoding: 'utf8', timeout: 150_000 });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; problems: string[]; logits: number[]; scaling: number };
    expect(out.problems).toEqual([]);
    expect(out.scaling).toBe(4);
    expectClose(realRows(out.logits), realRows(ours), 1e-4, 'peft vs ours');
    lora.dispose();
    model.dispose();
  }, 180_000);

  it('has no tensor leaks: live tensors after 10 and 50 training steps are equal', async () => {
    await tf.setBackend('wasm');
    const config = makeDecoderConfig({ modelType: 'qwen2', vocabSize: 160, hiddenSize: 16, intermediateSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2 });
    const model = Decoder.random(config, 1);
    const lora = new LoraModel(model);
    lora.addAdapter('default', { ...ALL, dropout: 0.1 }, { seed: 1 });
    const opt = tf.train.adam(0.01);
    train(model, lora, 10, opt);
    const after10 = tf.memory().numTensors;
    const losses = train(model, lora, 40, opt);
    expect(tf.memory().numTensors).toBe(after10);
    expect(losses[39]!).toBeLessThan(losses[0]!);
    opt.dispose();
    lora.dispose();
    model.dispose();
  });

  it('dropout masks depend only on the run seed and the step (setStep), so resumed runs repeat them', async () => {
    await tf.setBackend('wasm');
    const model = loadDecoder(BASE);
    const lora = new LoraModel(model);
    lora.addAdapter('default', { ...ALL, dropout: 0.5 }, { seed: 4 });
    for (const w of lora.adapter('default').modules.values()) w.B.assign(tf.fill(w.B.shape, 0.1));
    const fwd = () => tf.tidy(() => model.forward({ inputIds: input.ids, attentionMask: input.mask, training: true }).dataSync());
    lora.setStep(7);
    const a = fwd();
    lora.setStep(8);
    const b = fwd();
    lora.setStep(7);
    const c = fwd();
    expect(Array.from(c)).toEqual(Array.from(a));
    expect(Array.from(b)).not.toEqual(Array.from(a));
    const firstA = new Map([...lora.adapter('default').modules].map(([m, w]) => [m, w.A.clone()]));
    lora.dispose();
    // Another run seed, the same A and B: other masks at the same step.
    const other = new LoraModel(model);
    other.addAdapter('default', { ...ALL, dropout: 0.5 }, { seed: 5 });
    for (const [m, w] of other.adapter('default').modules) {
      w.A.assign(firstA.get(m)!);
      w.B.assign(tf.fill(w.B.shape, 0.1));
    }
    other.setStep(7);
    expect(Array.from(fwd())).not.toEqual(Array.from(a));
    other.dispose();
    model.dispose();
  });

  it('target patterns follow PEFT: suffix names, a full-match regex, all-linear', () => {
    expect(matchesTarget('model.layers.0.self_attn.q_proj', ['q_proj'])).toBe(true);
    expect(matchesTarget('model.layers.0.self_attn.q_proj', ['proj'])).toBe(false);
    expect(matchesTarget('model.layers.1.mlp.up_proj', '.*\\.1\\..*(up|down)_proj')).toBe(true);
    expect(matchesTarget('model.layers.0.mlp.up_proj', '.*\\.1\\..*(up|down)_proj')).toBe(false);
    expect(matchesTarget('model.layers.0.mlp.up_proj', 'all-linear')).toBe(true);
  });

  it('bad adapters and configs give errors naming the file and key, and leave no adapter behind', async () => {
    await tf.setBackend('wasm');
    const model = loadDecoder(BASE);
    const lora = new LoraModel(model);
    expect(() => lora.addAdapter('x', { ...ALL, targetModules: ['c_attn'] })).toThrow(/key 'target_modules': target_modules \["c_attn"\] match no module/);
    expect(() => lora.addAdapter('x', { ...ALL, r: 0 })).toThrow(/key 'r': LoRA rank must be a positive integer/);
    const copy = (to: string) => { const d = join(tmp.path, to); cpSync(join(FIX, 'qwen3_lora'), d, { recursive: true }); return d; };
    const dora = copy('dora');
    const cfg = JSON.parse(readFileSync(join(dora, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dora, 'adapter_config.json'), JSON.stringify({ ...cfg, use_dora: true }));
    expect(() => loadAdapter(lora, dora)).toThrow(/adapter_config\.json, key 'use_dora': unsupported value true/);
    const noB = copy('nob');
    const t = readSafetensors(join(noB, 'adapter_model.safetensors'));
    t.delete('base_model.model.model.layers.1.mlp.up_proj.lora_B.weight');
    writeSafetensors(join(noB, 'adapter_model.safetensors'), Object.fromEntries([...t].map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }])));
    expect(() => loadAdapter(lora, noB)).toThrow(/adapter_model\.safetensors, key 'base_model\.model\.model\.layers\.1\.mlp\.up_proj\.lora_A\.weight': lora_B missing for module 'model\.layers\.1\.mlp\.up_proj'/);
    const shape = copy('shape');
    const cfg2 = JSON.parse(readFileSync(join(shape, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(shape, 'adapter_config.json'), JSON.stringify({ ...cfg2, r: 8 }));
    expect(() => loadAdapter(lora, shape)).toThrow(/adapter_model\.safetensors, key 'base_model\.model\.model\.layers\.\d\.[a-z_]+\.[a-z_]+\.lora_A\.weight': shape \[4, \d+\], expected \[8, \d+\] \(r, in\)/);
    expect(lora.adapterNames()).toEqual([]);
    lora.dispose();
    model.dispose();
  });
});
