/**
 * MELD (declare-lab/MELD) utterance CSVs → text-only split files.
 *
 * `--input` is the folder with `train_sent_emo.csv`, `dev_sent_emo.csv` (→ valid) and
 * `test_sent_emo.csv`; the splits present are imported. Utterances are kept exactly as
 * published, including any odd characters.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { columnIndex, readCsvTable } from '../csv.ts';
import type { SplitName } from '../schema.ts';
import { parseIndex, requireFolder, writeTextDataset } from './text.ts';
import type { LabelSpec, TextSplit } from './text.ts';
import type { Importer } from './types.ts';

/**
 * Emotion classes in MSE-Adapter's MELD prompt order
 * (`<neutral:0, surprise:1, fear:2, sadness:3, joy:4, disgust:5, anger:6>`), so class
 * indices match the published prompt.
 */
export const MELD_EMOTIONS = ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger'] as const;
export const MELD_SENTIMENTS = ['negative', 'neutral', 'positive'] as const;

export const MELD_FILES: readonly [SplitName, string][] = [
  ['train', 'train_sent_emo.csv'],
  ['valid', 'dev_sent_emo.csv'],
  ['test', 'test_sent_emo.csv'],
];

export type AffectLabelKind = 'emotion' | 'sentiment';

export function labelKind(v: unknown): AffectLabelKind {
  const k = v ?? 'emotion';
  if (k !== 'emotion' && k !== 'sentiment') throw new EgmfError(`--label must be emotion or sentiment, got ${JSON.stringify(k)}`, { key: 'label' });
  return k;
}

function readSplit(split: SplitName, file: string, column: string): TextSplit {
  const t = readCsvTable(file);
  const [text, speaker, label, dia, utt] = ['Utterance', 'Speaker', column, 'Dialogue_ID', 'Utterance_ID'].map((c) => columnIndex(t, c));
  const rows = t.rows.map((r, k) => {
    const line = t.lines[k]!;
    const d = parseIndex(r[dia!]!, file, line, 'Dialogue_ID');
    const u = parseIndex(r[utt!]!, file, line, 'Utterance_ID');
    return {
      id: `dia${d}_utt${u}`, text: r[text!]!, label: r[label!]!, line,
      dialogueId: `dia${d}`, utteranceIndex: u, speaker: r[speaker!]!,
    };
  });
  return { split, file, rows };
}

export const meldImporter: Importer = {
  name: 'meld',
  describe: 'MELD utterance CSVs (train/dev/test_sent_emo.csv in one folder), text only',
  options: {
    label: { choices: ['emotion', 'sentiment'], default: 'emotion', describe: 'Which label column to import' },
  },
  async run(args) {
    const kind = labelKind(args.label);
    const input = requireFolder(args.input);
    const present = MELD_FILES.filter(([, f]) => existsSync(join(input, f)));
    if (present.length === 0) {
      throw new EgmfError(`no MELD split files found (expected ${MELD_FILES.map(([, f]) => f).join(', ')})`, { file: input });
    }
    const column = kind === 'emotion' ? 'Emotion' : 'Sentiment';
    const splits = present.map(([s, f]) => readSplit(s, join(input, f), column));
    const values = kind === 'emotion' ? MELD_EMOTIONS : MELD_SENTIMENTS;
    const spec: LabelSpec = { task: 'classification', values, labelNames: values, labelNamesEn: values };
    const missing = MELD_FILES.filter(([, f]) => !present.some(([, g]) => g === f)).map(([, f]) => f);
    const notes = [
      `labels: ${column} column, classes ${values.map((v, i) => `${v}:${i}`).join(', ')}`,
      ...(missing.length > 0 ? [`not found, skipped: ${missing.join(', ')}`] : []),
    ];
    return writeTextDataset(args.out, {
      dataset: 'meld', language: 'en', source: 'MELD (declare-lab/MELD)', license: 'GPL-3.0',
      extra: {
        labelColumn: column,
        labelOrder: kind === 'emotion' ? 'MSE-Adapter MELD prompt order' : 'negative, neutral, positive',
        files: Object.fromEntries(present.map(([s, f]) => [s, f])),
      },
    }, spec, splits, column, notes);
  },
};
