// What-if trades (dry_run): the figures a trade would produce and every risk limit it would breach,
// computed beside the kernel, never in it: the book, the kernel rows and the high-water mark stay as
// they are (a dry run adds no row, so it cannot use up positionsPerPortfolioMax either). The position
// is valued as the kernel would value it (effective quantity, current mark and rate); totals are the
// kernel's minus the row's current contribution plus its would-be one.

import { reducesExposure } from '../domain/accounting.js';
import { applyTrade, baseCurrencyOf, positionOf, tradeRefusal } from '../domain/portfolio.js';
import { ErrorCode, type EngineError } from '../errors.js';
import type { PortfolioState, PositionView, RiskLimitName, Totals } from '../domain/types.js';
import type { ValidTrade } from '../domain/validate.js';
import type { Columns } from '../kernel/layout.js';
import type { Book } from './book.js';
import { markOf, type MarkClock } from './marks.js';
import { returnRateOf, totalsOf } from './views.js';

export interface WhatIf {
  realized_pnl: number;
  position: PositionView;
  totals: Totals;
  breaches: RiskLimitName[];
}

/** The refusal the actor would answer, in its order: lifecycle first, then the trade's own checks. */
export function whatIfRefusal(book: Book, trade: ValidTrade): EngineError | null {
  if (book.status === 'closed') return { code: ErrorCode.portfolio_closed, message: 'refused: portfolio is closed' };
  if (book.status === 'paused' && !reducesExposure(positionOf(book.state, trade.symbol), trade.side, trade.units)) {
    return { code: ErrorCode.portfolio_paused, message: 'trade refused: portfolio is paused and only trades that reduce exposure (opposite side, no flip) are accepted' };
  }
  const refusal = tradeRefusal(book.state, trade);
  return refusal === null ? null : { code: refusal.code, message: refusal.message, field: refusal.field };
}

export interface WhatIfInputs {
  c: Columns;
  book: Book;
  trade: ValidTrade;
  /** The position's kernel row, if the book has one for the symbol. */
  row: number | undefined;
  /** The symbol's row in the symbol table and its price (0: never ticked). */
  sym: number;
  /** Rate of the trade's currency into the base (1: the base; 0: never seen). */
  fx: number;
  /** Base cash plus foreign balances at their rates, for a given state. */
  cashInBase: (state: PortfolioState) => number;
  clock: MarkClock;
}

export function whatIf(x: WhatIfInputs): WhatIf {
  const { c, book, trade, row } = x;
  // applyTrade takes ownership of the state it is given (it books into its positions in place): a
  // dry run hands it a copy, so the book is left as it was.
  const applied = applyTrade({ ...book.state, positions: { ...book.state.positions } }, trade);
  const p = applied.state.positions[trade.symbol];
  const tick = c.symPrice[x.sym];
  const mark = tick > 0 ? tick : p.last_trade_price;
  const quantity = p.units / 1e8;
  const q = quantity * (p.multiplier ?? 1);
  const mv = q * mark * x.fx;
  const upnl = (mark - p.avg_cost) * q * x.fx;
  const cost = Math.abs(q) * p.avg_cost * x.fx;
  // The kernel's totals without this row, then with its would-be figures.
  const was = row !== undefined && c.posQty[row] !== 0;
  const holdings = c.pfHoldings[book.index] - (was ? c.posMv[row] : 0) + mv;
  const costBasis = c.pfCostBasis[book.index] - (was ? Math.abs(c.posQty[row]) * c.posAvg[row] * c.posFx[row] : 0) + cost;
  const unrealized = c.pfUpnl[book.index] - (was ? c.posUpnl[row] : 0) + upnl;
  let gross = Math.abs(mv);
  let maxAbs = Math.abs(mv);
  for (const r of book.rowList) {
    if (r === row || c.posQty[r] === 0) continue;
    const a = Math.abs(c.posMv[r]);
    gross += a;
    if (a > maxAbs) maxAbs = a;
  }
  const cash = x.cashInBase(applied.state);
  const equity = cash + holdings;
  const realized = applied.state.realized_pnl;
  const totalReturn = realized + unrealized;
  const base = totalsOf(c, book, x.clock);
  const totals: Totals = {
    ...base,
    cash: applied.state.cash,
    holdings_value: holdings,
    cost_basis: costBasis,
    unrealized_pnl: unrealized,
    realized_pnl: realized,
    total_return: totalReturn,
    return_rate: returnRateOf(totalReturn, applied.state.capital, costBasis),
    equity,
    gross_exposure: gross,
  };
  const unconverted = p.currency !== undefined && x.fx === 0;
  const position: PositionView = {
    symbol: trade.symbol,
    currency: p.currency ?? baseCurrencyOf(book.state),
    fx_rate: unconverted ? null : x.fx,
    quantity,
    avg_cost: p.avg_cost,
    last_price: mark,
    market_value: unconverted ? q * mark : mv,
    unrealized_pnl: unconverted ? (mark - p.avg_cost) * q : upnl,
    realized_pnl: p.realized_pnl,
    return_rate: cost !== 0 ? (upnl / cost) * 100 : 0,
    weight: gross > 0 && !unconverted ? (Math.abs(mv) / gross) * 100 : 0,
    ...markOf(c, x.clock, x.sym),
  };
  return { realized_pnl: applied.fill.realized, position, totals, breaches: breachesOf(book, c, totalReturn, equity, gross, maxAbs) };
}

/** Every limit the figures would break (the kernel reports the first; a what-if answers them all). */
function breachesOf(book: Book, c: Columns, totalReturn: number, equity: number, gross: number, maxAbs: number): RiskLimitName[] {
  const l = book.state.limits;
  const out: RiskLimitName[] = [];
  if (l.max_loss != null && totalReturn < -l.max_loss) out.push('max_loss');
  const hwm = Math.max(c.pfHwm[book.index], equity);
  if (l.max_drawdown_pct != null && hwm > 0 && ((hwm - equity) / hwm) * 100 > l.max_drawdown_pct) out.push('max_drawdown_pct');
  if (l.max_position_weight_pct != null && gross > 0 && (maxAbs / gross) * 100 > l.max_position_weight_pct) out.push('max_position_weight_pct');
  return out;
}
