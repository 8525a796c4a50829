// Proves the market HTTP API on a real server, engine, market worker and LMDB:
// - GET /api/v1/bars/{symbol}: stored closed bars merged with the open bar, each fill mode (none,
//   previous, null), a coarser timeframe, ISO-8601 and epoch-ms instants, `to` defaulting to now,
//   paging with limit and next_cursor (no row lost or repeated, 'previous' carried across pages);
// - bad parameters answer 400 with a message naming the field: tf, from, to (reversed, absurd span),
//   fill, limit, cursor, symbol;
// - GET/PUT /api/v1/market/alerts (admin): rules read back with their defaults, bad rules refused
//   naming the field;
// - access: scope read:market reads bars and the '_market' events, a portfolio-only key gets 403,
//   only admin touches the alert rules; without keys (loopback) everything passes;
// - every answer validates against the OpenAPI document.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../src/server/server.js';
import { marketRoutes } from '../src/server/marketHttp.js';
import { http } from './support/serverHarness.js';
import { validate } from './support/serverSchema.js';
import { startMarketHarness, type MarketHarness } from './support/marketServer.js';

const min = 60_000;
const t0 = Date.UTC(2025, 0, 6, 10, 0); // a Monday, 10:00 UTC
const keys = [
  { key: 'admin-key-0123456789', name: 'admin', scopes: ['admin'] },
  { key: 'market-key-0123456789', name: 'market', scopes: ['read:market'] },
  { key: 'reader-key-0123456789', name: 'reader', scopes: ['read:desk-*'] },
];
const [ADMIN, MARKET, READER] = keys.map((k) => k.key);

let h: MarketHarness;
let keyed: RunningServer;
let openapi: any;

beforeAll(async () => {
  h = await startMarketHarness({ now: t0 + 6 * min + 30_000 });
  // Minutes 0, 1, 3 closed (2 and 4 without ticks), minute 5 open.
  await h.ticks([
    { symbol: 'AAA', price: 10, ts: t0 + 1_000, size: 2 },
    { symbol: 'AAA', price: 12, ts: t0 + 30_000, size: 1 },
    { symbol: 'AAA', price: 11, ts: t0 + min + 5_000, size: 4 },
    { symbol: 'AAA', price: 13, ts: t0 + 3 * min + 1_000 },
    { symbol: 'AAA', price: 14, ts: t0 + 5 * min + 2_000, size: 1 },
  ]);
  keyed = await startServer(h.engine, { port: 0, keys, log: null, now: () => h.clock.now, market: h.market });
  openapi = (await http(h.url, 'GET', '/openapi.json')).body;
});
afterAll(async () => {
  await keyed?.close();
  await h?.stop(true);
});

function responseSchema(template: string, method: string, status: number): unknown {
  const op = openapi.paths[template]?.[method.toLowerCase()];
  expect(op, `${method} ${template} is documented`).toBeDefined();
  let resp = op.responses[String(status)];
  expect(resp, `${method} ${template} documents status ${status}`).toBeDefined();
  if (resp.$ref) resp = resp.$ref.split('/').slice(1).reduce((o: any, k: string) => o[k], openapi);
  return resp.content['application/json'].schema;
}

const checked = new Set<string>();
/** A request whose answer must validate against the OpenAPI schema of its status. */
async function call(method: string, template: string, path: string, body?: unknown, key?: string, base = h.url): Promise<any> {
  const r = await http(base, method, path, body, key);
  expect(validate(openapi, responseSchema(template, method, r.status) as never, r.body), `${method} ${path} -> ${r.status}: ${r.text.slice(0, 300)}`).toEqual([]);
  checked.add(`${method} ${template}`);
  return r;
}
const bars = (query: string, key?: string, base?: string) => call('GET', '/api/v1/bars/{symbol}', `/api/v1/bars/${query}`, undefined, key, base);
const starts = (rows: any[]) => rows.map((b) => (b.start - t0) / min);

describe('GET /api/v1/bars/{symbol}', () => {
  it('merges stored bars with the open bar; fill none omits empty intervals', async () => {
    const r = await bars(`AAA?tf=1m&from=${t0}&to=${t0 + 6 * min}&fill=none`);
    expect(r.status).toBe(200);
    expect(starts(r.body.bars)).toEqual([0, 1, 3, 5]);
    expect(r.body.bars[0]).toEqual({
      symbol: 'AAA', tf: '1m', start: t0, open: 10, high: 12, low: 10, close: 12, volume: 3, pv: 32, vwap: 32 / 3, trades: 2,
      first_ts: t0 + 1_000, last_ts: t0 + 30_000, filled: false,
    });
    expect(r.body.bars[2]).toMatchObject({ close: 13, volume: 0, vwap: null, trades: 1 }); // a tick without size
    expect(r.body.bars[3]).toMatchObject({ start: t0 + 5 * min, close: 14, trades: 1, filled: false }); // the open bar
    expect(r.body.next_cursor).toBeNull();
  });

  it('fill previous carries the last close; fill null leaves prices null', async () => {
    const prev = await bars(`AAA?tf=1m&from=${t0}&to=${t0 + 6 * min}&fill=previous`);
    expect(starts(prev.body.bars)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(prev.body.bars[2]).toMatchObject({ filled: true, open: 11, high: 11, low: 11, close: 11, volume: 0, trades: 0, vwap: null, first_ts: null });
    expect(prev.body.bars[4]).toMatchObject({ filled: true, close: 13 });
    const nul = await bars(`AAA?tf=1m&from=${t0}&to=${t0 + 6 * min}&fill=null`);
    expect(starts(nul.body.bars)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(nul.body.bars[2]).toMatchObject({ filled: true, open: null, close: null, trades: 0 });
    // Before the first bar there is nothing to carry: previous leaves those intervals null.
    const early = await bars(`AAA?tf=1m&from=${t0 - 2 * min}&to=${t0 + min}&fill=previous`);
    expect(early.body.bars.map((b: any) => b.close)).toEqual([null, null, 12]);
  });

  it('answers coarser timeframes, ISO-8601 instants, and `to` defaulting to now', async () => {
    const r = await bars(`AAA?tf=5m&from=2025-01-06T10:00:00Z`);
    expect(r.body.to).toBe(h.clock.now);
    expect(r.body.bars.map((b: any) => [b.start - t0, b.open, b.close, b.trades, b.volume])).toEqual([
      [0, 10, 13, 4, 7],
      [5 * min, 14, 14, 1, 1],
    ]);
    const iso = await bars(`AAA?tf=1m&from=2025-01-06T11:00:00%2B01:00&to=2025-01-06T10:02:00Z`);
    expect(starts(iso.body.bars)).toEqual([0, 1]);
  });

  it('pages with limit and next_cursor, losing and repeating nothing', async () => {
    for (const fill of ['none', 'previous', 'null']) {
      const whole = (await bars(`AAA?tf=1m&from=${t0 - min}&to=${t0 + 6 * min}&fill=${fill}`)).body.bars;
      const paged: any[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 10; pages++) {
        const r: any = await bars(`AAA?tf=1m&from=${t0 - min}&to=${t0 + 6 * min}&fill=${fill}&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
        expect(r.body.bars.length).toBeLessThanOrEqual(2);
        paged.push(...r.body.bars);
        cursor = r.body.next_cursor;
        if (cursor === null) break;
      }
      expect(cursor, fill).toBeNull();
      expect(paged, fill).toEqual(whole);
    }
  });

  it('answers an unknown symbol with no bars', async () => {
    const r = await bars(`ZZZ?tf=1h&from=${t0}`);
    expect(r.status).toBe(200);
    expect(r.body.bars).toEqual([]);
    expect((await bars(`BTC%2FUSD?tf=1h&from=${t0}&fill=null`)).body.bars).toHaveLength(1);
  });

  it('refuses bad parameters with 400 naming the field', async () => {
    const cases: [string, string, RegExp][] = [
      [`AAA?tf=2m&from=${t0}`, 'tf', /tf must be one of 1m, 5m, 15m, 30m, 1h, 1d, 1w/],
      [`AAA?from=${t0}`, 'tf', /tf must be/],
      [`AAA?tf=1m`, 'from', /from must be epoch milliseconds or ISO-8601/],
      [`AAA?tf=1m&from=yesterday`, 'from', /from must be/],
      [`AAA?tf=1m&from=2025-01-06T10:00:00`, 'from', /from must be/], // a date-time without a zone
      [`AAA?tf=1m&from=${t0}&to=${t0 - 1}`, 'to', /to must not be before from/],
      [`AAA?tf=1m&from=0&to=${t0}`, 'to', /spans \d+ 1m bars; at most 10000 per query/],
      [`AAA?tf=1m&from=${t0}&fill=zero`, 'fill', /fill must be one of none, previous, null/],
      [`AAA?tf=1m&from=${t0}&limit=0`, 'limit', /limit must be an integer from 1 to/],
      [`AAA?tf=1m&from=${t0}&limit=10001`, 'limit', /limit/],
      [`AAA?tf=1m&from=${t0}&cursor=${t0 + 1}`, 'cursor', /cursor must be the next_cursor/],
      [`AAA?tf=1m&from=${t0}&to=${t0 + min}&cursor=${t0 + 5 * min}`, 'cursor', /cursor/],
      [`bad%20symbol?tf=1m&from=${t0}`, 'symbol', /symbol must match/],
    ];
    for (const [query, field, message] of cases) {
      const r = await bars(query);
      expect(r.status, query).toBe(400);
      expect(r.body.error.field, query).toBe(field);
      expect(r.body.error.message, query).toMatch(message);
    }
  });
});

describe('GET/PUT /api/v1/market/alerts', () => {
  it('reads and replaces the rules; bad rules are refused naming the field', async () => {
    const path = '/api/v1/market/alerts';
    expect((await call('GET', path, path)).body).toEqual({ rules: [] });
    const put = await call('PUT', path, path, { rules: [{ id: 'jump', kind: 'move', move_pct: 3, window_ms: 60_000 }] });
    expect(put.status).toBe(200);
    expect(put.body.rules).toEqual([{ id: 'jump', name: 'jump', kind: 'move', move_pct: 3, window_ms: 60_000, cooldown_ms: 60_000 }]);
    expect((await call('GET', path, path)).body).toEqual(put.body);
    const bad = await call('PUT', path, path, { rules: [{ id: 'x', kind: 'move', move_pct: -1, window_ms: 1 }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ field: 'rules[0].move_pct' });
    const typo = await call('PUT', path, path, { rules: [{ id: 'x', kind: 'silence', silent_ms: 5, window_ms: 1 }] });
    expect(typo.body.error).toMatchObject({ field: 'rules[0].window_ms' });
    expect((await call('PUT', path, path, [1])).body.error.field).toBe('rules');
    expect((await call('GET', path, path)).body).toEqual(put.body);
    await call('PUT', path, path, { rules: [] });
  });
});

describe('access', () => {
  it('read:market reads bars and the _market events; a portfolio key gets 403; rules need admin', async () => {
    const q = `AAA?tf=1m&from=${t0}&to=${t0 + 2 * min}`;
    expect((await bars(q, MARKET, keyed.url)).status).toBe(200);
    expect((await bars(q, ADMIN, keyed.url)).status).toBe(200);
    const denied = await bars(q, READER, keyed.url);
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toMatch(/read:market/);
    expect((await bars(q, undefined, keyed.url)).status).toBe(401);
    const events = '/api/v1/portfolios/{id}/events';
    expect((await call('GET', events, '/api/v1/portfolios/_market/events', undefined, MARKET, keyed.url)).status).toBe(200);
    expect((await call('GET', events, '/api/v1/portfolios/_market/events', undefined, READER, keyed.url)).status).toBe(403);
    const rules = '/api/v1/market/alerts';
    expect((await call('GET', rules, rules, undefined, MARKET, keyed.url)).status).toBe(403);
    expect((await call('PUT', rules, rules, { rules: [] }, MARKET, keyed.url)).status).toBe(403);
    expect((await call('GET', rules, rules, undefined, ADMIN, keyed.url)).status).toBe(200);
  });

  it('a server without a market service answers the market routes 404', async () => {
    const bare = await startServer(h.engine, { port: 0, log: null });
    try {
      const r = await bars(`AAA?tf=1m&from=${t0}`, undefined, bare.url);
      expect(r.status).toBe(404);
      expect(r.body.error.message).toMatch(/not enabled/);
      expect((await call('GET', '/api/v1/market/alerts', '/api/v1/market/alerts', undefined, undefined, bare.url)).status).toBe(404);
    } finally {
      await bare.close();
    }
  });

  it('every market route was exercised against the OpenAPI document', () => {
    for (const r of marketRoutes) expect(checked.has(`${r.method} ${r.template}`), `${r.method} ${r.template}`).toBe(true);
  });
});
