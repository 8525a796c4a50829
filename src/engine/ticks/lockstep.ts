// Lockstep batches: one tick batch in flight across all shards at a time. While it is in flight,
// ticks keep coalescing, so batches grow with load instead of queues. A tick leaves the main thread
// here (flush posts the batch to every ready shard) and its batch ends in batchDone.

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

export class Lockstep {
  flushScheduled = false;
  /** A corporate step holds every other message to the shards (see corporateDesk.ts). */
  corporateHold = false;
  batchesOutstanding = 0;
  private drainWaiters: (() => void)[] = [];
  private currentBatch: TickBatch | null = null;
  private nextBatch = 1;

  constructor(private readonly d: LockstepDeps) {}

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

  /** One batch at a time across all shards: while one is in flight, ticks keep coalescing. */
  private flush(): void {
    const { coalescer, prices } = this.d;
    this.d.tape()?.handOff();
    if (this.batchesOutstanding > 0 || coalescer.count === 0 || this.d.life.closed || this.corporateHold) return;
    this.d.announceSymbols();
    const batch = coalescer.drain();
    for (let k = 0; k < batch.n; k++) {
      const id = batch.syms[k];
      prices.lastPrice[id] = batch.prices[k];
      prices.lastPriceTs[id] = batch.ts[k];
      prices.priceDirty[id] = 1;
    }
    this.currentBatch = batch;
    const number = this.nextBatch++;
    const now = this.d.clock.now();
    for (const h of this.d.shards) {
      if (h.state !== 'ready') continue;
      h.batchInFlight = true;
      this.batchesOutstanding++;
      h.post({ t: 'ticks', batch: number, n: batch.n, syms: batch.syms, prices: batch.prices, ts: batch.ts, now });
    }
    this.d.counters.batches++;
    this.d.counters.batchTicks += batch.n;
    if (this.batchesOutstanding === 0) this.batchDone();
  }

  /** Resolves once every tick ingested so far has been revalued and its updates delivered. */
  drain(): Promise<void> {
    if (this.d.coalescer.count === 0 && this.batchesOutstanding === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiters.push(resolve);
      this.scheduleFlush();
    });
  }

  batchDone(): void {
    if (this.batchesOutstanding > 0) this.batchesOutstanding--;
    if (this.batchesOutstanding > 0) return;
    if (this.d.coalescer.count === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      queueMicrotask(() => waiters.forEach((w) => w()));
    }
    const batch = this.currentBatch;
    this.currentBatch = null;
    if (batch !== null) {
      const ms = performance.now() - batch.oldestArrivalMs;
      this.d.latency.add(ms);
      this.d.counters.observeLatency(ms, batch.ts);
    }
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
    h.batchInFlight = true;
    this.batchesOutstanding++;
    h.post({ t: 'ticks', batch: 0, n: k, syms, prices, ts, now: this.d.clock.now() });
  }
}
