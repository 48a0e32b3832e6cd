/**
 * Tokenizers from a local `tokenizer.json` (+ `tokenizer_config.json`) via
 * @huggingface/tokenizers: offline, no network, the same ids as Python's tokenizers.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileStamp, StampCache } from '../../cache.ts';
import { EgmfError } from '../../errors.ts';
import { readJsonFile } from './checkpoint.ts';

export interface TextTokenizer {
  /** Token ids of `text`; special tokens (BOS...) only when `addSpecialTokens`. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string;
  /** Id of a token string (e.g. `<|im_end|>`), or undefined. */
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Size of the vocabulary including added tokens. */
  readonly vocabSize: number;
  readonly eosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  readonly bosTokenId: number | undefined;
}

function specialToken(cfg: Record<string, unknown>, key: string): string | undefined {
  const v = cfg[key];
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/**
 * Tokenizers already built in this process, by folder and the stamps of its two files. A
 * process that runs several trials or seeds (a reused sweep trial process, `seeds:` in one
 * `egmf train`) builds Qwen3's tokenizer (a 150k vocabulary and its merges, ~0.35 s) once. A
 * tokenizer is immutable, so every run can share it; a rewritten file is a new key.
 */
const built = new StampCache<TextTokenizer>(() => 4);

/** Loads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json` (built once per process while the files are unchanged). */
export function loadTokenizer(dir: string): TextTokenizer {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(dir)) throw new EgmfError('tokenizer folder not found', { file: dir });
  if (!existsSync(file)) throw new EgmfError('tokenizer.json not found (only fast-tokenizer JSON files are supported)', { file });
  const cfgFile = join(dir, 'tokenizer_config.json');
  const key = `${fileStamp(file)}\0${existsSync(cfgFile) ? fileStamp(cfgFile) : 'none'}`;
  const hit = built.get(key);
  if (hit !== undefined) return hit;
  const tok = buildTokenizer(file, cfgFile);
  built.set(key, tok);
  return tok;
}

function buildTokenizer(file: string, cfgFile: string): TextTokenizer {
  const json = readJsonFile(file) as Record<string, unknown>;
  if (json === null || typeof json !== 'object' || typeof json['model'] !== 'object') throw new EgmfError('not a tokenizers JSON file (no "model" object)', { file, key: 'model' });
  const cfg = (existsSync(cfgFile) ? readJsonFile(cfgFile) : {}) as Record<string, unknown>;
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, cfg);
  } catch (e) {
    throw new EgmfError(`cannot build the tokenizer: ${(e as Error).message}`, { file }, { cause: e });
  }
  const idOf = (key: string): number | undefined => {
    const t = specialToken(cfg, key);
    return t === undefined ? undefined : tok.token_to_id(t);
  };
  const vocabSize = tok.get_vocab(true).size;
  return {
    encode: (text, opts = {}) => tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids,
    decode: (ids, opts = {}) => tok.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecialTokens ?? false }),
    tokenToId: (t) => tok.token_to_id(t),
    idToToken: (id) => tok.id_to_token(id),
    vocabSize,
    eosTokenId: idOf('eos_token'),
    padTokenId: idOf('pad_token'),
    bosTokenId: idOf('bos_token'),
  };
}
