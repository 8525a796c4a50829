// The domain's messages, defined once (see src/schema.ts for the mechanism and how to add one): what
// clients send (trades, portfolios, cash, limits, ticks, corporate actions) and what the engine answers
// (positions, totals, snapshots, updates, trade results). Their TypeScript types are derived here and
// re-exported by types.ts; validate.ts compiles the inputs; the server's OpenAPI and AsyncAPI documents
// are emitted from these objects. Rules JSON Schema cannot say stay code in validate.ts.

import { ErrorCode } from '../errors.js';
import { Type, errorRule, named, nullable, type Static } from '../schema.js';
import {
  amountMax,
  assetClasses,
  costBasisMethods,
  instrumentDescriptionLengthMax,
  multiplierMax,
  currencyPattern,
  fxRateMax,
  lotIdsPerTradeMax,
  nameLengthMax,
  portfolioIdPattern,
  priceMax,
  quantityMax,
  splitRatioMax,
  symbolPattern,
  tradeIdPattern,
} from './rules.js';

/** Largest epoch ms a timestamp may be (the ECMAScript Date range). */
export const epochMsMax = 8.64e15;

const symbolRule = `must match ${symbolPattern.source.slice(1, -1)}`;
const idRule = `must match ${tradeIdPattern.source.slice(1, -1)}`;
const currencyRule = 'must be three capital letters (ISO 4217)';

// ---- fields ----

export const SymbolField = (options = {}) => Type.String({ pattern: symbolPattern.source, ...errorRule(ErrorCode.invalid_symbol, symbolRule), ...options });
export const PortfolioIdField = (options = {}) =>
  Type.String({ pattern: portfolioIdPattern.source, ...errorRule(ErrorCode.invalid_id, `must match ${portfolioIdPattern.source.slice(1, -1)}`), ...options });
const IdField = (code: ErrorCode = ErrorCode.invalid_id) => Type.String({ pattern: tradeIdPattern.source, ...errorRule(code, idRule) });
const Currency = () => Type.String({ pattern: currencyPattern.source, ...errorRule(ErrorCode.invalid_currency, currencyRule) });
const EpochMs = (description?: string) =>
  Type.Integer({ minimum: 0, maximum: epochMsMax, ...errorRule(ErrorCode.invalid_timestamp, 'must be an integer epoch in milliseconds'), ...(description === undefined ? {} : { description }) });
const CostBasisMethod = () =>
  Type.Enum([...costBasisMethods] as ['average', 'fifo', 'lifo'], { description: 'How a reducing trade picks the cost it realizes against', ...errorRule(ErrorCode.invalid_field) });
const StateField = () => Type.Enum(['active', 'paused', 'closed']);

// ---- inputs ----

export const RiskLimits = named(
  'RiskLimits',
  Type.Object(
    {
      max_loss: Type.Optional(nullable(Type.Number({ minimum: 0, maximum: amountMax }), { description: 'Breach when unrealized + realized P&L falls below -max_loss' })),
      max_drawdown_pct: Type.Optional(
        nullable(Type.Number({ minimum: 0, maximum: 100 }), { description: 'Breach when equity has fallen more than this percentage below its high-water mark' }),
      ),
      max_position_weight_pct: Type.Optional(
        nullable(Type.Number({ minimum: 0, maximum: 100 }), { description: "Breach when one position's |market_value| exceeds this percentage of gross exposure" }),
      ),
    },
    { additionalProperties: false, description: 'null clears a limit', ...errorRule(ErrorCode.invalid_limits, undefined, { rules: { additionalProperties: 'is not a known limit' } }) },
  ),
);
export type RiskLimits = Static<typeof RiskLimits>;

export const TradeInput = named(
  'TradeInput',
  Type.Object({
    trade_id: IdField(),
    symbol: SymbolField(),
    side: Type.Enum(['buy', 'sell'], errorRule(ErrorCode.invalid_side, "must be 'buy' or 'sell'")),
    quantity: Type.Number({
      exclusiveMinimum: 0,
      maximum: quantityMax,
      description: 'At most 8 decimal places (checked in code: quantities are exact multiples of 1e-8)',
      ...errorRule(ErrorCode.invalid_quantity),
    }),
    price: Type.Number({ exclusiveMinimum: 0, maximum: priceMax, ...errorRule(ErrorCode.invalid_price, `must be a finite number > 0 and <= ${priceMax}`) }),
    fee: Type.Optional(nullable(Type.Number({ minimum: 0, maximum: amountMax }), { description: 'Default 0', ...errorRule(ErrorCode.invalid_fee) })),
    ts: Type.Optional(nullable(EpochMs(), { description: 'Trade time, epoch ms (default: now)', ...errorRule(ErrorCode.invalid_timestamp, 'must be an integer epoch in milliseconds') })),
    currency: Type.Optional(nullable(Currency(), { description: "Quote currency of the instrument (default: the portfolio's base currency)", ...errorRule(ErrorCode.invalid_currency, currencyRule) })),
    fx_rate: Type.Optional(
      nullable(Type.Number({ exclusiveMinimum: 0, maximum: fxRateMax }), {
        description: 'Quote -> base rate this trade was booked at (default: the latest rate seen for the pair)',
        ...errorRule(ErrorCode.invalid_fx_rate, `must be a finite number > 0 and <= ${fxRateMax}`),
      }),
    ),
    lot_ids: Type.Optional(
      nullable(Type.Array(Type.String({ pattern: tradeIdPattern.source, ...errorRule(ErrorCode.invalid_lots, idRule) }), { minItems: 1, maxItems: lotIdsPerTradeMax, uniqueItems: true }), {
        description: 'Lot-based portfolios: the open lots (their lot_id) this reducing trade closes, in this order',
        ...errorRule(ErrorCode.invalid_lots, undefined, { rules: { uniqueItems: 'must not repeat a lot', minItems: `must be an array of 1 to ${lotIdsPerTradeMax} lot ids`, maxItems: `must be an array of 1 to ${lotIdsPerTradeMax} lot ids`, type: `must be an array of 1 to ${lotIdsPerTradeMax} lot ids` } }),
      }),
    ),
    dry_run: Type.Optional(
      nullable(Type.Boolean(), {
        description: 'true: a what-if; answers the figures and breaches, books and writes nothing, uses up no trade_id (which must be unused)',
        ...errorRule(ErrorCode.invalid_field, 'must be a boolean'),
      }),
    ),
  }),
);
export type TradeInput = Static<typeof TradeInput>;

export const CreatePortfolio = named(
  'CreatePortfolio',
  Type.Object({
    id: Type.Optional(PortfolioIdField({ description: 'Default: a generated id' })),
    name: Type.Optional(Type.String({ maxLength: nameLengthMax, ...errorRule(ErrorCode.invalid_field, `must be a string of at most ${nameLengthMax} characters`) })),
    cash: Type.Optional(Type.Number({ minimum: 0, maximum: amountMax, ...errorRule(ErrorCode.invalid_amount) })),
    limits: Type.Optional(nullable(RiskLimits)),
    cost_basis_method: Type.Optional(nullable(CostBasisMethod(), { description: 'Default average', ...errorRule(ErrorCode.invalid_field) })),
    base_currency: Type.Optional(nullable(Currency(), { description: 'Default USD', ...errorRule(ErrorCode.invalid_currency, currencyRule) })),
  }),
);
export type CreatePortfolioInput = Static<typeof CreatePortfolio>;

export const CashInput = named(
  'CashInput',
  Type.Object({
    type: Type.Enum(['deposit', 'withdraw'], errorRule(ErrorCode.invalid_field, "must be 'deposit' or 'withdraw'")),
    amount: Type.Number({ exclusiveMinimum: 0, maximum: amountMax, ...errorRule(ErrorCode.invalid_amount) }),
    currency: Type.Optional(nullable(Currency(), { description: "Default: the portfolio's base currency", ...errorRule(ErrorCode.invalid_currency, currencyRule) })),
  }),
);
export type CashInput = Static<typeof CashInput>;

export const FxConversionInput = named(
  'FxConversionInput',
  Type.Object(
    {
      from_currency: Currency(),
      to_currency: Currency(),
      amount: Type.Number({ exclusiveMinimum: 0, maximum: amountMax, description: 'Taken from the from_currency balance; amount x rate is credited to to_currency', ...errorRule(ErrorCode.invalid_amount) }),
      rate: Type.Number({ exclusiveMinimum: 0, maximum: fxRateMax, description: 'to_currency per from_currency', ...errorRule(ErrorCode.invalid_fx_rate, `must be a finite number > 0 and <= ${fxRateMax}`) }),
    },
    {
      additionalProperties: false,
      description: 'Moves cash between two balances of one portfolio at a given rate (to per from)',
      ...errorRule(ErrorCode.invalid_field, undefined, { rules: { additionalProperties: 'is not a field of a conversion (fields: from_currency, to_currency, amount, rate)' } }),
    },
  ),
);
export type FxConversionInput = Static<typeof FxConversionInput>;

const multiplierRule = `must be a finite number > 0 and <= ${multiplierMax}`;
const Multiplier = (rule = multiplierRule) =>
  Type.Number({
    exclusiveMinimum: 0,
    maximum: multiplierMax,
    description: 'Money per point of price per unit held (ES: 50, an equity option: 100); at most 8 decimals (checked in code)',
    ...errorRule(ErrorCode.invalid_field, rule),
  });
const instrumentFields = {
  asset_class: Type.Enum([...assetClasses], errorRule(ErrorCode.invalid_field)),
  currency: Type.String({ pattern: currencyPattern.source, description: 'The currency its prices are quoted in', ...errorRule(ErrorCode.invalid_currency, currencyRule) }),
  multiplier: Multiplier(),
  tick_size: Type.Optional(nullable(Type.Number({ exclusiveMinimum: 0, maximum: priceMax }), errorRule(ErrorCode.invalid_field, `must be a finite number > 0 and <= ${priceMax}`))),
  description: Type.Optional(
    nullable(Type.String({ maxLength: instrumentDescriptionLengthMax }), errorRule(ErrorCode.invalid_field, `must be a string of at most ${instrumentDescriptionLengthMax} characters`)),
  ),
};
/** PUT /api/v1/instruments/{symbol}: the symbol comes from the path; a body symbol must agree (checked in code). */
export const InstrumentInput = named(
  'InstrumentInput',
  Type.Object(
    { symbol: Type.Optional(SymbolField()), ...instrumentFields },
    {
      additionalProperties: false,
      ...errorRule(ErrorCode.invalid_field, undefined, { rules: { additionalProperties: 'is not a field of an instrument (fields: symbol, asset_class, currency, multiplier, tick_size, description)' } }),
    },
  ),
);
/** Reference data of one symbol. Prices and avg_cost stay in points; money = points x multiplier. */
export const Instrument = named(
  'Instrument',
  Type.Object({
    symbol: Type.String(),
    asset_class: Type.Enum([...assetClasses]),
    currency: Type.String({ pattern: currencyPattern.source }),
    multiplier: Type.Number({ exclusiveMinimum: 0 }),
    tick_size: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    description: Type.Optional(Type.String()),
  }),
);
export type Instrument = Static<typeof Instrument>;
export const InstrumentList = named('InstrumentList', Type.Object({ instruments: Type.Array(Instrument) }));

/** A tick's fields; the feed's JSON ticks require ts (FeedTick). Every field answers with its own code, by index. */
const tickFields = {
  symbol: SymbolField(),
  price: Type.Number({ exclusiveMinimum: 0, maximum: priceMax, ...errorRule(ErrorCode.invalid_price, `must be a finite number > 0 and <= ${priceMax}`) }),
  size: Type.Optional(nullable(Type.Number({ minimum: 0 }), { description: 'Traded size (bars sum it as volume)', ...errorRule(ErrorCode.invalid_quantity) })),
};
const tickTs = () => Type.Number({ minimum: 0, maximum: epochMsMax, description: 'Source timestamp, epoch ms', ...errorRule(ErrorCode.invalid_timestamp, 'must be an epoch in milliseconds') });
export const Tick = named('Tick', Type.Object({ ...tickFields, ts: Type.Optional(nullable(tickTs(), { description: 'Default: now', ...errorRule(ErrorCode.invalid_timestamp, 'must be an epoch in milliseconds') })) }, errorRule(ErrorCode.invalid_field)));
export type TickInput = Static<typeof Tick>;
export const FeedTick = named('FeedTick', Type.Object({ ...tickFields, ts: tickTs() }, errorRule(ErrorCode.invalid_field)));
export type FeedTick = Static<typeof FeedTick>;

const ratio = () => Type.Integer({ minimum: 1, maximum: splitRatioMax, ...errorRule(ErrorCode.invalid_field, `must be an integer from 1 to ${splitRatioMax}`) });
const optionalTime = (description: string) => Type.Optional(nullable(EpochMs(), { description, ...errorRule(ErrorCode.invalid_timestamp, 'must be an integer epoch in milliseconds') }));
const requiredTime = () =>
  Type.Integer({ minimum: 0, maximum: epochMsMax, ...errorRule(ErrorCode.invalid_timestamp, 'must be an integer epoch in milliseconds', { rules: { required: 'is required (integer epoch in milliseconds)' } }) });
const corporateFields = (kind: string, fields: string[]) =>
  ({ additionalProperties: false, ...errorRule(ErrorCode.invalid_field, undefined, { rules: { additionalProperties: `is not a field of a ${kind} action (fields: ${fields.join(', ')})` } }) }) as const;

export const SplitInput = named(
  'SplitInput',
  Type.Object(
    { action_id: IdField(), type: Type.Literal('split'), symbol: SymbolField(), from: ratio(), to: ratio(), effective_ts: optionalTime('Default: now (when it is applied)') },
    corporateFields('split', ['action_id', 'type', 'symbol', 'from', 'to', 'effective_ts']),
  ),
);
export const DividendInput = named(
  'DividendInput',
  Type.Object(
    {
      action_id: IdField(),
      type: Type.Literal('dividend'),
      symbol: SymbolField(),
      amount_per_share: Type.Number({ exclusiveMinimum: 0, maximum: priceMax, description: 'In the quote currency', ...errorRule(ErrorCode.invalid_amount, `must be a finite number > 0 and <= ${priceMax}`) }),
      ex_ts: requiredTime(),
      pay_ts: requiredTime(),
    },
    corporateFields('dividend', ['action_id', 'type', 'symbol', 'amount_per_share', 'ex_ts', 'pay_ts']),
  ),
);
export const SymbolChangeInput = named(
  'SymbolChangeInput',
  Type.Object(
    { action_id: IdField(), type: Type.Literal('symbol_change'), symbol: SymbolField(), new_symbol: SymbolField(), effective_ts: optionalTime('Default: now (when it is applied)') },
    corporateFields('symbol_change', ['action_id', 'type', 'symbol', 'new_symbol', 'effective_ts']),
  ),
);
export const ContractAdjustmentInput = named(
  'ContractAdjustmentInput',
  Type.Object(
    { action_id: IdField(), type: Type.Literal('contract_adjustment'), symbol: SymbolField(), multiplier: Multiplier(`${multiplierRule} with at most 8 decimal places`), effective_ts: optionalTime('Default: now (when it is applied)') },
    corporateFields('contract_adjustment', ['action_id', 'type', 'symbol', 'multiplier', 'effective_ts']),
  ),
);
export const corporateInputs = { split: SplitInput, dividend: DividendInput, symbol_change: SymbolChangeInput, contract_adjustment: ContractAdjustmentInput } as const;
export const CorporateActionInput = named(
  'CorporateActionInput',
  Type.Union([SplitInput, DividendInput, SymbolChangeInput, ContractAdjustmentInput], {
    description:
      "split: `to` new shares for every `from` old (2-for-1: from 1, to 2), at effective_ts (default: now). dividend: amount_per_share in the quote currency, entitlement at ex_ts (not in the past), paid at pay_ts >= ex_ts. symbol_change: positions and lots move to new_symbol at effective_ts (default: now). contract_adjustment: a defined instrument's new multiplier; holdings rescaled so quantity x multiplier is kept.",
  }),
);

// ---- views (what the engine answers) ----

const num = () => Type.Number();
const count = (description?: string) => Type.Integer({ minimum: 0, ...(description === undefined ? {} : { description }) });

export const PositionView = named(
  'Position',
  Type.Object({
    symbol: Type.String(),
    currency: Type.String({ pattern: currencyPattern.source, description: 'Quote currency: avg_cost and last_price are in it; market_value and the P&L are in the base' }),
    fx_rate: nullable(Type.Number({ exclusiveMinimum: 0 }), {
      description:
        'Latest quote -> base rate applied (1 for base-currency positions); null when never seen: the position is then left out of every total and its market_value/unrealized_pnl are in its quote currency, unconverted',
    }),
    quantity: num(),
    avg_cost: num(),
    last_price: num(),
    market_value: num(),
    unrealized_pnl: num(),
    realized_pnl: num(),
    return_rate: num(),
    weight: num(),
    price_ts: nullable(Type.Number(), { description: 'Source timestamp (epoch ms) of the tick behind last_price; null while the symbol never ticked (last_price is the last trade price)' }),
    price_age_ms: nullable(Type.Number(), { description: 'as_of - price_ts (negative when the source clock runs ahead); null when unpriced. Clients may age it locally from price_ts' }),
    stale: Type.Boolean({ description: "Unpriced, or price_age_ms > the engine's staleAfterMs" }),
  }),
);
export type PositionView = Static<typeof PositionView>;

const totalsFields = {
  cash: num(),
  capital: num(),
  holdings_value: num(),
  cost_basis: num(),
  unrealized_pnl: num(),
  realized_pnl: num(),
  total_return: num(),
  return_rate: num(),
  equity: num(),
  gross_exposure: Type.Number({ description: 'sum(|market_value|): weights of positions not in an update are |market_value| / gross_exposure * 100' }),
  unconverted_positions: count('Open positions (and foreign cash balances) left out of the totals: their FX rate was never seen'),
  stale_positions: count('Open positions whose mark is stale as of as_of (unpriced ones included)'),
  unpriced_positions: count('Open positions whose symbol never ticked (marked at their last trade price)'),
};
export const Totals = named('Totals', Type.Object(totalsFields));
export type Totals = Static<typeof Totals>;

export const LotView = named('Lot', Type.Object({ lot_id: Type.String(), quantity: Type.Number({ exclusiveMinimum: 0 }), price: num(), opened_ts: num() }));
export type LotView = Static<typeof LotView>;

export const PortfolioSnapshot = named(
  'Snapshot',
  Type.Object({
    portfolio_id: Type.String(),
    name: Type.String(),
    seq: Type.Integer(),
    as_of: num(),
    state: StateField(),
    limits: RiskLimits,
    equity_hwm: num(),
    cost_basis_method: CostBasisMethod(),
    base_currency: Type.String({ pattern: currencyPattern.source }),
    cash_balances: Type.Record(Type.String(), Type.Number(), { description: "Foreign-currency cash, by currency (the base currency's cash is `cash`)" }),
    positions: Type.Array(PositionView),
    lots: Type.Optional(Type.Record(Type.String(), Type.Array(LotView), { description: 'Open lots by symbol: only when asked for (lots=true) and only for lot-based portfolios' })),
    ...totalsFields,
  }),
);
export type PortfolioSnapshot = Static<typeof PortfolioSnapshot>;

export const PositionLots = named(
  'PositionLots',
  Type.Object({
    portfolio_id: Type.String(),
    symbol: Type.String(),
    cost_basis_method: CostBasisMethod(),
    currency: Type.String({ pattern: currencyPattern.source }),
    quantity: num(),
    avg_cost: num(),
    lots: Type.Array(LotView),
  }),
);

export const PortfolioUpdate = named(
  'Update',
  Type.Object({
    portfolio_id: Type.String(),
    seq: Type.Integer(),
    as_of: num(),
    state: StateField(),
    tick_ts: Type.Number({ description: 'Source timestamp (epoch ms) of the newest tick behind this update; 0 when a command caused it' }),
    positions: Type.Array(PositionView, { description: 'Only the positions that changed; a closed position appears once with quantity 0' }),
    ...totalsFields,
  }),
);
export type PortfolioUpdate = Static<typeof PortfolioUpdate>;

export const TradeResult = named(
  'TradeResult',
  Type.Object({
    trade_id: Type.String(),
    portfolio_id: Type.String(),
    applied: Type.Boolean({ description: 'false when this trade_id was applied before: the first result is returned again' }),
    realized_pnl: num(),
    position: PositionView,
    totals: Totals,
    state: StateField(),
    dry_run: Type.Optional(Type.Literal(true, { description: 'A what-if: nothing was booked; the figures are what the trade would produce' })),
    breaches: Type.Optional(Type.Array(Type.Enum(['max_loss', 'max_drawdown_pct', 'max_position_weight_pct']), { description: 'What-if only: every risk limit the trade would breach (empty: none)' })),
  }),
);
export type TradeResult = Static<typeof TradeResult>;
