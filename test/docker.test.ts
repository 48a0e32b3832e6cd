/**
 * No Docker engine runs here, so the container files are checked for what can be checked:
 * they parse, they wire the services the sweep needs, and every `egmf` command they run is a
 * valid CLI invocation (run here with --help appended).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO } from './helpers.ts';

/** Like runCli, but asynchronous so the invocations can start together. */
function egmf(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [join(REPO, 'bin', 'egmf.mjs'), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

interface Instruction { op: string; args: string; line: number }

/** Dockerfile → instructions (continuations joined, comments dropped). */
function parseDockerfile(path: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  readFileSync(path, 'utf8').split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (buf === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    if (buf === '') start = i + 1;
    buf += `${line.replace(/\\$/, '')} `;
    if (line.endsWith('\\')) return;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(buf.trim());
    if (!m) throw new Error(`${path}:${start}: not an instruction: ${buf}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.replace(/\s+/g, ' ').trim(), line: start });
    buf = '';
  });
  return out;
}

const KNOWN = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);
const EGMF_ENTRYPOINT = ['node', '/app/bin/egmf.mjs'];

type Service = {
  image?: string; build?: { context: string; dockerfile: string }; command?: string[] | string; volumes?: string[];
  depends_on?: Record<string, { condition: string }>; deploy?: { replicas?: number; resources?: { reservations?: { devices?: { driver: string; count?: number; capabilities: string[] }[] } } };
  healthcheck?: { test: string[] };
};
const compose = parse(readFileSync(join(REPO, 'docker', 'compose.yaml'), 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const dockerfiles = {
  'docker/Dockerfile': parseDockerfile(join(REPO, 'docker', 'Dockerfile')),
  'docker/Dockerfile.gpu': parseDockerfile(join(REPO, 'docker', 'Dockerfile.gpu')),
};
const jsonArgs = (ins: Instruction[], op: string): string[] => JSON.parse(ins.find((i) => i.op === op)!.args) as string[];

describe('Dockerfiles', () => {
  it('use only known instructions and run the egmf CLI as their entry point', () => {
    for (const [name, ins] of Object.entries(dockerfiles)) {
      for (const i of ins) expect(KNOWN.has(i.op), `${name}:${i.line} ${i.op}`).toBe(true);
      expect(ins[0]!.op, name).toBe('FROM');
      expect(jsonArgs(ins, 'ENTRYPOINT'), name).toEqual(EGMF_ENTRYPOINT);
      const copied = ins.filter((i) => i.op === 'COPY').map((i) => i.args.split(' ')[0]);
      for (const dir of ['bin', 'src', 'sweeps', 'experiments']) expect(copied, name).toContain(dir);
      expect(ins.some((i) => i.op === 'RUN' && /npm ci\b/.test(i.args)), name).toBe(true);
    }
  });

  it('builds the GPU image\'s backend with egmf backend install tensorflow --gpu (CUDA 12 from the wheel), after the sources it runs', () => {
    const gpu = dockerfiles['docker/Dockerfile.gpu'];
    expect(gpu[0]!.args).toMatch(/^node:20/);
    expect(dockerfiles['docker/Dockerfile'][0]!.args).toMatch(/^node:20/);
    const install = gpu.findIndex((i) => i.op === 'RUN' && i.args === 'node bin/egmf.mjs backend install tensorflow --gpu');
    expect(install).toBeGreaterThan(0);
    // The build tools the install checks for, and the sources it runs from, come before it.
    const apt = gpu.find((i) => i.op === 'RUN' && i.args.includes('apt-get install'))!;
    for (const tool of ['g++', 'make', 'python3-venv']) expect(apt.args).toContain(tool);
    for (const dir of ['bin', 'src']) expect(gpu.findIndex((i) => i.op === 'COPY' && i.args.startsWith(`${dir} `))).toBeLessThan(install);
    // No CUDA 11 / cuDNN 8 leftovers, no plain npm install of tfjs-node-gpu (its script downloads).
    expect(gpu.some((i) => /cuda:11|cudnn8|npm install .*tfjs-node-gpu/.test(i.args))).toBe(false);
  });
});

describe('compose.yaml', () => {
  const s = compose.services;

  it('runs MLflow (sqlite, artifact proxy) and Redis (AOF, noeviction) on volumes', () => {
    expect(Object.keys(s).sort()).toEqual(['controller', 'mlflow', 'redis', 'worker']);
    const mlflow = [s.mlflow!.command].flat().join(' ');
    expect(s.mlflow!.image).toMatch(/^python:3\.1\d/);
    expect(mlflow).toMatch(/pip install [^&]*mlflow/);
    expect(mlflow).toMatch(/--backend-store-uri sqlite:\/\/\/\/mlflow\/mlflow\.db/);
    expect(mlflow).toMatch(/--serve-artifacts/);
    expect(mlflow).toMatch(/--port 5000/);
    expect(s.mlflow!.volumes).toContain('mlflow-data:/mlflow');
    expect(s.redis!.command).toEqual(['redis-server', '--appendonly', 'yes', '--maxmemory-policy', 'noeviction']);
    expect(s.redis!.volumes).toContain('redis-data:/data');
    expect(Object.keys(compose.volumes).sort()).toEqual(['mlflow-data', 'redis-data', 'sweep-state']);
  });

  it('builds the controller from Dockerfile and GPU workers from Dockerfile.gpu with NVIDIA devices', () => {
    expect(s.controller!.build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile' });
    expect(s.controller!.depends_on).toEqual({ mlflow: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    expect(s.worker!.build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile.gpu' });
    expect(s.worker!.deploy!.replicas).toBeGreaterThanOrEqual(1);
    expect(s.worker!.deploy!.resources!.reservations!.devices).toEqual([{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }]);
    for (const dep of Object.keys(s.controller!.depends_on!)) expect(s[dep]!.healthcheck, dep).toBeDefined();
  });

  it('points the controller and workers at the compose services', () => {
    const ctl = s.controller!.command as string[];
    expect(ctl.slice(0, 3)).toEqual(['sweep', 'run', 'sweeps/default.yaml']);
    expect(ctl[ctl.indexOf('--queue') + 1]).toBe('redis://redis:6379');
    expect(ctl[ctl.indexOf('--tracking-uri') + 1]).toBe('http://mlflow:5000');
    expect(ctl).toContain('--json');
    const w = s.worker!.command as string[];
    expect(w.slice(0, 3)).toEqual(['worker', '--queue', 'redis://redis:6379']);
    // The spec the controller runs ships in the image (COPY sweeps).
    expect(existsSync(join(REPO, ctl[2]!)), `${ctl[2]} must exist in the repository`).toBe(true);
  });

  it('runs only valid egmf invocations (each checked with --help)', async () => {
    const invocations: { where: string; args: string[] }[] = [];
    for (const [name, svc] of Object.entries(s)) {
      if (!svc.build) continue;
      const ins = dockerfiles[svc.build.dockerfile as keyof typeof dockerfiles];
      expect(jsonArgs(ins, 'ENTRYPOINT'), name).toEqual(EGMF_ENTRYPOINT);
      expect(Array.isArray(svc.command), `${name}: command must be an exec-form list`).toBe(true);
      invocations.push({ where: `compose service ${name}`, args: svc.command as string[] });
    }
    for (const [name, ins] of Object.entries(dockerfiles)) invocations.push({ where: `${name} CMD`, args: jsonArgs(ins, 'CMD') });
    expect(invocations.length).toBe(4);
    const argv = invocations.map((inv) => (inv.args.includes('--help') ? inv.args : [...inv.args, '--help']));
    const results = await Promise.all(argv.map(egmf));
    results.forEach((r, i) => {
      const where = `${invocations[i]!.where}: egmf ${argv[i]!.join(' ')}`;
      expect(r.status, `${where}\n${r.stderr}`).toBe(0);
      expect(r.stdout, where).toMatch(/Options:/);
    });
    // --help skips option validation, so check each option used against the options it lists.
    results.forEach((r, i) => {
      for (const opt of argv[i]!.filter((a) => a.startsWith('--') && a !== '--help')) {
        expect(r.stdout, `${invocations[i]!.where}: unknown option ${opt}`).toMatch(new RegExp(`^\\s+${opt}\\b`, 'm'));
      }
    });
  });
});
