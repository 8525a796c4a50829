// Pure evaluation of market alert rules over the tick stream. Time is the ticks' own timestamps
// (move, zscore) or the `now` the engine passes to checkSilence: this module reads no clock.
// Each rule keeps per-symbol state created on the symbol's first tick and a per-symbol cooldown,
// so one move raises one alert. Alerts found on a tick go to the sink; checkSilence returns its own.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { isValidTick } from './bar.js';
import {
  alertRulesMaxDefault,
  validateAlertRules,
  type AlertRule,
  type AlertRuleRef,
  type MarketAlert,
  type MoveAlert,
  type MoveRule,
  type SilenceAlert,
  type SilenceRule,
  type ZScoreAlert,
  type ZScoreRule,
} from './alertRules.js';
import { SYMBOL_INVALID, SYMBOL_TABLE_FULL, SymbolTable, type SymbolIds } from './symbols.js';
import { integerIn, isPlainObject, unknownKey } from './validate.js';
import { ExtremaWindow, RollingStats } from './window.js';

export interface MarketAlertsLimits {
  /** Symbols tracked; ignored when a shared SymbolTable is given. */
  symbolsMax: number;
  /** Ticks one move rule remembers per symbol within its window (only monotonic runs need many). */
  windowTicksMax: number;
  /** Alerts returned by one checkSilence call; the rest come on the next calls. */
  alertsPerCheckMax: number;
  rulesMax: number;
}

export const marketAlertsLimitsDefault: Readonly<MarketAlertsLimits> = Object.freeze({
  symbolsMax: 10_000,
  windowTicksMax: 1024,
  alertsPerCheckMax: 256,
  rulesMax: alertRulesMaxDefault,
});

export interface MarketAlertsOptions {
  limits?: Partial<MarketAlertsLimits>;
  sink: (alert: MarketAlert) => void;
  symbols?: SymbolIds;
}

export type AlertTickIgnored = 'invalid' | 'stale' | 'symbols_full' | 'unknown_symbol';

export interface MarketAlertsStats {
  ticks: number;
  alerts: number;
  ignored: Record<AlertTickIgnored, number>;
}

/**
 * Returns from a log-return below this are treated as flat: a window of identical returns has a
 * floating-point sigma of ~1e-18, which would turn any ordinary tick into an enormous z.
 */
const sigmaFloor = 1e-12;
const UNKNOWN_ID = -3;

interface TickEvaluator {
  addSymbol(): void;
  onTick(sym: number, symbol: string, price: number, ts: number, prevPrice: number): MarketAlert | null;
}

/** The per-symbol quiet period after a firing. */
class Cooldown {
  private readonly until: number[] = [];

  constructor(private readonly ms: number) {}

  addSymbol(): void {
    this.until.push(-Infinity);
  }

  ready(sym: number, t: number): boolean {
    return t >= this.until[sym];
  }

  arm(sym: number, t: number): void {
    this.until[sym] = t + this.ms;
  }
}

class MoveEvaluator implements TickEvaluator {
  private readonly windows: (ExtremaWindow | null)[] = [];
  private readonly cooldown: Cooldown;
  private readonly ref: AlertRuleRef;

  constructor(
    private readonly rule: MoveRule,
    private readonly windowTicksMax: number,
  ) {
    this.cooldown = new Cooldown(rule.cooldown_ms);
    this.ref = Object.freeze({ id: rule.id, name: rule.name });
  }

  addSymbol(): void {
    this.windows.push(null);
    this.cooldown.addSymbol();
  }

  onTick(sym: number, symbol: string, price: number, ts: number): MoveAlert | null {
    const window = (this.windows[sym] ??= new ExtremaWindow(this.windowTicksMax));
    window.evictBefore(ts - this.rule.window_ms);
    const alert = window.empty ? null : this.alertFor(window, sym, symbol, price, ts);
    // The move is reported once: the window restarts from the price that tripped it.
    if (alert !== null) window.clear();
    window.push(ts, price);
    return alert;
  }

  private alertFor(window: ExtremaWindow, sym: number, symbol: string, price: number, ts: number): MoveAlert | null {
    const up = ((price - window.minPrice) / window.minPrice) * 100;
    const down = ((price - window.maxPrice) / window.maxPrice) * 100;
    const rising = up >= -down;
    const movePct = rising ? up : down;
    if (!(Math.abs(movePct) > this.rule.move_pct) || !this.cooldown.ready(sym, ts)) return null;
    this.cooldown.arm(sym, ts);
    return {
      rule: this.ref,
      kind: 'move',
      symbol,
      ts,
      move_pct: movePct,
      threshold_pct: this.rule.move_pct,
      window_ms: this.rule.window_ms,
      price,
      ref_price: rising ? window.minPrice : window.maxPrice,
      ref_ts: rising ? window.minTs : window.maxTs,
    };
  }
}

class ZScoreEvaluator implements TickEvaluator {
  private readonly stats: (RollingStats | null)[] = [];
  private readonly cooldown: Cooldown;
  private readonly ref: AlertRuleRef;

  constructor(private readonly rule: ZScoreRule) {
    this.cooldown = new Cooldown(rule.cooldown_ms);
    this.ref = Object.freeze({ id: rule.id, name: rule.name });
  }

  addSymbol(): void {
    this.stats.push(null);
    this.cooldown.addSymbol();
  }

  onTick(sym: number, symbol: string, price: number, ts: number, prevPrice: number): ZScoreAlert | null {
    if (Number.isNaN(prevPrice)) return null;
    const stats = (this.stats[sym] ??= new RollingStats(this.rule.returns));
    const ret = Math.log(price / prevPrice);
    const alert = this.alertFor(stats, sym, symbol, price, ts, prevPrice, ret);
    // The outlier joins the window: the next ticks are judged against a history that includes it.
    stats.push(ret);
    return alert;
  }

  private alertFor(stats: RollingStats, sym: number, symbol: string, price: number, ts: number, prevPrice: number, ret: number): ZScoreAlert | null {
    const sigma = stats.sigma;
    if (!stats.full || !(sigma > sigmaFloor)) return null;
    const z = (ret - stats.mean) / sigma;
    if (!(Math.abs(z) > this.rule.z) || !this.cooldown.ready(sym, ts)) return null;
    this.cooldown.arm(sym, ts);
    return {
      rule: this.ref,
      kind: 'zscore',
      symbol,
      ts,
      z,
      threshold_z: this.rule.z,
      ret,
      mean: stats.mean,
      sigma,
      returns: this.rule.returns,
      price,
      prev_price: prevPrice,
    };
  }
}

class SilenceEvaluator {
  /** The last tick ts a silence was reported for, per symbol: one alert per silence. */
  private readonly reportedLastTs: number[] = [];
  private readonly cooldown: Cooldown;
  private readonly ref: AlertRuleRef;
  private cursor = 0;

  constructor(private readonly rule: SilenceRule) {
    this.cooldown = new Cooldown(rule.cooldown_ms);
    this.ref = Object.freeze({ id: rule.id, name: rule.name });
  }

  addSymbol(): void {
    this.reportedLastTs.push(NaN);
    this.cooldown.addSymbol();
  }

  /** Appends due alerts to out until it holds max; resumes at the next symbol on the next call. */
  check(now: number, lastTs: readonly number[], feedLastTs: number, names: SymbolIds, out: MarketAlert[], max: number): void {
    const count = lastTs.length;
    // "While others tick": someone ticked within the threshold, so the feed itself is alive.
    if (count === 0 || now - feedLastTs > this.rule.silent_ms) return;
    for (let visited = 0; visited < count && out.length < max; visited++) {
      const sym = this.cursor;
      this.cursor = this.cursor + 1 === count ? 0 : this.cursor + 1;
      const alert = this.alertFor(sym, now, lastTs[sym], names);
      if (alert !== null) out.push(alert);
    }
  }

  private alertFor(sym: number, now: number, last: number, names: SymbolIds): SilenceAlert | null {
    if (last === -Infinity || now - last <= this.rule.silent_ms) return null;
    if (this.reportedLastTs[sym] === last || !this.cooldown.ready(sym, now)) return null;
    this.reportedLastTs[sym] = last;
    this.cooldown.arm(sym, now);
    return {
      rule: this.ref,
      kind: 'silence',
      symbol: names.nameOf(sym),
      ts: now,
      silent_ms: now - last,
      threshold_ms: this.rule.silent_ms,
      last_ts: last,
    };
  }
}

export function validateMarketAlertsLimits(input: unknown): Result<MarketAlertsLimits> {
  if (input === undefined) return ok({ ...marketAlertsLimitsDefault });
  if (!isPlainObject(input)) return fail(ErrorCode.invalid_limits, 'limits must be an object', 'limits');
  const unknown = unknownKey(input, Object.keys(marketAlertsLimitsDefault));
  if (unknown !== null) return fail(ErrorCode.invalid_limits, `limits.${unknown} is not a known limit`, `limits.${unknown}`);
  const merged = { ...marketAlertsLimitsDefault, ...input };
  const checks = [
    integerIn(merged.symbolsMax, 'limits.symbolsMax', 1, 10_000_000),
    integerIn(merged.windowTicksMax, 'limits.windowTicksMax', 2, 1 << 20),
    integerIn(merged.alertsPerCheckMax, 'limits.alertsPerCheckMax', 1, 1_000_000),
    integerIn(merged.rulesMax, 'limits.rulesMax', 1, 10_000),
  ];
  for (const check of checks) if (!check.ok) return check;
  return ok(merged as MarketAlertsLimits);
}

/** Validates the limits and the rules (unknown input, e.g. a parsed config file) and builds the evaluator. */
export function createMarketAlerts(rules: unknown, options: MarketAlertsOptions): Result<MarketAlerts> {
  const limits = validateMarketAlertsLimits(options.limits);
  if (!limits.ok) return limits;
  const valid = validateAlertRules(rules, limits.value.rulesMax);
  if (!valid.ok) return valid;
  return ok(new MarketAlerts(valid.value, limits.value, options));
}

export class MarketAlerts {
  readonly symbols: SymbolIds;
  readonly rules: readonly AlertRule[];
  private readonly tickEvaluators: TickEvaluator[] = [];
  private readonly silenceEvaluators: SilenceEvaluator[] = [];
  private readonly sink: (alert: MarketAlert) => void;
  private readonly lastTs: number[] = [];
  private readonly lastPrice: number[] = [];
  private feedLastTs = -Infinity;
  private ticks = 0;
  private alerts = 0;
  private readonly ignored: Record<AlertTickIgnored, number> = { invalid: 0, stale: 0, symbols_full: 0, unknown_symbol: 0 };

  /** Use createMarketAlerts: it validates rules and limits. */
  constructor(
    rules: readonly AlertRule[],
    private readonly limits: MarketAlertsLimits,
    options: MarketAlertsOptions,
  ) {
    this.rules = rules;
    this.symbols = options.symbols ?? new SymbolTable(limits.symbolsMax);
    this.sink = options.sink;
    for (const rule of rules) {
      if (rule.kind === 'move') this.tickEvaluators.push(new MoveEvaluator(rule, limits.windowTicksMax));
      else if (rule.kind === 'zscore') this.tickEvaluators.push(new ZScoreEvaluator(rule));
      else this.silenceEvaluators.push(new SilenceEvaluator(rule));
    }
  }

  /**
   * Evaluates the tick rules; returns the number of alerts sent to the sink. A tick older than the
   * symbol's last one is ignored (counted as stale): returns between out-of-order prices mean nothing.
   */
  onTick(symbol: string | number, price: number, ts: number): number {
    const sym = this.resolve(symbol);
    if (sym < 0) return this.ignore(sym === SYMBOL_TABLE_FULL ? 'symbols_full' : sym === UNKNOWN_ID ? 'unknown_symbol' : 'invalid');
    if (!isValidTick(price, ts, undefined)) return this.ignore('invalid');
    if (ts < this.lastTs[sym]) return this.ignore('stale');
    const prevPrice = this.lastPrice[sym];
    this.lastTs[sym] = ts;
    this.lastPrice[sym] = price;
    if (ts > this.feedLastTs) this.feedLastTs = ts;
    this.ticks++;
    let fired = 0;
    for (let i = 0; i < this.tickEvaluators.length; i++) {
      const alert = this.tickEvaluators[i].onTick(sym, this.symbols.nameOf(sym), price, ts, prevPrice);
      if (alert !== null) {
        fired++;
        this.alerts++;
        this.sink(alert);
      }
    }
    return fired;
  }

  /** Silence alerts due at now, at most alertsPerCheckMax; the engine calls this periodically. */
  checkSilence(now: number): MarketAlert[] {
    const out: MarketAlert[] = [];
    for (const evaluator of this.silenceEvaluators) {
      evaluator.check(now, this.lastTs, this.feedLastTs, this.symbols, out, this.limits.alertsPerCheckMax);
    }
    this.alerts += out.length;
    return out;
  }

  stats(): MarketAlertsStats {
    return { ticks: this.ticks, alerts: this.alerts, ignored: { ...this.ignored } };
  }

  private resolve(symbol: string | number): number {
    const sym = typeof symbol === 'number' ? (this.symbols.has(symbol) ? symbol : UNKNOWN_ID) : this.symbols.intern(symbol);
    if (sym === SYMBOL_INVALID || sym === SYMBOL_TABLE_FULL || sym === UNKNOWN_ID) return sym;
    // A shared table may have registered ids through another module: catch up with all of them.
    while (this.lastTs.length <= sym) this.addSymbol();
    return sym;
  }

  private addSymbol(): void {
    this.lastTs.push(-Infinity);
    this.lastPrice.push(NaN);
    for (const evaluator of this.tickEvaluators) evaluator.addSymbol();
    for (const evaluator of this.silenceEvaluators) evaluator.addSymbol();
  }

  private ignore(reason: AlertTickIgnored): number {
    this.ignored[reason]++;
    return 0;
  }
}
