// Proves the server's pure pieces on their own, without a socket or an engine:
// - client-op and feed-op parsing: every op, and refusal (with the right code) of malformed frames,
//   oversized lists (checked before iterating), bad ids, NaN/Infinity/negative numbers;
// - auth: keys file validation, glob scopes, constant-time key lookup, bearer/protocol extraction, loopback rule;
// - token buckets, bounded bucket maps, bad-frame windows;
// - binary codecs: update and feed frames round-trip for arbitrary values; truncated/garbage frames are refused;
// - conflation: merged deltas (latest wins per symbol, totals latest, seq range) and the timer wheel;
// - routing, query parameters and option resolution.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseClientOp, parseFeedOp, tickShape } from '../src/protocol/parse.js';
import {
  KeyRing,
  bearerFromAuthorization,
  canRead,
  canSee,
  canTrade,
  globToRegExp,
  isLoopbackHost,
  parseKeys,
  parseWebSocketProtocols,
  principalOf,
} from '../src/server/auth.js';
import { BucketMap, TokenBucket, WindowCounter } from '../src/server/rateLimit.js';
import {
  decodeFeedFrame,
  decodeUpdate,
  encodeFeedRegister,
  encodeFeedTicks,
  encodeUpdate,
  readTick,
  type BinaryTick,
} from '../src/protocol/binary.js';
import { PendingDelta, TimerWheel } from '../src/server/conflation.js';
import { Router, parseQuery } from '../src/server/router.js';
import { routes } from '../src/server/http.js';
import { parseInstant, parseLimit } from '../src/server/query.js';
import { defaultLimits, resolveOptions } from '../src/server/options.js';
import { applyUpdateToView } from '../src/server/encoding.js';
import { isNativeFunction, loadUws } from '../src/server/uws.js';
import type { PortfolioSnapshot, PortfolioUpdate, PositionView } from '../src/domain/types.js';

const limits = defaultLimits;

function position(symbol: string, quantity: number, market_value = quantity * 10): PositionView {
  return { symbol, currency: 'USD', fx_rate: 1, quantity, avg_cost: 10, last_price: 10, market_value, unrealized_pnl: 0, realized_pnl: 0, return_rate: 0, weight: 0, price_ts: 900, price_age_ms: 100, stale: false };
}

function update(seq: number, positions: PositionView[], extra: Partial<PortfolioUpdate> = {}): PortfolioUpdate {
  return {
    portfolio_id: 'p1',
    seq,
    as_of: 1000 + seq,
    state: 'active',
    tick_ts: 900 + seq,
    positions,
    cash: 1,
    capital: 2,
    holdings_value: 3,
    cost_basis: 4,
    unrealized_pnl: 5,
    realized_pnl: 6,
    total_return: 7,
    return_rate: 8,
    equity: 9,
    gross_exposure: 100,
    stale_positions: 0,
    unpriced_positions: 0,
    unconverted_positions: 0,
    ...extra,
  };
}

describe('client op parsing', () => {
  it('accepts every op with defaults filled in', () => {
    expect(parseClientOp('{"op":"subscribe","portfolios":["a","b","a"]}', limits)).toEqual({
      ok: true,
      value: { op: 'subscribe', portfolios: ['a', 'b'], throttle_ms: 0, encoding: 'json' },
    });
    expect(parseClientOp('{"op":"subscribe","id":7,"portfolios":["a"],"throttle_ms":100,"encoding":"binary"}', limits)).toMatchObject({
      ok: true,
      value: { id: 7, throttle_ms: 100, encoding: 'binary' },
    });
    expect(parseClientOp('{"op":"unsubscribe","portfolios":["a"]}', limits).ok).toBe(true);
    expect(parseClientOp('{"op":"resync","portfolio":"a"}', limits).ok).toBe(true);
    expect(parseClientOp('{"op":"subscribe_events"}', limits)).toEqual({ ok: true, value: { op: 'subscribe_events' } });
    expect(parseClientOp('{"op":"subscribe_events","types":["TradeExecuted"],"portfolios":["a"]}', limits).ok).toBe(true);
    expect(parseClientOp('{"op":"unsubscribe_events"}', limits).ok).toBe(true);
    expect(parseClientOp('{"op":"ping","id":"x"}', limits)).toEqual({ ok: true, value: { op: 'ping', id: 'x' } });
    const t = parseClientOp('{"op":"trade","id":"t1","portfolio":"p","trade":{"trade_id":"x"}}', limits);
    expect(t).toMatchObject({ ok: true, value: { op: 'trade', id: 't1', portfolio: 'p' } });
  });

  it('refuses malformed frames with a code, echoing a valid id', () => {
    const code = (text: string) => {
      const r = parseClientOp(text, limits);
      return r.ok ? 'ok' : r.error.code;
    };
    expect(code('{')).toBe('invalid_json');
    expect(code('[]')).toBe('invalid_field');
    expect(code('null')).toBe('invalid_field');
    expect(code('"subscribe"')).toBe('invalid_field');
    expect(code('{"op":"nope"}')).toBe('unknown_op');
    expect(code('{"op":5}')).toBe('invalid_field');
    expect(code('{"op":"subscribe"}')).toBe('invalid_field');
    expect(code('{"op":"subscribe","portfolios":[]}')).toBe('invalid_field');
    expect(code('{"op":"subscribe","portfolios":["bad id"]}')).toBe('invalid_id');
    expect(code('{"op":"subscribe","portfolios":[1]}')).toBe('invalid_id');
    expect(code('{"op":"subscribe","portfolios":["a"],"throttle_ms":-1}')).toBe('invalid_field');
    expect(code('{"op":"subscribe","portfolios":["a"],"throttle_ms":1.5}')).toBe('invalid_field');
    expect(code('{"op":"subscribe","portfolios":["a"],"throttle_ms":1e400}')).toBe('invalid_field');
    expect(code('{"op":"subscribe","portfolios":["a"],"encoding":"xml"}')).toBe('invalid_field');
    expect(code('{"op":"subscribe_events","types":["Nope"]}')).toBe('invalid_field');
    expect(code('{"op":"trade","portfolio":"p","trade":{}}')).toBe('invalid_field'); // no id
    expect(code('{"op":"trade","id":1,"portfolio":"p","trade":[]}')).toBe('invalid_field');
    expect(code('{"op":"ping","id":1.5}')).toBe('invalid_field');
    expect(code('{"op":"ping","id":""}')).toBe('invalid_field');
    const r = parseClientOp('{"op":"nope","id":"abc"}', limits);
    expect(r.ok === false && r.id).toBe('abc');
  });

  it('refuses a 100k-portfolio subscribe by its length, before looking at the elements', () => {
    const many = JSON.stringify({ op: 'subscribe', portfolios: Array.from({ length: 100_000 }, () => 'x') });
    const r = parseClientOp(many, limits);
    expect(r.ok === false && r.error.code).toBe('limit_exceeded');
  });

  it('never throws on arbitrary text or JSON', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ op: 'subscribe', portfolios: v }))), (text) => {
        const r = parseClientOp(text, limits);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });

  it('parses feed ops and checks tick shapes', () => {
    expect(parseFeedOp('{"op":"register","symbols":["A"]}', limits)).toMatchObject({ ok: true, value: { op: 'register' } });
    expect(parseFeedOp('{"op":"ticks","ticks":[]}', limits)).toMatchObject({ ok: true, value: { op: 'ticks', ticks: [] } });
    const tooMany = JSON.stringify({ op: 'ticks', ticks: new Array(limits.ticksPerBatchMax + 1).fill(0) });
    expect(parseFeedOp(tooMany, limits)).toMatchObject({ ok: false, error: { code: 'limit_exceeded' } });
    expect(parseFeedOp('{"op":"x"}', limits)).toMatchObject({ ok: false, error: { code: 'unknown_op' } });
    expect(tickShape({ symbol: 'A', price: 1, ts: 5 }, true)).toEqual({ ok: true, tick: { symbol: 'A', price: 1, ts: 5 } });
    expect(tickShape({ symbol: 'A', price: 1 }, true)).toEqual({ ok: false, code: 'invalid_timestamp' });
    expect(tickShape({ symbol: 'A', price: 1 }, false)).toEqual({ ok: true, tick: { symbol: 'A', price: 1 } });
    expect(tickShape({ symbol: 1, price: 1 }, false)).toEqual({ ok: false, code: 'invalid_symbol' });
    expect(tickShape({ symbol: 'A', price: '1' }, false)).toEqual({ ok: false, code: 'invalid_price' });
    expect(tickShape({ symbol: 'A', price: 1, size: -1 }, false)).toEqual({ ok: false, code: 'invalid_quantity' });
    expect(tickShape(null, false)).toEqual({ ok: false, code: 'invalid_field' });
  });
});

describe('auth', () => {
  const keys = [
    { key: 'k-reader-0123456789', name: 'reader', scopes: ['read:desk-*'] },
    { key: 'k-trader-0123456789', name: 'trader', scopes: ['trade:desk-1', 'read:desk-1'] },
    { key: 'k-admin-01234567890', name: 'admin', scopes: ['admin'] },
  ];

  it('validates keys files', () => {
    expect(parseKeys(keys).ok).toBe(true);
    expect(parseKeys({}).ok).toBe(false);
    expect(parseKeys([]).ok).toBe(false);
    expect(parseKeys([{ key: 'short', name: 'a', scopes: ['admin'] }]).ok).toBe(false);
    expect(parseKeys([{ key: 'k-has/slash-0123456', name: 'a', scopes: ['admin'] }]).ok).toBe(false);
    expect(parseKeys([{ key: 'k-0123456789abcdef', name: 'a', scopes: ['root'] }]).ok).toBe(false);
    expect(parseKeys([{ key: 'k-0123456789abcdef', name: 'a', scopes: [] }]).ok).toBe(false);
    expect(parseKeys([keys[0], { ...keys[0], name: 'other' }]).ok).toBe(false); // same key twice
  });

  it('matches globs literally except * and ?', () => {
    expect(globToRegExp('desk-*').test('desk-1')).toBe(true);
    expect(globToRegExp('desk-*').test('desk')).toBe(false);
    expect(globToRegExp('a.b').test('aXb')).toBe(false);
    expect(globToRegExp('p?').test('p1')).toBe(true);
    expect(globToRegExp('p?').test('p12')).toBe(false);
    expect(globToRegExp('*').test('anything')).toBe(true);
  });

  it('derives what each key may do', () => {
    const [reader, trader, admin] = keys.map(principalOf);
    expect(canRead(reader, 'desk-9')).toBe(true);
    expect(canTrade(reader, 'desk-9')).toBe(false);
    expect(canSee(reader, 'other')).toBe(false);
    expect(canTrade(trader, 'desk-1')).toBe(true);
    expect(canTrade(trader, 'desk-2')).toBe(false);
    expect(canSee(trader, 'desk-2')).toBe(false);
    expect(canRead(admin, 'x') && canTrade(admin, 'x') && admin.admin).toBe(true);
    expect(reader.feed || trader.feed).toBe(false);
  });

  it('finds keys by value only (never by prefix) and ignores absent tokens', () => {
    const ring = new KeyRing(keys);
    expect(ring.authenticate('k-reader-0123456789')?.name).toBe('reader');
    expect(ring.authenticate('k-admin-01234567890')?.name).toBe('admin');
    expect(ring.authenticate('k-reader-012345678')).toBeNull();
    expect(ring.authenticate('k-reader-01234567890')).toBeNull();
    expect(ring.authenticate('')).toBeNull();
    expect(ring.authenticate(null)).toBeNull();
    expect(ring.authenticate('x'.repeat(10_000))).toBeNull();
  });

  it('extracts bearer tokens from the header and from Sec-WebSocket-Protocol', () => {
    expect(bearerFromAuthorization('Bearer abc')).toBe('abc');
    expect(bearerFromAuthorization('bearer   abc ')).toBe('abc');
    expect(bearerFromAuthorization('Basic abc')).toBeNull();
    expect(bearerFromAuthorization('')).toBeNull();
    expect(parseWebSocketProtocols('mtm.v1, mtm.bearer.k-1234')).toEqual({ token: 'k-1234', others: ['mtm.v1'] });
    expect(parseWebSocketProtocols('')).toEqual({ token: null, others: [] });
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'LOCALHOST']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
  });

  it('refuses a non-loopback host without keys unless insecure', () => {
    expect(resolveOptions({ port: 0 }).ok).toBe(true);
    expect(resolveOptions({ port: 0, host: '0.0.0.0' }).ok).toBe(false);
    expect(resolveOptions({ port: 0, host: '0.0.0.0', insecure: true }).ok).toBe(true);
    expect(resolveOptions({ port: 0, host: '0.0.0.0', keys }).ok).toBe(true);
    expect(resolveOptions({ port: 70000 }).ok).toBe(false);
    expect(resolveOptions({ port: 0, limits: { maxBodyBytes: -1 } }).ok).toBe(false);
    expect(resolveOptions({ port: 0, limits: { nope: 1 } as never }).ok).toBe(false);
    expect(resolveOptions({ port: 0, limits: { backpressureSoftBytes: 10, backpressureBytesMax: 5 } }).ok).toBe(false);
  });
});

describe('rate limiting', () => {
  it('token bucket: burst, then refill at the rate, with the wait it reports', () => {
    const b = new TokenBucket(10, 5, 0);
    for (let i = 0; i < 5; i++) expect(b.take(0)).toBe(0);
    expect(b.take(0)).toBe(100);
    expect(b.take(50)).toBe(50);
    expect(b.take(100)).toBe(0);
    expect(b.take(100)).toBeGreaterThan(0);
    expect(b.take(10_000)).toBe(0);
  });

  it('bucket map stays bounded whatever the number of keys', () => {
    const m = new BucketMap(1, 1, 100);
    for (let i = 0; i < 10_000; i++) m.take(`k${i}`, 0);
    expect(m.size).toBeLessThanOrEqual(100);
    m.sweep(10_000);
    expect(m.size).toBe(0);
  });

  it('window counter counts within the window and restarts after it', () => {
    const w = new WindowCounter(1000, 0);
    expect(w.hit(0)).toBe(1);
    expect(w.hit(999)).toBe(2);
    expect(w.hit(1000)).toBe(1);
  });
});

describe('binary codecs', () => {
  const positionArb = fc.record({
    symbol: fc.stringMatching(/^[A-Za-z0-9._:/-]{1,32}$/),
    currency: fc.constantFrom('USD', 'EUR', 'JPY'),
    // null travels as NaN, so a NaN rate cannot round-trip (and the engine never reports one).
    fx_rate: fc.oneof(fc.double({ noNaN: true }), fc.constant(null)),
    quantity: fc.double(),
    avg_cost: fc.double(),
    last_price: fc.double(),
    market_value: fc.double(),
    unrealized_pnl: fc.double(),
    realized_pnl: fc.double(),
    return_rate: fc.double(),
    weight: fc.double(),
    // null is carried as NaN: a NaN price_ts is not a value the engine produces.
    price_ts: fc.option(fc.double({ noNaN: true }), { nil: null }),
    price_age_ms: fc.option(fc.double({ noNaN: true }), { nil: null }),
    stale: fc.boolean(),
  });
  const updateArb = fc.record({
    portfolio_id: fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/),
    seq: fc.nat(),
    as_of: fc.double(),
    state: fc.constantFrom('active' as const, 'paused' as const, 'closed' as const),
    tick_ts: fc.double(),
    positions: fc.array(positionArb, { maxLength: 20 }),
    cash: fc.double(),
    capital: fc.double(),
    holdings_value: fc.double(),
    cost_basis: fc.double(),
    unrealized_pnl: fc.double(),
    realized_pnl: fc.double(),
    total_return: fc.double(),
    return_rate: fc.double(),
    equity: fc.double(),
    gross_exposure: fc.double(),
    stale_positions: fc.nat(),
    unpriced_positions: fc.nat(),
    unconverted_positions: fc.nat(),
  });

  it('update frames round-trip bit for bit (NaN and -0 included)', () => {
    fc.assert(
      fc.property(updateArb, fc.nat(), (u, back) => {
        const fromSeq = Math.max(0, u.seq - back);
        const d = decodeUpdate(encodeUpdate(u, fromSeq));
        expect(d.ok).toBe(true);
        if (!d.ok) return;
        expect(d.value).toEqual({ ...u, from_seq: fromSeq });
      }),
      { numRuns: 300 },
    );
  });

  it('refuses truncated or garbage update frames without throwing', () => {
    const bytes = encodeUpdate(update(3, [position('AAA', 1), position('BB', 2)]));
    for (let n = 0; n < bytes.length; n++) expect(decodeUpdate(bytes.subarray(0, n)).ok).toBe(false);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (g) => void decodeUpdate(g)));
  });

  it('feed frames round-trip; bad framing is refused', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[A-Za-z0-9._:/-]{1,32}$/), { maxLength: 50 }), (symbols) => {
        const d = decodeFeedFrame(encodeFeedRegister(symbols));
        expect(d).toEqual({ ok: true, value: { kind: 'register', symbols } });
      }),
    );
    const tickArb = fc.record({ symbolId: fc.nat({ max: 0xffffffff }), price: fc.double(), ts: fc.double(), size: fc.double() });
    fc.assert(
      fc.property(fc.array(tickArb, { maxLength: 50 }), (ticks) => {
        const d = decodeFeedFrame(encodeFeedTicks(ticks));
        expect(d.ok).toBe(true);
        if (!d.ok || d.value.kind !== 'ticks') return;
        expect(d.value.count).toBe(ticks.length);
        const out: BinaryTick = { symbolId: 0, price: 0, ts: 0, size: 0 };
        ticks.forEach((t, i) => expect({ ...readTick(d.value.kind === 'ticks' ? d.value.view : new DataView(new ArrayBuffer(0)), i, out) }).toEqual(t));
      }),
    );
    const good = encodeFeedTicks([{ symbolId: 0, price: 1, ts: 2, size: NaN }]);
    expect(decodeFeedFrame(good.subarray(0, good.length - 1)).ok).toBe(false);
    const lying = good.slice();
    lying[4] = 2; // count says 2, one record present
    expect(decodeFeedFrame(lying).ok).toBe(false);
    expect(decodeFeedFrame(new Uint8Array([0x99, 1, 0, 0])).ok).toBe(false);
    expect(decodeFeedFrame(new Uint8Array([0x11, 2, 0, 0, 0, 0, 0, 0])).ok).toBe(false);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (g) => void decodeFeedFrame(g)));
  });
});

describe('conflation', () => {
  it('merges deltas: positions by symbol (latest wins), totals and state latest, seq range kept', () => {
    const d = new PendingDelta();
    expect(d.take()).toBeNull();
    d.add(update(5, [position('A', 1), position('B', 2)]));
    d.add(update(6, [position('A', 3)], { cash: 42, state: 'paused', gross_exposure: 50 }));
    expect(d.add(update(6, [position('C', 9)]))).toBe(false); // same seq again: ignored
    const t = d.take()!;
    expect(t.fromSeq).toBe(5);
    expect(t.update.seq).toBe(6);
    expect(t.update.cash).toBe(42);
    expect(t.update.state).toBe('paused');
    const bySymbol = Object.fromEntries(t.update.positions.map((p) => [p.symbol, p]));
    expect(Object.keys(bySymbol).sort()).toEqual(['A', 'B']);
    expect(bySymbol.A.quantity).toBe(3);
    expect(bySymbol.B.weight).toBeCloseTo(40); // |20| / 50 * 100, recomputed for the position not in the last update
    expect(d.empty).toBe(true);
  });

  it('passes a single update through untouched and drops what a snapshot covers', () => {
    const d = new PendingDelta();
    const u = update(9, [position('A', 1)]);
    d.add(u);
    expect(d.take()).toEqual({ update: u, fromSeq: 9 });
    d.add(update(10, []));
    d.add(update(11, []));
    d.dropThrough(10);
    expect(d.take()?.fromSeq).toBe(11);
    d.add(update(12, []));
    d.dropThrough(12);
    expect(d.empty).toBe(true);
  });

  it('holds one entry per symbol whatever the number of updates', () => {
    const d = new PendingDelta();
    for (let s = 1; s <= 10_000; s++) d.add(update(s, [position(`S${s % 7}`, s)]));
    expect(d.take()!.update.positions).toHaveLength(7);
  });

  it('timer wheel fires each item once at or after its due tick, never early', () => {
    const w = new TimerWheel<string>(10, 1000, 0);
    const fired: [string, number][] = [];
    w.schedule('a', 25);
    w.schedule('b', 5);
    w.schedule('a', 500); // already scheduled: ignored
    w.schedule('c', 100_000); // past the horizon: clamped
    expect(w.size).toBe(3);
    for (let t = 0; t <= 1100; t += 10) w.advance(t, (x) => fired.push([x, t]));
    expect(fired).toEqual([
      ['b', 10],
      ['a', 30],
      ['c', 1010],
    ]);
    w.schedule('d', 1200);
    w.cancel('d');
    w.advance(2000, (x) => fired.push([x, 2000]));
    expect(fired).toHaveLength(3);
    expect(w.size).toBe(0);
  });
});

describe('routing and queries', () => {
  const router = new Router(routes);
  it('matches templates and decodes params', () => {
    expect(router.match('GET', '/api/v1/portfolios/p%3A1')).toMatchObject({ kind: 'found', route: { handler: 'getPortfolio' }, params: ['p:1'] });
    expect(router.match('POST', '/api/v1/portfolios/x/trades')).toMatchObject({ kind: 'found', route: { handler: 'trade' } });
    expect(router.match('PATCH', '/api/v1/portfolios/x')).toMatchObject({ kind: 'method_not_allowed', allow: ['GET', 'DELETE'] });
    expect(router.match('GET', '/api/v1/portfolios/%E0%A4%A')).toEqual({ kind: 'not_found' });
    expect(router.match('GET', '/nope')).toEqual({ kind: 'not_found' });
    expect(router.match('GET', '/api/v1/portfolios//events')).toEqual({ kind: 'not_found' });
  });

  it('parses instants, limits and query strings', () => {
    expect(parseInstant('2024-05-01T00:00:00Z', 'from')).toEqual({ ok: true, value: Date.UTC(2024, 4, 1) });
    expect(parseInstant('1714521600000', 'from')).toEqual({ ok: true, value: 1714521600000 });
    expect(parseInstant('yesterday', 'from').ok).toBe(false);
    expect(parseInstant('2024-13-45T00:00:00Z', 'from').ok).toBe(false);
    expect(parseLimit(undefined, 100, 1000)).toEqual({ ok: true, value: 100 });
    expect(parseLimit('0', 100, 1000).ok).toBe(false);
    expect(parseLimit('1001', 100, 1000).ok).toBe(false);
    expect(parseLimit('NaN', 100, 1000).ok).toBe(false);
    expect(parseQuery('a=1&a=2&b=%20')).toEqual(new Map([['a', '1'], ['b', ' ']]));
  });
});

describe('views and uWS detection', () => {
  it('keeps a full view from a snapshot and the updates after it', () => {
    const snap: PortfolioSnapshot = {
      ...update(1, [position('A', 1), position('B', 2)]),
      name: 'n',
      limits: {},
      equity_hwm: 5,
    } as unknown as PortfolioSnapshot;
    delete (snap as unknown as { tick_ts?: number }).tick_ts;
    const v = applyUpdateToView(snap, update(2, [position('A', 0, 0), position('C', 5)], { equity: 20, gross_exposure: 70 }));
    expect(v.positions.map((p) => p.symbol).sort()).toEqual(['B', 'C']);
    expect(v.equity_hwm).toBe(20);
    expect(v.seq).toBe(2);
    expect('tick_ts' in v).toBe(false);
    expect(applyUpdateToView(v, update(2, []))).toBe(v);
  });

  it('tells the native binary from the JS fallback', () => {
    expect(isNativeFunction(Math.max)).toBe(true);
    expect(isNativeFunction(function App() {})).toBe(false);
    expect(['native', 'fallback']).toContain(loadUws().binary);
  });
});
