// snapshotAt: a portfolio as it was at a past instant, rebuilt on the side from the nearest earlier
// snapshot plus the events up to that instant, valued at the prices stored for that instant.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import type { PortfolioSnapshot, StoredEvent } from '../domain/types.js';
import { Shard } from '../shard/shard.js';
import type { Store } from '../store/store.js';

export function timeTravel(store: Store, id: string, timestamp: number, staleAfterMs: number): Result<PortfolioSnapshot> {
  const record = store.snapshotBefore(id, timestamp);
  const events: StoredEvent[] = [...store.eventsForPortfolio(id, record?.covered_seq ?? 0, timestamp)];
  if (record === undefined && !events.some((e) => e.type === 'PortfolioCreated')) {
    return fail(ErrorCode.portfolio_not_found, `no state of portfolio '${id}' is kept at ${new Date(timestamp).toISOString()}: it did not exist yet, or retention compacted it`, 'as_of');
  }
  const names = new Set<string>(record === undefined ? [] : Object.keys(record.portfolio.positions));
  for (const e of events) {
    if (e.type === 'TradeExecuted') names.add(e.symbol);
    if (e.type === 'SymbolChanged') names.add(e.to_symbol);
  }
  const symbols = [...names];
  const shard = new Shard({ shard: -1, kernel: 'js', positionsPerPortfolioMax: symbols.length + 1, portfoliosMax: 1, symbolsMax: symbols.length + 1, staleAfterMs });
  shard.registerSymbols(0, symbols);
  // With their source timestamps: marks as of `timestamp` are aged as they were then.
  const prices: { symbol: number; price: number; ts: number }[] = [];
  symbols.forEach((symbol, i) => {
    const p = store.lastPriceAt(symbol, timestamp);
    if (p !== undefined) prices.push({ symbol: i, price: p.price, ts: p.ts });
  });
  shard.load(record === undefined ? [] : [record], prices);
  shard.replay(events);
  const snapshot = shard.snapshot(id, timestamp);
  return snapshot === null ? fail(ErrorCode.portfolio_not_found, `portfolio '${id}' not found`, 'portfolio_id') : ok(snapshot);
}
