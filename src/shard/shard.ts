// A shard: the portfolios one worker owns, their actors and their columnar position memory.
// Tick batches go straight to the kernel; commands go through the portfolio actors; both end with the
// kernel rows in step with the actors' books. Deterministic: no clock or randomness is read here.

import { assert } from '../assert.js';
import { ErrorCode, type EngineError } from '../errors.js';
import { quantityOf, unitsOf } from '../domain/accounting.js';
import { applyDeposit, applyFxConversion, applyLimits, applyWithdraw, baseCurrencyOf, currencyOfTrade, methodOf, newPortfolio, replayTrade, type PortfolioOptions } from '../domain/portfolio.js';
import { conversionLegsOf, conversionSymbolOf, fxPivotDefault } from '../domain/fx.js';
import { applyCorporateStep, corporateRefusal, holdsFor } from '../domain/corporateActions.js';
import { baseCurrencyDefault, type PortfolioState, type CorporateStep, type RiskLimits, type DomainEventBody, type LotView, type PortfolioRecord, type PortfolioSnapshot, type PortfolioUpdate, type PositionView, type StoredEvent } from '../domain/types.js';
import type { ValidTrade } from '../domain/validate.js';
import { FLAG_BREACH_LATCHED, NONE } from '../kernel/layout.js';
import { createKernel, type Kernel } from '../kernel/index.js';
import type { PortfolioEvent } from '../../actors/portfolio.js';
import { Book, newBook, releaseActor, sendToActor } from './book.js';
import { unwatchedBatchesPendingMax, unwatchedRevalueIntervalMsDefault, type BatchResult, type Command, type CommandResult, type FromShard, type SettledResult, type ShardEvent, type ShardInit, type TradeChunkAnswer } from './protocol.js';
import { ChunkKind, TradeChunkReader } from './tradeChunk.js';
import { LoggedValuesWriter, NestedRecordWriter } from '../protocol/flatRecord.js';
import { domainEventTypes, type DomainEventType } from '../domain/types.js';
import { positionView, totalsOf } from './views.js';
import { SnapshotPart, encodeSnapshot, snapshotRowCounts, type RestoredBook } from './snapshotCodec.js';
import { shardOf } from '../engine/shardOf.js';
import { DeltaWriter } from './deltaWriter.js';
import { RestPass } from './restPass.js';
import type { TradeRecord } from './logRecord.js';
import { whatIf, whatIfRefusal } from './whatIf.js';
import type { MarkClock } from './marks.js';

/** An event type's code in a chunk's answer: its index in domainEventTypes. */
const eventTypeCodes = new Map<DomainEventType, number>(domainEventTypes.map((t, i) => [t, i]));

const limitNames = ['', 'max_loss', 'max_drawdown_pct', 'max_position_weight_pct'] as const;

/** settle(): the rest in one call, whatever it costs (the kernel takes the bound as an i32). */
const sliceRowsUnbounded = 0x7fffffff;

type RestResult = Omit<SettledResult, 't' | 'batches' | 'openPositions'>;

function newRestResult(): RestResult {
  return { events: [], breaches: [], positionsRevalued: 0, portfoliosRevalued: 0 };
}

export class Shard {
  readonly kernel: Kernel;
  private readonly books: Book[] = [];
  private readonly byId = new Map<string, Book>();
  private readonly symbolNames: string[] = [];
  /** Watched portfolios' deltas, written from the kernel columns (it keeps each symbol's UTF-8 bytes). */
  private readonly deltas = new DeltaWriter(this.symbolNames);
  private readonly symbolIds = new Map<string, number>();
  private symTs = new Float64Array(256);
  /** Books whose state replay changed since recovery began: synced to the kernel once, at the end. */
  private touched: Book[] = [];
  /** Replayed trades booked into a snapshot part's columns, not a state (the recovery breakdown's count). */
  tradesReplayedInColumns = 0;
  /** The trade replayTradeInto books, rewritten per trade: replayTrade keeps nothing of it. */
  private readonly replayScratch: ValidTrade = { trade_id: '', symbol: '', side: 'buy', units: 0, quantity: 0, price: 0, fee: 0, ts: 0, currency: null, fx_rate: null, lot_ids: null, multiplier: 1 };
  /** Per-portfolio seqs of this shard life start here (ShardInit.seqFloor). */
  private readonly seqFloor: number;
  /** Instrument multipliers (symbols never defined: 1), as the main thread last sent them. */
  private readonly multipliers = new Map<string, number>();
  /**
   * A chunk's events as the log keeps them (issue 15): written here, once, into one buffer that moves
   * to the main thread, which fills in the seqs and logs the bytes as they are (no clone, no encode).
   */
  private readonly chunkValues = new LoggedValuesWriter();
  /** A command's applied trade's result body, as the store keeps it (encoded here, not on the main thread). */
  private readonly bodyValues = new NestedRecordWriter(16 * 1024);
  private chunkTypes: number[] = [];
  private chunkTrades: number[] = [];
  private chunkObjects: { i: number; event: ShardEvent }[] = [];
  /** FX symbol id -> portfolios holding cash in that currency: a rate tick revalues their cash. */
  private readonly cashByFx = new Map<number, Book[]>();
  /** A batch's books whose foreign cash alone moved, and the rate tick's ts behind each (revalueForeignCash). */
  private readonly cashOnly: Book[] = [];
  private readonly cashOnlyTs: number[] = [];
  /** Batches whose unwatched rows wait for settle(), and the last batch's time. */
  private pendingBatches = 0;
  private lastNow = 0;
  /** How stale the unwatched rows may be (restDue), and what the slices of the current pass found. */
  private readonly restPass: RestPass;
  private rest = newRestResult();
  /** The symbols settle() revalues, copied before the kernel clears its list (foreign cash reads them). */
  private pendingSyms = new Int32Array(256);

  constructor(readonly init: ShardInit) {
    this.seqFloor = init.seqFloor ?? 0;
    this.restPass = new RestPass(init.unwatchedRevalueIntervalMs ?? unwatchedRevalueIntervalMsDefault, unwatchedBatchesPendingMax);
    // Every portfolio may hold positionsPerPortfolioMax rows; the shard-wide bound keeps memory finite.
    this.kernel = createKernel(init.kernel, {
      portfoliosMax: init.portfoliosMax,
      positionsMax: init.portfoliosMax * init.positionsPerPortfolioMax,
      symbolsMax: init.symbolsMax,
    });
  }

  get portfolios(): number {
    return this.books.length;
  }

  registerSymbols(from: number, names: string[]): void {
    assert(from === this.symbolNames.length, 'symbols registered in order, without gaps');
    for (const name of names) {
      const id = this.symbolNames.length;
      this.symbolNames.push(name);
      this.deltas.addSymbol(name);
      this.symbolIds.set(name, id);
      this.kernel.ensureSymbol(id);
    }
    if (this.symbolNames.length > this.symTs.length) {
      const next = new Float64Array(Math.max(this.symbolNames.length, this.symTs.length * 2));
      next.set(this.symTs);
      this.symTs = next;
    }
  }

  defineInstruments(instruments: { symbol: string; multiplier: number }[]): void {
    for (const i of instruments) this.multipliers.set(i.symbol, i.multiplier);
  }

  /**
   * A tick batch, watched first: the kernel revalues the rows of watched portfolios only, their
   * deltas are written and leave with the result; the other portfolios' rows wait (pending) for
   * settle(), which the worker runs once it has no batch waiting, before any other message, or inline
   * when the rest has waited unwatchedRevalueIntervalMs of batch time or unwatchedBatchesPendingMax
   * batches (restDue). Figures end as one pass over the book would leave them.
   */
  ticks(batch: number, n: number, syms: Int32Array, prices: Float64Array, ts: Float64Array, now: number): BatchResult {
    const c = this.kernel.cols;
    let newest = 0;
    for (let k = 0; k < n; k++) {
      const s = syms[k];
      c.batchSym[k] = s;
      c.batchPrice[k] = prices[k];
      this.symTs[s] = ts[k];
      if (ts[k] > newest) newest = ts[k];
    }
    const dirty = this.kernel.revalueWatched(n);
    // Conversions the kernel re-derived (appended after the ticks): a derived rate is as new as the
    // newest tick of the batch that moved it.
    const extended = this.kernel.batchLength;
    for (let k = n; k < extended; k++) this.symTs[c.batchSym[k]] = newest;
    const events: ShardEvent[] = [];
    const breaches: { limit: string }[] = [];
    const breachCount = this.kernel.breachCount;
    for (let i = 0; i < breachCount; i++) this.breach(this.books[c.pfBreach[i]], events, breaches, now);
    // Foreign cash before any delta: a delta written first carried the equity of the old rate while
    // the snapshot at its seq had the new one (found by test/updates.stream.test.ts, per-row slots).
    const cashOnly = this.cashByFx.size > 0 ? this.revalueForeignCash(c.batchSym, extended, true, events, breaches, now) : 0;
    this.deltas.reset();
    for (let i = 0; i < dirty; i++) {
      const book = this.books[c.pfDirty[i]];
      book.seq++;
      this.writeDeltaUnlessHeld(book, now, 0);
    }
    for (let i = 0; i < cashOnly; i++) {
      const book = this.cashOnly[i];
      book.seq++;
      // Only its cash moved: the rate tick is the newest price behind it.
      this.writeDeltaUnlessHeld(book, now, this.cashOnlyTs[i]);
    }
    const deltas = this.deltas.take();
    const pending = this.kernel.pendingCount > 0;
    if (pending) this.pendingBatches++;
    if (pending && this.kernel.batchMoved) this.restPass.batch(now, this.kernel.restSwept);
    this.lastNow = now;
    return {
      t: 'revalued',
      batch,
      deltas: deltas.bytes,
      deltaIndex: deltas.index,
      events,
      positionsRevalued: this.kernel.touched,
      portfoliosRevalued: dirty + cashOnly,
      openPositions: this.kernel.openPositions,
      breaches,
      pending,
    };
  }

  /** The rest of the book has waited long enough: settle at once rather than a slice per turn. */
  restDue(now: number): boolean {
    return this.pendingBatches > 0 && this.restPass.due(now);
  }

  /** More of the pass over the rest to run (settleSlice). */
  get restPending(): boolean {
    return this.pendingBatches > 0;
  }

  /**
   * The pass over the rest, to its end (settleSlice with no bound): what the worker runs before any
   * other message than a batch, so nothing read, snapshotted or traded sees a row behind its price.
   */
  settle(): SettledResult | null {
    return this.settleSlice(sliceRowsUnbounded);
  }

  /**
   * A slice of the pass over the rest (Kernel.revalueRestSlice, about rowsMax position rows):
   * unwatched portfolios' rows at the latest prices, their totals, high-water marks and limits, seqs;
   * once nothing is pending, foreign cash, and the result covering every slice since the last one
   * (null before that, or when nothing was pending). Their risk checks and high-water marks thus see
   * the latest prices at most unwatchedRevalueIntervalMs of batch time (or unwatchedBatchesPendingMax
   * batches) late (restDue, src/shard/restPass.ts).
   */
  settleSlice(rowsMax: number): SettledResult | null {
    if (this.pendingBatches === 0) return null;
    const now = this.lastNow;
    const c = this.kernel.cols;
    const pending = this.kernel.pendingCount;
    const fx = this.cashByFx.size > 0;
    if (fx) {
      // Copied before the kernel clears its list (the foreign cash below reads it).
      if (this.pendingSyms.length < pending) this.pendingSyms = new Int32Array(Math.max(pending, this.pendingSyms.length * 2));
      this.pendingSyms.set(c.symPendingList.subarray(0, pending));
    }
    const dirty = this.kernel.revalueRestSlice(rowsMax);
    const r = this.rest;
    const breachCount = this.kernel.breachCount;
    for (let i = 0; i < breachCount; i++) this.breach(this.books[c.pfBreach[i]], r.events, r.breaches, now);
    for (let i = 0; i < dirty; i++) this.books[c.pfDirty[i]].seq++;
    r.positionsRevalued += this.kernel.touched;
    r.portfoliosRevalued += dirty;
    const cleared = this.kernel.pendingCount === 0;
    this.restPass.slice(this.kernel.restSwept, this.kernel.portfolios, cleared);
    if (!cleared) return null;
    const cashOnly = fx ? this.revalueForeignCash(this.pendingSyms, pending, false, r.events, r.breaches, now) : 0;
    for (let i = 0; i < cashOnly; i++) this.cashOnly[i].seq++;
    const result: SettledResult = { ...r, t: 'settled', batches: this.pendingBatches, portfoliosRevalued: r.portfoliosRevalued + cashOnly, openPositions: this.kernel.openPositions };
    this.pendingBatches = 0;
    this.rest = newRestResult();
    return result;
  }

  /**
   * Foreign cash is not a kernel row: after a pass, portfolios holding cash in a currency whose rate
   * moved get their converted cash (pfCash) refreshed and are recomputed; those the kernel did not
   * already dirty are listed in cashOnly (their count is returned) and get their own update. Only FX
   * symbols reach the loop body; `watched` picks the side of the pass (watched first, or the rest).
   */
  private revalueForeignCash(syms: Int32Array<ArrayBufferLike>, n: number, watched: boolean, events: ShardEvent[], breaches: { limit: string }[], now: number): number {
    const c = this.kernel.cols;
    const stamp = this.kernel.stamp;
    let cashOnly = 0;
    for (let k = 0; k < n; k++) {
      const holders = this.cashByFx.get(syms[k]);
      if (holders === undefined) continue;
      for (const book of holders) {
        if (book.watchers > 0 !== watched) continue;
        const wasDirty = c.pfStamp[book.index] === stamp;
        this.syncPortfolio(book);
        if (this.kernel.recompute(book.index) !== 0) this.breach(book, events, breaches, now);
        if (!wasDirty) {
          c.pfStamp[book.index] = stamp;
          this.cashOnly[cashOnly] = book;
          this.cashOnlyTs[cashOnly++] = this.symTs[syms[k]];
        }
      }
    }
    return cashOnly;
  }

  commands(commands: Command[]): CommandResult[] {
    return commands.map((cmd) => this.command(cmd));
  }

  /**
   * The 'results' message of commands: an applied trade's events written as the log keeps them, one
   * buffer for the message (transferred), instead of objects cloned per event; other results as they are.
   */
  commandsAnswer(commands: Command[]): Extract<FromShard, { t: 'results' }> {
    const results = this.commands(commands);
    const types: number[] = [];
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r.trade === null || r.events.length === 0) continue;
      let flat = true;
      for (const e of r.events) if (!this.chunkValues.fits(e as unknown as Record<string, unknown>)) flat = false;
      // A trade naming lots (not flat) keeps its events as objects and its result body for the main thread to encode.
      if (!flat || !this.bodyValues.write(r.trade as unknown as Record<string, unknown>)) continue;
      for (const e of r.events) {
        this.chunkValues.writeLogged(e as unknown as Record<string, unknown>);
        types.push(eventTypeCodes.get(e.type as DomainEventType) as number);
      }
      r.eventCount = r.events.length;
      r.eventsTs = commands[i].now;
      r.events = [];
    }
    if (types.length === 0) return { t: 'results', results };
    const values = this.chunkValues.take();
    const bodies = this.bodyValues.take();
    return { t: 'results', results, eventBytes: values.bytes, eventEnds: values.ends, eventTypes: Uint8Array.from(types), bodyBytes: bodies.bytes, bodyEnds: bodies.ends };
  }

  /** Packed trade commands (tradeChunk.ts), answered as commandsAnswer answers. */
  tradeCommands(ids: Int32Array, now: Float64Array, bytes: Uint8Array): Extract<FromShard, { t: 'results' }> {
    const reader = new TradeChunkReader(bytes);
    const commands: Command[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const trade = reader.next();
      commands[i] = { id: ids[i], kind: 'trade', portfolio: reader.portfolio, trade, now: now[i] };
    }
    return this.commandsAnswer(commands);
  }

  /**
   * A chunk of imported trades (tradeChunk.ts), booked exactly as trade commands are (the actor
   * decides, the same pure accounting books, the kernel rows follow), without a result object per
   * trade: the answer is one kind and one realized P&L a trade, and the events to log. A portfolio
   * where no trade can pause it (active, no risk limit) and no one watches gets its trades of the chunk
   * as one 'trades' event, in input order, and its kernel rows synced once (bookRun); any other gets
   * them one by one as the 'trade' command does. Portfolios are independent, so their events may
   * leave grouped by portfolio; each portfolio's stay in input order.
   */
  tradeChunk(chunk: number, bytes: Uint8Array, count: number, now: number): TradeChunkAnswer {
    const answer: TradeChunkAnswer = {
      t: 'tradeChunkDone', chunk, kinds: new Uint8Array(count), realized: new Float64Array(count), now, errors: [],
      eventBytes: new Uint8Array(0), eventEnds: new Int32Array(0), eventTypes: new Uint8Array(0), eventTrades: new Int32Array(0), eventObjects: [], updates: [],
    };
    this.chunkTypes = [];
    this.chunkTrades = [];
    this.chunkObjects = [];
    const reader = new TradeChunkReader(bytes);
    const trades: ValidTrade[] = new Array(count);
    const runs = new Map<Book, number[]>();
    const out: DomainEventBody[] = [];
    for (let i = 0; i < count; i++) {
      const trade = (trades[i] = reader.next());
      const book = this.byId.get(reader.portfolio);
      if (book === undefined) {
        this.chunkRefused(answer, i, { code: ErrorCode.portfolio_not_found, message: `portfolio '${reader.portfolio}' not found`, field: 'portfolio_id' });
        continue;
      }
      if (book.status === 'active' && book.watchers === 0 && !hasLimits(book.state.limits)) {
        const run = runs.get(book);
        if (run === undefined) runs.set(book, [i]);
        else run.push(i);
        continue;
      }
      out.length = 0;
      const error = this.bookTrade(book, trade, out);
      if (error !== null) this.chunkRefused(answer, i, error);
      else this.chunkBooked(answer, book, i, out, now);
    }
    for (const [book, run] of runs) this.bookRun(answer, book, run, trades, now);
    const values = this.chunkValues.take();
    answer.eventBytes = values.bytes;
    answer.eventEnds = values.ends;
    answer.eventTypes = Uint8Array.from(this.chunkTypes);
    answer.eventTrades = Int32Array.from(this.chunkTrades);
    answer.eventObjects = this.chunkObjects;
    return answer;
  }

  /** One portfolio's trades of a chunk as one 'trades' event to its actor; its kernel rows synced once after. */
  private bookRun(answer: TradeChunkAnswer, book: Book, run: number[], trades: ValidTrade[], now: number): void {
    const admitted: ValidTrade[] = [];
    const at: number[] = [];
    let newRows = 0;
    const newSymbols = new Set<string>();
    for (const i of run) {
      const trade = trades[i];
      trade.multiplier = this.multipliers.get(trade.symbol) ?? 1;
      if (!this.hasRowFor(book, trade.symbol) && !newSymbols.has(trade.symbol)) {
        // The rows this run opens count against the bound as if booked one by one.
        if (book.rows.size + newRows >= this.init.positionsPerPortfolioMax) {
          this.chunkRefused(answer, i, { code: ErrorCode.limit_exceeded, message: `positions per portfolio must be <= ${this.init.positionsPerPortfolioMax}`, field: 'symbol' });
          continue;
        }
        newSymbols.add(trade.symbol);
        newRows++;
      }
      admitted.push(this.withRate(book, trade));
      at.push(i);
    }
    if (admitted.length === 0) return;
    const effect = sendToActor(book, { type: 'trades', trades: admitted });
    assert(effect !== null && effect.type === 'appliedTrades', 'an active portfolio answers a trades run');
    const symbols = new Set<string>();
    for (let k = 0; k < at.length; k++) {
      const events = effect.events[k];
      if (events === null) {
        const r = effect.refusals.get(k) as { code: ErrorCode; message: string; field?: string };
        this.chunkRefused(answer, at[k], r.field === undefined ? { code: r.code, message: r.message } : { code: r.code, message: r.message, field: r.field });
        continue;
      }
      symbols.add(admitted[k].symbol);
      this.chunkBooked(answer, book, at[k], events, now);
    }
    if (symbols.size === 0) return;
    for (const symbol of symbols) this.syncPosition(book, symbol);
    this.syncPortfolio(book);
    // No limit is set, so no breach can come of it; the figures are brought up to date all the same.
    const out: DomainEventBody[] = [];
    if (this.kernel.recompute(book.index) !== 0) this.breachEvents(book, out);
    for (const e of out) this.chunkEvent(stamp(e, book.id, now), run[0]);
  }

  /** One event of a chunk, written as the log keeps it (or kept as an object when it is not flat: a trade naming lots). */
  private chunkEvent(e: ShardEvent, trade: number): void {
    const type = eventTypeCodes.get(e.type as DomainEventType);
    assert(type !== undefined, `event type '${e.type}' has a code`);
    if (!this.chunkValues.writeLogged(e as unknown as Record<string, unknown>)) {
      this.chunkObjects.push({ i: this.chunkValues.count, event: e });
      this.chunkValues.skip();
    }
    this.chunkTypes.push(type);
    this.chunkTrades.push(trade);
  }

  private chunkRefused(answer: TradeChunkAnswer, i: number, error: EngineError): void {
    answer.kinds[i] = ChunkKind.error;
    answer.errors.push({ i, error });
  }

  /** A trade of the chunk booked: its events stamped, its realized P&L, the book's seq; a watched book's delta. */
  private chunkBooked(answer: TradeChunkAnswer, book: Book, i: number, events: readonly DomainEventBody[], now: number): void {
    answer.kinds[i] = ChunkKind.applied;
    for (const e of events) {
      // Stamped in place: the accounting made these objects for this trade alone and keeps none of them.
      const stamped = e as ShardEvent;
      stamped.portfolio_id = book.id;
      stamped.ts = now;
      this.chunkEvent(stamped, i);
      if (e.type === 'TradeExecuted') answer.realized[i] = e.realized_pnl;
    }
    book.seq++;
    if (book.watchers > 0) {
      this.deltas.reset();
      this.writeDelta(book, now, false, 0);
      answer.updates.push(this.deltas.last());
      this.deltas.reset();
    }
  }

  /** One trade as the 'trade' command books it (multiplier, position bound, FX rate, actor); null: booked. */
  private bookTrade(book: Book, given: ValidTrade, out: DomainEventBody[]): EngineError | null {
    given.multiplier = this.multipliers.get(given.symbol) ?? 1;
    if (!this.hasRowFor(book, given.symbol) && book.rows.size >= this.init.positionsPerPortfolioMax) {
      return { code: ErrorCode.limit_exceeded, message: `positions per portfolio must be <= ${this.init.positionsPerPortfolioMax}`, field: 'symbol' };
    }
    return this.apply(book, { type: 'trade', trade: this.withRate(book, given) }, out);
  }

  watch(id: string, on: boolean): void {
    const book = this.byId.get(id);
    if (book === undefined) return;
    book.watchers = Math.max(0, book.watchers + (on ? 1 : -1));
    book.holds = Math.min(book.holds, book.watchers);
    this.kernel.setWatched(book.index, book.watchers > 0);
  }

  /**
   * Per-portfolio records (time travel's starting points) of the books whose state, lifecycle or
   * high-water mark changed since their last one; the others' last record still holds them (a
   * record's seq and as_of are not replayed from: time travel replays the events after its
   * covered_seq, and a book without a new record has none of its own since).
   */
  records(now: number): PortfolioRecord[] {
    const c = this.kernel.cols;
    const out: PortfolioRecord[] = [];
    for (const book of this.live()) {
      const hwm = c.pfHwm[book.index];
      if (!book.recordDue && hwm === book.recordedHwm) continue;
      out.push({ portfolio: book.state, state: book.status, equity_hwm: hwm, seq: book.seq, covered_seq: 0, as_of: now });
      book.recordDue = false;
      book.recordedHwm = hwm;
    }
    return out;
  }

  /** This shard's columnar snapshot segments (snapshotCodec.ts), taken at the same instant as records(). */
  snapshotSegments(): Uint8Array[] {
    const c = this.kernel.cols;
    return encodeSnapshot(
      this.live().map((book) => {
        // A book its snapshot part still holds is copied from the part's columns (no state built).
        const from = book.partSource;
        if (from !== null) return { part: from.source as SnapshotPart, index: from.index, status: book.status, seq: book.seq, hwm: c.pfHwm[book.index] };
        return { state: book.state, status: book.status, seq: book.seq, hwm: c.pfHwm[book.index], order: book.rowList.map((row) => this.symbolNames[c.posSym[row]]) };
      }),
    );
  }

  /** The books not dropped (records and snapshots leave the dropped ones out). */
  private live(): Book[] {
    return this.dropped === 0 ? this.books : this.books.filter((book) => !book.dropped);
  }

  /** Books dropped in this shard life (their rows stay until a restart). */
  private dropped = 0;

  /**
   * Removes the books of these ids (a cluster partition this node lost, src/engine/engine.ts
   * dropPortfolios): gone from the id map, so no command, read or watch finds them; their kernel rows
   * flat and their limits off, so no tick revalues or breaches them (the kernel skips a flat row and
   * dirties no portfolio for it); their actor released. Returns how many were held here.
   */
  drop(ids: readonly string[]): number {
    const c = this.kernel.cols;
    let n = 0;
    for (const id of ids) {
      const book = this.byId.get(id);
      if (book === undefined) continue;
      this.byId.delete(id);
      book.dropped = true;
      book.watchers = 0;
      this.kernel.setWatched(book.index, false);
      book.heldOf = null;
      releaseActor(book);
      for (const row of book.rowList) this.kernel.setPosition(row, 0, 0, 0);
      for (const sid of book.cashFx) {
        const holders = this.cashByFx.get(sid);
        if (holders === undefined) continue;
        const left = holders.filter((b) => b !== book);
        if (left.length === 0) this.cashByFx.delete(sid);
        else this.cashByFx.set(sid, left);
      }
      book.cashFx = [];
      c.pfCash[book.index] = 0;
      c.pfRealized[book.index] = 0;
      this.kernel.setLimits(book.index, null, null, null);
      this.kernel.recompute(book.index);
      c.pfFlags[book.index] |= FLAG_BREACH_LATCHED;
      this.dropped++;
      n++;
    }
    return n;
  }

  /**
   * Restores portfolios from snapshot records, after last prices (so marks are the stored ticks, and
   * keep the source timestamps they had: a restart must not make an old price look fresh).
   */
  load(records: PortfolioRecord[], prices: { symbol: number; price: number; ts: number }[]): void {
    this.loadPrices(prices);
    for (const record of records) {
      const book = this.restore({ state: record.portfolio, status: record.state, seq: record.seq, hwm: record.equity_hwm });
      book.covered = record.covered_seq;
      // Restored from its record: nothing to record until it changes.
      book.recordDue = false;
      book.recordedHwm = record.equity_hwm;
    }
  }

  /**
   * Restores portfolios from columnar snapshot parts (raw segments, decoded here). filter: the parts
   * were written by another number of shards; only the books placed on this shard are kept.
   */
  loadColumnar(parts: { segments: Uint8Array[]; covered: number }[], filter: boolean, prices: { symbol: number; price: number; ts: number }[], clean = false, recorded = true): void {
    this.loadPrices(prices);
    const shards = this.init.shards ?? 1;
    const keep = filter ? (id: string) => shardOf(id, shards) === this.init.shard : () => true;
    // Rows for the whole snapshot in one growth. Filtered parts also hold other shards' books: there
    // the counts are no estimate of this shard's, and growth by doubling stays.
    if (!filter) {
      let portfolios = 0;
      let positions = 0;
      for (const part of parts) {
        const n = snapshotRowCounts(part.segments);
        portfolios += n.portfolios;
        positions += n.positions;
      }
      this.kernel.reserve(portfolios, positions);
      if (positions > 0) this.deltas.ensureRow(this.kernel.positions + positions - 1);
    }
    for (const p of parts) {
      const part = new SnapshotPart(p.segments);
      // The part's symbol table as this shard's symbol ids (the main thread registered every name).
      const symbolIds = new Int32Array(part.strings.symbols.length);
      part.strings.symbols.forEach((name, k) => {
        const id = this.symbolIds.get(name);
        assert(id !== undefined, `snapshot symbol ${name} registered before the load`);
        symbolIds[k] = id;
      });
      const kept = new Int32Array(part.books);
      let books = 0;
      let rows = 0;
      for (let i = 0; i < part.books; i++) {
        const id = part.strings.ids[i];
        if (!keep(id)) continue;
        // Loading into a shard that already runs (another part, a partition handed over) adds books;
        // a book it already holds would be a second one under the same id.
        if (this.byId.has(id)) assert(false, `portfolio ${id} loaded twice into shard ${this.init.shard}`);
        kept[books++] = i;
        rows += part.count[i];
      }
      this.restoreLazily(part, kept.subarray(0, books), rows, symbolIds, clean, p.covered, recorded);
    }
  }

  /**
   * Adds a partition's books (columnar segments of several shards' books, a cluster take-over) to this
   * running shard, keeping those placed here. Refused, with nothing loaded, when one of them is held
   * here already or the rows would pass portfoliosMax (dropped books keep theirs until a restart).
   * Returns the books loaded, or the refusal.
   */
  adopt(segments: Uint8Array[]): { portfolios: number; error: string | null } {
    const shards = this.init.shards ?? 1;
    const part = new SnapshotPart(segments);
    let mine = 0;
    for (let i = 0; i < part.books; i++) {
      const id = part.strings.ids[i];
      if (shardOf(id, shards) !== this.init.shard) continue;
      if (this.byId.has(id)) return { portfolios: 0, error: `portfolio ${id} is already held by shard ${this.init.shard}` };
      mine++;
    }
    if (this.books.length + mine > this.init.portfoliosMax) return { portfolios: 0, error: `portfolios per shard must be <= ${this.init.portfoliosMax} (${this.books.length} rows held, ${this.dropped} of them dropped, ${mine} to load)` };
    // This store holds no record of a partition handed over: the next round writes them.
    this.loadColumnar([{ segments, covered: 0 }], true, [], false, false);
    return { portfolios: mine, error: null };
  }

  /**
   * Books `kept` of a snapshot part without building their states: their portfolio rows, then all
   * their position rows in one piece (Kernel.appendRows / linkRows: each column filled in one pass
   * from the part's columns, in the order they were written, i.e. the live row order), then per
   * book what restore() does for conversions, totals, mark and latch. A book's state object is
   * built on first use (Book.state). A book with foreign cash or dividends due gets its state at
   * once: its cash in the base needs it (rare). The kernel ends bit for bit as restore() of each
   * book in turn leaves it.
   */
  private restoreLazily(part: SnapshotPart, kept: Int32Array, rows: number, symbolIds: Int32Array, exactSeq: boolean, covered: number, recorded: boolean): void {
    const k = this.kernel;
    const firstBook = this.books.length;
    for (let b = 0; b < kept.length; b++) {
      const index = k.addPortfolio();
      assert(index === firstBook + b, 'kernel portfolio rows follow the book list');
    }
    const firstRow = k.appendRows(rows);
    const c = k.cols;
    const { posPf, posSym, posQty, posAvg, posMark } = c;
    const { first, count, sym, units, avg, lastTrade, multiplier } = part;
    let r = firstRow;
    for (let b = 0; b < kept.length; b++) {
      const i = kept[b];
      const pf = firstBook + b;
      for (let p = first[i], end = p + count[i]; p < end; p++, r++) {
        posPf[r] = pf;
        posSym[r] = symbolIds[sym[p]];
        // As syncPosition writes it: the effective quantity, quantity x multiplier (none written: 1).
        const m = multiplier === null ? 0 : multiplier[p];
        posQty[r] = (units[p] / 1e8) * (m === 0 ? 1 : m);
        posAvg[r] = avg[p];
        // The mark until the symbol ticks (linkRows takes the tick once seen).
        posMark[r] = lastTrade[p];
      }
    }
    k.linkRows(firstRow, rows);
    if (rows > 0) this.deltas.ensureRow(firstRow + rows - 1);
    r = firstRow;
    for (let b = 0; b < kept.length; b++) {
      const i = kept[b];
      const index = firstBook + b;
      const seq = exactSeq ? part.seq[i] : Math.max(part.seq[i], this.seqFloor);
      const book = new Book(index, part.strings.ids[i], null, part.statusOf(i), seq, part, i, this.symbolOfRow, r, count[i]);
      this.books.push(book);
      this.byId.set(book.id, book);
      book.covered = covered;
      // The round that wrote this part wrote (or kept) a record equal to it.
      if (recorded) {
        book.recordDue = false;
        book.recordedHwm = part.hwm[i];
      }
      if (part.foreign) this.restoreConversions(part, i, book, r);
      r += count[i];
      if (part.extra[i] >= 0) this.syncPortfolio(book);
      else {
        c.pfCash[index] = part.cash[i];
        c.pfRealized[index] = part.realized[i];
        const l = part.strings.limits[part.limitsCol[i]];
        k.setLimits(index, l.max_loss, l.max_drawdown_pct, l.max_position_weight_pct);
      }
      k.recompute(index);
      // Set after the recompute, as in restore().
      c.pfHwm[index] = part.hwm[i];
      if (book.status !== 'active') c.pfFlags[index] |= FLAG_BREACH_LATCHED;
    }
  }

  /** Book i's rows quoted in another currency, from row `row` on: linked to their conversion, as ensureRow links a new row. */
  private restoreConversions(part: SnapshotPart, i: number, book: Book, row: number): void {
    const k = this.kernel;
    const c = k.cols;
    for (let p = part.first[i], end = p + part.count[i]; p < end; p++, row++) {
      const currency = part.currency[p];
      if (currency < 0) continue;
      k.setPositionFx(row, this.conversionFor(part.strings.currencies[currency], part.baseOf(i)));
      k.setPosition(row, c.posQty[row], c.posAvg[row], part.lastTrade[p]);
      book.foreign++;
    }
  }

  /** Books before this index have their state object (materializeSome's cursor). */
  private materializedUpTo = 0;

  /**
   * Builds the state of up to `budget` lazily restored books, oldest first; true while some remain.
   * The worker calls it between messages after recovery, so the first snapshot round (which reads
   * every book's state) finds them built instead of building 100,000 at once.
   */
  materializeSome(budget: number): boolean {
    const books = this.books;
    let i = this.materializedUpTo;
    for (; i < books.length && budget > 0; i++) {
      if (books[i].materialized || books[i].dropped) continue;
      void books[i].state;
      budget--;
    }
    this.materializedUpTo = i;
    return i < books.length;
  }

  /** A kernel row's symbol id (a lazily restored book builds its row map from it). */
  private readonly symbolOfRow = (row: number): number => this.kernel.cols.posSym[row];

  private loadPrices(prices: { symbol: number; price: number; ts: number }[]): void {
    const c = this.kernel.cols;
    for (const p of prices) {
      c.symPrice[p.symbol] = p.price;
      this.symTs[p.symbol] = p.ts;
    }
  }

  /**
   * One restored book: kernel rows in the state's key order, totals, then its high-water mark. Its seq
   * is exact after a clean shutdown; otherwise ticks may have moved it past the snapshot, so it
   * starts at this shard life's floor, above every seq shown before.
   */
  private restore(r: RestoredBook, exactSeq = false): Book {
    const c = this.kernel.cols;
    const book = this.addBook(r.state, r.status, exactSeq ? r.seq : Math.max(r.seq, this.seqFloor));
    const f = book.index;
    if (r.order !== undefined) for (const symbol of r.order) this.syncPosition(book, symbol);
    else for (const symbol in r.state.positions) this.syncPosition(book, symbol);
    this.syncPortfolio(book);
    this.kernel.recompute(f);
    // Set after the recompute: these positions at the restored prices are not an equity the portfolio
    // had (events replayed next may change them; after a kill -9 the prices may be stale). The next
    // live revaluation raises the mark.
    c.pfHwm[f] = r.hwm;
    if (book.status !== 'active') c.pfFlags[f] |= FLAG_BREACH_LATCHED;
    return book;
  }

  /**
   * Re-applies logged events after a snapshot, without actors: the pure domain functions on each
   * book's state (trades in place, see replayTrade), skipping what the book's snapshot covers and
   * derived events (the log has them). Kernel rows are created in the order live trading created
   * them but written, and totals recomputed, once per touched book in finishRecovery.
   */
  replay(events: StoredEvent[]): void {
    for (const e of events) this.replayOne(e);
  }

  /**
   * The book a logged event of `portfolioId` at `seq` replays into when this shard reads the log
   * itself (src/shard/tail.ts): one of its books whose snapshot does not cover the event; else
   * undefined (another shard's portfolio, or already in the snapshot).
   */
  replayTarget(portfolioId: string, seq: number): Book | undefined {
    const book = this.byId.get(portfolioId);
    return book === undefined || seq <= book.covered ? undefined : book;
  }

  /** A portfolio created in the log belongs here (its shard) and is not held yet. */
  createsHere(portfolioId: string): boolean {
    return !this.byId.has(portfolioId) && shardOf(portfolioId, this.init.shards ?? 1) === this.init.shard;
  }

  /** The symbol (or a conversion's Q>B symbol, which is registered together with its legs) has an id here. */
  knowsSymbol(name: string): boolean {
    return this.symbolIds.has(name);
  }

  /** A book's base currency, without building the state of a lazily restored one. */
  baseOf(book: Book): string {
    const lazy = book.lazySource;
    return lazy === null ? baseCurrencyOf(book.state) : (lazy.source as SnapshotPart).baseOf(lazy.index);
  }

  /** One logged event, decoded (replay's rule: the same as a chunk's decoded entries). */
  replayEvent(e: StoredEvent): void {
    this.replayOne(e);
  }

  /**
   * One logged trade read from its bytes into the book replayTarget answered (src/shard/tail.ts reads it; nothing of it is kept). ids:
   * the reader that left r.trade_id unbuilt; the id is built only when the trade is booked on a state
   * (lots name it), not into snapshot columns.
   */
  replayTradeInto(book: Book, r: TradeRecord, ids: { tradeId(): string } | null): void {
    const trade = this.replayScratch;
    trade.trade_id = r.trade_id;
    trade.symbol = r.symbol;
    trade.side = r.side;
    trade.units = unitsOf(r.quantity) as number;
    trade.quantity = r.quantity;
    trade.price = r.price;
    trade.fee = r.fee;
    trade.ts = r.trade_ts;
    trade.currency = r.currency;
    trade.fx_rate = r.fx_rate;
    trade.multiplier = r.multiplier;
    if (book.replayIntoSource(trade)) this.tradesReplayedInColumns++;
    else {
      if (ids !== null) trade.trade_id = ids.tradeId();
      // Every symbol in a book's positions has its row (restored or created by an earlier trade), so
      // only a trade that opens a position looks its row up.
      const held = book.state.positions[r.symbol] !== undefined;
      replayTrade(book.state, trade);
      book.changed();
      if (!held) this.ensureRow(book, r.symbol);
    }
    if (!book.touched) {
      book.touched = true;
      this.touched.push(book);
    }
  }

  /**
   * After load + replay: touched books are synced to the kernel and recomputed once, and limit checks
   * are re-armed for active portfolios: replay values positions at today's prices, so a latch set
   * while replaying must not silence tomorrow's breach.
   */
  finishRecovery(): void {
    const c = this.kernel.cols;
    for (const book of this.touched) {
      book.touched = false;
      // Changed since the snapshot (and its records): the next round writes its record.
      book.recordDue = true;
      // Replay changes states in place: the delta writer's copy of this book's positions is out of date.
      book.heldOf = null;
      // Changed after its snapshot: whatever it showed since is above the snapshot's seq.
      book.seq = Math.max(book.seq, this.seqFloor);
      const lazy = book.lazySource;
      if (lazy !== null) {
        // Its trades were booked into its snapshot's columns (no state built): rows from there.
        this.syncFromPart(book, lazy.source as SnapshotPart, lazy.index);
        continue;
      }
      for (const row of book.rowList) {
        const p = book.state.positions[this.symbolNames[c.posSym[row]]];
        // A renamed position left the state; its row stays, flat (as syncCorporate leaves it live).
        if (p === undefined) this.kernel.setPosition(row, 0, 0, 0);
      }
      for (const symbol in book.state.positions) this.syncPosition(book, symbol);
      this.syncPortfolio(book);
      // Replay values past positions at today's prices: equities that never existed must not raise the
      // high-water mark (a phantom mark pauses max_drawdown_pct portfolios after a restart; found by the
      // simulator, seeds 1 and 508687769). Deposits and withdrawals replayed did shift it.
      const hwm = c.pfHwm[book.index];
      this.kernel.recompute(book.index);
      c.pfHwm[book.index] = hwm;
    }
    this.touched = [];
    for (const book of this.books) {
      if (book.dropped) continue;
      if (book.status === 'active') this.kernel.clearBreach(book.index);
      else c.pfFlags[book.index] |= FLAG_BREACH_LATCHED;
    }
  }

  /**
   * A book whose replayed trades went into its snapshot part's columns: its rows (in the part's
   * position order, as restoreLazily created them) and cash written as restoreLazily writes them,
   * then totals recomputed keeping the high-water mark, as for a state book.
   */
  private syncFromPart(book: Book, part: SnapshotPart, i: number): void {
    const k = this.kernel;
    const c = k.cols;
    const first = part.first[i];
    const n = part.count[i];
    // Its rows are still the run restored with it (no row list built, nothing added): walked as a
    // run, without building a list per book that stays for the book's life (100,000 after a 1M tail).
    const run = book.restoredRunStart;
    if (run >= 0) {
      for (let r = 0; r < n; r++) {
        const p = first + r;
        k.setPosition(run + r, (part.units[p] / 1e8) * part.multiplierOf(p), part.avg[p], part.lastTrade[p]);
      }
    } else {
      assert(book.rowList.length === n, 'a book replayed in its columns has the rows of its snapshot');
      for (let r = 0; r < n; r++) {
        const p = first + r;
        k.setPosition(book.rowList[r], (part.units[p] / 1e8) * part.multiplierOf(p), part.avg[p], part.lastTrade[p]);
      }
    }
    c.pfCash[book.index] = part.cash[i];
    c.pfRealized[book.index] = part.realized[i];
    const hwm = c.pfHwm[book.index];
    k.recompute(book.index);
    c.pfHwm[book.index] = hwm;
  }

  private replayOne(e: StoredEvent): void {
    if (e.type === 'PortfolioCreated') {
      if (!this.byId.has(e.portfolio_id)) {
        // It may have shown seqs before the crash that lost its snapshot: start above them.
        const options = { cost_basis_method: e.cost_basis_method ?? 'average', base_currency: e.base_currency ?? baseCurrencyDefault } as const;
        this.create(e.portfolio_id, e.name, e.cash, e.limits, options, this.seqFloor);
      }
      return;
    }
    const book = this.byId.get(e.portfolio_id);
    if (book === undefined || e.seq <= book.covered) return;
    const c = this.kernel.cols;
    switch (e.type) {
      case 'TradeExecuted': {
        const trade = replayedTrade(e);
        if (book.replayIntoSource(trade)) {
          this.tradesReplayedInColumns++;
          break;
        }
        replayTrade(book.state, trade);
        book.changed();
        // The row now, as the live trade created it: rows link in creation order, and totals sum in it.
        this.ensureRow(book, trade.symbol);
        break;
      }
      // A foreign move replays at the rate it was booked at.
      case 'CashDeposited':
        book.state = applyDeposit(book.state, e.amount, { amount: e.amount, currency: e.currency ?? null, fx_rate: e.fx_rate ?? null }).state;
        c.pfHwm[book.index] += e.amount * (e.fx_rate ?? 1);
        break;
      case 'CashWithdrawn':
        book.state = applyWithdraw(book.state, e.amount, { amount: e.amount, currency: e.currency ?? null, fx_rate: e.fx_rate ?? null }).state;
        c.pfHwm[book.index] -= e.amount * (e.fx_rate ?? 1);
        break;
      case 'FxConverted':
        book.state = applyFxConversion(book.state, { from_currency: e.from_currency, to_currency: e.to_currency, amount: e.amount, rate: e.rate }).state;
        break;
      case 'LimitsSet':
        book.state = applyLimits(book.state, e.limits).state;
        break;
      case 'TradingPaused':
        book.status = 'paused';
        break;
      case 'TradingResumed':
        book.status = 'active';
        break;
      case 'PortfolioClosed':
        book.status = 'closed';
        break;
      default: {
        const step = corporateStepOf(e);
        if (step === null) return;
        book.state = applyCorporateStep(book.state, step).state;
        if (step.step === 'symbol_change' && book.state.positions[step.new_symbol] !== undefined) this.ensureRow(book, step.new_symbol);
      }
    }
    if (!book.touched) {
      book.touched = true;
      this.touched.push(book);
    }
  }

  private command(cmd: Command): CommandResult {
    if (cmd.kind === 'corporate') return this.corporate(cmd);
    if (cmd.kind === 'holders') return this.holders(cmd);
    const result: CommandResult = { id: cmd.id, error: null, snapshot: null, trade: null, events: [], update: null };
    if (cmd.kind === 'create') {
      if (this.byId.has(cmd.portfolio)) return withError(result, ErrorCode.portfolio_exists, `id '${cmd.portfolio}' already exists`, 'id');
      if (this.books.length >= this.init.portfoliosMax) return withError(result, ErrorCode.limit_exceeded, `portfolios per shard must be <= ${this.init.portfoliosMax}`, 'id');
      const book = this.create(cmd.portfolio, cmd.name, cmd.cash, cmd.limits, cmd.options);
      result.events.push(stamp(createdEvent(cmd.name, cmd.cash, cmd.limits, cmd.options), book.id, cmd.now));
      result.snapshot = this.snapshotOf(book, cmd.now);
      return result;
    }
    const book = this.byId.get(cmd.portfolio);
    if (book === undefined) return withError(result, ErrorCode.portfolio_not_found, `portfolio '${cmd.portfolio}' not found`, 'portfolio_id');
    if (cmd.kind === 'snapshot') {
      // Deltas held back go out first (result.update is delivered before the snapshot): the listeners
      // that had them pending get them, and the snapshot's next delta shows only what moves after it.
      if (book.heldUnsent) {
        this.writeDelta(book, cmd.now, true, 0);
        result.update = this.deltas.last();
        this.deltas.reset();
      }
      if (cmd.watch === true) {
        book.watchers++;
        this.kernel.setWatched(book.index, true);
        this.deltas.markSent(this.kernel.cols, book);
        book.sentSeq = book.seq;
      }
      result.snapshot = this.snapshotOf(book, cmd.now, cmd.lots === true);
      return result;
    }
    // A trade books at its instrument's multiplier as this shard knows it now: a definition reaches
    // every shard before any command submitted after it (instruments.ts).
    if (cmd.kind === 'trade') cmd = { ...cmd, trade: { ...cmd.trade, multiplier: this.multipliers.get(cmd.trade.symbol) ?? 1 } };
    if (cmd.kind === 'trade' && cmd.dryRun === true) return this.dryRun(book, cmd, result);
    if (cmd.kind === 'trade' && !this.hasRowFor(book, cmd.trade.symbol)) {
      if (book.rows.size >= this.init.positionsPerPortfolioMax) {
        return withError(result, ErrorCode.limit_exceeded, `positions per portfolio must be <= ${this.init.positionsPerPortfolioMax}`, 'symbol');
      }
    }
    const events: DomainEventBody[] = [];
    let event = toEvent(cmd);
    if (event.type === 'trade') event.trade = this.withRate(book, event.trade);
    if (event.type === 'deposit' || event.type === 'withdraw') event = this.withCashRate(book, event);
    const error = this.apply(book, event, events);
    if (error !== null) return { ...result, error };
    for (const e of events) result.events.push(stamp(e, book.id, cmd.now));
    book.seq++;
    if (cmd.kind === 'trade') result.trade = this.tradeResultOf(book, cmd.trade, events, cmd.now);
    else result.snapshot = this.snapshotOf(book, cmd.now);
    if (book.watchers > 0) {
      this.deltas.reset();
      this.writeDelta(book, cmd.now, false, 0);
      result.update = this.deltas.last();
      this.deltas.reset();
    }
    return result;
  }

  /** Sends an event to the actor and brings the kernel in step with what it applied. */
  private apply(book: Book, event: PortfolioEvent, out: DomainEventBody[]): EngineError | null {
    const effect = sendToActor(book, event);
    if (effect === null) return null;
    if (effect.type === 'rejected') return effect.field === undefined ? { code: effect.code, message: effect.message } : { code: effect.code, message: effect.message, field: effect.field };
    assert(effect.type === 'applied', 'a run of trades goes through bookRun');
    out.push(...effect.events);
    const f = book.index;
    const c = this.kernel.cols;
    if (event.type === 'trade') this.syncPosition(book, event.trade.symbol);
    if (event.type === 'corporate') this.syncCorporate(book, event.step);
    if (event.type === 'deposit') c.pfHwm[f] += event.amount * (event.fx_rate ?? 1); // a foreign move at its value in the base
    if (event.type === 'withdraw') c.pfHwm[f] -= event.amount * (event.fx_rate ?? 1);
    if (event.type === 'setLimits' || event.type === 'resume') this.kernel.clearBreach(f);
    if (event.type === 'pause' || event.type === 'breach') c.pfFlags[f] |= FLAG_BREACH_LATCHED;
    this.syncPortfolio(book);
    const kind = this.kernel.recompute(f);
    if (kind !== 0) this.breachEvents(book, out);
    return null;
  }

  /**
   * A corporate action step for every book here that holds its symbol, in any lifecycle state. 'check'
   * changes nothing; 'apply' comes after every shard passed the check, with all other traffic held by
   * the engine, so it cannot be refused. Visits every book: O(portfolios here), actions are rare.
   */
  private corporate(cmd: Extract<Command, { kind: 'corporate' }>): CommandResult {
    const updates: Uint8Array[] = [];
    const result: CommandResult = { id: cmd.id, error: null, snapshot: null, trade: null, events: [], update: null, updates, holders: 0 };
    const only = cmd.portfolios === undefined ? null : new Set(cmd.portfolios);
    const holders = this.live().filter((book) => (only === null || only.has(book.id)) && holdsFor(book.state, cmd.step));
    if (cmd.mode === 'check') {
      for (const book of holders) {
        const refusal = corporateRefusal(book.state, cmd.step);
        if (refusal !== null) return withError(result, refusal.code, `portfolio '${book.id}': ${refusal.message}`, refusal.field);
      }
      return result;
    }
    this.corporateMarks(cmd.step, cmd.price, cmd.priceTs);
    // Trades after the adjustment book at the new multiplier (the main thread sends it too, for restarts).
    if (cmd.step.step === 'contract_adjustment') this.multipliers.set(cmd.step.symbol, cmd.step.multiplier);
    for (const book of holders) {
      const events: DomainEventBody[] = [];
      const hadActor = book.actor !== null;
      const error = this.apply(book, { type: 'corporate', step: this.corporateStepFor(book, cmd.step) }, events);
      assert(error === null, `corporate step refused after its check: ${error?.message}`);
      if (!hadActor) releaseActor(book);
      for (const e of events) result.events.push(stamp(e, book.id, cmd.now));
      book.seq++;
      if (book.watchers > 0) {
        this.deltas.reset();
        this.writeDelta(book, cmd.now, false, 0);
        updates.push(this.deltas.last());
        this.deltas.reset();
      }
    }
    result.holders = holders.length;
    return result;
  }

  /** Portfolios here holding a non-flat position in the symbol (a multiplier may change only at 0). */
  private holders(cmd: Extract<Command, { kind: 'holders' }>): CommandResult {
    let holders = 0;
    for (const book of this.live()) if ((book.state.positions[cmd.symbol]?.units ?? 0) !== 0) holders++;
    return { id: cmd.id, error: null, snapshot: null, trade: null, events: [], update: null, holders };
  }

  /** A what-if trade (whatIf.ts): figures and breaches, nothing booked, no event, no seq. */
  private dryRun(book: Book, cmd: Extract<Command, { kind: 'trade' }>, result: CommandResult): CommandResult {
    const trade = this.withRate(book, cmd.trade);
    const error = whatIfRefusal(book, trade);
    if (error !== null) return { ...result, error };
    const sym = this.symbolIds.get(trade.symbol);
    assert(sym !== undefined, `symbol ${trade.symbol} registered before the command that uses it`);
    const { currency, foreign } = currencyOfTrade(book.state, trade);
    const fx = foreign ? this.rateOf(currency, baseCurrencyOf(book.state)) : 1;
    const w = whatIf({ c: this.kernel.cols, book, trade, row: book.rows.get(sym), sym, fx, cashInBase: (state) => this.cashOf(state), clock: this.markClock(cmd.now) });
    result.trade = { trade_id: trade.trade_id, portfolio_id: book.id, applied: false, realized_pnl: w.realized_pnl, position: w.position, totals: w.totals, state: book.status };
    result.breaches = w.breaches;
    return result;
  }

  /**
   * Marks move with the step, set by the main thread (it owns last prices): a split's new mark keeps
   * market values unchanged; a new symbol without a price yet takes the old symbol's.
   */
  private corporateMarks(step: CorporateStep, price: number, priceTs: number): void {
    if (price <= 0) return;
    const c = this.kernel.cols;
    // The mark's source ts comes with it, so its price age is the same live and after recovery.
    if (step.step === 'split') {
      const sid = this.symbolIds.get(step.symbol);
      if (sid === undefined) return;
      c.symPrice[sid] = price;
      this.symTs[sid] = priceTs;
    } else if (step.step === 'symbol_change') {
      const sid = this.symbolIds.get(step.new_symbol);
      assert(sid !== undefined, `symbol ${step.new_symbol} registered before the symbol change`);
      if (c.symPrice[sid] !== 0) return;
      c.symPrice[sid] = price;
      this.symTs[sid] = priceTs;
    }
  }

  /** A payment in a foreign currency is converted at the latest rate of its pair, when one was seen. */
  private corporateStepFor(book: Book, step: CorporateStep): CorporateStep {
    if (step.step !== 'pay_date') return step;
    const due = book.state.dividends_due?.[step.action_id];
    const base = baseCurrencyOf(book.state);
    if (due === undefined || due.currency === base) return step;
    const rate = this.rateOf(due.currency, base);
    return { ...step, fx_rate: rate > 0 ? rate : null };
  }

  /** Kernel rows in step with a corporate action the actor applied (live or replayed). */
  private syncCorporate(book: Book, step: CorporateStep): void {
    if (step.step === 'split' || step.step === 'contract_adjustment') this.syncPosition(book, step.symbol);
    if (step.step !== 'symbol_change') return;
    const oldSid = this.symbolIds.get(step.symbol);
    const row = oldSid === undefined ? undefined : book.rows.get(oldSid);
    // The old symbol left the state; its row stays, flat, so watchers see that position close. A
    // portfolio at positionsPerPortfolioMax rows may take one more here: a rename adds no holding, and
    // refusing one portfolio would break the action's atomicity.
    if (row !== undefined && book.state.positions[step.symbol] === undefined) this.kernel.setPosition(row, 0, 0, 0);
    if (book.state.positions[step.new_symbol] !== undefined) this.syncPosition(book, step.new_symbol);
  }

  /** A foreign trade without its own rate is booked at the latest rate of its FX symbol, if one was seen. */
  private withRate(book: Book, trade: ValidTrade): ValidTrade {
    const { currency, foreign } = currencyOfTrade(book.state, trade);
    if (!foreign || trade.fx_rate !== null) return trade;
    const rate = this.rateOf(currency, baseCurrencyOf(book.state));
    return rate > 0 ? { ...trade, fx_rate: rate } : trade;
  }

  /** A foreign deposit or withdrawal moves capital at the latest rate of its currency (null: none seen). */
  private withCashRate<E extends { type: 'deposit' | 'withdraw'; amount: number; currency?: string | null; fx_rate?: number | null }>(book: Book, event: E): E {
    const base = baseCurrencyOf(book.state);
    const currency = event.currency ?? null;
    if (currency === null || currency === base) return event;
    const rate = this.rateOf(currency, base);
    return { ...event, fx_rate: rate > 0 ? rate : null };
  }

  /**
   * The quote -> base rate the kernel derives (direct, inverse or cross: src/domain/fx.ts); 0 while no
   * path has a price. Defines the conversion on first use.
   */
  private rateOf(quote: string, base: string): number {
    return this.kernel.cols.symPrice[this.conversionFor(quote, base)];
  }

  /** The symbol row carrying quote -> base, defined in the kernel on first use (its symbols are registered first). */
  private conversionFor(quote: string, base: string): number {
    const sid = this.symbolIds.get(conversionSymbolOf(quote, base));
    assert(sid !== undefined, `conversion ${quote}>${base} registered before the command that uses it`);
    if (!this.kernel.hasConversion(sid)) {
      const legs = conversionLegsOf(quote, base, this.init.fxPivot ?? fxPivotDefault);
      const id = (name: string): number => this.symbolIds.get(name) ?? NONE;
      const crossIn = legs.crossIn ?? ['', ''];
      const crossOut = legs.crossOut ?? ['', ''];
      this.kernel.defineConversion(sid, {
        direct: id(legs.direct),
        inverse: id(legs.inverse),
        inDirect: legs.crossIn === null ? NONE : id(crossIn[0]),
        inInverse: legs.crossIn === null ? NONE : id(crossIn[1]),
        outDirect: legs.crossOut === null ? NONE : id(crossOut[0]),
        outInverse: legs.crossOut === null ? NONE : id(crossOut[1]),
      });
    }
    return sid;
  }

  private breach(book: Book, events: ShardEvent[], breaches: { limit: string }[], ts: number): void {
    const out: DomainEventBody[] = [];
    this.breachEvents(book, out);
    for (const e of out) {
      events.push(stamp(e, book.id, ts));
      if (e.type === 'RiskLimitBreached') breaches.push({ limit: e.limit });
    }
  }

  private breachEvents(book: Book, out: DomainEventBody[]): void {
    const c = this.kernel.cols;
    const kind = c.pfBreachKind[book.index];
    const limit = limitNames[kind];
    if (limit === '') return;
    const threshold = book.state.limits[limit] ?? NaN;
    const value = c.pfBreachValue[book.index];
    const effect = sendToActor(book, { type: 'breach', limit, value, threshold });
    if (effect !== null && effect.type === 'applied') out.push(...effect.events);
    c.pfFlags[book.index] |= FLAG_BREACH_LATCHED;
  }

  /** seq: 0 for a new portfolio (ids are never reused); replay passes the shard life's floor. */
  private create(id: string, name: string, cash: number, limits: PortfolioRecord['portfolio']['limits'], options: PortfolioOptions, seq = 0): Book {
    const book = this.addBook(newPortfolio(id, name, cash, limits, options), 'active', seq);
    this.kernel.cols.pfHwm[book.index] = cash;
    this.syncPortfolio(book);
    this.kernel.recompute(book.index);
    return book;
  }

  private addBook(state: PortfolioRecord['portfolio'], status: PortfolioRecord['state'], seq: number): Book {
    const index = this.kernel.addPortfolio();
    assert(index === this.books.length, 'kernel portfolio rows follow the book list');
    const book = newBook(index, state, status, seq);
    this.books.push(book);
    this.byId.set(book.id, book);
    return book;
  }

  private hasRowFor(book: Book, symbol: string): boolean {
    const id = this.symbolIds.get(symbol);
    return id !== undefined && book.rows.has(id);
  }

  private syncPortfolio(book: Book): void {
    const c = this.kernel.cols;
    const f = book.index;
    c.pfCash[f] = this.cashInBase(book);
    c.pfRealized[f] = book.state.realized_pnl;
    const l = book.state.limits;
    this.kernel.setLimits(f, l.max_loss, l.max_drawdown_pct, l.max_position_weight_pct);
  }

  /**
   * Base cash plus each foreign balance at its latest rate; a balance whose rate was never seen is
   * left out (and counted in unconverted_positions), never taken at 1.0. Also keeps cashByFx current.
   */
  private cashInBase(book: Book): number {
    const balances = book.state.cash_balances;
    if (balances === undefined) return book.state.cash;
    const base = baseCurrencyOf(book.state);
    for (const currency of Object.keys(balances)) {
      const sid = this.conversionFor(currency, base);
      if (!book.cashFx.includes(sid)) this.watchCashFx(book, sid);
    }
    return this.cashOf(book.state);
  }

  /** Base cash plus each foreign balance at its latest rate (one never seen is left out). */
  private cashOf(state: PortfolioState): number {
    const balances = state.cash_balances;
    if (balances === undefined) return state.cash;
    const c = this.kernel.cols;
    const base = baseCurrencyOf(state);
    let cash = state.cash;
    for (const currency of Object.keys(balances)) {
      const rate = c.symPrice[this.conversionFor(currency, base)];
      if (rate > 0) cash += balances[currency] * rate;
    }
    return cash;
  }

  private watchCashFx(book: Book, sid: number): void {
    book.cashFx.push(sid);
    this.deltas.cashFxAdded(book.index);
    const holders = this.cashByFx.get(sid);
    if (holders === undefined) this.cashByFx.set(sid, [book]);
    else holders.push(book);
  }

  /** The book's kernel row for the symbol, created (and linked to its conversion) on first use. */
  private ensureRow(book: Book, symbol: string): number {
    const sid = this.symbolIds.get(symbol);
    assert(sid !== undefined, `symbol ${symbol} registered before the command that uses it`);
    let row = book.rows.get(sid);
    if (row !== undefined) return row;
    const p = book.state.positions[symbol];
    row = this.kernel.addPosition(book.index, sid);
    book.rows.set(sid, row);
    book.rowList.push(row);
    this.deltas.ensureRow(row);
    if (p?.currency !== undefined) {
      this.kernel.setPositionFx(row, this.conversionFor(p.currency, baseCurrencyOf(book.state)));
      book.foreign++;
    }
    return row;
  }

  private syncPosition(book: Book, symbol: string): void {
    const row = this.ensureRow(book, symbol);
    const p = book.state.positions[symbol];
    // The kernel holds the effective quantity, quantity x multiplier: every money figure it computes
    // (market value, unrealized P&L, cost basis, weights, limits) then carries the multiplier with no
    // column and no operation added to the revalue pass (see ARCHITECTURE.md).
    this.kernel.setPosition(row, (p.units / 1e8) * (p.multiplier ?? 1), p.avg_cost, p.last_trade_price);
  }

  /** The book's position in the symbol (time travel reads holdings at an instant from it). */
  positionOf(id: string, symbol: string): { units: number; currency: string; multiplier: number } | null {
    const book = this.byId.get(id);
    const p = book?.state.positions[symbol];
    if (book === undefined || p === undefined) return null;
    return { units: p.units, currency: p.currency ?? baseCurrencyOf(book.state), multiplier: p.multiplier ?? 1 };
  }

  snapshot(id: string, now: number): PortfolioSnapshot | null {
    const book = this.byId.get(id);
    return book === undefined ? null : this.snapshotOf(book, now);
  }

  /** The clock figures of a message as of `now` are aged against (symTs may be replaced by growth). */
  private markClock(now: number): MarkClock {
    return { symTs: this.symTs, asOf: now, staleAfterMs: this.init.staleAfterMs };
  }

  private snapshotOf(book: Book, now: number, withLots = false): PortfolioSnapshot {
    const c = this.kernel.cols;
    const clock = this.markClock(now);
    const positions: PositionView[] = [];
    for (const row of book.rowList) {
      if (c.posQty[row] === 0) continue;
      positions.push(positionView(c, book, row, this.symbolNames[c.posSym[row]], clock));
    }
    positions.sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
    const snapshot: PortfolioSnapshot = {
      portfolio_id: book.id,
      name: book.state.name,
      seq: book.seq,
      as_of: now,
      state: book.status,
      limits: book.state.limits,
      equity_hwm: c.pfHwm[book.index],
      cost_basis_method: methodOf(book.state),
      base_currency: baseCurrencyOf(book.state),
      cash_balances: { ...book.state.cash_balances },
      ...totalsOf(c, book, clock),
      positions,
    };
    if (withLots && methodOf(book.state) !== 'average') snapshot.lots = lotsOf(book);
    return snapshot;
  }

  /** The portfolio's delta for its watchers (deltaWriter.ts): totals and the positions that moved. */
  private writeDelta(book: Book, now: number, fromTicks: boolean, fallbackTickTs: number): void {
    // After skipped deltas, this one covers them: from the seq after the last one written.
    const fromSeq = book.heldUnsent ? book.sentSeq + 1 : book.seq;
    this.deltas.write(this.kernel.cols, book, this.markClock(now), fromTicks, fallbackTickTs, fromSeq);
    book.sentSeq = book.seq;
    book.heldUnsent = false;
  }

  /** A batch's delta, skipped (encoding and all) while every watcher of the book holds. */
  private writeDeltaUnlessHeld(book: Book, now: number, fallbackTickTs: number): void {
    if (book.holds > 0 && book.holds >= book.watchers) {
      book.heldUnsent = true;
      return;
    }
    this.writeDelta(book, now, true, fallbackTickTs);
  }

  /**
   * Conflation in the shard: one watcher of `id` takes no deltas for now (on) or again (off). While
   * every watcher holds, batches skip the book's delta; the first delta written after (a batch, a
   * command, a snapshot, or the release itself when changes were skipped) covers them, with from_seq.
   * Memory: nothing per skipped delta (the writer's per-row slots say what was last sent). Returns
   * the release's delta, written into the batch buffer (the caller takes it), or false.
   */
  hold(id: string, on: boolean, now: number): boolean {
    const book = this.byId.get(id);
    if (book === undefined) return false;
    book.holds = Math.max(0, Math.min(book.watchers, book.holds + (on ? 1 : -1)));
    if (book.holds >= book.watchers || !book.heldUnsent) return false;
    this.deltas.reset();
    this.writeDelta(book, now, true, 0);
    return true;
  }

  /** The deltas hold() wrote, in a buffer of their own (transferable), and their index. */
  takeDeltas(): { bytes: Uint8Array; index: Int32Array } {
    return this.deltas.take();
  }

  private tradeResultOf(book: Book, trade: ValidTrade, events: DomainEventBody[], now: number) {
    const sid = this.symbolIds.get(trade.symbol) as number;
    const clock = this.markClock(now);
    const row = book.rows.get(sid) as number;
    const executed = events.find((e) => e.type === 'TradeExecuted');
    return {
      trade_id: trade.trade_id,
      portfolio_id: book.id,
      applied: true,
      realized_pnl: executed !== undefined && executed.type === 'TradeExecuted' ? executed.realized_pnl : 0,
      position: positionView(this.kernel.cols, book, row, trade.symbol, clock),
      totals: totalsOf(this.kernel.cols, book, clock),
      state: book.status,
    };
  }
}

function lotsOf(book: Book): Record<string, LotView[]> {
  const out: Record<string, LotView[]> = {};
  for (const symbol of Object.keys(book.state.positions).sort()) {
    const lots = book.state.positions[symbol].lots ?? [];
    if (lots.length === 0) continue;
    out[symbol] = lots.map((lot) => ({ lot_id: lot.lot_id, quantity: quantityOf(lot.units), price: lot.price, opened_ts: lot.opened_ts }));
  }
  return out;
}

function createdEvent(name: string, cash: number, limits: RiskLimits, options: PortfolioOptions): DomainEventBody {
  const e: DomainEventBody = { type: 'PortfolioCreated', name, cash, limits };
  if (options.cost_basis_method !== 'average') e.cost_basis_method = options.cost_basis_method;
  if (options.base_currency !== baseCurrencyDefault) e.base_currency = options.base_currency;
  return e;
}

/** Whether any risk limit is set (a trade can then breach one and pause the portfolio). */
function hasLimits(l: RiskLimits): boolean {
  return (l.max_loss ?? null) !== null || (l.max_drawdown_pct ?? null) !== null || (l.max_position_weight_pct ?? null) !== null;
}

function withError(result: CommandResult, code: ErrorCode, message: string, field: string): CommandResult {
  return { ...result, error: { code, message, field } };
}

function stamp(e: DomainEventBody, portfolio: string, ts: number): ShardEvent {
  return { ...e, portfolio_id: portfolio, ts };
}

function toEvent(cmd: Exclude<Command, { kind: 'create' | 'snapshot' | 'corporate' | 'holders' }>): PortfolioEvent {
  switch (cmd.kind) {
    case 'trade':
      return { type: 'trade', trade: cmd.trade };
    case 'deposit':
      return { type: 'deposit', amount: cmd.amount, currency: cmd.currency ?? null };
    case 'withdraw':
      return { type: 'withdraw', amount: cmd.amount, currency: cmd.currency ?? null };
    case 'fxConvert':
      return { type: 'fxConvert', from_currency: cmd.from_currency, to_currency: cmd.to_currency, amount: cmd.amount, rate: cmd.rate };
    case 'limits':
      return { type: 'setLimits', limits: cmd.limits };
    case 'pause':
      return { type: 'pause', reason: 'command' };
    case 'resume':
      return { type: 'resume' };
    case 'close':
      return { type: 'close' };
  }
}

/** A logged trade as the trade it was: replay books it at the rate it was booked at, never today's. */
function replayedTrade(e: Extract<StoredEvent, { type: 'TradeExecuted' }>): ValidTrade {
  return {
    trade_id: e.trade_id,
    symbol: e.symbol,
    side: e.side,
    units: unitsOf(e.quantity) as number,
    quantity: e.quantity,
    price: e.price,
    fee: e.fee,
    ts: e.trade_ts,
    currency: e.currency ?? null,
    fx_rate: e.fx_rate ?? null,
    lot_ids: e.lot_ids ?? null,
    multiplier: e.multiplier ?? 1,
  };
}

/**
 * Corporate steps replay from what was logged: the same step on the same books gives the same state;
 * a payment uses the rate it was paid at, never today's. null: not a corporate step event.
 */
function corporateStepOf(e: StoredEvent): CorporateStep | null {
  switch (e.type) {
    case 'SplitApplied':
      return { step: 'split', action_id: e.action_id, symbol: e.symbol, from: e.from, to: e.to };
    // The entitlement replays from the quantity logged (a past ex-date's was not the position then held).
    case 'DividendEntitled': {
      const held = { units: unitsOf(e.quantity) as number, currency: e.currency, multiplier: e.multiplier ?? 1 };
      return { step: 'ex_date', action_id: e.action_id, symbol: e.symbol, amount_per_share: e.amount_per_share, pay_ts: e.pay_ts, holdings: { [e.portfolio_id]: held } };
    }
    case 'DividendPaid':
      return { step: 'pay_date', action_id: e.action_id, fx_rate: e.fx_rate };
    case 'SymbolChanged':
      return { step: 'symbol_change', action_id: e.action_id, symbol: e.from_symbol, new_symbol: e.to_symbol };
    case 'ContractAdjusted':
      return { step: 'contract_adjustment', action_id: e.action_id, symbol: e.symbol, multiplier: e.multiplier_after };
    default:
      return null;
  }
}
