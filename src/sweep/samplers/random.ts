import { rngFor, type FrozenTrial, type Params, type SearchSpace } from '../space.ts';
import type { SampleContext, Sampler } from './types.ts';

/** Independent draws from every active parameter's distribution, seeded per trial number. */
export class RandomSampler implements Sampler {
  readonly name = 'random';
  constructor(private readonly seed = 0) {}
  ask(space: SearchSpace, _history: readonly FrozenTrial[], ctx: SampleContext): Params {
    return space.sampleRandom(rngFor(this.seed, 'random', ctx.number));
  }
}
