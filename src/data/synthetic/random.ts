/**
 * Seeded randomness for the synthetic suite. Every sample draws from its own generator,
 * seeded from (seed, dataset, split, index), so a sample does not depend on the order in
 * which others are generated and streaming a split never changes its bytes.
 */
import seedrandom from 'seedrandom';

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal (Box-Muller, caching the second value). */
  normal(): number;
  pick<T>(items: readonly T[]): T;
}

export function makeRng(seed: string): Rng {
  const prng = seedrandom.alea(seed);
  let spare: number | null = null;
  const next = (): number => prng();
  return {
    next,
    int: (n) => Math.floor(prng() * n),
    uniform: (lo, hi) => lo + (hi - lo) * prng(),
    normal: () => {
      if (spare !== null) {
        const s = spare;
        spare = null;
        return s;
      }
      let u = prng();
      while (u <= 1e-12) u = prng();
      const r = Math.sqrt(-2 * Math.log(u));
      const th = 2 * Math.PI * prng();
      spare = r * Math.sin(th);
      return r * Math.cos(th);
    },
    pick: (items) => items[Math.floor(prng() * items.length)]!,
  };
}

/** Fisher-Yates in place. */
export function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}
