/**
 * One error type for everything a user can get wrong: a bad file, key, row or value.
 * The CLI prints `error: <message>` on stderr and exits non-zero; the context fields
 * make the message name where the problem is.
 */
export interface ErrorContext {
  /** File the problem was found in. */
  file?: string;
  /** Key (config key, column, pickle key, JSON field) that is wrong. */
  key?: string;
  /** Row (0-based sample index, or 1-based line number when `line` is set). */
  row?: number;
  /** 1-based line in a text file. */
  line?: number;
}

export class EgmfError extends Error {
  readonly context: ErrorContext;

  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(formatMessage(message, context), options);
    this.name = 'EgmfError';
    this.context = context;
  }
}

function formatMessage(message: string, ctx: ErrorContext): string {
  const where: string[] = [];
  if (ctx.file !== undefined) where.push(ctx.file);
  if (ctx.line !== undefined) where.push(`line ${ctx.line}`);
  if (ctx.row !== undefined) where.push(`row ${ctx.row}`);
  if (ctx.key !== undefined) where.push(`key '${ctx.key}'`);
  return where.length > 0 ? `${where.join(', ')}: ${message}` : message;
}

export function isEgmfError(e: unknown): e is EgmfError {
  return e instanceof EgmfError;
}
