// What a revaluation kernel must provide. The TypeScript reference (jsBackend.ts) and the
// AssemblyScript/WASM kernel (wasmBackend.ts over assembly/kernel.ts) implement the same contract
// over the same columns (layout.ts), so a differential test can hold them bit-for-bit equal.

import type { Layout } from './layout.js';

export type KernelKind = 'wasm' | 'js';

export interface KernelBackend {
  readonly kind: KernelKind;
  /**
   * Returns a buffer of at least `bytes` bytes for the new layout. The caller has already copied out
   * what it keeps and rewrites everything after this call; the old buffer and its views are dead.
   */
  resize(bytes: number): ArrayBuffer;
  /** Called after every resize, once the header and the columns of `layout` are written. */
  bind(buffer: ArrayBuffer, layout: Layout): void;
  /**
   * Applies the first `n` entries of batchSym/batchPrice: each changed symbol price revalues the
   * positions it prices (mark, mv, upnl) and the positions it converts (fx, mv, upnl), every
   * portfolio holding one is recomputed from its positions and
   * checked against its limits. Writes pfDirty[0..dirtyCount) in first-touched order and
   * pfBreach[0..breachCount) plus the header's dirtyCount, breachCount and touched. Returns dirtyCount.
   */
  revalue(n: number): number;
  /**
   * Watched first, the batch's first pass: applies batchSym/batchPrice[0, n) to the symbol prices like
   * revalue, but revalues (and recomputes, checks, lists dirty) only the portfolios flagged
   * FLAG_WATCHED; every changed symbol is counted in symPending for revalueRest. watchedRows (the rows
   * of the watched portfolios, an estimate given alike to both backends) picks the path: the changed
   * symbols' lists or a sweep of the watch list. Returns dirtyCount.
   */
  revalueWatched(n: number, watchedRows: number): number;
  /**
   * The pass over the rest: revalues the unwatched portfolios' rows of every symbol pending since the
   * last call at its current price (recomputed, checked, listed dirty as revalue does), then clears
   * the pending symbols. Returns dirtyCount.
   */
  revalueRest(): number;
  /**
   * One slice of the pass over the rest: sweeps the unwatched portfolios of rows [from, to) against
   * symPending at current prices (recomputed, checked, listed dirty), in row order, stopping after the
   * portfolio at which rowsMax position rows were read; leaves symPending as it is. Returns the next
   * portfolio row.
   */
  sweepRest(from: number, to: number, rowsMax: number): number;
  /** Recomputes one portfolio's totals from its positions and checks its limits; returns the breach kind or 0. */
  recompute(pf: number): number;
}
