/**
 * Data-loader benchmark: writes a MOSEI-shaped split (74-wide audio, 35-wide vision,
 * ~50-word texts, variable lengths up to 500 / 375 frames) to a temporary folder, then
 * measures in the same process the loader (batch 32, shuffled, full epochs) against a
 * memory-bandwidth baseline that copies the same feature bytes into preallocated padded
 * buffers. Loader and baseline epochs alternate so that noise from other processes on
 * the machine hits both alike; the reported rates are medians over epochs.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { tableFromIPC } from 'apache-arrow';
import seedrandom from 'seedrandom';
import { writeSplit } from '../data/arrow.ts';
import { openLoader } from '../data/loader.ts';
import { sequenceChunks } from '../data/loader-columns.ts';
import type { SequenceChunk } from '../data/loader-columns.ts';
import type { AffectSample, DatasetMeta } from '../data/schema.ts';

export interface DataBenchOptions {
  /** Samples in the generated split (default 2000). */
  samples?: number;
  /** Timed epochs for the loader and for the baseline each, after one warm-up epoch; rates are medians over epochs (default 5). */
  epochs?: number;
  /** Seed of the generated data and of the shuffle (default 0). */
  seed?: number;
}

export interface DataBenchResult extends Record<string, unknown> {
  samples: number;
  epochs: number;
  batch_size: number;
  file_mb: number;
  write_s: number;
  open_ms: number;
  first_batch_ms: number;
  samples_per_s: number;
  baseline_samples_per_s: number;
  ratio: number;
  loader_mb_per_s: number;
  baseline_mb_per_s: number;
  /** One epoch with a consumer that keeps its batches (fresh buffers every batch). */
  no_release_samples_per_s: number;
}

const AUDIO_DIM = 74;
const VISION_DIM = 35;
const MAX_AUDIO = 500;
const MAX_VISION = 375;
const BATCH = 32;
const WORDS = 'the a movie was really not very good bad great i think it is so and but just like what this that acting plot story funny boring love hate'.split(' ');

export const MOSEI_BENCH_META: DatasetMeta = {
  schemaVersion: 1, dataset: 'mosei-bench', language: 'en', task: 'regression', labelRange: [-3, 3],
  audioDim: AUDIO_DIM, visionDim: VISION_DIM, textOnly: false, hasUnimodalLabels: false,
  source: 'egmf bench (synthetic, deterministic)', license: 'Apache-2.0',
};

/** Deterministic MOSEI-shaped samples; feature values come from a fast integer hash. */
export function* moseiLikeSamples(n: number, seed: number): Generator<AffectSample> {
  const rng = seedrandom(`egmf-bench-data/${seed}`);
  let state = (seed * 2654435761) >>> 0;
  const fill = (len: number): Float32Array => {
    const out = new Float32Array(len);
    for (let i = 0; i < len; i++) {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = Math.imul(state ^ (state >>> 15), state | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 32 - 0.5;
    }
    return out;
  };
  for (let i = 0; i < n; i++) {
    const la = 1 + Math.floor(rng() * MAX_AUDIO);
    const lv = 1 + Math.floor(rng() * MAX_VISION);
    const words = 40 + Math.floor(rng() * 21);
    const text = Array.from({ length: words }, () => WORDS[Math.floor(rng() * WORDS.length)]!).join(' ');
    yield {
      id: `bench_${i}`, text, audio: fill(la * AUDIO_DIM), vision: fill(lv * VISION_DIM),
      label: Math.round((rng() * 6 - 3) * 3) / 3,
    };
  }
}

/** Copies every sample's frames into reused padded buffers, in file order: the bandwidth floor. */
function baselineEpoch(seqs: SequenceChunk[][], rowCounts: number[], bufs: Float32Array[]): number {
  let copied = 0;
  for (let m = 0; m < seqs.length; m++) {
    const buf = bufs[m]!;
    for (let k = 0; k < seqs[m]!.length; k++) {
      const c = seqs[m]![k]!;
      const rows = rowCounts[k]!;
      for (let s = 0; s < rows; s += BATCH) {
        const end = Math.min(rows, s + BATCH);
        let L = 0;
        for (let r = s; r < end; r++) L = Math.max(L, c.offsets[r + 1]! - c.offsets[r]!);
        const stride = L * c.dim;
        for (let r = s; r < end; r++) {
          const src = c.values.subarray(c.offsets[r]! * c.dim, c.offsets[r + 1]! * c.dim);
          const at = (r - s) * stride;
          buf.set(src, at);
          buf.fill(0, at + src.length, at + stride);
          copied += src.length;
        }
      }
    }
  }
  return copied;
}

export async function runDataBench(opts: DataBenchOptions = {}): Promise<DataBenchResult> {
  const n = opts.samples ?? 2000;
  const epochs = opts.epochs ?? 5;
  const seed = opts.seed ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'egmf-bench-data-'));
  try {
    const path = join(dir, 'train.arrow');
    let t0 = performance.now();
    await writeSplit(path, MOSEI_BENCH_META, 'train', moseiLikeSamples(n, seed));
    const writeS = (performance.now() - t0) / 1000;
    const fileBytes = statSync(path).size;

    t0 = performance.now();
    const loader = openLoader(path, { batchSize: BATCH, shuffle: true, seed });
    const openMs = performance.now() - t0;
    const first = loader.epochSync(0).next();
    const firstBatchMs = performance.now() - t0;
    if (first.done === true) throw new Error('bench dataset produced no batch');

    // The baseline reads the same bytes and locates the feature buffers without copying.
    const table = tableFromIPC(readFileSync(path));
    const seqs = [sequenceChunks(table, 'audio', AUDIO_DIM, path), sequenceChunks(table, 'vision', VISION_DIM, path)];
    const rowCounts = table.getChild('audio')!.data.map((d) => d.length);
    const bufs = [new Float32Array(BATCH * MAX_AUDIO * AUDIO_DIM), new Float32Array(BATCH * MAX_VISION * VISION_DIM)];

    const loaderMs: number[] = [];
    const baseMs: number[] = [];
    let values = 0;
    for (let e = 0; e <= epochs; e++) {
      let t = performance.now();
      let v = 0;
      for (const b of loader.epochSync(e)) {
        v += b.audioLengths.reduce((a, x) => a + x, 0) * AUDIO_DIM + b.visionLengths.reduce((a, x) => a + x, 0) * VISION_DIM;
        loader.release(b);
      }
      const lt = performance.now() - t;
      t = performance.now();
      const bv = baselineEpoch(seqs, rowCounts, bufs);
      const bt = performance.now() - t;
      if (bv !== v) throw new Error(`bench mismatch: loader copied ${v} values, baseline ${bv}`);
      if (e === 0) continue; // warm-up
      loaderMs.push(lt);
      baseMs.push(bt);
      values = v;
    }
    // A consumer that never releases gets fresh (page-faulting) buffers per batch.
    const fresh = openLoader(path, { batchSize: BATCH, shuffle: true, seed });
    const t1 = performance.now();
    for (const _b of fresh.epochSync(0)) { /* consume */ }
    const freshSps = n / ((performance.now() - t1) / 1000);
    // Medians over epochs resist bursts of load from other processes.
    const lSec = median(loaderMs) / 1000;
    const bSec = median(baseMs) / 1000;
    const mb = (values * 4) / 1e6;
    const sps = n / lSec;
    const bsps = n / bSec;
    return {
      samples: n, epochs, batch_size: BATCH, file_mb: round(fileBytes / 1e6, 1), write_s: round(writeS, 2),
      open_ms: round(openMs, 1), first_batch_ms: round(firstBatchMs, 1),
      samples_per_s: round(sps, 0), baseline_samples_per_s: round(bsps, 0), ratio: round(sps / bsps, 3),
      loader_mb_per_s: round(mb / lSec, 0), baseline_mb_per_s: round(mb / bSec, 0),
      no_release_samples_per_s: round(freshSps, 0),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
