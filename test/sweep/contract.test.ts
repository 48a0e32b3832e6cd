import { describe, expect, it } from 'vitest';
import { AshaPruner, GridSampler, MedianPruner, NopPruner, RandomSampler, TpeSampler } from '../../src/sweep/index.ts';
import { DISCRETE_SPACE, prunerContract, samplerContract, simulate } from './contract.ts';

samplerContract('grid', () => new GridSampler(), { continuous: false });
samplerContract('random', (seed) => new RandomSampler(seed), { continuous: true });
samplerContract('tpe', (seed) => new TpeSampler({ goal: 'minimize', seed, nStartupTrials: 5 }), { continuous: true });
samplerContract('tpe (maximize, no constant liar)', (seed) => new TpeSampler({ goal: 'maximize', seed, nStartupTrials: 3, constantLiar: false }), { continuous: true });

for (const goal of ['minimize', 'maximize'] as const) {
  prunerContract(`asha (${goal})`, { make: () => new AshaPruner({ minResource: 2, eta: 3, maxResource: 9, goal }), minStep: 2, prunes: true });
  prunerContract(`median (${goal})`, { make: () => new MedianPruner({ warmupSteps: 3, minTrials: 3, goal }), minStep: 3, prunes: true });
}
prunerContract('none', { make: () => new NopPruner(), minStep: Infinity, prunes: false });

describe('sampler contract: seeds matter', () => {
  it('random and TPE give different proposals for different seeds', () => {
    for (const make of [(s: number) => new RandomSampler(s), (s: number) => new TpeSampler({ goal: 'minimize', seed: s, nStartupTrials: 5 })]) {
      expect(simulate(make(1), DISCRETE_SPACE, 20).asked).not.toEqual(simulate(make(2), DISCRETE_SPACE, 20).asked);
    }
  });
});
