import { describe, expect, it } from 'vitest';
import { formatMeanStd, meanStd, meanStdMetrics, parseSeedList } from '../../src/train/seeds.ts';
import { runPython } from '../helpers.ts';

describe('mean ± std over seeds', () => {
  it('is the sample standard deviation, as numpy with ddof=1', () => {
    const v = [0.477, 0.72, 0.61, 0.55, 0.63];
    const py = runPython('import json, sys, numpy as np; v = json.loads(sys.argv[1]); print(json.dumps([float(np.mean(v)), float(np.std(v, ddof=1))]))', [JSON.stringify(v)]);
    expect(py.status, py.stderr).toBe(0);
    const [mean, std] = JSON.parse(py.stdout) as [number, number];
    const s = meanStd(v);
    expect(s.mean).toBeCloseTo(mean, 12);
    expect(s.std).toBeCloseTo(std, 12);
    expect(s.n).toBe(5);
    expect(formatMeanStd(s)).toBe(`${mean.toFixed(4)} ± ${std.toFixed(4)}`);
  });

  it('one seed has no spread; missing and non-finite values are left out, not zero', () => {
    expect(meanStd([0.5])).toEqual({ mean: 0.5, std: 0, n: 1 });
    expect(formatMeanStd(meanStd([0.5]))).toBe('0.5000');
    expect(meanStd([]).n).toBe(0);
    const m = meanStdMetrics([{ acc: 0.5, f1: 0.4 }, { acc: 0.7 }, { acc: Number.NaN, f1: 0.6 }]);
    expect(m.acc!.n).toBe(2);
    expect(m.acc!.mean).toBeCloseTo(0.6, 12);
    expect(m.acc!.std).toBeCloseTo(Math.sqrt(0.02), 12);
    expect(m.f1!.n).toBe(2);
    expect(m.f1!.mean).toBeCloseTo(0.5, 12);
  });

  it('parses a --seeds list, refusing non-integers and repeats with the flag named', () => {
    expect(parseSeedList('1111, 2222,3333')).toEqual([1111, 2222, 3333]);
    expect(() => parseSeedList('1111,x')).toThrow(/key 'seeds': seeds must be integers, got 'x'/);
    expect(() => parseSeedList('1111,')).toThrow(/seeds must be integers/);
    expect(() => parseSeedList('1.5')).toThrow(/seeds must be integers/);
    expect(() => parseSeedList('7,7')).toThrow(/seed 7 is given twice/);
  });
});
