/**
 * The generator's knobs, their defaults and their validation. Error keys are the CLI
 * option names, so `--conflict-share 1.5` fails with "key 'conflict-share': ...".
 */
import { EgmfError } from '../../errors.ts';
import { PRESET_NAMES, PRESETS } from './presets.ts';
import type { PresetName } from './presets.ts';
import type { SplitName } from '../schema.ts';

export interface SyntheticKnobs {
  /** Seed of every random draw; the task structure (cue patterns) does not depend on it. */
  seed: number;
  /** Fraction of the real split sizes; undefined = the preset's default scale. */
  scale?: number;
  /** Share of samples whose audio/vision carry no label cue (only the text knows). */
  textOnlyShare: number;
  /** Share of samples whose text is neutral or contradicts the label (only audio/vision know). */
  conflictShare: number;
  /** Share of the conflict samples whose label only the audio-vision synchrony carries. */
  jointShare: number;
  /** Share of the conflict samples whose text expresses another affect (the rest: neutral text). */
  contradictShare: number;
  /** Standard deviation of the Gaussian noise on every feature value. */
  noise: number;
  /** Expected fraction of frames zeroed (in contiguous spans) per sequence. */
  missingFrames: number;
  /** Multiplier on burst and trend amplitudes (1 = the documented defaults). */
  cueStrength: number;
  /** Sequence length caps: `short` (default, fast) or `real` (the datasets' maxima). */
  lengths: 'short' | 'real';
  /** Explicit caps, overriding `lengths` for every generated preset. */
  maxAudioFrames?: number;
  maxVisionFrames?: number;
  /** Explicit feature widths, overriding the presets' (e.g. CHERMA raw: 1024 / 2048). */
  audioDim?: number;
  visionDim?: number;
}

export const DEFAULT_KNOBS: SyntheticKnobs = {
  seed: 1111,
  textOnlyShare: 0.15,
  conflictShare: 0.3,
  jointShare: 0.35,
  contradictShare: 0.5,
  noise: 1.0,
  missingFrames: 0.1,
  cueStrength: 1.0,
  lengths: 'short',
};

/** Largest scale accepted: 10× the real datasets is already hundreds of thousands of samples. */
export const MAX_SCALE = 10;

/** NaN prints as NaN, not as JSON's null. */
const show = (v: unknown): string => (typeof v === 'number' ? String(v) : JSON.stringify(v));

const fail = (key: string, msg: string): never => {
  throw new EgmfError(msg, { key });
};

function share(key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) {
    fail(key, `must be a share in [0, 1], got ${show(v)}`);
  }
  return v as number;
}

function positiveInt(key: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    fail(key, `must be an integer in [1, ${max}], got ${show(v)}`);
  }
  return v as number;
}

/** Fills defaults and validates every knob before anything is written. */
export function resolveKnobs(raw: Partial<SyntheticKnobs> = {}): SyntheticKnobs {
  const k: SyntheticKnobs = { ...DEFAULT_KNOBS };
  for (const [key, v] of Object.entries(raw)) if (v !== undefined) (k as unknown as Record<string, unknown>)[key] = v;
  if (typeof k.seed !== 'number' || !Number.isSafeInteger(k.seed)) fail('seed', `must be an integer, got ${show(k.seed)}`);
  if (k.scale !== undefined && (typeof k.scale !== 'number' || !Number.isFinite(k.scale) || k.scale <= 0 || k.scale > MAX_SCALE)) {
    fail('scale', `must be a number in (0, ${MAX_SCALE}], got ${show(k.scale)}`);
  }
  share('text-only-share', k.textOnlyShare);
  share('conflict-share', k.conflictShare);
  share('joint-share', k.jointShare);
  share('contradict-share', k.contradictShare);
  if (k.textOnlyShare + k.conflictShare > 1 + 1e-9) {
    fail('conflict-share', `text-only-share + conflict-share must not exceed 1, got ${k.textOnlyShare} + ${k.conflictShare}`);
  }
  if (typeof k.noise !== 'number' || !Number.isFinite(k.noise) || k.noise < 0) fail('noise', `must be a number >= 0, got ${show(k.noise)}`);
  if (typeof k.missingFrames !== 'number' || !(k.missingFrames >= 0 && k.missingFrames < 0.9)) {
    fail('missing-frames', `must be a share in [0, 0.9), got ${show(k.missingFrames)}`);
  }
  if (typeof k.cueStrength !== 'number' || !Number.isFinite(k.cueStrength) || k.cueStrength < 0) {
    fail('cue-strength', `must be a number >= 0, got ${show(k.cueStrength)}`);
  }
  if (k.lengths !== 'short' && k.lengths !== 'real') fail('lengths', `must be "short" or "real", got ${show(k.lengths)}`);
  if (k.maxAudioFrames !== undefined) positiveInt('max-audio-frames', k.maxAudioFrames, 100_000);
  if (k.maxVisionFrames !== undefined) positiveInt('max-vision-frames', k.maxVisionFrames, 100_000);
  if (k.audioDim !== undefined) positiveInt('audio-dim', k.audioDim, 8192);
  if (k.visionDim !== undefined) positiveInt('vision-dim', k.visionDim, 8192);
  return k;
}

/** `all` or one preset name; anything else is an error naming the option. */
export function resolvePresets(name: unknown): PresetName[] {
  if (name === 'all') return [...PRESET_NAMES];
  if (typeof name === 'string' && (PRESET_NAMES as readonly string[]).includes(name)) return [name as PresetName];
  return fail('preset', `unknown preset ${show(name)} (choose ${PRESET_NAMES.join(', ')} or all)`);
}

/** The concrete shape of one generated dataset. */
export interface DatasetShape {
  scale: number;
  splitSizes: Record<SplitName, number>;
  audioDim: number;
  visionDim: number;
  maxFrames: { audio: number; vision: number };
}

/**
 * Split sizes are round(real × scale), but never below a floor that keeps every split
 * usable: classification trains on at least 3 samples per class and evaluates on at
 * least one per class; regression keeps at least 16 training and 8 evaluation samples.
 */
export function datasetShape(name: PresetName, k: SyntheticKnobs): DatasetShape {
  const p = PRESETS[name];
  const scale = k.scale ?? p.defaultScale;
  const classes = p.task === 'classification' ? p.labelNames.length : 0;
  const floor = (split: SplitName): number =>
    split === 'train' ? Math.max(16, 3 * classes) : Math.max(8, classes);
  const splitSizes = { train: 0, valid: 0, test: 0 } as Record<SplitName, number>;
  for (const s of ['train', 'valid', 'test'] as const) splitSizes[s] = Math.max(floor(s), Math.round(p.splitSizes[s] * scale));
  const caps = k.lengths === 'real' ? p.realFrames : p.shortFrames;
  return {
    scale,
    splitSizes,
    audioDim: k.audioDim ?? p.audioDim,
    visionDim: k.visionDim ?? p.visionDim,
    maxFrames: { audio: k.maxAudioFrames ?? caps.audio, vision: k.maxVisionFrames ?? caps.vision },
  };
}
