// The plain-TypeScript reference kernel. Same algorithm and summation order as assembly/kernel.ts,
// so that on the same input both produce the same bits. Selected with --kernel js.

import type { KernelBackend } from './backend.js';
import {
  BREACH_MAX_DRAWDOWN,
  BREACH_MAX_LOSS,
  BREACH_MAX_WEIGHT,
  FLAG_BREACH_LATCHED,
  FLAG_WATCHED,
  H,
  HEADER_BYTES,
  NONE,
  viewColumns,
  type Columns,
  type Layout,
} from './layout.js';

// Path choice (see wantsSweep). Must equal the constants of the same names in assembly/kernel.ts:
// the path decides the dirty-list order.
/** A row reached through the lists (a cache miss) costs about this many rows swept (measured). */
export const LIST_ROW_COST = 4;
/** Counting the rows is a pass over the symbol slots: only for batches at least 1/32 of that. */
export const COUNT_GATE = 32;

/** 'auto' is the production rule; tests force a path to prove both give the same columns. */
export type SweepPolicy = 'auto' | 'never' | 'always';

export class JsBackend implements KernelBackend {
  readonly kind = 'js' as const;
  private c!: Columns;
  private header!: Int32Array;
  /** Revalue calls that took the portfolio-sweep path. */
  sweepBatches = 0;
  // One portfolio's totals, handed from sweepOne to finish.
  private sumHoldings = 0;
  private sumCost = 0;
  private sumUpnl = 0;
  private sumGross = 0;
  private sumMaxAbs = 0;
  /** Rows revalued by the walkSymbol calls of one walk (walkWatched / walkUnwatched). */
  private walkTouched = 0;
  /** Rows sweepOne read (open or not) since sweepRest began: a slice of the rest stops on it. */
  private visited = 0;

  constructor(private readonly sweepPolicy: SweepPolicy = 'auto') {}

  resize(bytes: number): ArrayBuffer {
    return new ArrayBuffer(bytes);
  }

  bind(buffer: ArrayBuffer, layout: Layout): void {
    this.c = viewColumns(buffer, layout);
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
  }

  revalue(n: number): number {
    const h = this.header;
    const stamp = (h[H.stamp] = (h[H.stamp] + 1) | 0);
    if (this.wantsSweep(n)) {
      this.sweepBatches++;
      h[H.touched] = this.sweepPortfolios(n, stamp);
    } else {
      h[H.touched] = this.walkSymbols(n, stamp);
      this.recomputeDirty(h[H.dirtyCount]);
    }
    return h[H.dirtyCount];
  }

  // The sweep visits every live row once, through the portfolio lists, and recomputes each touched
  // portfolio in the same pass. The lists visit each touched row, then recompute walks all the rows
  // of every portfolio it dirtied: about rows/pfCap per touched row (pfCap over-counts portfolios
  // by up to 2x, which errs toward the lists). The estimate of touched rows counts every entry
  // whose price differs from the current one, repeats included, and both of its lists (the rows it
  // prices and the rows it converts). Same operation order as the WASM kernel so both choose alike.
  private wantsSweep(n: number): boolean {
    if (this.sweepPolicy === 'never') return false;
    const { batchSym, batchPrice, symPrice, symCount, symFxCount } = this.c;
    let estimate = 0;
    for (let k = 0; k < n; k++) {
      const s = batchSym[k];
      if (symPrice[s] !== batchPrice[k]) estimate += symCount[s] + symFxCount[s];
    }
    if (this.sweepPolicy === 'always') return estimate > 0;
    return this.sweepPays(estimate);
  }

  /** Whether sweeping every portfolio costs less than walking `estimate` rows through the lists. */
  private sweepPays(estimate: number): boolean {
    const symCount = this.c.symCount;
    const symCap = this.header[H.symCap];
    if (estimate * COUNT_GATE < symCap) return false;
    // Rows are allocated densely from 0 and each is counted once in its symbol's symCount.
    let rows = 0;
    for (let s = 0; s < symCap; s++) rows += symCount[s];
    const pfCap = this.header[H.pfCap];
    return estimate * (pfCap + rows) * LIST_ROW_COST >= rows * pfCap;
  }

  /**
   * Writes the dirty list and its count; returns the touched count. A changed price walks the rows
   * it prices (new mark), then the rows it converts (new fx): each row ends valued at its current
   * mark and rate, whichever of the two moved last in the batch.
   */
  private walkSymbols(n: number, stamp: number): number {
    const { batchSym, batchPrice, symPrice, symHead, symFxHead, posNextSym, posNextFx, posMark, posQty, posFx, posMv, posUpnl, posAvg, posPf, pfStamp, pfDirty } = this.c;
    let dirty = 0;
    let touched = 0;
    for (let k = 0; k < n; k++) {
      const s = batchSym[k];
      const price = batchPrice[k];
      if (symPrice[s] === price) continue;
      symPrice[s] = price;
      for (let pos = symHead[s]; pos !== NONE; pos = posNextSym[pos]) {
        posMark[pos] = price;
        const q = posQty[pos];
        if (q === 0) continue;
        const fx = posFx[pos];
        posMv[pos] = q * price * fx;
        posUpnl[pos] = (price - posAvg[pos]) * q * fx;
        touched++;
        const f = posPf[pos];
        if (pfStamp[f] !== stamp) {
          pfStamp[f] = stamp;
          pfDirty[dirty++] = f;
        }
      }
      for (let pos = symFxHead[s]; pos !== NONE; pos = posNextFx[pos]) {
        posFx[pos] = price;
        const q = posQty[pos];
        if (q === 0) continue;
        const mark = posMark[pos];
        posMv[pos] = q * mark * price;
        posUpnl[pos] = (mark - posAvg[pos]) * q * price;
        touched++;
        const f = posPf[pos];
        if (pfStamp[f] !== stamp) {
          pfStamp[f] = stamp;
          pfDirty[dirty++] = f;
        }
      }
    }
    this.header[H.dirtyCount] = dirty;
    return touched;
  }

  private recomputeDirty(dirty: number): void {
    const { pfDirty, pfBreach } = this.c;
    let breaches = 0;
    for (let i = 0; i < dirty; i++) {
      const f = pfDirty[i];
      if (this.recompute(f) !== 0) pfBreach[breaches++] = f;
    }
    this.header[H.breachCount] = breaches;
  }

  // Same outputs as walkSymbols + recomputeDirty except the dirty (and breach) order, which is
  // portfolio-row order. Returns the touched count.
  private sweepPortfolios(n: number, stamp: number): number {
    this.applyPrices(n);
    const { batchSym, symChanges, pfHead, posPf, pfStamp, pfDirty, pfBreach } = this.c;
    const pfCap = this.header[H.pfCap];
    // Rows past the last portfolio are zero-filled by the layout: a head of 0 is real only for the
    // portfolio that owns position row 0 (the sweep runs only when rows exist).
    const rowZeroOwner = posPf[0];
    let dirty = 0;
    let breaches = 0;
    let touched = 0;
    for (let f = 0; f < pfCap; f++) {
      const head = pfHead[f];
      if (head === NONE || (head === 0 && f !== rowZeroOwner)) continue;
      const count = this.sweepOne(head, symChanges);
      if (count === 0) continue;
      touched += count;
      pfStamp[f] = stamp;
      pfDirty[dirty++] = f;
      if (this.finish(f, this.sumHoldings, this.sumCost, this.sumUpnl, this.sumGross, this.sumMaxAbs) !== 0) pfBreach[breaches++] = f;
    }
    for (let k = 0; k < n; k++) symChanges[batchSym[k]] = 0;
    this.header[H.dirtyCount] = dirty;
    this.header[H.breachCount] = breaches;
    return touched;
  }

  private applyPrices(n: number): void {
    const { batchSym, batchPrice, symPrice, symChanges } = this.c;
    for (let k = 0; k < n; k++) {
      const s = batchSym[k];
      const price = batchPrice[k];
      if (symPrice[s] === price) continue;
      symPrice[s] = price;
      symChanges[s]++;
    }
  }

  // Revalues one portfolio's rows whose symbol or fx symbol changed and sums all its open rows in
  // list order, exactly as recompute would after walkSymbols. Returns the touches: a symbol that
  // changed c times in the batch counts c per open row it prices and c per open row it converts,
  // as the lists would.
  private sweepOne(head: number, symChanges: Int32Array): number {
    const { posNextPf, posSym, posFxSym, symPrice, posQty, posAvg, posFx, posMark, posMv, posUpnl } = this.c;
    let holdings = 0;
    let cost = 0;
    let upnl = 0;
    let gross = 0;
    let maxAbs = 0;
    let count = 0;
    let rows = 0;
    for (let pos = head; pos !== NONE; pos = posNextPf[pos]) {
      rows++;
      const s = posSym[pos];
      const fs = posFxSym[pos];
      const priceChanges = symChanges[s];
      const fxChanges = fs === NONE ? 0 : symChanges[fs];
      const q = posQty[pos];
      const avg = posAvg[pos];
      let fx = posFx[pos];
      let mv: number;
      let up: number;
      if ((priceChanges | fxChanges) !== 0) {
        // An unchanged mark is rewritten with itself: one store instead of a branch.
        const mark = priceChanges !== 0 ? symPrice[s] : posMark[pos];
        posMark[pos] = mark;
        if (fxChanges !== 0) {
          fx = symPrice[fs];
          posFx[pos] = fx;
        }
        if (q === 0) continue;
        mv = q * mark * fx;
        up = (mark - avg) * q * fx;
        posMv[pos] = mv;
        posUpnl[pos] = up;
        count += priceChanges + fxChanges;
      } else {
        if (q === 0) continue;
        mv = posMv[pos];
        up = posUpnl[pos];
      }
      holdings += mv;
      cost += Math.abs(q) * avg * fx;
      upnl += up;
      const a = Math.abs(mv);
      gross += a;
      if (a > maxAbs) maxAbs = a;
    }
    this.visited += rows;
    this.sumHoldings = holdings;
    this.sumCost = cost;
    this.sumUpnl = upnl;
    this.sumGross = gross;
    this.sumMaxAbs = maxAbs;
    return count;
  }

  revalueWatched(n: number, watchedRows: number): number {
    const h = this.header;
    const stamp = (h[H.stamp] = (h[H.stamp] + 1) | 0);
    const estimate = this.applyBatch(n);
    h[H.dirtyCount] = 0;
    h[H.breachCount] = 0;
    h[H.touched] = 0;
    if (h[H.watchCount] === 0) {
      this.clearChanges(n);
      return 0;
    }
    // Walking reaches every row of the changed symbols (watched or not) through the lists; sweeping
    // reads every row of the watched portfolios in place. Same rule and operation order in both kernels.
    const policy = this.sweepPolicy;
    if (policy === 'always' || (policy === 'auto' && estimate * LIST_ROW_COST >= watchedRows)) {
      this.sweepBatches++;
      h[H.touched] = this.sweepWatched(stamp);
      this.clearChanges(n);
    } else {
      h[H.touched] = this.walkWatched(n, stamp);
      this.recomputeDirty(h[H.dirtyCount]);
    }
    return h[H.dirtyCount];
  }

  /**
   * Applies the batch to the symbol prices: symChanges counts this batch's changes (the first pass
   * reads it), symPending those the unwatched rows have not seen (listed once in symPendingList).
   * Returns the rows of the changed symbols (both lists), the walk's cost estimate.
   */
  private applyBatch(n: number): number {
    const { batchSym, batchPrice, symPrice, symChanges, symPending, symPendingList, symCount, symFxCount } = this.c;
    let pending = this.header[H.pendingCount];
    let estimate = 0;
    for (let k = 0; k < n; k++) {
      const s = batchSym[k];
      const price = batchPrice[k];
      if (symPrice[s] === price) continue;
      symPrice[s] = price;
      symChanges[s]++;
      if (symPending[s]++ === 0) symPendingList[pending++] = s;
      estimate += symCount[s] + symFxCount[s];
    }
    this.header[H.pendingCount] = pending;
    return estimate;
  }

  private clearChanges(n: number): void {
    const { batchSym, symChanges } = this.c;
    for (let k = 0; k < n; k++) symChanges[batchSym[k]] = 0;
  }

  /** The lists of this batch's changed symbols, watched portfolios' rows only; returns the touches. */
  private walkWatched(n: number, stamp: number): number {
    const { batchSym, symChanges } = this.c;
    let dirty = 0;
    this.walkTouched = 0;
    for (let k = 0; k < n; k++) {
      const s = batchSym[k];
      if (symChanges[s] === 0) continue;
      symChanges[s] = 0;
      dirty = this.walkSymbol(s, stamp, dirty, FLAG_WATCHED);
    }
    this.header[H.dirtyCount] = dirty;
    return this.walkTouched;
  }

  /**
   * Rows of one symbol's lists (its price list, then its FX list) whose portfolio's watched flag equals
   * `watched`: revalued, their portfolios listed dirty (walkTouched counts the rows). Returns the dirty
   * count. The wasm kernel's walkSymbol, line for line.
   */
  private walkSymbol(s: number, stamp: number, dirty: number, watched: number): number {
    const { symPrice, symHead, symFxHead, posNextSym, posNextFx, posMark, posQty, posFx, posMv, posUpnl, posAvg, posPf, pfFlags, pfStamp, pfDirty } = this.c;
    const price = symPrice[s];
    let touched = 0;
    for (let pos = symHead[s]; pos !== NONE; pos = posNextSym[pos]) {
      const f = posPf[pos];
      if ((pfFlags[f] & FLAG_WATCHED) !== watched) continue;
      posMark[pos] = price;
      const q = posQty[pos];
      if (q === 0) continue;
      const fx = posFx[pos];
      posMv[pos] = q * price * fx;
      posUpnl[pos] = (price - posAvg[pos]) * q * fx;
      touched++;
      if (pfStamp[f] !== stamp) {
        pfStamp[f] = stamp;
        pfDirty[dirty++] = f;
      }
    }
    for (let pos = symFxHead[s]; pos !== NONE; pos = posNextFx[pos]) {
      const f = posPf[pos];
      if ((pfFlags[f] & FLAG_WATCHED) !== watched) continue;
      posFx[pos] = price;
      const q = posQty[pos];
      if (q === 0) continue;
      const mark = posMark[pos];
      posMv[pos] = q * mark * price;
      posUpnl[pos] = (mark - posAvg[pos]) * q * price;
      touched++;
      if (pfStamp[f] !== stamp) {
        pfStamp[f] = stamp;
        pfDirty[dirty++] = f;
      }
    }
    this.walkTouched += touched;
    return dirty;
  }

  /** Every watched portfolio's rows, in watch-list order; returns the touches. */
  private sweepWatched(stamp: number): number {
    const { pfWatch, pfHead, pfStamp, pfDirty, pfBreach, symChanges } = this.c;
    const watched = this.header[H.watchCount];
    let dirty = 0;
    let breaches = 0;
    let touched = 0;
    for (let i = 0; i < watched; i++) {
      const f = pfWatch[i];
      const head = pfHead[f];
      if (head === NONE) continue;
      const count = this.sweepOne(head, symChanges);
      if (count === 0) continue;
      touched += count;
      pfStamp[f] = stamp;
      pfDirty[dirty++] = f;
      if (this.finish(f, this.sumHoldings, this.sumCost, this.sumUpnl, this.sumGross, this.sumMaxAbs) !== 0) pfBreach[breaches++] = f;
    }
    this.header[H.dirtyCount] = dirty;
    this.header[H.breachCount] = breaches;
    return touched;
  }

  revalueRest(): number {
    const h = this.header;
    const stamp = (h[H.stamp] = (h[H.stamp] + 1) | 0);
    const { symPending, symPendingList, symCount, symFxCount } = this.c;
    const pending = h[H.pendingCount];
    let estimate = 0;
    for (let i = 0; i < pending; i++) {
      const s = symPendingList[i];
      estimate += symCount[s] + symFxCount[s];
    }
    const policy = this.sweepPolicy;
    // The sweep runs only when rows exist (see sweepPortfolios: a head of 0 is ambiguous without them).
    if (policy === 'always' ? estimate > 0 : policy === 'auto' && this.sweepPays(estimate)) {
      this.sweepBatches++;
      h[H.touched] = this.sweepUnwatched(stamp);
    } else {
      h[H.touched] = this.walkUnwatched(pending, stamp);
      this.recomputeDirty(h[H.dirtyCount]);
    }
    for (let i = 0; i < pending; i++) symPending[symPendingList[i]] = 0;
    h[H.pendingCount] = 0;
    return h[H.dirtyCount];
  }

  /** The lists of the pending symbols, unwatched portfolios' rows only; returns the touches. */
  private walkUnwatched(pending: number, stamp: number): number {
    const { symPendingList } = this.c;
    let dirty = 0;
    this.walkTouched = 0;
    for (let i = 0; i < pending; i++) dirty = this.walkSymbol(symPendingList[i], stamp, dirty, 0);
    this.header[H.dirtyCount] = dirty;
    return this.walkTouched;
  }

  /**
   * One slice of the pass over the rest: the unwatched portfolios of rows [from, to) against
   * symPending, stopping after the portfolio at which rowsMax rows were read. Returns the next row.
   * The wasm kernel's sweepRest, line for line.
   */
  sweepRest(from: number, to: number, rowsMax: number): number {
    const h = this.header;
    const stamp = (h[H.stamp] = (h[H.stamp] + 1) | 0);
    const { symPending, pfHead, posPf, pfFlags, pfStamp, pfDirty, pfBreach } = this.c;
    const rowZeroOwner = posPf[0];
    let dirty = 0;
    let breaches = 0;
    let touched = 0;
    this.visited = 0;
    let f = from;
    while (f < to && this.visited < rowsMax) {
      const head = pfHead[f];
      if (!(head === NONE || (head === 0 && f !== rowZeroOwner) || (pfFlags[f] & FLAG_WATCHED) !== 0)) {
        const count = this.sweepOne(head, symPending);
        if (count !== 0) {
          touched += count;
          pfStamp[f] = stamp;
          pfDirty[dirty++] = f;
          if (this.finish(f, this.sumHoldings, this.sumCost, this.sumUpnl, this.sumGross, this.sumMaxAbs) !== 0) pfBreach[breaches++] = f;
        }
      }
      f++;
    }
    h[H.dirtyCount] = dirty;
    h[H.breachCount] = breaches;
    h[H.touched] = touched;
    return f;
  }

  /** Every unwatched portfolio, in row order, against symPending; returns the touches. */
  private sweepUnwatched(stamp: number): number {
    const { symPending, pfHead, posPf, pfFlags, pfStamp, pfDirty, pfBreach } = this.c;
    const pfCap = this.header[H.pfCap];
    const rowZeroOwner = posPf[0];
    let dirty = 0;
    let breaches = 0;
    let touched = 0;
    for (let f = 0; f < pfCap; f++) {
      const head = pfHead[f];
      if (head === NONE || (head === 0 && f !== rowZeroOwner) || (pfFlags[f] & FLAG_WATCHED) !== 0) continue;
      const count = this.sweepOne(head, symPending);
      if (count === 0) continue;
      touched += count;
      pfStamp[f] = stamp;
      pfDirty[dirty++] = f;
      if (this.finish(f, this.sumHoldings, this.sumCost, this.sumUpnl, this.sumGross, this.sumMaxAbs) !== 0) pfBreach[breaches++] = f;
    }
    this.header[H.dirtyCount] = dirty;
    this.header[H.breachCount] = breaches;
    return touched;
  }

  recompute(f: number): number {
    const { pfHead, posNextPf, posQty, posMv, posAvg, posFx, posUpnl } = this.c;
    let holdings = 0;
    let cost = 0;
    let upnl = 0;
    let gross = 0;
    let maxAbs = 0;
    for (let pos = pfHead[f]; pos !== NONE; pos = posNextPf[pos]) {
      const q = posQty[pos];
      if (q === 0) continue;
      const mv = posMv[pos];
      holdings += mv;
      cost += Math.abs(q) * posAvg[pos] * posFx[pos];
      upnl += posUpnl[pos];
      const a = Math.abs(mv);
      gross += a;
      if (a > maxAbs) maxAbs = a;
    }
    return this.finish(f, holdings, cost, upnl, gross, maxAbs);
  }

  private finish(f: number, holdings: number, cost: number, upnl: number, gross: number, maxAbs: number): number {
    const c = this.c;
    c.pfHoldings[f] = holdings;
    c.pfCostBasis[f] = cost;
    c.pfUpnl[f] = upnl;
    c.pfGross[f] = gross;
    c.pfMaxAbsMv[f] = maxAbs;
    const equity = c.pfCash[f] + holdings;
    if (equity > c.pfHwm[f]) c.pfHwm[f] = equity;
    if ((c.pfFlags[f] & FLAG_BREACH_LATCHED) !== 0) return 0;
    return this.checkLimits(f, equity, upnl, gross, maxAbs);
  }

  // NaN limits mean "no limit": `x === x` is false only for NaN. Order is the breach priority.
  private checkLimits(f: number, equity: number, upnl: number, gross: number, maxAbs: number): number {
    const c = this.c;
    let kind = 0;
    let value = 0;
    const maxLoss = c.pfMaxLoss[f];
    const maxDd = c.pfMaxDdPct[f];
    const maxW = c.pfMaxWeightPct[f];
    const hwm = c.pfHwm[f];
    const totalReturn = c.pfRealized[f] + upnl;
    if (maxLoss === maxLoss && totalReturn < -maxLoss) {
      kind = BREACH_MAX_LOSS;
      value = totalReturn;
    } else if (maxDd === maxDd && hwm > 0 && ((hwm - equity) / hwm) * 100 > maxDd) {
      kind = BREACH_MAX_DRAWDOWN;
      value = ((hwm - equity) / hwm) * 100;
    } else if (maxW === maxW && gross > 0 && (maxAbs / gross) * 100 > maxW) {
      kind = BREACH_MAX_WEIGHT;
      value = (maxAbs / gross) * 100;
    }
    if (kind !== 0) {
      c.pfFlags[f] |= FLAG_BREACH_LATCHED;
      c.pfBreachKind[f] = kind;
      c.pfBreachValue[f] = value;
    }
    return kind;
  }
}
