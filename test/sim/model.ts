// What the engine should hold after each step, built only from the rules (README "Accounting rules",
// "Risk limits and the portfolio lifecycle", "Durability") and from the inputs the simulator sent:
// - figures: the independent exact decimal oracle (test/oracle/ledger.ts), never the engine's code;
// - lifecycle (active / paused / closed), reduce-only while paused, limits, high-water mark, and
//   whether a limit is beyond its threshold, decided exactly in decimals with a tolerance band: a
//   value within the band of its threshold may go either way in float64, so the engine's answer is
//   adopted there and only there;
// - per-portfolio seq: one step per applied command and per tick batch that moved one of its open
//   positions (ARCHITECTURE: "Each portfolio's seq increases by one per change");
// - tick acceptance: latest by source timestamp per symbol, a tick older than the last applied one
//   does not move the mark.

import { Dec, Ledger, type PortfolioFigures } from '../oracle/ledger.js';
import { ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE } from '../oracle/compare.js';
import type { RiskLimits, TradeResult } from '../../src/domain/types.js';

export type Status = 'active' | 'paused' | 'closed';
export type LimitName = 'max_loss' | 'max_drawdown_pct' | 'max_position_weight_pct';
export const limitNames: readonly LimitName[] = ['max_loss', 'max_drawdown_pct', 'max_position_weight_pct'];
export type Limits = Record<LimitName, number | null>;

/** README: quantities are integer counts of 1e-8 units; |position| <= 90,000,000. */
export const UNITS_PER_QTY = 100_000_000n;
export const POSITION_UNITS_MAX = 90_000_000n * UNITS_PER_QTY;

/** A three-valued answer: 'maybe' when float64 rounding may decide either way. */
export type Verdict = 'yes' | 'no' | 'maybe';

export interface ModelTrade {
  trade_id: string;
  symbol: string;
  side: 'buy' | 'sell';
  quantity: number;
  price: number;
  fee: number;
  /** Send `fee` even when 0 (decided once, when the trade is generated: re-sends must not draw). */
  explicitFee: boolean;
}

export interface ModelPortfolio {
  readonly id: string;
  readonly name: string;
  status: Status;
  limits: Limits;
  /** Equity high-water mark, exact; `hwmKnown` false after a crash until re-read (see Simulator). */
  hwm: Dec;
  /** Expected seq; null after a recovery until re-read (restored seq is not derived from the log). */
  seq: number | null;
  /** Highest seq ever seen for this portfolio (snapshots and subscriber messages). */
  seqSeenMax: number;
  /** First result of every applied trade id. */
  readonly trades: Map<string, TradeResult>;
  /** Applied trade ids in order: the event log must hold exactly these, once each. */
  readonly tradeLog: string[];
  /** Applied cash operations in order (signed amounts). */
  readonly cashLog: number[];
  /** Symbols traded at least once (the engine keeps a position row for each, flat or not). */
  readonly rows: Set<string>;
  /** Signed units per symbol. */
  readonly units: Map<string, bigint>;
  /** Largest money magnitude the portfolio ever had: float64 errors carry the scale they were made at. */
  scaleMax: Dec;
}

export interface SymbolState {
  /** Last tick price applied (0: never ticked). */
  price: number;
  /** Source timestamp of the last applied tick (the engine starts every symbol at 0). */
  ts: number;
}

export function noLimits(): Limits {
  return { max_loss: null, max_drawdown_pct: null, max_position_weight_pct: null };
}

export function normalizeLimits(l: RiskLimits | undefined): Limits {
  return { max_loss: l?.max_loss ?? null, max_drawdown_pct: l?.max_drawdown_pct ?? null, max_position_weight_pct: l?.max_position_weight_pct ?? null };
}

export function hasLimits(l: Limits): boolean {
  return limitNames.some((n) => l[n] !== null);
}

/** The exact units of a quantity the simulator generated (<= 8 decimals by construction). */
export function unitsOf(quantity: number): bigint {
  return BigInt(new Dec(quantity).times(1e8).toFixed(0));
}

export function quantityOfUnits(units: bigint): number {
  // Through the decimal string, so the number is the nearest double to the exact quantity.
  const neg = units < 0n;
  const a = neg ? -units : units;
  const whole = a / UNITS_PER_QTY;
  const frac = (a % UNITS_PER_QTY).toString().padStart(8, '0');
  return Number(`${neg ? '-' : ''}${whole}.${frac}`);
}

/** Figures of a portfolio are within max(1e-9 rel, 1e-6 abs) each; a derived comparison gets a band of that scale. */
export function bandOf(...magnitudes: Dec[]): Dec {
  let m = new Dec(0);
  for (const x of magnitudes) if (x.abs().gt(m)) m = x.abs();
  const rel = m.times(RELATIVE_TOLERANCE);
  const one = rel.gt(ABSOLUTE_TOLERANCE) ? rel : new Dec(ABSOLUTE_TOLERANCE);
  // Several figures enter each comparison, each within its tolerance: a generous multiple.
  return one.times(8);
}

export interface BreachCheck {
  verdict: Verdict;
  detail: string;
}

/**
 * Is any limit beyond its threshold (README: max_loss when total_return < -max_loss; drawdown when
 * equity is more than pct below the high-water mark; weight when one |market_value| exceeds pct of
 * gross exposure)? `hwm` must already include this moment's equity.
 */
export function beyondLimits(f: PortfolioFigures, hwm: Dec, limits: Limits): BreachCheck {
  const verdicts: { v: Verdict; d: string }[] = [];
  const band = bandOf(f.cash, f.holdings_value, f.equity, f.realized_pnl, f.unrealized_pnl, f.gross_exposure, hwm);
  if (limits.max_loss !== null) {
    const threshold = new Dec(limits.max_loss).neg();
    const v = f.total_return;
    verdicts.push({ v: v.lt(threshold.minus(band)) ? 'yes' : v.lt(threshold.plus(band)) ? 'maybe' : 'no', d: `total_return ${v.toSignificantDigits(12)} vs -max_loss ${threshold}` });
  }
  if (limits.max_drawdown_pct !== null) {
    if (hwm.abs().lte(band)) verdicts.push({ v: 'maybe', d: `hwm ${hwm} ~ 0` });
    else if (hwm.gt(0)) {
      const dd = hwm.minus(f.equity).div(hwm).times(100);
      const ddBand = band.times(2).div(hwm).times(100).plus(dd.abs().times(1e-9));
      const t = new Dec(limits.max_drawdown_pct);
      verdicts.push({ v: dd.gt(t.plus(ddBand)) ? 'yes' : dd.gt(t.minus(ddBand)) ? 'maybe' : 'no', d: `drawdown ${dd.toSignificantDigits(12)}% vs ${t}%` });
    }
  }
  if (limits.max_position_weight_pct !== null) {
    const gross = f.gross_exposure;
    if (gross.gt(0) && gross.lte(band)) verdicts.push({ v: 'maybe', d: `gross ${gross} ~ 0` });
    else if (gross.gt(0)) {
      let maxAbs = new Dec(0);
      for (const p of f.positions) if (p.market_value.abs().gt(maxAbs)) maxAbs = p.market_value.abs();
      const w = maxAbs.div(gross).times(100);
      const wBand = band.times(2).div(gross).times(100).plus(w.times(1e-9));
      const t = new Dec(limits.max_position_weight_pct);
      verdicts.push({ v: w.gt(t.plus(wBand)) ? 'yes' : w.gt(t.minus(wBand)) ? 'maybe' : 'no', d: `weight ${w.toSignificantDigits(12)}% vs ${t}%` });
    }
  }
  const verdict: Verdict = verdicts.some((x) => x.v === 'yes') ? 'yes' : verdicts.some((x) => x.v === 'maybe') ? 'maybe' : 'no';
  return { verdict, detail: verdicts.map((x) => `${x.d}: ${x.v}`).join('; ') };
}

export class Model {
  readonly ledger = new Ledger({ reuseUnchangedReplays: true });
  readonly portfolios = new Map<string, ModelPortfolio>();
  readonly symbols = new Map<string, SymbolState>();

  portfolio(id: string): ModelPortfolio {
    const p = this.portfolios.get(id);
    if (p === undefined) throw new Error(`model: unknown portfolio ${id}`);
    return p;
  }

  symbol(name: string): SymbolState {
    let s = this.symbols.get(name);
    if (s === undefined) {
      s = { price: 0, ts: 0 };
      this.symbols.set(name, s);
    }
    return s;
  }

  /**
   * The oracle's figures for a portfolio, recomputed from the whole history. Cached until the next
   * change recorded in the ledger: a step asks for them many times, and each recomputation is decimal
   * arithmetic over every position plus a pass over the history (the ledger itself stays uncached).
   */
  figures(id: string): PortfolioFigures {
    const hit = this.cache.get(id);
    if (hit !== undefined && hit.version === this.version) return hit.figures;
    const figures = this.ledger.portfolio(id);
    this.cache.set(id, { version: this.version, figures });
    return figures;
  }

  private version = 0;
  private readonly cache = new Map<string, { version: number; figures: PortfolioFigures }>();

  /** Every ledger write goes through here, so that no cached figure outlives a change. */
  private changed(): void {
    this.version++;
  }

  create(id: string, name: string, cash: number, limits: Limits): ModelPortfolio {
    this.ledger.createPortfolio(id, cash);
    this.changed();
    const p: ModelPortfolio = {
      id,
      name,
      status: 'active',
      limits,
      hwm: new Dec(cash),
      seq: 0,
      seqSeenMax: 0,
      trades: new Map(),
      tradeLog: [],
      cashLog: [],
      rows: new Set(),
      units: new Map(),
      scaleMax: new Dec(Math.max(1, cash)),
    };
    this.portfolios.set(id, p);
    return p;
  }

  /** Every rejection the rules give this (valid) trade now; empty when it must be applied. */
  tradeRejections(id: string, t: ModelTrade, positionsPerPortfolioMax: number): string[] {
    const p = this.portfolio(id);
    const out: string[] = [];
    if (!p.rows.has(t.symbol) && p.rows.size >= positionsPerPortfolioMax) out.push('limit_exceeded');
    if (p.status === 'closed') out.push('portfolio_closed');
    const held = p.units.get(t.symbol) ?? 0n;
    const u = unitsOf(t.quantity);
    const next = held + (t.side === 'buy' ? u : -u);
    if (p.status === 'paused') {
      // Reduce-only: opposite side, no larger than the position (no flips).
      const opposite = held > 0n ? t.side === 'sell' : held < 0n ? t.side === 'buy' : false;
      if (!(opposite && u <= (held < 0n ? -held : held))) out.push('portfolio_paused');
    }
    if (p.status === 'active' && (next < 0n ? -next : next) > POSITION_UNITS_MAX) out.push('invalid_quantity');
    return out;
  }

  /** `live`: applied by a running engine (a revaluation moment); false when applied by replay at recovery. */
  applyTrade(id: string, t: ModelTrade, live = true): void {
    const p = this.portfolio(id);
    this.ledger.trade(id, { symbol: t.symbol, side: t.side, quantity: t.quantity, price: t.price, fee: t.fee });
    this.changed();
    const held = p.units.get(t.symbol) ?? 0n;
    const u = unitsOf(t.quantity);
    p.units.set(t.symbol, held + (t.side === 'buy' ? u : -u));
    p.rows.add(t.symbol);
    p.tradeLog.push(t.trade_id);
    if (live) this.moment(p);
  }

  /** README: a withdrawal larger than cash is refused; 'maybe' when amount ~ cash (float cash decides). */
  withdrawVerdict(id: string, amount: number): Verdict {
    const cash = this.figures(id).cash;
    const a = new Dec(amount);
    const band = bandOf(cash, a);
    if (a.lt(cash.minus(band))) return 'yes';
    if (a.gt(cash.plus(band))) return 'no';
    return 'maybe';
  }

  applyCash(id: string, deposit: boolean, amount: number): void {
    const p = this.portfolio(id);
    if (deposit) this.ledger.deposit(id, amount);
    else this.ledger.withdraw(id, amount);
    this.changed();
    // Deposits and withdrawals shift the high-water mark: they are not P&L.
    p.hwm = deposit ? p.hwm.plus(amount) : p.hwm.minus(amount);
    p.cashLog.push(deposit ? amount : -amount);
    this.moment(p);
  }

  /** A revaluation of the portfolio: the high-water mark follows equity up. */
  moment(p: ModelPortfolio): void {
    const equity = this.figures(p.id).equity;
    if (equity.gt(p.hwm)) p.hwm = equity;
  }

  breach(id: string): BreachCheck {
    const p = this.portfolio(id);
    return beyondLimits(this.figures(id), p.hwm, p.limits);
  }

  /**
   * One coalesced batch of valid ticks in arrival order. Returns the symbols whose price changed
   * (what the kernel revalues) and how many ticks were stale.
   */
  applyTicks(ticks: { symbol: string; price: number; ts: number }[]): { changed: Set<string>; stale: number } {
    const latest = new Map<string, number>();
    let stale = 0;
    for (const t of ticks) {
      const s = this.symbol(t.symbol);
      if (t.ts < s.ts) {
        stale++;
        continue;
      }
      s.ts = t.ts;
      latest.set(t.symbol, t.price);
    }
    const changed = new Set<string>();
    for (const [symbol, price] of latest) {
      const s = this.symbol(symbol);
      if (s.price === price) continue;
      s.price = price;
      changed.add(symbol);
      this.ledger.tick(symbol, price);
      this.changed();
    }
    return { changed, stale };
  }

  /** Portfolios a batch revalues: those with an open position in a symbol whose price changed. */
  touchedBy(changed: Set<string>): Set<string> {
    const out = new Set<string>();
    if (changed.size === 0) return out;
    for (const p of this.portfolios.values()) {
      for (const [symbol, u] of p.units) {
        if (u !== 0n && changed.has(symbol)) {
          out.add(p.id);
          break;
        }
      }
    }
    return out;
  }
}
