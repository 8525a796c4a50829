// Owns the kernel's columnar memory: rows for portfolios, positions and symbols, growth by doubling,
// and the writes a trade makes. Ticks go through revalue(); everything else here is off the tick path.

import { assert } from '../assert.js';
import type { KernelBackend, KernelKind } from './backend.js';
import { Conversions, type ConversionLegIds } from './conversions.js';
import { FLAG_BREACH_LATCHED, FLAG_WATCHED, H, HEADER_BYTES, NONE, columnSpecs, computeLayout, viewColumns, writeHeader, type Capacities, type Columns, type Layout } from './layout.js';

export interface KernelLimits {
  positionsMax: number;
  portfoliosMax: number;
  symbolsMax: number;
}

const initialCaps: Capacities = { pos: 1024, pf: 256, sym: 256, batch: 256 };

export class Kernel {
  cols!: Columns;
  private header!: Int32Array;
  private layout!: Layout;
  positions = 0;
  portfolios = 0;
  symbols = 0;
  /** Open positions (quantity != 0): the denominator of the incremental ratio. */
  openPositions = 0;
  /** Entries of the last revalue's batch, the conversions it appended included. */
  batchLength = 0;
  /** Derived FX rates (direct, inverse, cross), re-derived ahead of each revalue (conversions.ts). */
  private readonly conversions = new Conversions();
  /** Portfolio -> its slot in pfWatch (valid while flagged FLAG_WATCHED). */
  private watchIndex = new Int32Array(0);
  /**
   * The sliced pass over the rest (revalueRestSlice): the next portfolio row a slice sweeps, and the
   * portfolio rows still to sweep before every unwatched row has seen every pending price. A batch
   * that moves a price while a pass is under way makes it a whole lap again from where it stands, so
   * the portfolios already swept see that price too.
   */
  private restCursor = 0;
  private restLeft = 0;
  /** Portfolio rows the slices have swept, ever (src/shard/restPass.ts counts laps with it). */
  restSwept = 0;
  /** The last revalueWatched moved a price (its unwatched rows wait for the rest). */
  batchMoved = false;

  constructor(
    readonly backend: KernelBackend,
    readonly limits: KernelLimits,
  ) {
    this.relayout(initialCaps);
  }

  get kind(): KernelKind {
    return this.backend.kind;
  }

  get batchCapacity(): number {
    return this.layout.caps.batch;
  }

  get dirtyCount(): number {
    return this.header[H.dirtyCount];
  }

  get breachCount(): number {
    return this.header[H.breachCount];
  }

  /** Stamp of the last revalue: a portfolio it dirtied has pfStamp equal to it. */
  get stamp(): number {
    return this.header[H.stamp];
  }

  get touched(): number {
    return this.header[H.touched];
  }

  /** Bytes of kernel memory in use by the layout. */
  get bytes(): number {
    return this.layout.bytes;
  }

  addPortfolio(): number {
    assert(this.portfolios < this.limits.portfoliosMax, 'portfolio rows exhausted: callers check portfoliosMax first');
    if (this.portfolios === this.layout.caps.pf) this.grow({ ...this.layout.caps, pf: this.layout.caps.pf * 2 });
    const f = this.portfolios++;
    const c = this.cols;
    c.pfCash[f] = 0;
    c.pfRealized[f] = 0;
    c.pfHoldings[f] = 0;
    c.pfCostBasis[f] = 0;
    c.pfUpnl[f] = 0;
    c.pfGross[f] = 0;
    c.pfMaxAbsMv[f] = 0;
    c.pfHwm[f] = 0;
    c.pfMaxLoss[f] = NaN;
    c.pfMaxDdPct[f] = NaN;
    c.pfMaxWeightPct[f] = NaN;
    c.pfBreachValue[f] = 0;
    c.pfHead[f] = NONE;
    c.pfStamp[f] = 0;
    c.pfFlags[f] = 0;
    c.pfBreachKind[f] = 0;
    return f;
  }

  /**
   * Room for `portfolios` more portfolio rows and `positions` more position rows, in one growth:
   * a restore knows its row counts up front, and doubling up to 2.5M rows copied the columns 12
   * times (a quarter of a clean restart's worker time at 100,000 x 25). Never beyond the limits.
   */
  reserve(portfolios: number, positions: number): void {
    const caps = this.layout.caps;
    const pf = Math.min(this.limits.portfoliosMax, this.portfolios + portfolios);
    const pos = Math.min(this.limits.positionsMax, this.positions + positions);
    if (pf <= caps.pf && pos <= caps.pos) return;
    this.grow({ ...caps, pf: Math.max(caps.pf, pf), pos: Math.max(caps.pos, pos) });
  }

  /** Ensures symbol rows up to id (ids are dense, assigned by the engine's symbol table). */
  ensureSymbol(id: number): void {
    assert(id < this.limits.symbolsMax, 'symbol id beyond symbolsMax');
    while (id >= this.layout.caps.sym) this.grow({ ...this.layout.caps, sym: this.layout.caps.sym * 2, batch: this.layout.caps.sym * 2 });
    this.conversions.ensureSymbols(id + 1);
    const c = this.cols;
    for (; this.symbols <= id; this.symbols++) {
      c.symPrice[this.symbols] = 0;
      c.symHead[this.symbols] = NONE;
      c.symCount[this.symbols] = 0;
      c.symFxHead[this.symbols] = NONE;
      c.symFxCount[this.symbols] = 0;
    }
  }

  addPosition(pf: number, sym: number): number {
    assert(pf < this.portfolios && sym < this.symbols, 'position for an unknown portfolio or symbol row');
    assert(this.positions < this.limits.positionsMax, 'position rows exhausted: callers check positionsMax first');
    if (this.positions === this.layout.caps.pos) this.grow({ ...this.layout.caps, pos: this.layout.caps.pos * 2 });
    const p = this.positions++;
    const c = this.cols;
    c.posQty[p] = 0;
    c.posAvg[p] = 0;
    c.posMark[p] = c.symPrice[sym];
    c.posMv[p] = 0;
    c.posUpnl[p] = 0;
    c.posFx[p] = 1;
    c.posFxSym[p] = NONE;
    c.posNextFx[p] = NONE;
    c.posSym[p] = sym;
    c.posPf[p] = pf;
    c.posNextSym[p] = c.symHead[sym];
    c.symHead[sym] = p;
    c.symCount[sym]++;
    c.posNextPf[p] = c.pfHead[pf];
    c.pfHead[pf] = p;
    return p;
  }

  /**
   * Appends n position rows at once and returns the first (a restore from snapshot columns, which
   * knows its rows up front: one growth, no per-row call). Until linkRows(first, n), the rows belong
   * to the caller, who writes for each: posPf, posSym, posQty, posAvg, and posMark = the price its
   * position last traded at (the mark until its symbol ticks, as setPosition takes it).
   */
  appendRows(n: number): number {
    assert(n >= 0 && this.positions + n <= this.limits.positionsMax, 'position rows exhausted: callers check positionsMax first');
    const caps = this.layout.caps;
    if (this.positions + n > caps.pos) this.grow({ ...caps, pos: Math.max(caps.pos * 2, this.positions + n) });
    const first = this.positions;
    this.positions += n;
    return first;
  }

  /**
   * Rows [first, first + n) of appendRows, filled by the caller, left exactly as addPosition then
   * setPosition(row, posQty, posAvg, posMark) row by row would leave them, in one pass: the mark
   * (the symbol's tick once seen, else the trade price), value and P&L without conversion (a row that
   * converts gets setPositionFx and setPosition after, as a new row would), and the per-symbol and
   * per-portfolio lists linked in row order, so revaluation and totals visit rows in the same order.
   */
  linkRows(first: number, n: number): void {
    assert(first >= 0 && first + n <= this.positions, 'linkRows on rows appendRows made');
    // Columns in locals: the columns object has too many properties for fast access in a loop.
    const { posSym, posPf, posQty, posAvg, posMark, posMv, posUpnl, posFx, posFxSym, posNextFx, posNextSym, posNextPf, symPrice, symHead, symCount, pfHead } = this.cols;
    const symbols = this.symbols;
    const portfolios = this.portfolios;
    const end = first + n;
    // No conversion: fx 1 and no fx list (setPositionFx links the rows that convert, after).
    posFx.fill(1, first, end);
    posFxSym.fill(NONE, first, end);
    posNextFx.fill(NONE, first, end);
    let opened = 0;
    for (let p = first; p < end; p++) {
      const sym = posSym[p];
      const pf = posPf[p];
      if (!(sym >= 0 && sym < symbols && pf >= 0 && pf < portfolios)) assert(false, 'position for an unknown portfolio or symbol row');
      const q = posQty[p];
      const tick = symPrice[sym];
      const mark = tick > 0 ? tick : posMark[p];
      // setPosition's expressions, with the row's fx of 1.
      const fx = 1;
      posMark[p] = mark;
      posMv[p] = q * mark * fx;
      posUpnl[p] = (mark - posAvg[p]) * q * fx;
      posNextSym[p] = symHead[sym];
      symHead[sym] = p;
      symCount[sym]++;
      posNextPf[p] = pfHead[pf];
      pfHead[pf] = p;
      if (q !== 0) opened++;
    }
    this.openPositions += opened;
  }

  /**
   * Sets the symbol whose price converts position p into its portfolio's currency (NONE: no
   * conversion). Call it once, before the row's first setPosition; setting the same symbol again is
   * a no-op, and any other change is a programmer error (rows are never unlinked from fx lists).
   * The rate is that symbol's current price, or 0 while it has never been seen: such a row
   * contributes 0 to every total until the rate arrives (see fxRateOf), then revalue converts it.
   * Recomputes the row's mv and upnl; the caller recomputes the portfolio, as after setPosition.
   */
  setPositionFx(p: number, fxSym: number): void {
    const c = this.cols;
    assert(p < this.positions && fxSym < this.symbols && fxSym >= NONE, 'fx symbol for an unknown position or symbol row');
    const was = c.posFxSym[p];
    if (was === fxSym) return;
    assert(was === NONE, 'a position\'s fx symbol is set once and never changes');
    c.posFxSym[p] = fxSym;
    c.posNextFx[p] = c.symFxHead[fxSym];
    c.symFxHead[fxSym] = p;
    c.symFxCount[fxSym]++;
    const fx = c.symPrice[fxSym];
    const q = c.posQty[p];
    const mark = c.posMark[p];
    c.posFx[p] = fx;
    c.posMv[p] = q * mark * fx;
    c.posUpnl[p] = (mark - c.posAvg[p]) * q * fx;
  }

  /**
   * Makes symbol row `sym` carry the rate derived from `legs` (src/domain/fx.ts): priced now from the
   * legs' current prices, re-derived by every revalue whose batch moves a leg. Define it before any
   * row links to it; defining it again is a no-op.
   */
  defineConversion(sym: number, legs: ConversionLegIds): void {
    assert(sym < this.symbols, 'conversion on an unknown symbol row');
    if (this.conversions.isDefined(sym)) return;
    assert(this.cols.symFxCount[sym] === 0 && this.cols.symCount[sym] === 0, 'a conversion row is defined before rows link to it');
    this.cols.symPrice[sym] = this.conversions.define(sym, legs, this.cols.symPrice);
  }

  get conversionCount(): number {
    return this.conversions.count;
  }

  hasConversion(sym: number): boolean {
    return this.conversions.isDefined(sym);
  }

  /** The symbol converting position p, or NONE. */
  fxSymbolOf(p: number): number {
    return this.cols.posFxSym[p];
  }

  /**
   * The conversion rate applied to position p: 1 without conversion, else the last price of its fx
   * symbol, 0 while that rate has never been seen (the caller flags such a position as unconverted).
   */
  fxRateOf(p: number): number {
    return this.cols.posFx[p];
  }

  /** Writes a position after a trade: the mark is the symbol's tick price once seen, else the trade price. */
  setPosition(p: number, quantity: number, avgCost: number, tradePrice: number): void {
    const c = this.cols;
    const was = c.posQty[p];
    const tick = c.symPrice[c.posSym[p]];
    const mark = tick > 0 ? tick : tradePrice;
    const fx = c.posFx[p];
    c.posQty[p] = quantity;
    c.posAvg[p] = avgCost;
    c.posMark[p] = mark;
    c.posMv[p] = quantity * mark * fx;
    c.posUpnl[p] = (mark - avgCost) * quantity * fx;
    if (was === 0 && quantity !== 0) this.openPositions++;
    else if (was !== 0 && quantity === 0) this.openPositions--;
  }

  setLimits(f: number, maxLoss: number | null | undefined, maxDdPct: number | null | undefined, maxWeightPct: number | null | undefined): void {
    const c = this.cols;
    c.pfMaxLoss[f] = maxLoss ?? NaN;
    c.pfMaxDdPct[f] = maxDdPct ?? NaN;
    c.pfMaxWeightPct[f] = maxWeightPct ?? NaN;
  }

  /** Re-arms limit checks (after resume or new limits). */
  clearBreach(f: number): void {
    this.cols.pfFlags[f] &= ~FLAG_BREACH_LATCHED;
  }

  /**
   * Applies batchSym/batchPrice[0, n). With conversions defined, each one a batch symbol feeds is
   * re-derived and appended to the batch first, so n plus the conversions must fit batchCapacity
   * (distinct symbols always do: conversions are symbol rows).
   */
  revalue(n: number): number {
    assert(n <= this.layout.caps.batch, 'batch larger than its capacity');
    assert(this.header[H.pendingCount] === 0, 'revalue with unwatched rows pending: revalueRest first');
    const m = this.conversions.count === 0 ? n : this.conversions.extend(this.cols, n, this.layout.caps.batch);
    this.batchLength = m;
    return this.backend.revalue(m);
  }

  /** Portfolios whose rows every batch revalues first (setWatched). */
  get watchedCount(): number {
    return this.header[H.watchCount];
  }

  /** Symbols whose price changed since the last revalueRest: the unwatched rows have not seen them. */
  get pendingCount(): number {
    return this.header[H.pendingCount];
  }

  /**
   * Puts portfolio f on the watch list (or takes it off): its rows are revalued by every batch's
   * first pass. Only while nothing is pending (revalueRest first): a portfolio changing sides with
   * prices pending would skip them or see them twice.
   */
  setWatched(f: number, on: boolean): void {
    assert(this.header[H.pendingCount] === 0, 'watch list changed while unwatched rows have prices pending');
    const c = this.cols;
    if (((c.pfFlags[f] & FLAG_WATCHED) !== 0) === on) return;
    if (this.watchIndex.length < this.layout.caps.pf) {
      const next = new Int32Array(this.layout.caps.pf);
      next.set(this.watchIndex);
      this.watchIndex = next;
    }
    const h = this.header;
    if (on) {
      c.pfFlags[f] |= FLAG_WATCHED;
      this.watchIndex[f] = h[H.watchCount];
      c.pfWatch[h[H.watchCount]++] = f;
      return;
    }
    c.pfFlags[f] &= ~FLAG_WATCHED;
    const last = c.pfWatch[--h[H.watchCount]];
    const at = this.watchIndex[f];
    c.pfWatch[at] = last;
    this.watchIndex[last] = at;
  }

  /**
   * Watched first: applies batchSym/batchPrice[0, n) (conversions appended, as revalue) and revalues
   * only the watched portfolios' rows; the other rows wait for revalueRest. Figures, once both passes
   * ran, are the bits revalue gives (same row expressions, same per-portfolio summation order);
   * only the dirty order differs (watched first).
   */
  revalueWatched(n: number): number {
    assert(n <= this.layout.caps.batch, 'batch larger than its capacity');
    const m = this.conversions.count === 0 ? n : this.conversions.extend(this.cols, n, this.layout.caps.batch);
    this.batchLength = m;
    this.batchMoved = this.movesAPrice(m);
    if (this.batchMoved) this.restLeft = this.portfolios;
    const watched = this.header[H.watchCount];
    // The watched portfolios' rows, taken as the book's average: both backends get the same number.
    const watchedRows = this.portfolios === 0 ? 0 : (watched * this.positions) / this.portfolios;
    return this.backend.revalueWatched(m, watchedRows);
  }

  /** Whether batch entries [0, m) change any symbol's price (before the backend applies them). */
  private movesAPrice(m: number): boolean {
    const { batchSym, batchPrice, symPrice } = this.cols;
    for (let k = 0; k < m; k++) if (symPrice[batchSym[k]] !== batchPrice[k]) return true;
    return false;
  }

  /** The unwatched portfolios' rows of every symbol pending since the last call (see revalueWatched). */
  revalueRest(): number {
    this.restLeft = 0;
    return this.backend.revalueRest();
  }

  /**
   * A bounded piece of the pass over the rest, so that a batch waiting behind it waits at most one
   * slice: the whole pass in one call when the pending symbols' lists reach few rows (at most rowsMax
   * of estimated work), else a sweep of the unwatched portfolios from where the last slice stopped,
   * reading about rowsMax position rows (never past the last portfolio row: the next slice starts
   * again from row 0). Once every portfolio was swept since the last batch that moved a price, the
   * pending symbols are cleared (pendingCount 0). Figures and high-water marks, once nothing is
   * pending, are those revalueRest would leave: every row is revalued from its current inputs and
   * every dirty portfolio summed in list order. Returns the slice's dirtyCount (pfDirty, pfBreach).
   */
  revalueRestSlice(rowsMax: number): number {
    assert(rowsMax >= 1, 'a slice reads at least one row');
    const h = this.header;
    const pending = h[H.pendingCount];
    if (pending === 0) return 0;
    if (this.restLeft === 0 || this.walkCost(pending) <= rowsMax) return this.revalueRest();
    if (this.restCursor >= this.portfolios) this.restCursor = 0;
    const to = Math.min(this.portfolios, this.restCursor + this.restLeft);
    const next = this.backend.sweepRest(this.restCursor, to, rowsMax);
    this.restLeft -= next - this.restCursor;
    this.restSwept += next - this.restCursor;
    this.restCursor = next;
    if (this.restLeft === 0) {
      const { symPending, symPendingList } = this.cols;
      for (let i = 0; i < pending; i++) symPending[symPendingList[i]] = 0;
      h[H.pendingCount] = 0;
    }
    return h[H.dirtyCount];
  }

  /**
   * Rows the lists would read to revalue the pending symbols' unwatched rows and recompute the
   * portfolios they dirty (each row of those symbols, then about a portfolio's rows per row).
   */
  private walkCost(pending: number): number {
    const { symPendingList, symCount, symFxCount } = this.cols;
    let rows = 0;
    for (let i = 0; i < pending; i++) {
      const s = symPendingList[i];
      rows += symCount[s] + symFxCount[s];
    }
    return this.portfolios === 0 ? rows : rows * (1 + this.positions / this.portfolios);
  }

  recompute(f: number): number {
    return this.backend.recompute(f);
  }

  private grow(caps: Capacities): void {
    assert(caps.batch >= caps.sym, 'batch capacity covers every symbol');
    const kept = columnSpecs.map((spec) => {
      const count = spec.group === 'pos' ? this.positions : spec.group === 'pf' ? this.portfolios : spec.group === 'sym' ? this.symbols : 0;
      return this.cols[spec.name].slice(0, count);
    });
    // The header is rewritten by relayout: the stamp and the two list counts carry over.
    const { stamp, watchCount, pendingCount } = H;
    const slots = [this.header[stamp], this.header[watchCount], this.header[pendingCount]];
    this.relayout(caps);
    columnSpecs.forEach((spec, i) => this.cols[spec.name].set(kept[i] as never));
    [this.header[stamp], this.header[watchCount], this.header[pendingCount]] = slots;
  }

  private relayout(caps: Capacities): void {
    // Only bytes an earlier layout covered can be non-zero: layouts only grow, the WASM memory's new
    // pages and the JS backend's new buffer are zero. Zeroing the whole new extent touched every page
    // of a 2.5M-row kernel once more before the rows were written (a restore's largest single cost).
    const written = this.layout === undefined ? Number.MAX_SAFE_INTEGER : this.layout.bytes;
    this.layout = computeLayout(caps);
    const buffer = this.backend.resize(this.layout.bytes);
    new Uint8Array(buffer, 0, Math.min(written, this.layout.bytes)).fill(0);
    writeHeader(buffer, this.layout);
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.cols = viewColumns(buffer, this.layout);
    this.backend.bind(buffer, this.layout);
  }
}
