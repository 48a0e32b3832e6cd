import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateSamples, readSplitTable, writeSplit } from '../../src/data/arrow.ts';
import type { AffectSample, DatasetMeta } from '../../src/data/schema.ts';
import { runPython, tempDir } from '../helpers.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const meta: DatasetMeta = {
  schemaVersion: 1, dataset: 'sims-v2', language: 'zh', task: 'regression', labelRange: [-1, 1],
  audioDim: 3, visionDim: 2, textOnly: false, hasUnimodalLabels: true, source: 'test', license: 'test',
};

function sample(i: number): AffectSample {
  const la = i % 4;
  const lv = (i * 3) % 5;
  return {
    id: `s${i}`, text: `第${i}句：今天很开心`,
    audio: Float32Array.from({ length: la * 3 }, (_, k) => i + k / 10),
    vision: Float32Array.from({ length: lv * 2 }, (_, k) => -i - k / 10),
    label: ((i % 21) - 10) / 10, labelT: 0.5, labelA: null, labelV: -0.5,
    dialogueId: i % 2 ? `d${i}` : null, utteranceIndex: i % 2 ? i : null, speaker: null,
  };
}

describe('arrow split files', () => {
  it('round-trips samples across several record batches', async () => {
    const path = join(tmp.path, 'rt', 'train.arrow');
    const n = await writeSplit(path, meta, 'train', Array.from({ length: 25 }, (_, i) => sample(i)), { batchRows: 7 });
    expect(n).toBe(25);
    const t = readSplitTable(path);
    expect(t.meta).toEqual(meta);
    const back = [...iterateSamples(t)];
    expect(back).toHaveLength(25);
    for (let i = 0; i < 25; i++) {
      const want = sample(i);
      expect(back[i]!.id).toBe(want.id);
      expect(back[i]!.text).toBe(want.text);
      expect(Array.from(back[i]!.audio)).toEqual(Array.from(want.audio));
      expect(Array.from(back[i]!.vision)).toEqual(Array.from(want.vision));
      expect(back[i]!.label).toBeCloseTo(want.label, 6);
      expect(back[i]!.labelA).toBeNull();
      expect(back[i]!.dialogueId).toBe(want.dialogueId);
      expect(back[i]!.split).toBe('train');
      expect(back[i]!.language).toBe('zh');
    }
    expect(readdirSync(join(tmp.path, 'rt'))).toEqual(['train.arrow']);
  });

  it('is read by pyarrow and reads what pyarrow writes', async () => {
    const path = join(tmp.path, 'py', 'valid.arrow');
    await writeSplit(path, meta, 'valid', [sample(1), sample(2), sample(3)]);
    const out = join(tmp.path, 'py', 'test.arrow');
    const r = runPython(`
import sys, json, pyarrow as pa
t = pa.ipc.open_file(sys.argv[1]).read_all()
meta = json.loads(t.schema.metadata[b'egmf'])
rows = t.to_pylist()
assert meta['dataset'] == 'sims-v2', meta
assert rows[0]['text'] == '第1句：今天很开心', rows[0]['text']
assert len(rows[0]['audio']) == 1 and len(rows[0]['audio'][0]) == 3
assert [round(x, 4) for x in rows[2]['vision'][1]] == [-3.2, -3.3], rows[2]['vision']
# write a new split with pyarrow in the same schema
rows2 = [dict(r, split='test', id='py'+r['id'], text=r['text']+'！') for r in rows]
t2 = pa.Table.from_pylist(rows2, schema=t.schema)
with pa.ipc.new_file(sys.argv[2], t.schema) as w:
    w.write_table(t2)
print('ok', t.num_rows)
`, [path, out]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok 3');
    const t = readSplitTable(out);
    const back = [...iterateSamples(t)];
    expect(back.map((s) => s.id)).toEqual(['pys1', 'pys2', 'pys3']);
    expect(back[0]!.text).toBe('第1句：今天很开心！');
    expect(back[2]!.split).toBe('test');
    expect(Array.from(back[2]!.vision)).toEqual(Array.from(sample(3).vision));
  });

  it('refuses bad samples with the file and row, leaving no file behind', async () => {
    const dir = join(tmp.path, 'bad');
    const path = join(dir, 'train.arrow');
    const rows = [sample(0), sample(1), { ...sample(2), label: 1.5 }];
    await expect(writeSplit(path, meta, 'train', rows)).rejects.toThrow(/train\.arrow, row 2, key 'label'.*outside the range/);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
    const wide = [{ ...sample(5), audio: new Float32Array(4) }];
    await expect(writeSplit(path, meta, 'train', wide)).rejects.toThrow(/row 0, key 'audio'.*feature width mismatch/);
    await expect(writeSplit(path, meta, 'train', [])).rejects.toThrow(/split 'train' is empty/);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it('names the file for missing, truncated and foreign files', async () => {
    expect(() => readSplitTable(join(tmp.path, 'nope.arrow'))).toThrow(/nope\.arrow: file not found/);
    const path = join(tmp.path, 'trunc', 'train.arrow');
    await writeSplit(path, meta, 'train', [sample(1), sample(2)]);
    const bytes = readFileSync(path);
    const cut = join(tmp.path, 'trunc', 'cut.arrow');
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    expect(() => readSplitTable(cut)).toThrow(/cut\.arrow: .*(truncated|not)/);
    const foreign = join(tmp.path, 'foreign.arrow');
    const r = runPython(`
import sys, pyarrow as pa
t = pa.table({'a': [1, 2]})
with pa.ipc.new_file(sys.argv[1], t.schema) as w: w.write_table(t)
`, [foreign]);
    expect(r.status).toBe(0);
    expect(() => readSplitTable(foreign)).toThrow(/foreign\.arrow, key 'egmf': no affect-schema metadata/);
  });
});

describe('writeDataset', () => {
  it('writes all splits, or none when one split is bad', async () => {
    const { writeDataset } = await import('../../src/data/arrow.ts');
    const out = join(tmp.path, 'ds');
    const counts = await writeDataset(out, meta, { train: [sample(0), sample(1)], valid: [sample(2)], test: [sample(3)] });
    expect(counts).toEqual({ train: 2, valid: 1, test: 1 });
    expect(readdirSync(out).sort()).toEqual(['test.arrow', 'train.arrow', 'valid.arrow']);
    const out2 = join(tmp.path, 'ds2');
    await expect(writeDataset(out2, meta, { train: [sample(0)], valid: [sample(1)], test: [{ ...sample(2), label: 9 }] }))
      .rejects.toThrow(/test\.arrow, row 0, key 'label'/);
    expect(existsSync(out2) ? readdirSync(out2) : []).toEqual([]);
  });
});
