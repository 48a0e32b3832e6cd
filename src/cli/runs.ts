import type { Argv, CommandModule } from 'yargs';
import { EgmfError } from '../errors.ts';
import { createStore, defaultTrackingUri, resolveExperimentName, RestStore, Spool, redactUri, type Run } from '../tracking/index.ts';

interface SyncArgs { 'tracking-uri'?: string; 'spool-dir'?: string }
interface ListArgs { 'tracking-uri'?: string; experiment?: string; json?: boolean; limit: number }

const syncCommand: CommandModule<object, SyncArgs> = {
  command: 'sync',
  describe: 'Replay runs spooled while the tracking server was unreachable (each record exactly once)',
  builder: (y: Argv) => y
    .option('tracking-uri', { type: 'string', describe: 'MLflow server (default: MLFLOW_TRACKING_URI)' })
    .option('spool-dir', { type: 'string', describe: 'spool folder (default: .egmf/spool/<hash of the URI>)' }) as Argv<SyncArgs>,
  handler: async (args) => {
    const uri = args['tracking-uri'] ?? defaultTrackingUri();
    if (!/^https?:\/\//i.test(uri)) throw new EgmfError(`runs sync needs an http(s) tracking server URI, got '${redactUri(uri)}'`, { key: 'tracking-uri' });
    const rest = new RestStore(uri);
    const spool = new Spool(rest.client.baseUrl, args['spool-dir']);
    if (spool.runKeys().length === 0) {
      process.stdout.write(`nothing to sync for ${rest.uri}\n`);
      return;
    }
    if (!(await rest.client.ping())) throw new EgmfError(`tracking server ${rest.uri} is unreachable; ${spool.pendingCount()} record(s) stay in ${spool.dir}`);
    const r = await spool.replay(rest);
    for (const [prov, id] of Object.entries(r.created)) process.stdout.write(`created run ${id} (was ${prov})\n`);
    for (const f of r.failed) process.stderr.write(`rejected: run ${f.run} record ${f.record}: ${f.error}\n`);
    process.stdout.write(`synced ${r.replayed} record(s) to ${rest.uri}; ${r.failed.length} rejected; ${r.pending} pending\n`);
    if (r.failed.length > 0 || r.pending > 0) process.exitCode = 1;
  },
};

function table(runs: Run[]): string {
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.data.metrics)).filter((k) => !k.startsWith('system/')))].sort().slice(0, 4);
  const rows = [['run_id', 'name', 'status', ...metricKeys]];
  for (const r of runs) {
    rows.push([r.info.runId, r.info.runName, r.info.status, ...metricKeys.map((k) => (r.data.metrics[k] === undefined ? '' : Number(r.data.metrics[k]!.toPrecision(5)).toString()))]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

const listCommand: CommandModule<object, ListArgs> = {
  command: 'list',
  describe: 'List the runs of an experiment: id, name, status and key metrics',
  builder: (y: Argv) => y
    .option('experiment', { type: 'string', describe: 'experiment name (default: MLFLOW_EXPERIMENT_NAME, else Default)' })
    .option('tracking-uri', { type: 'string', describe: 'file store path or MLflow server (default: MLFLOW_TRACKING_URI, else ./mlruns)' })
    .option('json', { type: 'boolean', describe: 'print the runs as JSON' })
    .option('limit', { type: 'number', default: 100, describe: 'at most this many runs' }) as Argv<ListArgs>,
  handler: async (args) => {
    const store = createStore(args['tracking-uri'] ?? defaultTrackingUri(), { spoolWhenOffline: false });
    const name = args.experiment ?? resolveExperimentName();
    const exp = await store.getExperimentByName(name);
    if (!exp) throw new EgmfError(`no experiment named '${name}' in ${store.uri}`, { key: 'experiment' });
    const runs = await store.searchRuns({ experimentIds: [exp.experimentId], maxResults: args.limit });
    process.stdout.write(args.json ? `${JSON.stringify(runs, null, 2)}\n` : `${table(runs)}\n`);
  },
};

export const runsCommand: CommandModule = {
  command: 'runs <command>',
  describe: 'Tracked runs: list them, sync runs spooled while the server was away',
  builder: (y: Argv) => y.command(syncCommand).command(listCommand).demandCommand(1, 'Name a runs command (see egmf runs --help).'),
  handler: () => undefined,
};
