/**
 * The report writer: one document model written as a self-contained HTML page (inline CSS,
 * every chart's SVG inline, no script, nothing fetched at view time) and as Markdown with
 * the same headings, notice, paragraphs and tables, beside each chart as a standalone SVG
 * and its Vega-Lite spec (`charts/<name>.svg`, `charts/<name>.vl.json`, openable in any
 * Vega editor). Same document → byte-identical files; each file is written under a
 * temporary name and renamed, so a crash never leaves a half-written one.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EgmfError } from '../errors.ts';
import { renderSvg, type VlSpec } from './charts.ts';

/** A table cell; null renders as "—". */
export type Cell = string | number | null;

export interface ReportTable {
  caption: string;
  columns: string[];
  rows: Cell[][];
  note?: string;
}

/** `name` is the chart's file slug: [a-z0-9_-]+. */
export interface ReportChart {
  name: string;
  spec: VlSpec;
}

export interface ReportSection {
  heading: string;
  paragraphs?: string[];
  tables?: ReportTable[];
  charts?: ReportChart[];
  sections?: ReportSection[];
}

export interface ReportDoc {
  title: string;
  /** Shown as a highlighted box at the top (e.g. "these numbers come from synthetic data"). */
  notice?: string;
  /** A small definition list under the title: run ids, date, command. */
  meta?: Record<string, string>;
  sections: ReportSection[];
}

export interface WrittenReport {
  /** Path of report.html (outDir joined). */
  html: string;
  /** Path of report.md (outDir joined). */
  markdown: string;
  /** Paths of the charts' SVG files. */
  charts: string[];
  /** Every path written, relative to outDir. */
  files: string[];
}

const SLUG = /^[a-z0-9_-]+$/;
const DASH = '—';

/** Every chart of the document, in order, after checking names and tables. */
function validate(doc: ReportDoc): ReportChart[] {
  const charts: ReportChart[] = [];
  const seen = new Set<string>();
  const walk = (s: ReportSection, path: string): void => {
    const where = path ? `${path} > ${s.heading}` : s.heading;
    for (const t of s.tables ?? []) {
      if (t.columns.length === 0) throw new EgmfError(`report table '${t.caption}' (section '${where}') has no columns`);
      t.rows.forEach((r, i) => {
        if (r.length !== t.columns.length) throw new EgmfError(`report table '${t.caption}' (section '${where}'): row ${i} has ${r.length} cells, but the table has ${t.columns.length} columns (${t.columns.join(', ')})`);
      });
    }
    for (const c of s.charts ?? []) {
      if (!SLUG.test(c.name)) throw new EgmfError(`report chart name '${c.name}' (section '${where}') is not a file slug: use only a-z, 0-9, '_' and '-'`);
      if (seen.has(c.name)) throw new EgmfError(`report chart name '${c.name}' is used twice (again in section '${where}'); chart names must be unique`);
      seen.add(c.name);
      charts.push(c);
    }
    for (const sub of s.sections ?? []) walk(sub, where);
  };
  for (const s of doc.sections) walk(s, '');
  return charts;
}

function chartTitle(c: ReportChart): string {
  const t = c.spec.title;
  if (typeof t === 'string' && t !== '') return t;
  if (t && typeof t === 'object' && typeof (t as { text?: unknown }).text === 'string') return (t as { text: string }).text;
  return c.name;
}

const cellText = (v: Cell): string => (v === null ? DASH : typeof v === 'number' ? String(v) : v);

/** A column is numeric when every non-empty cell is a number (right-aligned in both forms). */
function numericColumns(t: ReportTable): boolean[] {
  return t.columns.map((_, j) => {
    const cells = t.rows.map((r) => r[j]).filter((v) => v !== null && v !== undefined);
    return cells.length > 0 && cells.every((v) => typeof v === 'number');
  });
}

// ---------------------------------------------------------------- Markdown

/** Text for one Markdown table cell: pipes escaped, line breaks as <br>, no stray HTML. */
function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/\r?\n/g, '<br>');
}

const mdLine = (s: string): string => s.replace(/\r?\n/g, ' ');

/** A table as GitHub-flavoured Markdown: the caption in bold above, the note in italics below. */
export function markdownTable(t: ReportTable): string {
  const num = numericColumns(t);
  const lines = [
    `**${mdLine(t.caption)}**`,
    '',
    `| ${t.columns.map(mdCell).join(' | ')} |`,
    `| ${num.map((n) => (n ? '---:' : '---')).join(' | ')} |`,
    ...t.rows.map((r) => `| ${r.map((v) => mdCell(cellText(v))).join(' | ')} |`),
  ];
  if (t.note) lines.push('', `*${mdLine(t.note)}*`);
  return `${lines.join('\n')}\n`;
}

function markdown(doc: ReportDoc): string {
  const out: string[] = [`# ${mdLine(doc.title)}`, ''];
  if (doc.notice) out.push(`> **Note:** ${mdLine(doc.notice)}`, '');
  const meta = Object.entries(doc.meta ?? {});
  if (meta.length > 0) out.push(...meta.map(([k, v]) => `- **${mdLine(k)}:** ${mdLine(v)}`), '');
  const section = (s: ReportSection, depth: number): void => {
    out.push(`${'#'.repeat(Math.min(depth, 6))} ${mdLine(s.heading)}`, '');
    for (const p of s.paragraphs ?? []) out.push(p, '');
    for (const t of s.tables ?? []) out.push(markdownTable(t));
    for (const c of s.charts ?? []) out.push(`![${mdLine(chartTitle(c)).replace(/[[\]]/g, '\\$&')}](charts/${c.name}.svg)`, '', `[Vega-Lite spec](charts/${c.name}.vl.json)`, '');
    for (const sub of s.sections ?? []) section(sub, depth + 1);
  };
  for (const s of doc.sections) section(s, 2);
  while (out[out.length - 1] === '') out.pop();
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------- HTML

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * An SVG ready to sit inline in a page beside other charts: its ids (clip paths,
 * gradients) prefixed by the chart's name so two charts never share one, and the unused
 * xlink namespace dropped.
 */
function inlineSvg(svg: string, name: string, label: string): string {
  const ids = [...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!);
  let out = svg.trim();
  for (const id of ids) {
    const q = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out
      .replace(new RegExp(`(\\sid=")${q}"`, 'g'), `$1${name}-${id}"`)
      .replace(new RegExp(`url\\(#${q}\\)`, 'g'), `url(#${name}-${id})`)
      .replace(new RegExp(`(href=")#${q}"`, 'g'), `$1#${name}-${id}"`);
  }
  const noXlink = out.replace(/\s+xmlns:xlink="[^"]*"/, '');
  if (!noXlink.includes('xlink:')) out = noXlink;
  const open = /^<svg\b[^>]*>/.exec(out)?.[0] ?? '';
  return /\saria-label=/.test(open) ? out : out.replace(/^<svg\b/, `<svg role="img" aria-label="${esc(label)}"`);
}

const CSS = `
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2328; background: #fff; margin: 0; line-height: 1.5; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 1.8em; margin: 0.4em 0 0.6em; }
h2 { font-size: 1.4em; margin-top: 1.8em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; }
h3 { font-size: 1.15em; margin-top: 1.4em; }
h4, h5, h6 { font-size: 1em; margin-top: 1.2em; }
.notice { background: #fff8c5; border: 1px solid #d4a72c; border-left: 6px solid #bf8700; border-radius: 6px; padding: 10px 14px; margin: 12px 0 16px; font-weight: 600; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; font-size: 0.85em; color: #57606a; margin: 0 0 16px; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 14px 0 4px; font-size: 0.9em; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0 0 6px; width: max-content; max-width: min(960px, 90vw); }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
p.note { font-size: 0.85em; color: #57606a; margin: 2px 0 14px; font-style: italic; }
figure.chart { margin: 18px 0; overflow-x: auto; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 0.8em; color: #57606a; }
figcaption a { color: #0969da; }
`.trim();

function htmlTable(t: ReportTable): string {
  const num = numericColumns(t);
  const cls = (j: number): string => (num[j] ? ' class="num"' : '');
  const out = [
    '<table>',
    `<caption>${esc(t.caption)}</caption>`,
    `<thead><tr>${t.columns.map((c, j) => `<th scope="col"${cls(j)}>${esc(c)}</th>`).join('')}</tr></thead>`,
    '<tbody>',
    ...t.rows.map((r) => `<tr>${r.map((v, j) => `<td${cls(j)}>${esc(cellText(v)).replace(/\r?\n/g, '<br>')}</td>`).join('')}</tr>`),
    '</tbody>',
    '</table>',
  ];
  if (t.note) out.push(`<p class="note">${esc(t.note)}</p>`);
  return out.join('\n');
}

function html(doc: ReportDoc, svgs: ReadonlyMap<string, string>): string {
  const out = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(doc.title)}</title>`,
    `<style>\n${CSS}\n</style>`,
    '</head>',
    '<body>',
    '<main>',
    `<h1>${esc(doc.title)}</h1>`,
  ];
  if (doc.notice) out.push(`<div class="notice" role="note">${esc(doc.notice)}</div>`);
  const meta = Object.entries(doc.meta ?? {});
  if (meta.length > 0) out.push('<dl class="meta">', ...meta.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`), '</dl>');
  const section = (s: ReportSection, depth: number): void => {
    const h = Math.min(depth, 6);
    out.push('<section>', `<h${h}>${esc(s.heading)}</h${h}>`);
    for (const p of s.paragraphs ?? []) out.push(`<p>${esc(p)}</p>`);
    for (const t of s.tables ?? []) out.push(htmlTable(t));
    for (const c of s.charts ?? []) {
      out.push(
        `<figure class="chart" id="chart-${c.name}">`,
        inlineSvg(svgs.get(c.name)!, c.name, chartTitle(c)),
        `<figcaption>${esc(chartTitle(c))}: <a href="charts/${c.name}.svg">SVG</a> · <a href="charts/${c.name}.vl.json">Vega-Lite spec</a></figcaption>`,
        '</figure>',
      );
    }
    for (const sub of s.sections ?? []) section(sub, depth + 1);
    out.push('</section>');
  };
  for (const s of doc.sections) section(s, 2);
  out.push('</main>', '</body>', '</html>');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------- files

let tmpCounter = 0;

/** Writes `text` to `path` through a temporary file in the same folder and a rename. */
function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.tmp-${process.pid}-${++tmpCounter}-${path.split('/').pop()}`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes outDir/report.html, outDir/report.md, and outDir/charts/<name>.svg and
 * <name>.vl.json for every chart. Charts are rendered before anything is written, so a
 * chart that fails leaves no file behind; the report files come last, after their charts.
 */
export async function writeReport(doc: ReportDoc, outDir: string): Promise<WrittenReport> {
  const charts = validate(doc);
  const svgs = new Map<string, string>();
  for (const c of charts) svgs.set(c.name, await renderSvg(c.spec, c.name));
  const files: string[] = [];
  const chartPaths: string[] = [];
  for (const c of charts) {
    const svg = `charts/${c.name}.svg`;
    const spec = `charts/${c.name}.vl.json`;
    writeAtomic(join(outDir, svg), svgs.get(c.name)!);
    writeAtomic(join(outDir, spec), `${JSON.stringify(c.spec, null, 2)}\n`);
    files.push(svg, spec);
    chartPaths.push(join(outDir, svg));
  }
  const md = markdown(doc);
  const page = html(doc, svgs);
  writeAtomic(join(outDir, 'report.md'), md);
  writeAtomic(join(outDir, 'report.html'), page);
  files.push('report.md', 'report.html');
  return { html: join(outDir, 'report.html'), markdown: join(outDir, 'report.md'), charts: chartPaths, files };
}
