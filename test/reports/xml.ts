/**
 * A strict XML well-formedness check for the SVGs the charts produce (Node has no DOM
 * parser): balanced tags, one root, quoted unique attributes, only declared entities.
 * Returns the problems found (empty when well formed) and the element names seen.
 */
export function checkXml(text: string): { problems: string[]; elements: Map<string, number> } {
  const problems: string[] = [];
  const elements = new Map<string, number>();
  const stack: string[] = [];
  let roots = 0;
  const entity = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  const token = /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>|<\/?[^>]*>|[^<]+/g;
  for (const m of text.matchAll(token)) {
    const t = m[0];
    if (t.startsWith('<!--') || t.startsWith('<![CDATA[') || t.startsWith('<?')) continue;
    if (!t.startsWith('<')) {
      if (entity.test(t)) problems.push(`bad entity in text at ${m.index}: ${t.slice(0, 40)}`);
      if (stack.length === 0 && t.trim() !== '') problems.push(`text outside the root at ${m.index}`);
      continue;
    }
    const close = /^<\/([A-Za-z_][\w.:-]*)\s*>$/.exec(t);
    if (close) {
      const open = stack.pop();
      if (open !== close[1]) problems.push(`</${close[1]}> closes <${open ?? 'nothing'}> at ${m.index}`);
      continue;
    }
    const tag = /^<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>$/.exec(t);
    if (!tag) {
      problems.push(`malformed tag at ${m.index}: ${t.slice(0, 80)}`);
      continue;
    }
    const names = [...tag[2]!.matchAll(/([A-Za-z_][\w.:-]*)\s*=/g)].map((a) => a[1]!);
    if (new Set(names).size !== names.length) problems.push(`duplicate attribute in <${tag[1]}> at ${m.index}`);
    for (const a of tag[2]!.matchAll(/=\s*(?:"([^"]*)"|'([^']*)')/g)) if (entity.test(a[1] ?? a[2] ?? '')) problems.push(`bad entity in an attribute of <${tag[1]}> at ${m.index}`);
    elements.set(tag[1]!, (elements.get(tag[1]!) ?? 0) + 1);
    if (stack.length === 0) roots++;
    if (tag[3] !== '/') stack.push(tag[1]!);
  }
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(' > ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return { problems, elements };
}

/** The text content of every <text> element (a multi-line one's lines joined by a space), entities decoded. */
export function svgTexts(svg: string): string[] {
  return [...svg.matchAll(/<text\b[^>]*>([\s\S]*?)<\/text>/g)].map((m) =>
    m[1]!.replace(/<\/tspan>\s*<tspan\b[^>]*>/g, ' ').replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;|&apos;/g, "'").replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d))).replace(/&amp;/g, '&'),
  );
}
