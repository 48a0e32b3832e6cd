/**
 * CHERMA as its authors distribute the extracted features (Sun et al. 2023, LFMIM;
 * github.com/sunjunaimer/LFMIM, data_prepare.py):
 *
 *   <root>/<stage>.json                  [{audio_file, video_file, txt_label, audio_label,
 *                                           visual_label, video_label}, ...]
 *   <root>/audio/<stage>/<id>.npy        [La, 1024] audio features (variable length)
 *   <root>/visual/<stage>/<id>.mp4.npy   [Lv, 2048] visual features
 *   <root>/text/<stage>/<id>.npy         [Lt, 1024] text features (not imported)
 *
 * with <id> = audio_file without '.wav' (LFMIM uses it for the visual file too) and labels
 * as Chinese class names (labels_ch). `video_label` is the multimodal label; the three
 * others become the unimodal label columns.
 * Assumptions (not visible in LFMIM's code): stages are train, valid (or dev) and test,
 * of which only train is required; labels may also be the English names; the entries
 * carry no raw text in LFMIM's loader, so `text` is taken from an entry's `text` field when
 * present and is empty otherwise (reported as a note).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { writeDataset } from '../arrow.ts';
import { readNpy } from '../npy.ts';
import { PyReader } from '../pickle/access.ts';
import { SCHEMA_VERSION } from '../schema.ts';
import type { AffectSample, DatasetMeta, SplitName } from '../schema.ts';
import { cleanFrames } from './mmsa.ts';
import { CHERMA_LABELS, CHERMA_LABELS_EN, labelIndex } from './mse-adapter.ts';
import { oneInput } from './types.ts';
import type { Importer, ImportReport } from './types.ts';

const STAGES: [SplitName, string[]][] = [['train', ['train']], ['valid', ['valid', 'dev']], ['test', ['test']]];
const LABEL_KEYS = ['video_label', 'txt_label', 'audio_label', 'visual_label'] as const;
const SET = { names: CHERMA_LABELS, en: CHERMA_LABELS_EN };

interface Stage {
  split: SplitName;
  stage: string;
  file: string;
  samples: AffectSample[];
  cleaned: { audio: number; vision: number; total: number };
  withText: number;
}

/** A feature file as [frames, dim] float32; a 1-d array is one frame. */
function features(path: string, file: string, row: number, key: string): { values: Float32Array; dim: number } {
  if (!existsSync(path)) throw new EgmfError(`feature file missing: ${path}`, { file, row, key });
  const a = readNpy(path);
  if (a.ndim !== 1 && a.ndim !== 2) throw new EgmfError(`expected [frames, dim], got shape (${a.shape.join(', ')})`, { file: path, key });
  const r = new PyReader(path);
  return { values: r.guard(key, () => a.float32()), dim: a.shape[a.ndim - 1]! };
}

function readStage(root: string, split: SplitName, stage: string, dims: { audio: number; vision: number }): Stage {
  const file = join(root, `${stage}.json`);
  let entries: unknown;
  try {
    entries = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new EgmfError(`not valid JSON (${(e as Error).message})`, { file }, { cause: e });
  }
  if (!Array.isArray(entries)) throw new EgmfError('expected a JSON array of entries', { file });
  const out: Stage = { split, stage, file, samples: [], cleaned: { audio: 0, vision: 0, total: 0 }, withText: 0 };
  entries.forEach((e: unknown, row) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new EgmfError('entry is not an object', { file, row });
    const entry = e as Record<string, unknown>;
    const str = (key: string): string => {
      const v = entry[key];
      if (typeof v !== 'string' || v.length === 0) throw new EgmfError(`missing or not a string`, { file, row, key });
      return v;
    };
    const id = str('audio_file').replace(/\.wav$/, '');
    const labels = LABEL_KEYS.map((key) => {
      const name = str(key);
      const k = labelIndex(SET, name);
      if (k < 0) throw new EgmfError(`unknown label '${name}' (expected one of ${CHERMA_LABELS.join(' ')})`, { file, row, key });
      return k;
    });
    str('video_file');
    const feats: Record<'audio' | 'vision', Float32Array> = { audio: new Float32Array(0), vision: new Float32Array(0) };
    for (const [mod, sub, suffix] of [['audio', 'audio', '.npy'], ['vision', 'visual', '.mp4.npy']] as const) {
      const f = features(join(root, sub, stage, `${id}${suffix}`), file, row, mod === 'audio' ? 'audio_file' : 'video_file');
      if (dims[mod] < 0) dims[mod] = f.dim;
      if (f.dim !== dims[mod]) throw new EgmfError(`${mod} width ${f.dim} differs from the first entry's ${dims[mod]}`, { file: join(root, sub, stage, `${id}${suffix}`) });
      const c = cleanFrames(f.values);
      out.cleaned[mod] += c.cleaned;
      feats[mod] = c.values;
    }
    const text = typeof entry.text === 'string' ? entry.text : '';
    if (text !== '') out.withText++;
    out.samples.push({ id, text, audio: feats.audio, vision: feats.vision, label: labels[0]!, labelT: labels[1]!, labelA: labels[2]!, labelV: labels[3]! });
  });
  out.cleaned.total = out.cleaned.audio + out.cleaned.vision;
  return out;
}

export async function importCherma(args: { input: string; out: string }): Promise<ImportReport> {
  const root = args.input;
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new EgmfError('expected the CHERMA folder holding train.json', { file: root });
  const dims = { audio: -1, vision: -1 };
  const stages: Stage[] = [];
  const notes: string[] = [];
  for (const [split, names] of STAGES) {
    const stage = names.find((n) => existsSync(join(root, `${n}.json`)));
    if (stage === undefined) {
      if (split === 'train') throw new EgmfError('missing train.json', { file: root });
      notes.push(`no ${names.map((n) => `${n}.json`).join(' or ')}: split '${split}' not written`);
      continue;
    }
    stages.push(readStage(root, split, stage, dims));
  }
  const withText = stages.reduce((a, s) => a + s.withText, 0);
  const total = stages.reduce((a, s) => a + s.samples.length, 0);
  if (withText < total) notes.push(`${total - withText} of ${total} entries have no 'text' field: their text is empty (CHERMA ships text as features only)`);
  const base: DatasetMeta = {
    schemaVersion: SCHEMA_VERSION, dataset: 'cherma', language: 'zh', task: 'classification',
    labelNames: CHERMA_LABELS, labelNamesEn: CHERMA_LABELS_EN, audioDim: dims.audio, visionDim: dims.vision,
    textOnly: false, hasUnimodalLabels: true, source: `CHERMA features (LFMIM layout) in ${root}`,
    license: 'research use under the CHERMA licence (not redistributable here)',
  };
  const bySplit = new Map(stages.map((s) => [s.split, s]));
  const splits = await writeDataset(args.out, (s) => ({ ...base, cleaned: bySplit.get(s)!.cleaned, extra: { stageFile: `${bySplit.get(s)!.stage}.json` } }),
    Object.fromEntries(stages.map((s) => [s.split, s.samples])));
  const cleaned = { audio: 0, vision: 0, total: 0 };
  for (const s of stages) {
    cleaned.audio += s.cleaned.audio;
    cleaned.vision += s.cleaned.vision;
  }
  cleaned.total = cleaned.audio + cleaned.vision;
  return { dataset: 'cherma', outDir: args.out, splits, cleaned, notes };
}

export const chermaImporter: Importer = {
  name: 'cherma',
  describe: 'CHERMA extracted features: <stage>.json + audio/ visual/ <stage>/<id>.npy (LFMIM layout)',
  options: {},
  run: async (a) => importCherma({ input: oneInput(a.input, 'cherma'), out: a.out }),
};
