/** Resolving an experiment's data folder: the synthetic cache and its key, and bad roots. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadExperiment } from '../../src/config/experiment.ts';
import { readSplitTable, writeDataset } from '../../src/data/arrow.ts';
import { EMPTY_FEATURES, SCHEMA_VERSION } from '../../src/data/schema.ts';
import { GENERATOR_VERSION } from '../../src/data/synthetic/index.ts';
import { EgmfError } from '../../src/errors.ts';
import { resolveDataset } from '../../src/train/data-source.ts';
import { REPO, setEnv, tempDir } from '../helpers.ts';

const CONFIG = join(REPO, 'experiments', 'synthetic', 'meld.yaml');

describe('resolveDataset: the synthetic suite', () => {
  let tmp: ReturnType<typeof tempDir>;
  let restoreEnv: () => void = () => undefined;
  beforeAll(() => {
    tmp = tempDir('egmf-data-source-');
    restoreEnv = setEnv({ EGMF_CACHE: tmp.path });
  });
  afterAll(() => {
    restoreEnv();
    tmp.cleanup();
  });

  it('generates on first use into a folder keyed by the generator version, then reuses it', async () => {
    const cfg = loadExperiment(CONFIG, ['data.scale=0.002', 'data.synthetic_seed=3']);
    // Data from an older generator under the old, unversioned key must not be picked up.
    const stale = join(tmp.path, 'synthetic', 'scale0.002-seed3', 'meld');
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(stale, 'train.arrow'), 'stale');
    const first = await resolveDataset(cfg);
    expect(first.origin).toBe('generated');
    expect(first.dir).toBe(join(tmp.path, 'synthetic', `v${GENERATOR_VERSION}-scale0.002-seed3`, 'meld'));
    const meta = readSplitTable(join(first.dir, 'train.arrow')).meta;
    expect(meta.extra?.generatorVersion).toBe(GENERATOR_VERSION);
    expect(meta.extra?.seed).toBe(3);
    const second = await resolveDataset(cfg);
    expect(second).toEqual({ dir: first.dir, origin: 'cached' });
  }, 60_000);
});

describe('resolveDataset: bad roots', () => {
  it('an Arrow source without a root names data.root', async () => {
    const cfg = loadExperiment(CONFIG, ['data.source=arrow']);
    const err = await resolveDataset(cfg).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EgmfError);
    expect((err as EgmfError).message).toMatch(/data\.root/);
  });

  it('a root without split files names the folder and data.root', async () => {
    const tmp = tempDir('egmf-data-source-empty-');
    try {
      const cfg = loadExperiment(CONFIG, ['data.source=arrow', `data.root=${tmp.path}`]);
      const err = await resolveDataset(cfg).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EgmfError);
      expect((err as EgmfError).message).toContain(tmp.path);
      expect((err as EgmfError).message).toMatch(/data\.root/);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('resolveDataset: an Arrow folder of another dataset', () => {
  it('warns, naming both, when data.dataset differs from the folder\'s metadata', async () => {
    const tmp = tempDir('egmf-data-source-mismatch-');
    try {
      const dir = join(tmp.path, 'emo');
      await writeDataset(dir, {
        schemaVersion: SCHEMA_VERSION, dataset: 'cn_emotion', language: 'zh', task: 'classification', labelNames: ['a', 'b'],
        audioDim: 0, visionDim: 0, textOnly: true, hasUnimodalLabels: false, source: 'test', license: 'unspecified',
      }, { valid: [{ id: '1', text: '好', audio: EMPTY_FEATURES, vision: EMPTY_FEATURES, label: 0 }] });
      const said: string[] = [];
      const cfg = loadExperiment(CONFIG, ['data.source=arrow', `data.root=${dir}`]);
      expect(await resolveDataset(cfg, (m) => said.push(m))).toEqual({ dir, origin: 'existing' });
      expect(said).toEqual([`warning: data.dataset is 'meld' but ${join(dir, 'valid.arrow')} holds dataset 'cn_emotion' (from its metadata); set data.dataset=cn_emotion if that folder is the one you mean`]);
      said.length = 0;
      await resolveDataset(loadExperiment(CONFIG, ['data.source=arrow', `data.root=${dir}`, 'data.dataset=cn_emotion']), (m) => said.push(m));
      expect(said).toEqual([]);
    } finally {
      tmp.cleanup();
    }
  });
});
