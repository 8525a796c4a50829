// The sliced pass over the unwatched rest of a shard's book (watched first, Kernel.revalueRestSlice):
// how stale its rows may be. The kernel sweeps the unwatched portfolios a slice at a time, round-robin,
// and starts a whole lap again from where it stands whenever a batch moves a price, so under a steady
// stream of batches "nothing pending" may never come; what is bounded is the age of the oldest price
// change that some unwatched row has not seen. This table tracks it in rounds: once the sweep has
// covered every portfolio row since a round began, every change older than that round is applied
// everywhere, and the oldest change not known applied is the first batch that arrived during it.
// Batch time only (the `now` of the batches): no clock is read here.

/** What the worker asks after a batch: must the rest be finished now, inline, before the next message? */
export class RestPass {
  /** Batch time of the oldest price change some unwatched row may not have seen; -1: none. */
  private uncoveredSince = -1;
  /** Batches since then (the bound for a batch clock that stands still). */
  private uncoveredBatches = 0;
  /** The kernel's swept-rows count when the current round began. */
  private roundFrom = 0;
  /** The first batch that moved a price during the current round (-1: none), and the batches since. */
  private roundFirstBatch = -1;
  private roundBatches = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly batchesMax: number,
  ) {}

  /** A batch left unwatched rows behind (its prices are pending); `swept` is the kernel's count so far. */
  batch(now: number, swept: number): void {
    if (this.uncoveredSince < 0) {
      this.uncoveredSince = now;
      this.uncoveredBatches = 1;
      this.newRound(swept);
      return;
    }
    this.uncoveredBatches++;
    if (this.roundFirstBatch < 0) this.roundFirstBatch = now;
    this.roundBatches++;
  }

  /**
   * After a slice: `cleared` when nothing is pending any more, else `swept` (portfolio rows swept so
   * far, cumulative) against `portfolios` (a lap) tells whether the round is over.
   */
  slice(swept: number, portfolios: number, cleared: boolean): void {
    if (cleared) {
      this.uncoveredSince = -1;
      this.uncoveredBatches = 0;
      return;
    }
    if (swept - this.roundFrom < portfolios) return;
    // Every portfolio was swept since the round began: what is left is what arrived during it.
    this.uncoveredSince = this.roundFirstBatch;
    this.uncoveredBatches = this.roundBatches;
    this.newRound(swept);
  }

  /** The rest has waited its bound: the worker finishes it inline. */
  due(now: number): boolean {
    return this.uncoveredSince >= 0 && (this.uncoveredBatches >= this.batchesMax || now - this.uncoveredSince >= this.intervalMs);
  }

  private newRound(swept: number): void {
    this.roundFrom = swept;
    this.roundFirstBatch = -1;
    this.roundBatches = 0;
  }
}
