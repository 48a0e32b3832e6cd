import { describe, expect, it } from 'vitest';
import { SystemMetricsSampler } from '../../src/tracking/index.ts';

describe('system metrics', () => {
  it('samples CPU share over wall time, memory and injected gauges as system/* points', () => {
    let now = 1_000;
    let tensors = 42;
    const c0 = process.cpuUsage();
    const sampler = new SystemMetricsSampler({ now: () => now, gauges: { live_tensors: () => tensors } });
    // Burn CPU over a known (injected) wall span; compare with an independent cpuUsage reading.
    const t0 = Date.now();
    let x = 0;
    while (Date.now() - t0 < 60) x += Math.sqrt(x + 1);
    now += 60;
    const pts = sampler.sample();
    const c1 = process.cpuUsage(c0);
    const independent = ((c1.user + c1.system) / 1000 / 60) * 100;
    const by = Object.fromEntries(pts.map((p) => [p.key, p]));
    expect(Object.keys(by).sort()).toEqual(['system/cpu_utilization_percentage', 'system/heap_used_megabytes', 'system/live_tensors', 'system/rss_megabytes']);
    expect(by['system/cpu_utilization_percentage']!.value).toBeGreaterThan(0);
    expect(Math.abs(by['system/cpu_utilization_percentage']!.value - independent)).toBeLessThan(10);
    expect(by['system/rss_megabytes']!.value).toBeGreaterThan(by['system/heap_used_megabytes']!.value);
    expect(by['system/live_tensors']!.value).toBe(42);
    expect(pts.every((p) => p.timestamp === 1_060 && p.step === 0)).toBe(true);
    tensors = 7;
    now += 1000;
    const next = sampler.sample();
    expect(next.find((p) => p.key === 'system/live_tensors')).toMatchObject({ value: 7, step: 1 });
    // Idle over a long injected span: a small share.
    expect(next[0]!.value).toBeLessThan(10);
    expect(x).toBeGreaterThan(0);
  });

  it('samples periodically into a sink until stopped', async () => {
    const sampler = new SystemMetricsSampler();
    const got: number[] = [];
    sampler.start(10, (pts) => void got.push(pts[0]!.step));
    await new Promise((r) => setTimeout(r, 80));
    sampler.stop();
    const n = got.length;
    await new Promise((r) => setTimeout(r, 40));
    expect(n).toBeGreaterThanOrEqual(2);
    expect(got.length).toBe(n);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});
