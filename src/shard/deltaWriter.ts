// The shard's delta encoder: writes each update a watched portfolio owes once, as a binary delta
// (layout version 4, src/protocol/delta.ts), straight from the kernel columns into one byte buffer per
// batch. No update object is built: the main thread gets the batch's bytes (transferred, not cloned)
// and an index of where each record is, and publishes slices of them.
// The figures are the ones src/shard/views.ts positionView / totalsOf build for snapshots, with the
// same expressions; test/updates.stream.test.ts holds the two to each other bit for bit.
// Everything a delta reads per position is a typed-array slot indexed by kernel row: the kernel's
// columns, what the row's last delta showed (sent*), and what the book's state says of the row (its
// shown quantity, realized P&L and currency, refreshed only when a command replaced the state). One
// pass over a book's rows finds the moved positions, writes them and counts the stale ones: reading
// positions from the state objects per delta (by name, then through polymorphic objects) cost 3x the
// revaluation itself (profiles in docs/BENCHMARKS.md).
// The head's per-book fields are typed-array slots too, indexed by book (cash, capital, realized P&L
// and the id's bytes, copied when a command replaced the state), and a book's rows are read from the
// kernel's per-portfolio list: writing a delta reads no state object, row list or id array. 1,000
// deltas a batch touched 1,000 of each, cold after the pass over the rest (docs/BENCHMARKS.md,
// "Issue 14, seventh session").

import { baseCurrencyOf } from '../domain/portfolio.js';
import { NONE, type Columns } from '../kernel/layout.js';
import {
  DELTA_FLAG_HELD,
  DELTA_FULL_BYTES,
  DELTA_HEAD_BYTES,
  DELTA_TICK_BYTES,
  DELTA_TICK_RATE_BYTES,
  DeltaFull,
  DeltaHead,
  DeltaTick,
  POSITION_FLAG_FULL,
  POSITION_FLAG_RATE,
  POSITION_FLAG_STALE,
  writeDeltaHead,
} from '../protocol/delta.js';
import type { Book } from './book.js';
import type { MarkClock } from './marks.js';

/** Ints per record in the batch index: book index, byte offset, byte length. */
export const DELTA_INDEX_STRIDE = 3;

const utf8 = new TextEncoder();

export class DeltaWriter {
  private bytes: Uint8Array;
  private view: DataView;
  private index: Int32Array;
  /** Per row: mark, effective quantity and FX rate as the row's last delta (or its snapshot) showed them. */
  private sentMark = new Float64Array(1024);
  private sentQty = new Float64Array(1024);
  private sentFx = new Float64Array(1024);
  /** Per row: avg cost as its last delta (or snapshot) showed it. */
  private sentAvg = new Float64Array(1024);
  /**
   * Per row: 1 while the state-side slots below (quantity shown, realized P&L, currency, quoted) are
   * what its last full record or snapshot showed; a tick record leaves them to the reader.
   */
  private stateSent = new Uint8Array(1024);
  /** Per row, from the book's state: the quantity shown (the book's, not x multiplier) and realized P&L. */
  private shown = new Float64Array(1024);
  private realized = new Float64Array(1024);
  /** Per row: the position's currency as 3 ASCII bytes (the book's base when it has none). */
  private currency = new Uint8Array(1024 * 3);
  /** Per row: 1 when the position has a quote currency of its own (it may be unconverted). */
  private quoted = new Uint8Array(1024);
  /** Symbol ids' UTF-8 bytes, back to back: symbol s is symBytes[symOffset[s], +symLength[s]). */
  private symBytes = new Uint8Array(1 << 14);
  private symOffset = new Int32Array(256);
  private symLength = new Uint8Array(256);
  /** A symbol of at most 8 bytes as two little-endian words (zero-padded): two stores instead of a byte loop. */
  private symWord0 = new Uint32Array(256);
  private symWord1 = new Uint32Array(256);
  private symbols = 0;
  private symBytesUsed = 0;
  private symLengthMax = 0;
  /** Per book, from its state (refreshed with the rows' slots): the head's cash, capital, realized P&L. */
  private bookCash = new Float64Array(256);
  private bookCapital = new Float64Array(256);
  private bookRealized = new Float64Array(256);
  /** Per book: 1 when it holds cash in a foreign currency (its cashFx list is read only then). */
  private bookCashFx = new Uint8Array(256);
  /** Per book: its id's UTF-8 bytes at idPool[idOffset, +idLength) (-1: not copied yet). */
  private idOffset = new Int32Array(256).fill(-1);
  private idLength = new Uint8Array(256);
  private idPool = new Uint8Array(1 << 14);
  private idPoolUsed = 0;
  /** One book's rows in list order (the kernel links a portfolio's rows newest first). */
  private scratchRows = new Int32Array(64);
  /** Bytes written since reset(). */
  length = 0;
  /** Records written since reset(). */
  records = 0;

  /** `names`: the shard's symbol names by id (positions in a book's state are keyed by name). */
  constructor(
    private readonly names: readonly string[],
    initialBytes = 1 << 16,
  ) {
    this.bytes = new Uint8Array(initialBytes);
    this.view = new DataView(this.bytes.buffer);
    this.index = new Int32Array(256 * DELTA_INDEX_STRIDE);
  }

  /** The next symbol id's name (ids are registered in order). A delta carries at most 255 bytes of it. */
  addSymbol(name: string): void {
    const b = utf8.encode(name).subarray(0, 255);
    if (this.symbols === this.symOffset.length) {
      this.symOffset = grown(this.symOffset, this.symbols * 2);
      this.symLength = grown(this.symLength, this.symbols * 2);
      this.symWord0 = grown(this.symWord0, this.symbols * 2);
      this.symWord1 = grown(this.symWord1, this.symbols * 2);
    }
    if (this.symBytesUsed + b.length > this.symBytes.length) this.symBytes = grown(this.symBytes, Math.max(this.symBytes.length * 2, this.symBytesUsed + b.length));
    this.symBytes.set(b, this.symBytesUsed);
    this.symOffset[this.symbols] = this.symBytesUsed;
    this.symLength[this.symbols] = b.length;
    if (b.length <= 8) {
      const padded = new Uint8Array(8);
      padded.set(b);
      const words = new DataView(padded.buffer);
      this.symWord0[this.symbols] = words.getUint32(0, true);
      this.symWord1[this.symbols] = words.getUint32(4, true);
    }
    this.symBytesUsed += b.length;
    this.symbols++;
    if (b.length > this.symLengthMax) this.symLengthMax = b.length;
  }

  /** Room for kernel row `row` (rows are allocated densely from 0). */
  ensureRow(row: number): void {
    if (row < this.sentMark.length) return;
    const size = Math.max(row + 1, this.sentMark.length * 2);
    this.sentMark = grown(this.sentMark, size);
    this.sentQty = grown(this.sentQty, size);
    this.sentFx = grown(this.sentFx, size);
    this.sentAvg = grown(this.sentAvg, size);
    this.stateSent = grown(this.stateSent, size);
    this.shown = grown(this.shown, size);
    this.realized = grown(this.realized, size);
    this.currency = grown(this.currency, size * 3);
    this.quoted = grown(this.quoted, size);
  }

  /** Room for book index `f`. */
  private ensureBook(f: number): void {
    if (f < this.bookCash.length) return;
    const size = Math.max(f + 1, this.bookCash.length * 2);
    this.bookCash = grown(this.bookCash, size);
    this.bookCapital = grown(this.bookCapital, size);
    this.bookRealized = grown(this.bookRealized, size);
    this.bookCashFx = grown(this.bookCashFx, size);
    const ids = new Int32Array(size).fill(-1);
    ids.set(this.idOffset);
    this.idOffset = ids;
    this.idLength = grown(this.idLength, size);
  }

  /** The book began holding cash in a foreign currency (Shard.watchCashFx). */
  cashFxAdded(f: number): void {
    this.ensureBook(f);
    this.bookCashFx[f] = 1;
  }

  /** A snapshot of the book was just shown: its next delta carries only what moves after it. */
  markSent(c: Columns, book: Book): void {
    if (book.heldOf !== book.state) this.refreshHeld(c, book);
    for (const row of book.rowList) {
      this.sentMark[row] = c.posMark[row];
      this.sentQty[row] = c.posQty[row];
      this.sentFx[row] = c.posFx[row];
      this.sentAvg[row] = c.posAvg[row];
      this.stateSent[row] = 1;
    }
  }

  reset(): void {
    this.length = 0;
    this.records = 0;
  }

  /**
   * Appends the delta of `book`: its totals and the positions whose mark, quantity or FX rate moved
   * since its last delta. tick_ts is the newest source ts behind those positions (0 for a command,
   * `fromTicks` false), or `fallbackTickTs` when none moved (foreign cash revalued by a rate tick).
   * `fromSeq` below book.seq: the delta covers the skipped ones since (conflation in the shard).
   */
  write(c: Columns, book: Book, clock: MarkClock, fromTicks: boolean, fallbackTickTs: number, fromSeq: number = book.seq): void {
    if (book.heldOf !== book.state) this.refreshHeld(c, book);
    const f = book.index;
    const count = this.rowsOf(c, f);
    const rows = this.scratchRows;
    const idLength = this.idLength[f];
    this.ensure(DELTA_HEAD_BYTES + idLength + count * (1 + this.symLengthMax + DELTA_FULL_BYTES));
    const { bytes, view, sentMark, sentQty, sentFx, sentAvg, symBytes, symOffset, symLength, symWord0, symWord1 } = this;
    const { posQty, posMark, posFx, posSym, posAvg, posMv, posUpnl, posFxSym, symPrice } = c;
    const { symTs, asOf, staleAfterMs } = clock;
    const o0 = this.length;
    let o = o0 + DeltaHead.id + idLength;
    let n = 0;
    let tickTs = 0;
    let stale = 0;
    let unpriced = 0;
    let unconverted = 0;
    /** A full record or a rate move was written: readers' copies of positions change (DELTA_FLAG_HELD). */
    let held = false;
    for (let i = count - 1; i >= 0; i--) {
      const row = rows[i];
      const q = posQty[row];
      const mark = posMark[row];
      const fx = posFx[row];
      const sym = posSym[row];
      const priced = symPrice[sym] > 0;
      const ts = symTs[sym];
      const isStale = !priced || asOf - ts > staleAfterMs;
      const quoted = this.quoted[row] === 1;
      // The totals' counts are over open positions (marks.ts markCounts, views.ts unconvertedOf).
      if (q !== 0) {
        if (!priced) unpriced++;
        if (isStale) stale++;
        // fx is 0 only on a row linked to a rate never seen: a foreign position (views.ts unconvertedOf).
        if (fx === 0) unconverted++;
      }
      const avg = posAvg[row];
      const fxMoved = fx !== sentFx[row];
      const qtyMoved = q !== sentQty[row];
      const avgMoved = avg !== sentAvg[row];
      const stateSent = this.stateSent[row] === 1;
      if (mark === sentMark[row] && !qtyMoved && !fxMoved && !avgMoved && stateSent) continue;
      sentMark[row] = mark;
      sentQty[row] = q;
      sentFx[row] = fx;
      sentAvg[row] = avg;
      this.stateSent[row] = 1;
      // Closed and still closed: no reader holds it (snapshots and views leave closed positions out).
      if (q === 0 && !qtyMoved) continue;
      if (ts > tickTs) tickTs = ts;
      if (fxMoved) {
        held = true;
        const fxSym = posFxSym[row];
        if (fxSym !== NONE && symTs[fxSym] > tickTs) tickTs = symTs[fxSym];
      }
      const len = symLength[sym];
      bytes[o] = len;
      // Up to 8 bytes in two stores: the padding lands where the record's flags and price go next.
      if (len <= 8) {
        view.setUint32(o + 1, symWord0[sym], true);
        view.setUint32(o + 5, symWord1[sym], true);
      } else {
        const from = symOffset[sym];
        for (let k = 0; k < len; k++) bytes[o + 1 + k] = symBytes[from + k];
      }
      o += 1 + len;
      // As positionView: a foreign position whose rate was never seen stays in its quote currency.
      const unconv = quoted && fx === 0;
      // A tick record when the reader's copy (quantity, avg, state-side fields, rate) recomputes the
      // kernel's figures exactly (src/protocol/delta.ts): multiplier 1, and the columns checked.
      if (
        !qtyMoved &&
        !avgMoved &&
        stateSent &&
        this.shown[row] === q &&
        (unconv || (posMv[row] === q * mark * fx && posUpnl[row] === (mark - avg) * q * fx))
      ) {
        bytes[o] = (isStale ? POSITION_FLAG_STALE : 0) | (fxMoved ? POSITION_FLAG_RATE : 0);
        view.setFloat64(o + DeltaTick.lastPrice, mark, true);
        view.setFloat64(o + DeltaTick.priceTs, priced ? ts : NaN, true);
        if (fxMoved) {
          view.setFloat64(o + DeltaTick.fxRate, unconv ? NaN : fx, true);
          o += DELTA_TICK_RATE_BYTES;
        } else o += DELTA_TICK_BYTES;
        n++;
        continue;
      }
      held = true;
      const mv = unconv ? q * mark : posMv[row];
      const upnl = unconv ? (mark - avg) * q : posUpnl[row];
      const cost = Math.abs(q) * avg * (unconv ? 1 : fx);
      const r3 = row * 3;
      bytes[o] = POSITION_FLAG_FULL | (isStale ? POSITION_FLAG_STALE : 0);
      bytes[o + DeltaFull.currency] = this.currency[r3];
      bytes[o + DeltaFull.currency + 1] = this.currency[r3 + 1];
      bytes[o + DeltaFull.currency + 2] = this.currency[r3 + 2];
      // posQty is the effective quantity (quantity x multiplier): the quantity shown is the book's.
      view.setFloat64(o + DeltaFull.quantity, q === 0 ? 0 : this.shown[row], true);
      view.setFloat64(o + DeltaFull.avgCost, avg, true);
      view.setFloat64(o + DeltaFull.lastPrice, mark, true);
      view.setFloat64(o + DeltaFull.fxRate, unconv ? NaN : fx, true);
      view.setFloat64(o + DeltaFull.marketValue, mv, true);
      view.setFloat64(o + DeltaFull.unrealizedPnl, upnl, true);
      view.setFloat64(o + DeltaFull.realizedPnl, this.realized[row], true);
      view.setFloat64(o + DeltaFull.returnRate, cost !== 0 ? (upnl / cost) * 100 : 0, true);
      view.setFloat64(o + DeltaFull.priceTs, priced ? ts : NaN, true);
      o += DELTA_FULL_BYTES;
      n++;
    }
    if (this.bookCashFx[f] === 1) for (const sym of book.cashFx) if (symPrice[sym] === 0) unconverted++;
    if (tickTs === 0) tickTs = fallbackTickTs;
    this.writeHead(c, f, stateCode(book.status), book.seq, o0, n, asOf, fromTicks ? tickTs : 0, fromSeq);
    if (held) bytes[o0 + DeltaHead.flags] |= DELTA_FLAG_HELD;
    view.setUint32(o0 + DeltaHead.stalePositions, stale, true);
    view.setUint32(o0 + DeltaHead.unpricedPositions, unpriced, true);
    view.setUint32(o0 + DeltaHead.unconvertedPositions, unconverted, true);
    this.addIndex(book.index, o0, o - o0);
    this.length = o;
  }

  /** Book f's rows into scratchRows, newest first (the kernel's list order); returns their count. */
  private rowsOf(c: Columns, f: number): number {
    const { pfHead, posNextPf } = c;
    let rows = this.scratchRows;
    let n = 0;
    for (let row = pfHead[f]; row !== NONE; row = posNextPf[row]) {
      if (n === rows.length) rows = this.scratchRows = grown(rows, n * 2);
      rows[n++] = row;
    }
    return n;
  }

  private writeHead(c: Columns, f: number, state: number, seq: number, o0: number, n: number, asOf: number, tickTs: number, fromSeq: number): void {
    const { view, bytes, idPool } = this;
    const idLength = this.idLength[f];
    writeDeltaHead(view, o0, state, n, idLength, seq, fromSeq, asOf, tickTs);
    const holdings = c.pfHoldings[f];
    view.setFloat64(o0 + DeltaHead.cash, this.bookCash[f], true);
    view.setFloat64(o0 + DeltaHead.capital, this.bookCapital[f], true);
    view.setFloat64(o0 + DeltaHead.holdingsValue, holdings, true);
    view.setFloat64(o0 + DeltaHead.costBasis, c.pfCostBasis[f], true);
    view.setFloat64(o0 + DeltaHead.unrealizedPnl, c.pfUpnl[f], true);
    view.setFloat64(o0 + DeltaHead.realizedPnl, this.bookRealized[f], true);
    // pfCash is the base cash plus the foreign cash converted at the latest rates (Shard.syncPortfolio).
    view.setFloat64(o0 + DeltaHead.equity, c.pfCash[f] + holdings, true);
    view.setFloat64(o0 + DeltaHead.grossExposure, c.pfGross[f], true);
    // Ids are a few bytes: a loop costs less than TypedArray.set's call.
    const from = this.idOffset[f];
    const at = o0 + DeltaHead.id;
    for (let k = 0; k < idLength; k++) bytes[at + k] = idPool[from + k];
  }

  /** The rows' state-side slots, from the book's (new) state object: only after a command replaced it. */
  private refreshHeld(c: Columns, book: Book): void {
    const state = book.state;
    const positions = state.positions;
    const base = baseCurrencyOf(state);
    const f = book.index;
    this.ensureBook(f);
    this.bookCash[f] = state.cash;
    this.bookCapital[f] = state.capital;
    this.bookRealized[f] = state.realized_pnl;
    this.bookCashFx[f] = book.cashFx.length > 0 ? 1 : 0;
    if (this.idOffset[f] < 0) this.copyId(f, book.idBytes);
    for (const row of book.rowList) {
      this.ensureRow(row);
      const p = positions[this.names[c.posSym[row]]];
      const shown = p === undefined ? 0 : p.units / 1e8;
      const realized = p?.realized_pnl ?? 0;
      const quoted = p?.currency === undefined ? 0 : 1;
      const currency = p?.currency ?? base;
      const r3 = row * 3;
      let same = shown === this.shown[row] && realized === this.realized[row] && quoted === this.quoted[row];
      for (let k = 0; k < 3; k++) {
        const b = currency.charCodeAt(k) & 0x7f;
        if (b !== this.currency[r3 + k]) same = false;
        this.currency[r3 + k] = b;
      }
      // What a reader holds of the row changed: its next record goes in full.
      if (!same) this.stateSent[row] = 0;
      this.shown[row] = shown;
      this.realized[row] = realized;
      this.quoted[row] = quoted;
    }
    book.heldOf = book.state;
  }

  /** Book f's id bytes into the pool, once (an id never changes for a book index). */
  private copyId(f: number, id: Uint8Array): void {
    if (this.idPoolUsed + id.length > this.idPool.length) this.idPool = grown(this.idPool, Math.max(this.idPool.length * 2, this.idPoolUsed + id.length));
    this.idPool.set(id, this.idPoolUsed);
    this.idOffset[f] = this.idPoolUsed;
    this.idLength[f] = id.length;
    this.idPoolUsed += id.length;
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
    if (k + DELTA_INDEX_STRIDE > this.index.length) this.index = grown(this.index, this.index.length * 2);
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

/** The head's state byte (deltaStates' order). */
function stateCode(status: Book['status']): number {
  return status === 'active' ? 0 : status === 'paused' ? 1 : 2;
}

function grown<T extends Float64Array | Int32Array | Uint32Array | Uint8Array>(a: T, size: number): T {
  const next = new (a.constructor as new (n: number) => T)(size);
  next.set(a);
  return next;
}
