// The exact oracle for instruments and currencies (issue 19), written from the rules alone. It
// imports nothing from src/: decimals all the way (60 significant digits, test/oracle/ledger.ts's Dec).
//
// Rules modelled:
// - an instrument has a multiplier m and a quote currency Q (a symbol never defined: m = 1, Q = the
//   trade's currency or the book's base B); prices and avg_cost are in points, as quoted;
// - average cost per position; a trade moves cash (in Q) by -(q x price x m + fee) on a buy and
//   +(q x price x m - fee) on a sell; realized = (price - avg) x closed x m (short: avg - price), minus
//   the fee, converted to B at the trade's rate;
// - market_value = q x last x m x rate, unrealized = (last - avg) x q x m x rate, cost basis =
//   |q| x avg x m x rate, weight = |mv| / sum |mv| x 100; last = the latest tick, else the last trade;
// - rate Q -> B: QB if it ever ticked, else 1 / BQ, else (QP or 1/PQ) x (PB or 1/BP) through the pivot
//   P; none: the position (or balance) is left out of every total;
// - cash per currency: B is `cash`, others `cash_balances`; equity = cash + sum(balance x rate) +
//   holdings; a foreign deposit (withdrawal) adds (subtracts) amount x the rate of the day to capital;
//   a conversion moves amount out of one balance and amount x rate into another, capital unchanged;
// - return_rate = total_return / capital x 100 (else / cost basis, else 0).

import { Dec } from './ledger.js';

const ZERO = new Dec(0);
const ONE = new Dec(1);
const HUNDRED = new Dec(100);

export interface OracleInstrument {
  multiplier: number;
  currency: string;
}

interface Position {
  qty: Dec;
  avg: Dec;
  realized: Dec;
  lastTrade: Dec;
  multiplier: Dec;
  currency: string;
}

interface Book {
  base: string;
  capital: Dec;
  realized: Dec;
  /** Cash by currency, the base included. */
  cash: Map<string, Dec>;
  positions: Map<string, Position>;
}

export interface InstrumentPositionFigures {
  symbol: string;
  currency: string;
  /** null: no rate path priced yet. */
  fx_rate: Dec | null;
  quantity: Dec;
  avg_cost: Dec;
  last_price: Dec;
  market_value: Dec;
  unrealized_pnl: Dec;
  realized_pnl: Dec;
  return_rate: Dec;
  weight: Dec;
}

export interface InstrumentBookFigures {
  cash: Dec;
  cash_balances: Map<string, Dec>;
  capital: Dec;
  holdings_value: Dec;
  cost_basis: Dec;
  unrealized_pnl: Dec;
  realized_pnl: Dec;
  total_return: Dec;
  return_rate: Dec;
  equity: Dec;
  gross_exposure: Dec;
  unconverted_positions: number;
  positions: InstrumentPositionFigures[];
}

export class InstrumentOracle {
  private readonly instruments = new Map<string, { multiplier: Dec; currency: string }>();
  private readonly ticks = new Map<string, Dec>();
  private readonly books = new Map<string, Book>();

  constructor(readonly pivot = 'USD') {}

  define(symbol: string, i: OracleInstrument): void {
    this.instruments.set(symbol, { multiplier: new Dec(i.multiplier), currency: i.currency });
  }

  createBook(id: string, base: string, cash: number): void {
    this.books.set(id, { base, capital: new Dec(cash), realized: ZERO, cash: new Map([[base, new Dec(cash)]]), positions: new Map() });
  }

  tick(symbol: string, price: number): void {
    this.ticks.set(symbol, new Dec(price));
  }

  /** Q -> B by the rule, or null when no path has a price. */
  rate(quote: string, base: string): Dec | null {
    if (quote === base) return ONE;
    const leg = (from: string, to: string): Dec | null => {
      const direct = this.ticks.get(from + to);
      if (direct !== undefined) return direct;
      const inverse = this.ticks.get(to + from);
      return inverse === undefined ? null : ONE.div(inverse);
    };
    const straight = leg(quote, base);
    if (straight !== null) return straight;
    if (quote === this.pivot || base === this.pivot) return null;
    const a = leg(quote, this.pivot);
    const b = leg(this.pivot, base);
    return a === null || b === null ? null : a.times(b);
  }

  /** The currency a trade of `symbol` is in for this book: the instrument's, else the given one, else the base. */
  currencyOf(id: string, symbol: string, given?: string): string {
    return this.instruments.get(symbol)?.currency ?? given ?? this.book(id).base;
  }

  /** Books a trade at `fxRate` (the rate of the day when absent). Returns the realized P&L in the base. */
  trade(id: string, t: { symbol: string; side: 'buy' | 'sell'; quantity: number; price: number; fee?: number; currency?: string; fxRate?: number }): Dec {
    const book = this.book(id);
    const instrument = this.instruments.get(t.symbol);
    const multiplier = instrument?.multiplier ?? ONE;
    const currency = this.currencyOf(id, t.symbol, t.currency);
    const rate = t.fxRate !== undefined ? new Dec(t.fxRate) : this.rate(currency, book.base);
    if (rate === null) throw new RangeError(`no ${currency} -> ${book.base} rate for the trade`);
    const qty = new Dec(t.quantity);
    const price = new Dec(t.price);
    const fee = new Dec(t.fee ?? 0);
    let p = book.positions.get(t.symbol);
    if (p === undefined) {
      p = { qty: ZERO, avg: ZERO, realized: ZERO, lastTrade: price, multiplier, currency };
      book.positions.set(t.symbol, p);
    }
    p.multiplier = multiplier;
    const signed = t.side === 'buy' ? qty : qty.neg();
    let local = ZERO;
    if (p.qty.isZero() || p.qty.isPos() === signed.isPos()) {
      const held = p.qty.abs();
      p.avg = p.qty.isZero() ? price : held.times(p.avg).plus(qty.times(price)).div(held.plus(qty));
      p.qty = p.qty.plus(signed);
    } else {
      const closed = Dec.min(p.qty.abs(), qty);
      const perUnit = p.qty.isPos() ? price.minus(p.avg) : p.avg.minus(price);
      local = perUnit.times(closed).times(multiplier);
      const rest = p.qty.plus(signed);
      if (rest.isZero()) p.avg = ZERO;
      else if (rest.isPos() !== p.qty.isPos()) p.avg = price;
      p.qty = rest;
    }
    local = local.minus(fee);
    const realized = local.times(rate);
    p.realized = p.realized.plus(realized);
    p.lastTrade = price;
    book.realized = book.realized.plus(realized);
    const notional = qty.times(price).times(multiplier);
    const delta = t.side === 'buy' ? notional.plus(fee).neg() : notional.minus(fee);
    this.move(book, currency, delta);
    return realized;
  }

  /**
   * A contract adjustment: the instrument's multiplier becomes `multiplier` and every holding keeps
   * quantity x multiplier, its quantity truncated toward zero to 8 decimals; prices stay in points.
   */
  adjust(symbol: string, multiplier: number): void {
    const m = new Dec(multiplier);
    const i = this.instruments.get(symbol);
    if (i !== undefined) i.multiplier = m;
    for (const book of this.books.values()) {
      const p = book.positions.get(symbol);
      if (p === undefined) continue;
      p.qty = p.qty.times(p.multiplier).div(m).toDecimalPlaces(8, Dec.ROUND_DOWN);
      p.multiplier = m;
      if (p.qty.isZero()) p.avg = ZERO;
    }
  }

  /** A deposit (withdrawal: negative amount) in `currency`; capital moves by its value at the rate of the day. */
  cash(id: string, amount: number, currency?: string): void {
    const book = this.book(id);
    const c = currency ?? book.base;
    const rate = this.rate(c, book.base);
    if (rate === null) throw new RangeError(`no ${c} -> ${book.base} rate for the cash move`);
    const a = new Dec(amount);
    this.move(book, c, a);
    book.capital = book.capital.plus(a.times(rate));
  }

  convert(id: string, from: string, to: string, amount: number, rate: number): void {
    const book = this.book(id);
    const a = new Dec(amount);
    this.move(book, from, a.neg());
    this.move(book, to, a.times(new Dec(rate)));
  }

  balance(id: string, currency: string): Dec {
    return this.book(id).cash.get(currency) ?? ZERO;
  }

  /** Signed quantity held (0 when never traded). */
  quantity(id: string, symbol: string): Dec {
    return this.book(id).positions.get(symbol)?.qty ?? ZERO;
  }

  figures(id: string): InstrumentBookFigures {
    const book = this.book(id);
    const positions: InstrumentPositionFigures[] = [];
    let holdings = ZERO;
    let cost = ZERO;
    let upnl = ZERO;
    let gross = ZERO;
    let unconverted = 0;
    for (const [symbol, p] of book.positions) {
      if (p.qty.isZero()) continue;
      const last = this.ticks.get(symbol) ?? p.lastTrade;
      const rate = this.rate(p.currency, book.base);
      const exposure = p.qty.times(p.multiplier);
      const r = rate ?? ONE;
      const mv = exposure.times(last).times(r);
      const u = last.minus(p.avg).times(exposure).times(r);
      const c = exposure.abs().times(p.avg).times(r);
      positions.push({ symbol, currency: p.currency, fx_rate: rate, quantity: p.qty, avg_cost: p.avg, last_price: last, market_value: mv, unrealized_pnl: u, realized_pnl: p.realized, return_rate: c.isZero() ? ZERO : u.div(c).times(HUNDRED), weight: ZERO });
      if (rate === null) {
        unconverted++;
        continue;
      }
      holdings = holdings.plus(mv);
      cost = cost.plus(c);
      upnl = upnl.plus(u);
      gross = gross.plus(mv.abs());
    }
    for (const p of positions) p.weight = gross.isZero() || p.fx_rate === null ? ZERO : p.market_value.abs().div(gross).times(HUNDRED);
    let cashInBase = ZERO;
    const balances = new Map<string, Dec>();
    for (const [currency, amount] of book.cash) {
      if (currency !== book.base) balances.set(currency, amount);
      const rate = this.rate(currency, book.base);
      if (rate === null) unconverted++;
      else cashInBase = cashInBase.plus(amount.times(rate));
    }
    const totalReturn = book.realized.plus(upnl);
    const over = !book.capital.isZero() ? book.capital : cost;
    return {
      cash: book.cash.get(book.base) ?? ZERO,
      cash_balances: balances,
      capital: book.capital,
      holdings_value: holdings,
      cost_basis: cost,
      unrealized_pnl: upnl,
      realized_pnl: book.realized,
      total_return: totalReturn,
      return_rate: over.isZero() ? ZERO : totalReturn.div(over).times(HUNDRED),
      equity: cashInBase.plus(holdings),
      gross_exposure: gross,
      unconverted_positions: unconverted,
      positions,
    };
  }

  private move(book: Book, currency: string, delta: Dec): void {
    book.cash.set(currency, (book.cash.get(currency) ?? ZERO).plus(delta));
  }

  private book(id: string): Book {
    const b = this.books.get(id);
    if (b === undefined) throw new RangeError(`unknown book ${id}`);
    return b;
  }
}
