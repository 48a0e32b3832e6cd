import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { parseVariants } from '../bench/learning.ts';
import { EgmfError } from '../errors.ts';
import { defaultTrackingUri } from '../tracking/index.ts';
import { parseSeedList } from '../train/seeds.ts';
import { parseDatasets, reproduce, ABLATION_ROWS } from '../reports/reproduce.ts';
import { crosslingual, DEFAULT_EXPERIMENT, parsePairs } from '../reports/crosslingual.ts';

interface ReproduceArgs {
  datasets?: string;
  seeds?: string;
  'data-root'?: string;
  quick: boolean;
  out: string;
  'tracking-uri'?: string;
  experiment: string;
  parallel: number;
  parts: string;
  ablation?: string;
  json: boolean;
}

const PARTS = ['main', 'real-text', 'ablation'] as const;

function reproduceBuilder(y: Argv): Argv<ReproduceArgs> {
  return y
    .option('datasets', { type: 'string', describe: 'comma-separated paper datasets of the main table (default meld,cherma,mosei,sims-v2)' })
    .option('seeds', { type: 'string', describe: 'comma-separated seeds (default the paper\'s 1111,...,5555; --quick: 1111,2222)' })
    .option('data-root', { type: 'string', describe: 'folder of imported datasets (<dir>/meld, <dir>/cherma, ...): the real comparison; default the synthetic suite' })
    .option('quick', { type: 'boolean', default: false, describe: 'tiny splits, one epoch, two seeds: a smoke run of the whole report (CI)' })
    .option('out', { type: 'string', default: 'outputs/reports/reproduce', describe: 'report folder: report.html, report.md, charts/, runs/' })
    .option('tracking-uri', { type: 'string', describe: 'MLflow tracking URI (default: MLFLOW_TRACKING_URI, else ./mlruns)' })
    .option('experiment', { type: 'string', default: 'egmf-reproduce', describe: 'MLflow experiment of the report run and its training runs' })
    .option('parallel', { type: 'number', default: 2, describe: 'training processes at a time' })
    .option('parts', { type: 'string', default: PARTS.join(','), describe: `which tables (${PARTS.join(', ')})` })
    .option('ablation', { type: 'string', describe: `ablation rows (default ${ABLATION_ROWS.join(',')})` })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as one JSON object on the last line' }) as unknown as Argv<ReproduceArgs>;
}

async function reproduceHandler(argv: ReproduceArgs): Promise<void> {
  const parts = parseParts(argv.parts);
  const r = await reproduce({
    datasets: parseDatasets(argv.datasets),
    ...(argv.seeds !== undefined ? { seeds: parseSeedList(String(argv.seeds)) } : {}),
    dataRoot: argv['data-root'] ?? null,
    quick: argv.quick,
    out: resolve(argv.out),
    trackingUri: argv['tracking-uri'] ?? defaultTrackingUri(),
    experiment: argv.experiment,
    parallel: argv.parallel,
    parts: { main: parts.includes('main'), realText: parts.includes('real-text'), ablation: parts.includes('ablation') },
    ...(argv.ablation !== undefined ? { ablation: parseVariants(argv.ablation) } : {}),
    say: (m) => process.stderr.write(`${m}\n`),
  });
  if (argv.json) {
    process.stdout.write(`${JSON.stringify({ run_id: r.runId, out: r.out, html: r.html, markdown: r.markdown, synthetic: r.synthetic, seeds: r.seeds, runs: r.runs.length, failed: r.failed, wall_s: r.wall_s })}\n`);
    return;
  }
  process.stdout.write(`report: ${r.html}\nmarkdown: ${r.markdown}\n${r.runs.length} runs, ${r.failed.length} failed, ${r.wall_s} s\nrun_id: ${r.runId}\n`);
}

function parseParts(spec: string): string[] {
  const names = spec.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const n of names) {
    if (!(PARTS as readonly string[]).includes(n)) throw new EgmfError(`unknown table '${n}' (known: ${PARTS.join(', ')})`, { key: 'parts' });
  }
  return names;
}

interface CrosslingualArgs {
  runs?: string;
  experiment?: string;
  sweep?: string;
  pairs?: string;
  seeds?: string;
  'train-missing': boolean;
  quick: boolean;
  out: string;
  'tracking-uri'?: string;
  'report-experiment': string;
  parallel: number;
  limit?: number;
  json: boolean;
}

const list = (v: string | undefined): string[] => (v === undefined ? [] : String(v).split(',').map((s) => s.trim()).filter((s) => s !== ''));

function crosslingualBuilder(y: Argv): Argv<CrosslingualArgs> {
  return y
    .option('runs', { type: 'string', describe: 'comma-separated MLflow run ids of training runs to compare' })
    .option('experiment', { type: 'string', describe: `MLflow experiment(s) whose training runs to compare (comma-separated; default ${DEFAULT_EXPERIMENT} when no source is given)` })
    .option('sweep', { type: 'string', describe: 'sweep id(s) whose trial runs to compare (comma-separated)' })
    .option('pairs', { type: 'string', describe: 'emotion (MELD ↔ CHERMA), sentiment (MOSEI ↔ SIMS-V2), real-text (MELD ↔ CPED); default all' })
    .option('seeds', { type: 'string', describe: 'comma-separated seeds each slot should have (default 1111,...,5555; --quick: 1111,2222)' })
    .option('train-missing', { type: 'boolean', default: false, describe: 'train the slot×seed runs that are missing (as child runs of the report run); --quick implies it' })
    .option('quick', { type: 'boolean', default: false, describe: 'tiny training, two seeds, 32 evaluated samples per condition: a smoke run (CI)' })
    .option('out', { type: 'string', default: 'outputs/reports/crosslingual', describe: 'report folder: report.html, report.md, charts/, runs/' })
    .option('tracking-uri', { type: 'string', describe: 'MLflow tracking URI (default: MLFLOW_TRACKING_URI, else ./mlruns)' })
    .option('report-experiment', { type: 'string', default: DEFAULT_EXPERIMENT, describe: 'MLflow experiment of the report run and of the runs it trains' })
    .option('parallel', { type: 'number', default: 2, describe: 'training processes at a time (--train-missing)' })
    .option('limit', { type: 'number', describe: 'samples evaluated per run and condition (default all; --quick 32)' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as one JSON object on the last line' }) as unknown as Argv<CrosslingualArgs>;
}

async function crosslingualHandler(argv: CrosslingualArgs): Promise<void> {
  if (argv.limit !== undefined && !(Number.isInteger(argv.limit) && argv.limit > 0)) throw new EgmfError(`must be a positive integer, got ${argv.limit}`, { key: 'limit' });
  const r = await crosslingual({
    pairs: parsePairs(argv.pairs),
    ...(argv.seeds !== undefined ? { seeds: parseSeedList(String(argv.seeds)) } : {}),
    runs: list(argv.runs), experiments: list(argv.experiment), sweeps: list(argv.sweep),
    trainMissing: argv['train-missing'] || argv.quick,
    quick: argv.quick,
    out: resolve(argv.out),
    trackingUri: argv['tracking-uri'] ?? defaultTrackingUri(),
    experiment: argv['report-experiment'],
    parallel: argv.parallel,
    ...(argv.limit !== undefined ? { limit: argv.limit } : {}),
    say: (m) => process.stderr.write(`${m}\n`),
  });
  if (argv.json) {
    process.stdout.write(`${JSON.stringify({ run_id: r.runId, out: r.out, html: r.html, markdown: r.markdown, evaluated: r.evaluated, trained: r.trained, missing: r.missing, unusable: r.unusable, wall_s: r.wall_s })}\n`);
    return;
  }
  const gaps = r.missing.length + r.unusable.length;
  process.stdout.write(`report: ${r.html}\nmarkdown: ${r.markdown}\n${r.evaluated} runs evaluated, ${r.trained} trained${gaps > 0 ? `, ${r.missing.length} missing and ${r.unusable.length} unusable (listed in the report)` : ''}, ${r.wall_s} s\nrun_id: ${r.runId}\n`);
}

export const reproduceCommand: CommandModule<object, ReproduceArgs> = {
  command: 'reproduce',
  describe: 'Reproduce the paper\'s tables (main, real text, ablation) over seeds, beside the published numbers',
  builder: reproduceBuilder,
  handler: reproduceHandler,
};

export const reportCommand: CommandModule = {
  command: 'report <report>',
  describe: 'Reports: reproduce (the paper\'s tables), crosslingual (English vs Chinese robustness)',
  builder: (y: Argv) => y
    .command({ command: 'reproduce', describe: 'The paper\'s tables, re-run here (same as `egmf reproduce`)', builder: reproduceBuilder, handler: reproduceHandler } as CommandModule<object, ReproduceArgs>)
    .command({ command: 'crosslingual', describe: 'English vs Chinese per task pair: performance with CIs, modality ablation, robustness curves, gates, transfer', builder: crosslingualBuilder, handler: crosslingualHandler } as CommandModule<object, CrosslingualArgs>)
    .demandCommand(1, 'Name a report: reproduce, crosslingual.'),
  handler: () => undefined,
};
