import type { Options } from 'yargs';

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
  run(args: { input: string; out: string } & Record<string, unknown>): Promise<ImportReport>;
}
