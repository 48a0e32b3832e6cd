import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { iterateSamples, readSplitTable, writeSplit } from '../../src/data/arrow.ts';
import { BatchLoader, openLoader } from '../../src/data/loader.ts';
import type { Batch, LoaderOptions } from '../../src/data/loader.ts';
import { utf8All, utf8At } from '../../src/data/loader-columns.ts';
import type { Utf8Chunk } from '../../src/data/loader-columns.ts';
import type { AffectSample, DatasetMeta, StoredSample } from '../../src/data/schema.ts';
import { tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-loader-');
afterAll(() => tmp.cleanup());

const meta: DatasetMeta = {
  schemaVersion: 1, dataset: 'toy', language: 'en', task: 'classification', labelNames: ['neg', 'neu', 'pos'],
  audioDim: 3, visionDim: 2, textOnly: false, hasUnimodalLabels: true, source: 'test', license: 'test',
};

const N = 25;
function sample(i: number): AffectSample {
  const la = (i * 7) % 10; // 0..9 frames, some samples without audio
  const lv = 1 + ((i * 3) % 6);
  return {
    id: `u${i}`, text: `utterance ${i} 😀 ${'x'.repeat(i % 5)}`,
    audio: Float32Array.from({ length: la * 3 }, (_, k) => i * 100 + k + 1),
    vision: Float32Array.from({ length: lv * 2 }, (_, k) => -(i * 100 + k + 1)),
    label: i % 3, labelT: i % 2 ? 1 : null, labelA: 2, labelV: null,
    dialogueId: i % 4 === 0 ? null : `d${Math.floor(i / 4)}`, utteranceIndex: i % 4 === 0 ? null : i % 4, speaker: i % 2 ? 'A' : null,
  };
}

let trainPath = '';
let validPath = '';
let reference: Map<string, StoredSample>;

beforeAll(async () => {
  trainPath = join(tmp.path, 'toy', 'train.arrow');
  validPath = join(tmp.path, 'toy', 'valid.arrow');
  // batchRows 7: the file holds several record batches.
  await writeSplit(trainPath, meta, 'train', Array.from({ length: N }, (_, i) => sample(i)), { batchRows: 7 });
  await writeSplit(validPath, { ...meta, cleaned: { audio: 1, vision: 0, total: 1 } }, 'valid', Array.from({ length: 6 }, (_, i) => sample(100 + i)), { batchRows: 4 });
  const t = readSplitTable(trainPath);
  expect(t.table.batches.length).toBe(4);
  reference = new Map([...iterateSamples(t), ...iterateSamples(readSplitTable(validPath))].map((s) => [s.id, s]));
});

async function collect(l: BatchLoader, epoch?: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of l.epoch(epoch)) out.push(b);
  return out;
}

/** Checks one batch against the reference samples, given the truncation in effect. */
function expectMatches(b: Batch, maxA = Infinity, maxV = Infinity): void {
  expect(b.ids).toHaveLength(b.size);
  const La = Math.max(0, ...b.ids.map((id) => Math.min(reference.get(id)!.audio.length / 3, maxA)));
  const Lv = Math.max(0, ...b.ids.map((id) => Math.min(reference.get(id)!.vision.length / 2, maxV)));
  expect(b.audioPadLen).toBe(La);
  expect(b.visionPadLen).toBe(Lv);
  expect(b.audio.length).toBe(b.size * La * 3);
  expect(b.audioMask.length).toBe(b.size * La);
  expect(b.vision.length).toBe(b.size * Lv * 2);
  b.ids.forEach((id, i) => {
    const s = reference.get(id)!;
    const la = Math.min(s.audio.length / 3, maxA);
    const lv = Math.min(s.vision.length / 2, maxV);
    expect(b.audioLengths[i]).toBe(la);
    expect(b.visionLengths[i]).toBe(lv);
    const wantAudio = new Float32Array(La * 3);
    wantAudio.set(s.audio.subarray(0, la * 3));
    expect(Array.from(b.audio.subarray(i * La * 3, (i + 1) * La * 3))).toEqual(Array.from(wantAudio));
    const wantVision = new Float32Array(Lv * 2);
    wantVision.set(s.vision.subarray(0, lv * 2));
    expect(Array.from(b.vision.subarray(i * Lv * 2, (i + 1) * Lv * 2))).toEqual(Array.from(wantVision));
    expect(Array.from(b.audioMask.subarray(i * La, (i + 1) * La))).toEqual(Array.from({ length: La }, (_, k) => (k < la ? 1 : 0)));
    expect(Array.from(b.visionMask.subarray(i * Lv, (i + 1) * Lv))).toEqual(Array.from({ length: Lv }, (_, k) => (k < lv ? 1 : 0)));
    expect(b.labels[i]).toBe(s.label);
    expect(b.labelsT![i]).toEqual(s.labelT ?? NaN);
    expect(b.labelsA![i]).toBe(2);
    expect(b.labelsV![i]).toBeNaN();
    expect(b.dialogueIds[i]).toBe(s.dialogueId);
    expect(b.utteranceIndex[i]).toBe(s.utteranceIndex ?? -1);
    expect(b.speakers[i]).toBe(s.speaker);
  });
}

describe('BatchLoader', () => {
  it('pads, masks and labels batches exactly like iterateSamples, across record batches', async () => {
    const l = openLoader(trainPath, { batchSize: 4 });
    expect(l.size).toBe(N);
    expect(l.numBatches).toBe(7);
    const batches = await collect(l);
    expect(batches.map((b) => b.size)).toEqual([4, 4, 4, 4, 4, 4, 1]);
    expect(batches.flatMap((b) => b.ids)).toEqual(Array.from({ length: N }, (_, i) => `u${i}`));
    expect(batches.flatMap((b) => b.texts)).toEqual(Array.from({ length: N }, (_, i) => reference.get(`u${i}`)!.text));
    for (const b of batches) expectMatches(b);
    // u0 has no audio frames at all: its row is all padding.
    expect(batches[0]!.audioLengths[0]).toBe(0);
  });

  it('drops the short last batch with dropLast', async () => {
    const l = openLoader(trainPath, { batchSize: 4, dropLast: true, shuffle: true, seed: 3 });
    const batches = await collect(l);
    expect(l.numBatches).toBe(6);
    expect(batches.map((b) => b.size)).toEqual([4, 4, 4, 4, 4, 4]);
    expect(new Set(batches.flatMap((b) => b.ids)).size).toBe(24);
  });

  it('truncates audio, vision (first frames) and text (characters)', async () => {
    const l = openLoader(trainPath, { batchSize: 5, maxLen: { audio: 3, vision: 2, text: 11 } });
    const batches = await collect(l);
    for (const b of batches) {
      expectMatches(b, 3, 2);
      expect(b.audioPadLen).toBeLessThanOrEqual(3);
    }
    const texts = batches.flatMap((b) => b.texts);
    expect(texts[3]).toBe('utterance 3');
    // The emoji is one character (a surrogate pair) and is never cut in half.
    expect(openLoader(trainPath, { batchSize: 1, maxLen: { text: 13 } }).batch(Int32Array.of(0)).texts[0]).toBe('utterance 0 😀');
  });

  it('pools long audio and vision down to maxLen, keeping the whole sequence (shorten: pool)', async () => {
    const maxA = 3;
    const maxV = 2;
    const l = openLoader(trainPath, { batchSize: 5, maxLen: { audio: maxA, vision: maxV }, shorten: 'pool' });
    let pooled = 0;
    for (const b of await collect(l)) {
      expect(b.audioPadLen).toBe(Math.max(0, ...b.ids.map((id) => Math.min(reference.get(id)!.audio.length / 3, maxA))));
      for (let i = 0; i < b.size; i++) {
        const ref = reference.get(b.ids[i]!)!;
        for (const [x, D, max, L, got, lens] of [
          [ref.audio, 3, maxA, b.audioPadLen, b.audio, b.audioLengths],
          [ref.vision, 2, maxV, b.visionPadLen, b.vision, b.visionLengths],
        ] as const) {
          const n = x.length / D;
          const f = Math.min(n, max);
          expect(lens[i]).toBe(f);
          // Frame j: mean of source frames [floor(j n / f), floor((j + 1) n / f)); short ones are copied.
          const want = new Float32Array(L * D);
          for (let j = 0; j < f; j++) {
            const s0 = Math.floor((j * n) / f);
            const s1 = Math.floor(((j + 1) * n) / f);
            for (let d = 0; d < D; d++) {
              let sum = 0;
              for (let s = s0; s < s1; s++) sum += x[s * D + d]!;
              want[j * D + d] = sum / (s1 - s0);
            }
          }
          const row = Array.from(got.subarray(i * L * D, (i + 1) * L * D));
          row.forEach((v, k) => expect(v).toBeCloseTo(want[k]!, 3));
          if (n > max) pooled++;
        }
      }
    }
    expect(pooled).toBeGreaterThan(10);
    // Mean over all frames is kept: the last source frame reaches the batch (truncation drops it).
    const long = Array.from({ length: N }, (_, i) => i).find((i) => reference.get(`u${i}`)!.audio.length / 3 === 9)!;
    const one = openLoader(trainPath, { batchSize: 1, maxLen: { audio: maxA }, shorten: 'pool' }).batch(Int32Array.of(long));
    const src = reference.get(`u${long}`)!.audio;
    expect(one.audio[2 * 3]).toBeCloseTo((src[6 * 3]! + src[7 * 3]! + src[8 * 3]!) / 3, 3);
  });

  it('is deterministic for a seed, differs between epochs and seeds, covers every sample once', async () => {
    const opts: LoaderOptions = { batchSize: 4, shuffle: true, seed: 42 };
    const order = async (o: LoaderOptions, epoch: number) => (await collect(openLoader(trainPath, o), epoch)).map((b) => b.ids.join(','));
    const a0 = await order(opts, 0);
    expect(await order(opts, 0)).toEqual(a0);
    const a1 = await order(opts, 1);
    expect(a1).not.toEqual(a0);
    expect(await order({ ...opts, seed: 43 }, 0)).not.toEqual(a0);
    for (const o of [a0, a1]) expect(o.join(',').split(',').sort()).toEqual(Array.from({ length: N }, (_, i) => `u${i}`).sort());
    // The `epoch` option picks what plain async iteration yields.
    const viaOption: string[] = [];
    for await (const b of openLoader(trainPath, { ...opts, epoch: 1 })) viaOption.push(b.ids.join(','));
    expect(viaOption).toEqual(a1);
  });

  it('buckets by length: sorted within pools, every sample once, deterministic', async () => {
    const key = (id: string) => reference.get(id)!.audio.length + reference.get(id)!.vision.length;
    const opts: LoaderOptions = { batchSize: 4, shuffle: true, seed: 5, bucket: 100 };
    const l = openLoader(trainPath, opts);
    const batches = await collect(l, 2);
    expect(batches.flatMap((b) => b.ids).sort()).toEqual(Array.from({ length: N }, (_, i) => `u${i}`).sort());
    // One pool holds the whole split: batch length ranges do not overlap.
    const ranges = batches.map((b) => [Math.min(...b.ids.map(key)), Math.max(...b.ids.map(key))] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBeGreaterThanOrEqual(ranges[i - 1]![1]);
    // The batches themselves are shuffled, not in length order.
    const mins = batches.map((b) => Math.min(...b.ids.map(key)));
    expect(mins).not.toEqual([...mins].sort((x, y) => x - y));
    expect((await collect(openLoader(trainPath, opts), 2)).map((b) => b.ids)).toEqual(batches.map((b) => b.ids));
    for (const b of batches) expectMatches(b);
    // Small pools (k = 2) still cut padding compared with plain shuffling.
    const padding = async (o: LoaderOptions) => {
      let waste = 0;
      for (let e = 0; e < 5; e++) for (const b of await collect(openLoader(trainPath, o), e)) waste += b.audioMask.length - b.audioMask.reduce((s, x) => s + x, 0);
      return waste;
    };
    expect(await padding({ batchSize: 4, shuffle: true, bucket: 2 })).toBeLessThan(await padding({ batchSize: 4, shuffle: true }));
  });

  it('gives the same batches to a consumer that releases them (recycled buffers are cleared)', async () => {
    const keep = await collect(openLoader(trainPath, { batchSize: 3, shuffle: true, seed: 9 }));
    const l = openLoader(trainPath, { batchSize: 3, shuffle: true, seed: 9 });
    let i = 0;
    for await (const b of l) {
      const k = keep[i++]!;
      expect(b.ids).toEqual(k.ids);
      expect(Array.from(b.audio)).toEqual(Array.from(k.audio));
      expect(Array.from(b.visionMask)).toEqual(Array.from(k.visionMask));
      l.release(b);
      l.release(b);
    }
    expect(i).toBe(keep.length);
  });

  it('reads several files of one dataset, and refuses files of different datasets', async () => {
    const l = openLoader([trainPath, validPath], { batchSize: 8 });
    expect(l.size).toBe(N + 6);
    const batches = await collect(l);
    expect(batches.flatMap((b) => b.ids).slice(-6)).toEqual(Array.from({ length: 6 }, (_, i) => `u${100 + i}`));
    for (const b of batches) expectMatches(b);
    const other = join(tmp.path, 'other', 'test.arrow');
    await writeSplit(other, { ...meta, dataset: 'other' }, 'test', [sample(1)]);
    expect(() => openLoader([trainPath, other], { batchSize: 2 })).toThrow(/other[/\\]test\.arrow, key 'egmf': metadata differs/);
  });

  it('handles text-only datasets (no frames, empty masks)', async () => {
    const path = join(tmp.path, 'text', 'train.arrow');
    const textMeta: DatasetMeta = { ...meta, audioDim: 0, visionDim: 0, textOnly: true, hasUnimodalLabels: false };
    const rows = Array.from({ length: 7 }, (_, i) => ({ ...sample(i), audio: new Float32Array(0), vision: new Float32Array(0), labelT: null, labelA: null }));
    await writeSplit(path, textMeta, 'train', rows, { batchRows: 3 });
    for (const bucket of [0, 2]) {
      const batches = await collect(openLoader(path, { batchSize: 3, shuffle: true, bucket }));
      expect(batches.flatMap((b) => b.ids).sort()).toEqual(rows.map((r) => r.id).sort());
      for (const b of batches) {
        expect(b.audioPadLen).toBe(0);
        expect(b.audio.length).toBe(0);
        expect(b.audioMask.length).toBe(0);
        expect(b.visionMask.length).toBe(0);
        expect(Array.from(b.audioLengths)).toEqual(new Array(b.size).fill(0));
        expect(b.labelsT).toBeUndefined();
        b.ids.forEach((id, i) => expect(b.texts[i]).toBe(rows.find((r) => r.id === id)!.text));
      }
    }
  });

  it('gives each sample the texts before it in its dialogue (context), oldest first, in any batch order', async () => {
    // Dialogues of the fixture: d{k} holds samples 4k+1..4k+3 (utterance index 1..3); 4k has none.
    // A file whose rows are out of utterance order is put back in order.
    const path = join(tmp.path, 'ctx', 'train.arrow');
    const rows = [sample(3), sample(1), sample(0), sample(2), sample(5), sample(7)];
    await writeSplit(path, meta, 'train', rows, { batchRows: 4 });
    const l = openLoader(path, { batchSize: 6, context: 2, shuffle: true, seed: 5 });
    const [b] = await collect(l);
    const ctx = new Map(b!.ids.map((id, i) => [id, b!.contexts![i]]));
    const text = (i: number) => sample(i).text;
    expect(ctx.get('u1')).toEqual([]);
    expect(ctx.get('u2')).toEqual([text(1)]);
    expect(ctx.get('u3')).toEqual([text(1), text(2)]);
    expect(ctx.get('u0')).toEqual([]); // no dialogue id
    expect(ctx.get('u5')).toEqual([]);
    expect(ctx.get('u7')).toEqual([text(5)]); // 6 is not in this file: the file's own utterances only
    // Context 1 keeps the most recent one; textsAndLabels carries the same contexts.
    const one = openLoader(path, { batchSize: 6, context: 1 });
    const all = one.textsAndLabels();
    expect(all.contexts![0]).toEqual([text(1), text(2)].slice(-1));
    expect(all.contexts!.map((c) => c.length)).toEqual([1, 0, 0, 1, 0, 1]);
    // Without the option batches have no contexts.
    expect((await collect(openLoader(path, { batchSize: 6 })))[0]!.contexts).toBeUndefined();
    expect(() => openLoader(path, { batchSize: 2, context: -1 })).toThrow(/key 'context': must be a non-negative integer/);
  });

  it('padToMultipleOf pads audio and vision to a multiple (never past maxLen), the padding zero and masked', () => {
    const plain = openLoader(trainPath, { batchSize: 4, maxLen: { audio: 7 } });
    const padded = openLoader(trainPath, { batchSize: 4, maxLen: { audio: 7 }, padToMultipleOf: 4 });
    const shapes = new Set<string>();
    for (const idx of plain.plan(0)) {
      const a = plain.batch(idx);
      const b = padded.batch(idx);
      expect(b.ids).toEqual(a.ids);
      // Audio rounds up to 4 or 8 frames but stops at maxLen 7; vision (no limit) rounds up.
      expect(b.audioPadLen).toBe(a.audioPadLen === 0 ? 0 : Math.min(7, Math.ceil(a.audioPadLen / 4) * 4));
      expect(b.visionPadLen).toBe(Math.ceil(a.visionPadLen / 4) * 4);
      shapes.add(`${b.audioPadLen},${b.visionPadLen}`);
      for (const [x, y, lx, ly, dim] of [[a.audio, b.audio, a.audioPadLen, b.audioPadLen, 3], [a.vision, b.vision, a.visionPadLen, b.visionPadLen, 2]] as const) {
        for (let i = 0; i < a.size; i++) {
          expect(Array.from(y.subarray(i * ly * dim, (i * ly + lx) * dim))).toEqual(Array.from(x.subarray(i * lx * dim, (i + 1) * lx * dim)));
          expect(y.subarray((i * ly + lx) * dim, (i + 1) * ly * dim).every((v) => v === 0)).toBe(true);
        }
      }
      for (let i = 0; i < a.size; i++) {
        expect(Array.from(b.audioMask.subarray(i * b.audioPadLen, (i + 1) * b.audioPadLen)).reduce((s, m) => s + m, 0)).toBe(a.audioLengths[i]);
        expect(Array.from(b.visionMask.subarray(i * b.visionPadLen, (i + 1) * b.visionPadLen)).reduce((s, m) => s + m, 0)).toBe(a.visionLengths[i]);
      }
    }
    expect(shapes.size).toBeLessThanOrEqual(2);
  });

  it('refuses bad options and missing files with the key or file named', () => {
    const bad: [Partial<LoaderOptions> & Record<string, unknown>, RegExp][] = [
      [{ batchSize: 0 }, /key 'batchSize': must be a positive integer, got 0/],
      [{ batchSize: -2 }, /key 'batchSize'/],
      [{ batchSize: 2.5 }, /key 'batchSize'/],
      [{ batchSize: 2, bucket: -1 }, /key 'bucket': must be a non-negative integer/],
      [{ batchSize: 2, epoch: 0.5 }, /key 'epoch'/],
      [{ batchSize: 2, seed: Number.NaN }, /key 'seed'/],
      [{ batchSize: 2, maxLen: { audio: 0 } }, /key 'maxLen.audio': must be a positive integer/],
      [{ batchSize: 2, maxLen: { video: 3 } as never }, /key 'maxLen.video': unknown modality/],
      [{ batchSize: 2, shufle: true }, /key 'shufle': unknown loader option/],
      [{ batchSize: 2, shorten: 'crop' as never }, /key 'shorten': must be 'truncate' or 'pool', got "crop"/],
      [{ batchSize: 2, padToMultipleOf: 0 }, /key 'padToMultipleOf': must be a positive integer, got 0/],
    ];
    for (const [o, re] of bad) expect(() => openLoader(trainPath, o as LoaderOptions)).toThrow(re);
    expect(() => openLoader(join(tmp.path, 'missing', 'train.arrow'), { batchSize: 2 })).toThrow(/missing[/\\]train\.arrow: file not found/);
    expect(() => openLoader([], { batchSize: 2 })).toThrow(/at least one split file/);
    expect(() => openLoader(trainPath, { batchSize: 2 }).plan(-1)).toThrow(/key 'epoch'/);
  });

  it('decodes whole string chunks like per-row decoding (ASCII, CJK, emoji, nulls, invalid UTF-8)', () => {
    const chunk = (parts: (number[] | null)[]): Utf8Chunk => {
      const offsets = new Int32Array(parts.length + 2); // Arrow pads offset buffers
      const bytes: number[] = [];
      const validity = new Uint8Array(1);
      parts.forEach((p, r) => {
        if (p !== null) {
          bytes.push(...p);
          validity[0]! |= 1 << r;
        }
        offsets[r + 1] = bytes.length;
      });
      return { rows: parts.length, offsets, bytes: Uint8Array.from([...bytes, 0, 0, 0]), validity };
    };
    const enc = (s: string) => [...new TextEncoder().encode(s)];
    const cases = [
      [enc('abc'), enc(''), null, enc('xyz')],
      [enc('今天很开心'), enc('ok 😀!'), null, enc('é')],
      [enc('a'), [0xff, 0x61], enc('b😀'), [0xe4, 0xbd]],
    ];
    for (const parts of cases) {
      const c = chunk(parts);
      const rowByRow = parts.map((_, r) => utf8At(c, r));
      expect(utf8All(c)).toEqual(rowByRow);
      expect(rowByRow[0]).not.toBeNull();
    }
    expect(utf8All(chunk(cases[1]!))).toEqual(['今天很开心', 'ok 😀!', null, 'é']);
  });
});
