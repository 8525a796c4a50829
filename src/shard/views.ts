// Building the figures clients see from kernel columns and a book. Runs only for watched portfolios
// and snapshots, never for every dirty portfolio of a batch.

import type { Columns } from '../kernel/layout.js';
import { baseCurrencyOf } from '../domain/portfolio.js';
import type { PositionView, Totals } from '../domain/types.js';
import type { Book } from './book.js';
import { markCounts, markOf, type MarkClock } from './marks.js';

export function returnRateOf(totalReturn: number, capital: number, costBasis: number): number {
  if (capital !== 0) return (totalReturn / capital) * 100;
  if (costBasis !== 0) return (totalReturn / costBasis) * 100;
  return 0;
}

export function totalsOf(c: Columns, book: Book, clock: MarkClock): Totals {
  const f = book.index;
  const holdings = c.pfHoldings[f];
  const costBasis = c.pfCostBasis[f];
  const unrealized = c.pfUpnl[f];
  const realized = book.state.realized_pnl;
  const totalReturn = realized + unrealized;
  return {
    cash: book.state.cash,
    capital: book.state.capital,
    holdings_value: holdings,
    cost_basis: costBasis,
    unrealized_pnl: unrealized,
    realized_pnl: realized,
    total_return: totalReturn,
    return_rate: returnRateOf(totalReturn, book.state.capital, costBasis),
    // pfCash is the base cash plus the foreign cash converted at the latest rates (Shard.syncCash).
    equity: c.pfCash[f] + holdings,
    gross_exposure: c.pfGross[f],
    ...markCounts(c, clock, book),
    unconverted_positions: book.foreign === 0 && book.cashFx.length === 0 ? 0 : unconvertedOf(c, book),
  };
}

/** Open foreign positions and foreign cash balances whose rate was never seen (left out of the totals). */
function unconvertedOf(c: Columns, book: Book): number {
  let n = 0;
  for (const row of book.rowList) if (c.posQty[row] !== 0 && c.posFx[row] === 0) n++;
  for (const sym of book.cashFx) if (c.symPrice[sym] === 0) n++;
  return n;
}

export function positionView(c: Columns, book: Book, row: number, symbol: string, clock: MarkClock): PositionView {
  // posQty is the effective quantity (quantity x multiplier): the quantity shown is the book's.
  const q = c.posQty[row];
  const avg = c.posAvg[row];
  const fx = c.posFx[row];
  const state = book.state.positions[symbol];
  const currency = state?.currency;
  // A foreign position whose rate was never seen has fx 0 in the kernel (counted nowhere): it is shown
  // in its quote currency, flagged by fx_rate null, never converted at a made-up 1.0.
  const unconverted = currency !== undefined && fx === 0;
  const mark = c.posMark[row];
  const mv = unconverted ? q * mark : c.posMv[row];
  const upnl = unconverted ? (mark - avg) * q : c.posUpnl[row];
  const cost = Math.abs(q) * avg * (unconverted ? 1 : fx);
  const gross = c.pfGross[book.index];
  return {
    symbol,
    currency: currency ?? baseCurrencyOf(book.state),
    fx_rate: unconverted ? null : fx,
    quantity: q === 0 || state === undefined ? 0 : state.units / 1e8,
    avg_cost: avg,
    last_price: mark,
    market_value: mv,
    unrealized_pnl: upnl,
    realized_pnl: state?.realized_pnl ?? 0,
    return_rate: cost !== 0 ? (upnl / cost) * 100 : 0,
    weight: gross > 0 && !unconverted ? (Math.abs(mv) / gross) * 100 : 0,
    ...markOf(c, clock, c.posSym[row]),
  };
}
