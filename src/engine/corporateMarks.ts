// What a corporate action does to the main thread's prices. The main thread owns last prices (the
// shards get them in tick batches), so it computes the mark a step gives the shards, and commits its own
// side only once every shard applied the step (a step rolled back leaves prices untouched). Recovery
// commits each logged step again, in log order, to the prices loaded from the store.
//
// Split marks: a price printed before the split's effective time (source ts < effective_ts) is a
// pre-split price and is scaled by from/to; the scaled price is stamped effective_ts. So a stored price
// with ts < effective_ts after a split is one whose scaled copy never reached the store (a crash before
// the price flush), and recovery scales it; one with ts >= effective_ts is post-split (scaled, or a
// print after the split) and is left alone. From then on ticks older than effective_ts are refused
// (pre_split_tick): a late pre-split print must not move a post-split mark.

import type { CorporateAction, CorporateStepName } from '../domain/types.js';
import type { Coalescer } from './coalescer.js';
import type { SymbolTable } from './symbols.js';

export interface MainPrices {
  readonly lastPrice: Float64Array;
  readonly lastPriceTs: Float64Array;
  readonly priceDirty: Uint8Array;
  /** Per symbol id: the latest split's effective time; ticks older than it are refused. Bounded by symbolsMax. */
  readonly splitTs: Float64Array;
}

export class CorporateMarks {
  constructor(
    private readonly symbols: SymbolTable,
    private readonly prices: MainPrices,
    private readonly coalescer: Coalescer,
    /** The suspect-tick filter's reference and held price for a symbol follow a split's scale. */
    private readonly rescaleReference: (id: number, factor: number) => void,
  ) {}

  /** The price the shards get with the step (0: none); changes nothing. */
  priceFor(action: CorporateAction, step: CorporateStepName): number {
    const { lastPrice, lastPriceTs } = this.prices;
    if (step === 'split' && action.type === 'split') {
      const id = this.symbols.idOf(action.symbol);
      if (id === undefined || lastPrice[id] <= 0) return 0;
      return lastPriceTs[id] < action.effective_ts ? (lastPrice[id] * action.from) / action.to : lastPrice[id];
    }
    if (step === 'symbol_change' && action.type === 'symbol_change') {
      const from = this.symbols.idOf(action.symbol);
      const to = this.symbols.idOf(action.new_symbol);
      if (from === undefined || (to !== undefined && lastPrice[to] > 0)) return 0;
      return lastPrice[from];
    }
    return 0;
  }

  /** The source ts of the price priceFor gives (a scaled pre-split print is stamped effective_ts). */
  priceTsFor(action: CorporateAction, step: CorporateStepName): number {
    const { lastPriceTs } = this.prices;
    if (step === 'split' && action.type === 'split') {
      const id = this.symbols.idOf(action.symbol);
      return id === undefined ? 0 : Math.max(lastPriceTs[id], action.effective_ts);
    }
    if (step === 'symbol_change' && action.type === 'symbol_change') {
      const from = this.symbols.idOf(action.symbol);
      return from === undefined ? 0 : lastPriceTs[from];
    }
    return 0;
  }

  /** The step's effect on main-thread prices, after every shard applied it (live) or from the log (recovery). */
  commit(action: CorporateAction, step: CorporateStepName): void {
    const { lastPrice, lastPriceTs, priceDirty, splitTs } = this.prices;
    if (step === 'split' && action.type === 'split') {
      const id = this.symbols.intern(action.symbol);
      if (id < 0) return;
      const at = action.effective_ts;
      const factor = action.from / action.to;
      if (splitTs[id] < at) splitTs[id] = at;
      if (lastPrice[id] > 0 && lastPriceTs[id] < at) {
        lastPrice[id] = (lastPrice[id] * action.from) / action.to;
        lastPriceTs[id] = at;
        priceDirty[id] = 1;
        // Same condition: the reference is pre-split exactly when the last price is.
        this.rescaleReference(id, factor);
      }
      this.coalescer.rescalePending(id, factor, at);
      return;
    }
    if (step === 'symbol_change' && action.type === 'symbol_change') {
      const to = this.symbols.intern(action.new_symbol);
      const from = this.symbols.idOf(action.symbol);
      if (to < 0 || from === undefined || lastPrice[to] > 0 || lastPrice[from] <= 0) return;
      lastPrice[to] = lastPrice[from];
      lastPriceTs[to] = lastPriceTs[from];
      priceDirty[to] = 1;
    }
  }
}
