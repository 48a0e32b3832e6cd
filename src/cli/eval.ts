import type { Argv, CommandModule } from 'yargs';
import { EgmfError } from '../errors.ts';
import { disposeSetup } from '../train/setup.ts';
import { openRunFolder } from '../train/run-folder.ts';
import { evaluate } from '../train/evaluate.ts';

export { locateCheckpoint } from '../train/run-folder.ts';

interface EvalArgs {
  checkpoint: string;
  split: 'train' | 'valid' | 'test';
  mode: 'constrained' | 'free';
  set: string[];
  json: boolean;
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
    const { ckptDir, setup } = await openRunFolder(argv.checkpoint, {
      sets: argv.set ?? [], say: (m) => process.stderr.write(`${m}\n`), evalOnly: argv.split !== 'train',
    });
    try {
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
