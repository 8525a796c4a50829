// Last prices: the latest per symbol plus a bounded history (past marks), pricesPerFlushMax per flush.

import type { Database, Key } from 'lmdb';
import { assert } from '../assert.js';
import type { LastPrice } from '../domain/types.js';
import { BoundedHistory } from './history.js';
import { assertKeyPart, keyPart } from './keys.js';
import { deferred, type Batch, type Job, type QueueTable, type StoreError, type WriteQueue } from './writeQueue.js';

export class Prices implements QueueTable {
  private readonly priceJobs: Job<LastPrice>[] = [];
  /** The history db's writes, bounded per symbol (history.ts). */
  private readonly history: BoundedHistory;

  constructor(
    private readonly queue: WriteQueue,
    private readonly prices: Database<LastPrice, Key>,
    private readonly priceHistory: Database<number, Key>,
    pricesKeptMax: number,
    private readonly pricesPerFlushMax: number,
  ) {
    this.history = new BoundedHistory(priceHistory as Database<unknown, Key>, pricesKeptMax, false);
  }

  savePrices(prices: readonly LastPrice[]): Promise<void> {
    if (this.queue.failure !== null) return this.queue.rejected();
    if (prices.length === 0) return this.queue.barrier();
    for (const p of prices) {
      assertKeyPart(p.symbol, 'price symbol');
      assert(Number.isFinite(p.price) && Number.isFinite(p.ts), 'price needs a finite price and ts');
    }
    const job: Job<LastPrice> = { items: prices.map((p) => ({ symbol: p.symbol, price: p.price, ts: p.ts })), next: 0, done: deferred() };
    this.priceJobs.push(job);
    this.queue.backlogWrites += prices.length;
    this.queue.scheduleFlush();
    return job.done.promise;
  }

  loadPrices(): LastPrice[] {
    const out: LastPrice[] = [];
    for (const e of this.prices.getRange({})) out.push(e.value);
    return out;
  }

  priceAt(symbol: string, timestamp: number): number | undefined {
    return this.lastPriceAt(symbol, timestamp)?.price;
  }

  lastPriceAt(symbol: string, timestamp: number): LastPrice | undefined {
    if (!keyPart(symbol) || Number.isNaN(timestamp)) return undefined;
    for (const e of this.priceHistory.getRange({ start: [symbol, timestamp], end: [symbol], reverse: true, limit: 1 })) {
      return { symbol, price: e.value, ts: (e.key as [string, number])[1] };
    }
    return undefined;
  }

  take(b: Batch): void {
    let budget = this.pricesPerFlushMax;
    while (budget > 0 && this.priceJobs.length > 0) {
      const job = this.priceJobs[0];
      while (budget > 0 && job.next < job.items.length) {
        const p = job.items[job.next];
        b.prices.push(p);
        b.priceHistory.push({ id: p.symbol, at: p.ts, value: p.price });
        job.next++;
        budget--;
        b.writes++;
        this.queue.backlogWrites--;
      }
      if (job.next < job.items.length) break;
      this.priceJobs.shift();
      b.finished.push(job.done);
    }
  }

  write(b: Batch): void {
    for (const p of b.prices) this.prices.put(p.symbol, p);
    this.history.write(b, b.priceHistory);
  }

  settled(b: Batch): void {
    this.history.settled(b);
  }

  hasBacklog(): boolean {
    return this.priceJobs.length > 0;
  }

  lastJob(): Job<LastPrice> | undefined {
    return this.priceJobs[this.priceJobs.length - 1];
  }

  abandonJobs(failure: StoreError): void {
    for (const job of this.priceJobs) job.done.reject(failure);
    this.priceJobs.length = 0;
  }
}
