/**
 * The published numbers are data (reports/published/*.yaml): every file loads, EGMF's MELD
 * weighted F1 is 65.57 as printed (0.6557 on this project's scale), and a bad file is refused
 * naming the file and the key.
 */
import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPublished, parsePublished, systemName } from '../../src/reports/published.ts';
import { tempDir } from '../helpers.ts';

describe('published numbers', () => {
  it('loads every file of reports/published, EGMF MELD weighted F1 65.57 among them', () => {
    const all = loadPublished();
    const egmf = all.find((r) => r.paper === 'EGMF' && r.dataset === 'meld' && r.metric === 'weighted_f1');
    expect(egmf?.printed).toBe(65.57);
    expect(egmf?.value).toBeCloseTo(0.6557, 10);
    // MSE-Adapter per backbone, on all four datasets.
    const mse = all.filter((r) => r.paper === 'MSE-Adapter');
    expect(new Set(mse.map((r) => r.backbone))).toEqual(new Set(['Qwen-1.8B', 'Llama2-7B', 'ChatGLM3-6B']));
    expect(new Set(mse.map((r) => r.dataset))).toEqual(new Set(['meld', 'cherma', 'mosei', 'sims-v2']));
    // MAE printed ×100 by MSE-Adapter, as is by UniMSE: both on the same scale here.
    expect(mse.find((r) => r.dataset === 'mosei' && r.metric === 'MAE' && r.backbone === 'Qwen-1.8B')?.value).toBeCloseTo(0.5934, 10);
    expect(all.find((r) => r.paper === 'UniMSE' && r.metric === 'MAE')?.value).toBeCloseTo(0.523, 10);
    expect(systemName(mse[0]!)).toMatch(/^MSE-Adapter \(/);
  });

  it('refuses a bad file, naming the file and the key', () => {
    const f = 'reports/published/x.yaml';
    const bad = (text: string) => () => parsePublished(text, f);
    expect(bad('paper: X\nsource: s\nresults: []\n')).toThrow(/x\.yaml, key 'results': must be a non-empty list/);
    expect(bad('paper: X\nsource: s\nresults:\n  - {dataset: iemocap, metric: acc, value: 1}\n')).toThrow(/key 'results\[0\]\.dataset': must be one of meld, cherma, mosei, sims-v2/);
    expect(bad('paper: X\nsource: s\nresults:\n  - {dataset: meld, metric: MAE, value: 1}\n')).toThrow(/key 'results\[0\]\.metric': is not a meld metric/);
    expect(bad('paper: X\nsource: s\nresults:\n  - {dataset: meld, metric: acc, value: "65"}\n')).toThrow(/key 'results\[0\]\.value': must be a number/);
    expect(bad('paper: X\nsource: s\nscale: 0\nresults:\n  - {dataset: meld, metric: acc, value: 1}\n')).toThrow(/key 'scale': must be a positive number/);
    expect(bad('paper: X\nsource: s\nresults:\n  - {dataset: meld, metric: acc, value: 1, vaule: 2}\n')).toThrow(/key 'results\[0\]\.vaule': unknown key/);
    expect(bad('paper: X\nsource: s\nresults:\n  - {dataset: meld, metric: acc, value: 1}\n  - {dataset: meld, metric: acc, value: 2}\n')).toThrow(/key 'results\[1\]': meld acc is given twice/);
    expect(bad('source: s\nresults:\n  - {dataset: meld, metric: acc, value: 1}\n')).toThrow(/key 'paper': must be a non-empty string/);
    expect(bad('paper: [\n')).toThrow(/x\.yaml: not valid YAML/);
  });

  it('names the folder when it holds no file', () => {
    const tmp = tempDir('egmf-published-');
    try {
      mkdirSync(join(tmp.path, 'empty'));
      expect(() => loadPublished(join(tmp.path, 'empty'))).toThrow(/empty: no published-number files/);
      writeFileSync(join(tmp.path, 'a.yaml'), 'paper: A\nsource: s\nresults:\n  - {dataset: cherma, metric: weighted_f1, value: 70, scale: 100}\n');
      expect(loadPublished(tmp.path)).toMatchObject([{ paper: 'A', dataset: 'cherma', value: 0.7, backbone: null, note: null }]);
    } finally {
      tmp.cleanup();
    }
  });
});
