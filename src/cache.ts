import { resolve } from 'node:path';

/** Where generated data, imports and the built-in LLM are cached: EGMF_CACHE, else ./.egmf-cache. */
export function cacheDir(): string {
  return resolve(process.env.EGMF_CACHE || '.egmf-cache');
}
