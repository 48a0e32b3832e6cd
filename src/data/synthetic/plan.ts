/**
 * Per-split plans: each sample's label, cue route and what each modality expresses.
 * Planning is cheap and sequential; the expensive part (features, text) is drawn per
 * sample from its own generator in generate.ts.
 */
import type { SplitName } from '../schema.ts';
import { datasetShape } from './knobs.ts';
import type { SyntheticKnobs } from './knobs.ts';
import { PRESETS } from './presets.ts';
import type { ClassificationPreset, PresetName, RegressionPreset } from './presets.ts';
import { makeRng, shuffle } from './random.ts';
import type { Rng } from './random.ts';

/**
 * Which modalities carry the label:
 *   aligned         text, audio and vision all carry it;
 *   text-only       only the text (no bursts, no trend in audio/vision);
 *   conflict-av     audio and vision each carry it; the text is neutral or contradicts;
 *   conflict-joint  only the synchrony of audio and vision carries it (each alone is
 *                   ambiguous between two patterns); the text is neutral or contradicts.
 */
export type CueRoute = 'aligned' | 'text-only' | 'conflict-av' | 'conflict-joint';
export const CUE_ROUTES: readonly CueRoute[] = ['aligned', 'text-only', 'conflict-av', 'conflict-joint'];

export interface SamplePlan {
  label: number;
  route: CueRoute;
  /** What the text does with the label. */
  textMode: 'label' | 'neutral' | 'contradict';
  /** Classification: class the text expresses (-1 = none). Regression: score it expresses. */
  textValue: number;
  /** Regression: score audio / vision express (label units). Classification: the label. */
  audioValue: number;
  visionValue: number;
  /** Classification: intensity in [0.35, 1] shared by all carrying modalities. */
  intensity: number;
  dialogueId: string | null;
  utteranceIndex: number | null;
  speaker: string | null;
}

const SPEAKERS = ['Anna', 'Tom', 'Maya', 'Leo', 'Sara', 'Ben'];

/**
 * Integer counts proportional to `weights` summing to n (largest remainders), except that
 * no count falls below `min`: classes raised to the floor are taken out and the rest
 * re-shared, so the floor distorts only the classes it lifts.
 */
export function allocate(n: number, weights: number[], min: number): number[] {
  const floorMin = Math.min(min, Math.floor(n / weights.length));
  const fixed = new Array<boolean>(weights.length).fill(false);
  for (;;) {
    const free = weights.map((w, i) => (fixed[i] ? 0 : w));
    const total = free.reduce((a, b) => a + b, 0);
    const rest = n - floorMin * fixed.filter(Boolean).length;
    const exact = free.map((w) => (total > 0 ? (rest * w) / total : 0));
    const counts = exact.map((e, i) => (fixed[i] ? floorMin : Math.floor(e)));
    let left = n - counts.reduce((a, b) => a + b, 0);
    const order = exact.map((e, i) => [fixed[i] ? -1 : e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    for (const [, i] of order) {
      if (left-- <= 0) break;
      counts[i]!++;
    }
    const low = counts.findIndex((c, i) => !fixed[i] && c < floorMin);
    if (low < 0) return counts;
    fixed[low] = true;
  }
}

function routes(n: number, k: SyntheticKnobs, rng: Rng): { route: CueRoute; contradict: boolean }[] {
  const nConflict = Math.round(n * k.conflictShare);
  const nTextOnly = Math.min(n - nConflict, Math.round(n * k.textOnlyShare));
  const nJoint = Math.round(nConflict * k.jointShare);
  const nContradict = Math.round(nConflict * k.contradictShare);
  const conflict = shuffle(Array.from({ length: nConflict }, (_, i) => i < nContradict), rng)
    .map((contradict, i) => ({ route: (i < nJoint ? 'conflict-joint' : 'conflict-av') as CueRoute, contradict }));
  const out = [
    ...conflict,
    ...Array.from({ length: nTextOnly }, () => ({ route: 'text-only' as CueRoute, contradict: false })),
    ...Array.from({ length: n - nConflict - nTextOnly }, () => ({ route: 'aligned' as CueRoute, contradict: false })),
  ];
  return shuffle(out, rng);
}

function classificationLabels(p: ClassificationPreset, split: SplitName, n: number, rng: Rng): number[] {
  const counts = allocate(n, p.classWeights, split === 'train' ? 3 : 1);
  return shuffle(counts.flatMap((c, cls) => Array.from({ length: c }, () => cls)), rng);
}

function regressionLabel(p: RegressionPreset, rng: Rng): number {
  if (rng.next() < p.zeroShare) return 0;
  const [lo, hi] = p.labelRange;
  const den = p.labelDenominator;
  const x = Math.min(hi, Math.max(lo, p.labelMean + p.labelSd * rng.normal()));
  return Math.round(x * den) / den + 0; // + 0 turns -0 into 0
}

/** A modality's own reading of the score: off by one annotation step 30% of the time. */
function jitter(p: RegressionPreset, y: number, rng: Rng): number {
  const u = rng.next();
  const step = u < 0.15 ? -1 : u < 0.3 ? 1 : 0;
  const [lo, hi] = p.labelRange;
  return Math.min(hi, Math.max(lo, Math.round(y * p.labelDenominator + step) / p.labelDenominator)) + 0;
}

export function planSplit(name: PresetName, split: SplitName, k: SyntheticKnobs): SamplePlan[] {
  const p = PRESETS[name];
  const n = datasetShape(name, k).splitSizes[split];
  const rng = makeRng(`${k.seed}/${name}/${split}/plan`);
  const labels = p.task === 'classification'
    ? classificationLabels(p, split, n, rng)
    : Array.from({ length: n }, () => regressionLabel(p, rng));
  const rs = routes(n, k, rng);
  const plans: SamplePlan[] = [];
  let dialogue = 0;
  let left = 0;
  let utt = 0;
  for (let i = 0; i < n; i++) {
    const label = labels[i]!;
    const { route, contradict } = rs[i]!;
    const conflict = route === 'conflict-av' || route === 'conflict-joint';
    let textMode: SamplePlan['textMode'] = conflict ? (contradict ? 'contradict' : 'neutral') : 'label';
    let textValue: number;
    let audioValue = label;
    let visionValue = label;
    if (p.task === 'classification') {
      const neutral = p.emotions.indexOf('neutral');
      // Neutral text cannot conflict with a neutral label: such samples contradict instead.
      if (textMode === 'neutral' && label === neutral) textMode = 'contradict';
      if (textMode === 'contradict') {
        const others = p.emotions.map((_, c) => c).filter((c) => c !== label && c !== neutral);
        textValue = rng.pick(others);
      } else {
        textValue = textMode === 'neutral' ? -1 : label;
      }
    } else {
      const range = p.labelRange[1];
      if (textMode === 'neutral' && Math.abs(label) < 0.1 * range) textMode = 'contradict';
      if (textMode === 'contradict') {
        textValue = label !== 0 && Math.abs(label) >= 0.1 * range
          ? -label
          : (rng.next() < 0.5 ? -1 : 1) * Math.round(0.5 * range * p.labelDenominator) / p.labelDenominator;
      } else {
        textValue = textMode === 'neutral' ? 0 : jitter(p, label, rng);
      }
      if (route === 'aligned' || route === 'conflict-av') {
        audioValue = jitter(p, label, rng);
        visionValue = jitter(p, label, rng);
      }
    }
    let dialogueId: string | null = null;
    let utteranceIndex: number | null = null;
    let speaker: string | null = null;
    if (p.dialogues) {
      if (left === 0) {
        dialogue++;
        left = 3 + rng.int(8);
        utt = 0;
      }
      dialogueId = `${split}-dia${dialogue}`;
      utteranceIndex = utt++;
      speaker = rng.pick(SPEAKERS);
      left--;
    }
    plans.push({
      label, route, textMode, textValue, audioValue, visionValue,
      intensity: rng.uniform(0.35, 1), dialogueId, utteranceIndex, speaker,
    });
  }
  return plans;
}
