import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkExperimentPath, EXPERIMENT_PATHS, loadExperiment, validateExperiment } from '../../src/config/experiment.ts';
import { flatten } from '../../src/config/spec.ts';
import { tempDir } from '../helpers.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function file(name: string, text: string): string {
  const p = join(tmp.path, name);
  writeFileSync(p, text);
  return p;
}

describe('experiment config', () => {
  it('fills defaults and applies --set overrides with YAML-typed values', () => {
    const p = file('a.yaml', 'name: meld\ndata:\n  dataset: meld\n  source: synthetic\nmodel:\n  experts:\n    global: {kind: gru}\n');
    const cfg = loadExperiment(p, ['train.lr=5e-4', 'llm.lora.targets=[q_proj,k_proj]', 'model.experts.local.enabled=false', 'data.root=/x']);
    expect(cfg.train.lr).toBe(5e-4);
    expect(cfg.llm.lora.targets).toEqual(['q_proj', 'k_proj']);
    expect(cfg.model.experts.local.enabled).toBe(false);
    expect(cfg.model.experts.global.kind).toBe('gru');
    expect(cfg.model.gating.depth).toBe(2);
    expect(cfg.data.root).toBe('/x');
    expect(cfg.tracking.uri).toBeNull();
    const flat = flatten(cfg);
    expect(flat['train.lr']).toBe('0.0005');
    expect(flat['llm.lora.targets']).toBe('["q_proj","k_proj"]');
  });

  it('names the key of every mistake', () => {
    const p = file('b.yaml', 'model:\n  gating:\n    deph: 2\n');
    expect(() => loadExperiment(p)).toThrow(/b\.yaml, key 'model\.gating\.deph': unknown key \(did you mean 'model\.gating\.depth'\?\)/);
    const q = file('c.yaml', 'train:\n  lr: -1\n');
    expect(() => loadExperiment(q)).toThrow(/key 'train\.lr': must be > 0, got -1/);
    expect(() => loadExperiment(file('d.yaml', 'x'), [])).toThrow(/must be a mapping/);
    expect(() => loadExperiment(file('e.yaml', ''), ['model.gating.depth=7'])).toThrow(/key 'model\.gating\.depth': must be <= 3, got 7/);
    expect(() => loadExperiment(file('e2.yaml', ''), ['train.eval_batch_size=0'])).toThrow(/key 'train\.eval_batch_size': must be >= 1, got 0/);
    expect(loadExperiment(file('e3.yaml', '')).train.eval_batch_size).toBeNull(); // train.batch_size's
    expect(() => loadExperiment(file('f.yaml', ''), ['model.gatting.depth=1'])).toThrow(/key 'model\.gatting\.depth': unknown config key/);
    expect(() => loadExperiment(file('g.yaml', ''), ['llm.lora.targets=[q_proj,qq]'])).toThrow(/key 'llm\.lora\.targets\[1\]': must be one of/);
    expect(() => loadExperiment(join(tmp.path, 'missing.yaml'))).toThrow(/missing\.yaml: experiment file not found/);
    expect(() => validateExperiment({ model: { experts: { local: { enabled: false }, semantic: { enabled: false }, global: { enabled: false } } } }))
      .toThrow(/key 'model\.experts': at least one expert kind/);
    expect(() => validateExperiment({ model: { experts: { semantic: { width: 30, heads: 4 } } } })).toThrow(/not divisible/);
  });

  it('lists settable paths for sweeps', () => {
    expect(EXPERIMENT_PATHS).toContain('model.experts.local.width');
    expect(checkExperimentPath('llm.lora.rank')).toBeUndefined();
    expect(checkExperimentPath('llm.lora')).toMatch(/section/);
    expect(checkExperimentPath('llm.lora.rnk')).toMatch(/not an experiment config key/);
  });
});
