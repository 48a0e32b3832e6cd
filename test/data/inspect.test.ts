import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeDataset } from '../../src/data/arrow.ts';
import type { AffectSample, DatasetMeta } from '../../src/data/schema.ts';
import { runCli, runPython, tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-inspect-');
afterAll(() => tmp.cleanup());

const clsMeta: DatasetMeta = {
  schemaVersion: 1, dataset: 'toy', language: 'zh', task: 'classification', labelNames: ['消极', '中性', '积极'],
  labelNamesEn: ['negative', 'neutral', 'positive'], audioDim: 2, visionDim: 3, textOnly: false, hasUnimodalLabels: false,
  source: 'test', license: 'test',
};
const regMeta: DatasetMeta = {
  schemaVersion: 1, dataset: 'reg', language: 'en', task: 'regression', labelRange: [-3, 3],
  audioDim: 0, visionDim: 0, textOnly: true, hasUnimodalLabels: false, source: 'test', license: 'test',
};

function cls(i: number, label: number, frames: number, text: string): AffectSample {
  return {
    id: `c${i}`, text, label,
    audio: Float32Array.from({ length: frames * 2 }, (_, k) => k + i), vision: Float32Array.from({ length: (frames + 1) * 3 }, (_, k) => k - i),
  };
}

const coll = () => join(tmp.path, 'coll');
const toy = () => join(coll(), 'toy');

beforeAll(async () => {
  // train: labels 0,0,1,2,2,2 ; audio frames 0,1,2,3,4,10 ; texts of 1..6 characters (CJK count as one each)
  const texts = ['好', '好的', 'abc', '今天很好', 'hello', '你好世界！！'];
  const frames = [0, 1, 2, 3, 4, 10];
  const labels = [0, 0, 1, 2, 2, 2];
  await writeDataset(toy(), (split) => ({ ...clsMeta, ...(split === 'train' ? { cleaned: { audio: 4, vision: 1, total: 5 } } : {}) }), {
    train: labels.map((l, i) => cls(i, l, frames[i]!, texts[i]!)),
    valid: [cls(10, 1, 2, 'ok'), cls(11, 1, 3, 'fine')],
    test: [cls(20, 0, 1, 'x')],
  }, { batchRows: 4 });
  const reg = (i: number, label: number): AffectSample => ({ id: `r${i}`, text: 'word '.repeat(i + 1).trim(), label, audio: new Float32Array(0), vision: new Float32Array(0) });
  await writeDataset(join(coll(), 'reg'), regMeta, { train: [-1, 0, 0, 0.5, 1].map((l, i) => reg(i, l)), test: [reg(9, 3)] });
});

describe('egmf data inspect', () => {
  it('--json on a dataset folder gives exact counts, label names, lengths and cleaned shares', () => {
    const r = runCli(['data', 'inspect', toy(), '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(['schema', 'splits']);
    expect(out.schema.columns.map((c: { name: string }) => c.name)).toEqual([
      'id', 'dataset', 'language', 'split', 'text', 'audio', 'vision', 'label', 'label_t', 'label_a', 'label_v', 'dialogue_id', 'utterance_index', 'speaker',
    ]);
    expect(out.schema.columns.find((c: { name: string }) => c.name === 'audio').type).toMatch(/List.*FixedSizeList\[2\]<Float32>/);
    expect(out.schema.metadata).toEqual(clsMeta);
    expect(Object.keys(out.splits)).toEqual(['train', 'valid', 'test']);
    const train = out.splits.train;
    expect(train.count).toBe(6);
    expect(train.labels).toEqual({ 消极: 2, 中性: 1, 积极: 3 });
    expect(out.splits.valid.labels).toEqual({ 消极: 0, 中性: 2, 积极: 0 });
    expect(out.splits.test.count).toBe(1);
    expect(train.lengths.audio).toEqual({ min: 0, mean: 20 / 6, median: 2.5, max: 10 });
    expect(train.lengths.vision).toEqual({ min: 1, mean: 26 / 6, median: 3.5, max: 11 });
    expect(train.lengths.text).toEqual({ min: 1, mean: 21 / 6, median: 3.5, max: 6 });
    // 20 audio frames × 2 values, 26 vision frames × 3 values.
    expect(train.cleaned).toEqual({
      audio: { values: 4, of: 40, share: 0.1 }, vision: { values: 1, of: 78, share: 1 / 78 }, total: { values: 5, of: 118, share: 5 / 118 },
    });
    expect(out.splits.valid.cleaned).toBeNull();
  });

  it('--json on a folder of datasets is keyed by dataset, with regression summaries', () => {
    const r = runCli(['data', 'inspect', coll(), '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out).sort()).toEqual(['reg', 'toy']);
    expect(out.toy.splits.train.count).toBe(6);
    const l = out.reg.splits.train.labels;
    expect(l).toMatchObject({ count: 5, min: -1, max: 1, median: 0, q25: 0, q75: 0.5, zeroShare: 0.4 });
    expect(l.mean).toBeCloseTo(0.1, 6);
    expect(l.std).toBeCloseTo(Math.sqrt((1.21 + 0.01 + 0.01 + 0.16 + 0.81) / 5), 6);
    // Text-only: no frame statistics, only text.
    expect(Object.keys(out.reg.splits.train.lengths)).toEqual(['text']);
    expect(out.reg.splits.test.labels).toMatchObject({ count: 1, min: 3, max: 3 });
  });

  it('prints readable aligned text for one split file, and names a missing path', () => {
    const r = runCli(['data', 'inspect', join(toy(), 'train.arrow')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^dataset toy \(zh, classification, 3 labels; audio 2-d, vision 3-d\)/);
    expect(r.stdout).toMatch(/label 积极\s+3\s+50\.0%/);
    expect(r.stdout).toMatch(/audio \(frames\)\s+0\s+3\.3\s+2\.5\s+10/);
    expect(r.stdout).toMatch(/cleaned \(NaN\/inf -> 0\): audio 4 \(10\.0%\)/);
    const missing = runCli(['data', 'inspect', join(tmp.path, 'nowhere')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nowhere: no such file or folder/);
  });
});

describe('egmf data validate', () => {
  it('passes a good folder of datasets', () => {
    const r = runCli(['data', 'validate', coll()]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('ok reg: train 5, test 1 rows checked\nok toy: train 6, valid 2, test 1 rows checked\n');
  });

  it('names the file, row and key of every tampered row', () => {
    const bad = join(tmp.path, 'bad');
    const py = runPython(`
import sys, json, math, os, pyarrow as pa
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
def load(name):
    return pa.ipc.open_file(os.path.join(src, name)).read_all()
def save(name, schema, rows):
    with pa.ipc.new_file(os.path.join(out, name), schema) as w:
        w.write_table(pa.Table.from_pylist(rows, schema=schema))
t = load('train.arrow')
rows = t.to_pylist()
rows[3]['label'] = 7.0            # outside the label set
rows[5]['id'] = rows[1]['id']     # duplicate id
rows[2]['split'] = 'valid'        # split column disagrees with the file name
rows[4]['audio'][1][0] = math.nan # non-finite feature value
save('train.arrow', t.schema, rows)
v = load('valid.arrow')
meta = json.loads(v.schema.metadata[b'egmf'])
meta['source'] = 'elsewhere'
save('valid.arrow', v.schema.with_metadata({b'egmf': json.dumps(meta)}), v.to_pylist())
`, [toy(), bad]);
    expect(py.stderr).toBe('');
    expect(py.status).toBe(0);
    writeFileSync(join(bad, 'test.arrow'), 'not arrow at all');
    const r = runCli(['data', 'validate', bad]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const train = join(bad, 'train.arrow').replace(/[.\\/]/g, (c) => `\\${c}`);
    expect(r.stderr).toMatch(/^error: validation failed: 6 problem\(s\)/);
    expect(r.stderr).toMatch(new RegExp(`${train}, row 3, key 'label': label 7 is outside the label set 0\\.\\.2`));
    expect(r.stderr).toMatch(new RegExp(`${train}, row 5, key 'id': duplicate id 'c1' \\(first at row 1\\)`));
    expect(r.stderr).toMatch(new RegExp(`${train}, row 2, key 'split': "valid" does not match the file name \\("train"\\)`));
    expect(r.stderr).toMatch(new RegExp(`${train}, row 4, key 'audio': 1 non-finite value`));
    expect(r.stderr).toMatch(/valid\.arrow, key 'egmf': metadata differs/);
    expect(r.stderr).toMatch(/test\.arrow: not .*Arrow/);
  });
});
