/**
 * MLflow's file store (`./mlruns`), written in exactly the layout MLflow's own FileStore reads
 * (checked against mlflow 3.17's store/tracking/file_store.py):
 *   <exp>/meta.yaml, <exp>/tags/<k>, <exp>/datasets/<md5(name+digest)>/meta.yaml,
 *   <exp>/<run>/{meta.yaml, metrics/<k>, params/<k>, tags/<k>, artifacts/, inputs/<md5(dataset+run)>/meta.yaml}.
 * Several processes may write different runs of one experiment at once: experiment ids are derived
 * from the name and claimed with mkdir, and meta.yaml files are replaced atomically.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MlflowError } from './errors.ts';
import { experimentIdFor, fileStoreRoot, formatValue, parseValue, readYaml, safeRelPath, walkKeys, writeAtomic, yamlText } from './file-layout.ts';
import { filterRuns, sortRuns } from './search.ts';
import {
  BaseStore, PARENT_RUN_TAG, RUN_NAME_TAG, RUN_STATUSES,
  type ArtifactEntry, type CreateRunOptions, type DatasetInput, type Experiment, type LogBatch, type MetricPoint,
  type Run, type RunInfo, type RunStatus, type SearchRunsOptions, type UpdateRunOptions,
} from './store.ts';
import { validateBatch, validateExperimentName, validateRunId, validateTag } from './validation.ts';

export { fileStoreRoot } from './file-layout.ts';

const RESERVED = new Set(['tags', 'datasets', 'traces', 'models']);
const EXPERIMENT_ID = /^[a-zA-Z0-9][\w-]{0,63}$/;
const STATUS_CODE: Record<RunStatus, number> = { RUNNING: 1, SCHEDULED: 2, FINISHED: 3, FAILED: 4, KILLED: 5 };

export class FileStore extends BaseStore {
  readonly root: string;
  readonly uri: string;
  private readonly runDirs = new Map<string, string>();

  constructor(uri = './mlruns') {
    super();
    this.root = fileStoreRoot(uri);
    this.uri = pathToFileURL(this.root).href;
  }

  /** Root, trash folder and experiment 0 "Default", created on first use (as MLflow does). */
  private ensureRoot(): void {
    if (existsSync(join(this.root, '0', 'meta.yaml'))) return;
    mkdirSync(join(this.root, '.trash'), { recursive: true });
    this.claimExperiment('0', 'Default');
  }

  private claimExperiment(id: string, name: string): boolean {
    const dir = join(this.root, id);
    try {
      mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    const now = Date.now();
    writeAtomic(join(dir, 'meta.yaml'), yamlText({
      artifact_location: pathToFileURL(dir).href, creation_time: now, experiment_id: id, last_update_time: now, lifecycle_stage: 'active', name,
    }));
    return true;
  }

  private experimentDirs(): string[] {
    const dirs: string[] = [];
    for (const parent of [this.root, join(this.root, '.trash')]) {
      if (!existsSync(parent)) continue;
      for (const e of readdirSync(parent, { withFileTypes: true })) {
        if (e.isDirectory() && EXPERIMENT_ID.test(e.name) && e.name !== 'models') dirs.push(join(parent, e.name));
      }
    }
    return dirs;
  }

  private readExperiment(dir: string): Experiment | null {
    const m = readYaml(join(dir, 'meta.yaml'));
    if (!m) return null;
    return {
      experimentId: String(m.experiment_id), name: String(m.name), artifactLocation: String(m.artifact_location),
      lifecycleStage: m.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
      creationTime: typeof m.creation_time === 'number' ? m.creation_time : undefined,
      lastUpdateTime: typeof m.last_update_time === 'number' ? m.last_update_time : undefined,
    };
  }

  async getExperimentByName(name: string): Promise<Experiment | null> {
    this.ensureRoot();
    for (const dir of this.experimentDirs()) {
      const exp = this.readExperiment(dir);
      if (exp && exp.name === name) return exp;
    }
    return null;
  }

  async createExperiment(name: string, tags: Record<string, string> = {}): Promise<string> {
    validateExperimentName(name);
    for (const [k, v] of Object.entries(tags)) validateTag(k, v);
    const existing = await this.getExperimentByName(name);
    if (existing) throw new MlflowError('RESOURCE_ALREADY_EXISTS', `Experiment '${name}' already exists${existing.lifecycleStage === 'deleted' ? ' in deleted state' : ''}.`);
    const id = experimentIdFor(name);
    if (!this.claimExperiment(id, name)) {
      // Another process claimed the folder a moment ago: let its meta.yaml land so the caller's re-read finds it.
      const meta = join(this.root, id, 'meta.yaml');
      for (let i = 0; i < 500 && !existsSync(meta); i++) await new Promise((r) => setTimeout(r, 10));
      throw new MlflowError('RESOURCE_ALREADY_EXISTS', `Experiment '${name}' already exists (created concurrently).`);
    }
    for (const [k, v] of Object.entries(tags)) {
      const p = join(this.root, id, 'tags', k);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, v);
    }
    return id;
  }

  private experimentDir(experimentId: string): string {
    this.ensureRoot();
    const dir = join(this.root, experimentId);
    if (!EXPERIMENT_ID.test(experimentId) || !existsSync(join(dir, 'meta.yaml'))) {
      throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `Could not create run under experiment with ID ${experimentId} - no such experiment exists.`);
    }
    return dir;
  }

  async createRun(opts: CreateRunOptions): Promise<Run> {
    const expDir = this.experimentDir(opts.experimentId);
    if (this.readExperiment(expDir)?.lifecycleStage !== 'active') throw new MlflowError('INVALID_STATE', `Could not create run under non-active experiment with ID ${opts.experimentId}.`);
    const tags: Record<string, string> = { ...opts.tags };
    if (opts.parentRunId !== undefined) tags[PARENT_RUN_TAG] = opts.parentRunId;
    const tagName = tags[RUN_NAME_TAG];
    if (opts.runName && tagName && opts.runName !== tagName) {
      throw new MlflowError('INVALID_PARAMETER_VALUE', `Both 'run_name' and the 'mlflow.runName' tag are given, with different values`, { key: RUN_NAME_TAG });
    }
    const runName = opts.runName || tagName || `run-${randomBytes(3).toString('hex')}`;
    tags[RUN_NAME_TAG] = runName;
    validateBatch({ metrics: [], params: [], tags: Object.entries(tags).map(([key, value]) => ({ key, value })) });
    const runId = randomUUID().replace(/-/g, '');
    const runDir = join(expDir, runId);
    mkdirSync(runDir);
    const info: RunInfo = {
      runId, experimentId: opts.experimentId, runName, status: 'RUNNING', startTime: opts.startTime ?? Date.now(), endTime: null,
      artifactUri: pathToFileURL(join(runDir, 'artifacts')).href, lifecycleStage: 'active', userId: tags['mlflow.user'] ?? 'unknown',
    };
    this.writeRunMeta(runDir, info, true);
    for (const sub of ['metrics', 'params', 'artifacts']) mkdirSync(join(runDir, sub));
    for (const [k, v] of Object.entries(tags)) this.writeKeyFile(join(runDir, 'tags'), k, v);
    this.runDirs.set(runId, runDir);
    return { info, data: { metrics: {}, params: {}, tags }, inputs: [] };
  }

  private writeRunMeta(runDir: string, i: RunInfo, created = false): void {
    const meta: Record<string, unknown> = {
      artifact_uri: i.artifactUri, end_time: i.endTime, entry_point_name: '', experiment_id: i.experimentId,
      lifecycle_stage: i.lifecycleStage, run_id: i.runId, run_name: i.runName, source_name: '', source_type: 4,
      source_version: '', start_time: i.startTime, status: STATUS_CODE[i.status], tags: [], user_id: i.userId,
    };
    if (created) meta.deleted_time = null;
    writeAtomic(join(runDir, 'meta.yaml'), yamlText(meta));
  }

  private writeKeyFile(dir: string, key: string, value: string): void {
    const p = join(dir, key);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, value);
  }

  private runDir(runId: string): string {
    validateRunId(runId);
    const cached = this.runDirs.get(runId);
    if (cached && existsSync(cached)) return cached;
    this.ensureRoot();
    for (const exp of this.experimentDirs()) {
      const d = join(exp, runId);
      if (existsSync(join(d, 'meta.yaml'))) {
        this.runDirs.set(runId, d);
        return d;
      }
    }
    throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `Run '${runId}' not found`);
  }

  private readRunInfo(runDir: string): RunInfo {
    const m = readYaml(join(runDir, 'meta.yaml'));
    if (!m) throw new MlflowError('INVALID_STATE', `Run metadata is missing or unreadable`, { file: join(runDir, 'meta.yaml') });
    const code = typeof m.status === 'number' ? m.status : 1;
    return {
      runId: String(m.run_id), experimentId: String(m.experiment_id), runName: String(m.run_name ?? ''),
      status: RUN_STATUSES[code - 1] ?? 'RUNNING', startTime: Number(m.start_time), endTime: m.end_time == null ? null : Number(m.end_time),
      artifactUri: String(m.artifact_uri), lifecycleStage: String(m.lifecycle_stage ?? 'active'), userId: String(m.user_id ?? ''),
    };
  }

  private activeRun(runId: string): { dir: string; info: RunInfo } {
    const dir = this.runDir(runId);
    const info = this.readRunInfo(dir);
    if (info.lifecycleStage !== 'active') throw new MlflowError('INVALID_STATE', `The run ${runId} must be in the 'active' state. Current state is ${info.lifecycleStage}.`);
    return { dir, info };
  }

  async updateRun(runId: string, opts: UpdateRunOptions): Promise<void> {
    const { dir, info } = this.activeRun(runId);
    if (opts.status !== undefined) info.status = opts.status;
    if (opts.endTime !== undefined) info.endTime = opts.endTime;
    if (opts.runName) {
      info.runName = opts.runName;
      this.writeKeyFile(join(dir, 'tags'), RUN_NAME_TAG, opts.runName);
    }
    this.writeRunMeta(dir, info);
  }

  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    const metrics = batch.metrics ?? [];
    const params = batch.params ?? [];
    const tags = batch.tags ?? [];
    validateBatch({ metrics, params, tags });
    const { dir, info } = this.activeRun(runId);
    // Check every param before writing anything, so a rejected batch leaves no trace.
    for (const p of params) {
      const path = join(dir, 'params', p.key);
      if (existsSync(path)) {
        const current = readFileSync(path, 'utf8');
        if (current !== p.value) {
          throw new MlflowError('INVALID_PARAMETER_VALUE', `Changing param values is not allowed. Param with key='${p.key}' was already logged with value='${current}' for run ID='${runId}'. Attempted logging new value '${p.value}'.`, { key: p.key });
        }
      }
    }
    for (const p of params) this.writeKeyFile(join(dir, 'params'), p.key, p.value);
    const byKey = new Map<string, string[]>();
    for (const m of metrics) {
      const lines = byKey.get(m.key) ?? [];
      lines.push(`${m.timestamp} ${formatValue(m.value)} ${m.step}\n`);
      byKey.set(m.key, lines);
    }
    for (const [key, lines] of byKey) {
      const p = join(dir, 'metrics', key);
      mkdirSync(dirname(p), { recursive: true });
      appendFileSync(p, lines.join(''));
    }
    for (const t of tags) {
      this.writeKeyFile(join(dir, 'tags'), t.key, t.value);
      if (t.key === RUN_NAME_TAG) this.writeRunMeta(dir, { ...info, runName: t.value });
    }
  }

  async logInputs(runId: string, datasets: DatasetInput[]): Promise<void> {
    const { dir, info } = this.activeRun(runId);
    const expDir = dirname(dir);
    for (const { dataset: d, tags } of datasets) {
      if (d.digest.length > 36) throw new MlflowError('INVALID_PARAMETER_VALUE', `dataset digest is longer than 36 characters`, { key: d.name });
      const datasetId = createHash('md5').update(d.name).update(d.digest).digest('hex');
      const dsDir = join(expDir, 'datasets', datasetId);
      if (!existsSync(join(dsDir, 'meta.yaml'))) {
        mkdirSync(dsDir, { recursive: true });
        writeAtomic(join(dsDir, 'meta.yaml'), yamlText({ digest: d.digest, name: d.name, profile: d.profile ?? null, schema: d.schema ?? null, source: d.source, source_type: d.sourceType }));
      }
      const inputId = createHash('md5').update(datasetId).update(info.runId).digest('hex');
      const inDir = join(dir, 'inputs', inputId);
      if (existsSync(join(inDir, 'meta.yaml'))) continue;
      mkdirSync(inDir, { recursive: true });
      // MLflow writes the dataset id as destination_id too (sic); match it byte for byte.
      writeAtomic(join(inDir, 'meta.yaml'), yamlText({ destination_id: datasetId, destination_type: 'RUN', source_id: datasetId, source_type: 'DATASET', tags: { ...tags } }));
    }
  }

  private readRun(dir: string): Run {
    const info = this.readRunInfo(dir);
    const metrics: Record<string, number> = {};
    for (const key of walkKeys(join(dir, 'metrics'))) {
      const pts = this.readMetricFile(join(dir, 'metrics', key), key);
      let best: MetricPoint | undefined;
      for (const p of pts) {
        if (!best || p.step > best.step || (p.step === best.step && (p.timestamp > best.timestamp || (p.timestamp === best.timestamp && p.value > best.value)))) best = p;
      }
      if (best) metrics[key] = best.value;
    }
    const read = (sub: string) => Object.fromEntries(walkKeys(join(dir, sub)).map((k) => [k, readFileSync(join(dir, sub, k), 'utf8')]));
    const tags = read('tags');
    if (!info.runName && tags[RUN_NAME_TAG]) info.runName = tags[RUN_NAME_TAG];
    return { info, data: { metrics, params: read('params'), tags }, inputs: this.readInputs(dir) };
  }

  private readInputs(dir: string): DatasetInput[] {
    const inputsDir = join(dir, 'inputs');
    if (!existsSync(inputsDir)) return [];
    const out: DatasetInput[] = [];
    for (const id of readdirSync(inputsDir)) {
      const m = readYaml(join(inputsDir, id, 'meta.yaml'));
      if (!m || m.source_type !== 'DATASET') continue;
      const d = readYaml(join(dirname(dir), 'datasets', String(m.source_id), 'meta.yaml'));
      if (!d) continue;
      out.push({
        dataset: {
          name: String(d.name), digest: String(d.digest), sourceType: String(d.source_type), source: String(d.source),
          ...(d.schema != null ? { schema: String(d.schema) } : {}), ...(d.profile != null ? { profile: String(d.profile) } : {}),
        },
        tags: Object.fromEntries(Object.entries((m.tags as Record<string, unknown>) ?? {}).map(([k, v]) => [k, String(v)])),
      });
    }
    return out;
  }

  private readMetricFile(path: string, key: string): MetricPoint[] {
    const text = readFileSync(path, 'utf8');
    return text.split('\n').filter((l) => l.trim() !== '').map((line, i) => {
      const parts = line.trim().split(' ');
      if (parts.length !== 2 && parts.length !== 3 && parts.length !== 5) {
        throw new MlflowError('INTERNAL_ERROR', `malformed metric line: expected 2, 3 or 5 fields, got ${parts.length}`, { file: path, line: i + 1, key });
      }
      return { key, timestamp: Number(parts[0]), value: parseValue(parts[1]!), step: parts.length >= 3 ? Number(parts[2]) : 0 };
    });
  }

  async getRun(runId: string): Promise<Run> {
    return this.readRun(this.runDir(runId));
  }

  async getMetricHistory(runId: string, key: string): Promise<MetricPoint[]> {
    const path = join(this.runDir(runId), 'metrics', key);
    return existsSync(path) ? this.readMetricFile(path, key) : [];
  }

  async searchRuns(opts: SearchRunsOptions): Promise<Run[]> {
    this.ensureRoot();
    const runs: Run[] = [];
    for (const expId of opts.experimentIds) {
      const expDir = join(this.root, expId);
      if (!EXPERIMENT_ID.test(expId) || !existsSync(expDir)) continue;
      for (const e of readdirSync(expDir, { withFileTypes: true })) {
        if (!e.isDirectory() || RESERVED.has(e.name) || !existsSync(join(expDir, e.name, 'meta.yaml'))) continue;
        const run = this.readRun(join(expDir, e.name));
        if (run.info.lifecycleStage === 'active') runs.push(run);
      }
    }
    return sortRuns(filterRuns(runs, opts.filter), opts.orderBy).slice(0, opts.maxResults ?? 1000);
  }

  private artifactDir(runId: string): string {
    const { artifactUri } = this.readRunInfo(this.runDir(runId));
    return artifactUri.startsWith('file:') ? fileURLToPath(artifactUri) : join(this.runDir(runId), 'artifacts');
  }

  override async logArtifact(runId: string, localFile: string, artifactPath?: string): Promise<void> {
    if (!existsSync(localFile) || !statSync(localFile).isFile()) throw new MlflowError('INVALID_PARAMETER_VALUE', `artifact to log is not a file`, { file: localFile });
    const rel = safeRelPath([artifactPath ?? '', basename(localFile)].filter(Boolean).join('/'));
    const dest = join(this.artifactDir(runId), rel);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(localFile, dest);
  }

  async logArtifactBytes(runId: string, relPath: string, bytes: Uint8Array): Promise<void> {
    const dest = join(this.artifactDir(runId), safeRelPath(relPath));
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, bytes);
  }

  async listArtifacts(runId: string, path = ''): Promise<ArtifactEntry[]> {
    const rel = safeRelPath(path);
    const dir = join(this.artifactDir(runId), rel);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
    return readdirSync(dir, { withFileTypes: true }).map((e) => {
      const p = rel ? `${rel}/${e.name}` : e.name;
      return e.isDirectory() ? { path: p, isDir: true } : { path: p, isDir: false, fileSize: statSync(join(dir, e.name)).size };
    }).sort((a, b) => a.path.localeCompare(b.path));
  }

  async downloadArtifact(runId: string, relPath: string): Promise<Uint8Array> {
    const p = join(this.artifactDir(runId), safeRelPath(relPath));
    if (!existsSync(p) || !statSync(p).isFile()) throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `artifact not found`, { key: relPath });
    return new Uint8Array(readFileSync(p));
  }
}
