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
  /** Recomputes one portfolio's totals from its positions and checks its limits; returns the breach kind or 0. */
  recompute(pf: number): number;
}
