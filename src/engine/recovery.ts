// Start and restart from the store: snapshots first, then the events after each snapshot's covered
// seq, replayed through the same actors. The main thread reads LMDB (its only owner) and feeds the
// shard in bounded chunks.

import { baseCurrencyDefault, type PortfolioRecord, type StoredEvent } from '../domain/types.js';
import type { Store } from '../store/store.js';
import { applyToDirectory, type Directory } from './directory.js';
import type { ShardHandle } from './shardHandle.js';
import { shardOf } from './shardOf.js';
import type { SymbolTable } from './symbols.js';

/** Records and events per message while loading a shard. */
export const recoveryChunkMax = 5_000;

function symbolsOfEvent(e: StoredEvent, symbols: SymbolTable, directory: Directory, pivot: string): void {
  const base = directory.get(e.portfolio_id)?.base;
  // A renamed position replays into its new symbol; a foreign dividend credits cash in its currency.
  if (e.type === 'SymbolChanged') symbols.intern(e.to_symbol);
  if ((e.type === 'DividendEntitled' || e.type === 'DividendPaid') && base !== undefined && e.currency !== base) symbols.internConversion(e.currency, base, pivot);
  // Foreign cash moves replay into balances the shard converts.
  if ((e.type === 'CashDeposited' || e.type === 'CashWithdrawn') && e.currency !== undefined && base !== undefined) symbols.internConversion(e.currency, base, pivot);
  if (e.type === 'FxConverted' && base !== undefined) {
    if (e.from_currency !== base) symbols.internConversion(e.from_currency, base, pivot);
    if (e.to_currency !== base) symbols.internConversion(e.to_currency, base, pivot);
  }
  if (e.type !== 'TradeExecuted') return;
  symbols.intern(e.symbol);
  if (e.currency !== undefined && base !== undefined) symbols.internConversion(e.currency, base, pivot);
}

/**
 * Rebuilds the main thread's directory of portfolios and interns every symbol the shards will need,
 * so each fresh shard can be sent the whole symbol table before it loads.
 */
export function recoverDirectory(store: Store, directory: Directory, symbols: SymbolTable, pivot: string): void {
  let minCovered = Number.MAX_SAFE_INTEGER;
  const covered = new Map<string, number>();
  for (const r of store.loadSnapshots()) {
    const base = r.portfolio.base_currency ?? baseCurrencyDefault;
    directory.set(r.portfolio.id, { name: r.portfolio.name, state: r.state, base });
    covered.set(r.portfolio.id, r.covered_seq);
    if (r.covered_seq < minCovered) minCovered = r.covered_seq;
    for (const [symbol, p] of Object.entries(r.portfolio.positions)) {
      symbols.intern(symbol);
      if (p.currency !== undefined) symbols.internConversion(p.currency, base, pivot);
    }
    for (const currency of Object.keys(r.portfolio.cash_balances ?? {})) symbols.internConversion(currency, base, pivot);
    // A dividend due in a foreign currency credits that currency's cash when it is paid.
    for (const due of Object.values(r.portfolio.dividends_due ?? {})) if (due.currency !== base) symbols.internConversion(due.currency, base, pivot);
  }
  if (covered.size === 0) minCovered = 0;
  for (const e of store.eventsAfter(minCovered)) {
    if (e.seq <= (covered.get(e.portfolio_id) ?? 0)) continue;
    applyToDirectory(directory, e);
    symbolsOfEvent(e, symbols, directory, pivot);
  }
  symbols.announced = symbols.size;
}

export async function recoverShard(
  store: Store,
  h: ShardHandle,
  symbols: SymbolTable,
  lastPrice: Float64Array,
  lastPriceTs: Float64Array,
  shards: number,
  nextRequest: () => number,
  loadRequests: Map<number, () => void>,
): Promise<void> {
  if (symbols.announced > 0) h.post({ t: 'symbols', from: 0, names: symbols.names.slice(0, symbols.announced) });
  // From here on the engine announces new names to this worker as they come (same turn: no gap).
  h.symbolTableSent = true;
  // Each price with its source timestamp: restored marks keep their age (a restart makes nothing fresh).
  const prices: { symbol: number; price: number; ts: number }[] = [];
  for (let id = 0; id < symbols.announced; id++) if (lastPrice[id] > 0) prices.push({ symbol: id, price: lastPrice[id], ts: lastPriceTs[id] });
  const covered = new Map<string, number>();
  let minCovered = Number.MAX_SAFE_INTEGER;
  let chunk: PortfolioRecord[] = [];
  let first = true;
  const sendRecords = () => {
    h.post({ t: 'load', records: chunk, prices: first ? prices : [] });
    first = false;
    chunk = [];
  };
  for (const r of store.loadSnapshots()) {
    if (shardOf(r.portfolio.id, shards) !== h.index) continue;
    covered.set(r.portfolio.id, r.covered_seq);
    if (r.covered_seq < minCovered) minCovered = r.covered_seq;
    chunk.push(r);
    if (chunk.length >= recoveryChunkMax) sendRecords();
  }
  if (chunk.length > 0 || first) sendRecords();
  if (covered.size === 0) minCovered = 0;
  let events: StoredEvent[] = [];
  for (const e of store.eventsAfter(minCovered)) {
    if (shardOf(e.portfolio_id, shards) !== h.index || e.seq <= (covered.get(e.portfolio_id) ?? 0)) continue;
    events.push(e);
    if (events.length >= recoveryChunkMax) {
      h.post({ t: 'replay', events });
      events = [];
    }
  }
  if (events.length > 0) h.post({ t: 'replay', events });
  const request = nextRequest();
  await new Promise<void>((resolve) => {
    loadRequests.set(request, resolve);
    h.post({ t: 'loaded', request });
  });
}
