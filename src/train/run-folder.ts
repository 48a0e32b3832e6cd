/**
 * A finished run folder (`config.json` + `checkpoints/best`, as `egmf train` writes it)
 * rebuilt for evaluation: its config (with optional overrides), the setup it describes and
 * the checkpoint's weights. Shared by `egmf eval` and the robustness reports.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { EgmfError } from '../errors.ts';
import { EXPERIMENT_SPEC, validateExperiment } from '../config/experiment.ts';
import type { ExperimentConfig } from '../config/experiment.ts';
import { applySets } from '../config/spec.ts';
import { buildSetup, disposeSetup } from './setup.ts';
import type { Setup } from './setup.ts';
import { loadCheckpoint } from './checkpoint.ts';

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

export interface OpenedRun {
  runDir: string;
  ckptDir: string;
  /** The run's config.json. */
  cfgFile: string;
  cfg: ExperimentConfig;
  /** Built from `cfg`, with the checkpoint's weights loaded. */
  setup: Setup;
}

export interface OpenRunOptions {
  /** Config overrides (`data.root=DIR`, ...), applied to config.json before validation. */
  sets?: readonly string[];
  say?: (msg: string) => void;
  /** Build without the training loader (default true). */
  evalOnly?: boolean;
}

/** A run folder's config.json, validated (with `sets` applied); errors name the file. */
export function readRunConfig(runDir: string, sets: readonly string[] = []): { cfgFile: string; cfg: ExperimentConfig } {
  const cfgFile = join(runDir, 'config.json');
  if (!existsSync(cfgFile)) throw new EgmfError('the run folder has no config.json', { file: cfgFile });
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new EgmfError(`not valid JSON: ${(e as Error).message}`, { file: cfgFile });
  }
  return { cfgFile, cfg: validateExperiment(applySets(EXPERIMENT_SPEC, raw, [...sets]), cfgFile) };
}

/** Reads a run's config, builds its setup and loads its checkpoint; errors name the missing file. */
export async function openRunFolder(path: string, o: OpenRunOptions = {}): Promise<OpenedRun> {
  const { runDir, ckptDir } = locateCheckpoint(path);
  const { cfgFile, cfg } = readRunConfig(runDir, o.sets);
  const setup = await buildSetup(cfg, { say: o.say, evalOnly: o.evalOnly ?? true });
  try {
    loadCheckpoint(ckptDir, setup.variables, null, setup.model.fusion.params.buffers);
  } catch (e) {
    disposeSetup(setup);
    throw e;
  }
  return { runDir, ckptDir, cfgFile, cfg, setup };
}
