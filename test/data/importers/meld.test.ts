import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateSamples, readSplitTable } from '../../../src/data/arrow.ts';
import type { StoredSample } from '../../../src/data/schema.ts';
import { meldImporter, MELD_EMOTIONS } from '../../../src/data/importers/meld.ts';
import { runCli, runPython, SHARED_DATA, tempDir } from '../../helpers.ts';

const MELD = join(SHARED_DATA, 'meld');
const FILES = { train: 'train_sent_emo.csv', valid: 'dev_sent_emo.csv', test: 'test_sent_emo.csv' } as const;
const HEADER = 'Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime';
const tmp = tempDir();
afterAll(() => tmp.cleanup());

interface PyRows { ids: string[]; texts: string[]; speakers: string[]; emotion: string[]; sentiment: string[] }

/** The oracle: Python's csv module over the same files. */
function pythonMeld(): Record<string, PyRows> {
  const r = runPython(`
import csv, json, sys
out = {}
for split, path in zip(['train', 'valid', 'test'], sys.argv[1:]):
    with open(path, encoding='utf-8', newline='') as f:
        rows = list(csv.DictReader(f))
    out[split] = {
        'ids': ['dia%s_utt%s' % (r['Dialogue_ID'], r['Utterance_ID']) for r in rows],
        'texts': [r['Utterance'] for r in rows], 'speakers': [r['Speaker'] for r in rows],
        'emotion': [r['Emotion'] for r in rows], 'sentiment': [r['Sentiment'] for r in rows],
    }
print(json.dumps(out))
`, Object.values(FILES).map((f) => join(MELD, f)));
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, PyRows>;
}

function countOf(values: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const v of values) c[v] = (c[v] ?? 0) + 1;
  return c;
}

describe('meld importer on the real MELD CSVs', () => {
  const out = join(tmp.path, 'meld');
  let py: Record<string, PyRows>;
  const got: Record<string, StoredSample[]> = {};
  let stdout = '';

  beforeAll(() => {
    const r = runCli(['data', 'import', 'meld', '--input', MELD, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    stdout = r.stdout;
    for (const s of ['train', 'valid', 'test']) got[s] = [...iterateSamples(readSplitTable(join(out, `${s}.arrow`)))];
    py = pythonMeld();
  });

  it('imports 9,989 / 1,109 / 2,610 samples with the CSV\'s label counts', () => {
    expect(stdout).toContain('train 9989, valid 1109, test 2610');
    expect(Object.fromEntries(Object.entries(got).map(([s, v]) => [s, v.length]))).toEqual({ train: 9989, valid: 1109, test: 2610 });
    for (const s of ['train', 'valid', 'test']) {
      const names = got[s]!.map((x) => MELD_EMOTIONS[x.label]!);
      expect(countOf(names)).toEqual(countOf(py[s]!.emotion));
    }
    // The dataset README's published train counts, as a second witness.
    expect(countOf(got.train!.map((x) => MELD_EMOTIONS[x.label]!))).toEqual({
      neutral: 4710, joy: 1743, surprise: 1205, anger: 1109, sadness: 683, disgust: 271, fear: 268,
    });
  });

  it('keeps every utterance, speaker and id exactly as Python reads them', () => {
    for (const s of ['train', 'valid', 'test']) {
      expect(got[s]!.map((x) => x.text)).toEqual(py[s]!.texts);
      expect(got[s]!.map((x) => x.speaker)).toEqual(py[s]!.speakers);
      expect(got[s]!.map((x) => x.id)).toEqual(py[s]!.ids);
    }
    const first = got.train![1]!;
    expect(first).toMatchObject({ id: 'dia0_utt1', dialogueId: 'dia0', utteranceIndex: 1, speaker: 'The Interviewer', split: 'train', language: 'en' });
  });

  it('keeps an utterance with doubled quotes and curly apostrophes byte for byte', () => {
    // Sr No. 107: cut the quoted field straight out of the file's bytes and undo the "" escaping.
    const raw = readFileSync(join(MELD, FILES.train));
    const start = raw.indexOf(Buffer.from('\r\n107,"')) + 7;
    const end = raw.indexOf(Buffer.from('",Ross,'), start);
    const want = Buffer.from(raw.subarray(start, end).toString('latin1').replaceAll('""', '"'), 'latin1');
    const row = got.train!.find((x) => x.id === 'dia9_utt10')!;
    expect(Buffer.from(row.text, 'utf8').equals(want)).toBe(true);
    expect(row.text).toContain('"Hey, you\'re not Bob."');
    const curly = got.train!.find((x) => x.text.includes('company’s transition'))!;
    expect(Buffer.from(curly.text, 'utf8').includes(Buffer.from([0xe2, 0x80, 0x99]))).toBe(true);
  });

  it('records the metadata: fixed label order, text-only, source and licence', () => {
    const { meta } = readSplitTable(join(out, 'valid.arrow'));
    expect(meta).toMatchObject({
      dataset: 'meld', language: 'en', task: 'classification', audioDim: 0, visionDim: 0, textOnly: true,
      labelNames: ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger'],
      labelNamesEn: ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger'],
      source: 'MELD (declare-lab/MELD)', license: 'GPL-3.0',
    });
    expect(stdout).toContain('note: text-only');
  });
});

describe('meld importer options and bad input', () => {
  function fakeMeld(name: string, rows: Partial<Record<keyof typeof FILES, string[]>>, header = HEADER): string {
    const dir = join(tmp.path, name);
    mkdirSync(dir, { recursive: true });
    for (const [s, lines] of Object.entries(rows)) {
      writeFileSync(join(dir, FILES[s as keyof typeof FILES]), [header, ...lines].join('\r\n') + '\r\n');
    }
    return dir;
  }
  const row = (n: number, text: string, emo: string, dia: number, utt: number) =>
    `${n},${text},Joey,${emo},neutral,${dia},${utt},1,1,"00:00:01,000","00:00:02,000"`;

  it('imports sentiment labels for the splits present', async () => {
    const dir = join(tmp.path, 'dev-only');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(MELD, FILES.valid), join(dir, FILES.valid));
    const out = join(tmp.path, 'dev-only-out');
    const rep = await meldImporter.run({ input: dir, out, label: 'sentiment' });
    expect(rep.splits).toEqual({ valid: 1109 });
    expect(readdirSync(out)).toEqual(['valid.arrow']);
    const t = readSplitTable(join(out, 'valid.arrow'));
    expect(t.meta.labelNames).toEqual(['negative', 'neutral', 'positive']);
    const names = [...iterateSamples(t)].map((x) => t.meta.labelNames![x.label]!);
    expect(countOf(names)).toEqual({ neutral: 470, negative: 406, positive: 233 });
  });

  it('names a missing folder and a folder without MELD files', async () => {
    const missing = join(tmp.path, 'nowhere');
    await expect(meldImporter.run({ input: missing, out: join(tmp.path, 'o1') })).rejects.toThrow(`${missing}: folder not found`);
    const empty = fakeMeld('empty', {});
    await expect(meldImporter.run({ input: empty, out: join(tmp.path, 'o1') })).rejects.toThrow(/no MELD split files found \(expected train_sent_emo\.csv/);
  });

  it('names the file, line and value of an unknown label, writing nothing', async () => {
    const dir = fakeMeld('badlabel', {
      train: [row(1, 'Hi.', 'joy', 0, 0), row(2, 'Yo.', 'neutral', 0, 1)],
      test: [row(1, '"Well, hi."', 'joy', 0, 0), row(2, 'Hm.', 'happy', 0, 1)],
    });
    const out = join(tmp.path, 'badlabel-out');
    await expect(meldImporter.run({ input: dir, out })).rejects.toThrow(
      `${join(dir, FILES.test)}, line 3, key 'Emotion': unknown label "happy"`,
    );
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });

  it('names duplicate ids, a missing column and a ragged row', async () => {
    const dup = fakeMeld('dup', { train: [row(1, 'a', 'joy', 3, 0), row(2, 'b', 'joy', 3, 1), row(3, 'c', 'joy', 3, 1)] });
    await expect(meldImporter.run({ input: dup, out: join(tmp.path, 'o2') })).rejects.toThrow(
      `${join(dup, FILES.train)}, line 4: duplicate id 'dia3_utt1' in split 'train' (also at ${join(dup, FILES.train)} line 3)`,
    );
    const nocol = fakeMeld('nocol', { valid: ['1,a,Joey,joy,0,0,1,1,x,y'] }, HEADER.replace('Sentiment,', ''));
    await expect(meldImporter.run({ input: nocol, out: join(tmp.path, 'o3'), label: 'sentiment' })).rejects.toThrow(
      `${join(nocol, FILES.valid)}, key 'Sentiment': missing column 'Sentiment'`,
    );
    const ragged = fakeMeld('ragged', { train: [row(1, 'a', 'joy', 0, 0), row(2, 'a, b', 'joy', 0, 1)] });
    await expect(meldImporter.run({ input: ragged, out: join(tmp.path, 'o4') })).rejects.toThrow(
      `${join(ragged, FILES.train)}, line 3: row has 12 fields, the header has 11`,
    );
  });

  it('refuses an empty split, and invalid UTF-8 through the CLI', async () => {
    const empty = fakeMeld('emptysplit', { train: [row(1, 'a', 'joy', 0, 0)], test: [] });
    await expect(meldImporter.run({ input: empty, out: join(tmp.path, 'o5') })).rejects.toThrow(
      `${join(empty, FILES.test)}: split 'test' has no data rows`,
    );
    expect(existsSync(join(tmp.path, 'o5', 'train.arrow'))).toBe(false);
    const dir = fakeMeld('cp1252', {});
    writeFileSync(join(dir, FILES.train), Buffer.concat([Buffer.from(`${HEADER}\r\n${row(1, 'fine', 'joy', 0, 0)}\r\n2,it`), Buffer.from([0x92]), Buffer.from('s,Joey,joy,neutral,0,1,1,1,a,b\r\n')]));
    const r2 = runCli(['data', 'import', 'meld', '--input', dir, '--out', join(tmp.path, 'o6')]);
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toContain(`${join(dir, FILES.train)}, line 3: invalid UTF-8`);
  });
});
