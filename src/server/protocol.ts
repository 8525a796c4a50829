// Parsing of WebSocket text frames: text -> Result<op>. Pure; checks sizes before it iterates,
// so a frame with 100k portfolios costs one length check. Field rules reuse domain/validate.ts.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { domainEventTypes, type DomainEventType, type TickInput, type TradeInput } from '../domain/types.js';
import { validatePortfolioId } from '../domain/validate.js';
import type { ClientOp, Encoding, FeedOp, FeedTick, RequestId } from '../client/protocol.js';
import { parseMarketOp, type MarketOp } from './marketProtocol.js';

export interface ProtocolLimits {
  subscriptionsPerConnectionMax: number;
  throttleMinMs: number;
  throttleMaxMs: number;
  ticksPerBatchMax: number;
  feedSymbolsPerConnectionMax: number;
}

/** A parse failure, with the request id when the frame had a valid one (so the error can echo it). */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: { code: ErrorCode; message: string; field?: string }; id?: RequestId };

const eventTypeSet: ReadonlySet<string> = new Set(domainEventTypes);

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

function requestId(v: unknown): Result<RequestId | undefined> {
  if (v === undefined) return ok(undefined);
  if (typeof v === 'string' && v.length >= 1 && v.length <= 128) return ok(v);
  if (typeof v === 'number' && Number.isSafeInteger(v)) return ok(v);
  return fail(ErrorCode.invalid_field, 'id must be a string of 1 to 128 characters or a safe integer', 'id');
}

function portfolioList(v: unknown, field: string, max: number): Result<string[]> {
  if (!Array.isArray(v)) return fail(ErrorCode.invalid_field, `${field} must be an array of portfolio ids`, field);
  if (v.length === 0) return fail(ErrorCode.invalid_field, `${field} must not be empty`, field);
  if (v.length > max) return fail(ErrorCode.limit_exceeded, `${field} may hold at most ${max} portfolios`, field);
  const seen = new Set<string>();
  for (let i = 0; i < v.length; i++) {
    const id = validatePortfolioId(v[i], `${field}[${i}]`);
    if (!id.ok) return id;
    seen.add(id.value);
  }
  return ok([...seen]);
}

function withId<T>(r: Result<T>, id: RequestId | undefined): ParseResult<T> {
  if (r.ok) return r;
  return id === undefined ? { ok: false, error: r.error } : { ok: false, error: r.error, id };
}

export function parseClientOp(text: string, limits: ProtocolLimits): ParseResult<ClientOp | MarketOp> {
  const parsed = parseJsonObject(text);
  if (!parsed.ok) return parsed;
  const m = parsed.value;
  const idr = requestId(m.id);
  if (!idr.ok) return idr;
  const id = idr.value;
  const base = id === undefined ? {} : { id };
  switch (m.op) {
    case 'subscribe': {
      const portfolios = portfolioList(m.portfolios, 'portfolios', limits.subscriptionsPerConnectionMax);
      if (!portfolios.ok) return withId(portfolios, id);
      let throttle_ms = 0;
      if (m.throttle_ms !== undefined && m.throttle_ms !== null && m.throttle_ms !== 0) {
        const t = m.throttle_ms;
        if (typeof t !== 'number' || !Number.isInteger(t) || t < limits.throttleMinMs || t > limits.throttleMaxMs) {
          return withId(fail(ErrorCode.invalid_field, `throttle_ms must be 0 or an integer from ${limits.throttleMinMs} to ${limits.throttleMaxMs}`, 'throttle_ms'), id);
        }
        throttle_ms = t;
      }
      let encoding: Encoding = 'json';
      if (m.encoding !== undefined && m.encoding !== null) {
        if (m.encoding !== 'json' && m.encoding !== 'binary') return withId(fail(ErrorCode.invalid_field, "encoding must be 'json' or 'binary'", 'encoding'), id);
        encoding = m.encoding;
      }
      return ok({ op: 'subscribe', ...base, portfolios: portfolios.value, throttle_ms, encoding });
    }
    case 'unsubscribe': {
      const portfolios = portfolioList(m.portfolios, 'portfolios', limits.subscriptionsPerConnectionMax);
      if (!portfolios.ok) return withId(portfolios, id);
      return ok({ op: 'unsubscribe', ...base, portfolios: portfolios.value });
    }
    case 'resync': {
      const p = validatePortfolioId(m.portfolio, 'portfolio');
      if (!p.ok) return withId(p, id);
      return ok({ op: 'resync', ...base, portfolio: p.value });
    }
    case 'subscribe_events': {
      let portfolios: string[] | undefined;
      if (m.portfolios !== undefined && m.portfolios !== null) {
        const r = portfolioList(m.portfolios, 'portfolios', limits.subscriptionsPerConnectionMax);
        if (!r.ok) return withId(r, id);
        portfolios = r.value;
      }
      let types: DomainEventType[] | undefined;
      if (m.types !== undefined && m.types !== null) {
        const t = m.types;
        if (!Array.isArray(t) || t.length === 0 || t.length > domainEventTypes.length * 2) {
          return withId(fail(ErrorCode.invalid_field, 'types must be a non-empty array of event types', 'types'), id);
        }
        for (let i = 0; i < t.length; i++) {
          if (typeof t[i] !== 'string' || !eventTypeSet.has(t[i] as string)) {
            return withId(fail(ErrorCode.invalid_field, `types[${i}] must be one of ${domainEventTypes.join(', ')}`, `types[${i}]`), id);
          }
        }
        types = [...new Set(t as DomainEventType[])];
      }
      return ok({ op: 'subscribe_events', ...base, ...(portfolios ? { portfolios } : {}), ...(types ? { types } : {}) });
    }
    case 'unsubscribe_events':
      return ok({ op: 'unsubscribe_events', ...base });
    case 'trade': {
      if (id === undefined) return fail(ErrorCode.invalid_field, 'trade needs an id to answer with', 'id');
      const p = validatePortfolioId(m.portfolio, 'portfolio');
      if (!p.ok) return withId(p, id);
      if (!isObject(m.trade)) return withId(fail(ErrorCode.invalid_field, 'trade must be an object', 'trade'), id);
      // A what-if: dry_run on the op or in the trade (as in the REST body); the engine checks it is a boolean.
      const trade = m.dry_run === undefined ? m.trade : { ...m.trade, dry_run: m.dry_run };
      return ok({ op: 'trade', id, portfolio: p.value, trade: trade as unknown as TradeInput });
    }
    case 'ping':
      return ok({ op: 'ping', ...base });
    case 'history':
    case 'cancel':
    case 'subscribe_bars':
    case 'unsubscribe_bars':
      return parseMarketOp(m, id);
    default:
      return withId(
        typeof m.op === 'string'
          ? fail(ErrorCode.unknown_op, `unknown op '${m.op.slice(0, 32)}': expected subscribe, unsubscribe, resync, subscribe_events, unsubscribe_events, trade, ping, history, cancel, subscribe_bars or unsubscribe_bars`, 'op')
          : fail(ErrorCode.invalid_field, 'op must be a string', 'op'),
        id,
      );
  }
}

/** A tick's structure (types); the engine checks the values (symbol pattern, price range, ts). */
export function tickShape(v: unknown, requireTs: boolean): { ok: true; tick: TickInput } | { ok: false; code: ErrorCode } {
  if (!isObject(v)) return { ok: false, code: ErrorCode.invalid_field };
  const { symbol, price, ts, size } = v;
  if (typeof symbol !== 'string') return { ok: false, code: ErrorCode.invalid_symbol };
  if (typeof price !== 'number') return { ok: false, code: ErrorCode.invalid_price };
  if (ts === undefined || ts === null) {
    if (requireTs) return { ok: false, code: ErrorCode.invalid_timestamp };
  } else if (typeof ts !== 'number') return { ok: false, code: ErrorCode.invalid_timestamp };
  if (size !== undefined && size !== null && (typeof size !== 'number' || !Number.isFinite(size) || size < 0)) {
    return { ok: false, code: ErrorCode.invalid_quantity };
  }
  const tick: TickInput = { symbol, price };
  if (typeof ts === 'number') tick.ts = ts;
  if (typeof size === 'number') tick.size = size;
  return { ok: true, tick };
}

export function parseFeedOp(text: string, limits: ProtocolLimits): ParseResult<FeedOp> {
  const parsed = parseJsonObject(text);
  if (!parsed.ok) return parsed;
  const m = parsed.value;
  const idr = requestId(m.id);
  if (!idr.ok) return idr;
  const id = idr.value;
  const base = id === undefined ? {} : { id };
  if (m.op === 'register') {
    const s = m.symbols;
    if (!Array.isArray(s) || s.length === 0) return withId(fail(ErrorCode.invalid_field, 'symbols must be a non-empty array', 'symbols'), id);
    if (s.length > limits.feedSymbolsPerConnectionMax) {
      return withId(fail(ErrorCode.limit_exceeded, `symbols may hold at most ${limits.feedSymbolsPerConnectionMax} entries`, 'symbols'), id);
    }
    // Values are checked one by one when registering: a bad one is rejected by index, the rest register.
    return ok({ op: 'register', ...base, symbols: s as string[] });
  }
  if (m.op === 'ticks') {
    const t = m.ticks;
    if (!Array.isArray(t)) return withId(fail(ErrorCode.invalid_field, 'ticks must be an array', 'ticks'), id);
    if (t.length > limits.ticksPerBatchMax) return withId(fail(ErrorCode.limit_exceeded, `ticks may hold at most ${limits.ticksPerBatchMax} entries`, 'ticks'), id);
    return ok({ op: 'ticks', ...base, ticks: t as FeedTick[] });
  }
  return withId(
    typeof m.op === 'string'
      ? fail(ErrorCode.unknown_op, `unknown op '${m.op.slice(0, 32)}': expected register or ticks`, 'op')
      : fail(ErrorCode.invalid_field, 'op must be a string', 'op'),
    id,
  );
}
