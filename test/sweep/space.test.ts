import { describe, expect, it } from 'vitest';
import { EgmfError } from '../../src/errors.ts';
import { NumericDistribution, SearchSpace, makeDistribution, rngFor, type ParamDef } from '../../src/sweep/index.ts';

describe('distributions', () => {
  it('log_uniform works on ln(value) and round-trips', () => {
    const d = makeDistribution({ type: 'log_uniform', min: 1e-5, max: 1e-1 });
    expect(d.low).toBeCloseTo(Math.log(1e-5), 12);
    expect(d.high).toBeCloseTo(Math.log(1e-1), 12);
    expect(d.fromInternal(d.toInternal(3e-3))).toBeCloseTo(3e-3, 15);
    expect(d.fromInternal(100)).toBeCloseTo(0.1, 15); // clamped
    expect(d.contains(0.2)).toBe(false);
    // Log-uniform: a quarter of the draws per decade.
    const rng = rngFor(1);
    const draws = Array.from({ length: 4000 }, () => d.sample(rng) as number);
    const below1e3 = draws.filter((x) => x < 1e-3).length / draws.length;
    expect(below1e3).toBeGreaterThan(0.47);
    expect(below1e3).toBeLessThan(0.53);
  });

  it('int_uniform widens its internal range by half a step so every value is equally likely', () => {
    const d = makeDistribution({ type: 'int_uniform', min: 4, max: 16, q: 4 }) as NumericDistribution;
    expect([d.low, d.high]).toEqual([2, 18]);
    expect(d.enumerate()).toEqual([4, 8, 12, 16]);
    expect(d.fromInternal(9.9)).toBe(8);
    expect(d.fromInternal(10.1)).toBe(12);
    expect(d.bin(8)).toEqual([6, 10]);
    expect(d.contains(12)).toBe(true);
    expect(d.contains(10)).toBe(false);
    const rng = rngFor(2);
    const counts = new Map<number, number>();
    for (let i = 0; i < 4000; i++) {
      const v = d.sample(rng);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    for (const v of [4, 8, 12, 16]) expect(Math.abs((counts.get(v) ?? 0) - 1000)).toBeLessThan(120);
  });

  it('q_uniform snaps to min + k*q and q_log_uniform to the same grid in value space', () => {
    const q = makeDistribution({ type: 'q_uniform', min: 0.05, max: 0.32, q: 0.05 });
    expect(q.enumerate()).toEqual([0.05, 0.1, 0.15, 0.2, 0.25, 0.3]);
    expect(q.fromInternal(0.174)).toBe(0.15);
    expect(q.fromInternal(0.176)).toBe(0.2);
    const ql = makeDistribution({ type: 'q_log_uniform', min: 4, max: 64, q: 4 });
    expect(ql.low).toBeCloseTo(Math.log(4), 12);
    expect(ql.fromInternal(Math.log(21))).toBe(20);
    expect(ql.bin(4)).toEqual([Math.log(4), Math.log(6)]);
    expect(ql.contains(64)).toBe(true);
    expect(ql.contains(62)).toBe(false);
  });

  it('categoricals map to indices and honour probabilities', () => {
    const d = makeDistribution({ type: 'categorical', values: ['a', { k: 1, j: [2] }, null], probabilities: [0.7, 0.2, 0.1] });
    expect(d.toInternal({ j: [2], k: 1 })).toBe(1); // key order does not matter
    expect(d.fromInternal(2.5)).toBeNull();
    const rng = rngFor(3);
    const n = Array.from({ length: 3000 }, () => d.sample(rng)).filter((v) => v === 'a').length;
    expect(n / 3000).toBeGreaterThan(0.66);
    expect(n / 3000).toBeLessThan(0.74);
  });
});

describe('conditional activation', () => {
  // Declared child-first: the order must still put parents first.
  const defs: ParamDef[] = [
    { name: 'c', dist: { type: 'uniform', min: 0, max: 1 }, when: { b: [true] } },
    { name: 'b', dist: { type: 'categorical', values: [true, false] }, when: { a: ['x', 'y'] } },
    { name: 'a', dist: { type: 'categorical', values: ['x', 'y', 'z'] } },
  ];
  const space = new SearchSpace(defs);

  it('orders parameters topologically and chains conditions', () => {
    expect(space.order).toEqual(['a', 'b', 'c']);
    expect(space.isActive('b', { a: 'x' })).toBe(true);
    expect(space.isActive('b', { a: 'z' })).toBe(false);
    expect(space.isActive('c', { a: 'z' })).toBe(false); // parent inactive → child inactive
    expect(space.check({ a: 'x', b: true, c: 0.5 })).toBeUndefined();
    expect(space.check({ a: 'x', b: false })).toBeUndefined();
    expect(space.check({ a: 'z', b: true })).toMatch(/'b' is set but its condition does not hold/);
    expect(space.check({ a: 'x' })).toMatch(/active parameter 'b' is missing/);
    expect(space.check({ a: 'x', b: true, c: 2 })).toMatch(/'c' = 2 is outside/);
    expect(space.check({ a: 'z', zz: 1 })).toMatch(/unknown parameter 'zz'/);
  });

  it('random draws never contain inactive parameters', () => {
    const rng = rngFor(9);
    for (let i = 0; i < 300; i++) expect(space.check(space.sampleRandom(rng))).toBeUndefined();
  });

  it.each([
    [[{ name: 'a', dist: { type: 'constant', value: 1 }, when: { b: [1] } }, { name: 'b', dist: { type: 'constant', value: 1 }, when: { a: [1] } }], /cycle: (a -> b -> a|b -> a -> b)/, 'parameters.'],
    [[{ name: 'a', dist: { type: 'constant', value: 1 }, when: { a: [1] } }], /conditional on itself/, 'parameters.a.when.a'],
    [[{ name: 'a', dist: { type: 'constant', value: 1 }, when: { nope: [1] } }], /unknown parameter 'nope'/, 'parameters.a.when.nope'],
    [[{ name: 'o', dist: { type: 'categorical', values: ['adam', 'sgd'] } }, { name: 'm', dist: { type: 'constant', value: 1 }, when: { o: ['sdg'] } }], /can never be taken.*possible values: "adam", "sgd"/, 'parameters.m.when.o'],
  ] as [ParamDef[], RegExp, string][])('rejects bad conditions (%#)', (bad, msg, key) => {
    let err: unknown;
    try {
      new SearchSpace(bad, 'sweep.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EgmfError);
    expect((err as EgmfError).message).toMatch(msg);
    expect((err as EgmfError).context.key).toContain(key);
    expect((err as EgmfError).context.file).toBe('sweep.yaml');
  });
});
