/**
 * `egmf reproduce --quick` as a user runs it (a real process, real training runs, a file
 * MLflow store), on a subset that fits CI: MELD and SIMS-V2 in the main table, the real-text
 * table (MELD, CPED), two ablation rows, two seeds. The report says the data is synthetic and
 * shows no difference column, keeps the published numbers beside ours, computes the
 * baselines, renders in a real headless Chromium, and is an MLflow run of its own that
 * names the runs it summarises. Bad options are refused, naming the option.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildReproduceDoc } from '../../src/reports/reproduce.ts';
import { loadPublished } from '../../src/reports/published.ts';
import { REPO, tempDir } from '../helpers.ts';
import { renderInChromium } from './chromium.ts';
import { checkReportRun } from './report-run-check.ts';

const tmp = tempDir('egmf-reproduce-');
afterAll(() => tmp.cleanup());
const env = { ...process.env, EGMF_CACHE: join(tmp.path, 'cache'), MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' };

function egmf(args: string[]) {
  return spawnSync(process.execPath, [join(REPO, 'bin', 'egmf.mjs'), ...args], { cwd: tmp.path, env, encoding: 'utf8', timeout: 1_200_000 });
}

describe('egmf reproduce --quick', () => {
  it('writes the report (HTML, Markdown, charts with their specs) from real runs, as an MLflow run', async () => {
    const out = join(tmp.path, 'report');
    const store = join(tmp.path, 'mlruns');
    const r = egmf(['reproduce', '--quick', '--out', out, '--tracking-uri', store, '--datasets', 'meld,sims-v2', '--ablation', 'full,no-pseudo', '--json']);
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { run_id: string; html: string; markdown: string; runs: number; failed: unknown[]; synthetic: boolean };
    expect(res.failed).toEqual([]);
    expect(res.runs).toBe(2 * (2 + 2 + 2));
    expect(res.synthetic).toBe(true);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/synthetic bilingual suite/);
    expect(md).not.toMatch(/vs EGMF \(published\)/);
    // Ours beside the published rows and the computed baselines.
    expect(md).toMatch(/\| EGMF \(published\) \|[^\n]*65\.57/);
    expect(md).toMatch(/MSE-Adapter \(Qwen-1\.8B\) \(published\)/);
    expect(md).toMatch(/\| EGMF, this implementation \(built-in tiny LLM\) \| 2 \|/);
    expect(md).toMatch(/\| majority class \(same splits\) \| 2 \| \d+\.\d\d ± \d+\.\d\d/);
    expect(md).toMatch(/\| MELD \| English \| train \| test \| 2 \| \d+\.\d\d ± \d+\.\d\d/);
    expect(md).toMatch(/\| CPED \| Chinese \| test \(only valid and test are public\) \| valid \| 2 \|/);
    expect(md).toMatch(/\| no-pseudo \|[^\n]*\| 2 \|/);
    const charts = readdirSync(join(out, 'charts')).sort();
    expect(charts.filter((f) => f.endsWith('.svg')).length).toBeGreaterThanOrEqual(3);
    for (const f of charts.filter((x) => x.endsWith('.svg'))) expect(charts).toContain(f.replace(/\.svg$/, '.vl.json'));
    const page = await renderInChromium(join(out, 'report.html'), 'reproduce-quick');
    expect(page.consoleErrors).toEqual([]);
    expect(page.failedRequests).toEqual([]);
    expect(page.charts).toBe(page.svgs);
    expect(page.charts).toBeGreaterThanOrEqual(3);
    expect(page.tables).toBeGreaterThanOrEqual(4);
    // The report run: tagged, its runs named, its files logged; every training run its child.
    await checkReportRun(store, res.run_id, 'reproduce', res.runs);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  }, 1_200_000);

  it('marks missing and incomplete rows instead of dropping them', () => {
    const doc = buildReproduceDoc({
      datasets: ['meld', 'mosei'], seeds: [1111, 2222], synthetic: false, dataRoot: '/data', quick: false,
      parts: { main: true, realText: false, ablation: false }, ablation: [], published: loadPublished(),
      done: [{ job: { part: 'main', row: 'meld', config: 'm', sets: [], seed: 1111 }, runId: 'r1', summary: {
        run_id: 'r1', dataset: 'meld', language: 'en', task: 'classification', metric: 'weighted_f1', goal: 'max', best_valid: 0.5, baselines: {},
        baselines_detail: {}, valid: { weighted_f1: 0.5, acc: 0.5 }, test: { weighted_f1: 0.6, acc: 0.6 },
      } }],
      failed: [
        { job: { part: 'main', row: 'meld', config: 'm', sets: [], seed: 2222 }, error: 'boom' },
        { job: { part: 'main', row: 'mosei', config: 'm', sets: [], seed: 1111 }, error: 'no data' },
      ],
      runId: 'rep',
    });
    const table = doc.sections[0]!.tables![0]!;
    expect(doc.notice).toBeUndefined();
    expect(table.columns).toContain('MELD Δ WF1 vs EGMF (published)');
    expect(table.rows[0]![1]).toBe('1 of 2 (incomplete)');
    expect(table.rows[0]).toContain('−5.57');
    expect(table.note).toMatch(/MELD seed 2222: boom/);
    const sentiment = doc.sections[1]!.tables![0]!;
    expect(sentiment.rows[0]![1]).toBe('missing (2 failed)'.replace('2', '1'));
    expect(sentiment.note).toMatch(/MOSEI seed 1111: no data/);
  });

  it('refuses bad options, naming them', () => {
    const bad = egmf(['reproduce', '--datasets', 'meld,iemocap', '--out', join(tmp.path, 'x')]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/key 'datasets': unknown dataset 'iemocap'/);
    const seeds = egmf(['reproduce', '--seeds', '1,x', '--out', join(tmp.path, 'x')]);
    expect(seeds.stderr).toMatch(/key 'seeds': seeds must be integers/);
    const root = egmf(['reproduce', '--data-root', join(tmp.path, 'nowhere'), '--out', join(tmp.path, 'x')]);
    expect(root.stderr).toMatch(/nowhere, key 'data-root': the data root does not exist/);
    const parts = egmf(['reproduce', '--parts', 'main,tables', '--out', join(tmp.path, 'x')]);
    expect(parts.stderr).toMatch(/key 'parts': unknown table 'tables'/);
  }, 120_000);
});
