// Proves bar queries: every fill mode (none omits empty intervals, previous carries the last close
// with volume 0 / vwap null / trades 0 / filled, null emits null prices / filled), seeding 'previous'
// from a bar before the range, ranges that start mid-bucket, the barsPerQueryMax bound and reversed
// ranges refused with a Result naming the field, and query-parameter parsing (tf, ISO-8601 or epoch
// ms instants, fill) with the same discipline.

import { describe, expect, it } from 'vitest';
import { fillBars, parseBarQuery, parseFillMode, parseInstant, type Bar, type BarQuery, type BarRow } from '../src/market/index.js';
import { utc } from './support/marketSupport.js';

const t0 = utc('2025-01-06T10:00:00Z');
const min = 60_000;

function bar(start: number, close: number, overrides: Partial<Bar> = {}): Bar {
  return { symbol: 'F', tf: '1m', start, open: close - 1, high: close + 1, low: close - 2, close, volume: 2, pv: 2 * close, vwap: close, trades: 3, first_ts: start, last_ts: start + 59_000, ...overrides };
}

const real = (b: Bar): BarRow => ({ ...b, filled: false });
const previous = (start: number, price: number): BarRow => ({
  symbol: 'F',
  tf: '1m',
  start,
  open: price,
  high: price,
  low: price,
  close: price,
  volume: 0,
  pv: 0,
  vwap: null,
  trades: 0,
  first_ts: null,
  last_ts: null,
  filled: true,
});
const empty = (start: number): BarRow => ({ ...previous(start, 0), open: null, high: null, low: null, close: null });

const query = (from: number, to: number, fill: BarQuery['fill']): BarQuery => ({ symbol: 'F', tf: '1m', from, to, fill });

describe('fillBars', () => {
  const bars = [bar(t0, 100), bar(t0 + 3 * min, 103)];

  it('none omits empty intervals', () => {
    expect(fillBars(bars, query(t0, t0 + 5 * min, 'none'))).toEqual({ ok: true, value: bars.map(real) });
  });

  it('previous carries the previous close into empty intervals', () => {
    expect(fillBars(bars, query(t0, t0 + 5 * min, 'previous'))).toEqual({
      ok: true,
      value: [real(bars[0]), previous(t0 + min, 100), previous(t0 + 2 * min, 100), real(bars[1]), previous(t0 + 4 * min, 103)],
    });
  });

  it('null emits empty intervals with null prices', () => {
    expect(fillBars(bars, query(t0, t0 + 5 * min, 'null'))).toEqual({
      ok: true,
      value: [real(bars[0]), empty(t0 + min), empty(t0 + 2 * min), real(bars[1]), empty(t0 + 4 * min)],
    });
  });

  it('previous has nothing to carry before the first close unless a bar before the range seeds it', () => {
    const from = t0 - 2 * min;
    expect(fillBars(bars, query(from, t0 + min, 'previous'))).toEqual({ ok: true, value: [empty(from), empty(from + min), real(bars[0])] });
    const seed = bar(t0 - 10 * min, 90);
    expect(fillBars([seed, ...bars], query(from, t0 + min, 'previous'))).toEqual({ ok: true, value: [previous(from, 90), previous(from + min, 90), real(bars[0])] });
  });

  it('includes the bucket that holds from and excludes the one that starts at to', () => {
    const rows = fillBars(bars, query(t0 + 30_000, t0 + 3 * min, 'null'));
    expect(rows.ok && rows.value.map((r) => r.start)).toEqual([t0, t0 + min, t0 + 2 * min]);
    expect(fillBars(bars, query(t0, t0, 'null'))).toEqual({ ok: true, value: [] });
  });

  it('fills week intervals on Mondays', () => {
    const week = utc('2024-12-30T00:00:00Z');
    const weekly = [{ ...bar(week, 7), tf: '1w' as const, last_ts: week + 1 }];
    const rows = fillBars(weekly, { symbol: 'F', tf: '1w', from: utc('2025-01-01T00:00:00Z'), to: utc('2025-01-20T00:00:00Z'), fill: 'previous' });
    expect(rows.ok && rows.value.map((r) => [new Date(r.start).toISOString().slice(0, 10), r.close, r.filled])).toEqual([
      ['2024-12-30', 7, false],
      ['2025-01-06', 7, true],
      ['2025-01-13', 7, true],
    ]);
  });

  it('refuses spans beyond barsPerQueryMax and reversed ranges, naming the field', () => {
    expect(fillBars(bars, query(t0, t0 + 10 * min, 'none'), 10).ok).toBe(true);
    const tooWide = fillBars(bars, query(t0, t0 + 10 * min + 1, 'none'), 10);
    expect(tooWide).toMatchObject({ ok: false, error: { code: 'invalid_field', field: 'to' } });
    expect(!tooWide.ok && tooWide.error.message).toMatch(/11 1m bars; at most 10/);
    expect(fillBars(bars, query(0, 8.64e15, 'none'))).toMatchObject({ ok: false, error: { field: 'to' } });
    expect(fillBars(bars, query(t0 + min, t0, 'none'))).toMatchObject({ ok: false, error: { field: 'to', message: 'to must not be before from' } });
  });

  it('treats unsorted or foreign bars as a caller bug', () => {
    expect(() => fillBars([bars[1], bars[0]], query(t0, t0 + 5 * min, 'none'))).toThrow(/sorted/);
    expect(() => fillBars([{ ...bars[0], symbol: 'G' }], query(t0, t0 + 5 * min, 'none'))).toThrow(/another symbol/);
  });
});

describe('query parameters', () => {
  it('parse instants from epoch ms and ISO-8601', () => {
    const cases: [unknown, number][] = [
      [1736157600000, t0],
      ['1736157600000', t0],
      ['2025-01-06T10:00:00Z', t0],
      ['2025-01-06t10:00:00z', t0],
      ['2025-01-06T10:00Z', t0],
      ['2025-01-06T12:00:00+02:00', t0],
      ['2025-01-06T05:30:00-04:30', t0],
      ['2025-01-06T10:00:00.5Z', t0 + 500],
      ['2025-01-06T10:00:00.123Z', t0 + 123],
      ['2025-01-06', utc('2025-01-06T00:00:00Z')],
      ['2024-02-29', utc('2024-02-29T00:00:00Z')],
      [0, 0],
    ];
    for (const [input, expected] of cases) expect(parseInstant(input, 'from'), String(input)).toEqual({ ok: true, value: expected });
  });

  it('refuse malformed, impossible and zone-less instants, naming the field', () => {
    const bad = ['2025-02-30', '2025-13-01', '2023-02-29', '2025-01-06T10:00:00', '2025-01-06T24:00:00Z', '2025-01-06T10:00:00+25:00', '1969-12-31', '1e3', '-1', '', 'now', -1, 1.5, 8.64e15 + 1, null, {}];
    for (const input of bad) {
      expect(parseInstant(input, 'to'), JSON.stringify(input)).toMatchObject({ ok: false, error: { code: 'invalid_timestamp', field: 'to' } });
    }
  });

  it('parse the fill mode, defaulting to none', () => {
    expect(parseFillMode(undefined)).toEqual({ ok: true, value: 'none' });
    expect(parseFillMode('previous')).toEqual({ ok: true, value: 'previous' });
    expect(parseFillMode('linear')).toMatchObject({ ok: false, error: { field: 'fill' } });
  });

  it('parse a whole bar query and refuse reversed or absurd ranges', () => {
    expect(parseBarQuery({ symbol: 'F', tf: '5m', from: '2025-01-06T10:00:00Z', to: String(t0 + 60 * min), fill: 'null' })).toEqual({
      ok: true,
      value: { symbol: 'F', tf: '5m', from: t0, to: t0 + 60 * min, fill: 'null' },
    });
    expect(parseBarQuery({ symbol: 'F', tf: '1m', from: t0 + 1, to: t0 })).toMatchObject({ ok: false, error: { field: 'to' } });
    expect(parseBarQuery({ symbol: 'F', tf: '1m', from: '1970-01-01', to: '2025-01-01' })).toMatchObject({ ok: false, error: { code: 'invalid_field', field: 'to' } });
    expect(parseBarQuery({ symbol: 'F', tf: '1w', from: '1970-01-01', to: '2025-01-01' }).ok).toBe(true);
    expect(parseBarQuery({ symbol: 'F', tf: '1m', from: t0, to: t0 + 11 * min }, 10)).toMatchObject({ ok: false, error: { field: 'to' } });
    expect(parseBarQuery({ symbol: 'a b', tf: '1m', from: t0, to: t0 })).toMatchObject({ ok: false, error: { code: 'invalid_symbol', field: 'symbol' } });
    expect(parseBarQuery({ symbol: 'F', tf: '7m', from: t0, to: t0 })).toMatchObject({ ok: false, error: { field: 'tf' } });
    expect(parseBarQuery({ symbol: 'F', tf: '1m', to: t0 })).toMatchObject({ ok: false, error: { field: 'from' } });
    expect(parseBarQuery({ symbol: 'F', tf: '1m', from: t0, to: t0, fill: 'zero' })).toMatchObject({ ok: false, error: { field: 'fill' } });
  });
});
