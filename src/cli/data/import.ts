import type { Argv, CommandModule } from 'yargs';
import { EgmfError } from '../../errors.ts';
import { importers } from '../../data/importers/index.ts';
import type { Importer, ImportReport } from '../../data/importers/index.ts';
import { oneInput } from '../../data/importers/types.ts';

/**
 * `--input` as the importer takes it: one string, or (for importers that take several
 * files) a string[] when several were given. yargs collects `--input a b c` and repeated
 * `--input` into one array either way.
 */
function inputOf(imp: Importer, raw: unknown): string | string[] {
  const values = (Array.isArray(raw) ? raw : [raw]).filter((v) => v !== undefined).map(String);
  if (values.length === 0 || values.some((v) => v === '')) throw new EgmfError('--input needs a file or folder', { key: 'input' });
  if (values.length === 1) return values[0]!;
  return imp.manyInputs ? values : oneInput(values, imp.name);
}

function importerCommand(imp: Importer): CommandModule {
  return {
    command: imp.name,
    describe: imp.describe,
    builder: (y: Argv) =>
      y
        .option('input', {
          type: 'string', array: true, demandOption: true,
          describe: imp.manyInputs
            ? 'Source file(s) or folder; several files may follow one --input (--input a.csv b.csv c.csv), or repeat --input'
            : 'Source folder or file (one)',
        })
        .option('out', { type: 'string', demandOption: true, describe: 'Output folder for <split>.arrow files' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the import report as one JSON object' })
        .options(imp.options),
    handler: async (argv) => {
      const args = argv as unknown as { input: unknown; out: string } & Record<string, unknown>;
      const report = await imp.run({ ...args, input: inputOf(imp, args.input) });
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
