/** Hyperparameter sweeps: specs, search spaces, samplers, pruners and the ask/tell study. */
export { parseSweepSpec, loadSweepSpec, validateSweepSpec, type SweepSpec, type SweepMethod, type EarlyTerminate, type SamplerOptions, type SpecOptions } from './spec.ts';
export {
  SearchSpace,
  CategoricalDistribution,
  NumericDistribution,
  makeDistribution,
  canonicalJson,
  rngFor,
  NUMERIC_DISTRIBUTIONS,
  type Distribution,
  type DistributionSpec,
  type ConditionSpec,
  type ParamDef,
  type FrozenTrial,
  type TrialState,
  type Goal,
  type JsonValue,
  type Params,
  type Rng,
} from './space.ts';
export { createSampler, GridSampler, RandomSampler, TpeSampler, enumerateGrid, paramsKey, splitTrials, type Sampler, type SampleContext, type TpeOptions } from './samplers/index.ts';
export { createPruner, AshaPruner, MedianPruner, NopPruner, type Pruner, type AshaOptions, type MedianOptions } from './pruners/index.ts';
export {
  Study,
  Trial,
  StudyJournal,
  readJournal,
  specFingerprint,
  configOverrides,
  type StudyEvent,
  type StudyJSON,
  type StudyOptions,
  type TellResult,
  type TrialRef,
  type TrialRecord,
  type BestConfiguration,
  type DroppedTail,
} from './study.ts';
