/**
 * Median stopping with the semantics of Optuna's MedianPruner: once `minTrials` trials have
 * completed and the trial has reported a step ≥ `warmupSteps`, it stops if its best
 * intermediate value so far is worse than the median of the completed trials' values at
 * that same step. Steps where fewer than `minValuesAtStep` completed trials reported are
 * never judged.
 */
import type { FrozenTrial, Goal } from '../space.ts';
import { lastReport, type Pruner } from './types.ts';

export interface MedianOptions {
  /** No trial is judged at a step below this (1-based epochs: the epochs it always runs). */
  warmupSteps: number;
  /** Completed trials needed before anything is stopped (Optuna's n_startup_trials). */
  minTrials: number;
  /** Completed values needed at the step itself (Optuna's n_min_trials, default 1). */
  minValuesAtStep?: number;
  goal: Goal;
}

export class MedianPruner implements Pruner {
  readonly name = 'median';
  constructor(private readonly o: MedianOptions) {}

  shouldPrune(trial: FrozenTrial, allTrials: readonly FrozenTrial[]): boolean {
    if (trial.state !== 'running') return false;
    const last = lastReport(trial);
    if (!last) return false;
    const completed = allTrials.filter((t) => t.state === 'complete' && t.id !== trial.id);
    if (completed.length === 0 || completed.length < this.o.minTrials) return false;
    const step = last[0];
    if (step < this.o.warmupSteps) return false;
    const values = completed.flatMap((t) => t.intermediate.filter(([s]) => s === step).map(([, v]) => v));
    if (values.length === 0 || values.length < (this.o.minValuesAtStep ?? 1)) return false;
    const med = median(values);
    const seen = trial.intermediate.map(([, v]) => v);
    if (this.o.goal === 'maximize') return Math.max(...seen) < med;
    return Math.min(...seen) > med;
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}
