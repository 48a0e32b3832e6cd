/**
 * What a training run logs to MLflow: the flattened config as params (secrets masked),
 * tags (git commit, backend, dataset, seed, MLflow's system tags), dataset inputs,
 * buffered metrics written with each checkpoint, system metrics, and at the end the
 * config, best checkpoint, predictions and summary as artifacts.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { stringify as toYaml } from 'yaml';
import type { ExperimentConfig } from '../config/experiment.ts';
import { flatten } from '../config/spec.ts';
import { redact, scrubSecrets, startRun, SystemMetricsSampler, RunHandle } from '../tracking/index.ts';
import type { MetricPoint, RunStatus, TrackingStore } from '../tracking/index.ts';
import type { Setup } from './setup.ts';
import { fileDigest } from '../cache.ts';

/** Tag of a training run: the absolute path of its run folder (config.json, checkpoints, summary.json). */
export const TAG_RUN_DIR = 'egmf.run_dir';

export interface TrackingTarget {
  store: TrackingStore;
  experimentName?: string;
  runName?: string;
  parentRunId?: string;
  tags?: Record<string, string>;
}

/** Digest of what determines a run's numbers (tracking settings excluded). */
export function configDigest(cfg: ExperimentConfig, seed: number): string {
  const { tracking: _t, ...rest } = cfg;
  return createHash('sha256').update(stableJson({ ...rest, seed })).digest('hex').slice(0, 16);
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The config as it may be shown: secret-looking keys masked, credentials in URLs redacted. */
export function publicConfig(cfg: ExperimentConfig): Record<string, string> {
  const flat = scrubSecrets(flatten(cfg));
  return Object.fromEntries(Object.entries(flat).map(([k, v]) => [k, redact(String(v))]));
}

export class RunLogger {
  private buffer: MetricPoint[] = [];
  private readonly sampler = new SystemMetricsSampler({ gauges: { live_tensors: () => tf.memory().numTensors } });

  private constructor(private readonly run: RunHandle | null, private readonly cfg: ExperimentConfig) {}

  get runId(): string | null {
    return this.run?.runId ?? null;
  }

  /** Starts a new run, or reopens `runId` (resume: params and inputs are already there). */
  static async open(target: TrackingTarget | null, o: { cfg: ExperimentConfig; seed: number; setup: Setup; runId: string | null; digest: string; outDir?: string }): Promise<RunLogger> {
    if (target === null) return new RunLogger(null, o.cfg);
    const { store } = target;
    if (o.runId !== null) {
      const existing = await store.getRun(o.runId);
      const run = new RunHandle(store, o.runId, existing.info.experimentId, existing.info.runName);
      await store.updateRun(o.runId, { status: 'RUNNING' });
      return new RunLogger(run, o.cfg);
    }
    const s = o.setup;
    const tags: Record<string, string> = {
      'egmf.backend': s.backend.name,
      'egmf.backend.threads': String(s.backend.threads),
      'egmf.dataset': s.meta.dataset,
      'egmf.dataset.language': s.meta.language,
      'egmf.dataset.task': s.meta.task,
      'egmf.dataset.digest': datasetDigest(s.data.dir),
      'egmf.seed': String(o.seed),
      'egmf.config_digest': o.digest,
      'egmf.llm': s.cfg.llm.path,
      // Where the run's folder (config.json, checkpoints) is: reports re-evaluate the model from it.
      ...(o.outDir !== undefined ? { [TAG_RUN_DIR]: resolve(o.outDir) } : {}),
      ...gitTags(),
      ...target.tags,
    };
    const run = await startRun(store, {
      experimentName: target.experimentName ?? o.cfg.tracking.experiment ?? o.cfg.name,
      runName: target.runName ?? `${o.cfg.name}-s${o.seed}`,
      parentRunId: target.parentRunId,
      tags,
    });
    await run.logParams({ ...publicConfig(o.cfg), seed: String(o.seed) });
    await run.logInputs(['train', 'valid', 'test'].filter((sp) => existsSync(join(s.data.dir, `${sp}.arrow`))).map((split) => ({
      dataset: {
        name: `${s.meta.dataset}-${split}`,
        digest: fileDigest(join(s.data.dir, `${split}.arrow`)),
        sourceType: 'local',
        source: join(s.data.dir, `${split}.arrow`),
        schema: JSON.stringify({ language: s.meta.language, task: s.meta.task, audioDim: s.meta.audioDim, visionDim: s.meta.visionDim }),
      },
      tags: { 'mlflow.data.context': split === 'valid' ? 'validation' : split },
    })));
    return new RunLogger(run, o.cfg);
  }

  /** Buffers metric values at a step (written by `flush`). */
  metrics(values: Record<string, number>, step: number): void {
    const timestamp = Date.now();
    for (const [key, value] of Object.entries(values)) if (Number.isFinite(value)) this.buffer.push({ key, value, step, timestamp });
  }

  systemMetrics(): Record<string, number> {
    return Object.fromEntries(this.sampler.sample().map((p) => [p.key, p.value]));
  }

  async flush(): Promise<void> {
    if (this.run === null || this.buffer.length === 0) {
      this.buffer = [];
      return;
    }
    const metrics = this.buffer;
    this.buffer = [];
    await this.run.store.logBatch(this.run.runId, { metrics });
  }

  /** Logs the run's files as artifacts and ends the run. */
  async finish(outDir: string, s: Setup, summary: { bestValid: number | null; metricName: string; learned: boolean }, status: RunStatus): Promise<void> {
    if (this.run === null) return;
    const run = this.run;
    await run.logArtifactBytes('config.yaml', new TextEncoder().encode(toYaml(unflattenForDisplay(publicConfig(this.cfg)))));
    for (const f of ['summary.json', 'predictions-test.csv', 'predictions-valid.csv']) {
      if (existsSync(join(outDir, f))) await run.logArtifact(join(outDir, f));
    }
    const best = join(outDir, 'best');
    if (existsSync(best)) {
      for (const file of walk(best)) await run.logArtifact(file, join('checkpoint', relative(best, join(file, '..'))).replace(/\/$/, ''));
    }
    if (summary.bestValid !== null) await run.setTag('egmf.best_valid', `${summary.metricName}=${summary.bestValid}`);
    await run.setTag('egmf.dataset.size', String(s.loaders.train?.size ?? 0));
    await run.setTag('egmf.learned', String(summary.learned));
    await run.end(status);
  }
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

function unflattenForDisplay(flat: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flat)) {
    const parts = k.split('.');
    let cur = out;
    for (const p of parts.slice(0, -1)) cur = (cur[p] ??= {}) as Record<string, unknown>;
    cur[parts[parts.length - 1]!] = v;
  }
  return out;
}

function datasetDigest(dir: string): string {
  const h = createHash('sha256');
  for (const split of ['train', 'valid', 'test']) {
    const p = join(dir, `${split}.arrow`);
    if (existsSync(p)) h.update(`${split}:${fileDigest(p)}`);
  }
  return h.digest('hex').slice(0, 16);
}

function gitTags(): Record<string, string> {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return /^[0-9a-f]{40}$/.test(commit) ? { 'mlflow.source.git.commit': commit } : {};
  } catch {
    return {};
  }
}
