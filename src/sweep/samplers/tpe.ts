/**
 * Tree-structured Parzen Estimator, independent per parameter, after Optuna's TPESampler:
 *  - the first `nStartupTrials` finished trials are random;
 *  - for each active parameter, the finished trials where it was active are ranked
 *    (complete ones by value; then pruned ones by how far they got and their last
 *    intermediate value, as Optuna does) and the best γ(n) = min(ceil(gamma·n), gammaMax)
 *    form the good set, the rest the bad set;
 *  - constant liar: running trials join the bad set, so parallel asks spread out
 *    (Optuna's `constant_liar=True`);
 *  - `nEiCandidates` draws from l(x) (good) are scored by log l(x) − log g(x) and the best wins.
 * Conditional parameters are sampled in topological order, so a child is drawn only
 * when its condition holds on the values already chosen.
 */
import { CategoricalDistribution, NumericDistribution, rngFor, type FrozenTrial, type Goal, type JsonValue, type Params, type Rng, type SearchSpace } from '../space.ts';
import { categoricalMixture, logMassNumeric, logPdfNumeric, numericMixture, pickIndex, sampleNumeric, type EstimatorOptions } from './parzen.ts';
import type { SampleContext, Sampler } from './types.ts';

export interface TpeOptions {
  goal: Goal;
  seed?: number;
  nStartupTrials?: number;
  nEiCandidates?: number;
  gamma?: number;
  gammaMax?: number;
  priorWeight?: number;
  constantLiar?: boolean;
}

export class TpeSampler implements Sampler {
  readonly name = 'tpe';
  private readonly o: Required<TpeOptions>;
  constructor(opts: TpeOptions) {
    this.o = { seed: 0, nStartupTrials: 10, nEiCandidates: 24, gamma: 0.1, gammaMax: 25, priorWeight: 1, constantLiar: true, ...opts };
  }

  ask(space: SearchSpace, history: readonly FrozenTrial[], ctx: SampleContext): Params {
    const rng = rngFor(this.o.seed, 'tpe', ctx.number);
    const finished = history.filter((t) => t.state === 'complete' || t.state === 'pruned');
    if (finished.length < this.o.nStartupTrials) return space.sampleRandom(rng);
    const params: Params = {};
    for (const name of space.order) {
      if (!space.isActive(name, params)) continue;
      params[name] = this.sampleParam(space, name, history, rng);
    }
    return params;
  }

  private sampleParam(space: SearchSpace, name: string, history: readonly FrozenTrial[], rng: Rng): JsonValue {
    const dist = space.dist(name);
    const relevant = history.filter((t) => name in t.params);
    const { below, above } = splitTrials(relevant, this.o);
    const est: EstimatorOptions = { priorWeight: this.o.priorWeight, magicClip: true };
    if (dist instanceof CategoricalDistribution) {
      const idx = (ts: FrozenTrial[]): number[] => ts.map((t) => dist.indexOf(t.params[name])).filter((i) => i >= 0);
      const l = categoricalMixture(idx(below), dist.prior(), est);
      const g = categoricalMixture(idx(above), dist.prior(), est);
      let best = -1;
      let bestScore = -Infinity;
      for (let c = 0; c < this.o.nEiCandidates; c++) {
        const i = pickIndex(l, rng);
        const score = Math.log(l[i]) - Math.log(g[i]);
        if (score > bestScore) [best, bestScore] = [i, score];
      }
      return dist.spec.values[best];
    }
    if (!(dist instanceof NumericDistribution)) return dist.sample(rng);
    const internal = (ts: FrozenTrial[]): number[] => ts.filter((t) => dist.contains(t.params[name])).map((t) => dist.toInternal(t.params[name]));
    const l = numericMixture(internal(below), dist.low, dist.high, est);
    const g = numericMixture(internal(above), dist.low, dist.high, est);
    let best: number | undefined;
    let bestScore = -Infinity;
    for (let c = 0; c < this.o.nEiCandidates; c++) {
      const v = dist.fromInternal(sampleNumeric(l, rng));
      const bin = dist.bin(v);
      const score = bin ? logMassNumeric(l, bin[0], bin[1]) - logMassNumeric(g, bin[0], bin[1]) : logPdfNumeric(l, dist.toInternal(v)) - logPdfNumeric(g, dist.toInternal(v));
      if (best === undefined || score > bestScore) [best, bestScore] = [v, score];
    }
    return best as number;
  }
}

/** Splits trials into the good (below) and bad (above) sets, each in trial-number order. */
export function splitTrials(trials: readonly FrozenTrial[], o: { goal: Goal; gamma: number; gammaMax: number; constantLiar: boolean }): { below: FrozenTrial[]; above: FrozenTrial[] } {
  const sign = o.goal === 'minimize' ? 1 : -1;
  const complete = trials.filter((t) => t.state === 'complete' && t.value !== undefined).sort((a, b) => sign * ((a.value as number) - (b.value as number)) || a.number - b.number);
  const pruned = trials.filter((t) => t.state === 'pruned').sort((a, b) => comparePruned(a, b, sign));
  const ranked = [...complete, ...pruned];
  const nBelow = Math.min(Math.ceil(o.gamma * ranked.length), o.gammaMax);
  const byNumber = (a: FrozenTrial, b: FrozenTrial): number => a.number - b.number;
  const above = ranked.slice(nBelow);
  if (o.constantLiar) above.push(...trials.filter((t) => t.state === 'running'));
  return { below: ranked.slice(0, nBelow).sort(byNumber), above: above.sort(byNumber) };
}

/** Further is better; at the same step, a better last value is better; no values is worst. */
function comparePruned(a: FrozenTrial, b: FrozenTrial, sign: number): number {
  const la = a.intermediate[a.intermediate.length - 1];
  const lb = b.intermediate[b.intermediate.length - 1];
  if (!la || !lb) return (la ? -1 : lb ? 1 : 0) || a.number - b.number;
  return lb[0] - la[0] || sign * (la[1] - lb[1]) || a.number - b.number;
}
