// Subscriptions: where an update leaves the engine. A subscriber gets a snapshot, then the deltas the
// shards build for watched portfolios (deliver); after a shard restart its watchers are resynced.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import type { Clock, PortfolioSnapshot } from '../domain/types.js';
import type { Listener, SubscribeOptions } from './api.js';
import type { Delta } from './deltas.js';
import { HeldBook } from '../protocol/delta.js';
import type { Commit } from './commit.js';
import type { EngineCounters } from './counters.js';
import { knownPortfolio, type Directory } from './directory.js';
import type { ResolvedOptions } from './options.js';
import type { ShardHandle } from './shardHandle.js';
import { shardOf } from './shardOf.js';
import { Subscribers } from './subscribers.js';

export interface SubscriptionsDeps {
  o: ResolvedOptions;
  clock: Clock;
  counters: EngineCounters;
  directory: Directory;
  shards: readonly ShardHandle[];
  commit: Commit;
}

export class Subscriptions {
  private readonly subscribers: Subscribers;
  /**
   * Per subscribed portfolio: the positions its stream's readers hold (from its snapshot and the deltas
   * since), which the deltas' tick records are decoded against when a listener wants objects (the
   * server's JSON, merged and compat paths, in-process object listeners). Bounded by the subscribed
   * portfolios; read through only on deltas that carry a full position or a rate move.
   */
  private readonly held = new Map<string, HeldBook>();

  constructor(private readonly d: SubscriptionsDeps) {
    this.subscribers = new Subscribers(d.o.limits.subscribersPerPortfolioMax);
  }

  /** A delta from a shard, to every listener of its portfolio (bytes, or decoded once for objects). */
  readonly deliver = (d: Delta): void => {
    const held = this.held.get(d.portfolioId);
    if (held !== undefined) {
      held.observe(d.bytes, d.seq, d.fromSeq);
      d.held = held;
    }
    this.d.counters.updatesEmitted += this.subscribers.deliverDelta(d);
  };

  /** A snapshot delivered to a listener of the portfolio: what its stream's readers hold from now. */
  private heldFrom(snapshot: PortfolioSnapshot): void {
    let held = this.held.get(snapshot.portfolio_id);
    if (held === undefined) this.held.set(snapshot.portfolio_id, (held = new HeldBook()));
    if (snapshot.seq >= held.seq) held.reset(snapshot);
  }

  subscribe(portfolioId: string, listener: Listener, options: SubscribeOptions = {}): Result<() => void> {
    const k = knownPortfolio(this.d.directory, portfolioId);
    if (!k.ok) return k;
    const id = k.value;
    const sub = this.subscribers.add(id, listener, options.bytes === true);
    if (sub === null) return fail(ErrorCode.limit_exceeded, `subscribers per portfolio must be <= ${this.d.o.limits.subscribersPerPortfolioMax}`, 'portfolio_id');
    let active = true;
    // Delivered as the shard's answer is read: an update in the same message right after it is newer
    // (in a promise continuation it came too late and that update was dropped: a gap).
    void this.d.commit.run(id, { kind: 'snapshot', portfolio: id, now: this.d.clock.now(), watch: true }, (r) => {
      if (!active || r.error !== null || r.snapshot === null) return;
      this.heldFrom(r.snapshot);
      this.subscribers.deliverSnapshot(sub, r.snapshot, false);
    });
    return ok(() => {
      if (!active) return;
      active = false;
      if (this.subscribers.remove(id, sub)) this.held.delete(id);
      const h = this.d.shards[shardOf(id, this.d.o.workers)];
      if (sub.held) h.post({ t: 'hold', portfolio: id, on: false, now: this.d.clock.now() });
      h.post({ t: 'watch', portfolio: id, on: false });
    });
  }

  /** Conflation in the shard (Engine.holdDeltas): one hold per listener, counted by its shard. */
  hold(portfolioId: string, listener: Listener, on: boolean): void {
    const sub = this.subscribers.find(portfolioId, listener);
    if (sub === undefined || sub.held === on) return;
    sub.held = on;
    this.d.shards[shardOf(portfolioId, this.d.o.workers)].post({ t: 'hold', portfolio: portfolioId, on, now: this.d.clock.now() });
  }

  /** After a shard restart: watched portfolios are watched again and every listener gets a fresh snapshot. */
  async resyncShard(h: ShardHandle): Promise<void> {
    const mine = [...this.subscribers.portfolios()].filter((id) => shardOf(id, this.d.o.workers) === h.index);
    await Promise.all(
      mine.map(async (id) => {
        // As in subscribe(): the resync snapshot is in place before the next message's updates.
        await this.d.commit.run(id, { kind: 'snapshot', portfolio: id, now: this.d.clock.now(), watch: true }, (r) => {
          if (r.error !== null || r.snapshot === null) return;
          // The shard counts one watch per listener (subscribe() sends one each) and the snapshot above
          // counted one: without the others, the first unsubscribe silenced every remaining listener
          // (found by the simulator, seed 5).
          for (let i = 1; i < this.subscribers.countOf(id); i++) h.post({ t: 'watch', portfolio: id, on: true });
          // A fresh shard holds nothing: the listeners holding their deltas hold them again.
          for (let i = this.subscribers.heldOf(id); i > 0; i--) h.post({ t: 'hold', portfolio: id, on: true, now: this.d.clock.now() });
          this.heldFrom(r.snapshot);
          this.subscribers.resync(r.snapshot);
        });
      }),
    );
  }
}
