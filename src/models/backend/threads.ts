/** The default thread count of a training process (no tfjs import: sweep controllers use it too). */
import { availableParallelism } from 'node:os';

/**
 * Threads a training process uses by default, on wasm and tensorflow alike: half the
 * logical cores (at most 4) on machines with 4 or more, else 1. On a 2-core machine a
 * second thread made the tiny EGMF step slower on both backends (tensorflow 131 against
 * 90 ms, wasm 117 against 99 ms in the train bench): its tensors are too small to split,
 * and the threads spin at barriers. A single tensorflow sweep worker with both threads took
 * 116 s for `sweeps/speedup.yaml` (`data.limit_train=480`) where one wasm thread took 78 s.
 */
export function defaultThreads(cores = availableParallelism()): number {
  const n = Math.max(cores, 1);
  return n >= 4 ? Math.min(4, Math.floor(n / 2)) : 1;
}
