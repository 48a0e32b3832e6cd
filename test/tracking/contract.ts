/**
 * The store contract: the same assertions for every TrackingStore implementation, ending with a
 * read-back through MLflow's own Python client (the oracle for "MLflow sees what we wrote").
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMlflowError, PARENT_RUN_TAG, type MetricPoint, type TrackingStore } from '../../src/tracking/index.ts';
import { runPython, tempDir } from '../helpers.ts';

export interface ContractTarget {
  store: () => TrackingStore;
  /** The tracking URI MLflow's Python client should read. */
  pythonUri: () => string;
}

const READBACK = `
import json, sys, os
from mlflow import MlflowClient
uri, exp_name, parent, child = sys.argv[1:5]
c = MlflowClient(tracking_uri=uri)
exp = c.get_experiment_by_name(exp_name)
r = c.get_run(child)
kids = c.search_runs([exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
hist = c.get_metric_history(child, 'loss/train')
arts = c.list_artifacts(child, 'plots')
print(json.dumps({
  'experiment_id': exp.experiment_id,
  'status': r.info.status, 'run_name': r.info.run_name, 'end_time': r.info.end_time,
  'params': r.data.params, 'tags': r.data.tags, 'metrics': r.data.metrics,
  'history': [[m.step, m.value, m.timestamp] for m in hist],
  'children': sorted(x.info.run_id for x in kids),
  'artifacts': sorted((a.path, a.is_dir, a.file_size) for a in arts),
  'inputs': [{'name': d.dataset.name, 'digest': d.dataset.digest, 'source': d.dataset.source, 'source_type': d.dataset.source_type,
              'tags': {t.key: t.value for t in d.tags}} for d in r.inputs.dataset_inputs],
}))
`;

export function storeContract(name: string, target: ContractTarget): void {
  describe(`tracking store contract: ${name}`, () => {
    const tmp = tempDir('egmf-contract-');
    const expName = `contract ${name} ${Date.now()}`;
    const ids: { exp?: string; parent?: string; children: string[] } = { children: [] };

    it('creates experiments once, finds them by name, and rejects a duplicate name', async () => {
      const s = target.store();
      expect(await s.getExperimentByName(`${expName} missing`)).toBeNull();
      const id = await s.getOrCreateExperiment(expName);
      expect(await s.getOrCreateExperiment(expName)).toBe(id);
      const exp = await s.getExperimentByName(expName);
      expect(exp).toMatchObject({ experimentId: id, name: expName, lifecycleStage: 'active' });
      await expect(s.createExperiment(expName)).rejects.toSatisfy((e: unknown) => isMlflowError(e, 'RESOURCE_ALREADY_EXISTS'));
      // Racing creators (sweep trials starting together) all get the same experiment.
      const raced = await Promise.all([1, 2, 3, 4].map(() => target.store().getOrCreateExperiment(`${expName} raced`)));
      expect(new Set(raced).size).toBe(1);
      ids.exp = id;
    });

    it('logs nested runs with params, tags, stepped metric histories and status', async () => {
      const s = target.store();
      const parent = await s.createRun({ experimentId: ids.exp!, runName: 'sweep', startTime: 1_700_000_000_000, tags: { 'egmf.kind': 'sweep' } });
      expect(parent.info).toMatchObject({ runName: 'sweep', status: 'RUNNING', experimentId: ids.exp });
      ids.parent = parent.info.runId;
      for (const [i, lr] of ['0.001', '0.01'].entries()) {
        const child = await s.createRun({ experimentId: ids.exp!, runName: `trial-${i}`, startTime: 1_700_000_000_100 + i, parentRunId: parent.info.runId });
        const id = child.info.runId;
        ids.children.push(id);
        await s.logParams(id, { lr, 'model/hidden': 64, use_audio: true });
        await s.logParam(id, 'lr', lr);
        await s.setTag(id, 'phase', 'warmup');
        await s.setTag(id, 'phase', 'train');
        const pts: MetricPoint[] = [0, 1, 2, 3].map((step) => ({ key: 'loss/train', value: 1 / (step + 1) + i, timestamp: 1_700_000_001_000 + step, step }));
        await s.logBatch(id, { metrics: pts });
        await s.logMetric(id, 'acc', 0.5 + i / 10, 3, 1_700_000_002_000);
        await s.updateRun(id, { status: 'FINISHED', endTime: 1_700_000_009_000 + i });
      }
      const id = ids.children[1]!;
      const run = await s.getRun(id);
      expect(run.info).toMatchObject({ runId: id, runName: 'trial-1', status: 'FINISHED', endTime: 1_700_000_009_001, startTime: 1_700_000_000_101 });
      expect(run.data.params).toEqual({ lr: '0.01', 'model/hidden': '64', use_audio: 'true' });
      expect(run.data.tags).toMatchObject({ phase: 'train', [PARENT_RUN_TAG]: ids.parent, 'mlflow.runName': 'trial-1' });
      expect(run.data.metrics).toEqual({ 'loss/train': 1.25, acc: 0.6 });
      const hist = await s.getMetricHistory(id, 'loss/train');
      expect(hist.map((m) => [m.step, m.value, m.timestamp])).toEqual([0, 1, 2, 3].map((st) => [st, 1 / (st + 1) + 1, 1_700_000_001_000 + st]));
      expect(await s.getMetricHistory(id, 'never-logged')).toEqual([]);
    });

    it('rejects a changed param with INVALID_PARAMETER_VALUE naming the key, and bad keys before writing anything', async () => {
      const s = target.store();
      const id = ids.children[0]!;
      const err = await s.logParam(id, 'lr', '0.5').then(() => null, (e: unknown) => e);
      expect(isMlflowError(err, 'INVALID_PARAMETER_VALUE')).toBe(true);
      expect(String((err as Error).message)).toContain('lr');
      const bad = await s.logBatch(id, { metrics: [{ key: 'fine', value: 1, timestamp: 1, step: 0 }, { key: 'bad key!', value: 1, timestamp: 1, step: 0 }] }).then(() => null, (e: unknown) => e);
      expect(isMlflowError(bad, 'INVALID_PARAMETER_VALUE')).toBe(true);
      expect(String((bad as Error).message)).toContain("'bad key!'");
      expect(await s.getMetricHistory(id, 'fine')).toEqual([]);
      for (const key of ['../escape', '/abs', 'a//b', 'x'.repeat(251)]) {
        await expect(s.setTag(id, key, 'v')).rejects.toThrow(key.slice(0, 20));
      }
      expect((await s.getRun(id)).data.params.lr).toBe('0.001');
    });

    it('searches by parent tag, params and status, with ordering', async () => {
      const s = target.store();
      const kids = await s.searchRuns({ experimentIds: [ids.exp!], filter: `tags.mlflow.parentRunId = '${ids.parent}'` });
      expect(kids.map((r) => r.info.runId).sort()).toEqual([...ids.children].sort());
      const byParam = await s.searchRuns({ experimentIds: [ids.exp!], filter: "params.lr = '0.01'" });
      expect(byParam.map((r) => r.info.runId)).toEqual([ids.children[1]]);
      const running = await s.searchRuns({ experimentIds: [ids.exp!], filter: "attributes.status = 'RUNNING'" });
      expect(running.map((r) => r.info.runId)).toEqual([ids.parent]);
      const ordered = await s.searchRuns({ experimentIds: [ids.exp!], filter: "tags.phase = 'train'", orderBy: ['metrics.acc DESC'] });
      expect(ordered.map((r) => r.info.runId)).toEqual([ids.children[1], ids.children[0]]);
      expect(await s.searchRuns({ experimentIds: [ids.exp!], maxResults: 2 })).toHaveLength(2);
    });

    it('records dataset inputs once', async () => {
      const s = target.store();
      const input = { dataset: { name: 'sims-v2/train', digest: 'a1b2c3d4', sourceType: 'local', source: '/data/sims-v2/train.arrow', schema: '{"label": "float"}' }, tags: { 'mlflow.data.context': 'train' } };
      await s.logInputs(ids.children[0]!, [input]);
      await s.logInputs(ids.children[0]!, [input]);
      const run = await s.getRun(ids.children[0]!);
      expect(run.inputs).toEqual([input]);
    });

    it('records one new dataset from many runs logging it at once (sweep trials starting together)', async () => {
      const s = target.store();
      const exp = await s.getOrCreateExperiment(`${expName} inputs raced`);
      const input = { dataset: { name: 'meld-train', digest: '63c57e68758d2c10', sourceType: 'local', source: '/cache/meld/train.arrow', schema: '{"task": "classification"}' }, tags: { 'mlflow.data.context': 'train' } };
      for (let round = 0; round < 3; round++) {
        const runs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => s.createRun({ experimentId: exp, runName: `racer-${round}-${i}` })));
        const raced = { ...input, dataset: { ...input.dataset, digest: `${input.dataset.digest}${round}` } };
        await Promise.all(runs.map((r) => target.store().logInputs(r.info.runId, [raced])));
        for (const r of runs) expect((await s.getRun(r.info.runId)).inputs).toEqual([raced]);
      }
    });

    it('stores, lists and downloads artifacts', async () => {
      const s = target.store();
      const id = ids.children[0]!;
      const local = join(tmp.path, 'confusion.json');
      writeFileSync(local, '{"tp": 3}');
      await s.logArtifact(id, local, 'plots');
      await s.logArtifactBytes(id, 'plots/deep/curve.csv', new TextEncoder().encode('step,loss\n0,1\n'));
      await s.logArtifactBytes(id, 'config.yaml', new TextEncoder().encode('lr: 0.001\n'));
      expect(await s.listArtifacts(id)).toEqual([{ path: 'config.yaml', isDir: false, fileSize: 10 }, { path: 'plots', isDir: true }]);
      expect(await s.listArtifacts(id, 'plots')).toEqual([{ path: 'plots/confusion.json', isDir: false, fileSize: 9 }, { path: 'plots/deep', isDir: true }]);
      expect(new TextDecoder().decode(await s.downloadArtifact(id, 'plots/deep/curve.csv'))).toBe('step,loss\n0,1\n');
      await expect(s.logArtifactBytes(id, '../outside.txt', new Uint8Array(1))).rejects.toThrow('../outside.txt');
      await expect(s.logArtifact(id, join(tmp.path, 'missing.bin'))).rejects.toThrow('missing.bin');
    });

    it('splits a large batch under MLflow limits: 2,500 metrics and 250 params all arrive', async () => {
      const s = target.store();
      const run = await s.createRun({ experimentId: ids.exp!, runName: 'big-batch' });
      const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: `m${i % 5}`, value: i, timestamp: 1_700_000_000_000 + i, step: Math.floor(i / 5) }));
      const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: `v${i}` }));
      await s.logBatch(run.info.runId, { metrics, params });
      const got = await s.getRun(run.info.runId);
      expect(Object.keys(got.data.params)).toHaveLength(250);
      expect(got.data.params.p249).toBe('v249');
      for (let k = 0; k < 5; k++) {
        const h = await s.getMetricHistory(run.info.runId, `m${k}`);
        expect(h.map((m) => m.step).sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i));
      }
    });

    it("reads back through MLflow's own Python client", () => {
      const r = runPython(READBACK, [target.pythonUri(), expName, ids.parent!, ids.children[0]!]);
      expect(r.stderr.split('\n').filter((l) => /Error|Traceback/.test(l))).toEqual([]);
      expect(r.status).toBe(0);
      const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      expect(got).toMatchObject({
        experiment_id: ids.exp, status: 'FINISHED', run_name: 'trial-0', end_time: 1_700_000_009_000,
        params: { lr: '0.001', 'model/hidden': '64', use_audio: 'true' },
        metrics: { 'loss/train': 0.25, acc: 0.5 },
        history: [0, 1, 2, 3].map((st) => [st, 1 / (st + 1), 1_700_000_001_000 + st]),
        children: [...ids.children].sort(),
        artifacts: [['plots/confusion.json', false, 9], ['plots/deep', true, null]],
        inputs: [{ name: 'sims-v2/train', digest: 'a1b2c3d4', source: '/data/sims-v2/train.arrow', source_type: 'local', tags: { 'mlflow.data.context': 'train' } }],
      });
      expect((got.tags as Record<string, string>)[PARENT_RUN_TAG]).toBe(ids.parent);
      expect((got.tags as Record<string, string>).phase).toBe('train');
    });

    it('cleans up', () => tmp.cleanup());
  });
}
