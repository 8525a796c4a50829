// What an HTTP handler gets and gives back: shared by the handler tables (http.ts, marketHttp.ts,
// marksHttp.ts) and the transport that runs them (httpIntake.ts, sockets.ts), below all of them.

import type { Principal } from './auth.js';

export interface HttpRequestContext {
  principal: Principal;
  params: string[];
  query: Map<string, string>;
  /** Parsed JSON body (bodyHandlers only); undefined when empty. */
  body: unknown;
}

export interface HttpResult {
  status: number;
  body: string | Buffer;
  headers?: Record<string, string>;
  /** Default application/json. */
  contentType?: string;
}
