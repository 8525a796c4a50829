// The suspect-tick filter: sits on the main thread between validation and the coalescer. A tick that
// moves its symbol more than movePct from the reference (the last applied price, restored prices
// included) is held instead of applied; the next tick decides, or an admin does. A bad print then
// never moves a mark, a P&L or a risk check, and a real jump costs one tick of delay.
//
// Per tick it reads and writes typed arrays indexed by symbol id and allocates nothing. At most one
// tick is held per symbol (a newer suspect tick replaces it), so memory is bounded by symbolsMax.
// What to do with a verdict (events, counters, the coalescer) is the engine's business.

/** The tick moves the mark normally. */
export const PASS = 0;
/** The tick is held (nothing was held for the symbol). */
export const HOLD = 1;
/** The tick is held and replaces the one held before (also suspect against the reference). */
export const REPLACE = 2;
/** The held tick is confirmed: this tick is within movePct of it; the new level is real. Apply this tick. */
export const CONFIRM = 3;
/** The held tick was a bad print: this tick is back within movePct of the reference. Apply this tick. */
export const REJECT = 4;
export type Verdict = typeof PASS | typeof HOLD | typeof REPLACE | typeof CONFIRM | typeof REJECT;

/** A held tick as the admin API lists it. */
export interface HeldTick {
  symbol: string;
  price: number;
  tick_ts: number;
  ref_price: number;
  move_pct: number;
}

/** |price / ref - 1| * 100: how far a price moved from a reference, in percent. */
export function movePctOf(price: number, ref: number): number {
  return Math.abs(price / ref - 1) * 100;
}

export class SuspectFilter {
  /** Last applied price per symbol; 0 = none yet (the first tick of a symbol is never suspect). */
  private readonly ref: Float64Array;
  /** Held tick per symbol; price 0 = nothing held. */
  private readonly heldPrice: Float64Array;
  private readonly heldTs: Float64Array;
  /** NaN = the tick had no size. */
  private readonly heldSize: Float64Array;
  /** Symbols holding a tick now. */
  heldCount = 0;

  constructor(
    symbolsMax: number,
    /** 0 disables the filter. */
    readonly movePct: number,
  ) {
    this.ref = new Float64Array(symbolsMax);
    this.heldPrice = new Float64Array(symbolsMax);
    this.heldTs = new Float64Array(symbolsMax);
    this.heldSize = new Float64Array(symbolsMax);
  }

  get enabled(): boolean {
    return this.movePct > 0;
  }

  /** What to do with a valid, not out-of-order tick. Changes nothing: see hold / release / applied. */
  check(id: number, price: number): Verdict {
    if (this.movePct <= 0) return PASS;
    const ref = this.ref[id];
    const held = this.heldPrice[id];
    if (held === 0) return ref > 0 && movePctOf(price, ref) > this.movePct ? HOLD : PASS;
    const fromHeld = movePctOf(price, held);
    const fromRef = movePctOf(price, ref);
    const nearHeld = fromHeld <= this.movePct;
    const nearRef = fromRef <= this.movePct;
    // Within both bounds (a move of less than twice movePct, split in two): the nearer level decides;
    // a tie keeps the reference (the held tick is the unproven one).
    if (nearHeld && (!nearRef || fromHeld < fromRef)) return CONFIRM;
    if (nearRef) return REJECT;
    return REPLACE;
  }

  /** The price that was applied for the symbol (a passing tick, a confirmed one, a restored price). */
  applied(id: number, price: number): void {
    this.ref[id] = price;
  }

  hold(id: number, price: number, ts: number, size: number): void {
    if (this.heldPrice[id] === 0) this.heldCount++;
    this.heldPrice[id] = price;
    this.heldTs[id] = ts;
    this.heldSize[id] = size;
  }

  /** Forgets the held tick (confirmed or rejected). */
  release(id: number): void {
    if (this.heldPrice[id] === 0) return;
    this.heldPrice[id] = 0;
    this.heldCount--;
  }

  isHeld(id: number): boolean {
    return this.heldPrice[id] > 0;
  }

  refOf(id: number): number {
    return this.ref[id];
  }

  heldPriceOf(id: number): number {
    return this.heldPrice[id];
  }

  heldTsOf(id: number): number {
    return this.heldTs[id];
  }

  heldSizeOf(id: number): number {
    return this.heldSize[id];
  }

  /** A corporate action (a split) changed the price scale: the reference and any held price follow. */
  rescale(id: number, factor: number): void {
    this.ref[id] *= factor;
    this.heldPrice[id] *= factor;
  }

  /** Every held tick, in symbol id order; `names` resolves ids. Admin path: allocates. */
  list(names: readonly string[]): HeldTick[] {
    const out: HeldTick[] = [];
    if (this.heldCount === 0) return out;
    for (let id = 0; id < names.length; id++) {
      const price = this.heldPrice[id];
      if (price === 0) continue;
      const ref = this.ref[id];
      out.push({ symbol: names[id], price, tick_ts: this.heldTs[id], ref_price: ref, move_pct: movePctOf(price, ref) });
    }
    return out;
  }
}
