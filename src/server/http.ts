// The HTTP API's handlers: (request, params) -> {status, body}. No uWS in here (server.ts does the
// transport: body limits, onAborted, corking), so every handler is a plain async function.
//
// Access rules (docs/PROTOCOL.md, "Access"): a portfolio outside every read/trade scope of the key
// "does not exist": the answer is exactly the one for a missing portfolio (404 portfolio_not_found,
// same message). A portfolio the key can see but not act on is 403 forbidden.

import { ErrorCode, fail, httpStatusFor, ok, type EngineError, type Result } from '../errors.js';
import type { CommandOptions, Engine, EventQuery } from '../engine/api.js';
import { tradeIdPattern } from '../domain/rules.js';
import { domainEventTypes, type DomainEventType, type TickInput } from '../domain/types.js';
import { instrumentsPortfolio } from '../engine/instruments.js';
import { validateCash, validateCreatePortfolio, validateLimits, validatePortfolioId, validateTrade } from '../domain/validate.js';
import { canRead, canSee, canTrade } from './auth.js';
import { httpErrorBody } from './encoding.js';
import { parseFlag, parseInstant, parseLimit, parseNonNegativeInteger } from './query.js';
import { tickShape } from '../protocol/parse.js';
import { TickBatch } from '../protocol/rest.js';
import { Validator } from '../schema.js';
import type { RouteDef } from './router.js';
import type { ResolvedOptions } from './options.js';
import type { PerformanceApi } from './performance.js';
import type { StatsCollector } from './stats.js';
import { marketEventsGuard, marketPortfolio, type MarketApi } from './market.js';
import type { HttpRequestContext, HttpResult } from './httpTypes.js';
import { createMarketHandlers, marketBodyHandlers, marketRoutes, type MarketHandlerName } from './marketHttp.js';
import { createMarksHandlers, marksRoutes, type MarksHandlerName } from './marksHttp.js';

export type HandlerName =
  | 'health'
  | 'ready'
  | 'openapi'
  | 'asyncapi'
  | 'listPortfolios'
  | 'createPortfolio'
  | 'getPortfolio'
  | 'positionLots'
  | 'closePortfolio'
  | 'trade'
  | 'cash'
  | 'pause'
  | 'resume'
  | 'setLimits'
  | 'events'
  | 'ticks'
  | 'metrics'
  | 'performanceSummary'
  | 'performanceQueries'
  | 'createCorporateAction'
  | 'listCorporateActions'
  | 'importTrades'
  | 'defineInstrument'
  | 'getInstrument'
  | 'listInstruments'
  | 'fxConversion'
  | MarketHandlerName
  | MarksHandlerName;

export const routes: readonly RouteDef<HandlerName>[] = [
  { method: 'GET', template: '/health', handler: 'health' },
  { method: 'GET', template: '/ready', handler: 'ready' },
  { method: 'GET', template: '/openapi.json', handler: 'openapi' },
  { method: 'GET', template: '/asyncapi.json', handler: 'asyncapi' },
  { method: 'GET', template: '/api/v1/portfolios', handler: 'listPortfolios' },
  { method: 'POST', template: '/api/v1/portfolios', handler: 'createPortfolio' },
  { method: 'GET', template: '/api/v1/portfolios/{id}', handler: 'getPortfolio' },
  { method: 'DELETE', template: '/api/v1/portfolios/{id}', handler: 'closePortfolio' },
  { method: 'GET', template: '/api/v1/portfolios/{id}/positions/{symbol}/lots', handler: 'positionLots' },
  { method: 'POST', template: '/api/v1/portfolios/{id}/trades', handler: 'trade' },
  { method: 'POST', template: '/api/v1/portfolios/{id}/cash', handler: 'cash' },
  { method: 'POST', template: '/api/v1/portfolios/{id}/fx-conversions', handler: 'fxConversion' },
  { method: 'POST', template: '/api/v1/portfolios/{id}/pause', handler: 'pause' },
  { method: 'POST', template: '/api/v1/portfolios/{id}/resume', handler: 'resume' },
  { method: 'PUT', template: '/api/v1/portfolios/{id}/limits', handler: 'setLimits' },
  { method: 'GET', template: '/api/v1/portfolios/{id}/events', handler: 'events' },
  { method: 'POST', template: '/api/v1/ticks', handler: 'ticks' },
  // Streamed by the transport (server.ts + tradeImport.ts), not a JSON-body handler.
  { method: 'POST', template: '/api/v1/trades/import', handler: 'importTrades' },
  { method: 'POST', template: '/api/v1/corporate-actions', handler: 'createCorporateAction' },
  { method: 'GET', template: '/api/v1/corporate-actions', handler: 'listCorporateActions' },
  { method: 'GET', template: '/api/v1/instruments', handler: 'listInstruments' },
  { method: 'GET', template: '/api/v1/instruments/{symbol}', handler: 'getInstrument' },
  { method: 'PUT', template: '/api/v1/instruments/{symbol}', handler: 'defineInstrument' },
  { method: 'GET', template: '/metrics', handler: 'metrics' },
  { method: 'GET', template: '/api/v1/performance/summary', handler: 'performanceSummary' },
  { method: 'GET', template: '/api/v1/performance/queries', handler: 'performanceQueries' },
  ...marketRoutes,
  ...marksRoutes,
];

/** Routes anyone may call, with or without a key. */
export const publicHandlers: ReadonlySet<HandlerName> = new Set<HandlerName>(['health', 'ready', 'openapi', 'asyncapi']);
/** Routes that take a JSON body. */
export const bodyHandlers: ReadonlySet<HandlerName> = new Set<HandlerName>(['createPortfolio', 'trade', 'cash', 'fxConversion', 'setLimits', 'ticks', 'createCorporateAction', 'defineInstrument', ...marketBodyHandlers]);

export type { HttpRequestContext, HttpResult };

export interface HttpDeps {
  engine: Engine;
  options: ResolvedOptions;
  uwsBinary: 'native' | 'fallback';
  transport: 'uws' | 'node';
  startedAt: number;
  isReady: () => boolean;
  connections: () => Record<string, number>;
  openapi: () => string;
  asyncapi: () => string;
  /** Prometheus exposition (the metrics wiring's scrape()); null = GET /metrics answers 404. */
  metrics: (() => Promise<{ contentType: string; body: string }>) | null;
  /** GET /api/v1/performance/*; null = they answer 404. */
  performance?: PerformanceApi | null;
  /** Counts the ticks POST /api/v1/ticks receives and refuses (absent: not counted). */
  stats?: Pick<StatsCollector, 'httpTicks' | 'refuseTick'>;
  /** GET /api/v1/bars/*, /api/v1/market/alerts; null or absent = they answer 404. */
  market?: MarketApi | null;
}

export function json(status: number, value: unknown, headers?: Record<string, string>): HttpResult {
  return headers === undefined ? { status, body: JSON.stringify(value) } : { status, body: JSON.stringify(value), headers };
}

export function errorResult(error: Pick<EngineError, 'code' | 'message' | 'field' | 'retryable' | 'command_id'>, headers?: Record<string, string>): HttpResult {
  const status = httpStatusFor(error.code);
  const h = error.retryable === true && headers === undefined && status === 503 ? { 'Retry-After': '1' } : headers;
  return h === undefined ? { status, body: httpErrorBody(error) } : { status, body: httpErrorBody(error), headers: h };
}

/** The one answer for "missing or outside your scopes". */
export function notFound(id: string): HttpResult {
  return errorResult({ code: ErrorCode.portfolio_not_found, message: `portfolio '${id}' not found` });
}

function forbidden(what: string): HttpResult {
  return errorResult({ code: ErrorCode.forbidden, message: `this key may not ${what}` });
}

/** Engine answers: the not-found message is normalized so it never differs from notFound(). */
function fromEngine<T>(r: Result<T>, id: string, status: number, map: (v: T) => unknown = (v) => v): HttpResult {
  if (r.ok) return json(status, map(r.value));
  if (r.error.code === ErrorCode.portfolio_not_found) return notFound(id);
  return errorResult(r.error);
}

type Access = 'read' | 'trade' | 'admin';

/** Resolves the {id} param and checks the key's access; null when the handler may go on. */
function guard(ctx: HttpRequestContext, engine: Engine, access: Access): { id: string; denied: HttpResult | null } {
  const raw = ctx.params[0] ?? '';
  const v = validatePortfolioId(raw, 'id');
  // An invalid id cannot exist: it gets the not-found answer too (nothing to reveal either way).
  if (!v.ok) return { id: raw, denied: notFound(raw.slice(0, 64)) };
  const id = v.value;
  const p = ctx.principal;
  if (!canSee(p, id)) return { id, denied: notFound(id) };
  if (!engine.has(id)) return { id, denied: notFound(id) };
  const allowed = access === 'read' ? canRead(p, id) : access === 'trade' ? canTrade(p, id) : p.admin;
  if (!allowed) return { id, denied: forbidden(access === 'read' ? `read portfolio '${id}'` : access === 'trade' ? `trade portfolio '${id}'` : 'administer portfolios') };
  return { id, denied: null };
}

/**
 * ?command_id= of a non-trade command: its idempotency id in cluster mode (docs/CLUSTER.md; a single
 * node ignores it). The trade id's rule.
 */
function commandOptions(ctx: HttpRequestContext): Result<CommandOptions> {
  const id = ctx.query.get('command_id');
  if (id === undefined) return ok({});
  if (!tradeIdPattern.test(id)) return fail(ErrorCode.invalid_id, `command_id must match ${tradeIdPattern.source.slice(1, -1)}`, 'command_id');
  return ok({ command_id: id });
}

const eventTypeSet: ReadonlySet<string> = new Set(domainEventTypes);

export function createHandlers(deps: HttpDeps): Record<HandlerName, (ctx: HttpRequestContext) => Promise<HttpResult> | HttpResult> {
  const { engine, options } = deps;
  const limits = options.limits;
  const tickBatch = new Validator('ticks', TickBatch(limits.ticksPerBatchMax));
  return {
    health: () =>
      json(200, {
        status: 'ok',
        uws_binary: deps.uwsBinary,
        transport: deps.transport,
        kernel: engine.kernel,
        workers: engine.workers,
        uptime_ms: Math.max(0, options.now() - deps.startedAt),
        connections: deps.connections(),
      }),

    // While the engine recovers: 503 with its progress (portfolios and events restored, rate, ETA).
    ready: () =>
      deps.isReady()
        ? json(200, { ready: true })
        : json(503, options.progress === null ? { ready: false } : { ready: false, progress: options.progress() }, { 'Retry-After': '1' }),

    openapi: () => ({ status: 200, body: deps.openapi() }),
    asyncapi: () => ({ status: 200, body: deps.asyncapi() }),

    listPortfolios: (ctx) => {
      const lim = parseLimit(ctx.query.get('limit'), 100, limits.pageLimitMax);
      if (!lim.ok) return errorResult(lim.error);
      const after = ctx.query.get('after');
      if (after !== undefined && after.length > 64) return errorResult({ code: ErrorCode.invalid_field, message: 'after must be a portfolio id', field: 'after' });
      const visible = engine
        .listPortfolios()
        .filter((s) => canSee(ctx.principal, s.id) && (after === undefined || s.id > after))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const page = visible.slice(0, lim.value).map((s) => ({ id: s.id, name: s.name, state: s.state }));
      const next = visible.length > lim.value ? page[page.length - 1].id : null;
      return json(200, { portfolios: page, next });
    },

    createPortfolio: async (ctx) => {
      if (!ctx.principal.admin) return forbidden('create portfolios');
      const v = validateCreatePortfolio(ctx.body);
      if (!v.ok) return errorResult(v.error);
      const { id, name, cash, limits: riskLimits, cost_basis_method, base_currency } = v.value;
      const r = await engine.createPortfolio({ ...(id === undefined ? {} : { id }), name, cash, limits: riskLimits, cost_basis_method, base_currency });
      if (!r.ok) return errorResult(r.error);
      return json(201, r.value, { Location: `/api/v1/portfolios/${encodeURIComponent(r.value.portfolio_id)}` });
    },

    getPortfolio: async (ctx) => {
      const g = guard(ctx, engine, 'read');
      if (g.denied) return g.denied;
      const asOf = ctx.query.get('as_of');
      if (asOf !== undefined) {
        const t = parseInstant(asOf, 'as_of');
        if (!t.ok) return errorResult(t.error);
        return fromEngine(await engine.snapshotAt(g.id, t.value), g.id, 200);
      }
      const lots = parseFlag(ctx.query.get('lots'), 'lots');
      if (!lots.ok) return errorResult(lots.error);
      return fromEngine(await engine.snapshot(g.id, { lots: lots.value }), g.id, 200);
    },

    positionLots: async (ctx) => {
      const g = guard(ctx, engine, 'read');
      if (g.denied) return g.denied;
      const r = await engine.lots(g.id, ctx.params[1] ?? '');
      if (!r.ok) return r.error.code === ErrorCode.portfolio_not_found ? notFound(g.id) : errorResult(r.error);
      return json(200, r.value);
    },

    closePortfolio: async (ctx) => {
      const g = guard(ctx, engine, 'admin');
      if (g.denied) return g.denied;
      const c = commandOptions(ctx);
      if (!c.ok) return errorResult(c.error);
      return fromEngine(await engine.closePortfolio(g.id, c.value), g.id, 200);
    },

    trade: async (ctx) => {
      const g = guard(ctx, engine, 'trade');
      if (g.denied) return g.denied;
      const v = validateTrade(ctx.body, options.now());
      if (!v.ok) return errorResult(v.error);
      const r = await engine.tradeValidated(g.id, v.value);
      if (!r.ok) return r.error.code === ErrorCode.portfolio_not_found ? notFound(g.id) : errorResult(r.error);
      return json(r.value.applied ? 201 : 200, r.value);
    },

    cash: async (ctx) => {
      const g = guard(ctx, engine, 'trade');
      if (g.denied) return g.denied;
      const v = validateCash(ctx.body);
      if (!v.ok) return errorResult(v.error);
      const c = commandOptions(ctx);
      if (!c.ok) return errorResult(c.error);
      return fromEngine(await engine.cash(g.id, v.value, c.value), g.id, 200);
    },

    fxConversion: async (ctx) => {
      const g = guard(ctx, engine, 'trade');
      if (g.denied) return g.denied;
      const c = commandOptions(ctx);
      if (!c.ok) return errorResult(c.error);
      return fromEngine(await engine.convertCash(g.id, ctx.body, c.value), g.id, 200);
    },

    pause: async (ctx) => {
      const g = guard(ctx, engine, 'trade');
      if (g.denied) return g.denied;
      const c = commandOptions(ctx);
      if (!c.ok) return errorResult(c.error);
      return fromEngine(await engine.pause(g.id, c.value), g.id, 200);
    },

    resume: async (ctx) => {
      const g = guard(ctx, engine, 'trade');
      if (g.denied) return g.denied;
      const c = commandOptions(ctx);
      if (!c.ok) return errorResult(c.error);
      return fromEngine(await engine.resume(g.id, c.value), g.id, 200);
    },

    setLimits: async (ctx) => {
      const g = guard(ctx, engine, 'trade');
      if (g.denied) return g.denied;
      if (typeof ctx.body !== 'object' || ctx.body === null || Array.isArray(ctx.body)) {
        return errorResult({ code: ErrorCode.invalid_limits, message: 'limits must be an object', field: 'limits' });
      }
      const v = validateLimits(ctx.body);
      if (!v.ok) return errorResult(v.error);
      const c = commandOptions(ctx);
      if (!c.ok) return errorResult(c.error);
      return fromEngine(await engine.setLimits(g.id, v.value, c.value), g.id, 200);
    },

    events: async (ctx) => {
      // '_market' holds the market events (MarketAlert, FeedGap): scope read:market, not a portfolio's.
      // '_instruments' holds the instrument definitions: reference data, any valid key reads it.
      const g = ctx.params[0] === marketPortfolio ? marketEventsGuard(ctx.principal) : ctx.params[0] === instrumentsPortfolio ? { id: instrumentsPortfolio, denied: null } : guard(ctx, engine, 'read');
      if (g.denied) return g.denied;
      const q: EventQuery = { portfolio_id: g.id, order: 'asc' };
      const type = ctx.query.get('type');
      if (type !== undefined) {
        if (!eventTypeSet.has(type)) return errorResult({ code: ErrorCode.invalid_field, message: `type must be one of ${domainEventTypes.join(', ')}`, field: 'type' });
        q.type = type as DomainEventType;
      }
      for (const f of ['from', 'to'] as const) {
        const raw = ctx.query.get(f);
        if (raw === undefined) continue;
        const t = parseInstant(raw, f);
        if (!t.ok) return errorResult(t.error);
        q[f] = t.value;
      }
      const after = ctx.query.get('after_seq');
      if (after !== undefined) {
        const a = parseNonNegativeInteger(after, 'after_seq');
        if (!a.ok) return errorResult(a.error);
        q.after_seq = a.value;
      }
      const lim = parseLimit(ctx.query.get('limit'), 100, limits.pageLimitMax);
      if (!lim.ok) return errorResult(lim.error);
      q.limit = lim.value;
      const r = await engine.queryEvents(q);
      if (!r.ok) return r.error.code === ErrorCode.portfolio_not_found ? notFound(g.id) : errorResult(r.error);
      const events = r.value;
      return json(200, { events, next_after_seq: events.length === lim.value ? events[events.length - 1].seq : null });
    },

    ticks: (ctx) => {
      if (!ctx.principal.feed) return forbidden('publish ticks');
      const body = ctx.body;
      const v = tickBatch.validate(body);
      if (!v.ok) return errorResult(v.error);
      if (deps.stats !== undefined) deps.stats.httpTicks += v.value.length;
      return json(202, ingestTicks(engine, v.value, false, deps.stats));
    },

    // Corporate actions change every holder's books: admin keys only, like creating portfolios. The list
    // names no portfolio: any valid key may read it.
    createCorporateAction: async (ctx) => {
      if (!ctx.principal.admin) return forbidden('enter corporate actions');
      const r = await engine.corporateAction(ctx.body);
      if (!r.ok) return errorResult(r.error);
      return json(r.value.created ? 201 : 200, r.value.action);
    },

    // Instruments are reference data: admin keys define them, any valid key reads them.
    defineInstrument: async (ctx) => {
      if (!ctx.principal.admin) return forbidden('define instruments');
      const r = await engine.defineInstrument(ctx.params[0] ?? '', ctx.body);
      if (!r.ok) return errorResult(r.error);
      return json(200, r.value.instrument);
    },

    getInstrument: (ctx) => {
      const r = engine.instrument(ctx.params[0] ?? '');
      return r.ok ? json(200, r.value) : errorResult(r.error);
    },

    listInstruments: () => json(200, { instruments: engine.listInstruments() }),

    listCorporateActions: async (ctx) => {
      const lim = parseLimit(ctx.query.get('limit'), 100, limits.pageLimitMax);
      if (!lim.ok) return errorResult(lim.error);
      const query: { after_seq?: number; limit: number } = { limit: lim.value };
      const after = ctx.query.get('after_seq');
      if (after !== undefined) {
        const a = parseNonNegativeInteger(after, 'after_seq');
        if (!a.ok) return errorResult(a.error);
        query.after_seq = a.value;
      }
      const r = await engine.listCorporateActions(query);
      return r.ok ? json(200, r.value) : errorResult(r.error);
    },

    // Only reached without the streaming transport; server.ts answers this route itself.
    importTrades: () => errorResult({ code: ErrorCode.not_found, message: 'trade import is served by the streaming transport only' }),

    metrics: async () => {
      if (deps.metrics === null) return errorResult({ code: ErrorCode.not_found, message: 'metrics are not enabled on this server' });
      const m = await deps.metrics();
      return { status: 200, body: m.body, contentType: m.contentType };
    },

    performanceSummary: () => {
      const p = deps.performance ?? null;
      if (p === null) return errorResult({ code: ErrorCode.not_found, message: 'performance summaries are not enabled on this server' });
      return json(200, p.summary());
    },

    performanceQueries: () => {
      const p = deps.performance ?? null;
      if (p === null) return errorResult({ code: ErrorCode.not_found, message: 'performance summaries are not enabled on this server' });
      return json(200, p.queries());
    },

    ...createMarketHandlers(deps.market ?? null, options.now),
    ...createMarksHandlers(engine),
  };
}

/**
 * Structure checks here, value checks in the engine; indexes refer to `ticks`. `refused` counts the ticks
 * refused here by code (the engine counts its own), so the metrics see every rejection once.
 */
export function ingestTicks(
  engine: Engine,
  ticks: readonly unknown[],
  requireTs: boolean,
  refused?: { refuseTick(code: string): string },
): { accepted: number; rejected: { index: number; code: string }[]; held: number } {
  const rejected: { index: number; code: string }[] = [];
  const valid: TickInput[] = [];
  const indexOf: number[] = [];
  for (let i = 0; i < ticks.length; i++) {
    const s = tickShape(ticks[i], requireTs);
    if (!s.ok) rejected.push({ index: i, code: refused === undefined ? s.code : refused.refuseTick(s.code) });
    else {
      valid.push(s.tick);
      indexOf.push(i);
    }
  }
  let accepted = 0;
  let held = 0;
  if (valid.length > 0) {
    const r = engine.ingestTicks(valid);
    accepted = r.accepted;
    held = r.held;
    for (const x of r.rejected) rejected.push({ index: indexOf[x.index] ?? x.index, code: x.code });
    rejected.sort((a, b) => a.index - b.index);
  }
  return { accepted, rejected, held };
}

