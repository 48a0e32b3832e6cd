import type { Argv, CommandModule } from 'yargs';
import { readSplitTable } from '../../data/arrow.ts';
import { datasetStats, locate } from '../../data/stats.ts';
import type { DatasetStats, LengthStats, SplitStats, SummaryStats } from '../../data/stats.ts';

/** Inspect statistics of every dataset under PATH, keyed by dataset (folder) name. */
export function inspectPath(path: string): { kind: 'file' | 'dataset' | 'collection'; datasets: Record<string, DatasetStats> } {
  const found = locate(path);
  const datasets: Record<string, DatasetStats> = {};
  for (const d of found.datasets) {
    const tables = d.files.map((f) => readSplitTable(f));
    // A lone split file is named by its dataset, not by its file name.
    datasets[found.kind === 'file' ? tables[0]!.meta.dataset : d.name] = datasetStats(tables);
  }
  return { kind: found.kind, datasets };
}

/** Pads columns so that rows line up; numbers are right-aligned. */
export function alignRows(rows: string[][], numbersRight = true, indent = '  '): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => indent + r.map((c, i) => (numbersRight && /^-?[\d.,]+%?$/.test(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

const fmt = (x: number, digits = 3): string => (Number.isInteger(x) ? String(x) : x.toFixed(digits));
const pct = (x: number): string => `${(x * 100).toFixed(x > 0 && x < 0.001 ? 4 : 1)}%`;

function isSummary(l: SplitStats['labels']): l is SummaryStats {
  return typeof (l as SummaryStats).q25 === 'number' && typeof (l as SummaryStats).zeroShare === 'number';
}

export function formatDataset(name: string, s: DatasetStats): string {
  const m = s.schema.metadata;
  const out: string[] = [];
  const kind = m.task === 'classification' ? `classification, ${m.labelNames?.length ?? 0} labels` : `regression in [${m.labelRange?.join(', ')}]`;
  out.push(`dataset ${name === m.dataset ? name : `${name}: ${m.dataset}`} (${m.language}, ${kind}; audio ${m.audioDim}-d, vision ${m.visionDim}-d${m.textOnly ? ', text only' : ''})`);
  out.push('columns:');
  out.push(...alignRows(s.schema.columns.map((c) => [c.name, c.type, c.nullable ? 'nullable' : ''])));
  out.push('metadata:');
  out.push(...alignRows(Object.entries(m).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]), false));
  const splits = Object.entries(s.splits);
  out.push('splits:');
  out.push(...alignRows(splits.map(([sp, st]) => [sp, String(st.count), st.file])));
  for (const [sp, st] of splits) {
    out.push(`split ${sp}:`);
    if (isSummary(st.labels)) {
      const l = st.labels;
      out.push(...alignRows([
        ['label', 'min', 'q25', 'median', 'mean', 'q75', 'max', 'std', 'zeros'],
        ['label', fmt(l.min), fmt(l.q25), fmt(l.median), fmt(l.mean), fmt(l.q75), fmt(l.max), fmt(l.std), pct(l.zeroShare)],
      ]));
    } else {
      const total = Object.values(st.labels).reduce((a, b) => a + b, 0);
      out.push(...alignRows(Object.entries(st.labels).map(([k, v]) => [`label ${k}`, String(v), pct(total === 0 ? 0 : v / total)])));
    }
    for (const [k, u] of Object.entries(st.unimodal ?? {})) {
      out.push(`  ${k}: ${u === null ? 'none' : `min ${fmt(u.min)}, mean ${fmt(u.mean)}, max ${fmt(u.max)} (${u.count} present)`}`);
    }
    const lens = Object.entries(st.lengths) as [string, LengthStats][];
    out.push(...alignRows([
      ['length', 'min', 'mean', 'median', 'max'],
      ...lens.map(([k, l]) => [k === 'text' ? 'text (chars)' : `${k} (frames)`, fmt(l.min, 1), fmt(l.mean, 1), fmt(l.median, 1), fmt(l.max, 1)]),
    ]));
    if (st.cleaned === null) {
      out.push('  cleaned: not recorded');
    } else {
      const c = st.cleaned;
      out.push(`  cleaned (NaN/inf -> 0): audio ${c.audio.values} (${pct(c.audio.share)}), vision ${c.vision.values} (${pct(c.vision.share)}), total ${c.total.values} (${pct(c.total.share)}) of feature values`);
    }
  }
  return out.join('\n');
}

export const inspectCommand: CommandModule = {
  command: 'inspect <path>',
  describe: 'Show schema, metadata, counts, labels and lengths of a split file, a dataset folder or a folder of datasets',
  builder: (y: Argv) =>
    y
      .positional('path', { type: 'string', demandOption: true, describe: 'A <split>.arrow file, a dataset folder, or a folder of dataset folders' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object' }),
  handler: (argv) => {
    const { kind, datasets } = inspectPath(String(argv.path));
    if (argv.json) {
      const body = kind === 'collection' ? datasets : Object.values(datasets)[0];
      process.stdout.write(`${JSON.stringify(body)}\n`);
      return;
    }
    process.stdout.write(`${Object.entries(datasets).map(([n, s]) => formatDataset(n, s)).join('\n\n')}\n`);
  },
};
