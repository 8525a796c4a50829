// The suspect-tick routes of the HTTP API (src/engine/suspect.ts): list the held ticks, and let an
// admin settle one: confirm (its price is applied) or reject (it is dropped). Each settlement is a
// SuspectTickConfirmed / SuspectTickRejected event (by: 'admin') under '_market', durable before the
// answer. Listing needs read:market (held ticks are market data); settling needs admin, like every
// other route that changes what the engine holds. http.ts mounts these; openapi.ts documents them.

import { ErrorCode, type EngineError, type Result } from '../errors.js';
import type { Engine, SettledTick } from '../engine/api.js';
import type { HttpRequestContext, HttpResult } from './httpTypes.js';
import { canReadMarket, marketError, marketReadScope } from './market.js';
import type { RouteDef } from './router.js';
import { SymbolField } from '../domain/schemas.js';
import { ErrorBody, HeldTickList, SettledTick as SettledTickSchema } from '../protocol/rest.js';

export type MarksHandlerName = 'suspectTicks' | 'confirmSuspectTick' | 'rejectSuspectTick';

export const marksRoutes: readonly RouteDef<MarksHandlerName>[] = [
  { method: 'GET', template: '/api/v1/marks/suspect', handler: 'suspectTicks' },
  { method: 'POST', template: '/api/v1/marks/{symbol}/confirm', handler: 'confirmSuspectTick' },
  { method: 'POST', template: '/api/v1/marks/{symbol}/reject', handler: 'rejectSuspectTick' },
];

type Json = Record<string, unknown>;

const json = (status: number, value: unknown): HttpResult => ({ status, body: JSON.stringify(value) });

/** The same answer as every market route's (marketError): a 503 says when to retry. */
function error(e: Pick<EngineError, 'code' | 'message' | 'field'>): HttpResult {
  return marketError(e.code as ErrorCode, e.message, e.field);
}

const notAdmin = (): HttpResult => error({ code: ErrorCode.forbidden, message: 'this key may not settle suspect ticks (scope admin)' });

export function createMarksHandlers(engine: Engine): Record<MarksHandlerName, (ctx: HttpRequestContext) => Promise<HttpResult> | HttpResult> {
  const settle = async (ctx: HttpRequestContext, run: (symbol: string) => Promise<Result<SettledTick>>): Promise<HttpResult> => {
    if (!ctx.principal.admin) return notAdmin();
    const r = await run(ctx.params[0] ?? '');
    return r.ok ? json(200, r.value) : error(r.error);
  };
  return {
    suspectTicks: (ctx) => {
      if (!canReadMarket(ctx.principal)) return error({ code: ErrorCode.forbidden, message: `this key may not read market data (scope ${marketReadScope})` });
      return json(200, { ticks: engine.suspectTicks() });
    },
    confirmSuspectTick: (ctx) => settle(ctx, (symbol) => engine.confirmSuspectTick(symbol)),
    rejectSuspectTick: (ctx) => settle(ctx, (symbol) => engine.rejectSuspectTick(symbol)),
  };
}

/** OpenAPI paths of these routes (openapi.ts merges them in). */
export function marksOpenApiPaths(op: (summary: string, responses: Json, extra?: Json) => Json, response: (description: string, schema: Json) => Json): Json {
  const r = (name: string): Json => ({ $ref: `#/components/responses/${name}` });
  const symbol = { name: 'symbol', in: 'path', required: true, description: 'URL-encoded (BTC%2FUSD)', schema: SymbolField() };
  const missing = response('symbol_not_found: the engine never saw the symbol; suspect_tick_not_found: nothing is held for it', ErrorBody as unknown as Json);
  const settled = (what: string): Json =>
    op(what, {
      '200': response('The held tick, settled; its audit event is durable', SettledTickSchema as unknown as Json),
      '400': r('BadRequest'),
      '403': r('Forbidden'),
      '404': missing,
      '503': r('Unavailable'),
    });
  return {
    '/api/v1/marks/suspect': {
      get: op('Ticks held as suspect (scope read:market): at most one per symbol, with the reference price and the move', {
        '200': response('Held ticks, by symbol id', HeldTickList as unknown as Json),
        '403': r('Forbidden'),
      }),
    },
    '/api/v1/marks/{symbol}/confirm': {
      parameters: [symbol],
      post: settled('Confirm the held tick of a symbol (scope admin): its price is applied and becomes the reference; SuspectTickConfirmed (by admin)'),
    },
    '/api/v1/marks/{symbol}/reject': {
      parameters: [symbol],
      post: settled('Reject the held tick of a symbol (scope admin): it is dropped, the reference stays; SuspectTickRejected (by admin)'),
    },
  };
}
