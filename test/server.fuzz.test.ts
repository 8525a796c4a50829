// Proves that garbage at every entry point of a real server (real engine) is refused without a crash
// and without changing anything: fast-check generates HTTP requests (methods, paths, queries, bodies
// that are invalid JSON or JSON of the wrong shape), /ws text and binary frames (malformed JSON, ops
// with random fields, subscribe options valid and not: frames, throttle_ms, encoding), /ws/feed JSON and binary frames, compat-path frames, raw TCP garbage,
// half-open HTTP requests and half-sent WebSocket frames. Afterwards the server still answers /health,
// the portfolios, their state and the audit trail are exactly as before, and the garbage was counted.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { connect } from 'node:net';
import { TestSocket, http, sleep, startHarness, type Harness } from './support/serverHarness.js';
import { clientFrame, rawConnect } from './support/serverRawWs.js';

let h: Harness;

async function state(): Promise<unknown> {
  const list = await http(h.url, 'GET', '/api/v1/portfolios?limit=1000');
  const snap = await http(h.url, 'GET', '/api/v1/portfolios/fz');
  const events = await http(h.url, 'GET', '/api/v1/portfolios/fz/events?limit=1000');
  const { as_of: _a, ...stable } = snap.body;
  return { list: list.body, snap: stable, events: events.body.events.length };
}

let before: unknown;

beforeAll(async () => {
  h = await startHarness({ limits: { commandsPerSecond: 1e9, connectsPerSecond: 1e9, maxBodyBytes: 16 * 1024, maxPayloadBytes: 16 * 1024 } });
  expect((await http(h.url, 'POST', '/api/v1/portfolios', { id: 'fz', cash: 1000 })).status).toBe(201);
  expect((await http(h.url, 'POST', '/api/v1/portfolios/fz/trades', { trade_id: 'fz-1', symbol: 'FZ', side: 'buy', quantity: 1, price: 10 })).status).toBe(201);
  before = await state();
});
afterAll(async () => {
  await h?.close();
});

const notJson = fc.string({ minLength: 1, maxLength: 200 }).filter((s) => {
  if (s.trim().length === 0) return false;
  try {
    JSON.parse(s);
    return false;
  } catch {
    return true;
  }
});
/** JSON that is never a valid body: not an object (and not null/empty, which some routes take as "defaults"). */
const wrongShapeJson = fc.oneof(fc.array(fc.jsonValue(), { maxLength: 5 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.string()).map((v) => JSON.stringify(v));
const objectWithBadFields = fc.record({
  trade_id: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
  symbol: fc.oneof(fc.integer(), fc.constant(''), fc.string({ minLength: 33 })),
  side: fc.oneof(fc.string(), fc.integer()),
  quantity: fc.oneof(fc.constant('1'), fc.constant(-1), fc.constant(0)),
  price: fc.oneof(fc.constant(-5), fc.constant('10'), fc.constant(0)),
  type: fc.string(),
  amount: fc.oneof(fc.constant(-1), fc.constant('x'), fc.constant(0)),
  max_drawdown_pct: fc.oneof(fc.constant(-1), fc.constant(500), fc.constant('x')),
  cash: fc.constantFrom(-1, 'x', 1e400),
}).map((o) => JSON.stringify(o));
const segment = fc.oneof(fc.constantFrom('fz', 'nope', '', '..', '%00', '%ZZ', 'a b'), fc.string({ maxLength: 20 }).map(encodeURIComponent));

describe('garbage at every entry point', () => {
  it('HTTP: random methods, paths, queries and bodies', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        fc.constantFrom('', '/api/v1/portfolios', '/api/v1/portfolios/ID', '/api/v1/portfolios/ID/trades', '/api/v1/portfolios/ID/cash', '/api/v1/portfolios/ID/limits', '/api/v1/portfolios/ID/events', '/api/v1/portfolios/ID/pause', '/api/v1/ticks', '/ws', '/x/y/z'),
        segment,
        fc.string({ maxLength: 40 }),
        fc.oneof(notJson, wrongShapeJson, objectWithBadFields),
        async (method, template, id, query, body) => {
          // A real id only on routes where a garbage body cannot become a valid command.
          const safeId = id === 'fz' && (template.endsWith('/pause') || template === '/api/v1/portfolios/ID') && method !== 'GET' ? 'nope' : id;
          const path = (template.replace('ID', safeId) || '/') + (query ? `?${encodeURIComponent(query)}=${encodeURIComponent(query)}` : '');
          const hasBody = method !== 'GET' && method !== 'DELETE' && method !== 'OPTIONS';
          const r = await fetch(h.url + path, { method, body: hasBody ? body : undefined, headers: { 'Content-Type': 'application/json' } });
          const text = await r.text();
          expect(r.status).toBeLessThan(500);
          if (r.status >= 400) expect(JSON.parse(text).error.code).toBeTypeOf('string');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('/ws: malformed text, ops with random fields, binary frames', async () => {
    let s = await TestSocket.open(h.wsUrl + '/ws');
    const ops = ['subscribe', 'unsubscribe', 'resync', 'subscribe_events', 'trade', 'ping', 'nope', ''];
    const frame = fc.oneof(
      fc.string({ maxLength: 300 }).map((t) => ({ text: t })),
      fc.record({ op: fc.constantFrom(...ops), rest: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }) }).map(({ op, rest }) => ({ text: JSON.stringify({ ...rest, op }) })),
      fc.record({ portfolios: fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 300 }) }).map((o) => ({ text: JSON.stringify({ op: 'subscribe', ...o }) })),
      // The subscribe options, valid and not (frames: per-connection frames, issue 14).
      fc
        .record({
          portfolios: fc.constantFrom(['fz'], ['fz', 'nope']),
          frames: fc.oneof(fc.constantFrom('single', 'connection', 'batch', '', null, 7), fc.jsonValue({ maxDepth: 1 })),
          throttle_ms: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(null, 0, 10, 1e12, -1, 'x')),
          encoding: fc.constantFrom('json', 'binary', 'bson', null),
        })
        .map((o) => ({ text: JSON.stringify({ op: 'subscribe', ...o }) })),
      fc.uint8Array({ maxLength: 200 }).map((b) => ({ bin: Buffer.from(b) })),
    );
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        if (s.closeCode !== null) s = await TestSocket.open(h.wsUrl + '/ws');
        s.send('text' in f ? f.text : f.bin);
      }),
      { numRuns: 400 },
    );
    await sleep(200);
    if (s.closeCode === null) {
      s.send({ op: 'ping', id: 'alive' });
      expect((await s.next((m) => m.type === 'pong' && m.id === 'alive')).type).toBe('pong');
      await s.close();
    }
    expect(h.server.stats().badFrames).toBeGreaterThan(0);
  });

  it('/ws/feed and the compat path: random JSON and binary frames', async () => {
    let feed = await TestSocket.open(h.wsUrl + '/ws/feed');
    const compat = await TestSocket.open(h.wsUrl + '/ws/realtime/positions/fz');
    const frame = fc.oneof(
      fc.string({ maxLength: 300 }).map((t) => ({ text: t })),
      fc.record({ op: fc.constantFrom('register', 'ticks', 'x'), ticks: fc.array(fc.oneof(fc.integer(), fc.string(), fc.constant(null)), { maxLength: 20 }), symbols: fc.array(fc.integer(), { maxLength: 5 }) }).map((o) => ({ text: JSON.stringify(o) })),
      fc.uint8Array({ maxLength: 300 }).map((b) => ({ bin: Buffer.from(b) })),
      fc.uint8Array({ maxLength: 300 }).map((b) => ({ bin: Buffer.concat([Buffer.from([0x11, 1, 0, 0]), Buffer.from(b)]) })),
      fc.uint8Array({ maxLength: 100 }).map((b) => ({ bin: Buffer.concat([Buffer.from([0x10, 1]), Buffer.from(b)]) })),
    );
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        if (feed.closeCode !== null) feed = await TestSocket.open(h.wsUrl + '/ws/feed');
        feed.send('text' in f ? f.text : f.bin);
        if (compat.closeCode === null) compat.send('text' in f ? f.text : f.bin);
      }),
      { numRuns: 300 },
    );
    await sleep(200);
    expect(compat.closeCode).toBeNull(); // the compat path ignores client frames
    await feed.close();
    await compat.close();
  });

  it('raw TCP garbage, half-open HTTP requests and half-sent WebSocket frames', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async (bytes) => {
        const sock = connect(h.server.port, '127.0.0.1');
        sock.on('error', () => {});
        await new Promise((r) => sock.once('connect', r));
        sock.write(bytes);
        await sleep(2);
        sock.destroy();
      }),
      { numRuns: 100 },
    );
    const halfOpen = Array.from({ length: 20 }, () => {
      const sock = connect(h.server.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.write('POST /api/v1/portfolios HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"id":');
      return sock;
    });
    const raw = await rawConnect(h.server.port, '/ws');
    raw.socket.write(clientFrame(1, JSON.stringify({ op: 'ping' })).subarray(0, 5)); // a frame cut in the middle
    expect((await http(h.url, 'GET', '/health')).status).toBe(200);
    for (const s of halfOpen) s.destroy();
    raw.socket.destroy();
  });

  it('afterwards: the server answers and nothing changed', async () => {
    await sleep(100);
    const health = await http(h.url, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(await state()).toEqual(before);
    const s = h.server.stats();
    expect(s.badFrames).toBeGreaterThan(10);
    expect(s.badFrameDisconnects).toBeGreaterThan(0);
    expect(s.http.some((x) => x.statusClass === '5xx')).toBe(false);
  });
});
