import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/models/backend/index.ts';
import * as ops from '../../src/models/ops.ts';
import { Decoder } from '../../src/models/llm/decoder.ts';
import { makeDecoderConfig } from '../../src/models/llm/config.ts';
import { expectClose, expectWasmMatchesCpu, rand, runOn } from './compare.ts';

beforeAll(async () => {
  await initBackend('cpu');
  await initBackend('wasm', { threads: 1 });
});

describe('ops: forward and backward on wasm match cpu', () => {
  it('seededDropout: a seeded mask of 0 and 1 / (1 − rate), kept at the rate asked, unrelated across nearby seeds, the same on every backend', async () => {
    const n = 200_000;
    for (const rate of [0.1, 0.5, 0.77]) {
      const keep = 1 - rate;
      const scale = Math.fround(1 / keep);
      const a = ops.dropoutMask(n, rate, 1111);
      expect(ops.dropoutMask(n, rate, 1111)).toEqual(a);
      let kept = 0;
      let adjacent = 0;
      let other = 0;
      for (let i = 0; i < n; i++) {
        if (a[i] !== 0 && a[i] !== scale) other++;
        if (a[i] !== 0) kept++;
        if (i > 0 && (a[i] !== 0) === (a[i - 1] !== 0)) adjacent++;
      }
      expect(other).toBe(0);
      // Within 5 standard deviations of the binomial's mean.
      const sd = Math.sqrt(n * keep * rate);
      expect(Math.abs(kept - n * keep), `rate ${rate}`).toBeLessThan(5 * sd);
      // Neighbours agree as often as independent draws do: keep² + rate².
      expect(Math.abs(adjacent / (n - 1) - (keep * keep + rate * rate))).toBeLessThan(5 * Math.sqrt(0.25 / n) * 2);
      // Nearby seeds (the model's seeds of successive calls differ by 104,729; of steps by 7,919) give unrelated masks, not shifted copies.
      for (const other of [1112, 1111 + 104_729, 1111 + 7_919, 1111 ^ 1]) {
        const b = ops.dropoutMask(n, rate, other);
        for (const shift of [0, 1, 7_919]) {
          let agree = 0;
          for (let i = 0; i + shift < n; i++) if ((a[i + shift] !== 0) === (b[i] !== 0)) agree++;
          expect(Math.abs(agree / (n - shift) - (keep * keep + rate * rate)), `seed ${other} shift ${shift}`).toBeLessThan(0.007);
        }
      }
    }
    const outs: Float32Array[] = [];
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      const x = rand([4, 6, 5], 3);
      const y = ops.seededDropout(x, 0.5, 42);
      const mask = ops.dropoutMask(x.size, 0.5, 42);
      expectClose(y.dataSync(), Float32Array.from(x.dataSync(), (v, i) => v * mask[i]!), 0, backend);
      outs.push(y.dataSync() as Float32Array);
      const g = tf.grad((t: tf.Tensor) => tf.sum(ops.seededDropout(t, 0.5, 42)))(x);
      expectClose(g.dataSync(), mask, 0, backend);
      tf.dispose([x, y, g]);
    }
    expect(outs[0]).toEqual(outs[1]);
    expect(() => ops.seededDropout(tf.ones([2]), 1, 0)).toThrow(/dropout rate must be in \(0, 1\), got 1/);
    expect(() => ops.seededDropout(tf.ones([2]), 0, 0)).toThrow(/got 0/);
  });

  it('linear on 3-D input with bias, and matMul2d', async () => {
    await expectWasmMatchesCpu(() => [rand([2, 5, 7], 1), rand([7, 6], 2), rand([6], 3)], (x, w, b) => ops.linear(x!, w as tf.Tensor2D, b as tf.Tensor1D));
    await expectWasmMatchesCpu(() => [rand([9, 4], 4), rand([4, 3], 5)], (a, w) => ops.matMul2d(a as tf.Tensor2D, w as tf.Tensor2D));
  });

  it('linear with a frozen (non-trainable) weight: gradients flow to the input and other weights', async () => {
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      const w = tf.variable(rand([4, 3], 6), false);
      const w2 = tf.variable(rand([3, 2], 8), true);
      const x = rand([5, 4], 7);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(ops.linear(ops.linear(x, w as tf.Tensor2D), w2 as tf.Tensor2D))), [w2]);
      const ref2 = tf.grad((v: tf.Tensor) => tf.sum(tf.square(tf.matMul(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), v as tf.Tensor2D))))(w2);
      expectClose(grads[w2.name]!.dataSync(), ref2.dataSync(), 1e-5, `${backend} w2`);
      ref2.dispose();
      const gx = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(ops.linear(xx, w as tf.Tensor2D))))(x);
      const ref = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(tf.matMul(xx as tf.Tensor2D, w as tf.Tensor2D))))(x);
      expectClose(gx.dataSync(), ref.dataSync(), 1e-5, backend);
      expect(value.dataSync()[0]).toBeGreaterThan(0);
      tf.dispose([w, w2, x, gx, ref, value, ...Object.values(grads)]);
    }
  });

  it('embeddingLookup (gather, gradient through UnsortedSegmentSum) with repeated ids', async () => {
    const ids = () => tf.tensor2d([[1, 3, 3], [0, 9, 1]], [2, 3], 'int32');
    const r = await expectWasmMatchesCpu(() => [rand([10, 4], 8), ids()], (t, i) => ops.embeddingLookup(t as tf.Tensor2D, i!));
    // Row 3 appears twice, row 2 never: its gradient is exactly zero.
    expect(Array.from(r.grads[0]!.slice(8, 12))).toEqual([0, 0, 0, 0]);
    // Independent oracle: the same lookup as oneHot · table through matMul's autograd.
    const ref = await runOn('cpu', () => [rand([10, 4], 8), ids()], (t, i) =>
      tf.reshape(tf.matMul(tf.oneHot(tf.reshape(i!, [-1]) as tf.Tensor1D, 10, 1, 0, 'float32'), t as tf.Tensor2D), [2, 3, 4]));
    expectClose(r.value, ref.value, 1e-6, 'lookup');
    expectClose(r.grads[0]!, ref.grads[0]!, 1e-6, 'lookup grad');
  });

  it('gelu (sigmoid form equals the tanh form), silu', async () => {
    await expectWasmMatchesCpu(() => [rand([3, 8], 9, 3)], (x) => ops.gelu(x!));
    await expectWasmMatchesCpu(() => [rand([3, 8], 10, 3)], (x) => ops.silu(x!));
    await tf.setBackend('cpu');
    const x = rand([50], 11, 4);
    const tanhForm = tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))));
    expectClose(ops.gelu(x).dataSync(), tanhForm.dataSync(), 1e-6, 'gelu vs tanh form');
    tf.dispose([x, tanhForm]);
  });

  it.each(['cpu', 'wasm'])('rmsNorm, layerNorm, gelu, rope, linear: their written-out gradients equal autograd of the formulas (%s)', async (backend) => {
    await tf.setBackend(backend);
    const refRms = (x: tf.Tensor, w: tf.Tensor | null, eps: number) => {
      const u = tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps)));
      return w === null ? u : tf.mul(u, w);
    };
    const refLn = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
    };
    const x = rand([2, 3, 8], 30, 2);
    const w = rand([8], 31);
    const frozen = tf.variable(rand([8], 32), false);
    const weights = tf.sin(tf.range(0, 48));
    // rope: the rotate_half of HF (split, negate, concat) through autograd.
    const x4 = tf.reshape(rand([2, 3, 8], 35), [1, 2, 3, 8]) as tf.Tensor4D;
    const { cos, sin } = ops.ropeTables(ops.defaultPositions(1, 3), 1, 8, 10000);
    const refRope = (a: tf.Tensor) => {
      const [a1, a2] = tf.split(a, 2, 3);
      return tf.add(tf.mul(a, cos), tf.mul(tf.concat([tf.neg(a2!), a1!], 3), sin));
    };
    const loss = (f: (...xs: tf.Tensor[]) => tf.Tensor) => (...xs: tf.Tensor[]) => {
      const y = tf.reshape(f(...xs), [-1]);
      return tf.sum(tf.mul(y, tf.slice(weights, 0, y.size)));
    };
    const cases: [string, (...xs: tf.Tensor[]) => tf.Tensor, (...xs: tf.Tensor[]) => tf.Tensor, tf.Tensor[]][] = [
      ['rms, trainable w', (a, b) => ops.rmsNorm(a!, b!, 1e-6), (a, b) => refRms(a!, b!, 1e-6), [x, w]],
      ['rms, no w', (a) => ops.rmsNorm(a!, null, 1e-10), (a) => refRms(a!, null, 1e-10), [x]],
      ['rms, frozen w', (a) => ops.rmsNorm(a!, frozen, 1e-6), (a) => refRms(a!, frozen, 1e-6), [x]],
      ['gelu', (a) => ops.gelu(a!), (a) => tf.mul(a!, tf.sigmoid(tf.mul(1.5957691216057308, tf.add(a!, tf.mul(0.044715, tf.mul(a!, tf.square(a!))))))), [x]],
      ['layer norm', (a, g, b) => ops.layerNorm(a!, g as tf.Tensor1D, b as tf.Tensor1D), (a, g, b) => refLn(a!, g!, b!), [x, w, rand([8], 33)]],
      ['rope', (a) => ops.rope(a as tf.Tensor4D, cos, sin), (a) => refRope(a!), [x4]],
      ['linear with bias', (a, m, b) => ops.linear(a!, m as tf.Tensor2D, b as tf.Tensor1D), (a, m, b) => tf.add(tf.reshape(tf.matMul(tf.reshape(a!, [6, 8]), m as tf.Tensor2D), [2, 3, 8]), b!), [x, rand([8, 8], 34), w]],
      ['columnSum', (a) => ops.columnSum(tf.reshape(a!, [6, 8]) as tf.Tensor2D), (a) => tf.sum(tf.reshape(a!, [6, 8]), 0), [x]],
    ];
    for (const [what, f, ref, inputs] of cases) {
      expectClose(f(...inputs).dataSync(), ref(...inputs).dataSync(), 1e-5, `${what} value`);
      const got = tf.grads(loss(f))(inputs);
      const want = tf.grads(loss(ref))(inputs);
      got.forEach((g, i) => expectClose(g.dataSync(), want[i]!.dataSync(), 1e-5, `${what} gradient ${i}`));
    }
  });

  it('rmsNorm and layerNorm', async () => {
    await expectWasmMatchesCpu(() => [rand([2, 3, 8], 12, 2), rand([8], 13)], (x, w) => ops.rmsNorm(x!, w as tf.Tensor1D, 1e-6));
    await expectWasmMatchesCpu(() => [rand([2, 3, 8], 14, 2), rand([8], 15), rand([8], 16)], (x, g, b) => ops.layerNorm(x!, g as tf.Tensor1D, b as tf.Tensor1D));
  });

  it('softmaxCrossEntropy: masked mean, custom gradient equals autograd of the plain formula', async () => {
    const targets = [2, 0, 4, -100, 1, 3];
    const mask = [1, 1, 1, 0, 1, 1];
    const r = await expectWasmMatchesCpu(() => [rand([2, 3, 5], 17, 3)], (lg) => ops.softmaxCrossEntropy(lg!, targets, mask));
    await tf.setBackend('cpu');
    const plain = await runOn('cpu', () => [rand([2, 3, 5], 17, 3)], (lg) => {
      const lsm = tf.logSoftmax(tf.reshape(lg!, [6, 5]));
      const y = tf.oneHot(tf.tensor1d(targets.map((t) => Math.max(t, 0)), 'int32'), 5);
      return tf.div(tf.neg(tf.sum(tf.mul(tf.sum(tf.mul(y, lsm), 1), tf.tensor1d(mask)))), 5);
    });
    expectClose(r.value, plain.value, 1e-5, 'loss');
    expectClose(r.grads[0]!, plain.grads[0]!, 1e-5, 'grad');
    expect(() => ops.softmaxCrossEntropy(tf.zeros([2, 3]), [0, 3])).toThrow(/target 3 at row 1 outside \[0, 3\)/);
  });

  it('attention with grouped kv heads and a causal + padding bias', async () => {
    const bias = () => ops.attentionBias([[1, 1, 1, 1], [0, 1, 1, 1]], true);
    await expectWasmMatchesCpu(() => [rand([2, 4, 4, 6], 18), rand([2, 2, 4, 6], 19), rand([2, 2, 4, 6], 20), bias()], (q, k, v, b) =>
      ops.attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, b as tf.Tensor4D), 1e-4, [0, 1, 2]);
    // Grouping equals repeating each kv head for its group of query heads.
    await tf.setBackend('cpu');
    const q = rand([2, 4, 4, 6], 18);
    const k = rand([2, 2, 4, 6], 19);
    const v = rand([2, 2, 4, 6], 20);
    const rep = (t: tf.Tensor) => tf.gather(t, [0, 0, 1, 1], 1) as tf.Tensor4D;
    expectClose(ops.attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, bias()).dataSync(),
      ops.attention(q as tf.Tensor4D, rep(k), rep(v), bias()).dataSync(), 1e-6, 'gqa');
  });

  it('attentionBias hides future and padded keys', () => {
    const b = ops.attentionBias([[0, 1, 1]], true).arraySync()[0]![0]!;
    const N = ops.MASK_NEG;
    expect(b).toEqual([[N, N, N], [N, 0, N], [N, 0, 0]]);
    expect(() => ops.attentionBias([[1, 1], [1]], false)).toThrow(/differ in length/);
  });

  it('rope (rotate_half) and its tables', async () => {
    const pos = ops.defaultPositions(2, 5);
    const mk = () => { const { cos, sin } = ops.ropeTables(pos, 2, 8, 10000); return [rand([2, 3, 5, 8], 21), cos, sin]; };
    await expectWasmMatchesCpu(mk, (x, c, s) => ops.rope(x as tf.Tensor4D, c as tf.Tensor4D, s as tf.Tensor4D), 1e-4, [0]);
    await tf.setBackend('cpu');
    // Rotation preserves the norm of each (i, i + d/2) pair.
    const [x, c, s] = mk();
    const y = ops.rope(x as tf.Tensor4D, c as tf.Tensor4D, s as tf.Tensor4D);
    expectClose(tf.sum(tf.square(y), -1).dataSync(), tf.sum(tf.square(x!), -1).dataSync(), 1e-5, 'norm');
    const odd = ops.ropeTables(ops.defaultPositions(1, 2), 1, 3, 10000);
    expect(() => ops.rope(rand([1, 1, 2, 3], 36) as tf.Tensor4D, odd.cos, odd.sin)).toThrow(/rope: head width 3 is odd/);
  });

  it('conv1d by unfolding equals tf.conv1d on cpu, and trains on wasm', async () => {
    const make = () => [rand([2, 7, 3], 22), rand([3, 3, 4], 23), rand([4], 24)];
    for (const dilation of [1, 2]) {
      const r = await expectWasmMatchesCpu(make, (x, w, b) => ops.conv1d(x as tf.Tensor3D, w as tf.Tensor3D, b as tf.Tensor1D, { padding: 'same', dilation }));
      // tfjs has no conv gradient for dilation > 1: compare values only there.
      const ref = await runOn('cpu', make, (x, w, b) => tf.add(tf.conv1d(x as tf.Tensor3D, w as tf.Tensor3D, 1, 'same', 'NWC', dilation), b!), dilation === 1 ? undefined : []);
      expectClose(r.value, ref.value, 1e-5, 'conv value');
      ref.grads.forEach((g, i) => expectClose(r.grads[i]!, g, 1e-4, `conv grad ${i}`));
    }
    expect(() => ops.conv1d(tf.zeros([1, 2, 3]) as tf.Tensor3D, tf.zeros([5, 3, 1]) as tf.Tensor3D, undefined, { padding: 'valid' })).toThrow(/shorter than the kernel/);
  });

  it('a full decoder layer stack: loss gradients for every parameter', async () => {
    const config = makeDecoderConfig({ modelType: 'qwen3', vocabSize: 30, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 4, numKvHeads: 2, headDim: 6 });
    const results = [];
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      const m = Decoder.random(config, 5, { std: 0.3 });
      const { value, grads } = tf.variableGrads(() => {
        const h = m.forward({ inputIds: [[1, 2, 3, 4], [5, 6, 7, 8]], attentionMask: [[1, 1, 1, 1], [0, 1, 1, 1]] });
        return ops.softmaxCrossEntropy(m.logitsFor(h, [3, 9, 4, 7, 1]), [0, 1, 2, 3, 4, 0, 1, 2], [1, 1, 1, 1, 0, 1, 1, 1]);
      }, m.trainableVariables());
      const names = [...m.params.keys()];
      const byName = new Map(m.trainableVariables().map((v, i) => [names[i]!, grads[v.name]!.dataSync().slice()]));
      results.push({ loss: value.dataSync()[0]!, grads: byName });
      tf.dispose([value, ...Object.values(grads)]);
      m.dispose();
    }
    const [cpu, wasm] = results as [typeof results[0], typeof results[0]];
    expect(Math.abs(wasm.loss - cpu.loss)).toBeLessThan(1e-4 * Math.abs(cpu.loss));
    expect(cpu.grads.size).toBe(14);
    for (const [name, g] of cpu.grads) expectClose(wasm.grads.get(name)!, g, 1e-4, name);
  });

  it('a small transformer-encoder layer (pre-LN, GELU MLP, padding mask)', async () => {
    const encoder = (x: tf.Tensor, wq: tf.Tensor, wk: tf.Tensor, wv: tf.Tensor, wo: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const bias = ops.attentionBias([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], false);
      const h = ops.layerNorm(x, g as tf.Tensor1D, b as tf.Tensor1D);
      const [q, k, v] = [wq, wk, wv].map((w) => ops.splitHeads(ops.linear(h, w as tf.Tensor2D), 2));
      const a = tf.add(x, ops.linear(ops.mergeHeads(ops.attention(q!, k!, v!, tf.reshape(tf.slice(bias, [0, 0, 0, 0], [-1, -1, 1, -1]), [2, 1, 1, 5]) as tf.Tensor4D)), wo as tf.Tensor2D));
      const h2 = ops.layerNorm(a, g as tf.Tensor1D, b as tf.Tensor1D);
      return tf.add(a, ops.linear(ops.gelu(ops.linear(h2, w1 as tf.Tensor2D)), w2 as tf.Tensor2D));
    };
    await expectWasmMatchesCpu(() => [rand([2, 5, 8], 30), rand([8, 8], 31), rand([8, 8], 32), rand([8, 8], 33), rand([8, 8], 34), rand([8, 16], 35), rand([16, 8], 36), rand([8], 37), rand([8], 38)],
      (...xs) => encoder(...(xs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor])));
  });
});
