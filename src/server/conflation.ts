// Conflation: a subscriber that cannot take every update (throttled, slow, or still waiting for its
// snapshot) keeps one PendingDelta per portfolio: totals and state of the latest update, positions
// merged by symbol (latest wins), seq range from_seq..seq. Memory: one entry per position, whatever
// the update rate. The TimerWheel schedules throttled flushes: one interval for the whole server,
// O(1) per schedule, at most one entry per subscription.

import type { PortfolioUpdate, PositionView } from '../domain/types.js';

export class PendingDelta {
  private fromSeq = 0;
  private last: PortfolioUpdate | null = null;
  private readonly positions = new Map<string, PositionView>();
  /** Updates merged since the last take(). */
  count = 0;

  get empty(): boolean {
    return this.last === null;
  }

  get seq(): number {
    return this.last === null ? 0 : this.last.seq;
  }

  /**
   * Merges an update; older or repeated seqs are ignored. Returns true when merged. `fromSeq`: the
   * first seq it covers (below u.seq for a delta the shard conflated).
   */
  add(u: PortfolioUpdate, fromSeq: number = u.seq): boolean {
    if (this.last !== null && u.seq <= this.last.seq) return false;
    if (this.last === null) this.fromSeq = fromSeq;
    this.last = u;
    for (const p of u.positions) this.positions.set(p.symbol, p);
    this.count++;
    return true;
  }

  /** Drops what precedes a snapshot at `seq` (the snapshot holds it); keeps the rest's range. */
  dropThrough(seq: number): void {
    if (this.last !== null && this.last.seq <= seq) this.clear();
    else if (this.last !== null && this.fromSeq <= seq) this.fromSeq = seq + 1;
  }

  /** The merged update and its from_seq; resets. Weights of positions the last update did not carry are recomputed. */
  take(): { update: PortfolioUpdate; fromSeq: number } | null {
    const last = this.last;
    if (last === null) return null;
    const fromSeq = this.fromSeq;
    let update: PortfolioUpdate;
    if (this.count === 1 && fromSeq === last.seq) {
      update = last;
    } else {
      const inLast = new Set(last.positions.map((p) => p.symbol));
      const gross = last.gross_exposure;
      const positions: PositionView[] = [];
      for (const p of this.positions.values()) {
        positions.push(inLast.has(p.symbol) ? p : { ...p, weight: gross > 0 ? (Math.abs(p.market_value) / gross) * 100 : 0 });
      }
      update = { ...last, positions };
    }
    this.clear();
    return { update, fromSeq };
  }

  clear(): void {
    this.last = null;
    this.fromSeq = 0;
    this.positions.clear();
    this.count = 0;
  }
}

/** Hashed timer wheel with a fixed horizon; items are scheduled at most once until they fire. */
export class TimerWheel<T> {
  private readonly slots: Set<T>[];
  private readonly where = new Map<T, number>();
  private cursor: number;

  constructor(
    readonly tickMs: number,
    horizonMs: number,
    now: number,
  ) {
    this.slots = Array.from({ length: Math.ceil(horizonMs / tickMs) + 2 }, () => new Set<T>());
    this.cursor = Math.floor(now / tickMs);
  }

  get size(): number {
    return this.where.size;
  }

  has(item: T): boolean {
    return this.where.has(item);
  }

  /** Fires `item` at the first tick at or after dueMs (clamped to the horizon, never in a past tick). */
  schedule(item: T, dueMs: number): void {
    if (this.where.has(item)) return;
    let tick = Math.ceil(dueMs / this.tickMs);
    if (tick <= this.cursor) tick = this.cursor + 1;
    if (tick > this.cursor + this.slots.length - 1) tick = this.cursor + this.slots.length - 1;
    const slot = tick % this.slots.length;
    this.slots[slot].add(item);
    this.where.set(item, slot);
  }

  cancel(item: T): void {
    const slot = this.where.get(item);
    if (slot === undefined) return;
    this.slots[slot].delete(item);
    this.where.delete(item);
  }

  /** Fires everything due up to `now`. */
  advance(now: number, fire: (item: T) => void): void {
    const target = Math.floor(now / this.tickMs);
    let steps = Math.min(target - this.cursor, this.slots.length);
    while (steps-- > 0) {
      this.cursor++;
      const slot = this.slots[this.cursor % this.slots.length];
      if (slot.size === 0) continue;
      const due = [...slot];
      slot.clear();
      for (const item of due) {
        this.where.delete(item);
        fire(item);
      }
    }
    if (this.cursor < target) this.cursor = target;
  }
}
