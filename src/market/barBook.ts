// The open bars of every symbol and timeframe, updated tick by tick without allocating.
//
// Each (symbol, timeframe) has two slots in flat Float64Arrays: the open bar and the most recent
// closed bar. Keeping the recent closed bar in memory lets the common late tick (one that arrives
// just after its bucket closed) revise it without a storage round trip; an older bar is asked of
// the caller's BarSource. Closed and revised bars go to the caller's BarSink, which persists them.
//
// A tick is accepted when it is no older than the symbol's newest tick minus latenessMs, or when it
// falls inside the open 1m bar (an out-of-order tick inside the open bar is never late). The decision
// is made once per tick, not per timeframe, so a tick lands in all seven timeframes or in none and
// every timeframe stays the exact roll-up of the 1m bars.

import { assert } from '../assert.js';
import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { barFromTick, isValidTick, validateBar, vwapOf, withTick, type Bar } from './bar.js';
import { SYMBOL_INVALID, SYMBOL_TABLE_FULL, SymbolTable, type SymbolIds } from './symbols.js';
import { bucketStartAt, dayMs, timeframeCount, timeframeIndex, timeframeWidthsMs, timeframes, weekMs, type Timeframe } from './timeframe.js';
import { integerIn, isPlainObject, unknownKey } from './validate.js';

/** Receives bars the caller persists. Called synchronously from onTick and closeElapsed. */
export interface BarSink {
  /** A bar whose bucket ended: a tick of a later bucket arrived, or closeElapsed saw its end pass. */
  closed(bar: Bar): void;
  /** A closed bar changed by a late tick, or created by one for a bucket that had no tick: overwrite it. */
  revised(bar: Bar): void;
}

/** Closed bars older than the recent one in memory, for late ticks that revise them. */
export interface BarSource {
  /**
   * The stored bar, or null when its bucket had no tick. Synchronous, and it must see every bar the
   * sink has received, flushed or not: a write-through cache in front of the store satisfies this.
   * undefined means "cannot tell" (a bounded cache that had to forget): the tick is dropped as
   * no_source rather than overwriting a stored bar with a bar built from that one tick.
   */
  get(symbol: string, tf: Timeframe, start: number): Bar | null | undefined;
}

export interface BarBookLimits {
  /** Symbols held; ignored when a shared SymbolTable is given (its own bound applies). */
  symbolsMax: number;
  /** How far behind the symbol's newest tick a tick may be and still revise a closed bar. */
  latenessMs: number;
  /** Silence after which a symbol is reported as a FeedGap while other symbols tick. */
  feedGapMs: number;
  /** FeedGap facts returned by one checkGaps call; the rest come on the next calls. */
  gapsPerCheckMax: number;
}

export const barBookLimitsDefault: Readonly<BarBookLimits> = Object.freeze({
  symbolsMax: 10_000,
  latenessMs: 5_000,
  feedGapMs: 60_000,
  gapsPerCheckMax: 256,
});

export interface BarBookOptions {
  limits?: Partial<BarBookLimits>;
  sink: BarSink;
  /** Without a source, a late tick that needs an older bar than the recent one is dropped (no_source). */
  source?: BarSource;
  /** Share ids with a MarketAlerts or the engine; a private table is created otherwise. */
  symbols?: SymbolIds;
}

export type DropReason = 'late' | 'invalid' | 'symbols_full' | 'unknown_symbol' | 'no_source';
/** applied: open bars only; revised: at least one closed bar was revised or created. */
export type TickOutcome = 'applied' | 'revised' | DropReason;

/**
 * A symbol silent while the feed was alive. 'open' is reported when the silence passes feedGapMs
 * (to = the check's now); 'closed' when the symbol ticks again (to = that tick's ts).
 */
export interface FeedGap {
  symbol: string;
  from: number;
  to: number;
  state: 'open' | 'closed';
}

export interface BarBookStats {
  symbols: number;
  ticksApplied: number;
  barsClosed: number;
  barsRevised: number;
  dropped: Record<DropReason, number>;
}

// Slot layout: one bar in STRIDE float64s. trades === 0 marks an empty slot.
const START = 0;
const OPEN = 1;
const HIGH = 2;
const LOW = 3;
const CLOSE = 4;
const VOLUME = 5;
const PV = 6;
const TRADES = 7;
const FIRST_TS = 8;
const LAST_TS = 9;
const STRIDE = 10;
const SYMBOL_STRIDE = STRIDE * timeframeCount;

// What a tick does to one timeframe.
const ROUTE_OPEN = 0; // inside the open bar
const ROUTE_ROLL = 1; // a later bucket: close the open bar, open a new one
const ROUTE_START = 2; // no open bar: open one
const ROUTE_RECENT = 3; // revise the recent closed bar in memory
const ROUTE_GAP = 4; // a bucket between the recent closed bar and the open one: create its bar
const ROUTE_SOURCE = 5; // an older bucket: revise the stored bar

const UNKNOWN_ID = -3;
const capacityInitial = 64;

export function validateBarBookLimits(input: unknown): Result<BarBookLimits> {
  if (input === undefined) return ok({ ...barBookLimitsDefault });
  if (!isPlainObject(input)) return fail(ErrorCode.invalid_limits, 'limits must be an object', 'limits');
  const unknown = unknownKey(input, Object.keys(barBookLimitsDefault));
  if (unknown !== null) return fail(ErrorCode.invalid_limits, `limits.${unknown} is not a known limit`, `limits.${unknown}`);
  const merged = { ...barBookLimitsDefault, ...input };
  const checks = [
    integerIn(merged.symbolsMax, 'limits.symbolsMax', 1, 10_000_000),
    integerIn(merged.latenessMs, 'limits.latenessMs', 0, dayMs),
    integerIn(merged.feedGapMs, 'limits.feedGapMs', 1, weekMs),
    integerIn(merged.gapsPerCheckMax, 'limits.gapsPerCheckMax', 1, 1_000_000),
  ];
  for (const check of checks) if (!check.ok) return check;
  return ok(merged as BarBookLimits);
}

export function createBarBook(options: BarBookOptions): Result<BarBook> {
  const limits = validateBarBookLimits(options.limits);
  if (!limits.ok) return limits;
  return ok(new BarBook(limits.value, options));
}

export class BarBook {
  readonly symbols: SymbolIds;
  readonly limits: Readonly<BarBookLimits>;
  private readonly sink: BarSink;
  private readonly source: BarSource | undefined;
  private capacity = 0;
  private open = new Float64Array(0);
  private recent = new Float64Array(0);
  /** Newest tick ts per symbol: the reference for lateness and silence. */
  private watermark = new Float64Array(0);
  /** Start of a reported open FeedGap per symbol (NaN: none) and the ts of the tick that ended it. */
  private gapFrom = new Float64Array(0);
  private gapTo = new Float64Array(0);
  private feedWatermark = -Infinity;
  private gapCursor = 0;
  // Scratch for one tick's plan, reused so onTick allocates nothing.
  private readonly routes = new Uint8Array(timeframeCount);
  private readonly starts = new Float64Array(timeframeCount);
  /** Stored bars fetched while planning (ROUTE_SOURCE), so an unavailable one drops the whole tick. */
  private readonly sourced: (Bar | null)[] = new Array<Bar | null>(timeframeCount).fill(null);
  private ticksApplied = 0;
  private barsClosed = 0;
  private barsRevised = 0;
  private readonly dropped: Record<DropReason, number> = { late: 0, invalid: 0, symbols_full: 0, unknown_symbol: 0, no_source: 0 };

  /** Use createBarBook: it validates the limits. */
  constructor(limits: BarBookLimits, options: BarBookOptions) {
    this.symbols = options.symbols ?? new SymbolTable(limits.symbolsMax);
    this.limits = Object.freeze({ ...limits, symbolsMax: this.symbols.symbolsMax });
    this.sink = options.sink;
    this.source = options.source;
    this.grow(Math.min(capacityInitial, this.limits.symbolsMax));
  }

  /** Updates the bars of all timeframes; symbol is a name or an id of the shared SymbolTable. */
  onTick(symbol: string | number, price: number, ts: number, size?: number): TickOutcome {
    const sym = this.resolve(symbol);
    if (sym < 0) return this.drop(sym === SYMBOL_TABLE_FULL ? 'symbols_full' : sym === UNKNOWN_ID ? 'unknown_symbol' : 'invalid');
    if (!isValidTick(price, ts, size)) return this.drop('invalid');
    if (this.insideOpenBars(sym, ts)) {
      // The common case, without bucket arithmetic: the tick falls in the open bar of every timeframe.
      this.advanceWatermarks(sym, ts);
      this.ticksApplied++;
      for (let tf = 0; tf < timeframeCount; tf++) accumulate(this.open, sym * SYMBOL_STRIDE + tf * STRIDE, price, ts, size);
      return 'applied';
    }
    if (this.isTooLate(sym, ts)) return this.drop('late');
    if (!this.planRoutes(sym, ts)) return this.drop('no_source');
    this.advanceWatermarks(sym, ts);
    this.ticksApplied++;
    return this.applyRoutes(sym, price, ts, size) ? 'revised' : 'applied';
  }

  /**
   * Folds a run of ticks of one symbol into its open bars at once, as onTick would one by one. The
   * caller guarantees what makes that exact: onTick applied the run's first tick as the symbol's
   * newest, and every later tick of the run is valid, in the same 1m bucket, and at or after the
   * previous one, so each lands in the open bar of every timeframe and sets its close. Only the sums
   * differ, by association: volume and pv of the run are added once (the same up to float rounding).
   * This is the market worker's hot path: one update per timeframe per run instead of per tick.
   */
  applyRun(sym: number, count: number, high: number, low: number, close: number, lastTs: number, volume: number, pv: number): void {
    const base = sym * SYMBOL_STRIDE;
    const open = this.open;
    assert(open[base + TRADES] > 0 && lastTs >= open[base + LAST_TS] && lastTs < open[base + START] + timeframeWidthsMs[0], 'applyRun: the run must extend the open 1m bar');
    for (let tf = 0; tf < timeframeCount; tf++) {
      const off = base + tf * STRIDE;
      if (high > open[off + HIGH]) open[off + HIGH] = high;
      if (low < open[off + LOW]) open[off + LOW] = low;
      open[off + CLOSE] = close;
      open[off + LAST_TS] = lastTs;
      open[off + VOLUME] += volume;
      open[off + PV] += pv;
      open[off + TRADES] += count;
    }
    this.advanceWatermarks(sym, lastTs);
    this.ticksApplied += count;
  }

  /**
   * Closes open bars whose bucket ended more than latenessMs before now, so a symbol that stops
   * ticking still gets its bars persisted. A tick for such a bucket later revises it in memory.
   */
  closeElapsed(now: number): number {
    let closed = 0;
    for (let sym = 0; sym < this.rows; sym++) {
      for (let tf = 0; tf < timeframeCount; tf++) {
        const off = sym * SYMBOL_STRIDE + tf * STRIDE;
        if (this.open[off + TRADES] === 0) continue;
        if (this.open[off + START] + timeframeWidthsMs[tf] + this.limits.latenessMs > now) continue;
        const bar = this.snapshot(this.open, sym, tf, off);
        copySlot(this.open, this.recent, off);
        this.open[off + TRADES] = 0;
        this.barsClosed++;
        closed++;
        this.sink.closed(bar);
      }
    }
    return closed;
  }

  /**
   * FeedGap facts due at now, at most gapsPerCheckMax; a round-robin cursor makes the next call
   * continue where this one stopped. A symbol is silent when its newest tick is more than feedGapMs
   * before now while some tick of any symbol is within feedGapMs of now (the feed is alive).
   */
  checkGaps(now: number): FeedGap[] {
    const out: FeedGap[] = [];
    const count = this.rows;
    const feedAlive = now - this.feedWatermark <= this.limits.feedGapMs;
    for (let visited = 0; visited < count && out.length < this.limits.gapsPerCheckMax; visited++) {
      const sym = this.gapCursor;
      this.gapCursor = (this.gapCursor + 1) % count;
      const gap = this.gapAt(sym, now, feedAlive);
      if (gap !== null) out.push(gap);
    }
    return out;
  }

  /** Loads an open bar saved before a restart. Call before ticks for that symbol arrive. */
  restore(input: unknown): Result<Bar> {
    const valid = validateBar(input);
    if (!valid.ok) return valid;
    const bar = valid.value;
    const sym = this.resolve(bar.symbol);
    if (sym === SYMBOL_TABLE_FULL) return fail(ErrorCode.limit_exceeded, `symbolsMax (${this.limits.symbolsMax}) reached`, 'bar.symbol');
    const off = sym * SYMBOL_STRIDE + timeframeIndex(bar.tf) * STRIDE;
    if (this.open[off + TRADES] > 0) return fail(ErrorCode.invalid_field, `an open ${bar.tf} bar of ${bar.symbol} is already held`, 'bar.start');
    writeSlot(this.open, off, bar);
    if (bar.last_ts > this.watermark[sym]) this.watermark[sym] = bar.last_ts;
    return ok(bar);
  }

  /**
   * Loads the newest stored closed bar of a series after a restart, after restore() of its open bar:
   * a late tick for its bucket then revises it in memory, and the symbol's watermark (what decides
   * lateness) is what it was, so a tick for an older stored bucket cannot start a bar over it.
   */
  restoreRecent(input: unknown): Result<Bar> {
    const valid = validateBar(input);
    if (!valid.ok) return valid;
    const bar = valid.value;
    const sym = this.resolve(bar.symbol);
    if (sym === SYMBOL_TABLE_FULL) return fail(ErrorCode.limit_exceeded, `symbolsMax (${this.limits.symbolsMax}) reached`, 'bar.symbol');
    const off = sym * SYMBOL_STRIDE + timeframeIndex(bar.tf) * STRIDE;
    if (this.open[off + TRADES] > 0 && this.open[off + START] <= bar.start) {
      return fail(ErrorCode.invalid_field, `the open ${bar.tf} bar of ${bar.symbol} does not start after this closed bar`, 'bar.start');
    }
    if (this.recent[off + TRADES] > 0 && this.recent[off + START] >= bar.start) {
      return fail(ErrorCode.invalid_field, `a newer closed ${bar.tf} bar of ${bar.symbol} is already held`, 'bar.start');
    }
    writeSlot(this.recent, off, bar);
    if (bar.last_ts > this.watermark[sym]) this.watermark[sym] = bar.last_ts;
    return ok(bar);
  }

  /** Newest tick ts of a symbol id (-Infinity before its first tick): what lateness is measured from. */
  watermarkOf(sym: number): number {
    return sym >= 0 && sym < this.capacity ? this.watermark[sym] : -Infinity;
  }

  /** A copy of the open bar, or null: queries append it to the stored closed bars. */
  openBar(symbol: string, tf: Timeframe): Bar | null {
    const sym = this.symbols.idOf(symbol) ?? -1;
    if (sym < 0 || sym >= this.rows) return null;
    const tfIndex = timeframeIndex(tf);
    const off = sym * SYMBOL_STRIDE + tfIndex * STRIDE;
    return this.open[off + TRADES] > 0 ? this.snapshot(this.open, sym, tfIndex, off) : null;
  }

  /** Copies of every open bar: what a checkpoint persists so restore() can reload them. */
  openBars(): Bar[] {
    const out: Bar[] = [];
    for (let sym = 0; sym < this.rows; sym++) {
      for (let tf = 0; tf < timeframeCount; tf++) {
        const off = sym * SYMBOL_STRIDE + tf * STRIDE;
        if (this.open[off + TRADES] > 0) out.push(this.snapshot(this.open, sym, tf, off));
      }
    }
    return out;
  }

  stats(): BarBookStats {
    return {
      symbols: this.symbols.size,
      ticksApplied: this.ticksApplied,
      barsClosed: this.barsClosed,
      barsRevised: this.barsRevised,
      dropped: { ...this.dropped },
    };
  }

  /** Symbol rows this book holds: a shared table may know ids this book has not seen yet. */
  private get rows(): number {
    return Math.min(this.symbols.size, this.capacity);
  }

  private resolve(symbol: string | number): number {
    if (typeof symbol === 'number') return this.symbols.has(symbol) ? this.ensureCapacity(symbol) : UNKNOWN_ID;
    const sym = this.symbols.intern(symbol);
    return sym === SYMBOL_INVALID || sym === SYMBOL_TABLE_FULL ? sym : this.ensureCapacity(sym);
  }

  private drop(reason: DropReason): DropReason {
    this.dropped[reason]++;
    return reason;
  }

  /** Whether ts is inside the open bar of every timeframe (never late then: see isTooLate). */
  private insideOpenBars(sym: number, ts: number): boolean {
    const open = this.open;
    for (let tf = 0, off = sym * SYMBOL_STRIDE; tf < timeframeCount; tf++, off += STRIDE) {
      if (open[off + TRADES] === 0 || ts < open[off + START] || ts >= open[off + START] + timeframeWidthsMs[tf]) return false;
    }
    return true;
  }

  private isTooLate(sym: number, ts: number): boolean {
    if (ts >= this.watermark[sym] - this.limits.latenessMs) return false;
    const off1m = sym * SYMBOL_STRIDE;
    return this.open[off1m + TRADES] === 0 || ts < this.open[off1m + START];
  }

  /**
   * Fills routes/starts for every timeframe, and fetches the stored bars the source routes revise;
   * false when a stored bar is needed and there is no source or the source cannot tell.
   */
  private planRoutes(sym: number, ts: number): boolean {
    let needsSource = false;
    for (let tf = 0; tf < timeframeCount; tf++) {
      const start = bucketStartAt(tf, ts);
      const route = this.routeOf(sym * SYMBOL_STRIDE + tf * STRIDE, start);
      this.starts[tf] = start;
      this.routes[tf] = route;
      if (route === ROUTE_SOURCE) needsSource = true;
    }
    if (!needsSource) return true;
    if (this.source === undefined) return false;
    const symbol = this.symbols.nameOf(sym);
    for (let tf = 0; tf < timeframeCount; tf++) {
      if (this.routes[tf] !== ROUTE_SOURCE) continue;
      const stored = this.source.get(symbol, timeframes[tf], this.starts[tf]);
      if (stored === undefined) return false;
      this.sourced[tf] = stored;
    }
    return true;
  }

  private routeOf(off: number, start: number): number {
    if (this.open[off + TRADES] > 0) {
      const openStart = this.open[off + START];
      if (start === openStart) return ROUTE_OPEN;
      if (start > openStart) return ROUTE_ROLL;
      return this.lateRouteOf(off, start);
    }
    // No open bar: closeElapsed closed it, or the symbol is new.
    if (this.recent[off + TRADES] === 0 || start > this.recent[off + START]) return ROUTE_START;
    return this.lateRouteOf(off, start);
  }

  private lateRouteOf(off: number, start: number): number {
    if (this.recent[off + TRADES] === 0) return ROUTE_SOURCE;
    const recentStart = this.recent[off + START];
    if (start === recentStart) return ROUTE_RECENT;
    return start > recentStart ? ROUTE_GAP : ROUTE_SOURCE;
  }

  private advanceWatermarks(sym: number, ts: number): void {
    if (ts > this.watermark[sym]) this.watermark[sym] = ts;
    if (ts > this.feedWatermark) this.feedWatermark = ts;
    // The first tick after a reported gap ends it; checkGaps reports the closed gap.
    if (!Number.isNaN(this.gapFrom[sym]) && Number.isNaN(this.gapTo[sym]) && ts > this.gapFrom[sym]) this.gapTo[sym] = ts;
  }

  /** Executes the plan; true when a closed bar was revised. */
  private applyRoutes(sym: number, price: number, ts: number, size: number | undefined): boolean {
    let revised = false;
    for (let tf = 0; tf < timeframeCount; tf++) {
      const off = sym * SYMBOL_STRIDE + tf * STRIDE;
      const start = this.starts[tf];
      switch (this.routes[tf]) {
        case ROUTE_OPEN:
          accumulate(this.open, off, price, ts, size);
          break;
        case ROUTE_ROLL:
          this.roll(sym, tf, off, start, price, ts, size);
          break;
        case ROUTE_START:
          initSlot(this.open, off, start, price, ts, size);
          break;
        case ROUTE_RECENT:
          accumulate(this.recent, off, price, ts, size);
          this.emitRevised(this.snapshot(this.recent, sym, tf, off));
          revised = true;
          break;
        case ROUTE_GAP:
          initSlot(this.recent, off, start, price, ts, size);
          this.emitRevised(this.snapshot(this.recent, sym, tf, off));
          revised = true;
          break;
        default:
          this.emitRevised(this.reviseStored(sym, tf, start, price, ts, size));
          revised = true;
      }
    }
    return revised;
  }

  private roll(sym: number, tf: number, off: number, start: number, price: number, ts: number, size: number | undefined): void {
    const bar = this.snapshot(this.open, sym, tf, off);
    copySlot(this.open, this.recent, off);
    initSlot(this.open, off, start, price, ts, size);
    this.barsClosed++;
    this.sink.closed(bar);
  }

  private reviseStored(sym: number, tf: number, start: number, price: number, ts: number, size: number | undefined): Bar {
    const symbol = this.symbols.nameOf(sym);
    const tfName = timeframes[tf];
    const stored = this.sourced[tf];
    this.sourced[tf] = null;
    if (stored === null) return barFromTick(symbol, tfName, start, price, ts, size);
    assert(stored.symbol === symbol && stored.tf === tfName && stored.start === start, 'BarSource.get returned a bar of another key');
    return withTick(stored, price, ts, size);
  }

  private emitRevised(bar: Bar): void {
    this.barsRevised++;
    this.sink.revised(bar);
  }

  private gapAt(sym: number, now: number, feedAlive: boolean): FeedGap | null {
    const from = this.gapFrom[sym];
    if (!Number.isNaN(from)) {
      const to = this.gapTo[sym];
      if (Number.isNaN(to)) return null;
      this.gapFrom[sym] = NaN;
      this.gapTo[sym] = NaN;
      return { symbol: this.symbols.nameOf(sym), from, to, state: 'closed' };
    }
    const last = this.watermark[sym];
    if (!feedAlive || last === -Infinity || now - last <= this.limits.feedGapMs) return null;
    this.gapFrom[sym] = last;
    return { symbol: this.symbols.nameOf(sym), from: last, to: now, state: 'open' };
  }

  private snapshot(slots: Float64Array, sym: number, tf: number, off: number): Bar {
    const volume = slots[off + VOLUME];
    const pv = slots[off + PV];
    return {
      symbol: this.symbols.nameOf(sym),
      tf: timeframes[tf],
      start: slots[off + START],
      open: slots[off + OPEN],
      high: slots[off + HIGH],
      low: slots[off + LOW],
      close: slots[off + CLOSE],
      volume,
      pv,
      vwap: vwapOf(pv, volume),
      trades: slots[off + TRADES],
      first_ts: slots[off + FIRST_TS],
      last_ts: slots[off + LAST_TS],
    };
  }

  private ensureCapacity(sym: number): number {
    if (sym >= this.capacity) this.grow(Math.min(Math.max(this.capacity * 2, sym + 1), this.limits.symbolsMax));
    return sym;
  }

  /** Doubling growth: allocation happens when a new symbol is seen, never on a steady-state tick. */
  private grow(capacity: number): void {
    const old = this.capacity;
    this.open = resized(this.open, capacity * SYMBOL_STRIDE, 0);
    this.recent = resized(this.recent, capacity * SYMBOL_STRIDE, 0);
    this.watermark = resized(this.watermark, capacity, -Infinity);
    this.gapFrom = resized(this.gapFrom, capacity, NaN);
    this.gapTo = resized(this.gapTo, capacity, NaN);
    this.capacity = capacity;
    assert(capacity > old, 'BarBook capacity only grows');
  }
}

function resized(from: Float64Array<ArrayBuffer>, length: number, fill: number): Float64Array<ArrayBuffer> {
  const to = new Float64Array(length);
  to.set(from);
  if (fill !== 0) to.fill(fill, from.length);
  return to;
}

function initSlot(slots: Float64Array, off: number, start: number, price: number, ts: number, size: number | undefined): void {
  slots[off + START] = start;
  slots[off + OPEN] = price;
  slots[off + HIGH] = price;
  slots[off + LOW] = price;
  slots[off + CLOSE] = price;
  slots[off + VOLUME] = size === undefined ? 0 : size;
  slots[off + PV] = size === undefined ? 0 : price * size;
  slots[off + TRADES] = 1;
  slots[off + FIRST_TS] = ts;
  slots[off + LAST_TS] = ts;
}

/** Open and close follow tick timestamps, not arrival: ties keep the first open and take the last close. */
function accumulate(slots: Float64Array, off: number, price: number, ts: number, size: number | undefined): void {
  if (price > slots[off + HIGH]) slots[off + HIGH] = price;
  if (price < slots[off + LOW]) slots[off + LOW] = price;
  if (ts < slots[off + FIRST_TS]) {
    slots[off + OPEN] = price;
    slots[off + FIRST_TS] = ts;
  }
  if (ts >= slots[off + LAST_TS]) {
    slots[off + CLOSE] = price;
    slots[off + LAST_TS] = ts;
  }
  if (size !== undefined) {
    slots[off + VOLUME] += size;
    slots[off + PV] += price * size;
  }
  slots[off + TRADES] += 1;
}

function copySlot(from: Float64Array, to: Float64Array, off: number): void {
  for (let i = 0; i < STRIDE; i++) to[off + i] = from[off + i];
}

function writeSlot(slots: Float64Array, off: number, bar: Bar): void {
  slots[off + START] = bar.start;
  slots[off + OPEN] = bar.open;
  slots[off + HIGH] = bar.high;
  slots[off + LOW] = bar.low;
  slots[off + CLOSE] = bar.close;
  slots[off + VOLUME] = bar.volume;
  slots[off + PV] = bar.pv;
  slots[off + TRADES] = bar.trades;
  slots[off + FIRST_TS] = bar.first_ts;
  slots[off + LAST_TS] = bar.last_ts;
}
