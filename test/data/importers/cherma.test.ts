import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateSamples, readSplitTable } from '../../../src/data/arrow.ts';
import { importCherma } from '../../../src/data/importers/cherma.ts';
import { CHERMA_LABELS, CHERMA_LABELS_EN } from '../../../src/data/importers/mse-adapter.ts';
import { REPO, runCli, tempDir } from '../../helpers.ts';

const DIR = join(REPO, 'test', 'fixtures', 'pickle', 'cherma');
const expected = JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'pickle', 'expected.json'), 'utf8')).cherma;
const tmp = tempDir();
afterAll(() => tmp.cleanup());

function copyFixture(name: string): string {
  const root = join(tmp.path, name);
  cpSync(DIR, root, { recursive: true });
  return root;
}

describe('cherma importer', () => {
  it('imports <stage>.json with per-utterance .npy features and all four labels', async () => {
    const out = join(tmp.path, 'out');
    const report = await importCherma({ input: DIR, out });
    expect(report.splits).toEqual({ train: 3, valid: 2, test: 2 });
    expect(report.cleaned).toEqual({ audio: 0, vision: 0, total: 0 });
    expect(report.notes).toContain("7 of 7 entries have no 'text' field: their text is empty (CHERMA ships text as features only)");
    for (const split of ['train', 'valid', 'test']) {
      const want = expected[split];
      const t = readSplitTable(join(out, `${split}.arrow`));
      expect(t.meta).toMatchObject({ dataset: 'cherma', language: 'zh', labelNames: CHERMA_LABELS, labelNamesEn: CHERMA_LABELS_EN, audioDim: 16, visionDim: 24, hasUnimodalLabels: true });
      const rows = [...iterateSamples(t)];
      expect(rows.map((s) => s.id)).toEqual(want.ids);
      expect(rows.map((s) => s.label)).toEqual(want.labels);
      expect(rows.map((s) => s.labelT)).toEqual(want.labelsT);
      expect(rows.map((s) => s.labelA)).toEqual(want.labelsA);
      expect(rows.map((s) => s.labelV)).toEqual(want.labelsV);
      expect(rows.map((s) => s.audio.length / 16)).toEqual(want.audioFrames);
      expect(rows.map((s) => s.vision.length / 24)).toEqual(want.visionFrames);
      rows.forEach((s, i) => {
        expect(s.audio.reduce((a, b) => a + b, 0)).toBeCloseTo(want.audioSums[i], 3);
        expect(s.vision.reduce((a, b) => a + b, 0)).toBeCloseTo(want.visionSums[i], 3);
      });
    }
  });

  it('takes text from an entry field when present, English labels too, and a dev stage as valid', async () => {
    const root = copyFixture('variant');
    const entries = JSON.parse(readFileSync(join(root, 'valid.json'), 'utf8'));
    entries[0].text = '我今天很高兴';
    entries[1].video_label = 'Happy';
    writeFileSync(join(root, 'dev.json'), JSON.stringify(entries));
    rmSync(join(root, 'valid.json'));
    for (const sub of ['audio', 'visual', 'text']) cpSync(join(root, sub, 'valid'), join(root, sub, 'dev'), { recursive: true });
    const report = await importCherma({ input: root, out: join(root, 'out') });
    expect(report.splits).toEqual({ train: 3, valid: 2, test: 2 });
    const rows = [...iterateSamples(readSplitTable(join(root, 'out', 'valid.arrow')))];
    expect(rows[0]!.text).toBe('我今天很高兴');
    expect(rows[1]!.label).toBe(CHERMA_LABELS_EN.indexOf('happy'));
    expect(report.notes).toContain("6 of 7 entries have no 'text' field: their text is empty (CHERMA ships text as features only)");
  });

  it('fails on a missing feature file naming the entry and the path, writing nothing', () => {
    const root = copyFixture('missing');
    const gone = join(root, 'visual', 'test', 'test_0001.mp4.npy');
    rmSync(gone);
    const out = join(root, 'out');
    const r = runCli(['data', 'import', 'cherma', '--input', root, '--out', out]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`${join(root, 'test.json')}, row 1, key 'video_file': feature file missing: ${gone}`);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });

  it('fails on an unknown label naming the file, row and key', async () => {
    const root = copyFixture('badlabel');
    const entries = JSON.parse(readFileSync(join(root, 'train.json'), 'utf8'));
    entries[2].audio_label = '开心';
    writeFileSync(join(root, 'train.json'), JSON.stringify(entries));
    await expect(importCherma({ input: root, out: join(root, 'out') })).rejects.toThrow(`${join(root, 'train.json')}, row 2, key 'audio_label': unknown label '开心'`);
    expect(existsSync(join(root, 'out'))).toBe(false);
  });
});
