import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateSamples, readSplitTable } from '../../../src/data/arrow.ts';
import { importMseAdapter, MELD_LABELS } from '../../../src/data/importers/mse-adapter.ts';
import { REPO, runCli, tempDir } from '../../helpers.ts';

const DIR = join(REPO, 'test', 'fixtures', 'pickle');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')).meld;
const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('mse-adapter importer', () => {
  it('imports MSE-Adapter MELD pickles (dev file as the valid split), cutting padding and cleaning NaN/inf', () => {
    const out = join(tmp.path, 'meld');
    const r = runCli(['data', 'import', 'mse-adapter', '--input', join(DIR, 'mse_meld'), '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('imported meld');
    expect(r.stdout).toContain('cleaned values (NaN/inf -> 0): audio 1, vision 1, total 2');
    expect(readdirSync(out).sort()).toEqual(['test.arrow', 'train.arrow', 'valid.arrow']);
    for (const split of ['train', 'valid', 'test']) {
      const want = expected[split];
      const t = readSplitTable(join(out, `${split}.arrow`));
      expect(t.meta).toMatchObject({ dataset: 'meld', language: 'en', task: 'classification', labelNames: MELD_LABELS, audioDim: 64, visionDim: 64 });
      expect(t.meta.cleaned).toEqual({ ...want.cleaned, total: want.cleaned.audio + want.cleaned.vision });
      const rows = [...iterateSamples(t)];
      expect(rows.map((s) => s.text)).toEqual(want.text);
      expect(rows.map((s) => s.label)).toEqual(want.labels);
      expect(rows.map((s) => s.audio.length / 64)).toEqual(want.audioFrames);
      expect(rows.map((s) => s.vision.length / 64)).toEqual(want.visionFrames);
      rows.forEach((s, i) => {
        expect(s.audio.reduce((a, b) => a + b, 0)).toBeCloseTo(want.audioSums[i], 3);
        expect(s.vision.reduce((a, b) => a + b, 0)).toBeCloseTo(want.visionSums[i], 3);
      });
    }
  });

  it('fails on an unknown label naming the file and row, writing nothing', async () => {
    const out = join(tmp.path, 'bad');
    await expect(importMseAdapter({ input: join(DIR, 'mse_badlabel'), out }))
      .rejects.toThrow(`${join(DIR, 'mse_badlabel', 'meld_train.pkl')}, row 1, key 'label': unknown label 'happiness'`);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });

  it('fails when the folder has no <name>_train.pkl', async () => {
    await expect(importMseAdapter({ input: join(DIR, 'mse_meld'), dataset: 'cherma', out: join(tmp.path, 'x') }))
      .rejects.toThrow(`${join(DIR, 'mse_meld')}: missing cherma_train.pkl`);
    await expect(importMseAdapter({ input: join(DIR, 'cherma'), out: join(tmp.path, 'y') })).rejects.toThrow(/key 'dataset': no meld_<split>\.pkl or cherma_<split>\.pkl here/);
  });
});
