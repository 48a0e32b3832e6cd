/**
 * The native tensorflow backend (`egmf backend install tensorflow`): the install is
 * idempotent and names what is missing, `auto` picks it once built (and falls back to wasm
 * when it is absent), and it trains the same seed to the same losses as wasm. CI builds it
 * (scripts/test-env.sh); elsewhere these tests run once it is installed.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, runCli, tempDir } from '../helpers.ts';
import { tfNodeAddon } from '../../src/models/backend/install.ts';
import { defaultThreads } from '../../src/models/backend/threads.ts';

const built = existsSync(tfNodeAddon(REPO));
const needed = process.env['CI'] !== undefined;

function runTs(file: string, code: string, cwd = REPO, timeout = 240_000) {
  writeFileSync(file, code);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd, encoding: 'utf8', timeout, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function lastJson(s: string): any {
  return JSON.parse(s.trim().split('\n').reverse().find((l) => l.startsWith('{'))!);
}

describe('egmf backend install tensorflow', () => {
  it.skipIf(!built && !needed)('is built here (CI builds it), and a second install changes nothing', () => {
    expect(built, 'scripts/test-env.sh should have run `egmf backend install tensorflow`').toBe(true);
    const r = runCli(['backend', 'install', 'tensorflow', '--json'], { timeoutMs: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { built: string[]; tensorflow: string; package: string };
    expect(out).toMatchObject({ built: [], tensorflow: '2.21.0', package: '@tensorflow/tfjs-node' });
    const info = runCli(['backend', 'info', '--json']);
    expect(info.status, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout.trim())).toMatchObject({ name: 'tensorflow', package: '@tensorflow/tfjs-node' });
  });

  it('names a missing compiler, missing Node headers and an unknown backend, changing nothing', () => {
    const noCxx = runCli(['backend', 'install', 'tensorflow', '--venv', join(REPO, '.venv-absent')], { env: { CXX: '/nonexistent/g++' } });
    expect(noCxx.status).toBe(1);
    expect(noCxx.stderr).toMatch(/key 'CXX'.*'\/nonexistent\/g\+\+' not found: the build needs a C\+\+ compiler/);
    const noHeaders = runCli(['backend', 'install', 'tensorflow', '--venv', join(REPO, '.venv-absent'), '--nodedir', '/nonexistent']);
    expect(noHeaders.status).toBe(1);
    expect(noHeaders.stderr).toMatch(/\/nonexistent\/include\/node\/node_api\.h.*Node's C headers not found/);
    expect(existsSync(join(REPO, '.venv-absent'))).toBe(false);
    const other = runCli(['backend', 'install', 'wasm']);
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/key 'name'.*only the tensorflow backend needs installing/);
  });

  it("without tfjs-node, 'auto' falls back to wasm and 'tensorflow' says how to install it", () => {
    // The backend code in a project whose node_modules lacks tfjs-node.
    const tmp = tempDir();
    try {
      cpSync(join(REPO, 'src'), join(tmp.path, 'src'), { recursive: true });
      const nm = join(tmp.path, 'node_modules');
      mkdirSync(join(nm, '@tensorflow'), { recursive: true });
      for (const e of readdirSync(join(REPO, 'node_modules'))) if (e !== '@tensorflow') symlinkSync(join(REPO, 'node_modules', e), join(nm, e));
      for (const e of readdirSync(join(REPO, 'node_modules', '@tensorflow'))) {
        if (!e.startsWith('tfjs-node')) symlinkSync(join(REPO, 'node_modules', '@tensorflow', e), join(nm, '@tensorflow', e));
      }
      writeFileSync(join(tmp.path, 'package.json'), '{"type": "module"}');
      const r = runTs(join(tmp.path, 'absent.mts'), `
        import { initBackend } from './src/models/backend/index.ts';
        const auto = await initBackend('auto');
        const err = await initBackend('tensorflow').then(() => 'no error', (e) => e.message);
        console.log(JSON.stringify({ auto: auto.name, err }));
        process.exit(0);`, tmp.path);
      expect(r.status, r.stderr).toBe(0);
      const out = lastJson(r.stdout);
      expect(out.auto).toBe('wasm');
      expect(out.err).toMatch(/neither @tensorflow\/tfjs-node-gpu nor @tensorflow\/tfjs-node is installed.*npm run setup:tensorflow/s);
    } finally {
      tmp.cleanup();
    }
  });

  it.skipIf(!built && !needed)('a reshape to its own shape and a cast to its own dtype share the tensor, a float32 mean casts nothing; the others still run', () => {
    const tmp = tempDir();
    try {
      const r = runTs(join(tmp.path, 'share.mts'), `
        import { createRequire } from 'node:module';
        import { initBackend } from ${JSON.stringify(join(REPO, 'src/models/backend/index.ts'))};
        const tf = createRequire(${JSON.stringify(join(REPO, 'package.json'))})('@tensorflow/tfjs-core');
        await initBackend('tensorflow');
        const be = tf.backend();
        const buffers = be.numDataIds();
        const x = tf.tensor3d([1.5, -2, 3, 4.25, 5, -6], [1, 2, 3]);
        const same = tf.reshape(x, [1, -1, 3]);
        const flat = tf.reshape(x, [6]);
        const own = tf.cast(x, 'float32');
        const ints = tf.cast(x, 'int32');
        const shared = [same.dataId === x.dataId, flat.dataId === x.dataId, own.dataId === x.dataId, ints.dataId === x.dataId];
        x.dispose();
        const values = { same: Array.from(same.dataSync()), sameShape: same.shape, flat: Array.from(flat.dataSync()), own: Array.from(own.dataSync()), ints: Array.from(ints.dataSync()), intsDtype: ints.dtype };
        tf.dispose([same, flat, own, ints]);
        // A float32 mean is one kernel (no cast first); an int32 one keeps tfjs-node's cast.
        const m = tf.tensor2d([1, 2, 3, 4.5, -5, 6], [2, 3]);
        const prof = await tf.profile(() => tf.mean(m, 1, true));
        const ints2 = tf.tensor2d([1, 2, 4, 5, 6, 9], [2, 3], 'int32');
        values.means = tf.tidy(() => [Array.from(tf.mean(m, 1, true).dataSync()), Array.from(tf.mean(m).dataSync()), Array.from(tf.mean(ints2, 0).dataSync())]);
        values.meanKernels = prof.kernels.map((k) => k.name);
        tf.dispose([m, ints2, prof.result]);
        console.log(JSON.stringify({ shared, values, leaked: be.numDataIds() - buffers }));
        process.exit(0);`);
      expect(r.status, r.stderr).toBe(0);
      const out = lastJson(r.stdout);
      expect(out.shared).toEqual([true, false, true, false]);
      // Disposing the original leaves the sharing tensors intact, and nothing is left over.
      const { means, meanKernels, ...values } = out.values;
      expect(values).toEqual({ same: [1.5, -2, 3, 4.25, 5, -6], sameShape: [1, 2, 3], flat: [1.5, -2, 3, 4.25, 5, -6], own: [1.5, -2, 3, 4.25, 5, -6], ints: [1, -2, 3, 4, 5, -6], intsDtype: 'int32' });
      expect(meanKernels).toEqual(['Mean']);
      expect(means).toEqual([[2, Math.fround(5.5 / 3)], [Math.fround(11.5 / 6)], [3, 4, 6.5]]);
      expect(out.leaked).toBe(0);
    } finally {
      tmp.cleanup();
    }
  });

  it.skipIf(!built && !needed)('fused kernels (linear, RMS and layer norm, GELU) give the unfused blocks\' values and gradients bit for bit, in one dispatch each', () => {
    const tmp = tempDir();
    try {
      const r = runTs(join(tmp.path, 'fused.mts'), `
        import { createRequire } from 'node:module';
        import { initBackend } from ${JSON.stringify(join(REPO, 'src/models/backend/index.ts'))};
        import * as ops from ${JSON.stringify(join(REPO, 'src/models/ops.ts'))};
        const tf = createRequire(${JSON.stringify(join(REPO, 'package.json'))})('@tensorflow/tfjs-core');
        await initBackend('tensorflow');
        const rand = (shape, seed) => tf.randomNormal(shape, 0, 1, 'float32', seed);
        const x3 = rand([3, 5, 8], 1), x2 = rand([7, 8], 2);
        const w = tf.variable(rand([8, 6], 3), true, 'w'), b = tf.variable(rand([6], 4), true, 'b');
        const frozen = tf.variable(rand([8, 6], 5), false, 'frozen');
        const g = tf.variable(rand([8], 6), true, 'g'), beta = tf.variable(rand([8], 7), true, 'beta'), gFrozen = tf.variable(rand([8], 8), false, 'gFrozen');
        const cases = {
          linear3: (x) => ops.linear(x, w, b), linear2: (x) => ops.linear(x, w), linearFrozen: (x) => ops.linear(x, frozen, b),
          rms: (x) => ops.rmsNorm(x, g, 1e-6), rmsUnit: (x) => ops.rmsNorm(x, null, 1e-6), rmsFrozen: (x) => ops.rmsNorm(x, gFrozen, 1e-6),
          layerNorm: (x) => ops.layerNorm(x, g, beta), gelu: (x) => ops.gelu(x),
        };
        const vars = [w, b, g, beta];
        const measure = async () => {
          const out = {};
          for (const [name, f] of Object.entries(cases)) {
            for (const [xn, x] of [['3d', x3], ['2d', x2]]) {
              const xv = tf.variable(x, true, name + xn + Math.random());
              const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(f(xv), rand(f(xv).shape, 9))), [xv, ...vars]);
              const prof = await tf.profile(() => f(xv));
              out[name + xn] = { value: value.dataSync()[0], grads: Object.fromEntries(Object.entries(grads).map(([k, t]) => [k.replace(/^.*(3d|2d).*$/, 'x'), Array.from(t.dataSync())])), kernels: prof.kernels.filter((k) => !['RandomStandardNormal'].includes(k.name)).length };
              tf.dispose([value, ...Object.values(grads), prof.result, xv]);
            }
          }
          return out;
        };
        const fusedOut = await measure();
        for (const k of ['EgmfLinear', 'EgmfRmsNormParts', 'EgmfLayerNormParts', 'EgmfGeluParts']) tf.unregisterKernel(k, 'tensorflow');
        const plainOut = await measure();
        console.log(JSON.stringify({ fusedOut, plainOut }));
        process.exit(0);`);
      expect(r.status, r.stderr).toBe(0);
      const { fusedOut, plainOut } = lastJson(r.stdout);
      for (const [name, f] of Object.entries(fusedOut as Record<string, any>)) {
        const p = plainOut[name];
        expect(f.value, name).toBe(p.value);
        expect(f.grads, name).toEqual(p.grads);
        expect(f.grads['x'], name).toBeDefined();
        expect(f.kernels, name).toBeLessThanOrEqual(p.kernels);
      }
      // A 3-D linear with a bias: reshape, product, add, reshape in one; a norm or GELU: its custom op and one kernel.
      expect([fusedOut.linear33d.kernels, plainOut.linear33d.kernels]).toEqual([1, 4]);
      expect([fusedOut.rms3d.kernels, fusedOut.layerNorm3d.kernels, fusedOut.gelu3d.kernels]).toEqual([2, 2, 2]);
      expect(plainOut.layerNorm3d.kernels).toBeGreaterThan(8);
    } finally {
      tmp.cleanup();
    }
  });

  it.skipIf(!built && !needed)('trains the same seed to the same losses as wasm (1e-5)', () => {
    const tmp = tempDir();
    try {
      const r = runTs(join(tmp.path, 'parity.mts'), `
        import { cpSync, mkdtempSync } from 'node:fs';
        import { join } from 'node:path';
        import { tmpdir } from 'node:os';
        import { initBackend } from ${JSON.stringify(join(REPO, 'src/models/backend/index.ts'))};
        import { Decoder, saveDecoder } from ${JSON.stringify(join(REPO, 'src/models/llm/index.ts'))};
        import { qwen3TokenizerDir, tinyQwen3Config } from ${JSON.stringify(join(REPO, 'src/models/llm/builtin.ts'))};
        import { loadExperiment } from ${JSON.stringify(join(REPO, 'src/config/experiment.ts'))};
        import { buildSetup, disposeSetup } from ${JSON.stringify(join(REPO, 'src/train/setup.ts'))};
        import { trainStep } from ${JSON.stringify(join(REPO, 'src/train/trainer.ts'))};
        import { AdamW } from ${JSON.stringify(join(REPO, 'src/train/optimizer.ts'))};
        const dir = mkdtempSync(join(tmpdir(), 'egmf-parity-'));
        await initBackend('wasm');
        const d = Decoder.random(tinyQwen3Config(), 7); saveDecoder(d, dir); d.dispose();
        for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(qwen3TokenizerDir(), f), join(dir, f));
        const out = {};
        for (const backend of ['wasm', 'tensorflow']) {
          const cfg = loadExperiment(${JSON.stringify(join(REPO, 'experiments/synthetic/meld.yaml'))}, ['backend=' + backend, 'llm.path=' + dir, 'seed=1111']);
          const s = await buildSetup(cfg, { seed: 1111 });
          const opt = new AdamW(s.variables, { eps: cfg.train.adam_eps, weightDecay: cfg.train.weight_decay });
          const plan = s.loaders.train.plan(0);
          const losses = [];
          for (let i = 0; i < 12; i++) losses.push(trainStep(s, opt, s.loaders.train.batch(plan[i]), cfg.train.lr, i, cfg.train.grad_clip).loss);
          out[backend] = { backend: s.backend.name, threads: s.backend.threads, losses };
          opt.dispose(); disposeSetup(s);
        }
        console.log(JSON.stringify(out));
        process.exit(0);`);
      expect(r.status, r.stderr).toBe(0);
      const out = lastJson(r.stdout) as Record<string, { backend: string; threads: number; losses: number[] }>;
      expect(out['tensorflow']!.backend).toBe('tensorflow');
      expect(out['wasm']!.backend).toBe('wasm');
      // With no thread setting, tensorflow takes the same default as wasm (1 on 2 cores).
      const fromEnv = process.env['TF_NUM_INTRAOP_THREADS'];
      expect(out['tensorflow']!.threads).toBe(fromEnv === undefined ? defaultThreads() : Number(fromEnv));
      const diffs = out['wasm']!.losses.map((l, i) => Math.abs(l - out['tensorflow']!.losses[i]!));
      expect(Math.max(...diffs), `wasm ${out['wasm']!.losses} vs tensorflow ${out['tensorflow']!.losses}`).toBeLessThanOrEqual(1e-5);
    } finally {
      tmp.cleanup();
    }
  });
});
