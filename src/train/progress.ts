/**
 * Training progress: a one-line bar with rate, ETA and live loss/metric on a terminal;
 * plain periodic lines when output is not a terminal (CI logs, sweeps, files).
 */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): boolean;
}

export interface ProgressOptions {
  total: number;
  label?: string;
  /** Seconds between plain lines when not a terminal. */
  plainEvery?: number;
  stream?: ProgressStream;
  now?: () => number;
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly start: number;
  private lastPlain: number;
  private done = 0;
  private fields: Record<string, number | string> = {};
  private readonly tty: boolean;

  constructor(private readonly o: ProgressOptions) {
    this.stream = o.stream ?? process.stderr;
    this.now = o.now ?? (() => performance.now() / 1000);
    this.start = this.now();
    this.lastPlain = this.start;
    this.tty = Boolean(this.stream.isTTY);
  }

  /** Advances by `n` steps and updates the live fields (e.g. loss). */
  tick(n = 1, fields: Record<string, number | string> = {}): void {
    this.done += n;
    this.fields = { ...this.fields, ...fields };
    const t = this.now();
    if (this.tty) {
      this.stream.write(`\r${this.line(t)}\x1b[K`);
    } else if (t - this.lastPlain >= (this.o.plainEvery ?? 10) || this.done === this.o.total) {
      this.lastPlain = t;
      this.stream.write(`${this.line(t)}\n`);
    }
  }

  /** Prints a message on its own line without breaking the bar. */
  log(message: string): void {
    this.stream.write(this.tty ? `\r\x1b[K${message}\n` : `${message}\n`);
  }

  finish(): void {
    if (this.tty) this.stream.write(`\r${this.line(this.now())}\x1b[K\n`);
  }

  line(t: number): string {
    const elapsed = Math.max(1e-9, t - this.start);
    const rate = this.done / elapsed;
    const left = rate > 0 ? (this.o.total - this.done) / rate : Number.NaN;
    const pct = this.o.total > 0 ? this.done / this.o.total : 0;
    const extra = Object.entries(this.fields)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? fmtNum(v) : v}`)
      .join('  ');
    const head = `${this.o.label ? `${this.o.label} ` : ''}`;
    const stats = `${this.done}/${this.o.total} ${rate.toFixed(2)} it/s ETA ${fmtTime(left)} elapsed ${fmtTime(elapsed)}`;
    if (!this.tty) return `${head}${(pct * 100).toFixed(0)}% ${stats}${extra ? `  ${extra}` : ''}`;
    const width = Math.max(10, Math.min(30, (this.stream.columns ?? 100) - head.length - stats.length - extra.length - 12));
    const filled = Math.round(pct * width);
    return `${head}[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${stats}${extra ? `  ${extra}` : ''}`;
  }
}

function fmtNum(v: number): string {
  return Math.abs(v) >= 100 || v === 0 ? v.toFixed(1) : v.toPrecision(4);
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}
