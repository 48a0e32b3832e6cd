import { describe, expect, it } from 'vitest';
import { warmupCosine } from '../../src/train/schedule.ts';
import { EarlyStopping } from '../../src/train/early-stopping.ts';
import { Progress } from '../../src/train/progress.ts';

describe('warm-up + cosine schedule', () => {
  it('warms up linearly, peaks, then decays to the floor', () => {
    const o = { peak: 1e-3, totalSteps: 100, warmupRatio: 0.1 };
    expect(warmupCosine(0, o)).toBeCloseTo(1e-4, 12);
    expect(warmupCosine(9, o)).toBeCloseTo(1e-3, 12);
    expect(warmupCosine(10, o)).toBeCloseTo(1e-3, 12);
    expect(warmupCosine(55, o)).toBeCloseTo(5e-4, 12);
    expect(warmupCosine(100, o)).toBeCloseTo(0, 12);
    expect(warmupCosine(100, { ...o, minRatio: 0.1 })).toBeCloseTo(1e-4, 12);
    const lrs = Array.from({ length: 90 }, (_, i) => warmupCosine(i + 10, o));
    for (let i = 1; i < lrs.length; i++) expect(lrs[i]!).toBeLessThanOrEqual(lrs[i - 1]!);
  });
});

describe('early stopping', () => {
  it('stops after patience epochs without improvement and ignores NaN', () => {
    const es = new EarlyStopping('min', 2);
    expect(es.update(1.0, 0)).toEqual({ improved: true, stop: false });
    expect(es.update(0.8, 1)).toEqual({ improved: true, stop: false });
    expect(es.update(Number.NaN, 2)).toEqual({ improved: false, stop: false });
    expect(es.update(0.9, 3)).toEqual({ improved: false, stop: true });
    expect(es.bestEpoch).toBe(1);
    const mx = new EarlyStopping('max', 1);
    mx.update(0.5, 0);
    expect(mx.update(0.5, 1).stop).toBe(true);
  });
});

describe('progress', () => {
  it('draws a bar on a terminal and plain lines elsewhere', () => {
    let t = 0;
    const tty: string[] = [];
    const p = new Progress({ total: 10, label: 'epoch 1/2', stream: { isTTY: true, columns: 120, write: (s) => tty.push(s) > 0 }, now: () => t });
    t = 2;
    p.tick(4, { loss: 0.5 });
    expect(tty[0]).toMatch(/^\repoch 1\/2 \[#+-+\] 4\/10 2\.00 it\/s ETA 0:03 elapsed 0:02  loss 0\.5000/);
    const plain: string[] = [];
    t = 0;
    const q = new Progress({ total: 3, stream: { write: (s) => plain.push(s) > 0 }, plainEvery: 5, now: () => t });
    t = 1; q.tick();
    t = 6; q.tick(1, { loss: 1.25 });
    t = 7; q.tick();
    expect(plain).toEqual([
      '67% 2/3 0.33 it/s ETA 0:03 elapsed 0:06  loss 1.250\n',
      '100% 3/3 0.43 it/s ETA 0:00 elapsed 0:07  loss 1.250\n',
    ]);
  });
});
