import { afterAll, beforeAll } from 'vitest';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { FileStore, RestStore } from '../../src/tracking/index.ts';
import { tempDir } from '../helpers.ts';
import { startMlflowServer, type MlflowServer } from '../tracking-server.ts';
import { storeContract } from './contract.ts';

const files = tempDir('egmf-filestore-');
const root = join(files.path, 'mlruns');
let server: MlflowServer;

beforeAll(async () => {
  // MLflow 3.13+ reads a file store only with this opt-in; the Python read-back inherits it.
  process.env.MLFLOW_ALLOW_FILE_STORE = 'true';
  server = await startMlflowServer();
});
afterAll(async () => {
  await server?.dispose();
  files.cleanup();
});

storeContract('file store', { store: () => new FileStore(root), pythonUri: () => pathToFileURL(root).href });
storeContract('REST store', { store: () => new RestStore(server.uri, { retry: { maxRetries: 2, baseDelayMs: 20 } }), pythonUri: () => server.uri });
