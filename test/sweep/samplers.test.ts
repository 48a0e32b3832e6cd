import { describe, expect, it } from 'vitest';
import { EgmfError } from '../../src/errors.ts';
import { GridSampler, RandomSampler, SearchSpace, TpeSampler, enumerateGrid, paramsKey, splitTrials, type FrozenTrial, type Params, type Sampler } from '../../src/sweep/index.ts';
import { categoricalMixture, defaultWeights, logNormalMass, logPdfNumeric, numericMixture } from '../../src/sweep/samplers/parzen.ts';

const complete = (number: number, params: Params, value: number): FrozenTrial => ({ id: `t${number}`, number, params, state: 'complete', value, intermediate: [] });

/** Best value after `n` sequential trials (no parallelism). */
function bestAfter(sampler: Sampler, space: SearchSpace, f: (p: Params) => number, n: number): number {
  const history: FrozenTrial[] = [];
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const p = sampler.ask(space, history, { number: i }) as Params;
    const v = f(p);
    best = Math.min(best, v);
    history.push(complete(i, p, v));
  }
  return best;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('grid sampler', () => {
  const space = new SearchSpace([
    { name: 'opt', dist: { type: 'categorical', values: ['adam', 'sgd'] } },
    { name: 'momentum', dist: { type: 'categorical', values: [0.8, 0.9] }, when: { opt: ['sgd'] } },
    { name: 'nesterov', dist: { type: 'categorical', values: [true, false] }, when: { momentum: [0.9] } },
    { name: 'layers', dist: { type: 'int_uniform', min: 1, max: 3 } },
    { name: 'rank', dist: { type: 'q_uniform', min: 8, max: 16, q: 8 }, when: { layers: [2, 3] } },
    { name: 'dropout', dist: { type: 'constant', value: 0.1 } },
  ]);

  it('enumerates exactly the cartesian product, conditionals only where they hold', () => {
    const expected: Params[] = [];
    const optBranches: Params[] = [{ opt: 'adam' }, { opt: 'sgd', momentum: 0.8 }, { opt: 'sgd', momentum: 0.9, nesterov: true }, { opt: 'sgd', momentum: 0.9, nesterov: false }];
    const layerBranches: Params[] = [{ layers: 1 }, { layers: 2, rank: 8 }, { layers: 2, rank: 16 }, { layers: 3, rank: 8 }, { layers: 3, rank: 16 }];
    for (const a of optBranches) for (const b of layerBranches) expected.push({ ...a, ...b, dropout: 0.1 });
    const grid = enumerateGrid(space);
    expect(grid).toHaveLength(20);
    expect(new Set(grid.map(paramsKey))).toEqual(new Set(expected.map(paramsKey)));
  });

  it('asks every point once, skips pending ones, then reports exhaustion with null', () => {
    const s = new GridSampler();
    const history: FrozenTrial[] = [];
    for (let i = 0; i < 20; i++) {
      const p = s.ask(space, history) as Params;
      expect(p).not.toBeNull();
      // Alternate running and finished: running points are taken too.
      history.push(i % 2 === 0 ? { id: `t${i}`, number: i, params: p, state: 'running', intermediate: [] } : complete(i, p, i));
    }
    expect(new Set(history.map((t) => paramsKey(t.params))).size).toBe(20);
    expect(s.ask(space, history)).toBeNull();
    expect(s.size(space)).toBe(20);
  });

  it('enumerates quantised values without floating-point noise', () => {
    const q = new SearchSpace([{ name: 'wd', dist: { type: 'q_uniform', min: 0, max: 0.3, q: 0.1 } }]);
    expect(enumerateGrid(q).map((p) => p.wd)).toEqual([0, 0.1, 0.2, 0.3]);
  });

  it('refuses a continuous distribution, naming the parameter', () => {
    const c = new SearchSpace([{ name: 'train.lr', dist: { type: 'log_uniform', min: 1e-5, max: 1e-2 } }]);
    expect(() => new GridSampler().ask(c, [])).toThrow(EgmfError);
    expect(() => new GridSampler().ask(c, [])).toThrow(/parameters\.train\.lr/);
  });
});

describe('TPE beats random search on synthetic objectives (40 trials, 10 seeds)', () => {
  // 4-D: two shifted quadratic terms, a log-scale learning rate (optimum 1e-3), an optimiser offset.
  const quadSpace = new SearchSpace([
    { name: 'x', dist: { type: 'uniform', min: -10, max: 10 } },
    { name: 'y', dist: { type: 'uniform', min: -10, max: 10 } },
    { name: 'lr', dist: { type: 'log_uniform', min: 1e-6, max: 1 } },
    { name: 'opt', dist: { type: 'categorical', values: ['sgd', 'adam', 'rms', 'lion'] } },
  ]);
  const offset: Record<string, number> = { sgd: 1, adam: 0, rms: 2, lion: 3 };
  const quad = (p: Params): number => ((p.x as number) - 1.3) ** 2 + ((p.y as number) + 2.1) ** 2 + (Math.log10(p.lr as number) + 3) ** 2 + offset[p.opt as string];
  const braninSpace = new SearchSpace([
    { name: 'x1', dist: { type: 'uniform', min: -5, max: 10 } },
    { name: 'x2', dist: { type: 'uniform', min: 0, max: 15 } },
  ]);
  const branin = (p: Params): number => {
    const [x1, x2] = [p.x1 as number, p.x2 as number];
    const b = 5.1 / (4 * Math.PI ** 2);
    const c = 5 / Math.PI;
    const t = 1 / (8 * Math.PI);
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
  };
  // Conditional: the width exists only for the MLP, the L2 penalty only for the linear model.
  const condSpace = new SearchSpace([
    { name: 'model', dist: { type: 'categorical', values: ['linear', 'mlp'] } },
    { name: 'width', dist: { type: 'int_uniform', min: 8, max: 512, q: 8 }, when: { model: ['mlp'] } },
    { name: 'l2', dist: { type: 'log_uniform', min: 1e-6, max: 1 }, when: { model: ['linear'] } },
    { name: 'lr', dist: { type: 'log_uniform', min: 1e-5, max: 1 } },
    { name: 'x', dist: { type: 'uniform', min: -10, max: 10 } },
  ]);
  const cond = (p: Params): number =>
    (Math.log10(p.lr as number) + 2.5) ** 2 + ((p.x as number) - 3) ** 2 / 4 +
    (p.model === 'mlp' ? (Math.log2(p.width as number) - 7) ** 2 / 2 : 2 + (Math.log10(p.l2 as number) + 4) ** 2 / 4);
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

  // Measured: quadratic random 5.61 vs TPE 3.17 (TPE better on 8/10 seeds); Branin (min 0.398)
  // random 1.78 vs TPE 1.01 (8/10); conditional random 1.54 vs TPE 0.33 (10/10).
  // The assertions leave room but fail for a TPE that scores l/g the wrong way round.
  it.each([
    ['shifted quadratic (log-scale + categorical)', quadSpace, quad, 0.7],
    ['Branin', braninSpace, branin, 0.75],
    ['conditional space', condSpace, cond, 0.5],
  ] as const)('%s: mean best-of-40 of TPE below margin x random', (_name, space, f, margin) => {
    const rnd = seeds.map((s) => bestAfter(new RandomSampler(s), space, f, 40));
    const tpe = seeds.map((s) => bestAfter(new TpeSampler({ goal: 'minimize', seed: s }), space, f, 40));
    expect(mean(tpe)).toBeLessThan(margin * mean(rnd));
    expect(tpe.filter((v, i) => v < rnd[i]).length).toBeGreaterThanOrEqual(7);
  });

  it('maximising works the same way (negated Branin)', () => {
    const rnd = seeds.slice(0, 5).map((s) => bestAfter(new RandomSampler(s), braninSpace, branin, 40));
    const tpe = seeds.slice(0, 5).map((s) => {
      const sampler = new TpeSampler({ goal: 'maximize', seed: s });
      const history: FrozenTrial[] = [];
      let best = Infinity;
      for (let i = 0; i < 40; i++) {
        const p = sampler.ask(braninSpace, history, { number: i });
        best = Math.min(best, branin(p));
        history.push(complete(i, p, -branin(p)));
      }
      return best;
    });
    expect(mean(tpe)).toBeLessThan(0.75 * mean(rnd));
  });
});

describe('TPE internals', () => {
  it('uses random start-up trials, then the model', () => {
    const space = new SearchSpace([{ name: 'x', dist: { type: 'uniform', min: 0, max: 100 } }]);
    const history = Array.from({ length: 30 }, (_, i) => complete(i, { x: (i * 37) % 100 }, Math.abs(((i * 37) % 100) - 42)));
    const s = new TpeSampler({ goal: 'minimize', seed: 1 });
    // With the good trials around 42, proposals concentrate there.
    const proposals = Array.from({ length: 20 }, (_, k) => s.ask(space, history, { number: 30 + k }).x as number);
    expect(mean(proposals.map((x) => Math.abs(x - 42)))).toBeLessThan(10);
    // Below n_startup_trials finished trials (running ones do not count) it is uniform random.
    const early = [...history.slice(0, 9), { ...history[9], state: 'running' as const, value: undefined }];
    const fromEarly = Array.from({ length: 200 }, (_, k) => s.ask(space, early, { number: 100 + k }).x as number);
    expect(mean(fromEarly.map((x) => Math.abs(x - 42)))).toBeGreaterThan(20);
  });

  it('constant liar: a pending trial pushes the next proposal away from it', () => {
    const space = new SearchSpace([{ name: 'x', dist: { type: 'uniform', min: 0, max: 100 } }]);
    const history = Array.from({ length: 20 }, (_, i) => complete(i, { x: (i * 37) % 100 }, Math.abs(((i * 37) % 100) - 42)));
    const plain = new TpeSampler({ goal: 'minimize', seed: 4, constantLiar: false });
    const liar = new TpeSampler({ goal: 'minimize', seed: 4 });
    const p0 = plain.ask(space, history, { number: 20 });
    expect(liar.ask(space, history, { number: 20 })).toEqual(p0); // no pending: identical
    const pending: FrozenTrial[] = [...history, ...[0, 1, 2].map((k) => ({ id: `p${k}`, number: 21 + k, params: p0, state: 'running' as const, intermediate: [] }))];
    expect(plain.ask(space, pending, { number: 20 })).toEqual(p0);
    expect(liar.ask(space, pending, { number: 20 }).x).not.toBeCloseTo(p0.x as number, 6);
  });

  it('splits good/bad with gamma(n) = min(ceil(0.1 n), 25), pruned ranked after complete by progress', () => {
    const o = { goal: 'minimize' as const, gamma: 0.1, gammaMax: 25, constantLiar: true };
    const trials: FrozenTrial[] = [
      ...Array.from({ length: 12 }, (_, i) => complete(i, {}, 11 - i)),
      { id: 'p', number: 12, params: {}, state: 'pruned', intermediate: [[1, 0.1]] },
      { id: 'r', number: 13, params: {}, state: 'running', intermediate: [] },
      { id: 'f', number: 14, params: {}, state: 'failed', intermediate: [] },
    ];
    const { below, above } = splitTrials(trials, o);
    expect(below.map((t) => t.number)).toEqual([10, 11]); // n = 13 → ceil(1.3) = 2 best
    expect(above.map((t) => t.number)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13]); // failed left out
    const pruned: FrozenTrial[] = [
      complete(0, {}, 5),
      ...[[3, 0.9], [5, 0.7], [5, 0.2], [1, 0.0]].map(([step, v], i): FrozenTrial => ({ id: `q${i}`, number: i + 1, params: {}, state: 'pruned', intermediate: [[step, v]] })),
      ...Array.from({ length: 16 }, (_, i): FrozenTrial => ({ id: `e${i}`, number: 5 + i, params: {}, state: 'pruned', intermediate: [] })),
    ];
    // n = 21 → 3 good: the complete trial, then the pruned ones that got furthest (step 5, best value first).
    expect(splitTrials(pruned, o).below.map((t) => t.number)).toEqual([0, 2, 3]);
    expect(splitTrials(pruned, { ...o, goal: 'maximize' }).below.map((t) => t.number)).toEqual([0, 2, 3]);
    expect(splitTrials(Array.from({ length: 400 }, (_, i) => complete(i, {}, i)), o).below).toHaveLength(25);
  });
});

describe('Parzen estimators (Optuna rules)', () => {
  it('default weights ramp old trials after 25', () => {
    expect(defaultWeights(3)).toEqual([1, 1, 1]);
    const w = defaultWeights(30);
    expect(w).toHaveLength(30);
    [1 / 30, 0.275, 0.5166667, 0.7583333, 1].forEach((x, i) => expect(w[i]).toBeCloseTo(x, 6));
    expect(w.slice(5)).toEqual(new Array(25).fill(1));
  });

  it('bandwidths: neighbour distances, outer kernels ignore endpoints, magic clip, prior σ = range', () => {
    expect(numericMixture([1, 1.2], -5, 5, { priorWeight: 1, magicClip: true }).sigmas).toEqual([2.5, 2.5, 10]);
    const m = numericMixture([-4, -2, 0.5, 3], -5, 5, { priorWeight: 1, magicClip: true });
    expect(m.sigmas).toEqual([2, 2, 2.5, 2.5, 10]);
    expect(m.mus).toEqual([-4, -2, 0.5, 3, 0]);
    expect(m.weights).toEqual([0.2, 0.2, 0.2, 0.2, 0.2]);
    let integral = 0;
    for (let x = -5; x < 5; x += 0.001) integral += Math.exp(logPdfNumeric(m, x + 0.0005)) * 0.001;
    expect(integral).toBeCloseTo(1, 4);
  });

  it('categorical: smoothed counts with prior weight', () => {
    const p = categoricalMixture([0, 0, 1], [1 / 3, 1 / 3, 1 / 3], { priorWeight: 1, magicClip: true });
    [0.476190, 0.333333, 0.190476].forEach((x, i) => expect(p[i]).toBeCloseTo(x, 5));
  });

  it('normal masses are accurate in the body and the far tails', () => {
    expect(Math.exp(logNormalMass(-1, 1))).toBeCloseTo(0.682689, 6);
    expect(logNormalMass(5, 6) / Math.log(2.85664e-7)).toBeCloseTo(1, 5);
    expect(logNormalMass(-31, -30) / -454.3201).toBeCloseTo(1, 4);
    expect(logNormalMass(1, 1)).toBe(-Infinity);
  });
});
