// Building the figures clients see from kernel columns and a book. Runs only for watched portfolios
// and snapshots, never for every dirty portfolio of a batch.

import type { Columns } from '../kernel/layout.js';
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
    equity: book.state.cash + holdings,
    gross_exposure: c.pfGross[f],
    ...markCounts(c, clock, book),
  };
}

export function positionView(c: Columns, book: Book, row: number, symbol: string, clock: MarkClock): PositionView {
  const q = c.posQty[row];
  const avg = c.posAvg[row];
  const mv = c.posMv[row];
  const upnl = c.posUpnl[row];
  const cost = Math.abs(q) * avg * c.posFx[row];
  const gross = c.pfGross[book.index];
  return {
    symbol,
    quantity: q,
    avg_cost: avg,
    last_price: c.posMark[row],
    market_value: mv,
    unrealized_pnl: upnl,
    realized_pnl: book.state.positions[symbol]?.realized_pnl ?? 0,
    return_rate: cost !== 0 ? (upnl / cost) * 100 : 0,
    weight: gross > 0 ? (Math.abs(mv) / gross) * 100 : 0,
    ...markOf(c, clock, c.posSym[row]),
  };
}
