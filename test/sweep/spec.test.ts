import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkExperimentPath } from '../../src/config/experiment.ts';
import { EgmfError } from '../../src/errors.ts';
import { GridSampler, SearchSpace, createPruner, createSampler, loadSweepSpec, parseSweepSpec } from '../../src/sweep/index.ts';
import { REPO, tempDir } from '../helpers.ts';

const EXAMPLE = join(REPO, 'sweeps', 'example-tpe.yaml');

describe('sweep spec', () => {
  it('loads the documented example with every feature', () => {
    const spec = loadSweepSpec(EXAMPLE, { validateParamPath: checkExperimentPath });
    expect(spec.name).toBe('egmf-example-tpe');
    expect(spec.method).toBe('tpe');
    expect(spec.metric).toEqual({ name: 'valid/weighted_f1', goal: 'maximize' });
    expect(spec.seeds).toEqual([1111, 2222]);
    expect(spec.run_cap).toBe(60);
    expect(spec.parallel).toBe(2);
    expect(spec.base_config).toBe(resolve(REPO, 'experiments/synthetic/meld.yaml'));
    expect(spec.set).toEqual({ 'train.epochs': 9, 'train.patience': 9 });
    expect(spec.early_terminate).toEqual({ type: 'asha', min_resource: 1, eta: 3, max_resource: 9 });
    expect(spec.sampler).toEqual({ seed: 7, n_startup_trials: 10, n_ei_candidates: 24, gamma: 0.1, gamma_max: 25, prior_weight: 1, constant_liar: true });
    const byName = Object.fromEntries(spec.parameters.map((p) => [p.name, p]));
    expect(byName['train.lr'].dist).toEqual({ type: 'log_uniform', min: 1e-5, max: 1e-2 });
    expect(byName['train.batch_size'].dist).toEqual({ type: 'categorical', values: [8, 16, 32], probabilities: [0.25, 0.5, 0.25] });
    expect(byName['llm.lora.rank']).toEqual({ name: 'llm.lora.rank', dist: { type: 'int_uniform', min: 4, max: 32, q: 4 }, when: { 'llm.lora.enabled': [true] } });
    expect(byName['llm.lora.dropout'].dist).toEqual({ type: 'constant', value: 0.05 });
    expect(createSampler(spec).name).toBe('tpe');
    expect(createPruner(spec).name).toBe('asha');
    const space = new SearchSpace(spec.parameters);
    expect(space.order.indexOf('llm.lora.enabled')).toBeLessThan(space.order.indexOf('llm.lora.rank'));
  });

  it('defaults: one run per configuration, sampler seed 0, no early termination', () => {
    const spec = parseSweepSpec('name: s\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  train.batch_size: {values: [8, 16]}\n');
    expect(spec.seeds).toEqual([]);
    expect(spec.parallel).toBe(1);
    expect(spec.set).toEqual({});
    expect(spec.sampler.seed).toBe(0);
    expect(spec.early_terminate).toBeUndefined();
    expect(createPruner(spec).name).toBe('none');
    expect(new GridSampler().size(new SearchSpace(spec.parameters))).toBe(2);
  });

  const BASE = {
    name: 's',
    method: 'tpe',
    metric: { name: 'acc', goal: 'maximize' },
    parameters: {
      'model.lora.rank': { distribution: 'int_uniform', min: 4, max: 16 },
      'train.opt': { values: ['adam', 'sgd'] },
    },
  } as Record<string, unknown>;
  const withParams = (p: Record<string, unknown>): Record<string, unknown> => ({ ...BASE, parameters: { ...(BASE.parameters as object), ...p } });

  it.each([
    ['unknown top-level key', { ...BASE, sweeper: 1 }, 'sweeper', /unknown key/],
    ['unknown parameter key', withParams({ 'model.lora.rank': { distribution: 'int_uniform', min: 4, maxx: 16 } }), 'parameters.model.lora.rank.maxx', /unknown key/],
    ['empty range', withParams({ 'model.lora.rank': { distribution: 'int_uniform', min: 16, max: 16 } }), 'parameters.model.lora.rank.max', /range is empty/],
    ['min <= 0 for a log distribution', withParams({ 'train.lr': { distribution: 'log_uniform_values', min: 0, max: 1 } }), 'parameters.train.lr.min', /must be > 0/],
    ['empty values', withParams({ 'train.opt': { values: [] } }), 'parameters.train.opt.values', /must not be empty/],
    ['duplicate values', withParams({ 'train.opt': { values: ['a', 'a'] } }), 'parameters.train.opt.values[1]', /duplicate/],
    ['bad distribution name', withParams({ 'train.lr': { distribution: 'loguniform', min: 1, max: 2 } }), 'parameters.train.lr.distribution', /must be one of/],
    ['probabilities not summing to 1', withParams({ 'train.opt': { values: ['a', 'b'], probabilities: [0.5, 0.6] } }), 'parameters.train.opt.probabilities', /sum to 1/],
    ['q missing for q_uniform', withParams({ 'train.wd': { distribution: 'q_uniform', min: 0, max: 1 } }), 'parameters.train.wd.q', /required/],
    ['q on a continuous distribution', withParams({ 'train.wd': { distribution: 'uniform', min: 0, max: 1, q: 0.1 } }), 'parameters.train.wd.q', /quantised/],
    ['value combined with values', withParams({ 'train.wd': { value: 1, values: [1] } }), 'parameters.train.wd.values', /cannot be combined/],
    ['condition on an unknown parameter', withParams({ 'train.momentum': { values: [0.9], when: { 'train.optimizer': 'sgd' } } }), 'parameters.train.momentum.when.train.optimizer', /unknown parameter/],
    ['condition on an impossible value', withParams({ 'train.momentum': { values: [0.9], when: { 'train.opt': 'sdg' } } }), 'parameters.train.momentum.when.train.opt', /can never be taken/],
    ['overlapping parameter paths', withParams({ model: { values: [1] } }), 'parameters.model.lora.rank', /overlaps/],
    ['continuous distribution in a grid', { ...withParams({ 'train.lr': { distribution: 'log_uniform', min: 1e-4, max: 1e-2 } }), method: 'grid' }, 'parameters.train.lr.distribution', /cannot be enumerated/],
    ['bad method', { ...BASE, method: 'bayes' }, 'method', /grid, random, tpe/],
    ['missing goal', { ...BASE, metric: { name: 'acc' } }, 'metric.goal', /must be one of/],
    ['no parameters', { ...BASE, parameters: {} }, 'parameters', /at least one/],
    ['TPE option on random search', { ...BASE, method: 'random', sampler: { n_startup_trials: 5 } }, 'sampler.n_startup_trials', /only applies to method 'tpe'/],
    ['asha without min_resource', { ...BASE, early_terminate: { type: 'asha', eta: 3 } }, 'early_terminate.min_resource', /must be a number/],
    ['asha key on median', { ...BASE, early_terminate: { type: 'median', eta: 3 } }, 'early_terminate.eta', /only applies to type 'asha'/],
    ['max_resource <= min_resource', { ...BASE, early_terminate: { type: 'asha', min_resource: 3, max_resource: 3 } }, 'early_terminate.max_resource', /must be > 3/],
    ['duplicate seed', { ...BASE, seeds: [1, 1] }, 'seeds[1]', /duplicate seed/],
    ['run_cap below one configuration', { ...BASE, seeds: [1, 2, 3], run_cap: 2 }, 'run_cap', /at least one configuration/],
    ['set overlapping a parameter', { ...BASE, set: { 'train.opt': 'adam' } }, 'set.train.opt', /overlaps swept parameter/],
    ['name unusable in ids', { ...BASE, name: 'my sweep' }, 'name', /letters, digits/],
  ])('rejects %s, naming the key', (_what, raw, key, msg) => {
    const dir = tempDir();
    try {
      const file = join(dir.path, 'bad.yaml');
      writeFileSync(file, JSON.stringify(raw)); // JSON is YAML
      let err: unknown;
      try {
        loadSweepSpec(file);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EgmfError);
      const e = err as EgmfError;
      expect(e.context.key).toBe(key);
      expect(e.context.file).toBe(file);
      expect(e.message).toMatch(msg);
      expect(e.message).toContain(`key '${key}'`);
    } finally {
      dir.cleanup();
    }
  });

  it('rejects parameter and set paths that the config hook refuses', () => {
    const yaml = 'name: s\nmethod: random\nmetric: {name: acc, goal: maximize}\nparameters:\n  llm.lora.rnak: {values: [4, 8]}\n';
    expect(() => parseSweepSpec(yaml, { file: 'x.yaml', validateParamPath: checkExperimentPath })).toThrow(/x\.yaml, key 'parameters\.llm\.lora\.rnak': not a config key/);
    const set = 'name: s\nmethod: random\nmetric: {name: acc, goal: maximize}\nparameters:\n  llm.lora.rank: {values: [4, 8]}\nset:\n  train: 3\n';
    expect(() => parseSweepSpec(set, { validateParamPath: checkExperimentPath })).toThrow(/key 'set\.train': not a config key: 'train' is a section/);
  });

  it('reports YAML syntax errors with the line, and duplicate keys', () => {
    expect(() => parseSweepSpec('name: s\nmethod: [grid\n', { file: 'y.yaml' })).toThrow(/y\.yaml, line \d+: invalid YAML/);
    expect(() => parseSweepSpec('name: s\nname: t\n', { file: 'y.yaml' })).toThrow(/invalid YAML/);
  });

  it('reports an unreadable file by name', () => {
    expect(() => loadSweepSpec('/nonexistent/sweep.yaml')).toThrow(/\/nonexistent\/sweep\.yaml: cannot read sweep spec/);
  });
});
