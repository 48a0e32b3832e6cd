/**
 * The project's one chart code path: Vega-Lite specs (data inline) built by a few chart
 * builders, compiled with vega-lite and rendered headlessly to SVG by a vega View.
 *
 * Rendering is deterministic (same spec → byte-identical SVG): renders run one at a time,
 * vega-lite's and vega's global id counters are reset before each, every chart has a
 * fixed width and height, and no data are loaded from anywhere (a spec whose data are not
 * inline fails). Node has no canvas, so vega sizes text by its estimate (0.8 × font size
 * per character, wider than real sans-serif text): labels and legends are laid out with a
 * little extra room, and truncation limits are switched off so no label is cut to "…".
 */
import type * as Vega from 'vega';
import type { TopLevelSpec } from 'vega-lite';
import { EgmfError } from '../errors.ts';

/** A Vega-Lite spec, data inline (`data.values`). */
export type VlSpec = Record<string, unknown>;

export interface MeanStdPoint {
  x: string | number;
  series?: string;
  mean: number;
  std: number;
  n?: number;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const WIDTH = 480;
const HEIGHT = 300;
/** Tableau 10, vega's default categorical scheme, spelled out so the colours never depend on a default. */
const PALETTE = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];
const HIGHLIGHT = '#d62728';

/** Shared look: fonts, sizes, no label truncation (text widths are estimated in Node). */
const CONFIG = {
  font: 'sans-serif',
  background: 'white',
  title: { fontSize: 14, anchor: 'start', offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 0, titleLimit: 0, grid: true, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 11, labelLimit: 0, titleLimit: 0, orient: 'right' },
  range: { category: PALETTE },
  view: { stroke: '#ddd' },
};

function base(title: string): VlSpec {
  return { $schema: SCHEMA, title, width: WIDTH, height: HEIGHT, config: CONFIG };
}

/** "weighted F1" + "valid" → "weighted F1 (valid)". */
function axisTitle(name: string, unit?: string): string {
  return unit ? `${name} (${unit})` : name;
}

/** Distinct values in order of first appearance. */
function distinct<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function checkFinite(chart: string, what: string, v: number): void {
  if (!Number.isFinite(v)) throw new EgmfError(`chart '${chart}': ${what} is ${v}, not a finite number`);
}

/** Colour encoding by `field`, with a legend only when there is more than one value. */
function colourBy(field: string, values: readonly string[], legend: Record<string, unknown> = {}): Record<string, unknown> {
  return { field, type: 'nominal', sort: values, scale: { domain: values, range: PALETTE.slice(0, Math.max(1, values.length)) }, legend: values.length > 1 ? { title: null, ...legend } : null };
}

/**
 * Grouped bars (colour = series, with a legend when there are several), error bars at
 * mean ± std, and a labelled horizontal rule per reference value (e.g. a baseline).
 */
export function barChart(o: { title: string; x: string; y: string; yUnit?: string; points: MeanStdPoint[]; reference?: { label: string; value: number }[] }): VlSpec {
  const series = distinct(o.points.map((p) => p.series ?? ''));
  const many = series.length > 1 || (series.length === 1 && series[0] !== '');
  const xs = distinct(o.points.map((p) => String(p.x)));
  const values = o.points.map((p) => {
    checkFinite(o.title, `mean at ${p.x}`, p.mean);
    checkFinite(o.title, `std at ${p.x}`, p.std);
    return { x: String(p.x), series: p.series ?? '', mean: p.mean, lo: p.mean - p.std, hi: p.mean + p.std, std: p.std, ...(p.n === undefined ? {} : { n: p.n }) };
  });
  const yTitle = axisTitle(o.y, o.yUnit);
  const x = { field: 'x', type: 'nominal', sort: xs, title: o.x, axis: { labelAngle: 0 } };
  const offset = many ? { xOffset: { field: 'series', type: 'nominal', sort: series } } : {};
  const colour = many ? { color: colourBy('series', series) } : {};
  const tooltip = [
    { field: 'x', type: 'nominal', title: o.x },
    ...(many ? [{ field: 'series', type: 'nominal', title: 'series' }] : []),
    { field: 'mean', type: 'quantitative', title: `${yTitle}, mean`, format: '.4~g' },
    { field: 'std', type: 'quantitative', title: 'std', format: '.4~g' },
    ...(o.points.some((p) => p.n !== undefined) ? [{ field: 'n', type: 'quantitative', title: 'n' }] : []),
  ];
  const layer: Record<string, unknown>[] = [
    {
      mark: { type: 'bar', ...(many ? {} : { color: PALETTE[0] }) },
      encoding: { x, ...offset, y: { field: 'mean', type: 'quantitative', title: yTitle, scale: { zero: true } }, ...colour, tooltip },
    },
    {
      mark: { type: 'errorbar', ticks: { size: 6 }, color: '#222', thickness: 1.2 },
      encoding: { x, ...offset, y: { field: 'lo', type: 'quantitative', title: yTitle }, y2: { field: 'hi' } },
    },
  ];
  const refs = o.reference ?? [];
  for (const r of refs) checkFinite(o.title, `reference '${r.label}'`, r.value);
  if (refs.length > 0) {
    layer.push({
      data: { values: refs.map((r) => ({ label: r.label, value: r.value })) },
      layer: [
        { mark: { type: 'rule', color: '#555', strokeDash: [6, 4], strokeWidth: 1.5 }, encoding: { y: { field: 'value', type: 'quantitative', title: yTitle } } },
        {
          mark: { type: 'text', align: 'right', baseline: 'bottom', dx: -4, dy: -3, fontSize: 11, color: '#333' },
          encoding: { x: { value: WIDTH }, y: { field: 'value', type: 'quantitative', title: yTitle }, text: { field: 'label' } },
        },
      ],
    });
  }
  return { ...base(o.title), data: { values }, layer };
}

/** One line per series with a ± std band (errorband), points, and a legend when there are several series. */
export function lineChart(o: { title: string; x: string; xUnit?: string; y: string; yUnit?: string; points: (MeanStdPoint & { x: number })[] }): VlSpec {
  const series = distinct(o.points.map((p) => p.series ?? ''));
  const many = series.length > 1 || (series.length === 1 && series[0] !== '');
  const values = o.points.map((p) => {
    checkFinite(o.title, `x of a point`, p.x);
    checkFinite(o.title, `mean at x=${p.x}`, p.mean);
    checkFinite(o.title, `std at x=${p.x}`, p.std);
    return { x: p.x, series: p.series ?? '', mean: p.mean, lo: p.mean - p.std, hi: p.mean + p.std, std: p.std, ...(p.n === undefined ? {} : { n: p.n }) };
  });
  const xTitle = axisTitle(o.x, o.xUnit);
  const yTitle = axisTitle(o.y, o.yUnit);
  const x = { field: 'x', type: 'quantitative', title: xTitle, scale: { zero: false } };
  // The legend shows each series as its line, not as the pale band drawn first.
  const colour = many ? { color: colourBy('series', series, { symbolType: 'stroke', symbolOpacity: 1, symbolStrokeWidth: 2.5 }) } : {};
  const fixed = many ? {} : { color: PALETTE[0] };
  const tooltip = [
    { field: 'x', type: 'quantitative', title: xTitle },
    ...(many ? [{ field: 'series', type: 'nominal', title: 'series' }] : []),
    { field: 'mean', type: 'quantitative', title: `${yTitle}, mean`, format: '.4~g' },
    { field: 'std', type: 'quantitative', title: 'std', format: '.4~g' },
  ];
  return {
    ...base(o.title),
    data: { values },
    encoding: { x },
    layer: [
      { mark: { type: 'errorband', opacity: 0.22, ...fixed }, encoding: { y: { field: 'lo', type: 'quantitative', title: yTitle, scale: { zero: false } }, y2: { field: 'hi' }, ...colour } },
      { mark: { type: 'line', strokeWidth: 2, ...fixed }, encoding: { y: { field: 'mean', type: 'quantitative', title: yTitle }, ...colour } },
      { mark: { type: 'point', filled: true, size: 36, ...fixed }, encoding: { y: { field: 'mean', type: 'quantitative', title: yTitle }, ...colour, tooltip } },
    ],
  };
}

/**
 * Points by group (colour and shape, legend when there are several groups); highlighted
 * points get a red ring with its own legend entry (`highlightLabel`, default "highlighted").
 * `xScale: 'log'` for log-distributed x values.
 */
export function scatterChart(o: {
  title: string;
  x: string;
  y: string;
  points: { x: number | string; y: number; group: string; highlight?: boolean; tooltip?: Record<string, string | number> }[];
  xScale?: 'linear' | 'log';
  highlightLabel?: string;
}): VlSpec {
  const groups = distinct(o.points.map((p) => p.group));
  const numeric = o.points.every((p) => typeof p.x === 'number');
  // Tooltip keys may hold dots (Vega-Lite's nested-field syntax): stored under plain names.
  const keys = distinct(o.points.flatMap((p) => Object.keys(p.tooltip ?? {})));
  const values = o.points.map((p) => {
    checkFinite(o.title, `y of a point`, p.y);
    if (typeof p.x === 'number') checkFinite(o.title, `x of a point`, p.x);
    const row: Record<string, unknown> = { x: p.x, y: p.y, group: p.group, highlight: p.highlight === true };
    keys.forEach((k, i) => {
      if (p.tooltip?.[k] !== undefined) row[`t${i}`] = p.tooltip[k];
    });
    return row;
  });
  const x = numeric
    ? { field: 'x', type: 'quantitative', title: o.x, scale: o.xScale === 'log' ? { type: 'log', nice: false, padding: 16 } : { type: 'linear', zero: false, padding: 16 } }
    : { field: 'x', type: 'nominal', title: o.x, sort: distinct(o.points.map((p) => String(p.x))), axis: { labelAngle: 0 } };
  const y = { field: 'y', type: 'quantitative', title: o.y, scale: { zero: false, padding: 16 } };
  const shapes = ['circle', 'triangle-up', 'square', 'diamond', 'cross', 'triangle-down'];
  const legend = groups.length > 1 ? { title: null } : null;
  const tooltip = [
    { field: 'group', type: 'nominal', title: 'group' },
    { field: 'x', type: numeric ? 'quantitative' : 'nominal', title: o.x },
    { field: 'y', type: 'quantitative', title: o.y, format: '.4~g' },
    ...keys.map((k, i) => ({ field: `t${i}`, title: k })),
  ];
  const layer: Record<string, unknown>[] = [
    {
      mark: { type: 'point', filled: true, size: 70, opacity: 0.85 },
      encoding: {
        x, y,
        color: { field: 'group', type: 'nominal', sort: groups, scale: { domain: groups, range: PALETTE.slice(0, groups.length) }, legend },
        shape: { field: 'group', type: 'nominal', sort: groups, scale: { domain: groups, range: groups.map((_, i) => shapes[i % shapes.length]) }, legend },
        tooltip,
      },
    },
  ];
  if (o.points.some((p) => p.highlight)) {
    const label = o.highlightLabel ?? 'highlighted';
    layer.push({
      transform: [{ filter: 'datum.highlight' }],
      mark: { type: 'point', filled: false, size: 300, strokeWidth: 2.5 },
      encoding: { x, y, stroke: { datum: label, type: 'nominal', scale: { domain: [label], range: [HIGHLIGHT] }, legend: { title: null, symbolType: 'circle' } } },
    });
  }
  return { ...base(o.title), data: { values }, layer };
}

/**
 * Vega-Lite's parallel-coordinates pattern: a window gives each row an index, a fold turns
 * the dimensions into (key, value) pairs, each dimension is normalised to [0, 1] by its own
 * min and max, and each row is one line; every axis is labelled with its max, mid and min.
 */
export function parallelCoordinatesChart(o: { title: string; dimensions: string[]; rows: { id: string; values: Record<string, number>; group: string }[] }): VlSpec {
  if (o.dimensions.length === 0) throw new EgmfError(`chart '${o.title}': parallel coordinates need at least one dimension`);
  if (new Set(o.dimensions).size !== o.dimensions.length) throw new EgmfError(`chart '${o.title}': a dimension is named twice (${o.dimensions.join(', ')})`);
  const groups = distinct(o.rows.map((r) => r.group));
  // Dimension names may hold dots: folded from plain field names, labelled by name.
  const fields = o.dimensions.map((_, i) => `d${i}`);
  const values = o.rows.map((r) => {
    const row: Record<string, unknown> = { id: r.id, group: r.group };
    o.dimensions.forEach((d, i) => {
      const v = r.values[d];
      if (v !== undefined) {
        checkFinite(o.title, `'${d}' of row ${r.id}`, v);
        row[fields[i]!] = v;
      }
    });
    return row;
  });
  const names = JSON.stringify(Object.fromEntries(fields.map((f, i) => [f, o.dimensions[i]])));
  // Long names ("lr (0=a, 1=b)") break before their parenthesis, onto a second line.
  const labelExpr = "length(datum.label) > 16 && indexof(datum.label, ' (') > 0 ? [slice(datum.label, 0, indexof(datum.label, ' (')), slice(datum.label, indexof(datum.label, ' (') + 1)] : datum.label";
  const x = { field: 'dimension', type: 'nominal', sort: o.dimensions, title: null, axis: { domain: false, labelAngle: 0, tickColor: '#ccc', grid: false, labelFontSize: 11, labelExpr, labelPadding: 6 } };
  const axisLabel = (field: 'max' | 'mid' | 'min', y: number | string): Record<string, unknown> => ({
    encoding: { x, y: { value: y } },
    layer: [
      { mark: { type: 'text', align: 'right', baseline: 'middle', dx: -5, fontSize: 10, color: '#333' }, encoding: { text: { aggregate: 'max', field, type: 'quantitative', format: '.3~g' } } },
      { mark: { type: 'tick', orient: 'horizontal', size: 8, color: '#999' } },
    ],
  });
  return {
    ...base(o.title),
    // Room for each axis's label: wider with more dimensions.
    width: Math.max(WIDTH, 130 * o.dimensions.length),
    data: { values },
    transform: [
      { window: [{ op: 'count', as: 'index' }] },
      { fold: fields, as: ['key', 'value'] },
      { filter: 'isValid(datum.value)' },
      { calculate: `${names}[datum.key]`, as: 'dimension' },
      { joinaggregate: [{ op: 'min', field: 'value', as: 'min' }, { op: 'max', field: 'value', as: 'max' }], groupby: ['key'] },
      { calculate: 'datum.max > datum.min ? (datum.value - datum.min) / (datum.max - datum.min) : 0.5', as: 'norm' },
      { calculate: '(datum.min + datum.max) / 2', as: 'mid' },
    ],
    layer: [
      { mark: { type: 'rule', color: '#bbb' }, encoding: { detail: { aggregate: 'count' }, x } },
      {
        mark: { type: 'line', strokeWidth: 1.8, opacity: 0.8 },
        encoding: {
          x,
          y: { field: 'norm', type: 'quantitative', axis: null, scale: { domain: [0, 1] } },
          detail: { field: 'index', type: 'nominal' },
          color: colourBy('group', groups),
          tooltip: [{ field: 'id', type: 'nominal', title: 'id' }, { field: 'dimension', type: 'nominal', title: 'dimension' }, { field: 'value', type: 'quantitative', title: 'value', format: '.4~g' }],
        },
      },
      axisLabel('max', 0),
      axisLabel('mid', HEIGHT / 2),
      axisLabel('min', HEIGHT),
    ],
    config: { ...CONFIG, view: { stroke: null } },
  };
}

/** The chart's name for messages: the given name, else the spec's title. */
function chartLabel(spec: VlSpec, name?: string): string {
  if (name) return name;
  const t = spec.title;
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && typeof (t as { text?: unknown }).text === 'string') return (t as { text: string }).text;
  return 'untitled chart';
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

type VegaModule = typeof Vega;
type VegaLiteModule = typeof import('vega-lite');
let libraries: Promise<{ vega: VegaModule; vl: VegaLiteModule }> | null = null;

/**
 * vega and vega-lite, imported on the first render: they take ~0.3 s to load, and the
 * processes that import this module for its spec builders (a sweep trial through the sweep
 * summary, for one) mostly never render.
 */
function loadVega(): Promise<{ vega: VegaModule; vl: VegaLiteModule }> {
  libraries ??= Promise.all([import('vega'), import('vega-lite')]).then(([vega, vl]) => ({ vega, vl }));
  return libraries;
}

/** Collects vega's and vega-lite's log messages instead of printing them. */
function collectingLogger(vega: VegaModule): { logger: Vega.LoggerInterface; errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  let level = vega.Warn;
  const logger = {
    level(l?: number) {
      if (l === undefined) return level;
      level = l;
      return logger;
    },
    error(...args: readonly unknown[]) {
      errors.push(args.map(message).join(' '));
      return logger;
    },
    warn(...args: readonly unknown[]) {
      warnings.push(args.map(message).join(' '));
      return logger;
    },
    info() {
      return logger;
    },
    debug() {
      return logger;
    },
  };
  return { logger: logger as unknown as Vega.LoggerInterface, errors, warnings };
}

/** A loader that loads nothing: charts carry their data inline, and rendering never reads a file or the network. */
function noLoader(vega: VegaModule, refused: string[]): Vega.Loader {
  const refuse = async (uri: string): Promise<never> => {
    refused.push(`data must be inline (data.values); refusing to load '${uri}'`);
    throw new Error(`refusing to load '${uri}'`);
  };
  const l = vega.loader();
  l.load = refuse;
  l.sanitize = refuse;
  l.file = refuse;
  l.http = refuse;
  return l;
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Compiles a Vega-Lite spec and renders it to an SVG string. Same spec → byte-identical
 * SVG. A spec that fails to compile or render throws EgmfError naming the chart (`name`,
 * else the spec's title). Vega-Lite warnings (e.g. a dropped channel) are errors too: a
 * chart that silently lost an encoding would mislead.
 */
export function renderSvg(spec: VlSpec, name?: string): Promise<string> {
  const run = queue.then(() => render(spec, chartLabel(spec, name)));
  queue = run.catch(() => undefined);
  return run;
}

/** `data.url` anywhere in the spec (a layer's data included). */
function dataUrls(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) dataUrls(x, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'data' && x && typeof x === 'object' && typeof (x as { url?: unknown }).url === 'string') out.push((x as { url: string }).url);
      dataUrls(x, out);
    }
  }
  return out;
}

async function render(spec: VlSpec, label: string): Promise<string> {
  const urls = dataUrls(spec);
  if (urls.length > 0) throw new EgmfError(`chart '${label}': data must be inline (data.values), not loaded from ${urls.map((u) => `'${u}'`).join(', ')}`);
  const { vega, vl } = await loadVega();
  const log = collectingLogger(vega);
  let compiled: ReturnType<VegaLiteModule['compile']>['spec'];
  try {
    vl.resetIdCounter();
    compiled = vl.compile(spec as unknown as TopLevelSpec, { logger: log.logger }).spec;
  } catch (e) {
    throw new EgmfError(`chart '${label}': the Vega-Lite spec does not compile: ${message(e)}`, {}, { cause: e });
  }
  if (log.errors.length > 0 || log.warnings.length > 0) {
    throw new EgmfError(`chart '${label}': the Vega-Lite spec does not compile cleanly: ${[...log.errors, ...log.warnings].join('; ')}`);
  }
  let view: Vega.View | undefined;
  try {
    const runtime = vega.parse(compiled);
    view = new vega.View(runtime, { renderer: 'none', logger: log.logger, logLevel: vega.Warn, loader: noLoader(vega, log.errors) });
    vega.resetSVGDefIds();
    const svg = await view.toSVG();
    if (log.errors.length > 0) throw new Error(log.errors.join('; '));
    if (!svg.startsWith('<svg')) throw new Error('the renderer gave no SVG');
    return `${svg}\n`;
  } catch (e) {
    if (e instanceof EgmfError) throw e;
    throw new EgmfError(`chart '${label}': rendering failed: ${message(e)}`, {}, { cause: e });
  } finally {
    view?.finalize();
  }
}
