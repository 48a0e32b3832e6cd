import { EgmfError } from '../errors.ts';

/**
 * Summaries over seeds: a number from one seed is an anecdote, so every table that reports
 * several seeds gives their mean ± sample standard deviation (n − 1 in the denominator; 0 for
 * one seed) and how many seeds it summarises.
 */
export interface MeanStd {
  mean: number;
  std: number;
  n: number;
}

export function meanStd(values: readonly number[]): MeanStd {
  const v = values.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

/** Mean ± std of every key present in any record. */
export function meanStdMetrics(all: readonly Record<string, number>[]): Record<string, MeanStd> {
  const keys = [...new Set(all.flatMap((m) => Object.keys(m)))];
  return Object.fromEntries(keys.map((k) => [k, meanStd(all.map((m) => m[k] ?? Number.NaN))]).filter(([, s]) => (s as MeanStd).n > 0));
}

export function formatMeanStd(s: MeanStd, digits = 4): string {
  return s.n > 1 ? `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}` : s.mean.toFixed(digits);
}

/** `--seeds 1111,2222`: comma-separated integers, none repeated; anything else is an error naming the flag. */
export function parseSeedList(spec: string, key = 'seeds'): number[] {
  const seeds = spec.split(',').map((x) => {
    const n = Number(x.trim());
    if (x.trim() === '' || !Number.isInteger(n)) throw new EgmfError(`seeds must be integers, got '${x}'`, { key });
    return n;
  });
  const dup = seeds.find((s, i) => seeds.indexOf(s) !== i);
  if (dup !== undefined) throw new EgmfError(`seed ${dup} is given twice`, { key });
  return seeds;
}
