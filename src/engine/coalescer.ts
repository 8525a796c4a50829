// Latest price per symbol between flushes. Ingesting a tick writes three typed-array slots and
// allocates nothing; a flush copies the touched symbols into one batch for the shards.
// A tick older (by source timestamp) than the last one applied for its symbol does not move the mark.

export interface TickBatch {
  n: number;
  syms: Int32Array;
  prices: Float64Array;
  ts: Float64Array;
  /** Arrival time (monotonic ms) of the oldest tick in the batch: the start of its latency. */
  oldestArrivalMs: number;
}

export class Coalescer {
  private readonly price: Float64Array;
  private readonly ts: Float64Array;
  private readonly lastTs: Float64Array;
  private readonly stamp: Uint32Array;
  private readonly list: Int32Array;
  private epoch = 1;
  private oldestArrivalMs = 0;
  count = 0;

  constructor(readonly symbolsMax: number) {
    this.price = new Float64Array(symbolsMax);
    this.ts = new Float64Array(symbolsMax);
    this.lastTs = new Float64Array(symbolsMax);
    this.stamp = new Uint32Array(symbolsMax);
    this.list = new Int32Array(symbolsMax);
  }

  /** Returns false when the tick is older than the symbol's latest and was not applied. */
  add(id: number, price: number, ts: number, arrivalMs: number): boolean {
    if (ts < this.lastTs[id]) return false;
    this.lastTs[id] = ts;
    if (this.stamp[id] !== this.epoch) {
      this.stamp[id] = this.epoch;
      this.list[this.count++] = id;
      if (this.count === 1) this.oldestArrivalMs = arrivalMs;
    }
    this.price[id] = price;
    this.ts[id] = ts;
    return true;
  }

  /** True when a tick this old would not be applied (older than the symbol's latest by source ts). */
  isStale(id: number, ts: number): boolean {
    return ts < this.lastTs[id];
  }

  /**
   * A split applied while a price of the symbol was pending: a pending print older than the split's
   * effective time is pre-split, so it is scaled, and stamped atTs so that nothing scales it again.
   */
  rescalePending(id: number, factor: number, atTs: number): void {
    if (this.stamp[id] !== this.epoch || this.ts[id] >= atTs) return;
    this.price[id] *= factor;
    this.ts[id] = atTs;
    if (this.lastTs[id] < atTs) this.lastTs[id] = atTs;
  }

  /** Restores the last applied timestamp of a symbol (after recovery). */
  seed(id: number, ts: number): void {
    if (ts > this.lastTs[id]) this.lastTs[id] = ts;
  }

  drain(): TickBatch {
    const n = this.count;
    const syms = this.list.slice(0, n);
    const prices = new Float64Array(n);
    const ts = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      prices[k] = this.price[syms[k]];
      ts[k] = this.ts[syms[k]];
    }
    this.count = 0;
    this.epoch = (this.epoch + 1) >>> 0 || 1;
    return { n, syms, prices, ts, oldestArrivalMs: this.oldestArrivalMs };
  }
}
