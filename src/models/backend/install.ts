/**
 * Installs the native TensorFlow backend without tfjs-node's own download: the TensorFlow
 * C API comes from the PyPI wheel (`tensorflow-cpu`, or `tensorflow[and-cuda]` for GPUs)
 * in a venv, `@tensorflow/tfjs-node(-gpu)` is installed with its install script skipped,
 * and its small N-API addon is compiled against the wheel with the node-gyp inside npm.
 *
 *     egmf backend install tensorflow          # CPU, into .venv-tensorflow/
 *     egmf backend install tensorflow --gpu    # CUDA 12 from the wheel's nvidia-* packages
 *
 * Idempotent: each stage is skipped when what it makes is already there for the same
 * wheel, package and Node version, and the result is always checked by loading the
 * addon in a fresh process. Every failure names what is missing (compiler, make, Node
 * headers, the venv module, the wheel or a file of its layout).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { EgmfError } from '../../errors.ts';

/** The tfjs-node release whose addon source builds against the wheel below (tfjs-core's version). */
export const TFJS_NODE_VERSION = '4.22.0';
/** The TensorFlow release whose C API the addon is built against. */
export const TENSORFLOW_VERSION = '2.21.0';

export interface InstallOptions {
  /** GPU variant: tfjs-node-gpu against `tensorflow[and-cuda]`. */
  gpu?: boolean;
  /** Repository (the folder with package.json and node_modules). */
  root: string;
  /** venv for the wheel (default `<root>/.venv-tensorflow`). */
  venv?: string;
  /** Python that creates the venv (default `python3`). */
  python?: string;
  /** Folder with `include/node/node_api.h` (default: next to the running node, then /usr). */
  nodedir?: string;
  /** Rebuild every stage. */
  force?: boolean;
  say?: (msg: string) => void;
  /** Environment of the child processes (tests replace PATH or CXX). */
  env?: NodeJS.ProcessEnv;
}

export interface InstallResult {
  package: string;
  tensorflow: string;
  venv: string;
  addon: string;
  /** Stages run this time (empty: everything was already in place). */
  built: string[];
  seconds: number;
}

interface Variant {
  pkg: string;
  wheel: string;
  /** The distribution pip reports, to check an existing venv. */
  dist: string;
}

function variant(gpu: boolean): Variant {
  return gpu
    ? { pkg: '@tensorflow/tfjs-node-gpu', wheel: `tensorflow[and-cuda]==${TENSORFLOW_VERSION}`, dist: 'tensorflow' }
    : { pkg: '@tensorflow/tfjs-node', wheel: `tensorflow-cpu==${TENSORFLOW_VERSION}`, dist: 'tensorflow-cpu' };
}

/** The package folder of the tfjs-node variant under `root`. */
export function tfNodeDir(root: string, gpu = false): string {
  return join(root, 'node_modules', ...variant(gpu).pkg.split('/'));
}

/** The compiled addon of a variant; present once `installTensorflowBackend` has run. */
export function tfNodeAddon(root: string, gpu = false): string {
  return join(tfNodeDir(root, gpu), 'lib', 'napi-v8', 'tfjs_binding.node');
}

export function installTensorflowBackend(o: InstallOptions): InstallResult {
  const t0 = performance.now();
  const say = o.say ?? (() => undefined);
  const env = { ...(o.env ?? process.env) };
  const v = variant(o.gpu === true);
  const root = resolve(o.root);
  const venv = resolve(o.venv ?? join(root, '.venv-tensorflow'));
  const built: string[] = [];

  // 1. What the build needs, before anything is changed.
  const cxx = env['CXX'] ?? 'g++';
  requireTool(cxx, env, 'a C++ compiler (Debian: apt-get install g++), or set CXX', 'CXX');
  requireTool('make', env, 'make (Debian: apt-get install make)', 'make');
  const python = o.python ?? 'python3';
  requireTool(python, env, 'Python 3 with venv (Debian: apt-get install python3 python3-venv)', 'python');
  const nodedir = findNodeDir(o.nodedir);
  const nodeGyp = findNodeGyp(env);
  if (!existsSync(join(root, 'package.json'))) throw new EgmfError('not a project folder: no package.json', { file: join(root, 'package.json') });

  // 2. The wheel, in its own venv.
  const venvPython = join(venv, 'bin', 'python');
  if (!existsSync(venvPython) || o.force) {
    say(`creating ${venv}`);
    run(python, ['-m', 'venv', venv], env, `could not create the venv (Debian: apt-get install python3-venv)`, { file: venv });
    built.push('venv');
  }
  const site = run(venvPython, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], env, 'the venv\'s Python does not run', { file: venvPython }).trim();
  const tfDir = join(site, 'tensorflow');
  const have = runRaw(venvPython, ['-m', 'pip', 'show', v.dist], env);
  const haveVersion = /^Version: (.+)$/m.exec(have.stdout)?.[1]?.trim();
  if (haveVersion !== TENSORFLOW_VERSION || !existsSync(join(tfDir, 'libtensorflow_cc.so.2')) || o.force) {
    say(`pip install ${v.wheel} (into ${venv}; about 1.6 GB${o.gpu ? ' plus the CUDA 12 libraries' : ''})`);
    run(venvPython, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', v.wheel], env, `could not install the wheel ${v.wheel}`, { key: v.wheel });
    built.push('wheel');
  }
  const wheelFiles = {
    include: join(tfDir, 'include'),
    cc: join(tfDir, 'libtensorflow_cc.so.2'),
    framework: join(tfDir, 'libtensorflow_framework.so.2'),
  };
  for (const f of [join(wheelFiles.include, 'tensorflow', 'c', 'c_api.h'), join(wheelFiles.include, 'tensorflow', 'c', 'eager', 'c_api.h'), wheelFiles.cc, wheelFiles.framework]) {
    if (!existsSync(f)) throw new EgmfError(`the ${v.wheel} wheel lacks a file the addon needs (its layout changed?)`, { file: f });
  }

  // 3. The npm package, without its download script.
  const pkgDir = tfNodeDir(root, o.gpu === true);
  if (readVersion(join(pkgDir, 'package.json')) !== TFJS_NODE_VERSION || o.force) {
    say(`npm install --no-save --ignore-scripts ${v.pkg}@${TFJS_NODE_VERSION}`);
    run('npm', ['install', '--no-save', '--ignore-scripts', '--no-audit', '--no-fund', `${v.pkg}@${TFJS_NODE_VERSION}`], { ...env }, `could not install ${v.pkg}@${TFJS_NODE_VERSION} from the npm registry`, { key: v.pkg }, root);
    built.push('package');
  }

  // 4. deps/ as binding.gyp expects it, pointing into the wheel. The addon asks for
  //    libtensorflow_cc.so.2 (the wheel library's SONAME), so that name is linked too.
  const deps = join(pkgDir, 'deps');
  const links: [string, string][] = [
    [join(deps, 'include'), wheelFiles.include],
    ...['libtensorflow.so', 'libtensorflow.so.2', 'libtensorflow_cc.so.2'].map((n): [string, string] => [join(deps, 'lib', n), wheelFiles.cc]),
    ...['libtensorflow_framework.so', 'libtensorflow_framework.so.2'].map((n): [string, string] => [join(deps, 'lib', n), wheelFiles.framework]),
  ];
  // TensorFlow finds CUDA through RUNPATH $ORIGIN/../nvidia/*/lib, resolved from deps/lib.
  if (o.gpu) links.push([join(deps, 'nvidia'), join(site, 'nvidia')]);
  let relinked = false;
  for (const [link, target] of links) relinked = ensureLink(link, target) || relinked;
  if (relinked) built.push('links');

  // 5. The addon, compiled against the wheel's headers and libraries, with one addition:
  //    session options for the SavedModels it loads (see ADDON_PATCH).
  const addon = tfNodeAddon(root, o.gpu === true);
  const moduleDir = dirname(addon);
  patchAddonSource(join(pkgDir, 'binding', 'tfjs_backend.cc'));
  const stampFile = join(pkgDir, '.egmf-build.json');
  const stamp = JSON.stringify({ tfjs_node: TFJS_NODE_VERSION, wheel: v.wheel, tensorflow: realpathSync(wheelFiles.cc), node: process.versions.modules, patch: ADDON_PATCH_VERSION });
  const stale = !existsSync(addon) || !existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp;
  if (stale || o.force) {
    say(`compiling the tfjs-node addon against TensorFlow ${TENSORFLOW_VERSION} (${cxx}, node headers in ${nodedir})`);
    run(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, '--module_name=tfjs_binding', `--module_path=${moduleDir}`, '--napi_build_version=8'],
      env, 'compiling the tfjs-node addon failed', { file: join(pkgDir, 'binding.gyp') }, pkgDir);
    writeFileSync(stampFile, stamp);
    built.push('addon');
  }

  // 6. Proof: a fresh process loads it and runs an op on the tensorflow backend.
  const check = runRaw(process.execPath, ['-e', `
    const tf = require(${JSON.stringify(v.pkg)});
    const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync()[0];
    console.log(JSON.stringify({ backend: tf.getBackend(), version: tf.backend().binding.TF_Version, y }));`], { ...env, TF_CPP_MIN_LOG_LEVEL: '2' }, root);
  const got = lastJson(check.stdout) as { backend?: string; version?: string; y?: number } | null;
  if (check.status !== 0 || got?.backend !== 'tensorflow' || got.y !== 11) {
    throw new EgmfError(`the built addon does not load: ${tail(check.stderr || check.stdout)}`, { file: addon });
  }
  say(`${v.pkg} ${TFJS_NODE_VERSION} runs on TensorFlow ${got.version}${built.length === 0 ? ' (already installed)' : ` (built: ${built.join(', ')})`}`);
  return { package: v.pkg, tensorflow: got.version ?? TENSORFLOW_VERSION, venv, addon, built, seconds: Math.round((performance.now() - t0) / 100) / 10 };
}

/**
 * The one change to tfjs-node's addon source: `loadSavedModel` takes its session's options
 * from EGMF_TF_SESSION_CONFIG (a serialized ConfigProto, in hex) when that is set. The
 * captured training graphs (tensorflow_graph.ts) set it while loading theirs: no grappler
 * (which changes no kernel they run, but took ~0.5 s of each new graph's first run, and
 * folds constants, so results drift from eager ones) and fixed thread pools. Unset, the
 * addon behaves as published.
 */
const ADDON_PATCH_VERSION = 1;
const PATCH_MARK = '// egmf: EGMF_TF_SESSION_CONFIG';
const PATCH_AFTER = '  TF_SessionOptions *session_options = TF_NewSessionOptions();\n';
const ADDON_PATCH = `${PATCH_MARK} (a serialized ConfigProto, hex) sets the session's options.
  if (const char *egmf_hex = std::getenv("EGMF_TF_SESSION_CONFIG")) {
    std::string egmf_config;
    for (size_t i = 0; egmf_hex[i] != '\\0' && egmf_hex[i + 1] != '\\0'; i += 2) {
      egmf_config.push_back(static_cast<char>(std::stoi(std::string(egmf_hex + i, 2), nullptr, 16)));
    }
    TF_AutoStatus egmf_status;
    TF_SetConfig(session_options, egmf_config.data(), egmf_config.size(), egmf_status.status);
    if (TF_GetCode(egmf_status.status) != TF_OK) {
      TF_DeleteSessionOptions(session_options);
      NAPI_THROW_ERROR(env, "Invalid EGMF_TF_SESSION_CONFIG: %s", TF_Message(egmf_status.status));
      return nullptr;
    }
  }
`;

/** Applies ADDON_PATCH once (idempotent); names the file when its source is not what the patch expects. */
export function patchAddonSource(file: string): boolean {
  if (!existsSync(file)) throw new EgmfError('the tfjs-node package lacks its addon source', { file });
  const src = readFileSync(file, 'utf8');
  if (src.includes(PATCH_MARK)) return false;
  const at = src.indexOf(PATCH_AFTER);
  if (at < 0 || !src.includes('#include <cstring>')) throw new EgmfError(`the addon source is not tfjs-node ${TFJS_NODE_VERSION}'s: LoadSavedModel's session options not found`, { file });
  const patched = src.slice(0, at + PATCH_AFTER.length) + `  ${ADDON_PATCH}` + src.slice(at + PATCH_AFTER.length);
  writeFileSync(file, patched.replace('#include <cstring>', '#include <cstdlib>\n#include <cstring>'));
  return true;
}

function requireTool(cmd: string, env: NodeJS.ProcessEnv, what: string, key: string): void {
  if (findOnPath(cmd, env) === null) throw new EgmfError(`'${cmd}' not found: the build needs ${what}`, { key });
}

function findOnPath(cmd: string, env: NodeJS.ProcessEnv): string | null {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : null;
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

/** Node's C headers: the running node's prefix (official tarballs), else /usr (Debian). */
function findNodeDir(given?: string): string {
  const candidates = given !== undefined ? [given] : [dirname(dirname(process.execPath)), '/usr', '/usr/local'];
  for (const d of candidates) if (existsSync(join(d, 'include', 'node', 'node_api.h'))) return d;
  throw new EgmfError(`Node's C headers not found (looked for include/node/node_api.h under ${candidates.join(', ')}); install a Node build that ships them (official tarballs and the nodesource nodejs package do), or pass --nodedir`, { file: join(candidates[0]!, 'include', 'node', 'node_api.h') });
}

/** node-gyp ships inside npm: next to the npm that runs us, else next to `npm` on PATH. */
function findNodeGyp(env: NodeJS.ProcessEnv): string {
  const roots: string[] = [];
  const execPath = env['npm_execpath'];
  if (execPath) roots.push(dirname(dirname(execPath)));
  const npm = findOnPath('npm', env);
  if (npm !== null) roots.push(dirname(dirname(realpathSync(npm))));
  roots.push(join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm'));
  for (const r of roots) {
    const p = join(r, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(p)) return p;
  }
  throw new EgmfError(`node-gyp not found inside npm (looked under ${roots.join(', ')}); install npm, which ships it`, { key: 'node-gyp' });
}

function readVersion(file: string): string | null {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

/** Makes `link` a symlink to `target`; returns whether it had to change. */
function ensureLink(link: string, target: string): boolean {
  let current: string | null = null;
  try {
    if (lstatSync(link).isSymbolicLink()) current = realpathSync(link);
  } catch {
    // absent
  }
  if (current !== null && existsSync(target) && current === realpathSync(target)) return false;
  mkdirSync(dirname(link), { recursive: true });
  rmSync(link, { recursive: true, force: true });
  symlinkSync(target, link);
  return true;
}

function runRaw(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string) {
  const r = spawnSync(cmd, args, { env, cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.error ? -1 : r.status, stdout: r.stdout ?? '', stderr: r.error ? r.error.message : (r.stderr ?? '') };
}

/** Runs a command; a non-zero exit is an error saying `what`, with the output's tail. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string, ctx: { file?: string; key?: string }, cwd?: string): string {
  const r = runRaw(cmd, args, env, cwd);
  if (r.status !== 0) throw new EgmfError(`${what}: ${tail(r.stderr || r.stdout)}`, ctx);
  return r.stdout;
}

function tail(s: string): string {
  const lines = s.trim().split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-6).join('\n') || '(no output)';
}

function lastJson(s: string): unknown {
  const line = s.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  try {
    return line === undefined ? null : JSON.parse(line);
  } catch {
    return null;
  }
}
