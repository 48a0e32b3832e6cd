/**
 * `egmf bench --target train`: each backend in a child process of its own, beside the same
 * step in PyTorch, with kernels per step, peak RSS and live tensors, in the JSON shape the
 * README documents. Timings are printed, never asserted.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { REPO, runCli } from '../helpers.ts';
import { tfNodeAddon } from '../../src/models/backend/install.ts';
import { torchPython } from '../../src/bench/torch-reference.ts';

describe('egmf bench --target train', () => {
  it('reports ms/step, kernels/step, peak RSS and flat live tensors per backend, and the ratio to PyTorch', () => {
    const r = runCli(['bench', '--target', 'train', '--backends', 'wasm', '--samples', '2', '--json'], { timeoutMs: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { train: Record<string, Record<string, any>> };
    const wasm = out.train['wasm']!;
    expect(wasm).toMatchObject({ steps: 2, batch_size: 16, threads: 1 });
    for (const k of ['samples_per_s', 'ms_per_step', 'kernels_per_step', 'peak_rss_mb', 'parameters']) expect(wasm[k], k).toBeGreaterThan(0);
    expect(wasm['rss_mb']).toHaveLength(2);
    // RSS after each quarter of the timed steps (2 steps: quarters 1, 1, 2, 2 → 2 distinct points), and the wasm heap.
    expect(wasm['rss_trace_mb']).toHaveLength(2);
    for (const x of wasm['rss_trace_mb']) expect(x).toBeGreaterThan(0);
    // At the same points, V8's heap and the memory outside it (the wasm heap among it).
    for (const k of ['js_heap_trace_mb', 'external_trace_mb']) {
      expect(wasm[k], k).toHaveLength(2);
      for (const x of wasm[k]) expect(x, k).toBeGreaterThan(0);
    }
    expect(wasm['wasm_heap_mb'][1]).toBeGreaterThanOrEqual(wasm['wasm_heap_mb'][0]);
    expect(wasm['wasm_heap_mb'][0]).toBeGreaterThan(0);
    // One step launches hundreds of kernels (the fused blocks of fused.ts: ≤ 800, the
    // issue's target; 2,979 before them); nothing leaks across steps.
    expect(wasm['kernels_per_step']).toBeGreaterThan(100);
    expect(wasm['kernels_per_step']).toBeLessThanOrEqual(800);
    expect(wasm['live_tensors'][1]).toBe(wasm['live_tensors'][0]);
    if (torchPython() !== null || process.env['CI']) {
      const torch = out.train['pytorch']!;
      expect(torch['error'], 'PyTorch reference').toBeUndefined();
      expect(torch['threads']).toBe(1);
      expect(out.train['ratio_to_pytorch']!['wasm']).toBeCloseTo(torch['ms_per_step'] / wasm['ms_per_step'], 2);
    }
    process.stdout.write(`bench train (2 steps): ${JSON.stringify(out.train)}\n`);
  });

  it.skipIf(!existsSync(tfNodeAddon(REPO)) && !process.env['CI'])('times tensorflow with its step as a captured graph (one TensorFlow run a step) and eagerly, side by side', () => {
    const r = runCli(['bench', '--target', 'train', '--backends', 'tensorflow', '--samples', '3', '--no-pytorch', '--json'], { timeoutMs: 600_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { train: Record<string, Record<string, any>> };
    const graph = out.train['tensorflow']!;
    const eager = out.train['tensorflow_eager']!;
    expect(graph['error']).toBeUndefined();
    expect(eager['error']).toBeUndefined();
    // Every batch shape traced in the warm-up; each timed step one session run.
    expect(graph['graph']).toMatchObject({ replays: 3, fallbacks: 0, eager: 0, tensorflow_ops_per_step: 1 });
    expect(graph['graph']['traces']).toBeGreaterThanOrEqual(1);
    expect(graph['graph']['graph_nodes']).toBeGreaterThan(1000);
    expect(graph['graph']['session_ms_per_step']).toBeGreaterThan(0);
    expect(eager['graph']).toBeUndefined();
    // Replays dispatch only the forward pass's kernels: the graph computes the backward pass.
    expect(graph['graph']['forward_only']).toBe(3);
    expect(graph['kernels_per_step']).toBeLessThan(eager['kernels_per_step']);
    // The target on every backend: ≤ 800 kernels a step (the fused blocks of fused.ts).
    expect(eager['kernels_per_step']).toBeLessThanOrEqual(800);
    expect(graph['live_tensors'][1]).toBe(graph['live_tensors'][0]);
    process.stdout.write(`bench train tensorflow (3 steps): graph ${graph['ms_per_step']} ms, eager ${eager['ms_per_step']} ms\n`);
  });

  it('names a bad thread count or backend', () => {
    const threads = runCli(['bench', '--target', 'train', '--threads', '0']);
    expect(threads.status).toBe(1);
    expect(threads.stderr).toMatch(/key 'threads': thread counts must be positive integers, got '0'/);
    const backend = runCli(['bench', '--target', 'train', '--backends', 'gpu', '--no-pytorch']);
    expect(backend.status).toBe(1);
    expect(backend.stderr).toMatch(/key 'backends': unknown backend 'gpu'/);
    const set = runCli(['bench', '--target', 'train', '--backends', 'wasm', '--no-pytorch', '--set', 'model.widht=64', '--json']);
    const out = JSON.parse(set.stdout.trim().split('\n').pop()!) as { train: Record<string, { error?: string }> };
    expect(out.train['wasm']!.error).toMatch(/model\.widht/);
  });
});
