import type { Importer } from './types.ts';
import { meldImporter } from './meld.ts';
import { cpedImporter } from './cped.ts';
import { genericImporter } from './generic.ts';
import { mmsaImporter } from './mmsa.ts';
import { mseAdapterImporter } from './mse-adapter.ts';
import { chermaImporter } from './cherma.ts';

export type { Importer, ImportReport } from './types.ts';

/** Every importer `egmf data import` offers; each module adds itself here. */
export const importers: Importer[] = [meldImporter, cpedImporter, genericImporter, mmsaImporter, mseAdapterImporter, chermaImporter];
