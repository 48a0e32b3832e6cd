/**
 * End-to-end training on a small synthetic dataset with the built-in LLM (pretrained for
 * a few steps into a test cache): determinism, kill + resume, tracking read back with
 * MLflow's own Python client (file store and a real server), secrets, bad input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadExperiment } from '../../src/config/experiment.ts';
import { classWeights, trainExperiment } from '../../src/train/trainer.ts';
import { REPO, runCli, runPython, setEnv, tempDir } from '../helpers.ts';
import { FileStore } from '../../src/tracking/index.ts';
import { tfNodeAddon } from '../../src/models/backend/install.ts';
import { startMlflowServer } from '../tracking-server.ts';
import type { MlflowServer } from '../tracking-server.ts';

const tmp = tempDir('egmf-train-');
const cache = join(tmp.path, 'cache');
const env = { EGMF_CACHE: cache, MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' };
const CONFIG = join(REPO, 'experiments', 'synthetic', 'meld.yaml');
// Tiny and quick: scale 0.03 (33 validation samples), 48 training samples, 2 epochs, a
// 20-step pretrained built-in LLM.
const SETS = ['data.scale=0.03', 'data.limit_train=48', 'train.epochs=2', 'train.batch_size=16', 'llm.pretrain_steps=20', 'backend=wasm', 'train.log_every=1'];

let server: MlflowServer | null = null;
let restoreEnv: () => void = () => undefined;

beforeAll(async () => {
  restoreEnv = setEnv({ EGMF_CACHE: cache });
});
afterAll(async () => {
  restoreEnv();
  await server?.stop();
  tmp.cleanup();
});

function summary(dir: string): { test: Record<string, number>; history: unknown[] } {
  return JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
}

/** `egmf eval` of a finished run folder gives the test scores the run printed (its --json line). */
function expectEvalScoresAsRun(trainStdout: string, out: string): void {
  const line = JSON.parse(trainStdout.trim().split('\n').pop()!) as { test: Record<string, number> };
  const ev = runCli(['eval', '--checkpoint', out, '--split', 'test', '--json'], { env });
  expect(ev.stderr).not.toMatch(/^error:/m);
  expect(ev.status).toBe(0);
  const got = JSON.parse(ev.stdout.trim().split('\n').pop()!) as { metrics: Record<string, number> };
  expect(got.metrics.weighted_f1).toBeCloseTo(line.test.weighted_f1!, 10);
  expect(got.metrics.acc).toBeCloseTo(line.test.acc!, 10);
  // Evaluation's batch size (train.eval_batch_size, train.batch_size's by default) changes no prediction.
  const small = runCli(['eval', '--checkpoint', out, '--split', 'test', '--json', '--set', 'train.eval_batch_size=5'], { env });
  expect(small.status, small.stderr).toBe(0);
  expect((JSON.parse(small.stdout.trim().split('\n').pop()!) as { metrics: Record<string, number> }).metrics).toEqual(got.metrics);
  // The run's valid scores (its best epoch's validation, reused) are what the saved best weights give.
  const valid = runCli(['eval', '--checkpoint', out, '--split', 'valid', '--json'], { env });
  expect(valid.status, valid.stderr).toBe(0);
  const gotValid = JSON.parse(valid.stdout.trim().split('\n').pop()!) as { metrics: Record<string, number> };
  const runValid = (JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { valid: Record<string, number> }).valid;
  expect(gotValid.metrics.weighted_f1).toBeCloseTo(runValid.weighted_f1!, 10);
  expect(gotValid.metrics.acc).toBeCloseTo(runValid.acc!, 10);
}

describe('egmf train', () => {
  it('is deterministic for a seed and config', async () => {
    const cfg = loadExperiment(CONFIG, SETS);
    const a = await trainExperiment(cfg, { outDir: join(tmp.path, 'det-a'), tracking: null });
    const b = await trainExperiment(cfg, { outDir: join(tmp.path, 'det-b'), tracking: null });
    expect(a.steps).toBe(6);
    expect(a.test).toEqual(b.test);
    expect(a.history).toEqual(b.history);
    expect(readFileSync(join(tmp.path, 'det-a', 'best', 'fusion.safetensors')).equals(readFileSync(join(tmp.path, 'det-b', 'best', 'fusion.safetensors')))).toBe(true);
    expect(Object.keys(a.test)).toEqual(expect.arrayContaining(['acc', 'weighted_f1', 'macro_f1', 'unparsed']));
    const c = await trainExperiment(cfg, { outDir: join(tmp.path, 'det-c'), tracking: null, seed: 2222 });
    expect(readFileSync(join(tmp.path, 'det-c', 'best', 'fusion.safetensors')).equals(readFileSync(join(tmp.path, 'det-a', 'best', 'fusion.safetensors')))).toBe(false);
  });

  it.skipIf(!existsSync(tfNodeAddon(REPO)) && !process.env['CI'])('on tensorflow, logs and prints how its steps ran: traced, replayed as one graph (mostly the forward pass alone), fell back', async () => {
    const store = join(tmp.path, 'mlruns-graph');
    const sets = SETS.map((x) => (x === 'backend=wasm' ? 'backend=tensorflow' : x === 'data.limit_train=48' ? 'data.limit_train=96' : x)).concat('train.epochs=3', 'train.eval_batch_size=8'); // several evaluation batches of one shape
    const r = runCli(['train', '--config', CONFIG, ...sets.flatMap((x) => ['--set', x]), '--tracking-uri', store, '--experiment', 'egmf-graph', '--out', join(tmp.path, 'graph-run')], { env });
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
    const line = /captured training steps: (\d+) traces \(graphs\), (\d+) replays \((\d+) of them only the forward pass in JavaScript\), (\d+) fallbacks, (\d+) eager/.exec(r.stderr + r.stdout);
    expect(line, r.stderr).not.toBeNull();
    const [traces, replays, forwardOnly, , eager] = line!.slice(1).map(Number);
    // 18 steps: every one traced, replayed or fallen back (a fallback records a new trace).
    expect(traces! + replays!).toBe(18);
    expect(forwardOnly).toBeGreaterThan(0);
    expect(eager).toBe(0);
    const runId = /^run_id: ([0-9a-f]{32})$/m.exec(r.stdout)![1]!;
    const fs = new FileStore(store);
    const hist = await fs.getMetricHistory(runId, 'graph/traces');
    expect(hist.map((m) => m.step)).toEqual([6, 12, 18]);
    expect(hist[2]!.value).toBe(traces);
    expect((await fs.getRun(runId)).data.metrics['graph/forward_only']).toBe(forwardOnly);
    // Evaluation batches (3 validations and the test split): first decoding steps traced, then replayed.
    const ev = /captured evaluation batches: (\d+) traces \(graphs\), (\d+) replays, (\d+) fallbacks, (\d+) eager/.exec(r.stderr + r.stdout);
    expect(ev, r.stderr).not.toBeNull();
    const [evTraces, evReplays, , evEager] = ev!.slice(1).map(Number);
    expect(evTraces).toBeGreaterThan(0);
    expect(evReplays).toBeGreaterThan(evTraces!);
    expect(evEager).toBe(0);
    expect((await fs.getRun(runId)).data.metrics['graph/eval_replays']).toBe(evReplays);
  });

  it.skipIf(!existsSync(tfNodeAddon(REPO)) && !process.env['CI'])('on tensorflow, seeds trained one after another in one process give what each gives alone', () => {
    const sets = SETS.map((x) => (x === 'backend=wasm' ? 'backend=tensorflow' : x === 'data.limit_train=48' ? 'data.limit_train=96' : x));
    const train = (extra: string[], out: string) => {
      const r = runCli(['train', '--config', CONFIG, ...[...sets, ...extra].flatMap((x) => ['--set', x]), '--no-tracking', '--json', '--out', join(tmp.path, out)], { env });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    };
    train(['seeds=[1111,2222]'], 'seeds-both');
    train(['seed=2222'], 'seeds-alone');
    // The weights decide the test split's gate weights to the last bit.
    const summary = (dir: string) => JSON.parse(readFileSync(join(tmp.path, dir, 'summary.json'), 'utf8'));
    const second = summary(join('seeds-both', 'seed2222'));
    const alone = summary('seeds-alone');
    expect(Object.keys(second.gates_test).length).toBeGreaterThan(0);
    expect(second.gates_test).toEqual(alone.gates_test);
    expect(second.history).toEqual(alone.history);
  });

  it('logs a complete run to the file store that MLflow reads back', () => {
    const store = join(tmp.path, 'mlruns');
    const r = runCli(['train', '--config', CONFIG, ...SETS.flatMap((s) => ['--set', s]), '--tracking-uri', store, '--experiment', 'egmf-test', '--out', join(tmp.path, 'file-run')], { env });
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
    const runId = /^run_id: ([0-9a-f]{32})$/m.exec(r.stdout)?.[1];
    expect(runId).toBeDefined();
    const py = runPython(`
import sys, json, os
os.environ['MLFLOW_ALLOW_FILE_STORE'] = 'true'
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri='file:' + sys.argv[1])
run = c.get_run(sys.argv[2])
hist = c.get_metric_history(sys.argv[2], 'train/loss')
arts = [a.path for a in c.list_artifacts(sys.argv[2])]
ck = [a.path for a in c.list_artifacts(sys.argv[2], 'checkpoint')]
print(json.dumps({'params': run.data.params, 'tags': run.data.tags, 'metrics': run.data.metrics,
  'steps': [m.step for m in hist], 'status': run.info.status, 'artifacts': arts, 'checkpoint': ck,
  'inputs': [d.dataset.name for d in run.inputs.dataset_inputs]}))
`, [store, runId!]);
    expect(py.stderr).not.toMatch(/Traceback/);
    const got = JSON.parse(py.stdout.trim().split('\n').pop()!);
    expect(got.status).toBe('FINISHED');
    expect(got.params['train.lr']).toBe('0.005');
    expect(got.params['data.limit_train']).toBe('48');
    expect(got.params.seed).toBe('1111');
    expect(got.steps).toEqual([1, 2, 3, 4, 5, 6]);
    expect(got.tags['egmf.dataset']).toBe('meld');
    expect(got.tags['egmf.dataset.language']).toBe('en');
    expect(got.tags['egmf.backend']).toBe('wasm');
    expect(got.tags['mlflow.source.git.commit']).toMatch(/^[0-9a-f]{40}$/);
    expect(Object.keys(got.metrics)).toEqual(expect.arrayContaining(['valid/weighted_f1', 'test/weighted_f1', 'test/acc', 'system/live_tensors',
      'baseline/majority/valid/weighted_f1', 'baseline/majority/test/weighted_f1', 'baseline/tfidf/valid/weighted_f1', 'baseline/tfidf/test/acc']));
    expect(got.tags['egmf.learned']).toMatch(/^(true|false)$/);
    // The run's summary holds the same baselines it logged, and prints them.
    const sum = JSON.parse(readFileSync(join(tmp.path, 'file-run', 'summary.json'), 'utf8')) as { baselines: Record<string, number>; learned: boolean; best_valid: number };
    expect(sum.baselines).toEqual({ majority: got.metrics['baseline/majority/valid/weighted_f1'], tfidf: got.metrics['baseline/tfidf/valid/weighted_f1'] });
    expect(String(sum.learned)).toBe(got.tags['egmf.learned']);
    expect(sum.learned).toBe(sum.best_valid > sum.baselines.majority!);
    expect(r.stdout).toContain(`baselines, valid weighted_f1: majority ${sum.baselines.majority!.toFixed(4)}, tfidf ${sum.baselines.tfidf!.toFixed(4)}`);
    expect(r.stderr).toMatch(/baselines, valid weighted_f1: majority class 0\.\d{4}, TF-IDF \(word 1-2-grams\) \+ logistic \(C [\d.]+\) 0\.\d{4}/);
    expect(got.artifacts).toEqual(expect.arrayContaining(['config.yaml', 'summary.json', 'predictions-test.csv', 'checkpoint']));
    expect(got.checkpoint).toEqual(expect.arrayContaining(['checkpoint/fusion.safetensors', 'checkpoint/adapter']));
    expect(got.inputs.sort()).toEqual(['meld-test', 'meld-train', 'meld-valid']);
  });

  it('warns when a run does not beat the majority-class baseline of its own data', () => {
    // A learning rate too small to move the weights: the run cannot learn anything.
    const sets = [...SETS, 'train.lr=1e-12', 'train.epochs=1'];
    const out = join(tmp.path, 'no-learning');
    const r = runCli(['train', '--config', CONFIG, ...sets.flatMap((s) => ['--set', s]), '--no-tracking', '--out', out, '--json'], { env });
    expect(r.status).toBe(0);
    const line = JSON.parse(r.stdout.trim().split('\n').pop()!) as { best_valid: number; baselines: Record<string, number>; learned: boolean };
    expect(line.learned).toBe(false);
    expect(line.best_valid).toBeLessThanOrEqual(line.baselines.majority!);
    expect(r.stderr).toContain(`warning: the best valid weighted_f1 (${line.best_valid.toFixed(4)}) does not beat the majority-class baseline (${line.baselines.majority!.toFixed(4)})`);
    expect((JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { learned: boolean }).learned).toBe(false);
  });

  it.each([['plain', []], ['with a weight average (train.ema)', ['train.ema=0.9']]])('resumes a killed run and ends with the same metrics as an uninterrupted one (%s)', async (name, extra) => {
    const sets = [...SETS, 'train.checkpoint_every=2', 'train.epochs=3', ...extra];
    const args = (out: string) => ['train', '--config', CONFIG, ...sets.flatMap((s) => ['--set', s]), '--no-tracking', '--out', out];
    const full = runCli(args(join(tmp.path, `full-${name}`)), { env });
    expect(full.status).toBe(0);
    const out = join(tmp.path, `killed-${name}`);
    const child = spawn(process.execPath, [join(REPO, 'bin', 'egmf.mjs'), ...args(out)], { env: { ...process.env, ...env }, stdio: 'ignore' });
    const state = join(out, 'checkpoints', 'latest', 'state.json');
    const t0 = Date.now();
    let killedAt = -1;
    while (Date.now() - t0 < 240_000 && child.exitCode === null) {
      if (existsSync(state)) {
        const s = JSON.parse(readFileSync(state, 'utf8')) as { step: number };
        if (s.step >= 4) {
          child.kill('SIGKILL');
          killedAt = s.step;
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => child.once('exit', r));
    expect(killedAt).toBeGreaterThanOrEqual(4);
    expect(existsSync(join(out, 'summary.json'))).toBe(false);
    const resumed = runCli([...args(out), '--resume'], { env });
    expect(resumed.stderr).toMatch(/resuming from step \d+/);
    expect(resumed.status).toBe(0);
    expect(summary(out).test).toEqual(summary(join(tmp.path, `full-${name}`)).test);
    expect(summary(out).history).toEqual(summary(join(tmp.path, `full-${name}`)).history);
    if (extra.length > 0) {
      // The average is what was validated and kept: other weights than the raw ones.
      const best = (dir: string) => readFileSync(join(dir, 'best', 'fusion.safetensors'));
      expect(best(out).equals(best(join(tmp.path, 'full-plain')))).toBe(false);
    }
  });

  it('dialogue context on real MELD text: the text encoder reads the preceding utterance, the TF-IDF baseline gets it too, and `egmf eval` of the run folder scores as the run did', () => {
    const cfg = join(REPO, 'experiments', 'meld-text.yaml');
    const sets = ['data.limit_train=96', 'model.head=linear', 'train.epochs=1', 'llm.pretrain_steps=20', 'backend=wasm', 'model.text_offsets.vocab=300', 'data.context=1'];
    const out = join(tmp.path, 'context-run');
    const r = runCli(['train', '--config', cfg, ...sets.flatMap((s) => ['--set', s]), '--no-tracking', '--out', out, '--json'], { env });
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/the same with the dialogue context \(C [\d.]+\) 0\.\d{4}/);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { baselines: Record<string, number>; baselines_detail: { tfidf_context: { context_vocabulary: number } } };
    expect(s.baselines.tfidf_context).toBeGreaterThan(0);
    expect(s.baselines_detail.tfidf_context.context_vocabulary).toBeGreaterThan(100);
    expectEvalScoresAsRun(r.stdout, out);
    // Context is text: a model without the text modality is refused by key.
    const bad = runCli(['train', '--config', CONFIG, ...SETS.flatMap((x) => ['--set', x]), '--set', 'data.context=1', '--set', 'model.modalities=[audio,vision]', '--no-tracking', '--out', join(tmp.path, 'ctx-bad')], { env });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/key 'data\.context'.*needs the text modality/);
  });

  it('logs through a real MLflow server and keeps secrets out of the run', async () => {
    server = await startMlflowServer();
    const uri = server.uri.replace('http://', 'http://alice:hunter2secret@');
    // log_every 4 over 2 epochs of 3 steps: step 4, and the last step of each epoch (3, 6),
    // so even a run shorter than log_every (say, pruned after one epoch) has a loss curve.
    const r = runCli(['train', '--config', CONFIG, ...SETS.flatMap((s) => ['--set', s]), '--set', 'train.log_every=4', '--set', `tracking.uri=${uri}`, '--experiment', 'egmf-rest', '--out', join(tmp.path, 'rest-run')], { env });
    expect(r.status).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toContain('hunter2secret');
    const runId = /^run_id: ([0-9a-f]{32})$/m.exec(r.stdout)![1]!;
    const py = runPython(`
import sys, json
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri=sys.argv[1])
run = c.get_run(sys.argv[2])
hist = c.get_metric_history(sys.argv[2], 'train/loss')
arts = [a.path for a in c.list_artifacts(sys.argv[2])]
cfg = open(c.download_artifacts(sys.argv[2], 'config.yaml')).read()
print(json.dumps({'params': run.data.params, 'tags': run.data.tags, 'steps': sorted(m.step for m in hist),
  'status': run.info.status, 'artifacts': arts, 'config': cfg, 'exp': c.get_experiment(run.info.experiment_id).name}))
`, [server.uri, runId]);
    expect(py.stderr).not.toMatch(/Traceback/);
    const got = JSON.parse(py.stdout.trim().split('\n').pop()!);
    expect(got.exp).toBe('egmf-rest');
    expect(got.status).toBe('FINISHED');
    expect(got.steps).toEqual([3, 4, 6]);
    expect(got.artifacts).toEqual(expect.arrayContaining(['config.yaml', 'summary.json', 'checkpoint']));
    const everything = JSON.stringify(got);
    expect(everything).not.toContain('hunter2secret');
    expect(got.params['tracking.uri']).toContain('***');
  });

  it('text offsets on real MELD text: chosen from the training split, saved with the best weights, and `egmf eval` of the run folder scores as the run did', () => {
    const cfg = join(REPO, 'experiments', 'meld-text.yaml');
    // The linear head scores the whole splits in seconds (`egmf eval` has no data.limit_eval).
    const sets = ['data.limit_train=96', 'model.head=linear', 'train.epochs=1', 'llm.pretrain_steps=20', 'backend=wasm', 'model.text_offsets.vocab=300'];
    const out = join(tmp.path, 'offsets-run');
    const r = runCli(['train', '--config', cfg, ...sets.flatMap((s) => ['--set', s]), '--no-tracking', '--out', out, '--json'], { env });
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
    const rows = Number(/text offsets: (\d+) of 300 rows for tokens seen ≥ 2 times in the 96 training samples/.exec(r.stderr)?.[1]);
    expect(rows).toBeGreaterThan(50); // 96 utterances share that many tokens
    expect(rows).toBeLessThanOrEqual(300);
    expectEvalScoresAsRun(r.stdout, out);
  });

  it('class weights on real MELD text: from the training samples\' labels, logged per class; a regression dataset is refused by key', () => {
    const sets = ['data.limit_train=96', 'model.head=linear', 'train.epochs=1', 'llm.pretrain_steps=20', 'backend=wasm', 'model.text_offsets.vocab=0', 'train.class_weights=balanced'];
    const r = runCli(['train', '--config', join(REPO, 'experiments', 'meld-text.yaml'), ...sets.flatMap((s) => ['--set', s]), '--no-tracking', '--out', join(tmp.path, 'weighted-run'), '--json'], { env });
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
    const line = /class weights \(balanced\): (.*)/.exec(r.stderr)?.[1];
    expect(line, r.stderr.slice(-2000)).toBeDefined();
    const w = Object.fromEntries(line!.split(', ').map((p) => { const [k, v] = p.split(' '); return [k!, Number(v)]; }));
    expect(Object.keys(w)).toEqual(['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger']);
    // neutral is MELD's most frequent class, so it weighs least
    expect(Math.min(...Object.values(w))).toBe(w['neutral']);
    expect(w['neutral']).toBeLessThan(1);
    const reg = runCli(['train', '--config', join(REPO, 'experiments', 'synthetic', 'mosei.yaml'), '--set', 'data.scale=0.03', '--set', 'llm.pretrain_steps=20', '--set', 'train.class_weights=sqrt', '--no-tracking', '--out', join(tmp.path, 'weighted-reg')], { env });
    expect(reg.status).not.toBe(0);
    expect(reg.stderr).toMatch(/key 'train\.class_weights': class weights need a classification dataset; mosei is regression/);
  });

  it('classWeights: balanced and sqrt from counts, mean weight over samples 1; absent classes and bad labels', () => {
    const labels = [0, 0, 0, 1, 1, 2];
    const b = Array.from(classWeights(labels, 3, 'balanced'));
    [2 / 3, 1, 2].forEach((x, c) => expect(b[c]).toBeCloseTo(x, 6));
    const q = Array.from(classWeights(labels, 3, 'sqrt'));
    const m = (Math.sqrt(3) + Math.sqrt(2) + 1) / 6;
    [1 / Math.sqrt(3) / m, 1 / Math.sqrt(2) / m, 1 / m].forEach((x, c) => expect(q[c]).toBeCloseTo(x, 6));
    expect(labels.reduce((a, y) => a + q[y]!, 0) / labels.length).toBeCloseTo(1, 6);
    const absent = Array.from(classWeights([0, 0, 1], 3, 'balanced'));
    expect(absent[2]).toBeCloseTo(absent[1]!, 6);
    expect(() => classWeights([0, 3], 3, 'balanced')).toThrow(/train\.class_weights.*label 3 of training sample 1 is not a class index in 0\.\.2/);
  });

  it('rejects bad input with the key or file named', () => {
    const bad = runCli(['train', '--config', CONFIG, '--set', 'model.gating.deph=2'], { env });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/key 'model\.gating\.deph'/);
    const missing = runCli(['train', '--config', CONFIG, '--set', 'data.source=arrow', '--set', `data.root=${join(tmp.path, 'nope')}`, '--no-tracking'], { env });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/nope.*data folder not found/);
    const noCkpt = runCli(['train', '--config', CONFIG, ...SETS.flatMap((s) => ['--set', s]), '--resume', '--no-tracking', '--out', join(tmp.path, 'fresh')], { env });
    expect(noCkpt.status).not.toBe(0);
    expect(noCkpt.stderr).toMatch(/nothing to resume/);
    writeFileSync(join(tmp.path, 'bad.yaml'), 'train: {lr: -1}\n');
    const badFile = runCli(['train', '--config', join(tmp.path, 'bad.yaml')], { env });
    expect(badFile.stderr).toMatch(/bad\.yaml, key 'train\.lr': must be > 0/);
  });
});
