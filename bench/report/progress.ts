// Progress on stderr: a redrawn bar when stderr is a TTY, plain lines otherwise (CI logs, pipes).
const barWidth = 24;

export class Progress {
  private readonly tty: boolean;
  private task = '';
  private index = 0;
  private total = 0;
  private expectedMs = 0;
  private started = 0;
  private detail = '';
  private drawn = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(tty = process.stderr.isTTY === true) {
    this.tty = tty;
  }

  setTotal(total: number): void {
    this.total = total;
  }

  /** A new task (one scenario on one system); expectedMs sizes the bar (0 = unknown). */
  begin(task: string, expectedMs: number): void {
    this.index++;
    this.task = task;
    this.expectedMs = expectedMs;
    this.started = performance.now();
    this.detail = '';
    if (this.tty) {
      this.draw();
      // Long steps (builds, kernel runs) report nothing for a while: keep the clock moving.
      this.timer ??= setInterval(() => this.task !== '' && this.draw(), 500);
      this.timer.unref();
    } else process.stderr.write(`[${this.index}/${this.total}] ${task}\n`);
  }

  /** Current state of the task (e.g. "rate 200000/s, p99 3.1 ms"); redraws the bar, silent without a TTY. */
  update(detail: string): void {
    this.detail = detail;
    if (this.tty) this.draw();
  }

  /** A line that stays (results, warnings). */
  note(line: string): void {
    if (this.tty && this.drawn) process.stderr.write('\r\x1b[2K');
    process.stderr.write(line + '\n');
    this.drawn = false;
    if (this.tty && this.task !== '') this.draw();
  }

  end(): void {
    if (this.tty && this.drawn) process.stderr.write('\r\x1b[2K');
    this.drawn = false;
    this.task = '';
  }

  private draw(): void {
    const elapsed = performance.now() - this.started;
    const frac = this.expectedMs > 0 ? Math.min(1, elapsed / this.expectedMs) : 0;
    const filled = Math.round(frac * barWidth);
    const bar = '#'.repeat(filled) + '.'.repeat(barWidth - filled);
    const time = this.expectedMs > 0 ? `${(elapsed / 1000).toFixed(1)}/${(this.expectedMs / 1000).toFixed(0)} s` : `${(elapsed / 1000).toFixed(1)} s`;
    const line = `[${this.index}/${this.total}] ${this.task} [${bar}] ${time} ${this.detail}`;
    const width = process.stderr.columns || 120;
    process.stderr.write('\r\x1b[2K' + line.slice(0, Math.max(20, width - 1)));
    this.drawn = true;
  }
}
