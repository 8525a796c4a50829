// The shard's delta encoder: writes each update a watched portfolio owes once, as a binary delta
// (layout version 3, src/client/delta.ts), straight from the kernel columns into one byte buffer per
// batch. No update object is built: the main thread gets the batch's bytes (transferred, not cloned)
// and an index of where each record is, and publishes slices of them.
// The figures are the ones src/shard/views.ts positionView / totalsOf build for snapshots, with the
// same expressions; test/updates.stream.test.ts holds the two to each other bit for bit.

import { baseCurrencyOf } from '../domain/portfolio.js';
import type { Columns } from '../kernel/layout.js';
import { DELTA_HEAD_BYTES, DELTA_POSITION_TAIL_BYTES, DeltaHead, deltaStates, writeDeltaHead, writePositionTail } from '../protocol/delta.js';
import type { PositionState } from '../domain/types.js';
import type { Book } from './book.js';
import type { MarkClock } from './marks.js';

/** Ints per record in the batch index: book index, byte offset, byte length. */
export const DELTA_INDEX_STRIDE = 3;

export class DeltaWriter {
  private bytes: Uint8Array;
  private view: DataView;
  private index: Int32Array;
  /**
   * Row -> the book's position state (currency, quantity shown, realized P&L), refreshed per book when
   * its state object changed (states are immutable: a command replaces them, ticks never do). Looking
   * positions up by symbol name per delta was the writer's hottest line (profile, docs/BENCHMARKS.md).
   */
  private held: (PositionState | undefined)[] = [];
  /** Bytes written since reset(). */
  length = 0;
  /** Records written since reset(). */
  records = 0;

  constructor(initialBytes = 1 << 16) {
    this.bytes = new Uint8Array(initialBytes);
    this.view = new DataView(this.bytes.buffer);
    this.index = new Int32Array(256 * DELTA_INDEX_STRIDE);
  }

  reset(): void {
    this.length = 0;
    this.records = 0;
  }

  /**
   * Appends the delta of `book`: its totals and the rows in changed[0..n). `symbols` are the UTF-8
   * bytes of each symbol id, `names` the names (positions in the book's state are keyed by name).
   */
  write(c: Columns, book: Book, changed: Int32Array, n: number, names: readonly string[], symbols: readonly Uint8Array[], clock: MarkClock, tickTs: number): void {
    if (book.heldOf !== book.state) this.refreshHeld(c, book, names);
    const held = this.held;
    const id = book.idBytes;
    let size = DELTA_HEAD_BYTES + id.length + n * (1 + DELTA_POSITION_TAIL_BYTES);
    for (let i = 0; i < n; i++) size += symbols[c.posSym[changed[i]]].length;
    this.ensure(size);
    const o0 = this.length;
    const view = this.view;
    const f = book.index;
    const state = book.state;
    writeDeltaHead(view, o0, deltaStates.indexOf(book.status), n, id.length, book.seq, book.seq, clock.asOf, tickTs);
    const holdings = c.pfHoldings[f];
    view.setFloat64(o0 + DeltaHead.cash, state.cash, true);
    view.setFloat64(o0 + DeltaHead.capital, state.capital, true);
    view.setFloat64(o0 + DeltaHead.holdingsValue, holdings, true);
    view.setFloat64(o0 + DeltaHead.costBasis, c.pfCostBasis[f], true);
    view.setFloat64(o0 + DeltaHead.unrealizedPnl, c.pfUpnl[f], true);
    view.setFloat64(o0 + DeltaHead.realizedPnl, state.realized_pnl, true);
    // pfCash is the base cash plus the foreign cash converted at the latest rates (Shard.syncPortfolio).
    view.setFloat64(o0 + DeltaHead.equity, c.pfCash[f] + holdings, true);
    view.setFloat64(o0 + DeltaHead.grossExposure, c.pfGross[f], true);
    this.writeCounts(c, book, clock, o0);
    this.bytes.set(id, o0 + DeltaHead.id);
    let o = o0 + DeltaHead.id + id.length;
    const base = baseCurrencyOf(state);
    for (let i = 0; i < n; i++) {
      const row = changed[i];
      const sym = c.posSym[row];
      const s = symbols[sym];
      const bytes = this.bytes;
      bytes[o] = s.length;
      for (let k = 0; k < s.length; k++) bytes[o + 1 + k] = s[k];
      o += 1 + s.length;
      const p = held[row];
      const currency = p?.currency;
      const q = c.posQty[row];
      const avg = c.posAvg[row];
      const fx = c.posFx[row];
      const mark = c.posMark[row];
      // As positionView: a foreign position whose rate was never seen stays in its quote currency.
      const unconverted = currency !== undefined && fx === 0;
      const mv = unconverted ? q * mark : c.posMv[row];
      const upnl = unconverted ? (mark - avg) * q : c.posUpnl[row];
      const cost = Math.abs(q) * avg * (unconverted ? 1 : fx);
      const priced = c.symPrice[sym] > 0;
      const ts = clock.symTs[sym];
      const stale = !priced || clock.asOf - ts > clock.staleAfterMs;
      // posQty is the effective quantity (quantity x multiplier): the quantity shown is the book's.
      const shown = q === 0 || p === undefined ? 0 : p.units / 1e8;
      writePositionTail(view, o, currency ?? base, stale, shown, avg, mark, unconverted ? NaN : fx, mv, upnl, p?.realized_pnl ?? 0, cost !== 0 ? (upnl / cost) * 100 : 0, priced ? ts : NaN);
      o += DELTA_POSITION_TAIL_BYTES;
    }
    this.addIndex(f, o0, o - o0);
    this.length = o;
  }

  private refreshHeld(c: Columns, book: Book, names: readonly string[]): void {
    const positions = book.state.positions;
    for (const row of book.rowList) this.held[row] = positions[names[c.posSym[row]]];
    book.heldOf = book.state;
  }

  /** stale / unpriced over open positions (marks.ts markCounts) and unconverted ones (views.ts). */
  private writeCounts(c: Columns, book: Book, clock: MarkClock, o0: number): void {
    let stale = 0;
    let unpriced = 0;
    let unconverted = 0;
    for (const row of book.rowList) {
      const q = c.posQty[row];
      if (q === 0) continue;
      if (book.foreign !== 0 && c.posFx[row] === 0) unconverted++;
      const sym = c.posSym[row];
      if (!(c.symPrice[sym] > 0)) {
        unpriced++;
        stale++;
      } else if (clock.asOf - clock.symTs[sym] > clock.staleAfterMs) stale++;
    }
    for (const sym of book.cashFx) if (c.symPrice[sym] === 0) unconverted++;
    this.view.setUint32(o0 + DeltaHead.stalePositions, stale, true);
    this.view.setUint32(o0 + DeltaHead.unpricedPositions, unpriced, true);
    this.view.setUint32(o0 + DeltaHead.unconvertedPositions, unconverted, true);
  }

  /** The tick_ts of the last record (it is known only after its positions were chosen). */
  setLastTickTs(tickTs: number): void {
    const o = this.index[(this.records - 1) * DELTA_INDEX_STRIDE + 1];
    this.view.setFloat64(o + DeltaHead.tickTs, tickTs, true);
  }

  /** The batch's records in a buffer of their own (transferable) and its index; resets. */
  take(): { bytes: Uint8Array; index: Int32Array } {
    const out = { bytes: this.bytes.slice(0, this.length), index: this.index.slice(0, this.records * DELTA_INDEX_STRIDE) };
    this.reset();
    return out;
  }

  /** The last record, copied (command results carry their own). */
  last(): Uint8Array {
    const k = (this.records - 1) * DELTA_INDEX_STRIDE;
    const o = this.index[k + 1];
    return this.bytes.slice(o, o + this.index[k + 2]);
  }

  private addIndex(book: number, offset: number, length: number): void {
    const k = this.records * DELTA_INDEX_STRIDE;
    if (k + DELTA_INDEX_STRIDE > this.index.length) {
      const next = new Int32Array(this.index.length * 2);
      next.set(this.index);
      this.index = next;
    }
    this.index[k] = book;
    this.index[k + 1] = offset;
    this.index[k + 2] = length;
    this.records++;
  }

  private ensure(extra: number): void {
    const need = this.length + extra;
    if (need <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }
}
