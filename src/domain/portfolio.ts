// Portfolio commands as pure functions: (state, command) -> (state, domain events, outcome).
// The xstate machine (actors/portfolio.ts) decides WHICH of these may run in which lifecycle state;
// these functions decide WHAT each one does to the books. No clock, no randomness: `ts` comes in.

import { applyFill, flatPosition, quantityOf, type TradeOutcome } from './accounting.js';
import type { DomainEventBody, PortfolioState, PositionState, RiskLimitName, RiskLimits } from './types.js';
import type { ValidTrade } from './validate.js';

export interface Applied {
  state: PortfolioState;
  events: DomainEventBody[];
}

export interface TradeApplied extends Applied {
  fill: TradeOutcome;
  symbol: string;
}

export function newPortfolio(id: string, name: string, cash: number, limits: RiskLimits): PortfolioState {
  return { id, name, cash, capital: cash, realized_pnl: 0, limits, positions: {}, trades: 0 };
}

export function positionOf(state: PortfolioState, symbol: string): PositionState {
  return state.positions[symbol] ?? flatPosition;
}

export function applyTrade(state: PortfolioState, trade: ValidTrade): TradeApplied {
  const before = positionOf(state, trade.symbol);
  const fill = applyFill(before, { side: trade.side, units: trade.units, price: trade.price, fee: trade.fee });
  const events: DomainEventBody[] = [
    {
      type: 'TradeExecuted',
      trade_id: trade.trade_id,
      symbol: trade.symbol,
      side: trade.side,
      quantity: trade.quantity,
      price: trade.price,
      fee: trade.fee,
      trade_ts: trade.ts,
      realized_pnl: fill.realized,
    },
  ];
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
  const positions = { ...state.positions, [trade.symbol]: fill.position };
  const next: PortfolioState = {
    ...state,
    cash: state.cash + fill.cashDelta,
    realized_pnl: state.realized_pnl + fill.realized,
    positions,
    trades: state.trades + 1,
  };
  return { state: next, events, fill, symbol: trade.symbol };
}

/** Realized P&L of the position's whole life, reported when it closes (fees included). */
function closedRealized(before: PositionState, fill: TradeOutcome): number {
  return before.realized_pnl + fill.realized;
}

export function applyDeposit(state: PortfolioState, amount: number): Applied {
  return {
    state: { ...state, cash: state.cash + amount, capital: state.capital + amount },
    events: [{ type: 'CashDeposited', amount }],
  };
}

export function applyWithdraw(state: PortfolioState, amount: number): Applied {
  return {
    state: { ...state, cash: state.cash - amount, capital: state.capital - amount },
    events: [{ type: 'CashWithdrawn', amount }],
  };
}

export function applyLimits(state: PortfolioState, limits: RiskLimits): Applied {
  return { state: { ...state, limits }, events: [{ type: 'LimitsSet', limits }] };
}

export function thresholdOf(limits: RiskLimits, limit: RiskLimitName): number {
  return limits[limit] ?? NaN;
}
