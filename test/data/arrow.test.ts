import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateSamples, readSplitTable, splitCacheBudget, splitCacheSize, writeSplit } from '../../src/data/arrow.ts';
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

describe('split files read once per process', () => {
  const withBudget = <T>(mb: string | undefined, fn: () => T): T => {
    const old = process.env.EGMF_SPLIT_CACHE_MB;
    if (mb === undefined) delete process.env.EGMF_SPLIT_CACHE_MB;
    else process.env.EGMF_SPLIT_CACHE_MB = mb;
    try {
      return fn();
    } finally {
      if (old === undefined) delete process.env.EGMF_SPLIT_CACHE_MB;
      else process.env.EGMF_SPLIT_CACHE_MB = old;
    }
  };

  it('gives an unchanged file its table again without reading it, and reads a rewritten one afresh', async () => {
    const path = join(tmp.path, 'cache', 'train.arrow');
    await writeSplit(path, meta, 'train', [sample(1), sample(2)]);
    const a = withBudget(undefined, () => readSplitTable(path));
    const b = withBudget(undefined, () => readSplitTable(join(tmp.path, 'cache', '..', 'cache', 'train.arrow')));
    expect(b.table).toBe(a.table);
    expect(b.path).toBe(join(tmp.path, 'cache', '..', 'cache', 'train.arrow')); // the caller's own path
    await writeSplit(path, meta, 'train', [sample(3), sample(4), sample(5)]);
    const c = withBudget(undefined, () => readSplitTable(path));
    expect(c.table).not.toBe(a.table);
    expect([...iterateSamples(c)].map((x) => x.id)).toEqual(['s3', 's4', 's5']);
    expect([...iterateSamples(a)].map((x) => x.id)).toEqual(['s1', 's2']); // an earlier holder keeps its rows
  });

  it('keeps at most its budget, least recently used out first; 0 keeps nothing; a file that does not parse is never kept', async () => {
    const paths = await Promise.all([0, 1, 2].map(async (i) => {
      const p = join(tmp.path, 'budget', `s${i}.arrow`);
      await writeSplit(p, meta, 'train', Array.from({ length: 40 }, (_, k) => sample(k + i)));
      return p;
    }));
    const size = statSync(paths[0]!).size;
    // Room for two of the three files.
    const mb = String((2.5 * size) / 2 ** 20);
    withBudget(mb, () => {
      const t0 = readSplitTable(paths[0]!);
      const t1 = readSplitTable(paths[1]!);
      expect(readSplitTable(paths[0]!).table).toBe(t0.table); // 0 is now the most recently used
      readSplitTable(paths[2]!); // evicts 1 (and anything older from other tests), keeps 0
      expect(splitCacheSize().bytes).toBeLessThanOrEqual(2.5 * size);
      expect(readSplitTable(paths[0]!).table).toBe(t0.table);
      expect(readSplitTable(paths[1]!).table).not.toBe(t1.table);
    });
    withBudget('0', () => {
      const t = readSplitTable(paths[2]!);
      expect(readSplitTable(paths[2]!).table).not.toBe(t.table);
    });
    const bad = join(tmp.path, 'budget', 'bad.arrow');
    writeFileSync(bad, readFileSync(paths[0]!).subarray(0, 100));
    const n = splitCacheSize().files;
    expect(() => withBudget(undefined, () => readSplitTable(bad))).toThrow(/bad\.arrow: .*(truncated|not)/);
    expect(splitCacheSize().files).toBe(n);
  });

  it('refuses a budget that is not a number of megabytes, naming the variable', () => {
    expect(splitCacheBudget({})).toBe(512 * 2 ** 20);
    expect(splitCacheBudget({ EGMF_SPLIT_CACHE_MB: '1.5' })).toBe(1.5 * 2 ** 20);
    expect(() => splitCacheBudget({ EGMF_SPLIT_CACHE_MB: 'lots' })).toThrow(/key 'EGMF_SPLIT_CACHE_MB': must be a number of megabytes >= 0, got 'lots'/);
    expect(() => splitCacheBudget({ EGMF_SPLIT_CACHE_MB: '-1' })).toThrow(/EGMF_SPLIT_CACHE_MB/);
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
