/**
 * The trial watchdog (src/sweep/watchdog.ts) with real processes: an executor that pipes its
 * trial's stderr, as the local pool and `egmf worker` do, is SIGKILLed while the trial's main
 * thread is blocked (as in a training epoch); the trial must be gone within seconds.
 */
import { afterAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, pidAlive as alive, tempDir } from '../helpers.ts';

const tmp = tempDir('egmf-watchdog-');
const left: number[] = [];
afterAll(() => {
  for (const pid of left) if (alive(pid)) process.kill(pid, 'SIGKILL');
  tmp.cleanup();
});

it('kills a blocked trial within seconds of its executor\'s death, although its stderr pipe broke with it', async () => {
  const trial = join(REPO, 'test', 'fixtures', 'sweep', 'blocked-trial.mjs');
  const executor = join(tmp.path, 'executor.mjs');
  writeFileSync(executor, `import { spawn } from 'node:child_process';
const c = spawn(process.execPath, [${JSON.stringify(trial)}], { cwd: ${JSON.stringify(REPO)}, env: { ...process.env, EGMF_TRIAL_PARENT: String(process.pid) }, stdio: ['ignore', 'pipe', 'pipe'] });
c.stderr.on('data', (d) => { if (String(d).includes('blocking')) process.stdout.write('trial ' + c.pid + '\\n'); });
`);
  const exec = spawn(process.execPath, [executor], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((ok, fail) => {
    let out = '';
    exec.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /trial (\d+)/.exec(out);
      if (m) ok(Number(m[1]));
    });
    exec.on('close', () => fail(new Error(`the executor exited first: ${out}`)));
  });
  left.push(pid);
  exec.kill('SIGKILL');
  const t0 = Date.now();
  while (alive(pid) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100));
  expect(alive(pid), 'the trial outlived its executor by 5 s').toBe(false);
}, 60_000);
