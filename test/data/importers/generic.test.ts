import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validatePath } from '../../../src/cli/data/validate.ts';
import { iterateSamples, readSplitTable } from '../../../src/data/arrow.ts';
import { genericImporter, splitFromFileName } from '../../../src/data/importers/generic.ts';
import { importers } from '../../../src/data/importers/index.ts';
import { EgmfError } from '../../../src/errors.ts';
import { generateSynthetic } from '../../../src/data/synthetic/index.ts';
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
    const dir = files({ 'moods_all.csv': CSV });
    const out = outDir();
    const rep = await run(join(dir, 'moods_all.csv'), out, {
      'text-column': 'sentence', 'label-column': 'emotion', 'split-column': 'part', 'id-column': 'uid', language: 'en',
    });
    expect(rep.splits).toEqual({ train: 2, valid: 2, test: 1 });
    expect(rep.dataset).toBe('moods_all');
    expect(rep.notes).toContain('labels (inferred: sorted unique values): anger:0, joy:1, neutral:2');
    const train = read(out, 'train');
    expect(train.meta).toMatchObject({
      dataset: 'moods_all', language: 'en', task: 'classification', textOnly: true, audioDim: 0, visionDim: 0,
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
    await expect(run(join(dir, 'a.csv'), outDir(), { split: 'train', language: 'en', 'text-column': 'text' })).rejects.toThrow(
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
    await expect(run(join(dir, 'notes.txt'), outDir(), { language: 'en', split: 'test' })).rejects.toThrow(
      `${join(dir, 'notes.txt')}: cannot tell the format from the file name; pass --format csv, --format jsonl or --format json`,
    );
    await expect(run(dir, outDir(), { language: 'en' })).rejects.toThrow(`${join(dir, 'bad.jsonl')}: cannot tell this file's split from its name`);
  });

  it('checks option values', async () => {
    const dir = files({ 'a.csv': 'text,label\nx,1\n' });
    const f = join(dir, 'a.csv');
    await expect(run(f, outDir(), { split: 'train', language: 'en', task: 'regression' })).rejects.toThrow("key 'range': --task regression needs --range");
    await expect(run(f, outDir(), { split: 'train', language: 'en', task: 'regression', range: '3,-3' })).rejects.toThrow('--range must be lo,hi with lo < hi');
    await expect(run(f, outDir(), { split: 'train', language: 'en', labels: 'a,a' })).rejects.toThrow('--labels must list at least two distinct');
    await expect(run(f, outDir(), { split: 'holdout', language: 'en' })).rejects.toThrow('--split must be train, dev, val, valid, validation, eval or test');
    await expect(run(f, outDir(), { split: 'train', language: 'en' })).rejects.toThrow('classification needs at least two labels; found only ["1"]');
  });
});

const CN = [
  { content: '今天真开心', emotion: '高兴', speaker: 'A', dialogue: 'd1' },
  { content: '我也是，太好了', emotion: '高兴', speaker: 'B', dialogue: 'd1' },
  { content: '别烦我', emotion: '生气', speaker: 'A', dialogue: 'd2' },
  { content: '唉……', emotion: '伤心', speaker: 'C', dialogue: 'd2' },
];
const pretty = (v: unknown) => JSON.stringify(v, null, 2);

describe('generic importer: JSON arrays', () => {
  it('imports a JSON array with Chinese text, detecting the columns and keeping speaker and dialogue', async () => {
    const dir = files({ 'cn_emotion_train.json': pretty(CN) });
    const out = outDir();
    const rep = await run(join(dir, 'cn_emotion_train.json'), out, {
      split: 'train', language: 'zh', 'speaker-column': 'speaker', 'dialogue-column': 'dialogue',
    });
    expect(rep).toMatchObject({ dataset: 'cn_emotion', splits: { train: 4 } });
    expect(rep.notes).toContain("text column 'content', label column 'emotion' (both auto-detected in cn_emotion_train.json; pass --text-column/--label-column to choose)");
    expect(rep.notes).toContain("dataset name 'cn_emotion' (from the file names; pass --dataset to choose)");
    const { meta, rows } = read(out, 'train');
    expect(meta).toMatchObject({ dataset: 'cn_emotion', language: 'zh', labelNames: ['伤心', '生气', '高兴'] });
    expect(meta.extra).toMatchObject({ textColumn: 'content', labelColumn: 'emotion', speakerColumn: 'speaker', dialogueColumn: 'dialogue' });
    expect(rows.map((r) => [r.id, r.text, r.label, r.speaker, r.dialogueId, r.utteranceIndex])).toEqual([
      ['1', '今天真开心', 2, 'A', 'd1', 0],
      ['2', '我也是，太好了', 2, 'B', 'd1', 1],
      ['3', '别烦我', 1, 'A', 'd2', 0],
      ['4', '唉……', 0, 'C', 'd2', 1],
    ]);
  });

  it('lists .json files in a folder and reads *_eval_labeled.json as the valid split', async () => {
    const dir = files({
      'cn_emotion_train.json': pretty(CN),
      'cn_emotion_eval_labeled.json': pretty([{ content: '还行', emotion: '高兴' }]),
    });
    const out = outDir();
    const rep = await run(dir, out, { language: 'zh' });
    expect(rep).toMatchObject({ dataset: 'cn_emotion', splits: { train: 4, valid: 1 } });
    expect(read(out, 'valid').rows.map((r) => [r.id, r.text, r.label])).toEqual([['cn_emotion_eval_labeled.json:1', '还行', 2]]);
  });

  it('takes an explicit utterance index column, and --format json for a file with another extension', async () => {
    const dir = files({ 'talk.txt': pretty([{ text: 'hi', label: 'a', turn: 3 }, { text: 'yo', label: 'b', turn: '0' }, { text: 'eh', label: 'a', turn: null }]) });
    const out = outDir();
    await run(join(dir, 'talk.txt'), out, { split: 'test', language: 'en', format: 'json', 'utterance-index-column': 'turn' });
    expect(read(out, 'test').rows.map((r) => [r.text, r.utteranceIndex, r.dialogueId, r.speaker])).toEqual([['hi', 3, null, null], ['yo', 0, null, null], ['eh', null, null, null]]);
    const bad = files({ 'x.json': pretty([{ text: 'hi', label: 'a', turn: 'first' }, { text: 'yo', label: 'b', turn: 1 }]) });
    await expect(run(join(bad, 'x.json'), outDir(), { split: 'test', language: 'en', 'utterance-index-column': 'turn' })).rejects.toThrow(
      `${join(bad, 'x.json')}, line 2, key 'turn': expected a non-negative integer, got "first"`,
    );
  });

  it('names the file, element and line of a truncated array, writing nothing', async () => {
    const text = pretty(CN.slice(0, 3));
    const dir = files({ 'cut_train.json': text.slice(0, text.lastIndexOf('"dialogue"')) });
    const out = outDir();
    const f = join(dir, 'cut_train.json');
    await expect(run(f, out, { split: 'train', language: 'zh' })).rejects.toThrow(
      `${f}, line 14: truncated JSON array: element 2 is not closed (the file ends on line 18); elements 0-1 were complete`,
    );
    const noClose = files({ 'a.json': '[\n{"text":"x","label":"a"},\n{"text":"y","label":"b"}\n' });
    await expect(run(join(noClose, 'a.json'), out, { split: 'train', language: 'en' })).rejects.toThrow(
      `${join(noClose, 'a.json')}, line 4: truncated JSON array: no closing ] after element 1; elements 0-1 were complete`,
    );
    const openString = files({ 'a.json': '[{"text":"x","label":"a"},\n{"text":"y' });
    await expect(run(join(openString, 'a.json'), out, { split: 'train', language: 'en' })).rejects.toThrow(
      `${join(openString, 'a.json')}, line 2: truncated JSON array: a string in element 1 (which starts on line 2) is never closed`,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('names a top-level value that is not an array, an element that is not an object and bad JSON inside an element', async () => {
    const dir = files({
      'obj.json': pretty(CN[0]),
      'num.json': '42\n',
      'elem.json': `[\n${CN.slice(0, 3).map((r) => JSON.stringify(r)).join(',\n')},\n"oops"\n]`,
      'syntax.json': '[{"text":"x","label":"a"},\n {"text":"y" "label":"b"}]',
      'comma.json': '[{"text":"x","label":"a"},\n]',
      'after.json': '[{"text":"x","label":"a"}] []',
    });
    const out = outDir();
    const at = (f: string) => join(dir, f);
    await expect(run(at('obj.json'), out, { split: 'train', language: 'zh' })).rejects.toThrow(
      `${at('obj.json')}, line 1: the top-level JSON value is an object; expected an array of objects ([ {...}, {...} ]) (for one object per line use --format jsonl)`,
    );
    await expect(run(at('num.json'), out, { split: 'train', language: 'zh' })).rejects.toThrow(`${at('num.json')}, line 1: the top-level JSON value is not an array`);
    await expect(run(at('elem.json'), out, { split: 'train', language: 'zh' })).rejects.toThrow(`${at('elem.json')}, line 5: element 3 is not a JSON object (got a string)`);
    await expect(run(at('syntax.json'), out, { split: 'train', language: 'en' })).rejects.toThrow(`${at('syntax.json')}, line 2: element 1: invalid JSON`);
    await expect(run(at('comma.json'), out, { split: 'train', language: 'en' })).rejects.toThrow(`${at('comma.json')}, line 2: trailing comma after element 0`);
    await expect(run(at('after.json'), out, { split: 'train', language: 'en' })).rejects.toThrow(`${at('after.json')}, line 1: unexpected "[" after the closing ] of the array`);
    expect(existsSync(out)).toBe(false);
  });

  it('keeps --format jsonl strict but hints at --format json for a .jsonl file holding an array', async () => {
    const dir = files({ 'one.jsonl': JSON.stringify(CN), 'many.jsonl': pretty(CN) });
    await expect(run(join(dir, 'one.jsonl'), outDir(), { split: 'train', language: 'zh' })).rejects.toThrow(
      `${join(dir, 'one.jsonl')}, line 1: each line must be one JSON object; the file starts with [ as a JSON array does: for one array of objects use --format json`,
    );
    await expect(run(join(dir, 'many.jsonl'), outDir(), { split: 'train', language: 'zh', format: 'jsonl' })).rejects.toThrow(
      `${join(dir, 'many.jsonl')}, line 1: invalid JSON`,
    );
    await expect(run(join(dir, 'many.jsonl'), outDir(), { split: 'train', language: 'zh', format: 'jsonl' })).rejects.toThrow('use --format json');
    const out = outDir();
    await run(join(dir, 'many.jsonl'), out, { split: 'train', language: 'zh', format: 'json', dataset: 'cn' });
    expect(read(out, 'train').rows.map((r) => r.text)).toEqual(CN.map((r) => r.content));
  });
});

describe('generic importer: several inputs, split names, dataset names and columns', () => {
  it('takes several files after one --input through the CLI (xx_train/dev/test.csv with utterance,emotion columns)', () => {
    const dir = files({
      'xx_train.csv': 'utterance,emotion,speaker\nI love it,joy,Ann\nGo away,anger,Bob\n',
      'xx_dev.csv': 'utterance,emotion,speaker\nNice,joy,Ann\n',
      'xx_test.csv': 'utterance,emotion,speaker\nStop it,anger,\n',
    });
    const out = outDir();
    const r = runCli(['data', 'import', 'generic', '--input', join(dir, 'xx_train.csv'), join(dir, 'xx_dev.csv'), join(dir, 'xx_test.csv'),
      '--language', 'en', '--speaker-column', 'speaker', '--out', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { dataset: string; splits: Record<string, number>; notes: string[] };
    expect(rep).toMatchObject({ dataset: 'xx', splits: { train: 2, valid: 1, test: 1 } });
    expect(rep.notes).toContain("text column 'utterance', label column 'emotion' (both auto-detected in xx_train.csv; pass --text-column/--label-column to choose)");
    expect(read(out, 'train').rows.map((x) => [x.id, x.text, x.label, x.speaker])).toEqual([['xx_train.csv:1', 'I love it', 1, 'Ann'], ['xx_train.csv:2', 'Go away', 0, 'Bob']]);
    expect(read(out, 'test').rows.map((x) => x.speaker)).toEqual([null]);
  });

  it('says in --help that several files may follow one --input, and single-input importers refuse several', () => {
    const help = runCli(['data', 'import', 'generic', '--help']);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain('several files may follow one --input');
    for (const flag of ['--speaker-column', '--dialogue-column', '--utterance-index-column', '--replace']) expect(help.stdout).toContain(flag);
    const dir = files({ 'a.csv': 'x\n', 'b.csv': 'x\n' });
    const two = [join(dir, 'a.csv'), join(dir, 'b.csv')];
    const out = outDir();
    const r = runCli(['data', 'import', 'mmsa', '--input', ...two, '--out', out]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`key 'input': the mmsa importer takes one --input (a folder or file), got 2: ${two.join(' ')}`);
    expect(existsSync(out)).toBe(false);
  });

  it('single-input importers called with several inputs name --input', async () => {
    const two = ['a', 'b'];
    for (const imp of importers.filter((i) => !i.manyInputs)) {
      const err = await imp.run({ input: two, out: outDir() }).catch((e: unknown) => e);
      expect(err, imp.name).toBeInstanceOf(EgmfError);
      expect((err as EgmfError).context.key, imp.name).toBe('input');
      expect((err as EgmfError).message, imp.name).toMatch(/takes one (folder|--input).*got 2: a b/);
    }
    expect(importers.filter((i) => i.manyInputs).map((i) => i.name)).toEqual(['generic']);
  });

  it('accepts eval, val, dev and validation as --split, in split columns and in file names', async () => {
    const dir = files({ 'x.csv': 'text,label\na,p\nb,q\n', 'y.csv': 'text,label,part\na,p,eval\nb,q,VAL\nc,p,train\nd,q,Dev\n' });
    const out = outDir();
    expect((await run(join(dir, 'x.csv'), out, { split: 'eval', language: 'en', dataset: 'x' })).splits).toEqual({ valid: 2 });
    expect((await run(join(dir, 'y.csv'), outDir(), { 'split-column': 'part', language: 'en' })).splits).toEqual({ train: 1, valid: 3 });
    expect(['foo_eval_labeled.json', 'foo-evaluation.json', 'dev.jsonl', 'emo.val.csv', 'x_validation_final.csv', 'eval_test.csv']
      .map(splitFromFileName)).toEqual(['valid', 'valid', 'valid', 'valid', 'valid', undefined]);
  });

  it('derives the dataset name from the file names, else the folder, else asks for --dataset', async () => {
    const dir = files({
      'emo_train_final.csv': 'text,label\na,p\nb,q\n',
      'emo-test.unlabeled.csv': 'text,label\nc,p\n',
    });
    const rep = await run([join(dir, 'emo_train_final.csv'), join(dir, 'emo-test.unlabeled.csv')], outDir(), { language: 'en' });
    expect(rep.dataset).toBe('emo');
    expect(rep.notes).toContain("dataset name 'emo' (from the file names; pass --dataset to choose)");
    // Stems that disagree: the folder's name.
    const mixed = join(tmp.path, 'my_corpus_v2');
    mkdirSync(mixed);
    writeFileSync(join(mixed, 'alpha_train.csv'), 'text,label\na,p\nb,q\n');
    writeFileSync(join(mixed, 'beta_test.csv'), 'text,label\nc,p\n');
    const rep2 = await run(mixed, outDir(), { language: 'en' });
    expect(rep2.dataset).toBe('my_corpus_v2');
    expect(rep2.notes).toContain("dataset name 'my_corpus_v2' (from the folder name; pass --dataset to choose)");
    // Nothing clean left anywhere.
    const bare = join(tmp.path, 'x', 'data');
    mkdirSync(bare, { recursive: true });
    writeFileSync(join(bare, 'train.csv'), 'text,label\na,p\nb,q\n');
    writeFileSync(join(bare, 'test.csv'), 'text,label\nc,p\n');
    const out = outDir();
    await expect(run(bare, out, { language: 'en' })).rejects.toThrow(
      "key 'dataset': cannot make a dataset name from the file names (test.csv, train.csv) or the folder name 'data'; pass --dataset NAME",
    );
    expect(existsSync(out)).toBe(false);
    expect((await run(bare, out, { language: 'en', dataset: 'mine' })).dataset).toBe('mine');
  });

  it('detects columns case-insensitively by priority, notes the other candidates, and lists the columns when none fits', async () => {
    const dir = files({
      'both.csv': 'ID,Sentence,Sentiment,Emotion\n1,good,pos,joy\n2,bad,neg,anger\n',
      'none.csv': 'id,words,tag\n1,x,a\n',
      'none.json': pretty([{ words: 'x', label: 'a' }]),
    });
    const out = outDir();
    const rep = await run(join(dir, 'both.csv'), out, { split: 'train', language: 'en' });
    expect(rep.notes).toContain("text column 'Sentence', label column 'Emotion' (both auto-detected in both.csv; pass --text-column/--label-column to choose)");
    expect(rep.notes).toContain("label column: also found 'Sentiment'; used 'Emotion' by priority (label > emotion > emotion_label > sentiment > class); pass --label-column to choose");
    expect(read(out, 'train').meta.labelNames).toEqual(['anger', 'joy']);
    const rep2 = await run(join(dir, 'both.csv'), outDir(), { split: 'train', language: 'en', 'label-column': 'Sentiment' });
    expect(rep2.notes).toContain("text column 'Sentence', label column 'Sentiment' (text auto-detected in both.csv; pass --text-column/--label-column to choose)");
    await expect(run(join(dir, 'none.csv'), outDir(), { split: 'train', language: 'en' })).rejects.toThrow(
      `${join(dir, 'none.csv')}: cannot find the text column: none of text, utterance, sentence, content, transcript, transcription (any case); the header has: id, words, tag; pass --text-column NAME`,
    );
    await expect(run(join(dir, 'none.csv'), outDir(), { split: 'train', language: 'en', 'text-column': 'words' })).rejects.toThrow(
      `${join(dir, 'none.csv')}: cannot find the label column: none of label, emotion, emotion_label, sentiment, class (any case); the header has: id, words, tag; pass --label-column NAME`,
    );
    await expect(run(join(dir, 'none.json'), outDir(), { split: 'train', language: 'en' })).rejects.toThrow(
      `${join(dir, 'none.json')}: cannot find the text column: none of text, utterance, sentence, content, transcript, transcription (any case); the first record has the keys: words, label`,
    );
  });
});

describe('generic importer: adding splits to an earlier import', () => {
  const trainCsv = 'text,label\nyay,joy\ngrr,anger\nsob,sadness\nhm,joy\n';

  it('adds valid beside train with the existing label order, leaving train untouched', async () => {
    const dir = files({ 'moods_train.csv': trainCsv, 'moods_valid.csv': 'text,label\nboo hoo,sadness\nwee,joy\n', 'moods_test.csv': 'text,label\nok,joy\n' });
    const out = outDir();
    await run(join(dir, 'moods_train.csv'), out, { split: 'train', language: 'en' });
    const trainBytes = readFileSync(join(out, 'train.arrow'));
    const trainMtime = statSync(join(out, 'train.arrow')).mtimeMs;
    const rep = await run(join(dir, 'moods_valid.csv'), out, { split: 'valid', language: 'en' });
    expect(rep.splits).toEqual({ valid: 2 });
    expect(rep.notes).toContain(`labels (from the existing ${join(out, 'train.arrow')}): anger:0, joy:1, sadness:2`);
    // valid's own sorted labels would be joy:0, sadness:1.
    const valid = read(out, 'valid');
    expect(valid.meta.labelNames).toEqual(['anger', 'joy', 'sadness']);
    expect(valid.rows.map((r) => [r.text, r.label])).toEqual([['boo hoo', 2], ['wee', 1]]);
    expect(readFileSync(join(out, 'train.arrow')).equals(trainBytes)).toBe(true);
    expect(statSync(join(out, 'train.arrow')).mtimeMs).toBe(trainMtime);
    // The CLI path: a third split through egmf, then the folder validates as one dataset.
    const r = runCli(['data', 'import', 'generic', '--input', join(dir, 'moods_test.csv'), '--split', 'test', '--language', 'en', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('added test beside the kept train, valid');
    expect(validatePath(out).problems).toEqual([]);
    expect(readdirSync(out).sort()).toEqual(['test.arrow', 'train.arrow', 'valid.arrow']);
  });

  it('refuses a label unknown to the existing order, naming the label, file, line and existing folder', async () => {
    const dir = files({ 'moods_train.csv': trainCsv, 'moods_test.csv': 'text,label\nok,joy\nwhoa,surprise\n' });
    const out = outDir();
    await run(join(dir, 'moods_train.csv'), out, { split: 'train', language: 'en' });
    await expect(run(join(dir, 'moods_test.csv'), out, { split: 'test', language: 'en' })).rejects.toThrow(
      `${join(dir, 'moods_test.csv')}, line 3, key 'label': label "surprise" is not in the label order of the existing ${join(out, 'train.arrow')} (anger, joy, sadness)`,
    );
    expect(readdirSync(out)).toEqual(['train.arrow']);
  });

  it('re-imports an existing split only with --replace, and checks dataset, language, task and --labels', async () => {
    const dir = files({ 'moods_train.csv': trainCsv, 'moods_dev.csv': 'text,label\nwee,joy\n', 'other_dev.csv': 'text,label\nwee,joy\n' });
    const out = outDir();
    await run([join(dir, 'moods_train.csv'), join(dir, 'moods_dev.csv')], out, { language: 'en' });
    const train = join(out, 'train.arrow');
    await expect(run(join(dir, 'moods_dev.csv'), out, { split: 'valid', language: 'en' })).rejects.toThrow(
      `${out}: holds valid.arrow from an earlier import; pass --replace to overwrite it; the other split files there (train.arrow) would be kept, or choose another --out`,
    );
    const rep = await run(join(dir, 'moods_dev.csv'), out, { split: 'dev', language: 'en', replace: true });
    expect(rep.notes).toContain('replaced valid.arrow (--replace)');
    const opts = { split: 'valid', language: 'en', replace: true };
    await expect(run(join(dir, 'moods_dev.csv'), out, { ...opts, dataset: 'other' })).rejects.toThrow(
      `${train}: --dataset 'other' differs from 'moods' in the existing split file; an added split must match it (pass --dataset moods)`,
    );
    await expect(run(join(dir, 'other_dev.csv'), out, opts)).rejects.toThrow(
      `${train}: the dataset name (from the file names) 'other' differs from 'moods' in the existing split file`,
    );
    await expect(run(join(dir, 'moods_dev.csv'), out, { ...opts, language: 'zh' })).rejects.toThrow(`${train}: language 'zh' differs from 'en'`);
    await expect(run(join(dir, 'moods_dev.csv'), out, { ...opts, task: 'regression', range: '-1,1' })).rejects.toThrow(`${train}: --task 'regression' differs from 'classification'`);
    await expect(run(join(dir, 'moods_dev.csv'), out, { ...opts, labels: 'joy,anger,sadness' })).rejects.toThrow(
      `${train}: --labels joy,anger,sadness differs from anger,joy,sadness in the existing split file`,
    );
    await expect(run(join(dir, 'moods_dev.csv'), out, { ...opts, license: 'CC-BY' })).rejects.toThrow(`${train}: --license 'CC-BY' differs from 'unspecified'`);
    expect((await run(join(dir, 'moods_dev.csv'), out, { ...opts, labels: 'anger,joy,sadness', dataset: 'moods' })).splits).toEqual({ valid: 1 });
    // Replacing every split there is a fresh import: a new label order is fine.
    const all = await run([join(dir, 'moods_train.csv'), join(dir, 'moods_dev.csv')], out, { language: 'en', replace: true, labels: 'sadness,joy,anger' });
    expect(all.notes).toContain('replaced train.arrow, valid.arrow (--replace)');
    expect(read(out, 'valid').meta.labelNames).toEqual(['sadness', 'joy', 'anger']);
  });

  it('refuses to add a text-only split beside a dataset with features', async () => {
    const out = outDir();
    await generateSynthetic({ preset: 'meld', out, scale: 0.002, seed: 1 });
    const dir = files({ 'meld_extra.csv': 'text,label\na,neutral\n' });
    await expect(run(join(dir, 'meld_extra.csv'), join(out, 'meld'), { split: 'test', language: 'en', replace: true })).rejects.toThrow(
      "holds dataset 'meld' with audio/vision features; a text-only split cannot be added to it",
    );
  });
});
