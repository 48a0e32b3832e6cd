/**
 * The sweep summary's charts go through src/reports/charts.ts (Vega-Lite → SVG): one
 * scatter per swept parameter and a parallel-coordinates chart, each beside its spec, for
 * every kind of parameter the default sweep has (categorical strings and booleans, numeric
 * categoricals, log-uniform), with completed and pruned trials marked and the best ringed.
 */
import { describe, expect, it } from 'vitest';
import { buildSummary, type SummaryInput } from '../../src/sweep/summary.ts';
import { parseSweepSpec } from '../../src/sweep/spec.ts';
import type { TrialRecord } from '../../src/sweep/study.ts';
import { checkXml, svgTexts } from '../reports/xml.ts';

const spec = parseSweepSpec(`
name: tiny
method: random
metric: { name: valid/weighted_f1, goal: maximize }
parameters:
  data.dataset: { values: [meld, cherma] }
  model.experts.local.enabled: { values: [true, false] }
  llm.lora.rank: { values: [2, 4, 8] }
  train.lr: { distribution: log_uniform, min: 1.0e-3, max: 1.0e-2 }
  train.epochs: { value: 2 }
`);

const trial = (n: number, state: TrialRecord['state'], params: TrialRecord['params'], value?: number, intermediate: [number, number][] = []): TrialRecord => ({
  id: `tiny-t${n}-s0`, number: n, seedIndex: 0, seed: null, params, state, intermediate, ...(value === undefined ? {} : { value }),
});

const trials: TrialRecord[] = [
  trial(0, 'complete', { 'data.dataset': 'meld', 'model.experts.local.enabled': true, 'llm.lora.rank': 2, 'train.lr': 0.002, 'train.epochs': 2 }, 0.61, [[1, 0.5], [2, 0.61]]),
  trial(1, 'pruned', { 'data.dataset': 'cherma', 'model.experts.local.enabled': false, 'llm.lora.rank': 8, 'train.lr': 0.009, 'train.epochs': 2 }, undefined, [[1, 0.3]]),
  trial(2, 'complete', { 'data.dataset': 'cherma', 'model.experts.local.enabled': false, 'llm.lora.rank': 4, 'train.lr': 0.005, 'train.epochs': 2 }, 0.72, [[1, 0.6], [2, 0.72]]),
  trial(3, 'failed', { 'data.dataset': 'meld', 'model.experts.local.enabled': true, 'llm.lora.rank': 4, 'train.lr': 0.001, 'train.epochs': 2 }),
];
const input: SummaryInput = { spec, trials, runIds: {}, bestTrialId: 'tiny-t2-s0' };

type Values = { data: { values: Record<string, unknown>[] } };

describe('buildSummary charts', () => {
  it('writes each chart as SVG and Vega-Lite spec, for swept parameters only', async () => {
    const files = await buildSummary(input);
    expect(Object.keys(files).sort()).toEqual([
      'data.dataset_vs_valid_weighted_f1.svg', 'data.dataset_vs_valid_weighted_f1.vl.json',
      'llm.lora.rank_vs_valid_weighted_f1.svg', 'llm.lora.rank_vs_valid_weighted_f1.vl.json',
      'model.experts.local.enabled_vs_valid_weighted_f1.svg', 'model.experts.local.enabled_vs_valid_weighted_f1.vl.json',
      'parallel_coordinates.svg', 'parallel_coordinates.vl.json',
      'train.lr_vs_valid_weighted_f1.svg', 'train.lr_vs_valid_weighted_f1.vl.json',
      'trials.csv', 'trials.md',
    ]);
    for (const [name, text] of Object.entries(files)) if (name.endsWith('.svg')) expect(checkXml(text).problems, name).toEqual([]);
    expect(await buildSummary(input)).toEqual(files);
  });

  it('a scatter marks completed and pruned trials (last report), rings the best, and names the metric', async () => {
    const files = await buildSummary(input);
    const texts = svgTexts(files['train.lr_vs_valid_weighted_f1.svg']!);
    expect(texts).toEqual(expect.arrayContaining(['train.lr vs valid/weighted_f1', 'train.lr', 'valid/weighted_f1', 'completed', 'pruned (last report)', 'best']));
    const spec = JSON.parse(files['train.lr_vs_valid_weighted_f1.vl.json']!) as Values & { layer: { encoding: { x: { scale: { type: string } } } }[] };
    expect(spec.data.values.map((p) => [p.x, p.y, p.group, p.highlight])).toEqual([
      [0.002, 0.61, 'completed', false], [0.005, 0.72, 'completed', true], [0.009, 0.3, 'pruned (last report)', false],
    ]);
    expect(spec.layer[0]!.encoding.x.scale.type).toBe('log');
    const cat = svgTexts(files['data.dataset_vs_valid_weighted_f1.svg']!);
    expect(cat).toEqual(expect.arrayContaining(['meld', 'cherma', 'data.dataset']));
  });

  it('parallel coordinates: an axis per swept parameter (log10, category index) and the metric, one line per finished trial', async () => {
    const files = await buildSummary(input);
    const texts = svgTexts(files['parallel_coordinates.svg']!);
    expect(texts).toEqual(expect.arrayContaining(['data.dataset (0=meld, 1=cherma)', 'model.experts.local.enabled (0=true, 1=false)', 'llm.lora.rank', 'log10(train.lr)', 'valid/weighted_f1', 'best', 'completed', 'pruned (last report)']));
    const rows = (JSON.parse(files['parallel_coordinates.vl.json']!) as Values).data.values;
    expect(rows.map((r) => [r.id, r.group])).toEqual([['tiny-t0-s0', 'completed'], ['tiny-t1-s0', 'pruned (last report)'], ['tiny-t2-s0', 'best']]);
  });

  it('a sweep with no finished trial still gives well-formed charts', async () => {
    const files = await buildSummary({ spec, trials: [trials[3]!], runIds: {} });
    expect(checkXml(files['parallel_coordinates.svg']!).problems).toEqual([]);
    expect(checkXml(files['train.lr_vs_valid_weighted_f1.svg']!).problems).toEqual([]);
  });
});
