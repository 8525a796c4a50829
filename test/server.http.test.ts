// Proves every HTTP route against a real server and a real (persistent) engine:
// health/ready/metrics/static files, create/list (paged)/get (and as_of)/close, trades (201 after commit, 200 with the first
// result for a repeated trade_id), cash, pause/resume, limits, events (type/from/to/after_seq/limit),
// ticks (partial acceptance by index); every error is {"error":{code,message}} with the table's status;
// bad input (wrong types, Infinity, negative numbers, malformed JSON, unknown routes, oversize bodies
// whether announced by Content-Length or streamed) is refused and changes nothing; the server counts
// requests by route template and status class.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { http, startHarness, type Harness } from './support/serverHarness.js';
import { startServer } from '../src/server/server.js';

let h: Harness;
const get = (path: string) => http(h.url, 'GET', path);
const post = (path: string, body?: unknown) => http(h.url, 'POST', path, body);

beforeAll(async () => {
  h = await startHarness({ limits: { maxBodyBytes: 64 * 1024, commandsPerSecond: 100_000 } }, { persistent: true });
});
afterAll(async () => {
  await h?.close();
});

function expectError(r: { status: number; body: any }, status: number, code: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body).toMatchObject({ error: { code } });
  expect(typeof r.body.error.message).toBe('string');
}

describe('liveness and readiness', () => {
  it('GET /health says which uWS binary and kernel run', async () => {
    const r = await get('/health');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ok', uws_binary: 'native' });
    expect(['wasm', 'js']).toContain(r.body.kernel);
    expect(h.server.uwsBinary).toBe('native');
  });

  it('GET /metrics serves the metrics source when one is given (404 otherwise)', async () => {
    expect((await get('/metrics')).status).toBe(404);
    const withMetrics = await startServer(h.engine, { port: 0, log: null, metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'mtm_up 1\n' }) });
    try {
      const r = await fetch(withMetrics.url + '/metrics');
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4');
      expect(await r.text()).toBe('mtm_up 1\n');
    } finally {
      await withMetrics.close();
    }
  });

  it('serves static files from staticDir, never outside it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtm-static-'));
    writeFileSync(join(dir, 'index.html'), '<h1>mtm</h1>');
    const s = await startServer(h.engine, { port: 0, log: null, staticDir: dir });
    try {
      const index = await fetch(s.url + '/');
      expect(index.status).toBe(200);
      expect(index.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await index.text()).toBe('<h1>mtm</h1>');
      expect((await fetch(s.url + '/missing.js')).status).toBe(404);
      expect((await fetch(s.url + '/..%2F..%2Fetc%2Fpasswd')).status).toBe(404);
      expect((await fetch(s.url + '/api/v1/nothing')).status).toBe(404);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GET /ready is 200 while running', async () => {
    const r = await get('/ready');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ ready: true });
  });
});

describe('portfolios', () => {
  it('creates with and without an id, refuses duplicates and bad bodies', async () => {
    const a = await post('/api/v1/portfolios', { id: 'http-a', name: 'A', cash: 10_000 });
    expect(a.status).toBe(201);
    expect(a.headers.get('location')).toBe('/api/v1/portfolios/http-a');
    expect(a.body).toMatchObject({ portfolio_id: 'http-a', name: 'A', cash: 10_000, state: 'active', positions: [] });
    const gen = await post('/api/v1/portfolios');
    expect(gen.status).toBe(201);
    expect(typeof gen.body.portfolio_id).toBe('string');
    expectError(await post('/api/v1/portfolios', { id: 'http-a' }), 409, 'portfolio_exists');
    expectError(await post('/api/v1/portfolios', { id: 'bad id' }), 400, 'invalid_id');
    expectError(await post('/api/v1/portfolios', { cash: -1 }), 400, 'invalid_amount');
    expectError(await post('/api/v1/portfolios', { cash: '5' }), 400, 'invalid_amount');
    expectError(await post('/api/v1/portfolios', '{"cash": 1e400}'), 400, 'invalid_amount'); // Infinity
    expectError(await post('/api/v1/portfolios', { limits: { max_loss: -5 } }), 400, 'invalid_limits');
    expectError(await post('/api/v1/portfolios', [1, 2]), 400, 'invalid_field');
    expectError(await post('/api/v1/portfolios', '{"id":'), 400, 'invalid_json');
    const err = await post('/api/v1/portfolios', { id: 'bad id' });
    expect(err.body.error.field).toBe('id');
  });

  it('lists ids, names and states, paged with limit and after', async () => {
    for (const id of ['list-1', 'list-2', 'list-3']) expect((await post('/api/v1/portfolios', { id, name: id })).status).toBe(201);
    const all = await get('/api/v1/portfolios?limit=1000');
    expect(all.status).toBe(200);
    const ids: string[] = all.body.portfolios.map((p: { id: string }) => p.id);
    expect(ids).toEqual([...ids].sort());
    expect(all.body.portfolios.find((p: { id: string }) => p.id === 'list-2')).toEqual({ id: 'list-2', name: 'list-2', state: 'active' });
    expect(all.body.next).toBeNull();
    const page1 = await get('/api/v1/portfolios?limit=2');
    expect(page1.body.portfolios).toHaveLength(2);
    expect(page1.body.next).toBe(page1.body.portfolios[1].id);
    const page2 = await get(`/api/v1/portfolios?limit=2&after=${encodeURIComponent(page1.body.next)}`);
    expect(page2.body.portfolios[0].id > page1.body.next).toBe(true);
    expectError(await get('/api/v1/portfolios?limit=0'), 400, 'invalid_field');
    expectError(await get('/api/v1/portfolios?limit=abc'), 400, 'invalid_field');
    expectError(await get('/api/v1/portfolios?limit=100000'), 400, 'invalid_field');
  });

  it('gets a snapshot, now and as_of a past instant; missing and invalid ids are the same 404', async () => {
    await post('/api/v1/portfolios', { id: 'asof', cash: 100 });
    const before = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    await post('/api/v1/portfolios/asof/cash', { type: 'deposit', amount: 50 });
    const now = await get('/api/v1/portfolios/asof');
    expect(now.status).toBe(200);
    expect(now.body.cash).toBe(150);
    const past = await get(`/api/v1/portfolios/asof?as_of=${new Date(before).toISOString()}`);
    expect(past.status, past.text).toBe(200);
    expect(past.body.cash).toBe(100);
    const pastMs = await get(`/api/v1/portfolios/asof?as_of=${before}`);
    expect(pastMs.body.cash).toBe(100);
    expectError(await get('/api/v1/portfolios/asof?as_of=yesterday'), 400, 'invalid_timestamp');
    const missing = await get('/api/v1/portfolios/nope');
    expectError(missing, 404, 'portfolio_not_found');
    expect(missing.body.error.message).toBe("portfolio 'nope' not found");
    expectError(await get('/api/v1/portfolios/%ZZ'), 404, 'not_found');
    expectError(await get('/api/v1/portfolios/bad%20id'), 404, 'portfolio_not_found');
  });
});

describe('trading and commands', () => {
  beforeAll(async () => {
    expect((await post('/api/v1/portfolios', { id: 'trader', cash: 100_000 })).status).toBe(201);
  });

  it('applies a trade after the commit (201) and answers a repeated trade_id with the first result (200)', async () => {
    const t = { trade_id: 'T-1', symbol: 'AAPL', side: 'buy', quantity: 10, price: 100, fee: 1 };
    const first = await post('/api/v1/portfolios/trader/trades', t);
    expect(first.status, first.text).toBe(201);
    expect(first.body).toMatchObject({ trade_id: 'T-1', portfolio_id: 'trader', applied: true, position: { symbol: 'AAPL', quantity: 10 } });
    expect(first.body.totals.cash).toBeCloseTo(100_000 - 1000 - 1);
    const again = await post('/api/v1/portfolios/trader/trades', t);
    expect(again.status).toBe(200);
    expect(again.body.applied).toBe(false);
    expect(again.body.position).toEqual(first.body.position);
    const snap = await get('/api/v1/portfolios/trader');
    expect(snap.body.positions).toHaveLength(1);
  });

  it('refuses bad trades and applies none of them', async () => {
    const before = (await get('/api/v1/portfolios/trader')).body;
    const base = { trade_id: 'T-bad', symbol: 'AAPL', side: 'buy', quantity: 1, price: 100 };
    expectError(await post('/api/v1/portfolios/trader/trades', { ...base, quantity: '1' }), 400, 'invalid_quantity');
    expectError(await post('/api/v1/portfolios/trader/trades', { ...base, quantity: -1 }), 400, 'invalid_quantity');
    expectError(await post('/api/v1/portfolios/trader/trades', { ...base, price: 0 }), 400, 'invalid_price');
    expectError(await post('/api/v1/portfolios/trader/trades', JSON.stringify({ ...base, price: 1 }).replace('"price":1', '"price":1e999')), 400, 'invalid_price');
    expectError(await post('/api/v1/portfolios/trader/trades', { ...base, side: 'hold' }), 400, 'invalid_side');
    expectError(await post('/api/v1/portfolios/trader/trades', { ...base, symbol: 'bad symbol!' }), 400, 'invalid_symbol');
    expectError(await post('/api/v1/portfolios/trader/trades', { ...base, trade_id: '' }), 400, 'invalid_id');
    expectError(await post('/api/v1/portfolios/trader/trades', { ...base, fee: -1 }), 400, 'invalid_fee');
    expectError(await post('/api/v1/portfolios/trader/trades', { ...base, ts: 1.5 }), 400, 'invalid_timestamp');
    expectError(await post('/api/v1/portfolios/trader/trades', 'not json'), 400, 'invalid_json');
    expectError(await post('/api/v1/portfolios/trader/trades'), 400, 'invalid_field');
    expectError(await post('/api/v1/portfolios/nope/trades', base), 404, 'portfolio_not_found');
    const after = (await get('/api/v1/portfolios/trader')).body;
    expect(after.positions).toEqual(before.positions);
    expect(after.cash).toBe(before.cash);
  });

  it('deposits and withdraws cash, refuses overdrafts', async () => {
    const d = await post('/api/v1/portfolios/trader/cash', { type: 'deposit', amount: 500 });
    expect(d.status).toBe(200);
    const w = await post('/api/v1/portfolios/trader/cash', { type: 'withdraw', amount: 200 });
    expect(w.status).toBe(200);
    expect(w.body.cash).toBeCloseTo(d.body.cash - 200);
    expectError(await post('/api/v1/portfolios/trader/cash', { type: 'withdraw', amount: 1e12 }), 409, 'insufficient_cash');
    expectError(await post('/api/v1/portfolios/trader/cash', { type: 'steal', amount: 1 }), 400, 'invalid_field');
    expectError(await post('/api/v1/portfolios/trader/cash', { type: 'deposit', amount: 0 }), 400, 'invalid_amount');
  });

  it('pauses and resumes; a paused portfolio refuses new exposure', async () => {
    const p = await post('/api/v1/portfolios/trader/pause');
    expect(p.status).toBe(200);
    expect(p.body.state).toBe('paused');
    expectError(await post('/api/v1/portfolios/trader/trades', { trade_id: 'T-p', symbol: 'MSFT', side: 'buy', quantity: 1, price: 10 }), 409, 'portfolio_paused');
    expectError(await post('/api/v1/portfolios/trader/pause'), 409, 'portfolio_paused');
    const r = await post('/api/v1/portfolios/trader/resume');
    expect(r.status).toBe(200);
    expect(r.body.state).toBe('active');
    expectError(await post('/api/v1/portfolios/trader/resume'), 409, 'portfolio_not_paused');
  });

  it('sets limits', async () => {
    const r = await http(h.url, 'PUT', '/api/v1/portfolios/trader/limits', { max_loss: 5000, max_drawdown_pct: 50 });
    expect(r.status).toBe(200);
    expect(r.body.limits).toMatchObject({ max_loss: 5000, max_drawdown_pct: 50 });
    expectError(await http(h.url, 'PUT', '/api/v1/portfolios/trader/limits', { max_drawdown_pct: 101 }), 400, 'invalid_limits');
    expectError(await http(h.url, 'PUT', '/api/v1/portfolios/trader/limits', { nope: 1 }), 400, 'invalid_limits');
    expectError(await http(h.url, 'PUT', '/api/v1/portfolios/trader/limits', [1]), 400, 'invalid_limits');
  });

  it('serves the audit trail filtered by type, time and after_seq, paged by limit', async () => {
    await post('/api/v1/portfolios/trader/trades', { trade_id: 'T-2', symbol: 'MSFT', side: 'buy', quantity: 1, price: 10 });
    const all = await get('/api/v1/portfolios/trader/events?limit=1000');
    expect(all.status).toBe(200);
    const types = all.body.events.map((e: { type: string }) => e.type);
    expect(types).toContain('PortfolioCreated');
    expect(types).toContain('TradeExecuted');
    expect(all.body.events.every((e: { portfolio_id: string }) => e.portfolio_id === 'trader')).toBe(true);
    const seqs = all.body.events.map((e: { seq: number }) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a: number, b: number) => a - b));
    const trades = await get('/api/v1/portfolios/trader/events?type=TradeExecuted');
    expect(trades.body.events.map((e: { trade_id: string }) => e.trade_id)).toEqual(['T-1', 'T-2']);
    const page = await get('/api/v1/portfolios/trader/events?limit=2');
    expect(page.body.events).toHaveLength(2);
    expect(page.body.next_after_seq).toBe(page.body.events[1].seq);
    const rest = await get(`/api/v1/portfolios/trader/events?after_seq=${page.body.next_after_seq}&limit=1000`);
    expect(rest.body.events[0].seq).toBeGreaterThan(page.body.next_after_seq);
    expect(page.body.events.length + rest.body.events.length).toBe(all.body.events.length);
    const future = await get(`/api/v1/portfolios/trader/events?from=${new Date(Date.now() + 3_600_000).toISOString()}`);
    expect(future.body.events).toEqual([]);
    const upToNow = await get(`/api/v1/portfolios/trader/events?to=${Date.now() + 1000}&limit=1000`);
    expect(upToNow.body.events.length).toBe(all.body.events.length);
    expectError(await get('/api/v1/portfolios/trader/events?type=Nope'), 400, 'invalid_field');
    expectError(await get('/api/v1/portfolios/trader/events?from=soon'), 400, 'invalid_timestamp');
    expectError(await get('/api/v1/portfolios/trader/events?after_seq=-1'), 400, 'invalid_field');
    expectError(await get('/api/v1/portfolios/nope/events'), 404, 'portfolio_not_found');
  });

  it('ingests ticks: bad ones rejected by index, the rest applied', async () => {
    const r = await post('/api/v1/ticks', [
      { symbol: 'AAPL', price: 123 },
      { symbol: 'AAPL', price: -1 },
      { symbol: 'bad symbol', price: 1 },
      'garbage',
      { symbol: 'MSFT', price: 11, ts: Date.now(), size: 5 },
      { symbol: 'MSFT', price: 11, size: -5 },
    ]);
    expect(r.status).toBe(202);
    expect(r.body.accepted).toBe(2);
    expect(r.body.rejected.map((x: { index: number }) => x.index)).toEqual([1, 2, 3, 5]);
    expect(r.body.rejected[0].code).toBe('invalid_price');
    await h.engine.drain();
    const snap = await get('/api/v1/portfolios/trader');
    expect(snap.body.positions.find((p: { symbol: string }) => p.symbol === 'AAPL').last_price).toBe(123);
    expectError(await post('/api/v1/ticks', { symbol: 'AAPL', price: 1 }), 400, 'invalid_field');
    expectError(await post('/api/v1/ticks', new Array(10_001).fill(0)), 413, 'payload_too_large');
  });

  it('closes a portfolio; a closed portfolio refuses trades', async () => {
    await post('/api/v1/portfolios', { id: 'to-close', cash: 10 });
    const c = await http(h.url, 'DELETE', '/api/v1/portfolios/to-close');
    expect(c.status).toBe(200);
    expect(c.body.state).toBe('closed');
    expectError(await post('/api/v1/portfolios/to-close/trades', { trade_id: 'x', symbol: 'A', side: 'buy', quantity: 1, price: 1 }), 409, 'portfolio_closed');
    expectError(await http(h.url, 'DELETE', '/api/v1/portfolios/nope'), 404, 'portfolio_not_found');
  });
});

describe('bad requests', () => {
  it('unknown paths and methods are 404 not_found (with Allow for a known path)', async () => {
    expectError(await get('/nope'), 404, 'not_found');
    expectError(await get('/api/v2/portfolios'), 404, 'not_found');
    const m = await http(h.url, 'PATCH', '/api/v1/portfolios/trader');
    expectError(m, 404, 'not_found');
    expect(m.headers.get('allow')).toBe('GET, DELETE');
  });

  it('refuses a body over maxBodyBytes by Content-Length with 413 and closes the connection', async () => {
    const r = await post('/api/v1/portfolios', JSON.stringify({ name: 'x'.repeat(100 * 1024) }));
    expectError(r, 413, 'payload_too_large');
  });

  it('refuses a streamed (chunked) body once it passes maxBodyBytes', async () => {
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(h.url + '/api/v1/portfolios', { method: 'POST', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      const chunk = 'x'.repeat(16 * 1024);
      let sent = 0;
      const pump = (): void => {
        while (sent < 20 && !req.destroyed) {
          sent++;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    }).catch((e: Error) => ({ status: -1, body: e.message }));
    // Either the 413 arrives, or the server closed the connection while the client was still writing.
    if (status.status !== -1) {
      expect(status.status).toBe(413);
      expect(JSON.parse(status.body).error.code).toBe('payload_too_large');
    }
    expect((await get('/health')).status).toBe(200);
  });

  it('counts requests by route template and status class', async () => {
    const s = h.server.stats();
    const byKey = new Map(s.http.map((x) => [`${x.method} ${x.route} ${x.statusClass}`, x]));
    expect(byKey.get('GET /api/v1/portfolios/{id} 2xx')?.count).toBeGreaterThan(0);
    expect(byKey.get('GET /api/v1/portfolios/{id} 4xx')?.count).toBeGreaterThan(0);
    expect(byKey.get('POST /api/v1/portfolios/{id}/trades 2xx')?.count).toBeGreaterThan(0);
    expect(byKey.get('GET unmatched 4xx')?.count).toBeGreaterThan(0);
    const one = byKey.get('GET /health 2xx')!;
    expect(one.latencyBucketCounts.reduce((a, b) => a + b, 0)).toBe(one.count);
    expect(s.http.every((x) => !x.route.includes('trader'))).toBe(true);
  });
});
