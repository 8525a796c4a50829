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
//
// An imported trade's result is derived (enqueueDerived, issue 15): no body and no numbered key, only
// the lagging (portfolio, trade_id) key, whose value is the result itself, {imported: true,
// realized_pnl, seq}, made from its TradeExecuted event at seq: one put a trade instead of three, and
// nothing in the acknowledging commit but the event. A crash leaves such keys behind the log: openStore
// derives them again (catchUp) from the TradeExecuted events after meta 'indexedTradeSeq' that have no
// key once the numbered keys are caught up (a trade of the single route has its numbered key by then).

import { asBinary, type Database, type Key, type RootDatabase } from 'lmdb';
import { assertKeyPart, encoderOf, keyPart, type Encoder } from './keys.js';
import { Lag } from './lag.js';
import { FlatRecordWriter } from '../protocol/flatRecord.js';
import type { StoredEvent } from '../domain/types.js';
import type { EncodedEntry } from './log.js';
import type { Batch, QueueTable, TradeResultWrite, WriteQueue } from './writeQueue.js';

export type { TradeResultWrite } from './writeQueue.js';

const floorPrefix = 'tradeFloor:';
/** The first string after every tradeFloor:<id> key (';' follows ':'). */
const floorEnd = 'tradeFloor;';
const seqFloorPrefix = 'tradeSeqFloor:';
const seqFloorEnd = 'tradeSeqFloor;';

/** The stored result of an imported trade, derived from its TradeExecuted event (no body). */
interface DerivedResult {
  imported: true;
  realized_pnl: number;
  seq: number;
}

function derivedSeq(v: unknown): number | null {
  const seq = typeof v === 'object' && v !== null ? (v as { seq?: unknown }).seq : undefined;
  return typeof seq === 'number' ? seq : null;
}

/** Result bodies by number with their (portfolio, trade_id) beside them: the ack path's part, and a journal redo's. */
export function redoTradeBodies(bodies: Database<unknown, Key>, keys: Database<[string, string], Key>, trades: readonly { n: number; key: [string, string]; bin: Uint8Array }[]): void {
  for (const t of trades) {
    bodies.put(t.n, asBinary(t.bin));
    keys.put(t.n, t.key);
  }
}

/** A derived result has no body (tradeResults' header). */
const noBody = new Uint8Array(0);

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
  /** The same for derived results (no number): by the log's last seq when the copy left (meta tradeSeqFloor:<id>). */
  private readonly seqFloors = new Map<string, number>();
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
    /** The event log (decoded): a crash's derived keys are made again from it (catchUp). */
    private readonly events: Database<StoredEvent, Key>,
    /** The log's last seq (assigned, not yet committed included). */
    private readonly lastSeq: () => number,
    keysPerFlushMax: number,
    lagMaxMs: number,
  ) {
    this.tradeEncoder = encoderOf(bodies);
    let last = 0;
    for (const key of bodies.getKeys({ reverse: true, limit: 1 })) last = key as number;
    this.lastBody = last;
    this.lag = new Lag(queue, keysPerFlushMax, lagMaxMs);
    for (const { key, value } of meta.getRange({ start: floorPrefix, end: floorEnd })) if (typeof value === 'number') this.floors.set((key as string).slice(floorPrefix.length), value);
    for (const { key, value } of meta.getRange({ start: seqFloorPrefix, end: seqFloorEnd })) if (typeof value === 'number') this.seqFloors.set((key as string).slice(seqFloorPrefix.length), value);
  }

  /**
   * Forgets the results of these portfolios so far (their copy left this node): in the batch being
   * filled. A later apply of the same id stores and answers its own result.
   */
  forget(portfolioIds: readonly string[], lastSeq: number): void {
    for (const id of portfolioIds) {
      this.floors.set(id, this.lastBody);
      this.queue.queued.meta.push([floorPrefix + id, this.lastBody]);
      this.seqFloors.set(id, lastSeq);
      this.queue.queued.meta.push([seqFloorPrefix + id, lastSeq]);
      const prefix = id + '\u0000';
      for (const k of this.pendingTrades.keys()) if (k.startsWith(prefix)) this.pendingTrades.delete(k);
    }
    if (portfolioIds.length > 0) this.queue.scheduleFlush();
  }

  /** Whether the committed result number n of the portfolio belongs to a forgotten copy. */
  private forgotten(portfolioId: string, n: unknown): boolean {
    const seq = derivedSeq(n);
    if (seq !== null) {
      const seqFloor = this.seqFloors.get(portfolioId);
      return seqFloor !== undefined && seq <= seqFloor;
    }
    const floor = this.floors.get(portfolioId);
    // A result stored inline (a directory from before numbered bodies) is older than any floor.
    return floor !== undefined && (typeof n !== 'number' || n <= floor);
  }

  /**
   * At open, before any read: index the keys of results a crash left unindexed, in one synchronous
   * transaction. A directory without 'indexedTradeResult' was written before the keys lagged (all
   * indexed): the mark goes in the first commit. Returns the keys indexed.
   */
  catchUp(root: RootDatabase, lastSeq: number): number {
    return this.catchUpNumbered(root) + this.catchUpDerived(root, lastSeq);
  }

  private catchUpNumbered(root: RootDatabase): number {
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
        if (this.absent(k)) this.trades.put(k, key as number);
        n++;
      }
      this.meta.put('indexedTradeResult', this.lastBody);
    });
    return n;
  }

  /**
   * The derived keys a crash left behind the log (after the numbered ones, so a trade of the single
   * route, which has its numbered key, is not taken for an imported one): every TradeExecuted after
   * meta 'indexedTradeSeq' without a key gets its derived result. A directory without the mark never
   * had derived keys: the mark goes in the first commit.
   */
  private catchUpDerived(root: RootDatabase, lastSeq: number): number {
    const mark = this.meta.get('indexedTradeSeq');
    if (typeof mark !== 'number') {
      this.queue.queued.meta.push(['indexedTradeSeq', lastSeq]);
      this.queue.scheduleFlush();
      return 0;
    }
    if (mark >= lastSeq) return 0;
    let n = 0;
    root.transactionSync(() => {
      for (const { value: e } of this.events.getRange({ start: mark, exclusiveStart: true })) {
        if (e.type !== 'TradeExecuted' || !keyPart(e.portfolio_id) || !keyPart(e.trade_id)) continue;
        const k: [string, string] = [e.portfolio_id, e.trade_id];
        if (!this.absent(k)) continue;
        const value: DerivedResult = { imported: true, realized_pnl: e.realized_pnl, seq: e.seq };
        this.trades.put(k, value);
        n++;
      }
      this.meta.put('indexedTradeSeq', lastSeq);
    });
    return n;
  }

  /** No result under the key, or only a forgotten copy's. */
  private absent(k: [string, string]): boolean {
    return !this.trades.doesExist(k) || this.forgotten(k[0], this.trades.get(k));
  }

  /** Validates and encodes the results not stored yet (throws on a bad key, before anything is queued). */
  encode(tradeResults?: readonly { portfolio_id: string; trade_id: string; result: unknown; bin?: Uint8Array }[]): TradeResultWrite[] {
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
        const flat = t.bin !== undefined || typeof t.result !== 'object' || t.result === null ? null : this.flat.encode(t.result as Record<string, unknown>);
        trades.push({ key: [t.portfolio_id, t.trade_id], bin: t.bin ?? flat ?? this.tradeEncoder.encode(t.result), value: t.result, pending, n: 0, seq: 0 });
      }
    }
    return trades;
  }

  enqueue(trades: TradeResultWrite[]): void {
    const q = this.queue.queued;
    // Numbered at enqueue: a flush that never commits fails the store, so no number is reused.
    for (const t of trades) {
      t.n = ++this.lastBody;
      // Every derived key of the events so far was enqueued before this one (indexedTradeSeq, take).
      t.seq = this.lastSeq();
      this.pendingTrades.set(t.pending, t);
      q.trades.push(t);
      this.keyBacklog.push(t);
    }
    this.lag.added(trades.length);
  }

  /**
   * The results of imported trades, derived from their TradeExecuted events just appended (log.ts
   * enqueueEncoded): no body, only the lagging key (see the header). The caller booked them as new ids.
   */
  enqueueDerived(entries: readonly EncodedEntry[]): void {
    let added = 0;
    for (const e of entries) {
      if (e.tradeId === null) continue;
      const pending = e.portfolio_id + '\u0000' + e.tradeId;
      if (this.pendingTrades.has(pending)) continue;
      const value: DerivedResult = { imported: true, realized_pnl: e.realized, seq: e.seq };
      const t: TradeResultWrite = { key: [e.portfolio_id, e.tradeId], bin: noBody, value, pending, n: 0, seq: e.seq };
      this.pendingTrades.set(pending, t);
      this.keyBacklog.push(t);
      added++;
    }
    this.lag.added(added);
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
    if (this.pendingTrades.get(t.pending) === t) this.pendingTrades.delete(t.pending);
  }

  /** The body number of (portfolio, trade_id); undefined when none, or when an older directory keeps the result inline. */
  numberOf(portfolioId: string, tradeId: string): number | undefined {
    const pending = this.pendingTrades.get(portfolioId + '\u0000' + tradeId);
    if (pending !== undefined) return pending.n > 0 ? pending.n : undefined;
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
    if (n === 0) {
      if (b.indexing) this.markDerived(b);
      return;
    }
    // The first key not yet in a flush (lag.take already counted these n as taken).
    const taken = this.keyBacklog.length - this.lag.untaken - n;
    b.indexTrades = this.keyBacklog.slice(taken, taken + n);
    b.writes += n;
    b.indexing = true;
    this.markDerived(b);
  }

  /**
   * How far the derived keys are written once b commits (meta 'indexedTradeSeq'): every imported
   * trade's key of an event up to it is in b or before. Set with every index flush, so a crash's
   * catch-up reads the log from the last one at most.
   */
  private markDerived(b: Batch): void {
    const next = this.keyBacklog.length - this.lag.untaken;
    const t = next < this.keyBacklog.length ? this.keyBacklog[next] : undefined;
    b.tradeSeqMark = t === undefined ? this.lastSeq() : t.n === 0 ? t.seq - 1 : t.seq;
  }

  write(b: Batch): void {
    redoTradeBodies(this.bodies, this.keys, b.trades);
    if (b.tradeSeqMark > 0) this.meta.put('indexedTradeSeq', b.tradeSeqMark);
    if (b.indexTrades.length === 0) return;
    let lastN = 0;
    for (const t of b.indexTrades) {
      if (t.n > 0) {
        this.trades.put(t.key, t.n);
        lastN = t.n;
      } else this.trades.put(t.key, asBinary(this.flat.encode(t.value as Record<string, unknown>) ?? this.tradeEncoder.encode(t.value)));
    }
    if (lastN > 0) this.meta.put('indexedTradeResult', lastN);
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
