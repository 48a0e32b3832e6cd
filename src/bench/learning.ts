/**
 * Learning benchmark: does EGMF learn, reliably, on the default synthetic experiment?
 *
 * Protocol: `experiments/synthetic/<dataset>.yaml` as it stands (MELD: scale 0.28, 311
 * validation samples, the first 1,200 training samples, 4 epochs = 300 steps of 16, peak lr
 * 0.005 with 5% warm-up then cosine), the built-in tiny LLM, wasm. Every variant below is
 * trained once per seed (1111-5555 by default), each run a real `egmf train` process, at
 * most `parallel` at a time; the value compared is the validation weighted F1 at the best
 * epoch. The majority-class and TF-IDF baselines come from the runs' own summaries.
 *
 * Targets (issue "results a researcher can trust"): the full model's mean is within 0.03 of
 * the same fusion network with a linear head (`linear`, `model.head=linear`: no LLM) trained
 * on the same data for the same steps, and its standard deviation over seeds is at most 0.03.
 *
 *     npm run bench -- --target learning                       # full vs linear, 5 seeds
 *     npm run bench -- --target learning --variants all        # the whole ablation table
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgmfError } from '../errors.ts';
import { loadExperiment } from '../config/experiment.ts';
import { mapPool, REPO_ROOT, runTrainProcess, type TrainLine } from '../train/process.ts';
import { formatMeanStd, meanStd, type MeanStd } from '../train/seeds.ts';
export const LEARNING_SEEDS = [1111, 2222, 3333, 4444, 5555] as const;

/** The variants, as `--set` overrides of the default experiment. */
export const LEARNING_VARIANTS = {
  full: { describe: 'EGMF as configured: three experts over text, audio, vision; gating depth 2; LLM head', sets: [] },
  linear: { describe: 'the same fusion network with a linear head on the fused vector; the LLM never runs', sets: ['model.head=linear'] },
  text: { describe: 'text only (local + global experts)', sets: ['model.modalities=[text]', 'model.experts.semantic.enabled=false'] },
  local: { describe: 'fine-grained local expert alone', sets: ['model.experts.semantic.enabled=false', 'model.experts.global.enabled=false'] },
  semantic: { describe: 'semantic correlation expert alone', sets: ['model.experts.local.enabled=false', 'model.experts.global.enabled=false'] },
  global: { describe: 'global context expert alone', sets: ['model.experts.local.enabled=false', 'model.experts.semantic.enabled=false'] },
  'no-local': { describe: 'without the local expert', sets: ['model.experts.local.enabled=false'] },
  'no-semantic': { describe: 'without the semantic expert', sets: ['model.experts.semantic.enabled=false'] },
  'no-global': { describe: 'without the global expert', sets: ['model.experts.global.enabled=false'] },
  'depth-1': { describe: 'gating depth 1 (one flat gate)', sets: ['model.gating.depth=1'] },
  'depth-3': { describe: 'gating depth 3 (also a gate over expert kinds)', sets: ['model.gating.depth=3'] },
  'no-pseudo': { describe: 'no pseudo tokens: the LLM answers from the prompt alone', sets: ['model.pseudo_tokens=0'] },
  'no-lora': { describe: 'LoRA off: the LLM stays frozen', sets: ['llm.lora.enabled=false'] },
  'lora-8': { describe: 'LoRA rank 8 (alpha 16)', sets: ['llm.lora.rank=8', 'llm.lora.alpha=16'] },
  'lora-16': { describe: 'LoRA rank 16 (alpha 32)', sets: ['llm.lora.rank=16', 'llm.lora.alpha=32'] },
} as const satisfies Record<string, { describe: string; sets: readonly string[] }>;
export type LearningVariant = keyof typeof LEARNING_VARIANTS;
export const DEFAULT_VARIANTS: readonly LearningVariant[] = ['full', 'linear'];

export interface LearningOptions {
  variants?: readonly LearningVariant[];
  seeds?: readonly number[];
  dataset?: 'meld' | 'cherma';
  /** Training processes at a time (default 2). */
  parallel?: number;
  /** Extra `--set` overrides applied to every variant (e.g. a shorter run in tests). */
  sets?: readonly string[];
  /** Environment of the training processes (default this process's). */
  env?: NodeJS.ProcessEnv;
  say?: (m: string) => void;
}

export interface LearningRun { variant: LearningVariant; seed: number; valid: number; test: number; seconds: number }

export interface LearningResult extends Record<string, unknown> {
  dataset: string;
  seeds: number[];
  metric: string;
  runs: LearningRun[];
  /** Runs that failed, with the cause; the others still count. */
  failed: { variant: LearningVariant; seed: number; error: string }[];
  /** Per variant: mean ± std over seeds of valid (and test) weighted F1. */
  table: Record<string, { valid: MeanStd; test: MeanStd }>;
  baselines: { majority: MeanStd; tfidf: MeanStd };
  /** The two targets, when both full and linear ran. */
  targets: { gap: number; gap_ok: boolean; full_std: number; std_ok: boolean } | null;
  wall_s: number;
}

/** Parses `--variants` (comma-separated names, or `all`). */
export function parseVariants(spec: string | undefined): LearningVariant[] {
  if (spec === undefined || spec.trim() === '') return [...DEFAULT_VARIANTS];
  if (spec.trim() === 'all') return Object.keys(LEARNING_VARIANTS) as LearningVariant[];
  const names = spec.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const n of names) {
    if (!(n in LEARNING_VARIANTS)) throw new EgmfError(`unknown learning variant '${n}' (known: ${Object.keys(LEARNING_VARIANTS).join(', ')}, all)`, { key: 'variants' });
  }
  return names as LearningVariant[];
}

export async function runLearningBench(opts: LearningOptions = {}): Promise<LearningResult> {
  const variants = opts.variants ?? DEFAULT_VARIANTS;
  const seeds = [...(opts.seeds ?? LEARNING_SEEDS)];
  const dataset = opts.dataset ?? 'meld';
  const parallel = Math.max(1, opts.parallel ?? 2);
  const say = opts.say ?? (() => undefined);
  const config = join(REPO_ROOT, 'experiments', 'synthetic', `${dataset}.yaml`);
  // A bad override (an unknown key, a value out of range) is refused before anything trains,
  // naming the key, rather than failing every run alike.
  const setsOf = (v: LearningVariant): string[] => [...LEARNING_VARIANTS[v].sets, ...(opts.sets ?? [])];
  for (const v of variants) loadExperiment(config, setsOf(v));
  const root = mkdtempSync(join(tmpdir(), 'egmf-learning-'));
  const t0 = Date.now();
  const jobs = seeds.flatMap((seed) => variants.map((variant) => ({ variant, seed })));
  const runs: LearningRun[] = [];
  const failed: LearningResult['failed'] = [];
  const baselines: { majority: number[]; tfidf: number[] } = { majority: [], tfidf: [] };
  let metric = 'weighted_f1';
  try {
    await mapPool(jobs, parallel, async (job) => {
      let r: TrainLine;
      try {
        r = (await runTrainProcess({
          config, seed: job.seed,
          sets: setsOf(job.variant), out: join(root, `${job.variant}-${job.seed}`),
          ...(opts.env ? { env: opts.env } : {}),
        })).line;
      } catch (e) {
        failed.push({ variant: job.variant, seed: job.seed, error: (e as Error).message });
        say(`${job.variant} seed ${job.seed}: FAILED: ${(e as Error).message}`);
        return;
      }
      metric = r.metric;
      runs.push({ variant: job.variant, seed: job.seed, valid: r.best_valid ?? Number.NaN, test: r.test[metric] ?? Number.NaN, seconds: r.seconds });
      if (job.variant === variants[0]) {
        baselines.majority.push(r.baselines.majority ?? Number.NaN);
        baselines.tfidf.push(r.baselines.tfidf ?? Number.NaN);
      }
      say(`${job.variant} seed ${job.seed}: valid ${metric} ${(r.best_valid ?? Number.NaN).toFixed(4)} (${Math.round(r.seconds)} s; majority ${r.baselines.majority?.toFixed(4)})`);
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  runs.sort((a, b) => variants.indexOf(a.variant) - variants.indexOf(b.variant) || a.seed - b.seed);
  const table = Object.fromEntries(variants.map((v) => {
    const rs = runs.filter((r) => r.variant === v);
    return [v, { valid: meanStd(rs.map((r) => r.valid)), test: meanStd(rs.map((r) => r.test)) }];
  }));
  const full = table.full?.valid;
  const linear = table.linear?.valid;
  const targets = full && linear
    ? { gap: linear.mean - full.mean, gap_ok: linear.mean - full.mean <= 0.03, full_std: full.std, std_ok: full.std <= 0.03 }
    : null;
  return {
    dataset, seeds, metric, runs, failed, table,
    baselines: { majority: meanStd(baselines.majority), tfidf: meanStd(baselines.tfidf) },
    targets, wall_s: Math.round((Date.now() - t0) / 1000),
  };
}

/** The table for people: one row per variant, the baselines, and the targets. */
export function formatLearning(r: LearningResult): string {
  const f = (s: MeanStd) => formatMeanStd(s, 3);
  const w = Math.max(...Object.keys(r.table).map((k) => k.length), 12);
  const lines = [
    `synthetic ${r.dataset}, valid ${r.metric} at the best epoch, seeds ${r.seeds.join(', ')} (mean ± std; test beside it)`,
    ...Object.entries(r.table).map(([v, t]) => `${v.padEnd(w)}  ${f(t.valid)}  (test ${f(t.test)})  per seed ${r.runs.filter((x) => x.variant === v).map((x) => x.valid.toFixed(3)).join(' ')}`),
    `${'majority'.padEnd(w)}  ${f(r.baselines.majority)}`,
    `${'tf-idf + lr'.padEnd(w)}  ${f(r.baselines.tfidf)}`,
  ];
  if (r.targets) {
    lines.push(`target: linear - full ≤ 0.03: ${r.targets.gap.toFixed(3)} ${r.targets.gap_ok ? 'holds' : 'does NOT hold'}; std(full) ≤ 0.03: ${r.targets.full_std.toFixed(3)} ${r.targets.std_ok ? 'holds' : 'does NOT hold'}`);
  }
  for (const f of r.failed) lines.push(`FAILED ${f.variant} seed ${f.seed}: ${f.error}`);
  lines.push(`wall time ${r.wall_s} s`);
  return lines.join('\n');
}
