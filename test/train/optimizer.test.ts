import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/models/backend/index.ts';
import { AdamW, clipByGlobalNorm } from '../../src/train/optimizer.ts';
import { runPython } from '../helpers.ts';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('AdamW', () => {
  it('matches the PyTorch AdamW update rule (numpy transcription)', () => {
    const w = tf.variable(tf.tensor2d([[0.5, -1.0], [2.0, 0.25]]), true, 'w');
    const b = tf.variable(tf.tensor1d([0.1, -0.2]), true, 'b');
    const opt = new AdamW(new Map<string, tf.Variable>([['w', w], ['b', b]]), { eps: 1e-4, weightDecay: 0.01 });
    const gw = [[0.3, -0.1], [0.05, 0.7]];
    const gb = [0.2, -0.4];
    for (let i = 0; i < 3; i++) opt.apply({ w: tf.mul(tf.tensor2d(gw), i + 1), b: tf.mul(tf.tensor1d(gb), i + 1) }, 0.01 * (i + 1));
    const r = runPython(`
import numpy as np, json
w = np.array([[0.5, -1.0], [2.0, 0.25]]); b = np.array([0.1, -0.2])
gw = np.array([[0.3, -0.1], [0.05, 0.7]]); gb = np.array([0.2, -0.4])
state = {k: [np.zeros(2 if k == 'b' else (2, 2)), np.zeros(2 if k == 'b' else (2, 2))] for k in 'wb'}
p = {'w': w, 'b': b}
for t in range(1, 4):
    lr = 0.01 * t
    for k, g in (('w', gw * t), ('b', gb * t)):
        m, v = state[k]
        if k == 'w': p[k] = p[k] * (1 - lr * 0.01)
        m[:] = 0.9 * m + 0.1 * g; v[:] = 0.999 * v + 0.001 * g * g
        mh = m / (1 - 0.9 ** t); vh = v / (1 - 0.999 ** t)
        p[k] = p[k] - lr * mh / (np.sqrt(vh) + 1e-4)
print(json.dumps({'w': p['w'].ravel().tolist(), 'b': p['b'].tolist()}))
`);
    expect(r.stderr).toBe('');
    const want = JSON.parse(r.stdout) as { w: number[]; b: number[] };
    const gotW = Array.from(w.dataSync());
    const gotB = Array.from(b.dataSync());
    want.w.forEach((x, i) => expect(gotW[i]).toBeCloseTo(x, 5));
    want.b.forEach((x, i) => expect(gotB[i]).toBeCloseTo(x, 5));
  });

  it('round-trips its state exactly and refuses mismatched state', () => {
    const a = tf.variable(tf.tensor1d([1, 2, 3]), true, 'a');
    const opt = new AdamW(new Map([['a', a]]));
    opt.apply({ a: tf.tensor1d([0.1, 0.2, 0.3]) }, 0.1);
    const s = opt.state();
    const a2 = tf.variable(a.clone(), true, 'a2');
    const opt2 = new AdamW(new Map([['a', a2]]));
    opt2.load(s);
    opt.apply({ a: tf.tensor1d([0.3, 0.2, 0.1]) }, 0.1);
    opt2.apply({ a: tf.tensor1d([0.3, 0.2, 0.1]) }, 0.1);
    expect(Array.from(a2.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(opt2.step).toBe(2);
    const opt3 = new AdamW(new Map([['a', tf.variable(tf.zeros([4]), true, 'a3')]]));
    expect(() => opt3.load(s, 'ckpt.safetensors')).toThrow(/ckpt\.safetensors, key 'a': optimiser m shape \[3\] differs/);
  });

  it('host and device modes give the same update, with clipping and a variable without a gradient', () => {
    const run = (mode: 'host' | 'device') => {
      const w = tf.variable(tf.tensor2d([[0.5, -1.0, 0.3], [2.0, 0.25, -0.7]]), true, `w-${mode}`);
      const b = tf.variable(tf.tensor1d([0.1, -0.2]), true, `b-${mode}`);
      const c = tf.variable(tf.tensor1d([1, 2, 3]), true, `c-${mode}`);
      const opt = new AdamW(new Map<string, tf.Variable>([['w', w], ['b', b], ['c', c]]), { eps: 1e-4, weightDecay: 0.05, mode });
      expect(opt.mode).toBe(mode);
      const norms: number[] = [];
      for (let i = 0; i < 4; i++) {
        const grads: Record<string, tf.Tensor> = { w: tf.mul(tf.tensor2d([[0.3, -0.1, 2], [0.05, 0.7, -1]]), i + 1), b: tf.tensor1d([0.2 * i, -0.4]) };
        if (i % 2 === 1) grads['c'] = tf.tensor1d([3, -4, 0]);
        norms.push(opt.update(grads, 0.01 * (i + 1), 2.5));
        tf.dispose(Object.values(grads));
      }
      const out = { w: Array.from(w.dataSync()), b: Array.from(b.dataSync()), c: Array.from(c.dataSync()), norms, state: opt.state() };
      opt.dispose();
      return out;
    };
    const host = run('host');
    const device = run('device');
    for (const k of ['w', 'b', 'c'] as const) host[k].forEach((x, i) => expect(device[k][i]).toBeCloseTo(x, 6));
    host.norms.forEach((x, i) => expect(device.norms[i]).toBeCloseTo(x, 5));
    // The norm is the one before clipping: step 2's gradients have norm √(0.6²+0.2²+4²+0.1²+1.4²+2²+0.2²+0.4²+3²+4²) > 2.5.
    expect(host.norms[1]).toBeCloseTo(Math.sqrt(0.36 + 0.04 + 16 + 0.01 + 1.96 + 4 + 0.04 + 0.16 + 9 + 16), 5);
    for (const which of ['m', 'v'] as const) {
      for (const n of ['w', 'b', 'c']) host.state[which][n]!.data.forEach((x, i) => expect(device.state[which][n]!.data[i]).toBeCloseTo(x, 6));
    }
    // c had gradients at steps 2 and 4 only; its moments saw only those.
    expect(host.state.m['c']!.data[0]).toBeCloseTo(0.9 * 0.1 * 3 * (2.5 / host.norms[1]!) + 0.1 * 3 * (2.5 / host.norms[3]!), 4);
  });

  it('a learning-rate scale acts as a parameter group of its own: that variable steps and decays as at lr × scale, in both modes', () => {
    const run = (mode: 'host' | 'device', scaled: boolean) => {
      const w = tf.variable(tf.tensor2d([[0.5, -1.0], [2.0, 0.25]]), true);
      const u = tf.variable(tf.tensor2d([[0.3, 0.1], [-0.6, 1.5]]), true);
      const opt = new AdamW(new Map<string, tf.Variable>([['w', w], ['u', u]]), { eps: 1e-4, weightDecay: 0.1, mode, ...(scaled ? { lrScale: (n: string) => (n === 'u' ? 4 : 1) } : {}) });
      for (let i = 0; i < 3; i++) {
        const grads = { w: tf.tensor2d([[0.3, -0.1], [0.05, 0.7]]), u: tf.tensor2d([[-0.2, 0.4], [0.9, -0.1]]) };
        opt.update(grads, 0.01 * (scaled ? 1 : 4), 0);
        tf.dispose(Object.values(grads));
      }
      const out = { w: Array.from(w.dataSync()), u: Array.from(u.dataSync()) };
      opt.dispose();
      w.dispose();
      u.dispose();
      return out;
    };
    for (const mode of ['host', 'device'] as const) {
      const scaled = run(mode, true);
      const at4 = run(mode, false); // every variable at 4 × lr
      scaled.u.forEach((x, i) => expect(x).toBeCloseTo(at4.u[i]!, 6));
      expect(scaled.w.some((x, i) => Math.abs(x - at4.w[i]!) > 1e-3)).toBe(true); // w kept lr
    }
    const x = tf.variable(tf.zeros([2]), true);
    expect(() => new AdamW(new Map([['x', x]]), { lrScale: () => 0 })).toThrow(/key 'x': learning-rate scale must be a positive number, got 0/);
    x.dispose();
  });

  it('refuses a gradient that does not fit its variable, naming it', () => {
    const w = tf.variable(tf.zeros([2, 2]), true, 'w-bad');
    const opt = new AdamW(new Map([['w', w]]));
    expect(() => opt.update({ w: tf.zeros([3]) }, 0.1, 0)).toThrow(/key 'w': gradient of shape \[3\] does not fit the variable's \[2,2\]/);
  });

  it('clips by global norm', () => {
    const { grads, norm } = clipByGlobalNorm({ x: tf.tensor1d([3, 0]), y: tf.tensor1d([0, 4]) }, 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(Array.from(grads.x!.dataSync())[0]).toBeCloseTo(0.6, 5);
    expect(Array.from(grads.y!.dataSync())[1]).toBeCloseTo(0.8, 5);
    const same = clipByGlobalNorm({ x: tf.tensor1d([0.1]) }, 1);
    expect(Array.from(same.grads.x!.dataSync())[0]).toBeCloseTo(0.1, 6);
  });
});
