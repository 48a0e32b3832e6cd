import type { Argv, CommandModule } from 'yargs';
import { EgmfError } from '../errors.ts';
import { DEFAULT_QUEUE_NAME, redisOptions } from '../sweep/executors/queue-common.ts';
import { TrialWorker } from '../sweep/executors/worker.ts';

interface WorkerArgs {
  queue: string;
  concurrency: number;
  'queue-name': string;
  'grace-seconds'?: number;
  'lock-duration-ms'?: number;
  'stalled-interval-ms'?: number;
}

const envInt = (name: string): number | undefined => {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new EgmfError(`must be an integer >= 1, got '${v}'`, { key: name });
  return n;
};

export const workerCommand: CommandModule<object, WorkerArgs> = {
  command: 'worker',
  describe: 'Run sweep trials from a Redis queue (one process per trial) until stopped',
  builder: (y: Argv) => y
    .option('queue', { type: 'string', demandOption: true, describe: 'redis://host:port of the sweep controller\'s queue' })
    .option('concurrency', { type: 'number', default: 1, describe: 'trials at once (one per GPU: CUDA_VISIBLE_DEVICES is set per slot)' })
    .option('queue-name', { type: 'string', default: DEFAULT_QUEUE_NAME, describe: 'BullMQ queue name' })
    .option('grace-seconds', { type: 'number', describe: 'on SIGINT/SIGTERM, wait this long for running trials before releasing them to other workers (default: wait until they finish; a second signal releases at once)' })
    .option('lock-duration-ms', { type: 'number', describe: 'silence after which a worker counts as dead and its trial is re-run elsewhere (default: EGMF_WORKER_LOCK_MS, else 30000)' })
    .option('stalled-interval-ms', { type: 'number', describe: 'how often to look for trials of dead workers (default: EGMF_WORKER_STALLED_MS, else 30000)' }) as Argv<WorkerArgs>,
  handler: async (args) => {
    redisOptions(args.queue);
    if (!Number.isInteger(args.concurrency) || args.concurrency < 1) throw new EgmfError(`must be an integer >= 1, got ${args.concurrency}`, { key: 'concurrency' });
    const lock = args['lock-duration-ms'] ?? envInt('EGMF_WORKER_LOCK_MS');
    const stalled = args['stalled-interval-ms'] ?? envInt('EGMF_WORKER_STALLED_MS');
    const wait = envInt('EGMF_WORKER_DECISION_WAIT_S');
    const log = (l: string): void => void process.stdout.write(`${new Date().toISOString()} ${l}\n`);
    const worker = new TrialWorker({
      url: args.queue,
      queueName: args['queue-name'],
      concurrency: args.concurrency,
      ...(lock !== undefined ? { lockDurationMs: lock } : {}),
      ...(stalled !== undefined ? { stalledIntervalMs: stalled } : {}),
      ...(wait !== undefined ? { decisionWaitS: wait } : {}),
      log,
    });
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        log(`${sig}: taking no new trials; ${worker.running} running${args['grace-seconds'] !== undefined ? ` (released after ${args['grace-seconds']} s)` : ' (a second signal releases them)'}`);
        void worker.drain(args['grace-seconds'] !== undefined ? args['grace-seconds'] * 1000 : Infinity);
      } else {
        log(`${sig}: releasing running trials to other workers`);
        void worker.release();
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    log(`${worker.description}: waiting for trials`);
    await worker.run();
    log('worker stopped');
    // Anything a library left open must not keep a stopped worker alive.
    setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
  },
};
