// When a lagging index table writes: the backlog of one table whose entries follow their data in a
// later transaction (eventIndex.ts, tradeResults.ts). Entries are taken into a flush once a whole
// chunk waits (entriesPerFlushMax), once the oldest has waited lagMaxMs, or when the store drains
// (close). A timer makes the age rule fire on an idle store.

import type { WriteQueue } from './writeQueue.js';

export class Lag {
  /** Entries enqueued and not yet taken into a flush. */
  untaken = 0;
  /** Readers waiting for the index to catch up (compaction): take what waits at once, whatever its age. */
  rush = 0;
  /** When the oldest untaken entry was enqueued (performance.now()), or when the last take left some behind. */
  private oldestAt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly queue: WriteQueue,
    readonly entriesPerFlushMax: number,
    private readonly lagMaxMs: number,
  ) {}

  added(n: number): void {
    if (n === 0) return;
    if (this.untaken === 0) this.oldestAt = performance.now();
    this.untaken += n;
    this.arm();
  }

  /** True when a flush should take entries now; `companion`: another index of the same flush takes its own. */
  due(companion = false): boolean {
    if (this.untaken === 0) return false;
    return companion || this.rush > 0 || this.queue.draining || this.untaken >= this.entriesPerFlushMax || performance.now() - this.oldestAt >= this.lagMaxMs;
  }

  /** How many to take now (0: not due). */
  take(companion = false): number {
    if (!this.due(companion)) return 0;
    const n = Math.min(this.untaken, this.entriesPerFlushMax);
    this.untaken -= n;
    if (this.untaken > 0) {
      // What is left is at most one chunk old: it waits its own lag from now at the latest.
      this.oldestAt = performance.now();
      this.arm();
    }
    return n;
  }

  private arm(): void {
    if (this.timer !== null || this.lagMaxMs === Infinity) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.untaken === 0) return;
      // Fired before the age of what is left now (a take reset it): wait again.
      if (this.due()) this.queue.scheduleFlush();
      else this.arm();
    }, this.lagMaxMs + 1);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
