import type { Argv, CommandModule } from 'yargs';
import { EgmfError, isEgmfError } from '../../errors.ts';
import type { ErrorContext } from '../../errors.ts';
import { readSplitTable } from '../../data/arrow.ts';
import type { SplitTable } from '../../data/arrow.ts';
import { datasetIdentity } from '../../data/loader.ts';
import {
  float32Chunks, framesView, int32Chunks, numberAt, sequenceChunks, utf8All, utf8Chunks,
} from '../../data/loader-columns.ts';
import { SPLITS, validateSample } from '../../data/schema.ts';
import { locate, splitNameOf } from '../../data/stats.ts';

/** Problems listed in the error message; the rest are only counted. */
const SHOWN = 50;

export interface ValidationReport {
  datasets: { name: string; splits: Record<string, number> }[];
  problems: string[];
}

/** Checks every row of every split under PATH; collects problems instead of stopping at the first. */
export function validatePath(path: string): ValidationReport {
  const report: ValidationReport = { datasets: [], problems: [] };
  const add = (e: EgmfError) => report.problems.push(e.message);
  const problem = (msg: string, ctx: ErrorContext) => add(new EgmfError(msg, ctx));
  const found = locate(path);
  for (const d of found.datasets) {
    const counts: Record<string, number> = {};
    let first: SplitTable | undefined;
    for (const file of d.files) {
      let t: SplitTable;
      try {
        t = readSplitTable(file);
      } catch (e) {
        if (!isEgmfError(e)) throw e;
        add(e);
        continue;
      }
      if (first === undefined) first = t;
      else if (datasetIdentity(t.meta) !== datasetIdentity(first.meta)) {
        problem(`metadata differs from ${first.path} (only 'cleaned' may differ between splits)`, { file, key: 'egmf' });
      }
      counts[splitNameOf(file)] = t.table.numRows;
      validateSplit(t, add);
    }
    report.datasets.push({ name: found.kind === 'file' && first !== undefined ? first.meta.dataset : d.name, splits: counts });
  }
  return report;
}

function validateSplit(t: SplitTable, add: (e: EgmfError) => void): void {
  const { meta, table, path: file } = t;
  const problem = (msg: string, ctx: ErrorContext) => add(new EgmfError(msg, ctx));
  const split = splitNameOf(file);
  if (!(SPLITS as readonly string[]).includes(split)) {
    problem(`file name is not a split name (${SPLITS.join(', ')})`, { file });
  }
  const c = cleanedProblem(meta.cleaned);
  if (c !== null) problem(c, { file, key: 'egmf.cleaned' });
  const u = (k: string) => utf8Chunks(table, k, file);
  const f = (k: string) => float32Chunks(table, k, file);
  const cols = {
    id: u('id'), dataset: u('dataset'), language: u('language'), split: u('split'), text: u('text'),
    label: f('label'), labelT: f('label_t'), labelA: f('label_a'), labelV: f('label_v'),
    utterance: int32Chunks(table, 'utterance_index', file),
    audio: sequenceChunks(table, 'audio', meta.audioDim, file), vision: sequenceChunks(table, 'vision', meta.visionDim, file),
  };
  const seen = new Map<string, number>();
  let row = 0;
  table.getChild('id')!.data.forEach((d, ci) => {
    for (let r = 0; r < d.length; r++, row++) {
      const at = (key: string): ErrorContext => ({ file, row, key });
      for (const [key, want] of [['dataset', meta.dataset], ['language', meta.language], ['split', split]] as const) {
        const got = utf8All(cols[key][ci]!)[r];
        if (got !== want) problem(`${JSON.stringify(got)} does not match ${key === 'split' ? 'the file name' : 'the metadata'} (${JSON.stringify(want)})`, at(key));
      }
      const id = utf8All(cols.id[ci]!)[r] ?? null;
      const text = utf8All(cols.text[ci]!)[r] ?? null;
      const label = numberAt(cols.label[ci]!, r);
      if (text === null) problem('text is null', at('text'));
      if (label === null) problem('label is null', at('label'));
      const uni = { labelT: numberAt(cols.labelT[ci]!, r), labelA: numberAt(cols.labelA[ci]!, r), labelV: numberAt(cols.labelV[ci]!, r) };
      if (!meta.hasUnimodalLabels) {
        for (const [k, v] of Object.entries(uni)) if (v !== null) problem('unimodal label present but metadata hasUnimodalLabels is false', at(k));
      }
      const audio = framesView(cols.audio[ci]!, r);
      const vision = framesView(cols.vision[ci]!, r);
      try {
        validateSample({ id: id as string, text: text ?? '', audio, vision, label: label ?? NaN, ...uni }, meta, row, file);
      } catch (e) {
        if (!isEgmfError(e)) throw e;
        add(e);
      }
      if (id !== null) {
        const prev = seen.get(id);
        if (prev !== undefined) problem(`duplicate id '${id}' (first at row ${prev})`, at('id'));
        else seen.set(id, row);
      }
      for (const [key, values] of [['audio', audio], ['vision', vision]] as const) {
        const bad = nonFinite(values);
        if (bad > 0) problem(`${bad} non-finite value(s) (NaN/inf); importers replace them by 0`, at(key));
      }
      const ui = numberAt(cols.utterance[ci]!, r);
      if (ui !== null && ui < 0) problem(`utterance index ${ui} is negative`, at('utterance_index'));
    }
  });
}

function nonFinite(values: Float32Array): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) n++;
  return n;
}

function cleanedProblem(c: { audio: number; vision: number; total: number } | undefined): string | null {
  if (c === undefined) return null;
  const ok = [c.audio, c.vision, c.total].every((v) => Number.isInteger(v) && v >= 0);
  if (!ok) return `counts must be non-negative integers, got ${JSON.stringify(c)}`;
  if (c.audio + c.vision !== c.total) return `total ${c.total} is not audio ${c.audio} + vision ${c.vision}`;
  return null;
}

export const validateCommand: CommandModule = {
  command: 'validate <path>',
  describe: 'Check every row of a split file, a dataset folder or a folder of datasets',
  builder: (y: Argv) =>
    y.positional('path', { type: 'string', demandOption: true, describe: 'A <split>.arrow file, a dataset folder, or a folder of dataset folders' }),
  handler: (argv) => {
    const r = validatePath(String(argv.path));
    if (r.problems.length > 0) {
      const shown = r.problems.slice(0, SHOWN).map((p) => `  ${p}`);
      const more = r.problems.length > SHOWN ? [`  ... and ${r.problems.length - SHOWN} more`] : [];
      throw new EgmfError(`validation failed: ${r.problems.length} problem(s)\n${[...shown, ...more].join('\n')}`);
    }
    for (const d of r.datasets) {
      const splits = Object.entries(d.splits).map(([s, n]) => `${s} ${n}`).join(', ');
      process.stdout.write(`ok ${d.name}: ${splits} rows checked\n`);
    }
  },
};
