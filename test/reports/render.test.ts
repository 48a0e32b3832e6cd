/**
 * The report as a reader sees it: written by writeReport, opened in a real headless
 * Chromium, every chart and table rendered, nothing failed to load. The screenshot stays in
 * test-artifacts/report-render.png.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { barChart, lineChart } from '../../src/reports/charts.ts';
import { writeReport, type ReportDoc } from '../../src/reports/document.ts';
import { tempDir } from '../helpers.ts';
import { chromiumPath, renderInChromium } from './chromium.ts';

const tmp = tempDir('egmf-render-');
afterAll(() => tmp.cleanup());

const doc: ReportDoc = {
  title: 'EGMF on synthetic MELD',
  notice: 'These numbers come from synthetic data.',
  meta: { 'run ids': 'a1b2, c3d4', command: 'egmf report' },
  sections: [
    {
      heading: 'Against the baselines',
      paragraphs: ['Valid weighted F1, mean ± std over seeds 1111-3333.'],
      tables: [{ caption: 'Valid weighted F1', columns: ['variant', 'mean', 'std'], rows: [['full', 0.755, 0.011], ['linear', 0.771, 0.019], ['text', 0.493, null]] }],
      charts: [{
        name: 'f1_by_variant',
        spec: barChart({
          title: 'Valid weighted F1 by variant', x: 'variant', y: 'weighted F1', yUnit: 'valid',
          points: [{ x: 'full', series: 'MELD', mean: 0.755, std: 0.011 }, { x: 'full', series: 'CHERMA', mean: 0.6, std: 0.02 }, { x: 'text', series: 'MELD', mean: 0.493, std: 0.033 }, { x: 'text', series: 'CHERMA', mean: 0.41, std: 0.03 }],
          reference: [{ label: 'majority class', value: 0.303 }],
        }),
      }],
    },
    {
      heading: 'Robustness',
      tables: [{ caption: 'Test weighted F1 under feature noise', columns: ['noise (σ)', 'EGMF', 'text only'], rows: [[0, 0.75, 0.5], [0.2, 0.7, 0.49], [0.4, 0.63, 0.46]] }],
      charts: [{
        name: 'noise',
        spec: lineChart({ title: 'Test weighted F1 under noise', x: 'noise', xUnit: 'σ', y: 'weighted F1', yUnit: 'test', points: [0, 0.2, 0.4].flatMap((x) => [{ x, series: 'EGMF', mean: 0.75 - x * 0.3, std: 0.02 }, { x, series: 'text only', mean: 0.5 - x / 10, std: 0.03 }]) }),
      }],
    },
  ],
};

describe('the HTML report in headless Chromium', () => {
  it('finds the browser (a missing one is a failure: install the Debian package chromium)', () => {
    expect(existsSync(chromiumPath())).toBe(true);
  });

  it('renders every chart and table, with no console error, page error, failed request or broken image', async () => {
    const out = join(tmp.path, 'report');
    const written = await writeReport(doc, out);
    const r = await renderInChromium(written.html, 'report-render');
    expect(r.consoleErrors).toEqual([]);
    expect(r.pageErrors).toEqual([]);
    expect(r.failedRequests).toEqual([]);
    expect(r.brokenImages).toEqual([]);
    expect(r.svgs).toBe(2);
    expect(r.charts).toBe(2);
    expect(r.tables).toBe(2);
    for (const b of r.chartBoxes) {
      expect(b.width, b.id).toBeGreaterThan(300);
      expect(b.height, b.id).toBeGreaterThan(200);
      // Titles, axis titles, tick labels and legend entries all laid out with a size.
      expect(b.visibleTexts, b.id).toBeGreaterThan(10);
    }
    expect(r.chartBoxes.map((b) => b.id)).toEqual(['chart-f1_by_variant', 'chart-noise']);
    expect(statSync(r.screenshot).size).toBeGreaterThan(10_000);
  });
});
