import type { SweepSpec } from '../spec.ts';
import { AshaPruner } from './asha.ts';
import { MedianPruner } from './median.ts';
import { NopPruner, type Pruner } from './types.ts';

export { AshaPruner, type AshaOptions } from './asha.ts';
export { MedianPruner, median, type MedianOptions } from './median.ts';
export { NopPruner, type Pruner } from './types.ts';

/** The pruner a spec's `early_terminate` asks for (none: never prune). */
export function createPruner(spec: SweepSpec): Pruner {
  const et = spec.early_terminate;
  const goal = spec.metric.goal;
  if (!et) return new NopPruner();
  if (et.type === 'asha') return new AshaPruner({ minResource: et.min_resource, eta: et.eta, maxResource: et.max_resource, goal });
  return new MedianPruner({ warmupSteps: et.warmup_steps, minTrials: et.min_trials, goal });
}
