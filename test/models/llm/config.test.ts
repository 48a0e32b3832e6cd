import { describe, expect, it } from 'vitest';
import { configToJson, parseDecoderConfig } from '../../../src/models/llm/index.ts';

// A transformers 4.x Qwen3 config.json (Qwen3-0.6B's fields, top-level rope_theta).
const qwen3_4x = {
  architectures: ['Qwen3ForCausalLM'], attention_bias: false, bos_token_id: 151643, eos_token_id: 151645, head_dim: 128,
  hidden_act: 'silu', hidden_size: 1024, intermediate_size: 3072, max_position_embeddings: 40960, model_type: 'qwen3',
  num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null,
  rope_theta: 1000000, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_sliding_window: false, vocab_size: 151936,
};

describe('decoder config', () => {
  it('parses transformers 4.x and 5.x spellings', () => {
    const c = parseDecoderConfig(qwen3_4x, 'config.json');
    expect([c.headDim, c.numKvHeads, c.ropeTheta, c.tieWordEmbeddings, c.qkNorm, c.qkvBias, c.eosTokenId]).toEqual([128, 8, 1e6, true, true, false, 151645]);
    const v5 = { ...qwen3_4x, rope_theta: undefined, rope_scaling: undefined, rope_parameters: { rope_theta: 5000, rope_type: 'default' } };
    expect(parseDecoderConfig(v5).ropeTheta).toBe(5000);
    const llama = parseDecoderConfig({ ...qwen3_4x, model_type: 'llama', head_dim: undefined, attention_bias: true, mlp_bias: true });
    expect([llama.headDim, llama.qkvBias, llama.oBias, llama.mlpBias, llama.qkNorm]).toEqual([64, true, true, true, false]);
  });

  it('keeps unknown fields when written back', () => {
    const json = configToJson(parseDecoderConfig({ ...qwen3_4x, custom_field: 7 }), 'float32');
    expect(json).toMatchObject({ custom_field: 7, dtype: 'float32', torch_dtype: 'float32', model_type: 'qwen3' });
  });

  it('rejects what the decoder cannot run, naming the key', () => {
    expect(() => parseDecoderConfig({ ...qwen3_4x, rope_scaling: { type: 'yarn', factor: 4 } }, 'c.json')).toThrow(/c\.json, key 'rope_scaling': unsupported rope type "yarn"/);
    expect(() => parseDecoderConfig({ ...qwen3_4x, hidden_act: 'gelu' }, 'c.json')).toThrow(/key 'hidden_act': unsupported hidden_act "gelu"/);
    expect(() => parseDecoderConfig({ ...qwen3_4x, hidden_size: undefined }, 'c.json')).toThrow(/key 'hidden_size': expected a positive integer, got undefined/);
    expect(() => parseDecoderConfig({ ...qwen3_4x, use_sliding_window: true }, 'c.json')).toThrow(/key 'use_sliding_window'/);
    expect(() => parseDecoderConfig({ ...qwen3_4x, head_dim: 7 }, 'c.json')).toThrow(/key 'head_dim': head dimension 7 must be an even integer/);
    expect(() => parseDecoderConfig([1], 'c.json')).toThrow(/c\.json: config is not a JSON object/);
  });
});
