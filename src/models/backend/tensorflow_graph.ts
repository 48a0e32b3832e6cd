/**
 * Whole training steps as one TensorFlow graph on the tensorflow (tfjs-node) backend.
 *
 * Eagerly, each of a tiny-EGMF step's ~3,800 tfjs kernels is one TensorFlow eager op, and
 * TensorFlow's eager dispatch costs ~15–28 µs an op here: most of the step. Instead, a
 * region (`GraphCapture.run(key, fn)`: the forward and backward pass of one batch) is
 * traced once: it runs eagerly while every op tfjs-node hands TensorFlow is recorded with
 * its attributes, inputs and output shapes. The record becomes a GraphDef, loaded as a
 * SavedModel through tfjs-node's own binding: each tensor from outside the region
 * (variables, batch data) is a Placeholder; each small constant made inside it (the int32
 * shapes, axes and permutations tfjs passes as tensors, and float scalars) is a Const; each
 * tensor still alive when the region ends is an output. Later runs *replay*: the JavaScript
 * runs as before, but each op is only checked against the record and answered with a
 * placeholder id of the recorded shape; when the region ends, one session run computes
 * everything and the ids still alive are bound to its outputs.
 *
 * A gradient region (`GraphCapture.variableGrads`, the trainer's step) goes further: once a
 * full replay has confirmed a trace's backward pass (its ops follow from the forward ops; the
 * host tensors it makes, tfjs's ones and zeros fills, must come out as in the trace), later
 * replays stop after the forward pass, drop the tape, and take the gradients from the
 * session run: the backward pass's JavaScript (two thirds of the kernels) no longer runs.
 *
 * Nothing is assumed about the code inside a region. Each key keeps several traces (one per
 * shape signature, e.g. per padded text length), and a replay follows those that match it so
 * far. An op that matches none (another op, attributes, an input's origin, shape or dtype,
 * or a baked constant's value) makes the replay fall back: the ops seen so far run eagerly
 * from the record, the rest of the region runs eagerly, and the whole region is recorded as
 * a new trace. A float scalar whose value changes between runs is fed instead of baked from
 * then on. A host read of a tensor computed inside the region (`dataSync`) cannot be
 * replayed: such a key runs eagerly, as do keys whose replays fail for other reasons twice.
 * The graph runs the recorded ops unoptimised (no grappler: see `withSessionThreads`), so
 * results are eager execution's up to the last bits of a matmul whose kernel TensorFlow
 * picks differently in a graph (losses of the tiny EGMF agree to ~1e-7). Deletions of the
 * region's inputs wait for its end, so a fallback can always re-run the record.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgmfError } from '../../errors.ts';
import { type AttrValue, type NodeDef, savedModelBytes, sessionConfigHex } from './graphdef.ts';
import { tensorflowThreads } from './select.ts';
import { tensorflowDtype } from './tensorflow_kernels.ts';

/** The GraphDef version of TensorFlow 2.21 (`TF_GRAPH_DEF_VERSION`), the release the addon is built against. */
const GRAPH_DEF_VERSION = 2474;
/** Ids at and above this are placeholders or deferred constants, never TensorFlow's own (which count up from 0). */
const VIRTUAL_BASE = 1 << 30;
/** int32 tensors made inside a region with at most this many elements are shapes, axes or permutations: baked, and their values must match. */
const SHAPE_LIKE_MAX = 32;
/** Replays of a key that fail for reasons other than a new shape this many times make it run eagerly. */
const MAX_FAILURES = 2;
/**
 * A key runs eagerly once it has fallen back this many times while its replays did not
 * outnumber its fallbacks three to one: a fallback (eager step, new graph, its first run)
 * costs about what three replays save, so a key whose shapes keep changing is better eager.
 */
const MIN_MISSES = 16;
const REPLAYS_PER_MISS = 3;
/**
 * The inputs of each op that determine its output's shape (negative: from the end). An
 * int32 constant made in the region and used there is baked and must match; one used only
 * elsewhere (indices, labels, lengths) is data, fed like any input. Ops not listed count all
 * their inputs as shape-determining (a new value then costs a trace, never a wrong shape).
 */
const VALUE_ONLY = [
  'Add', 'AddV2', 'Sub', 'Mul', 'RealDiv', 'Div', 'DivNoNan', 'FloorDiv', 'FloorMod', 'Mod', 'Maximum', 'Minimum', 'Pow', 'SquaredDifference',
  'Equal', 'NotEqual', 'Less', 'LessEqual', 'Greater', 'GreaterEqual', 'LogicalAnd', 'LogicalOr', 'LogicalNot', 'Select', 'SelectV2',
  'Cast', 'Neg', 'Abs', 'Sign', 'Square', 'Sqrt', 'Rsqrt', 'Reciprocal', 'Exp', 'Log', 'Log1p', 'Floor', 'Ceil', 'Round',
  'Sigmoid', 'Tanh', 'Relu', 'Elu', 'Softplus', 'Softmax', 'LogSoftmax', 'MatMul', 'BatchMatMulV2', '_FusedMatMul',
  'ZerosLike', 'OnesLike', 'Identity', 'ClipByValue',
];
const SHAPE_INPUTS: Record<string, number[]> = {
  ...Object.fromEntries(VALUE_ONLY.map((op) => [op, []])),
  Reshape: [1], Transpose: [1], ExpandDims: [1], Squeeze: [], Slice: [1, 2], StridedSlice: [1, 2, 3], PadV2: [1], Pad: [1],
  ConcatV2: [-1], SplitV: [1, 2], Split: [0], Tile: [1], BroadcastTo: [1], Fill: [0], OneHot: [1], GatherV2: [2],
  Sum: [1], Mean: [1], Max: [1], Min: [1], Prod: [1], All: [1], Any: [1], ArgMax: [1], ArgMin: [1], Cumsum: [1], TopKV2: [1],
  UnsortedSegmentSum: [2], Range: [0, 1, 2], Pack: [], Unpack: [],
};
/** Traces kept per key (the least recently used goes): each holds a session, ~50 MB for the tiny EGMF. */
const MAX_TRACES = 24;
/**
 * Type attributes tfjs-node leaves to eager execution's inference (from the dtype of the
 * input named), which a GraphDef must state.
 */
const INFERRED_TYPES: Record<string, [string, number][]> = {
  ExpandDims: [['T', 0], ['Tdim', 1]],
};

interface OpAttr {
  name: string;
  type: number;
  value: unknown;
}

interface Meta {
  id: number;
  shape: number[];
  dtype: number;
}

interface Binding {
  createTensor(shape: number[], dtype: number, values: unknown): number;
  deleteTensor(id: number): void;
  tensorDataSync(id: number): unknown;
  executeOp(op: string, attrs: OpAttr[], inputs: number[], numOutputs: number): Meta[];
  loadSavedModel(dir: string, tags: string): number;
  deleteSavedModel(id: number): void;
  runSavedModel(id: number, inputs: number[], inputNames: string, outputNames: string): Meta[];
  TF_ATTR_STRING: number;
  TF_ATTR_INT: number;
  TF_ATTR_FLOAT: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_TYPE: number;
  TF_ATTR_SHAPE: number;
  TF_INT32: number;
  TF_FLOAT: number;
  TF_BOOL: number;
}

interface NodeBackend {
  binding: Binding;
  isUsingGpuDevice?: boolean;
  getInputTensorIds(tensors: tf.Tensor[]): number[];
}

/** An op input: an external slot (≥ 0) or an earlier op's output (−1 − its flat output index). */
type Ref = number;

interface TracedOp {
  op: string;
  /** As tfjs-node passed them (what a replay must match). */
  attrs: OpAttr[];
  /** Types eager execution inferred, for the graph. */
  inferred: [string, number][];
  inputs: Ref[];
  outputs: { shape: number[]; dtype: number }[];
  /** Flat index of this op's first output. */
  first: number;
}

interface External {
  shape: number[];
  dtype: number;
  /** A small constant made inside the region (its values in the trace), else null. */
  values: Int32Array | Float32Array | null;
  /** Used where it determines a shape (then baked, and a replay must bring the same values). */
  shapeUse: boolean;
}

interface Trace {
  ops: TracedOp[];
  externals: External[];
  /** Per slot: a Const in the graph (a replay must bring the same values). */
  baked: boolean[];
  /** Slots fed at each run, in order; the others are baked constants. */
  fed: number[];
  /** Flat output indices fetched at the end, ascending. */
  fetch: number[];
  fetchSet: Set<number>;
  /** Shape of each flat output (as many as the ops have outputs). */
  shapes: number[][];
  model: number;
  inputNames: string;
  outputNames: string;
  /** A gradient region (`variableGrads`): its forward pass and what its backward pass needs. */
  grad: GradTrace | null;
}

/**
 * What lets a replay of a gradient region skip the backward pass's JavaScript: once the
 * forward ops have matched, the backward ops are fixed (they follow from the forward ops
 * and the gradient functions), except for the tensors the backward pass makes on the host
 * (tfjs's ones and zeros fills, the ±1 matrices of custom gradients). Those are kept from
 * the trace and must come out the same in the first full replay, else the trace always
 * runs the backward pass in JavaScript.
 */
interface GradTrace {
  /** Ops of the forward pass (those before are forward, the rest backward). */
  forwardOps: number;
  /** Flat outputs made by the forward ops. */
  forwardOutputs: number;
  /**
   * Each gradient: the variable's index in `variableGrads`' list, the flat output holding its
   * gradient, and the external slot the variable's tensor entered the trace through. A replay
   * names the gradients after its own list's variables, and skips its backward pass only
   * when each of them entered through the same slot: tfjs names variables per process, so
   * another model's variables (a second run in one process) have other names.
   */
  grads: [number, number, number][];
  /** Length of the variable list. */
  vars: number;
  /** External slots first used by a backward op, with the values they had in the trace. */
  backward: Map<number, HostValues>;
  /** 'unknown' until a full replay confirms `backward`; then 'ready' (or 'never'). */
  skip: 'unknown' | 'ready' | 'never';
  /** TensorFlow tensors holding the fed backward slots' values, while 'ready'. */
  ids: Map<number, number>;
}

type HostValues = Int32Array | Float32Array | Uint8Array;

interface KeyState {
  traces: Trace[];
  failures: number;
  eager: boolean;
  /** External slots (float scalars) seen to change between runs: fed, not baked. */
  feed: Set<number>;
  /** This key's share of `GraphCapture.stats` (its replays and fallbacks decide when it goes eager). */
  stats: GraphStats;
}

/** A constant made inside a replayed region, created in TensorFlow only if something needs it. */
interface Deferred {
  shape: number[];
  dtype: number;
  values: Int32Array | Float32Array;
}

const noStats = (): GraphStats => ({ traces: 0, replays: 0, fallbacks: 0, eager: 0, nodes: 0, runMs: 0, lastFallback: null, forwardOnly: 0 });

export interface GraphStats {
  /** Regions recorded as a trace (run eagerly, then turned into a graph). */
  traces: number;
  /** Regions computed by one graph run. */
  replays: number;
  /** Replays that fell back to eager execution part-way (each also records a trace). */
  fallbacks: number;
  /** Regions run eagerly because their key cannot be captured. */
  eager: number;
  /** Ops in the graph of the latest trace. */
  nodes: number;
  /** Milliseconds inside TensorFlow's session runs, all replays together. */
  runMs: number;
  /** Why the latest fallback or eager key happened. */
  lastFallback: string | null;
  /** Replays of gradient regions that ran only the forward pass in JavaScript. */
  forwardOnly: number;
}

/** Thrown out of the forward pass of a gradient region whose backward pass the graph computes alone. */
class SkipBackward {
  constructor(readonly trace: Trace, readonly loss: tf.Tensor) {}
}

type Mode = 'idle' | 'trace' | 'replay';

export class GraphCapture {
  /** Counts of every region together (`keyStats` gives one key's). */
  readonly stats: GraphStats = noStats();
  private readonly real: Binding;
  private readonly keys = new Map<string, KeyState>();
  private mode: Mode = 'idle';
  /** Placeholder or deferred id → TensorFlow id, once computed or created. */
  private readonly resolved = new Map<number, number>();
  /** Deferred constants not yet created in TensorFlow. */
  private readonly deferredConsts = new Map<number, Deferred>();
  private nextVirtual = VIRTUAL_BASE;
  /** Shape and dtype of each id tfjs-node handed TensorFlow during a region. */
  private metaOf = new Map<number, { shape: number[]; dtype: number }>();
  /** Values of the small constants made during a region, by id. */
  private madeHere = new Map<number, Int32Array | Float32Array>();
  private key: KeyState | null = null;
  /** Why the region being recorded cannot become a trace. */
  private failure: string | null = null;
  /** The current region read a tensor it computed (no trace can replay it). */
  private readBack = false;
  /** Identifies the current gradient region's forward pass (`variableGrads`), else null. */
  private gradToken: object | null = null;
  /** The variables of the current gradient region, in `variableGrads`' order. */
  private gradVars: tf.Variable[] = [];
  /** Op count when its forward pass ended (−1 while it runs, and outside gradient regions). */
  private forwardAt = -1;
  /** Values of the tensors made on the host during a gradient region's backward pass, by id. */
  private backwardMade = new Map<number, HostValues>();

  // Trace state (mode 'trace').
  private ops: TracedOp[] = [];
  private externals: External[] = [];
  private extSlot = new Map<number, number>();
  private producedBy = new Map<number, number>();
  private outDtypes: number[] = [];
  private live = new Set<number>();
  /** Op count at which each external slot was first used. */
  private firstUse: number[] = [];

  // Replay state (mode 'replay').
  private cands: Trace[] = [];
  private at = 0;
  private base = 0;
  private span = 0;
  private extIds: number[] = [];
  private dead = new Set<number>();
  private deferredDeletes: number[] = [];
  /** A baked float scalar differed (feed it from now on). */
  private varying: number[] = [];

  private constructor(private readonly backend: NodeBackend) {
    this.real = backend.binding;
    // The native binding's own properties are read-only: the proxy defines its own.
    backend.binding = Object.create(this.real, {
      createTensor: { value: (shape: number[], dtype: number, values: unknown) => this.createTensor(shape, dtype, values) },
      deleteTensor: { value: (id: number) => this.deleteTensor(id) },
      tensorDataSync: { value: (id: number) => this.tensorDataSync(id) },
      executeOp: { value: (op: string, attrs: OpAttr[], inputs: number[], n: number) => this.executeOp(op, attrs, inputs, n) },
      runSavedModel: { value: (id: number, inputs: number[], i: string, o: string) => this.real.runSavedModel(id, inputs.map((x) => this.realId(x)), i, o) },
    }) as Binding;
    const getIds = backend.getInputTensorIds.bind(backend);
    backend.getInputTensorIds = (tensors: tf.Tensor[]) => {
      const ids = getIds(tensors);
      if (this.mode !== 'idle') {
        for (let i = 0; i < ids.length; i++) {
          const id = ids[i]! >= VIRTUAL_BASE ? (this.resolved.get(ids[i]!) ?? ids[i]!) : ids[i]!;
          if (!this.metaOf.has(id)) this.metaOf.set(id, { shape: tensors[i]!.shape.slice(), dtype: tensorflowDtype(this.real, tensors[i]!.dtype) });
        }
      }
      return ids;
    };
  }

  private static current: GraphCapture | null = null;

  /** The capture of the current tensorflow backend (null on other backends, and on GPUs, where a session's host outputs would copy every step). */
  static forCurrentBackend(): GraphCapture | null {
    if (tf.getBackend() !== 'tensorflow') return null;
    const backend = tf.backend() as unknown as NodeBackend;
    if (backend.isUsingGpuDevice === true) return null;
    if (GraphCapture.current === null || GraphCapture.current.backend !== backend) GraphCapture.current = new GraphCapture(backend);
    return GraphCapture.current;
  }

  /**
   * Runs `fn` as a captured region named `key`: recorded the first time (and for each new
   * shape signature), one graph run afterwards. `fn` behaves exactly as uncaptured; it
   * should not read tensors it computes (that makes the key run eagerly).
   */
  run<T>(key: string, fn: () => T): T {
    return this.region(key, fn, null);
  }

  /**
   * `tf.variableGrads(f, varList)` as a captured region named `key`. Once a full replay has
   * confirmed a trace's backward pass (see GradTrace), replays matching it run only the
   * forward pass `f` in JavaScript: the graph computes the gradients, and the tape's saved
   * tensors are dropped unused.
   */
  variableGrads(key: string, f: () => tf.Scalar, varList: tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
    const token = {};
    const forward = () => {
      const y = f();
      this.forwardDone(token, y);
      return y;
    };
    return this.region(key, () => tf.variableGrads(forward, varList), token, varList);
  }

  private region<T>(key: string, fn: () => T, gradToken: object | null, gradVars: tf.Variable[] = []): T {
    if (this.mode !== 'idle') return fn();
    let st = this.keys.get(key);
    if (st === undefined) this.keys.set(key, (st = { traces: [], failures: 0, eager: false, feed: new Set(), stats: noStats() }));
    if (st.eager) {
      this.stats.eager++;
      st.stats.eager++;
      return fn();
    }
    this.key = st;
    this.failure = null;
    this.readBack = false;
    this.gradToken = gradToken;
    this.gradVars = gradVars;
    this.forwardAt = -1;
    try {
      return st.traces.length === 0 ? this.traceRegion(fn) : this.replayRegion(fn);
    } finally {
      this.mode = 'idle';
      for (const id of this.deferredDeletes) this.deleteTensor(id);
      this.deferredDeletes = [];
      this.metaOf = new Map();
      this.madeHere = new Map();
      this.cands = [];
      this.key = null;
      this.gradToken = null;
      this.gradVars = [];
      this.forwardAt = -1;
      this.backwardMade = new Map();
    }
  }

  /** The end of a gradient region's forward pass: skips the backward pass where a confirmed trace computes it. */
  private forwardDone(token: object, y: tf.Tensor): void {
    if (token !== this.gradToken || this.forwardAt >= 0) return;
    if (this.mode === 'trace') this.forwardAt = this.ops.length;
    if (this.mode !== 'replay') return;
    this.forwardAt = this.at;
    const t = this.cands.find((c) => c.grad !== null && c.grad.skip === 'ready' && c.grad.forwardOps === this.at && this.variablesBound(c.grad));
    if (t !== undefined) throw new SkipBackward(t, tf.keep(y));
  }

  /** Whether this replay's variables entered through the slots their gradients were traced for. */
  private variablesBound(g: GradTrace): boolean {
    if (this.gradVars.length !== g.vars) return false;
    const ids = this.backend.getInputTensorIds(this.gradVars);
    return g.grads.every(([v, , slot]) => {
      const bound = this.extIds[slot];
      return bound !== undefined && bound >= 0 && this.realId(bound) === ids[v];
    });
  }

  /** The counts of the regions named `key` (null: none ran yet). */
  keyStats(key: string): Readonly<GraphStats> | null {
    return this.keys.get(key)?.stats ?? null;
  }

  private count(field: 'traces' | 'replays' | 'forwardOnly' | 'fallbacks'): void {
    this.stats[field]++;
    if (this.key !== null) this.key.stats[field]++;
  }

  private addRunMs(ms: number): void {
    this.stats.runMs += ms;
    if (this.key !== null) this.key.stats.runMs += ms;
  }

  private noteFallback(why: string): void {
    this.stats.lastFallback = why;
    if (this.key !== null) this.key.stats.lastFallback = why;
  }

  /** Drops every trace and its session. */
  reset(): void {
    for (const st of this.keys.values()) for (const t of st.traces) this.dropTrace(t);
    this.keys.clear();
  }

  /** Frees a trace's session and the tensors it holds. */
  private dropTrace(t: Trace): void {
    this.real.deleteSavedModel(t.model);
    for (const id of t.grad?.ids.values() ?? []) this.real.deleteTensor(id);
    t.grad?.ids.clear();
  }

  // ---- tracing ---------------------------------------------------------------------------

  private startTrace(): void {
    this.mode = 'trace';
    this.ops = [];
    this.externals = [];
    this.extSlot = new Map();
    this.producedBy = new Map();
    this.outDtypes = [];
    this.live = new Set();
    this.firstUse = [];
  }

  private traceRegion<T>(fn: () => T): T {
    this.startTrace();
    const out = fn();
    this.endTrace(out);
    return out;
  }

  /** Turns the finished recording into a trace of the current key (or marks the key eager). */
  private endTrace(out: unknown): void {
    const st = this.key!;
    this.mode = 'idle';
    this.count('traces');
    if (this.readBack || this.failure !== null) {
      st.eager = true;
      this.noteFallback(this.failure ?? 'the region reads a tensor it computes');
    }
    if (st.eager) {
      for (const t of st.traces) this.dropTrace(t);
      st.traces = [];
      return;
    }
    try {
      const trace = this.buildTrace(st.feed, out);
      st.traces.unshift(trace);
      while (st.traces.length > MAX_TRACES) this.dropTrace(st.traces.pop()!);
      this.stats.nodes = st.stats.nodes = trace.ops.length;
    } catch (e) {
      st.eager = true;
      this.noteFallback(`could not turn the trace into a graph: ${(e as Error).message}`);
    }
  }

  private buildTrace(feed: Set<number>, out: unknown): Trace {
    const fetch: number[] = [];
    for (const id of this.live) fetch.push(this.producedBy.get(id)!);
    fetch.sort((a, b) => a - b);
    const baked = (s: number) => {
      const e = this.externals[s]!;
      return e.values !== null && (e.dtype === this.real.TF_INT32 ? e.shapeUse : !feed.has(s));
    };
    const nodes: NodeDef[] = this.externals.map((e, s): NodeDef => baked(s)
      ? { name: `x${s}`, op: 'Const', inputs: [], attrs: [['dtype', { kind: 'type', value: e.dtype }], ['value', { kind: 'tensor', dtype: e.dtype, shape: e.shape, values: e.values!, int32: e.dtype === this.real.TF_INT32 }]] }
      : { name: `x${s}`, op: 'Placeholder', inputs: [], attrs: [['dtype', { kind: 'type', value: e.dtype }], ['shape', { kind: 'shape', value: e.shape }]] });
    const where: [number, number][] = [];
    this.ops.forEach((o, k) => o.outputs.forEach((_, m) => where.push([k, m])));
    const name = (flat: number) => `n${where[flat]![0]}:${where[flat]![1]}`;
    const shapes = this.ops.flatMap((o) => o.outputs.map((x) => x.shape));
    const rank = (r: Ref) => (r >= 0 ? this.externals[r]!.shape : shapes[-1 - r]!).length;
    this.ops.forEach((o, k) => {
      let { op, attrs } = o;
      if (op === 'BatchMatMulV2' && o.inputs.every((r) => rank(r) === 2)) {
        // tfjs-node runs every product as BatchMatMulV2; TensorFlow's MatMul kernel does a 2-D one in less time.
        op = 'MatMul';
        attrs = attrs.map((a) => (a.name === 'adj_x' ? { ...a, name: 'transpose_a' } : a.name === 'adj_y' ? { ...a, name: 'transpose_b' } : a));
      }
      nodes.push({
        name: `n${k}`, op,
        inputs: o.inputs.map((r) => (r >= 0 ? `x${r}` : name(-1 - r))),
        attrs: [...attrs.map((a): [string, AttrValue] => [a.name, this.attrValue(a, op)]), ...o.inferred.map(([n, t]): [string, AttrValue] => [n, { kind: 'type', value: t }])],
      });
    });
    const bytes = savedModelBytes(nodes, GRAPH_DEF_VERSION);
    const dir = mkdtempSync(join(tmpdir(), 'egmf-graph-'));
    let model: number;
    try {
      writeFileSync(join(dir, 'saved_model.pb'), bytes);
      model = withSessionThreads(() => this.real.loadSavedModel(dir, 'serve'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const fed = this.externals.flatMap((_, s) => (baked(s) ? [] : [s]));
    const fetchSet = new Set(fetch);
    return {
      ops: this.ops, externals: this.externals, baked: this.externals.map((_, s) => baked(s)), fed, fetch, fetchSet,
      shapes, model,
      inputNames: fed.map((s) => `x${s}:0`).join(','),
      outputNames: fetch.map(name).join(','),
      grad: this.gradTrace(out, fetchSet),
    };
  }

  /** What a gradient region's trace needs to skip its backward pass (null: not a gradient region). */
  private gradTrace(out: unknown, fetch: Set<number>): GradTrace | null {
    if (this.gradToken === null || this.forwardAt < 0) return null;
    const forwardOps = this.forwardAt;
    const g: GradTrace = {
      forwardOps, forwardOutputs: forwardOps < this.ops.length ? this.ops[forwardOps]!.first : this.outDtypes.length,
      grads: [], vars: this.gradVars.length, backward: new Map(), skip: 'unknown', ids: new Map(),
    };
    const grads = Object.entries((out as { grads: tf.NamedTensorMap }).grads);
    const ids = this.backend.getInputTensorIds(grads.map(([, t]) => t));
    const varIndex = new Map(this.gradVars.map((v, i) => [v.name, i]));
    const varIds = this.backend.getInputTensorIds(this.gradVars);
    const seen = new Set<number>();
    grads.forEach(([name], i) => {
      const flat = this.producedBy.get(ids[i]!);
      const v = varIndex.get(name);
      const slot = v === undefined ? undefined : this.extSlot.get(varIds[v]!);
      // A gradient the backward ops do not make (or one shared by two variables, or of a
      // variable that did not enter as an input of its own) cannot be given out alone.
      if (flat === undefined || flat < g.forwardOutputs || seen.has(flat) || !fetch.has(flat) || v === undefined || slot === undefined) g.skip = 'never';
      else g.grads.push([v, flat, slot]);
      if (flat !== undefined) seen.add(flat);
    });
    const idOf = new Map([...this.extSlot].map(([id, slot]) => [slot, id]));
    this.externals.forEach((e, s) => {
      if (this.firstUse[s]! < forwardOps) return;
      // A tensor from before the region that only the backward pass uses: not one a replay can know.
      const values = e.values ?? this.backwardMade.get(idOf.get(s)!);
      if (values === undefined) g.skip = 'never';
      else g.backward.set(s, values);
    });
    return g;
  }

  private attrValue(a: OpAttr, op: string): AttrValue {
    const b = this.real;
    const v = a.value;
    switch (a.type) {
      case b.TF_ATTR_STRING: return { kind: 'string', value: String(v) };
      case b.TF_ATTR_INT: return { kind: 'int', value: v as number | number[] };
      case b.TF_ATTR_FLOAT: return { kind: 'float', value: v as number | number[] };
      case b.TF_ATTR_BOOL: return { kind: 'bool', value: v as boolean | boolean[] };
      case b.TF_ATTR_TYPE: return { kind: 'type', value: v as number };
      case b.TF_ATTR_SHAPE: return { kind: 'shape', value: v as number[] };
      default: throw new EgmfError(`attribute '${a.name}' of ${op} has a type (${a.type}) a graph cannot hold`, { key: a.name });
    }
  }

  private recordOp(op: string, attrs: OpAttr[], ids: number[], out: Meta[]): void {
    if (this.failure !== null) return;
    const refs: Ref[] = [];
    const dtypes: number[] = [];
    const shapeAt = SHAPE_INPUTS[op];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const flat = this.producedBy.get(id);
      if (flat !== undefined) {
        refs.push(-1 - flat);
        dtypes.push(this.outDtypes[flat]!);
        continue;
      }
      let slot = this.extSlot.get(id);
      if (slot === undefined) {
        const meta = this.metaOf.get(id);
        if (meta === undefined || meta.dtype < 0) {
          this.failure = `an input of ${op} (tensor ${id}) has no known shape or a dtype a graph does not take`;
          return;
        }
        slot = this.externals.length;
        this.externals.push({ shape: meta.shape, dtype: meta.dtype, values: this.madeHere.get(id) ?? null, shapeUse: false });
        this.extSlot.set(id, slot);
        this.firstUse.push(this.ops.length);
      }
      if (shapeAt === undefined || shapeAt.some((k) => (k < 0 ? ids.length + k : k) === i)) this.externals[slot]!.shapeUse = true;
      refs.push(slot);
      dtypes.push(this.externals[slot]!.dtype);
    }
    const inferred = (INFERRED_TYPES[op] ?? []).filter(([n]) => !attrs.some((a) => a.name === n)).map(([n, i]): [string, number] => [n, dtypes[i]!]);
    const first = this.outDtypes.length;
    out.forEach((m, j) => {
      this.producedBy.set(m.id, first + j);
      this.outDtypes.push(m.dtype);
      this.live.add(m.id);
    });
    this.ops.push({ op, attrs, inferred, inputs: refs, outputs: out.map((m) => ({ shape: m.shape.slice(), dtype: m.dtype })), first });
  }

  // ---- replaying -------------------------------------------------------------------------

  private replayRegion<T>(fn: () => T): T {
    const st = this.key!;
    this.mode = 'replay';
    this.cands = st.traces.slice();
    this.at = 0;
    this.span = Math.max(...this.cands.map((t) => t.shapes.length));
    this.base = this.nextVirtual;
    this.nextVirtual += this.span;
    this.extIds = new Array<number>(Math.max(...this.cands.map((t) => t.externals.length))).fill(-1);
    this.dead = new Set();
    this.varying = [];
    let out: T;
    try {
      out = fn();
    } catch (e) {
      if (e instanceof SkipBackward && this.mode === 'replay') return this.finishForward(e) as T;
      if (this.mode === 'replay') this.fallBack('the region threw');
      throw e;
    }
    if (this.mode === 'replay') this.finishReplay();
    // fn or finishReplay may have fallen back to recording.
    if ((this.mode as Mode) === 'trace') this.endTrace(out);
    return out;
  }

  private finishReplay(): void {
    const t = this.cands.find((c) => c.ops.length === this.at);
    if (t === undefined) return this.fallBack(`the region ran ${this.at} ops, no trace of its key as few`);
    for (let f = 0; f < t.shapes.length; f++) {
      if (!this.dead.has(this.base + f) && !t.fetchSet.has(f)) return this.fallBack(`a tensor its trace discarded (output ${f}) is still alive`, true);
    }
    const t0 = performance.now();
    const got = this.real.runSavedModel(t.model, t.fed.map((s) => this.realId(this.extIds[s]!)), t.inputNames, t.outputNames);
    this.addRunMs(performance.now() - t0);
    for (let i = 0; i < t.fetch.length; i++) {
      const want = t.shapes[t.fetch[i]!]!;
      if (got[i]!.shape.join(',') !== want.join(',')) {
        for (const x of got) this.real.deleteTensor(x.id);
        return this.fallBack(`the graph's output ${t.fetch[i]} has shape [${got[i]!.shape}], its trace [${want}]`, true);
      }
    }
    t.fetch.forEach((f, i) => {
      const vid = this.base + f;
      if (this.dead.has(vid)) this.real.deleteTensor(got[i]!.id);
      else this.resolved.set(vid, got[i]!.id);
    });
    if (t.grad !== null && t.grad.skip === 'unknown') this.confirmBackward(t, t.grad);
    this.served(t);
  }

  /** The trace that served goes first: the next batch of the same shape finds it at once. */
  private served(t: Trace): void {
    const st = this.key!;
    st.traces.splice(st.traces.indexOf(t), 1);
    st.traces.unshift(t);
    this.count('replays');
    this.mode = 'idle';
  }

  /** After a full replay of a gradient region: its backward pass made the host tensors of the trace, so later replays may skip it. */
  private confirmBackward(t: Trace, g: GradTrace): void {
    if (this.forwardAt !== g.forwardOps) return;
    for (const [s, want] of g.backward) {
      const got = this.hostValues(this.extIds[s]!);
      if (got === null || !sameValues(got, want)) {
        g.skip = 'never';
        return;
      }
    }
    for (const s of t.fed) {
      const v = g.backward.get(s);
      if (v !== undefined) g.ids.set(s, this.real.createTensor(t.externals[s]!.shape, t.externals[s]!.dtype, v));
    }
    g.skip = 'ready';
  }

  /** Values of a tensor made on the host inside the region (null: made elsewhere or computed). */
  private hostValues(id: number): HostValues | null {
    if (id < 0) return null;
    const d = this.deferredConsts.get(id);
    if (d !== undefined) return d.values;
    const r = id >= VIRTUAL_BASE ? this.resolved.get(id) : id;
    if (r === undefined) return null;
    return this.madeHere.get(r) ?? this.backwardMade.get(r) ?? null;
  }

  /**
   * A gradient region's forward pass matched trace `t`, whose backward pass is confirmed:
   * one session run computes the forward values still alive and the gradients. Should the
   * forward pass keep a tensor the trace did not fetch, its ops run eagerly from the record.
   */
  private finishForward(skip: SkipBackward): { value: tf.Tensor; grads: tf.NamedTensorMap } {
    const t = skip.trace;
    const g = t.grad!;
    // The tape's saved tensors were for the backward pass the graph runs instead.
    const state = (tf.engine() as unknown as { state: { gradientDepth: number; activeTape: { saved?: tf.Tensor[] }[] | null } }).state;
    if (state.gradientDepth === 0 && state.activeTape !== null) {
      for (const node of state.activeTape) for (const x of node.saved ?? []) x.dispose();
      state.activeTape = null;
    }
    const feeds = t.fed.map((s) => g.ids.get(s) ?? this.realId(this.extIds[s]!));
    let alive = true;
    for (let f = 0; f < g.forwardOutputs && alive; f++) alive = this.dead.has(this.base + f) || t.fetchSet.has(f);
    let got: Meta[];
    if (alive) {
      const t0 = performance.now();
      got = this.real.runSavedModel(t.model, feeds, t.inputNames, t.outputNames);
      this.addRunMs(performance.now() - t0);
    } else {
      g.skip = 'never';
      this.noteFallback('a gradient region kept a forward tensor its trace did not: ran its record eagerly');
      got = this.runRecord(t, feeds);
    }
    const gradOf = new Map(g.grads.map(([v, f]) => [f, this.gradVars[v]!.name]));
    const grads: tf.NamedTensorMap = {};
    t.fetch.forEach((f, i) => {
      const m = got[i]!;
      const name = gradOf.get(f);
      if (name !== undefined) grads[name] = (this.backend as unknown as { createOutputTensor(m: Meta): tf.Tensor }).createOutputTensor(m);
      else if (f < g.forwardOutputs && !this.dead.has(this.base + f)) this.resolved.set(this.base + f, m.id);
      else this.real.deleteTensor(m.id);
    });
    this.count('forwardOnly');
    this.served(t);
    return { value: skip.loss, grads };
  }

  /**
   * Trace `t`'s ops, run eagerly with the given feeds: its fetched outputs (as a session run
   * gives them) plus, bound to their placeholders, the forward tensors still alive.
   */
  private runRecord(t: Trace, feeds: number[]): Meta[] {
    const slotIds = new Map(t.fed.map((s, i) => [s, feeds[i]!]));
    const consts: number[] = [];
    const flat: Meta[] = [];
    for (const o of t.ops) {
      const ids = o.inputs.map((r) => {
        if (r < 0) return flat[-1 - r]!.id;
        let id = slotIds.get(r);
        if (id === undefined) {
          const e = t.externals[r]!;
          id = this.real.createTensor(e.shape, e.dtype, e.values!);
          slotIds.set(r, id);
          consts.push(id);
        }
        return id;
      });
      flat.push(...this.real.executeOp(o.op, o.attrs, ids, o.outputs.length));
    }
    const grad = t.grad!;
    const keep = new Set(t.fetch);
    for (let f = 0; f < grad.forwardOutputs; f++) {
      if (!this.dead.has(this.base + f) && !keep.has(f)) {
        this.resolved.set(this.base + f, flat[f]!.id);
        keep.add(f);
      }
    }
    for (const id of consts) this.real.deleteTensor(id);
    flat.forEach((m, f) => { if (!keep.has(f)) this.real.deleteTensor(m.id); });
    return t.fetch.map((f) => flat[f]!);
  }

  /**
   * Runs the ops replayed so far eagerly (as recorded), then records the rest of the region
   * eagerly as a new trace. `counts`: a failure that is not a new shape signature.
   */
  private fallBack(why: string, counts = false): void {
    const st = this.key!;
    const t = this.cands[0]!;
    this.count('fallbacks');
    this.noteFallback(why);
    if (this.varying.length > 0) {
      // Traces that bake a value seen to change cannot serve again.
      for (const s of this.varying) st.feed.add(s);
      st.traces = st.traces.filter((c) => {
        const stale = this.varying.some((s) => c.baked[s] === true);
        if (stale) this.dropTrace(c);
        return !stale;
      });
    }
    if (counts) st.failures++;
    if (st.failures >= MAX_FAILURES) st.eager = true;
    const { fallbacks, replays } = st.stats;
    if (fallbacks >= MIN_MISSES && fallbacks * REPLAYS_PER_MISS > replays) {
      st.eager = true;
      this.noteFallback(`its shapes keep changing: ${fallbacks} fallbacks against ${replays} replays (last: ${why})`);
    }
    this.startTrace();
    for (let k = 0; k < this.at; k++) {
      const o = t.ops[k]!;
      const ids = o.inputs.map((r) => (r >= 0 ? this.realId(this.extIds[r]!) : this.resolved.get(this.base - 1 - r)!));
      const outs = this.real.executeOp(o.op, o.attrs, ids, o.outputs.length);
      outs.forEach((m, j) => this.resolved.set(this.base + o.first + j, m.id));
      this.recordOp(o.op, o.attrs, ids, outs);
    }
    for (const vid of this.dead) {
      const id = this.resolved.get(vid);
      if (id === undefined) continue;
      this.resolved.delete(vid);
      this.live.delete(id);
      this.real.deleteTensor(id);
    }
    this.dead = new Set();
  }

  // ---- the binding, intercepted -----------------------------------------------------------

  /** TensorFlow's id for `id`: computing a pending placeholder (by falling back) or creating a deferred constant. */
  private realId(id: number): number {
    if (id < VIRTUAL_BASE) return id;
    const r = this.resolved.get(id);
    if (r !== undefined) return r;
    const d = this.deferredConsts.get(id);
    if (d !== undefined) {
      const created = this.real.createTensor(d.shape, d.dtype, d.values);
      this.deferredConsts.delete(id);
      this.resolved.set(id, created);
      if (this.mode !== 'idle') {
        this.metaOf.set(created, { shape: d.shape, dtype: d.dtype });
        this.madeHere.set(created, d.values);
      }
      return created;
    }
    if (this.mode === 'replay' && id >= this.base && id < this.base + this.span) {
      this.readBack = true;
      this.fallBack(`tensor ${id} was read before the region ended`, true);
      const again = this.resolved.get(id);
      if (again !== undefined) return again;
    }
    throw new EgmfError(`tensor id ${id} is a captured placeholder that was never computed`);
  }

  private smallConstant(shape: number[], dtype: number, values: unknown): Int32Array | Float32Array | null {
    const n = shape.reduce((a, b) => a * b, 1);
    if (dtype === this.real.TF_INT32 && n <= SHAPE_LIKE_MAX) return Int32Array.from(values as ArrayLike<number>);
    if (dtype === this.real.TF_FLOAT && n === 1) return Float32Array.from(values as ArrayLike<number>);
    return null;
  }

  private createTensor(shape: number[], dtype: number, values: unknown): number {
    if (this.mode === 'idle') return this.real.createTensor(shape, dtype, values);
    const small = this.smallConstant(shape, dtype, values);
    if (this.mode === 'replay' && small !== null) {
      const id = this.nextVirtual++;
      this.deferredConsts.set(id, { shape: shape.slice(), dtype, values: small });
      return id;
    }
    const id = this.real.createTensor(shape, dtype, values);
    this.metaOf.set(id, { shape: shape.slice(), dtype });
    if (small !== null) this.madeHere.set(id, small);
    else if (this.forwardAt >= 0 && ArrayBuffer.isView(values)) this.backwardMade.set(id, (values as HostValues).slice());
    return id;
  }

  private deleteTensor(id: number): void {
    if (this.mode === 'replay') {
      if (id >= this.base && id < this.base + this.span) {
        this.dead.add(id);
        return;
      }
      this.deferredDeletes.push(id);
      return;
    }
    if (this.mode === 'trace') {
      const r = id >= VIRTUAL_BASE ? this.resolved.get(id) : id;
      if (r !== undefined) this.live.delete(r);
    }
    if (id >= VIRTUAL_BASE) {
      if (this.deferredConsts.delete(id)) return;
      const r = this.resolved.get(id);
      if (r === undefined) return;
      this.resolved.delete(id);
      this.real.deleteTensor(r);
      return;
    }
    this.real.deleteTensor(id);
  }

  private tensorDataSync(id: number): unknown {
    if (this.mode === 'trace') {
      const r = id >= VIRTUAL_BASE ? this.resolved.get(id) : id;
      if (r !== undefined && this.producedBy.has(r)) {
        this.readBack = true;
        this.failure ??= 'the region reads a tensor it computes';
      }
    }
    const d = this.deferredConsts.get(id);
    if (d !== undefined) return d.values.slice();
    return this.real.tensorDataSync(this.realId(id));
  }

  private executeOp(op: string, attrs: OpAttr[], inputs: number[], n: number): Meta[] {
    if (this.mode === 'replay') {
      const got = this.replayOp(op, attrs, inputs, n);
      if (got !== null) return got;
    }
    const ids = inputs.map((x) => this.realId(x));
    const out = this.real.executeOp(op, attrs, ids, n);
    if (this.mode === 'trace') this.recordOp(op, attrs, ids, out);
    return out;
  }

  /** The recorded answer for this op, or null after falling back. */
  private replayOp(op: string, attrs: OpAttr[], inputs: number[], n: number): Meta[] | null {
    let why = '';
    let bind: [number, number][] = [];
    const keep: Trace[] = [];
    for (const c of this.cands) {
      const o = c.ops[this.at];
      if (o === undefined) {
        why ||= `the region ran more ops than a trace's ${c.ops.length}`;
        continue;
      }
      const r = this.mismatch(c, o, op, attrs, inputs, n);
      if (typeof r === 'string') why ||= r;
      else {
        keep.push(c);
        bind = r;
      }
    }
    if (keep.length === 0) {
      this.fallBack(why);
      return null;
    }
    this.cands = keep;
    for (const [s, id] of bind) this.extIds[s] = id;
    const o = keep[0]!.ops[this.at]!;
    this.at++;
    const out: Meta[] = new Array(n);
    for (let j = 0; j < n; j++) {
      const r = o.outputs[j]!;
      out[j] = { id: this.base + o.first + j, shape: r.shape.slice(), dtype: r.dtype };
    }
    return out;
  }

  /** Why op `o` of trace `c` is not this call, or the external slots it binds. */
  private mismatch(c: Trace, o: TracedOp, op: string, attrs: OpAttr[], inputs: number[], n: number): string | [number, number][] {
    const where = `op ${this.at} (${op})`;
    if (o.op !== op || o.outputs.length !== n || o.inputs.length !== inputs.length) return `${where} differs from its trace's ${o.op}`;
    if (!sameAttrs(o.attrs, attrs)) return `${where} has other attributes than in its trace`;
    const bind: [number, number][] = [];
    for (let i = 0; i < inputs.length; i++) {
      const r = o.inputs[i]!;
      let id = inputs[i]!;
      if (r < 0) {
        if (id !== this.base + (-1 - r)) return `${where}: input ${i} comes from elsewhere than in its trace`;
        continue;
      }
      if (id >= this.base && id < this.base + this.span) return `${where}: input ${i} is computed here, external in its trace`;
      const bound = this.extIds[r]!;
      if (bound >= 0) {
        if (bound !== id) return `${where}: input ${i} is another tensor than in its trace`;
        continue;
      }
      if (bind.some(([s, x]) => s === r && x !== id)) return `${where}: input ${i} is another tensor than in its trace`;
      const e = c.externals[r]!;
      const d = this.deferredConsts.get(id);
      if (id >= VIRTUAL_BASE && d === undefined) id = this.resolved.get(id) ?? id;
      const meta = d ?? this.metaOf.get(id);
      if (meta === undefined || meta.dtype !== e.dtype || meta.shape.join(',') !== e.shape.join(',')) {
        return `${where}: input ${i} has shape [${meta?.shape ?? '?'}], its trace [${e.shape}]`;
      }
      const values = d?.values ?? this.madeHere.get(id) ?? null;
      if ((values === null) !== (e.values === null)) return `${where}: input ${i} is ${values === null ? 'not ' : ''}a constant made in the region, unlike in its trace`;
      if (c.baked[r] && !sameValues(values!, e.values!)) {
        if (e.dtype === this.real.TF_FLOAT) this.varying.push(r);
        return `${where}: input ${i}, a constant, has other values than in its trace`;
      }
      bind.push([r, inputs[i]!]);
    }
    return bind;
  }
}

/**
 * The session of a loaded graph: the same thread counts as the eager context (the backend's
 * intra-op threads, one inter-op thread: two sweep workers on two cores must not fight) and
 * no graph optimisation, so it runs exactly the recorded ops, with eager results, and its
 * first run skips grappler (~0.5 s a graph). The addon built by `egmf backend install`
 * reads the options from EGMF_TF_SESSION_CONFIG; an addon built otherwise ignores that, its
 * sessions optimise, and TensorFlow reads only the thread counts, from TF_NUM_*_THREADS.
 */
function withSessionThreads<T>(fn: () => T): T {
  const intra = tensorflowThreads() ?? 1;
  const set: Record<string, string> = {
    EGMF_TF_SESSION_CONFIG: sessionConfigHex({ intraThreads: intra, interThreads: 1 }), TF_NUM_INTRAOP_THREADS: String(intra), TF_NUM_INTEROP_THREADS: '1',
  };
  const saved = Object.fromEntries(Object.keys(set).map((k) => [k, process.env[k]]));
  Object.assign(process.env, set);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameAttrs(a: OpAttr[], b: OpAttr[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name || x.type !== y.type) return false;
    if (x.value === y.value) continue;
    if (!Array.isArray(x.value) || !Array.isArray(y.value) || x.value.length !== y.value.length) return false;
    for (let j = 0; j < x.value.length; j++) if (x.value[j] !== y.value[j]) return false;
  }
  return true;
}
