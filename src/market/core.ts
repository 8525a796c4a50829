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

// Runs of ticks being folded, one cache line per symbol id (RUN_STRIDE float64s): a fold touches
// one line, not one per field. COUNT < 0: no open run; else the ticks folded after the run's first.
const RUN_COUNT = 0;
/** End of the 1m bucket of the run: a tick at or past it ends the run. */
const RUN_END = 1;
const RUN_LAST = 2;
const RUN_HIGH = 3;
const RUN_LOW = 4;
const RUN_CLOSE = 5;
const RUN_VOLUME = 6;
const RUN_PV = 7;
const RUN_STRIDE = 8;

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
    const sym = this.symbols.idOf(bar.symbol) ?? -1;
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
    const sym = this.symbols.idOf(symbol) ?? -1;
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
  private run!: Float64Array;
  /** Symbols whose run may be open: applied at the end of the tape (an entry may repeat or be ended). */
  private readonly runs: number[] = [];
  private resolveName: ((engineId: number) => string | undefined) | null = null;
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
    this.run = new Float64Array(bookLimits.symbolsMax * RUN_STRIDE);
    for (let sym = 0; sym < bookLimits.symbolsMax; sym++) this.run[sym * RUN_STRIDE + RUN_COUNT] = -1;
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
    for (let i = 0; i < names.length; i++) this.nameId(base + i, names[i]);
  }

  /** Where the names of ids not named yet come from (the worker: the shared SymbolNameTable). */
  nameEngineIds(resolve: (engineId: number) => string | undefined): void {
    this.resolveName = resolve;
  }

  private nameId(engineId: number, name: string): number {
    if (engineId >= this.engineIds.length) {
      const grown = new Int32Array(Math.max(engineId + 1, this.engineIds.length * 2)).fill(-1);
      grown.set(this.engineIds);
      this.engineIds = grown;
    }
    const sym = this.symbols.intern(name);
    // -2: named, but past symbolsMax (or invalid): counted unknown without asking again.
    this.engineIds[engineId] = sym < 0 ? -2 : sym;
    if (sym >= 0) {
      const mask = this.watchByName.get(name);
      if (mask !== undefined) {
        this.watchMask[sym] |= mask;
        this.watchByName.delete(name);
      }
    }
    return sym;
  }

  /** The table id of an engine id seen for the first time: named through the resolver, else unknown. */
  private lookUp(engineId: number): number {
    const name = this.resolveName?.(engineId);
    return name === undefined ? -1 : this.nameId(engineId, name);
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
    const r = this.run;
    for (let i = 0; i < n; i++) {
      const at = i * TAPE_FIELDS;
      const engineId = tape[at];
      let sym = engineId < this.engineIds.length ? this.engineIds[engineId] : -1;
      if (sym === -1) sym = this.lookUp(engineId);
      if (sym < 0) {
        this.unknownTicks++;
        continue;
      }
      const price = tape[at + 1];
      const ts = tape[at + 2];
      const size = tape[at + 3];
      if (alertsOn) alerts.onTick(sym, price, ts);
      const at8 = sym * RUN_STRIDE;
      if (r[at8 + RUN_COUNT] >= 0) {
        // Valid (the engine checked price range and ts range; integer ts and size are checked here),
        // in the run's 1m bucket, at or after its last tick: folded.
        if (ts >= r[at8 + RUN_LAST] && ts < r[at8 + RUN_END] && ts === Math.floor(ts) && price > 0 && (size !== size || (size >= 0 && size !== Infinity))) {
          r[at8 + RUN_COUNT]++;
          if (price > r[at8 + RUN_HIGH]) r[at8 + RUN_HIGH] = price;
          if (price < r[at8 + RUN_LOW]) r[at8 + RUN_LOW] = price;
          r[at8 + RUN_CLOSE] = price;
          r[at8 + RUN_LAST] = ts;
          if (size === size) {
            r[at8 + RUN_VOLUME] += size;
            r[at8 + RUN_PV] += price * size;
          }
          continue;
        }
        this.applyRun(sym);
      }
      // A folded tick's symbol was marked by the run's first tick, which came this way.
      this.dirty[sym] = 1;
      if (this.watchMask[sym] !== 0 && this.touchedFlag[sym] === 0) {
        this.touchedFlag[sym] = 1;
        this.touched.push(sym);
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
    const at = sym * RUN_STRIDE;
    r[at + RUN_COUNT] = 0;
    r[at + RUN_END] = bucketStartAt(0, ts) + timeframeWidthsMs[0];
    r[at + RUN_LAST] = ts;
    r[at + RUN_HIGH] = price;
    r[at + RUN_LOW] = price;
    r[at + RUN_CLOSE] = price;
    r[at + RUN_VOLUME] = 0;
    r[at + RUN_PV] = 0;
    this.runs.push(sym);
  }

  /** Applies and ends the symbol's run (a no-op when none is open). */
  private applyRun(sym: number): void {
    const r = this.run;
    const at = sym * RUN_STRIDE;
    const count = r[at + RUN_COUNT];
    if (count < 0) return;
    r[at + RUN_COUNT] = -1;
    if (count > 0) this.book.applyRun(sym, count, r[at + RUN_HIGH], r[at + RUN_LOW], r[at + RUN_CLOSE], r[at + RUN_LAST], r[at + RUN_VOLUME], r[at + RUN_PV]);
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
    const sym = this.symbols.idOf(symbol) ?? -1;
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
