/**
 * Contract suites: the same assertions against every sampler and every pruner.
 * `contract.test.ts` applies them; a new implementation only needs a line there.
 */
import { describe, expect, it } from 'vitest';
import { rngFor, SearchSpace, type FrozenTrial, type Params, type Pruner, type Sampler, type TrialState } from '../../src/sweep/index.ts';

/** Enumerable, with a chained condition (nesterov needs momentum 0.9 needs sgd). */
export const DISCRETE_SPACE = new SearchSpace([
  { name: 'optimizer', dist: { type: 'categorical', values: ['adam', 'sgd'] } },
  { name: 'momentum', dist: { type: 'q_uniform', min: 0.5, max: 0.9, q: 0.1 }, when: { optimizer: ['sgd'] } },
  { name: 'nesterov', dist: { type: 'categorical', values: [true, false] }, when: { momentum: [0.9] } },
  { name: 'layers', dist: { type: 'int_uniform', min: 1, max: 3 } },
  { name: 'rank', dist: { type: 'int_uniform', min: 4, max: 16, q: 4 }, when: { layers: [2, 3] } },
  { name: 'lr', dist: { type: 'q_log_uniform', min: 0.001, max: 0.003, q: 0.001 } },
  { name: 'dropout', dist: { type: 'constant', value: 0.1 } },
]);

/** Continuous and log-scale parameters with a conditional one. */
export const CONTINUOUS_SPACE = new SearchSpace([
  { name: 'x', dist: { type: 'uniform', min: -3, max: 3 } },
  { name: 'lr', dist: { type: 'log_uniform', min: 1e-5, max: 1e-1 } },
  { name: 'kind', dist: { type: 'categorical', values: ['a', 'b', 'c'], probabilities: [0.2, 0.3, 0.5] } },
  { name: 'width', dist: { type: 'int_uniform', min: 8, max: 64 }, when: { kind: ['b', 'c'] } },
  { name: 'scale', dist: { type: 'uniform', min: 0, max: 1 }, when: { kind: ['c'], width: [8, 9, 10, 11, 12, 13, 14, 15, 16] } },
]);

/** A deterministic objective over any of the spaces' parameters. */
export function objective(p: Readonly<Params>): number {
  let v = 0;
  for (const [k, x] of Object.entries(p)) {
    if (typeof x === 'number') v += (k === 'lr' ? Math.log10(x) + 3 : x - 0.5) ** 2;
    else v += x === 'a' || x === 'adam' || x === true ? 0 : 0.5;
  }
  return v;
}

/** Runs `n` asks, recording a mix of states: every 7th trial stays running, some fail or are pruned. */
export function simulate(sampler: Sampler, space: SearchSpace, n: number): { history: FrozenTrial[]; asked: Params[] } {
  const history: FrozenTrial[] = [];
  const asked: Params[] = [];
  for (let i = 0; i < n; i++) {
    const params = sampler.ask(space, history, { number: i });
    if (params === null) break;
    asked.push(params);
    const v = objective(params);
    const state: TrialState = i % 7 === 3 ? 'running' : i % 7 === 5 ? 'failed' : i % 7 === 6 ? 'pruned' : 'complete';
    history.push({
      id: `c-t${i}`,
      number: i,
      params,
      state,
      intermediate: state === 'failed' ? [] : [[1, v + 1], [2, v + 0.5]],
      ...(state === 'complete' ? { value: v } : {}),
    });
  }
  return { history, asked };
}

export function samplerContract(name: string, make: (seed: number) => Sampler, opts: { continuous: boolean }): void {
  const spaces: [string, SearchSpace][] = [['discrete', DISCRETE_SPACE]];
  if (opts.continuous) spaces.push(['continuous', CONTINUOUS_SPACE]);
  describe(`sampler contract: ${name}`, () => {
    for (const [label, space] of spaces) {
      it(`${label}: answers from an empty history with a point of the space`, () => {
        const p = make(1).ask(space, [], { number: 0 });
        expect(p).not.toBeNull();
        expect(space.check(p as Params)).toBeUndefined();
      });

      it(`${label}: every proposal lies in the space and respects conditions (60 asks, mixed states)`, () => {
        const { asked } = simulate(make(3), space, 60);
        expect(asked.length).toBeGreaterThan(0);
        for (const p of asked) expect(space.check(p)).toBeUndefined();
        for (const p of asked) {
          if (p.optimizer === 'adam') expect(p).not.toHaveProperty('momentum');
          if (p.momentum !== 0.9) expect(p).not.toHaveProperty('nesterov');
          if (p.layers === 1) expect(p).not.toHaveProperty('rank');
          if (p.kind === 'a') expect(p).not.toHaveProperty('width');
          if (p.kind !== 'c') expect(p).not.toHaveProperty('scale');
        }
        // Conditional parameters are really sampled when their condition holds.
        const conditional = space === DISCRETE_SPACE ? ['momentum', 'rank'] : ['width'];
        for (const c of conditional) expect(asked.some((p) => c in p)).toBe(true);
      });

      it(`${label}: is deterministic for a seed and history`, () => {
        const a = simulate(make(5), space, 30).asked;
        const b = simulate(make(5), space, 30).asked;
        expect(b).toEqual(a);
        const { history } = simulate(make(5), space, 30);
        expect(make(5).ask(space, history, { number: 30 })).toEqual(make(5).ask(space, history, { number: 30 }));
      });

      it(`${label}: handles pending trials`, () => {
        const { history } = simulate(make(2), space, 20);
        const pending = history.map((t): FrozenTrial => ({ id: t.id, number: t.number, params: t.params, state: 'running', intermediate: [] }));
        const p = make(2).ask(space, pending, { number: 20 });
        if (p === null) return; // grid exhausted by the pending points themselves
        expect(space.check(p)).toBeUndefined();
        expect(make(2).ask(space, pending, { number: 20 })).toEqual(p);
      });
    }
  });
}

export interface PrunerCase {
  make: () => Pruner;
  /** Earliest step at which the pruner may stop a trial. */
  minStep: number;
  /** Whether the scripted scenarios must produce at least one stop. */
  prunes: boolean;
}

/** Random learning curves (1-based steps) with a fixed seed. */
function scenario(seed: number): FrozenTrial[] {
  const rng = rngFor('pruner-contract', seed);
  return Array.from({ length: 14 }, (_, i) => {
    const len = 1 + Math.floor(rng() * 10);
    const base = rng();
    const intermediate = Array.from({ length: len }, (_, s) => [s + 1, base + 0.05 * s + 0.1 * rng()] as const);
    const state: TrialState = i < 6 ? 'complete' : 'running';
    return { id: `p-t${i}`, number: i, params: {}, state, intermediate, ...(state === 'complete' ? { value: intermediate[len - 1][1] } : {}) };
  });
}

/** Each running trial as it was after each of its reports. */
function prefixes(t: FrozenTrial): FrozenTrial[] {
  return t.intermediate.map((_, k) => ({ ...t, intermediate: t.intermediate.slice(0, k + 1) }));
}

export function prunerContract(name: string, c: PrunerCase): void {
  describe(`pruner contract: ${name}`, () => {
    it('never stops a trial before its minimum step, nor one without reports', () => {
      let stops = 0;
      for (let seed = 0; seed < 10; seed++) {
        const trials = scenario(seed);
        for (const t of trials.filter((x) => x.state === 'running')) {
          for (const p of prefixes(t)) {
            const all = trials.map((x) => (x.id === t.id ? p : x));
            const pruned = c.make().shouldPrune(p, all);
            if (p.intermediate[p.intermediate.length - 1][0] < c.minStep) expect(pruned).toBe(false);
            if (pruned) stops++;
          }
          const empty = { ...t, intermediate: [] };
          expect(c.make().shouldPrune(empty, trials.map((x) => (x.id === t.id ? empty : x)))).toBe(false);
        }
      }
      if (c.prunes) expect(stops).toBeGreaterThan(0);
      else expect(stops).toBe(0);
    });

    it('never stops a finished trial', () => {
      for (let seed = 0; seed < 10; seed++) {
        const trials = scenario(seed);
        for (const t of trials) {
          for (const state of ['complete', 'pruned', 'failed'] as const) {
            const done = { ...t, state };
            expect(c.make().shouldPrune(done, trials.map((x) => (x.id === t.id ? done : x)))).toBe(false);
          }
        }
      }
    });

    it('is deterministic and independent of trial order', () => {
      for (let seed = 0; seed < 5; seed++) {
        const trials = scenario(seed);
        for (const t of trials.filter((x) => x.state === 'running')) {
          const a = c.make().shouldPrune(t, trials);
          expect(c.make().shouldPrune(t, trials)).toBe(a);
          expect(c.make().shouldPrune(structuredClone(t), [...trials].reverse().map((x) => structuredClone(x)))).toBe(a);
        }
      }
    });
  });
}
