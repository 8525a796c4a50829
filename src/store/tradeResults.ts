// Trade results by (portfolio, trade_id): durable idempotency. The first result stored wins; a result
// still queued or in flight answers a retry before its commit.
//
// Compact on the ack path: the result itself is appended under a number (`tradeResultBodies`, keys in
// write order, so each commit fills pages at the end of the tree), and the (portfolio, trade_id) key
// holds only that number. A few hundred bytes inserted at random keys dirtied far more pages per
// trade than a number does: measured 29,018 bytes written per trade with the result under the random
// key, 8,098 with a one-byte value there (docs/BENCHMARKS.md). Directories written before keep their
// results inline under the (portfolio, trade_id) key; a value that is not a number is read as one.

import { asBinary, type Database, type Key } from 'lmdb';
import { assertKeyPart, encoderOf, keyPart, type Encoder } from './keys.js';
import type { Batch, QueueTable, WriteQueue } from './writeQueue.js';

export interface TradeResultWrite {
  key: [string, string];
  bin: Uint8Array;
  value: unknown;
  pending: string;
}

export class TradeResults implements QueueTable {
  /** Trade results enqueued or in flight, so a retry is answered before the commit. */
  private readonly pendingTrades = new Map<string, unknown>();
  private readonly tradeEncoder: Encoder;

  /** The number of the last result body written (bodies are keyed 1, 2, 3... in write order). */
  private lastBody: number;

  constructor(
    private readonly queue: WriteQueue,
    private readonly trades: Database<unknown, Key>,
    private readonly bodies: Database<unknown, Key>,
  ) {
    this.tradeEncoder = encoderOf(bodies);
    let last = 0;
    for (const key of bodies.getKeys({ reverse: true, limit: 1 })) last = key as number;
    this.lastBody = last;
  }

  /** Validates and encodes the results not stored yet (throws on a bad key, before anything is queued). */
  encode(tradeResults?: readonly { portfolio_id: string; trade_id: string; result: unknown }[]): TradeResultWrite[] {
    const trades: TradeResultWrite[] = [];
    if (tradeResults !== undefined) {
      for (const t of tradeResults) {
        assertKeyPart(t.portfolio_id, 'trade result portfolio_id');
        assertKeyPart(t.trade_id, 'trade_id');
        const pending = t.portfolio_id + '\u0000' + t.trade_id;
        // First result wins: a pending one, else a committed one. We are the only writer: exact.
        if (this.pendingTrades.has(pending) || trades.some((x) => x.pending === pending)) continue;
        if (this.trades.doesExist([t.portfolio_id, t.trade_id])) continue;
        trades.push({ key: [t.portfolio_id, t.trade_id], bin: this.tradeEncoder.encode(t.result), value: t.result, pending });
      }
    }
    return trades;
  }

  enqueue(trades: TradeResultWrite[]): void {
    const q = this.queue.queued;
    for (const t of trades) {
      this.pendingTrades.set(t.pending, t.value);
      q.trades.push(t);
    }
  }

  tradeResult(portfolioId: string, tradeId: string): unknown | undefined {
    const pending = this.pendingTrades.get(portfolioId + '\u0000' + tradeId);
    if (pending !== undefined) return pending;
    if (!keyPart(portfolioId) || !keyPart(tradeId)) return undefined;
    const v = this.trades.get([portfolioId, tradeId]);
    return typeof v === 'number' ? this.bodies.get(v) : v;
  }

  write(b: Batch): void {
    // Numbered here, inside the flush: a batch that never commits leaves no number behind it, since
    // every later flush is conditional on it (writeQueue.ts) and the store fails.
    for (const t of b.trades) {
      const n = ++this.lastBody;
      this.bodies.put(n, asBinary(t.bin));
      this.trades.put(t.key, n);
    }
  }

  settled(b: Batch): void {
    for (const t of b.trades) this.pendingTrades.delete(t.pending);
  }
}
