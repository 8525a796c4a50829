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

export function lotsAverage(lots: readonly OracleLot[]): D {
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

/**
 * One portfolio in several currencies: positions valued in their quote currency and converted at the
 * latest rate tick of `<quote><base>`; cash kept per currency; a position or balance whose rate never
 * ticked is left out of the totals and counted as unconverted.
 */
export class OracleBook {
  cash: D;
  readonly balances = new Map<string, D>();
  readonly positions = new Map<string, { position: OraclePosition; currency: string; tradePrice: D }>();
  readonly ticks = new Map<string, D>();
  realized = ZERO;

  constructor(
    readonly base: string,
    readonly method: Method,
    cash: number,
  ) {
    this.cash = new Dec(cash);
  }

  tick(symbol: string, price: number): void {
    this.ticks.set(symbol, new Dec(price));
  }

  rateOf(currency: string): D | undefined {
    return currency === this.base ? new Dec(1) : this.ticks.get(currency + this.base);
  }

  /** The rate a trade books at: its own, else the latest tick; undefined = the engine must refuse it. */
  bookingRate(currency: string, explicit?: number): D | undefined {
    return explicit !== undefined && currency !== this.base ? new Dec(explicit) : this.rateOf(currency);
  }

  trade(symbol: string, currency: string, t: OracleTrade): D {
    const rate = this.bookingRate(currency, t.rate) as D;
    const held = this.positions.get(symbol) ?? { position: flat(), currency, tradePrice: ZERO };
    // Booked in the quote currency, then converted once with the decimal rate.
    const local = book(this.method, held.position, { ...t, rate: 1 });
    const realized = local.realized.times(rate);
    this.positions.set(symbol, { position: { ...local.position, realized: held.position.realized.plus(realized) }, currency, tradePrice: new Dec(t.price) });
    const notional = new Dec(t.quantity).times(t.price);
    const fee = new Dec(t.fee ?? 0);
    const delta = t.side === 'buy' ? notional.plus(fee).neg() : notional.minus(fee);
    if (currency === this.base) this.cash = this.cash.plus(delta);
    else this.balances.set(currency, (this.balances.get(currency) ?? ZERO).plus(delta));
    this.realized = this.realized.plus(realized);
    return realized;
  }

  figures(): { holdings: D; unrealized: D; equity: D; unconverted: number; positions: Map<string, { mv: D; upnl: D; rate: D | undefined }> } {
    let holdings = ZERO;
    let unrealized = ZERO;
    let unconverted = 0;
    const positions = new Map<string, { mv: D; upnl: D; rate: D | undefined }>();
    for (const [symbol, p] of this.positions) {
      if (p.position.qty.isZero()) continue;
      const mark = this.ticks.get(symbol) ?? p.tradePrice;
      const rate = this.rateOf(p.currency);
      const mvLocal = p.position.qty.times(mark);
      const upnlLocal = mark.minus(p.position.avg).times(p.position.qty);
      if (rate === undefined) {
        unconverted++;
        positions.set(symbol, { mv: mvLocal, upnl: upnlLocal, rate });
        continue;
      }
      positions.set(symbol, { mv: mvLocal.times(rate), upnl: upnlLocal.times(rate), rate });
      holdings = holdings.plus(mvLocal.times(rate));
      unrealized = unrealized.plus(upnlLocal.times(rate));
    }
    let equity = this.cash.plus(holdings);
    for (const [currency, balance] of this.balances) {
      const rate = this.rateOf(currency);
      if (rate === undefined) unconverted++;
      else equity = equity.plus(balance.times(rate));
    }
    return { holdings, unrealized, equity, unconverted, positions };
  }
}
