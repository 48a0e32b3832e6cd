import type { Options } from 'yargs';
import { EgmfError } from '../../errors.ts';

/** What an import wrote, printed by `egmf data import` and returned to callers. */
export interface ImportReport {
  /** Dataset name written into the files' metadata. */
  dataset: string;
  outDir: string;
  /** Samples written per split. */
  splits: Record<string, number>;
  /** Feature values replaced by 0 (NaN/±inf) per modality, over all splits. */
  cleaned?: { audio: number; vision: number; total: number };
  /** Human-readable notes (e.g. "text-only: no audio/vision features"). */
  notes: string[];
}

/**
 * One source format. `egmf data import <name> --input PATH --out DIR [options]` is built
 * from this description; `run` receives the parsed options.
 */
export interface Importer {
  /** Subcommand name, e.g. `meld`, `cped`, `mmsa`. */
  name: string;
  describe: string;
  /** Extra yargs options beyond --input and --out. */
  options: Record<string, Options>;
  /**
   * Whether several `--input` values are accepted (`--input a.csv b.csv`). The CLI refuses
   * several values for the others, which take one folder or file.
   */
  manyInputs?: boolean;
  /** `input` is a string[] only when several were given (and only for `manyInputs` importers). */
  run(args: { input: string | string[]; out: string } & Record<string, unknown>): Promise<ImportReport>;
}

/** The one `--input` of an importer that takes a single folder or file. */
export function oneInput(input: string | string[], importer: string): string {
  if (typeof input === 'string') return input;
  if (input.length === 1) return input[0]!;
  throw new EgmfError(`the ${importer} importer takes one --input (a folder or file), got ${input.length}: ${input.join(' ')}`, { key: 'input' });
}
