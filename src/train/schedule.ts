/**
 * Learning-rate schedule: linear warm-up to the peak, then cosine decay to
 * `minRatio × peak` at the last step (MSE-Adapter's protocol uses 10% warm-up).
 */
export interface ScheduleOptions {
  peak: number;
  totalSteps: number;
  warmupRatio: number;
  minRatio?: number;
}

export function warmupCosine(step: number, o: ScheduleOptions): number {
  const total = Math.max(1, o.totalSteps);
  const warm = Math.round(o.warmupRatio * total);
  const min = (o.minRatio ?? 0) * o.peak;
  if (warm > 0 && step < warm) return (o.peak * (step + 1)) / warm;
  const span = Math.max(1, total - warm);
  const t = Math.min(1, (step - warm) / span);
  return min + 0.5 * (o.peak - min) * (1 + Math.cos(Math.PI * t));
}
