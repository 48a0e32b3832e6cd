/**
 * The trainer: AdamW with warm-up + cosine, gradient clipping, per-epoch validation with
 * early stopping, the best checkpoint evaluated on test, checkpoints to resume from, and
 * everything logged to the tracking store.
 *
 * Exactly-once metrics across a kill and `--resume`: metric points are buffered and
 * written to the store only together with a checkpoint; after a resume the steps since
 * that checkpoint are recomputed (deterministically) and logged once.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { EgmfError } from '../errors.ts';
import type { ExperimentConfig } from '../config/experiment.ts';
import { primaryMetric } from './metrics.ts';
import { buildSetup, disposeSetup } from './setup.ts';
import type { Setup } from './setup.ts';
import { shuffleInPlace } from '../data/loader.ts';
import type { Batch } from '../data/loader.ts';
import seedrandom from 'seedrandom';
import { AdamW } from './optimizer.ts';
import { WeightEma } from './ema.ts';
import { warmupCosine } from './schedule.ts';
import { EarlyStopping } from './early-stopping.ts';
import { Progress } from './progress.ts';
import type { ProgressStream } from './progress.ts';
import { CHECKPOINT_VERSION, loadCheckpoint, readCheckpointState, saveCheckpoint } from './checkpoint.ts';
import type { TrainerState } from './checkpoint.ts';
import { evaluate } from './evaluate.ts';
import type { EvalResult } from './evaluate.ts';
import { configDigest, RunLogger } from './run-logger.ts';
import { saveAdapter } from '../models/llm/index.ts';
import { GraphCapture } from '../models/backend/index.ts';
import { PREDICT_REGION, TEXT_OFFSETS_PARAM, TEXT_PAIR_OFFSETS_PARAM } from '../models/egmf/index.ts';
import { baselineMetrics, baselineValues, beats, cachedBaselines, describeBaselines } from './baselines/index.ts';
import type { Baselines } from './baselines/index.ts';
import type { TrackingTarget } from './run-logger.ts';

export interface TrainOptions {
  /** Run folder: checkpoints, predictions, summary. */
  outDir: string;
  /** Continue from `<outDir>/checkpoints/latest`. */
  resume?: boolean;
  /** Seed of this run (default cfg.seed). */
  seed?: number;
  /** Tracking target; null = no tracking. */
  tracking?: TrackingTarget | null;
  say?: (msg: string) => void;
  progress?: ProgressStream;
  /** Called after each epoch's validation; return true to stop (sweep pruning). */
  onEpoch?: (epoch: number, metrics: Record<string, number>, metric: number) => Promise<boolean> | boolean;
  /** Called once the tracking run exists. */
  onRunStarted?: (runId: string) => void;
}

export interface TrainResult {
  runId: string | null;
  outDir: string;
  metricName: string;
  goal: 'max' | 'min';
  bestEpoch: number;
  bestValid: number | null;
  valid: Record<string, number>;
  test: Record<string, number>;
  pruned: boolean;
  steps: number;
  seconds: number;
  trainSamplesPerSecond: number;
  history: TrainerState['history'];
  /** Each baseline's validation value of the run's metric: `{majority, tfidf}`. */
  baselines: Record<string, number>;
  baselinesDetail: Baselines;
  /** Whether the best validation value beats the majority-class baseline. */
  learned: boolean;
}

export async function trainExperiment(cfg: ExperimentConfig, o: TrainOptions): Promise<TrainResult> {
  const say = o.say ?? (() => undefined);
  const seed = o.seed ?? cfg.seed;
  const t0 = performance.now();
  const setup = await buildSetup(cfg, { say, seed });
  // Each run captures its own graphs: its numbers and its graph counts do not depend on what
  // an earlier run in this process (another seed, a sweep confirmation) left (a graph run
  // and the eager trace of a step can differ in the last bits).
  GraphCapture.forCurrentBackend()?.reset();
  try {
    return await runTraining(setup, cfg, seed, o, say, t0);
  } finally {
    disposeSetup(setup);
  }
}

async function runTraining(s: Setup, cfg: ExperimentConfig, seed: number, o: TrainOptions, say: (m: string) => void, t0: number): Promise<TrainResult> {
  const { model, meta } = s;
  const train = s.loaders.train!;
  const valid = s.loaders.valid!;
  const primary = primaryMetric(meta.task, meta.dataset);
  const metricName = cfg.train.metric ?? primary.name;
  const goal = cfg.train.goal === 'auto' ? (cfg.train.metric === null || cfg.train.metric === primary.name ? primary.goal : guessGoal(cfg.train.metric)) : cfg.train.goal;
  const digest = configDigest(cfg, seed);
  const latestDir = join(o.outDir, 'checkpoints', 'latest');
  const bestDir = join(o.outDir, 'checkpoints', 'best');
  mkdirSync(o.outDir, { recursive: true });

  const evalLimit = cfg.data.limit_eval !== null ? { limit: cfg.data.limit_eval } : {};
  const plans = (epoch: number): Int32Array[] => epochPlan(train, epoch, cfg.data.limit_train, seed, cfg.train.batch_size);
  const stepsPerEpoch = plans(0).length;
  if (stepsPerEpoch === 0) throw new EgmfError('the training split yields no batch', { file: train.files[0], key: 'train.batch_size' });
  const totalSteps = Math.min(cfg.train.epochs * stepsPerEpoch, cfg.train.max_steps ?? Infinity);

  // The same data through the majority class and a TF-IDF text model: what "learned" means.
  const subset = trainSubset(train, cfg.data.limit_train, seed);
  const trainData = train.textsAndLabels(subset ?? undefined); // read once: baselines, offsets and class weights
  const baselines = cachedBaselines(meta, trainData, valid.textsAndLabels(), s.loaders.test?.textsAndLabels() ?? null, { metric: metricName, goal });
  say(describeBaselines(baselines, metricName));
  // Text offsets (`model.text_offsets`): the tokens of the samples this run trains on.
  if (s.model.fusion.textOffsets !== null) {
    const n = s.model.fitTextOffsets(trainData.texts);
    const pairs = cfg.model.text_offsets.pairs > 0 ? ` and ${s.model.fusion.textOffsets.pairList().length} of ${cfg.model.text_offsets.pairs} for adjacent pairs` : '';
    say(`text offsets: ${n} of ${cfg.model.text_offsets.vocab} rows for tokens${pairs} seen ≥ ${cfg.model.text_offsets.min_count} times in the ${subset === null ? `${cfg.data.train_split} split` : `${subset.length} training samples`}`);
  }

  // Class weights (`train.class_weights`): from the labels of the samples this run trains on.
  if (cfg.train.class_weights !== 'none') {
    if (meta.task !== 'classification') throw new EgmfError(`class weights need a classification dataset; ${meta.dataset} is ${meta.task}`, { key: 'train.class_weights' });
    const w = classWeights(trainData.labels, meta.labelNames!.length, cfg.train.class_weights);
    s.model.setClassWeights(w);
    say(`class weights (${cfg.train.class_weights}): ${meta.labelNames!.map((n, c) => `${n} ${w[c]!.toFixed(2)}`).join(', ')}`);
  }

  const opt = new AdamW(s.variables, { eps: cfg.train.adam_eps, weightDecay: cfg.train.weight_decay, lrScale: (n) => lrScaleOf(cfg, n) });
  // `train.ema`: validation, the best checkpoint and the final scores use the averaged weights.
  const ema = cfg.train.ema > 0 ? new WeightEma(s.variables, cfg.train.ema) : null;
  const modelBuffers = s.model.fusion.params.buffers;
  const latestBuffers = ema === null ? modelBuffers : new Map([...modelBuffers, ...ema.buffers()]);
  const averaged = <T>(f: () => T | Promise<T>): Promise<T> => (ema === null ? Promise.resolve(f()) : ema.withAverage(f));
  const es = new EarlyStopping(goal, cfg.train.patience);
  let state: TrainerState = {
    version: CHECKPOINT_VERSION, step: 0, epoch: 0, batchInEpoch: 0, seed, configDigest: digest,
    earlyStopping: es.state(), runId: null, history: [], finished: false,
  };
  if (o.resume) {
    if (!existsSync(latestDir)) throw new EgmfError('nothing to resume: no checkpoint yet', { file: latestDir });
    const saved = readCheckpointState(latestDir);
    if (saved.configDigest !== digest) {
      throw new EgmfError('the checkpoint was made with a different config or seed; resume with the same ones', { file: join(latestDir, 'state.json'), key: 'configDigest' });
    }
    state = loadCheckpoint(latestDir, s.variables, opt, latestBuffers);
    es.restore(state.earlyStopping);
    say(`resuming from step ${state.step} (epoch ${state.epoch + 1}, batch ${state.batchInEpoch})`);
  }

  const logger = await RunLogger.open(o.tracking ?? null, { cfg, seed, setup: s, runId: state.runId, digest, outDir: o.outDir });
  state.runId = logger.runId;
  if (logger.runId) o.onRunStarted?.(logger.runId);

  const progress = new Progress({ total: totalSteps, label: `${cfg.name} seed ${seed}`, stream: o.progress });
  progress.tick(state.step);
  const checkpoint = async (st: TrainerState) => {
    saveCheckpoint(latestDir, s.variables, opt, st, latestBuffers);
    await logger.flush();
  };

  // A resumed run that had already been stopped by its hook stays pruned.
  let pruned = state.pruned === true;
  let bestEval: EvalResult | null = null;
  let trainSamples = 0;
  const trainStart = performance.now();
  while (!state.finished) {
    const epoch = state.epoch;
    const plan = plans(epoch);
    for (let b = state.batchInEpoch; b < plan.length && state.step < totalSteps; b++) {
      const batch = train.batch(plan[b]!);
      const lr = warmupCosine(state.step, { peak: cfg.train.lr, totalSteps, warmupRatio: cfg.train.warmup_ratio });
      const { loss, gradNorm } = trainStep(s, opt, batch, lr, state.step, cfg.train.grad_clip);
      ema?.update();
      train.release(batch); // its tensors are disposed: the buffers can serve the next batch
      state.step += 1;
      state.batchInEpoch = b + 1;
      trainSamples += batch.size;
      // Every epoch's last step is logged too, so a run shorter than log_every (e.g. a trial
      // pruned after one epoch) still has a loss curve.
      if (state.step % cfg.train.log_every === 0 || state.step === totalSteps || b === plan.length - 1) {
        const probe = model.lastStats?.probe;
        logger.metrics({ 'train/loss': loss, 'train/lr': lr, 'train/grad_norm': gradNorm, 'train/ce': model.lastStats?.ce ?? loss, ...(probe !== undefined ? { 'train/probe': probe } : {}) }, state.step);
      }
      progress.tick(1, { epoch: epoch + 1, loss });
      if (cfg.train.checkpoint_every > 0 && state.step % cfg.train.checkpoint_every === 0) await checkpoint(state);
    }
    // End of an epoch (or of the step budget): validate, keep the best, maybe stop.
    const { v, value, improved, stop } = await averaged(() => {
      const v = evaluate(model, valid, meta, evalLimit);
      const value = v.metrics[metricName];
      if (value === undefined) {
        throw new EgmfError(`validation metric '${metricName}' does not exist; choose one of ${Object.keys(v.metrics).join(', ')}`, { key: 'train.metric' });
      }
      const { improved, stop } = es.update(value, epoch);
      if (improved) {
        saveCheckpoint(bestDir, s.variables, null, { ...state, earlyStopping: es.state() }, modelBuffers);
        bestEval = v;
      }
      return { v, value, improved, stop };
    });
    logger.metrics(prefixed('valid', { ...v.metrics, ...v.gates }), state.step);
    logger.metrics({ ...logger.systemMetrics(), ...graphMetrics(cfg, 'train'), epoch: epoch + 1 }, state.step);
    state.history.push({ epoch, step: state.step, metrics: v.metrics });
    progress.log(`epoch ${epoch + 1}: valid ${metricName} ${value.toFixed(4)}${improved ? ' (best)' : ''}`);
    const hookStop = (await o.onEpoch?.(epoch, v.metrics, value)) ?? false;
    pruned = hookStop;
    if (hookStop) state.pruned = true;
    state.epoch = epoch + 1;
    state.batchInEpoch = 0;
    state.earlyStopping = es.state();
    state.finished = stop || hookStop || state.epoch >= cfg.train.epochs || state.step >= totalSteps;
    await checkpoint(state);
  }
  progress.finish();
  const trainSeconds = (performance.now() - trainStart) / 1000;
  const g = graphMetrics(cfg, 'train');
  if (g['graph/traces'] !== undefined) {
    say(`captured training steps: ${g['graph/traces']} traces (graphs), ${g['graph/replays']} replays (${g['graph/forward_only']} of them only the forward pass in JavaScript), ${g['graph/fallbacks']} fallbacks, ${g['graph/eager']} eager`);
  }

  // The best epoch's weights, evaluated on valid and test.
  if (existsSync(bestDir)) loadCheckpoint(bestDir, s.variables, null, modelBuffers);
  // The best epoch's validation, when this process ran it, is what these weights give (evaluation is deterministic).
  const bestValid = bestEval ?? evaluate(model, valid, meta, evalLimit);
  const test = s.loaders.test ? evaluate(model, s.loaders.test, meta, evalLimit) : null;
  if (test) logger.metrics(prefixed('test', test.metrics), state.step);
  const ge = graphMetrics(cfg, 'eval');
  if (ge['graph/eval_traces'] !== undefined) {
    logger.metrics(ge, state.step);
    say(`captured evaluation batches: ${ge['graph/eval_traces']} traces (graphs), ${ge['graph/eval_replays']} replays, ${ge['graph/eval_fallbacks']} fallbacks, ${ge['graph/eval_eager']} eager`);
  }
  logger.metrics(baselineMetrics(baselines), state.step);
  await logger.flush();
  const baselineValid = baselineValues(baselines, metricName);
  const majority = baselineValid.majority!;
  const learned = beats(es.best, majority, goal);
  if (!learned) {
    say(`warning: the best valid ${metricName} (${es.best?.toFixed(4) ?? 'none'}) does not beat the majority-class baseline (${majority.toFixed(4)}): this run learned nothing beyond the class prior`);
  }
  const result: TrainResult = {
    runId: logger.runId, outDir: o.outDir, metricName, goal, bestEpoch: es.bestEpoch, bestValid: es.best,
    valid: bestValid.metrics, test: test?.metrics ?? {}, pruned, steps: state.step,
    seconds: (performance.now() - t0) / 1000,
    trainSamplesPerSecond: trainSamples > 0 ? trainSamples / trainSeconds : 0,
    history: state.history,
    baselines: baselineValid, baselinesDetail: baselines, learned,
  };
  writeOutputs(o.outDir, s, result, bestValid, test);
  await logger.finish(o.outDir, s, result, pruned ? 'KILLED' : 'FINISHED');
  return result;
}

/**
 * One optimiser step: loss and gradients of the trainable variables, global-norm clipping,
 * AdamW. Dropout masks are keyed by the step so a resumed run repeats them.
 */
/**
 * Loss weight per class from training labels: `balanced` 1/count, `sqrt` 1/sqrt(count),
 * scaled so that the mean weight over the samples is 1 (the loss keeps its scale, so the
 * learning rate means the same). A class absent from the samples gets the largest weight
 * of the present ones (it never weighs a training sample anyway).
 */
export function classWeights(labels: ArrayLike<number>, classes: number, kind: 'balanced' | 'sqrt'): Float32Array {
  const counts = new Float64Array(classes);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new EgmfError(`label ${y} of training sample ${i} is not a class index in 0..${classes - 1}`, { key: 'train.class_weights' });
    counts[y]!++;
  }
  const raw = Array.from(counts, (n) => (n === 0 ? 0 : kind === 'balanced' ? 1 / n : 1 / Math.sqrt(n)));
  const mean = raw.reduce((a, w, c) => a + w * counts[c]!, 0) / Math.max(1, labels.length);
  const top = Math.max(...raw);
  return Float32Array.from(raw, (w) => (w === 0 ? top : w) / mean);
}

/** Learning-rate multiplier of a trainable variable: the text offsets are a group of their own. */
export function lrScaleOf(cfg: ExperimentConfig, name: string): number {
  return name === TEXT_OFFSETS_PARAM || name === TEXT_PAIR_OFFSETS_PARAM ? cfg.model.text_offsets.lr_scale : 1;
}

export function trainStep(s: Setup, opt: AdamW, batch: Batch, lr: number, step: number, clip: number): { loss: number; gradNorm: number } {
  s.model.setStep(step);
  s.lora?.setStep(step);
  const varList = [...s.variables.values()];
  const loss = () => s.model.loss(batch, { training: true });
  // On tensorflow, the pass is one captured graph (one trace per batch shape, see GraphCapture).
  const capture = s.cfg.graph ? GraphCapture.forCurrentBackend() : null;
  const { value, grads } = capture === null ? tf.variableGrads(loss, varList) : capture.variableGrads(TRAIN_REGION, loss, varList);
  const named: Record<string, tf.Tensor> = {};
  // A variable the loss does not reach (e.g. an unused gate level) has no gradient.
  for (const [name, v] of s.variables) if (grads[v.name]) named[name] = grads[v.name]!;
  const gradNorm = opt.update(named, lr, clip);
  const lossValue = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  if (!Number.isFinite(lossValue)) throw new EgmfError(`training diverged: loss is ${lossValue} at step ${step}`, { key: 'train.lr' });
  return { loss: lossValue, gradNorm };
}

/** Region name of the captured training step. */
const TRAIN_REGION = 'train-step';

/**
 * The captured-region counts of this run so far (tensorflow on a CPU with `graph: true`;
 * empty otherwise). Training steps (`graph/…`, logged each epoch): how many were traced,
 * replayed as one graph run (and of those, how many ran only the forward pass in
 * JavaScript), fell back, or ran eagerly. Evaluation batches (`graph/eval_…`, logged once at
 * the end): the first decoding step of each batch (see `EgmfModel.predict`), traced,
 * replayed, fallen back or eager.
 */
function graphMetrics(cfg: ExperimentConfig, what: 'train' | 'eval'): Record<string, number> {
  const c = cfg.graph ? GraphCapture.forCurrentBackend() : null;
  if (c === null) return {};
  if (what === 'eval') {
    const ev = c.keyStats(PREDICT_REGION);
    return { 'graph/eval_traces': ev?.traces ?? 0, 'graph/eval_replays': ev?.replays ?? 0, 'graph/eval_fallbacks': ev?.fallbacks ?? 0, 'graph/eval_eager': ev?.eager ?? 0 };
  }
  const st = c.keyStats(TRAIN_REGION);
  return { 'graph/traces': st?.traces ?? 0, 'graph/replays': st?.replays ?? 0, 'graph/forward_only': st?.forwardOnly ?? 0, 'graph/fallbacks': st?.fallbacks ?? 0, 'graph/eager': st?.eager ?? 0 };
}

type Loader = Setup['loaders']['train'] & object;

/** The fixed seeded subset of training samples that `data.limit_train` keeps (null: all of them). */
export function trainSubset(loader: Loader, limit: number | null, seed: number): number[] | null {
  if (limit === null || limit >= loader.size) return null;
  const all = loader.plan(0).flatMap((b) => Array.from(b)).sort((a, b) => a - b);
  return seededShuffle(all, `egmf-subset/${seed}`).slice(0, limit);
}

/** The batches of one epoch: the loader's own plan, or a fixed seeded subset (`data.limit_train`). */
function epochPlan(loader: Loader, epoch: number, limit: number | null, seed: number, batchSize: number): Int32Array[] {
  const pick = trainSubset(loader, limit, seed);
  if (pick === null) return loader.plan(epoch);
  const order = seededShuffle(pick, `egmf-subset/${seed}/${epoch}`);
  const out: Int32Array[] = [];
  for (let i = 0; i < order.length; i += batchSize) out.push(Int32Array.from(order.slice(i, i + batchSize)));
  return out;
}

function seededShuffle(xs: number[], key: string): number[] {
  const out = [...xs];
  shuffleInPlace(out, seedrandom(key));
  return out;
}

function prefixed(split: string, m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => Number.isFinite(v)).map(([k, v]) => [`${split}/${k}`, v]));
}

function guessGoal(metric: string): 'max' | 'min' {
  return /mae|loss|err/i.test(metric) ? 'min' : 'max';
}

function writeOutputs(dir: string, s: Setup, r: TrainResult, valid: EvalResult, test: EvalResult | null): void {
  const csv = (e: EvalResult) => ['id,truth,pred,text', ...e.predictions.map((p) => [p.id, p.truth, p.pred ?? '', p.text].map(csvCell).join(','))].join('\n') + '\n';
  writeFileSync(join(dir, 'predictions-valid.csv'), csv(valid));
  if (test) writeFileSync(join(dir, 'predictions-test.csv'), csv(test));
  const summary = {
    run_id: r.runId, dataset: s.meta.dataset, language: s.meta.language, task: s.meta.task,
    metric: r.metricName, goal: r.goal, best_epoch: r.bestEpoch, best_valid: r.bestValid,
    baselines: r.baselines, learned: r.learned, baselines_detail: r.baselinesDetail,
    valid: r.valid, test: r.test, pruned: r.pruned, steps: r.steps, seconds: r.seconds,
    train_samples_per_s: r.trainSamplesPerSecond, backend: s.backend.name,
    confusion_test: test?.confusion, gates_test: test?.gates, history: r.history,
  };
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  // The best weights in their usable forms: fusion network + PEFT adapter.
  const best = join(dir, 'best');
  mkdirSync(best, { recursive: true });
  s.model.saveWeights(join(best, 'fusion.safetensors'), { dataset: s.meta.dataset, llm: s.cfg.llm.path });
  if (s.lora) saveAdapter(s.lora, join(best, 'adapter'), 'default');
}

function csvCell(v: unknown): string {
  const t = String(v);
  return /[",\n\r]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}
