import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateSamples, readSplitTable } from '../../../src/data/arrow.ts';
import { clampLength, cleanFrames, importMmsa, inferMmsaDataset } from '../../../src/data/importers/mmsa.ts';
import { REPO, runCli, tempDir } from '../../helpers.ts';

const DIR = join(REPO, 'test', 'fixtures', 'pickle');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8'));
const tmp = tempDir();
afterAll(() => tmp.cleanup());

interface SplitWant {
  ids: string[]; text: string[]; labels: number[]; labelsT?: number[]; labelsA?: number[]; labelsV?: number[];
  audioFrames: number[]; visionFrames: number[]; audioSums: number[]; visionSums: number[];
  cleaned: { audio: number; vision: number }; clamped: number;
}

function sum(a: Float32Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s;
}

function checkOutput(out: string, want: Record<string, SplitWant>, dims: [number, number]): void {
  expect(readdirSync(out).sort()).toEqual(['test.arrow', 'train.arrow', 'valid.arrow']);
  for (const [split, w] of Object.entries(want)) {
    const t = readSplitTable(join(out, `${split}.arrow`));
    expect(t.meta.cleaned).toEqual({ ...w.cleaned, total: w.cleaned.audio + w.cleaned.vision });
    expect(t.meta.extra?.clampedLengths).toBe(w.clamped);
    expect([t.meta.audioDim, t.meta.visionDim]).toEqual(dims);
    const rows = [...iterateSamples(t)];
    expect(rows.map((r) => r.id)).toEqual(w.ids);
    expect(rows.map((r) => r.text)).toEqual(w.text);
    rows.forEach((r, i) => {
      expect(r.split).toBe(split);
      expect(r.label).toBeCloseTo(w.labels[i]!, 6);
      if (w.labelsT) expect([r.labelT, r.labelA, r.labelV].map((x) => Number(x!.toFixed(4)))).toEqual([w.labelsT[i], w.labelsA![i], w.labelsV![i]].map((x) => Number(x!.toFixed(4))));
      else expect(r.labelT).toBeNull();
      expect(r.audio.length).toBe(w.audioFrames[i]! * dims[0]);
      expect(r.vision.length).toBe(w.visionFrames[i]! * dims[1]);
      expect(sum(r.audio)).toBeCloseTo(w.audioSums[i]!, 3);
      expect(sum(r.vision)).toBeCloseTo(w.visionSums[i]!, 3);
      expect(r.audio.every(Number.isFinite) && r.vision.every(Number.isFinite)).toBe(true);
    });
  }
}

function totals(want: Record<string, SplitWant>): { audio: number; vision: number } {
  const t = { audio: 0, vision: 0 };
  for (const w of Object.values(want)) {
    t.audio += w.cleaned.audio;
    t.vision += w.cleaned.vision;
  }
  return t;
}

describe('mmsa importer', () => {
  it('imports the MOSEI-shaped pickle through the CLI, printing the cleaned counts', () => {
    const out = join(tmp.path, 'mosei-cli');
    const r = runCli(['data', 'import', 'mmsa', '--input', join(DIR, 'mosei_unaligned_p4.pkl'), '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const c = totals(expected.mosei);
    expect(c.audio).toBeGreaterThan(0);
    expect(c.vision).toBeGreaterThan(0);
    expect(r.stdout).toContain(`imported mosei into ${out}: train 3, valid 2, test 2`);
    expect(r.stdout).toContain(`cleaned values (NaN/inf -> 0): audio ${c.audio}, vision ${c.vision}, total ${c.audio + c.vision}`);
    expect(r.stdout).toMatch(/note: test: 2 sequence length\(s\) of 0 or beyond the padding were clamped/);
    checkOutput(out, expected.mosei, [74, 35]);
    const meta = readSplitTable(join(out, 'train.arrow')).meta;
    expect(meta).toMatchObject({ dataset: 'mosei', language: 'en', labelRange: [-3, 3], hasUnimodalLabels: false });
  });

  for (const p of [2, 5]) {
    it(`imports the same MOSEI-shaped data written at protocol ${p}`, async () => {
      const out = join(tmp.path, `mosei${p}`);
      const report = await importMmsa({ input: join(DIR, `mosei_unaligned_p${p}.pkl`), out });
      const c = totals(expected.mosei);
      expect(report).toMatchObject({ dataset: 'mosei', splits: { train: 3, valid: 2, test: 2 }, cleaned: { ...c, total: c.audio + c.vision } });
      checkOutput(out, expected.mosei, [74, 35]);
    });
  }

  it('imports the SIMS-V2 pickle (Chinese text, unimodal labels, a Fortran-order split), inferring the dataset', async () => {
    const out = join(tmp.path, 'sims');
    const report = await importMmsa({ input: join(DIR, 'ch-simsv2s.pkl'), out });
    const c = totals(expected['sims-v2']);
    expect(report).toMatchObject({ dataset: 'sims-v2', splits: { train: 2, valid: 1, test: 2 }, cleaned: { ...c, total: c.audio + c.vision } });
    checkOutput(out, expected['sims-v2'], [25, 177]);
    expect(readSplitTable(join(out, 'valid.arrow')).meta).toMatchObject({ language: 'zh', labelRange: [-1, 1], hasUnimodalLabels: true });
  });

  it('fails through the CLI on a label outside the range, naming file, split and row, writing nothing', () => {
    const out = join(tmp.path, 'bad-cli');
    const file = join(DIR, 'mosei_badlabel.pkl');
    const r = runCli(['data', 'import', 'mmsa', '--input', file, '--out', out]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`error: ${file}, row 0, key 'valid.regression_labels': label 3.5 is outside the range [-3, 3]`);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });

  const bad: [string, string | undefined, RegExp][] = [
    ['mosei_nokey.pkl', undefined, /key 'test\.vision_lengths': missing key 'vision_lengths'/],
    ['mosei_complex.pkl', undefined, /key 'train\.audio': unsupported dtype 'c8' \(complex\).*0x52 REDUCE at byte \d+/],
    ['truncated.pkl', 'mosei', /key 'valid\.audio': truncated pickle: opcode 0x42 BINBYTES/],
    ['custom_class.pkl', 'mosei', /unsupported global 'my_lab_utils\.Custom'.*0x63 GLOBAL at byte 32/],
    // MOSEI labels are not SIMS labels: no silent clipping into [-1, 1].
    ['mosei_unaligned_p4.pkl', 'sims', /row 0, key 'train\.regression_labels': label -3 is outside the range \[-1, 1\]/],
  ];
  for (const [name, dataset, re] of bad) {
    it(`fails on ${name} (dataset ${dataset ?? 'inferred'}) naming the file and key, writing nothing`, async () => {
      const out = join(tmp.path, `bad-${name}-${dataset}`);
      const file = join(DIR, name);
      const err = await importMmsa({ input: file, out, dataset }).then(() => undefined, (e: Error) => e);
      expect(err?.message).toContain(file);
      expect(err?.message).toMatch(re);
      expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
    });
  }

  it('infers the dataset from the file name, folders or --language, and refuses to guess', () => {
    expect(inferMmsaDataset('/d/MOSEI/Processed/unaligned_50.pkl')).toBe('mosei');
    expect(inferMmsaDataset('/d/MOSI/Processed/unaligned_50.pkl')).toBe('mosi');
    expect(inferMmsaDataset('/d/ch-simsv2s.pkl')).toBe('sims-v2');
    expect(inferMmsaDataset('/d/SIMS/Processed/unaligned_39.pkl')).toBe('sims');
    expect(inferMmsaDataset('/d/data.pkl', undefined, 'zh')).toBe('sims-v2');
    expect(inferMmsaDataset('/d/ch-simsv2s.pkl', 'mosi')).toBe('mosi');
    expect(() => inferMmsaDataset('/d/data.pkl')).toThrow(/\/d\/data\.pkl, key 'dataset': cannot tell the dataset/);
    expect(() => inferMmsaDataset('/d/data.pkl', 'mosei', 'zh')).toThrow(/--language zh contradicts --dataset mosei/);
  });

  it('clamps lengths and cleans NaN/inf into a copy', () => {
    expect(clampLength(5, 8)).toEqual({ len: 5, clamped: false });
    expect(clampLength(12, 8)).toEqual({ len: 8, clamped: true });
    expect(clampLength(0, 8)).toEqual({ len: 0, clamped: true });
    const x = Float32Array.from([1, NaN, -Infinity, Infinity, 2]);
    const c = cleanFrames(x);
    expect(c.cleaned).toBe(3);
    expect(Array.from(c.values)).toEqual([1, 0, 0, 0, 2]);
    expect(Number.isNaN(x[1])).toBe(true);
  });
});
