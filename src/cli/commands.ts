import type { CommandModule } from 'yargs';
import { benchCommand } from './bench.ts';
import { dataCommand } from './data.ts';
import { evalCommand } from './eval.ts';
import { trainCommand } from './train.ts';
import { trialCommand } from './trial.ts';
import { llmCommand } from './llm.ts';
import { runsCommand } from './runs.ts';
import { sweepCommand } from './sweep.ts';
import { workerCommand } from './worker.ts';
import { reportCommand, reproduceCommand } from './report.ts';
import { backendCommand } from './backend.ts';

/** Every top-level `egmf` command, one module each. */
export const commands: CommandModule<object, any>[] = [dataCommand, trainCommand, evalCommand, benchCommand, runsCommand, sweepCommand, reproduceCommand, reportCommand, workerCommand, trialCommand, llmCommand, backendCommand];
