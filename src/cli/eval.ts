import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { EgmfError } from '../errors.ts';
import { EXPERIMENT_SPEC, validateExperiment } from '../config/experiment.ts';
import { applySets } from '../config/spec.ts';
import { buildSetup, disposeSetup } from '../train/setup.ts';
import { loadCheckpoint } from '../train/checkpoint.ts';
import { evaluate } from '../train/evaluate.ts';

interface EvalArgs {
  checkpoint: string;
  split: 'train' | 'valid' | 'test';
  mode: 'constrained' | 'free';
  set: string[];
  json: boolean;
}

/** A run folder (with config.json and checkpoints/) or a checkpoint folder inside one. */
export function locateCheckpoint(path: string): { runDir: string; ckptDir: string } {
  const p = resolve(path);
  if (!existsSync(p)) throw new EgmfError('checkpoint not found', { file: p });
  if (existsSync(join(p, 'state.json'))) return { runDir: dirname(dirname(p)), ckptDir: p };
  for (const sub of ['best', 'latest']) {
    const c = join(p, 'checkpoints', sub);
    if (existsSync(join(c, 'state.json'))) return { runDir: p, ckptDir: c };
  }
  throw new EgmfError('no checkpoint here: expected a run folder with checkpoints/best or a folder with state.json', { file: p });
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Evaluate a trained checkpoint on a split with the benchmark metrics',
  builder: (y: Argv) =>
    y
      .option('checkpoint', { type: 'string', demandOption: true, describe: 'Run folder (outputs/<name>/seed<seed>) or checkpoint folder' })
      .option('split', { choices: ['train', 'valid', 'test'] as const, default: 'test' as const, describe: 'Split to evaluate' })
      .option('mode', { choices: ['constrained', 'free'] as const, default: 'constrained' as const, describe: 'Decoding: constrained to the answer grammar, or free (unparsable outputs are counted)' })
      .option('set', { type: 'string', array: true, default: [], describe: 'Override a config key (e.g. data.root=DIR to evaluate on another copy)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object' }) as unknown as Argv<EvalArgs>,
  handler: async (argv) => {
    const { runDir, ckptDir } = locateCheckpoint(argv.checkpoint);
    const cfgFile = join(runDir, 'config.json');
    if (!existsSync(cfgFile)) throw new EgmfError('the run folder has no config.json', { file: cfgFile });
    const raw = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    const cfg = validateExperiment(applySets(EXPERIMENT_SPEC, raw, argv.set ?? []), cfgFile);
    const setup = await buildSetup(cfg, { say: (m) => process.stderr.write(`${m}\n`), evalOnly: argv.split !== 'train' });
    try {
      loadCheckpoint(ckptDir, setup.variables, null);
      const loader = argv.split === 'train' ? setup.loaders.train : setup.loaders[argv.split];
      if (!loader) throw new EgmfError(`the dataset has no ${argv.split} split`, { file: setup.data.dir });
      const r = evaluate(setup.model, loader, setup.meta, { mode: argv.mode });
      if (argv.json) {
        process.stdout.write(`${JSON.stringify({ checkpoint: ckptDir, split: argv.split, metrics: r.metrics, unparsed: r.unparsed, confusion: r.confusion ?? null })}\n`);
      } else {
        process.stdout.write(`${argv.split} (${r.predictions.length} samples, ${r.unparsed} unparsed):\n`);
        for (const [k, v] of Object.entries(r.metrics)) process.stdout.write(`  ${k.padEnd(24)} ${v.toFixed(4)}\n`);
      }
    } finally {
      disposeSetup(setup);
    }
  },
};
