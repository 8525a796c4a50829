// Domain vocabulary shared by the accounting core, the actors, the shards, the store and the server.
// The domain depends on no server, store or worker code. The types of the messages clients send and
// receive are derived from their one schema in schemas.ts; bounds and patterns live in rules.ts.

import type {
  CashInput,
  CreatePortfolioInput,
  FxConversionInput,
  Instrument,
  LotView,
  PortfolioSnapshot,
  PortfolioUpdate,
  PositionView,
  RiskLimits,
  TickInput,
  Totals,
  TradeInput,
  TradeResult,
} from './schemas.js';

export type { CashInput, CreatePortfolioInput, FxConversionInput, Instrument, LotView, PortfolioSnapshot, PortfolioUpdate, PositionView, RiskLimits, TickInput, Totals, TradeInput, TradeResult };

export type Side = 'buy' | 'sell';
export type PortfolioStatus = 'active' | 'paused' | 'closed';

export {
  QUANTITY_DECIMALS,
  QUANTITY_SCALE,
  quantityMax,
  priceMax,
  amountMax,
  symbolPattern,
  portfolioIdPattern,
  tradeIdPattern,
  nameLengthMax,
  currencyPattern,
  baseCurrencyDefault,
  lotsPerPositionMax,
  lotIdsPerTradeMax,
  fxRateMax,
  splitRatioMax,
  multiplierMax,
  instrumentDescriptionLengthMax,
  instrumentsMaxDefault,
  assetClasses,
  costBasisMethods,
} from './rules.js';
export type { AssetClass, CostBasisMethod } from './rules.js';
import type { CostBasisMethod } from './rules.js';

export type RiskLimitName = 'max_loss' | 'max_drawdown_pct' | 'max_position_weight_pct';


/** Accounting state of one position: the source of truth the kernel values. */
export interface PositionState {
  /** Signed quantity in 1e-8 units (negative = short). */
  units: number;
  /** Average entry price of the open quantity; 0 when flat. */
  avg_cost: number;
  /** Realized P&L attributed to this symbol (fees included, as negative P&L). */
  realized_pnl: number;
  /** Price of the last trade, the mark until the first tick of the symbol is seen. */
  last_trade_price: number;
  /** Quote currency when it differs from the portfolio's base; absent: the base currency. */
  currency?: string;
  /** Open lots, oldest open time first (fifo and lifo portfolios only). Their units sum to |units|. */
  lots?: Lot[];
  /** Contract multiplier the position is held at; absent: 1 (a symbol never defined as an instrument). */
  multiplier?: number;
}

/** One open lot of a lot-based position. Its id is the id of the trade that opened it. */
export interface Lot {
  lot_id: string;
  /** Open quantity in 1e-8 units, > 0 (the position's sign says long or short). */
  units: number;
  /** Entry price, quote currency. */
  price: number;
  opened_ts: number;
}


/** Accounting state of one portfolio (the actor's context). Plain data: serializable, comparable. */
export interface PortfolioState {
  id: string;
  name: string;
  cash: number;
  capital: number;
  realized_pnl: number;
  limits: RiskLimits;
  positions: Record<string, PositionState>;
  /** Number of trades applied; a cheap audit figure and a replay cross-check. */
  trades: number;
  /** Absent: 'average' (portfolios from before lots existed). */
  cost_basis_method?: CostBasisMethod;
  /** Absent: baseCurrencyDefault. */
  base_currency?: string;
  /** Cash held in currencies other than the base (trades in foreign instruments settle here). */
  cash_balances?: Record<string, number>;
  /** Dividends entitled at their ex-date and not paid yet, by action_id (absent: none). */
  dividends_due?: Record<string, DividendDue>;
}

/** A dividend this portfolio is owed: the quantity it held at the ex-date, paid at pay_ts. */
export interface DividendDue {
  symbol: string;
  /** Signed quantity held at the ex-date, in 1e-8 units (a short position owes the dividend). */
  units: number;
  amount_per_share: number;
  /** The instrument's quote currency in this portfolio (its position's currency, else the base). */
  currency: string;
  pay_ts: number;
  /** The position's contract multiplier at the ex-date (absent: 1): each unit held is that many shares. */
  multiplier?: number;
}

// ---- corporate actions (src/domain/corporateActions.ts applies them, the engine schedules them) ----

export type CorporateActionType = 'split' | 'dividend' | 'symbol_change' | 'contract_adjustment';

/** `to` new shares for every `from` old: a 2-for-1 split is from 1, to 2; a 1-for-10 reverse split is from 10, to 1. */
export interface SplitAction {
  action_id: string;
  type: 'split';
  symbol: string;
  from: number;
  to: number;
  effective_ts: number;
}

export interface DividendAction {
  action_id: string;
  type: 'dividend';
  symbol: string;
  /** In the instrument's quote currency. */
  amount_per_share: number;
  ex_ts: number;
  pay_ts: number;
}

export interface SymbolChangeAction {
  action_id: string;
  type: 'symbol_change';
  symbol: string;
  new_symbol: string;
  effective_ts: number;
}

/**
 * The instrument's multiplier becomes `multiplier`: every holding is rescaled so that quantity x
 * multiplier (the exposure) is unchanged, quantities floored toward zero like a split; prices stay in
 * points. The only way to change the multiplier of an instrument someone holds.
 */
export interface ContractAdjustmentAction {
  action_id: string;
  type: 'contract_adjustment';
  symbol: string;
  multiplier: number;
  effective_ts: number;
}

export type CorporateAction = SplitAction | DividendAction | SymbolChangeAction | ContractAdjustmentAction;

/** A position as it was held at an instant: signed units, quote currency, contract multiplier. */
export interface HeldAt {
  units: number;
  currency: string;
  multiplier: number;
}

/**
 * One step of an action, applied to every holder at once: a split and a symbol change are one step,
 * a dividend two (entitlement at ex_ts, payment at pay_ts).
 */
export type CorporateStepName = 'split' | 'ex_date' | 'pay_date' | 'symbol_change' | 'contract_adjustment';

export type CorporateStep =
  | { step: 'split'; action_id: string; symbol: string; from: number; to: number }
  /**
   * holdings: the entitled quantity per portfolio id, when it is not the position held now: a past
   * ex-date (from the holdings as of ex_ts, time travel) and replay (from the logged entitlement).
   */
  | { step: 'ex_date'; action_id: string; symbol: string; amount_per_share: number; pay_ts: number; holdings?: Record<string, HeldAt> }
  /** fx_rate: quote -> base for a foreign-currency dividend, null when never seen (the shard fills it per portfolio). */
  | { step: 'pay_date'; action_id: string; fx_rate: number | null }
  | { step: 'symbol_change'; action_id: string; symbol: string; new_symbol: string }
  | { step: 'contract_adjustment'; action_id: string; symbol: string; multiplier: number };


/** Domain events: what happened, emitted by the actors with the portfolio id and a timestamp. */
export type DomainEventBody =
  | { type: 'PortfolioCreated'; name: string; cash: number; limits: RiskLimits; cost_basis_method?: CostBasisMethod; base_currency?: string }
  | { type: 'PortfolioClosed' }
  | {
      type: 'TradeExecuted';
      trade_id: string;
      symbol: string;
      side: Side;
      quantity: number;
      price: number;
      fee: number;
      trade_ts: number;
      /** Base currency, converted at fx_rate. */
      realized_pnl: number;
      /** Present for foreign-currency trades: the quote currency and the rate it was booked at. */
      currency?: string;
      fx_rate?: number;
      lot_ids?: string[];
      /** Present when not 1: the contract multiplier the trade was booked at (replay uses it, never today's). */
      multiplier?: number;
    }
  /** Lot-based methods: one per lot a trade closed (wholly or partly); realized in the base currency. */
  | { type: 'LotClosed'; symbol: string; trade_id: string; lot_id: string; quantity: number; open_price: number; close_price: number; realized_pnl: number }
  /** currency present when not the base: the amount moved that foreign balance (cash_balances), and
   * capital by amount x fx_rate (the quote -> base rate of the day). */
  | { type: 'CashDeposited'; amount: number; currency?: string; fx_rate?: number }
  | { type: 'CashWithdrawn'; amount: number; currency?: string; fx_rate?: number }
  /** Cash moved between balances: amount of from_currency out, amount x rate of to_currency in. */
  | { type: 'FxConverted'; from_currency: string; to_currency: string; amount: number; rate: number; received: number }
  /** Reference data, under the pseudo-portfolio '_instruments': the symbol's definition from now on. */
  | { type: 'InstrumentDefined'; instrument: Instrument }
  /** A contract adjustment applied to this portfolio's position (see ContractAdjustmentAction). */
  | { type: 'ContractAdjusted'; action_id: string; symbol: string; multiplier_before: number; multiplier_after: number; quantity_before: number; quantity_after: number; dropped_quantity: number }
  | { type: 'LimitsSet'; limits: RiskLimits }
  | { type: 'TradingPaused'; reason: 'command' | 'risk' }
  | { type: 'TradingResumed' }
  | { type: 'PositionOpened'; symbol: string; side: 'long' | 'short'; quantity: number; price: number }
  | { type: 'PositionClosed'; symbol: string; realized_pnl: number }
  | { type: 'RiskLimitBreached'; limit: RiskLimitName; value: number; threshold: number }
  | { type: 'ShardRestarted'; shard: number; reason: string }
  /**
   * A market alert rule fired (src/market/alertRules.ts), under the pseudo-portfolio '_market'.
   * figures: the numbers that tripped it, by kind (move: move_pct, threshold_pct, window_ms, price,
   * ref_price, ref_ts; zscore: z, threshold_z, ret, mean, sigma, returns, price, prev_price;
   * silence: silent_ms, threshold_ms, last_ts). The same (rule, symbol) stays quiet for cooldown_ms.
   */
  | {
      type: 'MarketAlert';
      rule_id: string;
      rule_name: string;
      kind: 'move' | 'zscore' | 'silence';
      symbol: string;
      figures: Record<string, number>;
      cooldown_ms: number;
    }
  /**
   * A symbol silent for longer than the gap threshold while the feed was otherwise alive, under
   * '_market'. state 'open': still silent, to = when it was seen; 'closed': it ticked again at to.
   */
  | { type: 'FeedGap'; symbol: string; from: number; to: number; gap_ms: number; state: 'open' | 'closed' }
  /**
   * Suspect ticks (src/engine/suspect.ts), under '_market': a tick that moved its symbol's price more
   * than suspectMovePct from the reference (ref_price) was held, not applied; then confirmed (applied,
   * or superseded by the confirming tick) or rejected (dropped), by the next tick or by an admin.
   * price and tick_ts are the held tick's; move_pct = |price / ref_price - 1| * 100.
   */
  | { type: 'SuspectTickHeld'; symbol: string; price: number; ref_price: number; move_pct: number; tick_ts: number }
  | { type: 'SuspectTickConfirmed'; symbol: string; price: number; ref_price: number; move_pct: number; tick_ts: number; by: 'tick' | 'admin' }
  | { type: 'SuspectTickRejected'; symbol: string; price: number; ref_price: number; move_pct: number; tick_ts: number; by: 'tick' | 'admin' }
  /** A split applied to this portfolio's position: quantities floor toward zero, dropped_quantity is the remainder lost. */
  | { type: 'SplitApplied'; action_id: string; symbol: string; from: number; to: number; quantity_before: number; quantity_after: number; dropped_quantity: number }
  /** The quantity this portfolio held at the dividend's ex-date (negative: short, it owes the dividend). */
  | { type: 'DividendEntitled'; action_id: string; symbol: string; quantity: number; amount_per_share: number; pay_ts: number; currency: string; multiplier?: number }
  /**
   * The dividend paid: amount in `currency` credited to cash (cash_balances for a foreign currency);
   * realized (base) = amount * fx_rate added to realized_pnl; fx_rate 1 in the base currency, null when
   * no rate of a foreign currency was ever seen (then realized is 0: the cash is credited unconverted).
   */
  | { type: 'DividendPaid'; action_id: string; symbol: string; amount: number; currency: string; fx_rate: number | null; realized: number }
  /** The position moved from from_symbol to to_symbol; merged: the portfolio already held to_symbol (same side). */
  | { type: 'SymbolChanged'; action_id: string; from_symbol: string; to_symbol: string; quantity: number; merged: boolean }
  /**
   * An action entered through the API, under the pseudo-portfolio '_corporate' (times resolved).
   * scope: cluster mode, the partition whose portfolios it applies to (absent: every portfolio).
   */
  | { type: 'CorporateActionAnnounced'; action: CorporateAction; scope?: string }
  /**
   * One step of an action done, under '_corporate', in the same commit as the per-portfolio events it
   * produced: holders = portfolios it changed. error non-null: refused as a whole (nothing changed),
   * the action failed.
   */
  | { type: 'CorporateActionApplied'; action_id: string; step: CorporateStepName; holders: number; error: { code: string; message: string } | null; scope?: string };

export type DomainEventType = DomainEventBody['type'];

export type DomainEvent = DomainEventBody & { portfolio_id: string; ts: number };

/** A persisted event: the domain event with its global, monotonic sequence. */
export type StoredEvent = DomainEvent & { seq: number };

/** Events that change state on replay; the others are derived and kept for audit. */
export const replayedEventTypes: ReadonlySet<DomainEventType> = new Set<DomainEventType>([
  'PortfolioCreated',
  'PortfolioClosed',
  'TradeExecuted',
  'CashDeposited',
  'CashWithdrawn',
  'LimitsSet',
  'TradingPaused',
  'TradingResumed',
  'SplitApplied',
  'DividendEntitled',
  'DividendPaid',
  'SymbolChanged',
  'ContractAdjusted',
  'FxConverted',
  // Reference data under '_instruments': the engine rebuilds its instrument table from them.
  'InstrumentDefined',
  // Not a portfolio's: the engine rebuilds pending corporate actions from them (and compaction keeps
  // them, as replayed events of a pseudo-portfolio without a snapshot).
  'CorporateActionAnnounced',
  'CorporateActionApplied',
]);

export const domainEventTypes: readonly DomainEventType[] = [
  'PortfolioCreated',
  'PortfolioClosed',
  'TradeExecuted',
  'CashDeposited',
  'CashWithdrawn',
  'LimitsSet',
  'TradingPaused',
  'TradingResumed',
  'PositionOpened',
  'PositionClosed',
  'LotClosed',
  'RiskLimitBreached',
  'ShardRestarted',
  'MarketAlert',
  'FeedGap',
  'SuspectTickHeld',
  'SuspectTickConfirmed',
  'SuspectTickRejected',
  'SplitApplied',
  'DividendEntitled',
  'DividendPaid',
  'SymbolChanged',
  'CorporateActionAnnounced',
  'CorporateActionApplied',
  'ContractAdjusted',
  'FxConverted',
  'InstrumentDefined',
];

/** Injected time: nothing in the domain, the actors or the kernel reads a clock directly. */
export interface Clock {
  /** Wall-clock epoch milliseconds. */
  now(): number;
}

/** Injected randomness: a seeded PRNG returning floats in [0, 1). */
export interface Random {
  next(): number;
}

/** What a snapshot persists for one portfolio; enough to rebuild it without replaying older events. */
export interface PortfolioRecord {
  portfolio: PortfolioState;
  state: PortfolioStatus;
  /** Equity high-water mark (for max_drawdown_pct). */
  equity_hwm: number;
  /** Per-portfolio update sequence, so subscribers' seq keeps increasing across restarts. */
  seq: number;
  /** Global sequence of the last event this record includes; replay starts after it. */
  covered_seq: number;
  as_of: number;
}

export interface LastPrice {
  symbol: string;
  price: number;
  ts: number;
}
