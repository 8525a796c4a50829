// The exact oracle for cost-basis methods, multi-currency booking and corporate actions, written from
// the rules of the "accounting depth" issue alone. Imports nothing from src/: decimals all the way
// (60 significant digits), no shortcuts, one position per (portfolio, symbol).

import { Dec } from './ledger.js';

type D = InstanceType<typeof Dec>;

export type Method = 'average' | 'fifo' | 'lifo';

export interface OracleLot {
  id: string;
  /** Open quantity, > 0. */
  qty: D;
  price: D;
  ts: number;
}

export interface OraclePosition {
  /** Signed quantity. */
  qty: D;
  /** Average method: the running average cost. Lot methods: derived from the lots. */
  avg: D;
  lots: OracleLot[];
  /** Base currency. */
  realized: D;
}

export interface OracleTrade {
  id: string;
  side: 'buy' | 'sell';
  quantity: number;
  price: number;
  fee?: number;
  ts: number;
  lotIds?: string[];
  /** Quote -> base at booking; 1 (or absent) for base-currency trades. */
  rate?: number;
}

export interface OracleClose {
  lot: string;
  qty: D;
  /** Base currency, fee not included. */
  realized: D;
}

const ZERO = new Dec(0);

export function flat(): OraclePosition {
  return { qty: ZERO, avg: ZERO, lots: [], realized: ZERO };
}

function lotsAverage(lots: readonly OracleLot[]): D {
  let q = ZERO;
  let c = ZERO;
  for (const l of lots) {
    q = q.plus(l.qty);
    c = c.plus(l.qty.times(l.price));
  }
  return q.isZero() ? ZERO : c.div(q);
}

/** Books one trade; returns the new position, realized by the trade (base, fee included) and the lots closed. */
export function book(method: Method, p: OraclePosition, t: OracleTrade): { position: OraclePosition; realized: D; closes: OracleClose[] } {
  const rate = new Dec(t.rate ?? 1);
  const q = new Dec(t.quantity);
  const price = new Dec(t.price);
  const fee = new Dec(t.fee ?? 0);
  const signed = t.side === 'buy' ? q : q.neg();
  const held = p.qty;
  const closes: OracleClose[] = [];
  const sameWay = held.isZero() || held.isPositive() === signed.isPositive();
  let lots = p.lots.map((l) => ({ ...l }));
  let avg = p.avg;
  let realizedLocal = ZERO;
  if (sameWay) {
    if (method === 'average') avg = held.abs().times(p.avg).plus(q.times(price)).div(held.abs().plus(q));
    else {
      // stable by open time
      const at = lots.filter((l) => l.ts <= t.ts).length;
      lots.splice(at, 0, { id: t.id, qty: q, price, ts: t.ts });
    }
  } else {
    let toClose = Dec.min(held.abs(), q);
    if (method === 'average') {
      const per = held.isPositive() ? price.minus(avg) : avg.minus(price);
      realizedLocal = per.times(toClose);
    } else {
      const order = t.lotIds !== undefined ? t.lotIds.map((id) => lots.findIndex((l) => l.id === id)) : lots.map((_, i) => i);
      if (t.lotIds === undefined && method === 'lifo') order.reverse();
      for (const i of order) {
        if (toClose.isZero()) break;
        const l = lots[i];
        const take = Dec.min(l.qty, toClose);
        const per = held.isPositive() ? price.minus(l.price) : l.price.minus(price);
        closes.push({ lot: l.id, qty: take, realized: per.times(take).times(rate) });
        realizedLocal = realizedLocal.plus(per.times(take));
        l.qty = l.qty.minus(take);
        toClose = toClose.minus(take);
      }
      lots = lots.filter((l) => !l.qty.isZero());
    }
    const after = held.plus(signed);
    if (after.isZero()) avg = ZERO;
    else if (after.isPositive() !== held.isPositive()) {
      avg = price;
      lots = [{ id: t.id, qty: after.abs(), price, ts: t.ts }];
    }
  }
  const qty = held.plus(signed);
  if (method !== 'average') avg = lotsAverage(lots);
  const realized = realizedLocal.minus(fee).times(rate);
  return { position: { qty, avg, lots, realized: p.realized.plus(realized) }, realized, closes };
}
