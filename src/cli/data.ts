import type { Argv, CommandModule } from 'yargs';
import { generateCommand } from './data/generate.ts';
import { importCommand } from './data/import.ts';
import { inspectCommand } from './data/inspect.ts';
import { validateCommand } from './data/validate.ts';

/** `egmf data <generate|import|inspect|validate>`: one module per subcommand in ./data/. */
const subcommands: CommandModule<object, any>[] = [generateCommand, importCommand, inspectCommand, validateCommand];

export const dataCommand: CommandModule = {
  command: 'data <command>',
  describe: 'Generate, import, inspect and validate datasets (Arrow affect schema)',
  builder: (y: Argv) => {
    let b = y;
    for (const c of subcommands) b = b.command(c);
    return b.demandCommand(1, 'Name a data command (see egmf data --help).');
  },
  handler: () => undefined,
};
