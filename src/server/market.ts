// Market data on the server: who may read it, and what startServer is given to serve it.
//
// Access: market data (bars, history, subscribe_bars, and the '_market' events: MarketAlert,
// FeedGap) needs the scope read:market, i.e. a read scope whose glob covers the word `market`
// (read:* does too: it already sees the '_market' events through subscribe_events); admin passes.
// Without keys the anonymous principal is admin, so on loopback everything passes, as elsewhere.
// Changing alert rules (PUT /api/v1/market/alerts) and reading them need admin.

import { ErrorCode, httpStatusFor } from '../errors.js';
import { marketPortfolio, type MarketService } from '../market/service.js';
import type { Principal } from './auth.js';
import { httpErrorBody } from './encoding.js';

export { marketPortfolio };

/** The scope named in docs and error messages. */
export const marketReadScope = 'read:market';

export function canReadMarket(p: Principal): boolean {
  return p.admin || p.read.some((glob) => glob.test('market'));
}

/** What the HTTP and WebSocket handlers use of the market service. */
export type MarketApi = Pick<MarketService, 'limits' | 'page' | 'cursor' | 'openBar' | 'onBar' | 'watch' | 'rules' | 'setRules'>;

/** startServer's extra option: serve market data from this service (absent: the market routes answer 404). */
export interface MarketServerOptions {
  market?: MarketApi | null;
}

export interface MarketHttpAnswer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export function marketError(code: ErrorCode, message: string, field?: string): MarketHttpAnswer {
  const status = httpStatusFor(code);
  const body = httpErrorBody(field === undefined ? { code, message } : { code, message, field });
  // As everywhere in the API: a 503 says when to retry.
  return status === 503 ? { status, body, headers: { 'Retry-After': '1' } } : { status, body };
}

export const marketForbidden = (): MarketHttpAnswer => marketError(ErrorCode.forbidden, `this key may not read market data (scope ${marketReadScope})`);
export const marketDisabled = (): MarketHttpAnswer => marketError(ErrorCode.not_found, 'market data is not enabled on this server');

/** The events route's guard for the '_market' pseudo-portfolio (it is not in the engine's directory). */
export function marketEventsGuard(p: Principal): { id: string; denied: MarketHttpAnswer | null } {
  return { id: marketPortfolio, denied: canReadMarket(p) ? null : marketForbidden() };
}
