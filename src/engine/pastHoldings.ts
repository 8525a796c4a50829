// Holdings as of a past instant, for a dividend whose ex-date has passed (issue 19): every portfolio
// that held the symbol at ex_ts, with the quantity, currency and multiplier it held, rebuilt by time
// travel (timeTravel.ts: nearest earlier snapshot + events up to the instant). The past does not move:
// events logged from now on carry ts >= now > ex_ts, so this runs before the corporate step takes its
// hold, yielding to the event loop between portfolios, and its answer stays true while the step waits.
//
// Candidates: with every event kept (no retention), the portfolios whose log shows the symbol by then
// (TradeExecuted of it, or SymbolChanged into it), read through the type index in pages; with
// retention, an early trade may be compacted away, so every portfolio created by then is a candidate.

import type { HeldAt, StoredEvent } from '../domain/types.js';
import type { Store } from '../store/store.js';
import { storeDefaults } from '../store/store.js';
import { holdingAt } from './timeTravel.js';

/** Events read per page of the type index (the store's own page bound). */
const pageEventsMax = storeDefaults.queryLimitMax;

export async function holdingsAt(store: Store, portfolios: Iterable<string>, retained: boolean, symbol: string, ts: number, fxPivot: string): Promise<Record<string, HeldAt>> {
  const candidates = retained ? new Set(portfolios) : candidatesFromLog(store, symbol, ts);
  const out: Record<string, HeldAt> = {};
  let n = 0;
  for (const id of candidates) {
    if (id.startsWith('_')) continue;
    const held = holdingAt(store, id, ts, symbol, fxPivot);
    if (held !== null) out[id] = held;
    if (++n % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  return out;
}

function candidatesFromLog(store: Store, symbol: string, ts: number): Set<string> {
  const ids = new Set<string>();
  for (const type of ['TradeExecuted', 'SymbolChanged'] as const) {
    let after: number | undefined;
    for (;;) {
      const page: StoredEvent[] = store.query({ type, to: ts, limit: pageEventsMax, order: 'asc', ...(after === undefined ? {} : { after_seq: after }) });
      for (const e of page) {
        if ((e.type === 'TradeExecuted' && e.symbol === symbol) || (e.type === 'SymbolChanged' && e.to_symbol === symbol)) ids.add(e.portfolio_id);
      }
      if (page.length < pageEventsMax) break;
      after = page[page.length - 1].seq;
    }
  }
  return ids;
}
