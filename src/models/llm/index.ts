/**
 * The LLM side of EGMF: a Qwen2 / Qwen3 / LLaMA decoder in tfjs, Hugging Face checkpoints
 * and tokenizers from local disk, and PEFT-compatible LoRA.
 *
 *     await initBackend('auto');                       // src/models/backend
 *     const model = loadDecoder('/models/Qwen3-0.6B');  // config.json + safetensors
 *     const tok = loadTokenizer('/models/Qwen3-0.6B');
 *     const lora = new LoraModel(model);               // freezes the base
 *     lora.addAdapter('default', { r: 8, alpha: 16, dropout: 0.05, targetModules: ['q_proj', 'v_proj'] }, { seed: 1 });
 *     const loss = () => tf.tidy(() => {
 *       const h = model.forward({ inputsEmbeds, attentionMask, training: true }); // [B, T, D]
 *       return softmaxCrossEntropy(model.logitsFor(h, answerIds), targets, mask);  // restricted vocab
 *     });
 *     optimizer.minimize(loss, false, lora.trainableVariables());
 *     saveAdapter(lora, 'out/adapter');                // PEFT's adapter_config.json + adapter_model.safetensors
 *
 * Shapes: ids [B, T] int32; attention masks [B, T] of 0/1 (1 = real token, left or right
 * padding); hidden states [B, T, D]. Call `initBackend` first: model code relies on the
 * kernel fixes and gradients it registers.
 */
export { Decoder, paramSpecs, projectionModule, PROJECTIONS } from './decoder.ts';
export type { ForwardInput, ParamSpec, ProjectionHook, ProjectionName } from './decoder.ts';
export { parseDecoderConfig, makeDecoderConfig, configToJson, MODEL_TYPES } from './config.ts';
export type { DecoderConfig, ModelType } from './config.ts';
export { loadDecoder, loadDecoderConfig, saveDecoder } from './checkpoint.ts';
export { LoraModel, matchesTarget, validateLoraConfig } from './lora.ts';
export type { LoraAdapter, LoraConfig, LoraWeights } from './lora.ts';
export { saveAdapter, loadAdapter, readAdapterConfig } from './peft.ts';
export { loadTokenizer } from './tokenizer.ts';
export type { TextTokenizer } from './tokenizer.ts';
export { SafetensorsFile, readSafetensors, writeSafetensors } from './safetensors.ts';
export type { SafeDtype, TensorEntry, TensorToWrite } from './safetensors.ts';
export { benchDecoderStep } from './bench.ts';
export type { BenchOptions, BenchResult } from './bench.ts';
