// Who listens to which portfolio in this process, and where each listener stands: a listener gets
// its snapshot first, then only updates newer than that snapshot. Bounded per portfolio.

import type { PortfolioSnapshot } from '../domain/types.js';
import type { Listener } from './api.js';
import type { Delta } from './deltas.js';

interface Subscription {
  readonly listener: Listener;
  /** Takes deltas as bytes (the server); otherwise updates are decoded into objects for it. */
  readonly bytes: boolean;
  /** Seq of the last message delivered; -1 until the snapshot arrives. */
  seq: number;
  /** It asked its shard to hold its deltas (Subscriptions.hold). */
  held: boolean;
}

export class Subscribers {
  private readonly byPortfolio = new Map<string, Set<Subscription>>();
  private total = 0;

  constructor(readonly subscribersPerPortfolioMax: number) {}

  get count(): number {
    return this.total;
  }

  has(portfolio: string): boolean {
    return (this.byPortfolio.get(portfolio)?.size ?? 0) > 0;
  }

  /** Listeners of one portfolio (the shard keeps the same count of watches). */
  countOf(portfolio: string): number {
    return this.byPortfolio.get(portfolio)?.size ?? 0;
  }

  portfolios(): IterableIterator<string> {
    return this.byPortfolio.keys();
  }

  /** Null when the portfolio already has subscribersPerPortfolioMax listeners. */
  add(portfolio: string, listener: Listener, bytes = false): Subscription | null {
    let set = this.byPortfolio.get(portfolio);
    if (set === undefined) {
      set = new Set();
      this.byPortfolio.set(portfolio, set);
    }
    if (set.size >= this.subscribersPerPortfolioMax) return null;
    const sub: Subscription = { listener, bytes, seq: -1, held: false };
    set.add(sub);
    this.total++;
    return sub;
  }

  /** The subscription of `listener` to `portfolio`, if any. */
  find(portfolio: string, listener: Listener): Subscription | undefined {
    const set = this.byPortfolio.get(portfolio);
    if (set === undefined) return undefined;
    for (const sub of set) if (sub.listener === listener) return sub;
    return undefined;
  }

  /** Listeners of `portfolio` holding their deltas. */
  heldOf(portfolio: string): number {
    let n = 0;
    for (const sub of this.byPortfolio.get(portfolio) ?? []) if (sub.held) n++;
    return n;
  }

  /** Returns true when this was the portfolio's last subscriber. */
  remove(portfolio: string, sub: Subscription): boolean {
    const set = this.byPortfolio.get(portfolio);
    if (set === undefined || !set.delete(sub)) return false;
    this.total--;
    if (set.size > 0) return false;
    this.byPortfolio.delete(portfolio);
    return true;
  }

  deliverSnapshot(sub: Subscription, snapshot: PortfolioSnapshot, resync: boolean): void {
    sub.seq = snapshot.seq;
    sub.listener({ kind: 'snapshot', snapshot, resync });
  }

  /** Resync: every current listener of the portfolio gets the snapshot as a fresh baseline. */
  resync(snapshot: PortfolioSnapshot): void {
    const set = this.byPortfolio.get(snapshot.portfolio_id);
    if (set === undefined) return;
    for (const sub of set) this.deliverSnapshot(sub, snapshot, true);
  }

  /** Bytes to byte listeners; an object (decoded once, on demand) to the others. */
  deliverDelta(delta: Delta): number {
    const set = this.byPortfolio.get(delta.portfolioId);
    if (set === undefined) return 0;
    let delivered = 0;
    for (const sub of set) {
      if (sub.seq < 0 || delta.seq <= sub.seq) continue;
      sub.seq = delta.seq;
      if (sub.bytes) sub.listener({ kind: 'delta', delta });
      else sub.listener({ kind: 'update', update: delta.update() });
      delivered++;
    }
    return delivered;
  }
}
