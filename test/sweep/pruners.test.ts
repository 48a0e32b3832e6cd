/**
 * Scripted learning curves with hand-computed expectations, played through the study the way
 * an executor does: report, ask shouldPrune, tell pruned when told to stop.
 */
import { describe, expect, it } from 'vitest';
import { AshaPruner, MedianPruner, Study, parseSweepSpec, type Goal, type Trial } from '../../src/sweep/index.ts';

function study(goal: Goal, earlyTerminate: string): Study {
  const yaml = `
name: pruning
method: random
metric: {name: valid/score, goal: ${goal}}
parameters:
  train.lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-2}
early_terminate: ${earlyTerminate}
`;
  return new Study(parseSweepSpec(yaml));
}

type Step = [trial: number, step: number, value: number] | [trial: number, 'complete'];

/** Plays the script; returns the step at which each stopped trial was stopped. */
function play(s: Study, nTrials: number, script: Step[], sign: number): Map<number, number> {
  const trials: Trial[] = Array.from({ length: nTrials }, () => s.ask() as Trial);
  const stopped = new Map<number, number>();
  for (const ev of script) {
    const t = trials[ev[0]];
    if (stopped.has(ev[0])) throw new Error(`script reports to trial ${ev[0]} after it was stopped`);
    if (ev[1] === 'complete') {
      const last = s.trials().find((r) => r.id === t.id)?.intermediate.at(-1);
      s.tell(t.id, { state: 'complete', value: last?.[1] ?? 0 });
      continue;
    }
    t.report(ev[1], sign * ev[2]);
    if (t.shouldPrune()) {
      stopped.set(ev[0], ev[1]);
      s.tell(t.id, { state: 'pruned', value: sign * ev[2] });
    }
  }
  return stopped;
}

describe('ASHA (min_resource 1, eta 3, max_resource 9: rungs at steps 1 and 3)', () => {
  // Loss curves (minimise). n = values at the rung including the trial; promote if within the
  // best floor(n/3) (at least the best one while n < 3).
  const script: Step[] = [
    [0, 1, 0.9], //  rung 1: [0.9]            n=1 → best → continue
    [1, 1, 0.5], //  rung 1: [0.9 .5]         n=2 → best → continue
    [2, 1, 0.7], //  rung 1: n=3, top 1 = 0.5 → STOP
    [3, 1, 0.4], //  rung 1: n=4, top 1 = 0.4 → continue
    [0, 2, 0.8], //  no rung at 2
    [0, 3, 0.6], //  rung 3: [0.6]            → continue
    [1, 2, 0.45],
    [1, 3, 0.42], // rung 3: [0.6 .42]        → best → continue
    [3, 2, 0.35],
    [3, 3, 0.5], //  rung 3: n=3, top 1 = 0.42 → STOP (at step 3)
    [4, 1, 0.6], //  rung 1: [.9 .5 .7 .4 .6]  n=5, top 1 = 0.4 → STOP
    [5, 1, 0.3], //  rung 1: n=6, top 2 = {.3 .4} → continue
    [6, 1, 0.45], // rung 1: n=7, top 2 = {.3 .4} → STOP
    [7, 1, 0.4], //  rung 1: n=8, top 2 = {.3 .4 (tie)} → continue (ties favour the trial)
    [5, 4, 0.43], // jumps past rung 3: value at step 4 vs [.6 .42 .5] n=4, top 1 = .42 → STOP
    [0, 4, 0.55], [0, 6, 0.5], [0, 9, 0.49], // step 9 = max_resource: never judged
    [0, 'complete'],
    [1, 9, 0.41], // jump straight to max_resource: no rung judged
    [1, 'complete'],
    [7, 2, 0.39], [7, 'complete'],
  ];
  const expected = new Map([[2, 1], [3, 3], [4, 1], [6, 1], [5, 4]]);

  it.each([['minimize', 1], ['maximize', -1]] as const)('%s: stops exactly trials 2, 3, 4, 5, 6 at the hand-computed steps', (goal, sign) => {
    const s = study(goal, '{type: asha, min_resource: 1, eta: 3, max_resource: 9}');
    expect(play(s, 8, script, sign)).toEqual(expected);
    expect(s.trials().filter((t) => t.state === 'complete').map((t) => t.number)).toEqual([0, 1, 7]);
  });

  it('lists the rung steps', () => {
    expect(new AshaPruner({ minResource: 2, eta: 3, goal: 'minimize' }).rungs(100)).toEqual([2, 6, 18, 54]);
    expect(new AshaPruner({ minResource: 1, eta: 2, maxResource: 8, goal: 'minimize' }).rungs(100)).toEqual([1, 2, 4]);
  });
});

describe('median stopping (warmup_steps 2, min_trials 3)', () => {
  // Accuracy curves (maximise). The best-so-far value is compared with the median of the
  // completed trials' values at the same step.
  const script: Step[] = [
    [0, 1, 0.5], [0, 2, 0.6], [0, 3, 0.7], [0, 4, 0.75], [0, 'complete'],
    [3, 1, 0.05], [3, 2, 0.06], // only one trial completed: never judged
    [1, 1, 0.3], [1, 2, 0.5], [1, 3, 0.6], [1, 4, 0.65], [1, 'complete'],
    [2, 1, 0.4], [2, 2, 0.55], [2, 3, 0.65], [2, 4, 0.7], [2, 'complete'],
    [4, 1, 0.1], //  step 1 < warmup 2: not judged
    [4, 2, 0.5], //  median@2 of {.6 .5 .55} = .55; best so far .5 < .55 → STOP at 2
    [5, 1, 0.6], //  warm-up
    [5, 2, 0.52], // best so far .6 >= .55 → continue (best-so-far, not current)
    [5, 3, 0.58], // median@3 of {.7 .6 .65} = .65; best .6 < .65 → STOP at 3
    [6, 1, 0.45], [6, 2, 0.56], [6, 3, 0.66], [6, 4, 0.71], // .56≥.55, .66≥.65, .71≥ median@4 .7
    [6, 5, 0.2], //  no completed values at step 5: not judged
    [6, 'complete'],
    [7, 2, 0.56], // 4 completed now: median@2 of {.6 .5 .55 .56} = .555 → .56 continues
    [7, 3, 0.64], // median@3 of {.7 .6 .65 .66} = .655 → STOP at 3
    [3, 3, 0.07], // trial 3 finally judged: median@3 .655 → STOP at 3
  ];
  const expected = new Map([[4, 2], [5, 3], [7, 3], [3, 3]]);

  it.each([['maximize', 1], ['minimize', -1]] as const)('%s: stops exactly trials 3, 4, 5, 7 at the hand-computed steps', (goal, sign) => {
    const s = study(goal, '{type: median, warmup_steps: 2, min_trials: 3}');
    expect(play(s, 8, script, sign)).toEqual(expected);
  });

  it('takes the middle pair for even counts and needs values at the step itself', () => {
    const done = (id: string, curve: number[]) => ({ id, number: 0, params: {}, state: 'complete' as const, value: curve.at(-1), intermediate: curve.map((v, i) => [i + 1, v] as const) });
    const p = new MedianPruner({ warmupSteps: 0, minTrials: 2, minValuesAtStep: 2, goal: 'minimize' });
    const others = [done('a', [1, 2]), done('b', [3])];
    const run = (curve: number[]) => ({ id: 'x', number: 1, params: {}, state: 'running' as const, intermediate: curve.map((v, i) => [i + 1, v] as const) });
    expect(p.shouldPrune(run([2.1]), others)).toBe(true); // median@1 = 2
    expect(p.shouldPrune(run([1.9]), others)).toBe(false);
    expect(p.shouldPrune(run([5, 5]), others)).toBe(false); // one value at step 2 < minValuesAtStep
  });
});
