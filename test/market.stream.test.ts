// Proves the market ops of /ws over real WebSocket clients, a real server, engine, market worker and
// LMDB:
// - history streams a query's rows in chunks of at most historyChunkBarsMax, each followed by
//   progress {done, total} with done increasing to total, then history_end; the rows equal the HTTP
//   answer; bad values are answered with an error naming the field and the request id;
// - backpressure: a client that stops reading holds its history at a bounded number of chunks (the
//   server neither queues the rest nor closes the socket), cancel stops it (history_end cancelled:
//   true, nothing after it), and concurrent histories per connection are bounded;
// - subscribe_bars sends the current open bar, each change of it, the closed bar when a later tick
//   closes it (and closeElapsed when the clock passes its end), a late tick's revision of a closed
//   bar, and nothing after unsubscribe_bars; a tick too late for any bar is dropped and counted;
// - every market frame the server sends, and every market op sent, validates against the AsyncAPI document.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestSocket, http, isType, sleep, until } from './support/serverHarness.js';
import { validate } from './support/serverSchema.js';
import { startMarketHarness, type MarketHarness } from './support/marketServer.js';

const min = 60_000;
const t0 = Date.UTC(2025, 0, 6, 10, 0);
const chunk = 50;

let h: MarketHarness;
let asyncapi: any;
const sockets: TestSocket[] = [];

beforeAll(async () => {
  h = await startMarketHarness({ now: t0 + 10 * 24 * 60 * min, limits: { historyChunkBarsMax: chunk, latenessMs: 5_000 } });
  asyncapi = (await http(h.url, 'GET', '/asyncapi.json')).body;
  // HIST: one tick a minute for 300 minutes, every third minute empty.
  const ticks = [];
  for (let m = 0; m < 300; m++) if (m % 3 !== 2) ticks.push({ symbol: 'HIST', price: 100 + m, ts: t0 + m * min + 1_000, size: 1 });
  await h.ticks(ticks);
});
afterAll(async () => {
  for (const s of sockets) await s.close();
  await h?.stop(true);
});

async function socket(): Promise<TestSocket> {
  const s = await TestSocket.open(h.wsUrl + '/ws');
  sockets.push(s);
  return s;
}

const byType: Record<string, string> = {
  history_chunk: 'HistoryChunk',
  progress: 'Progress',
  history_end: 'HistoryEnd',
  bars_subscribed: 'BarsSubscribed',
  bars_unsubscribed: 'BarsUnsubscribed',
  bar: 'Bar',
  error: 'Error',
  event: 'Event',
  events_subscribed: 'EventsSubscribed',
};
function expectDocumented(messages: any[]): void {
  for (const m of messages) {
    const name = byType[m.type];
    expect(name, `message type ${m.type}`).toBeDefined();
    expect(asyncapi.channels.main.messages[name], `${name} on /ws`).toBeDefined();
    expect(validate(asyncapi, asyncapi.components.messages[name].payload, m), `${name}: ${JSON.stringify(m).slice(0, 300)}`).toEqual([]);
  }
}
function op(s: TestSocket, name: string, value: unknown): void {
  expect(validate(asyncapi, asyncapi.components.messages[name].payload, value), `client op ${name}`).toEqual([]);
  s.send(value);
}

describe('history', () => {
  it('streams chunks with progress, then history_end, equal to the HTTP answer', async () => {
    const s = await socket();
    const from = t0;
    const to = t0 + 300 * min;
    op(s, 'History', { op: 'history', id: 'h1', symbol: 'HIST', tf: '1m', from, to, fill: 'previous' });
    const end = await s.next(isType('history_end', (m) => m.id === 'h1'), 20_000);
    expect(end).toEqual({ type: 'history_end', id: 'h1', bars: 300, cancelled: false });
    const mine = s.all((m) => m.id === 'h1');
    const chunks = mine.filter((m) => m.type === 'history_chunk');
    const progress = mine.filter((m) => m.type === 'progress');
    expect(chunks.length).toBe(300 / chunk);
    for (const c of chunks) expect(c.bars.length).toBeLessThanOrEqual(chunk);
    // Each chunk is followed by its progress; done grows to total.
    expect(mine.map((m) => m.type)).toEqual([...chunks.flatMap(() => ['history_chunk', 'progress']), 'history_end']);
    expect(progress.map((p) => p.done)).toEqual(chunks.map((_, i) => (i + 1) * chunk));
    expect(progress.every((p) => p.total === 300)).toBe(true);
    const rows = chunks.flatMap((c) => c.bars);
    const page = await http(h.url, 'GET', `/api/v1/bars/HIST?tf=1m&from=${from}&to=${to}&fill=previous&limit=10000`);
    expect(rows).toEqual(page.body.bars);
    expect(rows[2]).toMatchObject({ filled: true, close: 101 });
    expectDocumented(s.messages);
  });

  it('streams fill none over a sparse range and a range with nothing, ending with full progress', async () => {
    const s = await socket();
    op(s, 'History', { op: 'history', id: 2, symbol: 'HIST', tf: '1h', from: '2025-01-06T00:00:00Z', to: '2025-01-07T00:00:00Z' });
    await s.next(isType('history_end', (m) => m.id === 2));
    const rows = s.all(isType('history_chunk')).flatMap((c) => c.bars);
    expect(rows.map((b: any) => (b.start - t0) / min)).toEqual([0, 60, 120, 180, 240]);
    expect(rows[0]).toMatchObject({ trades: 40, open: 100, close: 158 });
    op(s, 'History', { op: 'history', id: 3, symbol: 'NONE', tf: '1m', from: t0, to: t0 + 1000 * min });
    const end = await s.next(isType('history_end', (m) => m.id === 3));
    expect(end.bars).toBe(0);
    expect(s.all(isType('progress', (m) => m.id === 3)).at(-1)).toMatchObject({ done: 1000, total: 1000 });
    expectDocumented(s.messages);
  });

  it('answers bad values with an error naming the field and carrying the id', async () => {
    const s = await socket();
    const cases: [Record<string, unknown>, string][] = [
      [{ symbol: 'HIST', tf: '7m', from: t0 }, 'tf'],
      [{ symbol: 'HIST', tf: '1m' }, 'from'],
      [{ symbol: 'HIST', tf: '1m', from: t0, to: t0 - 1 }, 'to'],
      [{ symbol: 'HIST', tf: '1m', from: 0, to: t0 }, 'to'],
      [{ symbol: 'HIST', tf: '1m', from: t0, fill: 'linear' }, 'fill'],
      [{ symbol: 'no spaces', tf: '1m', from: t0 }, 'symbol'],
    ];
    for (const [i, [fields, field]] of cases.entries()) {
      s.send({ op: 'history', id: `bad-${i}`, ...fields });
      const e = await s.next(isType('error', (m) => m.id === `bad-${i}`));
      expect(e.field, JSON.stringify(fields)).toBe(field);
    }
    s.send({ op: 'history', symbol: 'HIST', tf: '1m', from: t0 });
    expect((await s.next(isType('error'))).field).toBe('id');
    s.send({ op: 'cancel', id: 'nothing-running' });
    expect((await s.next(isType('error', (m) => m.id === 'nothing-running'))).code).toBe('invalid_id');
    expectDocumented(s.messages);
  });

  it('holds a history for a client that stops reading, bounds histories per connection, and cancels', async () => {
    const s = await socket();
    // 100k filled rows (~20 MB of JSON): far more than the socket buffers and the 4 MB hard bound.
    const big = { symbol: 'HIST', tf: '1m', from: t0, to: t0 + 100_000 * min, fill: 'null' };
    const raw = (s.ws as any)._socket;
    raw.pause();
    const ids = ['b1', 'b2', 'b3', 'b4'];
    for (const id of ids) op(s, 'History', { op: 'history', id, ...big });
    op(s, 'History', { op: 'history', id: 'b5', ...big });
    // Unread, the four histories would be 80 MB: far past the 4 MB bound that closes a slow socket.
    await sleep(1_500);
    for (const id of ids) op(s, 'Cancel', { op: 'cancel', id });
    await sleep(300);
    raw.resume();
    const refused = await s.next(isType('error', (m) => m.id === 'b5'));
    expect(refused.code).toBe('limit_exceeded');
    await until(() => s.all(isType('history_end')).length === 4, 20_000, 'every history cancelled');
    let sent = 0;
    for (const id of ids) {
      const mine = s.all((m) => m.id === id);
      // Nothing of a history after its end.
      expect(mine.at(-1), id).toEqual({ type: 'history_end', id, cancelled: true });
      sent += mine.filter((m) => m.type === 'history_chunk').reduce((n, c) => n + c.bars.length, 0);
    }
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(100_000);
    expect(s.closeCode).toBeNull();
    // The slots are free again.
    op(s, 'History', { op: 'history', id: 'after', symbol: 'HIST', tf: '1h', from: t0, to: t0 + 60 * min });
    await s.next(isType('history_end', (m) => m.id === 'after'));
    expectDocumented(s.messages);
  });
});

describe('subscribe_bars', () => {
  it('streams the open bar, its changes, its close, a late revision; drops and counts a tick too late', async () => {
    const base = t0 + 400 * min;
    await h.ticks([{ symbol: 'LIVE', price: 50, ts: base + 1_000, size: 1 }]);
    const s = await socket();
    op(s, 'SubscribeBars', { op: 'subscribe_bars', id: 'sb', symbols: ['LIVE', 'OTHER'], tf: '1m' });
    expect(await s.next(isType('bars_subscribed'))).toEqual({ type: 'bars_subscribed', id: 'sb', symbols: ['LIVE', 'OTHER'], tf: '1m' });
    expect((await s.next(isType('bar'))).bar).toMatchObject({ symbol: 'LIVE', tf: '1m', start: base, close: 50, trades: 1 });

    await h.ticks([{ symbol: 'LIVE', price: 52, ts: base + 20_000, size: 2 }]);
    const update = await s.next(isType('bar'));
    expect(update).toMatchObject({ change: 'open', bar: { start: base, high: 52, close: 52, trades: 2, volume: 3 } });

    // A tick of the next minute: the close of the first bar, then the new open bar.
    await h.ticks([{ symbol: 'LIVE', price: 51, ts: base + min + 2_000, size: 1 }]);
    const closed = await s.next(isType('bar'));
    expect(closed).toMatchObject({ change: 'closed', bar: { start: base, open: 50, close: 52, trades: 2 } });
    expect(await s.next(isType('bar'))).toMatchObject({ change: 'open', bar: { start: base + min, close: 51, trades: 1 } });

    // Late by 4 s (within latenessMs 5 s): revises the closed bar, streamed as a revision.
    await h.ticks([{ symbol: 'LIVE', price: 49, ts: base + min - 2_000, size: 1 }]);
    const revised = await s.next(isType('bar', (m) => m.change === 'revised'));
    expect(revised.bar).toMatchObject({ start: base, low: 49, close: 49, trades: 3, last_ts: base + min - 2_000 });
    const stored = await http(h.url, 'GET', `/api/v1/bars/LIVE?tf=1m&from=${base}&to=${base + min}`);
    expect(stored.body.bars[0]).toMatchObject({ low: 49, trades: 3 });

    // Late by 40 s: too late for any bar; dropped and counted, nothing streamed.
    const before = (await h.market.workerStats())!.book.dropped.late;
    await h.ticks([{ symbol: 'LIVE', price: 10, ts: base + 30_000 }]);
    expect((await h.market.workerStats())!.book.dropped.late).toBe(before + 1);
    expect((await http(h.url, 'GET', `/api/v1/bars/LIVE?tf=1m&from=${base}&to=${base + min}`)).body.bars[0]).toMatchObject({ low: 49, trades: 3 });

    // The clock passes the open bar's end (plus lateness): closeElapsed closes it without a tick.
    s.skipReceived();
    h.clock.now = base + 2 * min + 6_000;
    await h.check();
    expect(await s.next(isType('bar'))).toMatchObject({ change: 'closed', bar: { start: base + min, close: 51 } });

    op(s, 'UnsubscribeBars', { op: 'unsubscribe_bars', id: 'ub', symbols: ['LIVE', 'NEVER'], tf: '1m' });
    expect(await s.next(isType('bars_unsubscribed'))).toEqual({ type: 'bars_unsubscribed', id: 'ub', symbols: ['LIVE'], tf: '1m' });
    s.skipReceived();
    await h.ticks([{ symbol: 'LIVE', price: 60, ts: base + 3 * min }]);
    await sleep(200);
    expect(s.messages.slice(s.messages.findIndex((m) => m.type === 'bars_unsubscribed') + 1).filter((m) => m.type === 'bar')).toEqual([]);
    expectDocumented(s.messages);
  });

  it('bounds the subscribed series per connection and refuses malformed ops as bad frames', async () => {
    const s = await socket();
    const symbols = Array.from({ length: 200 }, (_, i) => `S${i}`);
    s.send({ op: 'subscribe_bars', id: 1, symbols, tf: '1m' });
    await s.next(isType('bars_subscribed', (m) => m.id === 1));
    s.send({ op: 'subscribe_bars', id: 2, symbols: symbols.map((x) => x + 'x'), tf: '1m' });
    const e = await s.next(isType('error', (m) => m.id === 2));
    expect(e).toMatchObject({ code: 'limit_exceeded', field: 'symbols' });
    s.send({ op: 'subscribe_bars', id: 3, symbols: ['A'], tf: '2h' });
    expect((await s.next(isType('error', (m) => m.id === 3))).field).toBe('tf');
    s.send({ op: 'subscribe_bars', id: 4, symbols: [], tf: '1m' });
    expect((await s.next(isType('error', (m) => m.id === 4))).field).toBe('symbols');
    expectDocumented(s.messages);
  });
});
