/**
 * Each report is an MLflow run of its own: tagged with its kind and the runs it summarises,
 * its files (report.html, report.md, charts) logged as artifacts under `report/`.
 */
import { createStore, startRun, type RunHandle, type TrackingStore } from '../tracking/index.ts';
import type { WrittenReport } from './document.ts';
import { join } from 'node:path';

export const TAG_REPORT_KIND = 'report.kind';
export const TAG_REPORT_RUNS = 'report.runs';
/** MLflow caps a tag value at 5,000 characters: longer run lists are kept in runs.json. */
const TAG_LIMIT = 5000;

export interface ReportRunOptions {
  trackingUri: string;
  experiment: string;
  kind: string;
  runName?: string;
  tags?: Record<string, string>;
}

export interface ReportRun {
  store: TrackingStore;
  run: RunHandle;
  runId: string;
}

export async function startReportRun(o: ReportRunOptions): Promise<ReportRun> {
  const store = createStore(o.trackingUri);
  const run = await startRun(store, { experimentName: o.experiment, runName: o.runName ?? `report-${o.kind}`, tags: { [TAG_REPORT_KIND]: o.kind, ...o.tags } });
  return { store, run, runId: run.runId };
}

/** Tags the summarised runs, logs every report file and ends the run FINISHED. */
export async function finishReportRun(r: ReportRun, outDir: string, written: WrittenReport, summarised: readonly string[]): Promise<void> {
  const list = [...new Set(summarised)].sort();
  const joined = list.join(',');
  await r.run.setTag(TAG_REPORT_RUNS, joined.length <= TAG_LIMIT ? joined : `${list.length} runs: see report/runs.json`);
  await r.run.logArtifactBytes('report/runs.json', new TextEncoder().encode(`${JSON.stringify(list, null, 2)}\n`));
  for (const f of written.files) {
    const dir = f.includes('/') ? `report/${f.slice(0, f.lastIndexOf('/'))}` : 'report';
    await r.run.logArtifact(join(outDir, f), dir);
  }
  await r.run.end('FINISHED');
}
