/**
 * The fusion network without the LLM: modality encoders → experts → hierarchical gate →
 * pseudo tokens. Every variable lives in one Params store under `egmf.` names.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ExperimentConfig, Modality } from '../../config/experiment.ts';
import { EgmfError } from '../../errors.ts';
import { ModalityEncoder, TextOffsets, type ModalitySeq } from './encoders.ts';
import { buildExperts, type Expert } from './experts.ts';
import { HierarchicalGate, type GateOutput } from './gating.ts';
import { LayerNorm, Linear, maskedMean, Params, type ForwardCtx } from './layers.ts';
import { PseudoTokenProjector } from './pseudo-tokens.ts';

export type FusionConfig = ExperimentConfig['model'];

export interface FusionDims {
  /** Input width per modality: text = the LLM width, audio/vision = feature widths. */
  inputs: Partial<Record<Modality, number>>;
  /** LLM embedding width D_llm. */
  llmWidth: number;
  /** Typical norm of an LLM token embedding (pseudo tokens are scaled to it). */
  embeddingNorm: number;
  /** Outputs of the auxiliary probe (classes, or 1 for a score); without them there is no probe. */
  probeOutputs?: number;
  /** The text encoder also reads dialogue context (`data.context`): a context embedding is learned. */
  context?: boolean;
}

export interface FusionOutput {
  pseudo: tf.Tensor3D; // [B, K, D_llm]
  gates: GateOutput;
  /** The auxiliary probe's outputs on the fused vector [B, P], when there is a probe. */
  probe: tf.Tensor2D | null;
}

export class FusionNetwork {
  readonly params: Params;
  readonly modalities: readonly Modality[];
  readonly encoders: ModalityEncoder[];
  readonly experts: Expert[];
  /** One LayerNorm per expert on its outputs (`gating.expert_norm`), else empty. */
  readonly expertNorms: LayerNorm[];
  readonly gate: HierarchicalGate;
  /** Null with `pseudo_tokens: 0` (the LLM then reads the prompt alone). */
  readonly projector: PseudoTokenProjector | null;
  /** Linear head on the fused vector (`aux_probe`, or the answer head with `head: linear`), or null. */
  readonly probe: Linear | null;
  /** Learned offsets on the text encoder's input (`text_offsets`), or null. */
  readonly textOffsets: TextOffsets | null;
  /**
   * With dialogue context (`data.context`): a learned vector [D_llm] added to the text
   * encoder's input at the context tokens, so the encoder tells them from the utterance.
   */
  readonly contextEmbedding: tf.Variable | null;

  private readonly llmWidth: number;

  constructor(readonly cfg: FusionConfig, dims: FusionDims, seed: number) {
    checkFusionConfig(cfg);
    this.llmWidth = dims.llmWidth;
    this.params = new Params(seed);
    const root = this.params.scope('egmf');
    this.modalities = cfg.modalities;
    try {
      this.encoders = cfg.modalities.map((m) => {
        const inDim = dims.inputs[m];
        if (inDim === undefined || !(inDim > 0)) throw new EgmfError(`no input width for modality '${m}' (does the dataset have ${m} features?)`, { key: 'model.modalities' });
        return new ModalityEncoder(root.sub(`encoders.${m}`), m, inDim, cfg.width, cfg.positions);
      });
      this.experts = buildExperts(root.sub('experts'), cfg);
      // At initialisation the experts' outputs differ in scale (local: per-sample spread
      // ~2.5x the attention experts'), so without a common scale the largest expert drowns
      // the others in the gated sum whatever the gate says.
      this.expertNorms = cfg.gating.expert_norm ? this.experts.map((e) => new LayerNorm(root.sub(`gate.expert_norm.${e.name}`), cfg.width)) : [];
      this.gate = new HierarchicalGate(root.sub('gate'), this.experts, cfg.modalities.length, cfg.modalities.length * cfg.width, cfg.gating);
      this.projector = cfg.pseudo_tokens === 0 ? null : new PseudoTokenProjector(root.sub('pseudo'), cfg.width, cfg.pseudo_tokens, dims.llmWidth, dims.embeddingNorm);
      // The probe needs the task's outputs: a fusion network built without them (on its own,
      // with no answer loss beside it) has none.
      // With `head: linear` the probe is the model's only head.
      this.probe = (cfg.aux_probe.weight > 0 || cfg.head === 'linear') && dims.probeOutputs !== undefined ? new Linear(root.sub('probe'), cfg.width, dims.probeOutputs) : null;
      // Zero-initialised: it draws nothing from the seeded stream, so the other weights are
      // those of the same config without it.
      this.textOffsets = cfg.text_offsets.vocab > 0 ? new TextOffsets(root.sub('encoders.text'), cfg.text_offsets.vocab, dims.inputs.text!, cfg.text_offsets.min_count, cfg.text_offsets.pairs) : null;
      if (dims.context === true && !cfg.modalities.includes('text')) throw new EgmfError('dialogue context is text: it needs the text modality; set it to 0 without text', { key: 'data.context' });
      // Zero-initialised too, for the same reason.
      this.contextEmbedding = dims.context === true ? root.sub('encoders.text').create('context_embedding', [dims.inputs.text!], 0) : null;
    } catch (e) {
      this.params.dispose(); // no variables outlive a failed construction
      throw e;
    }
  }

  /** inputs in `modalities` order (raw features) → pseudo tokens and gate weights. */
  apply(inputs: readonly ModalitySeq[], ctx: ForwardCtx, opts: { pseudo?: boolean } = {}): FusionOutput {
    if (inputs.length !== this.encoders.length) throw new Error(`fusion expects ${this.encoders.length} modalities, got ${inputs.length}`);
    const seqs = inputs.map((s, i) => this.encoders[i]!.apply(s, ctx)); // M × [B, L_m, d]
    const context = tf.concat(seqs.map((s) => maskedMean(s.x, s.mask)), 1) as tf.Tensor2D; // [B, M·d]
    const outs = this.experts.map((e, i) => {
      const o = e.apply(seqs, ctx); // [B, M, d]
      return this.expertNorms.length > 0 ? (this.expertNorms[i]!.apply(o) as tf.Tensor3D) : o;
    }); // E × [B, M, d]
    const gates = this.gate.apply(context, outs);
    const probe = this.probe === null ? null : (this.probe.apply(gates.fused) as tf.Tensor2D); // [B, P]
    // Without the LLM (`head: linear`) the pseudo tokens are not needed; without pseudo tokens
    // (`pseudo_tokens: 0`) there are none: [B, 0, D_llm].
    const pseudo = opts.pseudo === false || this.projector === null ? (tf.zeros([gates.fused.shape[0], 0, this.llmWidth]) as tf.Tensor3D) : this.projector.apply(gates.fused, ctx);
    return { pseudo, gates, probe };
  }

  variables(): tf.Variable[] {
    return [...this.params.vars.values()];
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** Checks what the experiment spec cannot express alone (it already checks single fields). */
export function checkFusionConfig(cfg: FusionConfig): void {
  const ex = cfg.experts;
  const enabled = (['local', 'semantic', 'global'] as const).filter((k) => ex[k].enabled);
  if (enabled.length === 0) throw new EgmfError('at least one expert kind must be enabled', { key: 'model.experts' });
  if (new Set(cfg.modalities).size !== cfg.modalities.length) throw new EgmfError('modalities are listed twice', { key: 'model.modalities' });
  if (ex.semantic.enabled && cfg.modalities.length < 2) {
    throw new EgmfError('the semantic correlation expert needs at least two modalities; disable it for a single modality', { key: 'model.experts.semantic.enabled' });
  }
  for (const kind of ['semantic', 'global'] as const) {
    if (ex[kind].enabled && ex[kind].width % ex[kind].heads !== 0) {
      throw new EgmfError(`width ${ex[kind].width} is not divisible by heads ${ex[kind].heads}`, { key: `model.experts.${kind}.heads` });
    }
  }
  const count = enabled.reduce((n, k) => n + ex[k].count, 0);
  if (cfg.gating.top_k > count) throw new EgmfError(`top_k ${cfg.gating.top_k} exceeds the ${count} enabled experts`, { key: 'model.gating.top_k' });
  if (cfg.text_offsets.pairs > 0 && cfg.text_offsets.vocab === 0) {
    throw new EgmfError('token-pair offsets come with the token offsets: set model.text_offsets.vocab too, or pairs to 0', { key: 'model.text_offsets.pairs' });
  }
  if (cfg.text_offsets.vocab > 0 && !cfg.modalities.includes('text')) {
    throw new EgmfError('text offsets need the text modality; set it to 0 without text', { key: 'model.text_offsets.vocab' });
  }
  if (ex.local.enabled && ex.local.kernels.some((k) => !Number.isInteger(k) || k < 1)) throw new EgmfError('kernel sizes must be positive integers', { key: 'model.experts.local.kernels' });
}
