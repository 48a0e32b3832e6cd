import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_KNOBS, generateSynthetic, PRESET_NAMES, PRESETS } from '../../data/synthetic/index.ts';
import type { GenerateReport, SyntheticKnobs } from '../../data/synthetic/index.ts';

interface GenerateArgs extends Partial<SyntheticKnobs> {
  preset: string;
  out: string;
  json: boolean;
}

function printReport(r: GenerateReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  for (const d of r.datasets) {
    const splits = Object.entries(d.splits).map(([s, n]) => `${s} ${n}`).join(', ');
    const routes = Object.entries(d.routes).map(([s, n]) => `${s} ${n}`).join(', ');
    process.stdout.write(`generated ${d.dataset} into ${d.outDir}: ${splits} (cue routes: ${routes})\n`);
  }
  process.stdout.write(`seed ${r.knobs.seed}, generator ${r.generatorVersion}, ${r.seconds.toFixed(1)} s\n`);
}

const D = DEFAULT_KNOBS;

/** `egmf data generate`: the synthetic bilingual benchmark (docs/synthetic.md). */
export const generateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'Generate the synthetic bilingual benchmark (MELD/CHERMA/MOSEI/SIMS-V2 shapes) as Arrow split files',
  builder: (y: Argv) =>
    y
      .option('preset', { type: 'string', default: 'all', describe: `${PRESET_NAMES.join(', ')} or all` })
      .option('out', { type: 'string', demandOption: true, describe: 'Output folder; each dataset goes to <out>/<dataset>/' })
      .option('scale', { type: 'number', describe: `Fraction of the real split sizes (default per preset: ${PRESET_NAMES.map((n) => `${n} ${PRESETS[n].defaultScale}`).join(', ')})` })
      .option('seed', { type: 'number', default: D.seed, describe: 'Seed of every random draw' })
      .option('text-only-share', { type: 'number', default: D.textOnlyShare, describe: 'Share of samples whose audio/vision carry no cue' })
      .option('conflict-share', { type: 'number', default: D.conflictShare, describe: 'Share of samples whose text is neutral or contradicts the label' })
      .option('joint-share', { type: 'number', default: D.jointShare, describe: 'Share of conflict samples carried only by audio-vision synchrony' })
      .option('contradict-share', { type: 'number', default: D.contradictShare, describe: 'Share of conflict samples whose text contradicts (rest: neutral text)' })
      .option('noise', { type: 'number', default: D.noise, describe: 'Gaussian noise standard deviation on every feature value' })
      .option('missing-frames', { type: 'number', default: D.missingFrames, describe: 'Expected share of frames zeroed per sequence' })
      .option('cue-strength', { type: 'number', default: D.cueStrength, describe: 'Multiplier on burst and trend amplitudes' })
      .option('lengths', { type: 'string', default: D.lengths, describe: 'Sequence caps: short (fast) or real (the datasets\' maxima)' })
      .option('max-audio-frames', { type: 'number', describe: 'Audio length cap, overriding --lengths' })
      .option('max-vision-frames', { type: 'number', describe: 'Vision length cap, overriding --lengths' })
      .option('audio-dim', { type: 'number', describe: 'Audio feature width, overriding the preset\'s' })
      .option('vision-dim', { type: 'number', describe: 'Vision feature width, overriding the preset\'s' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the report as one JSON object' }) as unknown as Argv<GenerateArgs>,
  handler: async (argv) => {
    const report = await generateSynthetic({
      preset: argv.preset, out: argv.out, scale: argv.scale, seed: argv.seed,
      textOnlyShare: argv.textOnlyShare, conflictShare: argv.conflictShare, jointShare: argv.jointShare,
      contradictShare: argv.contradictShare, noise: argv.noise, missingFrames: argv.missingFrames,
      cueStrength: argv.cueStrength, lengths: argv.lengths, maxAudioFrames: argv.maxAudioFrames,
      maxVisionFrames: argv.maxVisionFrames, audioDim: argv.audioDim, visionDim: argv.visionDim,
    });
    printReport(report, argv.json);
  },
};
