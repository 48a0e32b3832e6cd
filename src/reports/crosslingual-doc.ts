/**
 * The cross-lingual report's document, computed from the measured runs alone (no training, no
 * model: testable on its own). Per pair: performance per language with intervals over seeds
 * (Student t) and over test samples (bootstrap of the seed-mean), test-time modality
 * ablation, robustness curves with their areas, gate weights per language and class, transfer
 * to the other language beside its in-language result, and a summary written from those
 * numbers: each comparison states its interval, and one the seeds cannot decide says so.
 */
import { barChart, lineChart, type MeanStdPoint } from './charts.ts';
import type { CurveKey, Language, Pair, RunEval, UnusableRun } from './crosslingual.ts';
import { CURVES, LANGUAGE_NAMES, LANGUAGES } from './crosslingual.ts';
import type { Cell, ReportChart, ReportDoc, ReportSection, ReportTable } from './document.ts';
import { formatMetric, METRIC_LABELS, scaled } from './reproduce.ts';
import { bootstrapMeanCI, metricFn, seedCI, welchCI } from './robustness.ts';
import { meanStd } from '../train/seeds.ts';
import type { DatasetMeta } from '../data/schema.ts';

export interface CrosslingualDocInput {
  pairs: readonly Pair[];
  seeds: readonly number[];
  evals: readonly RunEval[];
  missing: readonly { pair: string; language: Language; seed: number }[];
  unusable: readonly UnusableRun[];
  /** Runs read that belong to no slot or seed of the report. */
  unused: number;
  runId: string;
  quick: boolean;
  /** Bootstrap resamples (default 1000). */
  resamples?: number;
}

const MINUS = '−';

const metricLabel = (metric: string): string => (metric === 'weighted_f1' ? 'weighted F1' : METRIC_LABELS[metric] ?? metric);
const unitOf = (metric: string): string | undefined => (metric === 'MAE' ? undefined : '×100');
const fmtNum = (metric: string, v: number): string => (Number.isFinite(v) ? (metric === 'MAE' ? v.toFixed(3) : v.toFixed(2)) : '—');

function fmtMeanStd(metric: string, values: readonly number[]): string {
  const s = meanStd(values);
  if (s.n === 0) return '—';
  const m = formatMetric(metric, s.mean);
  return s.n > 1 ? `${m} ± ${fmtNum(metric, scaled(metric, s.std))}` : m;
}
function fmtInterval(metric: string, lo: number, hi: number): string {
  return Number.isFinite(lo) && Number.isFinite(hi) ? `${formatMetric(metric, lo)} – ${formatMetric(metric, hi)}` : '—';
}
const pct = (v: number): string => (Number.isFinite(v) ? `${v < 0 ? MINUS : ''}${Math.abs(v).toFixed(1)}%` : '—');
const signed = (v: number, digits = 1): string => (v < 0 ? `${MINUS}${Math.abs(v).toFixed(digits)}` : `+${v.toFixed(digits)}`);

/** How much a run lost under a curve, in % of its clean score (positive = worse, whatever the goal). */
export function relativeLoss(e: RunEval, curve: CurveKey): number | undefined {
  const c = e.curves[curve];
  if (!c || e.clean === 0 || !Number.isFinite(e.clean)) return undefined;
  const loss = e.goal === 'max' ? e.clean - c.auc : c.auc - e.clean;
  return (100 * loss) / Math.abs(e.clean);
}

/** The worse-is-positive change of a condition against clean, on the report's scale. */
function costOf(e: RunEval, value: number): number {
  return e.goal === 'max' ? scaled(e.metric, e.clean - value) : scaled(e.metric, value - e.clean);
}

interface Side { lang: Language; label: string; who: string; evals: RunEval[] }

export function buildCrosslingualDoc(d: CrosslingualDocInput): ReportDoc {
  const sections: ReportSection[] = [];
  const synthetic = d.pairs.filter((p) => p.en.synthetic || p.zh.synthetic);
  const missingRows: Cell[][] = [
    ...d.missing.map((m) => [`${d.pairs.find((p) => p.key === m.pair)![m.language].label} (${LANGUAGE_NAMES[m.language]})`, String(m.seed), 'missing', 'no FINISHED run of this slot and seed was found; --train-missing trains it']),
    ...d.unusable.map((u) => [u.runId, '', 'incomplete', u.why]),
  ];
  if (missingRows.length > 0) {
    sections.push({
      heading: 'Missing or incomplete runs',
      paragraphs: [`${d.missing.length} slot×seed combination(s) have no run and ${d.unusable.length} run(s) could not be used; the tables below show what there is, with the number of seeds each row rests on.`],
      tables: [{ caption: 'Runs the report lacks', columns: ['slot or run', 'seed', 'state', 'why'], rows: missingRows }],
    });
  }
  for (const pair of d.pairs) sections.push(pairSection(pair, d));
  const notice = [
    synthetic.length > 0 ? `${synthetic.map((p) => p.title.split(':')[0]).join(' and ')}: numbers from the embedded synthetic suite (generated data shaped like the benchmarks), not the real datasets; they exercise the method, and say nothing about MELD, CHERMA, MOSEI or SIMS-V2 themselves.` : '',
    d.pairs.some((p) => p.key === 'real-text') ? 'The real-text pair is real MELD and CPED utterances (text only).' : '',
    d.quick ? 'This is a --quick run (tiny training, two seeds, few evaluated samples): a smoke test of the report, not a result.' : '',
  ].filter((s) => s !== '').join(' ');
  return {
    title: 'Cross-lingual robustness: English vs Chinese',
    ...(notice ? { notice } : {}),
    meta: {
      'report run': d.runId,
      seeds: d.seeds.join(', '),
      'runs evaluated': String(d.evals.length),
      ...(d.unused > 0 ? { 'runs read but not used': `${d.unused} (another dataset, model or seed)` } : {}),
      intervals: `95%: Student t over seeds; percentile bootstrap over test samples (${d.resamples ?? 1000} resamples)`,
    },
    sections,
  };
}

function pairSection(pair: Pair, d: CrosslingualDocInput): ReportSection {
  const sides: Side[] = LANGUAGES.map((lang) => ({
    lang, label: pair[lang].label, who: `${pair[lang].label} (${LANGUAGE_NAMES[lang]})`,
    evals: d.evals.filter((e) => e.pair === pair.key && e.language === lang),
  }));
  const any = sides.flatMap((s) => s.evals)[0];
  if (!any) return { heading: pair.title, paragraphs: ['No run of this pair could be evaluated (see Missing or incomplete runs).'] };
  const metric = any.metric;
  const sub: ReportSection[] = [
    performance(pair, sides, metric, d.resamples ?? 1000),
    ablation(pair, sides, metric),
    curves(pair, sides, metric),
    gates(pair, sides),
    transfer(pair, sides, metric),
  ].filter((s): s is ReportSection => s !== undefined);
  return { heading: pair.title, paragraphs: summary(pair, sides, metric), sections: sub };
}

// ---------------------------------------------------------------------------------------
// Sections

function performance(pair: Pair, sides: Side[], metric: string, resamples: number): ReportSection {
  const regression = sides.some((s) => s.evals.some((e) => e.task === 'regression'));
  const rows: Cell[][] = [];
  const points: MeanStdPoint[] = [];
  for (const s of sides) {
    if (s.evals.length === 0) {
      rows.push([s.who, '0', '—', '—', '—', '—', '—', '—']);
      continue;
    }
    const vals = s.evals.map((e) => e.clean);
    const t = seedCI(vals);
    const first = s.evals[0]!;
    const boot = bootstrapMeanCI(s.evals.map((e) => e.predictions), metricOf(first), { resamples, seed: 0 });
    const base = (k: 'majority' | 'tfidf') => s.evals.map((e) => e.baselines[k]).filter((v): v is number => v !== undefined);
    rows.push([s.who, String(s.evals.length), `${first.split} (${first.n})`, fmtMeanStd(metric, vals), fmtInterval(metric, t.lo, t.hi), fmtInterval(metric, boot.lo, boot.hi), fmtMeanStd(metric, base('majority')), fmtMeanStd(metric, base('tfidf'))]);
    const ms = meanStd(vals);
    points.push({ x: s.label, series: 'EGMF', mean: scaled(metric, ms.mean), std: scaled(metric, ms.std), n: ms.n });
    for (const [k, name] of [['majority', regression ? 'mean label' : 'majority class'], ['tfidf', regression ? 'TF-IDF + ridge' : 'TF-IDF + logistic']] as const) {
      const b = meanStd(base(k));
      if (b.n > 0) points.push({ x: s.label, series: name, mean: scaled(metric, b.mean), std: scaled(metric, b.std), n: b.n });
    }
  }
  const table: ReportTable = {
    caption: `${metricLabel(metric)} per language (mean ± std over seeds), with the baselines of the same split`,
    columns: ['language', 'seeds', 'split (samples)', metricLabel(metric), '95% CI over seeds', '95% CI over test samples', ...(regression ? ['mean label', 'TF-IDF + ridge'] : ['majority class', 'TF-IDF + logistic'])],
    rows,
    note: `Baselines are computed by each run on its own data: ${regression ? 'the training split\'s mean label, and TF-IDF + ridge regression' : 'the training split\'s majority class, and TF-IDF + logistic regression'} (word 1-2-grams for English, character 1-3-grams for Chinese).`,
  };
  return {
    heading: 'Performance per language', tables: [table],
    charts: [{ name: `${pair.key}-performance`, spec: barChart({ title: `${pair.title.split(':')[0]}: ${metricLabel(metric)} per language`, x: 'dataset (language)', y: metricLabel(metric), ...(unitOf(metric) ? { yUnit: unitOf(metric) } : {}), points }) }],
  };
}

function ablation(pair: Pair, sides: Side[], metric: string): ReportSection | undefined {
  const conditions = [...new Set(sides.flatMap((s) => s.evals.flatMap((e) => Object.keys(e.ablation))))];
  if (conditions.length === 0) {
    return { heading: 'Modality ablation at test time', paragraphs: ['Not applicable: the models of this pair read text only.'] };
  }
  const rows: Cell[][] = [['none (clean)', ...sides.flatMap((s) => [fmtMeanStd(metric, s.evals.map((e) => e.clean)), '—'])]];
  const points: MeanStdPoint[] = [];
  for (const s of sides) {
    const c = meanStd(s.evals.map((e) => e.clean));
    if (c.n > 0) points.push({ x: 'none', series: s.label, mean: scaled(metric, c.mean), std: scaled(metric, c.std), n: c.n });
  }
  for (const cond of conditions) {
    rows.push([cond, ...sides.flatMap((s) => {
      const have = s.evals.filter((e) => e.ablation[cond] !== undefined);
      return [fmtMeanStd(metric, have.map((e) => e.ablation[cond]!)), have.length ? signedCost(have.map((e) => costOf(e, e.ablation[cond]!)), metric) : '—'];
    })]);
    for (const s of sides) {
      const v = meanStd(s.evals.map((e) => e.ablation[cond]).filter((x): x is number => x !== undefined));
      if (v.n > 0) points.push({ x: cond.replace('drop ', ''), series: s.label, mean: scaled(metric, v.mean), std: scaled(metric, v.std), n: v.n });
    }
  }
  return {
    heading: 'Modality ablation at test time',
    paragraphs: ['Each modality (and each pair) is removed from the test inputs of the trained models: text emptied, audio or vision frames masked out. The cost is the loss against clean on the table\'s scale (positive = worse).'],
    tables: [{ caption: `${metricLabel(metric)} with modalities removed at test time (mean ± std over seeds)`, columns: ['condition', ...sides.flatMap((s) => [s.who, `${s.label} cost`])], rows }],
    charts: [{ name: `${pair.key}-ablation`, spec: barChart({ title: `${pair.title.split(':')[0]}: modalities removed at test time`, x: 'modalities removed', y: metricLabel(metric), ...(unitOf(metric) ? { yUnit: unitOf(metric) } : {}), points }) }],
  };
}

function signedCost(costs: number[], metric: string): string {
  const s = meanStd(costs);
  const digits = metric === 'MAE' ? 3 : 2;
  return s.n > 1 ? `${signed(s.mean, digits)} ± ${s.std.toFixed(digits)}` : signed(s.mean, digits);
}

function curves(pair: Pair, sides: Side[], metric: string): ReportSection | undefined {
  const charts: ReportChart[] = [];
  const rows: Cell[][] = [];
  for (const c of CURVES) {
    const has = sides.filter((s) => s.evals.some((e) => e.curves[c.key]));
    if (has.length === 0) continue;
    const points: (MeanStdPoint & { x: number })[] = [];
    for (const s of has) {
      c.levels.forEach((x, i) => {
        const v = meanStd(s.evals.map((e) => e.curves[c.key]?.values[i]).filter((y): y is number => y !== undefined));
        if (v.n > 0) points.push({ x, series: s.label, mean: scaled(metric, v.mean), std: scaled(metric, v.std), n: v.n });
      });
    }
    charts.push({ name: `${pair.key}-${c.key.replace('_', '-')}`, spec: lineChart({ title: `${pair.title.split(':')[0]}: ${metricLabel(metric)} under ${c.label}`, x: c.label, xUnit: c.unit, y: metricLabel(metric), ...(unitOf(metric) ? { yUnit: unitOf(metric) } : {}), points }) });
    rows.push([c.label, c.levels.join(', '), ...sides.flatMap((s) => {
      const aucs = s.evals.map((e) => e.curves[c.key]?.auc).filter((y): y is number => y !== undefined);
      const losses = s.evals.map((e) => relativeLoss(e, c.key)).filter((y): y is number => y !== undefined);
      const ci = losses.length > 0 ? seedCI(losses) : undefined;
      return [fmtMeanStd(metric, aucs), ci ? `${pct(ci.mean)}${Number.isFinite(ci.lo) ? ` (${pct(ci.lo)} – ${pct(ci.hi)})` : ''}` : '—'];
    })]);
  }
  if (rows.length === 0) return undefined;
  return {
    heading: 'Robustness curves',
    paragraphs: [`Each curve is the ${metricLabel(metric)} at increasing perturbation levels (level 0 = clean), mean ± std over seeds. Its area (trapezoid rule over the levels rescaled to [0, 1]) is one number per perturbation; the loss is how far the area falls short of the clean score, in % of it (95% CI over seeds), so both languages are measured against themselves.`],
    tables: [{ caption: 'Area under each robustness curve and the relative loss it means', columns: ['perturbation', 'levels', ...sides.flatMap((s) => [`${s.who} area`, `${s.label} loss`])], rows }],
    charts,
  };
}

/** Gate names as readers know them: expert gate → 'expert: local', modality gate of an expert → 'local: audio'. */
function gateLabel(key: string): string {
  const parts = key.split('/');
  if (parts[1] === 'expert') return `expert: ${parts[2]}`;
  if (parts[1] === 'kind') return `kind: ${parts[2]}`;
  if (parts[1] === 'modality') return `${parts[2]}: ${parts[3]}`;
  return key;
}

function gates(pair: Pair, sides: Side[]): ReportSection | undefined {
  const keys = [...new Set(sides.flatMap((s) => s.evals.flatMap((e) => Object.keys(e.gates))))].sort();
  if (keys.length === 0) return undefined;
  const rows: Cell[][] = keys.map((k) => [gateLabel(k), ...sides.map((s) => {
    const v = meanStd(s.evals.map((e) => e.gates[k]).filter((x): x is number => x !== undefined));
    return v.n === 0 ? '—' : v.n > 1 ? `${v.mean.toFixed(3)} ± ${v.std.toFixed(3)}` : v.mean.toFixed(3);
  })]);
  const points: MeanStdPoint[] = [];
  for (const k of keys.filter((x) => x.startsWith('gate/expert/') || x.startsWith('gate/modality/'))) {
    for (const s of sides) {
      const v = meanStd(s.evals.map((e) => e.gates[k]).filter((x): x is number => x !== undefined));
      if (v.n > 0) points.push({ x: gateLabel(k), series: s.label, mean: v.mean, std: v.std, n: v.n });
    }
  }
  const tables: ReportTable[] = [{ caption: 'Mean gate weights on the clean scored split (mean ± std over seeds)', columns: ['gate', ...sides.map((s) => s.who)], rows }];
  const expertKeys = keys.filter((k) => k.startsWith('gate/expert/'));
  for (const s of sides) {
    const classes = [...new Set(s.evals.flatMap((e) => Object.keys(e.gatesByClass ?? {})))];
    if (classes.length === 0 || expertKeys.length === 0) continue;
    tables.push({
      caption: `${s.who}: expert gate weights per true class (mean over seeds)`,
      columns: ['class', ...expertKeys.map(gateLabel)],
      rows: classes.map((c) => [c, ...expertKeys.map((k) => {
        const v = meanStd(s.evals.map((e) => e.gatesByClass?.[c]?.[k]).filter((x): x is number => x !== undefined));
        return v.n === 0 ? '—' : v.mean.toFixed(3);
      })]),
    });
  }
  return {
    heading: 'Gate weights',
    paragraphs: ['The hierarchical gate\'s weights, averaged over the scored split: which experts (and, within each expert, which modalities) each language\'s model leans on.'],
    tables,
    ...(points.length > 0 ? { charts: [{ name: `${pair.key}-gates`, spec: barChart({ title: `${pair.title.split(':')[0]}: gate weights per language`, x: 'gate', y: 'mean gate weight', points }) }] } : {}),
  };
}

function transfer(pair: Pair, sides: Side[], metric: string): ReportSection | undefined {
  const rows: Cell[][] = [];
  for (const s of sides) {
    const other = sides.find((x) => x.lang !== s.lang)!;
    const tr = s.evals.map((e) => e.transfer).filter((t) => t !== undefined);
    if (tr.length === 0) continue;
    const ok = tr.filter((t): t is { target: string; value: number; n: number } => 'value' in t);
    const err = tr.find((t): t is { target: string; error: string } => 'error' in t);
    const inLang = other.evals.map((e) => e.clean);
    const tv = meanStd(ok.map((t) => t.value)).mean;
    const iv = meanStd(inLang).mean;
    const gap = metric === 'MAE' ? tv - iv : scaled(metric, iv - tv);
    rows.push([`${s.label} → ${other.label}`, String(ok.length), ok.length > 0 ? fmtMeanStd(metric, ok.map((t) => t.value)) : `not possible: ${err?.error ?? 'no result'}`, fmtMeanStd(metric, inLang), Number.isFinite(gap) && ok.length > 0 ? signed(gap, metric === 'MAE' ? 3 : 2) : '—']);
  }
  if (rows.length === 0) return undefined;
  return {
    heading: 'Cross-lingual transfer',
    paragraphs: [pair.task === 'emotion recognition'
      ? 'Each language\'s models scored on the other language\'s scored split, their answers mapped onto its labels by emotion meaning (joy ↔ 高兴, neutral ↔ 平静, …), beside the in-language models of that language. The gap is how much worse transfer is (positive = worse).'
      : 'Each language\'s models scored on the other language\'s scored split, their scores rescaled linearly onto its range (MOSEI [−3, 3] ↔ SIMS-V2 [−1, 1]), beside the in-language models of that language. The gap is how much worse transfer is (positive = worse).'],
    tables: [{ caption: `Train on one language, test on the other (${metricLabel(metric)}, mean ± std over seeds)`, columns: ['trained → scored', 'seeds', 'transfer', 'in-language', 'gap'], rows }],
  };
}

// ---------------------------------------------------------------------------------------
// The written summary

function summary(pair: Pair, sides: Side[], metric: string): string[] {
  const out: string[] = [];
  const [en, zh] = sides as [Side, Side];
  const m = metricLabel(metric);
  const better = metric === 'MAE' ? 'lower' : 'higher';
  const describe = (s: Side) => {
    const v = s.evals.map((e) => e.clean);
    const t = v.length > 0 ? seedCI(v) : undefined;
    return t ? `${s.who} scores ${m} ${fmtMeanStd(metric, v)} over ${v.length} seed${v.length === 1 ? '' : 's'}${Number.isFinite(t.lo) ? ` (95% CI ${fmtInterval(metric, t.lo, t.hi)})` : ''}` : `${s.who} has no evaluated run`;
  };
  out.push(`${describe(en)}; ${describe(zh)}.${en.evals.length > 0 && zh.evals.length > 0 ? ` ${difference(en, zh, metric, better)}` : ''}`);
  const curveLines: string[] = [];
  for (const c of CURVES) {
    const le = en.evals.map((e) => relativeLoss(e, c.key)).filter((y): y is number => y !== undefined);
    const lz = zh.evals.map((e) => relativeLoss(e, c.key)).filter((y): y is number => y !== undefined);
    if (le.length === 0 || lz.length === 0) continue;
    const ce = seedCI(le);
    const cz = seedCI(lz);
    const w = welchCI(le, lz);
    const interval = (x: { lo: number; hi: number }) => (Number.isFinite(x.lo) ? ` (95% CI ${pct(x.lo)} – ${pct(x.hi)})` : '');
    const faster = w.diff > 0 ? zh : en;
    const slower = w.diff > 0 ? en : zh;
    let verdict: string;
    if (!Number.isFinite(w.lo) && w.diff === 0) verdict = 'Neither language loses more.';
    else if (!Number.isFinite(w.lo)) verdict = `${faster.label} loses more by ${Math.abs(w.diff).toFixed(1)} points, but with ${Math.min(le.length, lz.length) < 2 ? 'one seed on a side' : 'no spread over seeds'} there is no interval: an anecdote, not a finding.`;
    else if (w.lo > 0 || w.hi < 0) verdict = `${faster.who} degrades faster than ${slower.who}, by ${Math.abs(w.diff).toFixed(1)} points (Welch 95% CI ${pct(Math.min(Math.abs(w.lo), Math.abs(w.hi)))} – ${pct(Math.max(Math.abs(w.lo), Math.abs(w.hi)))}).`;
    else verdict = `The difference (${signed(w.diff)} points for Chinese, Welch 95% CI ${signed(w.lo)} – ${signed(w.hi)}) includes 0: these seeds do not show either language degrading faster.`;
    curveLines.push(`Under ${c.label}, ${en.label} loses ${pct(ce.mean)}${interval(ce)} of its clean ${m} over the levels and ${zh.label} ${pct(cz.mean)}${interval(cz)}. ${verdict}`);
  }
  out.push(...curveLines);
  const worst = (s: Side): string | undefined => {
    const conds = [...new Set(s.evals.flatMap((e) => Object.keys(e.ablation)))].filter((c) => !c.includes('+'));
    const costs = conds.map((c) => ({ c, cost: meanStd(s.evals.filter((e) => e.ablation[c] !== undefined).map((e) => costOf(e, e.ablation[c]!))).mean }));
    costs.sort((a, b) => b.cost - a.cost);
    const top = costs[0];
    if (top && Number.isFinite(top.cost) && top.cost <= 0) return `${s.label} loses nothing when any one is removed`;
    return top && Number.isFinite(top.cost) ? `${s.label} suffers most from ${top.c.replace('drop ', 'losing ')} (${signed(top.cost, metric === 'MAE' ? 3 : 2)} ${m}${unitOf(metric) ? ' points' : ''})` : undefined;
  };
  const worsts = [worst(en), worst(zh)].filter((x): x is string => x !== undefined);
  if (worsts.length > 0) out.push(`Of single modalities removed at test time, ${worsts.join('; ')}.`);
  const lean = (s: Side): string | undefined => {
    const keys = [...new Set(s.evals.flatMap((e) => Object.keys(e.gates)))].filter((k) => k.startsWith('gate/expert/'));
    const w = keys.map((k) => ({ k, v: meanStd(s.evals.map((e) => e.gates[k]).filter((x): x is number => x !== undefined)).mean })).sort((a, b) => b.v - a.v);
    return w[0] ? `${s.label} on the ${w[0].k.split('/')[2]} expert (${w[0].v.toFixed(2)})` : undefined;
  };
  const leans = [lean(en), lean(zh)].filter((x): x is string => x !== undefined);
  if (leans.length > 0) out.push(`The expert gate leans most, for ${leans.join(', for ')}.`);
  for (const s of [en, zh]) {
    const other = s === en ? zh : en;
    const ok = s.evals.map((e) => e.transfer).filter((t): t is { target: string; value: number; n: number } => t !== undefined && 'value' in t);
    if (ok.length === 0 || other.evals.length === 0) continue;
    out.push(`Trained on ${s.label} and scored on ${other.label}, the models reach ${m} ${fmtMeanStd(metric, ok.map((t) => t.value))}, against ${fmtMeanStd(metric, other.evals.map((e) => e.clean))} for ${other.label}'s own models.`);
  }
  return out;
}

function difference(en: Side, zh: Side, metric: string, better: string): string {
  const a = en.evals.map((e) => scaled(metric, e.clean));
  const b = zh.evals.map((e) => scaled(metric, e.clean));
  const w = welchCI(a, b);
  const higher = w.diff > 0 ? zh : en;
  const digits = metric === 'MAE' ? 3 : 2;
  const size = `${Math.abs(w.diff).toFixed(digits)}${unitOf(metric) ? ' points' : ''}`;
  const ci = Number.isFinite(w.lo) ? ` (Welch 95% CI of Chinese − English ${signed(w.lo, digits)} – ${signed(w.hi, digits)}${w.lo > 0 || w.hi < 0 ? '' : ', which includes 0'})` : Math.min(a.length, b.length) < 2 ? ' (no interval: one seed on a side)' : ' (no interval: the seeds do not spread)';
  return `${higher.label}'s value is ${metric === 'MAE' ? 'higher (worse)' : better} by ${size}${ci}; the two sides are different benchmarks, so this compares datasets as much as languages, and the losses below are each measured against the side's own clean score.`;
}

function metricOf(e: RunEval): (pred: number[], truth: number[]) => number {
  const meta = { task: e.task, dataset: e.dataset, ...(e.labelNames ? { labelNames: e.labelNames } : {}), ...(e.labelRange ? { labelRange: e.labelRange } : {}) } as DatasetMeta;
  return metricFn(meta, e.metric);
}
