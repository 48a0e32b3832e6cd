/**
 * The fused kernels of wasm and tensorflow (src/models/backend/fused.ts, composite.ts): every
 * fused block gives the unfused block's values and gradients bit for bit, in fewer kernels,
 * without leaking; a composite that fails frees what it made and names the missing kernel.
 * Runs in a child process: the unfused measurement unregisters the kernels.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { REPO, tempDir } from '../helpers.ts';
import { tfNodeAddon } from '../../src/models/backend/install.ts';

/** wasm and cpu, and tensorflow where its addon is built (CI builds it). */
const BACKENDS = existsSync(tfNodeAddon(REPO)) || process.env['CI'] !== undefined ? ['wasm', 'cpu', 'tensorflow'] : ['wasm', 'cpu'];

function runTs(file: string, code: string) {
  writeFileSync(file, code);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: REPO, encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function lastJson(s: string): any {
  return JSON.parse(s.trim().split('\n').reverse().find((l) => l.startsWith('{'))!);
}

const imports = (backend: string) => `
  import { createRequire } from 'node:module';
  import { initBackend } from ${JSON.stringify(join(REPO, 'src/models/backend/index.ts'))};
  import * as ops from ${JSON.stringify(join(REPO, 'src/models/ops.ts'))};
  import * as layers from ${JSON.stringify(join(REPO, 'src/models/egmf/layers.ts'))};
  import { defineComposite } from ${JSON.stringify(join(REPO, 'src/models/backend/composite.ts'))};
  const tf = createRequire(${JSON.stringify(join(REPO, 'package.json'))})('@tensorflow/tfjs-core');
  await initBackend(${JSON.stringify(backend)}, { threads: 1 });
`;

describe.each(BACKENDS)('fused kernels on %s', (backend) => {
  it('give the unfused blocks\' values and gradients bit for bit, in fewer kernels, without leaks', () => {
    const tmp = tempDir();
    try {
      const r = runTs(join(tmp.path, 'fused.mts'), `${imports(backend)}
        const rand = (shape, seed) => tf.randomNormal(shape, 0, 1, 'float32', seed);
        const v = (shape, seed, trainable = true) => tf.variable(rand(shape, seed), trainable, 'v' + seed);
        const w = v([8, 6], 3), b = v([6], 4), frozen = v([8, 6], 5, false);
        const g = v([8], 6), beta = v([8], 7), gFrozen = v([8], 8, false);
        const loraA = v([8, 2], 10), loraB = v([2, 6], 11);
        const convW = v([3, 8, 4], 12), convB = v([4], 13);
        const headW = v([4], 14);
        const mask = tf.tensor2d([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]);
        const rope = ops.ropeTables(Int32Array.from({ length: 15 }, (_, i) => i % 5), 3, 4, 10000);
        const bias = ops.attentionBias({ data: mask.dataSync(), batch: 3, length: 5 }, true);
        // x: [3, 5, 8] (or [7, 8] for the 2-D cases); each case reaches x and its variables.
        const cases = {
          linear3: [(x) => ops.linear(x, w, b), true], linear2: [(x) => ops.linear(x, w), true], linearFrozen: [(x) => ops.linear(x, frozen, b), true],
          rms: [(x) => ops.rmsNorm(x, g, 1e-6), true], rmsUnit: [(x) => ops.rmsNorm(x, null, 1e-6), true], rmsFrozen: [(x) => ops.rmsNorm(x, gFrozen, 1e-6), true],
          layerNorm: [(x) => ops.layerNorm(x, g, beta), true], gelu: [(x) => ops.gelu(x), true],
          lora: [(x) => ops.loraAdd(ops.linear(x, frozen), x, loraA, loraB, 2, 0, 0), true],
          loraDropout: [(x) => ops.loraAdd(ops.linear(x, frozen), x, loraA, loraB, 2, 0.25, 77), true],
          swiGlu: [(x) => ops.swiGlu(ops.linear(x, w), ops.linear(x, frozen, b)), true],
          softmax: [(x) => tf.softmax(ops.linear(x, w, b)), true],
          addSub: [(x) => tf.sub(tf.add(x, g), tf.mul(x, beta)), true],
          conv: [(x) => ops.conv1d(x, convW, convB), false], convValid: [(x) => ops.conv1d(x, convW, convB, { padding: 'valid', dilation: 2 }), false],
          maskedMean: [(x) => layers.maskedMean(x, mask), false], maskedMax: [(x) => layers.maskedMax(x, mask), false],
          zeroPadding: [(x) => layers.zeroPadding(x, mask), false],
          mha: [(x) => ops.multiHeadAttention(ops.linear(x, w, b), ops.linear(x, frozen), tf.slice(x, [0, 0, 0], [-1, -1, 6]), 2, layers.keyBias(mask)), false],
          gqa: [(x) => {
            const q = ops.rope(ops.splitHeads(x, 2), rope.cos, rope.sin);
            const kv = tf.slice(ops.splitHeads(ops.linear(x, w), 1), [0, 0, 0, 0], [-1, -1, -1, 4]);
            return ops.attentionMerged(q, ops.rope(ops.rmsNorm(kv, headW, 1e-6), rope.cos, rope.sin), kv, bias);
          }, false],
        };
        const x3 = rand([3, 5, 8], 1), x2 = rand([7, 8], 2);
        const vars = [w, b, g, beta, loraA, loraB, convW, convB, headW];
        const measure = async () => {
          const out = {};
          for (const [name, [f, twoD]] of Object.entries(cases)) {
            for (const [xn, x] of twoD ? [['3d', x3], ['2d', x2]] : [['3d', x3]]) {
              const xv = tf.variable(x, true, name + xn);
              const before = tf.memory().numTensors;
              const ids = tf.backend().numDataIds();
              const { value, grads } = tf.variableGrads(() => { const y = f(xv); return tf.sum(tf.mul(y, rand(y.shape, 9))); }, [xv, ...vars]);
              const g2 = Object.fromEntries(Object.entries(grads).map(([k, t]) => [k.startsWith(name) ? 'x' : k, Array.from(t.dataSync())]));
              const v0 = value.dataSync()[0];
              tf.dispose([value, ...Object.values(grads)]);
              const leaked = [tf.memory().numTensors - before, tf.backend().numDataIds() - ids];
              const prof = await tf.profile(() => tf.variableGrads(() => tf.sum(f(xv)), [xv, ...vars]));
              tf.dispose([prof.result.value, ...Object.values(prof.result.grads)]);
              out[name + xn] = { value: v0, grads: g2, kernels: prof.kernels.filter((k) => !k.name.startsWith('Random')).length, leaked };
              xv.dispose();
            }
          }
          return out;
        };
        const fusedOut = await measure();
        const backend = ${JSON.stringify(backend)};
        const names = Object.keys(tf.getKernelsForBackend(backend).reduce((m, k) => (k.kernelName.startsWith('Egmf') ? { ...m, [k.kernelName]: 1 } : m), {}));
        for (const k of names) tf.unregisterKernel(k, backend);
        const plainOut = await measure();
        console.log(JSON.stringify({ fusedOut, plainOut, names }));
        process.exit(0);`);
      expect(r.status, r.stderr).toBe(0);
      const { fusedOut, plainOut, names } = lastJson(r.stdout);
      expect(names.length).toBeGreaterThan(20);
      process.stdout.write(`kernels fused/plain: ${Object.keys(fusedOut).map((n) => `${n} ${fusedOut[n].kernels}/${plainOut[n].kernels}`).join(", ")}\n`);
      for (const [name, f] of Object.entries(fusedOut as Record<string, any>)) {
        const p = plainOut[name];
        expect(f.value, name).toBe(p.value);
        expect(f.grads, name).toEqual(p.grads);
        expect(f.grads['x'], name).toBeDefined();
        expect(f.leaked, name).toEqual([0, 0]);
        expect(p.leaked, name).toEqual([0, 0]);
        expect(f.kernels, name).toBeLessThanOrEqual(p.kernels);
      }
      const total = (o: Record<string, any>) => Object.values(o).reduce((a, c) => a + c.kernels, 0);
      expect(total(fusedOut)).toBeLessThan(total(plainOut) / 2);
      // A 3-D linear with bias and trainable weights: one kernel forward, two backward (dx; dw and db).
      // (the profile also holds the sum and its gradient: 3 kernels)
      expect(fusedOut.linear33d.kernels).toBeLessThanOrEqual(6);
      expect(plainOut.layerNorm3d.kernels).toBeGreaterThan(3 * fusedOut.layerNorm3d.kernels);
    } finally {
      tmp.cleanup();
    }
  });

  it('a composite that fails names the missing kernel and frees what it made', () => {
    const tmp = tempDir();
    try {
      const r = runTs(join(tmp.path, 'bad.mts'), `${imports(backend)}
        defineComposite('EgmfTestBad', [${JSON.stringify(backend)}], (k, { x }) => { k.mul(k.add(x, x), x); return k.run('NoSuchKernel', { x }); });
        defineComposite('EgmfTestIdentity', [${JSON.stringify(backend)}], (k, { x }) => x);
        const x = tf.tensor1d([1, 2, 3]);
        const ids = tf.backend().numDataIds();
        let message = '';
        try { tf.engine().runKernel('EgmfTestBad', { x }, {}); } catch (e) { message = e.message; }
        const afterBad = tf.backend().numDataIds() - ids;
        const y = tf.engine().runKernel('EgmfTestIdentity', { x }, {});
        x.dispose();
        const values = Array.from(y.dataSync());
        y.dispose();
        console.log(JSON.stringify({ message, afterBad, values, left: tf.backend().numDataIds() - ids + 1 }));
        process.exit(0);`);
      expect(r.status, r.stderr).toBe(0);
      const out = lastJson(r.stdout);
      expect(out.message).toBe(`the ${backend} backend has no NoSuchKernel kernel`);
      expect(out.afterBad).toBe(0);
      // An input returned as it is gets its own reference: it outlives the input's disposal.
      expect(out.values).toEqual([1, 2, 3]);
      expect(out.left).toBe(0);
    } finally {
      tmp.cleanup();
    }
  });
});
