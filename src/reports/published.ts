/**
 * Published numbers, as data: `reports/published/*.yaml`, one file per paper.
 *
 *     paper: MSE-Adapter                  # how tables name the system
 *     source: AAAI 2025, arXiv 2502.12478 # where the numbers come from
 *     scale: 100                          # values as printed: ×100 (default 1)
 *     results:
 *       - {dataset: meld, metric: weighted_f1, value: 62.17, backbone: Qwen-1.8B, note: "..."}
 *
 * `metric` is this project's metric key (src/train/metrics/dispatch.ts), so a published value
 * sits in the same column as ours; `scale` (per file, or per result) turns the printed value
 * into ours (65.57 with scale 100 → 0.6557). Reports show the printed value and compare on
 * the converted one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { EgmfError } from '../errors.ts';
import { CLASSIFICATION_METRIC_KEYS, MOSEI_METRIC_KEYS, SIMS_METRIC_KEYS } from '../train/metrics/dispatch.ts';

export const PUBLISHED_DIR = resolve(import.meta.dirname, '..', '..', 'reports', 'published');
export const PAPER_DATASETS = ['meld', 'cherma', 'mosei', 'sims-v2'] as const;
export type PaperDataset = (typeof PAPER_DATASETS)[number];

/** The metric keys each dataset's published rows may use. */
const KEYS: Record<PaperDataset, readonly string[]> = {
  meld: CLASSIFICATION_METRIC_KEYS, cherma: CLASSIFICATION_METRIC_KEYS, mosei: MOSEI_METRIC_KEYS, 'sims-v2': SIMS_METRIC_KEYS,
};

export interface PublishedResult {
  paper: string;
  source: string;
  file: string;
  dataset: PaperDataset;
  metric: string;
  /** The value as the paper prints it. */
  printed: number;
  /** The value on this project's scale (printed / scale). */
  value: number;
  backbone: string | null;
  note: string | null;
}

/** Every result of every file in `dir` (sorted by file name, then file order). */
export function loadPublished(dir: string = PUBLISHED_DIR): PublishedResult[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (e) {
    throw new EgmfError(`cannot read the published numbers: ${(e as Error).message}`, { file: dir });
  }
  if (names.length === 0) throw new EgmfError('no published-number files (*.yaml) here', { file: dir });
  return names.flatMap((n) => parsePublished(readFileSync(join(dir, n), 'utf8'), join(dir, n)));
}

/** One file's results; every problem names the file and the key (results[i].field). */
export function parsePublished(text: string, file: string): PublishedResult[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new EgmfError(`not valid YAML: ${(e as Error).message}`, { file });
  }
  if (!isObj(doc)) throw new EgmfError('must be a mapping with paper, source and results', { file });
  const paper = str(doc.paper, file, 'paper');
  const source = str(doc.source, file, 'source');
  const fileScale = doc.scale === undefined ? 1 : scale(doc.scale, file, 'scale');
  if (!Array.isArray(doc.results) || doc.results.length === 0) throw new EgmfError('must be a non-empty list of results', { file, key: 'results' });
  const seen = new Set<string>();
  return doc.results.map((r: unknown, i: number) => {
    const at = (k: string) => `results[${i}].${k}`;
    if (!isObj(r)) throw new EgmfError('must be a mapping {dataset, metric, value, ...}', { file, key: `results[${i}]` });
    for (const k of Object.keys(r)) {
      if (!['dataset', 'metric', 'value', 'backbone', 'note', 'scale'].includes(k)) throw new EgmfError('unknown key (known: dataset, metric, value, backbone, note, scale)', { file, key: at(k) });
    }
    const dataset = str(r.dataset, file, at('dataset'));
    if (!(PAPER_DATASETS as readonly string[]).includes(dataset)) throw new EgmfError(`must be one of ${PAPER_DATASETS.join(', ')}, got '${dataset}'`, { file, key: at('dataset') });
    const ds = dataset as PaperDataset;
    const metric = str(r.metric, file, at('metric'));
    if (!KEYS[ds].includes(metric)) throw new EgmfError(`is not a ${ds} metric (known: ${KEYS[ds].join(', ')})`, { file, key: at('metric') });
    if (typeof r.value !== 'number' || !Number.isFinite(r.value)) throw new EgmfError(`must be a number, got ${JSON.stringify(r.value)}`, { file, key: at('value') });
    const s = r.scale === undefined ? fileScale : scale(r.scale, file, at('scale'));
    const backbone = r.backbone === undefined ? null : str(r.backbone, file, at('backbone'));
    const key = `${ds}/${metric}/${backbone ?? ''}`;
    if (seen.has(key)) throw new EgmfError(`${ds} ${metric}${backbone ? ` (${backbone})` : ''} is given twice`, { file, key: `results[${i}]` });
    seen.add(key);
    return {
      paper, source, file, dataset: ds, metric, printed: r.value, value: r.value / s, backbone,
      note: r.note === undefined ? null : str(r.note, file, at('note')),
    };
  });
}

/** A system as reports list it: `MSE-Adapter (Qwen-1.8B)`. */
export function systemName(r: Pick<PublishedResult, 'paper' | 'backbone'>): string {
  return r.backbone ? `${r.paper} (${r.backbone})` : r.paper;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, file: string, key: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw new EgmfError(`must be a non-empty string, got ${JSON.stringify(v)}`, { file, key });
  return v;
}

function scale(v: unknown, file: string, key: string): number {
  if (typeof v !== 'number' || !(v > 0)) throw new EgmfError(`must be a positive number (100 when values are printed ×100), got ${JSON.stringify(v)}`, { file, key });
  return v;
}
