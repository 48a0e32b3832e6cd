import type { CommandModule } from 'yargs';
import { benchCommand } from './bench.ts';
import { dataCommand } from './data.ts';

/** Every top-level `egmf` command, one module each. */
export const commands: CommandModule<object, any>[] = [dataCommand, benchCommand];
