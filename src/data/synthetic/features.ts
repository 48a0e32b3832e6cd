/**
 * Audio and vision frame sequences with known cue structure.
 *
 * Each modality's D dimensions are split into bands:
 *   trend band  (first max(2, min(8, round(D/8))) dims): slow global trends whose level and
 *               slope are fixed linear maps of the sample's (valence, arousal), plus a
 *               label-free low-frequency sinusoidal drift;
 *   burst band  (next max(6, min(48, round(3D/8))) dims): short transient bursts; pattern k
 *               (one per class, or negative/calm/positive for regression) lights up 3 dims
 *               with fixed signs and weights 1, 0.8, 0.6;
 *   the rest    noise only (distractor dimensions).
 * Bursts are either local (one modality, a random time) or synchronous (the same normalised
 * time in audio and vision). Gaussian noise covers everything; missing frames are zeroed.
 * The band layout and patterns depend only on the dataset and widths, never on the seed,
 * so every seed draws samples from the same task.
 */
import { makeRng } from './random.ts';
import type { Rng } from './random.ts';

/** Peak burst amplitude at intensity 1 and cue strength 1, in noise units at --noise 1. */
export const BURST_AMPLITUDE = 3.0;
/** Trend level/slope scale at intensity 1 and cue strength 1. */
export const TREND_AMPLITUDE = 0.5;
/** Amplitude of the label-free slow drift on the trend band. */
export const DRIFT_AMPLITUDE = 0.3;
/** Minimum normalised distance between bursts, so that unsynchronised bursts never coincide. */
const MIN_GAP = 0.12;

export interface Pattern {
  dims: number[];
  weights: number[];
}

export interface ModalityStructure {
  dim: number;
  trendDims: number;
  burstStart: number;
  burstDims: number;
  /** Per trend dim: level weights (valence, arousal) then slope weights (valence, arousal). */
  trendWeights: number[][];
  patterns: Pattern[];
}

export interface FeatureStructure {
  audio: ModalityStructure;
  vision: ModalityStructure;
}

function modalityStructure(key: string, dim: number, patternCount: number): ModalityStructure {
  const rng = makeRng(`egmf-synthetic/structure/${key}/${dim}/${patternCount}`);
  const trendDims = Math.min(dim, Math.max(2, Math.min(8, Math.round(dim / 8))));
  const burstStart = trendDims;
  const burstDims = Math.max(0, Math.min(dim - trendDims, Math.max(6, Math.min(48, Math.round((3 * dim) / 8)))));
  const trendWeights = Array.from({ length: trendDims }, () => {
    const w = [rng.normal(), rng.normal(), rng.normal(), rng.normal()];
    const n = Math.hypot(...w) || 1;
    return w.map((x) => (2 * x) / n);
  });
  const patterns: Pattern[] = [];
  const used = new Set<string>();
  for (let k = 0; k < patternCount; k++) {
    let dims: number[] = [];
    for (let tries = 0; tries < 50; tries++) {
      const pool = Array.from({ length: burstDims }, (_, i) => burstStart + i);
      dims = [];
      while (dims.length < Math.min(3, burstDims)) dims.push(pool.splice(rng.int(pool.length), 1)[0]!);
      if (!used.has([...dims].sort().join(','))) break;
    }
    used.add([...dims].sort().join(','));
    const weights = [1, 0.8, 0.6].slice(0, dims.length).map((w) => (rng.next() < 0.5 ? -w : w));
    patterns.push({ dims, weights });
  }
  return { dim, trendDims, burstStart, burstDims, trendWeights, patterns };
}

export function featureStructure(dataset: string, patternCount: number, audioDim: number, visionDim: number): FeatureStructure {
  return {
    audio: modalityStructure(`${dataset}/audio`, audioDim, patternCount),
    vision: modalityStructure(`${dataset}/vision`, visionDim, patternCount),
  };
}

/** What one modality expresses. `pattern` -1: no bursts and no trend (the cue is absent). */
export interface ModalityCue {
  pattern: number;
  valence: number;
  arousal: number;
  /** Burst amplitude multiplier in [0, 1] (the sample's intensity). */
  amp: number;
  /** Trend amplitude multiplier in [0, 1]. */
  trendAmp: number;
}

export interface CuePlan {
  audio: ModalityCue;
  vision: ModalityCue;
  /**
   * Joint route: the true pattern appears only in synchronous bursts; each modality also
   * shows `distractor` as often, at unsynchronised times, and no trend. Each modality alone
   * (and both pooled over time) is then symmetric between the two patterns.
   */
  joint: { pattern: number; distractor: number; amp: number } | null;
}

export interface FeatureKnobs {
  noise: number;
  missingFrames: number;
  cueStrength: number;
  maxFrames: { audio: number; vision: number };
}

interface Burst {
  tau: number;
  pattern: number;
  amp: number;
  where: 'audio' | 'vision' | 'both';
}

function placeTimes(count: number, dur: number, rng: Rng): number[] {
  const taus: number[] = [];
  for (let i = 0; i < count; i++) {
    let tau = rng.uniform(0, 1 - dur);
    for (let tries = 0; tries < 30 && taus.some((t) => Math.abs(t - tau) < MIN_GAP); tries++) tau = rng.uniform(0, 1 - dur);
    taus.push(tau);
  }
  return taus;
}

function planBursts(cues: CuePlan, rng: Rng): Burst[] {
  const out: Omit<Burst, 'tau'>[] = [];
  if (cues.joint) {
    const { pattern, distractor, amp } = cues.joint;
    // Two synchronous events, so one missing-frame span rarely erases the only evidence.
    for (let i = 0; i < 2; i++) {
      out.push({ pattern, amp, where: 'both' });
      out.push({ pattern: distractor, amp, where: 'audio' });
      out.push({ pattern: distractor, amp, where: 'vision' });
    }
  } else {
    if (cues.audio.pattern >= 0 && cues.audio.pattern === cues.vision.pattern) {
      out.push({ pattern: cues.audio.pattern, amp: (cues.audio.amp + cues.vision.amp) / 2, where: 'both' });
    }
    for (const where of ['audio', 'vision'] as const) {
      const c = cues[where];
      if (c.pattern < 0) continue;
      const n = rng.next() < 0.5 ? 2 : 1;
      for (let i = 0; i < n; i++) out.push({ pattern: c.pattern, amp: c.amp, where });
    }
  }
  const taus = placeTimes(out.length, 0.07, rng);
  return out.map((b, i) => ({ ...b, tau: taus[i]! }));
}

function fillModality(
  s: ModalityStructure, frames: number, cue: ModalityCue, bursts: Burst[], which: 'audio' | 'vision',
  k: FeatureKnobs, durN: number, rng: Rng,
): Float32Array {
  const D = s.dim;
  const x = new Float32Array(frames * D);
  for (let i = 0; i < x.length; i++) x[i] = k.noise * rng.normal();
  const last = Math.max(1, frames - 1);
  // Label-free slow drift, then the label's trend (absent when the cue is absent).
  const freq = rng.uniform(0.3, 1);
  const phase = rng.uniform(0, 2 * Math.PI);
  const drift = DRIFT_AMPLITUDE * rng.uniform(0.5, 1.5);
  const trend = cue.pattern >= 0 ? TREND_AMPLITUDE * k.cueStrength * cue.trendAmp : 0;
  for (let j = 0; j < s.trendDims; j++) {
    const [lv, la, sv, sa] = s.trendWeights[j]!;
    const level = trend * (lv! * cue.valence + la! * cue.arousal);
    const slope = trend * (sv! * cue.valence + sa! * cue.arousal);
    for (let f = 0; f < frames; f++) {
      const t = f / last;
      x[f * D + j] += level + slope * (2 * t - 1) + drift * Math.sin(2 * Math.PI * freq * t + phase);
    }
  }
  const len = Math.min(frames, frames >= 8 ? Math.max(2, Math.round(durN * frames)) : 1);
  for (const b of bursts) {
    if (b.where !== which && b.where !== 'both') continue;
    const p = s.patterns[b.pattern]!;
    const start = Math.min(frames - len, Math.floor(b.tau * frames));
    const peak = BURST_AMPLITUDE * k.cueStrength * b.amp * rng.uniform(0.8, 1.2);
    for (let i = 0; i < len; i++) {
      const env = Math.sin((Math.PI * (i + 0.5)) / len);
      const row = (start + i) * D;
      for (let d = 0; d < p.dims.length; d++) x[row + p.dims[d]!] += peak * env * p.weights[d]!;
    }
  }
  zeroSpans(x, frames, D, k.missingFrames, rng);
  return x;
}

/** Zeroes about `share` of the frames (±50%) in one or two contiguous spans. */
function zeroSpans(x: Float32Array, frames: number, D: number, share: number, rng: Rng): void {
  if (share <= 0 || frames < 2) return;
  let total = Math.min(frames - 1, Math.round(share * frames * rng.uniform(0.5, 1.5)));
  const spans = total >= 4 && rng.next() < 0.5 ? 2 : 1;
  for (let s = 0; s < spans && total > 0; s++) {
    const len = s === spans - 1 ? total : Math.ceil(total / 2);
    const start = rng.int(frames - len + 1);
    x.fill(0, start * D, (start + len) * D);
    total -= len;
  }
}

/** One sample's audio and vision. The shared duration keeps the two modalities aligned in time. */
export function synthesizeFeatures(
  st: FeatureStructure, cues: CuePlan, k: FeatureKnobs, rng: Rng,
): { audio: Float32Array; vision: Float32Array } {
  const duration = rng.uniform(0.35, 1);
  const la = Math.max(1, Math.round(duration * k.maxFrames.audio));
  const lv = Math.max(1, Math.round(duration * k.maxFrames.vision));
  const bursts = planBursts(cues, rng);
  const durN = rng.uniform(0.03, 0.07);
  const audioCue = cues.joint ? { ...cues.audio, pattern: -1 } : cues.audio;
  const visionCue = cues.joint ? { ...cues.vision, pattern: -1 } : cues.vision;
  return {
    audio: fillModality(st.audio, la, audioCue, bursts, 'audio', k, durN, rng),
    vision: fillModality(st.vision, lv, visionCue, bursts, 'vision', k, durN, rng),
  };
}
