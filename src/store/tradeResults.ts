// Trade results by (portfolio, trade_id): durable idempotency. The first result stored wins; a result
// is answered from memory from its append until its key is in the committed index, so a retry is
// answered before its commit and while its key lags.
//
// Compact on the ack path: the result itself is appended under a number (`tradeResultBodies`, keys in
// write order, so each commit fills pages at the end of the tree) with its (portfolio, trade_id) beside
// it (`tradeResultKeys`, also by number). The (portfolio, trade_id) -> number key, random over
// portfolios, follows in the lagging index transaction (lag.ts; the event index's chunk, or its own):
// a few bytes inserted at random keys dirtied far more pages per trade than appends do (measured
// 29,018 bytes written per trade with the result under the random key, 8,098 with a one-byte value
// there, docs/BENCHMARKS.md). A crash leaves the keys behind the bodies: openStore catches them up
// (catchUp) from `tradeResultKeys` after meta 'indexedTradeResult'. Directories written before keep
// their results inline under the (portfolio, trade_id) key; a value that is not a number is read as one.

import { asBinary, type Database, type Key, type RootDatabase } from 'lmdb';
import { assertKeyPart, encoderOf, keyPart, type Encoder } from './keys.js';
import { Lag } from './lag.js';
import { FlatRecordWriter } from './flatRecord.js';
import type { Batch, QueueTable, TradeResultWrite, WriteQueue } from './writeQueue.js';

export type { TradeResultWrite } from './writeQueue.js';

const floorPrefix = 'tradeFloor:';
/** The first string after every tradeFloor:<id> key (';' follows ':'). */
const floorEnd = 'tradeFloor;';

/** Result bodies by number with their (portfolio, trade_id) beside them: the ack path's part, and a journal redo's. */
export function redoTradeBodies(bodies: Database<unknown, Key>, keys: Database<[string, string], Key>, trades: readonly { n: number; key: [string, string]; bin: Uint8Array }[]): void {
  for (const t of trades) {
    bodies.put(t.n, asBinary(t.bin));
    keys.put(t.n, t.key);
  }
}

export class TradeResults implements QueueTable {
  /** Trade results not yet in the committed index (queued, in flight, or lagging), so a retry is answered. */
  private readonly pendingTrades = new Map<string, TradeResultWrite>();
  /**
   * Per portfolio, the last result number of a copy this node dropped (a cluster partition it lost or
   * replaced by a shipped snapshot, forget()): results numbered at or below it belong to that copy and
   * are answered no more, nor do they keep a new result from being stored. Meta keys tradeFloor:<id>,
   * read at open; one per portfolio ever dropped here.
   */
  private readonly floors = new Map<string, number>();
  /** Results whose key is not yet in a flush, oldest first, from `head` on. */
  private keyBacklog: TradeResultWrite[] = [];
  private head = 0;
  private readonly tradeEncoder: Encoder;
  /** Flat results (a bulk import's compact ones) in msgpackr's bytes, written by hand (flatRecord.ts). */
  private readonly flat = new FlatRecordWriter();
  readonly lag: Lag;

  /** The number of the last result body enqueued (bodies are keyed 1, 2, 3... in enqueue order). */
  private lastBody: number;

  constructor(
    private readonly queue: WriteQueue,
    private readonly meta: Database<unknown, Key>,
    private readonly trades: Database<unknown, Key>,
    private readonly bodies: Database<unknown, Key>,
    private readonly keys: Database<[string, string], Key>,
    keysPerFlushMax: number,
    lagMaxMs: number,
  ) {
    this.tradeEncoder = encoderOf(bodies);
    let last = 0;
    for (const key of bodies.getKeys({ reverse: true, limit: 1 })) last = key as number;
    this.lastBody = last;
    this.lag = new Lag(queue, keysPerFlushMax, lagMaxMs);
    for (const { key, value } of meta.getRange({ start: floorPrefix, end: floorEnd })) if (typeof value === 'number') this.floors.set((key as string).slice(floorPrefix.length), value);
  }

  /**
   * Forgets the results of these portfolios so far (their copy left this node): in the batch being
   * filled. A later apply of the same id stores and answers its own result.
   */
  forget(portfolioIds: readonly string[]): void {
    for (const id of portfolioIds) {
      this.floors.set(id, this.lastBody);
      this.queue.queued.meta.push([floorPrefix + id, this.lastBody]);
      const prefix = id + '\u0000';
      for (const k of this.pendingTrades.keys()) if (k.startsWith(prefix)) this.pendingTrades.delete(k);
    }
    if (portfolioIds.length > 0) this.queue.scheduleFlush();
  }

  /** Whether the committed result number n of the portfolio belongs to a forgotten copy. */
  private forgotten(portfolioId: string, n: unknown): boolean {
    const floor = this.floors.get(portfolioId);
    // A result stored inline (a directory from before numbered bodies) is older than any floor.
    return floor !== undefined && (typeof n !== 'number' || n <= floor);
  }

  /**
   * At open, before any read: index the keys of results a crash left unindexed, in one synchronous
   * transaction. A directory without 'indexedTradeResult' was written before the keys lagged (all
   * indexed): the mark goes in the first commit. Returns the keys indexed.
   */
  catchUp(root: RootDatabase): number {
    const mark = this.meta.get('indexedTradeResult');
    if (typeof mark !== 'number') {
      this.queue.queued.meta.push(['indexedTradeResult', this.lastBody]);
      this.queue.scheduleFlush();
      return 0;
    }
    if (mark >= this.lastBody) return 0;
    let n = 0;
    root.transactionSync(() => {
      for (const { key, value } of this.keys.getRange({ start: mark, exclusiveStart: true })) {
        // First result wins, as at append time (one of a forgotten copy does not count).
        const k = value as [string, string];
        if (!this.trades.doesExist(k) || this.forgotten(k[0], this.trades.get(k))) this.trades.put(k, key as number);
        n++;
      }
      this.meta.put('indexedTradeResult', this.lastBody);
    });
    return n;
  }

  /** Validates and encodes the results not stored yet (throws on a bad key, before anything is queued). */
  encode(tradeResults?: readonly { portfolio_id: string; trade_id: string; result: unknown }[]): TradeResultWrite[] {
    const trades: TradeResultWrite[] = [];
    if (tradeResults !== undefined) {
      // The keys of this call so far: a bulk import appends thousands at once (a scan of `trades` was quadratic).
      const here = tradeResults.length > 1 ? new Set<string>() : null;
      for (const t of tradeResults) {
        assertKeyPart(t.portfolio_id, 'trade result portfolio_id');
        assertKeyPart(t.trade_id, 'trade_id');
        const pending = t.portfolio_id + '\u0000' + t.trade_id;
        // First result wins: a pending one, else a committed one. We are the only writer: exact.
        if (this.pendingTrades.has(pending) || here?.has(pending) === true) continue;
        here?.add(pending);
        if (this.trades.doesExist([t.portfolio_id, t.trade_id]) && !(this.floors.has(t.portfolio_id) && this.forgotten(t.portfolio_id, this.trades.get([t.portfolio_id, t.trade_id])))) continue;
        const flat = typeof t.result === 'object' && t.result !== null ? this.flat.encode(t.result as Record<string, unknown>) : null;
        trades.push({ key: [t.portfolio_id, t.trade_id], bin: flat ?? this.tradeEncoder.encode(t.result), value: t.result, pending, n: 0 });
      }
    }
    return trades;
  }

  enqueue(trades: TradeResultWrite[]): void {
    const q = this.queue.queued;
    // Numbered at enqueue: a flush that never commits fails the store, so no number is reused.
    for (const t of trades) {
      t.n = ++this.lastBody;
      this.pendingTrades.set(t.pending, t);
      q.trades.push(t);
      this.keyBacklog.push(t);
    }
    this.lag.added(trades.length);
  }

  tradeResult(portfolioId: string, tradeId: string): unknown | undefined {
    const pending = this.pendingTrades.get(portfolioId + '\u0000' + tradeId);
    if (pending !== undefined) return pending.value;
    if (!keyPart(portfolioId) || !keyPart(tradeId)) return undefined;
    const v = this.trades.get([portfolioId, tradeId]);
    if (v === undefined || (this.floors.size > 0 && this.forgotten(portfolioId, v))) return undefined;
    return typeof v === 'number' ? this.bodies.get(v) : v;
  }

  /**
   * Every id the portfolio has a result under (committed or pending; a forgotten copy's excluded), at
   * most max, in key order (a shipped snapshot carries them: cluster/idsSegment.ts).
   */
  idsOf(portfolioId: string, max: number): string[] {
    const out = new Set<string>();
    if (!keyPart(portfolioId) || max <= 0) return [];
    for (const { key, value } of this.trades.getRange({ start: [portfolioId] })) {
      const k = key as unknown as [string, string];
      if (!Array.isArray(k) || k[0] !== portfolioId || out.size >= max) break;
      if (this.floors.size > 0 && this.forgotten(portfolioId, value)) continue;
      out.add(k[1]);
    }
    const prefix = portfolioId + '\u0000';
    for (const key of this.pendingTrades.keys()) if (out.size < max && key.startsWith(prefix)) out.add(key.slice(prefix.length));
    return [...out];
  }

  /** Its pending entry leaves, unless a newer result of the same key took its place (after forget()). */
  private settle(t: TradeResultWrite): void {
    if (this.pendingTrades.get(t.pending)?.n === t.n) this.pendingTrades.delete(t.pending);
  }

  /** The body number of (portfolio, trade_id); undefined when none, or when an older directory keeps the result inline. */
  numberOf(portfolioId: string, tradeId: string): number | undefined {
    const pending = this.pendingTrades.get(portfolioId + '\u0000' + tradeId);
    if (pending !== undefined) return pending.n;
    if (!keyPart(portfolioId) || !keyPart(tradeId)) return undefined;
    const v = this.trades.get([portfolioId, tradeId]);
    if (typeof v !== 'number' || (this.floors.size > 0 && this.forgotten(portfolioId, v))) return undefined;
    return v;
  }

  /** A committed body by its number (one read of an append-ordered table). */
  body(n: number): unknown | undefined {
    return Number.isInteger(n) && n > 0 ? this.bodies.get(n) : undefined;
  }

  lagging(): number {
    return this.lag.untaken;
  }

  hasBacklog(): boolean {
    return this.lag.due();
  }

  take(b: Batch): void {
    const n = this.lag.take(b.indexing);
    if (n === 0) return;
    // The first key not yet in a flush (lag.take already counted these n as taken).
    const taken = this.keyBacklog.length - this.lag.untaken - n;
    b.indexTrades = this.keyBacklog.slice(taken, taken + n);
    b.writes += n;
    b.indexing = true;
  }

  write(b: Batch): void {
    redoTradeBodies(this.bodies, this.keys, b.trades);
    if (b.indexTrades.length === 0) return;
    for (const t of b.indexTrades) this.trades.put(t.key, t.n);
    this.meta.put('indexedTradeResult', b.indexTrades[b.indexTrades.length - 1].n);
  }

  settled(b: Batch): void {
    // A failed flush fails the store: what it held is answered no more.
    if (b.outcome !== true) {
      for (const t of b.trades) this.settle(t);
      return;
    }
    const n = b.indexTrades.length;
    if (n === 0) return;
    // Flushes settle in commit order, so these are the oldest of the backlog.
    for (const t of b.indexTrades) this.settle(t);
    this.head += n;
    if (this.head >= 4096 && this.head * 2 >= this.keyBacklog.length) {
      this.keyBacklog.splice(0, this.head);
      this.head = 0;
    }
  }
}
