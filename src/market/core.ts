// What the market worker runs, without the worker: the BarBook and the MarketAlerts over the engine's
// tick tape, the closed bars late ticks may still revise, and the series someone watches. Pure: no
// clock (check() is given now), no I/O; every call returns what the main thread must store, send
// and record, so it is tested in-process and the worker is a thin message loop around it.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { validateBar, type Bar } from './bar.js';
import { createBarBook, type BarBook, type BarBookLimits, type BarBookStats, type BarSource, type FeedGap } from './barBook.js';
import { createMarketAlerts, type MarketAlerts, type MarketAlertsLimits, type MarketAlertsStats } from './alerts.js';
import type { AlertRule, MarketAlert } from './alertRules.js';
import { BarPacker, type PackedBars } from './pack.js';
import { SymbolTable } from './symbols.js';
import { bucketStartAt, timeframeCount, timeframeIndex, timeframeWidthsMs, timeframes, type Timeframe } from './timeframe.js';

/** Ticks on the engine's tape: symbol id, price, ts, size (NaN = none). Mirrors src/engine/tickTape.ts. */
export const TAPE_FIELDS = 4;

export interface MarketCoreLimits {
  /**
   * Closed bars older than each series' recent one kept for late ticks (the BarSource). Only a
   * lateness window longer than a bar needs them; past the bound the oldest go, and that symbol's
   * late ticks that would need one are dropped (no_source) instead of overwriting a stored bar.
   */
  revisableBarsMax: number;
  /** Alerts one tape or check hands back; more are counted as dropped (a rule that fires on everything). */
  alertsPerReplyMax: number;
}

export const marketCoreLimitsDefault: Readonly<MarketCoreLimits> = Object.freeze({
  revisableBarsMax: 100_000,
  alertsPerReplyMax: 1_024,
});

export interface MarketCoreOptions {
  book?: Partial<BarBookLimits>;
  alertLimits?: Partial<MarketAlertsLimits>;
  /** Validated again here: the worker trusts nothing it is sent. */
  rules?: unknown;
  limits?: Partial<MarketCoreLimits>;
}

/** What one tape or check produced. */
export interface CoreOutput {
  /** Closed and revised bars (to store), then updates of watched open bars, in that order. */
  bars: PackedBars;
  gaps: FeedGap[];
  alerts: MarketAlert[];
}

export interface MarketCoreStats {
  book: BarBookStats;
  alerts: MarketAlertsStats;
  /** Ticks whose engine symbol id had no name yet, or whose symbol did not fit symbolsMax. */
  unknownTicks: number;
  revisableBars: number;
  /** Still-revisable bars dropped by revisableBarsMax. */
  revisableForgotten: number;
  alertsDropped: number;
}

/** Runs of ticks being folded, per symbol id (struct of arrays: no allocation per tick). */
interface RunState {
  active: Uint8Array;
  /** Ticks folded after the run's first (which onTick applied). */
  count: Float64Array;
  /** End of the 1m bucket of the run: a tick at or past it ends the run. */
  end: Float64Array;
  last: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
  pv: Float64Array;
}

/** The BarSource of the worker: every closed bar that a late tick may still revise. */
class RevisableBars implements BarSource {
  private readonly bars = new Map<string, { bar: Bar; sym: number; tf: number }>();
  /** Symbols whose cache lost a still-revisable bar: a miss there is "cannot tell", not "no tick". */
  private readonly incomplete = new Set<number>();
  forgotten = 0;

  constructor(
    private readonly symbols: SymbolTable,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.bars.size;
  }

  put(bar: Bar): void {
    const sym = this.symbols.idOf(bar.symbol);
    if (sym < 0) return;
    const tf = timeframeIndex(bar.tf);
    const key = `${sym}:${tf}:${bar.start}`;
    if (!this.bars.has(key) && this.bars.size >= this.max) {
      // Map order is insertion order: the first entry is the oldest bar.
      const [oldestKey, oldest] = this.bars.entries().next().value as [string, { sym: number }];
      this.bars.delete(oldestKey);
      this.incomplete.add(oldest.sym);
      this.forgotten++;
    }
    this.bars.set(key, { bar, sym, tf });
  }

  get(symbol: string, tf: Timeframe, start: number): Bar | null | undefined {
    const sym = this.symbols.idOf(symbol);
    const hit = this.bars.get(`${sym}:${timeframeIndex(tf)}:${start}`);
    if (hit !== undefined) return hit.bar;
    return this.incomplete.has(sym) ? undefined : null;
  }

  /** Forgets bars no accepted tick can reach any more: their bucket ended latenessMs before the symbol's newest tick. */
  evict(book: BarBook, latenessMs: number): void {
    for (const [key, e] of this.bars) {
      if (e.bar.start + timeframeWidthsMs[e.tf] <= book.watermarkOf(e.sym) - latenessMs) this.bars.delete(key);
    }
  }
}

export function createMarketCore(options: MarketCoreOptions = {}): Result<MarketCore> {
  const limits = { ...marketCoreLimitsDefault, ...options.limits };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) return fail(ErrorCode.invalid_limits, `limits.${name} must be an integer >= 1`, `limits.${name}`);
  }
  const core = new MarketCore(limits);
  const book = core.init(options);
  return book.ok ? ok(core) : book;
}

export class MarketCore {
  private symbols!: SymbolTable;
  private book!: BarBook;
  private alerts!: MarketAlerts;
  private alertLimits: Partial<MarketAlertsLimits> = {};
  private cache!: RevisableBars;
  private readonly packer = new BarPacker();
  private alertsOut: MarketAlert[] = [];
  private alertsDropped = 0;
  private unknownTicks = 0;
  /** Engine symbol id -> this table's id (-1: not named yet). */
  private engineIds = new Int32Array(0).fill(-1);
  // Per symbol id, sized to symbolsMax once so the tick loop has no bounds to grow.
  private dirty!: Uint8Array;
  private watchMask!: Uint8Array;
  private touchedFlag!: Uint8Array;
  private readonly touched: number[] = [];
  /** Per symbol id: the open run of ticks folded since its newest tick (see onTape). */
  private run!: RunState;
  /** Symbols whose run may be open: applied at the end of the tape (an entry may repeat or be ended). */
  private readonly runs: number[] = [];
  /** Watches of symbols not named yet, applied when the name arrives. */
  private readonly watchByName = new Map<string, number>();

  /** Use createMarketCore. */
  constructor(private readonly limits: MarketCoreLimits) {}

  /** @internal createMarketCore's second step: builds the book and the alerts. */
  init(options: MarketCoreOptions): Result<void> {
    const bookLimits = { symbolsMax: 10_000, ...options.book };
    if (!Number.isSafeInteger(bookLimits.symbolsMax) || bookLimits.symbolsMax < 1 || bookLimits.symbolsMax > 10_000_000) {
      return fail(ErrorCode.invalid_limits, 'limits.symbolsMax must be an integer in [1, 10000000]', 'limits.symbolsMax');
    }
    this.symbols = new SymbolTable(bookLimits.symbolsMax);
    this.cache = new RevisableBars(this.symbols, this.limits.revisableBarsMax);
    const book = createBarBook({
      limits: bookLimits,
      symbols: this.symbols,
      source: this.cache,
      sink: {
        closed: (bar) => {
          this.cache.put(bar);
          this.packer.add(bar, 'closed');
        },
        revised: (bar) => {
          this.cache.put(bar);
          this.packer.add(bar, 'revised');
        },
      },
    });
    if (!book.ok) return book;
    this.book = book.value;
    this.alertLimits = { ...options.alertLimits, symbolsMax: bookLimits.symbolsMax };
    const alerts = this.createAlerts(options.rules ?? []);
    if (!alerts.ok) return alerts;
    this.alerts = alerts.value;
    this.dirty = new Uint8Array(bookLimits.symbolsMax);
    this.watchMask = new Uint8Array(bookLimits.symbolsMax);
    this.touchedFlag = new Uint8Array(bookLimits.symbolsMax);
    const m = bookLimits.symbolsMax;
    this.run = {
      active: new Uint8Array(m),
      count: new Float64Array(m),
      end: new Float64Array(m),
      last: new Float64Array(m),
      high: new Float64Array(m),
      low: new Float64Array(m),
      close: new Float64Array(m),
      volume: new Float64Array(m),
      pv: new Float64Array(m),
    };
    return ok(undefined);
  }

  get rules(): readonly AlertRule[] {
    return this.alerts.rules;
  }

  get latenessMs(): number {
    return this.book.limits.latenessMs;
  }

  /** Replaces the alert rules. Their windows and cooldowns start over: the rules may have changed. */
  setRules(rules: unknown): Result<readonly AlertRule[]> {
    const alerts = this.createAlerts(rules);
    if (!alerts.ok) return alerts;
    this.alerts = alerts.value;
    return ok(alerts.value.rules);
  }

  private createAlerts(rules: unknown): Result<MarketAlerts> {
    return createMarketAlerts(rules, {
      limits: this.alertLimits,
      symbols: this.symbols,
      sink: (alert) => this.pushAlert(alert),
    });
  }

  private pushAlert(alert: MarketAlert): void {
    if (this.alertsOut.length < this.limits.alertsPerReplyMax) this.alertsOut.push(alert);
    else this.alertsDropped++;
  }

  /** Names engine symbol ids base.. in order, as the engine's tape refers to them. */
  name(base: number, names: readonly string[]): void {
    const end = base + names.length;
    if (end > this.engineIds.length) {
      const grown = new Int32Array(Math.max(end, this.engineIds.length * 2)).fill(-1);
      grown.set(this.engineIds);
      this.engineIds = grown;
    }
    for (let i = 0; i < names.length; i++) {
      const sym = this.symbols.intern(names[i]);
      this.engineIds[base + i] = sym;
      if (sym < 0) continue;
      const mask = this.watchByName.get(names[i]);
      if (mask !== undefined) {
        this.watchMask[sym] |= mask;
        this.watchByName.delete(names[i]);
      }
    }
  }

  /**
   * Loads what a previous run left: open bars (checkpointed), then each series' newest closed bar,
   * then the older closed bars still inside the lateness window. Returns how many were refused.
   */
  restore(open: readonly unknown[], recent: readonly unknown[], revisable: readonly unknown[]): number {
    let refused = 0;
    for (const bar of open) if (!this.book.restore(bar).ok) refused++;
    for (const bar of recent) {
      const r = this.book.restoreRecent(bar);
      if (r.ok) this.cache.put(r.value);
      else refused++;
    }
    for (const input of revisable) {
      const bar = validateBar(input);
      if (bar.ok && this.symbols.intern(bar.value.symbol) >= 0) this.cache.put(bar.value);
      else refused++;
    }
    return refused;
  }

  /**
   * Every tick of one tape, in arrival order. A symbol's ticks that follow its newest tick inside
   * the same 1m bar (the common case: a hot symbol ticks many times per tape) are folded into a run
   * and applied to the seven open bars once (BarBook.applyRun); any other tick first applies the
   * symbol's run, then goes through BarBook.onTick, so each symbol's ticks keep their order.
   */
  onTape(tape: Float64Array, n: number): CoreOutput {
    const book = this.book;
    const alerts = this.alerts;
    // Without rules the alerts have nothing to keep: their per-tick bookkeeping is skipped.
    const alertsOn = alerts.rules.length > 0;
    const ids = this.engineIds;
    const r = this.run;
    for (let i = 0; i < n; i++) {
      const at = i * TAPE_FIELDS;
      const engineId = tape[at];
      const sym = engineId < ids.length ? ids[engineId] : -1;
      if (sym < 0) {
        this.unknownTicks++;
        continue;
      }
      const price = tape[at + 1];
      const ts = tape[at + 2];
      const size = tape[at + 3];
      if (alertsOn) alerts.onTick(sym, price, ts);
      this.dirty[sym] = 1;
      if (this.watchMask[sym] !== 0 && this.touchedFlag[sym] === 0) {
        this.touchedFlag[sym] = 1;
        this.touched.push(sym);
      }
      if (r.active[sym] === 1) {
        // Valid (the engine checked price range and ts range; integer ts and size are checked here),
        // in the run's 1m bucket, at or after its last tick: folded.
        if (ts >= r.last[sym] && ts < r.end[sym] && Number.isInteger(ts) && price > 0 && (size !== size || (size >= 0 && size !== Infinity))) {
          r.count[sym]++;
          if (price > r.high[sym]) r.high[sym] = price;
          if (price < r.low[sym]) r.low[sym] = price;
          r.close[sym] = price;
          r.last[sym] = ts;
          if (size === size) {
            r.volume[sym] += size;
            r.pv[sym] += price * size;
          }
          continue;
        }
        this.applyRun(sym);
      }
      const newest = ts >= book.watermarkOf(sym);
      if (book.onTick(sym, price, ts, size === size ? size : undefined) === 'applied' && newest) this.startRun(sym, price, ts);
    }
    for (const sym of this.runs) this.applyRun(sym);
    this.runs.length = 0;
    // Watched open bars go last: after a close in this tape, the client sees the close, then the new bar.
    for (const sym of this.touched) {
      this.touchedFlag[sym] = 0;
      const mask = this.watchMask[sym];
      const symbol = this.symbols.nameOf(sym);
      for (let tf = 0; tf < timeframeCount; tf++) {
        if ((mask & (1 << tf)) === 0) continue;
        const bar = this.book.openBar(symbol, timeframes[tf]);
        if (bar !== null) this.packer.add(bar, 'open');
      }
    }
    this.touched.length = 0;
    return this.take([]);
  }

  /** A run starts after a tick onTick applied as the symbol's newest: it gathers the ticks that follow it. */
  private startRun(sym: number, price: number, ts: number): void {
    const r = this.run;
    r.active[sym] = 1;
    r.count[sym] = 0;
    r.end[sym] = bucketStartAt(0, ts) + timeframeWidthsMs[0];
    r.last[sym] = ts;
    r.high[sym] = price;
    r.low[sym] = price;
    r.close[sym] = price;
    r.volume[sym] = 0;
    r.pv[sym] = 0;
    this.runs.push(sym);
  }

  /** Applies and ends the symbol's run (a no-op when none is open). */
  private applyRun(sym: number): void {
    const r = this.run;
    if (r.active[sym] === 0) return;
    r.active[sym] = 0;
    if (r.count[sym] > 0) this.book.applyRun(sym, r.count[sym], r.high[sym], r.low[sym], r.close[sym], r.last[sym], r.volume[sym], r.pv[sym]);
  }

  /** The periodic work: bars whose bucket ended, feed gaps, silence alerts, and the cache's old bars. */
  check(now: number): CoreOutput {
    this.book.closeElapsed(now);
    const gaps = this.book.checkGaps(now);
    for (const alert of this.alerts.checkSilence(now)) this.pushAlert(alert);
    this.cache.evict(this.book, this.book.limits.latenessMs);
    return this.take(gaps);
  }

  private take(gaps: FeedGap[]): CoreOutput {
    const alerts = this.alertsOut;
    if (alerts.length > 0) this.alertsOut = [];
    return { bars: this.packer.take(), gaps, alerts };
  }

  /** Starts or stops reporting the open bar of (symbol, tf) after each tape that changes it. */
  watch(symbol: string, tf: Timeframe, on: boolean): void {
    const bit = 1 << timeframeIndex(tf);
    const sym = this.symbols.idOf(symbol);
    if (sym >= 0) {
      this.watchMask[sym] = on ? this.watchMask[sym] | bit : this.watchMask[sym] & ~bit;
      return;
    }
    const mask = this.watchByName.get(symbol) ?? 0;
    const next = on ? mask | bit : mask & ~bit;
    if (next === 0) this.watchByName.delete(symbol);
    else this.watchByName.set(symbol, next);
  }

  openBar(symbol: string, tf: Timeframe): Bar | null {
    return this.book.openBar(symbol, tf);
  }

  /** Open bars to checkpoint: of the symbols that ticked since the last call, or all of them. */
  checkpoint(all: boolean): PackedBars {
    const packer = new BarPacker();
    const count = this.symbols.size;
    for (let sym = 0; sym < count; sym++) {
      if (!all && this.dirty[sym] === 0) continue;
      this.dirty[sym] = 0;
      const symbol = this.symbols.nameOf(sym);
      for (const tf of timeframes) {
        const bar = this.book.openBar(symbol, tf);
        if (bar !== null) packer.add(bar, 'open');
      }
    }
    return packer.take();
  }

  stats(): MarketCoreStats {
    return {
      book: this.book.stats(),
      alerts: this.alerts.stats(),
      unknownTicks: this.unknownTicks,
      revisableBars: this.cache.size,
      revisableForgotten: this.cache.forgotten,
      alertsDropped: this.alertsDropped,
    };
  }
}
