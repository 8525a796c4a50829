// Trade results by (portfolio, trade_id): durable idempotency. The first result stored wins; a result
// still queued or in flight answers a retry before its commit.

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

  constructor(
    private readonly queue: WriteQueue,
    private readonly trades: Database<unknown, Key>,
  ) {
    this.tradeEncoder = encoderOf(trades);
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
    return this.trades.get([portfolioId, tradeId]);
  }

  write(b: Batch): void {
    for (const t of b.trades) this.trades.put(t.key, asBinary(t.bin));
  }

  settled(b: Batch): void {
    for (const t of b.trades) this.pendingTrades.delete(t.pending);
  }
}
