/**
 * Multi-threaded wasm under Node (see /work/shared/notes/tfjs-wasm.md, "Threads in Node").
 *
 * tfjs-backend-wasm hard-codes `WASM_HAS_MULTITHREAD_SUPPORT = false` under Node, yet its
 * threaded-SIMD build supports `worker_threads`. Three things stand in the way, each
 * worked around here without patching the package:
 *  - the pthread worker script is handed out as a blob URL, which Node's `Worker` cannot
 *    open: we write it to a temporary file and return that path instead;
 *  - the worker then loads the main script from a Blob it cannot import: our copy of the
 *    worker script loads the package's `wasm-out/...threaded-simd.js` file instead;
 *  - XNNPACK caps its pool at logical cores / 2: `os.cpus()` reports enough cores while
 *    the backend initialises.
 * The workers are `unref`ed so that they do not keep the process alive.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as wasmBackend from '@tensorflow/tfjs-backend-wasm';
import os from 'node:os';
import { createRequire } from 'node:module';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface PthreadWorker { unref(): void; terminate(): void }
interface WasmModuleLike { PThread?: { unusedWorkers: PthreadWorker[]; runningWorkers: PthreadWorker[] } }

function workerScript(): string {
  const require = createRequire(import.meta.url);
  const mainJs = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as { wasmWorkerContents: string };
  const from = 'if(typeof e.data.urlOrBlob=="string"){importScripts(e.data.urlOrBlob)}';
  if (!wasmWorkerContents.includes(from)) throw new Error('unexpected tfjs-backend-wasm worker script: cannot enable threads');
  // As the package does for its blob: newlines in the template are string-literal escapes.
  const script = wasmWorkerContents.replace(/\n/g, '\\n').replace(from, `if(true){importScripts(${JSON.stringify(mainJs)})}`);
  // Named by content, so processes share one file instead of leaving one each.
  const file = join(tmpdir(), `egmf-tfjs-wasm-worker-${createHash('sha256').update(script).digest('hex').slice(0, 16)}.cjs`);
  if (!existsSync(file)) {
    writeFileSync(`${file}.${process.pid}.tmp`, script);
    renameSync(`${file}.${process.pid}.tmp`, file);
  }
  return file;
}

/**
 * Initialises the (not yet initialised) wasm backend with `threads` XNNPACK threads and
 * makes it current. Returns the thread count the backend reports.
 */
export async function initThreadedWasm(threads: number): Promise<number> {
  const file = workerScript();
  const origCreate = URL.createObjectURL;
  const origCpus = os.cpus;
  URL.createObjectURL = ((obj: Blob): string => (obj instanceof Blob && obj.type === 'application/javascript' ? file : origCreate(obj))) as typeof URL.createObjectURL;
  const realCpus = origCpus();
  os.cpus = () => Array.from({ length: Math.max(realCpus.length, 2 * threads) }, (_, i) => realCpus[i % realCpus.length]!);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasmBackend.setThreadsCount(threads);
  try {
    const ok = await tf.setBackend('wasm');
    if (!ok) throw new Error('wasm backend failed to initialise with threads');
  } finally {
    URL.createObjectURL = origCreate;
    os.cpus = origCpus;
  }
  const module = (tf.backend() as unknown as { wasm: WasmModuleLike }).wasm;
  for (const w of [...(module.PThread?.unusedWorkers ?? []), ...(module.PThread?.runningWorkers ?? [])]) w.unref();
  return wasmBackend.getThreadsCount();
}
