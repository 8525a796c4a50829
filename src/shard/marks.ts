// How honest a mark is: the source timestamp of the tick behind it, its age as of the message being
// built, and whether it is stale. A symbol is priced once the kernel holds a tick price for it
// (symPrice > 0); until then positions are marked at their last trade price and count as unpriced.
// Ages are computed when a snapshot or update is built (never per tick): staleness changes with time
// alone, so each message reports it as of its own as_of.

import type { Columns } from '../kernel/layout.js';
import type { Book } from './book.js';

/** What every figure of one message is aged against. */
export interface MarkClock {
  /** Source timestamp of each symbol's last applied tick (or restored price), by symbol id. */
  readonly symTs: Float64Array;
  /** The message's as_of (epoch ms). */
  readonly asOf: number;
  readonly staleAfterMs: number;
}

export interface MarkFields {
  price_ts: number | null;
  price_age_ms: number | null;
  stale: boolean;
}

export function markOf(c: Columns, clock: MarkClock, sym: number): MarkFields {
  if (!(c.symPrice[sym] > 0)) return { price_ts: null, price_age_ms: null, stale: true };
  const ts = clock.symTs[sym];
  const age = clock.asOf - ts;
  return { price_ts: ts, price_age_ms: age, stale: age > clock.staleAfterMs };
}

/** Counts over the book's open positions (quantity != 0): one pass over its rows. */
export function markCounts(c: Columns, clock: MarkClock, book: Book): { stale_positions: number; unpriced_positions: number } {
  let stale = 0;
  let unpriced = 0;
  for (const row of book.rowList) {
    if (c.posQty[row] === 0) continue;
    const sym = c.posSym[row];
    if (!(c.symPrice[sym] > 0)) {
      unpriced++;
      stale++;
    } else if (clock.asOf - clock.symTs[sym] > clock.staleAfterMs) stale++;
  }
  return { stale_positions: stale, unpriced_positions: unpriced };
}
