/**
 * Issue 3, "Done when": on the synthetic suite the full model beats text-only and each
 * single expert on validation. Five runs with the same data (synthetic MELD at scale 0.06:
 * 608 training and 67 validation samples), 8 epochs (304 steps of 16), peak lr 0.005 with
 * 5% warm-up then cosine, the built-in tiny LLM as pretrained on first use (300 steps), wasm;
 * the value compared is the validation weighted F1 at the best epoch. Variants: full (local +
 * semantic + global experts over text + audio + vision), text only (the text modality alone,
 * local + global experts), and each expert alone over the three modalities.
 *
 * Opt-in (EGMF_ABLATION=1, ~15 min on 2 cores): the comparisons do not hold at this budget,
 * so the file fails when run. Measured (2-core machine, this protocol; majority baseline 0.309):
 *   seed 1111: full 0.630, text 0.421, local 0.565, semantic 0.754, global 0.745
 *   seed 2222: full 0.437, text 0.447, semantic 0.539 (local and global not run)
 *   seed 1111, 16 epochs (608 steps): full 0.578, text 0.514, semantic 0.685
 * Every variant sits at the majority class for the first 2–3 epochs, then learns; the gated
 * mixture of three experts stays behind the semantic (or global) expert alone, with twice
 * the steps too, and only sometimes ahead of text. Diagnostics behind these numbers: the fusion network with a
 * linear head on the fused vector (no LLM) reaches acc 0.81 on the same split in 80 steps,
 * so the slow part is the path through the frozen LLM (the answer position barely attends to
 * the pseudo tokens at the start: replacing them with random vectors moves the answer logits
 * by 0.02 against 0.1–0.2 of variation across samples).
 * Margins: weighted F1 points; the precondition (full beats the majority baseline) keeps the
 * comparisons from passing on runs that learned nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadExperiment } from '../../src/config/experiment.ts';
import { trainExperiment } from '../../src/train/trainer.ts';
import { REPO, tempDir } from '../helpers.ts';

const CONFIG = join(REPO, 'experiments', 'synthetic', 'meld.yaml');
const SEED = 1111;
const SETS = ['data.scale=0.06', 'train.epochs=8', 'train.patience=8', 'train.lr=0.005', 'train.warmup_ratio=0.05', 'backend=wasm'];
const VARIANTS = {
  full: [],
  text: ['model.modalities=[text]', 'model.experts.semantic.enabled=false'],
  local: ['model.experts.semantic.enabled=false', 'model.experts.global.enabled=false'],
  semantic: ['model.experts.local.enabled=false', 'model.experts.global.enabled=false'],
  global: ['model.experts.local.enabled=false', 'model.experts.semantic.enabled=false'],
} as const satisfies Record<string, readonly string[]>;
type Variant = keyof typeof VARIANTS;
/** How far (validation weighted F1) the full model must lead each ablation. */
const MARGIN: Record<Exclude<Variant, 'full'>, number> = { text: 0.05, local: 0.02, semantic: 0.02, global: 0.02 };
/** How far the full model must lead the majority-class baseline. */
const LEARNED = 0.15;

let tmp: ReturnType<typeof tempDir>;
const savedCache = process.env.EGMF_CACHE;
const f1: Partial<Record<Variant, number>> = {};
let majorityF1 = Number.NaN;

/** Weighted F1 of always predicting the most frequent class: p · 2p / (1 + p). */
function majorityWeightedF1(predictionsCsv: string): number {
  const truths = readFileSync(predictionsCsv, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[1]!);
  const counts = new Map<string, number>();
  for (const t of truths) counts.set(t, (counts.get(t) ?? 0) + 1);
  const p = Math.max(...counts.values()) / truths.length;
  return (p * 2 * p) / (1 + p);
}

describe.runIf(process.env.EGMF_ABLATION === '1')('EGMF ablation on synthetic MELD', () => {
  beforeAll(async () => {
    tmp = tempDir('egmf-ablation-');
    process.env.EGMF_CACHE = join(tmp.path, 'cache');
    for (const name of Object.keys(VARIANTS) as Variant[]) {
      const cfg = loadExperiment(CONFIG, [...SETS, ...VARIANTS[name]]);
      const outDir = join(tmp.path, name);
      const r = await trainExperiment(cfg, { outDir, tracking: null, seed: SEED });
      f1[name] = r.valid.weighted_f1!;
      if (name === 'full') majorityF1 = majorityWeightedF1(join(outDir, 'predictions-valid.csv'));
    }
    console.log(`ablation valid weighted F1: ${JSON.stringify(f1)}; majority baseline ${majorityF1.toFixed(4)}`);
  }, 1_800_000);
  afterAll(() => {
    if (savedCache === undefined) delete process.env.EGMF_CACHE;
    else process.env.EGMF_CACHE = savedCache;
    tmp.cleanup();
  });

  it(`the full model learns: it beats the majority-class baseline by ${LEARNED}`, () => {
    expect(f1.full!).toBeGreaterThan(majorityF1 + LEARNED);
  });

  it.each(Object.entries(MARGIN) as [Exclude<Variant, 'full'>, number][])('the full model beats %s by %s', (name, margin) => {
    expect(f1.full!).toBeGreaterThan(f1[name]! + margin);
  });
});
