/**
 * What every report test checks of the report's MLflow run: FINISHED, tagged with its kind and
 * the runs it summarises (each a child of it, with its run folder on disk), its files logged.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { createStore, type Run } from '../../src/tracking/index.ts';

export async function checkReportRun(storeUri: string, runId: string, kind: string, runs: number): Promise<{ ids: string[]; children: Run[] }> {
  const s = createStore(storeUri);
  const run = await s.getRun(runId);
  expect(run.info.status).toBe('FINISHED');
  expect(run.data.tags['report.kind']).toBe(kind);
  const ids = run.data.tags['report.runs']!.split(',');
  expect(ids).toHaveLength(runs);
  const children: Run[] = [];
  for (const id of ids) {
    const child = await s.getRun(id);
    expect(child.data.tags['mlflow.parentRunId']).toBe(runId);
    expect(existsSync(join(child.data.tags['egmf.run_dir']!, 'config.json'))).toBe(true);
    children.push(child);
  }
  const arts = (await s.listArtifacts(runId, 'report')).map((a) => a.path);
  expect(arts).toEqual(expect.arrayContaining(['report/report.html', 'report/report.md', 'report/runs.json', 'report/charts']));
  return { ids, children };
}
