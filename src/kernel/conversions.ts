// The kernel's table of derived FX rates (src/domain/fx.ts has the rule). A conversion is a symbol row
// of its own (Q>B) whose price is derived from up to six market symbols (direct, inverse, two legs
// through the pivot, each direct or inverse); positions link to it like to any fx symbol
// (Kernel.setPositionFx). Kernel.revalue runs `extend` first: every conversion a batch symbol feeds
// is re-derived from the batch's prices and, when its rate moved, appended to the same batch, so the
// backend revalues every position a moving leg converts in the same pass. Shared by both backends
// (it runs before them, in TypeScript), so WASM and TS see the same rates, bit for bit.
// Bounded: conversions are symbol rows (<= symbolsMax), each with at most six legs.

import { assert } from '../assert.js';
import { conversionRate } from '../domain/fx.js';
import { NONE, type Columns } from './layout.js';

/** Legs of a conversion, in the order of the rule; NONE where absent. */
export interface ConversionLegIds {
  direct: number;
  inverse: number;
  inDirect: number;
  inInverse: number;
  outDirect: number;
  outInverse: number;
}

const LEGS = 6;

function grownInt32(a: Int32Array<ArrayBuffer>, size: number, fill: number): Int32Array<ArrayBuffer> {
  if (size <= a.length) return a;
  const next = new Int32Array(Math.max(size, a.length * 2)).fill(fill);
  next.set(a);
  return next;
}

export class Conversions {
  /** Number of conversions defined. */
  count = 0;
  /** Per conversion: its symbol row and its legs (LEGS per conversion). */
  private convSym = new Int32Array(16);
  private legs = new Int32Array(16 * LEGS);
  /** Per symbol: the conversion index it is the row of, or NONE. */
  private convOf = new Int32Array(256).fill(NONE);
  /** Per symbol: first entry of the conversions it feeds (a list over depNext / depConv). */
  private depHead = new Int32Array(256).fill(NONE);
  private depNext = new Int32Array(64);
  private depConv = new Int32Array(64);
  private deps = 0;
  /** Per symbol: the round its batch price was seen in, and that price (last one wins, as in the backends). */
  private pendRound = new Int32Array(256);
  private pendPrice = new Float64Array(256);
  /** Per conversion: the round it was marked in; the list of marked conversions of this round. */
  private dirtyRound = new Int32Array(16);
  private dirtyList = new Int32Array(16);
  private round = 0;

  /** Makes room for symbol ids below `symbols`. */
  ensureSymbols(symbols: number): void {
    if (symbols <= this.convOf.length) return;
    this.convOf = grownInt32(this.convOf, symbols, NONE);
    this.depHead = grownInt32(this.depHead, symbols, NONE);
    this.pendRound = grownInt32(this.pendRound, symbols, 0);
    const price = new Float64Array(this.convOf.length);
    price.set(this.pendPrice);
    this.pendPrice = price;
  }

  isDefined(sym: number): boolean {
    return sym < this.convOf.length && this.convOf[sym] !== NONE;
  }

  /** Defines the conversion carried by symbol row `sym`; returns its current rate (0: no path priced yet). */
  define(sym: number, legIds: ConversionLegIds, symPrice: Float64Array): number {
    assert(!this.isDefined(sym), 'a conversion is defined once');
    const c = this.count++;
    this.convSym = grownInt32(this.convSym, this.count, 0);
    this.legs = grownInt32(this.legs, this.count * LEGS, NONE);
    this.dirtyRound = grownInt32(this.dirtyRound, this.count, 0);
    this.dirtyList = grownInt32(this.dirtyList, this.count, 0);
    this.convSym[c] = sym;
    this.convOf[sym] = c;
    const ids = [legIds.direct, legIds.inverse, legIds.inDirect, legIds.inInverse, legIds.outDirect, legIds.outInverse];
    for (let i = 0; i < LEGS; i++) {
      const leg = ids[i];
      this.legs[c * LEGS + i] = leg;
      if (leg === NONE) continue;
      // The same market symbol can be two legs of one conversion only in degenerate pairs; one entry is enough.
      if (ids.indexOf(leg) < i) continue;
      this.depNext = grownInt32(this.depNext, this.deps + 1, 0);
      this.depConv = grownInt32(this.depConv, this.deps + 1, 0);
      this.depConv[this.deps] = c;
      this.depNext[this.deps] = this.depHead[leg];
      this.depHead[leg] = this.deps++;
    }
    return this.rateOf(c, symPrice, false);
  }

  /**
   * Appends to the batch [0, n) one entry per conversion whose rate the batch moves, after the entries
   * of its legs; returns the new batch length. No allocation.
   */
  extend(c: Columns, n: number, capacity: number): number {
    const round = ++this.round;
    const { batchSym, batchPrice, symPrice } = c;
    let dirty = 0;
    for (let k = 0; k < n; k++) {
      const s = batchSym[k];
      const head = this.depHead[s];
      if (head === NONE) continue;
      this.pendRound[s] = round;
      this.pendPrice[s] = batchPrice[k];
      for (let e = head; e !== NONE; e = this.depNext[e]) {
        const conv = this.depConv[e];
        if (this.dirtyRound[conv] === round) continue;
        this.dirtyRound[conv] = round;
        this.dirtyList[dirty++] = conv;
      }
    }
    let m = n;
    for (let i = 0; i < dirty; i++) {
      const conv = this.dirtyList[i];
      const sym = this.convSym[conv];
      const rate = this.rateOf(conv, symPrice, true);
      if (rate === 0 || rate === symPrice[sym]) continue;
      assert(m < capacity, 'batch capacity covers the batch and every conversion');
      batchSym[m] = sym;
      batchPrice[m] = rate;
      m++;
    }
    return m;
  }

  /** The conversion's rate from the prices as they stand (pending: this round's batch prices first). */
  private rateOf(conv: number, symPrice: Float64Array, pending: boolean): number {
    const at = conv * LEGS;
    return conversionRate(
      this.legPrice(at, symPrice, pending),
      this.legPrice(at + 1, symPrice, pending),
      this.legPrice(at + 2, symPrice, pending),
      this.legPrice(at + 3, symPrice, pending),
      this.legPrice(at + 4, symPrice, pending),
      this.legPrice(at + 5, symPrice, pending),
    );
  }

  private legPrice(slot: number, symPrice: Float64Array, pending: boolean): number {
    const s = this.legs[slot];
    if (s === NONE) return 0;
    return pending && this.pendRound[s] === this.round ? this.pendPrice[s] : symPrice[s];
  }
}
