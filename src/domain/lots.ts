// Lot-based cost basis (fifo, lifo, named lots), pure: (position, fill) -> (position, realized, lots closed).
// Lots are kept sorted by open time (ties in the order they opened), so fifo consumes from the front
// and lifo from the back. Quantities are integer 1e-8 units, so a lot is consumed exactly.

import { quantityOf, type TradeFill, type TradeOutcome } from './accounting.js';
import type { CostBasisMethod, Lot, PositionState } from './types.js';

export interface LotFill extends TradeFill {
  trade_id: string;
  ts: number;
  /** Named lots to close, in this order (validated by lotSelectionError first). */
  lot_ids: readonly string[] | null;
}

/** One lot consumed by a reducing trade; realized in the quote currency, fees not included. */
export interface ClosedLot {
  lot_id: string;
  units: number;
  open_price: number;
  realized: number;
}

export interface LotOutcome extends TradeOutcome {
  closedLots: ClosedLot[];
}

/** Quantity-weighted average entry price of the open lots; 0 when there are none. */
export function averageOfLots(lots: readonly Lot[]): number {
  let units = 0;
  let cost = 0;
  for (const lot of lots) {
    units += lot.units;
    cost += quantityOf(lot.units) * lot.price;
  }
  return units === 0 ? 0 : cost / quantityOf(units);
}

/** Why a trade's lot_ids cannot be honoured against this position, or null when they can (or are absent). */
export function lotSelectionError(method: CostBasisMethod, position: PositionState, side: 'buy' | 'sell', units: number, lotIds: readonly string[] | null): string | null {
  if (lotIds === null) return null;
  if (method === 'average') return 'lot_ids: only fifo and lifo portfolios keep lots';
  const reduces = position.units !== 0 && (position.units > 0) === (side === 'sell');
  if (!reduces) return 'lot_ids: only a trade that reduces the position may name lots';
  const open = new Map((position.lots ?? []).map((lot) => [lot.lot_id, lot.units]));
  let named = 0;
  for (const id of lotIds) {
    const lotUnits = open.get(id);
    if (lotUnits === undefined) return `lot_ids: '${id}' is not an open lot of this position`;
    named += lotUnits;
  }
  if (named < units) return `lot_ids: the named lots hold ${quantityOf(named)}, less than the quantity ${quantityOf(units)}`;
  return null;
}

/** Inserts after every lot opened at or before ts: sorted by open time, stable. */
function insertLot(lots: Lot[], lot: Lot): Lot[] {
  let at = lots.length;
  while (at > 0 && lots[at - 1].opened_ts > lot.opened_ts) at--;
  return [...lots.slice(0, at), lot, ...lots.slice(at)];
}

/** The order in which a reducing trade consumes lots: indexes into `lots`. */
function consumeOrder(method: CostBasisMethod, lots: readonly Lot[], lotIds: readonly string[] | null): number[] {
  if (lotIds !== null) return lotIds.map((id) => lots.findIndex((lot) => lot.lot_id === id));
  const order = lots.map((_, i) => i);
  return method === 'lifo' ? order.reverse() : order;
}

export function applyLotFill(position: PositionState, method: CostBasisMethod, fill: LotFill): LotOutcome {
  const signed = fill.side === 'buy' ? fill.units : -fill.units;
  const held = position.units;
  const lots = position.lots ?? [];
  const multiplier = fill.multiplier ?? 1;
  const notional = quantityOf(fill.units) * fill.price * multiplier;
  const cashDelta = fill.side === 'buy' ? -(notional + fill.fee) : notional - fill.fee;
  const base = { last_trade_price: fill.price, ...(position.currency === undefined ? {} : { currency: position.currency }) };
  if (held === 0 || Math.sign(held) === Math.sign(signed)) {
    const next = insertLot(lots, { lot_id: fill.trade_id, units: fill.units, price: fill.price, opened_ts: fill.ts });
    return {
      position: { units: held + signed, avg_cost: averageOfLots(next), realized_pnl: position.realized_pnl - fill.fee, lots: next, ...base },
      realized: -fill.fee,
      cashDelta,
      opened: held === 0,
      closed: false,
      flipped: false,
      closedLots: [],
    };
  }
  const remainingLots = lots.map((lot) => ({ ...lot }));
  const closedLots: ClosedLot[] = [];
  let toClose = Math.min(Math.abs(held), fill.units);
  for (const i of consumeOrder(method, lots, fill.lot_ids)) {
    if (toClose === 0) break;
    const lot = remainingLots[i];
    const take = Math.min(lot.units, toClose);
    const perUnit = held > 0 ? fill.price - lot.price : lot.price - fill.price;
    closedLots.push({ lot_id: lot.lot_id, units: take, open_price: lot.price, realized: perUnit * quantityOf(take) * multiplier });
    lot.units -= take;
    toClose -= take;
  }
  let open = remainingLots.filter((lot) => lot.units > 0);
  const remaining = held + signed;
  const flipped = remaining !== 0 && Math.sign(remaining) !== Math.sign(held);
  if (flipped) open = [{ lot_id: fill.trade_id, units: Math.abs(remaining), price: fill.price, opened_ts: fill.ts }];
  let realized = -fill.fee;
  for (const c of closedLots) realized += c.realized;
  return {
    position: { units: remaining, avg_cost: averageOfLots(open), realized_pnl: position.realized_pnl + realized, lots: open, ...base },
    realized,
    cashDelta,
    opened: flipped,
    closed: remaining === 0 || flipped,
    flipped,
    closedLots,
  };
}
