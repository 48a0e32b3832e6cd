import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers.ts';
import { fakeEnv, finish, gridSpec, lastJson, spawnEgmf } from '../fixtures/sweep/harness.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('egmf-sweep-cli-'); });
afterAll(() => tmp.cleanup());

describe('egmf sweep (local processes)', () => {
  it('--json ends stdout with the result object; status shows the trials', async () => {
    const dir = join(tmp.path, 'json');
    mkdirSync(dir);
    const log = join(dir, 'log.jsonl');
    const spec = gridSpec(dir, { name: 'clijson', lrs: [0.9, 0.3, 0.5], epochs: 2 });
    const env = fakeEnv(log, { EGMF_SWEEP_DIR: join(dir, 'sweeps') });
    const r = runCli(['sweep', 'run', spec, '--tracking-uri', join(dir, 'mlruns'), '--json', '--parallel', '2'], { env, cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const j = lastJson(r.stdout);
    expect(Object.keys(j)).toEqual(['sweep_id', 'parent_run_id', 'trials', 'best', 'baselines']);
    expect(j.baselines).toEqual({}); // the stand-in trials train nothing and log no baselines
    expect(j.trials).toEqual({ completed: 3, pruned: 0, failed: 0 });
    expect(j.best).toEqual({ run_id: expect.stringMatching(/^[0-9a-f]{32}$/), trial_id: `${j.sweep_id}-t1-s0`, params: { 'train.lr': 0.3 }, metric: 1 });
    expect(r.stderr).toMatch(/-t1-s0 complete/);
    const id = j.sweep_id as string;
    const human = spawnEgmf(['sweep', 'status', id], env, dir);
    const machine = spawnEgmf(['sweep', 'status', id, '--json'], env, dir);
    await Promise.all([finish(human, 60_000), finish(machine, 60_000)]);
    const s = { stdout: human.out() };
    expect(s.stdout).toContain(`sweep ${id} (finished): grid, maximize valid/score`);
    expect(s.stdout).toContain('trials: 3 completed, 0 pruned, 0 failed, 0 running');
    expect(s.stdout).toMatch(/best so far: trial \S+-t1-s0, valid\/score = 1/);
    const st = lastJson(machine.out());
    expect(st).toMatchObject({ sweep_id: id, state: 'finished', parent_run_id: j.parent_run_id, trials: { completed: 3, pruned: 0, failed: 0, running: 0 }, best: { params: { 'train.lr': 0.3 }, metric: 1 } });
    expect((st.trial_list as unknown[]).length).toBe(3);
  });

  it('human output ends with the best configuration and where to look', () => {
    const dir = join(tmp.path, 'human');
    mkdirSync(dir);
    const spec = gridSpec(dir, { name: 'human', lrs: [0.2, 0.4], epochs: 1, parallel: 2 });
    const r = runCli(['sweep', 'run', spec, '--tracking-uri', join(dir, 'mlruns')], { env: fakeEnv(join(dir, 'log.jsonl')), cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const tail = r.stdout.trim().split('\n').slice(-6);
    expect(tail[0]).toMatch(/^sweep human-\S+: 2 completed, 0 pruned, 0 failed$/);
    expect(tail[1]).toMatch(/^best configuration \(trial \S+-t0-s0, run [0-9a-f]{32}\): metric = 0\.99$/);
    expect(tail[2]).toBe('  train.lr = 0.2');
    expect(tail[3]).toBe("baselines on the best trial's data: not recorded");
    expect(tail[4]).toBe(`tracking store: ${join(dir, 'mlruns')} (parent run ${tail[1]!.length > 0 ? tail[4]!.match(/parent run (\w+)/)![1] : ''})`);
    expect(tail[5]).toMatch(new RegExp(`^summary: ${join(dir, '.egmf', 'sweeps')}/human-\\S+/summary `));
  });

  it('--sweep-dir holds the trials\' folders too, not only the sweep\'s journal', () => {
    const dir = join(tmp.path, 'sweepdir');
    mkdirSync(dir);
    const root = join(tmp.path, 'elsewhere');
    const spec = gridSpec(dir, { name: 'where', lrs: [0.2, 0.4], epochs: 1 });
    const r = runCli(['sweep', 'run', spec, '--tracking-uri', join(dir, 'mlruns'), '--sweep-dir', root, '--json'], { env: fakeEnv(join(dir, 'log.jsonl')), cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const id = lastJson(r.stdout).sweep_id as string;
    // Each delivery records its trial process in the trial's folder (owner.json).
    for (const t of ['t0', 't1']) expect(existsSync(join(root, id, 'trials', `${id}-${t}-s0`, 'owner.json'))).toBe(true);
    expect(existsSync(join(dir, '.egmf'))).toBe(false);
  });

  it('rejects bad invocations with errors naming the file or option', async () => {
    const dir = join(tmp.path, 'badargs');
    mkdirSync(dir);
    const spec = gridSpec(dir, { lrs: [0.1, 0.2] });
    const run = async (args: string[]) => {
      const p = spawnEgmf(args, {}, dir);
      return { status: await finish(p, 60_000), stderr: p.err() };
    };
    const [missing, par, q, st] = await Promise.all([
      run(['sweep', 'run', join(tmp.path, 'nope.yaml')]),
      run(['sweep', 'run', spec, '--parallel', '0', '--tracking-uri', join(dir, 'mlruns')]),
      run(['worker', '--queue', 'http://127.0.0.1:1']),
      run(['sweep', 'status', 'missing-sweep', '--sweep-dir', join(dir, 'sweeps')]),
    ]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nope\.yaml: sweep spec not found/);
    expect(par.stderr).toMatch(/key 'parallel': must be an integer >= 1, got 0/);
    expect(q.status).toBe(1);
    expect(q.stderr).toMatch(/key 'queue': Redis URL must start with redis:\/\//);
    expect(st.stderr).toMatch(/missing-sweep[/\\]meta\.json: no such sweep/);
    expect(existsSync(join(dir, 'mlruns'))).toBe(false);
  });
});
