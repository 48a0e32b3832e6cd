/**
 * The synthetic bilingual benchmark: writes `<out>/<dataset>/{train,valid,test}.arrow` for
 * one preset or all four. See docs/synthetic.md for the generating process and its knobs.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { writeDataset } from '../arrow.ts';
import { SCHEMA_VERSION } from '../schema.ts';
import type { AffectSample, DatasetMeta, SplitName } from '../schema.ts';
import { featureStructure, synthesizeFeatures } from './features.ts';
import type { CuePlan, FeatureStructure, ModalityCue } from './features.ts';
import { datasetShape, resolveKnobs, resolvePresets } from './knobs.ts';
import type { DatasetShape, SyntheticKnobs } from './knobs.ts';
import { CUE_ROUTES, planSplit } from './plan.ts';
import type { CueRoute, SamplePlan } from './plan.ts';
import { EMOTION_AFFECT, PRESETS } from './presets.ts';
import type { Preset, PresetName } from './presets.ts';
import { makeRng } from './random.ts';
import type { Rng } from './random.ts';
import { opinion, utterance } from './text.ts';

export const GENERATOR_VERSION = '1.0.0';
export const SOURCE = 'egmf synthetic generator';
export const LICENSE = 'CC0-1.0 (generated)';

/** Regression patterns: 0 negative, 1 calm, 2 positive. */
const REGRESSION_PATTERNS = 3;
/** Trend scale for regression: weaker than text on its own, so fusion, not audio/vision alone, is best. */
const REGRESSION_TREND = 0.6;

export function patternCount(p: Preset): number {
  return p.task === 'classification' ? p.labelNames.length : REGRESSION_PATTERNS;
}

export function structureFor(name: PresetName, shape: DatasetShape): FeatureStructure {
  return featureStructure(name, patternCount(PRESETS[name]), shape.audioDim, shape.visionDim);
}

export function datasetMeta(name: PresetName, k: SyntheticKnobs): DatasetMeta {
  const p = PRESETS[name];
  const shape = datasetShape(name, k);
  const { seed, scale: _scale, ...knobs } = k;
  return {
    schemaVersion: SCHEMA_VERSION,
    dataset: name,
    language: p.language,
    task: p.task,
    ...(p.task === 'classification'
      ? { labelNames: [...p.labelNames], labelNamesEn: [...p.labelNamesEn] }
      : { labelRange: [...p.labelRange] as [number, number] }),
    audioDim: shape.audioDim,
    visionDim: shape.visionDim,
    textOnly: false,
    hasUnimodalLabels: p.task === 'regression' && p.unimodalLabels,
    source: SOURCE,
    license: LICENSE,
    extra: {
      generator: 'egmf-synthetic', generatorVersion: GENERATOR_VERSION, preset: name, seed, scale: shape.scale,
      knobs, splitSizes: shape.splitSizes, maxFrames: shape.maxFrames,
    },
  };
}

function regressionCue(p: Preset & { task: 'regression' }, value: number): ModalityCue {
  const s = value / p.labelRange[1];
  // The trend encodes the score linearly (valence s, arousal |s|); bursts grow with |s|.
  return { pattern: s > 0.05 ? 2 : s < -0.05 ? 0 : 1, valence: s, arousal: Math.abs(s), amp: 0.4 + 0.6 * Math.abs(s), trendAmp: REGRESSION_TREND };
}

const ABSENT: ModalityCue = { pattern: -1, valence: 0, arousal: 0, amp: 0, trendAmp: 0 };

function cuePlan(p: Preset, plan: SamplePlan, rng: Rng): CuePlan {
  if (plan.route === 'text-only') return { audio: ABSENT, vision: ABSENT, joint: null };
  if (p.task === 'classification') {
    const [valence, arousal] = EMOTION_AFFECT[p.emotions[plan.label]!];
    if (plan.route === 'conflict-joint') {
      const others = p.emotions.map((_, c) => c).filter((c) => c !== plan.label);
      return { audio: ABSENT, vision: ABSENT, joint: { pattern: plan.label, distractor: rng.pick(others), amp: plan.intensity } };
    }
    const cue = { pattern: plan.label, valence, arousal, amp: plan.intensity, trendAmp: plan.intensity };
    return { audio: cue, vision: cue, joint: null };
  }
  if (plan.route === 'conflict-joint') {
    const c = regressionCue(p, plan.label);
    const distractor = c.pattern === 1 ? (rng.next() < 0.5 ? 0 : 2) : 2 - c.pattern;
    return { audio: ABSENT, vision: ABSENT, joint: { pattern: c.pattern, distractor, amp: c.amp } };
  }
  return { audio: regressionCue(p, plan.audioValue), vision: regressionCue(p, plan.visionValue), joint: null };
}

/** A generated sample with the plan that produced it (the plan is never written). */
export interface PlannedSample {
  sample: AffectSample;
  plan: SamplePlan;
}

/** Streams one split; each sample draws from its own generator, so streaming is order-free. */
export function* splitSamples(name: PresetName, split: SplitName, k: SyntheticKnobs): Generator<PlannedSample> {
  const p = PRESETS[name];
  const shape = datasetShape(name, k);
  const st = structureFor(name, shape);
  const fk = { noise: k.noise, missingFrames: k.missingFrames, cueStrength: k.cueStrength, maxFrames: shape.maxFrames };
  const plans = planSplit(name, split, k);
  const width = String(plans.length - 1).length;
  for (let i = 0; i < plans.length; i++) {
    const plan = plans[i]!;
    const rng = makeRng(`${k.seed}/${name}/${split}/${i}`);
    const text = p.task === 'classification'
      ? utterance(p.language, plan.textValue < 0 ? null : p.emotions[plan.textValue]!, plan.intensity, rng)
      : opinion(p.language, plan.textValue / p.labelRange[1], rng);
    const { audio, vision } = synthesizeFeatures(st, cuePlan(p, plan, rng), fk, rng);
    const carried = plan.route === 'aligned' || plan.route === 'conflict-av';
    const unimodal = p.task === 'regression' && p.unimodalLabels;
    yield {
      plan,
      sample: {
        id: `${name}-${split}-${String(i).padStart(width, '0')}`,
        text, audio, vision, label: plan.label,
        labelT: unimodal ? plan.textValue : null,
        labelA: unimodal ? (carried ? plan.audioValue : 0) : null,
        labelV: unimodal ? (carried ? plan.visionValue : 0) : null,
        dialogueId: plan.dialogueId, utteranceIndex: plan.utteranceIndex, speaker: plan.speaker,
      },
    };
  }
}

export interface DatasetReport {
  dataset: PresetName;
  outDir: string;
  splits: Record<string, number>;
  /** Samples per cue route, over all splits. */
  routes: Record<CueRoute, number>;
  /** Classification: training samples per class name. */
  trainClassCounts?: Record<string, number>;
}

export interface GenerateReport {
  generatorVersion: string;
  outDir: string;
  knobs: SyntheticKnobs;
  datasets: DatasetReport[];
  seconds: number;
}

/** Generates one preset or `all`; every knob is validated before anything is written. */
export async function generateSynthetic(opts: { preset: string; out: string } & Partial<SyntheticKnobs>): Promise<GenerateReport> {
  const { preset, out, ...raw } = opts;
  const names = resolvePresets(preset);
  const k = resolveKnobs(raw);
  if (typeof out !== 'string' || out.length === 0) throw new EgmfError('needs an output folder', { key: 'out' });
  if (existsSync(out) && !statSync(out).isDirectory()) throw new EgmfError('exists and is not a folder', { file: out, key: 'out' });
  const t0 = performance.now();
  const datasets: DatasetReport[] = [];
  for (const name of names) {
    const p = PRESETS[name];
    const routes = Object.fromEntries(CUE_ROUTES.map((r) => [r, 0])) as Record<CueRoute, number>;
    const trainClass = new Array<number>(patternCount(p)).fill(0);
    const stream = function* (split: SplitName): Generator<AffectSample> {
      for (const { sample, plan } of splitSamples(name, split, k)) {
        routes[plan.route]++;
        if (split === 'train' && p.task === 'classification') trainClass[plan.label]++;
        yield sample;
      }
    };
    const outDir = join(out, name);
    const splits = { train: stream('train'), valid: stream('valid'), test: stream('test') };
    const counts = await writeDataset(outDir, datasetMeta(name, k), splits);
    datasets.push({
      dataset: name, outDir, splits: counts, routes,
      ...(p.task === 'classification' ? { trainClassCounts: Object.fromEntries(p.labelNamesEn.map((n, c) => [n, trainClass[c]!])) } : {}),
    });
  }
  return { generatorVersion: GENERATOR_VERSION, outDir: out, knobs: k, datasets, seconds: (performance.now() - t0) / 1000 };
}
