// Parsing of WebSocket text frames: text -> Result<op>, each op checked by the compiled validator of its
// one schema in messages.ts (list lengths before elements, so a frame with 100k portfolios costs one
// length check), then normalized (defaults filled in, lists deduplicated). Pure.

import { ErrorCode, fail, ok, type EngineError, type Result } from '../errors.js';
import { Validator } from '../schema.js';
import { FeedTick as FeedTickSchema, Tick } from '../domain/schemas.js';
import type { DomainEventType, TickInput } from '../domain/types.js';
import type { Timeframe } from '../market/timeframe.js';
import { RequestId as RequestIdSchema, feedOps, mainOps, type ClientOp, type Encoding, type FeedOp, type FeedTick, type ProtocolLimits, type RequestId } from './messages.js';

export type { ProtocolLimits };

/** A parse failure, with the request id when the frame had a valid one (so the error can echo it). */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: { code: ErrorCode; message: string; field?: string }; id?: RequestId };

export interface HistoryOp {
  op: 'history';
  /** Required: every chunk, progress and history_end carries it, and cancel names it. */
  id: RequestId;
  symbol: unknown;
  tf: unknown;
  from: unknown;
  /** Omitted: now. */
  to: unknown;
  fill: unknown;
}

export interface CancelOp {
  op: 'cancel';
  /** The id of the history to stop. */
  id: RequestId;
}

export interface SubscribeBarsOp {
  op: 'subscribe_bars' | 'unsubscribe_bars';
  id?: RequestId;
  symbols: string[];
  tf: Timeframe;
}

export type MarketOp = HistoryOp | CancelOp | SubscribeBarsOp;

export const marketOps: readonly string[] = ['history', 'cancel', 'subscribe_bars', 'unsubscribe_bars'];

export function isMarketOp(op: { op: string }): op is MarketOp {
  return marketOps.includes(op.op);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseJsonObject(text: string): Result<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail(ErrorCode.invalid_json, 'frame is not valid JSON');
  }
  if (!isObject(value)) return fail(ErrorCode.invalid_field, 'frame must be a JSON object', 'op');
  return ok(value);
}

const requestIdValidator = new Validator('id', RequestIdSchema);

function withId<T>(error: EngineError, id: RequestId | undefined): ParseResult<T> {
  return id === undefined ? { ok: false, error } : { ok: false, error, id };
}

type MainValidators = { [K in keyof ReturnType<typeof mainOps>]: Validator<ReturnType<typeof mainOps>[K]> };
type FeedValidators = { [K in keyof ReturnType<typeof feedOps>]: Validator<ReturnType<typeof feedOps>[K]> };

function validatorsOf<S extends Record<string, any>>(schemas: S): { [K in keyof S]: Validator<S[K]> } {
  const out = {} as { [K in keyof S]: Validator<S[K]> };
  for (const k of Object.keys(schemas) as (keyof S)[]) out[k] = new Validator(String(k), schemas[k]);
  return out;
}

/** Compiled validators by limits: a server has one set of limits, tests a few; bounded all the same. */
const byLimits = new Map<string, { main: MainValidators; feed: FeedValidators }>();
const validatorSetsMax = 16;

/** The compiled validators the parser uses for these limits (the documents emit the same schemas). */
export function validators(l: ProtocolLimits): { main: MainValidators; feed: FeedValidators } {
  const key = `${l.subscriptionsPerConnectionMax}/${l.throttleMinMs}/${l.throttleMaxMs}/${l.ticksPerBatchMax}/${l.feedSymbolsPerConnectionMax}`;
  let v = byLimits.get(key);
  if (v === undefined) {
    if (byLimits.size >= validatorSetsMax) byLimits.delete(byLimits.keys().next().value as string);
    v = { main: validatorsOf(mainOps(l)), feed: validatorsOf(feedOps(l)) };
    byLimits.set(key, v);
  }
  return v;
}

const mainOpNames = 'subscribe, unsubscribe, resync, subscribe_events, unsubscribe_events, trade, ping, history, cancel, subscribe_bars or unsubscribe_bars';

function opError(m: Record<string, unknown>, expected: string): EngineError {
  return typeof m.op === 'string'
    ? fail(ErrorCode.unknown_op, `unknown op '${m.op.slice(0, 32)}': expected ${expected}`, 'op').error
    : fail(ErrorCode.invalid_field, 'op must be a string', 'op').error;
}

export function parseClientOp(text: string, limits: ProtocolLimits): ParseResult<ClientOp | MarketOp> {
  const parsed = parseJsonObject(text);
  if (!parsed.ok) return parsed;
  const m = parsed.value;
  if (m.id !== undefined && !requestIdValidator.check(m.id)) return { ok: false, error: requestIdValidator.errorOf(m.id) };
  const id = m.id as RequestId | undefined;
  const base = id === undefined ? {} : { id };
  const v = validators(limits).main;
  const check = (validator: Validator<any>): EngineError | null => {
    const r = validator.validate(m);
    return r.ok ? null : r.error;
  };
  let e: EngineError | null;
  switch (m.op) {
    case 'subscribe': {
      if ((e = check(v.SubscribeOp)) !== null) return withId(e, id);
      const throttle = (m.throttle_ms as number | null | undefined) ?? 0;
      // frames absent means 'single' (one message per update): left out of the op then.
      const frames = m.frames === 'connection' ? { frames: 'connection' as const } : {};
      return ok({ op: 'subscribe', ...base, portfolios: unique(m.portfolios as string[]), throttle_ms: throttle, encoding: (m.encoding as Encoding | null | undefined) ?? 'json', ...frames });
    }
    case 'unsubscribe':
      if ((e = check(v.UnsubscribeOp)) !== null) return withId(e, id);
      return ok({ op: 'unsubscribe', ...base, portfolios: unique(m.portfolios as string[]) });
    case 'resync':
      if ((e = check(v.ResyncOp)) !== null) return withId(e, id);
      return ok({ op: 'resync', ...base, portfolio: m.portfolio as string });
    case 'subscribe_events': {
      if ((e = check(v.SubscribeEventsOp)) !== null) return withId(e, id);
      const portfolios = m.portfolios == null ? undefined : unique(m.portfolios as string[]);
      const types = m.types == null ? undefined : unique(m.types as DomainEventType[]);
      return ok({ op: 'subscribe_events', ...base, ...(portfolios ? { portfolios } : {}), ...(types ? { types } : {}) });
    }
    case 'unsubscribe_events':
      return ok({ op: 'unsubscribe_events', ...base });
    case 'trade':
      // The trade's own fields are checked after the access checks (ws.ts): answered with the id.
      if ((e = check(v.TradeOp)) !== null) return withId(e, id);
      {
        // A what-if: dry_run on the op or in the trade (as in the REST body).
        const trade = m.dry_run == null ? m.trade : { ...(m.trade as object), dry_run: m.dry_run };
        return ok({ op: 'trade', id: id as RequestId, portfolio: m.portfolio as string, trade: trade as ClientOpTrade });
      }
    case 'ping':
      return ok({ op: 'ping', ...base });
    case 'history':
      if ((e = check(v.HistoryOp)) !== null) return withId(e, id);
      return ok({ op: 'history', id: id as RequestId, symbol: m.symbol, tf: m.tf, from: m.from, to: m.to, fill: m.fill });
    case 'cancel':
      if ((e = check(v.CancelOp)) !== null) return withId(e, id);
      return ok({ op: 'cancel', id: id as RequestId });
    case 'subscribe_bars':
    case 'unsubscribe_bars': {
      if ((e = check(m.op === 'subscribe_bars' ? v.SubscribeBarsOp : v.UnsubscribeBarsOp)) !== null) return withId(e, id);
      return ok({ op: m.op, ...base, symbols: unique(m.symbols as string[]), tf: m.tf as Timeframe });
    }
    default:
      return withId(opError(m, mainOpNames), id);
  }
}

type ClientOpTrade = Extract<ClientOp, { op: 'trade' }>['trade'];

function unique<T>(list: readonly T[]): T[] {
  return [...new Set(list)];
}

const tickValidator = new Validator('tick', Tick);
const feedTickValidator = new Validator('tick', FeedTickSchema);

/**
 * A tick checked against its schema (the feed's JSON ticks require ts): the tick, or the code of its
 * first bad field. The engine checks the values again: its in-process entry is a boundary too.
 */
export function tickShape(v: unknown, requireTs: boolean): { ok: true; tick: TickInput } | { ok: false; code: ErrorCode } {
  const validator = requireTs ? feedTickValidator : tickValidator;
  if (!validator.check(v)) return { ok: false, code: validator.codeOf(v) };
  const t = v as TickInput;
  const tick: TickInput = { symbol: t.symbol, price: t.price };
  if (typeof t.ts === 'number') tick.ts = t.ts;
  if (typeof t.size === 'number') tick.size = t.size;
  return { ok: true, tick };
}

export function parseFeedOp(text: string, limits: ProtocolLimits): ParseResult<FeedOp> {
  const parsed = parseJsonObject(text);
  if (!parsed.ok) return parsed;
  const m = parsed.value;
  if (m.id !== undefined && !requestIdValidator.check(m.id)) return { ok: false, error: requestIdValidator.errorOf(m.id) };
  const id = m.id as RequestId | undefined;
  const base = id === undefined ? {} : { id };
  const v = validators(limits).feed;
  if (m.op === 'register') {
    // Values are checked one by one when registering: a bad one is rejected by index, the rest register.
    const r = v.FeedRegisterOp.validate(m);
    if (!r.ok) return withId(r.error, id);
    return ok({ op: 'register', ...base, symbols: m.symbols as string[] });
  }
  if (m.op === 'ticks') {
    const r = v.FeedTicksOp.validate(m);
    if (!r.ok) return withId(r.error, id);
    return ok({ op: 'ticks', ...base, ticks: m.ticks as FeedTick[] });
  }
  return withId(opError(m, 'register or ticks'), id);
}
