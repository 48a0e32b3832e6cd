/**
 * The learning benchmark's machinery on tiny runs (real `egmf train` processes, 2 seeds, a
 * 20-step pretrained built-in LLM): the numbers here say nothing about learning; the
 * benchmark's own protocol (`npm run bench -- --target learning`) is measured in the README.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { formatLearning, LEARNING_VARIANTS, parseVariants, runLearningBench } from '../../src/bench/learning.ts';
import { tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-learning-');
afterAll(() => tmp.cleanup());
const env = { ...process.env, EGMF_CACHE: join(tmp.path, 'cache'), MLFLOW_TRACKING_URI: '' };
const TINY = ['data.scale=0.03', 'data.limit_train=32', 'train.epochs=1', 'llm.pretrain_steps=20'];

describe('learning bench', () => {
  it('trains each variant per seed in parallel processes and summarises them over seeds beside the baselines', async () => {
    const said: string[] = [];
    const r = await runLearningBench({ variants: ['full', 'linear', 'no-pseudo'], seeds: [1, 2], sets: TINY, env, say: (m) => said.push(m) });
    expect(r.failed).toEqual([]);
    expect(r.runs.map((x) => `${x.variant}-${x.seed}`)).toEqual(['full-1', 'full-2', 'linear-1', 'linear-2', 'no-pseudo-1', 'no-pseudo-2']);
    for (const x of r.runs) {
      expect(x.valid).toBeGreaterThanOrEqual(0);
      expect(x.valid).toBeLessThanOrEqual(1);
    }
    expect(said).toHaveLength(6);
    const full = r.runs.filter((x) => x.variant === 'full').map((x) => x.valid);
    expect(r.table.full!.valid.n).toBe(2);
    expect(r.table.full!.valid.mean).toBeCloseTo((full[0]! + full[1]!) / 2, 10);
    expect(r.table.full!.valid.std).toBeCloseTo(Math.abs(full[0]! - full[1]!) / Math.SQRT2, 10);
    expect(r.targets!.gap).toBeCloseTo(r.table.linear!.valid.mean - r.table.full!.valid.mean, 10);
    expect(r.targets!.gap_ok).toBe(r.targets!.gap <= 0.03);
    expect(r.targets!.std_ok).toBe(r.table.full!.valid.std <= 0.03);
    // Both seeds train on the same data, so their majority baselines agree.
    expect(r.baselines.majority.n).toBe(2);
    expect(r.baselines.majority.std).toBe(0);
    expect(r.baselines.majority.mean).toBeGreaterThan(0);
    const text = formatLearning(r);
    expect(text).toMatch(/^full\s+\d\.\d{3} ± \d\.\d{3}/m);
    expect(text).toMatch(/^majority\s+\d\.\d{3}/m);
    expect(text).toMatch(/target: linear - full ≤ 0\.03: -?\d\.\d{3} (holds|does NOT hold)/);
  }, 600_000);

  it('refuses unknown variants, naming the option, and reports a failed run with its cause', async () => {
    expect(parseVariants(undefined)).toEqual(['full', 'linear']);
    expect(parseVariants('all')).toEqual(Object.keys(LEARNING_VARIANTS));
    expect(parseVariants('text, no-pseudo')).toEqual(['text', 'no-pseudo']);
    expect(() => parseVariants('full,nope')).toThrow(/key 'variants': unknown learning variant 'nope'/);
    // An override the experiment refuses stops the bench before anything trains, naming the key.
    const said: string[] = [];
    await expect(runLearningBench({ variants: ['full', 'linear'], seeds: [1], sets: [...TINY, 'model.width=-1'], env, say: (m) => said.push(m) })).rejects.toThrow(/model\.width/);
    await expect(runLearningBench({ variants: ['full'], seeds: [1], sets: ['model.nope=1'], env })).rejects.toThrow(/model\.nope/);
    expect(said).toEqual([]);
    // A run that fails only once it runs (here its LLM folder is missing) is reported with its cause; the others still count.
    const bad = await runLearningBench({ variants: ['full'], seeds: [1], sets: [...TINY, 'llm.path=/nonexistent/llm'], env });
    expect(bad.runs).toEqual([]);
    expect(bad.failed).toHaveLength(1);
    expect(bad.failed[0]!.error).toMatch(/egmf train .*\(.*seed 1\) exited 1: .*\/nonexistent\/llm: LLM checkpoint folder not found/);
    expect(formatLearning(bad)).toMatch(/FAILED full seed 1: .*\/nonexistent\/llm/);
  }, 120_000);
});
