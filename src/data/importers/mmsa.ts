/**
 * MMSA pickles (MOSEI/MOSI `unaligned_50.pkl`, CH-SIMS `unaligned_39.pkl`, SIMS-V2 `ch-simsv2s.pkl`).
 *
 * Layout: {train, valid, test}, each {raw_text [N], audio [N, La, Da], vision [N, Lv, Dv],
 * id [N], regression_labels [N], audio_lengths [N], vision_lengths [N], ...}; SIMS adds
 * regression_labels_T/_A/_V. `text` / `text_bert` (BERT features, token ids) are not imported:
 * the schema keeps raw text, and those arrays are never read from disk.
 *
 * MMSA pads every sequence to La/Lv; the lengths cut the padding off. Some MMSA pickles hold
 * lengths of 0 or longer than the padding: they are clamped to [0, L] and counted in the notes.
 * MMSA replaces -inf (audio) and NaN (vision) by 0 when it loads; here every NaN/±inf in the
 * kept frames becomes 0 and is counted per modality and split (report and split metadata).
 * A label outside the dataset's range is an error naming file, split and row: never clipped.
 */
import { basename } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { writeDataset } from '../arrow.ts';
import { openPickle } from '../pickle/index.ts';
import { PyReader } from '../pickle/access.ts';
import type { NdArray, PyDict } from '../pickle/index.ts';
import { SCHEMA_VERSION, SPLITS } from '../schema.ts';
import type { AffectSample, DatasetMeta, Language, SplitName } from '../schema.ts';
import { oneInput } from './types.ts';
import type { Importer, ImportReport } from './types.ts';

export const MMSA_DATASETS = ['mosei', 'mosi', 'sims-v2', 'sims'] as const;
export type MmsaDataset = (typeof MMSA_DATASETS)[number];

const INFO: Record<MmsaDataset, { language: Language; range: [number, number] }> = {
  mosei: { language: 'en', range: [-3, 3] },
  mosi: { language: 'en', range: [-3, 3] },
  'sims-v2': { language: 'zh', range: [-1, 1] },
  sims: { language: 'zh', range: [-1, 1] },
};

/** Counts NaN/±inf and replaces them by 0 in a copy (the input, possibly a view into the file, is left alone). */
export function cleanFrames(values: Float32Array): { values: Float32Array; cleaned: number } {
  let cleaned = 0;
  for (let k = 0; k < values.length; k++) if (!Number.isFinite(values[k]!)) cleaned++;
  if (cleaned === 0) return { values, cleaned };
  const out = values.slice();
  for (let k = 0; k < out.length; k++) if (!Number.isFinite(out[k]!)) out[k] = 0;
  return { values: out, cleaned };
}

/** A sequence length clamped to [0, padded]; `clamped` says whether it had to be. */
export function clampLength(len: number, padded: number): { len: number; clamped: boolean } {
  const n = Math.trunc(len);
  const c = Math.min(Math.max(n, 0), padded);
  return { len: c, clamped: c !== n || n === 0 };
}

/** Dataset from --dataset, else the file name / folders, else --language. */
export function inferMmsaDataset(input: string, dataset?: string, language?: string): MmsaDataset {
  if (dataset !== undefined) {
    if (!(MMSA_DATASETS as readonly string[]).includes(dataset)) {
      throw new EgmfError(`unknown dataset '${dataset}' (expected one of ${MMSA_DATASETS.join(', ')})`, { key: 'dataset' });
    }
    const ds = dataset as MmsaDataset;
    if (language !== undefined && INFO[ds].language !== language) {
      throw new EgmfError(`--language ${language} contradicts --dataset ${ds} (${INFO[ds].language})`, { key: 'language' });
    }
    return ds;
  }
  for (const text of [basename(input).toLowerCase(), input.toLowerCase()]) {
    if (/sims-?v2/.test(text)) return 'sims-v2';
    if (/sims/.test(text)) return 'sims';
    if (/mosei/.test(text)) return 'mosei';
    if (/mosi/.test(text)) return 'mosi';
  }
  if (language === 'zh') return 'sims-v2';
  if (language === 'en') return 'mosei';
  throw new EgmfError('cannot tell the dataset from the file name: pass --dataset mosei|mosi|sims-v2|sims (or --language en|zh)', { file: input, key: 'dataset' });
}

interface SplitPlan {
  split: SplitName;
  n: number;
  ids: string[];
  texts: string[];
  labels: number[];
  unimodal: Partial<Record<'T' | 'A' | 'V', number[]>>;
  audio: NdArray;
  vision: NdArray;
  audioLen: number[];
  visionLen: number[];
  cleaned: { audio: number; vision: number; total: number };
  clamped: number;
}

function planSplit(r: PyReader, root: PyDict, split: SplitName, range: [number, number]): SplitPlan {
  const d = r.dict(r.get(root, '', split), split);
  const key = (k: string) => `${split}.${k}`;
  const labels = r.numbers(r.get(d, split, 'regression_labels'), key('regression_labels'));
  const n = labels.length;
  const audio = r.array(r.get(d, split, 'audio'), key('audio'), 3);
  const vision = r.array(r.get(d, split, 'vision'), key('vision'), 3);
  const ids = r.strings(r.get(d, split, 'id'), key('id'));
  const texts = r.strings(r.get(d, split, 'raw_text'), key('raw_text'));
  const audioLenRaw = r.numbers(r.get(d, split, 'audio_lengths'), key('audio_lengths'));
  const visionLenRaw = r.numbers(r.get(d, split, 'vision_lengths'), key('vision_lengths'));
  const counts: [string, number][] = [['audio', audio.shape[0]!], ['vision', vision.shape[0]!], ['id', ids.length],
    ['raw_text', texts.length], ['audio_lengths', audioLenRaw.length], ['vision_lengths', visionLenRaw.length]];
  for (const [k, c] of counts) if (c !== n) r.fail(key(k), `has ${c} entries but regression_labels has ${n}`);
  const checkRange = (vals: number[], k: string) => vals.forEach((v, row) => {
    if (!Number.isFinite(v) || v < range[0] || v > range[1]) r.fail(key(k), `label ${v} is outside the range [${range[0]}, ${range[1]}]`, row);
  });
  checkRange(labels, 'regression_labels');
  const unimodal: SplitPlan['unimodal'] = {};
  for (const m of ['T', 'A', 'V'] as const) {
    const name = `regression_labels_${m}`;
    if (!d.has(name)) continue;
    const vals = r.numbers(d.get(name)!, key(name));
    if (vals.length !== n) r.fail(key(name), `has ${vals.length} entries but regression_labels has ${n}`);
    checkRange(vals, name);
    unimodal[m] = vals;
  }
  let clamped = 0;
  const clampAll = (lens: number[], padded: number) => lens.map((l) => {
    const c = clampLength(l, padded);
    if (c.clamped) clamped++;
    return c.len;
  });
  const audioLen = clampAll(audioLenRaw, audio.shape[1]!);
  const visionLen = clampAll(visionLenRaw, vision.shape[1]!);
  const plan: SplitPlan = { split, n, ids, texts, labels, unimodal, audio, vision, audioLen, visionLen, clamped, cleaned: { audio: 0, vision: 0, total: 0 } };
  // Counting first: the per-split counts go into the file's schema metadata, written before any row.
  for (let i = 0; i < n; i++) {
    plan.cleaned.audio += cleanFrames(frames(r, plan, 'audio', i)).cleaned;
    plan.cleaned.vision += cleanFrames(frames(r, plan, 'vision', i)).cleaned;
  }
  plan.cleaned.total = plan.cleaned.audio + plan.cleaned.vision;
  return plan;
}

/** The kept frames of sample i (padding cut off), flat row-major. */
function frames(r: PyReader, p: SplitPlan, mod: 'audio' | 'vision', i: number): Float32Array {
  const arr = p[mod];
  const len = (mod === 'audio' ? p.audioLen : p.visionLen)[i]!;
  return r.guard(`${p.split}.${mod}`, () => arr.rowFloat32(i).subarray(0, len * arr.shape[2]!), i);
}

function* samples(r: PyReader, p: SplitPlan): Generator<AffectSample> {
  for (let i = 0; i < p.n; i++) {
    yield {
      id: p.ids[i]!,
      text: p.texts[i]!,
      audio: cleanFrames(frames(r, p, 'audio', i)).values,
      vision: cleanFrames(frames(r, p, 'vision', i)).values,
      label: p.labels[i]!,
      labelT: p.unimodal.T?.[i] ?? null,
      labelA: p.unimodal.A?.[i] ?? null,
      labelV: p.unimodal.V?.[i] ?? null,
    };
  }
}

export async function importMmsa(args: { input: string; out: string; dataset?: string; language?: string }): Promise<ImportReport> {
  const dataset = inferMmsaDataset(args.input, args.dataset, args.language);
  const { language, range } = INFO[dataset];
  const pk = openPickle(args.input);
  try {
    const r = new PyReader(args.input);
    const root = r.dict(pk.value, '(top level)');
    const plans = SPLITS.map((s) => planSplit(r, root, s, range));
    const dims = (mod: 'audio' | 'vision') => {
      const d = plans[0]![mod].shape[2]!;
      for (const p of plans) if (p[mod].shape[2] !== d) r.fail(`${p.split}.${mod}`, `feature width ${p[mod].shape[2]} differs from train's ${d}`);
      return d;
    };
    const audioDim = dims('audio');
    const visionDim = dims('vision');
    const hasUnimodal = plans.every((p) => p.unimodal.T && p.unimodal.A && p.unimodal.V);
    const base: DatasetMeta = {
      schemaVersion: SCHEMA_VERSION, dataset, language, task: 'regression', labelRange: range,
      audioDim, visionDim, textOnly: false, hasUnimodalLabels: hasUnimodal,
      source: `MMSA pickle ${basename(args.input)}`,
      license: 'research use under the original dataset licence (not redistributable here)',
    };
    const byName = new Map(plans.map((p) => [p.split, p]));
    const splits = await writeDataset(
      args.out,
      (s) => {
        const p = byName.get(s)!;
        return { ...base, cleaned: p.cleaned, extra: { paddedAudioFrames: p.audio.shape[1], paddedVisionFrames: p.vision.shape[1], clampedLengths: p.clamped } };
      },
      Object.fromEntries(plans.map((p) => [p.split, samples(r, p)])),
    );
    const cleaned = { audio: 0, vision: 0, total: 0 };
    for (const p of plans) {
      cleaned.audio += p.cleaned.audio;
      cleaned.vision += p.cleaned.vision;
    }
    cleaned.total = cleaned.audio + cleaned.vision;
    const notes = plans.filter((p) => p.clamped > 0).map((p) => `${p.split}: ${p.clamped} sequence length(s) of 0 or beyond the padding were clamped to [0, padded length]`);
    if (!hasUnimodal && (dataset === 'sims' || dataset === 'sims-v2')) notes.push('no regression_labels_T/_A/_V in every split: unimodal labels left empty');
    return { dataset, outDir: args.out, splits, cleaned, notes };
  } finally {
    pk.close();
  }
}

export const mmsaImporter: Importer = {
  name: 'mmsa',
  describe: 'MMSA pickle (MOSEI/MOSI unaligned_50.pkl, SIMS-V2 ch-simsv2s.pkl)',
  options: {
    dataset: { type: 'string', choices: [...MMSA_DATASETS], describe: 'Dataset in the pickle (default: from the file name, else --language)' },
    language: { type: 'string', choices: ['en', 'zh'], describe: 'en → mosei, zh → sims-v2 when the file name does not say' },
  },
  run: async (a) => importMmsa({ input: oneInput(a.input, 'mmsa'), out: a.out, dataset: a.dataset as string | undefined, language: a.language as string | undefined }),
};
