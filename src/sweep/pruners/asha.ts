/**
 * Asynchronous successive halving (Li et al. 2018, arXiv 1810.05934) with the semantics of
 * Optuna's SuccessiveHalvingPruner. Rung k sits at step min_resource·η^k (steps below
 * max_resource; reaching max_resource is completion, not a rung). When a trial's report
 * first reaches a rung, its value there is compared with the values every other trial
 * recorded at that rung so far (its value at its first report at or past the rung step),
 * with no synchronisation:
 *   promote if its rank among the n competing values (itself included) is within the top
 *   floor(n/η); while n < η nobody would qualify, and since a stopped trial cannot be
 *   resumed later (as in Optuna) the trial then continues only if it is the best so far.
 * Ties favour the trial being judged.
 */
import type { FrozenTrial, Goal } from '../space.ts';
import { lastReport, type Pruner } from './types.ts';

export interface AshaOptions {
  /** Step (epoch) of the first rung; no trial is stopped before it. */
  minResource: number;
  /** Reduction factor η: one in η trials is promoted at each rung. */
  eta: number;
  /** Steps at or past this are never judged (the trial is finishing). */
  maxResource?: number;
  goal: Goal;
}

export class AshaPruner implements Pruner {
  readonly name = 'asha';
  constructor(private readonly o: AshaOptions) {
    if (!(o.minResource > 0) || !(o.eta >= 2)) throw new Error('AshaPruner needs minResource > 0 and eta >= 2');
  }

  /** Steps of the rungs below `upTo` (inclusive). */
  rungs(upTo: number): number[] {
    const out: number[] = [];
    for (let r = this.o.minResource; r <= upTo && (this.o.maxResource === undefined || r < this.o.maxResource); r *= this.o.eta) out.push(r);
    return out;
  }

  shouldPrune(trial: FrozenTrial, allTrials: readonly FrozenTrial[]): boolean {
    if (trial.state !== 'running') return false;
    const last = lastReport(trial);
    if (!last) return false;
    const [step, value] = last;
    // Rungs crossed at an earlier report were judged then (executors ask after every report),
    // so a promotion is never revoked by trials that reach the rung later.
    const prev = trial.intermediate.length >= 2 ? trial.intermediate[trial.intermediate.length - 2][0] : -Infinity;
    for (const rung of this.rungs(step)) {
      if (rung <= prev) continue;
      const competing = [value];
      for (const t of allTrials) {
        if (t.id === trial.id) continue;
        const v = rungValue(t, rung);
        if (v !== undefined) competing.push(v);
      }
      if (!promotable(value, competing, this.o.eta, this.o.goal)) return true;
    }
    return false;
  }
}

/** A trial's value at a rung: the one it reported at its first step at or past the rung. */
function rungValue(t: FrozenTrial, rung: number): number | undefined {
  const hit = t.intermediate.find(([s]) => s >= rung);
  return hit?.[1];
}

function promotable(value: number, competing: number[], eta: number, goal: Goal): boolean {
  const sorted = [...competing].sort((a, b) => a - b);
  const idx = Math.max(0, Math.floor(sorted.length / eta) - 1);
  return goal === 'maximize' ? value >= sorted[sorted.length - 1 - idx] : value <= sorted[idx];
}
