/**
 * `egmf report crosslingual`: English against Chinese, for each task pair (emotion MELD ↔
 * CHERMA, sentiment MOSEI ↔ SIMS-V2, real text MELD ↔ CPED), from trained runs.
 *
 * Runs come from MLflow (`--runs` ids, an `--experiment`, a sweep's trials), each found again
 * on disk through its `egmf.run_dir` tag (config.json + checkpoints), and sorted into the
 * pairs' six slots by their config (dataset, and text-only or not). A slot × seed with no run
 * is *missing*; a run that is not FINISHED, or whose folder is gone, is *incomplete*: both are
 * listed in the report, which renders what it has. Only `--train-missing` (implied by
 * `--quick`) trains what is missing, as child runs of the report's own run.
 *
 * Every run is then re-evaluated in this process under test-time perturbations
 * (src/reports/robustness.ts): clean, each modality and pair of modalities dropped, feature
 * noise and text perturbations at several levels, and on the other language's scored split
 * where the label spaces align. What the report computes from those numbers is in
 * crosslingual-doc.ts.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EgmfError } from '../errors.ts';
import type { ExperimentConfig } from '../config/experiment.ts';
import type { SplitName } from '../data/schema.ts';
import { readMeta, sweepDir, sweepRoot } from '../sweep/controller.ts';
import { TAG_SWEEP_ID } from '../sweep/trial-protocol.ts';
import { createStore, type Run, type TrackingStore } from '../tracking/index.ts';
import { resolveDataset } from '../train/data-source.ts';
import { primaryMetric } from '../train/metrics/dispatch.ts';
import { mapPool, REPO_ROOT, runTrainProcess, type RunSummary } from '../train/process.ts';
import { readRunConfig } from '../train/run-folder.ts';
import { TAG_RUN_DIR } from '../train/run-logger.ts';
import { buildCrosslingualDoc } from './crosslingual-doc.ts';
import { writeReport } from './document.ts';
import { finishReportRun, startReportRun, TAG_REPORT_KIND } from './report-run.ts';
import { PAPER_SEEDS, QUICK_REAL, QUICK_SEEDS, QUICK_SYNTHETIC } from './reproduce.ts';
import { evaluatePerturbed, loadRun, openTarget, trapezoidAuc, type LoadedRun, type Modality, type Perturbation } from './robustness.ts';

export type Language = 'en' | 'zh';
export const LANGUAGES: readonly Language[] = ['en', 'zh'];
export const LANGUAGE_NAMES: Record<Language, string> = { en: 'English', zh: 'Chinese' };

/** One side of a pair: which runs belong to it, and how `--train-missing` trains one. */
export interface Slot {
  dataset: string;
  label: string;
  /** Runs whose model reads text only (the real-text pair) or not. */
  textOnly: boolean;
  /** Experiment file (relative to the repository) and overrides that train it. */
  config: string;
  /** Overrides; `{shared}` is the shared data folder. */
  sets: readonly string[];
  synthetic: boolean;
}

export interface Pair {
  key: string;
  title: string;
  task: 'emotion recognition' | 'sentiment intensity';
  en: Slot;
  zh: Slot;
}

export const PAIRS: readonly Pair[] = [
  {
    key: 'emotion', title: 'Emotion: MELD (English) ↔ CHERMA (Chinese)', task: 'emotion recognition',
    en: { dataset: 'meld', label: 'MELD', textOnly: false, config: 'experiments/synthetic/meld.yaml', sets: [], synthetic: true },
    zh: { dataset: 'cherma', label: 'CHERMA', textOnly: false, config: 'experiments/synthetic/cherma.yaml', sets: [], synthetic: true },
  },
  {
    key: 'sentiment', title: 'Sentiment intensity: MOSEI (English) ↔ SIMS-V2 (Chinese)', task: 'sentiment intensity',
    en: { dataset: 'mosei', label: 'MOSEI', textOnly: false, config: 'experiments/synthetic/mosei.yaml', sets: [], synthetic: true },
    zh: { dataset: 'sims-v2', label: 'SIMS-V2', textOnly: false, config: 'experiments/synthetic/sims-v2.yaml', sets: [], synthetic: true },
  },
  {
    key: 'real-text', title: 'Real text: MELD (English) ↔ CPED (Chinese) utterances', task: 'emotion recognition',
    en: { dataset: 'meld', label: 'MELD text', textOnly: true, config: 'experiments/meld-text.yaml', sets: ['data.root={shared}/meld'], synthetic: false },
    zh: { dataset: 'cped', label: 'CPED text', textOnly: true, config: 'experiments/cped-text.yaml', sets: ['data.root={shared}/cped'], synthetic: false },
  },
];

export function parsePairs(spec: string | undefined): Pair[] {
  if (spec === undefined || spec.trim() === '' || spec.trim() === 'all') return [...PAIRS];
  const names = [...new Set(spec.split(',').map((s) => s.trim()).filter((s) => s !== ''))];
  return names.map((n) => {
    const p = PAIRS.find((x) => x.key === n);
    if (!p) throw new EgmfError(`unknown pair '${n}' (known: ${PAIRS.map((x) => x.key).join(', ')})`, { key: 'pairs' });
    return p;
  });
}

/** The curves: each perturbation family at increasing levels (level 0 = clean). */
export const CURVES = [
  { key: 'audio_noise', label: 'audio feature noise', unit: 'σ, in feature std', needs: 'audio', levels: [0, 0.5, 1, 2], make: (x: number): Perturbation => ({ kind: 'feature_noise', modality: 'audio', sigma: x }) },
  { key: 'vision_noise', label: 'vision feature noise', unit: 'σ, in feature std', needs: 'vision', levels: [0, 0.5, 1, 2], make: (x: number): Perturbation => ({ kind: 'feature_noise', modality: 'vision', sigma: x }) },
  { key: 'token_dropout', label: 'token dropout', unit: 'share of tokens', needs: 'text', levels: [0, 0.1, 0.2, 0.4], make: (x: number): Perturbation => ({ kind: 'token_dropout', rate: x }) },
  { key: 'word_shuffle', label: 'word shuffling', unit: 'share of words', needs: 'text', levels: [0, 0.25, 0.5, 1], make: (x: number): Perturbation => ({ kind: 'word_shuffle', rate: x }) },
  { key: 'char_noise', label: 'character noise', unit: 'share of characters', needs: 'text', levels: [0, 0.05, 0.1, 0.2], make: (x: number): Perturbation => ({ kind: 'char_noise', rate: x }) },
] as const;
export type CurveKey = (typeof CURVES)[number]['key'];

/** A run of a slot, as found in the store. */
export interface FoundRun {
  runId: string | null;
  runDir: string;
  seed: number;
  startTime: number;
}

/** A run that could not be used, and why (not FINISHED, its folder gone, unreadable). */
export interface UnusableRun { runId: string; why: string }

/** Everything measured on one run. */
export interface RunEval {
  pair: string;
  language: Language;
  seed: number;
  runId: string | null;
  runDir: string;
  dataset: string;
  task: 'classification' | 'regression';
  labelNames?: string[];
  labelRange?: [number, number];
  metric: string;
  goal: 'max' | 'min';
  /** The split scored (test, or valid where the run has no test split). */
  split: string;
  clean: number;
  n: number;
  predictions: { id: string; truth: number; pred: number | null }[];
  baselines: { majority?: number; tfidf?: number };
  /** Modalities the model reads. */
  modalities: Modality[];
  /** Condition name (drop audio, drop audio+vision, …) → metric. */
  ablation: Record<string, number>;
  curves: Partial<Record<CurveKey, { levels: number[]; values: number[]; auc: number }>>;
  gates: Record<string, number>;
  gatesByClass?: Record<string, Record<string, number>>;
  /** On the other language's scored split: its metric, or why it cannot be done. */
  transfer?: { target: string; value: number; n: number } | { target: string; error: string };
}

export interface CrosslingualOptions {
  pairs?: readonly Pair[];
  seeds?: readonly number[];
  runs?: readonly string[];
  experiments?: readonly string[];
  sweeps?: readonly string[];
  trainMissing?: boolean;
  quick?: boolean;
  out: string;
  trackingUri: string;
  /** The experiment of the report run (and of runs it trains). */
  experiment?: string;
  parallel?: number;
  /** Folder holding meld/ and cped/ CSVs (default ../shared/data beside the repository). */
  sharedData?: string;
  /** Samples evaluated per run and condition (default all; --quick 32). */
  limit?: number;
  env?: NodeJS.ProcessEnv;
  say?: (m: string) => void;
}

export interface CrosslingualResult {
  runId: string;
  out: string;
  html: string;
  markdown: string;
  evaluated: number;
  trained: number;
  missing: { pair: string; language: Language; seed: number }[];
  unusable: UnusableRun[];
  wall_s: number;
}

export const DEFAULT_EXPERIMENT = 'egmf-crosslingual';

export async function crosslingual(o: CrosslingualOptions): Promise<CrosslingualResult> {
  const t0 = Date.now();
  const say = o.say ?? (() => undefined);
  const quick = o.quick ?? false;
  const pairs = o.pairs ?? PAIRS;
  const seeds = [...(o.seeds ?? (quick ? QUICK_SEEDS : PAPER_SEEDS))];
  const trainMissing = o.trainMissing ?? quick;
  const shared = resolve(o.sharedData ?? join(REPO_ROOT, '..', 'shared', 'data'));
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const experiment = o.experiment ?? DEFAULT_EXPERIMENT;
  const store = createStore(o.trackingUri);
  const sources = { runs: o.runs ?? [], experiments: o.experiments ?? [], sweeps: o.sweeps ?? [] };
  if (sources.runs.length + sources.experiments.length + sources.sweeps.length === 0) sources.experiments = [experiment];

  const candidates = await collectRuns(store, sources);
  const { found, unusable, unused } = sortRuns(candidates, pairs, seeds);
  const report = await startReportRun({
    trackingUri: o.trackingUri, experiment, kind: 'crosslingual', runName: quick ? 'crosslingual-quick' : 'crosslingual',
    tags: { 'report.seeds': seeds.join(','), 'report.pairs': pairs.map((p) => p.key).join(',') },
  });
  say(`crosslingual: report run ${report.runId}; ${candidates.length} run(s) read, ${[...found.values()].reduce((a, m) => a + m.size, 0)} usable`);
  try {
    let missing = missingOf(found, pairs, seeds);
    let trained = 0;
    if (trainMissing && missing.length > 0) {
      say(`crosslingual: training ${missing.length} missing run(s), ${o.parallel ?? 2} at a time`);
      await mapPool(missing, o.parallel ?? 2, async (m, i) => {
        const pair = pairs.find((p) => p.key === m.pair)!;
        const slot = pair[m.language];
        const dir = join(out, 'runs', `${pair.key}-${m.language}-seed${m.seed}`);
        const sets = [...slot.sets.map((s) => s.replaceAll('{shared}', shared)), ...(quick ? (slot.synthetic ? QUICK_SYNTHETIC : QUICK_REAL) : [])];
        try {
          const r = await runTrainProcess({
            config: join(REPO_ROOT, slot.config), seed: m.seed, sets, out: dir,
            tracking: { uri: o.trackingUri, experiment, parentRunId: report.runId, runName: `${pair.key}-${m.language}-seed${m.seed}`, tags: { 'report.part': 'crosslingual', 'report.row': `${pair.key}/${m.language}` } },
            ...(o.env ? { env: o.env } : {}),
          });
          slotRuns(found, pair.key, m.language).set(m.seed, { runId: r.line.run_id, runDir: dir, seed: m.seed, startTime: Date.now() });
          trained += 1;
          say(`[${i + 1}/${missing.length}] trained ${slot.label} seed ${m.seed}: valid ${r.line.metric} ${r.line.best_valid?.toFixed(4) ?? 'n/a'}`);
        } catch (e) {
          unusable.push({ runId: `${pair.key}/${m.language}/seed ${m.seed}`, why: `training failed: ${(e as Error).message.split('\n')[0]}` });
          say(`[${i + 1}/${missing.length}] ${slot.label} seed ${m.seed}: FAILED: ${(e as Error).message}`);
        }
      });
      missing = missingOf(found, pairs, seeds);
    }
    const evals: RunEval[] = [];
    const limit = o.limit ?? (quick ? 32 : undefined);
    for (const pair of pairs) {
      const targets = await transferTargets(pair, found);
      for (const lang of LANGUAGES) {
        for (const r of [...slotRuns(found, pair.key, lang).values()].sort((a, b) => a.seed - b.seed)) {
          try {
            evals.push(await evaluateRun(pair, lang, r, { target: targets[lang === 'en' ? 'zh' : 'en'], ...(limit !== undefined ? { limit } : {}) }));
            say(`evaluated ${pair[lang].label} seed ${r.seed}`);
          } catch (e) {
            unusable.push({ runId: r.runId ?? r.runDir, why: `evaluation failed: ${(e as Error).message.split('\n')[0]}` });
          }
        }
      }
    }
    const doc = buildCrosslingualDoc({ pairs, seeds, evals, missing, unusable, unused, runId: report.runId, quick, resamples: quick ? 200 : 1000 });
    const written = await writeReport(doc, out);
    await finishReportRun(report, out, written, evals.map((e) => e.runId).filter((x): x is string => x !== null));
    return {
      runId: report.runId, out, html: written.html, markdown: written.markdown, evaluated: evals.length, trained, missing, unusable,
      wall_s: Math.round((Date.now() - t0) / 1000),
    };
  } catch (e) {
    await report.run.end('FAILED').catch(() => undefined);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------
// Finding runs

/** The runs named by id, every run of the experiments, and the trial runs of the sweeps. */
async function collectRuns(store: TrackingStore, s: { runs: readonly string[]; experiments: readonly string[]; sweeps: readonly string[] }): Promise<Run[]> {
  const out = new Map<string, Run>();
  for (const id of s.runs) {
    let run: Run;
    try {
      run = await store.getRun(id);
    } catch (e) {
      throw new EgmfError(`no such run in ${store.uri}: ${(e as Error).message.split('\n')[0]}`, { key: `runs: ${id}` });
    }
    out.set(id, run);
  }
  for (const name of s.experiments) {
    const exp = await store.getExperimentByName(name);
    if (!exp) {
      if (s.runs.length + s.sweeps.length > 0 || s.experiments.length > 1) throw new EgmfError(`no such experiment`, { key: `experiment: ${name}` });
      continue; // the default experiment, before anything was trained into it
    }
    for (const run of await store.searchRuns({ experimentIds: [exp.experimentId] })) {
      if (run.data.tags[TAG_REPORT_KIND] !== undefined) continue; // a report, not a training run
      if (!out.has(run.info.runId)) out.set(run.info.runId, run);
    }
  }
  for (const id of s.sweeps) {
    const dir = sweepDir(sweepRoot(), id);
    if (!existsSync(dir)) throw new EgmfError('no such sweep', { file: dir, key: `sweep: ${id}` });
    const meta = readMeta(dir);
    const exp = await store.getExperimentByName(meta.experimentName);
    if (!exp) throw new EgmfError(`the sweep's experiment '${meta.experimentName}' is not in this tracking store (the sweep tracked to ${meta.trackingUri})`, { key: `sweep: ${id}` });
    const runs = await store.searchRuns({ experimentIds: [exp.experimentId], filter: `tags."${TAG_SWEEP_ID}" = '${id}'` });
    for (const run of runs) {
      if (run.data.tags['sweep.state'] === 'superseded' || run.info.runId === meta.parentRunId) continue;
      if (!out.has(run.info.runId)) out.set(run.info.runId, run);
    }
  }
  return [...out.values()];
}

/** The slot a run's config belongs to, if any. */
function slotOf(cfg: ExperimentConfig, pairs: readonly Pair[]): { pair: Pair; language: Language } | undefined {
  const textOnly = cfg.model.modalities.length === 1 && cfg.model.modalities[0] === 'text';
  for (const pair of pairs) {
    for (const language of LANGUAGES) {
      const s = pair[language];
      if (s.dataset === cfg.data.dataset && (s.textOnly === textOnly || pair.key === 'sentiment')) return { pair, language };
    }
  }
  return undefined;
}

type Found = Map<string, Map<number, FoundRun>>;
const slotKey = (pair: string, lang: Language): string => `${pair}/${lang}`;
function slotRuns(found: Found, pair: string, lang: Language): Map<number, FoundRun> {
  const k = slotKey(pair, lang);
  if (!found.has(k)) found.set(k, new Map());
  return found.get(k)!;
}

/** Sorts candidates into slots: the latest FINISHED run per slot and seed; the rest explained. */
function sortRuns(cands: readonly Run[], pairs: readonly Pair[], seeds: readonly number[]): { found: Found; unusable: UnusableRun[]; unused: number } {
  const found: Found = new Map();
  const unusable: UnusableRun[] = [];
  let unused = 0;
  for (const run of cands) {
    const id = run.info.runId;
    const dir = run.data.tags[TAG_RUN_DIR];
    if (run.info.status !== 'FINISHED') {
      unusable.push({ runId: id, why: `its status is ${run.info.status}, not FINISHED` });
      continue;
    }
    if (dir === undefined) {
      unusable.push({ runId: id, why: `it has no ${TAG_RUN_DIR} tag (not an egmf training run, or made before runs recorded their folder)` });
      continue;
    }
    if (!existsSync(join(dir, 'config.json'))) {
      unusable.push({ runId: id, why: `its run folder ${dir} (tag ${TAG_RUN_DIR}) is not on this machine` });
      continue;
    }
    let cfg: ExperimentConfig;
    try {
      cfg = readRunConfig(dir).cfg;
    } catch (e) {
      unusable.push({ runId: id, why: (e as Error).message.split('\n')[0]! });
      continue;
    }
    const slot = slotOf(cfg, pairs);
    const seed = Number(run.data.tags['egmf.seed'] ?? cfg.seed);
    if (!slot || !seeds.includes(seed)) {
      unused += 1;
      continue;
    }
    const m = slotRuns(found, slot.pair.key, slot.language);
    const prev = m.get(seed);
    if (!prev || run.info.startTime > prev.startTime) m.set(seed, { runId: id, runDir: dir, seed, startTime: run.info.startTime });
  }
  return { found, unusable, unused };
}

function missingOf(found: Found, pairs: readonly Pair[], seeds: readonly number[]): { pair: string; language: Language; seed: number }[] {
  return pairs.flatMap((p) => LANGUAGES.flatMap((language) => seeds.filter((s) => !slotRuns(found, p.key, language).has(s)).map((seed) => ({ pair: p.key, language, seed }))));
}

// ---------------------------------------------------------------------------------------
// Evaluating

/** Each side's scored split as a transfer target for the other side's runs (from any of its runs' configs). */
async function transferTargets(pair: Pair, found: Found): Promise<Partial<Record<Language, { dir: string; split: string } | { error: string }>>> {
  const out: Partial<Record<Language, { dir: string; split: string } | { error: string }>> = {};
  for (const lang of LANGUAGES) {
    const any = [...slotRuns(found, pair.key, lang).values()][0];
    if (!any) continue;
    try {
      const { cfg } = readRunConfig(any.runDir);
      const data = await resolveDataset(cfg);
      out[lang] = { dir: data.dir, split: cfg.data.test_split !== 'none' ? cfg.data.test_split : cfg.data.valid_split };
    } catch (e) {
      out[lang] = { error: (e as Error).message.split('\n')[0]! };
    }
  }
  return out;
}

function summaryOf(runDir: string): RunSummary | undefined {
  try {
    return JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as RunSummary;
  } catch {
    return undefined;
  }
}

/** Drop conditions: every non-empty proper subset of the modalities the model reads. */
function dropConditions(mods: readonly Modality[]): Modality[][] {
  if (mods.length < 2) return [];
  const out: Modality[][] = [];
  for (let mask = 1; mask < (1 << mods.length) - 1; mask++) out.push(mods.filter((_, i) => mask & (1 << i)));
  return out.sort((a, b) => a.length - b.length);
}

async function evaluateRun(pair: Pair, language: Language, r: FoundRun, o: { target?: { dir: string; split: string } | { error: string }; limit?: number }): Promise<RunEval> {
  const run = await loadRun(r.runDir);
  try {
    return measure(pair, language, r, run, o);
  } finally {
    run.dispose();
  }
}

function measure(pair: Pair, language: Language, r: FoundRun, run: LoadedRun, o: { target?: { dir: string; split: string } | { error: string }; limit?: number }): RunEval {
  const meta = run.setup.meta;
  const { name: metric, goal } = primaryMetric(meta.task, meta.dataset);
  const lim = o.limit !== undefined ? { limit: o.limit } : {};
  const value = (p: Perturbation): number => evaluatePerturbed(run, p, lim).metrics[metric]!;
  const clean = evaluatePerturbed(run, { kind: 'none' }, lim);
  const modalities = [...run.cfg.model.modalities] as Modality[];
  const ablation: Record<string, number> = {};
  for (const ms of dropConditions(modalities)) ablation[`drop ${ms.join('+')}`] = value({ kind: 'drop', modalities: ms });
  const curves: RunEval['curves'] = {};
  for (const c of CURVES) {
    if (!modalities.includes(c.needs)) continue;
    const levels = [...c.levels];
    const values = levels.map((x) => (x === 0 ? clean.metrics[metric]! : value(c.make(x))));
    curves[c.key] = { levels, values, auc: trapezoidAuc(levels, values) };
  }
  const summary = summaryOf(r.runDir);
  const split = run.setup.loaders.test ? run.cfg.data.test_split : run.cfg.data.valid_split;
  const baseline = (name: string) => summary?.baselines_detail[name]?.[run.setup.loaders.test ? 'test' : 'valid']?.[metric] ?? undefined;
  const maj = baseline('majority');
  const tfidf = baseline('tfidf');
  const out: RunEval = {
    pair: pair.key, language, seed: r.seed, runId: r.runId, runDir: r.runDir, dataset: meta.dataset, task: meta.task, metric, goal, split,
    ...(meta.labelNamesEn ?? meta.labelNames ? { labelNames: [...(meta.labelNamesEn ?? meta.labelNames)!] } : {}), ...(meta.labelRange ? { labelRange: meta.labelRange } : {}),
    clean: clean.metrics[metric]!, n: clean.n, predictions: clean.predictions,
    baselines: { ...(maj !== undefined && maj !== null ? { majority: maj } : {}), ...(tfidf !== undefined && tfidf !== null ? { tfidf } : {}) },
    modalities, ablation, curves, gates: clean.gates, ...(clean.gatesByClass ? { gatesByClass: clean.gatesByClass } : {}),
  };
  const other = pair[language === 'en' ? 'zh' : 'en'];
  if (o.target && 'error' in o.target) out.transfer = { target: other.label, error: o.target.error };
  else if (o.target) {
    try {
      const target = openTarget(run, o.target.dir, o.target.split as SplitName);
      const tm = primaryMetric(target.meta.task, target.meta.dataset).name;
      const e = evaluatePerturbed(run, { kind: 'none' }, { ...lim, target });
      out.transfer = { target: other.label, value: e.metrics[tm]!, n: e.n };
    } catch (e) {
      out.transfer = { target: other.label, error: (e as Error).message.split('\n')[0]! };
    }
  }
  return out;
}
