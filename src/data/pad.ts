/**
 * A padded length (`pad_to_multiple_of`): `n` rounded up to a multiple of `multiple`, but not
 * past `cap` (a length limit) when `n` is within it.
 */
export function padLength(n: number, multiple: number, cap?: number): number {
  const up = Math.ceil(n / multiple) * multiple;
  return cap !== undefined && n <= cap ? Math.min(up, cap) : up;
}
