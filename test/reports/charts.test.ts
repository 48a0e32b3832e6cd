import { describe, expect, it, vi } from 'vitest';
import { barChart, lineChart, parallelCoordinatesChart, renderSvg, scatterChart, type VlSpec } from '../../src/reports/charts.ts';
import { EgmfError } from '../../src/errors.ts';
import { checkXml, svgTexts } from './xml.ts';

const bar = (): VlSpec =>
  barChart({
    title: 'EGMF vs its baselines',
    x: 'variant',
    y: 'weighted F1',
    yUnit: 'valid',
    points: [
      { x: 'full', series: 'MELD', mean: 0.75, std: 0.01, n: 3 },
      { x: 'full', series: 'CHERMA', mean: 0.6, std: 0.03, n: 3 },
      { x: 'linear', series: 'MELD', mean: 0.77, std: 0.02, n: 3 },
      { x: 'linear', series: 'CHERMA', mean: 0.55, std: 0.02, n: 3 },
    ],
    reference: [{ label: 'majority class', value: 0.3 }],
  });

const line = (): VlSpec =>
  lineChart({
    title: 'Robustness to noise',
    x: 'noise',
    xUnit: 'σ',
    y: 'weighted F1',
    yUnit: 'test',
    points: [0, 0.2, 0.4].flatMap((x) => [
      { x, series: 'EGMF', mean: 0.75 - x / 4, std: 0.02 },
      { x, series: 'text only', mean: 0.5 - x / 10, std: 0.03 },
    ]),
  });

const scatter = (): VlSpec =>
  scatterChart({
    title: 'train.lr vs valid/score',
    x: 'train.lr',
    y: 'valid/score',
    xScale: 'log',
    highlightLabel: 'best',
    points: [
      { x: 0.001, y: 0.5, group: 'completed', tooltip: { trial: 't0', 'train.lr': 0.001 } },
      { x: 0.01, y: 0.7, group: 'completed', highlight: true },
      { x: 0.003, y: 0.4, group: 'pruned' },
    ],
  });

const parallel = (): VlSpec =>
  parallelCoordinatesChart({
    title: 'Parallel coordinates: demo',
    dimensions: ['log10(train.lr)', 'model.width', 'valid/score'],
    rows: [
      { id: 't0', group: 'completed', values: { 'log10(train.lr)': -3, 'model.width': 32, 'valid/score': 0.5 } },
      { id: 't1', group: 'best', values: { 'log10(train.lr)': -2, 'model.width': 64, 'valid/score': 0.7 } },
    ],
  });

/** Renders, checks well-formedness, and returns the texts drawn. */
async function rendered(spec: VlSpec): Promise<{ svg: string; texts: string[] }> {
  const svg = await renderSvg(spec);
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  const { problems, elements } = checkXml(svg);
  expect(problems).toEqual([]);
  expect(elements.get('path') ?? 0).toBeGreaterThan(3);
  expect(svg).toMatch(/^<svg[^>]* width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/);
  return { svg, texts: svgTexts(svg) };
}

describe('chart builders render through vega-lite and vega', () => {
  it('a grouped bar chart: title, axis titles with units, legend, error bars and a labelled reference rule', async () => {
    const spec = bar();
    const { texts } = await rendered(spec);
    expect(texts).toEqual(expect.arrayContaining(['EGMF vs its baselines', 'variant', 'weighted F1 (valid)', 'MELD', 'CHERMA', 'full', 'linear', 'majority class']));
    const layers = JSON.stringify(spec);
    expect(layers).toContain('"errorbar"');
    expect(layers).toContain('"xOffset"');
  });

  it('a bar chart with one series has no legend', async () => {
    const { texts } = await rendered(barChart({ title: 'One', x: 'variant', y: 'acc', points: [{ x: 'a', mean: 1, std: 0.1 }, { x: 'b', mean: 2, std: 0 }] }));
    expect(texts).toEqual(expect.arrayContaining(['One', 'variant', 'acc', 'a', 'b']));
    expect(texts).not.toContain('series');
  });

  it('a line chart: one line and ± std band per series, units on both axes, legend', async () => {
    const spec = line();
    const { svg, texts } = await rendered(spec);
    expect(texts).toEqual(expect.arrayContaining(['Robustness to noise', 'noise (σ)', 'weighted F1 (test)', 'EGMF', 'text only']));
    expect(JSON.stringify(spec)).toContain('"errorband"');
    expect(svg).toContain('role-legend');
  });

  it('a scatter chart: groups in the legend, the highlighted point named', async () => {
    const { texts } = await rendered(scatter());
    expect(texts).toEqual(expect.arrayContaining(['train.lr vs valid/score', 'train.lr', 'valid/score', 'completed', 'pruned', 'best']));
  });

  it('parallel coordinates: one axis per dimension (dotted names kept), a line per row, legend', async () => {
    const spec = parallel();
    const { texts } = await rendered(spec);
    expect(texts).toEqual(expect.arrayContaining(['Parallel coordinates: demo', 'log10(train.lr)', 'model.width', 'valid/score', 'completed', 'best', '64', '32']));
    expect(JSON.stringify(spec)).toMatch(/"window".*"fold".*"joinaggregate"/);
  });

  it('is deterministic: the same spec twice gives byte-identical SVG, also when renders overlap', async () => {
    const a = await renderSvg(line(), 'line');
    const [b, , c] = await Promise.all([renderSvg(line(), 'line'), renderSvg(bar(), 'bar'), renderSvg(line(), 'line')]);
    expect(b).toBe(a);
    expect(c).toBe(a);
  });

  it('renders without console noise (vega-lite warnings are errors, not prints)', async () => {
    const warn = vi.spyOn(console, 'warn');
    const error = vi.spyOn(console, 'error');
    await renderSvg(scatter());
    expect(warn).not.toHaveBeenCalled();
    expect(error).not.toHaveBeenCalled();
    warn.mockRestore();
    error.mockRestore();
  });
});

describe('bad specs', () => {
  it('a spec that does not compile throws EgmfError naming the chart', async () => {
    const bad = { title: 'Broken chart', data: { values: [{ a: 1 }] }, mark: 'no-such-mark', encoding: { x: { field: 'a', type: 'quantitative' } } };
    await expect(renderSvg(bad)).rejects.toThrow(EgmfError);
    await expect(renderSvg(bad)).rejects.toThrow(/chart 'Broken chart'/);
    await expect(renderSvg(bad, 'my_chart')).rejects.toThrow(/chart 'my_chart'/);
  });

  it('a spec that fails at render time (bad expression) names the chart', async () => {
    const bad = { title: 'Bad expression', data: { values: [{ a: 1 }] }, transform: [{ calculate: 'nosuchfunction(datum.a)', as: 'b' }], mark: 'point', encoding: { x: { field: 'b', type: 'quantitative' } } };
    await expect(renderSvg(bad)).rejects.toThrow(/chart 'Bad expression'.*nosuchfunction/);
  });

  it('a spec that compiles with warnings (a dropped channel) is an error', async () => {
    const spec = { title: 'Warned', data: { values: [{ a: 1 }] }, mark: 'point', encoding: { x: { field: 'a', type: 'quantitative', scale: { type: 'log', zero: true } } } };
    await expect(renderSvg(spec)).rejects.toThrow(/chart 'Warned'.*zero/);
  });

  it('data from a URL is refused: charts carry their data inline', async () => {
    const spec = { title: 'Remote', data: { url: 'https://example.com/data.json' }, mark: 'point', encoding: { x: { field: 'a', type: 'quantitative' } } };
    await expect(renderSvg(spec)).rejects.toThrow(/chart 'Remote'.*inline/);
  });

  it('a builder given a non-finite value names the chart', () => {
    expect(() => barChart({ title: 'NaN bars', x: 'v', y: 'acc', points: [{ x: 'a', mean: Number.NaN, std: 0 }] })).toThrow(/chart 'NaN bars'/);
  });
});
