// Portfolio commands as pure functions: (state, command) -> (state, domain events, outcome).
// The xstate machine (actors/portfolio.ts) decides WHICH of these may run in which lifecycle state;
// these functions decide WHAT each one does to the books. No clock, no randomness: `ts` comes in.

import { applyFill, fillInto, flatPosition, quantityOf, type TradeOutcome } from './accounting.js';
import { applyLotFill, lotSelectionError, type ClosedLot } from './lots.js';
import {
  QUANTITY_SCALE,
  baseCurrencyDefault,
  lotsPerPositionMax,
  quantityMax,
  type CostBasisMethod,
  type DomainEventBody,
  type PortfolioState,
  type PositionState,
  type RiskLimitName,
  type RiskLimits,
} from './types.js';
import type { ValidTrade } from './validate.js';

export interface Applied {
  state: PortfolioState;
  events: DomainEventBody[];
}

export interface TradeApplied extends Applied {
  fill: TradeOutcome;
  symbol: string;
}

export interface PortfolioOptions {
  cost_basis_method: CostBasisMethod;
  base_currency: string;
}

export const defaultPortfolioOptions: PortfolioOptions = Object.freeze({ cost_basis_method: 'average', base_currency: baseCurrencyDefault });

export function newPortfolio(id: string, name: string, cash: number, limits: RiskLimits, options: PortfolioOptions = defaultPortfolioOptions): PortfolioState {
  const state: PortfolioState = { id, name, cash, capital: cash, realized_pnl: 0, limits, positions: {}, trades: 0 };
  // Written only when not the default, so portfolios of either kind serialize as they always did.
  if (options.cost_basis_method !== 'average') state.cost_basis_method = options.cost_basis_method;
  if (options.base_currency !== baseCurrencyDefault) state.base_currency = options.base_currency;
  return state;
}

export function methodOf(state: PortfolioState): CostBasisMethod {
  return state.cost_basis_method ?? 'average';
}

export function baseCurrencyOf(state: PortfolioState): string {
  return state.base_currency ?? baseCurrencyDefault;
}

export function positionOf(state: PortfolioState, symbol: string): PositionState {
  return state.positions[symbol] ?? flatPosition;
}

/** The quote currency a trade is in, and whether it differs from the portfolio's base. */
export function currencyOfTrade(state: PortfolioState, trade: Pick<ValidTrade, 'currency'>): { currency: string; foreign: boolean } {
  const base = baseCurrencyOf(state);
  const currency = trade.currency ?? base;
  return { currency, foreign: currency !== base };
}

/** The FX symbol that converts `currency` into the portfolio's base: quote then base, e.g. EURUSD. */
export function fxSymbolOf(currency: string, base: string): string {
  return currency + base;
}

export interface TradeRefusal {
  code: 'invalid_currency' | 'fx_rate_unknown' | 'invalid_lots' | 'limit_exceeded' | 'invalid_quantity' | 'invalid_field';
  message: string;
  field: string;
}

/**
 * Why this portfolio cannot book this trade, or null. Runs before applyTrade in every lifecycle state;
 * the actor adds the lifecycle rules (paused, closed). A refusal changes nothing.
 */
export function tradeRefusal(state: PortfolioState, trade: ValidTrade): TradeRefusal | null {
  const position = state.positions[trade.symbol];
  const { currency, foreign } = currencyOfTrade(state, trade);
  const held = position?.currency ?? baseCurrencyOf(state);
  if (position !== undefined && held !== currency) {
    return { code: 'invalid_currency', message: `currency: ${trade.symbol} is quoted in ${held} in this portfolio, not ${currency}`, field: 'currency' };
  }
  if (foreign && trade.fx_rate === null) {
    const pair = fxSymbolOf(currency, baseCurrencyOf(state));
    return { code: 'fx_rate_unknown', message: `fx_rate: no ${pair} rate seen yet; send fx_rate with the trade or tick ${pair} first`, field: 'fx_rate' };
  }
  const before = positionOf(state, trade.symbol);
  const heldAt = before.multiplier ?? 1;
  if (before.units !== 0 && heldAt !== trade.multiplier) {
    // Only a contract adjustment changes a held instrument's multiplier, and it rescales the position first.
    return { code: 'invalid_field', message: `symbol: ${trade.symbol} is held at multiplier ${heldAt}, the trade was priced at ${trade.multiplier}; retry`, field: 'symbol' };
  }
  const next = before.units + (trade.side === 'buy' ? trade.units : -trade.units);
  if (Math.abs(next) > quantityMax * QUANTITY_SCALE) {
    return { code: 'invalid_quantity', message: `quantity: the resulting |position| must be <= ${quantityMax}`, field: 'quantity' };
  }
  const method = methodOf(state);
  const lots = lotSelectionError(method, before, trade.side, trade.units, trade.lot_ids);
  if (lots !== null) return { code: 'invalid_lots', message: lots, field: 'lot_ids' };
  // A flip closes every lot before opening one, so only an opening or adding trade can reach the bound.
  const addsLot = method !== 'average' && (before.units === 0 || before.units > 0 === (trade.side === 'buy'));
  if (addsLot && (before.lots?.length ?? 0) >= lotsPerPositionMax) {
    return { code: 'limit_exceeded', message: `lot_ids: open lots per position must be <= ${lotsPerPositionMax}`, field: 'quantity' };
  }
  return null;
}

function fillOf(state: PortfolioState, before: PositionState, trade: ValidTrade): TradeOutcome & { closedLots: ClosedLot[] } {
  const method = methodOf(state);
  const fill = { side: trade.side, units: trade.units, price: trade.price, fee: trade.fee, multiplier: trade.multiplier };
  if (method === 'average') return { ...applyFill(before, fill), closedLots: [] };
  return applyLotFill(before, method, { ...fill, trade_id: trade.trade_id, ts: trade.ts, lot_ids: trade.lot_ids });
}

interface Booked {
  before: PositionState;
  currency: string;
  foreign: boolean;
  rate: number;
  local: TradeOutcome & { closedLots: ClosedLot[] };
  fill: TradeOutcome;
  realized: number;
}

/** The arithmetic of booking a trade, shared by applyTrade (live) and replayTrade (recovery). */
function bookTrade(state: PortfolioState, trade: ValidTrade): Booked {
  const before = positionOf(state, trade.symbol);
  const { currency, foreign } = currencyOfTrade(state, trade);
  const rate = foreign ? (trade.fx_rate as number) : 1;
  const local = fillOf(state, before, trade);
  const realized = foreign ? local.realized * rate : local.realized;
  const position: PositionState = { ...local.position, realized_pnl: before.realized_pnl + realized };
  if (foreign) position.currency = currency;
  // Written only when not 1, so positions in plain shares serialize as they always did.
  if (trade.multiplier !== 1) position.multiplier = trade.multiplier;
  else delete position.multiplier;
  const fill: TradeOutcome = { ...local, position, realized };
  return { before, currency, foreign, rate, local, fill, realized };
}

/**
 * bookTrade's arithmetic for the commonest replayed trade, on a position held outside any state (a
 * recovering book still in its snapshot's columns, src/shard/snapshotCodec.ts): an average-cost book,
 * a trade in its base currency at multiplier 1. In that case bookTrade's fill is applyFill's with the
 * position's realized P&L carried in the base (rate 1), which is what this returns; the caller adds
 * its cashDelta to the cash, its realized to the book's realized P&L and counts the trade, as
 * replayTrade does. Written into `out` (fillInto): replay books 1M trades this way, allocating nothing.
 */
export function replayBaseAverageFill(before: PositionState, trade: ValidTrade, out: TradeOutcome): TradeOutcome {
  const local = fillInto(out, before, trade);
  local.position.realized_pnl = before.realized_pnl + local.realized;
  return local;
}

/**
 * Replay's form of applyTrade for a trade the log says was booked: the same arithmetic (bookTrade),
 * written into `state` in place, without events. Only for a state nothing else holds (a book being
 * recovered): copying the positions record per trade was most of the cost of replaying a long log.
 */
export function replayTrade(state: PortfolioState, trade: ValidTrade): void {
  const { foreign, currency, fill } = bookTrade(state, trade);
  state.positions[trade.symbol] = fill.position;
  if (foreign) {
    const balances = (state.cash_balances ??= {});
    balances[currency] = (balances[currency] ?? 0) + fill.cashDelta;
  } else state.cash = state.cash + fill.cashDelta;
  state.realized_pnl = state.realized_pnl + fill.realized;
  state.trades = state.trades + 1;
}

/**
 * Books a trade that tradeRefusal accepted. The fill is computed in the quote currency; realized P&L
 * (fees included) converts to the base at the trade's rate, cash settles in the quote currency.
 * Takes ownership of `state`: its positions record is updated in place and shared with the result.
 */
export function applyTrade(state: PortfolioState, trade: ValidTrade): TradeApplied {
  const { before, currency, foreign, rate, local, fill, realized } = bookTrade(state, trade);
  const executed: DomainEventBody = {
    type: 'TradeExecuted',
    trade_id: trade.trade_id,
    symbol: trade.symbol,
    side: trade.side,
    quantity: trade.quantity,
    price: trade.price,
    fee: trade.fee,
    trade_ts: trade.ts,
    realized_pnl: realized,
  };
  if (foreign) Object.assign(executed, { currency, fx_rate: rate });
  if (trade.lot_ids !== null) Object.assign(executed, { lot_ids: trade.lot_ids });
  if (trade.multiplier !== 1) Object.assign(executed, { multiplier: trade.multiplier });
  const events: DomainEventBody[] = [executed];
  for (const c of local.closedLots) {
    events.push({
      type: 'LotClosed',
      symbol: trade.symbol,
      trade_id: trade.trade_id,
      lot_id: c.lot_id,
      quantity: quantityOf(c.units),
      open_price: c.open_price,
      close_price: trade.price,
      realized_pnl: foreign ? c.realized * rate : c.realized,
    });
  }
  if (fill.closed) events.push({ type: 'PositionClosed', symbol: trade.symbol, realized_pnl: closedRealized(before, fill) });
  if (fill.opened) {
    events.push({
      type: 'PositionOpened',
      symbol: trade.symbol,
      side: fill.position.units > 0 ? 'long' : 'short',
      quantity: quantityOf(Math.abs(fill.position.units)),
      price: trade.price,
    });
  }
  // In place: copying the positions record cost O(positions) per trade. Safe because the caller
  // hands its state over (the actor replaces its context with `next`, tests thread `state = r.state`)
  // and nothing keeps an old state to compare: records leave the shard as structured clones.
  const positions = state.positions;
  positions[trade.symbol] = fill.position;
  const next: PortfolioState = {
    ...state,
    cash: foreign ? state.cash : state.cash + fill.cashDelta,
    realized_pnl: state.realized_pnl + fill.realized,
    positions,
    trades: state.trades + 1,
  };
  if (foreign) next.cash_balances = { ...state.cash_balances, [currency]: (state.cash_balances?.[currency] ?? 0) + fill.cashDelta };
  return { state: next, events, fill, symbol: trade.symbol };
}

/** Realized P&L of the position's whole life, reported when it closes (fees included). */
function closedRealized(before: PositionState, fill: TradeOutcome): number {
  return before.realized_pnl + fill.realized;
}

/** A cash movement as the actor applies it: currency null = the base; fx_rate converts a foreign amount into the base. */
export interface CashMove {
  amount: number;
  currency: string | null;
  /** Foreign currency only: quote -> base rate at the time, which moves capital (null: never seen). */
  fx_rate: number | null;
}

/** The balance a cash move draws on: base cash, or the foreign balance (0 when none). */
export function balanceOf(state: PortfolioState, currency: string | null): number {
  if (currency === null || currency === baseCurrencyOf(state)) return state.cash;
  return state.cash_balances?.[currency] ?? 0;
}

/** Why a foreign cash move cannot be booked (no rate to value the capital it moves), or null. */
export function cashRefusal(state: PortfolioState, move: CashMove): TradeRefusal | null {
  if (move.currency === null || move.currency === baseCurrencyOf(state) || move.fx_rate !== null) return null;
  const pair = fxSymbolOf(move.currency, baseCurrencyOf(state));
  return { code: 'fx_rate_unknown', message: `currency: no ${move.currency} -> ${baseCurrencyOf(state)} rate seen yet (tick ${pair}, its inverse or a cross through the pivot first)`, field: 'currency' };
}

function withBalance(state: PortfolioState, currency: string, delta: number): PortfolioState {
  if (currency === baseCurrencyOf(state)) return { ...state, cash: state.cash + delta };
  return { ...state, cash_balances: { ...state.cash_balances, [currency]: (state.cash_balances?.[currency] ?? 0) + delta } };
}

export function applyDeposit(state: PortfolioState, amount: number, move: CashMove = { amount, currency: null, fx_rate: null }): Applied {
  if (move.currency === null || move.currency === baseCurrencyOf(state)) {
    return {
      state: { ...state, cash: state.cash + amount, capital: state.capital + amount },
      events: [{ type: 'CashDeposited', amount }],
    };
  }
  // Capital is kept in the base: a foreign deposit adds its value at the rate of the day.
  const next = withBalance(state, move.currency, amount);
  return { state: { ...next, capital: state.capital + amount * (move.fx_rate as number) }, events: [{ type: 'CashDeposited', amount, currency: move.currency, fx_rate: move.fx_rate as number }] };
}

export function applyWithdraw(state: PortfolioState, amount: number, move: CashMove = { amount, currency: null, fx_rate: null }): Applied {
  if (move.currency === null || move.currency === baseCurrencyOf(state)) {
    return {
      state: { ...state, cash: state.cash - amount, capital: state.capital - amount },
      events: [{ type: 'CashWithdrawn', amount }],
    };
  }
  const next = withBalance(state, move.currency, -amount);
  return { state: { ...next, capital: state.capital - amount * (move.fx_rate as number) }, events: [{ type: 'CashWithdrawn', amount, currency: move.currency, fx_rate: move.fx_rate as number }] };
}

/**
 * Moves cash between two balances at the given rate (to_currency per from_currency): an exchange,
 * not a contribution, so capital does not move; equity moves by what the rate differs from the market's.
 */
export function applyFxConversion(state: PortfolioState, c: { from_currency: string; to_currency: string; amount: number; rate: number }): Applied {
  const received = c.amount * c.rate;
  const next = withBalance(withBalance(state, c.from_currency, -c.amount), c.to_currency, received);
  return { state: next, events: [{ type: 'FxConverted', from_currency: c.from_currency, to_currency: c.to_currency, amount: c.amount, rate: c.rate, received }] };
}

export function applyLimits(state: PortfolioState, limits: RiskLimits): Applied {
  return { state: { ...state, limits }, events: [{ type: 'LimitsSet', limits }] };
}

export function thresholdOf(limits: RiskLimits, limit: RiskLimitName): number {
  return limits[limit] ?? NaN;
}
