/**
 * Prompt conditioning: the bilingual task prompts and the layout of one LLM input,
 *   <Multimodal> [K pseudo tokens] [utterance tokens] </Multimodal> task prompt → answer EOS
 * (Chinese datasets use <多模态> … </多模态>), after MSE-Adapter's layout.
 */
import { EgmfError } from '../../errors.ts';
import type { AnswerTask, TextTokenizer } from './answers.ts';

export type PromptLanguage = 'en' | 'zh';

export interface PromptTemplates {
  open: string;
  close: string;
  classification: string;
  regression: string;
}

/** Built-in templates. `{labels}` becomes `<name:0, name:1, ...>`, `{range}` becomes `[-3.0, +3.0]`. */
export const PROMPTS: Record<PromptLanguage, PromptTemplates> = {
  en: {
    open: '<Multimodal>',
    close: '</Multimodal>',
    classification: ' Please select the emotion label of the above multimodal content from the target set {labels}. Assistant: The emotion is ',
    regression: ' Please predict the sentiment intensity of the above multimodal content in the range {range}. Assistant: The sentiment is ',
  },
  zh: {
    open: '<多模态>',
    close: '</多模态>',
    classification: '请选择适用于上述多模态内容的情绪标签：{labels}。助手: 情绪为',
    regression: '请对上述多模态内容的情感强度进行预测，范围在{range}之间。响应: 情感为',
  },
};

/** Fills a task prompt template; unknown `{placeholders}` are errors naming the template key. */
export function renderTaskPrompt(template: string, task: AnswerTask, key = 'model.prompt.template'): string {
  const labels = task.kind === 'classification' ? `<${task.labelNames.map((n, i) => `${n}:${i}`).join(', ')}>` : '';
  const range = task.kind === 'regression' ? `[${fmt(task.range[0])}, ${fmt(task.range[1])}]` : '';
  return template.replace(/\{(\w+)\}/g, (m, name: string) => {
    if (name === 'labels') {
      if (task.kind !== 'classification') throw new EgmfError('{labels} only applies to classification', { key });
      return labels;
    }
    if (name === 'range') {
      if (task.kind !== 'regression') throw new EgmfError('{range} only applies to regression', { key });
      return range;
    }
    throw new EgmfError(`unknown placeholder ${m} (use {labels} or {range})`, { key });
  });
}

function fmt(v: number): string {
  return `${v >= 0 ? '+' : '-'}${Math.abs(v).toFixed(1)}`;
}

/** Token ids of the fixed parts of a prompt, computed once per dataset. */
export interface PromptParts {
  open: number[];
  close: number[];
  task: number[];
}

export function buildPromptParts(tok: TextTokenizer, lang: PromptLanguage, task: AnswerTask, custom?: string | null): PromptParts {
  const t = PROMPTS[lang];
  const template = custom ?? (task.kind === 'classification' ? t.classification : t.regression);
  return { open: tok.encode(t.open), close: tok.encode(t.close), task: tok.encode(renderTaskPrompt(template, task)) };
}

/**
 * One sample's LLM input as segments. `pseudo` marks where K pseudo-token embeddings go.
 * Positions after left padding: [pad..., open, pseudo×K, text, close, task, target].
 */
export interface PromptLayout {
  /** Token ids before the pseudo tokens. */
  before: number[];
  /** Token ids between the pseudo tokens and the answer: utterance text, close marker, task prompt. */
  after: number[];
  /** Answer token ids (training only; empty at inference). */
  target: number[];
}

export function layoutSample(parts: PromptParts, textIds: readonly number[], maxTextTokens: number, target: readonly number[] = []): PromptLayout {
  return {
    before: parts.open,
    after: [...textIds.slice(0, maxTextTokens), ...parts.close, ...parts.task],
    target: [...target],
  };
}
