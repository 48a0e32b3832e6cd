/**
 * Times a tiny decoder training step (forward, restricted-vocabulary cross-entropy,
 * backward, Adam) on the current backend: the number that decides whether a
 * configuration trains in reasonable time on CPU.
 */
import * as tf from '@tensorflow/tfjs-core';
import { makeDecoderConfig } from './config.ts';
import { Decoder } from './decoder.ts';
import { LoraModel } from './lora.ts';
import { softmaxCrossEntropy } from '../ops.ts';

export interface BenchOptions {
  layers?: number;
  hidden?: number;
  heads?: number;
  seqLen?: number;
  batch?: number;
  vocab?: number;
  /** Size of the restricted output vocabulary. */
  answerVocab?: number;
  /** Train LoRA (r = 8 on all projections) instead of the full model. */
  lora?: boolean;
  warmup?: number;
  steps?: number;
  seed?: number;
}

export interface BenchResult {
  backend: string;
  msPerStep: number;
  firstLoss: number;
  lastLoss: number;
  trainableParams: number;
}

export function benchDecoderStep(opts: BenchOptions = {}): BenchResult {
  const d = opts.hidden ?? 128;
  const heads = opts.heads ?? 4;
  const b = opts.batch ?? 16;
  const t = opts.seqLen ?? 32;
  const vocab = opts.vocab ?? 1000;
  const k = opts.answerVocab ?? 16;
  const config = makeDecoderConfig({ modelType: 'qwen2', vocabSize: vocab, hiddenSize: d, intermediateSize: 4 * d, numLayers: opts.layers ?? 2, numHeads: heads, numKvHeads: heads });
  const model = Decoder.random(config, opts.seed ?? 0);
  const lora = opts.lora ? new LoraModel(model) : null;
  lora?.addAdapter('default', { r: 8, alpha: 16, dropout: 0, targetModules: 'all-linear' }, { seed: 1 });
  const vars = lora?.trainableVariables() ?? model.trainableVariables();
  const ids = tf.tensor2d(Int32Array.from({ length: b * t }, (_, i) => (i * 7919) % vocab), [b, t], 'int32');
  const answerIds = Array.from({ length: k }, (_, i) => i * 3);
  const targets = Array.from({ length: b * t }, (_, i) => (i * 31) % k);
  const opt = tf.train.adam(1e-3);
  const step = (): number => {
    const loss = opt.minimize(() => softmaxCrossEntropy(model.logitsFor(model.forward({ inputIds: ids, training: true }), answerIds), targets), true, vars)!;
    const v = loss.dataSync()[0]!;
    loss.dispose();
    return v;
  };
  for (let i = 0; i < (opts.warmup ?? 2); i++) step();
  const steps = opts.steps ?? 5;
  const t0 = performance.now();
  let first = NaN;
  let last = NaN;
  for (let i = 0; i < steps; i++) {
    last = step();
    if (i === 0) first = last;
  }
  const ms = (performance.now() - t0) / steps;
  const trainableParams = vars.reduce((s, v) => s + v.size, 0);
  opt.dispose();
  ids.dispose();
  lora?.dispose();
  model.dispose();
  return { backend: tf.getBackend(), msPerStep: ms, firstLoss: first, lastLoss: last, trainableParams };
}
