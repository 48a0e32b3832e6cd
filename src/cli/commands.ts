import type { CommandModule } from 'yargs';

type Loader = () => Promise<CommandModule<object, any>>;

/**
 * Every top-level `egmf` command, by name, each loaded from its own module only when needed.
 * A command line that names one command imports that module alone: `egmf trial` (each sweep
 * trial's process) no longer loads the report's charts (vega), the queue's client (bullmq,
 * ioredis) and the other commands, ~0.45 s of every process's start. `egmf --help` (or no
 * command) loads them all. The names here must be the modules' own `command` names
 * (test/cli/commands.test.ts checks both lists agree).
 */
export const commandLoaders: Readonly<Record<string, Loader>> = {
  data: async () => (await import('./data.ts')).dataCommand,
  train: async () => (await import('./train.ts')).trainCommand,
  eval: async () => (await import('./eval.ts')).evalCommand,
  bench: async () => (await import('./bench.ts')).benchCommand,
  runs: async () => (await import('./runs.ts')).runsCommand,
  sweep: async () => (await import('./sweep.ts')).sweepCommand,
  reproduce: async () => (await import('./report.ts')).reproduceCommand,
  report: async () => (await import('./report.ts')).reportCommand,
  worker: async () => (await import('./worker.ts')).workerCommand,
  trial: async () => (await import('./trial.ts')).trialCommand,
  llm: async () => (await import('./llm.ts')).llmCommand,
  backend: async () => (await import('./backend.ts')).backendCommand,
};

/** The first word of a command line that is not an option (its command name), if any. */
function commandWord(argv: readonly string[]): string | undefined {
  return argv.find((a) => !a.startsWith('-'));
}

/**
 * The command modules a command line needs: the one it names, or every command (in the
 * order of `egmf --help`) when it names none, asks for help at the top level, or names an
 * unknown command (so yargs can list and suggest them).
 */
export async function loadCommands(argv: readonly string[]): Promise<CommandModule<object, any>[]> {
  const word = commandWord(argv);
  const one = word !== undefined && Object.hasOwn(commandLoaders, word) ? commandLoaders[word] : undefined;
  if (one !== undefined) return [await one()];
  return Promise.all(Object.values(commandLoaders).map((load) => load()));
}
