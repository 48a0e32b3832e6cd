/**
 * LoRA in PEFT's manner: the base decoder is frozen (its variables non-trainable) and
 * each targeted projection gets, per named adapter, A [in, r] (kaiming-uniform, as PEFT
 * initialises lora_A) and B [r, out] (zero), adding scaling · dropout(x)·A·B with
 * scaling = alpha / r (alpha / √r with rsLoRA). B = 0 makes a fresh adapter a no-op.
 */
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { EgmfError } from '../../errors.ts';
import { Decoder, PROJECTIONS, projectionModule } from './decoder.ts';
import { loraAdd } from '../ops.ts';

export interface LoraConfig {
  /** Rank r. */
  r: number;
  /** lora_alpha; scaling = alpha / r. */
  alpha: number;
  /** Dropout on the adapter's input while training. */
  dropout: number;
  /**
   * Module-name suffixes (PEFT: `q_proj` matches `model.layers.0.self_attn.q_proj`),
   * the string `all-linear`, or one regular expression that must match a whole name.
   */
  targetModules: string[] | string;
  /** rsLoRA: scaling = alpha / √r. */
  useRslora?: boolean;
  /** Recorded in adapter_config.json. */
  baseModelNameOrPath?: string;
}

export interface LoraWeights {
  /** [in, r] */
  A: tf.Variable;
  /** [r, out] */
  B: tf.Variable;
}

export interface LoraAdapter {
  name: string;
  config: LoraConfig;
  scaling: number;
  /** PEFT module name → weights. */
  modules: Map<string, LoraWeights>;
}

/** Validates a LoRA config; `file` names the source in errors. */
export function validateLoraConfig(c: LoraConfig, file?: string): void {
  if (!Number.isInteger(c.r) || c.r < 1) throw new EgmfError(`LoRA rank must be a positive integer, got ${c.r}`, { file, key: 'r' });
  if (!(typeof c.alpha === 'number' && Number.isFinite(c.alpha) && c.alpha > 0)) throw new EgmfError(`lora_alpha must be a positive number, got ${c.alpha}`, { file, key: 'lora_alpha' });
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new EgmfError(`lora_dropout must be in [0, 1), got ${c.dropout}`, { file, key: 'lora_dropout' });
  const t = c.targetModules;
  if (!(typeof t === 'string' ? t.length > 0 : Array.isArray(t) && t.length > 0 && t.every((s) => typeof s === 'string' && s.length > 0))) {
    throw new EgmfError(`target_modules must be a non-empty list of module names or a pattern, got ${JSON.stringify(t)}`, { file, key: 'target_modules' });
  }
}

/** PEFT's matching of a module name against target_modules. */
export function matchesTarget(module: string, targets: string[] | string): boolean {
  if (targets === 'all-linear') return true;
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(module);
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

export class LoraModel {
  private readonly adapters = new Map<string, LoraAdapter>();
  private active: string | null = null;
  private merged: string | null = null;
  private dropoutCalls = 0;
  private dropoutStep = 0;
  /** The run's seed (the adapter's), so runs with different seeds draw different masks. */
  private dropoutSeed = 0;

  /** Freezes `base` and installs the adapter hook on its projections. */
  constructor(readonly base: Decoder) {
    if (base.projectionHook !== null) throw new Error('this decoder already carries a projection hook (another LoraModel?)');
    base.setTrainable(false);
    base.projectionHook = (module, x, y, training) => this.apply(module, x, y, training);
  }

  /** Names of all projection modules, in layer order. */
  moduleNames(): string[] {
    const out: string[] = [];
    for (let l = 0; l < this.base.config.numLayers; l++) for (const p of PROJECTIONS) out.push(projectionModule(l, p));
    return out;
  }

  /**
   * Adds an adapter with PEFT's initialisation (seeded) and makes it active.
   * `weights` supplies A/B per module instead (loading), already in our orientation.
   */
  addAdapter(name: string, config: LoraConfig, opts: { seed?: number; weights?: Map<string, { A: tf.Tensor2D; B: tf.Tensor2D }>; file?: string } = {}): LoraAdapter {
    validateLoraConfig(config, opts.file);
    if (this.adapters.has(name)) throw new EgmfError(`adapter '${name}' already exists`, { key: name });
    const targets = this.moduleNames().filter((m) => matchesTarget(m, config.targetModules));
    if (targets.length === 0) throw new EgmfError(`target_modules ${JSON.stringify(config.targetModules)} match no module of this ${this.base.config.modelType} model`, { file: opts.file, key: 'target_modules' });
    const lacking = opts.weights === undefined ? undefined : targets.find((m) => !opts.weights!.has(m));
    if (lacking !== undefined) throw new EgmfError(`no LoRA weights for targeted module '${lacking}'`, { file: opts.file, key: lacking });
    const rng = seedrandom(String(opts.seed ?? 0));
    this.dropoutSeed = opts.seed ?? 0;
    const modules = new Map<string, LoraWeights>();
    for (const m of targets) {
      const w = this.base.param(`${m}.weight`);
      const [inDim, outDim] = w.shape as [number, number];
      const given = opts.weights?.get(m);
      // kaiming_uniform_(a=√5) on PEFT's [r, in] lora_A: bound = 1/√in.
      const bound = 1 / Math.sqrt(inDim);
      const a = given?.A ?? tf.tensor2d(Float32Array.from({ length: inDim * config.r }, () => (2 * rng() - 1) * bound), [inDim, config.r]);
      const b = given?.B ?? tf.zeros([config.r, outDim]);
      modules.set(m, { A: tf.variable(a, true), B: tf.variable(b, true) });
      if (given === undefined) {
        a.dispose();
        b.dispose();
      }
    }
    const scaling = config.useRslora ? config.alpha / Math.sqrt(config.r) : config.alpha / config.r;
    const adapter: LoraAdapter = { name, config: { ...config }, scaling, modules };
    this.adapters.set(name, adapter);
    this.setActiveAdapter(name);
    return adapter;
  }

  adapter(name: string): LoraAdapter {
    const a = this.adapters.get(name);
    if (a === undefined) throw new EgmfError(`no adapter named '${name}' (have: ${[...this.adapters.keys()].join(', ') || 'none'})`, { key: name });
    return a;
  }

  adapterNames(): string[] {
    return [...this.adapters.keys()];
  }

  get activeAdapter(): string | null {
    return this.active;
  }

  /** Chooses the adapter the forward pass uses and that trainableVariables returns. */
  setActiveAdapter(name: string | null): void {
    if (name !== null) this.adapter(name);
    if (this.merged !== null && this.merged !== name) throw new Error(`adapter '${this.merged}' is merged: unmerge it first`);
    this.active = name;
  }

  deleteAdapter(name: string): void {
    const a = this.adapter(name);
    if (this.merged === name) this.unmerge();
    for (const w of a.modules.values()) {
      w.A.dispose();
      w.B.dispose();
    }
    this.adapters.delete(name);
    if (this.active === name) this.active = null;
  }

  /**
   * Makes dropout masks a function of (run seed, step, call order): a resumed run draws the same
   * masks as an uninterrupted one. Call before each training step's forward pass.
   */
  setStep(step: number): void {
    this.dropoutStep = step;
    this.dropoutCalls = 0;
  }

  /** The active adapter's A and B matrices (the base stays frozen). */
  trainableVariables(): tf.Variable[] {
    if (this.active === null) return [];
    return [...this.adapter(this.active).modules.values()].flatMap((w) => [w.A, w.B]);
  }

  /** Folds the active adapter into the base weights: W += scaling · A·B. */
  merge(): void {
    if (this.active === null) throw new Error('no active adapter to merge');
    if (this.merged !== null) return;
    this.foldInto(this.adapter(this.active), 1);
    this.merged = this.active;
  }

  /** Undoes merge(): W -= scaling · A·B. */
  unmerge(): void {
    if (this.merged === null) return;
    this.foldInto(this.adapter(this.merged), -1);
    this.merged = null;
  }

  get isMerged(): boolean {
    return this.merged !== null;
  }

  private foldInto(a: LoraAdapter, sign: 1 | -1): void {
    for (const [m, w] of a.modules) {
      const base = this.base.param(`${m}.weight`);
      tf.tidy(() => base.assign(tf.add(base, tf.mul(sign * a.scaling, tf.matMul(w.A, w.B)))));
    }
    this.base.invalidateCaches();
  }

  private apply(module: string, x: tf.Tensor, y: tf.Tensor, training: boolean): tf.Tensor {
    if (this.active === null || this.merged !== null) return y;
    const a = this.adapter(this.active);
    const w = a.modules.get(module);
    if (w === undefined) return y;
    const p = a.config.dropout;
    const seed = (this.dropoutSeed * 104_729 + this.dropoutStep * 1_000_003 + ++this.dropoutCalls * 7919) % 2_147_483_647;
    return loraAdd(y, x, w.A as tf.Tensor2D, w.B as tf.Tensor2D, a.scaling, training ? p : 0, seed); // [..., out]
  }

  /** Removes the hook and disposes adapters; the base model stays usable (still frozen). */
  dispose(): void {
    this.unmerge();
    for (const name of [...this.adapters.keys()]) this.deleteAdapter(name);
    this.base.projectionHook = null;
  }
}
