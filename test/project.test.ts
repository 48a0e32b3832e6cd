/**
 * The repository as a newcomer meets it: the README's quick-start lines are what CI runs,
 * with nothing set beside them; every npm dependency is used; no dependency needs a
 * download outside the registries at install time; the layers point one way; and every
 * path the README and the Dockerfiles name exists.
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers.ts';

const read = (p: string): string => readFileSync(join(REPO, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  dependencies: Record<string, string>; devDependencies: Record<string, string>; optionalDependencies?: Record<string, string>;
  scripts: Record<string, string>; allowScripts?: Record<string, boolean>;
};

/** Source files under `dir` (relative to the repository), recursively. */
function sources(dir: string, exts = /\.(ts|mts|mjs|js|cjs)$/): string[] {
  const root = join(REPO, dir);
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'node_modules' && name !== 'fixtures') walk(p);
      } else if (exts.test(name)) out.push(relative(REPO, p));
    }
  };
  walk(root);
  return out;
}

/** Package names a file imports: static and dynamic imports, re-exports, require/resolve. */
function importedPackages(file: string): Set<string> {
  const text = read(file);
  const specs = [
    ...text.matchAll(/\b(?:from|import)\s*\(?\s*['"]([^'"./][^'"]*)['"]/g),
    ...text.matchAll(/\brequire(?:\.resolve)?\(\s*['"]([^'"./][^'"]*)['"]/g),
  ].map((m) => m[1]!);
  return new Set(specs.filter((s) => !s.startsWith('node:')).map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!)));
}

/** The quick-start block's command lines. */
function quickStart(): string[] {
  const m = /## Quick start\s+```bash\n([\s\S]*?)```/.exec(read('README.md'));
  if (!m) throw new Error('README.md has no "## Quick start" bash block');
  return m[1]!.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

describe('the quick start and CI', () => {
  it('has exactly two command lines: the main job and the tests', () => {
    expect(quickStart()).toEqual(['npm ci && npm run sweep', 'npm ci && npm test']);
  });

  it('.ci/run runs the README test line verbatim and sets no environment variable', () => {
    const lines = read('.ci/run').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const testLine = quickStart()[1]!;
    expect(lines).toContain(testLine);
    for (const l of lines) {
      expect(l, `.ci/run: ${l}`).not.toMatch(/^(export|declare|env)\b/);
      expect(l, `.ci/run: ${l}`).not.toMatch(/^[A-Za-z_][A-Za-z0-9_]*=/);
    }
    // Only the shell's own set-up besides the test line.
    expect(lines.filter((l) => l !== testLine && !/^(set -euo pipefail|cd "\$\(dirname "\$0"\)\/\.\."|#!.*)$/.test(l))).toEqual([]);
  });

  it('the Dockerfiles install with the README command and no install-time variables, copying paths that exist', () => {
    for (const f of ['docker/Dockerfile', 'docker/Dockerfile.gpu']) {
      const text = read(f);
      expect(text, f).not.toMatch(/ONNXRUNTIME|npm_config_/i);
      const runs = text.split('\n').filter((l) => /^RUN\b.*\bnpm (ci|install)\b/.test(l));
      expect(runs.some((l) => /\bnpm ci\b/.test(l)), `${f}: runs npm ci`).toBe(true);
      for (const l of text.split('\n')) {
        const m = /^COPY\s+(?!--from)(.+)\s+\S+$/.exec(l.trim());
        if (!m) continue;
        for (const src of m[1]!.split(/\s+/)) expect(existsSync(join(REPO, src)), `${f}: COPY ${src}`).toBe(true);
      }
    }
  });
});

describe('dependencies', () => {
  const files = [...sources('src'), ...sources('bin'), ...sources('test'), ...sources('scripts'), 'vitest.config.ts'];
  const used = new Set(files.flatMap((f) => [...importedPackages(f)]));
  const scriptTools = Object.values(pkg.scripts).join(' ');

  it('every runtime dependency is imported by the product or its tests', () => {
    const unused = Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }).filter((d) => !used.has(d));
    expect(unused).toEqual([]);
  });

  it('every dev dependency is imported, types an imported package, or is a tool the scripts run', () => {
    const unused = Object.keys(pkg.devDependencies).filter((d) => {
      if (used.has(d)) return false;
      const typed = /^@types\/(.+)$/.exec(d)?.[1];
      if (typed !== undefined) return !(typed === 'node' || used.has(typed.includes('__') ? `@${typed.replace('__', '/')}` : typed));
      return !(d === 'typescript' && /\btsc\b/.test(scriptTools));
    });
    expect(unused).toEqual([]);
  });

  it('no installed package runs an install script, so `npm ci` needs only the registry', () => {
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { hasInstallScript?: boolean }> };
    const withScripts = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript).map(([path]) => path.replace(/^.*node_modules\//, ''));
    // Each one with a script is denied explicitly (npm's allowScripts); it works without it.
    for (const name of withScripts) expect(pkg.allowScripts?.[name], `${name} has an install script`).toBe(false);
    expect(Object.keys(lock.packages).some((p) => /onnxruntime|@huggingface\/transformers/.test(p))).toBe(false);
  });
});

describe('layers', () => {
  /** Folders of src/ a file imports, by relative path. */
  const importsOf = (file: string): string[] =>
    [...read(file).matchAll(/\bfrom\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)]
      .map((m) => relative(join(REPO, 'src'), join(REPO, file, '..', m[1] ?? m[2]!)).split('/')[0]!);

  it.each([
    ['models', ['train', 'sweep', 'cli', 'tracking', 'report', 'bench']],
    ['data', ['models', 'train', 'sweep', 'cli', 'tracking', 'report', 'bench']],
    ['tracking', ['models', 'train', 'sweep', 'cli', 'report', 'bench']],
  ])('src/%s imports nothing from the layers above it', (layer, above) => {
    const bad = sources(`src/${layer}`).flatMap((f) => importsOf(f).filter((d) => above.includes(d)).map((d) => `${f} → src/${d}`));
    expect(bad).toEqual([]);
  });
});

describe('README truth', () => {
  it('every repository path the README names exists', () => {
    const named = [...read('README.md').matchAll(/(?:^|[\s(`=])((?:src|test|docs|experiments|sweeps|scripts|docker|reports|bin)\/[A-Za-z0-9_./-]*)/gm)].map((m) => m[1]!.replace(/[.,]$/, ''));
    expect(named.length).toBeGreaterThan(15);
    const missing = [...new Set(named)].filter((p) => !existsSync(join(REPO, p)));
    expect(missing).toEqual([]);
  });

  it('every folder in the Layout block exists', () => {
    const m = /## Layout\s+```\n([\s\S]*?)```/.exec(read('README.md'));
    expect(m, 'README.md has a Layout block').not.toBeNull();
    // Column entries: at a line's start or after a run of spaces (not `llm/` inside a description).
    const paths = [...m![1]!.matchAll(/(?:^|\s{2,})((?:[a-z]+\/)+)/gm)].map((x) => x[1]!);
    expect(paths.length).toBeGreaterThan(8);
    for (const p of paths) expect(existsSync(join(REPO, p)), `README Layout: ${p}`).toBe(true);
  });
});
