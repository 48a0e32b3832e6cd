import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evictOwner, OWNER_FILE, processStart, readOwner, recordOwner, sweepRoot, trialFolder } from '../../src/sweep/trial-folder.ts';
import { runTrialProcess, type TrialPayload } from '../../src/sweep/trial-protocol.ts';
import { tempDir } from '../helpers.ts';
import { FAKE_COMMAND, readFakeLog } from '../fixtures/sweep/harness.ts';

let tmp: ReturnType<typeof tempDir>;
const procs: ChildProcess[] = [];
beforeAll(() => { tmp = tempDir('egmf-trial-folder-'); });
afterAll(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  tmp.cleanup();
});

/** A process standing in for an earlier delivery's trial process; resolves with the time it ended. */
function stale(): { child: ChildProcess; ended: Promise<number> } {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  procs.push(child);
  return { child, ended: new Promise((ok) => child.on('exit', () => ok(Date.now()))) };
}

const payload: TrialPayload = {
  version: 1, sweepId: 's', trialId: 's-t0-s0', number: 0, seedIndex: 0, seed: null, params: { 'train.lr': 0.3 },
  overrides: ['train.lr=0.3'], baseConfig: null, trackingUri: '/nonexistent/mlruns', experimentName: 'x', parentRunId: null,
  metric: { name: 'valid/score', goal: 'maximize' }, maxEpochs: 1,
};

const gone = (c: ChildProcess): boolean => processStart(c.pid!) === null;

describe('trial folder', () => {
  it('is <sweep root>/<sweep id>/trials/<trial id>, the root EGMF_SWEEP_DIR or .egmf/sweeps', () => {
    expect(trialFolder('s1', 's1-t0-s0', '/r')).toBe('/r/s1/trials/s1-t0-s0');
    expect(sweepRoot({ EGMF_SWEEP_DIR: '/x/sweeps' })).toBe('/x/sweeps');
    expect(sweepRoot({})).toBe(join(process.cwd(), '.egmf', 'sweeps'));
  });

  it('records its owner whole; a live owner on this host is stopped and awaited, nothing else is', async () => {
    const folder = join(tmp.path, 'owners', 't0');
    expect(await evictOwner(folder)).toBeNull(); // no folder, no owner
    const s = stale();
    recordOwner(folder, s.child.pid!);
    const o = readOwner(folder)!;
    expect(o.pid).toBe(s.child.pid);
    expect(o.start).toBe(processStart(s.child.pid!));
    expect(readFileSync(join(folder, OWNER_FILE), 'utf8')).toMatch(/^\{.*\}\n$/);

    // Not stopped: an excepted pid, a later process given the same pid (another start time),
    // an owner on another host, a torn owner file.
    expect(await evictOwner(folder, { except: s.child.pid! })).toBeNull();
    writeFileSync(join(folder, OWNER_FILE), JSON.stringify({ ...o, start: o.start! - 1 }));
    expect(await evictOwner(folder)).toBeNull();
    writeFileSync(join(folder, OWNER_FILE), JSON.stringify({ ...o, host: 'elsewhere.example' }));
    expect(await evictOwner(folder)).toBeNull();
    writeFileSync(join(folder, OWNER_FILE), '{"host": "');
    expect(readOwner(folder)).toBeNull();
    expect(await evictOwner(folder)).toBeNull();
    expect(gone(s.child)).toBe(false);

    // Stopped, and gone before it returns.
    recordOwner(folder, s.child.pid!);
    const what = await evictOwner(folder);
    expect(what).toMatch(new RegExp(`process ${s.child.pid} still trained it; stopped it`));
    expect(gone(s.child)).toBe(true);
    await s.ended;
    // A dead owner is no one's.
    expect(await evictOwner(folder)).toBeNull();
  });

  it("a delivery stops an earlier delivery's process still training its trial before its own starts, and owns the folder", async () => {
    const folder = join(tmp.path, 'sweeps', 's', 'trials', 's-t0-s0');
    const log = join(tmp.path, 'fake.jsonl');
    const s = stale();
    recordOwner(folder, s.child.pid!);
    const evicted: string[] = [];
    const out = await runTrialProcess({ command: FAKE_COMMAND, payload, env: { FAKE_TRIAL_LOG: log }, folder, onEvicted: (w) => evicted.push(w), onReport: () => false });
    expect(out.state, out.error).toBe('complete');
    expect(evicted).toEqual([expect.stringMatching(new RegExp(`process ${s.child.pid} still trained it; stopped it`))]);
    const ended = await s.ended;
    const start = readFakeLog(log).find((r) => r.event === 'start')!;
    expect(start.t).toBeGreaterThanOrEqual(ended);
    expect(readOwner(folder)!.pid).toBe(start.pid);
  });

  it('a folder it cannot write is no reason to refuse the delivery (the trial reports its own write errors)', async () => {
    const blocked = join(tmp.path, 'blocked');
    writeFileSync(blocked, 'a file where the sweep folder should be');
    expect(() => recordOwner(join(blocked, 't0'), process.pid)).toThrow(/ENOTDIR|not a directory/);
    expect(await evictOwner(join(blocked, 't0'))).toBeNull();
    const out = await runTrialProcess({ command: FAKE_COMMAND, payload, env: { FAKE_TRIAL_LOG: join(tmp.path, 'blocked.jsonl') }, folder: join(blocked, 't0'), onReport: () => false });
    expect(out.state, out.error).toBe('complete');
  });
});
