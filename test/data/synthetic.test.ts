import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateSamples, readSplitTable } from '../../src/data/arrow.ts';
import type { AffectSample, StoredSample } from '../../src/data/schema.ts';
import {
  datasetShape, emotionWords, generateSynthetic, PRESETS, resolveKnobs, splitSamples, structureFor,
} from '../../src/data/synthetic/index.ts';
import type { PlannedSample, PresetName } from '../../src/data/synthetic/index.ts';
import { isEgmfError } from '../../src/errors.ts';
import { runCli, tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-synth-');
afterAll(() => tmp.cleanup());

const HAN = /\p{Script=Han}/u;

function readSplit(dir: string, split: string): { meta: ReturnType<typeof readSplitTable>['meta']; rows: StoredSample[] } {
  const t = readSplitTable(join(dir, `${split}.arrow`));
  return { meta: t.meta, rows: [...iterateSamples(t)] };
}

// ---- simple baselines: ridge regression on bag-of-words and on mean-pooled features ----

function tokens(text: string, zh: boolean): string[] {
  if (!zh) return text.toLowerCase().match(/[a-z]+/g) ?? [];
  return [...text].filter((c) => HAN.test(c));
}

function meanPool(x: Float32Array, dim: number): number[] {
  const out = new Array<number>(dim).fill(0);
  const n = x.length / dim;
  for (let f = 0; f < n; f++) for (let d = 0; d < dim; d++) out[d]! += x[f * dim + d]! / n;
  return out;
}

/** Ridge regression with a bias, solved by Gauss-Jordan; returns a predictor of all targets. */
function ridge(X: number[][], Y: number[][], lambda: number): (x: number[]) => number[] {
  const d = X[0]!.length + 1;
  const m = Y[0]!.length;
  const M = Array.from({ length: d }, () => new Float64Array(d + m));
  for (let i = 0; i < X.length; i++) {
    const x = [...X[i]!, 1];
    for (let a = 0; a < d; a++) {
      if (x[a] === 0) continue;
      const row = M[a]!;
      for (let b = 0; b < d; b++) row[b] += x[a]! * x[b]!;
      for (let k = 0; k < m; k++) row[d + k] += x[a]! * Y[i]![k]!;
    }
  }
  for (let a = 0; a < d; a++) M[a]![a] += a === d - 1 ? 1e-6 : lambda;
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    const piv = M[c]!;
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / piv[c]!;
      if (f !== 0) for (let k = c; k < d + m; k++) M[r]![k] -= f * piv[k]!;
    }
  }
  const W = M.map((row, i) => Array.from(row.subarray(d), (v) => v / row[i]!));
  return (x: number[]) => W[0]!.map((_, k) => [...x, 1].reduce((s, v, a) => s + v * W[a]![k]!, 0));
}

interface Scores { text: number; fused: number }

/** Valid-split score of text alone vs text + pooled audio/vision (accuracy, or MAE for regression). */
function baselines(name: PresetName, train: PlannedSample[], valid: PlannedSample[]): Scores {
  const p = PRESETS[name];
  const zh = p.language === 'zh';
  const vocab = new Map<string, number>();
  for (const { sample } of train) for (const t of tokens(sample.text, zh)) if (!vocab.has(t)) vocab.set(t, vocab.size);
  const bow = (s: AffectSample): number[] => {
    const v = new Array<number>(vocab.size).fill(0);
    for (const t of tokens(s.text, zh)) if (vocab.has(t)) v[vocab.get(t)!] = 1;
    return v;
  };
  const pooled = (s: AffectSample): number[] => [...meanPool(s.audio, p.audioDim), ...meanPool(s.vision, p.visionDim)];
  const F = train.map((t) => pooled(t.sample));
  const mu = F[0]!.map((_, j) => F.reduce((s, r) => s + r[j]!, 0) / F.length);
  const sd = F[0]!.map((_, j) => Math.sqrt(F.reduce((s, r) => s + (r[j]! - mu[j]!) ** 2, 0) / F.length) || 1);
  const fused = (s: AffectSample): number[] => [...bow(s), ...pooled(s).map((v, j) => (v - mu[j]!) / sd[j]!)];
  const K = p.task === 'classification' ? p.labelNames.length : 1;
  const target = (l: number): number[] => (K === 1 ? [l] : Array.from({ length: K }, (_, c) => (c === l ? 1 : 0)));
  const score = (rep: (s: AffectSample) => number[], lambda: number): number => {
    const f = ridge(train.map((t) => rep(t.sample)), train.map((t) => target(t.sample.label)), lambda);
    const preds = valid.map((v) => f(rep(v.sample)));
    if (K === 1) return preds.reduce((s, q, i) => s + Math.abs(q[0]! - valid[i]!.sample.label), 0) / valid.length;
    return preds.filter((q, i) => q.indexOf(Math.max(...q)) === valid[i]!.sample.label).length / valid.length;
  };
  return { text: score(bow, 1), fused: score(fused, 10) };
}

/** Per-sample statistic over frames for some dims: mean (trends) or max |x| (bursts). */
function bandStat(x: Float32Array, dim: number, from: number, to: number, kind: 'mean' | 'max'): number[] {
  const n = x.length / dim;
  const out: number[] = [];
  for (let d = from; d < to; d++) {
    let m = kind === 'mean' ? 0 : -Infinity;
    for (let f = 0; f < n; f++) m = kind === 'mean' ? m + x[f * dim + d]! / n : Math.max(m, Math.abs(x[f * dim + d]!));
    out.push(m);
  }
  return out;
}

/** Nearest-centroid accuracy of standardised features (no class priors: chance is 1/K). */
function centroidAccuracy(train: [number[], number][], test: [number[], number][]): number {
  const dims = train[0]![0].length;
  const mu = Array.from({ length: dims }, (_, j) => train.reduce((s, [f]) => s + f[j]!, 0) / train.length);
  const sd = mu.map((m, j) => Math.sqrt(train.reduce((s, [f]) => s + (f[j]! - m) ** 2, 0) / train.length) || 1);
  const z = (f: number[]) => f.map((v, j) => (v - mu[j]!) / sd[j]!);
  const sums = new Map<number, { sum: number[]; n: number }>();
  for (const [f, y] of train) {
    const g = sums.get(y) ?? { sum: new Array<number>(dims).fill(0), n: 0 };
    z(f).forEach((v, j) => (g.sum[j]! += v));
    g.n++;
    sums.set(y, g);
  }
  const cents = [...sums].map(([y, g]) => [y, g.sum.map((v) => v / g.n)] as const);
  const dist = (a: readonly number[], b: number[]) => a.reduce((s, v, j) => s + (v - b[j]!) ** 2, 0);
  return test.filter(([f, y]) => {
    const x = z(f);
    return cents.reduce((best, c) => (dist(c[1], x) < dist(best[1], x) ? c : best))[0] === y;
  }).length / test.length;
}

describe('synthetic benchmark: shape', () => {
  const out = join(tmp.path, 'shape');

  it('writes every preset with the real proportions, widths, languages and label sets', async () => {
    const report = await generateSynthetic({ preset: 'all', out, scale: 0.05 });
    expect(report.datasets.map((d) => d.dataset)).toEqual(['meld', 'cherma', 'mosei', 'sims-v2']);
    const widths: Record<string, [number, number]> = { meld: [64, 64], cherma: [64, 64], mosei: [74, 35], 'sims-v2': [25, 177] };
    for (const name of ['meld', 'cherma', 'mosei', 'sims-v2'] as const) {
      const p = PRESETS[name];
      const dir = join(out, name);
      expect(readdirSync(dir).sort()).toEqual(['test.arrow', 'train.arrow', 'valid.arrow']);
      const caps = datasetShape(name, resolveKnobs({ scale: 0.05 })).maxFrames;
      for (const split of ['train', 'valid', 'test'] as const) {
        const { meta, rows } = readSplit(dir, split);
        expect(rows.length).toBe(Math.round(p.splitSizes[split] * 0.05));
        expect([meta.audioDim, meta.visionDim]).toEqual(widths[name]);
        expect(meta.source).toBe('egmf synthetic generator');
        expect(meta.extra).toMatchObject({ generatorVersion: '1.0.0', seed: 1111, scale: 0.05, knobs: { conflictShare: 0.3, noise: 1 } });
        for (const r of rows) {
          expect(r.language).toBe(p.language);
          expect(HAN.test(r.text)).toBe(p.language === 'zh');
          if (p.language === 'zh') expect([...r.text].filter((c) => HAN.test(c)).length).toBeGreaterThan(r.text.length / 2);
          expect(r.audio.length % meta.audioDim).toBe(0);
          expect(r.vision.length % meta.visionDim).toBe(0);
          expect(r.audio.length / meta.audioDim).toBeLessThanOrEqual(caps.audio);
          expect(r.vision.length / meta.visionDim).toBeLessThanOrEqual(caps.vision);
          expect(r.audio.length).toBeGreaterThan(0);
        }
        if (p.task === 'classification') {
          expect(meta.labelNames).toEqual(p.labelNames);
          expect(meta.labelNamesEn).toEqual(p.labelNamesEn);
        } else {
          expect(meta.labelRange).toEqual(p.labelRange);
        }
      }
    }
    const cherma = readSplit(join(out, 'cherma'), 'train').meta;
    expect(cherma.labelNames).toEqual(['愤怒', '厌恶', '恐惧', '高兴', '平静', '悲伤', '惊奇']);
  });

  it('follows the class imbalance, with every class present in every split', () => {
    for (const name of ['meld', 'cherma'] as const) {
      const p = PRESETS[name];
      if (p.task !== 'classification') throw new Error('classification preset expected');
      const total = p.classWeights.reduce((a, b) => a + b, 0);
      for (const split of ['train', 'valid', 'test'] as const) {
        const { rows } = readSplit(join(out, name), split);
        const counts = p.classWeights.map((_, c) => rows.filter((r) => r.label === c).length);
        expect(Math.min(...counts)).toBeGreaterThanOrEqual(split === 'train' ? 3 : 1);
        if (split === 'train') {
          for (let c = 0; c < counts.length; c++) expect(Math.abs(counts[c]! / rows.length - p.classWeights[c]! / total)).toBeLessThan(0.01);
        }
      }
    }
    // MELD: neutral most frequent, then joy; fear and disgust rarest.
    const meld = readSplit(join(out, 'meld'), 'train').rows;
    const count = (c: number) => meld.filter((r) => r.label === c).length;
    expect(count(0)).toBeGreaterThan(count(4));
    expect(count(4)).toBeGreaterThan(count(1));
    expect(Math.max(count(2), count(5))).toBeLessThan(count(3));
  });

  it('draws regression labels on the annotation grid, with exact zeros and SIMS-V2 unimodal labels', () => {
    for (const [name, den, lim] of [['mosei', 3, 3], ['sims-v2', 5, 1]] as const) {
      const rows = readSplit(join(out, name), 'train').rows;
      for (const r of rows) {
        expect(Math.abs(r.label * den - Math.round(r.label * den))).toBeLessThan(1e-4);
        expect(Math.abs(r.label)).toBeLessThanOrEqual(lim);
        if (name === 'sims-v2') {
          for (const u of [r.labelT, r.labelA, r.labelV]) {
            expect(u).not.toBeNull();
            expect(Math.abs(u! * 5 - Math.round(u! * 5))).toBeLessThan(1e-4);
          }
        } else {
          expect(r.labelT).toBeNull();
        }
      }
      const zeros = rows.filter((r) => r.label === 0).length / rows.length;
      expect(zeros).toBeGreaterThan(0.05);
      expect(zeros).toBeLessThan(0.4);
      expect(new Set(rows.map((r) => Math.sign(r.label))).size).toBe(3);
    }
  });
});

describe('synthetic benchmark: known structure', () => {
  it('routes the configured share of samples through conflicting text', () => {
    const k = resolveKnobs({ conflictShare: 0.4, textOnlyShare: 0.2, jointShare: 0.5, contradictShare: 0.5, scale: 0.1 });
    const samples = [...splitSamples('meld', 'train', k)];
    const n = samples.length;
    const share = (pred: (s: PlannedSample) => boolean) => samples.filter(pred).length / n;
    expect(share((s) => s.plan.route.startsWith('conflict'))).toBeCloseTo(0.4, 2);
    expect(share((s) => s.plan.route === 'text-only')).toBeCloseTo(0.2, 2);
    expect(share((s) => s.plan.route === 'conflict-joint')).toBeCloseTo(0.2, 2);
    const p = PRESETS.meld;
    if (p.task !== 'classification') throw new Error('classification preset expected');
    const has = (text: string, c: number) => emotionWords('en', p.emotions[c]!).some((w) => new RegExp(`\\b${w}\\b`).test(text));
    for (const { sample, plan } of samples) {
      const emotional = p.emotions[sample.label] !== 'neutral';
      // Conflicting text never names the label's emotion; carrying text always does.
      if (plan.route.startsWith('conflict') && emotional) expect(has(sample.text, sample.label)).toBe(false);
      if (!plan.route.startsWith('conflict') && emotional) expect(has(sample.text, sample.label)).toBe(true);
    }
  });

  it('lets text + pooled audio/vision beat text alone on every preset (accuracy, MAE)', () => {
    const k = resolveKnobs({});
    const run = (name: PresetName, scale: number) => {
      const kk = { ...k, scale };
      return baselines(name, [...splitSamples(name, 'train', kk)], [...splitSamples(name, 'valid', kk)]);
    };
    const meld = run('meld', 0.12);
    console.log(`valid: MELD acc text ${meld.text.toFixed(3)} fused ${meld.fused.toFixed(3)}`);
    expect(meld.fused).toBeGreaterThan(meld.text + 0.08);
    const cherma = run('cherma', 0.06);
    console.log(`valid: CHERMA acc text ${cherma.text.toFixed(3)} fused ${cherma.fused.toFixed(3)}`);
    expect(cherma.fused).toBeGreaterThan(cherma.text + 0.08);
    const mosei = run('mosei', 0.1);
    console.log(`valid: MOSEI MAE text ${mosei.text.toFixed(3)} fused ${mosei.fused.toFixed(3)}`);
    expect(mosei.fused).toBeLessThan(mosei.text - 0.1);
    const sims = run('sims-v2', 0.3);
    console.log(`valid: SIMS-V2 MAE text ${sims.text.toFixed(3)} fused ${sims.fused.toFixed(3)}`);
    expect(sims.fused).toBeLessThan(sims.text - 0.04);
  });

  it('puts the label in the trend and burst bands and nothing in the rest (MELD, audio/vision routes)', () => {
    const k = resolveKnobs({ scale: 0.12 });
    const st = structureFor('meld', datasetShape('meld', k));
    const carried = (split: 'train' | 'valid' | 'test') => [...splitSamples('meld', split, k)]
      .filter((s) => s.plan.route === 'aligned' || s.plan.route === 'conflict-av').map((s) => s.sample);
    const train = carried('train');
    const held = [...carried('valid'), ...carried('test')];
    const bands = {
      trend: (s: AffectSample) => [...bandStat(s.audio, 64, 0, st.audio.trendDims, 'mean'), ...bandStat(s.vision, 64, 0, st.vision.trendDims, 'mean')],
      burst: (s: AffectSample) => [
        ...bandStat(s.audio, 64, st.audio.burstStart, st.audio.burstStart + st.audio.burstDims, 'max'),
        ...bandStat(s.vision, 64, st.vision.burstStart, st.vision.burstStart + st.vision.burstDims, 'max'),
      ],
      rest: (s: AffectSample) => [
        ...bandStat(s.audio, 64, st.audio.burstStart + st.audio.burstDims, 64, 'mean'),
        ...bandStat(s.vision, 64, st.vision.burstStart + st.vision.burstDims, 64, 'mean'),
      ],
    };
    const acc = Object.fromEntries(Object.entries(bands).map(([name, f]) => [name, centroidAccuracy(
      train.map((s) => [f(s), s.label]), held.map((s) => [f(s), s.label]),
    )]));
    console.log(`MELD nearest-centroid accuracy by band: ${JSON.stringify(acc)}`);
    expect(acc.trend).toBeGreaterThan(0.6);
    expect(acc.burst).toBeGreaterThan(0.45);
    expect(acc.rest).toBeLessThan(0.25);
  });

  it('carries the joint-route label only in audio-vision synchrony', () => {
    const k = resolveKnobs({ scale: 0.12 });
    const st = structureFor('meld', datasetShape('meld', k));
    const joint = (['train', 'valid', 'test'] as const).flatMap((s) => [...splitSamples('meld', s, k)])
      .filter((s) => s.plan.route === 'conflict-joint');
    expect(joint.length).toBeGreaterThan(100);
    // Matched filter per pattern, frame by frame.
    const response = (x: Float32Array, dim: number, pat: { dims: number[]; weights: number[] }): number[] => {
      const n = x.length / dim;
      const r = Array.from({ length: n }, (_, f) => pat.dims.reduce((s, d, i) => s + x[f * dim + d]! * pat.weights[i]!, 0));
      // Integrate over about one burst length (5% of the sequence).
      const w = Math.max(2, Math.round(0.05 * n));
      return r.map((_, f) => r.slice(f, f + w).reduce((a, b) => a + b, 0) / Math.sqrt(Math.min(w, n - f)));
    };
    let sync = 0;
    let audioOnly = 0;
    for (const { sample } of joint) {
      const scores = st.audio.patterns.map((pa, c) => {
        const ra = response(sample.audio, 64, pa);
        const rv = response(sample.vision, 64, st.vision.patterns[c]!);
        const la = ra.length;
        const lv = rv.length;
        // Best sum of the two modalities' responses at the same normalised time.
        let best = -Infinity;
        for (let g = 0; g < lv; g++) {
          const lo = Math.max(0, Math.floor(((g - 1) * la) / lv));
          const hi = Math.min(la, Math.ceil(((g + 2) * la) / lv));
          best = Math.max(best, Math.max(...ra.slice(lo, hi)) + rv[g]!);
        }
        return { sync: best, audio: Math.max(...ra) };
      });
      const arg = (key: 'sync' | 'audio') => scores.map((s) => s[key]).indexOf(Math.max(...scores.map((s) => s[key])));
      if (arg('sync') === sample.label) sync++;
      if (arg('audio') === sample.label) audioOnly++;
    }
    console.log(`joint route: sync oracle ${(sync / joint.length).toFixed(3)}, audio-only ${(audioOnly / joint.length).toFixed(3)}`);
    expect(sync / joint.length).toBeGreaterThan(0.65);
    // Alone, audio shows the distractor as strongly as the label: about a coin flip at best.
    expect(audioOnly / joint.length).toBeLessThan(0.55);
  });
});

describe('synthetic benchmark: determinism and errors', () => {
  it('writes byte-identical files for the same seed and different ones for another seed', async () => {
    const gen = (dir: string, seed: number) => generateSynthetic({ preset: 'all', out: join(tmp.path, dir), scale: 0.01, seed });
    await gen('a', 7);
    await gen('b', 7);
    await gen('c', 8);
    for (const name of ['meld', 'cherma', 'mosei', 'sims-v2']) {
      for (const split of ['train', 'valid', 'test']) {
        const f = (d: string) => readFileSync(join(tmp.path, d, name, `${split}.arrow`));
        expect(f('a').equals(f('b'))).toBe(true);
        expect(f('a').equals(f('c'))).toBe(false);
      }
    }
  });

  it('honours width and length overrides', async () => {
    const out = join(tmp.path, 'wide');
    await generateSynthetic({ preset: 'cherma', out, scale: 0.01, audioDim: 1024, visionDim: 2048, maxAudioFrames: 12, maxVisionFrames: 4 });
    const { meta, rows } = readSplit(join(out, 'cherma'), 'valid');
    expect([meta.audioDim, meta.visionDim]).toEqual([1024, 2048]);
    for (const r of rows) {
      expect(r.audio.length / 1024).toBeLessThanOrEqual(12);
      expect(r.vision.length / 2048).toBeLessThanOrEqual(4);
    }
  });

  it('rejects bad knobs naming the option, before writing anything', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ preset: 'meld', scale: -1 }, 'scale'],
      [{ preset: 'iemocap' }, 'preset'],
      [{ preset: 'meld', conflictShare: 1.5 }, 'conflict-share'],
      [{ preset: 'meld', textOnlyShare: -0.1 }, 'text-only-share'],
      [{ preset: 'meld', textOnlyShare: 0.6, conflictShare: 0.6 }, 'conflict-share'],
      [{ preset: 'meld', missingFrames: 0.95 }, 'missing-frames'],
      [{ preset: 'meld', seed: 1.5 }, 'seed'],
    ];
    for (const [opts, key] of cases) {
      const out = join(tmp.path, `bad-${key}`);
      const err = await generateSynthetic({ out, ...opts } as Parameters<typeof generateSynthetic>[0]).catch((e: unknown) => e);
      expect(isEgmfError(err)).toBe(true);
      expect((err as Error).message).toContain(`'${key}'`);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('refuses an output path that is a file', async () => {
    const file = join(tmp.path, 'not-a-folder');
    writeFileSync(file, 'x');
    const err = await generateSynthetic({ preset: 'meld', out: file }).catch((e: unknown) => e);
    expect(isEgmfError(err)).toBe(true);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain("'out'");
    expect(readFileSync(file, 'utf8')).toBe('x');
  });

  it('runs from the command line with a JSON report, and fails cleanly on bad options', () => {
    const out = join(tmp.path, 'cli');
    const ok = runCli(['data', 'generate', '--preset', 'sims-v2', '--scale', '0.02', '--seed', '3', '--noise', '0.5', '--out', out, '--json']);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const report = JSON.parse(ok.stdout) as { datasets: { dataset: string; splits: Record<string, number> }[]; knobs: { seed: number; noise: number } };
    expect(report.datasets[0]!.splits).toEqual({ train: 54, valid: 13, test: 21 });
    expect(report.knobs).toMatchObject({ seed: 3, noise: 0.5 });
    expect(readSplit(join(out, 'sims-v2'), 'test').meta.extra).toMatchObject({ seed: 3, knobs: { noise: 0.5 } });
    const bad = runCli(['data', 'generate', '--preset', 'meld', '--scale', '-1', '--out', join(tmp.path, 'cli-bad')]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain("'scale'");
    expect(existsSync(join(tmp.path, 'cli-bad'))).toBe(false);
  });
});
