import type { Importer } from './types.ts';

export type { Importer, ImportReport } from './types.ts';

/** Every importer `egmf data import` offers; each module adds itself here. */
export const importers: Importer[] = [];
