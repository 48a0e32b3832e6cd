/**
 * Registers tfjs-core's gradient functions.
 *
 * `@tensorflow/tfjs-core` registers kernels' gradients only through
 * `dist/register_all_gradients.js`, an ES module tree with extensionless imports that
 * Node cannot load (the `@tensorflow/tfjs` umbrella bundles it; we do not depend on the
 * umbrella). We bundle that entry once with esbuild (already installed with tsx and vite)
 * into a self-contained module, cached per tfjs-core version in the temp folder. Its own
 * copies of the ops are harmless: tfjs keeps the engine and the kernel/gradient
 * registries in a global namespace and checks tensors by shape, not by class identity.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EgmfError } from '../../errors.ts';

let loaded: Promise<void> | null = null;

/** Idempotent; resolves once every tfjs-core gradient is registered. */
export function ensureGradients(): Promise<void> {
  if (tf.getGradient('BatchMatMul') !== undefined) return Promise.resolve();
  loaded ??= load();
  return loaded;
}

async function load(): Promise<void> {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  const version = (JSON.parse(readFileSync(require.resolve('@tensorflow/tfjs-core/package.json'), 'utf8')) as { version: string }).version;
  const cached = join(tmpdir(), `egmf-tfjs-core-${version}-gradients.mjs`);
  if (existsSync(cached)) {
    await import(pathToFileURL(cached).href);
  } else {
    let esbuild: typeof import('esbuild');
    try {
      esbuild = await import('esbuild');
    } catch (e) {
      throw new EgmfError('esbuild is needed once to bundle tfjs-core gradients; run `npm install`', { file: entry }, { cause: e });
    }
    const code = esbuild.buildSync({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', write: false, logLevel: 'silent' }).outputFiles[0]!.text;
    try {
      // Atomic: concurrent processes may build the same cache file.
      const tmp = `${cached}.${process.pid}.tmp`;
      writeFileSync(tmp, code);
      renameSync(tmp, cached);
      await import(pathToFileURL(cached).href);
    } catch {
      // Read-only temp folder: import the bundle from memory instead.
      await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
    }
  }
  if (tf.getGradient('BatchMatMul') === undefined) {
    throw new EgmfError('tfjs-core gradients did not register (version mismatch?)', { file: cached });
  }
}
