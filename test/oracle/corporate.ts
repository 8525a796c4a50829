// The exact oracle for corporate actions, written from the rules of the "accounting depth" issue alone
// (splits, cash dividends, symbol changes). Imports nothing from src/: decimals all the way (60
// significant digits), on the positions of the lots oracle (test/oracle/lots.ts).
//
// Rules modelled:
// - split `to` for every `from`: each holding's quantity becomes q * to / from, truncated toward zero to
//   1e-8 (what cannot be held is dropped, no cash in lieu); lot methods truncate lot by lot and the
//   position is the sum of its lots; prices (average cost, lot prices, the mark) become p * from / to.
// - cash dividend: amount = quantity held at the ex-date * amount per share, in the instrument's quote
//   currency; realized (base) = amount * rate (rate 1 in the base currency; nothing without a rate).
// - symbol change: the position moves; merged into a position already held on the same side: quantities
//   add, average costs weight by quantity (average) or lots join in open-time order (lot methods).

import { Dec } from './ledger.js';
import { lotsAverage, type Method, type OracleLot, type OraclePosition } from './lots.js';

type D = InstanceType<typeof Dec>;

const ZERO = new Dec(0);

/** Truncates toward zero to 8 decimals: the smallest quantity a position can hold is 1e-8. */
export function toUnits(q: D): D {
  return q.toDecimalPlaces(8, Dec.ROUND_DOWN);
}


export function splitPrice(price: D | number, from: number, to: number): D {
  return new Dec(price).times(from).div(to);
}

/** The position after a split, and the quantity dropped (exact: it may be a repeating fraction). */
export function split(method: Method, p: OraclePosition, from: number, to: number): { position: OraclePosition; dropped: D } {
  const sign = p.qty.isNegative() ? -1 : 1;
  if (method === 'average') {
    const exact = p.qty.abs().times(to).div(from);
    const kept = toUnits(exact);
    return {
      position: { qty: kept.times(sign), avg: kept.isZero() ? ZERO : splitPrice(p.avg, from, to), lots: [], realized: p.realized },
      dropped: exact.minus(kept),
    };
  }
  let dropped = ZERO;
  const lots: OracleLot[] = [];
  for (const l of p.lots) {
    const exact = l.qty.times(to).div(from);
    const kept = toUnits(exact);
    dropped = dropped.plus(exact.minus(kept));
    if (!kept.isZero()) lots.push({ ...l, qty: kept, price: splitPrice(l.price, from, to) });
  }
  const qty = lots.reduce((s, l) => s.plus(l.qty), ZERO).times(sign);
  return { position: { qty, avg: lotsAverage(lots), lots, realized: p.realized }, dropped };
}

/** A cash dividend: amount in the quote currency, realized in the base (null rate: not converted). */
export function dividend(quantityAtEx: D | number, amountPerShare: number, rate: number | null): { amount: D; realized: D } {
  const amount = new Dec(quantityAtEx).times(amountPerShare);
  return { amount, realized: rate === null ? ZERO : amount.times(rate) };
}

/** A symbol change: `moved` joins `existing` (same side), or simply moves when nothing is held there. */
export function rename(method: Method, moved: OraclePosition, existing: OraclePosition | null): OraclePosition {
  if (existing === null || existing.qty.isZero()) return { ...moved, realized: moved.realized.plus(existing?.realized ?? ZERO) };
  const qty = moved.qty.plus(existing.qty);
  const realized = moved.realized.plus(existing.realized);
  if (method === 'average') {
    const a = moved.qty.abs();
    const b = existing.qty.abs();
    return { qty, avg: a.times(moved.avg).plus(b.times(existing.avg)).div(a.plus(b)), lots: [], realized };
  }
  const lots = [...existing.lots];
  for (const l of moved.lots) {
    const at = lots.filter((x) => x.ts <= l.ts).length;
    lots.splice(at, 0, l);
  }
  return { qty, avg: lotsAverage(lots), lots, realized };
}
