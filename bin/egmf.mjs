#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx, so a fresh clone needs no build step.
import { register } from 'tsx/esm/api';

register();
// A sweep trial watches its executor from its first moment (see src/sweep/watchdog.ts).
if (process.argv[2] === 'trial') (await import('../src/sweep/watchdog.ts')).watchExecutor();
const { main } = await import('../src/cli/main.ts');
await main(process.argv.slice(2));
