// Writing an HttpResult onto a uWS response (HTTP answers and refused upgrades alike), and the
// peer address a response came from.

import type { HttpResponse } from 'uWebSockets.js';
import type { HttpResult } from './httpTypes.js';

const reasons: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};
const statusLine = (s: number): string => `${s} ${reasons[s] ?? 'Status'}`;

export function writeResult(res: HttpResponse, r: HttpResult, closeConnection: boolean): void {
  res.writeStatus(statusLine(r.status));
  res.writeHeader('Content-Type', r.contentType ?? 'application/json');
  // Static files bring their own caching policy; every API answer is no-store.
  if (r.headers?.['Cache-Control'] === undefined) res.writeHeader('Cache-Control', 'no-store');
  res.writeHeader('X-Content-Type-Options', 'nosniff');
  if (r.headers) for (const k in r.headers) res.writeHeader(k, r.headers[k]);
  res.end(r.body, closeConnection);
}

export function remoteOf(res: HttpResponse): string {
  try {
    return Buffer.from(res.getRemoteAddressAsText()).toString();
  } catch {
    return 'unknown';
  }
}
