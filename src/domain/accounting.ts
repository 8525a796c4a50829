// Average-cost accounting, pure: (position, trade) -> (position, realized, cash delta, facts).
// Quantities are integer 1e-8 units so that "reaches exactly zero" and "flips" are exact decisions;
// money is float64 and stays within max(1e-9 relative, 1e-6 absolute) of an exact decimal oracle.

import { QUANTITY_DECIMALS, QUANTITY_SCALE, type PositionState, type Side } from './types.js';

export interface TradeFill {
  side: Side;
  /** Quantity in 1e-8 units, > 0. */
  units: number;
  price: number;
  fee: number;
  /** Contract multiplier: money per point per unit; absent: 1 (a share). Prices stay in points. */
  multiplier?: number;
}

export interface TradeOutcome {
  position: PositionState;
  /** Realized by this trade, fee included (a fee is negative realized P&L). */
  realized: number;
  cashDelta: number;
  opened: boolean;
  closed: boolean;
  flipped: boolean;
}

export const flatPosition: PositionState = Object.freeze({ units: 0, avg_cost: 0, realized_pnl: 0, last_trade_price: 0 });

/** The largest whole quantity whose units (x 1e8) are still a safe integer: floor(2^53 / 1e8). */
const wholeQuantityExactMax = Math.floor(Number.MAX_SAFE_INTEGER / QUANTITY_SCALE);

export function quantityOf(units: number): number {
  return units / QUANTITY_SCALE;
}

/**
 * The exact count of 1e-8 units a quantity stands for, read from its shortest decimal (what the user
 * wrote): Math.round(q * 1e8) picks the wrong unit above 2^25, where doubles are spaced wider than 1e-8.
 * Returns null when the quantity has more than 8 decimals or exceeds 2^53 units.
 */
export function unitsOf(quantity: number): number | null {
  if (!Number.isFinite(quantity)) return null;
  // A whole quantity (most trades, and every one the recovery bench replays) needs no decimal text:
  // both factors and the product are integers below 2^53, so the multiplication is exact. The text
  // path below (a BigInt per call) was a measured share of replaying a long log.
  if (Number.isInteger(quantity) && Math.abs(quantity) <= wholeQuantityExactMax) return quantity * QUANTITY_SCALE;
  const text = String(Math.abs(quantity));
  const [mantissa, exponentText] = text.split('e') as [string, string | undefined];
  const [whole, fraction = ''] = mantissa.split('.') as [string, string | undefined];
  const shift = QUANTITY_DECIMALS + Number(exponentText ?? 0) - fraction.length;
  if (shift < 0) return null;
  const units = BigInt(whole + fraction) * 10n ** BigInt(shift);
  if (units > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Math.sign(quantity) * Number(units);
}

export function applyFill(position: PositionState, fill: TradeFill): TradeOutcome {
  return fillInto({ position: { units: 0, avg_cost: 0, realized_pnl: 0, last_trade_price: 0 }, realized: 0, cashDelta: 0, opened: false, closed: false, flipped: false }, position, fill);
}

/**
 * applyFill's arithmetic (the one implementation), written into `out` and its position object, which
 * must not be `position`: a live trade gets fresh objects (applyFill), while replay books 1M logged
 * trades into snapshot columns through one reused outcome, allocating nothing per trade.
 */
export function fillInto(out: TradeOutcome, position: PositionState, fill: TradeFill): TradeOutcome {
  const p = out.position;
  if (p === position) throw new Error('fillInto writes a position other than the one it reads');
  const signed = fill.side === 'buy' ? fill.units : -fill.units;
  const held = position.units;
  // Times 1 is exact: a plain share books exactly as before multipliers existed.
  const multiplier = fill.multiplier ?? 1;
  const notional = quantityOf(fill.units) * fill.price * multiplier;
  const cashDelta = fill.side === 'buy' ? -(notional + fill.fee) : notional - fill.fee;
  if (held === 0 || Math.sign(held) === Math.sign(signed)) {
    const heldQty = quantityOf(Math.abs(held));
    const addQty = quantityOf(fill.units);
    const avg = held === 0 ? fill.price : (heldQty * position.avg_cost + addQty * fill.price) / (heldQty + addQty);
    p.units = held + signed;
    p.avg_cost = avg;
    p.realized_pnl = position.realized_pnl - fill.fee;
    p.last_trade_price = fill.price;
    out.realized = -fill.fee;
    out.cashDelta = cashDelta;
    out.opened = held === 0;
    out.closed = false;
    out.flipped = false;
    return out;
  }
  const closedUnits = Math.min(Math.abs(held), fill.units);
  const perUnit = held > 0 ? fill.price - position.avg_cost : position.avg_cost - fill.price;
  const realized = perUnit * quantityOf(closedUnits) * multiplier - fill.fee;
  const remaining = held + signed;
  const flipped = remaining !== 0 && Math.sign(remaining) !== Math.sign(held);
  const avg = remaining === 0 ? 0 : flipped ? fill.price : position.avg_cost;
  p.units = remaining;
  p.avg_cost = avg;
  p.realized_pnl = position.realized_pnl + realized;
  p.last_trade_price = fill.price;
  out.realized = realized;
  out.cashDelta = cashDelta;
  out.opened = flipped;
  out.closed = remaining === 0 || flipped;
  out.flipped = flipped;
  return out;
}

/** While paused only trades that reduce exposure are accepted: opposite side, no larger than the position. */
export function reducesExposure(position: PositionState, side: Side, units: number): boolean {
  if (position.units === 0) return false;
  const opposite = position.units > 0 ? side === 'sell' : side === 'buy';
  return opposite && units <= Math.abs(position.units);
}
