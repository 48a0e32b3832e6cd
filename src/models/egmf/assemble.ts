/**
 * Lays out a batch of LLM inputs (plain arrays, no tensors): per sample
 *   [pad…] before ; pseudo×K ; after ; target
 * left-padded to the batch maximum, so every row's last position is its last real token
 * and the target tokens of all rows sit right-aligned at the end. Positions count real
 * tokens only (0 at the first real token), as HF computes them from the attention mask.
 */
import type { PromptLayout } from './prompts.ts';
import { padLength } from '../../data/pad.ts';

export interface AssembledInputs {
  batch: number;
  /** Padded length N. */
  length: number;
  /** Token ids [B, N]; 0 at pseudo-token and padding slots. */
  ids: Int32Array;
  /** [B, N]: row of the flattened pseudo tokens [B·K] for pseudo slots, B·K (a zero row) elsewhere. */
  pseudoIndex: Int32Array;
  /** [B, N]: 1 for pseudo-token slots. */
  pseudoMask: Float32Array;
  /** [B, N]: 1 for real tokens (pseudo tokens included), 0 for padding. */
  attentionMask: Float32Array;
  /** [B, N] rotary positions. */
  positions: Int32Array;
  /** Longest target T_max: the last T_max positions' predecessors predict targets. */
  targetWidth: number;
  /** [B, T_max] target ids, right-aligned (-1 where a shorter target has no token). */
  targets: Int32Array;
}

export function assembleInputs(layouts: readonly PromptLayout[], pseudoCount: number, padToMultipleOf = 1): AssembledInputs {
  const b = layouts.length;
  const lens = layouts.map((l) => l.before.length + pseudoCount + l.after.length + l.target.length);
  const n = padLength(Math.max(...lens), padToMultipleOf);
  const targetWidth = Math.max(...layouts.map((l) => l.target.length));
  const ids = new Int32Array(b * n);
  const pseudoIndex = new Int32Array(b * n).fill(b * pseudoCount);
  const pseudoMask = new Float32Array(b * n);
  const attentionMask = new Float32Array(b * n);
  const positions = new Int32Array(b * n);
  const targets = new Int32Array(b * targetWidth).fill(-1);
  layouts.forEach((l, i) => {
    const pad = n - lens[i]!;
    let t = i * n + pad;
    const put = (id: number) => {
      ids[t] = id;
      attentionMask[t] = 1;
      positions[t] = t - i * n - pad;
      t++;
    };
    l.before.forEach(put);
    for (let k = 0; k < pseudoCount; k++) {
      pseudoIndex[t] = i * pseudoCount + k;
      pseudoMask[t] = 1;
      put(0);
    }
    l.after.forEach(put);
    l.target.forEach(put);
    l.target.forEach((id, j) => (targets[i * targetWidth + targetWidth - l.target.length + j] = id));
  });
  return { batch: b, length: n, ids, pseudoIndex, pseudoMask, attentionMask, positions, targetWidth, targets };
}
