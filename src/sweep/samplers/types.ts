import type { FrozenTrial, Params, SearchSpace } from '../space.ts';

export interface SampleContext {
  /** Number of the configuration being asked for; samplers derive their random stream from it. */
  readonly number: number;
}

/**
 * Proposes the next configuration. `history` holds every earlier configuration, running
 * ones included (state 'running'), so a sampler can avoid or account for pending work.
 * A sampler keeps no state between calls: the same space, history and number always give
 * the same answer, which is what makes a replayed study continue exactly where it stopped.
 */
export interface Sampler {
  readonly name: string;
  /** The next configuration, or null when the space is exhausted (grid search only). */
  ask(space: SearchSpace, history: readonly FrozenTrial[], ctx: SampleContext): Params | null;
}
