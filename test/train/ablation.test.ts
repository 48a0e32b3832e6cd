/**
 * The ablation on the synthetic suite: the full model against text only (in CI) and against
 * every variant of src/bench/learning.ts over the paper's five seeds (opt-in, EGMF_ABLATION=1,
 * the same runs as `npm run bench -- --target learning --variants all`).
 *
 * Protocol now: the default synthetic MELD experiment (scale 0.28: the first 1,200 of its
 * training samples, 311 validation samples; 300 steps of 16, peak lr 0.005, 5% warm-up then
 * cosine), wasm, valid weighted F1 at the best epoch. The five-seed table is in the README
 * ("Learning: EGMF against its baselines"). Seeds 1111-5555 now: full 0.753 ± 0.005, linear
 * head 0.776 ± 0.015, text only 0.485 ± 0.038, local 0.723 ± 0.043, semantic 0.749 ± 0.008,
 * global 0.734 ± 0.005, depth 1 0.745 ± 0.015, no pseudo tokens 0.350 ± 0.043.
 *
 * History, earlier protocol: synthetic MELD at scale 0.12 (1,199 training and 133 validation samples),
 * 4 epochs (300 steps of 16), peak lr 0.005 with 5% warm-up then cosine, the built-in tiny
 * LLM as pretrained on first use (300 steps), wasm; the value compared is the validation
 * weighted F1 at the best epoch. Variants, all on the same data: full (local + semantic +
 * global experts over text + audio + vision), text only (the text modality alone, local +
 * global experts), and each expert alone over the three modalities.
 *
 * Measured with this protocol (2-core machine; majority baseline 0.305), before text
 * embeddings were RMS-normalised in the encoder:
 *   seed   full   text   local  semantic  global
 *   1111   0.482  0.322  0.342  0.425     0.418
 *   2222   0.650  0.352  0.448  0.652     0.693
 *   3333   0.681  0.305  0.489  0.706     0.692
 *   4444   0.656  0.392  0.503  0.641     0.492
 *   5555   0.471  0.332  0.481  0.663     0.358
 *   mean   0.588  0.341  0.453  0.617     0.531
 * After that change (seeds 1111 / 2222): full 0.506 (0.519 with eps 1e-6) / 0.563, text
 * 0.318 / 0.357, local 0.320 / 0.456, semantic 0.619 / 0.359, global 0.472 / 0.576: the
 * same picture, and single runs move by up to 0.3 with the seed.
 * With expert outputs layer-normalised before the gate (model.gating.expert_norm, now the
 * default): full 0.477 / 0.720 (seeds 1111 / 2222), text 0.354 (seed 1111).
 * The full model beats text only on every seed (leads 0.124-0.376). It beats the local
 * expert on four seeds of five (mean lead 0.135; seed 5555: -0.010) and the global expert on
 * three (mean lead 0.057, the global expert's spread is the largest); it does not beat the
 * semantic expert (mean -0.029). Where the variants differ, per cue route of the synthetic
 * generator (valid, all five seeds): the text-only variant stays at the class prior in this
 * budget (every variant is at the neutral share on the text-only route), so the full
 * model's lead over text comes from the routes that audio and vision carry. The words are
 * not the hard part: the fusion network with a linear head instead of the LLM reads them
 * (text only, 0.65-0.69 accuracy after 300-400 steps, near the ~0.70 that text allows);
 * the slow part is the path through the frozen tiny LLM. No variant
 * reads the audio-vision synchrony route (conflict-joint), so nothing in this data needs
 * the three experts together: the semantic and the global expert can each represent every
 * cue that is learned.
 * More pseudo tokens shorten that slow start (they take a larger share of the answer
 * position's attention) but do not change the ranking: with model.pseudo_tokens=16, full
 * 0.728 / 0.672 / 0.650 (seeds 1111 / 2222 / 4444) against semantic 0.736 / 0.485 / 0.706 /
 * 0.702 / 0.721 (1111-5555); with 32, full 0.552 / 0.641 / 0.697 / 0.737 / 0.754 (1111-5555,
 * mean 0.676), semantic 0.680 / 0.721 / 0.697 / 0.704 / 0.732 (mean 0.707), and text only
 * learns too (0.476 at seed 1111). Runs that leave the majority class by epoch 2 end near
 * 0.70-0.75, the ceiling that the fusion network alone (linear head, no LLM) reaches on this
 * data whichever experts it has (0.69-0.77 valid accuracy at 300 steps).
 * With 4x the data (scale 0.5: 4,995 training, 555 validation samples) that fusion network
 * reaches, after 1,500 steps (seed 1111): full 0.861, global 0.852, semantic 0.841, local
 * 0.829 valid accuracy. The full model's edge over the best single expert (0.01-0.02) is far
 * below the 0.1-0.3 that single LLM runs move with the seed at this protocol.
 * Generator routes tried to give each expert kind a cue of its own (measured with that
 * fusion network; none kept): the order in which two groups of dims light up within a short
 * burst (pooled over time, paired classes look the same), read by no expert even when 85% of
 * the samples carry it (test accuracy 0.59-0.62 for local, semantic and global alike); slow
 * label-free waves on the burst band, so that a burst stands out only against its
 * neighbours, after which no expert reads the bursts (0.41-0.53, the class prior); a slope
 * without level, which the local expert reads as well as the semantic one (0.83 / 0.79),
 * because index positions align the utterances' starts.
 * Model changes tried on the full model (none kept): the fused vector scaled by the number of
 * experts (0.466 / 0.677 at seeds 1111 / 2222, against 0.477 / 0.720), train.adam_eps 1e-8
 * (0.588 / 0.676), dropping experts at the gate with probability 0.5 (fusion network: no
 * change beyond noise).
 *
 * The auxiliary probe (model.aux_probe.weight, now 1 by default): a linear head on the fused
 * vector whose cross-entropy trains the fusion network directly, beside the answer loss that
 * reaches it only through the frozen LLM (per-element gradients there were 2e-5 to 1.5e-4).
 * Same protocol, full model, valid weighted F1 (test in brackets), majority 0.305, TF-IDF +
 * logistic regression on the same text 0.663:
 *   weight 0: 1111 0.477 (0.474) (stays at the majority class for the first epoch)
 *   weight 1: 1111 0.734 (0.776), 2222 0.731 (0.784), 3333 0.701 (0.769), 4444 0.759 (0.779),
 *             5555 0.756 (0.774); mean 0.736 ± 0.023 (test 0.777 ± 0.006); 0.55-0.66 already
 *             after the first epoch, on every seed
 *   weight 1, text only: 1111 0.530 (0.491)
 * So the LLM path's slow, seed-dependent start was the fusion network learning through the
 * LLM's tiny gradients; with the probe the answers the LLM writes follow the fused vector
 * within the first epoch. The CI block below runs with the probe (the default).
 *
 * Now: the first block (full and text only, seed 1111, two processes, ~3 min on 2 cores)
 * runs with the suite; the second, every variant over five seeds (~75 min), is opt-in
 * (EGMF_ABLATION=1). Measured over seeds 1111-3333 (README): full 0.755 ± 0.011, linear head
 * 0.771 ± 0.019, local 0.703, semantic 0.756, depth 1 0.759 ± 0.015, so its assertions hold;
 * the full model does not beat the semantic expert alone, and nothing asserts that it does.
 * Margins are weighted-F1 points; the precondition (full beats the majority baseline)
 * keeps the comparisons from passing on runs that learned nothing.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { runLearningBench, type LearningResult, type LearningVariant } from '../../src/bench/learning.ts';

/** How far the full model must lead the majority-class baseline. */
const LEARNED = 0.1;
const SEEDS = [1111, 2222, 3333, 4444, 5555];

const valid = (r: LearningResult, v: LearningVariant): number[] => r.runs.filter((x) => x.variant === v).map((x) => x.valid);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('EGMF ablation on synthetic MELD: fusion against text only (seed 1111)', () => {
  /** Measured at seed 1111 with this protocol: full 0.762, text 0.511 (lead 0.251), majority 0.303. */
  const TEXT_MARGIN = 0.1;
  let r: LearningResult;
  beforeAll(async () => {
    r = await runLearningBench({ variants: ['full', 'text'], seeds: [1111] });
    console.log(`ablation (seed 1111): full ${valid(r, 'full')[0]}, text ${valid(r, 'text')[0]}, majority ${r.baselines.majority.mean}, TF-IDF ${r.baselines.tfidf.mean}`);
  }, 1_500_000);

  it(`the full model learns: it beats the majority-class baseline of its own data by ${LEARNED}`, () => {
    expect(valid(r, 'full')[0]!).toBeGreaterThan(r.baselines.majority.mean + LEARNED);
  });

  it(`the full model beats text only by ${TEXT_MARGIN}`, () => {
    expect(valid(r, 'full')[0]!).toBeGreaterThan(valid(r, 'text')[0]! + TEXT_MARGIN);
  });
});

describe.runIf(process.env.EGMF_ABLATION === '1')('EGMF ablation on synthetic MELD: every variant over the paper\'s five seeds', () => {
  let r: LearningResult;
  beforeAll(async () => {
    r = await runLearningBench({ variants: ['full', 'linear', 'text', 'local', 'semantic', 'global', 'no-local', 'no-semantic', 'no-global', 'depth-1', 'depth-3', 'no-pseudo'], seeds: SEEDS });
    console.log(JSON.stringify(r.table));
  }, 6_000_000);

  it(`the full model learns: its mean beats the majority-class baseline by ${LEARNED}`, () => {
    expect(mean(valid(r, 'full'))).toBeGreaterThan(r.baselines.majority.mean + LEARNED);
  });

  it('the full model\'s mean beats the local expert alone and the mean of the single-expert variants', () => {
    const full = mean(valid(r, 'full'));
    expect(full).toBeGreaterThan(mean(valid(r, 'local')));
    expect(full).toBeGreaterThan(mean([mean(valid(r, 'local')), mean(valid(r, 'semantic')), mean(valid(r, 'global'))]));
  });

  it('gating depth 2 (the full model) is not worse than depth 1 beyond one standard deviation', () => {
    const d2 = r.table.full!.valid;
    const d1 = r.table['depth-1']!.valid;
    expect(d2.mean).toBeGreaterThanOrEqual(d1.mean - Math.max(d1.std, d2.std));
  });

  it('learning targets: within 0.03 of the linear-head fusion network, std over seeds at most 0.03', () => {
    expect(r.targets!.gap).toBeLessThanOrEqual(0.03);
    expect(r.targets!.full_std).toBeLessThanOrEqual(0.03);
  });
});
