// The WebSocket wire protocol, defined once: every message of /ws, /ws/feed and the compatibility path,
// both ways, with its TypeScript type. The server (parse.ts, asyncapi.ts) and the SDK (src/client/)
// import it from here; docs/PROTOCOL.md is its prose. Browser-safe: no Node imports, nothing compiled
// until a validator is used.
//
// How to add a message (mechanism: src/schema.ts):
//   - client -> server op: add `Name: Type.Object({ op: Type.Literal('name'), id: Type.Optional(RequestId), ... })`
//     to mainOps() (or feedOps()), with errorRule(code, rule?) on fields whose failures answer with a
//     code other than invalid_field; limits that an operator configures come in through `l`. Add its
//     type below (`Static<MainOps['Name']>`), a case in parse.ts's parseClientOp (normalize defaults
//     there), and its AsyncAPI name in asyncApiMessageNames.
//   - server -> client message: add a named schema next to SnapshotMessage and its type, then list it in
//     asyncApiMessageNames (and mainOut/feedOut in src/server/asyncapi.ts).
//   - a REST body or answer: src/protocol/rest.ts (or the domain's src/domain/schemas.ts), referenced
//     from src/server/openapi.ts.
//   test/schema.test.ts checks that documents and validators share these objects.

import { ErrorCode } from '../errors.js';
import { Type, checkedLater, errorRule, named, nullable, type Static, type TSchema } from '../schema.js';
import { domainEventTypes, type DomainEventType, type StoredEvent, type TradeInput as TradeInputType } from '../domain/types.js';
import { FeedTick, PortfolioIdField, PortfolioSnapshot, PortfolioUpdate, SymbolField, TradeInput, TradeResult } from '../domain/schemas.js';
import { fillModes } from '../market/fill.js';
import { timeframes } from '../market/timeframe.js';

export { BEARER_PROTOCOL_PREFIX, CloseCode, PROTOCOL_NAME } from './wire.js';

/** The server limits that shape the ops (src/server/options.ts ServerLimits; the documents show the server's own). */
export interface ProtocolLimits {
  subscriptionsPerConnectionMax: number;
  throttleMinMs: number;
  throttleMaxMs: number;
  ticksPerBatchMax: number;
  feedSymbolsPerConnectionMax: number;
}

/** Symbols one subscribe_bars / unsubscribe_bars frame may name (the per-connection bound is MarketWsLimits'). */
export const barSymbolsPerOpMax = 256;

export const RequestId = Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER })], {
  description: 'Echoed by the answers to the op',
  ...errorRule(ErrorCode.invalid_field, 'must be a string of 1 to 128 characters or a safe integer'),
});
export type RequestId = Static<typeof RequestId>;
export const Encoding = Type.Enum(['json', 'binary']);
export type Encoding = Static<typeof Encoding>;
/**
 * How updates are framed: 'single' (default) = one message per update; 'connection' = one message per
 * connection per engine batch carrying every update it owes (JSON `updates`, binary kind 0x02).
 */
export const Frames = Type.Enum(['single', 'connection']);
export type Frames = Static<typeof Frames>;
const EventType = Type.Enum([...domainEventTypes] as [DomainEventType, ...DomainEventType[]]);
const Timeframe = Type.Enum([...timeframes], errorRule(ErrorCode.invalid_field));

const portfolioList = (max: number) =>
  Type.Array(PortfolioIdField(), {
    minItems: 1,
    maxItems: max,
    ...errorRule(ErrorCode.invalid_field, undefined, {
      rules: { type: 'must be an array of portfolio ids', maxItems: `may hold at most ${max} portfolios` },
      codes: { maxItems: ErrorCode.limit_exceeded },
    }),
  });
const barSymbols = () =>
  Type.Array(SymbolField(), {
    minItems: 1,
    maxItems: barSymbolsPerOpMax,
    ...errorRule(ErrorCode.invalid_field, undefined, {
      rules: { type: 'must be a non-empty array of symbols', minItems: 'must be a non-empty array of symbols', maxItems: `may hold at most ${barSymbolsPerOpMax} symbols` },
      codes: { maxItems: ErrorCode.limit_exceeded },
    }),
  });
const idRequired = (why: string) => Type.Union(RequestId.anyOf, { ...errorRule(ErrorCode.invalid_field, 'must be a string of 1 to 128 characters or a safe integer', { rules: { required: `is required: ${why}` } }) });

/** Client -> server ops of /ws; `l` bounds the lists and ranges as the server is configured. */
export function mainOps(l: ProtocolLimits) {
  return {
    SubscribeOp: named(
      'SubscribeOp',
      Type.Object({
        op: Type.Literal('subscribe'),
        id: Type.Optional(RequestId),
        portfolios: portfolioList(l.subscriptionsPerConnectionMax),
        throttle_ms: Type.Optional(
          nullable(Type.Union([Type.Literal(0), Type.Integer({ minimum: l.throttleMinMs, maximum: l.throttleMaxMs })]), {
            description: 'At most one (merged) update per this many ms; 0 or absent: every update',
            ...errorRule(ErrorCode.invalid_field, `must be 0 or an integer from ${l.throttleMinMs} to ${l.throttleMaxMs}`),
          }),
        ),
        encoding: Type.Optional(nullable(Encoding, { description: 'Default json', ...errorRule(ErrorCode.invalid_field, "must be 'json' or 'binary'") })),
        frames: Type.Optional(
          nullable(Frames, {
            description: "Default single (one message per update); connection: one frame per connection per engine batch (JSON type 'updates', binary kind 0x02)",
            ...errorRule(ErrorCode.invalid_field, "must be 'single' or 'connection'"),
          }),
        ),
      }),
    ),
    UnsubscribeOp: named('UnsubscribeOp', Type.Object({ op: Type.Literal('unsubscribe'), id: Type.Optional(RequestId), portfolios: portfolioList(l.subscriptionsPerConnectionMax) })),
    ResyncOp: named('ResyncOp', Type.Object({ op: Type.Literal('resync'), id: Type.Optional(RequestId), portfolio: PortfolioIdField() })),
    SubscribeEventsOp: named(
      'SubscribeEventsOp',
      Type.Object({
        op: Type.Literal('subscribe_events'),
        id: Type.Optional(RequestId),
        portfolios: Type.Optional(nullable(portfolioList(l.subscriptionsPerConnectionMax), { description: 'Omitted: every portfolio the key may read' })),
        types: Type.Optional(
          nullable(Type.Array(EventType, { minItems: 1, maxItems: domainEventTypes.length * 2 }), {
            description: 'Omitted: every event type',
            ...errorRule(ErrorCode.invalid_field, undefined, { rules: { type: 'must be a non-empty array of event types', minItems: 'must be a non-empty array of event types', maxItems: 'must be a non-empty array of event types' } }),
          }),
        ),
      }),
    ),
    UnsubscribeEventsOp: named('UnsubscribeEventsOp', Type.Object({ op: Type.Literal('unsubscribe_events'), id: Type.Optional(RequestId) })),
    TradeOp: named(
      'TradeOp',
      Type.Object({
        op: Type.Literal('trade'),
        id: idRequired('the ack answers with it'),
        portfolio: PortfolioIdField(),
        // Checked after the access checks, by the engine's trade rules: answered with the id, not a bad frame.
        trade: checkedLater(TradeInput, { keepType: true }),
        dry_run: Type.Optional(
          nullable(Type.Boolean(), { description: 'A what-if (same as trade.dry_run): the ack carries dry_run and breaches', ...errorRule(ErrorCode.invalid_field, 'must be a boolean') }),
        ),
      }),
    ),
    PingOp: named('PingOp', Type.Object({ op: Type.Literal('ping'), id: Type.Optional(RequestId) })),
    // Market ops (scope read:market). A history's values are checked when it runs, answered with its id.
    HistoryOp: named(
      'HistoryOp',
      Type.Object({
        op: Type.Literal('history'),
        id: idRequired('its chunks, progress and end carry it'),
        symbol: checkedLater(SymbolField()),
        tf: checkedLater(Timeframe),
        from: checkedLater(Type.Union([Type.Integer({ minimum: 0 }), Type.String()], { description: 'ISO-8601 (with a zone) or epoch ms' })),
        to: Type.Optional(checkedLater(Type.Union([Type.Integer({ minimum: 0 }), Type.String()], { description: 'Default now, exclusive' }))),
        fill: Type.Optional(checkedLater(Type.Enum([...fillModes]))),
      }),
    ),
    CancelOp: named('CancelOp', Type.Object({ op: Type.Literal('cancel'), id: idRequired('the id of the history to stop') })),
    SubscribeBarsOp: named('SubscribeBarsOp', Type.Object({ op: Type.Literal('subscribe_bars'), id: Type.Optional(RequestId), symbols: barSymbols(), tf: Timeframe })),
    UnsubscribeBarsOp: named('UnsubscribeBarsOp', Type.Object({ op: Type.Literal('unsubscribe_bars'), id: Type.Optional(RequestId), symbols: barSymbols(), tf: Timeframe })),
  };
}
export type MainOps = ReturnType<typeof mainOps>;

/** Client -> server ops of /ws/feed (JSON). Symbols and ticks are checked one by one, refused by index. */
export function feedOps(l: ProtocolLimits) {
  const list = <T extends TSchema>(what: string, max: number, items: T, minItems?: number) =>
    Type.Array(items, {
      ...(minItems === undefined ? {} : { minItems }),
      maxItems: max,
      ...errorRule(ErrorCode.invalid_field, undefined, {
        rules: { type: minItems === undefined ? 'must be an array' : 'must be a non-empty array', minItems: 'must be a non-empty array' },
        codes: { maxItems: ErrorCode.limit_exceeded },
      }),
      description: what,
    });
  return {
    FeedRegisterOp: named(
      'FeedRegisterOp',
      Type.Object({
        op: Type.Literal('register'),
        id: Type.Optional(RequestId),
        symbols: list('Ids are given from 0 in registration order', l.feedSymbolsPerConnectionMax, checkedLater(Type.String({ description: 'A symbol; one that is not is refused by index in `registered`' })), 1),
      }),
    ),
    FeedTicksOp: named('FeedTicksOp', Type.Object({ op: Type.Literal('ticks'), id: Type.Optional(RequestId), ticks: list('Refused one by one (feed_ack errors)', l.ticksPerBatchMax, checkedLater(FeedTick)) })),
  };
}
export type FeedOps = ReturnType<typeof feedOps>;

/** The shape of every op, whatever the limits (for the types). */
type AnyMain = MainOps;
export type SubscribeOp = Static<AnyMain['SubscribeOp']>;
export type UnsubscribeOp = Static<AnyMain['UnsubscribeOp']>;
export type ResyncOp = Static<AnyMain['ResyncOp']>;
export type SubscribeEventsOp = Omit<Static<AnyMain['SubscribeEventsOp']>, 'portfolios' | 'types'> & { portfolios?: string[]; types?: DomainEventType[] };
export type UnsubscribeEventsOp = Static<AnyMain['UnsubscribeEventsOp']>;
export type TradeOp = Omit<Static<AnyMain['TradeOp']>, 'trade'> & { trade: TradeInputType };
export type PingOp = Static<AnyMain['PingOp']>;
export type ClientOp = SubscribeOp | UnsubscribeOp | ResyncOp | SubscribeEventsOp | UnsubscribeEventsOp | TradeOp | PingOp;
export type FeedRegisterOp = Static<FeedOps['FeedRegisterOp']> & { symbols: string[] };
export type FeedTicksOp = Static<FeedOps['FeedTicksOp']> & { ticks: FeedTick[] };
export type FeedOp = FeedRegisterOp | FeedTicksOp;
export type { FeedTick };

// ---- server -> client ----

export const TickRejection = named('TickRejection', Type.Object({ index: Type.Integer({ minimum: 0 }), code: Type.String() }));

export const SnapshotMessage = named('SnapshotMessage', Type.Intersect([PortfolioSnapshot, Type.Object({ type: Type.Literal('snapshot'), resync: Type.Boolean() })]));
export type SnapshotMessage = Static<typeof SnapshotMessage>;
/** from_seq is present when several updates were merged (throttling or conflation): seqs from_seq..seq. */
export const UpdateMessage = named(
  'UpdateMessage',
  Type.Intersect([PortfolioUpdate, Type.Object({ type: Type.Literal('update'), from_seq: Type.Optional(Type.Integer({ description: 'Merged update: it covers from_seq..seq' })) })]),
);
export type UpdateMessage = Static<typeof UpdateMessage>;
/** frames: 'connection': the update messages one engine batch owes one connection, in order. */
export const UpdatesMessage = named('UpdatesMessage', Type.Object({ type: Type.Literal('updates'), updates: Type.Array(UpdateMessage) }));
export type UpdatesMessage = Static<typeof UpdatesMessage>;
export const StoredEventSchema = named(
  'StoredEvent',
  Type.Object({ type: EventType, portfolio_id: Type.String(), ts: Type.Number(), seq: Type.Integer() }, { description: 'A domain event with its global seq; the other fields depend on type (src/domain/types.ts DomainEventBody)' }),
);
export const EventMessage = named('EventMessage', Type.Object({ type: Type.Literal('event'), event: StoredEventSchema }));
export type EventMessage = { type: 'event'; event: StoredEvent };
export const AckMessage = named('AckMessage', Type.Intersect([TradeResult, Type.Object({ type: Type.Literal('ack'), id: RequestId })]));
export type AckMessage = Static<typeof AckMessage>;
const errorCodes = Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]];
export const ErrorMessage = named(
  'ErrorMessage',
  Type.Object({
    type: Type.Literal('error'),
    code: Type.Enum(errorCodes),
    message: Type.String({ description: 'Names the field and the rule it broke' }),
    id: Type.Optional(RequestId),
    field: Type.Optional(Type.String()),
    portfolio: Type.Optional(Type.String()),
    retry_after_ms: Type.Optional(Type.Integer()),
  }),
);
export type ErrorMessage = Omit<Static<typeof ErrorMessage>, 'code'> & { code: string };
export const PongMessage = named('PongMessage', Type.Object({ type: Type.Literal('pong'), id: Type.Optional(RequestId), ts: Type.Number() }));
export type PongMessage = Static<typeof PongMessage>;
export const SubscribedMessage = named('SubscribedMessage', Type.Object({ type: Type.Literal('subscribed'), id: Type.Optional(RequestId), portfolios: Type.Array(Type.String()) }));
export type SubscribedMessage = Static<typeof SubscribedMessage>;
export const UnsubscribedMessage = named('UnsubscribedMessage', Type.Object({ type: Type.Literal('unsubscribed'), id: Type.Optional(RequestId), portfolios: Type.Array(Type.String()) }));
export type UnsubscribedMessage = Static<typeof UnsubscribedMessage>;
export const EventsSubscribedMessage = named(
  'EventsSubscribedMessage',
  Type.Object({ type: Type.Literal('events_subscribed'), id: Type.Optional(RequestId), portfolios: nullable(Type.Array(Type.String())), types: nullable(Type.Array(EventType)) }),
);
export type EventsSubscribedMessage = Static<typeof EventsSubscribedMessage>;
export const RegisteredMessage = named(
  'RegisteredMessage',
  Type.Object({
    type: Type.Literal('registered'),
    id: Type.Optional(RequestId),
    symbols: Type.Array(Type.Object({ symbol: Type.String(), id: Type.Integer({ minimum: 0 }) })),
    rejected: Type.Array(TickRejection),
  }),
);
export type RegisteredMessage = Static<typeof RegisteredMessage>;
export const FeedAckMessage = named(
  'FeedAckMessage',
  Type.Object({
    type: Type.Literal('feed_ack'),
    id: Type.Optional(RequestId),
    batch: Type.Integer({ minimum: 1, description: 'Number of this batch on the connection, from 1' }),
    accepted: Type.Integer({ minimum: 0, description: 'Ticks taken, held ones included (accepted + rejected = ticks in the batch)' }),
    rejected: Type.Integer({ minimum: 0 }),
    held: Type.Integer({ minimum: 0, description: 'Of the accepted, ticks held as suspect (not applied until confirmed)' }),
    errors: Type.Array(TickRejection, { maxItems: 32, description: 'The first rejected ticks (at most 32) with their reason' }),
  }),
);
export type FeedAckMessage = Static<typeof FeedAckMessage>;
export const CompatSnapshotMessage = named('CompatSnapshotMessage', Type.Intersect([PortfolioSnapshot, Type.Object({ type: Type.Literal('snapshot') })]));

// ---- market data, server -> client ----

const nullableNum = () => nullable(Type.Number());
export const Bar = named(
  'Bar',
  Type.Object({
    symbol: SymbolField(),
    tf: Timeframe,
    start: Type.Integer({ description: 'Bucket start, epoch ms UTC (weeks start on Monday)' }),
    open: Type.Number(),
    high: Type.Number(),
    low: Type.Number(),
    close: Type.Number(),
    volume: Type.Number({ minimum: 0, description: 'Sum of tick sizes (ticks without a size count in OHLC and trades only)' }),
    pv: Type.Number({ minimum: 0, description: 'Sum of price x size' }),
    vwap: nullableNum(),
    trades: Type.Integer({ minimum: 1 }),
    first_ts: Type.Integer(),
    last_ts: Type.Integer(),
  }),
);
export const BarRow = named(
  'BarRow',
  Type.Object({
    symbol: SymbolField(),
    tf: Timeframe,
    start: Type.Integer(),
    open: nullableNum(),
    high: nullableNum(),
    low: nullableNum(),
    close: nullableNum(),
    volume: Type.Number({ minimum: 0 }),
    pv: Type.Number({ minimum: 0 }),
    vwap: nullableNum(),
    trades: Type.Integer({ minimum: 0 }),
    first_ts: nullable(Type.Integer()),
    last_ts: nullable(Type.Integer()),
    filled: Type.Boolean({ description: 'true: an interval without ticks, filled as the query asked (previous close, or nulls)' }),
  }),
);
export const HistoryChunkMessage = named('HistoryChunkMessage', Type.Object({ type: Type.Literal('history_chunk'), id: RequestId, bars: Type.Array(BarRow) }));
export const ProgressMessage = named(
  'ProgressMessage',
  Type.Object({
    type: Type.Literal('progress'),
    id: RequestId,
    done: Type.Integer({ minimum: 0, description: 'Intervals of tf covered so far' }),
    total: Type.Integer({ minimum: 0, description: 'Intervals of tf in from..to' }),
  }),
);
export const HistoryEndMessage = named(
  'HistoryEndMessage',
  Type.Object({ type: Type.Literal('history_end'), id: RequestId, bars: Type.Optional(Type.Integer({ minimum: 0 })), cancelled: Type.Boolean() }),
);
export const BarsSubscribedMessage = named(
  'BarsSubscribedMessage',
  Type.Object({ type: Type.Literal('bars_subscribed'), id: Type.Optional(RequestId), symbols: Type.Array(SymbolField()), tf: Timeframe }),
);
export const BarsUnsubscribedMessage = named(
  'BarsUnsubscribedMessage',
  Type.Object({ type: Type.Literal('bars_unsubscribed'), id: Type.Optional(RequestId), symbols: Type.Array(SymbolField()), tf: Timeframe }),
);
export const BarMessage = named(
  'BarMessage',
  Type.Object({
    type: Type.Literal('bar'),
    change: Type.Enum(['open', 'closed', 'revised'], { description: 'open: the open bar changed; closed: its final state; revised: a closed bar changed by a late tick' }),
    bar: Bar,
  }),
);

export type ServerMessage =
  | SnapshotMessage
  | UpdateMessage
  | UpdatesMessage
  | EventMessage
  | AckMessage
  | ErrorMessage
  | PongMessage
  | SubscribedMessage
  | UnsubscribedMessage
  | EventsSubscribedMessage
  | RegisteredMessage
  | FeedAckMessage;

/** AsyncAPI message name -> its schema (JSON text frames). Ops depend on the limits: pass the server's. */
export function asyncApiMessageSchemas(l: ProtocolLimits) {
  const m = mainOps(l);
  const f = feedOps(l);
  return {
    Subscribe: m.SubscribeOp,
    Unsubscribe: m.UnsubscribeOp,
    Resync: m.ResyncOp,
    SubscribeEvents: m.SubscribeEventsOp,
    UnsubscribeEvents: m.UnsubscribeEventsOp,
    Trade: m.TradeOp,
    Ping: m.PingOp,
    History: m.HistoryOp,
    Cancel: m.CancelOp,
    SubscribeBars: m.SubscribeBarsOp,
    UnsubscribeBars: m.UnsubscribeBarsOp,
    Snapshot: SnapshotMessage,
    Update: UpdateMessage,
    Updates: UpdatesMessage,
    Event: EventMessage,
    Ack: AckMessage,
    Error: ErrorMessage,
    Pong: PongMessage,
    Subscribed: SubscribedMessage,
    Unsubscribed: UnsubscribedMessage,
    EventsSubscribed: EventsSubscribedMessage,
    CompatSnapshot: CompatSnapshotMessage,
    FeedRegister: f.FeedRegisterOp,
    FeedTicks: f.FeedTicksOp,
    Registered: RegisteredMessage,
    FeedAck: FeedAckMessage,
    HistoryChunk: HistoryChunkMessage,
    Progress: ProgressMessage,
    HistoryEnd: HistoryEndMessage,
    BarsSubscribed: BarsSubscribedMessage,
    BarsUnsubscribed: BarsUnsubscribedMessage,
    Bar: BarMessage,
  };
}
