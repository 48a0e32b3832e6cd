import type { Argv, CommandModule } from 'yargs';
import { resolve } from 'node:path';
import { EgmfError } from '../errors.ts';
import { BACKEND_NAMES, initBackend, parseBackendName } from '../models/backend/index.ts';
import { installTensorflowBackend } from '../models/backend/install.ts';

const REPO = resolve(import.meta.dirname, '..', '..');

interface InstallArgs {
  name: string;
  gpu: boolean;
  venv?: string;
  python?: string;
  nodedir?: string;
  force: boolean;
  json: boolean;
}

const installCommand: CommandModule<object, InstallArgs> = {
  command: 'install <name>',
  describe: 'Install the native tensorflow backend: the PyPI TensorFlow wheel in a venv, tfjs-node without its download, its addon built against the wheel (idempotent)',
  builder: (y: Argv) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'Backend to install (tensorflow)' })
      .option('gpu', { type: 'boolean', default: false, describe: 'tfjs-node-gpu against tensorflow[and-cuda] (CUDA 12, cuDNN 9 from the wheel\'s nvidia-* packages)' })
      .option('venv', { type: 'string', describe: 'venv for the wheel (default .venv-tensorflow in the repository)' })
      .option('python', { type: 'string', describe: 'Python that creates the venv (default python3)' })
      .option('nodedir', { type: 'string', describe: 'Folder with include/node/node_api.h (default: found next to node, then /usr)' })
      .option('force', { type: 'boolean', default: false, describe: 'Redo every stage' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the result as one JSON object' }) as unknown as Argv<InstallArgs>,
  handler: (argv) => {
    if (argv.name !== 'tensorflow') throw new EgmfError(`only the tensorflow backend needs installing (wasm and cpu ship with npm ci), got '${argv.name}'`, { key: 'name' });
    const r = installTensorflowBackend({
      root: REPO, gpu: argv.gpu, venv: argv.venv, python: argv.python, nodedir: argv.nodedir, force: argv.force,
      say: (m) => process.stderr.write(`${m}\n`),
    });
    process.stdout.write(argv.json ? `${JSON.stringify(r)}\n` : `installed ${r.package} on TensorFlow ${r.tensorflow} in ${r.seconds} s; --backend auto now picks it\n`);
  },
};

interface InfoArgs {
  backend: string;
  json: boolean;
}

const infoCommand: CommandModule<object, InfoArgs> = {
  command: 'info',
  describe: 'Say which backend --backend auto (or the one named) starts here, and why',
  builder: (y: Argv) =>
    y
      .option('backend', { type: 'string', default: 'auto', describe: BACKEND_NAMES.join(', ') })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object' }) as unknown as Argv<InfoArgs>,
  handler: async (argv) => {
    const info = await initBackend(parseBackendName(argv.backend, { key: 'backend' }));
    if (argv.json) process.stdout.write(`${JSON.stringify(info)}\n`);
    else {
      process.stdout.write(`${info.name}${info.package ? ` (${info.package})` : ''}, ${info.threads} thread(s)${info.fallbackReason ? `; fell back because: ${info.fallbackReason}` : ''}\n`);
    }
    process.exit(0);
  },
};

export const backendCommand: CommandModule<object, object> = {
  command: 'backend <command>',
  describe: 'Install and inspect the TensorFlow.js backends (wasm is the default; tensorflow is native, CPU or GPU)',
  builder: (y: Argv) => y.command(installCommand as CommandModule).command(infoCommand as CommandModule).demandCommand(1),
  handler: () => undefined,
};
