// Tick batches, pipelined and bounded: at most batchesInFlightMax batches are posted to the shards and
// not yet answered (2 by default: a shard revalues and encodes batch k+1 while the main thread routes
// batch k's deltas; 1 is strict lockstep). While the bound is reached, ticks keep coalescing, so
// batches grow with load instead of queues. A tick leaves the main thread here (flush posts the batch
// to every ready shard) and its batch ends in batchDone, once every shard it went to has answered.

import { performance } from 'node:perf_hooks';
import type { Clock } from '../../domain/types.js';
import type { Coalescer, TickBatch } from '../coalescer.js';
import type { EngineCounters } from '../counters.js';
import type { LatencyWindow } from '../latencyWindow.js';
import type { Lifecycle } from '../lifecycle.js';
import type { ResolvedOptions } from '../options.js';
import type { ShardHandle } from '../shardHandle.js';
import type { SymbolTable } from '../symbols.js';
import type { TickTape } from '../tickTape.js';
import type { LastPrices } from './lastPrices.js';

export interface LockstepDeps {
  o: ResolvedOptions;
  clock: Clock;
  life: Lifecycle;
  counters: EngineCounters;
  latency: LatencyWindow;
  coalescer: Coalescer;
  prices: LastPrices;
  shards: readonly ShardHandle[];
  symbols: SymbolTable;
  /** The intake's tape when bars are tapped (it comes and goes). */
  tape: () => TickTape | null;
  announceSymbols: () => void;
}

/** A batch posted and not yet answered by every shard it went to. */
interface InFlight {
  number: number;
  /** Shards that have not answered yet. */
  remaining: number;
  /** Null for a restarted shard's price resend (no arrival to measure from). */
  batch: TickBatch | null;
}

export class Lockstep {
  flushScheduled = false;
  /** A corporate step holds every other message to the shards (see corporateDesk.ts). */
  corporateHold = false;
  /** Oldest first; at most batchesInFlightMax tick batches (plus restarted shards' price resends). */
  private readonly inFlight: InFlight[] = [];
  private drainWaiters: (() => void)[] = [];
  private nextBatch = 1;

  constructor(private readonly d: LockstepDeps) {}

  /** Batches posted and not yet answered. */
  get batchesOutstanding(): number {
    return this.inFlight.length;
  }

  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const run = () => {
      this.flushScheduled = false;
      this.flush();
    };
    if (this.d.o.coalesceWindowMs > 0) setTimeout(run, this.d.o.coalesceWindowMs);
    else setImmediate(run);
  }

  /** At most batchesInFlightMax batches at a time across all shards: past it, ticks keep coalescing. */
  private flush(): void {
    const { coalescer, prices } = this.d;
    this.d.tape()?.handOff();
    if (this.inFlight.length >= this.d.o.limits.batchesInFlightMax || coalescer.count === 0 || this.d.life.closed || this.corporateHold) return;
    this.d.announceSymbols();
    const batch = coalescer.drain();
    for (let k = 0; k < batch.n; k++) {
      const id = batch.syms[k];
      prices.lastPrice[id] = batch.prices[k];
      prices.lastPriceTs[id] = batch.ts[k];
      prices.priceDirty[id] = 1;
    }
    const entry: InFlight = { number: this.nextBatch++, remaining: 0, batch };
    this.inFlight.push(entry);
    const now = this.d.clock.now();
    for (const h of this.d.shards) {
      if (h.state !== 'ready') continue;
      h.batchesInFlight.push(entry.number);
      entry.remaining++;
      h.post({ t: 'ticks', batch: entry.number, n: batch.n, syms: batch.syms, prices: batch.prices, ts: batch.ts, now });
    }
    this.d.counters.batches++;
    this.d.counters.batchTicks += batch.n;
    if (entry.remaining === 0) this.end(entry);
    // Room for another batch: the ticks that arrive meanwhile go out next turn, not after this one.
    else if (coalescer.count > 0 && this.inFlight.length < this.d.o.limits.batchesInFlightMax) this.scheduleFlush();
  }

  /**
   * Resolves once every tick ingested so far has been revalued (the unwatched portfolios too: every
   * shard settled, Shard.settle) and its updates delivered.
   */
  drain(): Promise<void> {
    if (this.drained()) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiters.push(resolve);
      this.scheduleFlush();
    });
  }

  private drained(): boolean {
    return this.d.coalescer.count === 0 && this.inFlight.length === 0 && this.d.shards.every((h) => !h.unsettled);
  }

  /** A shard sent the pass over the rest of its book: drain() may be over. */
  settled(): void {
    this.wakeDrainWaiters();
  }

  private wakeDrainWaiters(): void {
    if (this.drainWaiters.length === 0 || !this.drained()) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    queueMicrotask(() => waiters.forEach((w) => w()));
  }

  /** One shard answered batch `number` (or will never: it died). */
  batchDone(number: number): void {
    const entry = this.inFlight.find((e) => e.number === number);
    if (entry === undefined) return;
    if (--entry.remaining > 0) return;
    this.end(entry);
  }

  private end(entry: InFlight): void {
    this.inFlight.splice(this.inFlight.indexOf(entry), 1);
    const batch = entry.batch;
    if (batch !== null) {
      const ms = performance.now() - batch.oldestArrivalMs;
      this.d.latency.add(ms);
      this.d.counters.observeLatency(ms, batch.ts);
    }
    this.wakeDrainWaiters();
    if (this.d.coalescer.count > 0) this.scheduleFlush();
  }

  /** After a shard restart: the last prices as one batch to that shard alone. */
  resendPrices(h: ShardHandle): void {
    const { lastPrice, lastPriceTs } = this.d.prices;
    const n = this.d.symbols.size;
    const syms = new Int32Array(n);
    const prices = new Float64Array(n);
    const ts = new Float64Array(n);
    let k = 0;
    for (let id = 0; id < n; id++) {
      if (lastPrice[id] <= 0) continue;
      syms[k] = id;
      prices[k] = lastPrice[id];
      ts[k] = lastPriceTs[id];
      k++;
    }
    if (k === 0) return;
    const entry: InFlight = { number: this.nextBatch++, remaining: 1, batch: null };
    this.inFlight.push(entry);
    h.batchesInFlight.push(entry.number);
    h.post({ t: 'ticks', batch: entry.number, n: k, syms, prices, ts, now: this.d.clock.now() });
  }
}
