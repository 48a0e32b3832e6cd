/**
 * CPED (scutcyr/CPED) utterance CSVs → text-only split files, Chinese.
 *
 * `--input` is the folder with any of `train_split.csv`, `valid_split.csv`, `test_split.csv`
 * (UTF-8 with a byte-order mark). Speaker personality, scene, face positions and dialogue
 * acts are not part of the affect schema and are not imported.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { columnIndex, readCsvTable } from '../csv.ts';
import type { SplitName } from '../schema.ts';
import { labelKind } from './meld.ts';
import { requireFolder, writeTextDataset } from './text.ts';
import type { LabelSpec, TextSplit } from './text.ts';
import type { Importer } from './types.ts';

/** The 13 CPED emotions in the project's documented order (shared/data/README.md); index = class. */
export const CPED_EMOTIONS = [
  'neutral', 'anger', 'depress', 'happy', 'negative-other', 'relaxed', 'positive-other',
  'worried', 'astonished', 'fear', 'sadness', 'disgust', 'grateful',
] as const;
/** Chinese class names, parallel to CPED_EMOTIONS. */
export const CPED_EMOTIONS_ZH = [
  '中性', '愤怒', '沮丧', '高兴', '其他负面', '放松', '其他正面',
  '担心', '惊讶', '恐惧', '悲伤', '厌恶', '感激',
] as const;
export const CPED_SENTIMENTS = ['negative', 'neutral', 'positive'] as const;
export const CPED_SENTIMENTS_ZH = ['负面', '中性', '正面'] as const;

export const CPED_FILES: readonly [SplitName, string][] = [
  ['train', 'train_split.csv'],
  ['valid', 'valid_split.csv'],
  ['test', 'test_split.csv'],
];

const NOT_IMPORTED = [
  'Gender', 'Age', 'Neuroticism', 'Extraversion', 'Openness', 'Agreeableness', 'Conscientiousness',
  'Scene', 'FacePosition_LU', 'FacePosition_RD', 'DA',
];

function readSplit(split: SplitName, file: string, column: string): TextSplit {
  const t = readCsvTable(file);
  const [tv, dia, utt, speaker, label, text] = ['TV_ID', 'Dialogue_ID', 'Utterance_ID', 'Speaker', column, 'Utterance']
    .map((c) => columnIndex(t, c));
  const rows = t.rows.map((r, k) => {
    const d = r[dia!]!;
    const u = r[utt!]!;
    // Published ids nest (32 / 32_000 / 32_000_007); compose them only if a release does not.
    const id = u.startsWith(`${d}_`) && d.startsWith(`${r[tv!]}_`) ? u : `${r[tv!]}/${d}/${u}`;
    const tail = /(\d+)$/.exec(u);
    return {
      id, text: r[text!]!, label: r[label!]!, line: t.lines[k]!,
      dialogueId: d, utteranceIndex: tail ? Number(tail[1]) : null, speaker: r[speaker!]!,
    };
  });
  return { split, file, rows };
}

export const cpedImporter: Importer = {
  name: 'cped',
  describe: 'CPED utterance CSVs (train/valid/test_split.csv in one folder), Chinese, text only',
  options: {
    label: { choices: ['emotion', 'sentiment'], default: 'emotion', describe: 'Which label column to import' },
  },
  async run(args) {
    const kind = labelKind(args.label);
    const input = requireFolder(args.input);
    const present = CPED_FILES.filter(([, f]) => existsSync(join(input, f)));
    if (present.length === 0) {
      throw new EgmfError(`no CPED split files found (expected ${CPED_FILES.map(([, f]) => f).join(', ')})`, { file: input });
    }
    const column = kind === 'emotion' ? 'Emotion' : 'Sentiment';
    const splits = present.map(([s, f]) => readSplit(s, join(input, f), column));
    const spec: LabelSpec = kind === 'emotion'
      ? { task: 'classification', values: CPED_EMOTIONS, labelNames: CPED_EMOTIONS_ZH, labelNamesEn: CPED_EMOTIONS }
      : { task: 'classification', values: CPED_SENTIMENTS, labelNames: CPED_SENTIMENTS_ZH, labelNamesEn: CPED_SENTIMENTS };
    const missing = CPED_FILES.filter(([, f]) => !present.some(([, g]) => g === f)).map(([, f]) => f);
    const notes = [
      `labels: ${column} column, classes ${spec.values.map((v, i) => `${v}:${i}`).join(', ')}`,
      `not imported (not in the affect schema): ${NOT_IMPORTED.join(', ')}`,
      ...(missing.length > 0 ? [`not found, skipped: ${missing.join(', ')}`] : []),
    ];
    return writeTextDataset(args.out, {
      dataset: 'cped', language: 'zh', source: 'CPED (scutcyr/CPED)', license: 'Apache-2.0',
      extra: { labelColumn: column, files: Object.fromEntries(present.map(([s, f]) => [s, f])) },
    }, spec, splits, column, notes);
  },
};
