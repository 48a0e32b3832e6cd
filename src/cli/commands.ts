import type { CommandModule } from 'yargs';
import { benchCommand } from './bench.ts';
import { dataCommand } from './data.ts';
import { runsCommand } from './runs.ts';

/** Every top-level `egmf` command, one module each. */
export const commands: CommandModule<object, any>[] = [dataCommand, benchCommand, runsCommand];
