// Corporate actions on one portfolio, pure: (state, step) -> (state, events). The engine decides WHEN a
// step runs (its clock, its schedule) and sends it to every holder at once; these functions decide WHAT
// it does to the books. No clock: times come in the step.
//
// Splits scale quantities in exact integer arithmetic (BigInt): units reach 9e15, where a float64
// product of units and ratio is no longer exact. Quantities floor toward zero (a fraction of a 1e-8
// unit cannot be held); what is lost is reported as dropped_quantity, with no cash in lieu.

import { quantityOf } from './accounting.js';
import { averageOfLots } from './lots.js';
import { baseCurrencyOf, methodOf, type Applied } from './portfolio.js';
import { multiplierUnits } from './instruments.js';
import {
  QUANTITY_SCALE,
  lotsPerPositionMax,
  quantityMax,
  type CorporateStep,
  type DomainEventBody,
  type DividendDue,
  type Lot,
  type PortfolioState,
  type PositionState,
} from './types.js';

export interface CorporateRefusal {
  code: 'invalid_quantity' | 'invalid_currency' | 'limit_exceeded';
  message: string;
  field: string;
}

const unitsMax = quantityMax * QUANTITY_SCALE;

/** Whether this portfolio holds a non-flat position the step acts on (pay_date: a dividend due). */
export function holdsFor(state: PortfolioState, step: CorporateStep): boolean {
  if (step.step === 'pay_date') return state.dividends_due?.[step.action_id] !== undefined;
  if (step.step === 'ex_date' && step.holdings !== undefined) return (step.holdings[state.id]?.units ?? 0) !== 0;
  return (state.positions[step.symbol]?.units ?? 0) !== 0;
}

/**
 * Why this portfolio cannot take the step, or null. The engine asks every holder before applying a step
 * anywhere, so a refusal fails the whole action and changes nothing.
 */
export function corporateRefusal(state: PortfolioState, step: CorporateStep): CorporateRefusal | null {
  if (!holdsFor(state, step)) return null;
  if (step.step === 'split') {
    const after = scaledUnits(state.positions[step.symbol].units, step.from, step.to).units;
    if (Math.abs(after) > unitsMax) {
      return { code: 'invalid_quantity', message: `to: the position in ${step.symbol} would hold ${quantityOf(Math.abs(after))} after the split, above ${quantityMax}`, field: 'to' };
    }
    return null;
  }
  if (step.step === 'contract_adjustment') {
    const { from, to } = adjustmentRatio(state.positions[step.symbol], step.multiplier);
    const after = scaledUnits(state.positions[step.symbol].units, from, to).units;
    if (Math.abs(after) > unitsMax) {
      return { code: 'invalid_quantity', message: `multiplier: the position in ${step.symbol} would hold ${quantityOf(Math.abs(after))} after the adjustment, above ${quantityMax}`, field: 'multiplier' };
    }
    return null;
  }
  if (step.step !== 'symbol_change') return null;
  const old = state.positions[step.symbol];
  const target = state.positions[step.new_symbol];
  if (target === undefined || target.units === 0) return null;
  if ((target.currency ?? '') !== (old.currency ?? '')) {
    return { code: 'invalid_currency', message: `new_symbol: ${step.new_symbol} is already held in another currency, the positions cannot merge`, field: 'new_symbol' };
  }
  if (target.units > 0 !== old.units > 0) {
    return { code: 'invalid_quantity', message: `new_symbol: ${step.new_symbol} is already held on the other side (long vs short), the positions cannot merge`, field: 'new_symbol' };
  }
  if (Math.abs(target.units + old.units) > unitsMax) {
    return { code: 'invalid_quantity', message: `new_symbol: the merged position in ${step.new_symbol} would exceed ${quantityMax}`, field: 'new_symbol' };
  }
  if ((target.lots?.length ?? 0) + (old.lots?.length ?? 0) > lotsPerPositionMax) {
    return { code: 'limit_exceeded', message: `new_symbol: the merged position in ${step.new_symbol} would hold more than ${lotsPerPositionMax} lots`, field: 'new_symbol' };
  }
  return null;
}

/** Applies a step corporateRefusal accepted; a portfolio that does not hold the symbol is unchanged, with no event. */
export function applyCorporateStep(state: PortfolioState, step: CorporateStep): Applied {
  if (!holdsFor(state, step)) return { state, events: [] };
  switch (step.step) {
    case 'split':
      return applySplit(state, step);
    case 'ex_date':
      return entitle(state, step);
    case 'pay_date':
      return pay(state, step);
    case 'symbol_change':
      return changeSymbol(state, step);
    case 'contract_adjustment':
      return adjustContract(state, step);
  }
}

/**
 * Units scale by old/new multiplier so that quantity x multiplier (the exposure) is kept: as a split
 * with from = new and to = old, both in integer 1e-8 of a multiplier (multipliers have at most 8 decimals).
 */
function adjustmentRatio(position: PositionState, multiplier: number): { from: number; to: number } {
  return { from: Number(multiplierUnits(multiplier)), to: Number(multiplierUnits(position.multiplier ?? 1)) };
}

/** A contract adjustment: the new multiplier, quantities (and lots) rescaled exactly, prices in points unchanged. */
function adjustContract(state: PortfolioState, step: Extract<CorporateStep, { step: 'contract_adjustment' }>): Applied {
  const before = state.positions[step.symbol];
  const { from, to } = adjustmentRatio(before, step.multiplier);
  let units: number;
  let remainder: bigint;
  let lots: Lot[] | undefined;
  if (methodOf(state) === 'average' || before.lots === undefined) {
    ({ units, remainder } = scaledUnits(before.units, from, to));
  } else {
    remainder = 0n;
    let sum = 0;
    lots = [];
    for (const lot of before.lots) {
      const s = scaledUnits(lot.units, from, to);
      remainder += s.remainder;
      sum += s.units;
      if (s.units > 0) lots.push({ ...lot, units: s.units });
    }
    units = sum === 0 ? 0 : before.units < 0 ? -sum : sum;
  }
  const position: PositionState = { ...before, units, avg_cost: units === 0 ? 0 : lots === undefined ? before.avg_cost : averageOfLots(lots) };
  if (step.multiplier !== 1) position.multiplier = step.multiplier;
  else delete position.multiplier;
  if (lots !== undefined) position.lots = lots;
  const events: DomainEventBody[] = [
    {
      type: 'ContractAdjusted',
      action_id: step.action_id,
      symbol: step.symbol,
      multiplier_before: before.multiplier ?? 1,
      multiplier_after: step.multiplier,
      quantity_before: quantityOf(before.units),
      quantity_after: quantityOf(units),
      dropped_quantity: Number(remainder) / from / QUANTITY_SCALE,
    },
  ];
  if (units === 0) events.push({ type: 'PositionClosed', symbol: step.symbol, realized_pnl: before.realized_pnl });
  return { state: { ...state, positions: { ...state.positions, [step.symbol]: position } }, events };
}

/** floor(|units| * to / from) toward zero, exactly; remainder: the units lost, times from. */
export function scaledUnits(units: number, from: number, to: number): { units: number; remainder: bigint } {
  const n = BigInt(Math.abs(units)) * BigInt(to);
  const q = n / BigInt(from);
  const scaled = Number(q);
  return { units: scaled === 0 ? 0 : units < 0 ? -scaled : scaled, remainder: n % BigInt(from) };
}

function applySplit(state: PortfolioState, step: Extract<CorporateStep, { step: 'split' }>): Applied {
  const before = state.positions[step.symbol];
  const priceFactor = (price: number) => (price * step.from) / step.to;
  let units: number;
  let remainder: bigint;
  let lots: Lot[] | undefined;
  if (methodOf(state) === 'average' || before.lots === undefined) {
    ({ units, remainder } = scaledUnits(before.units, step.from, step.to));
  } else {
    // Each lot floors on its own: the position is the sum of its lots, so "units = sum of lot units" holds.
    remainder = 0n;
    let sum = 0;
    lots = [];
    for (const lot of before.lots) {
      const s = scaledUnits(lot.units, step.from, step.to);
      remainder += s.remainder;
      sum += s.units;
      if (s.units > 0) lots.push({ ...lot, units: s.units, price: priceFactor(lot.price) });
    }
    units = sum === 0 ? 0 : before.units < 0 ? -sum : sum;
  }
  const position: PositionState = {
    ...before,
    units,
    avg_cost: units === 0 ? 0 : lots === undefined ? priceFactor(before.avg_cost) : averageOfLots(lots),
    last_trade_price: priceFactor(before.last_trade_price),
  };
  if (lots !== undefined) position.lots = lots;
  const events: DomainEventBody[] = [
    {
      type: 'SplitApplied',
      action_id: step.action_id,
      symbol: step.symbol,
      from: step.from,
      to: step.to,
      quantity_before: quantityOf(before.units),
      quantity_after: quantityOf(units),
      dropped_quantity: Number(remainder) / step.from / QUANTITY_SCALE,
    },
  ];
  // A reverse split can leave less than one unit: the position is then closed like a trade would close it.
  if (units === 0) events.push({ type: 'PositionClosed', symbol: step.symbol, realized_pnl: before.realized_pnl });
  return { state: { ...state, positions: { ...state.positions, [step.symbol]: position } }, events };
}

function entitle(state: PortfolioState, step: Extract<CorporateStep, { step: 'ex_date' }>): Applied {
  const position = state.positions[step.symbol];
  // The quantity held at the ex-date: given (a past ex-date, replay) or the position now.
  const held = step.holdings?.[state.id] ?? { units: position.units, currency: position.currency ?? baseCurrencyOf(state), multiplier: position.multiplier ?? 1 };
  const due: DividendDue = {
    symbol: step.symbol,
    units: held.units,
    amount_per_share: step.amount_per_share,
    currency: held.currency,
    pay_ts: step.pay_ts,
  };
  if (held.multiplier !== 1) due.multiplier = held.multiplier;
  return {
    state: { ...state, dividends_due: { ...state.dividends_due, [step.action_id]: due } },
    events: [
      {
        type: 'DividendEntitled',
        action_id: step.action_id,
        symbol: step.symbol,
        quantity: quantityOf(held.units),
        amount_per_share: step.amount_per_share,
        pay_ts: step.pay_ts,
        currency: due.currency,
        ...(held.multiplier === 1 ? {} : { multiplier: held.multiplier }),
      },
    ],
  };
}

/**
 * The amount a due dividend pays, in its currency: quantity at the ex-date times the amount per share,
 * times the contract multiplier (a contract of 100 shares is owed 100 shares' dividend).
 */
export function dividendAmount(due: DividendDue): number {
  return quantityOf(due.units) * due.amount_per_share * (due.multiplier ?? 1);
}

function pay(state: PortfolioState, step: Extract<CorporateStep, { step: 'pay_date' }>): Applied {
  const due = (state.dividends_due as Record<string, DividendDue>)[step.action_id];
  const amount = dividendAmount(due);
  const foreign = due.currency !== baseCurrencyOf(state);
  const rate = foreign ? step.fx_rate : 1;
  // Income is P&L, not capital: realized_pnl grows, capital does not. Unconverted (no rate seen) it is
  // credited as foreign cash only: a made-up rate would misstate the P&L.
  const realized = rate === null ? 0 : amount * rate;
  const dividends_due = { ...state.dividends_due };
  delete dividends_due[step.action_id];
  const next: PortfolioState = { ...state, realized_pnl: state.realized_pnl + realized };
  if (Object.keys(dividends_due).length > 0) next.dividends_due = dividends_due;
  else delete next.dividends_due;
  if (foreign) next.cash_balances = { ...state.cash_balances, [due.currency]: (state.cash_balances?.[due.currency] ?? 0) + amount };
  else next.cash = state.cash + amount;
  return {
    state: next,
    events: [{ type: 'DividendPaid', action_id: step.action_id, symbol: due.symbol, amount, currency: due.currency, fx_rate: rate, realized }],
  };
}

/** Inserts each lot after every lot opened at or before it: the merged lots stay sorted by open time. */
function mergeLots(into: readonly Lot[], added: readonly Lot[]): Lot[] {
  const out = [...into];
  for (const lot of added) {
    let at = out.length;
    while (at > 0 && out[at - 1].opened_ts > lot.opened_ts) at--;
    out.splice(at, 0, lot);
  }
  return out;
}

function changeSymbol(state: PortfolioState, step: Extract<CorporateStep, { step: 'symbol_change' }>): Applied {
  const old = state.positions[step.symbol];
  const target = state.positions[step.new_symbol];
  const merged = target !== undefined && target.units !== 0;
  let moved: PositionState;
  if (!merged) {
    // A flat position already under the new symbol only carries realized P&L: it is kept in the sum.
    moved = { ...old, realized_pnl: old.realized_pnl + (target?.realized_pnl ?? 0) };
  } else {
    const units = old.units + target.units;
    moved = { ...target, units, realized_pnl: old.realized_pnl + target.realized_pnl };
    if (target.lots !== undefined || old.lots !== undefined) {
      moved.lots = mergeLots(target.lots ?? [], old.lots ?? []);
      moved.avg_cost = averageOfLots(moved.lots);
    } else {
      const a = quantityOf(Math.abs(old.units));
      const b = quantityOf(Math.abs(target.units));
      moved.avg_cost = (a * old.avg_cost + b * target.avg_cost) / (a + b);
    }
  }
  const positions = { ...state.positions, [step.new_symbol]: moved };
  // The old symbol leaves the state; its history stays in the log (events are never rewritten).
  delete positions[step.symbol];
  return {
    state: { ...state, positions },
    events: [{ type: 'SymbolChanged', action_id: step.action_id, from_symbol: step.symbol, to_symbol: step.new_symbol, quantity: quantityOf(old.units), merged }],
  };
}
