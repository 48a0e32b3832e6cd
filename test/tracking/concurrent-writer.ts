/** Child process for the file-store concurrency test: one sweep trial writing its own run. */
import { FileStore, startRun } from '../../src/tracking/index.ts';

const [root, trial] = process.argv.slice(2) as [string, string];
const store = new FileStore(root);
const run = await startRun(store, { experimentName: 'parallel sweep', runName: `trial-${trial}` });
await run.logParams({ trial });
for (let step = 0; step < 50; step++) await run.logMetrics({ loss: Number(trial) + step / 100 }, step);
await run.end();
process.stdout.write(`${run.experimentId} ${run.runId}\n`);
