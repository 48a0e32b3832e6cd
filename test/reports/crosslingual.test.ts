/**
 * `egmf report crosslingual` as a user runs it: `--quick` trains the tiny runs of two pairs
 * (synthetic emotion MELD ↔ CHERMA, real text MELD ↔ CPED) into a file MLflow store and
 * writes the report, which renders in a real headless Chromium and is an MLflow run of its
 * own. A second report reads those runs back from the experiment, without training, asks for
 * a third seed and lists it as missing. The document builder is checked on hand-made
 * measurements (the summary follows the numbers), Welch's interval against SciPy, and bad
 * options are refused, naming the option or run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createStore } from '../../src/tracking/index.ts';
import { buildCrosslingualDoc } from '../../src/reports/crosslingual-doc.ts';
import { PAIRS, type RunEval } from '../../src/reports/crosslingual.ts';
import { markdownTable } from '../../src/reports/document.ts';
import { bootstrapMeanCI, metricFn, welchCI } from '../../src/reports/robustness.ts';
import type { DatasetMeta } from '../../src/data/schema.ts';
import { REPO, runPython, tempDir } from '../helpers.ts';
import { renderInChromium } from './chromium.ts';
import { checkReportRun } from './report-run-check.ts';

const tmp = tempDir('egmf-crosslingual-');
afterAll(() => tmp.cleanup());
const env = { ...process.env, EGMF_CACHE: join(tmp.path, 'cache'), MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' };

function egmf(args: string[]) {
  return spawnSync(process.execPath, [join(REPO, 'bin', 'egmf.mjs'), ...args], { cwd: tmp.path, env, encoding: 'utf8', timeout: 1_200_000 });
}

interface Result { run_id: string; html: string; markdown: string; evaluated: number; trained: number; missing: { pair: string; language: string; seed: number }[]; unusable: { runId: string; why: string }[] }

describe('egmf report crosslingual', () => {
  const store = join(tmp.path, 'mlruns');

  it('--quick trains what is missing, writes the report (HTML, Markdown, charts with specs) and is an MLflow run; a second report reads the runs back', async () => {
    const out = join(tmp.path, 'quick');
    const r = egmf(['report', 'crosslingual', '--quick', '--pairs', 'emotion,real-text', '--out', out, '--tracking-uri', store, '--json']);
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
    expect(res.trained).toBe(2 * 2 * 2);
    expect(res.evaluated).toBe(8);
    expect(res.missing).toEqual([]);
    expect(res.unusable).toEqual([]);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/synthetic suite/);
    expect(md).toMatch(/--quick run/);
    expect(md).not.toMatch(/Missing or incomplete runs/);
    for (const h of ['Performance per language', 'Modality ablation at test time', 'Robustness curves', 'Gate weights', 'Cross-lingual transfer']) expect(md).toContain(h);
    // Per language, with both intervals and the baselines beside.
    expect(md).toMatch(/\| MELD \(English\) \| 2 \| test \(\d+\) \| \d+\.\d\d ± \d+\.\d\d \| [\d.−-]+ – [\d.]+ \| \d+\.\d\d – \d+\.\d\d \| \d+\.\d\d/);
    expect(md).toMatch(/\| CPED text \(Chinese\) \| 2 \| valid \(\d+\) \|/);
    // Multimodal pair: every single modality and pair removed; the text pair has no ablation.
    for (const c of ['drop text', 'drop audio', 'drop vision', 'drop audio+vision', 'drop text+audio', 'drop text+vision']) expect(md).toContain(`| ${c} |`);
    expect(md).toMatch(/Not applicable: the models of this pair read text only/);
    for (const c of ['audio feature noise', 'vision feature noise', 'token dropout', 'word shuffling', 'character noise']) expect(md).toContain(`| ${c} |`);
    expect(md).toMatch(/\| MELD → CHERMA \| 2 \| \d+\.\d\d/);
    expect(md).toMatch(/Under token dropout, MELD loses −?\d+\.\d%/);
    const charts = readdirSync(join(out, 'charts'));
    const svgs = charts.filter((f) => f.endsWith('.svg'));
    // emotion: performance, ablation, 5 curves, gates; real text: performance, 3 text curves, gates.
    expect(svgs.sort()).toEqual(expect.arrayContaining(['emotion-performance.svg', 'emotion-ablation.svg', 'emotion-audio-noise.svg', 'emotion-token-dropout.svg', 'emotion-gates.svg', 'real-text-performance.svg', 'real-text-char-noise.svg']));
    expect(svgs).not.toContain('real-text-ablation.svg');
    for (const f of svgs) expect(charts).toContain(f.replace(/\.svg$/, '.vl.json'));
    const page = await renderInChromium(join(out, 'report.html'), 'crosslingual-quick');
    expect(page.consoleErrors).toEqual([]);
    expect(page.failedRequests).toEqual([]);
    expect(page.charts).toBe(svgs.length);
    expect(page.tables).toBeGreaterThanOrEqual(10);
    const { ids } = await checkReportRun(store, res.run_id, 'crosslingual', 8);
    const s = createStore(store);

    // Read back from the experiment, nothing trained: a third seed is asked for and missing.
    const again = join(tmp.path, 'again');
    const r2 = egmf(['report', 'crosslingual', '--experiment', 'egmf-crosslingual', '--pairs', 'emotion', '--seeds', '1111,2222,3333', '--limit', '16', '--out', again, '--tracking-uri', store, '--json']);
    expect(r2.status, r2.stderr.slice(-3000)).toBe(0);
    const res2 = JSON.parse(r2.stdout.trim().split('\n').pop()!) as Result;
    expect(res2.trained).toBe(0);
    expect(res2.evaluated).toBe(4);
    expect(res2.missing).toEqual([{ pair: 'emotion', language: 'en', seed: 3333 }, { pair: 'emotion', language: 'zh', seed: 3333 }]);
    const md2 = readFileSync(join(again, 'report.md'), 'utf8');
    expect(md2).toMatch(/## Missing or incomplete runs/);
    expect(md2).toMatch(/\| MELD \(English\) \| 3333 \| missing \|/);
    expect(md2).toMatch(/\| MELD \(English\) \| 2 \| test \(16\) \|/);
    // The second report names the same runs as the first (the emotion half).
    const tags2 = (await s.getRun(res2.run_id)).data.tags['report.runs']!.split(',');
    expect(tags2.every((id) => ids.includes(id))).toBe(true);

    // Named runs: the seed-1111 pair of the emotion slots, by id.
    const named = [];
    for (const id of ids) {
      const t = (await s.getRun(id)).data.tags;
      if (t['report.row']?.startsWith('emotion/') && t['egmf.seed'] === '1111') named.push(id);
    }
    expect(named).toHaveLength(2);
    const r3 = egmf(['report', 'crosslingual', '--runs', named.join(','), '--pairs', 'emotion,sentiment', '--seeds', '1111', '--limit', '8', '--out', join(tmp.path, 'named'), '--tracking-uri', store, '--json']);
    expect(r3.status, r3.stderr.slice(-3000)).toBe(0);
    const res3 = JSON.parse(r3.stdout.trim().split('\n').pop()!) as Result;
    expect(res3.evaluated).toBe(2);
    expect(res3.missing).toEqual([{ pair: 'sentiment', language: 'en', seed: 1111 }, { pair: 'sentiment', language: 'zh', seed: 1111 }]);
    expect(readFileSync(join(tmp.path, 'named', 'report.md'), 'utf8')).toMatch(/No run of this pair could be evaluated/);

    // A sweep's trial runs: found through the sweep's metadata and the runs' sweep.id tag.
    const sweeps = join(tmp.path, 'sweeps');
    mkdirSync(join(sweeps, 'sw-1'), { recursive: true });
    writeFileSync(join(sweeps, 'sw-1', 'meta.json'), JSON.stringify({ version: 1, sweepId: 'sw-1', specFile: 'x.yaml', trackingUri: store, experimentName: 'egmf-crosslingual', parentRunId: 'none', queue: null, queueName: null, parallel: 1, createdAt: '', finishedAt: null }));
    for (const id of named) await s.setTag(id, 'sweep.id', 'sw-1');
    const r4 = spawnSync(process.execPath, [join(REPO, 'bin', 'egmf.mjs'), 'report', 'crosslingual', '--sweep', 'sw-1', '--pairs', 'emotion', '--seeds', '1111', '--limit', '8', '--out', join(tmp.path, 'swept'), '--tracking-uri', store, '--json'],
      { cwd: tmp.path, env: { ...env, EGMF_SWEEP_DIR: sweeps }, encoding: 'utf8', timeout: 600_000 });
    expect(r4.status, r4.stderr.slice(-3000)).toBe(0);
    expect((JSON.parse(r4.stdout.trim().split('\n').pop()!) as Result).evaluated).toBe(2);
  }, 1_500_000);

  it('refuses bad input, naming the option or run', () => {
    const bad = (args: string[], re: RegExp) => {
      const r = egmf(['report', 'crosslingual', '--out', join(tmp.path, 'bad'), '--tracking-uri', store, ...args]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(re);
    };
    bad(['--pairs', 'emotion,music'], /unknown pair 'music' \(known: emotion, sentiment, real-text\)/);
    bad(['--runs', '0123456789abcdef0123456789abcdef'], /runs: 0123456789abcdef0123456789abcdef/);
    bad(['--experiment', 'nope', '--runs', 'x'], /runs: x|experiment: nope/);
    bad(['--sweep', 'no-such-sweep'], /no such sweep/);
    bad(['--limit', '0'], /limit/);
  }, 300_000);
});

// ---------------------------------------------------------------------------------------
// The document, from hand-made measurements

const MELD_META = { task: 'classification', dataset: 'meld', labelNames: ['neutral', 'joy', 'sadness', 'anger', 'fear', 'disgust', 'surprise'] } as DatasetMeta;

/** A run whose clean weighted F1 is `clean` and which keeps `keep` of it under token dropout. */
function fake(language: 'en' | 'zh', seed: number, clean: number, keep: number): RunEval {
  const levels = [0, 0.1, 0.2, 0.4];
  const values = levels.map((x) => clean * (1 - (1 - keep) * (x / 0.4)));
  const auc = levels.slice(1).reduce((a, x, i) => a + ((x - levels[i]!) / 0.4) * (values[i + 1]! + values[i]!) / 2, 0);
  const predictions = Array.from({ length: 40 }, (_, i) => ({ id: `s${i}`, truth: i % 3, pred: i < 40 * clean ? i % 3 : (i + 1) % 3 }));
  return {
    pair: 'real-text', language, seed, runId: `${language}${seed}`, runDir: '/x', dataset: language === 'en' ? 'meld' : 'cped', task: 'classification',
    labelNames: MELD_META.labelNames!, metric: 'weighted_f1', goal: 'max', split: 'test', clean, n: 40, predictions,
    baselines: { majority: 0.2, tfidf: 0.3 }, modalities: ['text'], ablation: {},
    curves: { token_dropout: { levels, values, auc } },
    gates: { 'gate/expert/local': 0.7, 'gate/expert/global': 0.3 }, gatesByClass: { neutral: { 'gate/expert/local': 0.6, 'gate/expert/global': 0.4 } },
    transfer: { target: language === 'en' ? 'CPED text' : 'MELD text', value: clean / 3, n: 40 },
  };
}

const pair = PAIRS.find((p) => p.key === 'real-text')!;
const docOf = (evals: RunEval[]) => buildCrosslingualDoc({ pairs: [pair], seeds: [1, 2, 3], evals, missing: [], unusable: [], unused: 0, runId: 'rid', quick: false, resamples: 200 });
const text = (d: ReturnType<typeof docOf>) => JSON.stringify(d);

describe('cross-lingual document', () => {
  it('says which language degrades faster only when the seeds support it, with the interval', () => {
    // Chinese keeps ~50% at the heaviest level, English ~90%, tight over seeds.
    const clear = docOf([fake('en', 1, 0.6, 0.9), fake('en', 2, 0.61, 0.91), fake('en', 3, 0.59, 0.89), fake('zh', 1, 0.4, 0.5), fake('zh', 2, 0.41, 0.52), fake('zh', 3, 0.39, 0.48)]);
    const s = clear.sections[0]!.paragraphs!.join('\n');
    expect(s).toMatch(/CPED text \(Chinese\) degrades faster than MELD text \(English\), by \d+\.\d points \(Welch 95% CI \d+\.\d% – \d+\.\d%\)/);
    expect(s).toMatch(/MELD text's value is higher by \d+\.\d\d points/);
    expect(s).toMatch(/Trained on MELD text and scored on CPED text, the models reach weighted F1 20\.00 ± 0\.33/);
    // Same mean losses but spread over seeds that swamp them: no claim.
    const noisy = docOf([fake('en', 1, 0.6, 0.95), fake('en', 2, 0.6, 0.5), fake('en', 3, 0.6, 0.8), fake('zh', 1, 0.6, 0.9), fake('zh', 2, 0.6, 0.55), fake('zh', 3, 0.6, 0.7)]);
    expect(noisy.sections[0]!.paragraphs!.join('\n')).toMatch(/includes 0: these seeds do not show either language degrading faster/);
    // One seed a side: an anecdote.
    expect(text(docOf([fake('en', 1, 0.6, 0.9), fake('zh', 1, 0.4, 0.5)]))).toMatch(/there is no interval: an anecdote, not a finding/);
    const md = clear.sections[0]!.sections!.map((x) => (x.tables ?? []).map(markdownTable).join('\n')).join('\n');
    expect(md).toMatch(/\| token dropout \| 0, 0\.1, 0\.2, 0\.4 \|/);
    expect(md).toMatch(/\| expert: local \| 0\.700 ± 0\.000 \| 0\.700 ± 0\.000 \|/);
  });

  it('lists missing slots and unusable runs, and renders a pair without runs', () => {
    const d = buildCrosslingualDoc({ pairs: [pair], seeds: [1], evals: [], missing: [{ pair: 'real-text', language: 'zh', seed: 1 }], unusable: [{ runId: 'abc', why: 'its status is FAILED, not FINISHED' }], unused: 2, runId: 'rid', quick: false });
    const md = markdownTable(d.sections[0]!.tables![0]!);
    expect(md).toMatch(/\| CPED text \(Chinese\) \| 1 \| missing \|/);
    expect(md).toMatch(/\| abc \|  \| incomplete \| its status is FAILED, not FINISHED \|/);
    expect(d.sections[1]!.paragraphs![0]).toMatch(/No run of this pair could be evaluated/);
    expect(d.meta!['runs read but not used']).toMatch(/^2 /);
  });
});

describe('intervals', () => {
  it("Welch's interval matches SciPy's", () => {
    const a = [0.61, 0.58, 0.64, 0.6, 0.57];
    const b = [0.5, 0.55, 0.41, 0.47];
    const ours = welchCI(a, b);
    const py = runPython(`
import sys, json
from scipy import stats
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r = stats.ttest_ind(b, a, equal_var=False)
ci = r.confidence_interval(0.95)
print(json.dumps([ci.low, ci.high, r.df]))
`, [JSON.stringify(a), JSON.stringify(b)]);
    expect(py.status, py.stderr).toBe(0);
    const [lo, hi, df] = JSON.parse(py.stdout.trim()) as number[];
    expect(ours.lo).toBeCloseTo(lo!, 9);
    expect(ours.hi).toBeCloseTo(hi!, 9);
    expect(ours.df).toBeCloseTo(df!, 9);
    expect(Number.isNaN(welchCI([1], [1, 2]).lo)).toBe(true);
    expect(() => welchCI([], [1])).toThrow(/no values in a/);
  });

  it('bootstraps the seed-mean over the samples every seed evaluated', () => {
    const f1 = metricFn(MELD_META);
    const perfect = Array.from({ length: 30 }, (_, i) => ({ id: `s${i}`, truth: i % 3, pred: i % 3 }));
    const half = perfect.map((p, i) => ({ ...p, pred: i % 2 === 0 ? p.pred : (p.pred + 1) % 3 }));
    const one = bootstrapMeanCI([perfect], f1, { resamples: 100 });
    expect(one).toMatchObject({ value: 1, lo: 1, hi: 1, n: 30 });
    const two = bootstrapMeanCI([perfect, half.slice(0, 20)], f1, { resamples: 300 });
    expect(two.n).toBe(20);
    expect(two.lo).toBeLessThan(two.value);
    expect(two.hi).toBeGreaterThan(two.value);
    expect(bootstrapMeanCI([perfect, half], f1, { resamples: 300, seed: 5 })).toEqual(bootstrapMeanCI([perfect, half], f1, { resamples: 300, seed: 5 }));
    expect(() => bootstrapMeanCI([perfect, [{ id: 'zz', truth: 0, pred: 0 }]], f1)).toThrow(/share no evaluated sample/);
  });
});
