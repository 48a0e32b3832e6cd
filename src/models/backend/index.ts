/**
 * tfjs backends for model code.
 *
 *     await initBackend('auto');        // tfjs-node if installed, else wasm (SIMD), else cpu
 *     await initBackend('wasm', { threads: 2 });
 *
 * Always call `initBackend` before building models: it also registers tfjs-core's
 * gradients and the wasm kernel fixes (missing and silently wrong kernels). Model code
 * then uses `src/models/ops.ts`, which picks the fast path for the current backend.
 */
export { initBackend, currentBackend, tensorflowPackage, parseBackendName, BACKEND_NAMES } from './select.ts';
export type { BackendName, BackendOptions, BackendInfo } from './select.ts';
export { ensureGradients } from './gradients.ts';
export { defaultThreads } from './threads.ts';
export { GraphCapture } from './tensorflow_graph.ts';
export type { GraphStats } from './tensorflow_graph.ts';
