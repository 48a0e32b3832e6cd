import type { Argv, CommandModule } from 'yargs';
import { importers } from '../../data/importers/index.ts';
import type { Importer, ImportReport } from '../../data/importers/index.ts';

function importerCommand(imp: Importer): CommandModule {
  return {
    command: imp.name,
    describe: imp.describe,
    builder: (y: Argv) =>
      y
        .option('input', { type: 'string', demandOption: true, describe: 'Source file or folder' })
        .option('out', { type: 'string', demandOption: true, describe: 'Output folder for <split>.arrow files' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the import report as one JSON object' })
        .options(imp.options),
    handler: async (argv) => {
      const report = await imp.run(argv as unknown as { input: string; out: string } & Record<string, unknown>);
      printReport(report, Boolean(argv.json));
    },
  };
}

function printReport(r: ImportReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const splits = Object.entries(r.splits).map(([s, n]) => `${s} ${n}`).join(', ');
  process.stdout.write(`imported ${r.dataset} into ${r.outDir}: ${splits}\n`);
  if (r.cleaned) {
    process.stdout.write(`cleaned values (NaN/inf -> 0): audio ${r.cleaned.audio}, vision ${r.cleaned.vision}, total ${r.cleaned.total}\n`);
  }
  for (const n of r.notes) process.stdout.write(`note: ${n}\n`);
}

export const importCommand: CommandModule = {
  command: 'import <format>',
  describe: 'Import a dataset from the format you hold into Arrow split files',
  builder: (y: Argv) => {
    let b = y;
    for (const imp of importers) b = b.command(importerCommand(imp));
    return b.demandCommand(1, `Name a format: ${importers.map((i) => i.name).join(', ')}`);
  },
  handler: () => undefined,
};
