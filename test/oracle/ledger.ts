// The exact oracle: an independent model of the accounting rules of the issue ("Core engine"), written
// from the rules alone. It imports nothing from src/ on purpose: a bug copied from the engine into its
// own oracle would be invisible. Numbers are converted with new Decimal(x), i.e. through the shortest
// decimal that round-trips the double (what the user meant), and all arithmetic is decimal with 60
// significant digits: sums and products of inputs are exact; the divisions (the average cost, the
// ratios) round at the 60th significant digit, some 45 orders of magnitude below the tolerance.
//
// The Ledger only records what happened (an append-only history). Every figure is produced by
// replaying the whole history from scratch each time one is asked for: there is no incremental state
// to get out of step. Simplicity over speed (see LedgerOptions for the one, opt-in, shortcut).
// The replay never mutates a recorded event; figures() only reads the replayed state.

import { Decimal as BaseDecimal } from 'decimal.js';

/** The oracle's decimal: 60 significant digits. */
export const Dec = BaseDecimal.clone({ precision: 60, rounding: BaseDecimal.ROUND_HALF_EVEN });
export type Dec = BaseDecimal;

const ZERO = new Dec(0);
const HUNDRED = new Dec(100);

export type LedgerSide = 'buy' | 'sell';

export interface LedgerTrade {
  symbol: string;
  side: LedgerSide;
  quantity: number;
  price: number;
  fee?: number;
}

/** A trade as recorded: its numbers already converted (once) to decimals. */
interface ExactTrade {
  symbol: string;
  side: LedgerSide;
  quantity: Dec;
  price: Dec;
  fee: Dec;
  /** quantity * price: exact (a product of two short decimals), computed once. */
  notional: Dec;
}

type LedgerEvent =
  | { kind: 'create'; portfolio: string; cash: Dec }
  | { kind: 'trade'; portfolio: string; trade: ExactTrade }
  | { kind: 'deposit'; portfolio: string; amount: Dec }
  | { kind: 'withdraw'; portfolio: string; amount: Dec }
  | { kind: 'tick'; symbol: string; price: Dec };

/** Every figure of one position. A position that was traded and is flat again keeps its realized P&L. */
export interface PositionFigures {
  symbol: string;
  /** Signed (negative = short). */
  quantity: Dec;
  /** Average entry price of the open quantity; 0 when flat. */
  avg_cost: Dec;
  last_price: Dec;
  market_value: Dec;
  unrealized_pnl: Dec;
  /** Realized on this symbol, fees included as negative P&L. */
  realized_pnl: Dec;
  return_rate: Dec;
  weight: Dec;
}

export interface PortfolioFigures {
  id: string;
  cash: Dec;
  capital: Dec;
  holdings_value: Dec;
  cost_basis: Dec;
  unrealized_pnl: Dec;
  realized_pnl: Dec;
  total_return: Dec;
  return_rate: Dec;
  equity: Dec;
  /** sum(|market_value|), the denominator of the weights. */
  gross_exposure: Dec;
  /** Every symbol this portfolio ever traded, in first-traded order (flat ones with quantity 0). */
  positions: PositionFigures[];
  trades: number;
}

function dec(x: number, what: string): Dec {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new RangeError(`${what} must be a finite number, got ${x}`);
  return new Dec(x);
}

/** Replay state of one position: quantities and prices exact. */
interface Lot {
  qty: Dec;
  avg: Dec;
  realized: Dec;
  lastTrade: Dec;
}

interface Book {
  cash: Dec;
  capital: Dec;
  realized: Dec;
  lots: Map<string, Lot>;
  trades: number;
}

type PortfolioEvent = Exclude<LedgerEvent, { kind: 'tick' }>;

export interface LedgerOptions {
  /**
   * Reuse a portfolio's last replay while none of its own events were added since (ticks do not
   * enter the replay: marks are always re-read from the whole tick history). The history is
   * append-only and the replay a pure function of it, so the reused result is the one a new replay
   * would produce; this only turns the O(n^2) cost of "check after every step" into O(n^2 / P) for
   * P portfolios. Off by default: the default is the plain replay of everything on every ask.
   */
  reuseUnchangedReplays?: boolean;
}

export class Ledger {
  private readonly history: LedgerEvent[] = [];
  /** Each portfolio's own events, in order (a view of the same history, without the ticks). */
  private readonly byPortfolio = new Map<string, PortfolioEvent[]>();
  private readonly reuse: boolean;
  private readonly replayed = new Map<string, { events: number; book: Book }>();

  constructor(options: LedgerOptions = {}) {
    this.reuse = options.reuseUnchangedReplays ?? false;
  }

  /** Number of events recorded (trades, cash operations, ticks, creations). */
  get length(): number {
    return this.history.length;
  }

  createPortfolio(id: string, cash = 0): void {
    if (this.byPortfolio.has(id)) throw new RangeError(`portfolio ${id} exists`);
    const exact = dec(cash, 'cash');
    if (exact.isNeg()) throw new RangeError('cash must be >= 0');
    this.byPortfolio.set(id, []);
    this.record({ kind: 'create', portfolio: id, cash: exact });
  }

  trade(portfolio: string, trade: LedgerTrade): void {
    this.known(portfolio);
    if (trade.side !== 'buy' && trade.side !== 'sell') throw new RangeError(`side must be buy or sell, got ${String(trade.side)}`);
    const quantity = dec(trade.quantity, 'quantity');
    if (!quantity.gt(0)) throw new RangeError('quantity must be > 0');
    if (quantity.decimalPlaces() > 8) throw new RangeError(`quantity ${quantity.toString()} has more than 8 decimal places`);
    const price = dec(trade.price, 'price');
    if (!price.gt(0)) throw new RangeError('price must be > 0');
    const fee = trade.fee === undefined ? ZERO : dec(trade.fee, 'fee');
    if (fee.isNeg()) throw new RangeError('fee must be >= 0');
    this.record({ kind: 'trade', portfolio, trade: { symbol: trade.symbol, side: trade.side, quantity, price, fee, notional: quantity.times(price) } });
  }

  deposit(portfolio: string, amount: number): void {
    this.known(portfolio);
    const exact = dec(amount, 'amount');
    if (!exact.gt(0)) throw new RangeError('amount must be > 0');
    this.record({ kind: 'deposit', portfolio, amount: exact });
  }

  withdraw(portfolio: string, amount: number): void {
    this.known(portfolio);
    const exact = dec(amount, 'amount');
    if (!exact.gt(0)) throw new RangeError('amount must be > 0');
    this.record({ kind: 'withdraw', portfolio, amount: exact });
  }

  tick(symbol: string, price: number): void {
    const exact = dec(price, 'price');
    if (!exact.gt(0)) throw new RangeError('tick price must be > 0');
    this.record({ kind: 'tick', symbol, price: exact });
  }

  portfolioIds(): string[] {
    return [...this.byPortfolio.keys()];
  }

  /** Every figure of one portfolio, recomputed from the whole history. */
  portfolio(id: string): PortfolioFigures {
    this.known(id);
    return figures(id, this.replay(id), this.marks());
  }

  /** Every figure of every portfolio, recomputed from the whole history. */
  all(): Map<string, PortfolioFigures> {
    const marks = this.marks();
    const out = new Map<string, PortfolioFigures>();
    for (const id of this.byPortfolio.keys()) out.set(id, figures(id, this.replay(id), marks));
    return out;
  }

  /** One position's figures (undefined if the portfolio never traded the symbol). */
  position(portfolio: string, symbol: string): PositionFigures | undefined {
    return this.portfolio(portfolio).positions.find((p) => p.symbol === symbol);
  }

  private record(e: LedgerEvent): void {
    this.history.push(e);
    if (e.kind !== 'tick') (this.byPortfolio.get(e.portfolio) as PortfolioEvent[]).push(e);
  }

  private known(id: string): void {
    if (!this.byPortfolio.has(id)) throw new RangeError(`unknown portfolio ${id}`);
  }

  /** Latest tick price per symbol, from the whole history; a symbol absent here was never ticked. */
  private marks(): Map<string, Dec> {
    const ticks = new Map<string, Dec>();
    for (const e of this.history) if (e.kind === 'tick') ticks.set(e.symbol, e.price);
    return ticks;
  }

  /** Replays one portfolio's events from its creation: cash, capital, realized P&L and lots. */
  private replay(id: string): Book {
    const events = this.byPortfolio.get(id) as PortfolioEvent[];
    const last = this.replayed.get(id);
    if (this.reuse && last !== undefined && last.events === events.length) return last.book;
    let book: Book | undefined;
    for (const e of events) {
      if (e.kind === 'create') {
        book = { cash: e.cash, capital: e.cash, realized: ZERO, lots: new Map(), trades: 0 };
        continue;
      }
      if (book === undefined) throw new Error(`unreachable: ${id} has events before its creation`);
      if (e.kind === 'deposit') {
        book.cash = book.cash.plus(e.amount);
        book.capital = book.capital.plus(e.amount);
      } else if (e.kind === 'withdraw') {
        book.cash = book.cash.minus(e.amount);
        book.capital = book.capital.minus(e.amount);
      } else {
        applyTrade(book, e.trade);
      }
    }
    if (book === undefined) throw new Error(`unreachable: ${id} was never created`);
    if (this.reuse) this.replayed.set(id, { events: events.length, book });
    return book;
  }
}

/** The average-cost rules, exactly. */
function applyTrade(book: Book, t: ExactTrade): void {
  const { quantity: qty, price, fee, notional } = t;
  let lot = book.lots.get(t.symbol);
  if (lot === undefined) {
    lot = { qty: ZERO, avg: ZERO, realized: ZERO, lastTrade: price };
    book.lots.set(t.symbol, lot);
  }
  const signed = t.side === 'buy' ? qty : qty.neg();
  const held = lot.qty;
  let realized = ZERO;
  if (held.isZero() || held.isPos() === signed.isPos()) {
    // Opening or adding: the new average is the quantity-weighted mean of the entry prices.
    const heldAbs = held.abs();
    lot.avg = held.isZero() ? price : heldAbs.times(lot.avg).plus(notional).div(heldAbs.plus(qty));
    lot.qty = held.plus(signed);
  } else {
    // Reducing: closes min(|held|, qty) at (price - avg) for a long, (avg - price) for a short.
    const closedQty = Dec.min(held.abs(), qty);
    const perUnit = held.isPos() ? price.minus(lot.avg) : lot.avg.minus(price);
    realized = perUnit.times(closedQty);
    const rest = held.plus(signed);
    if (rest.isZero()) lot.avg = ZERO; // closed
    else if (rest.isPos() !== held.isPos()) lot.avg = price; // flipped: the remainder opens at the trade price
    // otherwise a partial reduction: the average of the rest is unchanged
    lot.qty = rest;
  }
  if (!fee.isZero()) realized = realized.minus(fee);
  lot.realized = lot.realized.plus(realized);
  lot.lastTrade = price;
  book.realized = book.realized.plus(realized);
  book.cash = t.side === 'buy' ? book.cash.minus(notional.plus(fee)) : book.cash.plus(notional.minus(fee));
  book.trades++;
}

function figures(id: string, book: Book, ticks: Map<string, Dec>): PortfolioFigures {
  const positions: PositionFigures[] = [];
  let holdings = ZERO;
  let cost = ZERO;
  let upnl = ZERO;
  let gross = ZERO;
  for (const [symbol, lot] of book.lots) {
    const tick = ticks.get(symbol);
    const last = tick ?? lot.lastTrade;
    const mv = lot.qty.times(last);
    const u = last.minus(lot.avg).times(lot.qty);
    const c = lot.qty.abs().times(lot.avg);
    positions.push({
      symbol,
      quantity: lot.qty,
      avg_cost: lot.avg,
      last_price: last,
      market_value: mv,
      unrealized_pnl: u,
      realized_pnl: lot.realized,
      return_rate: c.isZero() ? ZERO : u.div(c).times(HUNDRED),
      weight: ZERO, // set below, once the gross exposure is known
    });
    holdings = holdings.plus(mv);
    cost = cost.plus(c);
    upnl = upnl.plus(u);
    gross = gross.plus(mv.abs());
  }
  for (const p of positions) p.weight = gross.isZero() ? ZERO : p.market_value.abs().div(gross).times(HUNDRED);
  const totalReturn = book.realized.plus(upnl);
  const base = !book.capital.isZero() ? book.capital : cost;
  return {
    id,
    cash: book.cash,
    capital: book.capital,
    holdings_value: holdings,
    cost_basis: cost,
    unrealized_pnl: upnl,
    realized_pnl: book.realized,
    total_return: totalReturn,
    return_rate: base.isZero() ? ZERO : totalReturn.div(base).times(HUNDRED),
    equity: book.cash.plus(holdings),
    gross_exposure: gross,
    positions,
    trades: book.trades,
  };
}
