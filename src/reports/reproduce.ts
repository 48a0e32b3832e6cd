/**
 * `egmf reproduce` (`npm run reproduce`): the paper's tables, re-run here.
 *
 * It trains, as MLflow runs (children of the report's own run), every seed of:
 *  - the main table: each paper dataset's experiment, `experiments/synthetic/<dataset>.yaml`
 *    on the embedded synthetic suite, or `experiments/<dataset>.yaml` on imported data under
 *    `--data-root DIR` (`DIR/<dataset>`);
 *  - the real-text table: MELD (English) and CPED (Chinese) utterances from ../shared/data
 *    (`experiments/meld-text.yaml`, `cped-text.yaml`), beside their majority-class and TF-IDF
 *    baselines computed from the same splits by the same runs;
 *  - the ablation table, as papers print it: the full model, each expert removed, each expert
 *    alone, gating depth 1/2/3, no pseudo tokens, LoRA off and LoRA ranks, on MELD.
 * and renders them beside the published numbers of `reports/published/` (data, not code). On
 * synthetic data the report says so at its top and shows no difference-to-published column.
 * A row whose runs failed or are fewer than asked is marked (k of n seeds, or missing with the
 * cause), never dropped. `--quick` (tiny splits, one epoch, two seeds) is the CI smoke run.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EgmfError } from '../errors.ts';
import { LEARNING_VARIANTS, type LearningVariant } from '../bench/learning.ts';
import { mapPool, REPO_ROOT, runTrainProcess, type RunSummary } from '../train/process.ts';
import { meanStd, type MeanStd } from '../train/seeds.ts';
import { headlineMetric } from '../train/metrics/dispatch.ts';
import { barChart, type MeanStdPoint } from './charts.ts';
import { writeReport, type Cell, type ReportDoc, type ReportSection, type ReportTable } from './document.ts';
import { loadPublished, PAPER_DATASETS, systemName, type PaperDataset, type PublishedResult } from './published.ts';
import { finishReportRun, startReportRun } from './report-run.ts';

export const PAPER_SEEDS = [1111, 2222, 3333, 4444, 5555] as const;
export const QUICK_SEEDS = [1111, 2222] as const;

/** The paper's tables: which datasets each task's table holds, and the columns it prints. */
export const TASK_TABLES = [
  { task: 'emotion recognition', datasets: ['meld', 'cherma'], metrics: ['acc', 'weighted_f1'] },
  { task: 'sentiment intensity', datasets: ['mosei', 'sims-v2'], metrics: null },
] as const;
const SENTIMENT_METRICS: Record<string, readonly string[]> = {
  mosei: ['Has0_acc_2', 'Has0_F1_score', 'Non0_acc_2', 'MAE', 'Corr'],
  'sims-v2': ['Mult_acc_2', 'F1_score', 'Mult_acc_3', 'MAE', 'Corr'],
};
export const METRIC_LABELS: Record<string, string> = {
  acc: 'Acc', weighted_f1: 'WF1', Has0_acc_2: 'Acc-2 (has0)', Has0_F1_score: 'F1 (has0)', Non0_acc_2: 'Acc-2 (non0)',
  Non0_F1_score: 'F1 (non0)', Mult_acc_2: 'Acc-2', F1_score: 'F1', Mult_acc_3: 'Acc-3', Mult_acc_5: 'Acc-5', Mult_acc_7: 'Acc-7', MAE: 'MAE', Corr: 'Corr',
};
const DATASET_LABELS: Record<string, string> = { meld: 'MELD', cherma: 'CHERMA', mosei: 'MOSEI', 'sims-v2': 'SIMS-V2', cped: 'CPED' };

/** The ablation rows, in the order papers print them (full = gating depth 2, LoRA rank 4). */
export const ABLATION_ROWS: readonly LearningVariant[] = [
  'full', 'no-local', 'no-semantic', 'no-global', 'local', 'semantic', 'global', 'depth-1', 'depth-3', 'no-pseudo', 'no-lora', 'lora-8', 'lora-16',
];

export const REAL_TEXT = [
  { key: 'meld-text', dataset: 'meld', language: 'English', config: 'meld-text.yaml', trained: 'train', scored: 'test' },
  { key: 'cped-text', dataset: 'cped', language: 'Chinese', config: 'cped-text.yaml', trained: 'test (only valid and test are public)', scored: 'valid' },
] as const;

export interface ReproduceOptions {
  datasets?: readonly PaperDataset[];
  seeds?: readonly number[];
  /** Folder of imported datasets (`<root>/<dataset>`); null = the synthetic suite. */
  dataRoot?: string | null;
  quick?: boolean;
  out: string;
  trackingUri: string;
  experiment?: string;
  parallel?: number;
  parts?: { main?: boolean; realText?: boolean; ablation?: boolean };
  ablation?: readonly LearningVariant[];
  /** Folder holding `meld/` and `cped/` CSVs (default ../shared/data beside the repository). */
  sharedData?: string;
  /** Extra `--set` overrides for every run. */
  sets?: readonly string[];
  publishedDir?: string;
  env?: NodeJS.ProcessEnv;
  say?: (m: string) => void;
}

interface Job { part: 'main' | 'real' | 'ablation'; row: string; config: string; sets: string[]; seed: number }
interface Done { job: Job; summary: RunSummary; runId: string | null }
interface Failed { job: Job; error: string }

export interface ReproduceResult {
  runId: string;
  out: string;
  synthetic: boolean;
  seeds: number[];
  runs: { part: string; row: string; seed: number; run_id: string | null; test: Record<string, number | null>; valid: Record<string, number | null> }[];
  failed: { part: string; row: string; seed: number; error: string }[];
  wall_s: number;
  html: string;
  markdown: string;
}

/** Overrides of a --quick run: tiny splits, one epoch, a barely pretrained built-in LLM. */
export const QUICK_SYNTHETIC = ['data.scale=0.03', 'data.limit_train=48', 'train.epochs=1', 'llm.pretrain_steps=20'];
export const QUICK_REAL = ['data.limit_train=48', 'data.limit_eval=64', 'train.epochs=1', 'llm.pretrain_steps=20'];

export function parseDatasets(spec: string | undefined): PaperDataset[] {
  if (spec === undefined || spec.trim() === '' || spec.trim() === 'all') return [...PAPER_DATASETS];
  const names = spec.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const n of names) {
    if (!(PAPER_DATASETS as readonly string[]).includes(n)) throw new EgmfError(`unknown dataset '${n}' (known: ${PAPER_DATASETS.join(', ')})`, { key: 'datasets' });
  }
  return [...new Set(names)] as PaperDataset[];
}

export async function reproduce(o: ReproduceOptions): Promise<ReproduceResult> {
  const t0 = Date.now();
  const say = o.say ?? (() => undefined);
  const quick = o.quick ?? false;
  const datasets = o.datasets ?? PAPER_DATASETS;
  const seeds = [...(o.seeds ?? (quick ? QUICK_SEEDS : PAPER_SEEDS))];
  const dataRoot = o.dataRoot ? resolve(o.dataRoot) : null;
  if (dataRoot && !existsSync(dataRoot)) throw new EgmfError('the data root does not exist', { file: dataRoot, key: 'data-root' });
  const synthetic = dataRoot === null;
  const parts = { main: true, realText: true, ablation: true, ...o.parts };
  const shared = resolve(o.sharedData ?? join(REPO_ROOT, '..', 'shared', 'data'));
  const published = loadPublished(o.publishedDir);
  const extra = o.sets ?? [];
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });

  const expFor = (ds: string): { config: string; sets: string[] } => synthetic
    ? { config: join(REPO_ROOT, 'experiments', 'synthetic', `${ds}.yaml`), sets: quick ? [...QUICK_SYNTHETIC] : [] }
    : { config: join(REPO_ROOT, 'experiments', `${ds}.yaml`), sets: [`data.root=${join(dataRoot!, ds)}`, ...(quick ? QUICK_REAL : [])] };
  const jobs: Job[] = [];
  for (const seed of seeds) {
    if (parts.main) for (const ds of datasets) jobs.push({ part: 'main', row: ds, ...withExtra(expFor(ds), extra), seed });
    if (parts.realText) {
      for (const r of REAL_TEXT) {
        const sets = [`data.root=${join(shared, r.dataset)}`, ...(quick ? QUICK_REAL : [])];
        jobs.push({ part: 'real', row: r.key, ...withExtra({ config: join(REPO_ROOT, 'experiments', r.config), sets }, extra), seed });
      }
    }
    if (parts.ablation) {
      for (const v of o.ablation ?? ABLATION_ROWS) {
        const base = expFor('meld');
        jobs.push({ part: 'ablation', row: v, ...withExtra({ config: base.config, sets: [...base.sets, ...LEARNING_VARIANTS[v].sets] }, extra), seed });
      }
    }
  }
  const experiment = o.experiment ?? 'egmf-reproduce';
  const report = await startReportRun({
    trackingUri: o.trackingUri, experiment, kind: 'reproduce', runName: quick ? 'reproduce-quick' : 'reproduce',
    tags: { 'report.data': synthetic ? 'synthetic' : dataRoot!, 'report.seeds': seeds.join(',') },
  });
  say(`reproduce: report run ${report.runId}; ${jobs.length} training runs (${seeds.length} seeds), ${o.parallel ?? 2} at a time`);
  const done: Done[] = [];
  const failed: Failed[] = [];
  try {
    await mapPool(jobs, o.parallel ?? 2, async (job, i) => {
      const dir = join(out, 'runs', job.part, `${job.row}-seed${job.seed}`);
      try {
        const r = await runTrainProcess({
          config: job.config, seed: job.seed, sets: job.sets, out: dir,
          tracking: { uri: o.trackingUri, experiment, parentRunId: report.runId, runName: `${job.row}-seed${job.seed}`, tags: { 'report.part': job.part, 'report.row': job.row } },
          ...(o.env ? { env: o.env } : {}),
        });
        done.push({ job, summary: r.summary, runId: r.line.run_id });
        say(`[${i + 1}/${jobs.length}] ${job.part} ${job.row} seed ${job.seed}: valid ${r.line.metric} ${fmtRaw(r.line.best_valid)} (${Math.round(r.line.seconds)} s)`);
      } catch (e) {
        failed.push({ job, error: (e as Error).message });
        say(`[${i + 1}/${jobs.length}] ${job.part} ${job.row} seed ${job.seed}: FAILED: ${(e as Error).message}`);
      }
    });
    const doc = buildReproduceDoc({ datasets, seeds, synthetic, dataRoot, quick, parts, ablation: o.ablation ?? ABLATION_ROWS, published, done, failed, runId: report.runId });
    const written = await writeReport(doc, out);
    await finishReportRun(report, out, written, done.map((d) => d.runId).filter((x): x is string => x !== null));
    return {
      runId: report.runId, out, synthetic, seeds,
      runs: done.map((d) => ({ part: d.job.part, row: d.job.row, seed: d.job.seed, run_id: d.runId, test: d.summary.test, valid: d.summary.valid })),
      failed: failed.map((f) => ({ part: f.job.part, row: f.job.row, seed: f.job.seed, error: f.error })),
      wall_s: Math.round((Date.now() - t0) / 1000), html: written.html, markdown: written.markdown,
    };
  } catch (e) {
    await report.run.end('FAILED').catch(() => undefined);
    throw e;
  }
}

function withExtra(j: { config: string; sets: string[] }, extra: readonly string[]): { config: string; sets: string[] } {
  return { config: j.config, sets: [...j.sets, ...extra] };
}

interface DocInput {
  datasets: readonly PaperDataset[];
  seeds: number[];
  synthetic: boolean;
  dataRoot: string | null;
  quick: boolean;
  parts: { main: boolean; realText: boolean; ablation: boolean };
  ablation: readonly LearningVariant[];
  published: PublishedResult[];
  done: Done[];
  failed: Failed[];
  runId: string;
}

/** A metric as tables print it: accuracies, F1 and Corr ×100, MAE as is. */
export function formatMetric(key: string, v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return key === 'MAE' ? v.toFixed(3) : (v * 100).toFixed(2);
}
function fmtRaw(v: number | null): string {
  return v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(4);
}
function fmtStat(key: string, s: MeanStd): string {
  if (s.n === 0) return '—';
  return s.n > 1 ? `${formatMetric(key, s.mean)} ± ${key === 'MAE' ? s.std.toFixed(3) : (s.std * 100).toFixed(2)}` : formatMetric(key, s.mean);
}

/** The runs of one row, their statistics of `key` on `split`, and how complete the row is. */
function rowStats(d: DocInput, part: Job['part'], row: string) {
  const runs = d.done.filter((x) => x.job.part === part && x.job.row === row);
  const fails = d.failed.filter((x) => x.job.part === part && x.job.row === row);
  const stat = (split: 'test' | 'valid', key: string) => meanStd(runs.map((r) => r.summary[split][key] ?? Number.NaN));
  const base = (name: string, split: 'test' | 'valid', key: string) => meanStd(runs.map((r) => r.summary.baselines_detail[name]?.[split]?.[key] ?? Number.NaN));
  const status = runs.length === d.seeds.length ? `${runs.length}` : runs.length === 0 ? `missing (${fails.length} failed)` : `${runs.length} of ${d.seeds.length} (incomplete)`;
  return { runs, fails, stat, base, status };
}

export function buildReproduceDoc(d: DocInput): ReportDoc {
  const seedsText = `seeds ${d.seeds.join(', ')}`;
  const sections: ReportSection[] = [
    ...(d.parts.main ? TASK_TABLES.map((t) => mainSection(d, t, seedsText)).filter((x): x is ReportSection => x !== undefined) : []),
    ...(d.parts.realText ? [realTextSection(d, seedsText)] : []),
    ...(d.parts.ablation ? [ablationSection(d, seedsText)] : []),
  ];
  const notice = d.synthetic
    ? 'These numbers come from the synthetic bilingual suite (generated data with planted cues), not from the benchmarks. They check the pipeline and compare configurations; they are not comparable with the published numbers, so no difference column is shown. Run `egmf reproduce --data-root DIR` on imported MELD, CHERMA, MOSEI and SIMS-V2 for the real comparison.'
    : undefined;
  return {
    title: 'EGMF: the paper\'s tables, reproduced',
    ...(notice ? { notice } : {}),
    meta: {
      'report run': d.runId,
      data: d.synthetic ? 'synthetic suite (experiments/synthetic/)' : `imported datasets under ${d.dataRoot}`,
      seeds: d.seeds.join(', '),
      mode: d.quick ? 'quick (tiny splits, one epoch: a smoke run, not a result)' : 'full protocol',
      runs: `${d.done.length} finished, ${d.failed.length} failed`,
    },
    sections,
  };
}

/** One task's main table: ours, the baselines and every published row, with its chart. */
function mainSection(d: DocInput, t: (typeof TASK_TABLES)[number], seedsText: string): ReportSection | undefined {
  const dss = t.datasets.filter((x) => (d.datasets as readonly string[]).includes(x)) as PaperDataset[];
  if (dss.length === 0) return undefined;
  const cols = dss.flatMap((ds) => (t.metrics ?? SENTIMENT_METRICS[ds]!).map((m) => ({ ds, m })));
  const headline = Object.fromEntries(dss.map((ds) => [ds, headlineMetric(ds).name]));
  const columns = ['system', 'seeds', ...cols.map((c) => `${DATASET_LABELS[c.ds]} ${METRIC_LABELS[c.m] ?? c.m}`)];
  if (!d.synthetic) columns.push(...dss.map((ds) => `${DATASET_LABELS[ds]} Δ ${METRIC_LABELS[headline[ds]!]} vs EGMF (published)`));
  const rows: Cell[][] = [];
  const ours = dss.map((ds) => rowStats(d, 'main', ds));
  const status = [...new Set(ours.map((r) => r.status))].join(' / ');
  const egmfPub = (ds: string) => d.published.find((p) => p.paper === 'EGMF' && p.dataset === ds && p.metric === headline[ds]);
  const our = ['EGMF, this implementation (built-in tiny LLM)', status, ...cols.map((c) => fmtStat(c.m, ours[dss.indexOf(c.ds)]!.stat('test', c.m)))] as Cell[];
  if (!d.synthetic) {
    our.push(...dss.map((ds, i) => {
      const s = ours[i]!.stat('test', headline[ds]!);
      const p = egmfPub(ds);
      return s.n > 0 && p ? signed(headline[ds]!, s.mean - p.value) : '—';
    }));
  }
  rows.push(our);
  for (const b of ['majority', 'tfidf'] as const) {
    const r: Cell[] = [b === 'majority' ? 'majority class (same splits)' : 'TF-IDF + linear model (same splits)', status, ...cols.map((c) => fmtStat(c.m, ours[dss.indexOf(c.ds)]!.base(b, 'test', c.m)))];
    if (!d.synthetic) r.push(...dss.map(() => null));
    rows.push(r);
  }
  const systems = [...new Set(d.published.filter((p) => (dss as string[]).includes(p.dataset)).map(systemName))];
  for (const sys of systems) {
    const r: Cell[] = [`${sys} (published)`, null, ...cols.map((c) => {
      const p = d.published.find((x) => systemName(x) === sys && x.dataset === c.ds && x.metric === c.m);
      return p ? formatMetric(c.m, p.value) : null;
    })];
    if (!d.synthetic) r.push(...dss.map(() => null));
    rows.push(r);
  }
  const failures = ours.flatMap((r) => r.fails.map((f) => `${DATASET_LABELS[f.job.row]} seed ${f.job.seed}: ${f.error}`));
  const table: ReportTable = {
    caption: `${cap(t.task)}: test metrics, mean ± std over ${seedsText} (accuracies, F1 and Corr ×100; MAE as is)`,
    columns, rows,
    note: [
      'Published rows are as printed by their sources (reports/published/), converted to the same scale; "—" = not reported.',
      ...(failures.length > 0 ? [`Failed runs: ${failures.join('; ')}`] : []),
    ].join(' '),
  };
  const points: MeanStdPoint[] = [];
  for (const ds of dss) {
    const h = headline[ds]!;
    const s = ours[dss.indexOf(ds)]!.stat('test', h);
    if (s.n > 0) points.push({ x: DATASET_LABELS[ds]!, series: 'EGMF (ours)', mean: scaled(h, s.mean), std: scaled(h, s.std), n: s.n });
    for (const b of ['majority', 'tfidf'] as const) {
      const bs = ours[dss.indexOf(ds)]!.base(b, 'test', h);
      if (bs.n > 0) points.push({ x: DATASET_LABELS[ds]!, series: b === 'majority' ? 'majority class' : 'TF-IDF', mean: scaled(h, bs.mean), std: scaled(h, bs.std), n: bs.n });
    }
    for (const p of d.published.filter((x) => x.dataset === ds && x.metric === h)) points.push({ x: DATASET_LABELS[ds]!, series: systemName(p), mean: scaled(h, p.value), std: 0 });
  }
  const headlineLabel = [...new Set(dss.map((ds) => METRIC_LABELS[headline[ds]!]))].join(' / ');
  return {
    heading: cap(t.task),
    paragraphs: [`Each dataset's headline metric as the paper reports it (${dss.map((ds) => `${DATASET_LABELS[ds]}: ${METRIC_LABELS[headline[ds]!]}`).join(', ')}).`],
    tables: [table],
    charts: points.length > 0 ? [{
      name: `main_${t.task.split(' ')[0]}`,
      spec: barChart({ title: `${cap(t.task)}: ${headlineLabel} on test (mean ± std over seeds)`, x: 'dataset', y: `${headlineLabel} (test, ×100)`, points }),
    }] : [],
  };
}

/** The real-text table: MELD and CPED utterances beside their computed baselines. */
function realTextSection(d: DocInput, seedsText: string): ReportSection {
  const rows: Cell[][] = REAL_TEXT.map((r) => {
    const st = rowStats(d, 'real', r.key);
    const split = r.scored === 'test' ? 'test' : 'valid';
    return [
      DATASET_LABELS[r.dataset]!, r.language, r.trained, r.scored, st.status,
      fmtStat('weighted_f1', st.stat(split, 'weighted_f1')), fmtStat('acc', st.stat(split, 'acc')),
      fmtStat('weighted_f1', st.base('tfidf', split, 'weighted_f1')), fmtStat('weighted_f1', st.base('majority', split, 'weighted_f1')),
    ];
  });
  const fails = REAL_TEXT.flatMap((r) => rowStats(d, 'real', r.key).fails.map((f) => `${r.key} seed ${f.job.seed}: ${f.error}`));
  const points: MeanStdPoint[] = REAL_TEXT.flatMap((r) => {
    const st = rowStats(d, 'real', r.key);
    const split = r.scored === 'test' ? 'test' : 'valid';
    return ([['EGMF (text only)', st.stat(split, 'weighted_f1')], ['TF-IDF', st.base('tfidf', split, 'weighted_f1')], ['majority class', st.base('majority', split, 'weighted_f1')]] as const)
      .filter(([, s]) => s.n > 0).map(([series, s]) => ({ x: DATASET_LABELS[r.dataset]!, series, mean: s.mean * 100, std: s.std * 100, n: s.n }));
  });
  return {
    heading: 'Real text: MELD (English) and CPED (Chinese)',
    paragraphs: ['Real utterances from ../shared/data, text only (the shared copies have no audio or vision features). The baselines are fitted and scored on the same splits by the same runs, not typed in.'],
    tables: [{
      caption: `Real text, weighted F1 and accuracy ×100, mean ± std over ${seedsText}`,
      columns: ['dataset', 'language', 'trained on', 'scored on', 'seeds', 'EGMF WF1', 'EGMF Acc', 'TF-IDF WF1', 'majority WF1'], rows,
      ...(fails.length > 0 ? { note: `Failed runs: ${fails.join('; ')}` } : {}),
    }],
    charts: points.length > 0 ? [{ name: 'real_text', spec: barChart({ title: 'Real text: weighted F1 (mean ± std over seeds)', x: 'dataset', y: 'weighted F1 (×100)', points }) }] : [],
  };
}

/** The ablation table, as papers print it. */
function ablationSection(d: DocInput, seedsText: string): ReportSection {
  const full = rowStats(d, 'ablation', 'full');
  const fullValid = full.stat('valid', 'weighted_f1');
  const rows: Cell[][] = d.ablation.map((v) => {
    const st = rowStats(d, 'ablation', v);
    const valid = st.stat('valid', 'weighted_f1');
    return [v, LEARNING_VARIANTS[v].describe, st.status, fmtStat('weighted_f1', valid), fmtStat('weighted_f1', st.stat('test', 'weighted_f1')),
      v === 'full' || valid.n === 0 || fullValid.n === 0 ? null : signed('weighted_f1', valid.mean - fullValid.mean)];
  });
  const maj = full.base('majority', 'valid', 'weighted_f1');
  rows.push(['majority class', 'predicts the most frequent training class', full.status, fmtStat('weighted_f1', maj), fmtStat('weighted_f1', full.base('majority', 'test', 'weighted_f1')), null]);
  const fails = d.ablation.flatMap((v) => rowStats(d, 'ablation', v).fails.map((f) => `${v} seed ${f.job.seed}: ${f.error}`));
  const points: MeanStdPoint[] = d.ablation.flatMap((v) => {
    const s = rowStats(d, 'ablation', v).stat('valid', 'weighted_f1');
    return s.n > 0 ? [{ x: v, mean: s.mean * 100, std: s.std * 100, n: s.n }] : [];
  });
  return {
    heading: `Ablation (${d.synthetic ? 'synthetic MELD' : 'MELD'})`,
    paragraphs: ['Every row is the full model with one change; full = three experts, gating depth 2, two pseudo tokens, LoRA rank 4 on q/v. Δ is the row\'s mean minus the full model\'s.'],
    tables: [{
      caption: `Ablation: weighted F1 ×100 (valid at the best epoch; test beside it), mean ± std over ${seedsText}`,
      columns: ['variant', 'what changes', 'seeds', 'valid WF1', 'test WF1', 'Δ valid vs full'], rows,
      ...(fails.length > 0 ? { note: `Failed runs: ${fails.join('; ')}` } : {}),
    }],
    charts: points.length > 0 ? [{
      name: 'ablation',
      spec: barChart({ title: 'Ablation: valid weighted F1 (mean ± std over seeds)', x: 'variant', y: 'weighted F1 (valid, ×100)', points, ...(maj.n > 0 ? { reference: [{ label: 'majority class', value: maj.mean * 100 }] } : {}) }),
    }] : [],
  };
}

/** A metric on the tables' scale: accuracies, F1 and Corr ×100, MAE as is. */
export function scaled(key: string, v: number): number {
  return key === 'MAE' ? v : v * 100;
}
function signed(key: string, v: number): string {
  const t = formatMetric(key, Math.abs(v));
  return v < 0 ? `−${t}` : `+${t}`;
}
function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
