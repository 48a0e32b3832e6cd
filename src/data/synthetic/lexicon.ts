/**
 * Word lists and sentence templates for the synthetic text. Emotion words come in three
 * strengths (strong, weak, hedged); every class has words no other class uses, so a
 * bag-of-words model can read the class off the text whenever the text carries it.
 * Template slots: {S}/{s} subject (capitalised / mid-sentence), {be} {feel} {have} its
 * verb forms, {C} context, {W} emotion words, {B} a negated base word, {T}/{t} topic.
 */
import type { Language } from '../schema.ts';
import type { EmotionKey } from './presets.ts';

export interface Strengths {
  strong: readonly string[];
  weak: readonly string[];
  hedged: readonly string[];
}
export type Strength = keyof Strengths;

export interface Subject {
  S: string;
  s: string;
  be: string;
  feel: string;
  have: string;
}

export interface Lexicon {
  /** Per emotion; `neutral` holds calm words. */
  emotions: Record<EmotionKey, Strengths>;
  /** The word negated to say "not <emotion>". */
  base: Record<EmotionKey, string>;
  subjects: readonly Subject[];
  contexts: readonly string[];
  emotionTemplates: readonly string[];
  neutralTemplates: readonly string[];
  negationTemplates: readonly string[];
  /** Opinion monologues (regression presets). */
  polarity: { pos: Strengths; neg: Strengths; posBase: readonly string[]; negBase: readonly string[] };
  topics: readonly { T: string; t: string }[];
  reviewTemplates: readonly string[];
  reviewNeutral: readonly string[];
  reviewNegation: readonly string[];
  /** Both polarities at once: what an exact 0 often sounds like. */
  reviewMixed: readonly string[];
}

const en = (S: string, be: string, feel: string, have: string, lower = S.toLowerCase()): Subject => ({ S, s: lower, be, feel, have });

const EN: Lexicon = {
  emotions: {
    neutral: { strong: ['calm'], weak: ['relaxed', 'calm'], hedged: ['mostly fine'] },
    joy: { strong: ['thrilled', 'overjoyed', 'ecstatic'], weak: ['happy', 'glad', 'pleased'], hedged: ['kind of happy', 'a little pleased'] },
    surprise: { strong: ['stunned', 'astonished', 'shocked'], weak: ['surprised', 'amazed'], hedged: ['a bit surprised', 'kind of amazed'] },
    anger: { strong: ['furious', 'livid', 'enraged'], weak: ['angry', 'annoyed', 'irritated'], hedged: ['a little annoyed', 'sort of irritated'] },
    sadness: { strong: ['heartbroken', 'devastated', 'miserable'], weak: ['sad', 'upset', 'unhappy'], hedged: ['a bit sad', 'kind of down'] },
    disgust: { strong: ['disgusted', 'repulsed', 'sickened'], weak: ['grossed out', 'revolted'], hedged: ['a little grossed out', 'somewhat revolted'] },
    fear: { strong: ['terrified', 'petrified', 'horrified'], weak: ['scared', 'afraid', 'nervous'], hedged: ['a bit nervous', 'kind of scared'] },
  },
  base: { neutral: 'calm', joy: 'happy', surprise: 'surprised', anger: 'angry', sadness: 'sad', disgust: 'disgusted', fear: 'scared' },
  subjects: [
    en('I', 'am', 'feel', 'have', 'I'), en('She', 'is', 'feels', 'has'), en('He', 'is', 'feels', 'has'),
    en('We', 'are', 'feel', 'have'), en('They', 'are', 'feel', 'have'), en('Anna', 'is', 'feels', 'has', 'Anna'),
    en('Tom', 'is', 'feels', 'has', 'Tom'), en('My sister', 'is', 'feels', 'has'), en('The manager', 'is', 'feels', 'has'),
  ],
  contexts: [
    'about the apartment', 'after the phone call', 'about what happened at work', 'with the new roommate',
    'about the wedding plans', 'after the interview', 'at dinner last night', 'about the birthday party',
  ],
  emotionTemplates: ['{S} {be} {W} {C}.', 'Honestly, {s} {be} {W} {C}.', '{S} {feel} {W} {C}.', '{S} {be} {W} {C}, you know.'],
  neutralTemplates: ['{S} {be} talking {C}.', '{S} asked a question {C}.', '{S} said something {C}.', '{S} {have} a few things to say {C}.'],
  negationTemplates: ['{S} {be} not {B} {C}.', 'Honestly, {s} {be} not {B} {C}.'],
  polarity: {
    pos: { strong: ['amazing', 'fantastic', 'outstanding', 'brilliant'], weak: ['good', 'nice', 'enjoyable'], hedged: ['kind of enjoyable', 'somewhat nice'] },
    neg: { strong: ['terrible', 'awful', 'horrible', 'dreadful'], weak: ['bad', 'disappointing', 'boring'], hedged: ['a bit boring', 'somewhat disappointing'] },
    posBase: ['good', 'great'], negBase: ['bad', 'terrible'],
  },
  topics: [
    { T: 'The movie', t: 'the movie' }, { T: 'This phone', t: 'this phone' }, { T: 'The restaurant', t: 'the restaurant' },
    { T: 'The speech', t: 'the speech' }, { T: 'The novel', t: 'the novel' }, { T: 'The trip', t: 'the trip' },
    { T: 'The show', t: 'the show' }, { T: 'The new job', t: 'the new job' },
  ],
  reviewTemplates: ['{T} was {W}.', 'Honestly, {t} was {W}.', 'I thought {t} was {W}, to be honest.', 'In my opinion {t} was {W}.'],
  reviewNeutral: ['{T} came out last year.', 'We talked about {t} on Sunday.', 'I heard about {t} last week.', 'My friend told me about {t}.'],
  reviewNegation: ['{T} was not {B}.', 'Honestly, {t} was not {B} at all.'],
  reviewMixed: ['Parts of {t} were good and parts were bad.'],
};

const zh = (S: string): Subject => ({ S, s: S, be: '', feel: '', have: '' });

const ZH: Lexicon = {
  emotions: {
    neutral: { strong: ['十分淡定'], weak: ['很平静', '心平气和'], hedged: ['还算平静'] },
    joy: { strong: ['开心极了', '兴高采烈', '欣喜若狂'], weak: ['很开心', '挺高兴'], hedged: ['好像有点开心', '似乎挺满意'] },
    surprise: { strong: ['大吃一惊', '惊呆了', '震惊万分'], weak: ['很意外', '有些吃惊'], hedged: ['好像有点意外', '似乎有些诧异'] },
    anger: { strong: ['怒不可遏', '气坏了', '火冒三丈'], weak: ['很生气', '有些恼火'], hedged: ['好像有点生气', '似乎有些不满'] },
    sadness: { strong: ['伤心欲绝', '难过极了', '悲痛万分'], weak: ['很难过', '有些伤心'], hedged: ['好像有点难过', '似乎有些失落'] },
    disgust: { strong: ['恶心透了', '极其厌恶', '深恶痛绝'], weak: ['很反感', '有些嫌弃'], hedged: ['好像有点反感', '似乎有些嫌弃'] },
    fear: { strong: ['吓坏了', '惊恐万分', '毛骨悚然'], weak: ['很害怕', '有些担心'], hedged: ['好像有点害怕', '似乎有些不安'] },
  },
  base: { neutral: '平静', joy: '高兴', surprise: '意外', anger: '生气', sadness: '难过', disgust: '反感', fear: '害怕' },
  subjects: ['我', '他', '她', '我们', '妈妈', '老师', '小王', '这位同事', '邻居'].map(zh),
  contexts: ['对这次考试的结果', '对新的工作安排', '在昨天的会议上', '看到那封邮件时', '听到这个消息后', '说起那次旅行', '对室友的做法', '在婚礼上'],
  emotionTemplates: ['{S}{C}{W}。', '说实话，{S}{C}{W}。', '{S}{C}{W}，大家都看出来了。'],
  neutralTemplates: ['{S}{C}点了点头。', '{S}{C}说了几句话。', '{S}{C}提了一个问题。', '{S}{C}看了看手表。'],
  negationTemplates: ['{S}{C}并不{B}。', '{S}{C}其实不{B}。'],
  polarity: {
    pos: { strong: ['太精彩了', '好极了', '非常出色'], weak: ['挺不错的', '很好看', '令人满意'], hedged: ['好像还可以', '似乎还行'] },
    neg: { strong: ['太糟糕了', '糟透了', '非常差劲'], weak: ['有点差', '令人失望', '很无聊'], hedged: ['好像有点无聊', '似乎不太行'] },
    posBase: ['好', '精彩'], negBase: ['差', '糟糕'],
  },
  topics: ['这部电影', '这款手机', '这家餐厅', '他的演讲', '这本小说', '这次旅行', '这个节目', '这份工作'].map((t) => ({ T: t, t })),
  reviewTemplates: ['{T}{W}。', '我觉得{t}{W}。', '说实话，{t}{W}。', '在我看来，{t}{W}。'],
  reviewNeutral: ['{T}是上个月推出的。', '我是在周末接触到{t}的。', '{T}大约持续两个小时。', '朋友向我介绍过{t}。'],
  reviewNegation: ['{T}并不{B}。', '我觉得{t}一点也不{B}。'],
  reviewMixed: ['{T}有好的地方，也有差的地方。'],
};

export const LEXICONS: Record<Language, Lexicon> = { en: EN, zh: ZH };

/** Every emotion word of a class (all strengths), for tests and diagnostics. */
export function emotionWords(lang: Language, e: EmotionKey): string[] {
  const s = LEXICONS[lang].emotions[e];
  return [...s.strong, ...s.weak, ...s.hedged];
}
