// Proves the hand-written encoder of flat log values (src/protocol/flatRecord.ts) writes exactly the bytes
// lmdb-js's own msgpackr encoder writes for the same value (a real LMDB environment's encoder), and
// declines what it does not cover, so the event log reads the same whoever wrote a value:
// - every event a trade makes (TradeExecuted, PositionOpened/Closed, LotClosed), foreign and with a
//   multiplier, and a bulk import's compact result, byte for byte;
// - numbers at every boundary of msgpackr's integer forms (0x3f/0x40, 0xff/0x100, 0xffff/0x10000,
//   2^32, negatives to -2^31 and past), fractions, -0, 1e21, and strings at the fixstr/str8/str16
//   lengths, multi-byte UTF-8 included, byte for byte; random flat values from a seeded generator too;
// - a nested value (lot_ids), a surrogate, undefined, or more than 15 keys: null (msgpackr writes those);
// - the by-portfolio index's [type, ts] value (encodePair), byte for byte;
// - a shard's log values (LoggedValuesWriter): each event reads back as the event with the seq the
//   store writes into its last 8 bytes; what is not flat is skipped, its place kept;
// - nested records (NestedRecordWriter: a trade result with its position and totals), byte for byte,
//   a shape met again as its id byte, random nested values from a seeded generator too; arrays,
//   undefined, surrogates and more than 15 keys declined with nothing written.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { open, type RootDatabase } from 'lmdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlatRecordWriter, LoggedValuesWriter, NestedRecordWriter } from '../src/protocol/flatRecord.js';

let dir: string;
let root: RootDatabase;
let msgpackr: { encode(v: unknown): Uint8Array; decode?: unknown };
let decode: (b: Uint8Array) => unknown;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mtm-flat-'));
  // As the store opens it (store.ts openStore): its encoder is the one under test.
  root = open({ path: dir, maxDbs: 4, cache: false, eventTurnBatching: false });
  const db = root.openDB('events', {});
  msgpackr = (db as unknown as { encoder: typeof msgpackr }).encoder;
  decode = (b) => (db as unknown as { decoder: { decode(b: Uint8Array): unknown } }).decoder.decode(b);
});

afterAll(async () => {
  await root.close();
  rmSync(dir, { recursive: true, force: true });
});

const hex = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('hex'));

function same(w: FlatRecordWriter, v: Record<string, unknown>): void {
  const mine = w.encode(v);
  expect(mine, JSON.stringify(v)).not.toBeNull();
  expect(hex(mine), JSON.stringify(v)).toBe(hex(msgpackr.encode(v)));
  // -0 goes as the integer 0, by msgpackr too: it reads back as 0.
  expect(decode(mine as Uint8Array)).toEqual(JSON.parse(JSON.stringify(v)));
}

describe('FlatRecordWriter', () => {
  it("writes a trade's events and a compact result as msgpackr does", () => {
    const w = new FlatRecordWriter();
    const base = { type: 'TradeExecuted', trade_id: 't-1', symbol: 'AAPL', side: 'buy', quantity: 1.5, price: 187.25, fee: 0.5, trade_ts: 1765000000123, realized_pnl: -12.75 };
    same(w, { ...base, portfolio_id: 'p-1', ts: 1765000000456, seq: 123456 });
    same(w, { ...base, currency: 'EUR', fx_rate: 1.0843, portfolio_id: 'p-1', ts: 1765000000456, seq: 4294967296 + 17 });
    same(w, { ...base, multiplier: 100, portfolio_id: 'p-1', ts: 1, seq: 63 });
    same(w, { type: 'PositionOpened', symbol: 'AAPL', side: 'long', quantity: 2, price: 10, portfolio_id: 'p-1', ts: 5, seq: 64 });
    same(w, { type: 'PositionClosed', symbol: 'AAPL', realized_pnl: 0, portfolio_id: 'p-1', ts: 5, seq: 65 });
    same(w, { type: 'LotClosed', symbol: 'X', trade_id: 't', lot_id: 'l-9', quantity: 1, open_price: 2, close_price: 3, realized_pnl: 1, portfolio_id: 'p', ts: 0, seq: 1 });
    same(w, { imported: true, realized_pnl: 3.25 });
    same(w, { imported: true, realized_pnl: 0 });
  });

  it('writes every integer form, fractions and strings of every header as msgpackr does', () => {
    const w = new FlatRecordWriter();
    const numbers = [0, 1, 0x1f, 0x20, 0x3f, 0x40, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -1, -0x20, -0x21, -0x80, -0x81, -0x8000, -0x8001, -(2 ** 31), -(2 ** 31) - 1, 0.1, -0.5, 1e21, -1e-7, Number.MAX_VALUE, -0];
    for (const n of numbers) same(w, { n });
    const strings = ['', 'a', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(63), 'x'.repeat(64), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(70_000), 'é'.repeat(15), 'é'.repeat(16), 'é'.repeat(40), '€'.repeat(11), 'naïve-id'];
    for (const s of strings) same(w, { s, k: s });
    same(w, { a: null, b: true, c: false });
  });

  it('writes random flat values as msgpackr does (seeded)', () => {
    const w = new FlatRecordWriter();
    const value = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== '__proto__'), fc.oneof(fc.double({ noNaN: true }), fc.integer(), fc.string({ maxLength: 40 }), fc.boolean(), fc.constant(null)), { maxKeys: 15 });
    fc.assert(
      fc.property(value, (v) => {
        const mine = w.encode(v);
        if (mine === null) return true;
        expect(hex(mine)).toBe(hex(msgpackr.encode(v)));
        return true;
      }),
      { seed: 20261207, numRuns: 2000 },
    );
  });

  it("writes the by-portfolio index's [type, ts] pair as msgpackr does", () => {
    const w = new FlatRecordWriter();
    for (const [t, ts] of [['TradeExecuted', 1765000000123], ['PositionOpened', 0], ['X', 63], ['LimitsSet', 64], ['é', -1.5], ['x'.repeat(40), 2 ** 32]] as const) {
      expect(hex(w.encodePair(t, ts))).toBe(hex(msgpackr.encode([t, ts])));
      expect(decode(w.encodePair(t, ts) as Uint8Array)).toEqual([t, ts]);
    }
    expect(w.encodePair('\ud800', 1)).toBeNull();
  });

  it('declines what it does not write: nested values, surrogates, undefined, more than 15 keys', () => {
    const w = new FlatRecordWriter();
    expect(w.encode({ type: 'TradeExecuted', lot_ids: ['a'] })).toBeNull();
    expect(w.encode({ trade_id: 'rocket-\u{1F680}' })).toBeNull();
    expect(w.encode({ trade_id: 'lone-\ud800' })).toBeNull();
    expect(w.encode({ a: undefined })).toBeNull();
    expect(w.encode(Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])))).toBeNull();
  });

  it('keeps every value it returned intact while it writes more', () => {
    const w = new FlatRecordWriter();
    const kept = Array.from({ length: 5000 }, (_, i) => ({ v: { type: 'E', i, s: 's'.repeat(i % 50) }, bytes: null as Uint8Array | null }));
    for (const k of kept) k.bytes = w.encode(k.v);
    for (const k of kept) expect(decode(k.bytes as Uint8Array)).toEqual(k.v);
  });
});

/** Value i of a writer's take(). */
const valueOf = (t: { bytes: Uint8Array; ends: Int32Array }, i: number): Uint8Array => t.bytes.subarray(i === 0 ? 0 : t.ends[i - 1], t.ends[i]);

describe('LoggedValuesWriter (a shard writes the log values, the store fills in the seq)', () => {
  it('writes each event with its seq last, as msgpackr writes the event with that seq once filled in; skips what is not flat', () => {
    const w = new LoggedValuesWriter(64);
    const events = [
      { type: 'TradeExecuted', trade_id: 't-1', symbol: 'AAPL', side: 'buy', quantity: 1.5, price: 187.25, fee: 0.5, trade_ts: 1, realized_pnl: -12.75, portfolio_id: 'p-1', ts: 2 },
      { type: 'TradeExecuted', trade_id: 't-2', symbol: 'AAPL', side: 'sell', quantity: 1, price: 1, fee: 0, trade_ts: 1, realized_pnl: 0, lot_ids: ['l'], portfolio_id: 'p-1', ts: 2 },
      { type: 'PositionClosed', symbol: 'é'.repeat(40), realized_pnl: 0, portfolio_id: 'p-1', ts: 2 },
    ];
    const written = events.map((e) => {
      if (w.writeLogged(e)) return true;
      w.skip();
      return false;
    });
    expect(written).toEqual([true, false, true]);
    const t = w.take();
    expect(t.ends.length).toBe(3);
    expect(valueOf(t, 1).length).toBe(0);
    for (const [i, seq] of [[0, 7], [2, 2 ** 32 + 5]] as const) {
      const bytes = valueOf(t, i);
      new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setFloat64(bytes.length - 8, seq, false);
      expect(decode(bytes)).toEqual({ ...events[i], seq });
    }
  });
});

describe('NestedRecordWriter (a trade result with its position and totals)', () => {
  const position = { symbol: 'AAPL', currency: 'USD', fx_rate: 1, quantity: 3, avg_cost: 101.5, last_price: 0, market_value: 0, unrealized_pnl: -0, realized_pnl: 12.5, return_rate: 0, weight: 0, price_ts: null, price_age_ms: null, stale: true };
  const totals = { cash: 99_695.5, capital: 100_000, holdings_value: 0, cost_basis: 304.5, unrealized_pnl: 0, realized_pnl: 12.5, total_return: 12.5, return_rate: 0.000125, equity: 99_695.5, gross_exposure: 0, unconverted_positions: 0, stale_positions: 1, unpriced_positions: 1 };
  const result = { trade_id: 't-1', portfolio_id: 'p-1', applied: true, realized_pnl: 12.5, position, totals, state: 'active' };

  it('writes a trade result as msgpackr does, a shape met again as its id byte', () => {
    const w = new NestedRecordWriter(32);
    const values = [result, { ...result, trade_id: 'x'.repeat(300), other: { ...position, symbol: 'B' } }, { a: { b: { c: { d: 1 } } }, e: { b: { c: { d: 2 } } } }, { imported: true, realized_pnl: 1 }];
    for (const v of values) expect(w.write(v)).toBe(true);
    const t = w.take();
    values.forEach((v, i) => {
      expect(hex(valueOf(t, i)), JSON.stringify(v)).toBe(hex(msgpackr.encode(v)));
      expect(decode(valueOf(t, i))).toEqual(JSON.parse(JSON.stringify(v)));
    });
  });

  it('writes random nested values as msgpackr does (seeded)', () => {
    const w = new NestedRecordWriter(16);
    const key = fc.constantFrom('a', 'b', 'c', 'd', 'symbol', 'é', 'x'.repeat(33));
    const leaf = fc.oneof(fc.double({ noNaN: true }), fc.integer(), fc.string({ maxLength: 40 }), fc.boolean(), fc.constant(null));
    const { value } = fc.letrec((tie) => ({
      value: fc.dictionary(key, fc.oneof({ depthSize: 'small' }, leaf, tie('value')), { maxKeys: 6 }),
    }));
    fc.assert(
      fc.property(value, (v) => {
        if (!w.write(v as Record<string, unknown>)) return true;
        const t = w.take();
        expect(hex(valueOf(t, 0))).toBe(hex(msgpackr.encode(v)));
        return true;
      }),
      { seed: 20261207, numRuns: 1000 },
    );
  });

  it('declines arrays, undefined, surrogates and more than 15 keys, writing nothing of them', () => {
    const w = new NestedRecordWriter();
    expect(w.write({ position: { lots: [1] } })).toBe(false);
    expect(w.write({ a: { b: undefined } })).toBe(false);
    expect(w.write({ a: 'lone-\ud800' })).toBe(false);
    expect(w.write({ a: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])) })).toBe(false);
    expect(w.write({ ok: 1 })).toBe(true);
    const t = w.take();
    expect(t.ends.length).toBe(1);
    expect(decode(valueOf(t, 0))).toEqual({ ok: 1 });
  });
});
