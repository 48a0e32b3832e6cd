/** Pretraining the built-in LLM: the causal-LM job, its corpora, and the get-or-pretrain of `builtin:tiny-qwen3`. */
export * from './pretrain.ts';
export * from './builtin.ts';
