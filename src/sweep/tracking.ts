/**
 * The sweep in MLflow: one parent run (the spec summary as params; sweep id, method and
 * metric as tags) and one child run per trial, nested by `mlflow.parentRunId`. Trials log
 * their own params and metric histories; this module tags the final state, creates the run
 * of a trial that died before making one, and marks the best trial.
 */
import { PARENT_RUN_TAG, ResilientStore, defaultRunTags, type RunStatus, type TrackingStore } from '../tracking/index.ts';
import type { SweepSpec } from './spec.ts';
import type { BestConfiguration, TrialRecord } from './study.ts';
import { TAG_SWEEP_ID, TAG_TRIAL_ID } from './trial-protocol.ts';

const STATE_TAG = 'sweep.state';
const ERROR_MAX = 5000;
const STATUS: Record<'complete' | 'pruned' | 'failed', RunStatus> = { complete: 'FINISHED', pruned: 'KILLED', failed: 'FAILED' };
export const SWEEP_STATE = { complete: 'completed', pruned: 'pruned', failed: 'failed' } as const;

/** The spec as parent-run params (each under MLflow's 6,000-character limit). */
export function specParams(spec: SweepSpec): Record<string, string> {
  const out: Record<string, string> = {
    method: spec.method,
    metric: spec.metric.name,
    goal: spec.metric.goal,
    parallel: String(spec.parallel),
    run_cap: spec.run_cap === undefined ? 'None' : String(spec.run_cap),
    seeds: JSON.stringify(spec.seeds),
    early_terminate: spec.early_terminate ? JSON.stringify(spec.early_terminate) : 'None',
    sampler_seed: String(spec.sampler.seed),
    base_config: spec.base_config ?? 'None',
  };
  for (const p of spec.parameters) out[`space.${p.name}`] = JSON.stringify(p.when ? { ...p.dist, when: p.when } : p.dist).slice(0, 6000);
  for (const [k, v] of Object.entries(spec.set)) out[`set.${k}`] = JSON.stringify(v).slice(0, 6000);
  return out;
}

export class SweepTracker {
  private constructor(readonly store: TrackingStore, readonly experimentId: string, readonly parentRunId: string) {}

  static async createParent(store: TrackingStore, opts: { experimentName: string; spec: SweepSpec; sweepId: string }): Promise<SweepTracker> {
    const experimentId = await store.getOrCreateExperiment(opts.experimentName);
    const run = await store.createRun({
      experimentId,
      runName: opts.sweepId,
      startTime: Date.now(),
      tags: {
        ...defaultRunTags(),
        'sweep.id': opts.sweepId,
        'sweep.method': opts.spec.method,
        'sweep.metric': opts.spec.metric.name,
        'sweep.goal': opts.spec.metric.goal,
        'sweep.status': 'running',
      },
    });
    const t = new SweepTracker(store, experimentId, run.info.runId);
    await store.logParams(t.parentRunId, specParams(opts.spec));
    return t;
  }

  /** Re-opens the parent run of a resumed sweep. */
  static async attach(store: TrackingStore, parentRunId: string): Promise<SweepTracker> {
    const run = await store.getRun(parentRunId);
    await store.updateRun(parentRunId, { status: 'RUNNING' });
    await store.setTag(parentRunId, 'sweep.status', 'running');
    return new SweepTracker(store, run.info.experimentId, parentRunId);
  }

  /** A newer delivery of a trial made a new run: the earlier one is kept but marked superseded. */
  async supersede(runId: string, byRunId: string): Promise<void> {
    await this.store.logBatch(runId, { tags: [{ key: STATE_TAG, value: 'superseded' }, { key: 'sweep.superseded_by', value: byRunId }] });
    await this.store.updateRun(runId, { status: 'KILLED', endTime: Date.now() });
  }

  /**
   * Runs of deliveries the controller never heard of (a worker killed right after its trial
   * made a run) are marked superseded, so every trial shows exactly one final run.
   */
  async supersedeOrphans(runIds: Readonly<Record<string, string>>): Promise<void> {
    const kids = await this.store.searchRuns({ experimentIds: [this.experimentId], filter: `tags.${PARENT_RUN_TAG} = '${this.parentRunId}'`, maxResults: 50000 });
    for (const k of kids) {
      const trial = k.data.tags[TAG_TRIAL_ID];
      if (trial === undefined || runIds[trial] === k.info.runId || k.data.tags[STATE_TAG] === 'superseded') continue;
      const final = runIds[trial];
      if (final !== undefined) await this.supersede(k.info.runId, final);
    }
  }

  /** Tags a finished trial's run (creating it if the trial never did); returns the run id. */
  async trialFinished(t: TrialRecord, sweepId: string, runId: string | undefined): Promise<string> {
    if (t.state === 'running') throw new Error(`trial ${t.id} is still running`);
    let id = runId;
    if (id === undefined) {
      const run = await this.store.createRun({
        experimentId: this.experimentId,
        runName: t.id,
        startTime: Date.now(),
        parentRunId: this.parentRunId,
        tags: { ...defaultRunTags(), [TAG_SWEEP_ID]: sweepId, [TAG_TRIAL_ID]: t.id },
      });
      id = run.info.runId;
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(t.params)) params[k] = typeof v === 'string' ? v : JSON.stringify(v);
      if (t.seed !== null && !('seed' in params)) params.seed = String(t.seed);
      await this.store.logParams(id, params);
    }
    const tags = [
      { key: STATE_TAG, value: SWEEP_STATE[t.state] },
      { key: TAG_SWEEP_ID, value: sweepId },
      { key: TAG_TRIAL_ID, value: t.id },
      { key: PARENT_RUN_TAG, value: this.parentRunId },
    ];
    if (t.value !== undefined) tags.push({ key: 'sweep.value', value: String(t.value) });
    if (t.error !== undefined) tags.push({ key: 'sweep.error', value: t.error.slice(-ERROR_MAX) });
    await this.store.logBatch(id, { tags });
    await this.store.updateRun(id, { status: STATUS[t.state], endTime: Date.now() });
    return id;
  }

  /** Marks the best trial (and un-marks the rest), and puts the best configuration on the parent. */
  async markBest(metric: string, best: BestConfiguration | undefined, bestTrialId: string | undefined, runIds: Readonly<Record<string, string>>): Promise<void> {
    const bestRun = bestTrialId !== undefined ? runIds[bestTrialId] : undefined;
    for (const [trialId, runId] of Object.entries(runIds)) await this.store.setTag(runId, 'sweep.best', String(trialId === bestTrialId));
    if (!best || bestRun === undefined || bestTrialId === undefined) return;
    await this.store.logBatch(this.parentRunId, {
      tags: [
        { key: 'sweep.best_run_id', value: bestRun },
        { key: 'sweep.best_trial_id', value: bestTrialId },
        { key: 'sweep.best_params', value: JSON.stringify(best.params).slice(0, 5000) },
        { key: 'sweep.best_value', value: String(best.value) },
        ...Object.entries(best.params).map(([k, v]) => ({ key: `sweep.best.${k}`, value: (typeof v === 'string' ? v : JSON.stringify(v)).slice(0, 5000) })),
      ],
      metrics: [{ key: `best/${metric}`, value: best.value, step: 0, timestamp: Date.now() }],
    });
  }

  async attachSummary(files: Readonly<Record<string, string>>): Promise<void> {
    for (const [name, text] of Object.entries(files)) await this.store.logArtifactBytes(this.parentRunId, `summary/${name}`, new TextEncoder().encode(text));
  }

  /** A run's server id: a run made while the server was away has a provisional id until then. */
  serverRunId(runId: string): string {
    return this.store instanceof ResilientStore ? (this.store.serverRunId(runId) ?? runId) : runId;
  }

  /** What still waits in the offline spool for the tracking server (none: undefined). */
  spooled(): { records: number; dir: string; uri: string } | undefined {
    const s = this.store;
    if (!(s instanceof ResilientStore)) return undefined;
    const records = s.spool.pendingCount();
    return records > 0 ? { records, dir: s.spool.dir, uri: s.uri } : undefined;
  }

  async finish(counts: Record<string, number>, status: RunStatus = 'FINISHED'): Promise<void> {
    await this.store.logBatch(this.parentRunId, {
      tags: [{ key: 'sweep.status', value: status === 'FINISHED' ? 'finished' : 'stopped' }, ...Object.entries(counts).map(([k, v]) => ({ key: `sweep.trials.${k}`, value: String(v) }))],
    });
    await this.store.updateRun(this.parentRunId, { status, endTime: Date.now() });
    await this.store.flush();
  }
}
