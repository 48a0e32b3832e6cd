import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateSamples, readSplitTable } from '../../../src/data/arrow.ts';
import type { DatasetMeta, StoredSample } from '../../../src/data/schema.ts';
import { cpedImporter, CPED_EMOTIONS } from '../../../src/data/importers/cped.ts';
import { runCli, runPython, SHARED_DATA, tempDir } from '../../helpers.ts';

const CPED = join(SHARED_DATA, 'cped');
const HEADER = 'TV_ID,Dialogue_ID,Utterance_ID,Speaker,Gender,Age,Neuroticism,Extraversion,Openness,Agreeableness,Conscientiousness,Scene,FacePosition_LU,FacePosition_RD,Sentiment,Emotion,DA,Utterance';
const tmp = tempDir();
afterAll(() => tmp.cleanup());

interface PyRows { ids: string[]; texts: string[]; speakers: string[]; emotion: string[]; sentiment: string[]; bom: boolean }

/** The oracle: Python's csv module reading the files with utf-8-sig. */
function pythonCped(): Record<string, PyRows> {
  const r = runPython(`
import csv, json, sys
out = {}
for split, path in zip(['valid', 'test'], sys.argv[1:]):
    with open(path, 'rb') as f:
        bom = f.read(3) == b'\\xef\\xbb\\xbf'
    with open(path, encoding='utf-8-sig', newline='') as f:
        rows = list(csv.DictReader(f))
    out[split] = {
        'bom': bom, 'ids': [r['Utterance_ID'] for r in rows], 'texts': [r['Utterance'] for r in rows],
        'speakers': [r['Speaker'] for r in rows], 'emotion': [r['Emotion'] for r in rows],
        'sentiment': [r['Sentiment'] for r in rows],
    }
print(json.dumps(out, ensure_ascii=False))
`, ['valid_split.csv', 'test_split.csv'].map((f) => join(CPED, f)));
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, PyRows>;
}

function countOf(values: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const v of values) c[v] = (c[v] ?? 0) + 1;
  return c;
}

describe('cped importer on the real CPED CSVs', () => {
  const out = join(tmp.path, 'cped');
  let py: Record<string, PyRows>;
  const got: Record<string, StoredSample[]> = {};
  let meta: DatasetMeta;
  let stdout = '';

  beforeAll(() => {
    const r = runCli(['data', 'import', 'cped', '--input', CPED, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    stdout = r.stdout;
    for (const s of ['valid', 'test']) {
      const t = readSplitTable(join(out, `${s}.arrow`));
      meta = t.meta;
      got[s] = [...iterateSamples(t)];
    }
    py = pythonCped();
  });

  it('imports the splits present (no train in the shared copy) with Python\'s label counts', () => {
    expect(readdirSync(out).sort()).toEqual(['test.arrow', 'valid.arrow']);
    expect(stdout).toContain('valid 11137, test 27438');
    expect(stdout).toContain('not found, skipped: train_split.csv');
    for (const s of ['valid', 'test']) {
      expect(got[s]!.length).toBe(py[s]!.texts.length);
      expect(countOf(got[s]!.map((x) => CPED_EMOTIONS[x.label]!))).toEqual(countOf(py[s]!.emotion));
    }
    expect(countOf(got.valid!.map((x) => meta.labelNamesEn![x.label]!)).neutral).toBe(3126);
  });

  it('keeps the Chinese text of every row identical to Python\'s reading, BOM stripped', () => {
    expect(py.valid!.bom && py.test!.bom).toBe(true);
    for (const s of ['valid', 'test']) {
      expect(got[s]!.map((x) => x.text)).toEqual(py[s]!.texts);
      expect(got[s]!.map((x) => x.speaker)).toEqual(py[s]!.speakers);
      expect(got[s]!.map((x) => x.id)).toEqual(py[s]!.ids);
    }
    // The one quoted field with a line break (LF inside a CRLF file) comes back unchanged.
    expect(got.valid!.find((x) => x.id === '40_000_007')!.text).toBe('你顾末易\n虽然大家都认识');
    expect(got.valid![0]).toMatchObject({ id: '32_000_000', dialogueId: '32_000', utteranceIndex: 0, speaker: '于春晓', text: '怎么了' });
  });

  it('records Chinese and English label names, zh, text-only, source and licence', () => {
    expect(meta).toMatchObject({
      dataset: 'cped', language: 'zh', task: 'classification', textOnly: true, audioDim: 0, visionDim: 0,
      labelNames: ['中性', '愤怒', '沮丧', '高兴', '其他负面', '放松', '其他正面', '担心', '惊讶', '恐惧', '悲伤', '厌恶', '感激'],
      labelNamesEn: ['neutral', 'anger', 'depress', 'happy', 'negative-other', 'relaxed', 'positive-other', 'worried', 'astonished', 'fear', 'sadness', 'disgust', 'grateful'],
      source: 'CPED (scutcyr/CPED)', license: 'Apache-2.0',
    });
  });
});

describe('cped importer options and bad input', () => {
  function fakeCped(name: string, files: Record<string, string[]>): string {
    const dir = join(tmp.path, name);
    mkdirSync(dir, { recursive: true });
    for (const [f, lines] of Object.entries(files)) writeFileSync(join(dir, f), `\ufeff${[HEADER, ...lines].join('\n')}\n`);
    return dir;
  }
  const row = (utt: string, emo: string, text: string) =>
    `1,1_000,${utt},小明,male,young,high,low,low,high,high,home,1_1,2_2,neutral,${emo},statement,${text}`;

  it('imports sentiment labels with Chinese names', async () => {
    const dir = join(tmp.path, 'valid-only');
    mkdirSync(dir);
    symlinkSync(join(CPED, 'valid_split.csv'), join(dir, 'valid_split.csv'));
    const out = join(tmp.path, 'valid-only-out');
    const rep = await cpedImporter.run({ input: dir, out, label: 'sentiment' });
    expect(rep.splits).toEqual({ valid: 11137 });
    const t = readSplitTable(join(out, 'valid.arrow'));
    expect(t.meta.labelNames).toEqual(['负面', '中性', '正面']);
    expect(t.meta.labelNamesEn).toEqual(['negative', 'neutral', 'positive']);
    expect(countOf([...iterateSamples(t)].map((x) => t.meta.labelNamesEn![x.label]!))).toEqual({ negative: 6319, neutral: 3126, positive: 1692 });
  });

  it('names the file, line and value of an unknown emotion and writes nothing', async () => {
    const dir = fakeCped('bad', { 'train_split.csv': [row('1_000_000', 'neutral', '你好'), row('1_000_001', 'joyful', '太好了，谢谢')] });
    const out = join(tmp.path, 'bad-out');
    await expect(cpedImporter.run({ input: dir, out })).rejects.toThrow(
      `${join(dir, 'train_split.csv')}, line 3, key 'Emotion': unknown label "joyful"`,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('names a duplicate utterance id and composes ids when a release does not nest them', async () => {
    const dup = fakeCped('dup', { 'test_split.csv': [row('1_000_000', 'happy', '好'), row('1_000_000', 'happy', '好')] });
    await expect(cpedImporter.run({ input: dup, out: join(tmp.path, 'dup-out') })).rejects.toThrow(
      `${join(dup, 'test_split.csv')}, line 3: duplicate id '1_000_000'`,
    );
    const flat = fakeCped('flat', { 'test_split.csv': [row('0', 'happy', '好'), row('1', 'fear', '怕')] });
    await cpedImporter.run({ input: flat, out: join(tmp.path, 'flat-out') });
    const s = [...iterateSamples(readSplitTable(join(tmp.path, 'flat-out', 'test.arrow')))];
    expect(s.map((x) => [x.id, x.utteranceIndex, x.label])).toEqual([['1/1_000/0', 0, 3], ['1/1_000/1', 1, 9]]);
  });

  it('refuses to leave a stale split beside a new import', async () => {
    const out = join(tmp.path, 'stale-out');
    await cpedImporter.run({ input: fakeCped('two', { 'train_split.csv': [row('1_000_000', 'happy', '好')], 'test_split.csv': [row('1_000_000', 'fear', '怕')] }), out });
    const one = fakeCped('one', { 'test_split.csv': [row('1_000_000', 'sadness', '哭')] });
    await expect(cpedImporter.run({ input: one, out })).rejects.toThrow(`${out}: holds train.arrow from an earlier import`);
    expect(readSplitTable(join(out, 'test.arrow')).table.numRows).toBe(1);
    expect([...iterateSamples(readSplitTable(join(out, 'test.arrow')))][0]!.text).toBe('怕');
  });

  it('names a missing column', async () => {
    const dir = join(tmp.path, 'nocol');
    mkdirSync(dir);
    writeFileSync(join(dir, 'valid_split.csv'), '\ufeffTV_ID,Dialogue_ID,Utterance_ID,Speaker,Emotion\n1,1_0,1_0_0,a,happy\n');
    await expect(cpedImporter.run({ input: dir, out: join(tmp.path, 'nocol-out') })).rejects.toThrow(
      `${join(dir, 'valid_split.csv')}, key 'Utterance': missing column 'Utterance'`,
    );
  });
});
