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

  it('clips by global norm', () => {
    const { grads, norm } = clipByGlobalNorm({ x: tf.tensor1d([3, 0]), y: tf.tensor1d([0, 4]) }, 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(Array.from(grads.x!.dataSync())[0]).toBeCloseTo(0.6, 5);
    expect(Array.from(grads.y!.dataSync())[1]).toBeCloseTo(0.8, 5);
    const same = clipByGlobalNorm({ x: tf.tensor1d([0.1]) }, 1);
    expect(Array.from(same.grads.x!.dataSync())[0]).toBeCloseTo(0.1, 6);
  });
});
