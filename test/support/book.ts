// An incremental book driven exactly the way an engine shard drives the accounting core and the
// kernel: validate at the boundary, applyFill on the position, fold realized P&L and the cash delta
// into the portfolio, write the position row (setPosition), the portfolio's cash and realized P&L
// (pfCash, pfRealized), then recompute the portfolio; ticks go through batchSym/batchPrice + revalue.
// One kernel position row per (portfolio, symbol), created on the first trade of that symbol.
// Figures are then read back as the shard reports them: marks, market values, unrealized P&L and the
// sums from the kernel's columns; per-position return rate and weight, capital and the portfolio's
// return rate derived from them in float64, with the formulas of src/shard/views.ts. Tests compare all
// of it with the exact oracle.

import { applyFill, flatPosition, quantityOf, type TradeOutcome } from '../../src/domain/accounting.js';
import type { CashInput, PortfolioState, PositionView, TickInput, Totals, TradeInput } from '../../src/domain/types.js';
import { priceError, validateCash, validateCreatePortfolio, validateTrade } from '../../src/domain/validate.js';
import { createKernel, Kernel } from '../../src/kernel/index.js';
import { JsBackend } from '../../src/kernel/jsBackend.js';
import type { KernelLimits } from '../../src/kernel/kernel.js';

/**
 * Which JS kernel: 'js' is createKernel('js') with the production choice between the per-symbol walk
 * and the portfolio sweep; 'js-walk' and 'js-sweep' force one path for every tick batch.
 */
export type KernelChoice = 'js' | 'js-walk' | 'js-sweep';

export const testKernelLimits: KernelLimits = { positionsMax: 1_000_000, portfoliosMax: 100_000, symbolsMax: 100_000 };

interface Held {
  state: PortfolioState;
  /** Kernel portfolio row. */
  row: number;
  /** Kernel position row per symbol. */
  rows: Map<string, number>;
}

export class IncrementalBook {
  readonly kernel: Kernel;
  private readonly symbolIds = new Map<string, number>();
  private readonly held = new Map<string, Held>();

  constructor(
    readonly choice: KernelChoice = 'js',
    limits: KernelLimits = testKernelLimits,
  ) {
    if (choice === 'js') this.kernel = createKernel('js', limits);
    else this.kernel = new Kernel(new JsBackend(choice === 'js-walk' ? 'never' : 'always'), limits);
  }

  createPortfolio(id: string, cash = 0): void {
    const v = validateCreatePortfolio({ id, cash });
    if (!v.ok) throw new Error(`createPortfolio ${id}: ${v.error.message}`);
    if (this.held.has(id)) throw new Error(`portfolio ${id} exists`);
    const row = this.kernel.addPortfolio();
    const state: PortfolioState = { id, name: '', cash: v.value.cash, capital: v.value.cash, realized_pnl: 0, limits: {}, positions: {}, trades: 0 };
    this.kernel.cols.pfCash[row] = state.cash;
    this.kernel.cols.pfRealized[row] = 0;
    this.kernel.recompute(row);
    this.held.set(id, { state, row, rows: new Map() });
  }

  /** Applies one trade as the shard does; throws on input the engine would reject. */
  trade(id: string, input: TradeInput): TradeOutcome {
    const h = this.get(id);
    const v = validateTrade(input, 0);
    if (!v.ok) throw new Error(`trade rejected: ${v.error.message}`);
    const t = v.value;
    const before = h.state.positions[t.symbol] ?? flatPosition;
    const outcome = applyFill(before, { side: t.side, units: t.units, price: t.price, fee: t.fee });
    h.state.positions[t.symbol] = outcome.position;
    h.state.cash += outcome.cashDelta;
    h.state.realized_pnl += outcome.realized;
    h.state.trades++;
    let p = h.rows.get(t.symbol);
    if (p === undefined) {
      p = this.kernel.addPosition(h.row, this.symbolId(t.symbol));
      h.rows.set(t.symbol, p);
    }
    const pos = outcome.position;
    this.kernel.setPosition(p, quantityOf(pos.units), pos.avg_cost, pos.last_trade_price);
    this.kernel.cols.pfCash[h.row] = h.state.cash;
    this.kernel.cols.pfRealized[h.row] = h.state.realized_pnl;
    this.kernel.recompute(h.row);
    return outcome;
  }

  cash(id: string, op: CashInput): void {
    const h = this.get(id);
    const v = validateCash(op);
    if (!v.ok) throw new Error(`cash rejected: ${v.error.message}`);
    const signed = v.value.type === 'deposit' ? v.value.amount : -v.value.amount;
    h.state.cash += signed;
    h.state.capital += signed;
    this.kernel.cols.pfCash[h.row] = h.state.cash;
    this.kernel.recompute(h.row);
  }

  /**
   * One tick batch in arrival order (a symbol may repeat: the kernel applies entries in order, so the
   * last one wins), then one revalue per kernel batch. Symbol rows are resolved before the batch is
   * written because ensureSymbol may grow the kernel, and growth does not carry batch entries over.
   */
  ticks(batch: readonly TickInput[]): void {
    for (const t of batch) {
      if (priceError(t.price) !== null) throw new Error(`tick rejected: price ${t.price}`);
    }
    const ids = batch.map((t) => this.symbolId(t.symbol));
    const cap = this.kernel.batchCapacity;
    const c = this.kernel.cols;
    let n = 0;
    for (let i = 0; i < batch.length; i++) {
      c.batchSym[n] = ids[i];
      c.batchPrice[n] = batch[i].price;
      if (++n === cap) {
        this.kernel.revalue(n);
        n = 0;
      }
    }
    if (n > 0) this.kernel.revalue(n);
  }

  state(id: string): PortfolioState {
    return this.get(id).state;
  }

  ids(): string[] {
    return [...this.held.keys()];
  }

  /** Kernel position row of (portfolio, symbol), if the portfolio ever traded it. */
  positionRow(id: string, symbol: string): number | undefined {
    return this.get(id).rows.get(symbol);
  }

  portfolioRow(id: string): number {
    return this.get(id).row;
  }

  totals(id: string): Totals {
    const h = this.get(id);
    const c = this.kernel.cols;
    const f = h.row;
    const holdings = c.pfHoldings[f];
    const cost = c.pfCostBasis[f];
    const upnl = c.pfUpnl[f];
    const realized = c.pfRealized[f];
    const totalReturn = realized + upnl;
    const capital = h.state.capital;
    const base = capital !== 0 ? capital : cost;
    return {
      cash: c.pfCash[f],
      capital,
      holdings_value: holdings,
      cost_basis: cost,
      unrealized_pnl: upnl,
      realized_pnl: realized,
      total_return: totalReturn,
      return_rate: base !== 0 ? (totalReturn / base) * 100 : 0,
      equity: c.pfCash[f] + holdings,
      gross_exposure: c.pfGross[f],
    };
  }

  /** Every position the portfolio ever traded (flat ones with quantity 0), in first-traded order. */
  positions(id: string): PositionView[] {
    const h = this.get(id);
    const c = this.kernel.cols;
    const gross = c.pfGross[h.row];
    const out: PositionView[] = [];
    for (const [symbol, p] of h.rows) {
      const q = c.posQty[p];
      const avg = c.posAvg[p];
      const mv = c.posMv[p];
      const upnl = c.posUpnl[p];
      const cost = Math.abs(q) * avg;
      out.push({
        symbol,
        quantity: q,
        avg_cost: avg,
        last_price: c.posMark[p],
        market_value: mv,
        unrealized_pnl: upnl,
        realized_pnl: h.state.positions[symbol]?.realized_pnl ?? 0,
        return_rate: cost !== 0 ? (upnl / cost) * 100 : 0,
        weight: gross > 0 ? (Math.abs(mv) / gross) * 100 : 0,
      });
    }
    return out;
  }

  private get(id: string): Held {
    const h = this.held.get(id);
    if (h === undefined) throw new Error(`unknown portfolio ${id}`);
    return h;
  }

  private symbolId(symbol: string): number {
    let s = this.symbolIds.get(symbol);
    if (s === undefined) {
      s = this.symbolIds.size;
      this.kernel.ensureSymbol(s);
      this.symbolIds.set(symbol, s);
    }
    return s;
  }
}
