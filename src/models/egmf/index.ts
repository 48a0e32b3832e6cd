/** EGMF: modality encoders, experts, hierarchical gating, pseudo tokens, prompts and the model. */
export { EgmfModel, PREDICT_REGION } from './model.ts';
export type { EgmfBatch, EgmfLlm, EgmfModelOptions, LossStats, PredictResult, RegionRunner } from './model.ts';
export { FusionNetwork, checkFusionConfig } from './fusion.ts';
export { TEXT_OFFSETS_PARAM, TEXT_PAIR_OFFSETS_PARAM, TextOffsets } from './encoders.ts';
export type { FusionConfig, FusionDims, FusionOutput } from './fusion.ts';
export type { GateLevel, GateReport } from './report.ts';
export { AnswerGrammar, enumerateAnswers, formatScore, grammarTokenizer } from './answers.ts';
export type { AnswerTask, ParsedAnswer, TextTokenizer } from './answers.ts';
export { PROMPTS, buildPromptParts, layoutSample, renderTaskPrompt } from './prompts.ts';
export type { PromptLanguage, PromptLayout, PromptParts } from './prompts.ts';
