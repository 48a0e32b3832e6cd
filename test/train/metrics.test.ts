import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EgmfError } from '../../src/errors.ts';
import type { DatasetMeta } from '../../src/data/schema.ts';
import {
  CLASSIFICATION_METRIC_KEYS,
  MOSEI_METRIC_KEYS,
  SIMS_METRIC_KEYS,
  classificationMetrics,
  confusionMatrix,
  headlineMetric,
  metricsFor,
  metricsForMeta,
  moseiMetrics,
  primaryMetric,
  simsMetrics,
  type MetricRecord,
} from '../../src/train/metrics.ts';
import { REPO, pythonBin, tempDir } from '../helpers.ts';

const FIXTURE = join(REPO, 'test', 'fixtures', 'metrics', 'expected.json');

/** JSON has no NaN: the fixture writes null for it. */
type Expected = Record<string, number | null>;
interface ClassificationCase {
  name: string;
  numClasses: number;
  labelNames: string[] | null;
  pred: number[];
  truth: number[];
  expected: Expected;
  confusion: number[][];
}
interface RegressionCase {
  name: string;
  pred: number[];
  truth: number[];
  expected: Expected;
}
interface Fixture {
  classification: ClassificationCase[];
  mosei: RegressionCase[];
  sims: RegressionCase[];
}

const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Fixture;

/** Ratios of counts (and MAE, whose numpy summation order is reproduced) must match bit for bit. */
const EXACT = /^(acc|Has0_acc_2|Non0_acc_2|Mult_acc_\d(_weak)?|MAE)$/;

function expectParity(actual: MetricRecord, expected: Expected, where: string): void {
  expect(Object.keys(actual).sort(), where).toEqual(Object.keys(expected).sort());
  for (const [key, want] of Object.entries(expected)) {
    const got = actual[key];
    const label = `${where}: ${key}`;
    if (want === null) {
      expect(Number.isNaN(got), `${label} should be NaN, got ${got}`).toBe(true);
    } else if (EXACT.test(key)) {
      expect(got, label).toBe(want);
    } else {
      expect(Math.abs(got - want), `${label}: got ${got}, want ${want}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want)));
    }
  }
}

function caught(fn: () => unknown): EgmfError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EgmfError) return e;
    throw e;
  }
  throw new Error('expected an EgmfError');
}

describe('fixture coverage', () => {
  it('has at least 10 cases per family, sizes 1 to 500, and NaN-producing cases', () => {
    for (const family of ['classification', 'mosei', 'sims'] as const) {
      const sizes = fixture[family].map((c) => c.pred.length);
      expect(sizes.length, family).toBeGreaterThanOrEqual(10);
      expect(Math.min(...sizes), family).toBe(1);
      expect(Math.max(...sizes), family).toBe(500);
    }
    const nulls = [...fixture.mosei, ...fixture.sims].flatMap((c) => Object.values(c.expected).filter((v) => v === null));
    expect(nulls.length).toBeGreaterThan(5);
  });
});

describe('classificationMetrics matches sklearn', () => {
  for (const c of fixture.classification) {
    it(c.name, () => {
      const names = c.labelNames ?? undefined;
      expectParity(classificationMetrics(c.pred, c.truth, c.numClasses, names), c.expected, c.name);
      expectParity(classificationMetrics(Int32Array.from(c.pred), Int32Array.from(c.truth), c.numClasses, names), c.expected, c.name);
      expect(confusionMatrix(c.pred, c.truth, c.numClasses)).toEqual(c.confusion);
    });
  }
});

describe('moseiMetrics matches MMSA', () => {
  for (const c of fixture.mosei) {
    it(c.name, () => {
      const got = moseiMetrics(c.pred, c.truth);
      expectParity(got, c.expected, c.name);
      expect(Object.keys(got)).toEqual([...MOSEI_METRIC_KEYS]);
    });
  }
});

describe('simsMetrics matches MMSA + MSE-Adapter', () => {
  for (const c of fixture.sims) {
    it(c.name, () => {
      const got = simsMetrics(Float64Array.from(c.pred), c.truth);
      expectParity(got, c.expected, c.name);
      expect(Object.keys(got)).toEqual([...SIMS_METRIC_KEYS]);
    });
  }
});

describe('metric semantics', () => {
  it('rounds half to even in Mult_acc_7 (0.5 and -0.5 are class 0, 1.5 and 2.5 are class 2)', () => {
    expect(moseiMetrics([0.5, -0.5, 1.5, 2.5], [0, 0, 2, 2]).Mult_acc_7).toBe(1);
    expect(moseiMetrics([0.5, 1.5], [1, 1]).Mult_acc_7).toBe(0);
  });

  it('puts SIMS bin edges in the lower bin: 0 is negative, 0.1 is neutral, -0.7 is strongly negative', () => {
    expect(simsMetrics([0, 0.1, -0.7], [-0.05, 0.05, -0.9])).toMatchObject({ Mult_acc_2: 1, Mult_acc_3: 1, Mult_acc_5: 1 });
  });

  it('keeps weighted F1 unchanged by absent classes but averages macro F1 over present ones only', () => {
    const few = classificationMetrics([0, 1, 1], [0, 1, 0], 2);
    const many = classificationMetrics([0, 1, 1], [0, 1, 0], 7);
    expect(many.weighted_f1).toBe(few.weighted_f1);
    expect(many.macro_f1).toBe(few.macro_f1);
    expect(many.f1_6).toBe(0);
  });

  it('makes MLflow-safe keys, keeping Chinese names', () => {
    const m = classificationMetrics([0, 1], [0, 1], 2, ['高兴', 'x:y']);
    expect(Object.keys(m)).toEqual([...CLASSIFICATION_METRIC_KEYS, 'f1_高兴', 'f1_x_y']);
  });
});

describe('bad input', () => {
  it('names the empty argument', () => {
    expect(caught(() => moseiMetrics([], [1])).context.key).toBe('pred');
    expect(caught(() => simsMetrics([1], [])).context.key).toBe('truth');
    expect(caught(() => classificationMetrics([], [], 3)).message).toMatch(/key 'pred'.*empty/);
  });

  it('rejects a length mismatch', () => {
    expect(caught(() => simsMetrics([0.1, 0.2], [0.1])).message).toMatch(/2 values but truth has 1/);
  });

  it('names the index of a NaN or infinite value', () => {
    const e = caught(() => moseiMetrics([0.1, 0.2, 0.3, Number.NaN], [0, 0, 0, 0]));
    expect(e.context).toEqual({ key: 'pred', row: 3 });
    expect(e.message).toMatch(/row 3, key 'pred'.*NaN/);
    expect(caught(() => simsMetrics([0, 0], [0, Number.POSITIVE_INFINITY])).context).toEqual({ key: 'truth', row: 1 });
  });

  it('rejects class ids that are out of range or not integers', () => {
    expect(caught(() => classificationMetrics([0, 7], [0, 1], 7)).context).toEqual({ key: 'pred', row: 1 });
    expect(caught(() => classificationMetrics([0, 1], [0.5, 1], 7)).context).toEqual({ key: 'truth', row: 0 });
    expect(caught(() => confusionMatrix([0, -1], [0, 1], 2)).context).toEqual({ key: 'pred', row: 1 });
    expect(caught(() => classificationMetrics([0], [0], 0)).context.key).toBe('numClasses');
  });

  it('rejects label names that do not fit the classes', () => {
    expect(caught(() => classificationMetrics([0], [0], 3, ['a', 'b'])).context.key).toBe('labelNames');
    const dup = caught(() => classificationMetrics([0], [0], 2, ['a:b', 'a?b']));
    expect(dup.context).toEqual({ key: 'labelNames', row: 1 });
  });
});

describe('metricsFor and the metric choices', () => {
  const meld = ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger'];

  it('dispatches regression by dataset name, then by label range', () => {
    expect(metricsFor('regression', 'mosei')).toBe(moseiMetrics);
    expect(metricsFor('regression', 'MOSI')).toBe(moseiMetrics);
    expect(metricsFor('regression', 'sims-v2')).toBe(simsMetrics);
    expect(metricsFor('regression', 'CH-SIMS v2')).toBe(simsMetrics);
    expect(metricsFor('regression', 'synthetic-en', { labelRange: [-3, 3] })).toBe(moseiMetrics);
    expect(metricsFor('regression', 'synthetic-zh', { labelRange: [-1, 1] })).toBe(simsMetrics);
    expect(caught(() => metricsFor('regression', 'stars', { labelRange: [0, 5] })).context.key).toBe('labelRange');
    expect(caught(() => metricsFor('regression', 'stars')).context.key).toBe('labelRange');
  });

  it('builds classification metrics from label names or a class count', () => {
    const fn = metricsFor('classification', 'meld', { labelNames: meld });
    expect(fn([0, 4, 6], [0, 4, 5])).toMatchObject({ acc: 2 / 3, f1_joy: 1, f1_disgust: 0 });
    expect(Object.keys(metricsFor('classification', 'x', { numClasses: 2 })([0], [1]))).toContain('f1_1');
    expect(caught(() => metricsFor('classification', 'meld')).context.key).toBe('numClasses');
  });

  it('reads dataset metadata, preferring English class names for keys', () => {
    const meta: DatasetMeta = {
      schemaVersion: 1, dataset: 'cherma', language: 'zh', task: 'classification',
      labelNames: ['愤怒', '厌恶'], labelNamesEn: ['anger', 'disgust'],
      audioDim: 0, visionDim: 0, textOnly: true, hasUnimodalLabels: false, source: 'test', license: 'test',
    };
    expect(Object.keys(metricsForMeta(meta)([0, 1], [0, 1]))).toContain('f1_anger');
    const sims: DatasetMeta = { ...meta, dataset: 'syn', task: 'regression', labelRange: [-1, 1], labelNames: undefined, labelNamesEn: undefined };
    expect(metricsForMeta(sims)).toBe(simsMetrics);
  });

  it('names the primary and the headline metrics', () => {
    expect(primaryMetric('classification', 'meld')).toEqual({ name: 'weighted_f1', goal: 'max' });
    expect(primaryMetric('regression', 'mosei')).toEqual({ name: 'MAE', goal: 'min' });
    expect(headlineMetric('MELD').name).toBe('weighted_f1');
    expect(headlineMetric('cherma').name).toBe('weighted_f1');
    expect(headlineMetric('mosei')).toEqual({ name: 'Has0_F1_score', goal: 'max', label: 'F1' });
    expect(headlineMetric('sims-v2')).toEqual({ name: 'Mult_acc_2', goal: 'max', label: 'Acc-2' });
    expect(headlineMetric('cped', 'classification').name).toBe('weighted_f1');
    expect(caught(() => headlineMetric('cped')).context.key).toBe('dataset');
  });
});

describe('fixture generator', () => {
  // Not byte for byte: numpy's reductions (Pearson's r) take other SIMD paths on other CPUs
  // and move the last bit or two (0.08369829495974385 vs 0.0836982949597438 here).
  it('regenerates the committed fixture: the same structure, every number within 1e-12 relative', () => {
    const tmp = tempDir('egmf-metrics-');
    try {
      const out = join(tmp.path, 'expected.json');
      const r = spawnSync(pythonBin(), [join(REPO, 'scripts', 'make_metric_fixtures.py'), '--out', out], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const diffs: string[] = [];
      const walk = (a: unknown, b: unknown, path: string): void => {
        if (typeof a === 'number' && typeof b === 'number') {
          if (!(a === b || Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b)))) diffs.push(`${path}: ${a} vs ${b}`);
        } else if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
          const ka = Object.keys(a);
          if (ka.join() !== Object.keys(b).join()) diffs.push(`${path}: keys ${ka} vs ${Object.keys(b)}`);
          else for (const k of ka) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
        } else if (a !== b) diffs.push(`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
      };
      walk(JSON.parse(readFileSync(out, 'utf8')), JSON.parse(readFileSync(FIXTURE, 'utf8')), '$');
      expect(diffs).toEqual([]);
    } finally {
      tmp.cleanup();
    }
  });
});
