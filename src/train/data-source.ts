/**
 * Finds the Arrow folder an experiment trains on, making it on first use: the synthetic
 * suite is generated, and MELD/CPED CSV folders are imported, into a cache, so that
 * `egmf train --config experiments/synthetic/<dataset>.yaml` works on a fresh clone.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { EgmfError } from '../errors.ts';
import { cacheDir } from '../cache.ts';
import type { ExperimentConfig } from '../config/experiment.ts';
import { GENERATOR_VERSION, generateSynthetic } from '../data/synthetic/index.ts';
import { importers } from '../data/importers/index.ts';
import { readSplitTable } from '../data/arrow.ts';
import { SPLITS } from '../data/schema.ts';

export interface ResolvedData {
  /** Folder holding `<split>.arrow`. */
  dir: string;
  /** What was done to get it (for the user and the run's tags). */
  origin: 'existing' | 'generated' | 'imported' | 'cached';
}

/** Resolves `cfg.data` to a folder of Arrow splits; `say` receives progress notes. */
export async function resolveDataset(cfg: ExperimentConfig, say: (msg: string) => void = () => undefined): Promise<ResolvedData> {
  const d = cfg.data;
  switch (d.source) {
    case 'arrow': {
      if (d.root === null) throw new EgmfError('data.source arrow needs data.root (a folder of <split>.arrow files)', { key: 'data.root' });
      if (looksLikeCsvFolder(d.root)) return importCsv(d.root, d.dataset === 'cped' ? 'cped' : 'meld', say);
      requireArrowFolder(d.root);
      warnDatasetMismatch(d.root, d.dataset, say);
      return { dir: d.root, origin: 'existing' };
    }
    case 'synthetic': {
      // The generator's version is part of the key: a changed generator never reuses old data.
      const base = d.root ?? join(cacheDir(), 'synthetic', `v${GENERATOR_VERSION}-scale${d.scale}-seed${d.synthetic_seed}`);
      const dir = join(base, d.dataset);
      if (hasSplits(dir)) return { dir, origin: 'cached' };
      say(`synthetic dataset '${d.dataset}' (scale ${d.scale}, seed ${d.synthetic_seed}) not found: generating it into ${dir}`);
      const tmp = `${base}.tmp-${process.pid}-${Date.now()}`;
      try {
        await generateSynthetic({ preset: d.dataset, out: tmp, scale: d.scale, seed: d.synthetic_seed });
        mkdirSync(base, { recursive: true });
        publish(join(tmp, d.dataset), dir);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
      return { dir, origin: 'generated' };
    }
    case 'meld-csv':
    case 'cped-csv': {
      if (d.root === null) throw new EgmfError(`data.source ${d.source} needs data.root (the folder of the CSV files)`, { key: 'data.root' });
      return importCsv(d.root, d.source === 'meld-csv' ? 'meld' : 'cped', say);
    }
  }
}

async function importCsv(root: string, format: 'meld' | 'cped', say: (msg: string) => void): Promise<ResolvedData> {
  if (!existsSync(root)) throw new EgmfError('data folder not found', { file: root, key: 'data.root' });
  const key = createHash('sha256').update(`${format}:${resolve(root)}:${fingerprint(root)}`).digest('hex').slice(0, 16);
  const dir = join(cacheDir(), 'imported', `${format}-${key}`);
  if (hasSplits(dir)) return { dir, origin: 'cached' };
  const imp = importers.find((i) => i.name === format);
  if (!imp) throw new EgmfError(`no importer named '${format}'`, { key: 'data.source' });
  say(`importing ${format} CSV files from ${root} into ${dir}`);
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    await imp.run({ input: root, out: tmp });
    mkdirSync(join(cacheDir(), 'imported'), { recursive: true });
    publish(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { dir, origin: 'imported' };
}

/** Moves a finished folder into place; a concurrent process that got there first wins. */
function publish(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    if (!hasSplits(to)) throw e;
  }
}

function fingerprint(dir: string): string {
  return readdirSync(dir).sort().map((f) => {
    const s = statSync(join(dir, f));
    return `${f}:${s.size}:${Math.floor(s.mtimeMs)}`;
  }).join('|');
}

function hasSplits(dir: string): boolean {
  return existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.arrow'));
}

function looksLikeCsvFolder(dir: string): boolean {
  return existsSync(dir) && statSync(dir).isDirectory() && readdirSync(dir).some((f) => f.endsWith('.csv'));
}

/**
 * Says when `data.dataset` names another dataset than the folder's own metadata. Only a
 * warning: the files are what is trained on, but the run's config then records another
 * name, and a mismatch usually means a wrong `data.root` or a config copied from another
 * dataset.
 */
function warnDatasetMismatch(dir: string, dataset: string, say: (msg: string) => void): void {
  const split = SPLITS.find((s) => existsSync(join(dir, `${s}.arrow`)));
  if (split === undefined) return;
  const file = join(dir, `${split}.arrow`);
  let stored: string;
  try {
    stored = readSplitTable(file).meta.dataset;
  } catch (e) {
    // An unreadable split is reported, with its file, when the loader opens it.
    if (e instanceof EgmfError) return;
    throw e;
  }
  if (stored !== dataset) {
    say(`warning: data.dataset is '${dataset}' but ${file} holds dataset '${stored}' (from its metadata); set data.dataset=${stored} if that folder is the one you mean`);
  }
}

function requireArrowFolder(dir: string): void {
  if (!existsSync(dir)) throw new EgmfError('data folder not found', { file: dir, key: 'data.root' });
  if (!hasSplits(dir)) throw new EgmfError('no <split>.arrow files in this folder', { file: dir, key: 'data.root' });
}
