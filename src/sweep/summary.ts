/**
 * The sweep's summary artifact: a table of trials (CSV and Markdown), one parameter-vs-metric
 * scatter chart per swept parameter and a parallel-coordinates chart, each as SVG beside its
 * Vega-Lite spec (through src/reports/charts.ts, the project's one chart code path).
 * Deterministic: the same trials give byte-identical files.
 */
import type { ParamDef, JsonValue } from './space.ts';
import type { SweepSpec } from './spec.ts';
import type { TrialRecord } from './study.ts';
import { formatBaselines } from '../train/baselines/index.ts';
import { formatMeanStd, meanStd } from '../train/seeds.ts';
import { parallelCoordinatesChart, renderSvg, scatterChart, type VlSpec } from '../reports/charts.ts';

export interface SummaryInput {
  spec: SweepSpec;
  trials: readonly TrialRecord[];
  /** Trial id → MLflow run id. */
  runIds: Readonly<Record<string, string>>;
  /** Best seed-trial id (marked in the table). */
  bestTrialId?: string;
  /** Trial id → its baselines' values of the sweep metric on its own data (`{majority, tfidf}`). */
  baselines?: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

const BASELINE_COLUMNS = ['majority', 'tfidf'] as const;

const STATE_LABEL = { complete: 'completed', pruned: 'pruned', failed: 'failed', running: 'running' } as const;

/** File-name-safe form of a parameter or metric name. */
export function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** Number → short stable text (4 significant digits). */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}

const cell = (v: JsonValue | undefined): string => (v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'number' ? fmt(v) : JSON.stringify(v));

function swept(spec: SweepSpec): ParamDef[] {
  return spec.parameters.filter((p) => p.dist.type !== 'constant');
}

/** Every file of the summary, keyed by its path under `summary/`: each chart as SVG and as its Vega-Lite spec. */
export async function buildSummary(input: SummaryInput): Promise<Record<string, string>> {
  const files: Record<string, string> = {
    'trials.csv': trialsCsv(input),
    'trials.md': trialsMarkdown(input),
  };
  const metric = slug(input.spec.metric.name);
  const charts: [string, VlSpec][] = [
    ...swept(input.spec).map((p): [string, VlSpec] => [`${slug(p.name)}_vs_${metric}`, scatterSpec(input, p)]),
    ['parallel_coordinates', parallelCoordinatesSpec(input)],
  ];
  for (const [name, spec] of charts) {
    files[`${name}.svg`] = await renderSvg(spec, name);
    files[`${name}.vl.json`] = `${JSON.stringify(spec, null, 2)}\n`;
  }
  return files;
}

function header(input: SummaryInput): string[] {
  return ['trial_id', 'number', 'seed', 'state', input.spec.metric.name, ...BASELINE_COLUMNS.map((b) => `baseline_${b}`), 'last_step', 'run_id', 'best', ...input.spec.parameters.map((p) => p.name), 'error'];
}

function row(input: SummaryInput, t: TrialRecord): string[] {
  const last = t.intermediate[t.intermediate.length - 1];
  return [
    t.id,
    String(t.number),
    t.seed === null ? '' : String(t.seed),
    STATE_LABEL[t.state],
    t.value === undefined ? '' : fmt(t.value),
    ...BASELINE_COLUMNS.map((b) => {
      const v = input.baselines?.[t.id]?.[b];
      return v === undefined ? '' : fmt(v);
    }),
    last === undefined ? '' : String(last[0]),
    input.runIds[t.id] ?? '',
    t.id === input.bestTrialId ? 'true' : '',
    ...input.spec.parameters.map((p) => cell(t.params[p.name])),
    t.error ?? '',
  ];
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function trialsCsv(input: SummaryInput): string {
  const lines = [header(input), ...input.trials.map((t) => row(input, t))];
  return `${lines.map((l) => l.map(csvField).join(',')).join('\n')}\n`;
}

export function trialsMarkdown(input: SummaryInput): string {
  const h = header(input);
  const md = (s: string): string => s.split('\n')[0]!.slice(0, 120).replace(/\|/g, '\\|');
  const lines = [
    `# Sweep ${input.spec.name}: ${input.trials.length} trials (${input.spec.method}, ${input.spec.metric.goal} ${input.spec.metric.name})`,
    '',
    ...bestLine(input),
    `| ${h.join(' | ')} |`,
    `| ${h.map(() => '---').join(' | ')} |`,
    ...input.trials.map((t) => `| ${row(input, t).map(md).join(' | ')} |`),
  ];
  return `${lines.join('\n')}\n`;
}

/** The best trial beside the baselines of its own data, and the seeds' mean ± std when it has several. */
function bestLine(input: SummaryInput): string[] {
  const best = input.trials.find((t) => t.id === input.bestTrialId);
  if (best?.value === undefined) return [];
  const b = input.baselines?.[best.id] ?? {};
  const seeds = input.trials.filter((t) => t.number === best.number && t.state === 'complete' && t.value !== undefined).map((t) => t.value!);
  const spread = seeds.length > 1 ? ` (configuration over ${seeds.length} seeds: ${formatMeanStd(meanStd(seeds))})` : '';
  return [`Best: trial ${best.id}, ${input.spec.metric.name} ${fmt(best.value)}${spread}; baselines on its data: ${formatBaselines(b, fmt, BASELINE_COLUMNS)}.`, ''];
}

/** Each trial's point on the metric axis: the final value, else (pruned) the last report. */
function metricValue(t: TrialRecord): number | undefined {
  if (t.state === 'complete') return t.value;
  if (t.state === 'pruned') return t.value ?? t.intermediate[t.intermediate.length - 1]?.[1];
  return undefined;
}

const PRUNED = 'pruned (last report)';

const isLog = (p: ParamDef): boolean => p.dist.type === 'log_uniform' || p.dist.type === 'q_log_uniform';

/** Trials with a point on the metric axis, completed before pruned (so their legend order and colours never change). */
function charted(trials: readonly TrialRecord[]): { t: TrialRecord; metric: number }[] {
  const out = trials.flatMap((t) => {
    const m = metricValue(t);
    return m === undefined || !Number.isFinite(m) ? [] : [{ t, metric: m }];
  });
  return [...out.filter((x) => x.t.state === 'complete'), ...out.filter((x) => x.t.state !== 'complete')];
}

/** One parameter against the sweep metric: a marker per completed or pruned trial, the best one ringed. */
export function scatterSpec(input: SummaryInput, p: ParamDef): VlSpec {
  const metric = input.spec.metric.name;
  const points = charted(input.trials).flatMap(({ t, metric: y }) => {
    const v = t.params[p.name];
    if (v === undefined) return [];
    const x = typeof v === 'number' ? v : cell(v);
    return [{ x, y, group: t.state === 'complete' ? 'completed' : PRUNED, highlight: t.id === input.bestTrialId, tooltip: { trial: t.id, [p.name]: cell(v), [metric]: fmt(y) } }];
  });
  return scatterChart({ title: `${p.name} vs ${metric}`, x: p.name, y: metric, points, highlightLabel: 'best', ...(isLog(p) ? { xScale: 'log' as const } : {}) });
}

/**
 * A parallel-coordinates axis per swept parameter and one for the metric: log-distributed
 * parameters as log10, categorical non-numbers by their index in the parameter's values.
 */
export function parallelCoordinatesSpec(input: SummaryInput): VlSpec {
  const { spec } = input;
  const axes = swept(spec).map((p) => {
    const d = p.dist;
    if (d.type === 'categorical' && !d.values.every((v) => typeof v === 'number')) {
      const keys = d.values.map((v) => JSON.stringify(v));
      const legend = `${p.name} (${d.values.map((v, i) => `${i}=${cell(v)}`).join(', ')})`;
      return { name: legend.length <= 48 ? legend : `${p.name} (index)`, value: (v: JsonValue) => { const i = keys.indexOf(JSON.stringify(v)); return i < 0 ? undefined : i; } };
    }
    if (isLog(p)) return { name: `log10(${p.name})`, value: (v: JsonValue) => (typeof v === 'number' && v > 0 ? Math.log10(v) : undefined) };
    return { name: p.name, value: (v: JsonValue) => (typeof v === 'number' ? v : undefined) };
  });
  const rows = charted(input.trials).map(({ t, metric }) => {
    const values: Record<string, number> = { [spec.metric.name]: metric };
    swept(spec).forEach((p, i) => {
      const v = t.params[p.name];
      const u = v === undefined ? undefined : axes[i]!.value(v);
      if (u !== undefined) values[axes[i]!.name] = u;
    });
    return { id: t.id, values, group: t.id === input.bestTrialId ? 'best' : t.state === 'complete' ? 'completed' : PRUNED };
  });
  // The best line last, drawn on top.
  const ordered = [...rows.filter((r) => r.group !== 'best'), ...rows.filter((r) => r.group === 'best')];
  return parallelCoordinatesChart({ title: `Parallel coordinates: ${spec.name} (${spec.metric.goal} ${spec.metric.name})`, dimensions: [...axes.map((a) => a.name), spec.metric.name], rows: ordered });
}
