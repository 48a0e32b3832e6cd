import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../src/models/backend/index.ts';
import { validateExperiment } from '../../../src/config/experiment.ts';
import { ModalityEncoder, timeSinusoid } from '../../../src/models/egmf/encoders.ts';
import { LocalExpert } from '../../../src/models/egmf/expert-local.ts';
import { SemanticExpert } from '../../../src/models/egmf/expert-semantic.ts';
import { GlobalExpert } from '../../../src/models/egmf/expert-global.ts';
import { applyTopK, balanceLoss, gateSoftmax, HierarchicalGate } from '../../../src/models/egmf/gating.ts';
import { evalCtx, Params } from '../../../src/models/egmf/layers.ts';
import { PseudoTokenProjector } from '../../../src/models/egmf/pseudo-tokens.ts';
import { FusionNetwork } from '../../../src/models/egmf/fusion.ts';
import { EgmfError } from '../../../src/errors.ts';
import { maxAbsDiff, repad, rngFor, sequence, tinyModel } from './fixtures.ts';

beforeAll(async () => {
  await initBackend('cpu');
});

const MODS = ['text', 'audio', 'vision'] as const;
const LENGTHS = [[5, 3, 1], [6, 6, 2], [4, 1, 4]]; // per modality, per sample (B = 3)
const DIMS = { text: 12, audio: 7, vision: 5 };

/** Encoded inputs (width 16) and the same inputs re-padded to longer lengths with garbage. */
function encodedPair(seed: number) {
  const p = new Params(seed);
  const rng = rngFor(seed);
  const encs = MODS.map((m) => new ModalityEncoder(p.scope(`enc.${m}`), m, DIMS[m], 16));
  const raw = MODS.map((m, i) => sequence(rng, LENGTHS[i]!, Math.max(...LENGTHS[i]!), DIMS[m]));
  const longer = raw.map((s, i) => repad(rng, s, LENGTHS[i]!, s.x.shape[1] + 3));
  return { p, a: raw.map((s, i) => encs[i]!.apply(s, evalCtx())), b: longer.map((s, i) => encs[i]!.apply(s, evalCtx())) };
}

describe('modality encoders', () => {
  it('project to the common width and zero the padding', () => {
    tf.tidy(() => {
      const { a } = encodedPair(1);
      expect(a.map((s) => s.x.shape)).toEqual([[3, 5, 16], [3, 6, 16], [3, 4, 16]]);
      const audio = a[1]!.x.arraySync();
      expect(audio[2]![2]!.every((v) => v === 0)).toBe(true); // sample 2 has 2 audio frames
      expect(audio[2]![1]!.some((v) => v !== 0)).toBe(true);
    });
  });

  it('reads text embeddings independently of the LLM\'s embedding scale; audio keeps its amplitude', () => {
    tf.tidy(() => {
      const p = new Params(5);
      const rng = rngFor(5);
      const text = new ModalityEncoder(p.scope('t'), 'text', 12, 16);
      const audio = new ModalityEncoder(p.scope('a'), 'audio', 12, 16);
      const s = sequence(rng, [5, 3], 5, 12);
      // A real LLM's rows can be 100x smaller than unit RMS: the words must not vanish
      // under the positions, so the encoded text is the same at either scale.
      const small = { x: tf.mul(s.x, 0.01) as tf.Tensor3D, mask: s.mask };
      expect(maxAbsDiff(text.apply(s, evalCtx()).x, text.apply(small, evalCtx()).x)).toBeLessThan(1e-3);
      // Different words still encode differently (the check above can fail).
      const other = sequence(rngFor(6), [5, 3], 5, 12);
      expect(maxAbsDiff(text.apply(s, evalCtx()).x, text.apply(other, evalCtx()).x)).toBeGreaterThan(0.1);
      // Audio amplitude is information (cue intensity): no such normalisation.
      expect(maxAbsDiff(audio.apply(s, evalCtx()).x, audio.apply(small, evalCtx()).x)).toBeGreaterThan(0.1);
    });
  });

  it('time positions line up the same moment across frame rates; text keeps index positions', () => {
    tf.tidy(() => {
      // Frame 1 of 3 and frame 4 of 9 are both at normalised time 0.5.
      const mask = tf.tensor2d([[1, 1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1, 1]]);
      const pos = timeSinusoid(mask, 8).arraySync();
      expect(Math.max(...pos[0]![1]!.map((v, i) => Math.abs(v - pos[1]![4]![i]!)))).toBeLessThan(1e-6);
      expect(Math.max(...pos[0]![0]!.map((v, i) => Math.abs(v - pos[1]![0]![i]!)))).toBeGreaterThan(0.05);
      expect(pos[0]![5]!.every((v) => v === 0)).toBe(true);
      // In the encoder: audio at 3 frames vs 9 frames (each frame repeated 3 times) gives the
      // same encoding at matching moments with time positions, not with index positions.
      const p = new Params(7);
      const rng = rngFor(7);
      const slow = sequence(rng, [3], 3, 6, 'zero');
      const rep = tf.reshape(tf.tile(tf.expandDims(slow.x, 2), [1, 1, 3, 1]), [1, 9, 6]) as tf.Tensor3D;
      const fast = { x: rep, mask: tf.ones([1, 9]) as tf.Tensor2D };
      for (const [positions, same] of [['time', true], ['index', false]] as const) {
        const enc = new ModalityEncoder(p.scope(`a.${positions}`), 'audio', 6, 8, positions);
        const d = maxAbsDiff(tf.slice(enc.apply(slow, evalCtx()).x, [0, 1, 0], [1, 1, 8]), tf.slice(enc.apply(fast, evalCtx()).x, [0, 4, 0], [1, 1, 8]));
        if (same) expect(d).toBeLessThan(1e-5);
        else expect(d).toBeGreaterThan(0.01);
      }
      const text = sequence(rng, [4, 2], 4, 6);
      // Same seed, same names: the same weights.
      const t1 = new ModalityEncoder(new Params(8).scope('t'), 'text', 6, 8, 'index');
      const t2 = new ModalityEncoder(new Params(8).scope('t'), 'text', 6, 8, 'time');
      expect(maxAbsDiff(t1.apply(text, evalCtx()).x, t2.apply(text, evalCtx()).x)).toBe(0);
    });
  });

  it('rejects features of the wrong width', () => {
    const p = new Params(0);
    const enc = new ModalityEncoder(p.scope('e'), 'audio', 7, 16);
    tf.tidy(() => {
      expect(() => enc.apply(sequence(rngFor(0), [2], 2, 8), evalCtx())).toThrow(/expects feature width 7, got 8/);
    });
  });
});

describe('experts', () => {
  const cases = [
    ['local', (p: Params) => new LocalExpert(p.scope('x'), 'local.0', MODS, 16, { width: 8, depth: 2, kernels: [1, 3, 4] })],
    ['semantic', (p: Params) => new SemanticExpert(p.scope('x'), 'semantic.0', MODS, 16, { width: 8, depth: 2, heads: 2 })],
    ['global transformer', (p: Params) => new GlobalExpert(p.scope('x'), 'global.0', MODS, 16, { width: 8, depth: 2, heads: 2, kind: 'transformer' })],
    ['global gru', (p: Params) => new GlobalExpert(p.scope('x'), 'global.0', MODS, 16, { width: 8, depth: 2, heads: 2, kind: 'gru' })],
  ] as const;
  for (const [name, make] of cases) {
    it(`${name}: [B, M, d] out, padding frames change nothing`, () => {
      tf.tidy(() => {
        const { p, a, b } = encodedPair(3);
        const expert = make(p);
        const ya = expert.apply(a, evalCtx());
        expect(ya.shape).toEqual([3, 3, 16]);
        expect(maxAbsDiff(ya, expert.apply(b, evalCtx()))).toBeLessThan(1e-4);
        // Changing a real frame does change the output (the test can fail).
        const changed = a.map((s, i) => (i === 1 ? { x: tf.add(s.x, tf.mul(tf.expandDims(s.mask, 2), 0.5)) as tf.Tensor3D, mask: s.mask } : s));
        expect(maxAbsDiff(ya, expert.apply(changed, evalCtx()))).toBeGreaterThan(1e-3);
      });
    });
  }

  it('a sample with no frames in a modality pools to a finite vector', () => {
    tf.tidy(() => {
      const p = new Params(4);
      const rng = rngFor(4);
      const enc = new ModalityEncoder(p.scope('e'), 'audio', 7, 16);
      const seqs = [sequence(rng, [3, 2], 3, 7), sequence(rng, [2, 0], 2, 7)].map((s) => enc.apply(s, evalCtx()));
      const mods = ['text', 'audio'] as const;
      for (const e of [new LocalExpert(p.scope('l'), 'l', mods, 16, { width: 8, depth: 1, kernels: [3] }), new SemanticExpert(p.scope('s'), 's', mods, 16, { width: 8, depth: 1, heads: 2 })]) {
        const y = e.apply(seqs, evalCtx()).dataSync();
        expect(Array.from(y).every(Number.isFinite)).toBe(true);
      }
    });
  });
});

describe('hierarchical gating', () => {
  const experts = [
    { kind: 'local' as const, name: 'local.0' },
    { kind: 'local' as const, name: 'local.1' },
    { kind: 'semantic' as const, name: 'semantic.0' },
    { kind: 'global' as const, name: 'global.0' },
  ];

  interface GateArrays {
    fused: number[];
    expert: number[][];
    modality: number[][][] | null;
    kind: number[][] | null;
    balance: number;
  }
  function run(depth: number, topK: number, temperature = 1, std = 1): GateArrays {
    let out: GateArrays | undefined;
    tf.tidy(() => {
      const rng = rngFor(9);
      const p = new Params(5);
      const gate = new HierarchicalGate(p.scope('g'), experts, 3, 48, { depth, temperature, top_k: topK });
      // Larger gate weights than the near-uniform init, so the weights differ visibly.
      for (const [name, v] of p.vars) if (name.endsWith('.weight') && v.shape.length === 2) v.assign(tf.randomNormal(v.shape, 0, std, 'float32', 1));
      const ctx = tf.tensor2d(Array.from({ length: 4 * 48 }, () => rng() * 2 - 1), [4, 48]);
      const outs = experts.map(() => tf.tensor3d(Array.from({ length: 4 * 3 * 16 }, () => rng()), [4, 3, 16]));
      const g = gate.apply(ctx, outs);
      out = {
        fused: g.fused.shape,
        expert: g.expert.arraySync() as number[][],
        modality: g.modality === null ? null : (g.modality.arraySync() as number[][][]),
        kind: g.kind === null ? null : (g.kind.arraySync() as number[][]),
        balance: g.balance.dataSync()[0]!,
      };
    });
    return out!;
  }

  const sum = (r: number[]) => r.reduce((a, b) => a + b, 0);

  for (const depth of [1, 2, 3]) {
    it(`depth ${depth}: every gate's weights sum to 1`, () => {
      const g = run(depth, 0);
      expect(g.fused).toEqual([4, 16]);
      for (const row of g.expert) expect(sum(row)).toBeCloseTo(1, 5);
      if (depth === 1) expect(g.modality).toBeNull();
      else for (const s of g.modality!) for (const row of s) expect(sum(row)).toBeCloseTo(1, 5);
      if (depth === 3) for (const row of g.kind!) expect(sum(row)).toBeCloseTo(1, 5);
      else expect(g.kind).toBeNull();
    });
  }

  it('depth 3: an expert weight is its kind weight times its share within the kind', () => {
    const g = run(3, 0);
    for (let i = 0; i < 4; i++) {
      expect(g.expert[i]![0]! + g.expert[i]![1]!).toBeCloseTo(g.kind![i]![0]!, 5);
      expect(g.expert[i]![2]!).toBeCloseTo(g.kind![i]![1]!, 5);
    }
  });

  it('top-k keeps k experts per sample and renormalises', () => {
    for (const depth of [1, 2, 3]) {
      const g = run(depth, 2);
      for (const row of g.expert) {
        expect(row.filter((v) => v === 0)).toHaveLength(2);
        expect(sum(row)).toBeCloseTo(1, 5);
      }
    }
    tf.tidy(() => {
      const p = applyTopK(tf.tensor2d([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]]), 1).arraySync();
      expect(p).toEqual([[0, 1, 0], [1, 0, 0]]);
    });
  });

  it('a lower temperature sharpens the gates', () => {
    const entropy = (rows: number[][]) => rows.reduce((s, r) => s - r.reduce((a, v) => a + (v > 0 ? v * Math.log(v) : 0), 0), 0);
    const hot = run(2, 0, 5);
    const cold = run(2, 0, 0.2);
    expect(entropy(cold.expert)).toBeLessThan(entropy(hot.expert) - 0.5);
    tf.tidy(() => {
      expect(gateSoftmax(tf.tensor1d([0, Math.log(3)]), 1).arraySync()).toEqual([expect.closeTo(0.25, 6), expect.closeTo(0.75, 6)]);
      expect(gateSoftmax(tf.tensor1d([0, Math.log(3)]), 0.5).arraySync()).toEqual([expect.closeTo(0.1, 6), expect.closeTo(0.9, 6)]);
    });
  });

  it('balance loss matches a hand-computed case', () => {
    tf.tidy(() => {
      // Both samples route to expert 0: f = [1, 0], P = [0.65, 0.35] → 2 · 0.65.
      expect(balanceLoss(tf.tensor2d([[0.7, 0.3], [0.6, 0.4]]), 0).dataSync()[0]).toBeCloseTo(1.3, 6);
      // Perfect balance gives 1.
      expect(balanceLoss(tf.tensor2d([[0.9, 0.1], [0.1, 0.9]]), 0).dataSync()[0]).toBeCloseTo(1, 6);
      // Top-2 of 3: f = [2/4, 1/4, 1/4], P = [0.5, 0.3, 0.2] → 3 · (0.25 + 0.075 + 0.05).
      expect(balanceLoss(tf.tensor2d([[0.5, 0.4, 0.1], [0.5, 0.2, 0.3]]), 2).dataSync()[0]).toBeCloseTo(1.125, 6);
      // Ties go to the lower index: f = [1, 0], P = [0.5, 0.5] → 2 · 0.5.
      expect(balanceLoss(tf.tensor2d([[0.5, 0.5], [0.5, 0.5]]), 0).dataSync()[0]).toBeCloseTo(1, 6);
      expect(applyTopK(tf.tensor2d([[0.4, 0.4, 0.2]]), 1).arraySync()).toEqual([[1, 0, 0]]);
      expect(applyTopK(tf.tensor2d([[0.2, 0.4, 0.4]]), 2).arraySync()).toEqual([[0, 0.5, 0.5]]);
    });
  });

  it('the routing choice is not differentiated: the balance loss and top-k pass gradients through the weights only', () => {
    tf.tidy(() => {
      const logits = tf.variable(tf.tensor2d([[1, 2, 0.5], [0.3, 0.1, 0.2]]));
      const { grads } = tf.variableGrads(() => tf.add(balanceLoss(tf.softmax(logits) as tf.Tensor2D, 2), tf.sum(applyTopK(tf.softmax(logits) as tf.Tensor2D, 2))) as tf.Scalar, [logits]);
      const g = grads[logits.name]!.arraySync() as number[][];
      expect(g.flat().every(Number.isFinite)).toBe(true);
      expect(g.flat().some((v) => Math.abs(v) > 1e-4)).toBe(true);
      logits.dispose();
    });
  });

  it('rejects a top_k above the number of experts, naming the key', () => {
    const p = new Params(0);
    expect(() => new HierarchicalGate(p.scope('g'), experts, 3, 48, { depth: 2, temperature: 1, top_k: 5 })).toThrow(/model\.gating\.top_k.*exceeds the 4/);
  });
});

describe('pseudo tokens', () => {
  it('make K tokens of the LLM width at the embedding scale', () => {
    tf.tidy(() => {
      const p = new Params(2);
      const proj = new PseudoTokenProjector(p.scope('p'), 16, 3, 24, 2.5);
      const y = proj.apply(tf.randomNormal([4, 16], 0, 1, 'float32', 3), evalCtx());
      expect(y.shape).toEqual([4, 3, 24]);
      const norms = tf.norm(y, 'euclidean', -1).dataSync();
      for (const n of norms) expect(n).toBeCloseTo(2.5, 2);
    });
  });
});

describe('fusion network', () => {
  const dims = { inputs: { text: 12, audio: 7, vision: 5 }, llmWidth: 24, embeddingNorm: 1 };
  function inputs(seed: number) {
    const rng = rngFor(seed);
    return MODS.map((m, i) => sequence(rng, LENGTHS[i]!, Math.max(...LENGTHS[i]!), DIMS[m]));
  }

  it('builds count experts per enabled kind with separate weights, named for checkpoints', () => {
    const f = new FusionNetwork(tinyModel({ experts: { local: { count: 2 }, semantic: { enabled: false } } }), dims, 1);
    expect(f.experts.map((e) => e.name)).toEqual(['local.0', 'local.1', 'global.0']);
    const names = [...f.params.vars.keys()];
    expect(names).toContain('egmf.experts.local.0.audio.l0.conv.k3.weight');
    expect(names).toContain('egmf.experts.local.1.audio.l0.conv.k3.weight');
    expect(names.some((n) => n.includes('semantic'))).toBe(false);
    const w0 = f.params.vars.get('egmf.experts.local.0.audio.l0.conv.k3.weight')!;
    const w1 = f.params.vars.get('egmf.experts.local.1.audio.l0.conv.k3.weight')!;
    expect(maxAbsDiff(w0, w1)).toBeGreaterThan(0.01);
    tf.tidy(() => {
      const out = f.apply(inputs(2), evalCtx());
      expect(out.pseudo.shape).toEqual([3, 2, 24]);
      expect(out.gates.expert.shape).toEqual([3, 3]);
    });
    f.dispose();
  });

  for (const only of ['local', 'semantic', 'global'] as const) {
    it(`runs with only the ${only} expert`, () => {
      const off = Object.fromEntries((['local', 'semantic', 'global'] as const).filter((k) => k !== only).map((k) => [k, { enabled: false }]));
      const f = new FusionNetwork(tinyModel({ experts: off, gating: { depth: 3 } }), dims, 1);
      expect(f.experts.map((e) => e.kind)).toEqual([only]);
      tf.tidy(() => {
        expect(f.apply(inputs(2), evalCtx()).pseudo.shape).toEqual([3, 2, 24]);
      });
      f.dispose();
    });
  }

  it('dropout acts only in training and repeats for the same seed stream', () => {
    const f = new FusionNetwork(tinyModel({ dropout: 0.3 }), dims, 1);
    const train = (seed: number) => {
      let n = 0;
      return { training: true, dropout: 0.3, nextSeed: () => seed * 1000 + n++ };
    };
    tf.tidy(() => {
      const x = inputs(2);
      const a = f.apply(x, train(1)).pseudo;
      expect(maxAbsDiff(a, f.apply(x, train(1)).pseudo)).toBe(0);
      expect(maxAbsDiff(a, f.apply(x, train(2)).pseudo)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(f.apply(x, evalCtx()).pseudo, f.apply(x, evalCtx()).pseudo)).toBe(0);
      expect(maxAbsDiff(a, f.apply(x, evalCtx()).pseudo)).toBeGreaterThan(1e-3);
    });
    f.dispose();
  });

  it('expert_norm puts every expert on one scale before the gate', () => {
    // Scaling the local expert's output layer by 50 leaves the fused vector unchanged when
    // each expert output is layer-normalised, and swamps it when not.
    for (const expertNorm of [true, false]) {
      const f = new FusionNetwork(tinyModel({ gating: { expert_norm: expertNorm } }), dims, 3);
      expect([...f.params.vars.keys()].filter((n) => n.startsWith('egmf.gate.expert_norm.')).length).toBe(expertNorm ? 6 : 0);
      const x = inputs(4);
      const before = tf.tidy(() => f.apply(x, evalCtx()).gates.fused);
      for (const n of ['egmf.experts.local.0.out.weight', 'egmf.experts.local.0.out.bias']) {
        const v = f.params.vars.get(n)!;
        v.assign(tf.tidy(() => tf.mul(v, 50)));
      }
      const after = tf.tidy(() => f.apply(x, evalCtx()).gates.fused);
      const change = maxAbsDiff(before, after) / tf.tidy(() => tf.max(tf.abs(before)).dataSync()[0]!);
      if (expertNorm) expect(change).toBeLessThan(1e-4);
      else expect(change).toBeGreaterThan(1);
      tf.dispose([before, after]);
      f.dispose();
    }
  });

  it('text-only ablation works without the semantic expert', () => {
    const f = new FusionNetwork(tinyModel({ modalities: ['text'], experts: { semantic: { enabled: false } } }), dims, 1);
    tf.tidy(() => {
      expect(f.apply([inputs(2)[0]!], evalCtx()).pseudo.shape).toEqual([3, 2, 24]);
    });
    f.dispose();
  });

  it('config errors name the key', () => {
    expect(() => tinyModel({ experts: { local: { enabled: false }, semantic: { enabled: false }, global: { enabled: false } } })).toThrow(/model\.experts/);
    expect(() => tinyModel({ modalities: ['text'] })).toThrow(/model\.experts\.semantic\.enabled/);
    expect(() => tinyModel({ experts: { global: { heads: 3 } } })).toThrow(/model\.experts\.global\.heads/);
    expect(() => tinyModel({ gating: { depth: 4 } })).toThrow(/model\.gating\.depth/);
    expect(() => tinyModel({ gating: { temperature: 0 } })).toThrow(/model\.gating\.temperature/);
    expect(() => tinyModel({ gating: { top_k: 4 } })).toThrow(/model\.gating\.top_k.*exceeds the 3 enabled experts/);
    expect(() => new FusionNetwork({ ...tinyModel(), gating: { depth: 2, temperature: 1, top_k: 4, balance_weight: 0, expert_norm: true } }, dims, 0)).toThrow(EgmfError);
    expect(() => new FusionNetwork(tinyModel(), { ...dims, inputs: { text: 12, audio: 7 } }, 0)).toThrow(/modality 'vision'.*model\.modalities|model\.modalities.*vision/);
    expect(() => validateExperiment({ model: { experts: { local: { kernels: [0] } } } })).toThrow(/model\.experts\.local\.kernels/);
    expect(() => validateExperiment({ model: { positions: 'frames' } })).toThrow(/model\.positions/);
    expect(() => validateExperiment({ model: { gating: { expert_norm: 'yes' } } })).toThrow(/model\.gating\.expert_norm/);
    expect(() => validateExperiment({ data: { shorten: 'crop' } })).toThrow(/data\.shorten/);
  });
});
