/**
 * Issue 3, "Done when": on the synthetic suite the full model beats text-only and each
 * single expert on validation. Five runs with the same seed and data (synthetic MELD at
 * scale 0.06: 67 validation samples; a fixed 192-sample training subset, 4 epochs):
 * full (local + semantic + global, text + audio + vision), text only, and each expert alone.
 *
 * Measured (2-core machine, seed 1111, this protocol, 179 s for the file with a fresh
 * cache): every variant ends at the majority-class baseline, valid weighted F1 0.3088
 * (acc 0.4776, all 67 predictions 'neutral'): full 0.3088, text 0.3088, local 0.3088,
 * semantic 0.3088, global 0.3088. Longer runs stay there too: full and text only, 10
 * epochs over the whole 608-sample training split (380 steps, lr 0.005, warm-up + cosine).
 * The model does leave the prior, but only after ~300 steps. Constant lr 0.005, batch 16,
 * fresh batches from the whole training split, valid acc after 240 / 360 / 480 / 600 steps:
 * text only 0.48 / 0.55 / 0.58 / 0.57 (0.60 at 720), full 0.49 / 0.57 / 0.63 / 0.78, so
 * fusion does beat text at 600 steps (+0.21 acc, one seed). The full model took ~0.75 s a
 * step here (~7.5 min for 600 steps), text only about half that: five such runs do not fit
 * a test budget, so none of the comparisons below holds at this budget. The file is opt-in
 * (EGMF_ABLATION=1) and fails when run, until training on the synthetic suite gets faster.
 * Margins: weighted F1 points, not calibrated (no passing run to calibrate them on); the
 * precondition (full beats the majority baseline) keeps the comparisons from passing on
 * runs that learned nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadExperiment } from '../../src/config/experiment.ts';
import { trainExperiment } from '../../src/train/trainer.ts';
import { REPO, tempDir } from '../helpers.ts';

const CONFIG = join(REPO, 'experiments', 'synthetic', 'meld.yaml');
const SEED = 1111;
const SETS = ['data.scale=0.06', 'data.limit_train=192', 'train.epochs=4', 'train.patience=4', 'llm.pretrain_steps=20', 'backend=wasm'];
const VARIANTS = {
  full: [],
  text: ['model.modalities=[text]', 'model.experts.semantic.enabled=false'],
  local: ['model.experts.semantic.enabled=false', 'model.experts.global.enabled=false'],
  semantic: ['model.experts.local.enabled=false', 'model.experts.global.enabled=false'],
  global: ['model.experts.local.enabled=false', 'model.experts.semantic.enabled=false'],
} as const satisfies Record<string, readonly string[]>;
type Variant = keyof typeof VARIANTS;
/** How far (weighted F1) the full model must lead each ablation. */
const MARGIN: Record<Exclude<Variant, 'full'>, number> = { text: 0.05, local: 0.03, semantic: 0.03, global: 0.03 };
/** How far the full model must lead the majority-class baseline. */
const LEARNED = 0.1;

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
    for (const [name, sets] of Object.entries(VARIANTS) as [Variant, readonly string[]][]) {
      const cfg = loadExperiment(CONFIG, [...SETS, ...sets]);
      const outDir = join(tmp.path, name);
      const r = await trainExperiment(cfg, { outDir, tracking: null, seed: SEED });
      f1[name] = r.valid.weighted_f1!;
      if (name === 'full') majorityF1 = majorityWeightedF1(join(outDir, 'predictions-valid.csv'));
    }
    console.log(`ablation valid weighted F1: ${JSON.stringify(f1)}; majority baseline ${majorityF1.toFixed(4)}`);
  }, 600_000);
  afterAll(() => {
    if (savedCache === undefined) delete process.env.EGMF_CACHE;
    else process.env.EGMF_CACHE = savedCache;
    tmp.cleanup();
  });

  it(`the full model learns: it beats the majority-class baseline by ${LEARNED}`, () => {
    expect(f1.full!).toBeGreaterThan(majorityF1 + LEARNED);
  });

  it.each(Object.entries(MARGIN) as [Exclude<Variant, 'full'>, number][])('the full model beats %s only by %s', (name, margin) => {
    expect(f1.full!).toBeGreaterThan(f1[name]! + margin);
  });
});
