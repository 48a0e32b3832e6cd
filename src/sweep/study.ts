/**
 * The study: ask/tell bookkeeping over one sweep. Every change is an event
 * (`ask` | `report` | `tell`) applied by one function, both live and when replaying a
 * journal, so a replayed study is the live one. Finished records never change; telling the
 * identical result twice is a no-op (a re-delivered message), anything else is an error.
 *
 * Seeds: a configuration (trial `number`) runs once per seed, as consecutive seed-trials
 * `<sweepId>-t<number>-s<seedIndex>`. Samplers see configurations (value = mean over the
 * completed seeds); pruners see seed-trials. Once one seed-trial is pruned the configuration
 * is lost: its other running seeds are told to stop and its remaining seeds are never asked.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { EgmfError } from '../errors.ts';
import { createPruner, type Pruner } from './pruners/index.ts';
import { createSampler, type Sampler } from './samplers/index.ts';
import { SearchSpace, canonicalJson, type FrozenTrial, type JsonValue, type Params, type TrialState } from './space.ts';
import type { SweepSpec } from './spec.ts';
import { StorageError, storageFault, writeAll } from './storage.ts';

export type FinalState = Exclude<TrialState, 'running'>;
export type TellResult = { state: 'complete'; value: number } | { state: 'pruned'; value?: number } | { state: 'failed'; error?: string };

/** One run of one configuration with one seed. */
export interface TrialRecord extends FrozenTrial {
  readonly seedIndex: number;
  /** Training seed (null when the spec lists no seeds: the base config's seed applies). */
  readonly seed: number | null;
  readonly error?: string;
}

export type StudyEvent =
  | { type: 'study'; version: 1; sweepId: string; fingerprint: string }
  | { type: 'ask'; id: string; number: number; seedIndex: number; seed: number | null; params: Params }
  | { type: 'report'; id: string; step: number; value: number }
  | ({ type: 'tell'; id: string } & TellResult);

export interface StudyJSON {
  version: 1;
  sweepId: string;
  fingerprint: string;
  trials: TrialRecord[];
}

export interface BestConfiguration {
  number: number;
  params: Params;
  value: number;
  /** Values of the completed seed-trials, in seed order. */
  seedValues: number[];
}

export interface StudyOptions {
  /** Prefix of trial ids (default: the spec's name). */
  sweepId?: string;
  sampler?: Sampler;
  pruner?: Pruner;
}

interface MutableRecord {
  id: string;
  number: number;
  seedIndex: number;
  seed: number | null;
  params: Params;
  state: TrialState;
  value?: number;
  error?: string;
  intermediate: [number, number][];
}

/** A running seed-trial as the code training it sees it. */
export class Trial {
  constructor(private readonly study: Study, readonly id: string, readonly number: number, readonly seedIndex: number, readonly seed: number | null, readonly params: Readonly<Params>) {}
  report(step: number, value: number): void { this.study.report(this.id, step, value); }
  shouldPrune(): boolean { return this.study.shouldPrune(this.id); }
}

/** Hash of everything that decides what a sweep samples; a journal only resumes a matching spec. */
export function specFingerprint(spec: SweepSpec): string {
  const parts = { method: spec.method, metric: spec.metric, parameters: spec.parameters, seeds: spec.seeds, sampler: spec.sampler };
  return createHash('sha256').update(canonicalJson(JSON.parse(JSON.stringify(parts)) as JsonValue)).digest('hex').slice(0, 16);
}

/** The config overrides for one trial: the spec's fixed `set` plus the trial's parameters. */
export function configOverrides(spec: SweepSpec, params: Readonly<Params>): Record<string, JsonValue> {
  return { ...spec.set, ...params };
}

export class Study {
  readonly space: SearchSpace;
  readonly sweepId: string;
  readonly fingerprint: string;
  private readonly sampler: Sampler;
  private readonly pruner: Pruner;
  private readonly records: MutableRecord[] = [];
  private readonly byId = new Map<string, MutableRecord>();
  private readonly nSeeds: number;
  private journal: StudyJournal | undefined;

  constructor(readonly spec: SweepSpec, opts: StudyOptions = {}) {
    this.space = new SearchSpace(spec.parameters);
    this.sweepId = opts.sweepId ?? spec.name;
    this.fingerprint = specFingerprint(spec);
    this.sampler = opts.sampler ?? createSampler(spec);
    this.pruner = opts.pruner ?? createPruner(spec);
    this.nSeeds = Math.max(1, spec.seeds.length);
  }

  /**
   * Opens (or creates) a study persisted in a JSONL journal and replays it. A half-written
   * last line (the controller died mid-write) is cut off and returned in `dropped`.
   */
  static open(spec: SweepSpec, journalPath: string, opts: StudyOptions = {}): { study: Study; dropped?: DroppedTail } {
    const { study, dropped, empty } = Study.replayInto(spec, journalPath, opts);
    study.journal = StudyJournal.openForAppend(journalPath, dropped ? dropped.offset : undefined);
    if (empty) study.journal.append({ type: 'study', version: 1, sweepId: study.sweepId, fingerprint: study.fingerprint });
    return dropped ? { study, dropped } : { study };
  }

  /** Replays a journal without touching the file (for status and reports); the study writes nowhere. */
  static replay(spec: SweepSpec, journalPath: string, opts: StudyOptions = {}): { study: Study; dropped?: DroppedTail } {
    const { study, dropped } = Study.replayInto(spec, journalPath, opts);
    return dropped ? { study, dropped } : { study };
  }

  private static replayInto(spec: SweepSpec, journalPath: string, opts: StudyOptions): { study: Study; dropped?: DroppedTail; empty: boolean } {
    const study = new Study(spec, opts);
    const { events, dropped } = readJournal(journalPath);
    events.forEach(({ event, line }, i) => {
      if (i === 0) {
        if (event.type !== 'study') throw new EgmfError('journal does not start with a study header', { file: journalPath, line });
        if (event.sweepId !== study.sweepId || event.fingerprint !== study.fingerprint) {
          throw new EgmfError(`journal belongs to sweep '${event.sweepId}' (spec ${event.fingerprint}), not '${study.sweepId}' (spec ${study.fingerprint}); the parameters, seeds, metric or sampler changed`, { file: journalPath, line });
        }
        return;
      }
      try {
        if (study.check(event) === 'apply') study.mutate(event);
      } catch (e) {
        if (e instanceof EgmfError) {
          const key = e.context.key;
          const raw = key !== undefined && e.message.startsWith(`key '${key}': `) ? e.message.slice(`key '${key}': `.length) : e.message;
          throw new EgmfError(raw, { file: journalPath, line, ...(key !== undefined ? { key } : {}) }, { cause: e });
        }
        throw e;
      }
    });
    return { study, empty: events.length === 0, ...(dropped ? { dropped } : {}) };
  }

  static fromJSON(spec: SweepSpec, json: StudyJSON, opts: StudyOptions = {}): Study {
    const study = new Study(spec, { sweepId: json.sweepId, ...opts });
    if (json.version !== 1) throw new EgmfError(`unsupported study version ${String(json.version)}`, { key: 'version' });
    if (!Array.isArray(json.trials)) throw new EgmfError('must be a list of trials', { key: 'trials' });
    if (json.fingerprint !== study.fingerprint) throw new EgmfError('study state was made from a different spec', { key: 'fingerprint' });
    for (const t of json.trials) {
      const events: StudyEvent[] = [
        { type: 'ask', id: t.id, number: t.number, seedIndex: t.seedIndex, seed: t.seed, params: t.params as Params },
        ...t.intermediate.map(([step, value]): StudyEvent => ({ type: 'report', id: t.id, step, value })),
      ];
      if (t.state === 'complete') events.push({ type: 'tell', id: t.id, state: 'complete', value: t.value as number });
      if (t.state === 'pruned') events.push({ type: 'tell', id: t.id, state: 'pruned', ...(t.value !== undefined ? { value: t.value } : {}) });
      if (t.state === 'failed') events.push({ type: 'tell', id: t.id, state: 'failed', ...(t.error !== undefined ? { error: t.error } : {}) });
      for (const e of events) if (study.check(e) === 'apply') study.mutate(e);
    }
    return study;
  }

  toJSON(): StudyJSON {
    return { version: 1, sweepId: this.sweepId, fingerprint: this.fingerprint, trials: this.trials() };
  }

  /** The next seed-trial to run, or null when the grid is exhausted or run_cap is reached. */
  ask(): Trial | null {
    const last = this.records[this.records.length - 1];
    let event: StudyEvent;
    if (last && last.seedIndex + 1 < this.nSeeds && !this.lost(last.number)) {
      event = this.askEvent(last.number, last.seedIndex + 1, last.params);
    } else {
      if (this.spec.run_cap !== undefined && this.records.length + this.nSeeds > this.spec.run_cap) return null;
      const number = last ? last.number + 1 : 0;
      const params = this.sampler.ask(this.space, this.configurations(), { number });
      if (params === null) return null;
      const why = this.space.check(params);
      if (why !== undefined) throw new Error(`sampler '${this.sampler.name}' proposed a point outside the space: ${why}`);
      event = this.askEvent(number, 0, params);
    }
    this.commit(event);
    return this.trial(event.id);
  }

  /** A handle on an existing trial (e.g. after resuming from a journal). */
  trial(id: TrialRef): Trial {
    const r = this.get(id);
    return new Trial(this, r.id, r.number, r.seedIndex, r.seed, freeze(r.params));
  }

  report(trial: TrialRef, step: number, value: number): void {
    this.commit({ type: 'report', id: idOf(trial), step, value });
  }

  /** Records a final result; false when it repeats the identical recorded result. */
  tell(trial: TrialRef, result: TellResult): boolean {
    return this.commit({ type: 'tell', id: idOf(trial), ...result });
  }

  shouldPrune(id: TrialRef): boolean {
    const r = this.get(id);
    if (r.state !== 'running') return false;
    if (this.lost(r.number)) return true;
    return this.pruner.shouldPrune(this.frozen(r), this.trials());
  }

  /** Every seed-trial in ask order. */
  trials(): TrialRecord[] {
    return this.records.map((r) => this.frozen(r));
  }

  /** One record per configuration, as samplers see them. */
  configurations(): FrozenTrial[] {
    const groups = new Map<number, MutableRecord[]>();
    for (const r of this.records) groups.set(r.number, [...(groups.get(r.number) ?? []), r]);
    return [...groups.entries()].map(([number, rs]) => this.aggregate(number, rs));
  }

  best(): BestConfiguration | undefined {
    const sign = this.spec.metric.goal === 'minimize' ? 1 : -1;
    let best: FrozenTrial | undefined;
    for (const c of this.configurations()) {
      if (c.state !== 'complete' || c.value === undefined) continue;
      if (!best || sign * (c.value - (best.value as number)) < 0) best = c;
    }
    if (!best) return undefined;
    const seedValues = this.records.filter((r) => r.number === best.number && r.state === 'complete').map((r) => r.value as number);
    return { number: best.number, params: { ...best.params }, value: best.value as number, seedValues };
  }

  close(): void {
    this.journal?.close();
    this.journal = undefined;
  }

  private askEvent(number: number, seedIndex: number, params: Params): Extract<StudyEvent, { type: 'ask' }> {
    return { type: 'ask', id: `${this.sweepId}-t${number}-s${seedIndex}`, number, seedIndex, seed: this.spec.seeds[seedIndex] ?? null, params };
  }

  /** Write-ahead: a change reaches the journal before memory, and nothing happens if it is rejected. */
  private commit(e: StudyEvent): boolean {
    if (this.check(e) === 'noop') return false;
    this.journal?.append(e);
    this.mutate(e);
    return true;
  }

  private get(trial: TrialRef): MutableRecord {
    const id = idOf(trial);
    const r = this.byId.get(id);
    if (!r) throw new EgmfError('unknown trial', { key: id });
    return r;
  }

  private lost(number: number): boolean {
    return this.records.some((r) => r.number === number && r.state === 'pruned');
  }

  /** Throws when the event cannot apply; 'noop' for an exact repeat of something recorded. */
  private check(e: StudyEvent): 'apply' | 'noop' {
    switch (e.type) {
      case 'study':
        throw new EgmfError('a study header can only be the first journal line');
      case 'ask': {
        if (this.byId.has(e.id)) throw new EgmfError('trial was already asked', { key: e.id });
        const why = this.space.check(e.params);
        if (why !== undefined) throw new EgmfError(`asked parameters are outside the space: ${why}`, { key: e.id });
        return 'apply';
      }
      case 'report': {
        const r = this.get(e.id);
        if (!Number.isInteger(e.step) || e.step < 0) throw new EgmfError(`step must be an integer >= 0, got ${e.step}`, { key: e.id });
        if (!Number.isFinite(e.value)) throw new EgmfError(`intermediate value must be finite, got ${e.value} at step ${e.step} (tell the trial failed instead)`, { key: e.id });
        const prior = r.intermediate.find(([s]) => s === e.step);
        if (prior && prior[1] === e.value) return 'noop';
        if (prior) throw new EgmfError(`step ${e.step} was already reported with ${prior[1]}, now ${e.value}`, { key: e.id });
        if (r.state !== 'running') throw new EgmfError(`cannot report to a ${r.state} trial`, { key: e.id });
        return 'apply';
      }
      case 'tell': {
        const r = this.get(e.id);
        if (e.state === 'complete' && !Number.isFinite(e.value)) throw new EgmfError(`a complete trial needs a finite value, got ${e.value}`, { key: e.id });
        if (e.state === 'pruned' && e.value !== undefined && !Number.isFinite(e.value)) throw new EgmfError(`pruned value must be finite, got ${e.value}`, { key: e.id });
        if (r.state === 'running') return 'apply';
        const same = r.state === e.state && r.value === ('value' in e ? e.value : undefined) && r.error === ('error' in e ? e.error : undefined);
        if (same) return 'noop';
        throw new EgmfError(`trial is already ${r.state}${r.value !== undefined ? ` with value ${r.value}` : ''}; finished records cannot change`, { key: e.id });
      }
    }
  }

  private mutate(e: StudyEvent): void {
    if (e.type === 'study') return;
    if (e.type === 'ask') {
      const r: MutableRecord = { id: e.id, number: e.number, seedIndex: e.seedIndex, seed: e.seed, params: { ...e.params }, state: 'running', intermediate: [] };
      this.records.push(r);
      this.byId.set(r.id, r);
      return;
    }
    const r = this.get(e.id);
    if (e.type === 'report') {
      r.intermediate.push([e.step, e.value]);
      r.intermediate.sort((a, b) => a[0] - b[0]);
      return;
    }
    r.state = e.state;
    if (e.state === 'failed' && e.error !== undefined) r.error = e.error;
    if (e.state !== 'failed' && e.value !== undefined) r.value = e.value;
  }

  private frozen(r: MutableRecord): TrialRecord {
    const t: TrialRecord = {
      id: r.id,
      number: r.number,
      seedIndex: r.seedIndex,
      seed: r.seed,
      params: freeze(r.params),
      state: r.state,
      intermediate: Object.freeze(r.intermediate.map((p) => Object.freeze([p[0], p[1]] as const))),
      ...(r.value !== undefined ? { value: r.value } : {}),
      ...(r.error !== undefined ? { error: r.error } : {}),
    };
    return Object.freeze(t);
  }

  private aggregate(number: number, rs: MutableRecord[]): FrozenTrial {
    const lost = rs.some((r) => r.state === 'pruned');
    const pending = rs.some((r) => r.state === 'running') || (!lost && rs.length < this.nSeeds);
    const complete = rs.filter((r) => r.state === 'complete');
    let state: TrialState = 'failed';
    if (pending) state = 'running';
    else if (lost) state = 'pruned';
    else if (complete.length > 0) state = 'complete';
    const steps = new Map<number, number[]>();
    for (const r of rs) for (const [s, v] of r.intermediate) steps.set(s, [...(steps.get(s) ?? []), v]);
    const intermediate = [...steps.entries()].sort((a, b) => a[0] - b[0]).map(([s, vs]) => Object.freeze([s, mean(vs)] as const));
    const t: FrozenTrial = {
      id: `${this.sweepId}-t${number}`,
      number,
      params: freeze(rs[0].params),
      state,
      intermediate,
      ...(state === 'complete' ? { value: mean(complete.map((r) => r.value as number)) } : {}),
    };
    return Object.freeze(t);
  }
}

/** A trial id, or anything carrying one (a `Trial`, a `TrialRecord`). */
export type TrialRef = string | { readonly id: string };
const idOf = (t: TrialRef): string => (typeof t === 'string' ? t : t.id);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const freeze = (p: Params): Readonly<Params> => Object.freeze(JSON.parse(JSON.stringify(p)) as Params);

export interface DroppedTail {
  /** 1-based line number of the half-written line. */
  line: number;
  /** Byte offset where it started (the file is cut back to here). */
  offset: number;
  text: string;
}

/**
 * Reads a study journal. Complete lines must be valid events (an error names the line);
 * a last line without its newline is a write the process did not finish, so it is dropped
 * and reported rather than trusted.
 */
export function readJournal(path: string): { events: { event: StudyEvent; line: number }[]; dropped?: DroppedTail } {
  if (!existsSync(path)) return { events: [] };
  const buf = readFileSync(path);
  const lastNl = buf.lastIndexOf(0x0a);
  const body = buf.subarray(0, lastNl + 1).toString('utf8');
  const lines = body.length > 0 ? body.slice(0, -1).split('\n') : [];
  const events = lines.map((text, i) => ({ event: parseEvent(text, path, i + 1), line: i + 1 }));
  if (lastNl + 1 === buf.length) return { events };
  return { events, dropped: { line: lines.length + 1, offset: lastNl + 1, text: buf.subarray(lastNl + 1).toString('utf8') } };
}

function parseEvent(text: string, file: string, line: number): StudyEvent {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new EgmfError(`corrupt journal line: ${(e as Error).message}`, { file, line });
  }
  const o = (v ?? {}) as Record<string, unknown>;
  const bad = (what: string): never => {
    throw new EgmfError(`malformed '${String(o.type)}' event: ${what}`, { file, line });
  };
  const isNum = (x: unknown): x is number => typeof x === 'number';
  if (typeof o !== 'object' || Array.isArray(o)) bad('not an object');
  if (o.type !== 'study' && typeof o.id !== 'string') bad('id must be a string');
  switch (o.type) {
    case 'study':
      if (o.version !== 1 || typeof o.sweepId !== 'string' || typeof o.fingerprint !== 'string') bad('needs version 1, sweepId and fingerprint');
      break;
    case 'ask':
      if (!isNum(o.number) || !isNum(o.seedIndex) || !(o.seed === null || isNum(o.seed)) || typeof o.params !== 'object' || o.params === null) bad('needs number, seedIndex, seed and params');
      break;
    case 'report':
      if (!isNum(o.step) || !isNum(o.value)) bad('needs numeric step and value');
      break;
    case 'tell':
      if (!['complete', 'pruned', 'failed'].includes(o.state as string)) bad('state must be complete, pruned or failed');
      if (o.value !== undefined && !isNum(o.value)) bad('value must be a number');
      if (o.error !== undefined && typeof o.error !== 'string') bad('error must be a string');
      break;
    default:
      bad('unknown event type');
  }
  return o as unknown as StudyEvent;
}

/**
 * Append-only JSONL writer; each event is fsynced before the study applies it. A write the disk
 * refuses (full, read-only) is cut off again and fails this and every later append with a
 * {@link StorageError} naming the journal: the file stays whole lines, replayable.
 */
export class StudyJournal {
  private broken: StorageError | undefined;

  private constructor(readonly path: string, private fd: number | undefined) {}

  /** Opens for appending, first cutting the file back to `truncateTo` (a dropped tail). */
  static openForAppend(path: string, truncateTo?: number): StudyJournal {
    const fd = openSync(path, 'a');
    if (truncateTo !== undefined) {
      ftruncateSync(fd, truncateTo);
      fsyncSync(fd);
    }
    return new StudyJournal(path, fd);
  }

  append(e: StudyEvent): void {
    if (this.fd === undefined) throw new EgmfError('journal is closed', { file: this.path });
    if (this.broken) throw this.broken;
    const size = fstatSync(this.fd).size;
    try {
      writeAll(this.fd, Buffer.from(`${JSON.stringify(e)}\n`));
      fsyncSync(this.fd);
    } catch (err) {
      try {
        ftruncateSync(this.fd, size);
      } catch {
        // A read-only file took nothing in the first place.
      }
      if (storageFault(err, [this.path]) === undefined) throw err;
      this.broken = new StorageError(this.path, err as NodeJS.ErrnoException);
      throw this.broken;
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
