import yargs from 'yargs';
import type { Argv, CommandModule } from 'yargs';
import { isEgmfError } from '../errors.ts';
import { loadCommands } from './commands.ts';

/** Builds the `egmf` command line from the command modules it needs (see `loadCommands`). */
export async function buildCli(argv: string[]): Promise<Argv> {
  const commands = await loadCommands(argv);
  let cli = yargs(argv)
    .scriptName('egmf')
    .usage('$0 <command> [options]')
    .strict()
    .demandCommand(1, 'Name a command (see --help).')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`error: ${msg}\n(see egmf --help)\n`);
      process.exit(2);
    });
  for (const c of commands) cli = cli.command(c as CommandModule);
  return cli;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await (await buildCli(argv)).parseAsync();
  } catch (e) {
    if (isEgmfError(e)) {
      process.stderr.write(`error: ${e.message}\n`);
    } else if (e instanceof Error) {
      process.stderr.write(`error: ${e.message}\n${process.env.EGMF_DEBUG ? `${e.stack}\n` : ''}`);
    } else {
      process.stderr.write(`error: ${String(e)}\n`);
    }
    process.exitCode = 1;
  }
}
