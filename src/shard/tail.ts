// A recovering shard reads its own tail: the log after its snapshot, in one cursor pass in its own
// thread, replayed straight into its books (Shard.replayTradeInto for a trade read from its bytes,
// Shard.replayEvent for anything else, decoded here). Before this, the main thread read every value,
// peeked at it, copied it into a chunk and posted the chunk: at 1M tail trades that was the crash
// restart's bound. The data directory is opened read-only in this thread by the worker's entry
// (src/engine/shards/shardWorker.ts composes src/store/logReader.ts with this file; a shard imports
// nothing from the store), so this file only knows the shape it reads through (TailLog).
//
// What the main thread must still learn comes to it in TailReport messages: the directory events of
// this shard's portfolios (created, paused, resumed, closed), in log order per portfolio; how far the
// pass got (progress); and the symbols a replayed event needs that this shard has no id for. Symbol
// ids are the main thread's (one table for every shard and the tick path), so then the pass stops
// BEFORE that event and reports what it needs; the main thread interns the names, announces them to
// every shard (its 'symbols' message arrives before the 'tailResume' that follows it: one port, FIFO)
// and the pass resumes at that event, applying it without asking again (the main thread interned
// what it could, as it did when it read the log itself). A start on an existing book set needs this
// only for a symbol first seen in the tail; a supervised shard restart never does (the running engine
// interned every name the log holds).

import { conversionSymbolOf } from '../domain/fx.js';
import { replayedEventTypes, type DomainEventType, type StoredEvent } from '../domain/types.js';
import type { Book } from './book.js';
import type { TailNeeds, TailReport } from './protocol.js';
import { LogRecordReader } from './logRecord.js';
import type { Shard } from './shard.js';

/** The data directory as a recovering shard reads it (src/store/logReader.ts is one). */
export interface TailLog {
  /** The log after `afterSeq`, each value ONE reused view of a read buffer, valid until the next read. */
  eventViewsAfter(afterSeq: number): Iterable<{ key: unknown; value: { bytes: Uint8Array; size: number } }>;
  decodeEvent(bytes: Uint8Array): StoredEvent;
  /** The committed columnar generation's pointer (undefined: none). */
  shardSnapshotPointer(): StoredGeneration | undefined;
  /** One shard's raw segments of a columnar snapshot generation (a supervised restart loads them here). */
  shardSnapshotSegments(pointer: StoredGeneration, shard: number): Uint8Array[];
  close(): void;
}

/** What a shard reads of a columnar generation's pointer (src/store/pointer.ts has the whole). */
export interface StoredGeneration {
  generation: number;
  shards: number;
  segments: number;
  covered: number[];
}

/** Directory events reported per message (the main thread applies them to its directory). */
export const tailEventsPerReportMax = 5_000;
/** Log entries between two progress reports (the start's progress line and /ready). */
export const tailEntriesPerReportMax = 65_536;

const directoryTypes: ReadonlySet<DomainEventType> = new Set<DomainEventType>(['PortfolioCreated', 'TradingPaused', 'TradingResumed', 'PortfolioClosed']);

/**
 * The names an event needs in a book of base currency `base` (what the main thread interned for it
 * when it read the log itself): a renamed position's new symbol, a foreign dividend's or cash move's
 * conversion, a trade's symbol and the conversion of its currency.
 */
export function namesOfEvent(e: StoredEvent, base: string, out: TailNeeds): void {
  if (e.type === 'SymbolChanged') out.symbols.push(e.to_symbol);
  else if ((e.type === 'DividendEntitled' || e.type === 'DividendPaid') && e.currency !== base) out.conversions.push([e.currency, base]);
  else if ((e.type === 'CashDeposited' || e.type === 'CashWithdrawn') && e.currency !== undefined) out.conversions.push([e.currency, base]);
  else if (e.type === 'FxConverted') {
    if (e.from_currency !== base) out.conversions.push([e.from_currency, base]);
    if (e.to_currency !== base) out.conversions.push([e.to_currency, base]);
  } else if (e.type === 'TradeExecuted') {
    out.symbols.push(e.symbol);
    if (e.currency !== undefined) out.conversions.push([e.currency, base]);
  }
}

export type { TailNeeds, TailReport } from './protocol.js';

/** One shard's pass over its tail; run() again after each pause (resume). Not reentrant. */
export class TailReplay {
  /** Trade ids left unbuilt: a trade booked into snapshot columns never needs its id (Shard.replayTradeInto). */
  private readonly reader = new LogRecordReader(false);
  /** The last seq consumed: a resumed pass starts after it. */
  private lastSeq: number;
  /** The seq the pass paused at: applied on resume without another check. */
  private pausedAt = -1;
  private read = 0;
  private applied = 0;
  private sinceReport = 0;
  private events: StoredEvent[] = [];
  private readonly needs: TailNeeds = { symbols: [], conversions: [] };
  /** The log ended: the pass is over (its reader may be closed). */
  done = false;

  constructor(
    private readonly shard: Shard,
    private readonly log: TailLog,
    from: number,
    private readonly report: (r: TailReport) => void,
  ) {
    this.lastSeq = from;
  }

  /** Reads on until the log ends (reports done) or an event needs names (reports them). */
  run(): void {
    const reader = this.reader;
    const trade = reader.trade;
    const shard = this.shard;
    let paused = false;
    for (const { key, value } of this.log.eventViewsAfter(this.lastSeq)) {
      const seq = key as number;
      const { bytes, size } = value;
      const checked = seq === this.pausedAt;
      if (reader.read(bytes, 0, size)) {
        const book = shard.replayTarget(trade.portfolio_id, seq);
        if (book !== undefined) {
          if (!checked && !this.knowsTrade(trade.symbol, trade.currency, book)) {
            this.pausedAt = seq;
            paused = true;
            break;
          }
          shard.replayTradeInto(book, trade, reader);
          this.applied++;
        }
      } else if (!this.other(bytes, size, seq, checked)) {
        this.pausedAt = seq;
        paused = true;
        break;
      }
      this.lastSeq = seq;
      this.read++;
      if (++this.sinceReport >= tailEntriesPerReportMax) this.send(false);
    }
    if (paused) {
      // lastSeq stays before the paused entry: the resumed pass reads it again, applies it unchecked.
      this.send(false, true);
      return;
    }
    this.done = true;
    this.send(true);
  }

  /** A value that is not a plain trade: decoded and applied; false when it needs names first. */
  private other(bytes: Uint8Array, size: number, seq: number, checked: boolean): boolean {
    const type = this.reader.typeOf(bytes, 0, size);
    if (type !== null && !replayedEventTypes.has(type as DomainEventType)) return true;
    const e = this.log.decodeEvent(bytes.subarray(0, size));
    if (!replayedEventTypes.has(e.type)) return true;
    const shard = this.shard;
    if (e.type === 'PortfolioCreated') {
      if (!shard.createsHere(e.portfolio_id)) return true;
      shard.replayEvent(e);
      this.applied++;
      this.directory(e);
      return true;
    }
    const book = shard.replayTarget(e.portfolio_id, seq);
    if (book === undefined) return true;
    if (!checked) {
      const needs = this.needs;
      namesOfEvent(e, shard.baseOf(book), needs);
      this.keepUnknown();
      if (needs.symbols.length > 0 || needs.conversions.length > 0) return false;
    }
    shard.replayEvent(e);
    this.applied++;
    if (directoryTypes.has(e.type)) this.directory(e);
    return true;
  }

  private knowsTrade(symbol: string, currency: string | null, book: Book): boolean {
    const shard = this.shard;
    if (shard.knowsSymbol(symbol) && (currency === null || shard.knowsSymbol(conversionSymbolOf(currency, shard.baseOf(book))))) return true;
    this.needs.symbols.push(symbol);
    if (currency !== null) this.needs.conversions.push([currency, shard.baseOf(book)]);
    this.keepUnknown();
    return false;
  }

  /** Drops the names this shard already knows from `needs`. */
  private keepUnknown(): void {
    const shard = this.shard;
    const n = this.needs;
    n.symbols = n.symbols.filter((s) => !shard.knowsSymbol(s));
    n.conversions = n.conversions.filter(([q, b]) => !shard.knowsSymbol(conversionSymbolOf(q, b)));
  }

  private directory(e: StoredEvent): void {
    this.events.push(e);
    if (this.events.length >= tailEventsPerReportMax) this.send(false);
  }

  private send(done: boolean, paused = false): void {
    const needs = paused ? { symbols: this.needs.symbols, conversions: this.needs.conversions } : null;
    this.report({ read: this.read, lastSeq: this.lastSeq, applied: this.applied, events: this.events, needs, done });
    this.events = [];
    this.sinceReport = 0;
    this.needs.symbols = [];
    this.needs.conversions = [];
  }
}
