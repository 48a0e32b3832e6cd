import { describe, expect, it } from 'vitest';
import { benchTargets, registerBenchTarget, runBench } from '../../src/cli/bench.ts';
import { runCli } from '../helpers.ts';

describe('egmf bench', () => {
  it('--json --target data prints one JSON object with the loader ratio', () => {
    const r = runCli(['bench', '--json', '--target', 'data', '--samples', '40']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(['data']);
    const d = out.data;
    expect(d.samples).toBe(40);
    expect(d.batch_size).toBe(32);
    for (const k of ['samples_per_s', 'baseline_samples_per_s', 'ratio', 'first_batch_ms', 'file_mb']) {
      expect(typeof d[k], k).toBe('number');
      expect(d[k], k).toBeGreaterThan(0);
    }
    expect(d.ratio).toBeCloseTo(d.samples_per_s / d.baseline_samples_per_s, 2);
  });

  it('refuses unknown targets and bad sizes, naming the option', () => {
    const r = runCli(['bench', '--target', 'nope']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/key 'target': unknown bench target 'nope' \(known: data/);
    const s = runCli(['bench', '--samples', '0']);
    expect(s.status).toBe(1);
    expect(s.stderr).toMatch(/key 'samples': must be a positive integer/);
    const seeds = runCli(['bench', '--target', 'learning', '--seeds', '1111,x']);
    expect(seeds.status).toBe(1);
    expect(seeds.stderr).toMatch(/key 'seeds': seeds must be integers, got 'x'/);
    const variants = runCli(['bench', '--target', 'learning', '--variants', 'full,nope']);
    expect(variants.status).toBe(1);
    expect(variants.stderr).toMatch(/key 'variants': unknown learning variant 'nope'/);
    // The learning target takes --set too; a key its experiment refuses stops it before any run.
    const set = runCli(['bench', '--target', 'learning', '--variants', 'full', '--seeds', '1', '--set', 'model.width=-1']);
    expect(set.status).toBe(1);
    expect(set.stderr).toMatch(/model\.width/);
    expect(set.stderr).not.toMatch(/seed 1/);
    const parallel = runCli(['bench', '--target', 'learning', '--parallel', '0']);
    expect(parallel.status).toBe(1);
    expect(parallel.stderr).toMatch(/key 'parallel': must be a positive integer, got 0/);
    const rounds = runCli(['bench', '--target', 'workers', '--rounds', '1.5']);
    expect(rounds.status).toBe(1);
    expect(rounds.stderr).toMatch(/key 'rounds': must be a positive integer, got 1\.5/);
  });

  it('the learning and workers targets are opt-in: `egmf bench` alone does not run them', () => {
    expect(benchTargets.find((t) => t.name === 'learning')?.optIn).toBe(true);
    expect(benchTargets.find((t) => t.name === 'workers')?.optIn).toBe(true);
    expect(runCli(['bench', '--help']).stdout).toMatch(/--variants[\s\S]*--parallel[\s\S]*--rounds[\s\S]*ABBA[\s\S]*--spec[\s\S]*sweeps\/speedup\.yaml/);
  });

  it('runs registered targets keyed by name, and refuses a duplicate name', async () => {
    registerBenchTarget({ name: 'echo', describe: 'test target', run: async (o) => ({ samples: o.samples ?? -1, seed: o.seed }) });
    expect(benchTargets.map((t) => t.name)).toContain('echo');
    expect(await runBench(['echo'], { samples: 3, seed: 7 })).toEqual({ echo: { samples: 3, seed: 7 } });
    expect(() => registerBenchTarget({ name: 'echo', describe: '', run: async () => ({}) })).toThrow(/'echo' is already registered/);
    await expect(runBench(['data', 'missing'], { seed: 0 })).rejects.toThrow(/unknown bench target 'missing'/);
  });
});
