/**
 * Evaluation metrics: pure functions from predictions and truths to a flat
 * `Record<string, number>` (MMSA's `metricsTop` shape), shared by training, tracking
 * and reports. Implementation in ./metrics/; parity with sklearn and MMSA is checked
 * against test/fixtures/metrics/expected.json (scripts/make_metric_fixtures.py).
 */
export type { MetricRecord, NumericArray } from './metrics/inputs.ts';
export { classificationMetrics, confusionMatrix, metricKeyPart } from './metrics/classification.ts';
export { moseiMetrics, simsMetrics } from './metrics/regression.ts';
export {
  CLASSIFICATION_METRIC_KEYS,
  MOSEI_METRIC_KEYS,
  SIMS_METRIC_KEYS,
  headlineMetric,
  metricsFor,
  metricsForMeta,
  primaryMetric,
  regressionFamily,
  type HeadlineMetric,
  type MetricGoal,
  type MetricsFn,
  type MetricsOptions,
  type RegressionFamily,
} from './metrics/dispatch.ts';
