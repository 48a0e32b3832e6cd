/**
 * MSE-Adapter's processed MELD / CHERMA pickles: `<name>_<split>.pkl` (split train, valid or
 * dev, test), each a list of {features: {text, audio, video, audio_len, video_len}, label}
 * with `text` the raw utterance and `label` the label string (MSE-Adapter's
 * data/load_data.py maps it through `label_index_mapping`, silently turning unknown labels
 * into -1; here an unknown label is an error naming the file and row).
 * audio/video are padded [L, D] arrays cut to audio_len/video_len; NaN/±inf become 0, counted.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { writeDataset } from '../arrow.ts';
import { openPickle } from '../pickle/index.ts';
import { PyReader } from '../pickle/access.ts';
import type { OpenPickle, PyDict } from '../pickle/index.ts';
import { SCHEMA_VERSION } from '../schema.ts';
import type { AffectSample, DatasetMeta, Language, SplitName } from '../schema.ts';
import { clampLength, cleanFrames } from './mmsa.ts';
import { oneInput } from './types.ts';
import type { Importer, ImportReport } from './types.ts';

/** MSE-Adapter's MELD label order (config_classification.py; the MELD prompt's target set). */
export const MELD_LABELS = ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger'];
/** CHERMA's label order (LFMIM data_prepare.py labels_ch; the CHERMA prompt). */
export const CHERMA_LABELS = ['愤怒', '厌恶', '恐惧', '高兴', '平静', '悲伤', '惊奇'];
export const CHERMA_LABELS_EN = ['anger', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'];

const SETS: Record<'meld' | 'cherma', { language: Language; names: string[]; en: string[] }> = {
  meld: { language: 'en', names: MELD_LABELS, en: MELD_LABELS },
  cherma: { language: 'zh', names: CHERMA_LABELS, en: CHERMA_LABELS_EN },
};

const SPLIT_FILES: [SplitName, string[]][] = [['train', ['train']], ['valid', ['valid', 'dev']], ['test', ['test']]];

/** Label string (dataset language or English, any case) → class index, or -1. */
export function labelIndex(set: { names: string[]; en: string[] }, label: string): number {
  const t = label.trim();
  const k = set.names.indexOf(t);
  return k >= 0 ? k : set.en.indexOf(t.toLowerCase());
}

interface Parsed {
  split: SplitName;
  file: string;
  rows: { id: string; text: string; audio: Float32Array; vision: Float32Array; label: number }[];
  cleaned: { audio: number; vision: number; total: number };
  clamped: number;
  dims: { audio: number; vision: number };
}

function parseFile(file: string, split: SplitName, name: string, set: (typeof SETS)['meld']): Parsed {
  const pk: OpenPickle = openPickle(file);
  try {
    const r = new PyReader(file);
    const items = r.list(pk.value, '(top level)');
    const out: Parsed = { split, file, rows: [], cleaned: { audio: 0, vision: 0, total: 0 }, clamped: 0, dims: { audio: -1, vision: -1 } };
    items.forEach((item, row) => {
      const d: PyDict = r.dict(item, '(item)', row);
      const f = r.dict(r.get(d, '', 'features', row), 'features', row);
      const label = r.string(r.get(d, '', 'label', row), 'label', row);
      const idx = labelIndex(set, label);
      if (idx < 0) r.fail('label', `unknown label '${label}' (expected one of ${set.names.join(', ')})`, row);
      const seq = (mod: 'audio' | 'video', lenKey: string): Float32Array => {
        const key = `features.${mod}`;
        const a = r.array(r.get(f, 'features', mod, row), key);
        const shape = a.ndim === 1 ? [1, a.shape[0]!] : a.shape;
        if (shape.length !== 2) r.fail(key, `expected [frames, dim], got shape (${a.shape.join(', ')})`, row);
        const dimKey = mod === 'audio' ? 'audio' : 'vision';
        if (out.dims[dimKey] < 0) out.dims[dimKey] = shape[1]!;
        if (shape[1] !== out.dims[dimKey]) r.fail(key, `feature width ${shape[1]} differs from the first item's ${out.dims[dimKey]}`, row);
        const lens = r.numbers([r.get(f, 'features', lenKey, row)], `features.${lenKey}`);
        const c = clampLength(lens[0]!, shape[0]!);
        if (c.clamped) out.clamped++;
        const { values, cleaned } = cleanFrames(r.guard(key, () => a.float32(), row).subarray(0, c.len * shape[1]!));
        out.cleaned[dimKey] += cleaned;
        return values;
      };
      const text = r.string(r.get(f, 'features', 'text', row), 'features.text', row);
      const id = d.has('id') ? r.string(d.get('id'), 'id', row) : `${name}_${split}_${row}`;
      out.rows.push({ id, text, audio: seq('audio', 'audio_len'), vision: seq('video', 'video_len'), label: idx });
    });
    out.cleaned.total = out.cleaned.audio + out.cleaned.vision;
    return out;
  } finally {
    pk.close();
  }
}

/** Finds `<name>_<split>.pkl` files; `input` is their folder or one of them. */
function findFiles(input: string, dataset?: string): { name: 'meld' | 'cherma'; files: Map<SplitName, string>; dir: string } {
  if (!existsSync(input)) throw new EgmfError('not found', { file: input });
  const dir = statSync(input).isDirectory() ? input : dirname(input);
  const present = readdirSync(dir);
  let name = dataset;
  if (name === undefined) {
    const hint = statSync(input).isDirectory() ? present.join(' ') : basename(input);
    name = /(^|\s)cherma_/i.test(hint) ? 'cherma' : /(^|\s)meld_/i.test(hint) ? 'meld' : undefined;
    if (name === undefined) throw new EgmfError('no meld_<split>.pkl or cherma_<split>.pkl here: pass --dataset meld|cherma', { file: input, key: 'dataset' });
  }
  if (name !== 'meld' && name !== 'cherma') throw new EgmfError(`unknown dataset '${name}' (expected meld or cherma)`, { key: 'dataset' });
  const files = new Map<SplitName, string>();
  for (const [split, aliases] of SPLIT_FILES) {
    const hit = aliases.map((a) => `${name}_${a}.pkl`).find((f) => present.includes(f));
    if (hit !== undefined) files.set(split, join(dir, hit));
  }
  if (!files.has('train')) throw new EgmfError(`missing ${name}_train.pkl`, { file: dir });
  return { name, files, dir };
}

export async function importMseAdapter(args: { input: string; out: string; dataset?: string }): Promise<ImportReport> {
  const { name, files, dir } = findFiles(args.input, args.dataset);
  const set = SETS[name];
  const parsed = [...files].map(([split, file]) => parseFile(file, split, name, set));
  const dims = parsed[0]!.dims;
  for (const p of parsed) {
    for (const m of ['audio', 'vision'] as const) {
      if (p.dims[m] >= 0 && p.dims[m] !== dims[m]) throw new EgmfError(`${m} width ${p.dims[m]} differs from the train split's ${dims[m]}`, { file: p.file, key: m === 'audio' ? 'features.audio' : 'features.video' });
    }
  }
  const base: DatasetMeta = {
    schemaVersion: SCHEMA_VERSION, dataset: name, language: set.language, task: 'classification',
    labelNames: set.names, labelNamesEn: set.en, audioDim: Math.max(dims.audio, 0), visionDim: Math.max(dims.vision, 0),
    textOnly: false, hasUnimodalLabels: false, source: `MSE-Adapter processed pickles in ${dir}`,
    license: 'research use under the original dataset licence (not redistributable here)',
  };
  const bySplit = new Map(parsed.map((p) => [p.split, p]));
  const sources: Partial<Record<SplitName, Iterable<AffectSample>>> = {};
  for (const p of parsed) sources[p.split] = p.rows;
  const splits = await writeDataset(args.out, (s) => ({ ...base, cleaned: bySplit.get(s)!.cleaned, extra: { clampedLengths: bySplit.get(s)!.clamped } }), sources);
  const cleaned = { audio: 0, vision: 0, total: 0 };
  for (const p of parsed) {
    cleaned.audio += p.cleaned.audio;
    cleaned.vision += p.cleaned.vision;
  }
  cleaned.total = cleaned.audio + cleaned.vision;
  const notes = parsed.filter((p) => p.clamped > 0).map((p) => `${p.split}: ${p.clamped} length(s) of 0 or beyond the padding clamped`);
  for (const [split] of SPLIT_FILES) if (!files.has(split)) notes.push(`no ${split} file (${name}_${split}.pkl): split not written`);
  return { dataset: name, outDir: args.out, splits, cleaned, notes };
}

export const mseAdapterImporter: Importer = {
  name: 'mse-adapter',
  describe: 'MSE-Adapter processed MELD/CHERMA pickles (<name>_<split>.pkl)',
  options: {
    dataset: { type: 'string', choices: ['meld', 'cherma'], describe: 'Which dataset (default: from the file names)' },
  },
  run: async (a) => importMseAdapter({ input: oneInput(a.input, 'mse-adapter'), out: a.out, dataset: a.dataset as string | undefined }),
};
