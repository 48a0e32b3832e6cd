import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { FileStore, ResilientStore, RestStore, createStore, resolveExperimentName, startRun } from '../../src/tracking/index.ts';
import { REPO, runCli, runPython, tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-fs-');
// MLflow 3.13+ reads a file store only with this opt-in; the Python read-back inherits it.
process.env.MLFLOW_ALLOW_FILE_STORE = 'true';
afterAll(() => tmp.cleanup());

describe('file store layout', () => {
  it("writes MLflow's meta.yaml fields with MLflow's types, Default experiment 0 first", async () => {
    const root = join(tmp.path, 'layout');
    const s = new FileStore(root);
    const expId = await s.getOrCreateExperiment('layout');
    const run = await s.createRun({ experimentId: expId, runName: 'r', startTime: 1234, tags: { 'mlflow.user': 'ann' } });
    await s.logMetric(run.info.runId, 'val/loss', 0.5, 3, 99);
    await s.logMetric(run.info.runId, 'val/loss', Number.NaN, 4, 100);
    await s.updateRun(run.info.runId, { status: 'KILLED', endTime: 5678 });
    const def = YAML.parse(readFileSync(join(root, '0', 'meta.yaml'), 'utf8'));
    expect(def).toEqual({ artifact_location: `file://${root}/0`, creation_time: def.creation_time, experiment_id: '0', last_update_time: def.creation_time, lifecycle_stage: 'active', name: 'Default' });
    expect(typeof def.creation_time).toBe('number');
    const meta = YAML.parse(readFileSync(join(root, expId, run.info.runId, 'meta.yaml'), 'utf8'));
    expect(meta).toEqual({
      artifact_uri: `file://${root}/${expId}/${run.info.runId}/artifacts`, end_time: 5678, entry_point_name: '', experiment_id: expId,
      lifecycle_stage: 'active', run_id: run.info.runId, run_name: 'r', source_name: '', source_type: 4, source_version: '',
      start_time: 1234, status: 5, tags: [], user_id: 'ann',
    });
    expect(readFileSync(join(root, expId, run.info.runId, 'metrics', 'val', 'loss'), 'utf8')).toBe('99 0.5 3\n100 nan 4\n');
    expect(readFileSync(join(root, expId, run.info.runId, 'tags', 'mlflow.runName'), 'utf8')).toBe('r');
    expect(existsSync(join(root, '.trash'))).toBe(true);
    expect(Number.isNaN((await s.getMetricHistory(run.info.runId, 'val/loss'))[1]!.value)).toBe(true);
  });

  it('several processes writing runs of one new experiment at once get one experiment and every point', async () => {
    const root = join(tmp.path, 'parallel');
    const outs = await Promise.all([0, 1, 2, 3].map((t) => new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'test', 'tracking', 'concurrent-writer.ts'), root, String(t)], { cwd: REPO });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d));
      p.stderr.on('data', (d: Buffer) => (err += d));
      p.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`writer ${t} failed: ${err}`))));
    })));
    expect(new Set(outs.map((o) => o.split(' ')[0])).size).toBe(1);
    const s = new FileStore(root);
    const exp = await s.getExperimentByName('parallel sweep');
    const runs = await s.searchRuns({ experimentIds: [exp!.experimentId], orderBy: ['params.trial ASC'] });
    expect(runs.map((r) => r.data.params.trial)).toEqual(['0', '1', '2', '3']);
    for (const r of runs) expect((await s.getMetricHistory(r.info.runId, 'loss')).map((m) => m.step)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(readdirSync(root).filter((d) => d !== '.trash').sort()).toEqual(['0', exp!.experimentId].sort());
  });

  it('errors name the key and leave nothing half-written; unreadable metadata names the file', async () => {
    const root = join(tmp.path, 'errors');
    const s = new FileStore(root);
    const expId = await s.getOrCreateExperiment('errors');
    const run = await s.createRun({ experimentId: expId });
    await s.logParam(run.info.runId, 'dropout', 0.1);
    await expect(s.logBatch(run.info.runId, { params: [{ key: 'new', value: '1' }, { key: 'dropout', value: '0.2' }] })).rejects.toThrow(/key 'dropout'.*INVALID_PARAMETER_VALUE.*Changing param values is not allowed/);
    expect((await s.getRun(run.info.runId)).data.params).toEqual({ dropout: '0.1' });
    await expect(s.logParam(run.info.runId, 'p', 'x'.repeat(6001))).rejects.toThrow(/key 'p'.*6000/);
    await expect(s.logMetric(run.info.runId, 'm', 1, 1.5)).rejects.toThrow(/key 'm'.*step must be an integer/);
    await expect(s.createRun({ experimentId: '999' })).rejects.toThrow(/RESOURCE_DOES_NOT_EXIST/);
    await expect(s.getRun('0123456789abcdef0123456789abcdef')).rejects.toThrow(/RESOURCE_DOES_NOT_EXIST.*not found/);
    const metric = join(root, expId, run.info.runId, 'metrics', 'broken');
    writeFileSync(metric, '1 2 3\nnot-a-line-with four fields x\n');
    await expect(s.getMetricHistory(run.info.runId, 'broken')).rejects.toThrow(`${metric}, line 2, key 'broken'`);
  });

  it('searches with LIKE, numeric metric comparisons and rejects a filter it cannot parse', async () => {
    const s = new FileStore(join(tmp.path, 'search'));
    const expId = await s.getOrCreateExperiment('search');
    for (const [i, name] of ['alpha-1', 'alpha-2', 'beta-1'].entries()) {
      const r = await s.createRun({ experimentId: expId, runName: name, startTime: 1000 + i });
      await s.logMetric(r.info.runId, 'f1', i / 10);
    }
    const names = async (filter: string, orderBy?: string[]) => (await s.searchRuns({ experimentIds: [expId], filter, orderBy })).map((r) => r.info.runName);
    expect(await names("attributes.run_name LIKE 'alpha%'", ['attributes.run_name ASC'])).toEqual(['alpha-1', 'alpha-2']);
    expect(await names('metrics.f1 >= 0.1 and metrics.f1 < 0.2')).toEqual(['alpha-2']);
    expect(await names('')).toEqual(['beta-1', 'alpha-2', 'alpha-1']);
    await expect(s.searchRuns({ experimentIds: [expId], filter: 'loss < 1' })).rejects.toThrow(/cannot parse search filter clause 'loss < 1'/);
  });
});

describe('store selection and experiment name', () => {
  it('picks the store by URI scheme like MLflow clients', () => {
    expect(createStore(join(tmp.path, 'a'))).toBeInstanceOf(FileStore);
    expect(createStore(`file://${tmp.path}/b`)).toBeInstanceOf(FileStore);
    expect(createStore('http://127.0.0.1:5000')).toBeInstanceOf(ResilientStore);
    expect(createStore('https://mlflow.example.com', { spoolWhenOffline: false })).toBeInstanceOf(RestStore);
    expect(() => createStore('s3://user:pw@bucket/x')).toThrow(/MLFLOW_TRACKING_URI.*s3:\/\/\*\*\*@bucket/);
    expect(resolveExperimentName('cfg', { MLFLOW_EXPERIMENT_NAME: 'from-env' })).toBe('from-env');
    expect(resolveExperimentName('cfg', {})).toBe('cfg');
    expect(resolveExperimentName(undefined, {})).toBe('Default');
  });
});

describe('egmf runs list', () => {
  it('prints a table and JSON of the runs of an experiment; an unknown experiment is an error naming it', async () => {
    const root = join(tmp.path, 'cli');
    const s = new FileStore(root);
    const run = await startRun(s, { experimentName: 'cli-exp', runName: 'best' });
    await run.logMetrics({ 'f1/val': 0.8123456, loss: 0.25 }, 1);
    await run.end();
    const t = runCli(['runs', 'list', '--experiment', 'cli-exp', '--tracking-uri', root]);
    expect(t.stderr).toBe('');
    const lines = t.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^run_id\s+name\s+status\s+f1\/val\s+loss$/);
    expect(lines[1]).toMatch(new RegExp(`^${run.runId}\\s+best\\s+FINISHED\\s+0.81235\\s+0.25$`));
    const j = runCli(['runs', 'list', '--json', '--tracking-uri', root], { env: { MLFLOW_EXPERIMENT_NAME: 'cli-exp' } });
    expect(JSON.parse(j.stdout)[0].data.metrics).toEqual({ 'f1/val': 0.8123456, loss: 0.25 });
    const bad = runCli(['runs', 'list', '--experiment', 'nope', '--tracking-uri', root]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/key 'experiment'.*no experiment named 'nope'/);
    const py = runPython(`import sys\nfrom mlflow import MlflowClient\nprint(MlflowClient(tracking_uri=sys.argv[1]).get_run(sys.argv[2]).data.metrics)`, [root, run.runId]);
    expect(py.stdout).toContain("'f1/val': 0.8123456");
  });
});
