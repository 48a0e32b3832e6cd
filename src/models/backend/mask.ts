/** Large negative additive bias for masked attention logits (finite: avoids NaN rows). */
export const MASK_NEG = -1e9;
