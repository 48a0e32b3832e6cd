import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandLoaders, loadCommands } from '../../src/cli/commands.ts';
import { REPO, runCli } from '../helpers.ts';

describe('egmf command table', () => {
  it('names each command module by its own command name, in help order', async () => {
    const all = await loadCommands([]);
    expect(all.map((c) => String(c.command).split(' ')[0])).toEqual(Object.keys(commandLoaders));
    for (const argv of [['--help'], ['nope', '--x'], ['--version']]) expect(await loadCommands(argv)).toHaveLength(all.length);
  });

  it('loads only the command a command line names', async () => {
    const one = await loadCommands(['trial']);
    expect(one.map((c) => c.command)).toEqual(['trial']);
    expect((await loadCommands(['sweep', 'run', 'x.yaml', '--parallel', '2'])).map((c) => String(c.command))).toEqual(['sweep <command>']);
  });

  it('a trial process does not import the report, queue or other commands\' modules', () => {
    const log = join(mkdtempSync(join(tmpdir(), 'egmf-modules-')), 'modules.txt');
    const r = spawnSync(process.execPath, ['--import', join(REPO, 'test', 'fixtures', 'cli', 'log-modules.mjs'), join(REPO, 'bin', 'egmf.mjs'), 'trial'], {
      cwd: REPO,
      env: { ...process.env, EGMF_MODULE_LOG: log, EGMF_TRIAL_PAYLOAD: '' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    // Started by hand, the trial stops with a clear error, after its imports.
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not started by a sweep executor/);
    const urls = readFileSync(log, 'utf8').split('\n');
    expect(urls.some((u) => u.endsWith('/src/train/trainer.ts'))).toBe(true);
    for (const heavy of ['/node_modules/vega/', '/node_modules/vega-lite/', '/node_modules/bullmq/', '/node_modules/ioredis/', '/src/cli/report.ts', '/src/cli/worker.ts', '/src/cli/bench.ts']) {
      expect(urls.filter((u) => u.includes(heavy)), heavy).toEqual([]);
    }
  });

  it('top-level help still lists every command, and an unknown one is refused', () => {
    const help = runCli(['--help']);
    expect(help.status).toBe(0);
    for (const name of Object.keys(commandLoaders)) expect(help.stdout).toMatch(new RegExp(`egmf ${name}\\b`));
    const bad = runCli(['trian']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/Did you mean train/);
  });
});
