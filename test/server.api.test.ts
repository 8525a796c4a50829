// Proves that the published API descriptions match what the server really does:
// - GET /openapi.json (OpenAPI 3.1) documents every route the router serves, and every real answer of
//   every route (successes and errors) validates against the schema documented for its status;
// - GET /asyncapi.json (AsyncAPI 3.0) documents the three WebSocket channels, and every real frame the
//   server sends (main, compat, feed) validates against its message's payload schema, as do the client
//   ops the tests send. Validation uses test/support/serverSchema.ts (a JSON Schema subset).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../src/server/http.js';
import { TestSocket, http, isType, startHarness, until, type Harness } from './support/serverHarness.js';
import { validate } from './support/serverSchema.js';

let h: Harness;
let openapi: any;
let asyncapi: any;

beforeAll(async () => {
  h = await startHarness({ limits: { commandsPerSecond: 100_000 } }, { persistent: true });
  openapi = (await http(h.url, 'GET', '/openapi.json')).body;
  asyncapi = (await http(h.url, 'GET', '/asyncapi.json')).body;
});
afterAll(async () => {
  await h?.close();
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
async function call(method: string, template: string, path: string, body?: unknown): Promise<any> {
  const r = await http(h.url, method, path, body);
  const errors = validate(openapi, responseSchema(template, method, r.status) as never, r.body);
  expect(errors, `${method} ${path} -> ${r.status}: ${r.text.slice(0, 300)}`).toEqual([]);
  checked.add(`${method} ${template}`);
  return r;
}

describe('OpenAPI', () => {
  it('is OpenAPI 3.1 and documents every route of the router', () => {
    expect(openapi.openapi).toBe('3.1.0');
    for (const r of routes) expect(openapi.paths[r.template]?.[r.method.toLowerCase()], `${r.method} ${r.template}`).toBeDefined();
    const documented = Object.entries(openapi.paths).flatMap(([p, ops]: [string, any]) =>
      Object.keys(ops)
        .filter((k) => k !== 'parameters')
        .map((m) => `${m.toUpperCase()} ${p}`),
    );
    expect(documented.sort()).toEqual(routes.map((r) => `${r.method} ${r.template}`).sort());
  });

  it('every real answer validates against the documented schema of its status', async () => {
    const P = '/api/v1/portfolios/{id}';
    await call('GET', '/health', '/health');
    await call('GET', '/ready', '/ready');
    await call('GET', '/openapi.json', '/openapi.json');
    await call('GET', '/asyncapi.json', '/asyncapi.json');
    await call('POST', '/api/v1/portfolios', '/api/v1/portfolios', { id: 'oa', name: 'OA', cash: 1000, limits: { max_loss: 500 } });
    await call('POST', '/api/v1/portfolios', '/api/v1/portfolios', { id: 'oa' });
    await call('POST', '/api/v1/portfolios', '/api/v1/portfolios', { cash: -1 });
    await call('GET', '/api/v1/portfolios', '/api/v1/portfolios?limit=1');
    await call('GET', '/api/v1/portfolios', '/api/v1/portfolios?limit=0');
    await call('GET', P, '/api/v1/portfolios/oa');
    await call('GET', P, `/api/v1/portfolios/oa?as_of=${Date.now()}`);
    await call('GET', P, '/api/v1/portfolios/oa?as_of=x');
    await call('GET', P, '/api/v1/portfolios/nope');
    const trade = { trade_id: 'oa-1', symbol: 'OA', side: 'buy', quantity: 2, price: 10 };
    await call('POST', `${P}/trades`, '/api/v1/portfolios/oa/trades', trade);
    await call('POST', `${P}/trades`, '/api/v1/portfolios/oa/trades', trade);
    await call('POST', `${P}/trades`, '/api/v1/portfolios/oa/trades', { ...trade, price: -1 });
    await call('POST', `${P}/trades`, '/api/v1/portfolios/nope/trades', trade);
    const L = '/api/v1/portfolios/{id}/positions/{symbol}/lots';
    await call('POST', '/api/v1/portfolios', '/api/v1/portfolios', { id: 'ol', cash: 1000, cost_basis_method: 'lifo', base_currency: 'EUR' });
    await call('POST', '/api/v1/portfolios', '/api/v1/portfolios', { id: 'ol2', cost_basis_method: 'hifo' });
    await call('POST', `${P}/trades`, '/api/v1/portfolios/ol/trades', { ...trade, trade_id: 'ol-1' });
    await call('POST', `${P}/trades`, '/api/v1/portfolios/ol/trades', { ...trade, trade_id: 'ol-2', side: 'sell', quantity: 1, lot_ids: ['ol-1'] });
    await call('POST', `${P}/trades`, '/api/v1/portfolios/ol/trades', { ...trade, trade_id: 'ol-3', side: 'sell', quantity: 1, lot_ids: ['zz'] });
    await call('POST', `${P}/trades`, '/api/v1/portfolios/ol/trades', { ...trade, trade_id: 'ol-4', symbol: 'SAP', currency: 'USD' });
    await call('POST', `${P}/trades`, '/api/v1/portfolios/ol/trades', { ...trade, trade_id: 'ol-5', symbol: 'SAP2', currency: 'USD', fx_rate: 0.9 });
    await call('GET', L, '/api/v1/portfolios/ol/positions/OA/lots');
    await call('GET', L, '/api/v1/portfolios/ol/positions/NONE/lots');
    await call('GET', L, '/api/v1/portfolios/nope/positions/OA/lots');
    await call('GET', P, '/api/v1/portfolios/ol?lots=true');
    await call('GET', P, '/api/v1/portfolios/ol?lots=maybe');
    await call('GET', `${P}/positions/{symbol}/lots`, '/api/v1/portfolios/oa/positions/OA/lots');
    await call('GET', `${P}/positions/{symbol}/lots`, '/api/v1/portfolios/oa/positions/NONE/lots');
    await call('GET', `${P}/positions/{symbol}/lots`, '/api/v1/portfolios/oa/positions/bad%20symbol/lots');
    await call('POST', `${P}/cash`, '/api/v1/portfolios/oa/cash', { type: 'deposit', amount: 5 });
    await call('POST', `${P}/cash`, '/api/v1/portfolios/oa/cash', { type: 'withdraw', amount: 1e9 });
    await call('POST', `${P}/cash`, '/api/v1/portfolios/oa/cash', { type: 'x' });
    await call('POST', `${P}/pause`, '/api/v1/portfolios/oa/pause');
    await call('POST', `${P}/pause`, '/api/v1/portfolios/oa/pause');
    await call('POST', `${P}/resume`, '/api/v1/portfolios/oa/resume');
    await call('POST', `${P}/resume`, '/api/v1/portfolios/nope/resume');
    await call('PUT', `${P}/limits`, '/api/v1/portfolios/oa/limits', { max_loss: null, max_drawdown_pct: 10 });
    await call('PUT', `${P}/limits`, '/api/v1/portfolios/oa/limits', { max_drawdown_pct: 1000 });
    await call('GET', `${P}/events`, '/api/v1/portfolios/oa/events?limit=1000');
    await call('GET', `${P}/events`, '/api/v1/portfolios/oa/events?type=TradeExecuted&from=2020-01-01T00:00:00Z');
    await call('GET', `${P}/events`, '/api/v1/portfolios/oa/events?type=nope');
    await call('POST', '/api/v1/ticks', '/api/v1/ticks', [{ symbol: 'OA', price: 11 }, { symbol: 'OA', price: 0 }]);
    await call('POST', '/api/v1/ticks', '/api/v1/ticks', {});
    await call('POST', '/api/v1/ticks', '/api/v1/ticks', new Array(10_001).fill(1));
    // Bulk import answers NDJSON (tested in trades.import.test.ts); a JSON body is refused with 415.
    await call('POST', '/api/v1/trades/import', '/api/v1/trades/import', [{ portfolio_id: 'oa', trade_id: 'imp', symbol: 'OA', side: 'buy', quantity: 1, price: 1 }]);
    // Suspect ticks: OA was last applied at 11; 40 moves it 264 % and is held, 1 too (-91 %).
    h.engine.ingestTicks([{ symbol: 'OA', price: 40 }]);
    await call('GET', '/api/v1/marks/suspect', '/api/v1/marks/suspect');
    await call('POST', '/api/v1/marks/{symbol}/confirm', '/api/v1/marks/OA/confirm');
    await call('POST', '/api/v1/marks/{symbol}/confirm', '/api/v1/marks/OA/confirm'); // nothing held now: 404
    await call('POST', '/api/v1/marks/{symbol}/confirm', '/api/v1/marks/NOPE/confirm'); // unknown symbol: 404
    h.engine.ingestTicks([{ symbol: 'OA', price: 1 }]);
    await call('POST', '/api/v1/marks/{symbol}/reject', '/api/v1/marks/OA/reject');
    await call('POST', '/api/v1/marks/{symbol}/reject', '/api/v1/marks/bad%20sym/reject'); // malformed: 400
    await call('GET', '/metrics', '/metrics'); // not enabled on this server: 404
    // Not enabled here either (404); test/metrics.performance.test.ts validates their 200 answers.
    await call('GET', '/api/v1/performance/summary', '/api/v1/performance/summary');
    await call('GET', '/api/v1/performance/queries', '/api/v1/performance/queries');
    // No market service on this server (404); test/market.api.test.ts validates their real answers.
    await call('GET', '/api/v1/bars/{symbol}', '/api/v1/bars/OA?tf=1m&from=0');
    await call('GET', '/api/v1/market/alerts', '/api/v1/market/alerts');
    await call('PUT', '/api/v1/market/alerts', '/api/v1/market/alerts', { rules: [] });
    const CA = '/api/v1/corporate-actions';
    const split = { action_id: 'oa-split', type: 'split', symbol: 'OA', from: 1, to: 2 };
    await call('POST', CA, CA, split);
    await call('POST', CA, CA, split);
    await call('POST', CA, CA, { ...split, action_id: 'oa-bad', from: 0 });
    await call('POST', CA, CA, { action_id: 'oa-div', type: 'dividend', symbol: 'OA', amount_per_share: 0.1, ex_ts: Date.now() + 3_600_000, pay_ts: Date.now() + 7_200_000 });
    await call('POST', CA, CA, { action_id: 'oa-ren', type: 'symbol_change', symbol: 'OB', new_symbol: 'OC', effective_ts: Date.now() + 3_600_000 });
    await call('GET', CA, `${CA}?limit=10`);
    await call('GET', CA, `${CA}?limit=0`);
    const I = '/api/v1/instruments/{symbol}';
    await call('PUT', I, '/api/v1/instruments/ES', { asset_class: 'future', currency: 'USD', multiplier: 50, tick_size: 0.25, description: 'E-mini S&P 500' });
    await call('PUT', I, '/api/v1/instruments/ES', { asset_class: 'swap', currency: 'USD', multiplier: 50 });
    await call('PUT', I, '/api/v1/instruments/OA', { asset_class: 'equity', currency: 'USD', multiplier: 10 }); // OA is held: 409 instrument_held
    await call('GET', I, '/api/v1/instruments/ES');
    await call('GET', I, '/api/v1/instruments/NONE');
    await call('GET', I, '/api/v1/instruments/bad%20sym');
    await call('GET', '/api/v1/instruments', '/api/v1/instruments');
    await call('POST', `${P}/trades`, '/api/v1/portfolios/oa/trades', { trade_id: 'oa-dry', symbol: 'ES', side: 'buy', quantity: 1, price: 10, dry_run: true });
    await call('POST', `${P}/trades`, '/api/v1/portfolios/oa/trades', { ...trade, dry_run: true }); // a used trade_id: 409
    const FX = '/api/v1/portfolios/{id}/fx-conversions';
    await call('POST', `${P}/cash`, '/api/v1/portfolios/oa/cash', { type: 'deposit', amount: 5, currency: 'EUR' }); // no EUR rate seen yet: 409 fx_rate_unknown
    await call('POST', FX, '/api/v1/portfolios/oa/fx-conversions', { from_currency: 'USD', to_currency: 'EUR', amount: 2, rate: 0.9 });
    await call('POST', FX, '/api/v1/portfolios/oa/fx-conversions', { from_currency: 'USD', to_currency: 'EUR', amount: 1e9, rate: 0.9 });
    await call('POST', FX, '/api/v1/portfolios/oa/fx-conversions', { from_currency: 'USD', to_currency: 'USD', amount: 1, rate: 1 });
    await call('POST', FX, '/api/v1/portfolios/nope/fx-conversions', { from_currency: 'USD', to_currency: 'EUR', amount: 1, rate: 1 });
    await call('DELETE', P, '/api/v1/portfolios/oa');
    await call('DELETE', P, '/api/v1/portfolios/nope');
    for (const r of routes) expect(checked.has(`${r.method} ${r.template}`), `${r.method} ${r.template} exercised`).toBe(true);
  });
});

describe('AsyncAPI', () => {
  const byType: Record<string, string> = {
    snapshot: 'Snapshot',
    update: 'Update',
    event: 'Event',
    ack: 'Ack',
    error: 'Error',
    pong: 'Pong',
    subscribed: 'Subscribed',
    unsubscribed: 'Unsubscribed',
    events_subscribed: 'EventsSubscribed',
    registered: 'Registered',
    feed_ack: 'FeedAck',
  };
  const sent = new Set<string>();
  function checkFrame(channel: string, m: any): void {
    if (Buffer.isBuffer(m)) {
      expect(asyncapi.channels[channel].messages.UpdateBinary).toBeDefined();
      return;
    }
    const name = channel === 'compat' ? 'CompatSnapshot' : byType[m.type];
    expect(name, `message type ${m.type}`).toBeDefined();
    expect(asyncapi.channels[channel].messages[name], `${name} on ${channel}`).toBeDefined();
    const errors = validate(asyncapi, asyncapi.components.messages[name].payload, m);
    expect(errors, `${channel} ${name}: ${JSON.stringify(m).slice(0, 300)}`).toEqual([]);
    sent.add(`${channel}:${name}`);
  }
  function op(s: TestSocket, name: string, value: unknown): void {
    expect(validate(asyncapi, asyncapi.components.messages[name].payload, value), `client op ${name}`).toEqual([]);
    s.send(value);
  }

  it('is AsyncAPI 3.0 with the three channels', () => {
    expect(asyncapi.asyncapi).toBe('3.0.0');
    expect(Object.values(asyncapi.channels).map((c: any) => c.address).sort()).toEqual(['/ws', '/ws/feed', '/ws/realtime/positions/{portfolio_id}']);
    for (const o of Object.values(asyncapi.operations) as any[]) {
      for (const m of o.messages) {
        const [, , channel, , name] = m.$ref.split('/');
        expect(asyncapi.channels[channel].messages[name], m.$ref).toBeDefined();
      }
    }
  });

  it('every frame the server sends validates against its documented payload', async () => {
    await http(h.url, 'POST', '/api/v1/portfolios', { id: 'aa', cash: 1000 });
    await http(h.url, 'POST', '/api/v1/portfolios/aa/trades', { trade_id: 'aa-1', symbol: 'AA', side: 'buy', quantity: 1, price: 10 });
    const s = await TestSocket.open(h.wsUrl + '/ws');
    op(s, 'Subscribe', { op: 'subscribe', id: 1, portfolios: ['aa', 'nope'] });
    op(s, 'Subscribe', { op: 'subscribe', id: 2, portfolios: ['aa'], encoding: 'binary', throttle_ms: 0 });
    await s.next(isType('snapshot', (m) => m.seq >= 0));
    op(s, 'SubscribeEvents', { op: 'subscribe_events', id: 3, types: ['TradeExecuted'] });
    await s.next(isType('events_subscribed'));
    op(s, 'Trade', { op: 'trade', id: 4, portfolio: 'aa', trade: { trade_id: 'aa-2', symbol: 'AA', side: 'buy', quantity: 1, price: 11 } });
    await until(() => s.all(isType('ack')).length === 1 && s.all(isType('event')).length === 1 && s.all((m) => Buffer.isBuffer(m)).length >= 1, 5000, 'ack, event and binary update');
    op(s, 'Resync', { op: 'resync', id: 5, portfolio: 'aa' });
    await s.next(isType('snapshot', (m) => m.resync));
    op(s, 'Ping', { op: 'ping', id: 6 });
    await s.next(isType('pong'));
    op(s, 'Unsubscribe', { op: 'unsubscribe', id: 7, portfolios: ['aa'] });
    await s.next(isType('unsubscribed'));
    op(s, 'UnsubscribeEvents', { op: 'unsubscribe_events', id: 8 });
    await s.next(isType('unsubscribed', (m) => m.id === 8));
    s.send('{bad');
    await s.next(isType('error', (m) => m.code === 'invalid_json'));
    const j = await TestSocket.open(h.wsUrl + '/ws');
    j.send({ op: 'subscribe', portfolios: ['aa'], throttle_ms: 10 });
    await j.next(isType('snapshot'));
    h.engine.ingestTicks([{ symbol: 'AA', price: 12, ts: Date.now() }]);
    await h.engine.drain();
    await j.next(isType('update'));
    for (const m of [...s.messages, ...j.messages]) checkFrame('main', m);
    await s.close();
    await j.close();

    const c = await TestSocket.open(h.wsUrl + '/ws/realtime/positions/aa');
    await c.next();
    h.engine.ingestTicks([{ symbol: 'AA', price: 13, ts: Date.now() }]);
    await h.engine.drain();
    await c.next((m) => m.positions[0].last_price === 13);
    for (const m of c.messages) checkFrame('compat', m);
    await c.close();

    const f = await TestSocket.open(h.wsUrl + '/ws/feed');
    op(f, 'FeedRegister', { op: 'register', symbols: ['AA', 'bad sym'] });
    await f.next(isType('registered'));
    op(f, 'FeedTicks', { op: 'ticks', ticks: [{ symbol: 'AA', price: 14, ts: Date.now() }] });
    await f.next(isType('feed_ack'));
    f.send({ op: 'ticks', ticks: [{ symbol: 'AA', price: -1, ts: Date.now() }] }); // refused by the schema and by the server
    await f.next(isType('feed_ack', (m) => m.rejected === 1));
    f.send(Buffer.from([1, 2, 3]));
    await f.next(isType('error'));
    for (const m of f.messages) checkFrame('feed', m);
    await f.close();

    for (const name of ['Snapshot', 'Update', 'Event', 'Ack', 'Error', 'Pong', 'Subscribed', 'Unsubscribed', 'EventsSubscribed']) expect(sent.has(`main:${name}`), name).toBe(true);
    for (const name of ['Registered', 'FeedAck', 'Error']) expect(sent.has(`feed:${name}`), name).toBe(true);
    expect(sent.has('compat:CompatSnapshot')).toBe(true);
  });
});
