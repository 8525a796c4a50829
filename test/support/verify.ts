// Compares every figure an IncrementalBook reports (kernel columns + accounting state) with the exact
// oracle's from-scratch recomputation. Throws on the first mismatch, naming the figure; returns the
// number of figures compared within tolerance (expectClose calls) so a test can assert that it compared.

import { expectClose, MismatchError } from '../oracle/compare.js';
import { Dec, type PortfolioFigures } from '../oracle/ledger.js';
import type { IncrementalBook } from './book.js';

const totalsKeys = [
  'cash',
  'capital',
  'holdings_value',
  'cost_basis',
  'unrealized_pnl',
  'realized_pnl',
  'total_return',
  'return_rate',
  'equity',
  'gross_exposure',
] as const;

const positionKeys = ['quantity', 'avg_cost', 'last_price', 'market_value', 'unrealized_pnl', 'realized_pnl', 'return_rate', 'weight'] as const;

export function verifyPortfolio(book: IncrementalBook, expected: PortfolioFigures, context: string): number {
  const id = expected.id;
  const at = `${context}${context === '' ? '' : ' '}[${book.choice}] ${id}`;
  let n = 0;
  const totals = book.totals(id);
  for (const k of totalsKeys) {
    expectClose(totals[k], expected[k], `${at}.${k}`);
    n++;
  }
  const state = book.state(id);
  // The accounting state and what was written to the kernel must agree exactly: the shard reports both.
  if (state.cash !== totals.cash || state.realized_pnl !== totals.realized_pnl) {
    throw new MismatchError(`${at}: state cash/realized ${state.cash}/${state.realized_pnl} != kernel ${totals.cash}/${totals.realized_pnl}`);
  }
  if (state.trades !== expected.trades) throw new MismatchError(`${at}.trades: ${state.trades} != ${expected.trades}`);
  const views = book.positions(id);
  const symbols = views.map((v) => v.symbol).join(',');
  const expectedSymbols = expected.positions.map((p) => p.symbol).join(',');
  if (symbols !== expectedSymbols) throw new MismatchError(`${at}: positions [${symbols}] != oracle [${expectedSymbols}]`);
  expected.positions.forEach((want, i) => {
    const got = views[i];
    const label = `${at}.${want.symbol}`;
    for (const k of positionKeys) {
      expectClose(got[k], want[k], `${label}.${k}`);
      n++;
    }
    // Quantities are exact integers of 1e-8 units: no tolerance there.
    const units = state.positions[want.symbol]?.units ?? 0;
    if (!new Dec(units).eq(want.quantity.times(1e8))) {
      throw new MismatchError(`${label}.units: ${units} != oracle ${want.quantity.times(1e8).toString()}`);
    }
    expectClose(state.positions[want.symbol]?.avg_cost ?? 0, want.avg_cost, `${label}.state.avg_cost`);
    n++;
  });
  return n;
}

/** Every figure of every portfolio of the oracle (`all`: Ledger.all()). */
export function verifyBook(book: IncrementalBook, all: ReadonlyMap<string, PortfolioFigures>, context = ''): number {
  let n = 0;
  if (all.size !== book.ids().length) throw new MismatchError(`${context}: ${book.ids().length} portfolios != oracle ${all.size}`);
  for (const expected of all.values()) n += verifyPortfolio(book, expected, context);
  return n;
}
