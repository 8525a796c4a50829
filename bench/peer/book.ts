// The peer's book: what a competent team writes first. Plain objects in Maps, symbols as strings,
// and a portfolio's totals recomputed from all of its positions whenever one of its prices moves.
// Durability is a JSON-lines journal written synchronously before a trade is acknowledged
// (fdatasync'd too in sync mode) and replayed line by line at start. No snapshots, no batching, no
// typed arrays: the straightforward design, implemented carefully (no sleeps, no needless work).
import { closeSync, createReadStream, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { PositionView, Totals } from '../../src/domain/types.js';

export interface PeerPosition {
  symbol: string;
  quantity: number;
  avgCost: number;
  realized: number;
  lastTradePrice: number;
}

export interface PeerPortfolio {
  id: string;
  cash: number;
  capital: number;
  realized: number;
  positions: PeerPosition[];
  seq: number;
}

export interface PeerTrade {
  trade_id: string;
  symbol: string;
  side: 'buy' | 'sell';
  quantity: number;
  price: number;
}

/** Journal lines: a portfolio created, or a trade applied. */
export type PeerEvent = { t: 'c'; id: string; cash: number } | { t: 'x'; p: string; id: string; s: string; side: 'buy' | 'sell'; q: number; px: number };

/** Mark ages (price_ts, stale counts) are left out: the peer only values; that work favours it, not the engine. */
export type Valuation = Omit<Totals, 'stale_positions' | 'unpriced_positions'>;
export type PeerPositionView = Omit<PositionView, 'price_ts' | 'price_age_ms' | 'stale'>;

export class PeerBook {
  readonly portfolios = new Map<string, PeerPortfolio>();
  readonly prices = new Map<string, number>();
  /** symbol -> portfolios holding it (the per-tick fan-out). */
  readonly holders = new Map<string, PeerPortfolio[]>();
  readonly tradeIds = new Set<string>();

  create(id: string, cash: number): PeerPortfolio | null {
    if (this.portfolios.has(id)) return null;
    const p: PeerPortfolio = { id, cash, capital: cash, realized: 0, positions: [], seq: 0 };
    this.portfolios.set(id, p);
    return p;
  }

  /** Applies a trade; false when its trade_id was seen before (idempotent). */
  trade(p: PeerPortfolio, t: PeerTrade): boolean {
    if (this.tradeIds.has(t.trade_id)) return false;
    this.tradeIds.add(t.trade_id);
    let pos = p.positions.find((x) => x.symbol === t.symbol);
    if (pos === undefined) {
      pos = { symbol: t.symbol, quantity: 0, avgCost: 0, realized: 0, lastTradePrice: t.price };
      p.positions.push(pos);
      let list = this.holders.get(t.symbol);
      if (list === undefined) {
        list = [];
        this.holders.set(t.symbol, list);
      }
      list.push(p);
    }
    const signed = t.side === 'buy' ? t.quantity : -t.quantity;
    const q = pos.quantity;
    if (q === 0 || Math.sign(q) === Math.sign(signed)) {
      pos.avgCost = (Math.abs(q) * pos.avgCost + t.quantity * t.price) / (Math.abs(q) + t.quantity);
    } else {
      const closing = Math.min(Math.abs(q), t.quantity);
      const pnl = closing * (t.price - pos.avgCost) * Math.sign(q);
      pos.realized += pnl;
      p.realized += pnl;
      if (t.quantity > Math.abs(q)) pos.avgCost = t.price;
      else if (t.quantity === Math.abs(q)) pos.avgCost = 0;
    }
    pos.quantity = q + signed;
    pos.lastTradePrice = t.price;
    p.cash -= signed * t.price;
    return true;
  }

  priceOf(pos: PeerPosition): number {
    return this.prices.get(pos.symbol) ?? pos.lastTradePrice;
  }

  /** Totals from scratch: every position of the portfolio, every time. */
  value(p: PeerPortfolio): Valuation {
    let holdings = 0;
    let cost = 0;
    let gross = 0;
    for (const pos of p.positions) {
      const mv = pos.quantity * this.priceOf(pos);
      holdings += mv;
      cost += pos.quantity * pos.avgCost;
      gross += Math.abs(mv);
    }
    const unrealized = holdings - cost;
    const totalReturn = p.realized + unrealized;
    return {
      cash: p.cash,
      capital: p.capital,
      holdings_value: holdings,
      cost_basis: cost,
      unrealized_pnl: unrealized,
      realized_pnl: p.realized,
      total_return: totalReturn,
      return_rate: p.capital !== 0 ? (totalReturn / p.capital) * 100 : 0,
      equity: p.cash + holdings,
      gross_exposure: gross,
      // The peer is single-currency: every position is in the base currency.
      unconverted_positions: 0,
    };
  }

  view(pos: PeerPosition, gross: number): PeerPositionView {
    const price = this.priceOf(pos);
    const mv = pos.quantity * price;
    const cost = pos.quantity * pos.avgCost;
    return {
      symbol: pos.symbol,
      currency: 'USD',
      fx_rate: 1,
      quantity: pos.quantity,
      avg_cost: pos.avgCost,
      last_price: price,
      market_value: mv,
      unrealized_pnl: mv - cost,
      realized_pnl: pos.realized,
      return_rate: cost !== 0 ? ((mv - cost) / Math.abs(cost)) * 100 : 0,
      weight: gross !== 0 ? (Math.abs(mv) / gross) * 100 : 0,
    };
  }

  apply(e: PeerEvent): void {
    if (e.t === 'c') this.create(e.id, e.cash);
    else {
      const p = this.portfolios.get(e.p);
      if (p !== undefined) this.trade(p, { trade_id: e.id, symbol: e.s, side: e.side, quantity: e.q, price: e.px });
    }
  }
}

/** Append-only JSON lines; each append is written (and fdatasync'd in sync mode) before it returns. */
export class PeerJournal {
  private fd: number;

  constructor(
    readonly path: string,
    readonly sync: boolean,
  ) {
    this.fd = openSync(path, 'a');
  }

  append(e: PeerEvent): void {
    writeSync(this.fd, JSON.stringify(e) + '\n');
    if (this.sync) fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Rebuilds a book from a journal, line by line. Returns the number of events replayed. */
export async function replay(book: PeerBook, path: string): Promise<number> {
  let n = 0;
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.length === 0) continue;
    book.apply(JSON.parse(line) as PeerEvent);
    n++;
  }
  return n;
}
