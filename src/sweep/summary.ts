/**
 * The sweep's summary artifact: a table of trials (CSV and Markdown), one parameter-vs-metric
 * scatter chart per swept parameter and a parallel-coordinates chart, as hand-written SVG.
 * Pure and deterministic: the same trials give byte-identical files.
 */
import type { ParamDef, JsonValue } from './space.ts';
import type { SweepSpec } from './spec.ts';
import type { TrialRecord } from './study.ts';
import { formatBaselines } from '../train/baselines/index.ts';
import { formatMeanStd, meanStd } from '../train/seeds.ts';

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

const W = 640;
const H = 400;
const M = { left: 70, right: 20, top: 40, bottom: 60 };
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

const c2 = (v: number): string => (Math.round(v * 100) / 100).toFixed(2);
const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const cell = (v: JsonValue | undefined): string => (v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'number' ? fmt(v) : JSON.stringify(v));

function swept(spec: SweepSpec): ParamDef[] {
  return spec.parameters.filter((p) => p.dist.type !== 'constant');
}

/** Every file of the summary, keyed by its path under `summary/`. */
export function buildSummary(input: SummaryInput): Record<string, string> {
  const files: Record<string, string> = {
    'trials.csv': trialsCsv(input),
    'trials.md': trialsMarkdown(input),
  };
  const metric = slug(input.spec.metric.name);
  for (const p of swept(input.spec)) files[`${slug(p.name)}_vs_${metric}.svg`] = scatterSvg(input, p);
  files['parallel_coordinates.svg'] = parallelCoordinatesSvg(input);
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

/** Maps a parameter's values to [0, 1]; categoricals get evenly spaced slots. */
interface Axis {
  pos(v: JsonValue): number | undefined;
  ticks: { at: number; label: string }[];
}

function paramAxis(p: ParamDef): Axis {
  const d = p.dist;
  if (d.type === 'categorical' || d.type === 'constant') {
    const values = d.type === 'categorical' ? d.values : [d.value];
    const keys = values.map((v) => JSON.stringify(v));
    const at = (i: number): number => (values.length === 1 ? 0.5 : i / (values.length - 1));
    return {
      pos: (v) => {
        const i = keys.indexOf(JSON.stringify(v));
        return i < 0 ? undefined : at(i);
      },
      ticks: values.map((v, i) => ({ at: at(i), label: cell(v) })),
    };
  }
  const log = d.type === 'log_uniform' || d.type === 'q_log_uniform';
  const f = (x: number): number => (log ? Math.log(x) : x);
  return numericAxis(f(d.min), f(d.max), (v) => (typeof v === 'number' ? f(v) : undefined), log ? (u) => fmt(Math.exp(u)) : fmt);
}

function numericAxis(lo: number, hi: number, f: (v: JsonValue) => number | undefined, label: (u: number) => string): Axis {
  const span = hi - lo || 1;
  return {
    pos: (v) => {
      const u = f(v);
      return u === undefined ? undefined : (u - lo) / span;
    },
    ticks: [0, 0.25, 0.5, 0.75, 1].map((a) => ({ at: a, label: label(lo + a * span) })),
  };
}

/** Each trial's point on the metric axis: the final value, else (pruned) the last report. */
function metricValue(t: TrialRecord): number | undefined {
  if (t.state === 'complete') return t.value;
  if (t.state === 'pruned') return t.value ?? t.intermediate[t.intermediate.length - 1]?.[1];
  return undefined;
}

function metricAxis(trials: readonly TrialRecord[]): Axis {
  const vals = trials.map(metricValue).filter((v): v is number => v !== undefined);
  let lo = vals.length ? Math.min(...vals) : 0;
  let hi = vals.length ? Math.max(...vals) : 1;
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  return numericAxis(lo, hi, (v) => (typeof v === 'number' ? v : undefined), fmt);
}

function svgOpen(title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${xml(title)}</text>`,
  ];
}

export function scatterSvg(input: SummaryInput, p: ParamDef): string {
  const { spec, trials } = input;
  const xa = paramAxis(p);
  const ya = metricAxis(trials);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  // Data sit 5% inside the axes so markers at the extremes are not cut by them.
  const X = (a: number): number => M.left + (0.05 + 0.9 * a) * pw;
  const Y = (a: number): number => M.top + (0.95 - 0.9 * a) * ph;
  const out = svgOpen(`${p.name} vs ${spec.metric.name}`);
  out.push(`<line x1="${M.left}" y1="${M.top + ph}" x2="${M.left + pw}" y2="${M.top + ph}" stroke="black"/>`, `<line x1="${M.left}" y1="${M.top + ph}" x2="${M.left}" y2="${M.top}" stroke="black"/>`);
  for (const t of xa.ticks) out.push(`<text x="${c2(X(t.at))}" y="${M.top + ph + 16}" text-anchor="middle">${xml(t.label)}</text>`);
  for (const t of ya.ticks) out.push(`<text x="${M.left - 6}" y="${c2(Y(t.at) + 4)}" text-anchor="end">${xml(t.label)}</text>`);
  out.push(`<text x="${X(0.5)}" y="${H - 18}" text-anchor="middle">${xml(p.name)}</text>`);
  out.push(`<text x="16" y="${Y(0.5)}" text-anchor="middle" transform="rotate(-90 16 ${Y(0.5)})">${xml(spec.metric.name)}</text>`);
  for (const t of trials) {
    const xv = t.params[p.name];
    const yv = metricValue(t);
    if (xv === undefined || yv === undefined) continue;
    const xa0 = xa.pos(xv);
    const ya0 = ya.pos(yv);
    if (xa0 === undefined || ya0 === undefined) continue;
    const filled = t.state === 'complete';
    const best = t.id === input.bestTrialId;
    out.push(`<circle cx="${c2(X(xa0))}" cy="${c2(Y(ya0))}" r="${best ? 6 : 4}" fill="${filled ? (best ? '#d62728' : '#1f77b4') : 'none'}" stroke="${best ? '#d62728' : '#1f77b4'}"><title>${xml(`${t.id}: ${fmt(yv)}${filled ? '' : ' (pruned)'}`)}</title></circle>`);
  }
  out.push(`<text x="${W - M.right}" y="${H - 4}" text-anchor="end">filled: completed, hollow: pruned (last report), red: best</text>`, '</svg>');
  return `${out.join('\n')}\n`;
}

/** Blue (worst) to red (best), by position on the metric axis oriented by the goal. */
function colour(a: number): string {
  const r = Math.round(31 + a * (214 - 31));
  const g = Math.round(119 + a * (39 - 119));
  const b = Math.round(180 + a * (40 - 180));
  return `rgb(${r},${g},${b})`;
}

export function parallelCoordinatesSvg(input: SummaryInput): string {
  const { spec, trials } = input;
  const params = swept(spec);
  const axes: { name: string; axis: Axis; value: (t: TrialRecord) => JsonValue | undefined }[] = [
    ...params.map((p) => ({ name: p.name, axis: paramAxis(p), value: (t: TrialRecord) => t.params[p.name] })),
    { name: spec.metric.name, axis: metricAxis(trials), value: (t: TrialRecord) => metricValue(t) },
  ];
  const ph = H - M.top - M.bottom;
  const X = (i: number): number => M.left + (axes.length === 1 ? 0.5 : i / (axes.length - 1)) * (W - M.left - M.right - 40);
  const Y = (a: number): number => M.top + (1 - a) * ph;
  const out = svgOpen(`Parallel coordinates: ${spec.name}`);
  const metricAx = axes[axes.length - 1]!.axis;
  for (const t of trials) {
    const mv = metricValue(t);
    if (mv === undefined) continue;
    let d = '';
    let pen = false;
    axes.forEach((a, i) => {
      const v = a.value(t);
      const pos = v === undefined ? undefined : a.axis.pos(v);
      if (pos === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? ' L' : `${d ? ' ' : ''}M`} ${c2(X(i))} ${c2(Y(pos))}`;
      pen = true;
    });
    const m = metricAx.pos(mv) ?? 0;
    const good = spec.metric.goal === 'maximize' ? m : 1 - m;
    const dash = t.state === 'pruned' ? ' stroke-dasharray="4 3"' : '';
    out.push(`<path d="${d}" fill="none" stroke="${colour(good)}" stroke-width="${t.id === input.bestTrialId ? 3 : 1.5}" opacity="0.8"${dash}><title>${xml(`${t.id}: ${fmt(mv)}`)}</title></path>`);
  }
  axes.forEach((a, i) => {
    out.push(`<line x1="${c2(X(i))}" y1="${Y(0)}" x2="${c2(X(i))}" y2="${Y(1)}" stroke="black"/>`);
    out.push(`<text x="${c2(X(i))}" y="${Y(0) + 18}" text-anchor="middle">${xml(a.name)}</text>`);
    for (const t of a.axis.ticks) out.push(`<text x="${c2(X(i) + 4)}" y="${c2(Y(t.at) + 4)}">${xml(t.label)}</text>`);
  });
  out.push(`<text x="${W - M.right}" y="${H - 8}" text-anchor="end">red: best ${spec.metric.goal === 'maximize' ? 'high' : 'low'} ${xml(spec.metric.name)}; dashed: pruned</text>`, '</svg>');
  return `${out.join('\n')}\n`;
}
