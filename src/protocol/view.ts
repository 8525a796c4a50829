// A portfolio's full state kept from a snapshot plus the updates after it (pure, browser-safe).
// Updates carry only changed positions; a position with quantity 0 is gone. Weights of positions an
// update did not carry are |market_value| / gross_exposure * 100, and 0 for an unconverted position
// (fx_rate null: its value is in its quote currency and in no total), as the shard's snapshots say.

import type { PortfolioSnapshot, PortfolioUpdate, PositionView } from '../domain/types.js';

export function applyUpdate(view: PortfolioSnapshot, u: PortfolioUpdate): PortfolioSnapshot {
  if (u.seq <= view.seq) return view;
  const bySymbol = new Map<string, PositionView>(view.positions.map((p) => [p.symbol, p]));
  for (const p of u.positions) {
    if (p.quantity === 0) bySymbol.delete(p.symbol);
    else bySymbol.set(p.symbol, p);
  }
  const gross = u.gross_exposure;
  const positions = [...bySymbol.values()].map((p) => {
    const weight = gross > 0 && p.fx_rate !== null ? (Math.abs(p.market_value) / gross) * 100 : 0;
    return p.weight === weight ? p : { ...p, weight };
  });
  // Copy the update's own fields only (not tick_ts / from_seq / type, which are not snapshot fields).
  return {
    ...view,
    seq: u.seq,
    as_of: u.as_of,
    state: u.state,
    cash: u.cash,
    capital: u.capital,
    holdings_value: u.holdings_value,
    cost_basis: u.cost_basis,
    unrealized_pnl: u.unrealized_pnl,
    realized_pnl: u.realized_pnl,
    total_return: u.total_return,
    return_rate: u.return_rate,
    equity: u.equity,
    gross_exposure: u.gross_exposure,
    stale_positions: u.stale_positions,
    unpriced_positions: u.unpriced_positions,
    unconverted_positions: u.unconverted_positions,
    equity_hwm: Math.max(view.equity_hwm, u.equity),
    positions,
  };
}
