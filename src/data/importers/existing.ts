/**
 * Split-by-split imports into one `--out`: what an earlier import left there, and whether
 * this import may add its splits beside it.
 *
 * An added split must belong to the same dataset as the kept ones, because the loader and
 * `data validate` refuse a folder whose split files carry different metadata. So the
 * added split copies the kept splits' metadata (label order, source, licence, column map)
 * and the import is refused when its own facts (dataset, language, task, labels, range,
 * licence) disagree with it. Kept split files are never rewritten.
 *
 * Re-importing a split that is already there is refused unless `--replace` is given, so a
 * split-by-split import cannot overwrite an earlier split by mistake.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { readSplitTable } from '../arrow.ts';
import { datasetIdentity } from '../loader.ts';
import { SPLITS } from '../schema.ts';
import type { DatasetMeta, Language, SplitName, TaskKind } from '../schema.ts';
import type { TextSplit } from './text.ts';

export interface ExistingSplits {
  /** Split files in --out this import keeps beside the ones it writes. */
  kept: SplitName[];
  /** Split files in --out this import overwrites (--replace). */
  replaced: SplitName[];
  /** The kept splits' metadata and the file it was read from; absent when nothing is kept. */
  meta?: DatasetMeta;
  metaFile?: string;
}

/** Looks at the split files already in `out`; refuses to overwrite one without `replace`. */
export function existingSplits(out: string, importing: readonly SplitName[], replace: boolean): ExistingSplits {
  const found: ExistingSplits = { kept: [], replaced: [] };
  if (!existsSync(out)) return found;
  if (!statSync(out).isDirectory()) throw new EgmfError('--out is a file, expected a folder', { file: out, key: 'out' });
  for (const split of SPLITS) {
    if (!existsSync(join(out, `${split}.arrow`))) continue;
    (importing.includes(split) ? found.replaced : found.kept).push(split);
  }
  if (found.replaced.length > 0 && !replace) {
    const kept = found.kept.length > 0 ? `; the other split files there (${found.kept.map((s) => `${s}.arrow`).join(', ')}) would be kept` : '';
    throw new EgmfError(
      `holds ${found.replaced.map((s) => `${s}.arrow`).join(', ')} from an earlier import; pass --replace to overwrite ${found.replaced.length > 1 ? 'them' : 'it'}${kept}, or choose another --out`,
      { file: out },
    );
  }
  for (const split of found.kept) {
    const file = join(out, `${split}.arrow`);
    const { meta } = readSplitTable(file);
    if (found.meta === undefined) {
      found.meta = withoutCleaned(meta);
      found.metaFile = file;
    } else if (datasetIdentity(meta) !== datasetIdentity(found.meta)) {
      throw new EgmfError(`metadata differs from ${found.metaFile}: the split files already there disagree, so no split can be added; choose another --out`, { file });
    }
  }
  return found;
}

function withoutCleaned(meta: DatasetMeta): DatasetMeta {
  const { cleaned: _cleaned, ...rest } = meta;
  return rest;
}

/** What this import would write, compared with the kept splits' metadata. */
export interface ImportFacts {
  /** Explicit --dataset, or the name derived from the file or folder names (absent when none could be made). */
  dataset?: { name: string; what: string };
  language: Language;
  task: TaskKind;
  labels?: readonly string[];
  range?: [number, number];
  license?: string;
  labelKey: string;
}

/**
 * Refuses an import that does not fit the kept splits; errors name both values and the
 * existing file. Returns the dataset name to use.
 */
export function checkAddition(existing: Required<Pick<ExistingSplits, 'meta' | 'metaFile'>>, facts: ImportFacts, splits: TextSplit[]): string {
  const { meta, metaFile: file } = existing;
  const differs = (what: string, ours: string, theirs: string, hint: string): never => {
    throw new EgmfError(`${what} ${ours} differs from ${theirs} in the existing split file; an added split must match it (${hint}), or choose another --out`, { file });
  };
  if (!meta.textOnly) {
    throw new EgmfError(`holds dataset '${meta.dataset}' with audio/vision features; a text-only split cannot be added to it; choose another --out`, { file });
  }
  if (facts.dataset !== undefined && facts.dataset.name !== meta.dataset) {
    differs(facts.dataset.what, `'${facts.dataset.name}'`, `'${meta.dataset}'`, `pass --dataset ${meta.dataset}`);
  }
  if (facts.language !== meta.language) differs('language', `'${facts.language}'`, `'${meta.language}'`, `pass --language ${meta.language}`);
  if (facts.task !== meta.task) differs('--task', `'${facts.task}'`, `'${meta.task}'`, `pass --task ${meta.task}`);
  if (facts.license !== undefined && facts.license !== meta.license) differs('--license', `'${facts.license}'`, `'${meta.license}'`, 'leave out --license to keep it');
  if (meta.task === 'regression') {
    const [lo, hi] = meta.labelRange!;
    if (facts.range !== undefined && (facts.range[0] !== lo || facts.range[1] !== hi)) {
      differs('--range', facts.range.join(','), `${lo},${hi}`, `pass --range=${lo},${hi}`);
    }
    return meta.dataset;
  }
  const order = meta.labelNames!;
  if (facts.labels !== undefined && facts.labels.join('\u0000') !== order.join('\u0000')) {
    differs('--labels', facts.labels.join(','), order.join(','), `leave out --labels to use the existing order, or pass --labels ${order.join(',')}`);
  }
  const known = new Set(order);
  for (const s of splits) {
    for (const r of s.rows) {
      if (!known.has(r.label)) {
        throw new EgmfError(
          `label ${JSON.stringify(r.label)} is not in the label order of the existing ${file} (${order.join(', ')}); a split added to it must use those labels, or import every split together to change the label set`,
          { file: r.file ?? s.file, line: r.line, key: facts.labelKey },
        );
      }
    }
  }
  return meta.dataset;
}
