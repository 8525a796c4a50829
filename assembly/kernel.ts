// The WASM revaluation kernel. It computes over columns that TypeScript lays out in this module's
// memory (src/kernel/layout.ts) and must stay bit-for-bit equal to src/kernel/jsBackend.ts: same
// algorithm, same operation order, same summation order. It allocates nothing and owns no memory
// region: the header sits at byte 0 and the module has no data segments (runtime stub, no strings).

// Header slots and column indices are an ABI shared with layout.ts (`H` and the order of
// `columnSpecs`): append only, on both sides together.
const H_PF_CAP: i32 = 1;
const H_SYM_CAP: i32 = 2;
const H_DIRTY_COUNT: i32 = 4;
const H_BREACH_COUNT: i32 = 5;
const H_TOUCHED: i32 = 6;
const H_STAMP: i32 = 7;
const H_WATCH_COUNT: i32 = 8;
const H_PENDING_COUNT: i32 = 9;
const H_COLUMNS: i32 = 16;

const C_POS_QTY: i32 = 0;
const C_POS_AVG: i32 = 1;
const C_POS_MARK: i32 = 2;
const C_POS_MV: i32 = 3;
const C_POS_UPNL: i32 = 4;
const C_POS_FX: i32 = 5;
const C_POS_SYM: i32 = 6;
const C_POS_PF: i32 = 7;
const C_POS_NEXT_SYM: i32 = 8;
const C_POS_NEXT_PF: i32 = 9;
const C_SYM_PRICE: i32 = 10;
const C_SYM_HEAD: i32 = 11;
const C_SYM_COUNT: i32 = 12;
const C_PF_CASH: i32 = 13;
const C_PF_REALIZED: i32 = 14;
const C_PF_HOLDINGS: i32 = 15;
const C_PF_COST_BASIS: i32 = 16;
const C_PF_UPNL: i32 = 17;
const C_PF_GROSS: i32 = 18;
const C_PF_MAX_ABS_MV: i32 = 19;
const C_PF_HWM: i32 = 20;
const C_PF_MAX_LOSS: i32 = 21;
const C_PF_MAX_DD_PCT: i32 = 22;
const C_PF_MAX_WEIGHT_PCT: i32 = 23;
const C_PF_BREACH_VALUE: i32 = 24;
const C_PF_HEAD: i32 = 25;
const C_PF_STAMP: i32 = 26;
const C_PF_FLAGS: i32 = 27;
const C_PF_DIRTY: i32 = 28;
const C_PF_BREACH: i32 = 29;
const C_PF_BREACH_KIND: i32 = 30;
const C_BATCH_SYM: i32 = 31;
const C_BATCH_PRICE: i32 = 32;
const C_SYM_CHANGES: i32 = 33;
const C_POS_FX_SYM: i32 = 34;
const C_POS_NEXT_FX: i32 = 35;
const C_SYM_FX_HEAD: i32 = 36;
const C_SYM_FX_COUNT: i32 = 37;
const C_PF_WATCH: i32 = 38;
const C_SYM_PENDING: i32 = 39;
const C_SYM_PENDING_LIST: i32 = 40;

const NONE: i32 = -1;
const FLAG_BREACH_LATCHED: i32 = 1;
const FLAG_WATCHED: i32 = 2;
const BREACH_MAX_LOSS: i32 = 1;
const BREACH_MAX_DRAWDOWN: i32 = 2;
const BREACH_MAX_WEIGHT: i32 = 3;

// Path choice (see wantsSweep). Must equal the constants of the same names in jsBackend.ts: the
// path decides the dirty-list order.
/** A row reached through the lists (a cache miss) costs about this many rows swept (measured). */
const LIST_ROW_COST: f64 = 4;
/** Counting the rows is a pass over the symbol slots: only for batches at least 1/32 of that. */
const COUNT_GATE: f64 = 32;

// Column base addresses, reloaded from the header on every exported call because TypeScript
// re-lays the memory out when it grows.
let posQty: usize = 0;
let posAvg: usize = 0;
let posMark: usize = 0;
let posMv: usize = 0;
let posUpnl: usize = 0;
let posFx: usize = 0;
let posSym: usize = 0;
let posPf: usize = 0;
let posNextSym: usize = 0;
let posNextPf: usize = 0;
let posFxSym: usize = 0;
let posNextFx: usize = 0;
let symPrice: usize = 0;
let symHead: usize = 0;
let symCount: usize = 0;
let symChanges: usize = 0;
let symFxHead: usize = 0;
let symFxCount: usize = 0;
let pfCash: usize = 0;
let pfRealized: usize = 0;
let pfHoldings: usize = 0;
let pfCostBasis: usize = 0;
let pfUpnl: usize = 0;
let pfGross: usize = 0;
let pfMaxAbsMv: usize = 0;
let pfHwm: usize = 0;
let pfMaxLoss: usize = 0;
let pfMaxDdPct: usize = 0;
let pfMaxWeightPct: usize = 0;
let pfBreachValue: usize = 0;
let pfHead: usize = 0;
let pfStamp: usize = 0;
let pfFlags: usize = 0;
let pfDirty: usize = 0;
let pfBreach: usize = 0;
let pfBreachKind: usize = 0;
let batchSym: usize = 0;
let batchPrice: usize = 0;
let pfWatch: usize = 0;
let symPending: usize = 0;
let symPendingList: usize = 0;

/** Revalue calls that took the portfolio-sweep path (tests check both paths ran). */
let sweeps: i32 = 0;
/** Open rows revalued by the current batch, counting each price change of its symbol. */
let touched: i32 = 0;
/** Rows sweepOne read (open or not) since sweepRest began: a slice of the rest stops on it. */
let visited: i32 = 0;
// One portfolio's totals, handed from sweepOne to finish (AssemblyScript has no tuples).
let sumHoldings: f64 = 0;
let sumCost: f64 = 0;
let sumUpnl: f64 = 0;
let sumGross: f64 = 0;
let sumMaxAbs: f64 = 0;

@inline function hdr(slot: i32): i32 {
  return load<i32>(<usize>slot << 2);
}

@inline function setHdr(slot: i32, v: i32): void {
  store<i32>(<usize>slot << 2, v);
}

@inline function col(i: i32): usize {
  return <usize>hdr(H_COLUMNS + i);
}

@inline function f64At(base: usize, i: i32): f64 {
  return load<f64>(base + (<usize>i << 3));
}

@inline function setF64(base: usize, i: i32, v: f64): void {
  store<f64>(base + (<usize>i << 3), v);
}

@inline function i32At(base: usize, i: i32): i32 {
  return load<i32>(base + (<usize>i << 2));
}

@inline function setI32(base: usize, i: i32, v: i32): void {
  store<i32>(base + (<usize>i << 2), v);
}

function loadColumns(): void {
  posQty = col(C_POS_QTY);
  posAvg = col(C_POS_AVG);
  posMark = col(C_POS_MARK);
  posMv = col(C_POS_MV);
  posUpnl = col(C_POS_UPNL);
  posFx = col(C_POS_FX);
  posSym = col(C_POS_SYM);
  posPf = col(C_POS_PF);
  posNextSym = col(C_POS_NEXT_SYM);
  posNextPf = col(C_POS_NEXT_PF);
  posFxSym = col(C_POS_FX_SYM);
  posNextFx = col(C_POS_NEXT_FX);
  symPrice = col(C_SYM_PRICE);
  symHead = col(C_SYM_HEAD);
  symCount = col(C_SYM_COUNT);
  symChanges = col(C_SYM_CHANGES);
  symFxHead = col(C_SYM_FX_HEAD);
  symFxCount = col(C_SYM_FX_COUNT);
  loadPortfolioColumns();
  batchSym = col(C_BATCH_SYM);
  batchPrice = col(C_BATCH_PRICE);
  pfWatch = col(C_PF_WATCH);
  symPending = col(C_SYM_PENDING);
  symPendingList = col(C_SYM_PENDING_LIST);
}

function loadPortfolioColumns(): void {
  pfCash = col(C_PF_CASH);
  pfRealized = col(C_PF_REALIZED);
  pfHoldings = col(C_PF_HOLDINGS);
  pfCostBasis = col(C_PF_COST_BASIS);
  pfUpnl = col(C_PF_UPNL);
  pfGross = col(C_PF_GROSS);
  pfMaxAbsMv = col(C_PF_MAX_ABS_MV);
  pfHwm = col(C_PF_HWM);
  pfMaxLoss = col(C_PF_MAX_LOSS);
  pfMaxDdPct = col(C_PF_MAX_DD_PCT);
  pfMaxWeightPct = col(C_PF_MAX_WEIGHT_PCT);
  pfBreachValue = col(C_PF_BREACH_VALUE);
  pfHead = col(C_PF_HEAD);
  pfStamp = col(C_PF_STAMP);
  pfFlags = col(C_PF_FLAGS);
  pfDirty = col(C_PF_DIRTY);
  pfBreach = col(C_PF_BREACH);
  pfBreachKind = col(C_PF_BREACH_KIND);
}

export function revalue(n: i32): i32 {
  loadColumns();
  const stamp = hdr(H_STAMP) + 1;
  setHdr(H_STAMP, stamp);
  touched = 0;
  if (wantsSweep(n)) {
    sweeps++;
    sweepPortfolios(n, stamp);
  } else {
    recomputeDirty(walkSymbols(n, stamp));
  }
  setHdr(H_TOUCHED, touched);
  return hdr(H_DIRTY_COUNT);
}

export function recompute(pf: i32): i32 {
  loadColumns();
  return recomputeOne(pf);
}

export function sweepBatches(): i32 {
  return sweeps;
}

// The sweep visits every live row once, through the portfolio lists, and recomputes each touched
// portfolio in the same pass. The lists visit each touched row, then recompute walks all the rows
// of every portfolio it dirtied: about rows/pfCap per touched row (pfCap over-counts portfolios by
// up to 2x, which errs toward the lists). The estimate of touched rows counts every entry whose
// price differs from the current one, repeats included, and both of its lists (the rows it prices
// and the rows it converts). Everything is in f64 so nothing wraps, and in the same operation order
// as the TypeScript kernel so both choose alike.
function wantsSweep(n: i32): bool {
  let estimate: f64 = 0;
  for (let k = 0; k < n; k++) {
    const s = i32At(batchSym, k);
    if (f64At(symPrice, s) != f64At(batchPrice, k)) estimate += <f64>(i32At(symCount, s) + i32At(symFxCount, s));
  }
  return sweepPays(estimate);
}

// Whether sweeping every portfolio costs less than walking `estimate` rows through the lists.
function sweepPays(estimate: f64): bool {
  const symCap = hdr(H_SYM_CAP);
  if (estimate * COUNT_GATE < <f64>symCap) return false;
  // Rows are allocated densely from 0 and each is counted once in its symbol's symCount.
  let rows = 0;
  for (let s = 0; s < symCap; s++) rows += i32At(symCount, s);
  const pfCap = <f64>hdr(H_PF_CAP);
  return estimate * (pfCap + <f64>rows) * LIST_ROW_COST >= <f64>rows * pfCap;
}

// A changed price walks the rows it prices (new mark), then the rows it converts (new fx): each row
// ends valued at its current mark and rate, whichever of the two moved last in the batch.
function walkSymbols(n: i32, stamp: i32): i32 {
  let dirty = 0;
  let count = 0;
  for (let k = 0; k < n; k++) {
    const s = i32At(batchSym, k);
    const price = f64At(batchPrice, k);
    if (f64At(symPrice, s) == price) continue;
    setF64(symPrice, s, price);
    for (let pos = i32At(symHead, s); pos != NONE; pos = i32At(posNextSym, pos)) {
      setF64(posMark, pos, price);
      const q = f64At(posQty, pos);
      if (q == 0) continue;
      const fx = f64At(posFx, pos);
      setF64(posMv, pos, q * price * fx);
      setF64(posUpnl, pos, (price - f64At(posAvg, pos)) * q * fx);
      count++;
      const f = i32At(posPf, pos);
      if (i32At(pfStamp, f) != stamp) {
        setI32(pfStamp, f, stamp);
        setI32(pfDirty, dirty++, f);
      }
    }
    for (let pos = i32At(symFxHead, s); pos != NONE; pos = i32At(posNextFx, pos)) {
      setF64(posFx, pos, price);
      const q = f64At(posQty, pos);
      if (q == 0) continue;
      const mark = f64At(posMark, pos);
      setF64(posMv, pos, q * mark * price);
      setF64(posUpnl, pos, (mark - f64At(posAvg, pos)) * q * price);
      count++;
      const f = i32At(posPf, pos);
      if (i32At(pfStamp, f) != stamp) {
        setI32(pfStamp, f, stamp);
        setI32(pfDirty, dirty++, f);
      }
    }
  }
  touched = count;
  return dirty;
}

function recomputeDirty(dirty: i32): void {
  let breaches = 0;
  for (let i = 0; i < dirty; i++) {
    const f = i32At(pfDirty, i);
    if (recomputeOne(f) != 0) setI32(pfBreach, breaches++, f);
  }
  setHdr(H_DIRTY_COUNT, dirty);
  setHdr(H_BREACH_COUNT, breaches);
}

// Same outputs as walkSymbols + recomputeDirty except the dirty (and breach) order, which is
// portfolio-row order. A symbol that changes c times in the batch counts c touches per open row it
// prices and c per open row it converts, as the lists would.
function sweepPortfolios(n: i32, stamp: i32): void {
  applyPrices(n);
  const pfCap = hdr(H_PF_CAP);
  // Rows past the last portfolio are zero-filled by the layout: a head of 0 is real only for the
  // portfolio that owns position row 0 (the sweep runs only when rows exist).
  const rowZeroOwner = i32At(posPf, 0);
  let dirty = 0;
  let breaches = 0;
  for (let f = 0; f < pfCap; f++) {
    const head = i32At(pfHead, f);
    if (head == NONE || (head == 0 && f != rowZeroOwner)) continue;
    if (!sweepOne(head, symChanges)) continue;
    setI32(pfStamp, f, stamp);
    setI32(pfDirty, dirty++, f);
    if (finish(f, sumHoldings, sumCost, sumUpnl, sumGross, sumMaxAbs) != 0) setI32(pfBreach, breaches++, f);
  }
  for (let k = 0; k < n; k++) setI32(symChanges, i32At(batchSym, k), 0);
  setHdr(H_DIRTY_COUNT, dirty);
  setHdr(H_BREACH_COUNT, breaches);
}

function applyPrices(n: i32): void {
  for (let k = 0; k < n; k++) {
    const s = i32At(batchSym, k);
    const price = f64At(batchPrice, k);
    if (f64At(symPrice, s) == price) continue;
    setF64(symPrice, s, price);
    setI32(symChanges, s, i32At(symChanges, s) + 1);
  }
}

// Revalues one portfolio's rows whose symbol or fx symbol changed and sums all its open rows in list
// order, exactly as recomputeOne would after walkSymbols. Returns whether any open row was revalued.
function sweepOne(head: i32, changed: usize): bool {
  // Column bases in locals: V8 does not keep mutable globals in registers across the loop.
  const nextPf = posNextPf, sym = posSym, fxSym = posFxSym, prices = symPrice;
  const qty = posQty, avgs = posAvg, fxs = posFx, marks = posMark, mvs = posMv, upnls = posUpnl;
  let holdings: f64 = 0;
  let cost: f64 = 0;
  let upnl: f64 = 0;
  let gross: f64 = 0;
  let maxAbs: f64 = 0;
  let count = 0;
  let rows = 0;
  for (let pos = head; pos != NONE; pos = i32At(nextPf, pos)) {
    rows++;
    const s = i32At(sym, pos);
    const fs = i32At(fxSym, pos);
    const priceChanges = i32At(changed, s);
    const fxChanges = fs == NONE ? 0 : i32At(changed, fs);
    const q = f64At(qty, pos);
    const avg = f64At(avgs, pos);
    let fx = f64At(fxs, pos);
    let mv: f64;
    let up: f64;
    if ((priceChanges | fxChanges) != 0) {
      // An unchanged mark is rewritten with itself: one store instead of a branch.
      const mark = priceChanges != 0 ? f64At(prices, s) : f64At(marks, pos);
      setF64(marks, pos, mark);
      if (fxChanges != 0) {
        fx = f64At(prices, fs);
        setF64(fxs, pos, fx);
      }
      if (q == 0) continue;
      mv = q * mark * fx;
      up = (mark - avg) * q * fx;
      setF64(mvs, pos, mv);
      setF64(upnls, pos, up);
      count += priceChanges + fxChanges;
    } else {
      if (q == 0) continue;
      mv = f64At(mvs, pos);
      up = f64At(upnls, pos);
    }
    holdings += mv;
    cost += abs<f64>(q) * avg * fx;
    upnl += up;
    const a = abs<f64>(mv);
    gross += a;
    if (a > maxAbs) maxAbs = a;
  }
  visited += rows;
  if (count == 0) return false;
  touched += count;
  sumHoldings = holdings;
  sumCost = cost;
  sumUpnl = upnl;
  sumGross = gross;
  sumMaxAbs = maxAbs;
  return true;
}

// Watched first (src/kernel/kernel.ts revalueWatched / revalueRest): the batch's first pass revalues
// only the rows of watched portfolios; the rows of the others wait, counted in symPending, for
// revalueRest. Same algorithm and order as src/kernel/jsBackend.ts.
export function revalueWatched(n: i32, watchedRows: f64): i32 {
  loadColumns();
  const stamp = hdr(H_STAMP) + 1;
  setHdr(H_STAMP, stamp);
  const estimate = applyBatch(n);
  setHdr(H_DIRTY_COUNT, 0);
  setHdr(H_BREACH_COUNT, 0);
  setHdr(H_TOUCHED, 0);
  if (hdr(H_WATCH_COUNT) == 0) {
    clearChanges(n);
    return 0;
  }
  touched = 0;
  if (estimate * LIST_ROW_COST >= watchedRows) {
    sweeps++;
    sweepWatched(stamp);
    clearChanges(n);
  } else {
    recomputeDirty(walkWatched(n, stamp));
  }
  setHdr(H_TOUCHED, touched);
  return hdr(H_DIRTY_COUNT);
}

function applyBatch(n: i32): f64 {
  let pending = hdr(H_PENDING_COUNT);
  let estimate: f64 = 0;
  for (let k = 0; k < n; k++) {
    const s = i32At(batchSym, k);
    const price = f64At(batchPrice, k);
    if (f64At(symPrice, s) == price) continue;
    setF64(symPrice, s, price);
    setI32(symChanges, s, i32At(symChanges, s) + 1);
    const was = i32At(symPending, s);
    setI32(symPending, s, was + 1);
    if (was == 0) setI32(symPendingList, pending++, s);
    estimate += <f64>(i32At(symCount, s) + i32At(symFxCount, s));
  }
  setHdr(H_PENDING_COUNT, pending);
  return estimate;
}

function clearChanges(n: i32): void {
  for (let k = 0; k < n; k++) setI32(symChanges, i32At(batchSym, k), 0);
}

// Rows of one symbol's lists whose portfolio's watched flag equals `watched`: revalued and their
// portfolios listed dirty. Returns the dirty count.
function walkSymbol(s: i32, stamp: i32, dirty: i32, watched: i32): i32 {
  const price = f64At(symPrice, s);
  for (let pos = i32At(symHead, s); pos != NONE; pos = i32At(posNextSym, pos)) {
    const f = i32At(posPf, pos);
    if ((i32At(pfFlags, f) & FLAG_WATCHED) != watched) continue;
    setF64(posMark, pos, price);
    const q = f64At(posQty, pos);
    if (q == 0) continue;
    const fx = f64At(posFx, pos);
    setF64(posMv, pos, q * price * fx);
    setF64(posUpnl, pos, (price - f64At(posAvg, pos)) * q * fx);
    touched++;
    if (i32At(pfStamp, f) != stamp) {
      setI32(pfStamp, f, stamp);
      setI32(pfDirty, dirty++, f);
    }
  }
  for (let pos = i32At(symFxHead, s); pos != NONE; pos = i32At(posNextFx, pos)) {
    const f = i32At(posPf, pos);
    if ((i32At(pfFlags, f) & FLAG_WATCHED) != watched) continue;
    setF64(posFx, pos, price);
    const q = f64At(posQty, pos);
    if (q == 0) continue;
    const mark = f64At(posMark, pos);
    setF64(posMv, pos, q * mark * price);
    setF64(posUpnl, pos, (mark - f64At(posAvg, pos)) * q * price);
    touched++;
    if (i32At(pfStamp, f) != stamp) {
      setI32(pfStamp, f, stamp);
      setI32(pfDirty, dirty++, f);
    }
  }
  return dirty;
}

function walkWatched(n: i32, stamp: i32): i32 {
  let dirty = 0;
  for (let k = 0; k < n; k++) {
    const s = i32At(batchSym, k);
    if (i32At(symChanges, s) == 0) continue;
    setI32(symChanges, s, 0);
    dirty = walkSymbol(s, stamp, dirty, FLAG_WATCHED);
  }
  return dirty;
}

function sweepWatched(stamp: i32): void {
  const watched = hdr(H_WATCH_COUNT);
  let dirty = 0;
  let breaches = 0;
  for (let i = 0; i < watched; i++) {
    const f = i32At(pfWatch, i);
    const head = i32At(pfHead, f);
    if (head == NONE) continue;
    if (!sweepOne(head, symChanges)) continue;
    setI32(pfStamp, f, stamp);
    setI32(pfDirty, dirty++, f);
    if (finish(f, sumHoldings, sumCost, sumUpnl, sumGross, sumMaxAbs) != 0) setI32(pfBreach, breaches++, f);
  }
  setHdr(H_DIRTY_COUNT, dirty);
  setHdr(H_BREACH_COUNT, breaches);
}

export function revalueRest(): i32 {
  loadColumns();
  const stamp = hdr(H_STAMP) + 1;
  setHdr(H_STAMP, stamp);
  const pending = hdr(H_PENDING_COUNT);
  let estimate: f64 = 0;
  for (let i = 0; i < pending; i++) {
    const s = i32At(symPendingList, i);
    estimate += <f64>(i32At(symCount, s) + i32At(symFxCount, s));
  }
  touched = 0;
  if (sweepPays(estimate)) {
    sweeps++;
    sweepUnwatched(stamp);
  } else {
    let dirty = 0;
    for (let i = 0; i < pending; i++) dirty = walkSymbol(i32At(symPendingList, i), stamp, dirty, 0);
    recomputeDirty(dirty);
  }
  for (let i = 0; i < pending; i++) setI32(symPending, i32At(symPendingList, i), 0);
  setHdr(H_PENDING_COUNT, 0);
  setHdr(H_TOUCHED, touched);
  return hdr(H_DIRTY_COUNT);
}

// One slice of the pass over the rest (src/kernel/kernel.ts revalueRestSlice): the unwatched
// portfolios of rows [from, to) against symPending, in row order, stopping after the portfolio at
// which rowsMax rows have been read. Returns the next portfolio row; leaves the pending symbols to
// the caller, which clears them once a whole lap ran after the last batch.
export function sweepRest(from: i32, to: i32, rowsMax: i32): i32 {
  loadColumns();
  const stamp = hdr(H_STAMP) + 1;
  setHdr(H_STAMP, stamp);
  const rowZeroOwner = i32At(posPf, 0);
  let dirty = 0;
  let breaches = 0;
  touched = 0;
  visited = 0;
  let f = from;
  while (f < to && visited < rowsMax) {
    const head = i32At(pfHead, f);
    const skip = head == NONE || (head == 0 && f != rowZeroOwner) || (i32At(pfFlags, f) & FLAG_WATCHED) != 0;
    if (!skip && sweepOne(head, symPending)) {
      setI32(pfStamp, f, stamp);
      setI32(pfDirty, dirty++, f);
      if (finish(f, sumHoldings, sumCost, sumUpnl, sumGross, sumMaxAbs) != 0) setI32(pfBreach, breaches++, f);
    }
    f++;
  }
  setHdr(H_DIRTY_COUNT, dirty);
  setHdr(H_BREACH_COUNT, breaches);
  setHdr(H_TOUCHED, touched);
  return f;
}

function sweepUnwatched(stamp: i32): void {
  const pfCap = hdr(H_PF_CAP);
  const rowZeroOwner = i32At(posPf, 0);
  let dirty = 0;
  let breaches = 0;
  for (let f = 0; f < pfCap; f++) {
    const head = i32At(pfHead, f);
    if (head == NONE || (head == 0 && f != rowZeroOwner) || (i32At(pfFlags, f) & FLAG_WATCHED) != 0) continue;
    if (!sweepOne(head, symPending)) continue;
    setI32(pfStamp, f, stamp);
    setI32(pfDirty, dirty++, f);
    if (finish(f, sumHoldings, sumCost, sumUpnl, sumGross, sumMaxAbs) != 0) setI32(pfBreach, breaches++, f);
  }
  setHdr(H_DIRTY_COUNT, dirty);
  setHdr(H_BREACH_COUNT, breaches);
}

function recomputeOne(f: i32): i32 {
  let holdings: f64 = 0;
  let cost: f64 = 0;
  let upnl: f64 = 0;
  let gross: f64 = 0;
  let maxAbs: f64 = 0;
  for (let pos = i32At(pfHead, f); pos != NONE; pos = i32At(posNextPf, pos)) {
    const q = f64At(posQty, pos);
    if (q == 0) continue;
    const mv = f64At(posMv, pos);
    holdings += mv;
    cost += abs<f64>(q) * f64At(posAvg, pos) * f64At(posFx, pos);
    upnl += f64At(posUpnl, pos);
    const a = abs<f64>(mv);
    gross += a;
    if (a > maxAbs) maxAbs = a;
  }
  return finish(f, holdings, cost, upnl, gross, maxAbs);
}

function finish(f: i32, holdings: f64, cost: f64, upnl: f64, gross: f64, maxAbs: f64): i32 {
  setF64(pfHoldings, f, holdings);
  setF64(pfCostBasis, f, cost);
  setF64(pfUpnl, f, upnl);
  setF64(pfGross, f, gross);
  setF64(pfMaxAbsMv, f, maxAbs);
  const equity = f64At(pfCash, f) + holdings;
  if (equity > f64At(pfHwm, f)) setF64(pfHwm, f, equity);
  if ((i32At(pfFlags, f) & FLAG_BREACH_LATCHED) != 0) return 0;
  return checkLimits(f, equity, upnl, gross, maxAbs);
}

// NaN limits mean "no limit": `x == x` is false only for NaN. Order is the breach priority.
function checkLimits(f: i32, equity: f64, upnl: f64, gross: f64, maxAbs: f64): i32 {
  let kind = 0;
  let value: f64 = 0;
  const maxLoss = f64At(pfMaxLoss, f);
  const maxDd = f64At(pfMaxDdPct, f);
  const maxW = f64At(pfMaxWeightPct, f);
  const hwm = f64At(pfHwm, f);
  const totalReturn = f64At(pfRealized, f) + upnl;
  if (maxLoss == maxLoss && totalReturn < -maxLoss) {
    kind = BREACH_MAX_LOSS;
    value = totalReturn;
  } else if (maxDd == maxDd && hwm > 0 && ((hwm - equity) / hwm) * 100 > maxDd) {
    kind = BREACH_MAX_DRAWDOWN;
    value = ((hwm - equity) / hwm) * 100;
  } else if (maxW == maxW && gross > 0 && (maxAbs / gross) * 100 > maxW) {
    kind = BREACH_MAX_WEIGHT;
    value = (maxAbs / gross) * 100;
  }
  if (kind != 0) {
    setI32(pfFlags, f, i32At(pfFlags, f) | FLAG_BREACH_LATCHED);
    setI32(pfBreachKind, f, kind);
    setF64(pfBreachValue, f, value);
  }
  return kind;
}
