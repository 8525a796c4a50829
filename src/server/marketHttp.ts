// The market routes of the HTTP API: bars of one symbol (paged, gap-filled, the open bar merged in)
// and the market alert rules. http.ts mounts them; without a market service they answer 404.
// This module imports only types from http.ts, so either may be loaded first.

import { ErrorCode } from '../errors.js';
import { parseBarQuery } from '../market/query.js';
import { bucketStart } from '../market/timeframe.js';
import type { BarQuery } from '../market/fill.js';
import type { HttpRequestContext, HttpResult } from './httpTypes.js';
import { canReadMarket, marketDisabled, marketError, marketForbidden, type MarketApi } from './market.js';
import { parseLimit } from './query.js';
import type { RouteDef } from './router.js';

export type MarketHandlerName = 'bars' | 'getMarketAlerts' | 'putMarketAlerts';

export const marketRoutes: readonly RouteDef<MarketHandlerName>[] = [
  { method: 'GET', template: '/api/v1/bars/{symbol}', handler: 'bars' },
  { method: 'GET', template: '/api/v1/market/alerts', handler: 'getMarketAlerts' },
  { method: 'PUT', template: '/api/v1/market/alerts', handler: 'putMarketAlerts' },
];

export const marketBodyHandlers: readonly MarketHandlerName[] = ['putMarketAlerts'];

/** Rows per page when the request names no limit. */
export const pageBarsDefault = 1_000;

const cursorPattern = /^-?\d{1,16}$/;

const json = (status: number, value: unknown): HttpResult => ({ status, body: JSON.stringify(value) });

/** A page cursor is the start of the page's first interval: a bucket start inside the query's range. */
function parseCursor(raw: string | undefined, q: BarQuery): { ok: true; value: number | undefined } | { ok: false; answer: HttpResult } {
  if (raw === undefined) return { ok: true, value: undefined };
  const c = cursorPattern.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(c) || bucketStart(q.tf, c) !== c || c < bucketStart(q.tf, q.from) || c >= q.to) {
    return { ok: false, answer: marketError(ErrorCode.invalid_field, 'cursor must be the next_cursor of a previous page of this query', 'cursor') };
  }
  return { ok: true, value: c };
}

export function createMarketHandlers(
  market: MarketApi | null,
  now: () => number,
): Record<MarketHandlerName, (ctx: HttpRequestContext) => Promise<HttpResult> | HttpResult> {
  return {
    bars: async (ctx) => {
      if (market === null) return marketDisabled();
      if (!canReadMarket(ctx.principal)) return marketForbidden();
      const q = ctx.query;
      const parsed = parseBarQuery(
        { symbol: ctx.params[0], tf: q.get('tf'), from: q.get('from'), to: q.get('to') ?? now(), fill: q.get('fill') },
        market.limits.barsPerQueryMax,
      );
      if (!parsed.ok) return marketError(parsed.error.code, parsed.error.message, parsed.error.field);
      const query = parsed.value;
      const limit = parseLimit(q.get('limit'), pageBarsDefault, market.limits.pageBarsMax);
      if (!limit.ok) return marketError(limit.error.code, limit.error.message, limit.error.field);
      const cursor = parseCursor(q.get('cursor'), query);
      if (!cursor.ok) return cursor.answer;
      const page = await market.page(query, limit.value, cursor.value);
      return json(200, { ...query, bars: page.rows, next_cursor: page.next === null ? null : String(page.next) });
    },

    getMarketAlerts: (ctx) => {
      if (market === null) return marketDisabled();
      if (!ctx.principal.admin) return marketError(ErrorCode.forbidden, 'this key may not administer market alerts (scope admin)');
      return json(200, { rules: market.rules });
    },

    putMarketAlerts: async (ctx) => {
      if (market === null) return marketDisabled();
      if (!ctx.principal.admin) return marketError(ErrorCode.forbidden, 'this key may not administer market alerts (scope admin)');
      const body = ctx.body;
      if (typeof body !== 'object' || body === null || Array.isArray(body) || !('rules' in body)) {
        return marketError(ErrorCode.invalid_field, 'body must be {"rules": [...]}', 'rules');
      }
      const r = await market.setRules((body as { rules: unknown }).rules);
      if (!r.ok) return marketError(r.error.code, r.error.message, r.error.field);
      return json(200, { rules: r.value });
    },
  };
}
