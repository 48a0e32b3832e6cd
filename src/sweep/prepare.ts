/**
 * Makes what every trial of a sweep shares before the trials start: the synthetic datasets
 * (for each value a sweep gives `data.dataset`) and the built-in LLM. Otherwise parallel
 * trials on a fresh clone would each generate and pretrain the same things at once.
 */
import { loadExperiment } from '../config/experiment.ts';
import { initBackend } from '../models/backend/index.ts';
import { resolveLlm } from '../train/pretrain/index.ts';
import { resolveDataset } from '../train/data-source.ts';
import { llmTextFiles } from '../train/setup.ts';
import { isBuiltinLlm } from '../models/llm/builtin.ts';
import { configOverrides } from './study.ts';
import type { SweepSpec } from './spec.ts';

export async function prepareSweep(spec: SweepSpec, say: (msg: string) => void): Promise<void> {
  if (!spec.base_config) return;
  const sets = Object.entries(configOverrides(spec, {})).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const base = loadExperiment(spec.base_config, sets);
  const datasets = new Set<string>([base.data.dataset]);
  const llms = new Set<string>([base.llm.path]);
  for (const p of spec.parameters) {
    const values = p.dist.type === 'categorical' ? p.dist.values : p.dist.type === 'constant' ? [p.dist.value] : [];
    if (p.name === 'data.dataset') for (const v of values) datasets.add(String(v));
    if (p.name === 'llm.path') for (const v of values) llms.add(String(v));
  }
  const dirs: string[] = [];
  for (const dataset of datasets) {
    dirs.push((await resolveDataset({ ...base, data: { ...base.data, dataset } }, say)).dir);
  }
  // A backend only to pretrain: with the LLM cached, the controller starts none (loading
  // TensorFlow took ~0.8 s of its serial start-up: the first trials now start at ~1.2 s, not 2.0).
  let backend: Promise<unknown> | null = null;
  const beforePretraining = async () => {
    backend ??= initBackend(base.backend, base.threads > 0 ? { threads: base.threads } : {});
    await backend;
  };
  for (const path of llms) {
    // With llm.pretrain_train_text, one LLM per dataset's training split.
    const texts = base.llm.pretrain_train_text && isBuiltinLlm(path) ? dirs.map((d) => llmTextFiles(base, d)) : [[]];
    for (const textFiles of texts) await resolveLlm(path, { pretrainSteps: base.llm.pretrain_steps, textFiles, say, beforePretraining });
  }
}
