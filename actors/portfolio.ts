// The portfolio actor: lifecycle and control (active / paused / closed), reduce-only trading while
// paused, risk breaches. Pure: every transition is (state, event) -> (state, emitted effects); time
// arrives inside events. Prices never come here: the kernel values positions and reports limit
// crossings as `breach` events, which keeps xstate (~6 µs an event here) off the per-tick path.
// Corporate actions are not trades: they apply in every lifecycle state, closed included (a closed
// portfolio's positions stay marked for reporting, so a split must keep them right).

import { enqueueActions, not, setup } from 'xstate';
import { reducesExposure } from '../src/domain/accounting.js';
import { applyCorporateStep, corporateRefusal } from '../src/domain/corporateActions.js';
import { applyDeposit, applyFxConversion, applyLimits, applyTrade, applyWithdraw, balanceOf, cashRefusal, positionOf, tradeRefusal } from '../src/domain/portfolio.js';
import type { CorporateStep, DomainEventBody, PortfolioState, RiskLimitName, RiskLimits } from '../src/domain/types.js';
import type { ValidTrade } from '../src/domain/validate.js';
import type { CashMove } from '../src/domain/portfolio.js';
import type { ErrorCode } from '../src/errors.js';

export type PortfolioEvent =
  | { type: 'trade'; trade: ValidTrade }
  /**
   * A run of a bulk import's trades, in order, as one event (the shard sends it only to an active
   * portfolio without risk limits, where no trade of the run can pause it): each is booked or refused
   * exactly as the 'trade' event would, one transition instead of one per trade.
   */
  | { type: 'trades'; trades: ValidTrade[] }
  /** currency absent or null: the base; a foreign move carries the quote -> base rate of the day (null: none seen). */
  | { type: 'deposit'; amount: number; currency?: string | null; fx_rate?: number | null }
  | { type: 'withdraw'; amount: number; currency?: string | null; fx_rate?: number | null }
  | { type: 'fxConvert'; from_currency: string; to_currency: string; amount: number; rate: number }
  | { type: 'setLimits'; limits: RiskLimits }
  | { type: 'pause'; reason: 'command' | 'risk' }
  | { type: 'resume' }
  | { type: 'breach'; limit: RiskLimitName; value: number; threshold: number }
  | { type: 'close' }
  | { type: 'corporate'; step: CorporateStep };

/** What a transition emits: the domain events it produced, or why it refused. */
export type PortfolioEffect =
  | { type: 'applied'; events: DomainEventBody[]; realized: number; symbol: string | null }
  | { type: 'rejected'; code: ErrorCode; message: string; field?: string }
  /** A 'trades' run: per trade, in order, its events (null: refused, see refusals). */
  | { type: 'appliedTrades'; events: (DomainEventBody[] | null)[]; refusals: Map<number, { code: ErrorCode; message: string; field?: string }> };

function applied(events: DomainEventBody[], realized = 0, symbol: string | null = null): PortfolioEffect {
  return { type: 'applied', events, realized, symbol };
}

function rejected(code: ErrorCode, message: string): PortfolioEffect {
  return { type: 'rejected', code, message };
}

export const portfolioMachine = setup({
  types: {} as { context: PortfolioState; events: PortfolioEvent; input: PortfolioState; emitted: PortfolioEffect },
  guards: {
    reducesExposure: ({ context, event }) =>
      event.type === 'trade' && reducesExposure(positionOf(context, event.trade.symbol), event.trade.side, event.trade.units),
    withinCash: ({ context, event }) =>
      (event.type === 'withdraw' && event.amount <= balanceOf(context, event.currency ?? null)) ||
      (event.type === 'fxConvert' && event.amount <= balanceOf(context, event.from_currency)),
    // A foreign deposit or withdrawal moves capital (kept in the base) at the rate of the day: none seen, refused.
    cashRefused: ({ context, event }) => (event.type === 'deposit' || event.type === 'withdraw') && cashRefusal(context, moveOf(event)) !== null,
    // Currency, FX rate, named lots, and positions within quantityMax (integer units stay below 2^53).
    tradeRefused: ({ context, event }) => event.type === 'trade' && tradeRefusal(context, event.trade) !== null,
    // A split past quantityMax, a symbol change that cannot merge: the engine checks every holder before
    // applying a step anywhere, so this only guards the books against a step sent without that check.
    corporateRefused: ({ context, event }) => event.type === 'corporate' && corporateRefusal(context, event.step) !== null,
  },
  actions: {
    trade: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'trade') return;
      const r = applyTrade(context, event.trade);
      enqueue.assign(r.state);
      enqueue.emit(applied(r.events, r.fill.realized, r.symbol));
    }),
    trades: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'trades') return;
      // The 'trade' transition of the active state, per trade of the run: refused (tradeRefused) or booked.
      let state = context;
      const events: (DomainEventBody[] | null)[] = new Array(event.trades.length);
      const refusals = new Map<number, { code: ErrorCode; message: string; field?: string }>();
      for (let i = 0; i < event.trades.length; i++) {
        const refusal = tradeRefusal(state, event.trades[i]);
        if (refusal !== null) {
          events[i] = null;
          refusals.set(i, { code: refusal.code, message: refusal.message, field: refusal.field });
          continue;
        }
        const r = applyTrade(state, event.trades[i]);
        state = r.state;
        events[i] = r.events;
      }
      enqueue.assign(state);
      enqueue.emit({ type: 'appliedTrades', events, refusals });
    }),
    corporate: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'corporate') return;
      const r = applyCorporateStep(context, event.step);
      enqueue.assign(r.state);
      enqueue.emit(applied(r.events));
    }),
    deposit: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'deposit') return;
      const r = applyDeposit(context, event.amount, moveOf(event));
      enqueue.assign(r.state);
      enqueue.emit(applied(r.events));
    }),
    withdraw: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'withdraw') return;
      const r = applyWithdraw(context, event.amount, moveOf(event));
      enqueue.assign(r.state);
      enqueue.emit(applied(r.events));
    }),
    fxConvert: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'fxConvert') return;
      const r = applyFxConversion(context, event);
      enqueue.assign(r.state);
      enqueue.emit(applied(r.events));
    }),
    rejectCashMove: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'deposit' && event.type !== 'withdraw') return;
      const refusal = cashRefusal(context, moveOf(event));
      if (refusal !== null) enqueue.emit({ type: 'rejected', code: refusal.code, message: refusal.message, field: refusal.field });
    }),
    setLimits: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'setLimits') return;
      const r = applyLimits(context, event.limits);
      enqueue.assign(r.state);
      enqueue.emit(applied(r.events));
    }),
    paused: enqueueActions(({ event, enqueue }) => {
      const reason = event.type === 'pause' ? event.reason : 'risk';
      const events: DomainEventBody[] = [];
      if (event.type === 'breach') events.push({ type: 'RiskLimitBreached', limit: event.limit, value: event.value, threshold: event.threshold });
      events.push({ type: 'TradingPaused', reason });
      enqueue.emit(applied(events));
    }),
    breachWhilePaused: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'breach') return;
      enqueue.emit(applied([{ type: 'RiskLimitBreached', limit: event.limit, value: event.value, threshold: event.threshold }]));
    }),
    resumed: enqueueActions(({ enqueue }) => enqueue.emit(applied([{ type: 'TradingResumed' }]))),
    closed: enqueueActions(({ enqueue }) => enqueue.emit(applied([{ type: 'PortfolioClosed' }]))),
    rejectPaused: enqueueActions(({ enqueue }) =>
      enqueue.emit(rejected('portfolio_paused', 'trade refused: portfolio is paused and only trades that reduce exposure (opposite side, no flip) are accepted')),
    ),
    rejectNotPaused: enqueueActions(({ enqueue }) => enqueue.emit(rejected('portfolio_not_paused', 'resume refused: portfolio is not paused'))),
    rejectAlreadyPaused: enqueueActions(({ enqueue }) => enqueue.emit(rejected('portfolio_paused', 'pause refused: portfolio is already paused'))),
    rejectTrade: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'trade') return;
      const refusal = tradeRefusal(context, event.trade);
      if (refusal !== null) enqueue.emit({ type: 'rejected', code: refusal.code, message: refusal.message, field: refusal.field });
    }),
    rejectCorporate: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'corporate') return;
      const refusal = corporateRefusal(context, event.step);
      if (refusal !== null) enqueue.emit({ type: 'rejected', code: refusal.code, message: refusal.message, field: refusal.field });
    }),
    rejectClosed: enqueueActions(({ enqueue }) => enqueue.emit(rejected('portfolio_closed', 'refused: portfolio is closed'))),
    rejectCash: enqueueActions(({ context, event, enqueue }) => {
      const currency = event.type === 'withdraw' ? (event.currency ?? null) : event.type === 'fxConvert' ? event.from_currency : null;
      const what = currency === null ? 'cash' : `the ${currency} balance`;
      enqueue.emit(rejected('insufficient_cash', `amount must be <= ${what} (${balanceOf(context, currency)}) for a ${event.type === 'fxConvert' ? 'conversion' : 'withdrawal'}`));
    }),
  },
}).createMachine({
  id: 'portfolio',
  initial: 'active',
  context: ({ input }) => input,
  states: {
    active: {
      on: {
        trade: [{ guard: 'tradeRefused', actions: 'rejectTrade' }, { actions: 'trade' }],
        trades: { actions: 'trades' },
        deposit: [{ guard: 'cashRefused', actions: 'rejectCashMove' }, { actions: 'deposit' }],
        withdraw: [{ guard: 'cashRefused', actions: 'rejectCashMove' }, { guard: 'withinCash', actions: 'withdraw' }, { actions: 'rejectCash' }],
        fxConvert: [{ guard: 'withinCash', actions: 'fxConvert' }, { actions: 'rejectCash' }],
        setLimits: { actions: 'setLimits' },
        pause: { target: 'paused', actions: 'paused' },
        breach: { target: 'paused', actions: 'paused' },
        resume: { actions: 'rejectNotPaused' },
        close: { target: 'closed', actions: 'closed' },
        corporate: [{ guard: 'corporateRefused', actions: 'rejectCorporate' }, { actions: 'corporate' }],
      },
    },
    paused: {
      on: {
        // The lifecycle rule answers first: a trade that does not reduce exposure is refused as paused,
        // whatever else is wrong with it (swarm seed 3621630548).
        trade: [{ guard: not('reducesExposure'), actions: 'rejectPaused' }, { guard: 'tradeRefused', actions: 'rejectTrade' }, { actions: 'trade' }],
        deposit: [{ guard: 'cashRefused', actions: 'rejectCashMove' }, { actions: 'deposit' }],
        withdraw: [{ guard: 'cashRefused', actions: 'rejectCashMove' }, { guard: 'withinCash', actions: 'withdraw' }, { actions: 'rejectCash' }],
        fxConvert: [{ guard: 'withinCash', actions: 'fxConvert' }, { actions: 'rejectCash' }],
        setLimits: { actions: 'setLimits' },
        pause: { actions: 'rejectAlreadyPaused' },
        breach: { actions: 'breachWhilePaused' },
        resume: { target: 'active', actions: 'resumed' },
        close: { target: 'closed', actions: 'closed' },
        corporate: [{ guard: 'corporateRefused', actions: 'rejectCorporate' }, { actions: 'corporate' }],
      },
    },
    closed: {
      on: {
        trade: { actions: 'rejectClosed' },
        deposit: { actions: 'rejectClosed' },
        withdraw: { actions: 'rejectClosed' },
        fxConvert: { actions: 'rejectClosed' },
        setLimits: { actions: 'rejectClosed' },
        pause: { actions: 'rejectClosed' },
        resume: { actions: 'rejectClosed' },
        breach: {},
        close: { actions: 'rejectClosed' },
        corporate: [{ guard: 'corporateRefused', actions: 'rejectCorporate' }, { actions: 'corporate' }],
      },
    },
  },
});

export type PortfolioMachine = typeof portfolioMachine;

function moveOf(event: { amount: number; currency?: string | null; fx_rate?: number | null }): CashMove {
  return { amount: event.amount, currency: event.currency ?? null, fx_rate: event.fx_rate ?? null };
}
