/**
 * Turns a planned textual affect into a sentence in the dataset's language. The plan says
 * what the text expresses (maybe not the label: see plan.ts); this file only realises it.
 */
import type { Language } from '../schema.ts';
import { LEXICONS } from './lexicon.ts';
import type { Strength } from './lexicon.ts';
import type { EmotionKey } from './presets.ts';
import type { Rng } from './random.ts';

function fill(template: string, slots: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => slots[k] ?? '');
}

/** Strong, weak or hedged wording for an intensity in [0, 1]. */
export function strengthOf(intensity: number): Strength {
  return intensity >= 0.75 ? 'strong' : intensity >= 0.55 ? 'weak' : 'hedged';
}

/**
 * A conversational utterance. `emotion` null: a neutral sentence with no emotion word.
 * The neutral class itself is said three ways: no emotion word (70%), a calm word (15%),
 * or a negated emotion ("I am not angry about it", 15%), so negation matters to a reader.
 */
export function utterance(lang: Language, emotion: EmotionKey | null, intensity: number, rng: Rng): string {
  const lex = LEXICONS[lang];
  const subj = rng.pick(lex.subjects);
  const slots: Record<string, string> = { S: subj.S, s: subj.s, be: subj.be, feel: subj.feel, have: subj.have, C: rng.pick(lex.contexts) };
  let mode: 'plain' | 'words' | 'negated' = emotion === null ? 'plain' : 'words';
  if (emotion === 'neutral') {
    const u = rng.next();
    mode = u < 0.7 ? 'plain' : u < 0.85 ? 'words' : 'negated';
  }
  if (mode === 'plain') return fill(rng.pick(lex.neutralTemplates), slots);
  if (mode === 'negated') {
    const others: EmotionKey[] = ['joy', 'surprise', 'anger', 'sadness', 'disgust', 'fear'];
    return fill(rng.pick(lex.negationTemplates), { ...slots, B: lex.base[rng.pick(others)] });
  }
  const words = lex.emotions[emotion!][strengthOf(intensity)];
  return fill(rng.pick(lex.emotionTemplates), { ...slots, W: rng.pick(words) });
}

/**
 * An opinion sentence expressing a score in [-1, 1] (normalised label units): |s| < 0.1 is
 * neutral (a third of exact zeros say "good and bad" instead), then hedged < 0.3 <= weak
 * < 0.6 <= strong. A fifth of weak or hedged opinions are said by negating the opposite
 * polarity ("not bad" is mildly positive).
 */
export function opinion(lang: Language, s: number, rng: Rng): string {
  const lex = LEXICONS[lang];
  const topic = rng.pick(lex.topics);
  const slots: Record<string, string> = { T: topic.T, t: topic.t };
  const a = Math.abs(s);
  if (a < 0.1) {
    const mixed = s === 0 && rng.next() < 1 / 3;
    return fill(rng.pick(mixed ? lex.reviewMixed : lex.reviewNeutral), slots);
  }
  const strength: Strength = a >= 0.6 ? 'strong' : a >= 0.3 ? 'weak' : 'hedged';
  if (strength !== 'strong' && rng.next() < 0.2) {
    const base = s > 0 ? lex.polarity.negBase : lex.polarity.posBase;
    return fill(rng.pick(lex.reviewNegation), { ...slots, B: rng.pick(base) });
  }
  const words = (s > 0 ? lex.polarity.pos : lex.polarity.neg)[strength];
  return fill(rng.pick(lex.reviewTemplates), { ...slots, W: rng.pick(words) });
}
