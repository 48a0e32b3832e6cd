/**
 * `system/*` metrics like MLflow's system metrics monitor: this process's CPU share over wall
 * time, its memory, and any extra gauges the caller injects (e.g. live tensor count).
 */
import type { MetricPoint } from './store.ts';

export interface SystemMetricsOptions {
  /** Extra gauges, logged as `system/<name>`. */
  gauges?: Record<string, () => number>;
  /** For tests. */
  now?: () => number;
}

export class SystemMetricsSampler {
  private lastCpu = process.cpuUsage();
  private lastWall: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private step = 0;

  constructor(private readonly opts: SystemMetricsOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.lastWall = this.now();
  }

  /** One sample; CPU % is user+system CPU time over wall time since the previous sample (100 = one core busy). */
  sample(step = this.step++): MetricPoint[] {
    const wall = this.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const elapsedMs = Math.max(1, wall - this.lastWall);
    this.lastCpu = process.cpuUsage();
    this.lastWall = wall;
    const mem = process.memoryUsage();
    const values: Record<string, number> = {
      'system/cpu_utilization_percentage': ((cpu.user + cpu.system) / 1000 / elapsedMs) * 100,
      'system/rss_megabytes': mem.rss / 2 ** 20,
      'system/heap_used_megabytes': mem.heapUsed / 2 ** 20,
    };
    for (const [name, gauge] of Object.entries(this.opts.gauges ?? {})) values[`system/${name}`] = gauge();
    return Object.entries(values).map(([key, value]) => ({ key, value, timestamp: wall, step }));
  }

  /** Calls `sink` with a sample every `intervalMs` until {@link stop}; the timer does not keep the process alive. */
  start(intervalMs: number, sink: (points: MetricPoint[]) => void | Promise<void>): void {
    this.stop();
    this.timer = setInterval(() => void Promise.resolve(sink(this.sample())).catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
