/**
 * The four benchmark shapes the synthetic suite imitates. Sizes, widths and lengths follow
 * the real datasets (see shared/notes/paper.md); where the real value is unknown (CHERMA's
 * split sizes, class shares and processed widths) the value here is a stated assumption.
 */
import type { Language, SplitName, TaskKind } from '../schema.ts';

export type PresetName = 'meld' | 'cherma' | 'mosei' | 'sims-v2';
export const PRESET_NAMES: readonly PresetName[] = ['meld', 'cherma', 'mosei', 'sims-v2'];

/** Canonical emotion keys; the lexicons and the class affect table are keyed by these. */
export type EmotionKey = 'neutral' | 'joy' | 'surprise' | 'anger' | 'sadness' | 'disgust' | 'fear';

/** (valence, arousal) per emotion: what the slow trends encode. */
export const EMOTION_AFFECT: Record<EmotionKey, [number, number]> = {
  neutral: [0, 0],
  joy: [0.8, 0.5],
  surprise: [0.3, 0.9],
  anger: [-0.7, 0.8],
  sadness: [-0.7, -0.5],
  disgust: [-0.6, 0.1],
  fear: [-0.6, 0.7],
};

interface PresetBase {
  name: PresetName;
  language: Language;
  task: TaskKind;
  /** Samples per split at scale 1. */
  splitSizes: Record<SplitName, number>;
  audioDim: number;
  visionDim: number;
  /** Longest sequences of the real data (frames). */
  realFrames: { audio: number; vision: number };
  /** Default caps: shorter where the real ones would make the default suite slow. */
  shortFrames: { audio: number; vision: number };
  /** Scale used when --scale is not given: a few hundred training samples. */
  defaultScale: number;
  /** Group utterances into dialogues with speakers (MELD). */
  dialogues: boolean;
  /** The text register: conversational utterances or opinion monologues. */
  register: 'dialogue' | 'review';
}

export interface ClassificationPreset extends PresetBase {
  task: 'classification';
  labelNames: string[];
  labelNamesEn: string[];
  emotions: EmotionKey[];
  /** Relative class frequencies (train counts for MELD, assumed shares for CHERMA). */
  classWeights: number[];
}

export interface RegressionPreset extends PresetBase {
  task: 'regression';
  labelRange: [number, number];
  /** Labels are k / denominator: means of annotator scores (1/3 for MOSEI, 0.2 for SIMS-V2). */
  labelDenominator: number;
  /** Latent score distribution before rounding, in label units. */
  labelMean: number;
  labelSd: number;
  /** Extra probability mass on an exact 0 (annotators who disagree symmetrically). */
  zeroShare: number;
  /** Fill label_t/_a/_v. */
  unimodalLabels: boolean;
}

export type Preset = ClassificationPreset | RegressionPreset;

export const PRESETS: Record<PresetName, Preset> = {
  meld: {
    name: 'meld', language: 'en', task: 'classification',
    // MSE-Adapter's label order, the one its prompts use.
    labelNames: ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger'],
    labelNamesEn: ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger'],
    emotions: ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger'],
    classWeights: [4710, 1205, 268, 683, 1743, 271, 1109],
    splitSizes: { train: 9989, valid: 1109, test: 2610 },
    audioDim: 64, visionDim: 64,
    realFrames: { audio: 157, vision: 32 }, shortFrames: { audio: 157, vision: 32 },
    defaultScale: 0.03, dialogues: true, register: 'dialogue',
  },
  cherma: {
    name: 'cherma', language: 'zh', task: 'classification',
    labelNames: ['愤怒', '厌恶', '恐惧', '高兴', '平静', '悲伤', '惊奇'],
    labelNamesEn: ['anger', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'],
    emotions: ['anger', 'disgust', 'fear', 'joy', 'neutral', 'sadness', 'surprise'],
    // Assumption (real shares unpublished): neutral 30%, happy 22%, sad 13%, anger 12%,
    // surprise 10%, disgust 7%, fear 6%.
    classWeights: [12, 7, 6, 22, 30, 13, 10],
    // Assumption: about 23k utterances split 8:1:1.
    splitSizes: { train: 18400, valid: 2300, test: 2300 },
    // Assumption: processed widths like MELD's; the raw ones (1024 audio, 2048 vision) via --audio-dim/--vision-dim.
    audioDim: 64, visionDim: 64,
    realFrames: { audio: 543, vision: 16 }, shortFrames: { audio: 160, vision: 16 },
    defaultScale: 0.02, dialogues: false, register: 'dialogue',
  },
  mosei: {
    name: 'mosei', language: 'en', task: 'regression',
    labelRange: [-3, 3], labelDenominator: 3, labelMean: 0.4, labelSd: 1.2, zeroShare: 0.1,
    unimodalLabels: false,
    splitSizes: { train: 16326, valid: 1871, test: 4659 },
    audioDim: 74, visionDim: 35,
    realFrames: { audio: 500, vision: 375 }, shortFrames: { audio: 100, vision: 75 },
    defaultScale: 0.03, dialogues: false, register: 'review',
  },
  'sims-v2': {
    name: 'sims-v2', language: 'zh', task: 'regression',
    labelRange: [-1, 1], labelDenominator: 5, labelMean: -0.05, labelSd: 0.5, zeroShare: 0.06,
    unimodalLabels: true,
    splitSizes: { train: 2722, valid: 647, test: 1034 },
    audioDim: 25, visionDim: 177,
    realFrames: { audio: 925, vision: 232 }, shortFrames: { audio: 150, vision: 40 },
    defaultScale: 0.1, dialogues: false, register: 'review',
  },
};
