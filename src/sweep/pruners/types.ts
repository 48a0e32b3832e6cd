import type { FrozenTrial } from '../space.ts';

/**
 * Answers one question: should this running trial stop now? Called after each
 * `report(step, value)`; `allTrials` holds every trial of the study (the one asked about
 * included, in any state). Pruners keep no state: the answer is a function of the trials.
 */
export interface Pruner {
  readonly name: string;
  shouldPrune(trial: FrozenTrial, allTrials: readonly FrozenTrial[]): boolean;
}

export class NopPruner implements Pruner {
  readonly name = 'none';
  shouldPrune(): boolean {
    return false;
  }
}

/** The last reported [step, value], if any. */
export function lastReport(t: FrozenTrial): readonly [number, number] | undefined {
  return t.intermediate[t.intermediate.length - 1];
}
