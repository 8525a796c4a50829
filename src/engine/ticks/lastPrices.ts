// The main thread's marks, by symbol id: the last price applied and its source time, whether it is
// waiting for the next price flush, and the effective time of the symbol's latest split.

export class LastPrices {
  readonly lastPrice: Float64Array;
  readonly lastPriceTs: Float64Array;
  readonly priceDirty: Uint8Array;
  /** Per symbol id: effective time of its latest split; older ticks are refused (pre_split_tick). */
  readonly splitTs: Float64Array;

  constructor(symbolsMax: number) {
    this.lastPrice = new Float64Array(symbolsMax);
    this.lastPriceTs = new Float64Array(symbolsMax);
    this.priceDirty = new Uint8Array(symbolsMax);
    this.splitTs = new Float64Array(symbolsMax);
  }
}
