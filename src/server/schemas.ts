// JSON Schemas (2020-12, as OpenAPI 3.1 and AsyncAPI 3 take them) of everything the server sends and
// accepts. openapi.ts and asyncapi.ts reference these under components.schemas; a test validates real
// responses and messages against them.

import { ErrorCode } from '../errors.js';
import { assetClasses, domainEventTypes, instrumentDescriptionLengthMax, multiplierMax, priceMax, splitRatioMax } from '../domain/types.js';

type Schema = Record<string, unknown>;

const num: Schema = { type: 'number' };
const int: Schema = { type: 'integer' };
const str: Schema = { type: 'string' };
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties), extra: Schema = {}): Schema => ({
  type: 'object',
  properties,
  required,
  ...extra,
});

const totals: Record<string, Schema> = {
  cash: num,
  capital: num,
  holdings_value: num,
  cost_basis: num,
  unrealized_pnl: num,
  realized_pnl: num,
  total_return: num,
  return_rate: num,
  equity: num,
  gross_exposure: num,
  unconverted_positions: { type: 'integer', minimum: 0 },
  stale_positions: { type: 'integer', minimum: 0, description: 'Open positions whose mark is stale as of as_of (unpriced ones included)' },
  unpriced_positions: { type: 'integer', minimum: 0, description: 'Open positions whose symbol never ticked (marked at their last trade price)' },
};
const currency: Schema = { type: 'string', pattern: '^[A-Z]{3}$' };
const costBasisMethod: Schema = { type: 'string', enum: ['average', 'fifo', 'lifo'] };

const state: Schema = { type: 'string', enum: ['active', 'paused', 'closed'] };
const requestId: Schema = { oneOf: [{ type: 'string', minLength: 1, maxLength: 128 }, { type: 'integer' }] };
const portfolioId: Schema = { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,64}$' };
const eventType: Schema = { type: 'string', enum: [...domainEventTypes] };
const idPattern: Schema = { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,128}$' };
const symbol: Schema = { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,32}$' };
const epochMs: Schema = { type: 'integer', minimum: 0 };
const ratio: Schema = { type: 'integer', minimum: 1, maximum: splitRatioMax };
const splitFields = { action_id: idPattern, type: { const: 'split' }, symbol, from: ratio, to: ratio, effective_ts: epochMs };
const dividendFields = { action_id: idPattern, type: { const: 'dividend' }, symbol, amount_per_share: { type: 'number', exclusiveMinimum: 0 }, ex_ts: epochMs, pay_ts: epochMs };
const symbolChangeFields = { action_id: idPattern, type: { const: 'symbol_change' }, symbol, new_symbol: symbol, effective_ts: epochMs };
const multiplier: Schema = { type: 'number', exclusiveMinimum: 0, maximum: multiplierMax, description: 'Money per point of price per unit held (ES: 50, an equity option: 100); at most 8 decimals' };
const contractAdjustmentFields = { action_id: idPattern, type: { const: 'contract_adjustment' }, symbol, multiplier, effective_ts: epochMs };
const instrumentFields = {
  asset_class: { type: 'string', enum: [...assetClasses] },
  currency,
  multiplier,
  tick_size: { type: 'number', exclusiveMinimum: 0, maximum: priceMax },
  description: { type: 'string', maxLength: instrumentDescriptionLengthMax },
};
const corporateStatus = {
  status: { type: 'string', enum: ['pending', 'applied', 'failed'] },
  announced_ts: num,
  steps: {
    type: 'array',
    items: obj({ step: { type: 'string', enum: ['split', 'ex_date', 'pay_date', 'symbol_change', 'contract_adjustment'] }, applied_ts: num, holders: { type: 'integer', minimum: 0 } }),
  },
  error: { oneOf: [{ type: 'null' }, obj({ code: str, message: str })] },
};

export const schemas: Record<string, Schema> = {
  Error: obj({
    error: obj({ code: { type: 'string', enum: [...Object.values(ErrorCode), 'internal'] }, message: str, field: str }, ['code', 'message']),
  }),
  RiskLimits: obj(
    {
      max_loss: { type: ['number', 'null'], minimum: 0 },
      max_drawdown_pct: { type: ['number', 'null'], minimum: 0, maximum: 100 },
      max_position_weight_pct: { type: ['number', 'null'], minimum: 0, maximum: 100 },
    },
    [],
  ),
  Position: obj({
    symbol: str,
    currency,
    fx_rate: { type: ['number', 'null'], exclusiveMinimum: 0 },
    quantity: num,
    avg_cost: num,
    last_price: num,
    market_value: num,
    unrealized_pnl: num,
    realized_pnl: num,
    return_rate: num,
    weight: num,
    price_ts: { type: ['number', 'null'], description: 'Source timestamp (epoch ms) of the tick behind last_price; null while the symbol never ticked' },
    price_age_ms: { type: ['number', 'null'], description: 'as_of - price_ts, as of the message; null when unpriced. Clients may age it locally from price_ts' },
    stale: { type: 'boolean', description: 'Unpriced, or price_age_ms > staleAfterMs' },
  }),
  Totals: obj(totals),
  Snapshot: obj({
    portfolio_id: str,
    name: str,
    seq: int,
    as_of: num,
    state,
    limits: ref('RiskLimits'),
    equity_hwm: num,
    cost_basis_method: costBasisMethod,
    base_currency: currency,
    cash_balances: { type: 'object', additionalProperties: num },
    positions: { type: 'array', items: ref('Position') },
    lots: { type: 'object', additionalProperties: { type: 'array', items: ref('Lot') } },
    ...totals,
  }, ['portfolio_id', 'name', 'seq', 'as_of', 'state', 'limits', 'equity_hwm', 'cost_basis_method', 'base_currency', 'cash_balances', 'positions', ...Object.keys(totals)]),
  Lot: obj({ lot_id: str, quantity: { type: 'number', exclusiveMinimum: 0 }, price: num, opened_ts: num }),
  PositionLots: obj({
    portfolio_id: str,
    symbol: str,
    cost_basis_method: costBasisMethod,
    currency,
    quantity: num,
    avg_cost: num,
    lots: { type: 'array', items: ref('Lot') },
  }),
  Update: obj({
    portfolio_id: str,
    seq: int,
    as_of: num,
    state,
    tick_ts: num,
    positions: { type: 'array', items: ref('Position') },
    ...totals,
  }),
  TradeResult: obj({
    trade_id: str,
    portfolio_id: str,
    applied: { type: 'boolean' },
    realized_pnl: num,
    position: ref('Position'),
    totals: ref('Totals'),
    state,
    dry_run: { const: true, description: 'A what-if: nothing was booked; the figures are what the trade would produce' },
    breaches: { type: 'array', items: { type: 'string', enum: ['max_loss', 'max_drawdown_pct', 'max_position_weight_pct'] }, description: 'What-if only: every risk limit the trade would breach' },
  }, ['trade_id', 'portfolio_id', 'applied', 'realized_pnl', 'position', 'totals', 'state']),
  Instrument: obj({ symbol, ...instrumentFields }, ['symbol', 'asset_class', 'currency', 'multiplier']),
  InstrumentInput: obj({ symbol, ...instrumentFields }, ['asset_class', 'currency', 'multiplier'], { additionalProperties: false }),
  InstrumentList: obj({ instruments: { type: 'array', items: ref('Instrument') } }),
  FxConversionInput: obj(
    { from_currency: currency, to_currency: currency, amount: { type: 'number', exclusiveMinimum: 0 }, rate: { type: 'number', exclusiveMinimum: 0, maximum: 1e6, description: 'to_currency per from_currency' } },
    ['from_currency', 'to_currency', 'amount', 'rate'],
    { additionalProperties: false },
  ),
  StoredEvent: obj({ type: eventType, portfolio_id: str, ts: num, seq: int }),
  PortfolioSummary: obj({ id: str, name: str, state }),
  PortfolioList: obj({ portfolios: { type: 'array', items: ref('PortfolioSummary') }, next: { type: ['string', 'null'] } }),
  EventList: obj({ events: { type: 'array', items: ref('StoredEvent') }, next_after_seq: { type: ['integer', 'null'] } }),
  TickRejection: obj({ index: { type: 'integer', minimum: 0 }, code: str }),
  TickIngestResult: obj({
    accepted: { type: 'integer', minimum: 0, description: 'Ticks taken, held ones included' },
    rejected: { type: 'array', items: ref('TickRejection') },
    held: { type: 'integer', minimum: 0, description: 'Of the accepted, ticks held as suspect (not applied until confirmed)' },
  }),
  HeldTick: obj({
    symbol: str,
    price: num,
    tick_ts: { type: 'number', description: "The held tick's source timestamp (epoch ms)" },
    ref_price: { type: 'number', description: 'The reference: the last applied price of the symbol' },
    move_pct: { type: 'number', minimum: 0, description: '|price / ref_price - 1| * 100' },
  }),
  HeldTickList: obj({ ticks: { type: 'array', items: ref('HeldTick') } }),
  SettledTick: {
    allOf: [ref('HeldTick'), obj({ outcome: { type: 'string', enum: ['confirmed', 'rejected'] } })],
  },
  Health: obj({
    status: { const: 'ok' },
    uws_binary: { type: 'string', enum: ['native', 'fallback'] },
    transport: { type: 'string', enum: ['uws', 'node'] },
    kernel: { type: 'string', enum: ['wasm', 'js'] },
    workers: int,
    uptime_ms: num,
    connections: obj({ main: int, compat: int, feed: int }),
  }),
  Ready: obj({ ready: { type: 'boolean' } }),
  CreatePortfolio: obj(
    {
      id: portfolioId,
      name: { type: 'string', maxLength: 128 },
      cash: { type: 'number', minimum: 0 },
      limits: ref('RiskLimits'),
      cost_basis_method: costBasisMethod,
      base_currency: currency,
    },
    [],
  ),
  TradeInput: obj(
    {
      trade_id: { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,128}$' },
      symbol: { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,32}$' },
      side: { type: 'string', enum: ['buy', 'sell'] },
      quantity: { type: 'number', exclusiveMinimum: 0 },
      price: { type: 'number', exclusiveMinimum: 0 },
      fee: { type: 'number', minimum: 0 },
      ts: { type: 'integer', minimum: 0 },
      currency,
      fx_rate: { type: 'number', exclusiveMinimum: 0, maximum: 1e6 },
      lot_ids: { type: 'array', minItems: 1, maxItems: 100, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,128}$' } },
      dry_run: { type: 'boolean', description: 'true: a what-if; answers the figures and breaches, books and writes nothing, uses up no trade_id (which must be unused)' },
    },
    ['trade_id', 'symbol', 'side', 'quantity', 'price'],
  ),
  CorporateActionInput: {
    description:
      'split: `to` new shares for every `from` old (2-for-1: from 1, to 2), at effective_ts (default: now). dividend: amount_per_share in the quote currency, entitlement at ex_ts (not in the past), paid at pay_ts >= ex_ts. symbol_change: positions and lots move to new_symbol at effective_ts (default: now).',
    oneOf: [
      obj(splitFields, ['action_id', 'type', 'symbol', 'from', 'to'], { additionalProperties: false }),
      obj(dividendFields, ['action_id', 'type', 'symbol', 'amount_per_share', 'ex_ts', 'pay_ts'], { additionalProperties: false }),
      obj(symbolChangeFields, ['action_id', 'type', 'symbol', 'new_symbol'], { additionalProperties: false }),
      obj(contractAdjustmentFields, ['action_id', 'type', 'symbol', 'multiplier'], { additionalProperties: false }),
    ],
  },
  CorporateAction: {
    oneOf: [
      obj({ ...splitFields, ...corporateStatus }),
      obj({ ...dividendFields, ...corporateStatus }),
      obj({ ...symbolChangeFields, ...corporateStatus }),
      obj({ ...contractAdjustmentFields, ...corporateStatus }),
    ],
  },
  CorporateActionList: obj({ actions: { type: 'array', items: ref('CorporateAction') }, next_after_seq: { type: ['integer', 'null'] } }),
  CashInput: obj({ type: { type: 'string', enum: ['deposit', 'withdraw'] }, amount: { type: 'number', exclusiveMinimum: 0 }, currency }, ['type', 'amount']),
  Tick: obj(
    { symbol: str, price: { type: 'number', exclusiveMinimum: 0 }, ts: { type: 'integer', minimum: 0 }, size: { type: 'number', minimum: 0 } },
    ['symbol', 'price'],
  ),

  // ---- WebSocket messages (AsyncAPI); server -> client ----
  SnapshotMessage: {
    allOf: [ref('Snapshot'), obj({ type: { const: 'snapshot' }, resync: { type: 'boolean' } })],
  },
  UpdateMessage: {
    allOf: [ref('Update'), obj({ type: { const: 'update' }, from_seq: int }, ['type'])],
  },
  EventMessage: obj({ type: { const: 'event' }, event: ref('StoredEvent') }),
  AckMessage: { allOf: [ref('TradeResult'), obj({ type: { const: 'ack' }, id: requestId })] },
  ErrorMessage: obj(
    { type: { const: 'error' }, code: { type: 'string', enum: [...Object.values(ErrorCode)] }, message: str, id: requestId, field: str, portfolio: str, retry_after_ms: int },
    ['type', 'code', 'message'],
  ),
  PongMessage: obj({ type: { const: 'pong' }, id: requestId, ts: num }, ['type', 'ts']),
  SubscribedMessage: obj({ type: { const: 'subscribed' }, id: requestId, portfolios: { type: 'array', items: str } }, ['type', 'portfolios']),
  UnsubscribedMessage: obj({ type: { const: 'unsubscribed' }, id: requestId, portfolios: { type: 'array', items: str } }, ['type', 'portfolios']),
  EventsSubscribedMessage: obj(
    {
      type: { const: 'events_subscribed' },
      id: requestId,
      portfolios: { type: ['array', 'null'], items: str },
      types: { type: ['array', 'null'], items: eventType },
    },
    ['type', 'portfolios', 'types'],
  ),
  RegisteredMessage: obj(
    {
      type: { const: 'registered' },
      id: requestId,
      symbols: { type: 'array', items: obj({ symbol: str, id: { type: 'integer', minimum: 0 } }) },
      rejected: { type: 'array', items: ref('TickRejection') },
    },
    ['type', 'symbols', 'rejected'],
  ),
  FeedAckMessage: obj(
    {
      type: { const: 'feed_ack' },
      id: requestId,
      batch: { type: 'integer', minimum: 1 },
      accepted: { type: 'integer', minimum: 0 },
      rejected: { type: 'integer', minimum: 0 },
      held: { type: 'integer', minimum: 0, description: 'Of the accepted, ticks held as suspect' },
      errors: { type: 'array', maxItems: 32, items: ref('TickRejection') },
    },
    ['type', 'batch', 'accepted', 'rejected', 'held', 'errors'],
  ),
  CompatSnapshotMessage: {
    allOf: [ref('Snapshot'), obj({ type: { const: 'snapshot' } }, ['type'])],
  },

  // ---- client -> server ----
  SubscribeOp: obj(
    {
      op: { const: 'subscribe' },
      id: requestId,
      portfolios: { type: 'array', minItems: 1, items: portfolioId },
      throttle_ms: { type: 'integer', minimum: 0, maximum: 60000 },
      encoding: { type: 'string', enum: ['json', 'binary'] },
    },
    ['op', 'portfolios'],
  ),
  UnsubscribeOp: obj({ op: { const: 'unsubscribe' }, id: requestId, portfolios: { type: 'array', minItems: 1, items: portfolioId } }, ['op', 'portfolios']),
  ResyncOp: obj({ op: { const: 'resync' }, id: requestId, portfolio: portfolioId }, ['op', 'portfolio']),
  SubscribeEventsOp: obj(
    { op: { const: 'subscribe_events' }, id: requestId, portfolios: { type: 'array', minItems: 1, items: portfolioId }, types: { type: 'array', minItems: 1, items: eventType } },
    ['op'],
  ),
  UnsubscribeEventsOp: obj({ op: { const: 'unsubscribe_events' }, id: requestId }, ['op']),
  TradeOp: obj(
    { op: { const: 'trade' }, id: requestId, portfolio: portfolioId, trade: ref('TradeInput'), dry_run: { type: 'boolean', description: 'A what-if (same as trade.dry_run): the ack carries dry_run and breaches' } },
    ['op', 'id', 'portfolio', 'trade'],
  ),
  PingOp: obj({ op: { const: 'ping' }, id: requestId }, ['op']),
  FeedRegisterOp: obj({ op: { const: 'register' }, id: requestId, symbols: { type: 'array', minItems: 1, items: str } }, ['op', 'symbols']),
  FeedTicksOp: obj(
    {
      op: { const: 'ticks' },
      id: requestId,
      ticks: { type: 'array', items: { allOf: [ref('Tick'), { required: ['symbol', 'price', 'ts'] }] } },
    },
    ['op', 'ticks'],
  ),
};
