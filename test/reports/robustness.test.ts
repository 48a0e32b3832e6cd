/**
 * Robustness engine: perturbations (parsing, names, text edits on fixed English and Chinese
 * strings), evaluation of a tiny trained synthetic-MELD run under them, curves, confidence
 * intervals, label maps and transfer to tiny synthetic CHERMA / SIMS-V2 folders (the
 * MOSEI → SIMS-V2 run goes through the LLM head).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadExperiment } from '../../src/config/experiment.ts';
import { generateSynthetic } from '../../src/data/synthetic/index.ts';
import type { DatasetMeta } from '../../src/data/schema.ts';
import { CPED_EMOTIONS, CPED_EMOTIONS_ZH } from '../../src/data/importers/cped.ts';
import { EgmfError } from '../../src/errors.ts';
import { evaluate } from '../../src/train/evaluate.ts';
import { trainExperiment } from '../../src/train/trainer.ts';
import type { TrainResult } from '../../src/train/trainer.ts';
import {
  batchTransform, bootstrapCI, describePerturbation, emotionLabelMap, evaluatePerturbed, featureStd, formatPerturbation, loadRun, metricFn,
  openTarget, parsePerturbation, perturbText, rescaleSentiment, robustnessCurve, seedCI, studentTQuantile, trapezoidAuc,
} from '../../src/reports/robustness.ts';
import type { LoadedRun, Perturbation } from '../../src/reports/robustness.ts';
import type { Batch } from '../../src/data/loader.ts';
import { REPO, errorOf, setEnv, tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-robust-');
const TINY = ['data.scale=0.03', 'data.limit_train=64', 'train.epochs=1', 'train.batch_size=16', 'llm.pretrain_steps=20', 'backend=wasm'];
// The MELD run must read audio and vision, which the LLM path does only after hundreds of
// steps: the fusion network with its linear head does within 3 epochs of the 300 training
// samples (test weighted F1 ~0.65 against the majority class's 0.31).
const MELD = [...TINY, 'data.limit_train=300', 'train.epochs=3', 'model.head=linear', 'train.lr=0.01'];
const EN = 'Honestly, my sister is shocked about the wedding plans.';
const ZH = '老师看到那封邮件时悲痛万分。';

let restoreEnv: () => void = () => undefined;
let run: LoadedRun;
let trained: TrainResult;
let gen: string;

async function trainRun(config: string, sets: string[], dir: string): Promise<TrainResult> {
  const cfg = loadExperiment(join(REPO, 'experiments', 'synthetic', config), sets);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
  return trainExperiment(cfg, { outDir: dir, tracking: null });
}

beforeAll(async () => {
  restoreEnv = setEnv({ EGMF_CACHE: join(tmp.path, 'cache') });
  trained = await trainRun('meld.yaml', MELD, join(tmp.path, 'meld'));
  run = await loadRun(join(tmp.path, 'meld'));
  gen = join(tmp.path, 'gen');
  await generateSynthetic({ preset: 'cherma', out: gen, scale: 0.005 });
  await generateSynthetic({ preset: 'mosei', out: gen, scale: 0.005 });
  await generateSynthetic({ preset: 'sims-v2', out: gen, scale: 0.02 });
});
afterAll(() => {
  run?.dispose();
  restoreEnv();
  tmp.cleanup();
});

function expectEgmfError(fn: () => unknown, ...patterns: RegExp[]): void {
  const e = errorOf(fn);
  expect(e).toBeInstanceOf(EgmfError);
  for (const p of patterns) expect(e.message).toMatch(p);
}

describe('perturbation specs', () => {
  it('parses the allowed forms, names them and formats them back', () => {
    const cases: [string, Perturbation, string][] = [
      ['none', { kind: 'none' }, 'none'],
      ['drop:audio,vision', { kind: 'drop', modalities: ['audio', 'vision'] }, 'drop audio+vision'],
      ['drop:vision,text', { kind: 'drop', modalities: ['text', 'vision'] }, 'drop text+vision'],
      ['noise:audio:0.5', { kind: 'feature_noise', modality: 'audio', sigma: 0.5 }, 'audio noise σ=0.5'],
      ['token_dropout:0.2', { kind: 'token_dropout', rate: 0.2 }, 'token dropout 20%'],
      ['word_shuffle:0.3', { kind: 'word_shuffle', rate: 0.3 }, 'word shuffle 30%'],
      ['char_noise:0.07', { kind: 'char_noise', rate: 0.07 }, 'char noise 7%'],
    ];
    for (const [s, p, name] of cases) {
      expect(parsePerturbation(s)).toEqual(p);
      expect(describePerturbation(p)).toBe(name);
      expect(parsePerturbation(formatPerturbation(p))).toEqual(p);
    }
  });

  it('rejects bad input naming the string and the allowed forms', () => {
    for (const s of ['', 'blur:0.1', 'none:1', 'drop', 'drop:', 'drop:smell', 'drop:audio,audio', 'noise:text:0.5', 'noise:audio', 'noise:audio:-1', 'noise:audio:x',
      'token_dropout', 'token_dropout:1.5', 'word_shuffle:-0.1', 'char_noise:abc', 'char_noise:0.1:2']) {
      expectEgmfError(() => parsePerturbation(s), new RegExp(`bad perturbation '${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'`), /allowed forms: none, drop:/);
    }
    expectEgmfError(() => parsePerturbation('drop:smell'), /unknown modality 'smell'/);
    expectEgmfError(() => parsePerturbation('token_dropout:1.5'), /rate must be a number in \[0, 1\]/);
  });
});

describe('text perturbations', () => {
  const p = (s: string) => parsePerturbation(s);
  const words = (s: string) => s.split(/\s+/).filter((w) => w.length > 0);

  it('rate 0 is the identity, and the same key gives the same text', () => {
    for (const kind of ['token_dropout', 'word_shuffle', 'char_noise']) {
      for (const text of [EN, ZH, '']) {
        expect(perturbText(text, p(`${kind}:0`), 'k')).toBe(text);
        expect(perturbText(text, p(`${kind}:0.4`), 'k')).toBe(perturbText(text, p(`${kind}:0.4`), 'k'));
      }
      expect(perturbText(EN, p(`${kind}:0.5`), 'a')).not.toBe(EN);
      expect(perturbText(ZH, p(`${kind}:0.5`), 'a')).not.toBe(ZH);
    }
    expect(perturbText(EN, p('drop:text'), 'k')).toBe('');
    expect(perturbText(EN, p('drop:audio'), 'k')).toBe(EN);
    expect(perturbText(EN, p('noise:audio:1'), 'k')).toBe(EN);
  });

  it('token dropout drops whole words (English) or characters (Chinese); rate 1 leaves nothing', () => {
    expect(perturbText(EN, p('token_dropout:1'), 'k')).toBe('');
    expect(perturbText(ZH, p('token_dropout:1'), 'k')).toBe('');
    const en = words(perturbText(EN, p('token_dropout:0.5'), 'k'));
    const all = words(EN);
    expect(en.length).toBeLessThan(all.length);
    // The kept words are the original words, in order.
    let at = 0;
    for (const w of en) {
      at = all.indexOf(w, at);
      expect(at).toBeGreaterThanOrEqual(0);
      at++;
    }
    const zh = [...perturbText(ZH, p('token_dropout:0.5'), 'k')];
    expect(zh.length).toBeLessThan([...ZH].length);
    expect(zh.every((c) => ZH.includes(c))).toBe(true);
  });

  it('word shuffle permutes round(rate × n) positions and keeps the multiset', () => {
    const sorted = (xs: string[]) => [...xs].sort();
    for (const key of ['a', 'b', 'c']) {
      const en = words(perturbText(EN, p('word_shuffle:1'), key));
      expect(sorted(en)).toEqual(sorted(words(EN)));
      // rate 1: every position takes another word.
      expect(en.filter((w, i) => w === words(EN)[i]).length).toBe(0);
      const half = words(perturbText(EN, p('word_shuffle:0.5'), key));
      expect(half.filter((w, i) => w !== words(EN)[i]).length).toBe(Math.round(0.5 * words(EN).length));
      const zh = [...perturbText(ZH, p('word_shuffle:0.3'), key)];
      expect(sorted(zh)).toEqual(sorted([...ZH]));
      expect(zh.filter((c, i) => c !== [...ZH][i]).length).toBe(Math.round(0.3 * [...ZH].length));
    }
    // A single word cannot be shuffled.
    expect(perturbText('hello', p('word_shuffle:1'), 'k')).toBe('hello');
  });

  it('char noise edits characters from the text\'s own set: Chinese stays Chinese', () => {
    for (const key of ['a', 'b']) {
      const zh = perturbText(ZH, p('char_noise:0.5'), key);
      expect(zh).not.toBe(ZH);
      expect([...zh].every((c) => ZH.includes(c))).toBe(true);
      const en = perturbText(EN, p('char_noise:1'), key);
      expect(en).not.toBe(EN);
      expect([...en].every((c) => EN.includes(c))).toBe(true);
    }
    // Low rates leave most of the text alone.
    const light = perturbText(EN, p('char_noise:0.05'), 'k');
    expect(Math.abs(light.length - EN.length)).toBeLessThanOrEqual(5);
  });
});

describe('evaluatePerturbed on a trained synthetic MELD run', () => {
  it("'none' reproduces evaluate() and the training run's test metrics exactly", () => {
    const r = evaluatePerturbed(run, { kind: 'none' });
    const e = evaluate(run.setup.model, run.setup.loaders.test!, run.setup.meta);
    expect(r.metrics).toEqual(e.metrics);
    expect(r.metrics).toEqual(trained.test);
    expect(r.gates).toEqual(e.gates);
    expect(r.predictions).toEqual(e.predictions.map(({ id, truth, pred }) => ({ id, truth, pred })));
    expect(r.n).toBe(run.setup.loaders.test!.size);
    expect(r.perturbation).toBe('none');
    // Per-class gate means: every class present in the split, weights of each level summing to 1.
    const classes = new Set(r.predictions.map((x) => run.setup.meta.labelNamesEn![x.truth]!));
    expect(new Set(Object.keys(r.gatesByClass!))).toEqual(classes);
    for (const g of Object.values(r.gatesByClass!)) {
      const expert = Object.entries(g).filter(([k]) => k.startsWith('gate/expert/')).reduce((s, [, v]) => s + v, 0);
      expect(expert).toBeCloseTo(1, 5);
    }
    // The valid split too.
    const v = evaluatePerturbed(run, { kind: 'none' }, { split: 'valid' });
    expect(v.metrics).toEqual(evaluate(run.setup.model, run.setup.loaders.valid!, run.setup.meta).metrics);
  });

  it('dropping audio+vision changes predictions; the model copes with no frames at all', () => {
    const none = evaluatePerturbed(run, { kind: 'none' });
    const drop = evaluatePerturbed(run, parsePerturbation('drop:audio,vision'));
    expect(drop.n).toBe(none.n);
    expect(drop.predictions.every((x) => x.pred !== null && Number.isInteger(x.pred))).toBe(true);
    const changed = drop.predictions.filter((x, i) => x.pred !== none.predictions[i]!.pred).length;
    expect(changed).toBeGreaterThan(0);
    expect(Object.values(drop.gates).every(Number.isFinite)).toBe(true);
    expect(drop.gates).not.toEqual(none.gates);
    const all = evaluatePerturbed(run, parsePerturbation('drop:text,audio,vision'), { limit: 16 });
    expect(all.predictions.every((x) => x.pred !== null)).toBe(true);
  });

  it('feature noise: σ 0 is the identity; σ > 0 is deterministic per seed', () => {
    const none = evaluatePerturbed(run, { kind: 'none' }, { limit: 16 });
    expect(evaluatePerturbed(run, parsePerturbation('noise:audio:0'), { limit: 16 }).predictions).toEqual(none.predictions);
    const std = featureStd(run.setup.loaders.test!, 'audio');
    expect(std.length).toBe(run.setup.meta.audioDim);
    expect(std.every((s) => Number.isFinite(s) && s >= 0)).toBe(true);
    expect(std.some((s) => s > 0)).toBe(true);
    const a = evaluatePerturbed(run, parsePerturbation('noise:vision:3'), { limit: 16, seed: 5 });
    const b = evaluatePerturbed(run, parsePerturbation('noise:vision:3'), { limit: 16, seed: 5 });
    expect(a.predictions).toEqual(b.predictions);
    expect(a.gates).toEqual(b.gates);
    const c = evaluatePerturbed(run, parsePerturbation('noise:vision:3'), { limit: 16, seed: 6 });
    expect(c.gates).not.toEqual(a.gates);
  });

  it('text perturbations are deterministic for a seed', () => {
    const a = evaluatePerturbed(run, parsePerturbation('token_dropout:0.5'), { limit: 16, seed: 1 });
    const b = evaluatePerturbed(run, parsePerturbation('token_dropout:0.5'), { limit: 16, seed: 1 });
    expect(a).toEqual(b);
    expect(a.n).toBe(16);
  });

  it('a dialogue context is text: removed with the text, perturbed like it (each utterance on its own key)', () => {
    const b = { size: 2, ids: ['a', 'b'], texts: ['so what now', 'fine'], contexts: [['hello there my friend', 'this is terrible news'], []] } as unknown as Batch;
    const loader = run.setup.loaders.valid!;
    const dropped = batchTransform(parsePerturbation('drop:text'), 1, loader)!(b);
    expect(dropped.texts).toEqual(['', '']);
    expect(dropped.contexts).toEqual([[], []]);
    const gone = batchTransform(parsePerturbation('token_dropout:1'), 1, loader)!(b);
    expect(gone.contexts).toEqual([['', ''], []]);
    const some = batchTransform(parsePerturbation('word_shuffle:1'), 1, loader)!(b);
    expect(some.contexts![0]!.map((t) => t.split(' ').sort())).toEqual(b.contexts![0]!.map((t) => t.split(' ').sort()));
    expect(some.contexts![0]).not.toEqual(b.contexts![0]);
    expect(batchTransform(parsePerturbation('drop:text'), 1, loader)!({ ...b, contexts: undefined }).contexts).toBeUndefined();
  });

  it('robustnessCurve: the primary metric per level and its trapezoid area', () => {
    expect(trapezoidAuc([0, 0.1, 0.3], [1, 0.8, 0.4])).toBeCloseTo(0.7, 12); // x → [0, 1/3, 1]: 1/3 · 0.9 + 2/3 · 0.6
    expect(trapezoidAuc([5], [0.3])).toBe(0.3);
    expectEgmfError(() => trapezoidAuc([0, 0.5, 0.5], [1, 1, 1]), /strictly increasing/);
    const c = robustnessCurve(run, (x) => ({ kind: 'token_dropout', rate: x }), [0, 0.5, 1], { limit: 16 });
    expect(c.metric).toBe('weighted_f1');
    expect(c.values[0]).toBe(evaluatePerturbed(run, { kind: 'none' }, { limit: 16 }).metrics.weighted_f1);
    const [v0, v1, v2] = c.values as [number, number, number];
    expect(c.auc).toBeCloseTo(0.5 * (v0 + v1) / 2 + 0.5 * (v1 + v2) / 2, 12);
  });

  it('loadRun errors name the missing file', async () => {
    const empty = join(tmp.path, 'empty');
    mkdirSync(empty, { recursive: true });
    await expect(loadRun(empty)).rejects.toThrow(/empty: no checkpoint here/);
    const noCfg = join(tmp.path, 'nocfg', 'checkpoints', 'best');
    mkdirSync(noCfg, { recursive: true });
    writeFileSync(join(noCfg, 'state.json'), '{}');
    await expect(loadRun(join(tmp.path, 'nocfg'))).rejects.toThrow(/nocfg\/config\.json: the run folder has no config\.json/);
  });
});

describe('confidence intervals', () => {
  const acc = (p: number[], t: number[]) => p.filter((x, i) => x === t[i]).length / p.length;

  it('bootstrapCI brackets the point value and is deterministic', () => {
    const preds = Array.from({ length: 60 }, (_, i) => ({ truth: i % 3, pred: i % 4 === 0 ? (i + 1) % 3 : i % 3 }));
    const a = bootstrapCI([...preds, { truth: 1, pred: null }], acc, { seed: 3 });
    expect(a.value).toBeCloseTo(45 / 60, 12);
    expect(a.lo).toBeLessThan(a.value);
    expect(a.hi).toBeGreaterThan(a.value);
    expect(bootstrapCI(preds, acc, { seed: 3 })).toEqual(a);
    expect(bootstrapCI(preds, acc, { seed: 4 })).not.toEqual(a);
    const wide = bootstrapCI(preds, acc, { seed: 3, level: 0.99 });
    expect(wide.lo).toBeLessThanOrEqual(a.lo);
    expect(wide.hi).toBeGreaterThanOrEqual(a.hi);
    // On the run's own test predictions with its metric.
    const r = evaluatePerturbed(run, { kind: 'none' });
    const ci = bootstrapCI(r.predictions, metricFn(run.setup.meta, 'acc'), { resamples: 200 });
    expect(ci.value).toBe(r.metrics.acc);
    expect(ci.lo).toBeLessThanOrEqual(ci.value);
    expect(ci.hi).toBeGreaterThanOrEqual(ci.value);
    expectEgmfError(() => bootstrapCI([{ truth: 0, pred: null }], acc), /no parsed predictions/);
  });

  it('seedCI uses Student t with n − 1 degrees of freedom', () => {
    const known: [number, number][] = [[1, 12.706], [2, 4.303], [4, 2.776], [9, 2.262], [29, 2.045], [100, 1.984]];
    for (const [df, t] of known) expect(studentTQuantile(0.975, df)).toBeCloseTo(t, 3);
    expect(studentTQuantile(0.995, 4)).toBeCloseTo(4.604, 3);
    expect(studentTQuantile(0.025, 4)).toBeCloseTo(-2.776, 3);
    const ci = seedCI([1, 2, 3, 4, 5]);
    const h = 2.776445 * Math.sqrt(2.5) / Math.sqrt(5);
    expect(ci.mean).toBe(3);
    expect(ci.n).toBe(5);
    expect(ci.lo).toBeCloseTo(3 - h, 4);
    expect(ci.hi).toBeCloseTo(3 + h, 4);
    const one = seedCI([0.5]);
    expect(one.mean).toBe(0.5);
    expect(Number.isNaN(one.lo) && Number.isNaN(one.hi)).toBe(true);
    expectEgmfError(() => seedCI([]), /no values/);
  });
});

describe('label spaces and transfer', () => {
  const cped: DatasetMeta = {
    schemaVersion: 1, dataset: 'cped', language: 'zh', task: 'classification', labelNames: [...CPED_EMOTIONS_ZH], labelNamesEn: [...CPED_EMOTIONS],
    audioDim: 0, visionDim: 0, textOnly: true, hasUnimodalLabels: false, source: 'test', license: 'test',
  };

  it('emotionLabelMap MELD → CHERMA is a permutation by meaning', () => {
    const cherma = openTarget(run, join(gen, 'cherma')).meta;
    const meld = run.setup.meta;
    const map = emotionLabelMap(meld, cherma);
    expect([...map].sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const at = (name: string) => cherma.labelNames![map[meld.labelNames!.indexOf(name)]!];
    expect(at('neutral')).toBe('平静');
    expect(at('joy')).toBe('高兴');
    expect(at('sadness')).toBe('悲伤');
    expect(at('surprise')).toBe('惊奇');
    expect(at('anger')).toBe('愤怒');
    const back = emotionLabelMap(cherma, meld);
    map.forEach((t, s) => expect(back[t]).toBe(s));
    // MELD's seven all exist in CPED; CPED's thirteen do not all exist in MELD.
    const toCped = emotionLabelMap(meld, cped);
    expect(cped.labelNamesEn![toCped[meld.labelNames!.indexOf('surprise')]!]).toBe('astonished');
    expectEgmfError(() => emotionLabelMap(cped, meld), /no full emotion mapping from cped to meld/, /沮丧 \(depress\)/, /感激 \(grateful\)/);
  });

  it('MELD → CHERMA: predictions mapped into CHERMA\'s labels, scored with its metrics', () => {
    const target = openTarget(run, join(gen, 'cherma'));
    const r = evaluatePerturbed(run, { kind: 'none' }, { target });
    expect(r.n).toBe(target.loader.size);
    expect(Object.keys(r.metrics)).toEqual(expect.arrayContaining(['weighted_f1', 'f1_happy', 'f1_neutral']));
    const raw = evaluate(run.setup.model, target.loader, run.setup.meta);
    const map = emotionLabelMap(run.setup.meta, target.meta);
    expect(r.predictions.map((x) => x.pred)).toEqual(raw.predictions.map((x) => (x.pred === null ? null : map[x.pred]!)));
    expect(Object.keys(r.gatesByClass!).every((k) => target.meta.labelNamesEn!.includes(k))).toBe(true);
    const bad = errorOf(() => evaluatePerturbed(run, { kind: 'none' }, { target: { ...target, labelMap: [0, 1] } }));
    expect(bad.message).toMatch(/labelMap must give each of meld's 7 classes/);
  });

  it('feature widths that differ are a clear error naming both datasets', () => {
    const target = openTarget(run, join(gen, 'mosei'));
    expectEgmfError(() => evaluatePerturbed(run, { kind: 'none' }, { target }),
      /cannot evaluate the meld model on mosei: feature widths differ \(meld audio×vision 64×64, mosei 74×35; audio 64 vs 74, vision 64 vs 35\)/, /model\.modalities=\[text\]/);
    expectEgmfError(() => openTarget(run, join(gen, 'nowhere')), /nowhere\/test\.arrow: no test split/);
  });

  it('rescaleSentiment maps ranges linearly', () => {
    expect(rescaleSentiment(3, [-3, 3], [-1, 1])).toBe(1);
    expect(rescaleSentiment(-1.5, [-3, 3], [-1, 1])).toBe(-0.5);
    expect(rescaleSentiment(0.2, [-1, 1], [-3, 3])).toBeCloseTo(0.6, 12);
    expect(rescaleSentiment(0.5, [0, 1], [1, 5])).toBe(3);
    expectEgmfError(() => rescaleSentiment(0, [1, -1], [0, 1]), /min < max/);
  });

  it('a text-only MOSEI model transfers to SIMS-V2 with rescaled scores', async () => {
    const dir = join(tmp.path, 'mosei-text');
    await trainRun('mosei.yaml', [...TINY, 'data.limit_train=32', 'model.modalities=[text]', 'model.experts.semantic.enabled=false'], dir);
    const mosei = await loadRun(dir);
    try {
      const target = openTarget(mosei, join(gen, 'sims-v2'));
      expect(target.meta.audioDim).not.toBe(mosei.setup.meta.audioDim);
      const r = evaluatePerturbed(mosei, { kind: 'none' }, { target, limit: 16 });
      expect(Object.keys(r.metrics)).toEqual(expect.arrayContaining(['Mult_acc_2', 'MAE', 'Corr']));
      const raw = evaluate(mosei.setup.model, target.loader, mosei.setup.meta, { limit: 16 });
      r.predictions.forEach((x, i) => {
        const v = raw.predictions[i]!.pred;
        if (v === null) expect(x.pred).toBeNull();
        else expect(x.pred!).toBeCloseTo(v / 3, 12);
      });
      expect(r.predictions.every((x) => x.pred === null || (x.pred >= -1 && x.pred <= 1))).toBe(true);
      expect(r.gatesByClass).toBeUndefined();
      // Text perturbations work in Chinese through the English model too.
      const d = evaluatePerturbed(mosei, parsePerturbation('char_noise:0.3'), { target, limit: 16 });
      expect(d.n).toBe(r.n);
    } finally {
      mosei.dispose();
    }
  });
});
