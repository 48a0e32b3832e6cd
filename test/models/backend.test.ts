import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { defaultThreads, initBackend, parseBackendName } from '../../src/models/backend/index.ts';
import { EgmfError } from '../../src/errors.ts';
import { expectWasmMatchesCpu, rand } from './compare.ts';
import { REPO, tempDir } from '../helpers.ts';

beforeAll(async () => {
  await initBackend('cpu');
  await initBackend('wasm', { threads: 1 });
});

describe('initBackend', () => {
  it('switches between cpu and wasm and registers gradients', async () => {
    expect(await initBackend('cpu')).toEqual({ name: 'cpu', threads: 1 });
    expect(tf.getBackend()).toBe('cpu');
    expect(await initBackend('wasm')).toEqual({ name: 'wasm', threads: 1, simd: true });
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.getGradient('BatchMatMul')).toBeDefined();
  });

  // tensorflow present or absent, and what auto picks then: backend-tensorflow.test.ts.

  it('defaults to one thread below 4 cores, then half the cores up to 4', () => {
    expect([1, 2, 3, 4, 6, 8, 16, 64].map((c) => defaultThreads(c))).toEqual([1, 1, 1, 2, 3, 4, 4, 4]);
    expect(defaultThreads(0)).toBe(1);
  });

  it('rejects unknown backend names and thread counts', async () => {
    expect(parseBackendName('wasm')).toBe('wasm');
    expect(() => parseBackendName('gpu', { file: 'exp.yaml', key: 'backend' })).toThrow(/exp.yaml, key 'backend': unknown backend 'gpu'/);
    await expect(initBackend('wasm', { threads: 0 })).rejects.toThrow(/key 'threads': wasm threads must be a positive integer, got 0/);
    process.env['EGMF_WASM_THREADS'] = 'two';
    try {
      await expect(initBackend('wasm')).rejects.toThrow(/key 'EGMF_WASM_THREADS': EGMF_WASM_THREADS must be a positive integer, got 'two'/);
    } finally {
      delete process.env['EGMF_WASM_THREADS'];
    }
  });
});

describe('wasm kernel fixes (checked against cpu)', () => {
  it('UnsortedSegmentSum: native kernels (wasm and cpu) agree with the definition, ids outside the range skipped', async () => {
    await expectWasmMatchesCpu(() => [rand([6, 3], 1), tf.tensor1d([0, 2, 2, 4, 0, 1], 'int32')], (x, ids) => tf.unsortedSegmentSum(x!, ids as tf.Tensor1D, 5));
    await tf.setBackend('wasm');
    for (const backend of ['wasm', 'cpu']) {
      await tf.setBackend(backend);
      const out = tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]), tf.tensor1d([1, -1, 1, 3], 'int32'), 3);
      expect(out.arraySync(), backend).toEqual([[0, 0], [6, 8], [0, 0]]);
    }
  });

  it('conv2d and depthwise conv gradients run through the cpu fallback', async () => {
    await expectWasmMatchesCpu(() => [rand([2, 5, 5, 3], 2), rand([3, 3, 3, 4], 3)], (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'));
    await expectWasmMatchesCpu(() => [rand([1, 5, 5, 2], 4), rand([3, 3, 2, 2], 5)], (x, f) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid'));
  });

  it('batched and transposed matMuls (one fast 2-D product per batch entry) and their gradients match cpu', async () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[2, 3, 5, 4], [2, 3, 4, 6], false, false],
      [[2, 3, 5, 4], [2, 3, 6, 4], false, true],
      [[2, 3, 4, 5], [2, 3, 4, 6], true, false],
      [[3, 4, 5], [3, 6, 4], true, true],
      [[7, 4], [5, 4], false, true], // a plain 2-D product with a transpose
      [[1, 5, 4], [3, 4, 6], false, false], // a broadcast over b's batch
      [[2, 3, 5, 4], [4, 6], false, false], // a broadcast over a's batch
      [[1, 5, 4], [3, 5, 6], true, false],
      [[3, 5, 4], [1, 6, 4], false, true], // a broadcast over a's batch, b transposed
    ];
    let seed = 20;
    for (const [sa, sb, ta, tb] of cases) {
      // tfjs-core has no gradient for a broadcast batch: those compare values only.
      const broadcast = sa.slice(0, -2).join() !== sb.slice(0, -2).join();
      const [s1, s2] = [seed++, seed++];
      await expectWasmMatchesCpu(() => [rand(sa, s1), rand(sb, s2)], (a, b) => tf.matMul(a!, b!, ta, tb), 1e-5, broadcast ? [] : undefined)
        .catch((e: Error) => { throw new Error(`[${sa}]·[${sb}] transposes ${ta}/${tb}: ${e.message}`); });
    }
    // A tensor the product reads stays intact, and the heap stays consistent over many calls.
    await tf.setBackend('wasm');
    const a = rand([4, 8, 16], 40);
    const before = a.dataSync().slice();
    for (let i = 0; i < 50; i++) tf.dispose(tf.matMul(a, rand([4, 8, 16], 41 + i), false, true));
    expect(Array.from(a.dataSync())).toEqual(Array.from(before));
  });

  it('slice, split, unstack and concat (heap copies on wasm) match cpu on every axis and dtype; bad split sizes are named', async () => {
    const values = (shape: number[], dtype: tf.DataType) => Array.from({ length: shape.reduce((p, d) => p * d, 1) }, (_, i) => (dtype === 'bool' ? i % 3 === 0 : dtype === 'int32' ? i * 5 - 40 : Math.cos(i)));
    const ops: [string, number[], tf.DataType, (x: tf.Tensor) => tf.Tensor | tf.Tensor[]][] = [
      ['slice 3-D inner', [4, 6, 5], 'float32', (x) => tf.slice(x, [1, 2, 1], [2, 3, 3])],
      ['slice 4-D, -1 sizes', [2, 3, 4, 5], 'float32', (x) => tf.slice(x, [1, 0, 2, 0], [-1, 2, -1, -1])],
      ['slice whole inner axes', [3, 4, 5], 'int32', (x) => tf.slice(x, [0, 1, 0], [3, 2, 5])],
      ['slice 1-D', [9], 'bool', (x) => tf.slice(x, [2], [5])],
      ['split last axis in 3', [2, 4, 9], 'float32', (x) => tf.split(x, 3, 2)],
      ['split sizes with -1', [5, 7], 'int32', (x) => tf.split(x, [2, -1, 1], 1)],
      ['split first axis', [6, 2], 'bool', (x) => tf.split(x, [1, 5], 0)],
      ['unstack axis 0', [3, 2, 4], 'float32', (x) => tf.unstack(x, 0)],
      ['unstack axis 1', [3, 2, 4], 'int32', (x) => tf.unstack(x, 1)],
      ['unstack last axis', [2, 3], 'bool', (x) => tf.unstack(x, -1)],
      ['concat last axis', [2, 3, 4], 'float32', (x) => tf.concat([x, tf.slice(x, [0, 0, 1], [-1, -1, 2]), x], 2)],
      ['concat axis 1, one empty', [2, 3, 4], 'int32', (x) => tf.concat([x, tf.slice(x, [0, 0, 0], [-1, 0, -1]), tf.slice(x, [0, 1, 0], [-1, 2, -1])], 1)],
      ['concat axis 0', [2, 3], 'bool', (x) => tf.concat([x, x], 0)],
    ];
    for (const [what, shape, dtype, f] of ops) {
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        const x = tf.tensor(values(shape, dtype) as number[], shape, dtype);
        const r = f(x);
        const outs = (Array.isArray(r) ? r : [r]).map((t) => ({ shape: t.shape, dtype: t.dtype, v: Array.from(t.dataSync()) }));
        tf.dispose([x, ...(Array.isArray(r) ? r : [r])]);
        return outs;
      };
      expect(await run('wasm'), what).toEqual(await run('cpu'));
    }
    await tf.setBackend('wasm');
    const k = tf.getKernel('SplitV', 'wasm')!;
    const x = tf.zeros([2, 5]);
    expect(() => k.kernelFunc({ inputs: { x }, backend: tf.backend(), attrs: { numOrSizeSplits: [2, 2], axis: 1 } })).toThrow(/sizes \[2, 2\] do not add up to axis 1 of size 5/);
    expect(() => k.kernelFunc({ inputs: { x }, backend: tf.backend(), attrs: { numOrSizeSplits: 2, axis: 1 } })).toThrow(/size 5 does not split into 2 equal parts/);
    x.dispose();
  });

  it('gather (row copies on wasm) matches cpu on every axis, dtype and index shape; a bad index is named', async () => {
    const cases: [number[], tf.DataType, number[], number[], number, number][] = [
      [[6, 4], 'float32', [2, 3], [5, 0, 0, 2, 5, 1], 0, 0],
      [[3, 5, 2], 'float32', [4], [4, 0, 4, 2], 1, 0],
      [[3, 5, 2], 'int32', [1, 2], [1, 0], -1, 0],
      [[4, 3], 'bool', [3], [3, 3, 0], 0, 0],
      [[2, 4, 3], 'float32', [2, 2], [3, 0, 1, 1], 1, 1], // batchDims 1: wasm's own kernel
    ];
    for (const [shape, dtype, ishape, ids, axis, batchDims] of cases) {
      const values = Array.from({ length: shape.reduce((p, d) => p * d, 1) }, (_, i) => (dtype === 'bool' ? i % 3 === 0 : dtype === 'int32' ? i * 3 - 7 : Math.sin(i)));
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        const x = tf.tensor(values as number[], shape, dtype);
        const r = tf.gather(x, tf.tensor(ids, ishape, 'int32'), axis, batchDims);
        const out = { shape: r.shape, dtype: r.dtype, v: Array.from(r.dataSync()) };
        tf.dispose([x, r]);
        return out;
      };
      expect(await run('wasm'), `[${shape}] ${dtype} axis ${axis}`).toEqual(await run('cpu'));
    }
    await tf.setBackend('wasm');
    const [table, bad, negative] = [tf.zeros([3, 2]), tf.tensor1d([0, 3], 'int32'), tf.tensor1d([-1], 'int32')];
    const buffers = tf.engine().backend.numDataIds();
    expect(() => tf.gather(table, bad)).toThrow(/index value 3 is not in \[0, 2\]/);
    expect(() => tf.gather(table, negative)).toThrow(/index value -1/);
    expect(tf.engine().backend.numDataIds()).toBe(buffers); // no output left behind on the heap
    tf.dispose([table, bad, negative]);
  });

  it('comparisons between broadcast shapes (a JS loop on wasm) match cpu, for every comparison and dtype', async () => {
    const cases: [number[], number[], tf.DataType][] = [[[4, 3, 5], [4, 1, 5], 'float32'], [[2, 1, 3], [4, 1], 'float32'], [[3, 4], [4], 'int32'], [[1, 6], [5, 1], 'int32'], [[2, 3, 4], [2, 3, 4], 'float32'], [[2, 3], [1], 'float32']];
    const ops = [tf.equal, tf.notEqual, tf.greater, tf.greaterEqual, tf.less, tf.lessEqual];
    for (const [sa, sb, dtype] of cases) {
      // Few distinct values, so that every comparison meets ties.
      const values = (shape: number[], seed: number) => Array.from({ length: shape.reduce((p, d) => p * d, 1) }, (_, i) => ((i * 7 + seed) % 5) - 2);
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        const a = tf.tensor(values(sa, 1), sa, dtype);
        const b = tf.tensor(values(sb, 3), sb, dtype);
        const out = ops.map((op) => { const r = op(a, b); expect(r.dtype).toBe('bool'); return { shape: r.shape, v: Array.from(r.dataSync()) }; });
        tf.dispose([a, b]);
        return out;
      };
      expect(await run('wasm'), `${sa} vs ${sb} (${dtype})`).toEqual(await run('cpu'));
    }
    await tf.setBackend('wasm');
    expect(() => tf.equal(tf.zeros([2, 3]), tf.zeros([4, 3]))).toThrow(/broadcast/i);
  });

  it('fused matMul with transposes and batches, maxPool gradient, float one-hot are right', async () => {
    await expectWasmMatchesCpu(() => [rand([2, 4, 3], 6), rand([2, 5, 4], 7), rand([5], 8)], (a, b, bias) =>
      tf.fused.matMul({ a: a as tf.Tensor3D, b: b as tf.Tensor3D, transposeA: true, transposeB: true, bias, activation: 'relu' }), 1e-4, []);
    await expectWasmMatchesCpu(() => [rand([1, 6, 6, 2], 9)], (x) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid'));
    await expectWasmMatchesCpu(() => [tf.tensor1d([2, 0, 1], 'int32')], (i) => tf.oneHot(i as tf.Tensor1D, 3, 1, 0, 'float32'));
  });
});

describe('wasm threads', () => {
  it('runs 2 XNNPACK threads through worker_threads with the same results, and the process exits', async () => {
    const script = `
      import { createRequire } from 'node:module';
      import { initBackend } from ${JSON.stringify(join(REPO, 'src/models/backend/index.ts'))};
      const tf = createRequire(${JSON.stringify(join(REPO, 'package.json'))})('@tensorflow/tfjs-core');
      const info = await initBackend('wasm', { threads: 2 });
      const a = tf.reshape(tf.range(0, 64 * 48), [64, 48]);
      const b = tf.reshape(tf.cos(tf.range(0, 48 * 32)), [48, 32]);
      const g = tf.grad((x) => tf.sum(tf.square(tf.matMul(x, b))))(a);
      console.log(JSON.stringify({ threads: info.threads, sum: tf.sum(tf.matMul(a, b)).dataSync()[0], g: tf.sum(g).dataSync()[0] }));`;
    const tmp = tempDir();
    // A file, not `-e`: pthread workers inherit the parent's execArgv.
    const run = (threads: string) => {
      const file = join(tmp.path, `threads${threads}.mts`);
      writeFileSync(file, script.replace('threads: 2', `threads: ${threads}`));
      return spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
    };
    const two = run('2');
    tmp.cleanup();
    expect(two.status, two.stderr).toBe(0);
    const r2 = JSON.parse(two.stdout.trim().split('\n').pop()!) as { threads: number; sum: number; g: number };
    expect(r2.threads).toBe(2);
    // The same computation here, single-threaded.
    await tf.setBackend('wasm');
    const r1 = tf.tidy(() => {
      const a = tf.reshape(tf.range(0, 64 * 48), [64, 48]) as tf.Tensor2D;
      const b = tf.reshape(tf.cos(tf.range(0, 48 * 32)), [48, 32]) as tf.Tensor2D;
      const g = tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.matMul(x as tf.Tensor2D, b))))(a);
      return { sum: tf.sum(tf.matMul(a, b)).dataSync()[0]!, g: tf.sum(g).dataSync()[0]! };
    });
    expect(Math.abs(r2.sum - r1.sum)).toBeLessThanOrEqual(1e-4 * Math.abs(r1.sum));
    expect(Math.abs(r2.g - r1.g)).toBeLessThanOrEqual(1e-4 * Math.abs(r1.g));
  });
});
