export { DEFAULT_KNOBS, datasetShape, resolveKnobs, resolvePresets } from './knobs.ts';
export type { DatasetShape, SyntheticKnobs } from './knobs.ts';
export { PRESET_NAMES, PRESETS } from './presets.ts';
export type { Preset, PresetName } from './presets.ts';
export { CUE_ROUTES, planSplit } from './plan.ts';
export type { CueRoute, SamplePlan } from './plan.ts';
export { featureStructure, BURST_AMPLITUDE, TREND_AMPLITUDE } from './features.ts';
export type { FeatureStructure } from './features.ts';
export { emotionWords, LEXICONS } from './lexicon.ts';
export {
  datasetMeta, generateSynthetic, GENERATOR_VERSION, LICENSE, SOURCE, splitSamples, structureFor,
} from './generate.ts';
export type { DatasetReport, GenerateReport, PlannedSample } from './generate.ts';
