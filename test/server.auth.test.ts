// Proves access control and limits against a real server and engine:
// - keys: 401 without or with a wrong key (also when the key is put in the query string), public
//   routes open; WebSocket auth by Authorization header or by the `mtm.bearer.<key>` sub-protocol
//   (the server selects `mtm.v1`);
// - scopes: read/trade/feed/admin with globs; a portfolio outside the key's scopes gets exactly the
//   answer of a missing one (HTTP 404, WS error, compat upgrade 404); visible-but-not-allowed is 403;
//   listing shows only visible portfolios;
// - secure by default: without keys a non-loopback host is refused unless insecure;
// - rate limits: HTTP 429 + Retry-After, WS rate_limited + retry_after_ms, connection attempts 429;
//   connectionsMax; subscriptionsPerConnectionMax (a 100k-portfolio subscribe is refused whole);
//   too many bad frames close the socket with 1008; an oversize frame closes it (1009).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../src/server/server.js';
import { TestSocket, http, isType, sleep, startHarness, type Harness } from './support/serverHarness.js';

const keys = [
  { key: 'admin-key-0123456789', name: 'admin', scopes: ['admin'] },
  { key: 'reader-key-0123456789', name: 'reader', scopes: ['read:desk-*'] },
  { key: 'trader-key-0123456789', name: 'trader', scopes: ['read:desk-1', 'trade:desk-1'] },
  { key: 'tronly-key-0123456789', name: 'tradeonly', scopes: ['trade:desk-2'] },
  { key: 'feeder-key-0123456789', name: 'feeder', scopes: ['feed'] },
];
const [ADMIN, READER, TRADER, TRONLY, FEEDER] = keys.map((k) => k.key);

let h: Harness;
let limited: RunningServer;
const get = (path: string, key?: string) => http(h.url, 'GET', path, undefined, key);
const post = (path: string, body: unknown, key?: string) => http(h.url, 'POST', path, body, key);

beforeAll(async () => {
  h = await startHarness({ keys, limits: { commandsPerSecond: 100_000, connectsPerSecond: 100_000 } });
  for (const id of ['desk-1', 'desk-2', 'other-1']) expect((await post('/api/v1/portfolios', { id, cash: 1000 }, ADMIN)).status).toBe(201);
  limited = await startServer(h.engine, {
    port: 0,
    keys,
    log: null,
    limits: { commandsPerSecond: 5, connectsPerSecond: 2, connectionsMax: 6, badFramesMax: 3, subscriptionsPerConnectionMax: 2, maxPayloadBytes: 4096 },
  });
});
afterAll(async () => {
  await limited?.close();
  await h?.close();
});

describe('authentication', () => {
  it('requires a valid key on the API, not on the public routes', async () => {
    const none = await get('/api/v1/portfolios');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('unauthorized');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await get('/api/v1/portfolios', 'wrong-key-0123456789')).status).toBe(401);
    expect((await get('/api/v1/portfolios', READER.slice(0, -1))).status).toBe(401);
    expect((await get(`/api/v1/portfolios?key=${READER}`)).status).toBe(401);
    expect((await http(h.url, 'GET', '/api/v1/portfolios', undefined, undefined, { Authorization: `Basic ${READER}` })).status).toBe(401);
    for (const p of ['/health', '/ready', '/openapi.json', '/asyncapi.json']) expect((await get(p)).status).toBe(200);
  });

  it('WebSocket: key in the Authorization header or the mtm.bearer sub-protocol; never in the URL', async () => {
    expect((await TestSocket.refused(h.wsUrl + '/ws')).status).toBe(401);
    expect((await TestSocket.refused(`${h.wsUrl}/ws?key=${READER}`)).status).toBe(401);
    const byHeader = await TestSocket.open(h.wsUrl + '/ws', { key: READER });
    expect(byHeader.ws.protocol).toBe('mtm.v1');
    const byProtocol = await TestSocket.open(h.wsUrl + '/ws', { protocols: ['mtm.v1', `mtm.bearer.${READER}`] });
    expect(byProtocol.ws.protocol).toBe('mtm.v1');
    byProtocol.send({ op: 'subscribe', portfolios: ['desk-1'] });
    expect((await byProtocol.next(isType('snapshot'))).portfolio_id).toBe('desk-1');
    expect((await TestSocket.refused(h.wsUrl + '/ws', { protocols: ['mtm.v1', 'mtm.bearer.wrong-key-0123456789'] })).status).toBe(401);
    await byHeader.close();
    await byProtocol.close();
  });
});

describe('scopes', () => {
  it('out of scope is answered exactly like missing; visible but not allowed is 403', async () => {
    const hidden = await get('/api/v1/portfolios/other-1', READER);
    const missing = await get('/api/v1/portfolios/zzz-1', READER);
    expect(hidden.status).toBe(404);
    expect(hidden.body).toEqual({ error: { code: 'portfolio_not_found', message: "portfolio 'other-1' not found" } });
    expect(JSON.stringify(hidden.body).replace('other-1', 'X')).toBe(JSON.stringify(missing.body).replace('zzz-1', 'X'));
    expect(hidden.headers.get('content-type')).toBe(missing.headers.get('content-type'));
    for (const path of ['/api/v1/portfolios/other-1/events', '/api/v1/portfolios/other-1/pause']) {
      const r = path.endsWith('pause') ? await post(path, undefined, TRADER) : await get(path, READER);
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('portfolio_not_found');
    }
    const trade = { trade_id: 'sc-1', symbol: 'AAA', side: 'buy', quantity: 1, price: 10 };
    expect((await post('/api/v1/portfolios/desk-2/trades', trade, TRADER)).status).toBe(404);
    const readOnly = await post('/api/v1/portfolios/desk-1/trades', trade, READER);
    expect(readOnly.status).toBe(403);
    expect(readOnly.body.error.code).toBe('forbidden');
    expect((await get('/api/v1/portfolios/desk-2', TRONLY)).status).toBe(403);
    expect((await post('/api/v1/portfolios/desk-2/trades', { ...trade, trade_id: 'sc-2' }, TRONLY)).status).toBe(201);
    expect((await post('/api/v1/portfolios/desk-1/trades', { ...trade, trade_id: 'sc-3' }, TRADER)).status).toBe(201);
    expect((await post('/api/v1/portfolios', { id: 'desk-9' }, TRADER)).status).toBe(403);
    expect((await http(h.url, 'DELETE', '/api/v1/portfolios/desk-1', undefined, TRADER)).status).toBe(403);
    expect((await post('/api/v1/ticks', [{ symbol: 'AAA', price: 1 }], READER)).status).toBe(403);
    expect((await post('/api/v1/ticks', [{ symbol: 'AAA', price: 1 }], FEEDER)).status).toBe(202);
    // The state was not changed by the refused requests.
    const desk1 = await get('/api/v1/portfolios/desk-1', ADMIN);
    expect(desk1.body.state).toBe('active');
    expect(desk1.body.positions).toHaveLength(1);
  });

  it('lists only the portfolios the key can see', async () => {
    const ids = (await get('/api/v1/portfolios', READER)).body.portfolios.map((p: { id: string }) => p.id);
    expect(ids).toEqual(['desk-1', 'desk-2']);
    expect((await get('/api/v1/portfolios', TRADER)).body.portfolios.map((p: { id: string }) => p.id)).toEqual(['desk-1']);
    expect((await get('/api/v1/portfolios', FEEDER)).body.portfolios).toEqual([]);
  });

  it('WebSocket subscriptions, trades, events and the compat path follow the same rules', async () => {
    const s = await TestSocket.open(h.wsUrl + '/ws', { key: READER });
    s.send({ op: 'subscribe', id: 1, portfolios: ['other-1', 'zzz-1', 'desk-2'] });
    const e1 = await s.next(isType('error'));
    const e2 = await s.next(isType('error'));
    expect(e1).toEqual({ type: 'error', code: 'portfolio_not_found', message: "portfolio 'other-1' not found", id: 1, portfolio: 'other-1' });
    expect(JSON.stringify(e1).replaceAll('other-1', 'X')).toBe(JSON.stringify(e2).replaceAll('zzz-1', 'X'));
    expect((await s.next(isType('subscribed'))).portfolios).toEqual(['desk-2']);
    s.send({ op: 'trade', id: 't', portfolio: 'desk-2', trade: { trade_id: 'w', symbol: 'A', side: 'buy', quantity: 1, price: 1 } });
    expect(await s.next(isType('error', (m) => m.id === 't'))).toMatchObject({ code: 'forbidden' });
    s.send({ op: 'subscribe_events', id: 'ev' });
    await s.next(isType('events_subscribed'));
    await post('/api/v1/portfolios/other-1/cash', { type: 'deposit', amount: 1 }, ADMIN);
    await post('/api/v1/portfolios/desk-1/cash', { type: 'deposit', amount: 1 }, ADMIN);
    const ev = await s.next(isType('event'));
    expect(ev.event.portfolio_id).toBe('desk-1');
    expect(s.all(isType('event')).some((m) => m.event.portfolio_id === 'other-1')).toBe(false);
    await s.close();
    const tronly = await TestSocket.open(h.wsUrl + '/ws', { key: TRONLY });
    tronly.send({ op: 'subscribe', portfolios: ['desk-2'] });
    expect(await tronly.next(isType('error'))).toMatchObject({ code: 'forbidden', portfolio: 'desk-2' });
    await tronly.close();
    const hiddenCompat = await TestSocket.refused(h.wsUrl + '/ws/realtime/positions/other-1', { key: READER });
    const missingCompat = await TestSocket.refused(h.wsUrl + '/ws/realtime/positions/zzz-1', { key: READER });
    expect(hiddenCompat.status).toBe(404);
    expect(JSON.stringify(hiddenCompat.body).replace('other-1', 'X')).toBe(JSON.stringify(missingCompat.body).replace('zzz-1', 'X'));
    expect((await TestSocket.refused(h.wsUrl + '/ws/feed', { key: READER })).status).toBe(403);
    const feed = await TestSocket.open(h.wsUrl + '/ws/feed', { key: FEEDER });
    await feed.close();
  });
});

describe('secure by default', () => {
  it('refuses a non-loopback host without keys unless insecure', async () => {
    await expect(startServer(h.engine, { port: 0, host: '0.0.0.0', log: null })).rejects.toThrow(/non-loopback/);
    const insecure = await startServer(h.engine, { port: 0, host: '0.0.0.0', insecure: true, log: null });
    expect((await fetch(`http://127.0.0.1:${insecure.port}/health`)).status).toBe(200);
    await insecure.close();
    const withKeys = await startServer(h.engine, { port: 0, host: '0.0.0.0', keys, log: null });
    expect((await fetch(`http://127.0.0.1:${withKeys.port}/api/v1/portfolios`)).status).toBe(401);
    await withKeys.close();
    const loopback = await startServer(h.engine, { port: 0, log: null });
    expect(loopback.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await loopback.close();
  });
});

describe('limits', () => {
  it('rate-limits HTTP commands per key with 429 and Retry-After', async () => {
    const answers = [];
    for (let i = 0; i < 14; i++) answers.push(await http(limited.url, 'GET', '/api/v1/portfolios', undefined, READER));
    const limitedAnswers = answers.filter((a) => a.status === 429);
    expect(limitedAnswers.length).toBeGreaterThan(0);
    expect(limitedAnswers[0].body.error.code).toBe('rate_limited');
    expect(Number(limitedAnswers[0].headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await http(limited.url, 'GET', '/api/v1/portfolios', undefined, TRADER)).status).toBe(200); // other key, own bucket
    expect((await http(limited.url, 'GET', '/health')).status).toBe(200);
  });

  it('rate-limits WS ops and connection attempts', async () => {
    const s = await TestSocket.open(limited.url.replace('http', 'ws') + '/ws', { key: TRADER });
    for (let i = 0; i < 30; i++) s.send({ op: 'ping', id: i });
    const err = await s.next(isType('error', (m) => m.code === 'rate_limited'));
    expect(err.retry_after_ms).toBeGreaterThan(0);
    expect(s.all(isType('pong')).length).toBeLessThan(30);
    expect(s.closeCode).toBeNull();
    await s.close();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      try {
        const c = await TestSocket.open(limited.url.replace('http', 'ws') + '/ws', { key: FEEDER });
        statuses.push(101);
        await c.close();
      } catch (e) {
        statuses.push((e as { status: number }).status);
      }
    }
    expect(statuses).toContain(429);
    expect(limited.stats().rateLimited).toBeGreaterThan(0);
  });

  it('caps subscriptions per connection; a 100k-portfolio subscribe is refused whole', async () => {
    // Within maxPayloadBytes: refused by its length with limit_exceeded, nothing subscribed, connection kept.
    const roomy = await startServer(h.engine, { port: 0, keys, log: null, limits: { maxPayloadBytes: 4 * 1024 * 1024 } });
    try {
      const r = await TestSocket.open(roomy.url.replace('http', 'ws') + '/ws', { key: ADMIN });
      r.send({ op: 'subscribe', id: 'big', portfolios: Array.from({ length: 100_000 }, (_, i) => `p${i}`) });
      expect(await r.next(isType('error'))).toMatchObject({ id: 'big', code: 'limit_exceeded', field: 'portfolios' });
      expect(roomy.stats().subscriptions).toBe(0);
      r.send({ op: 'ping', id: 'still-here' });
      expect((await r.next(isType('pong'))).id).toBe('still-here');
      await r.close();
    } finally {
      await roomy.close();
    }
    await sleep(1100); // let the admin key's connect bucket refill
    const s = await TestSocket.open(limited.url.replace('http', 'ws') + '/ws', { key: ADMIN });
    s.send({ op: 'subscribe', id: 'big', portfolios: Array.from({ length: 100_000 }, (_, i) => `p${i}`) });
    // Over maxPayloadBytes (4 KiB) on this server: uWS closes the socket (1009).
    expect([1009, 1006]).toContain(await s.closed);
    await sleep(600);
    const t = await TestSocket.open(limited.url.replace('http', 'ws') + '/ws', { key: ADMIN });
    t.send({ op: 'subscribe', id: 'three', portfolios: ['desk-1', 'desk-2', 'other-1'] });
    expect(await t.next(isType('error'))).toMatchObject({ id: 'three', code: 'limit_exceeded' });
    t.send({ op: 'subscribe', id: 'two', portfolios: ['desk-1', 'desk-2'] });
    expect((await t.next(isType('subscribed'))).portfolios).toEqual(['desk-1', 'desk-2']);
    t.send({ op: 'subscribe', id: 'more', portfolios: ['other-1'] });
    expect(await t.next(isType('error'))).toMatchObject({ id: 'more', code: 'limit_exceeded' });
    await t.close();
  });

  it('closes a socket that keeps sending garbage with 1008', async () => {
    await sleep(1100);
    const s = await TestSocket.open(limited.url.replace('http', 'ws') + '/ws', { key: ADMIN });
    for (let i = 0; i < 6; i++) s.send(`garbage ${i}`);
    expect(await s.closed).toBe(1008);
    expect(s.all(isType('error')).length).toBeGreaterThanOrEqual(3);
    expect(limited.stats().badFrameDisconnects).toBeGreaterThan(0);
  });

  it('refuses connections past connectionsMax', async () => {
    await sleep(1100);
    const open: TestSocket[] = [];
    let refusedStatus = 0;
    for (let i = 0; i < 10 && refusedStatus === 0; i++) {
      const key = [ADMIN, READER, TRADER, TRONLY, FEEDER][i % 5];
      try {
        open.push(await TestSocket.open(limited.url.replace('http', 'ws') + (key === FEEDER ? '/ws/feed' : '/ws'), { key }));
      } catch (e) {
        refusedStatus = (e as { status: number }).status;
      }
    }
    expect(refusedStatus).toBe(429);
    expect(open.length).toBeLessThanOrEqual(6);
    await Promise.all(open.map((s) => s.close()));
  });
});
