// Proves the WebSocket protocols against a real server and engine with real clients (`ws` and the SDK):
// - /ws: subscribe (snapshot first, then updates carrying only changed positions, per-portfolio seq,
//   tick_ts), unsubscribe, resync, subscribe_events (with filters), trade (ack after commit, idempotent
//   repeat, errors carrying the request id), ping; refused portfolios get an error each, the rest work;
// - the binary encoding decodes to exactly the JSON update; throttle_ms conflates (fewer, merged
//   updates with from_seq whose merge reproduces the unthrottled view);
// - each update is serialized once however many sockets receive it (topics);
// - /ws/realtime/positions/{id}: a full snapshot on connect and after every change;
// - /ws/feed: JSON and binary registration and tick batches, per-batch feed_ack, bad ticks counted and
//   refused, the rest applied, malformed frames answered without dropping the connection;
// - the SDK: subscribe callbacks, full view, binary decoding, trade() promise, ping;
// - close(): sockets get 1001, the port stops accepting, close resolves.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeUpdate, encodeFeedRegister, encodeFeedTicks } from '../src/protocol/binary.js';
import { heldPositionsOf } from '../src/protocol/delta.js';
import { MtmClient, MtmError } from '../src/client/client.js';
import { MtmFeed } from '../src/client/feed.js';
import { applyUpdate } from '../src/protocol/view.js';
import type { PortfolioSnapshot } from '../src/domain/types.js';
import { TestSocket, http, isType, sleep, startHarness, until, type Harness } from './support/serverHarness.js';

let h: Harness;
const ws = (path = '/ws') => TestSocket.open(h.wsUrl + path);

async function portfolioWith(id: string, symbols: string[]): Promise<void> {
  expect((await http(h.url, 'POST', '/api/v1/portfolios', { id, cash: 1_000_000 })).status).toBe(201);
  for (const [i, symbol] of symbols.entries()) {
    const r = await http(h.url, 'POST', `/api/v1/portfolios/${id}/trades`, { trade_id: `${id}-${i}`, symbol, side: 'buy', quantity: 10, price: 100 });
    expect(r.status, r.text).toBe(201);
  }
}

async function tick(symbol: string, price: number): Promise<void> {
  const r = h.engine.ingestTicks([{ symbol, price, ts: Date.now() }]);
  expect(r.accepted).toBe(1);
  await h.engine.drain();
}

beforeAll(async () => {
  h = await startHarness({ limits: { commandsPerSecond: 100_000 } });
  await portfolioWith('ws-a', ['WSA1', 'WSA2']);
  await portfolioWith('ws-b', ['WSB1']);
});
afterAll(async () => {
  await h?.close();
});

describe('/ws main protocol', () => {
  it('subscribe: snapshot first, then updates with only the changed positions', async () => {
    const s = await ws();
    s.send({ op: 'subscribe', id: 1, portfolios: ['ws-a'] });
    expect(await s.next(isType('subscribed'))).toEqual({ type: 'subscribed', id: 1, portfolios: ['ws-a'] });
    const snap = await s.next(isType('snapshot'));
    expect(snap).toMatchObject({ portfolio_id: 'ws-a', resync: false });
    expect(snap.positions.map((p: { symbol: string }) => p.symbol).sort()).toEqual(['WSA1', 'WSA2']);
    const before = Date.now();
    await tick('WSA1', 105);
    const u = await s.next(isType('update'));
    expect(u.portfolio_id).toBe('ws-a');
    expect(u.seq).toBe(snap.seq + 1);
    expect(u.positions.map((p: { symbol: string }) => p.symbol)).toEqual(['WSA1']);
    expect(u.positions[0].last_price).toBe(105);
    expect(u.tick_ts).toBeGreaterThanOrEqual(before - 1000);
    expect(u.holdings_value).toBeCloseTo(10 * 105 + 10 * 100);
    expect(u.from_seq).toBeUndefined();
    await s.close();
  });

  it('refuses missing portfolios one by one and serves the rest', async () => {
    const s = await ws();
    s.send({ op: 'subscribe', id: 'x', portfolios: ['nope', 'ws-b'] });
    const err = await s.next(isType('error'));
    expect(err).toEqual({ type: 'error', code: 'portfolio_not_found', message: "portfolio 'nope' not found", id: 'x', portfolio: 'nope' });
    expect((await s.next(isType('subscribed'))).portfolios).toEqual(['ws-b']);
    expect((await s.next(isType('snapshot'))).portfolio_id).toBe('ws-b');
    await s.close();
  });

  it('unsubscribe stops updates; resync sends a fresh snapshot marked resync', async () => {
    const s = await ws();
    s.send({ op: 'subscribe', portfolios: ['ws-a', 'ws-b'] });
    await until(() => s.all(isType('snapshot')).length === 2, 5000, 'both snapshots'); // in either order
    s.skipReceived();
    s.send({ op: 'resync', id: 9, portfolio: 'ws-b' });
    expect(await s.next(isType('snapshot'))).toMatchObject({ portfolio_id: 'ws-b', resync: true });
    s.send({ op: 'resync', id: 10, portfolio: 'nope' });
    expect(await s.next(isType('error'))).toMatchObject({ id: 10, code: 'invalid_field' });
    s.send({ op: 'unsubscribe', id: 2, portfolios: ['ws-a', 'never'] });
    expect(await s.next(isType('unsubscribed'))).toEqual({ type: 'unsubscribed', id: 2, portfolios: ['ws-a'] });
    const seen = s.messages.length;
    await tick('WSA2', 99);
    await tick('WSB1', 77);
    await s.next(isType('update', (m) => m.portfolio_id === 'ws-b'));
    expect(s.messages.slice(seen).filter((m) => m.portfolio_id === 'ws-a')).toEqual([]);
    await s.close();
  });

  it('trade: ack after the commit, the same trade_id acked again with applied false, errors carry the id', async () => {
    const s = await ws();
    const trade = { trade_id: 'ws-t1', symbol: 'WSA1', side: 'buy', quantity: 1, price: 100 };
    s.send({ op: 'trade', id: 't1', portfolio: 'ws-a', trade });
    const ack = await s.next(isType('ack'));
    expect(ack).toMatchObject({ type: 'ack', id: 't1', trade_id: 'ws-t1', portfolio_id: 'ws-a', applied: true, position: { symbol: 'WSA1', quantity: 11 } });
    s.send({ op: 'trade', id: 't2', portfolio: 'ws-a', trade });
    expect(await s.next(isType('ack'))).toMatchObject({ id: 't2', applied: false, position: ack.position });
    s.send({ op: 'trade', id: 't3', portfolio: 'ws-a', trade: { ...trade, trade_id: 'ws-t2', quantity: -1 } });
    expect(await s.next(isType('error'))).toMatchObject({ id: 't3', code: 'invalid_quantity', field: 'quantity' });
    s.send({ op: 'trade', id: 't4', portfolio: 'nope', trade });
    expect(await s.next(isType('error'))).toMatchObject({ id: 't4', code: 'portfolio_not_found', message: "portfolio 'nope' not found" });
    s.send({ op: 'ping', id: 'p' });
    const pong = await s.next(isType('pong'));
    expect(pong.id).toBe('p');
    expect(typeof pong.ts).toBe('number');
    await s.close();
  });

  it('subscribe_events delivers the audit events matching the filters', async () => {
    const s = await ws();
    s.send({ op: 'subscribe_events', id: 'e', portfolios: ['ws-b'], types: ['TradeExecuted'] });
    expect(await s.next(isType('events_subscribed'))).toEqual({ type: 'events_subscribed', id: 'e', portfolios: ['ws-b'], types: ['TradeExecuted'] });
    await http(h.url, 'POST', '/api/v1/portfolios/ws-a/trades', { trade_id: 'ev-a', symbol: 'WSA1', side: 'buy', quantity: 1, price: 100 });
    await http(h.url, 'POST', '/api/v1/portfolios/ws-b/cash', { type: 'deposit', amount: 1 });
    await http(h.url, 'POST', '/api/v1/portfolios/ws-b/trades', { trade_id: 'ev-b', symbol: 'WSB1', side: 'buy', quantity: 1, price: 100 });
    const e = await s.next(isType('event'));
    expect(e.event).toMatchObject({ type: 'TradeExecuted', portfolio_id: 'ws-b', trade_id: 'ev-b' });
    expect(typeof e.event.seq).toBe('number');
    expect(s.all(isType('event')).every((m) => m.event.portfolio_id === 'ws-b' && m.event.type === 'TradeExecuted')).toBe(true);
    s.send({ op: 'subscribe_events', portfolios: ['nope'] });
    expect(await s.next(isType('error'))).toMatchObject({ code: 'portfolio_not_found' });
    await s.close();
  });

  it('binary updates decode to exactly the JSON update', async () => {
    const j = await ws();
    const b = await ws();
    j.send({ op: 'subscribe', portfolios: ['ws-a'] });
    b.send({ op: 'subscribe', portfolios: ['ws-a'], encoding: 'binary' });
    await j.next(isType('snapshot'));
    const snapshot = await b.next(isType('snapshot'));
    await tick('WSA2', 101.25);
    const ju = await j.next(isType('update'));
    const frame = await b.next((m) => Buffer.isBuffer(m));
    // Version 4: a position the tick only re-marked decodes against the one the snapshot holds.
    const d = decodeUpdate(frame, heldPositionsOf(snapshot));
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    const { type: _t, ...jsonUpdate } = ju;
    expect(d.value).toEqual({ ...jsonUpdate, from_seq: ju.seq });
    await j.close();
    await b.close();
  });

  it('throttle_ms conflates: fewer updates, merged with from_seq, same final state', async () => {
    const fast = await ws();
    const slow = await ws();
    fast.send({ op: 'subscribe', portfolios: ['ws-a'] });
    slow.send({ op: 'subscribe', portfolios: ['ws-a'], throttle_ms: 250 });
    let fastView: PortfolioSnapshot = await fast.next(isType('snapshot'));
    let slowView: PortfolioSnapshot = await slow.next(isType('snapshot'));
    const started = Date.now();
    for (let i = 0; i < 30; i++) await tick(i % 2 ? 'WSA1' : 'WSA2', 100 + i);
    const elapsed = Date.now() - started;
    const lastSeq = (await fast.next(isType('update', (m) => m.positions.some((p: { last_price: number }) => p.last_price === 129)))).seq;
    await slow.next(isType('update', (m) => m.seq === lastSeq), 3000);
    const fastUpdates = fast.all(isType('update'));
    const slowUpdates = slow.all(isType('update'));
    expect(fastUpdates.length).toBeGreaterThanOrEqual(30);
    expect(slowUpdates.length).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 2);
    expect(slowUpdates.some((u) => u.from_seq !== undefined && u.from_seq < u.seq)).toBe(true);
    let last = slowView.seq;
    for (const u of slowUpdates) {
      expect(u.from_seq ?? u.seq).toBe(last + 1); // contiguous ranges: nothing lost
      last = u.seq;
      slowView = applyUpdate(slowView, u);
    }
    for (const u of fastUpdates) fastView = applyUpdate(fastView, u);
    expect(slowView.positions).toEqual(fastView.positions);
    expect(slowView.seq).toBe(fastView.seq);
    expect(h.server.stats().updatesConflated).toBeGreaterThan(0);
    await fast.close();
    await slow.close();
  });

  it('serializes each update once for all topic subscribers', async () => {
    const sockets = await Promise.all(Array.from({ length: 6 }, () => ws()));
    for (const s of sockets) s.send({ op: 'subscribe', portfolios: ['ws-b'] });
    for (const s of sockets) await s.next(isType('snapshot'));
    const before = h.server.stats();
    await tick('WSB1', 60);
    for (const s of sockets) await s.next(isType('update'));
    const after = h.server.stats();
    expect(after.updatesSerialized - before.updatesSerialized).toBe(1);
    expect(after.updatesSent - before.updatesSent).toBe(6);
    await Promise.all(sockets.map((s) => s.close()));
  });
});

describe('/ws/realtime/positions/{id} (compatibility)', () => {
  it('sends a full snapshot on connect and after every change', async () => {
    const s = await ws('/ws/realtime/positions/ws-a');
    const first = await s.next();
    expect(first).toMatchObject({ type: 'snapshot', portfolio_id: 'ws-a' });
    for (const f of ['positions', 'holdings_value', 'total_return', 'return_rate']) expect(first).toHaveProperty(f);
    expect(first.positions).toHaveLength(2);
    await tick('WSA1', 111);
    const next = await s.next((m) => m.seq > first.seq);
    expect(next.positions).toHaveLength(2); // full state, not a delta
    expect(next.positions.find((p: { symbol: string }) => p.symbol === 'WSA1').last_price).toBe(111);
    s.send('anything'); // ignored
    await sleep(50);
    expect(s.closeCode).toBeNull();
    await s.close();
  });

  it('refuses a missing portfolio at the upgrade with 404', async () => {
    const r = await TestSocket.refused(h.wsUrl + '/ws/realtime/positions/nope');
    expect(r).toEqual({ status: 404, body: { error: { code: 'portfolio_not_found', message: "portfolio 'nope' not found" } } });
  });
});

describe('/ws/feed', () => {
  it('JSON: registers symbols, acks every batch, refuses bad ticks and applies the rest', async () => {
    const s = await ws('/ws/feed');
    s.send({ op: 'register', id: 'r', symbols: ['WSB1', 'bad sym', 'WSB1'] });
    expect(await s.next(isType('registered'))).toEqual({
      type: 'registered',
      id: 'r',
      symbols: [
        { symbol: 'WSB1', id: 0 },
        { symbol: 'WSB1', id: 0 },
      ],
      rejected: [{ index: 1, code: 'invalid_symbol' }],
    });
    s.send({ op: 'ticks', ticks: [{ symbol: 'WSB1', price: 64, ts: Date.now() }, { symbol: 'WSB1', price: -1, ts: Date.now() }, { symbol: 'WSB1', price: 1 }, null] });
    const ack = await s.next(isType('feed_ack'));
    expect(ack).toMatchObject({ batch: 1, accepted: 1, rejected: 3 });
    expect(ack.errors.map((e: { index: number }) => e.index)).toEqual([1, 2, 3]);
    await h.engine.drain();
    const snap = await http(h.url, 'GET', '/api/v1/portfolios/ws-b');
    expect(snap.body.positions[0].last_price).toBe(64);
    s.send('{oops');
    expect(await s.next(isType('error'))).toMatchObject({ code: 'invalid_json' });
    s.send({ op: 'ticks', ticks: [] });
    expect(await s.next(isType('feed_ack'))).toMatchObject({ batch: 2, accepted: 0, rejected: 0 });
    await s.close();
  });

  it('binary: register frame, 28-byte tick records, NaN size = none, unknown ids refused, garbage answered', async () => {
    const s = await ws('/ws/feed');
    s.send(encodeFeedRegister(['WSA1', 'WSA2']));
    expect((await s.next(isType('registered'))).symbols).toEqual([
      { symbol: 'WSA1', id: 0 },
      { symbol: 'WSA2', id: 1 },
    ]);
    const now = Date.now();
    s.send(
      encodeFeedTicks([
        { symbolId: 0, price: 120, ts: now, size: NaN },
        { symbolId: 1, price: 121, ts: now, size: 3 },
        { symbolId: 7, price: 1, ts: now, size: NaN },
        { symbolId: 0, price: Infinity, ts: now, size: NaN },
        { symbolId: 1, price: 1, ts: now, size: -3 },
      ]),
    );
    const ack = await s.next(isType('feed_ack'));
    expect(ack).toMatchObject({ batch: 1, accepted: 2, rejected: 3 });
    expect(ack.errors).toEqual([
      { index: 2, code: 'invalid_symbol' },
      { index: 3, code: 'invalid_price' },
      { index: 4, code: 'invalid_quantity' },
    ]);
    s.send(Buffer.from([0x11, 1, 0, 0, 5, 0, 0, 0, 1, 2, 3]));
    expect(await s.next(isType('error'))).toMatchObject({ code: 'invalid_field' });
    s.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    expect(await s.next(isType('error'))).toMatchObject({ code: 'invalid_field' });
    await h.engine.drain();
    const snap = await http(h.url, 'GET', '/api/v1/portfolios/ws-a');
    expect(snap.body.positions.find((p: { symbol: string }) => p.symbol === 'WSA2').last_price).toBe(121);
    expect(s.closeCode).toBeNull();
    expect(h.server.stats().feedTicksAccepted).toBeGreaterThanOrEqual(3);
    await s.close();
  });
});

describe('client SDK', () => {
  it('subscribes with callbacks, keeps the full view, decodes binary, trades and pings', async () => {
    const c = await MtmClient.connect({ url: h.url });
    const snapshots: PortfolioSnapshot[] = [];
    const updates: number[] = [];
    c.subscribe(['ws-b'], { onSnapshot: (s) => snapshots.push(s), onUpdate: (u) => updates.push(u.seq) }, { encoding: 'binary' });
    await until(() => snapshots.length === 1, 5000, 'snapshot');
    await tick('WSB1', 66);
    await until(() => updates.length >= 1, 5000, 'update');
    expect(c.portfolio('ws-b')?.positions[0].last_price).toBe(66);
    const result = await c.trade('ws-b', { trade_id: 'sdk-1', symbol: 'WSB1', side: 'buy', quantity: 2, price: 66 });
    expect(result).toMatchObject({ trade_id: 'sdk-1', applied: true, portfolio_id: 'ws-b' });
    await expect(c.trade('ws-b', { trade_id: 'sdk-2', symbol: 'WSB1', side: 'buy', quantity: 0, price: 66 })).rejects.toMatchObject({ code: 'invalid_quantity' });
    await expect(c.trade('nope', { trade_id: 'sdk-3', symbol: 'WSB1', side: 'buy', quantity: 1, price: 66 })).rejects.toBeInstanceOf(MtmError);
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
    await until(() => c.portfolio('ws-b')?.positions[0].quantity === result.position.quantity, 5000, 'view follows the trade');
    c.close();
    expect(c.state).toBe('closed');
  });

  it('MtmFeed publishes binary batches and resolves each with its ack', async () => {
    const f = await MtmFeed.connect({ url: h.url });
    const ack = await f.publish([
      { symbol: 'WSA1', price: 130, ts: Date.now() },
      { symbol: 'WSA2', price: 131, ts: Date.now(), size: 1 },
    ]);
    expect(ack).toMatchObject({ type: 'feed_ack', accepted: 2, rejected: 0 });
    f.close();
  });
});

describe('shutdown', () => {
  it('close() closes sockets with 1001, stops accepting and resolves', async () => {
    const own = await startHarness();
    await http(own.url, 'POST', '/api/v1/portfolios', { id: 'bye' });
    const a = await TestSocket.open(own.wsUrl + '/ws');
    const b = await TestSocket.open(own.wsUrl + '/ws/realtime/positions/bye');
    a.send({ op: 'subscribe', portfolios: ['bye'] });
    await a.next(isType('snapshot'));
    await own.server.close();
    expect(await a.closed).toBe(1001);
    expect(await b.closed).toBe(1001);
    await expect(fetch(own.url + '/health')).rejects.toThrow();
    await own.server.close(); // idempotent
    await own.engine.close();
  });
});
