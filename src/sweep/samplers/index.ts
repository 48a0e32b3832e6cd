import type { SweepSpec } from '../spec.ts';
import { GridSampler } from './grid.ts';
import { RandomSampler } from './random.ts';
import { TpeSampler } from './tpe.ts';
import type { Sampler } from './types.ts';

export { GridSampler, enumerateGrid, paramsKey, MAX_GRID_POINTS } from './grid.ts';
export { RandomSampler } from './random.ts';
export { TpeSampler, splitTrials, type TpeOptions } from './tpe.ts';
export type { Sampler, SampleContext } from './types.ts';

/** The sampler a spec asks for. */
export function createSampler(spec: SweepSpec): Sampler {
  const s = spec.sampler;
  switch (spec.method) {
    case 'grid':
      return new GridSampler();
    case 'random':
      return new RandomSampler(s.seed);
    case 'tpe':
      return new TpeSampler({
        goal: spec.metric.goal,
        seed: s.seed,
        nStartupTrials: s.n_startup_trials,
        nEiCandidates: s.n_ei_candidates,
        gamma: s.gamma,
        gammaMax: s.gamma_max,
        priorWeight: s.prior_weight,
        constantLiar: s.constant_liar,
      });
  }
}
