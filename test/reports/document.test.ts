import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { barChart, lineChart } from '../../src/reports/charts.ts';
import { markdownTable, writeReport, type ReportDoc, type ReportTable } from '../../src/reports/document.ts';
import { EgmfError } from '../../src/errors.ts';
import { tempDir } from '../helpers.ts';
import { checkXml } from './xml.ts';

const tmp = tempDir('egmf-report-');
afterAll(() => tmp.cleanup());

const results: ReportTable = {
  caption: 'Valid weighted F1 <by variant>',
  columns: ['variant', 'mean', 'std', 'note'],
  rows: [
    ['full', 0.755, 0.011, 'a | b'],
    ['linear', 0.771, null, 'line one\nline two'],
  ],
  note: 'Seeds 1111-3333 & majority baseline 0.303.',
};

function sampleDoc(): ReportDoc {
  return {
    title: 'EGMF report: <synthetic> & tiny',
    notice: 'These numbers come from synthetic data.',
    meta: { run: 'abc123', command: 'egmf report --x "y"' },
    sections: [
      {
        heading: 'Results',
        paragraphs: ['EGMF against its baselines, mean ± std over seeds.'],
        tables: [results],
        charts: [{ name: 'f1_by_variant', spec: barChart({ title: 'F1 by variant', x: 'variant', y: 'weighted F1', yUnit: 'valid', points: [{ x: 'full', mean: 0.755, std: 0.011 }, { x: 'linear', mean: 0.771, std: 0.019 }], reference: [{ label: 'majority', value: 0.303 }] }) }],
        sections: [
          {
            heading: 'Robustness',
            tables: [{ caption: 'Noise', columns: ['σ', 'F1'], rows: [[0, 0.75], [0.2, 0.7]] }],
            charts: [{ name: 'noise', spec: lineChart({ title: 'F1 under noise', x: 'noise', xUnit: 'σ', y: 'weighted F1', yUnit: 'test', points: [{ x: 0, mean: 0.75, std: 0.02, series: 'EGMF' }, { x: 0.2, mean: 0.7, std: 0.03, series: 'EGMF' }, { x: 0, mean: 0.5, std: 0.01, series: 'text' }, { x: 0.2, mean: 0.49, std: 0.02, series: 'text' }] }) }],
          },
        ],
      },
    ],
  };
}

describe('writeReport', () => {
  let out: string;
  let written: Awaited<ReturnType<typeof writeReport>>;
  let html: string;
  let md: string;
  beforeAll(async () => {
    out = join(tmp.path, 'r1');
    written = await writeReport(sampleDoc(), out);
    html = readFileSync(join(out, 'report.html'), 'utf8');
    md = readFileSync(join(out, 'report.md'), 'utf8');
  });

  it('writes the HTML, the Markdown, and each chart as SVG beside its Vega-Lite spec, and nothing else', () => {
    expect([...written.files].sort()).toEqual(['charts/f1_by_variant.svg', 'charts/f1_by_variant.vl.json', 'charts/noise.svg', 'charts/noise.vl.json', 'report.html', 'report.md']);
    expect(written.html).toBe(join(out, 'report.html'));
    expect(written.markdown).toBe(join(out, 'report.md'));
    expect(written.charts).toEqual([join(out, 'charts/f1_by_variant.svg'), join(out, 'charts/noise.svg')]);
    expect(readdirSync(out).sort()).toEqual(['charts', 'report.html', 'report.md']);
    expect(readdirSync(join(out, 'charts')).sort()).toEqual(['f1_by_variant.svg', 'f1_by_variant.vl.json', 'noise.svg', 'noise.vl.json']);
    const spec = JSON.parse(readFileSync(join(out, 'charts/noise.vl.json'), 'utf8')) as { title: string; data: { values: unknown[] } };
    expect(spec.title).toBe('F1 under noise');
    expect(spec.data.values).toHaveLength(4);
    expect(checkXml(readFileSync(join(out, 'charts/noise.svg'), 'utf8')).problems).toEqual([]);
  });

  it('the HTML is self-contained: charts inline, no script, no external URL but the SVG namespace', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/@import|@font-face|url\((?!#)/i);
    const urls = [...html.matchAll(/https?:\/\/[^\s"'<>)]+/g)].map((m) => m[0]);
    expect(new Set(urls)).toEqual(new Set(['http://www.w3.org/2000/svg']));
    expect(html.match(/<svg\b/g)).toHaveLength(2);
    expect(html.match(/<table>/g)).toHaveLength(2);
    expect(html).toContain('<caption>Valid weighted F1 &lt;by variant&gt;</caption>');
    expect(html).toContain('<div class="notice" role="note">These numbers come from synthetic data.</div>');
    expect(html).toContain('<dt>command</dt><dd>egmf report --x &quot;y&quot;</dd>');
    expect(html).toContain('<h1>EGMF report: &lt;synthetic&gt; &amp; tiny</h1>');
    expect(html).toContain('<h3>Robustness</h3>');
    expect(html).toContain('<td class="num">—</td>');
    // Ids inside the inline SVGs never collide between charts.
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('the Markdown has the same headings, notice and table rows, and links each chart', () => {
    expect(md.startsWith('# EGMF report: <synthetic> & tiny\n')).toBe(true);
    expect(md).toContain('> **Note:** These numbers come from synthetic data.');
    expect(md).toContain('## Results');
    expect(md).toContain('### Robustness');
    expect(md).toContain('| variant | mean | std | note |\n| --- | ---: | ---: | --- |');
    expect(md).toContain('| full | 0.755 | 0.011 | a \\| b |');
    expect(md).toContain('| linear | 0.771 | — | line one<br>line two |');
    expect(md).toContain('![F1 by variant](charts/f1_by_variant.svg)');
    expect(md).toContain('![F1 under noise](charts/noise.svg)');
    // Every HTML body row is a Markdown row with the same cells.
    const htmlRows = [...html.matchAll(/<tr>((?:<td[^>]*>[\s\S]*?<\/td>)+)<\/tr>/g)].map((m) => [...m[1]!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((c) => c[1]!));
    const mdRows = md.split('\n').filter((l) => l.startsWith('| ') && !/^\| (variant|σ) /.test(l) && !/^\| -/.test(l));
    expect(mdRows).toHaveLength(htmlRows.length);
    expect(htmlRows.map((r) => r.join('|').replace(/&amp;/g, '&').replace(/&lt;/g, '<'))).toEqual(mdRows.map((l) => l.slice(2, -2).split(/ (?<!\\)\| /).join('|').replace(/\\\|/g, '|').replace(/&lt;/g, '<')));
  });

  it('the same document gives byte-identical files', async () => {
    const again = join(tmp.path, 'r2');
    await writeReport(sampleDoc(), again);
    for (const f of written.files) expect(readFileSync(join(again, f), 'utf8'), f).toBe(readFileSync(join(out, f), 'utf8'));
  });

  it('leaves no temporary files behind', () => {
    const all = [...readdirSync(out), ...readdirSync(join(out, 'charts'))];
    expect(all.filter((f) => f.includes('tmp'))).toEqual([]);
  });
});

describe('markdownTable', () => {
  it('escapes pipes, right-aligns number columns, and shows null as a dash', () => {
    expect(markdownTable({ caption: 'T', columns: ['a|b', 'n'], rows: [['x|y', 1], [null, 2.5]] })).toBe('**T**\n\n| a\\|b | n |\n| --- | ---: |\n| x\\|y | 1 |\n| — | 2.5 |\n');
  });
});

describe('bad input', () => {
  const doc = (over: Partial<ReportDoc['sections'][number]>): ReportDoc => ({ title: 'Bad', sections: [{ heading: 'S', ...over }] });
  const chart = barChart({ title: 'c', x: 'x', y: 'y', points: [{ x: 'a', mean: 1, std: 0 }] });

  it('a chart name that is not a slug is named', async () => {
    const p = writeReport(doc({ charts: [{ name: 'F1 chart', spec: chart }] }), join(tmp.path, 'bad1'));
    await expect(p).rejects.toThrow(EgmfError);
    await expect(writeReport(doc({ charts: [{ name: 'F1 chart', spec: chart }] }), join(tmp.path, 'bad1'))).rejects.toThrow(/'F1 chart'.*slug/);
    expect(existsSync(join(tmp.path, 'bad1'))).toBe(false);
  });

  it('a chart name used twice is named, also across sections', async () => {
    const d: ReportDoc = { title: 'Bad', sections: [{ heading: 'A', charts: [{ name: 'dup', spec: chart }] }, { heading: 'B', sections: [{ heading: 'C', charts: [{ name: 'dup', spec: chart }] }] }] };
    await expect(writeReport(d, join(tmp.path, 'bad2'))).rejects.toThrow(/'dup' is used twice.*'B > C'/);
  });

  it('a row whose length differs from the columns names the table and the row', async () => {
    const t: ReportTable = { caption: 'Scores', columns: ['a', 'b'], rows: [['x', 1], ['y']] };
    await expect(writeReport(doc({ tables: [t] }), join(tmp.path, 'bad3'))).rejects.toThrow(/table 'Scores'.*row 1 has 1 cells.*2 columns/);
  });

  it('a chart that fails to render writes nothing', async () => {
    const broken = { title: 'Broken', data: { values: [] }, mark: 'nope' };
    await expect(writeReport(doc({ charts: [{ name: 'broken', spec: broken }] }), join(tmp.path, 'bad4'))).rejects.toThrow(/chart 'broken'/);
    expect(existsSync(join(tmp.path, 'bad4'))).toBe(false);
  });
});
