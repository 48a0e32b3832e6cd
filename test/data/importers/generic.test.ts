import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateSamples, readSplitTable } from '../../../src/data/arrow.ts';
import { genericImporter, splitFromFileName } from '../../../src/data/importers/generic.ts';
import { runCli, tempDir } from '../../helpers.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let n = 0;

/** Writes files into a fresh folder; returns the folder. */
function files(contents: Record<string, string | Buffer>): string {
  const dir = join(tmp.path, `in${n++}`);
  mkdirSync(dir, { recursive: true });
  for (const [f, c] of Object.entries(contents)) writeFileSync(join(dir, f), c);
  return dir;
}
const outDir = () => join(tmp.path, `out${n++}`);
const read = (out: string, split: string) => {
  const t = readSplitTable(join(out, `${split}.arrow`));
  return { meta: t.meta, rows: [...iterateSamples(t)] };
};
const run = (input: string | string[], out: string, opts: Record<string, unknown>) => genericImporter.run({ input: input as string, out, ...opts });

const CSV = [
  'uid,sentence,emotion,part',
  'a1,"I\'m fine, thanks",joy,train',
  'a2,"She said ""no""",anger,TRAIN',
  'a3,Meh.,neutral,dev',
  'a4,Wow!,joy,validation',
  'a5,Ugh,anger,test',
].join('\r\n');

describe('generic importer', () => {
  it('imports a CSV with a split column, inferring the labels as sorted unique values', async () => {
    const dir = files({ 'data.csv': CSV });
    const out = outDir();
    const rep = await run(join(dir, 'data.csv'), out, {
      'text-column': 'sentence', 'label-column': 'emotion', 'split-column': 'part', 'id-column': 'uid', language: 'en',
    });
    expect(rep.splits).toEqual({ train: 2, valid: 2, test: 1 });
    expect(rep.dataset).toBe('data');
    expect(rep.notes).toContain('labels (inferred: sorted unique values): anger:0, joy:1, neutral:2');
    const train = read(out, 'train');
    expect(train.meta).toMatchObject({
      dataset: 'data', language: 'en', task: 'classification', textOnly: true, audioDim: 0, visionDim: 0,
      labelNames: ['anger', 'joy', 'neutral'], labelNamesEn: ['anger', 'joy', 'neutral'], license: 'unspecified',
    });
    expect(train.rows.map((r) => [r.id, r.text, r.label])).toEqual([['a1', 'I\'m fine, thanks', 1], ['a2', 'She said "no"', 0]]);
    expect(read(out, 'valid').rows.map((r) => r.id)).toEqual(['a3', 'a4']);
  });

  it('keeps a given label order and sorts inferred integer labels numerically', async () => {
    const dir = files({ 'x.csv': 'text,label\na,2\nb,10\nc,-1\n' });
    const out = outDir();
    await run(join(dir, 'x.csv'), out, { split: 'train', language: 'zh', dataset: 'nums' });
    const { meta, rows } = read(out, 'train');
    expect(meta.labelNames).toEqual(['-1', '2', '10']);
    expect(meta.labelNamesEn).toBeUndefined();
    expect(rows.map((r) => [r.id, r.label])).toEqual([['1', 1], ['2', 2], ['3', 0]]);
    const out2 = outDir();
    await run(join(dir, 'x.csv'), out2, { split: 'test', language: 'en', labels: '10,2,-1' });
    expect(read(out2, 'test').rows.map((r) => r.label)).toEqual([1, 0, 2]);
  });

  it('imports a folder of JSONL files (one per split) as regression, language from a column', async () => {
    const line = (t: string, l: number | string) => JSON.stringify({ text: t, score: l, lang: 'zh' });
    const dir = files({
      'sims_train.jsonl': [line('今天很开心', 0.8), line('一般般', '0')].join('\n'),
      'sims_dev.jsonl': line('还行吧', -0.2),
      'sims_test.jsonl': `${line('太糟糕了', -1)}\n\n`,
      'README.md': 'ignored',
    });
    const out = outDir();
    const rep = await run(dir, out, { task: 'regression', range: '-1,1', 'label-column': 'score', 'language-column': 'lang' });
    expect(rep.splits).toEqual({ train: 2, valid: 1, test: 1 });
    const train = read(out, 'train');
    expect(train.meta).toMatchObject({ task: 'regression', labelRange: [-1, 1], language: 'zh' });
    expect(train.rows.map((r) => [r.id, r.text])).toEqual([['sims_train.jsonl:1', '今天很开心'], ['sims_train.jsonl:2', '一般般']]);
    expect(train.rows[0]!.label).toBeCloseTo(0.8, 6);
    expect(read(out, 'test').rows[0]!.label).toBe(-1);
  });

  it('takes several --input files and a negative --range through the CLI', () => {
    const dir = files({
      'train.csv': 'text,label\nup,2.5\ndown,-3\n',
      'test.csv': 'text,label\nflat,0\n',
    });
    const out = outDir();
    const r = runCli(['data', 'import', 'generic', '--input', join(dir, 'train.csv'), '--input', join(dir, 'test.csv'),
      '--task', 'regression', '--range', '-3,3', '--language', 'en', '--dataset', 'mini', '--out', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dataset: 'mini', splits: { train: 2, test: 1 } });
    expect(read(out, 'train').rows.map((x) => x.label)).toEqual([2.5, -3]);
  });

  it('maps split names from file names', () => {
    expect(['train_sent_emo.csv', 'dev_sent_emo.csv', 'meld-validation.jsonl', 'x_test.csv', 'val.csv', 'data.csv', 'train_test.csv']
      .map(splitFromFileName)).toEqual(['train', 'valid', 'valid', 'test', 'valid', undefined, undefined]);
  });
});

describe('generic importer bad input', () => {
  it('names the file, line and value of a label outside the set or range, writing nothing', async () => {
    const dir = files({ 'a.csv': 'text,label\nok,pos\nbad,meh\n', 'r.csv': 'text,label\nok,0.5\nbad,3.5\n', 'nan.csv': 'text,label\nx,\n' });
    const out = outDir();
    await expect(run(join(dir, 'a.csv'), out, { split: 'train', language: 'en', labels: 'neg,pos' })).rejects.toThrow(
      `${join(dir, 'a.csv')}, line 3, key 'label': unknown label "meh" (expected one of: neg, pos)`,
    );
    await expect(run(join(dir, 'r.csv'), out, { split: 'train', language: 'en', task: 'regression', range: '-3,3' })).rejects.toThrow(
      `${join(dir, 'r.csv')}, line 3, key 'label': label 3.5 is outside the range [-3, 3]`,
    );
    await expect(run(join(dir, 'nan.csv'), out, { split: 'train', language: 'en', task: 'regression', range: '-3,3' })).rejects.toThrow(
      `${join(dir, 'nan.csv')}, line 2, key 'label': label "" is not a number`,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('refuses mixed languages and says why', async () => {
    const dir = files({ 'm.csv': 'text,label,lang\nhi,a,en\n你好,b,zh\n' });
    await expect(run(join(dir, 'm.csv'), outDir(), { split: 'train', 'language-column': 'lang' })).rejects.toThrow(
      `${join(dir, 'm.csv')}, line 3, key 'lang': mixed languages: 'zh' here and 'en' at ${join(dir, 'm.csv')} line 2; a dataset holds one language`,
    );
    await expect(run(join(dir, 'm.csv'), outDir(), { split: 'train' })).rejects.toThrow('exactly one of --language en|zh or --language-column');
  });

  it('names missing inputs, columns and fields', async () => {
    const dir = files({ 'a.csv': 'sentence,label\nx,a\ny,b\n', 'b.jsonl': '{"text":"x","label":"a"}\n{"label":"b"}\n' });
    const nope = join(dir, 'nope.csv');
    await expect(run(nope, outDir(), { split: 'train', language: 'en' })).rejects.toThrow(`${nope}: file or folder not found`);
    await expect(run([join(dir, 'a.csv'), nope], outDir(), { language: 'en' })).rejects.toThrow(`${nope}: file not found`);
    await expect(run(join(dir, 'a.csv'), outDir(), { split: 'train', language: 'en' })).rejects.toThrow(
      `${join(dir, 'a.csv')}, key 'text': missing column 'text' (the header has: sentence, label)`,
    );
    await expect(run(join(dir, 'b.jsonl'), outDir(), { split: 'train', language: 'en' })).rejects.toThrow(
      `${join(dir, 'b.jsonl')}, line 2, key 'text': missing field 'text'`,
    );
  });

  it('names files whose split is unknown, an unknown split value, an empty split and invalid UTF-8', async () => {
    const dir = files({
      'data.csv': 'text,label,part\nx,a,train\ny,b,holdout\n',
      'head.csv': 'text,label\n',
      'bad.jsonl': Buffer.concat([Buffer.from('{"text":"ok","label":"a"}\n{"text":"caf'), Buffer.from([0xe9]), Buffer.from('","label":"b"}\n')]),
      'notes.txt': 'x',
    });
    await expect(run(join(dir, 'data.csv'), outDir(), { language: 'en' })).rejects.toThrow(`${join(dir, 'data.csv')}: name the split`);
    await expect(run(join(dir, 'data.csv'), outDir(), { language: 'en', 'split-column': 'part' })).rejects.toThrow(
      `${join(dir, 'data.csv')}, line 3, key 'part': unknown split "holdout"`,
    );
    await expect(run(join(dir, 'head.csv'), outDir(), { language: 'en', split: 'test' })).rejects.toThrow(`${join(dir, 'head.csv')}: no data rows`);
    await expect(run(join(dir, 'bad.jsonl'), outDir(), { language: 'en', split: 'test' })).rejects.toThrow(
      `${join(dir, 'bad.jsonl')}, line 2: invalid UTF-8 at byte 38`,
    );
    await expect(run(join(dir, 'notes.txt'), outDir(), { language: 'en', split: 'test' })).rejects.toThrow('pass --format csv or --format jsonl');
    await expect(run(dir, outDir(), { language: 'en' })).rejects.toThrow(`${join(dir, 'bad.jsonl')}: cannot tell this file's split from its name`);
  });

  it('checks option values', async () => {
    const dir = files({ 'a.csv': 'text,label\nx,1\n' });
    const f = join(dir, 'a.csv');
    await expect(run(f, outDir(), { split: 'train', language: 'en', task: 'regression' })).rejects.toThrow("key 'range': --task regression needs --range");
    await expect(run(f, outDir(), { split: 'train', language: 'en', task: 'regression', range: '3,-3' })).rejects.toThrow('--range must be lo,hi with lo < hi');
    await expect(run(f, outDir(), { split: 'train', language: 'en', labels: 'a,a' })).rejects.toThrow('--labels must list at least two distinct');
    await expect(run(f, outDir(), { split: 'holdout', language: 'en' })).rejects.toThrow('--split must be train, dev, valid, validation or test');
    await expect(run(f, outDir(), { split: 'train', language: 'en' })).rejects.toThrow('classification needs at least two labels; found only ["1"]');
  });
});
