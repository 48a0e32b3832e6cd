/**
 * The PyTorch reference of the tiny EGMF training step (bench/torch_egmf.py) against our
 * own `trainStep` on the same weights and batch: loss, gradient norm, every variable after
 * one AdamW step, and the loss after it. Needs a Python with torch (EGMF_TORCH_PYTHON or
 * .venv-torch); without one the suite is skipped, except under CI, where it fails with the
 * install hint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportTorchReference, runTorchReference, TORCH_SCRIPT, torchPython } from '../../src/bench/torch-reference.ts';
import type { OurStep } from '../../src/bench/torch-reference.ts';
import { readSafetensors, writeSafetensors } from '../../src/models/llm/index.ts';
import type { TensorToWrite } from '../../src/models/llm/index.ts';
import { setEnv, tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-torchref-');
const exportDir = join(tmp.path, 'export');
// A small synthetic MELD (scale 0.03) in a test cache; dropout off so both sides are deterministic.
const OVERRIDES = ['data.scale=0.03', 'model.dropout=0', 'llm.lora.dropout=0'];
let ours: OurStep;
let restoreEnv: () => void = () => undefined;

describe.skipIf(!torchPython() && !process.env.CI)('PyTorch reference of the training step', () => {
  beforeAll(async () => {
    restoreEnv = setEnv({ EGMF_CACHE: join(tmp.path, 'cache') });
    ours = await exportTorchReference(exportDir, { seed: 1111, overrides: OVERRIDES });
  });
  afterAll(() => {
    restoreEnv();
    tmp.cleanup();
  });

  it('gives our loss, gradient norm, update and loss after one AdamW step', () => {
    expect(ours.deterministic).toBe(true);
    expect(ours.batch_size).toBe(16);
    const torch = runTorchReference(exportDir, { mode: 'check' });
    expect(Math.abs(torch.loss - ours.loss)).toBeLessThan(1e-4);
    expect(Math.abs(torch.loss_after - ours.loss_after)).toBeLessThan(1e-4);
    expect(Math.abs(torch.ce - ours.ce)).toBeLessThan(1e-4);
    expect(Math.abs(torch.balance - ours.balance)).toBeLessThan(1e-4);
    expect(Math.abs(torch.probe! - ours.probe!)).toBeLessThan(1e-4);
    expect(Math.abs(torch.grad_norm - ours.grad_norm) / ours.grad_norm).toBeLessThan(1e-4);
    expect(torch.max_param_diff, torch.max_param_diff_name).toBeLessThan(1e-5);
    // The step does something: the same batch's loss moves by far more than the tolerance.
    expect(Math.abs(ours.loss_after - ours.loss)).toBeGreaterThan(1e-2);
  });

  it('times the step', () => {
    const r = runTorchReference(exportDir, { mode: 'bench', steps: 2, threads: 1 });
    expect(r.steps).toBe(2);
    expect(r.threads).toBe(1);
    expect(r.ms_per_step).toBeGreaterThan(0);
    expect(r.peak_rss_mb).toBeGreaterThan(0);
    expect(r.torch).toMatch(/^\d+\.\d+/);
  });

  it('names the file and key of a missing tensor, a garbled file and a non-deterministic export', () => {
    const bad = join(tmp.path, 'bad');
    cpSync(exportDir, bad, { recursive: true });
    const weights = join(bad, 'weights.safetensors');
    const tensors: Record<string, TensorToWrite> = {};
    for (const [name, t] of readSafetensors(weights)) if (name !== 'egmf.probe.weight') tensors[name] = { dtype: 'F32', shape: t.shape, data: t.data };
    writeSafetensors(weights, tensors);
    expect(() => runTorchReference(bad, { mode: 'check' })).toThrow(/weights\.safetensors, key 'egmf\.probe\.weight': tensor not found/);

    writeFileSync(weights, 'not a safetensors file');
    expect(() => runTorchReference(bad, { mode: 'check' })).toThrow(/weights\.safetensors: not a safetensors file/);

    const metaPath = join(bad, 'meta.json');
    const meta = JSON.parse(readFileSync(join(exportDir, 'meta.json'), 'utf8'));
    writeFileSync(metaPath, JSON.stringify({ ...meta, model: { ...meta.model, dropout: 0.1 } }));
    expect(() => runTorchReference(bad, { mode: 'check' })).toThrow(/meta\.json, key 'model\.dropout': --check needs an export without dropout/);
    writeFileSync(metaPath, '{"format": 1,');
    expect(() => runTorchReference(bad, { mode: 'check' })).toThrow(/meta\.json: not valid JSON/);
    expect(() => runTorchReference(join(tmp.path, 'none'), { mode: 'check' })).toThrow(/none: weights folder not found/);
    expect(() => runTorchReference(exportDir, { mode: 'check', python: join(tmp.path, 'no-python') })).toThrow(/cannot run .*no-python/);
    expect(TORCH_SCRIPT).toMatch(/bench\/torch_egmf\.py$/);
  });
});
