// snapshotAt: a portfolio as it was at a past instant, rebuilt on the side from the nearest earlier
// snapshot plus the events up to that instant, valued at the prices stored for that instant.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { baseCurrencyDefault, type HeldAt, type PortfolioRecord, type PortfolioSnapshot, type StoredEvent } from '../domain/types.js';
import { conversionSymbolsOf } from '../domain/fx.js';
import { Shard } from '../shard/shard.js';
import type { Store } from '../store/store.js';

export function timeTravel(store: Store, id: string, timestamp: number, staleAfterMs: number, fxPivot: string): Result<PortfolioSnapshot> {
  const built = shardAt(store, id, timestamp, staleAfterMs, fxPivot);
  if (!built.ok) return built;
  const snapshot = built.value.snapshot(id, timestamp);
  return snapshot === null ? fail(ErrorCode.portfolio_not_found, `portfolio '${id}' not found`, 'portfolio_id') : ok(snapshot);
}

/**
 * What the portfolio held of `symbol` at `timestamp` (quantity, currency, multiplier), or null when it
 * did not exist then or held none: a dividend with a past ex-date is entitled from this.
 */
export function holdingAt(store: Store, id: string, timestamp: number, symbol: string, fxPivot: string): HeldAt | null {
  const built = shardAt(store, id, timestamp, 0, fxPivot);
  if (!built.ok) return null;
  const held = built.value.positionOf(id, symbol);
  return held === null || held.units === 0 ? null : held;
}

/** A one-portfolio shard rebuilt on the side: nearest earlier snapshot, events up to the instant, prices of then. */
function shardAt(store: Store, id: string, timestamp: number, staleAfterMs: number, fxPivot: string): Result<Shard> {
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
  for (const fx of fxSymbolsOf(record, events, fxPivot)) names.add(fx);
  const symbols = [...names];
  const shard = new Shard({ shard: -1, kernel: 'js', positionsPerPortfolioMax: symbols.length + 1, portfoliosMax: 1, symbolsMax: symbols.length + 1, staleAfterMs, fxPivot });
  shard.registerSymbols(0, symbols);
  // With their source timestamps: marks as of `timestamp` are aged as they were then.
  const prices: { symbol: number; price: number; ts: number }[] = [];
  symbols.forEach((symbol, i) => {
    const p = store.lastPriceAt(symbol, timestamp);
    if (p !== undefined) prices.push({ symbol: i, price: p.price, ts: p.ts });
  });
  shard.load(record === undefined ? [] : [record], prices);
  shard.replay(events);
  shard.finishRecovery();
  return ok(shard);
}

/** The FX symbols a portfolio's foreign positions and cash need, so they convert at the rates of then. */
function fxSymbolsOf(record: PortfolioRecord | undefined, events: readonly StoredEvent[], pivot: string): string[] {
  const created = events.find((e) => e.type === 'PortfolioCreated');
  const base = record?.portfolio.base_currency ?? (created?.type === 'PortfolioCreated' ? created.base_currency : undefined) ?? baseCurrencyDefault;
  const currencies = new Set<string>(Object.keys(record?.portfolio.cash_balances ?? {}));
  for (const p of Object.values(record?.portfolio.positions ?? {})) if (p.currency !== undefined) currencies.add(p.currency);
  for (const e of events) {
    if (e.type === 'TradeExecuted' && e.currency !== undefined) currencies.add(e.currency);
    if (e.type === 'DividendPaid') currencies.add(e.currency);
    if ((e.type === 'CashDeposited' || e.type === 'CashWithdrawn') && e.currency !== undefined) currencies.add(e.currency);
    if (e.type === 'FxConverted') {
      currencies.add(e.from_currency);
      currencies.add(e.to_currency);
    }
  }
  currencies.delete(base);
  return [...currencies].flatMap((c) => conversionSymbolsOf(c, base, pivot));
}
