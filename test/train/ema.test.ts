import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/models/backend/index.ts';
import { WeightEma } from '../../src/train/ema.ts';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.ts';
import type { TrainerState } from '../../src/train/checkpoint.ts';
import { tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-ema-');
afterAll(() => tmp.cleanup());
beforeAll(async () => {
  await initBackend('cpu');
});

const STATE: TrainerState = {
  version: 1, step: 0, epoch: 0, batchInEpoch: 0, seed: 1, configDigest: 'x',
  earlyStopping: { best: null, bestEpoch: -1, bad: 0 }, runId: null, history: [], finished: false,
};

function vars(a: number[], b: number[][]): Map<string, tf.Variable> {
  return new Map<string, tf.Variable>([['a', tf.variable(tf.tensor1d(a))], ['b', tf.variable(tf.tensor2d(b))]]);
}

describe('WeightEma', () => {
  it('averages with the warm-up decay min(d, (1 + n) / (10 + n)) and puts the raw weights back after use, also on error', async () => {
    const v = vars([1, 2], [[0, 4]]);
    const ema = new WeightEma(v, 0.5);
    const a = v.get('a')!;
    a.assign(tf.tensor1d([3, 2]));
    ema.update(); // n = 0: d = min(0.5, 0.1) = 0.1 → 0.1·1 + 0.9·3
    expect(Array.from(ema.shadow.get('a')!)).toEqual([Math.fround(0.1 * 1 + 0.9 * 3), 2]);
    a.assign(tf.tensor1d([5, 2]));
    ema.update(); // n = 1: d = min(0.5, 2 / 11)
    const d = 2 / 11;
    expect(ema.shadow.get('a')![0]).toBeCloseTo(d * (0.1 * 1 + 0.9 * 3) + (1 - d) * 5, 5);
    for (let i = 0; i < 50; i++) ema.update(); // the decay reaches 0.5 and the average the weights
    expect(ema.shadow.get('a')![0]).toBeCloseTo(5, 5);
    expect(ema.updates).toBe(52);
    a.assign(tf.tensor1d([-7, 9]));
    const seen = await ema.withAverage(() => Array.from(a.dataSync()));
    expect(seen[0]).toBeCloseTo(5, 5);
    expect(Array.from(a.dataSync())).toEqual([-7, 9]);
    await expect(ema.withAverage(() => { throw new Error('boom'); })).rejects.toThrow(/boom/);
    expect(Array.from(a.dataSync())).toEqual([-7, 9]);
    for (const x of v.values()) x.dispose();
  });

  it('travels with a checkpoint as buffers: a loaded average continues exactly', () => {
    const v = vars([1, 2], [[3, 4]]);
    const ema = new WeightEma(v, 0.9);
    for (let i = 0; i < 3; i++) {
      v.get('b')!.assign(tf.tensor2d([[i, -i]]));
      ema.update();
    }
    const dir = join(tmp.path, 'ckpt');
    saveCheckpoint(dir, v, null, STATE, ema.buffers());
    const other = new WeightEma(v, 0.9);
    expect(other.updates).toBe(0);
    loadCheckpoint(dir, v, null, other.buffers());
    expect(other.updates).toBe(3);
    expect(Array.from(other.shadow.get('b')!)).toEqual(Array.from(ema.shadow.get('b')!));
    ema.update();
    other.update();
    expect(Array.from(other.shadow.get('b')!)).toEqual(Array.from(ema.shadow.get('b')!));
    for (const x of v.values()) x.dispose();
  });

  it('refuses a decay outside (0, 1), naming the key', () => {
    const v = vars([1], [[1]]);
    for (const d of [0, 1, 1.5, Number.NaN]) expect(() => new WeightEma(v, d)).toThrow(/key 'train\.ema'/);
    for (const x of v.values()) x.dispose();
  });
});
