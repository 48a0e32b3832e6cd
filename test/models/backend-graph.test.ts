/**
 * Captured TensorFlow graphs (src/models/backend/tensorflow_graph.ts): a region replayed as
 * one session run gives what eager execution gives, falls back (and records a new trace)
 * whenever the region differs from its traces, runs eagerly when it reads back what it
 * computes, and leaks nothing. Plus the SavedModel writer read back by TensorFlow's own
 * protobuf classes. Each case runs in a child process on the tensorflow backend, which CI
 * builds (scripts/test-env.sh).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, tempDir } from '../helpers.ts';
import { patchAddonSource, tfNodeAddon } from '../../src/models/backend/install.ts';
import { savedModelBytes, sessionConfigHex } from '../../src/models/backend/graphdef.ts';

const built = existsSync(tfNodeAddon(REPO));
const needed = process.env['CI'] !== undefined;
const tfPython = join(REPO, '.venv-tensorflow', 'bin', 'python');

function runTs(file: string, code: string, timeout = 300_000) {
  writeFileSync(file, code);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: REPO, encoding: 'utf8', timeout, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function lastJson(s: string): any {
  return JSON.parse(s.trim().split('\n').reverse().find((l) => l.startsWith('{'))!);
}

const imports = `
  import * as tf from ${JSON.stringify(join(REPO, 'node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js'))};
  import { initBackend, GraphCapture } from ${JSON.stringify(join(REPO, 'src/models/backend/index.ts'))};
  await initBackend('tensorflow', { threads: 1 });
  const cap = GraphCapture.forCurrentBackend();
  const binding = tf.backend().binding;
`;

describe('GraphCapture on the tensorflow backend', () => {
  it.skipIf(!built && !needed)('replays a region as one graph run with eager values, and falls back wherever the region differs', () => {
    const tmp = tempDir();
    try {
      const r = runTs(join(tmp.path, 'capture.mts'), `${imports}
        const w = tf.variable(tf.tensor2d([[0.5, -1, 2], [1.5, 0.25, -0.75], [-2, 1, 0.5], [0.1, 0.2, 0.3]]));
        // gather indices, a float scale and a reshape target all come from JavaScript, inside the region
        const region = (rows, idx, scale, shape, read = false, keep = false) => () => tf.variableGrads(() => {
          const x = tf.tensor2d(Array.from({ length: rows * 4 }, (_, i) => Math.sin(i + rows)), [rows, 4]);
          const h = tf.reshape(tf.tanh(tf.matMul(x, w)), shape);
          if (read) tf.sum(h).dataSync();
          const y = tf.mul(tf.gather(tf.reshape(h, [-1]), tf.tensor1d(idx, 'int32')), scale);
          if (keep) kept.push(tf.keep(y));
          return tf.sum(tf.square(y));
        }, [w]);
        const kept = [];
        const values = (g) => { const v = { loss: g.value.dataSync()[0], grad: Array.from(g.grads[w.name].dataSync()) }; tf.dispose([g.value, ...Object.values(g.grads)]); return v; };
        const cases = [
          [3, [0, 4, 8], 0.5, [9]], [3, [1, 2, 7], 0.5, [9]], [3, [8, 0, 3], 0.5, [9]],   // same shapes, other indices: replays
          [2, [0, 5], 0.5, [6]],                                                            // another row count: a new trace
          [3, [2, 2, 2], 0.5, [9]], [2, [1, 3], 0.5, [6]],                                  // both shapes replay
          [3, [0, 4, 8], 0.75, [9]], [3, [0, 4, 8], -2, [9]],                               // the scale changes: fed from then on
          [3, [0, 4, 8], 0.5, [3, 3]], [3, [0, 4, 8], 0.5, [3, 3]],                         // another reshape target: a new trace
          [3, [1, 4, 8], 0.5, [9], false, true], [3, [1, 4, 7], 0.5, [9]],                 // a tensor kept only sometimes: computed by falling back
        ];
        const out = { diffs: [], stats: [], kept: null };
        const t0 = binding.getNumOfTensors();
        for (const [i, c] of cases.entries()) {
          const eager = values(region(...c)());
          const captured = values(cap.run('k', region(...c)));
          out.diffs.push(Math.max(Math.abs(eager.loss - captured.loss), ...eager.grad.map((g, j) => Math.abs(g - captured.grad[j]))));
          out.stats.push({ ...cap.stats });
          if (i === 2) out.tensors2 = binding.getNumOfTensors();
        }
        out.kept = Array.from(kept[1].dataSync()).map((v) => Math.round(v * 1e6) / 1e6);
        out.keptEager = Array.from(tf.mul(tf.mul(tf.gather(tf.reshape(tf.tanh(tf.matMul(tf.tensor2d(Array.from({ length: 12 }, (_, i) => Math.sin(i + 3)), [3, 4]), w)), [-1]), tf.tensor1d([1, 4, 8], 'int32')), 0.5), 1).dataSync()).map((v) => Math.round(v * 1e6) / 1e6);
        tf.dispose(kept);
        // Many replays of one shape leave TensorFlow holding no more tensors than before.
        const n0 = binding.getNumOfTensors();
        for (let i = 0; i < 30; i++) values(cap.run('k', region(3, [i % 9, 4, 8], 0.5, [9])));
        out.nativeGrowth = binding.getNumOfTensors() - n0;
        // A region that reads what it computes runs eagerly, with the same values.
        const e1 = values(region(3, [0, 1, 2], 0.5, [9], true)());
        const c1 = values(cap.run('reads', region(3, [0, 1, 2], 0.5, [9], true)));
        const c2 = values(cap.run('reads', region(3, [0, 1, 2], 0.5, [9], true)));
        out.reads = { diff: Math.max(Math.abs(e1.loss - c1.loss), Math.abs(e1.loss - c2.loss)), stats: { ...cap.stats } };
        // A key whose shapes keep changing (a new row count every call) goes eager, with the same values.
        let churn = 0;
        for (let rows = 1; rows <= 20; rows++) {
          const e = values(region(rows, [0], 0.5, [rows * 3])());
          const c = values(cap.run('churn', region(rows, [0], 0.5, [rows * 3])));
          churn = Math.max(churn, Math.abs(e.loss - c.loss));
        }
        out.churn = { diff: churn, stats: { ...cap.stats } };
        // A region that throws: the error comes through, the key keeps working.
        try { cap.run('k', () => { tf.matMul(w, w); return 0; }); out.threw = false; } catch (e) { out.threw = String(e.message).slice(0, 80); }
        out.after = values(cap.run('k', region(3, [0, 4, 8], 0.5, [9]))).loss - values(region(3, [0, 4, 8], 0.5, [9])()).loss;
        // The gather that does not read its indices back still refuses one out of range.
        try { tf.gather(tf.tensor1d([1, 2, 3]), tf.tensor1d([1, 5], 'int32')).dataSync(); out.gather = 'no error'; } catch (e) { out.gather = String(e.message); }
        console.log(JSON.stringify(out));
        process.exit(0);`);
      expect(r.status, r.stderr).toBe(0);
      const out = lastJson(r.stdout);
      expect(out.diffs).toEqual(out.diffs.map(() => 0));
      const at = (i: number) => out.stats[i];
      // First call traces, the next two replay.
      expect([at(0).traces, at(2).replays, at(2).fallbacks]).toEqual([1, 2, 0]);
      // Another row count falls back once and records a second trace; then both replay.
      expect([at(3).traces, at(3).fallbacks]).toEqual([2, 1]);
      expect(at(5).replays - at(3).replays).toBe(2);
      // The changed scale falls back once; with it fed, the next value replays.
      expect(at(6).fallbacks - at(5).fallbacks).toBe(1);
      expect(at(7).replays - at(6).replays).toBe(1);
      // Another reshape target: one fallback, then a replay.
      expect(at(8).fallbacks - at(7).fallbacks).toBe(1);
      expect(at(9).replays - at(8).replays).toBe(1);
      // The kept tensor is computed (by falling back) and holds the eager value.
      expect(at(10).fallbacks - at(9).fallbacks).toBe(1);
      expect(at(10).lastFallback).toMatch(/still alive/);
      expect(out.kept).toEqual(out.keptEager);
      expect(out.nativeGrowth).toBe(0);
      expect(out.reads.diff).toBeLessThan(1e-6);
      expect(out.reads.stats.eager).toBeGreaterThanOrEqual(1);
      expect(out.reads.stats.lastFallback).toMatch(/reads a tensor it computes|was read before the region ended/);
      expect(out.churn.diff).toBe(0);
      expect(out.churn.stats.lastFallback).toMatch(/shapes keep changing: 16 fallbacks against 0 replays/);
      expect(out.churn.stats.eager - out.reads.stats.eager).toBe(3);
      expect(out.threw).toMatch(/size-incompatible|inner shapes/i);
      expect(Math.abs(out.after)).toBeLessThan(1e-6);
      expect(out.gather).toMatch(/indices\[1\] = 5 is not in \[0, 3\)/);
    } finally {
      tmp.cleanup();
    }
  });

  it.skipIf(!built && !needed)('variableGrads: replays run only the forward pass once a full replay confirms the backward pass, with eager gradients', () => {
    const tmp = tempDir();
    try {
      const r = runTs(join(tmp.path, 'grads.mts'), `${imports}
        import { seededDropout } from ${JSON.stringify(join(REPO, 'src/models/ops.ts'))};
        const w = tf.variable(tf.tensor2d([[0.5, -1, 2], [1.5, 0.25, -0.75], [-2, 1, 0.5], [0.1, 0.2, 0.3]]), true, 'w');
        const b = tf.variable(tf.tensor1d([0.1, -0.2, 0.3]), true, 'b');
        // A custom gradient whose backward pass makes a host tensor from the data: no replay may skip it.
        const dataGrad = (x, data) => tf.customGrad((t) => ({ value: tf.mul(t, 2), gradFunc: (dy) => tf.mul(dy, tf.tensor(data, t.shape)) }))(x);
        const kept = [];
        const loss = (step, opts = {}) => () => {
          const x = tf.tensor2d(Array.from({ length: 12 }, (_, i) => Math.sin(i + step)), [3, 4]);
          let h = tf.tanh(tf.add(tf.matMul(x, w), b));
          h = seededDropout(h, 0.25, 1000 + step);
          if (opts.data) h = dataGrad(h, Array.from({ length: 9 }, (_, i) => (i + step) % 3));
          if (opts.keep) kept.push(tf.keep(h));
          return tf.sum(tf.square(tf.gather(tf.reshape(h, [-1]), tf.tensor1d([step % 9, 4, 8], 'int32'))));
        };
        const values = (g) => {
          const v = { loss: g.value.dataSync()[0], grads: Object.fromEntries(Object.entries(g.grads).map(([k, t]) => [k, Array.from(t.dataSync())])) };
          tf.dispose([g.value, ...Object.values(g.grads)]);
          return v;
        };
        const diff = (a, c) => Math.max(Math.abs(a.loss - c.loss), ...Object.keys(a.grads).flatMap((k) => a.grads[k].map((x, i) => Math.abs(x - c.grads[k][i]))));
        const out = { plain: [], data: [], stats: [] };
        let n0 = 0;
        let t0 = 0;
        for (let step = 0; step < 12; step++) {
          // Growth is counted over the replays that skip the backward pass (a trace holds its backward constants).
          if (step === 2) [n0, t0] = [binding.getNumOfTensors(), tf.memory().numTensors];
          const eager = values(tf.variableGrads(loss(step), [w, b]));
          const captured = values(cap.variableGrads('plain', loss(step), [w, b]));
          out.plain.push(diff(eager, captured));
          out.keys = Object.keys(captured.grads).sort();
          out.stats.push({ ...cap.stats });
        }
        out.nativeGrowth = binding.getNumOfTensors() - n0;
        out.tensorGrowth = tf.memory().numTensors - t0;
        const before = cap.stats.forwardOnly;
        for (let step = 0; step < 6; step++) {
          const eager = values(tf.variableGrads(loss(step, { data: true }), [w, b]));
          out.data.push(diff(eager, values(cap.variableGrads('data', loss(step, { data: true }), [w, b]))));
        }
        out.dataForwardOnly = cap.stats.forwardOnly - before;
        // The forward pass keeps a tensor its trace did not: the record runs eagerly.
        const eagerKept = values(tf.variableGrads(loss(20, { keep: true }), [w, b]));
        const capturedKept = values(cap.variableGrads('plain', loss(20, { keep: true }), [w, b]));
        out.keptDiff = diff(eagerKept, capturedKept);
        out.kept = kept.map((t) => Array.from(t.dataSync()));
        out.keptStats = { ...cap.stats };
        tf.dispose(kept);
        console.log(JSON.stringify(out));
        process.exit(0);`);
      expect(r.status, r.stderr).toBe(0);
      const out = lastJson(r.stdout);
      expect(out.plain).toEqual(out.plain.map(() => 0));
      expect(out.keys).toEqual(['b', 'w']);
      // Traced, then one full replay confirms the backward pass; every later replay skips it.
      expect([out.stats[0].traces, out.stats[1].replays, out.stats[1].forwardOnly]).toEqual([1, 1, 0]);
      expect(out.stats[11].forwardOnly).toBe(10);
      expect(out.stats[11].fallbacks).toBe(0);
      expect(out.nativeGrowth).toBe(0);
      expect(out.tensorGrowth).toBe(0);
      // A backward pass that makes data-dependent host tensors is never skipped, and stays exact.
      expect(out.data).toEqual(out.data.map(() => 0));
      expect(out.dataForwardOnly).toBe(0);
      expect(out.keptDiff).toBe(0);
      expect(out.kept[0]).toEqual(out.kept[1]);
      expect(out.keptStats.lastFallback).toMatch(/ran its record eagerly/);
    } finally {
      tmp.cleanup();
    }
  });

  it.skipIf(!built && !needed)('trains the tiny EGMF to the same losses captured as eagerly, replaying every repeated batch shape', () => {
    const tmp = tempDir();
    try {
      const r = runTs(join(tmp.path, 'train.mts'), `${imports}
        import { cpSync, mkdtempSync } from 'node:fs';
        import { join } from 'node:path';
        import { tmpdir } from 'node:os';
        import { Decoder, saveDecoder } from ${JSON.stringify(join(REPO, 'src/models/llm/index.ts'))};
        import { qwen3TokenizerDir, tinyQwen3Config } from ${JSON.stringify(join(REPO, 'src/models/llm/builtin.ts'))};
        import { loadExperiment } from ${JSON.stringify(join(REPO, 'src/config/experiment.ts'))};
        import { buildSetup, disposeSetup } from ${JSON.stringify(join(REPO, 'src/train/setup.ts'))};
        import { trainStep } from ${JSON.stringify(join(REPO, 'src/train/trainer.ts'))};
        import { evaluate } from ${JSON.stringify(join(REPO, 'src/train/evaluate.ts'))};
        import { AdamW } from ${JSON.stringify(join(REPO, 'src/train/optimizer.ts'))};
        const dir = mkdtempSync(join(tmpdir(), 'egmf-graph-'));
        // A decoder far from uniform (std 0.3), so evaluation's answers differ from sample to sample.
        const d = Decoder.random(tinyQwen3Config(), 7, { std: 0.3 }); saveDecoder(d, dir); d.dispose();
        for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(qwen3TokenizerDir(), f), join(dir, f));
        const out = {};
        // 'again': a second model (new variables, which tfjs names anew) trained in the same
        // process on the traces the first one left.
        for (const graph of [false, true, 'again']) {
          const cfg = loadExperiment(${JSON.stringify(join(REPO, 'experiments/synthetic/meld.yaml'))}, ['backend=tensorflow', 'llm.path=' + dir, 'seed=1111', 'graph=' + (graph !== false)]);
          const s = await buildSetup(cfg, { seed: 1111 });
          const opt = new AdamW(s.variables, { eps: cfg.train.adam_eps, weightDecay: cfg.train.weight_decay });
          const plan = s.loaders.train.plan(0).slice(0, 4);
          const losses = [];
          const stats = [];
          for (let i = 0; i < 16; i++) {
            losses.push(trainStep(s, opt, s.loaders.train.batch(plan[i % 4]), cfg.train.lr, i, cfg.train.grad_clip).loss);
            stats.push(s.model.lastStats.ce);
          }
          out[graph] = { losses, ce: stats, tensors: tf.memory().numTensors, capture: { ...cap.stats } };
          if (graph === true) {
            // Evaluation: the first decoding step of each batch captured (traced, then replayed), against eager.
            // Random fusion weights, so the answers vary from sample to sample.
            s.model.fusion.variables().forEach((v, i) => v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', i + 1)));
            const before = tf.memory().numTensors;
            const ev = () => { const r = evaluate(s.model, s.loaders.valid, s.meta, { limit: 96, sampleGates: true }); return { preds: r.predictions.map((p) => p.pred), gates: r.sampleGates }; };
            const traced = ev();
            const replayed = ev();
            out.evalCapture = { ...cap.keyStats('egmf-predict') };
            out.evalTensors = tf.memory().numTensors - before;
            s.model.opts.regions = null;
            out.evals = { traced, replayed, eager: ev() };
          }
          opt.dispose(); disposeSetup(s);
        }
        console.log(JSON.stringify(out));
        process.exit(0);`);
      expect(r.status, r.stderr).toBe(0);
      const out = lastJson(r.stdout);
      const eager = out['false'];
      const captured = out['true'];
      // The graph runs the same ops, unoptimised (TensorFlow may pick another kernel for a
      // matmul in a graph: the last bits can differ).
      const diffs = eager.losses.map((l: number, i: number) => Math.abs(l - captured.losses[i]));
      expect(Math.max(...diffs), `eager ${eager.losses} vs captured ${captured.losses}`).toBeLessThan(1e-5);
      expect(Math.max(...eager.ce.map((c: number, i: number) => Math.abs(c - captured.ce[i])))).toBeLessThan(1e-5);
      expect(eager.capture.traces).toBe(0);
      // Four batches, at most four shapes: everything after the first pass replays.
      expect(captured.capture.traces).toBeLessThanOrEqual(4);
      expect(captured.capture.replays).toBeGreaterThanOrEqual(12);
      expect(captured.capture.eager).toBe(0);
      // From the third pass on (after each trace's confirming full replay), only the forward pass runs in JavaScript.
      expect(captured.capture.forwardOnly).toBeGreaterThanOrEqual(8);
      expect(captured.tensors).toBe(eager.tensors);
      // The second model replays the first one's traces, backward passes skipped, and trains
      // as the first did: gradients go to its own variables.
      const again = out['again'];
      expect(again.capture.traces).toBe(captured.capture.traces + out.evalCapture.traces);
      expect(again.capture.forwardOnly - captured.capture.forwardOnly).toBeGreaterThanOrEqual(12);
      expect(Math.max(...again.losses.map((l: number, i: number) => Math.abs(l - captured.losses[i])))).toBeLessThan(1e-5);
      // Evaluation replays its first decoding step as a graph, with the eager answers and gates.
      const ev = out.evals;
      expect(ev.eager.preds).toHaveLength(96);
      expect(new Set(ev.eager.preds).size, 'the answers vary').toBeGreaterThan(1);
      expect(ev.traced.preds).toEqual(ev.eager.preds);
      expect(ev.replayed.preds).toEqual(ev.eager.preds);
      const gateDiff = (a: Record<string, number>[]) => Math.max(...a.flatMap((g, i) => Object.keys(g).map((k) => Math.abs(g[k]! - ev.eager.gates[i][k]))));
      expect(gateDiff(ev.traced.gates)).toBeLessThan(1e-5);
      expect(gateDiff(ev.replayed.gates)).toBeLessThan(1e-5);
      expect(new Set(ev.eager.gates.map((g: Record<string, number>) => Object.values(g)[0]!.toFixed(4))).size, 'the gates vary').toBeGreaterThan(10);
      expect(out.evalCapture.traces).toBeGreaterThan(0);
      expect(out.evalCapture.replays).toBeGreaterThanOrEqual(out.evalCapture.traces);
      expect(out.evalCapture.eager).toBe(0);
      expect(out.evalTensors).toBe(0);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('the session options of captured graphs', () => {
  it.skipIf(!existsSync(tfPython) && !needed)("are a ConfigProto TensorFlow reads as meant: the thread counts, grappler off, optimizer level L0", () => {
    const r = spawnSync(tfPython, ['-c', `
import sys
from tensorflow.core.protobuf import config_pb2
c = config_pb2.ConfigProto(); c.ParseFromString(bytes.fromhex(sys.argv[1]))
print(c.intra_op_parallelism_threads, c.inter_op_parallelism_threads, c.graph_options.rewrite_options.disable_meta_optimizer, c.graph_options.optimizer_options.opt_level == config_pb2.OptimizerOptions.L0)`, sessionConfigHex({ intraThreads: 3, interThreads: 1 })], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').pop()).toBe('3 1 True True');
  });

  it.skipIf(!built && !needed)('reach the session through the patched addon, which names a bad config instead of loading', () => {
    const tmp = tempDir();
    try {
      const r = runTs(join(tmp.path, 'config.mts'), `${imports}
        import { mkdirSync, writeFileSync } from 'node:fs';
        import { savedModelBytes } from ${JSON.stringify(join(REPO, 'src/models/backend/graphdef.ts'))};
        const dir = ${JSON.stringify(join(tmp.path, 'm'))};
        mkdirSync(dir);
        writeFileSync(dir + '/saved_model.pb', savedModelBytes([{ name: 'x0', op: 'Placeholder', inputs: [], attrs: [['dtype', { kind: 'type', value: 1 }], ['shape', { kind: 'shape', value: [2] }]] }, { name: 'n0', op: 'Neg', inputs: ['x0'], attrs: [['T', { kind: 'type', value: 1 }]] }], 2474));
        process.env.EGMF_TF_SESSION_CONFIG = 'ffff';
        let bad = '';
        try { binding.loadSavedModel(dir, 'serve'); } catch (e) { bad = String(e.message); }
        delete process.env.EGMF_TF_SESSION_CONFIG;
        const id = binding.loadSavedModel(dir, 'serve');
        const x = binding.createTensor([2], binding.TF_FLOAT, new Float32Array([1.5, -2]));
        const [y] = binding.runSavedModel(id, [x], 'x0:0', 'n0:0');
        console.log(JSON.stringify({ bad, y: Array.from(binding.tensorDataSync(y.id)) }));
        process.exit(0);`);
      expect(r.status, r.stderr).toBe(0);
      const out = lastJson(r.stdout);
      expect(out.bad).toMatch(/Invalid EGMF_TF_SESSION_CONFIG/);
      expect(out.y).toEqual([-1.5, 2]);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('patchAddonSource', () => {
  it('patches tfjs-node\'s LoadSavedModel once, and names a source it does not recognise', () => {
    const tmp = tempDir();
    try {
      const file = join(tmp.path, 'tfjs_backend.cc');
      const src = '#include <cstring>\nnapi_value TFJSBackend::LoadSavedModel(napi_env env) {\n  TF_SessionOptions *session_options = TF_NewSessionOptions();\n  return nullptr;\n}\n';
      writeFileSync(file, src);
      expect(patchAddonSource(file)).toBe(true);
      const once = readFileSync(file, 'utf8');
      expect(once).toMatch(/#include <cstdlib>/);
      expect(once).toMatch(/TF_NewSessionOptions\(\);\n  \/\/ egmf: EGMF_TF_SESSION_CONFIG[\s\S]*TF_SetConfig\(session_options/);
      expect(patchAddonSource(file)).toBe(false);
      expect(readFileSync(file, 'utf8')).toBe(once);
      writeFileSync(file, 'int main() {}\n');
      expect(() => patchAddonSource(file)).toThrow(/tfjs_backend\.cc.*not tfjs-node|not tfjs-node.*tfjs_backend\.cc/s);
      expect(readFileSync(file, 'utf8')).toBe('int main() {}\n');
    } finally {
      tmp.cleanup();
    }
  });
});

describe('savedModelBytes', () => {
  it.skipIf(!existsSync(tfPython) && !needed)("is read back by TensorFlow's own SavedModel protobuf, every attribute kind intact", () => {
    const tmp = tempDir();
    try {
      const bytes = savedModelBytes([
        { name: 'x0', op: 'Placeholder', inputs: [], attrs: [['dtype', { kind: 'type', value: 1 }], ['shape', { kind: 'shape', value: [16, -1, 64] }]] },
        { name: 'x1', op: 'Const', inputs: [], attrs: [['dtype', { kind: 'type', value: 3 }], ['value', { kind: 'tensor', dtype: 3, shape: [3], values: [2, -1, 300], int32: true }]] },
        { name: 'x2', op: 'Const', inputs: [], attrs: [['dtype', { kind: 'type', value: 1 }], ['value', { kind: 'tensor', dtype: 1, shape: [], values: [0.5], int32: false }]] },
        { name: 'n0', op: 'Reshape', inputs: ['x0', 'x1:0'], attrs: [['T', { kind: 'type', value: 1 }], ['Tshape', { kind: 'type', value: 3 }]] },
        { name: 'n1', op: 'Fake', inputs: ['n0:0'], attrs: [['s', { kind: 'string', value: 'SAME' }], ['i', { kind: 'int', value: -1 }], ['il', { kind: 'int', value: [0, -2, 70000] }], ['f', { kind: 'float', value: 1.5 }], ['fl', { kind: 'float', value: [0.25, -3] }], ['b', { kind: 'bool', value: true }], ['bl', { kind: 'bool', value: [false, true] }]] },
      ], 2474);
      const file = join(tmp.path, 'saved_model.pb');
      writeFileSync(file, bytes);
      const r = spawnSync(tfPython, ['-c', `
import json, sys
from tensorflow.core.protobuf import saved_model_pb2
from google.protobuf import json_format
sm = saved_model_pb2.SavedModel(); sm.ParseFromString(open(sys.argv[1], 'rb').read())
print(json.dumps(json_format.MessageToDict(sm)))`, file], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
      expect(r.status, r.stderr).toBe(0);
      const sm = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(sm.savedModelSchemaVersion).toBe('1');
      const mg = sm.metaGraphs[0];
      expect(mg.metaInfoDef.tags).toEqual(['serve']);
      expect(mg.graphDef.versions.producer).toBe(2474);
      const nodes = Object.fromEntries(mg.graphDef.node.map((n: { name: string }) => [n.name, n]));
      expect(nodes.x0.attr.shape.shape.dim.map((d: { size: string }) => Number(d.size))).toEqual([16, -1, 64]);
      expect(nodes.x0.attr.dtype.type).toBe('DT_FLOAT');
      expect(nodes.x1.attr.value.tensor).toEqual({ dtype: 'DT_INT32', tensorShape: { dim: [{ size: '3' }] }, intVal: [2, -1, 300] });
      expect(nodes.x2.attr.value.tensor).toEqual({ dtype: 'DT_FLOAT', tensorShape: {}, floatVal: [0.5] });
      expect(nodes.n0.input).toEqual(['x0', 'x1:0']);
      const a = nodes.n1.attr;
      expect(Buffer.from(a.s.s, 'base64').toString()).toBe('SAME');
      expect([a.i.i, a.il.list.i, a.f.f, a.fl.list.f, a.b.b, a.bl.list.b]).toEqual(['-1', ['0', '-2', '70000'], 1.5, [0.25, -3], true, [false, true]]);
    } finally {
      tmp.cleanup();
    }
  });
});
