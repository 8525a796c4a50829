// Proves the bar core on hand-made ticks: UTC epoch-aligned buckets with Monday weeks (across a
// month and a year boundary), exact OHLCV/vwap/trades including a tick exactly on a boundary,
// open/close by timestamp for out-of-order ticks inside the open bar, late ticks that revise the
// recent closed bar, create a bar for an empty bucket, or revise a stored bar through the BarSource,
// ticks beyond the lateness window dropped and counted, closeElapsed, restore of open bars, input
// rejection counted by reason, and the symbolsMax bound.

import { describe, expect, it } from 'vitest';
import {
  SymbolTable,
  bucketCount,
  bucketStart,
  createBarBook,
  dayMs,
  isBucketStart,
  parseTimeframe,
  timeframes,
  validateBarBookLimits,
  type Bar,
} from '../src/market/index.js';
import { MemoryBarStore, feed, newBook, unwrap, utc } from './support/marketSupport.js';

const t0 = utc('2025-01-06T10:00:00Z'); // a Monday
const sec = 1000;
const min = 60 * sec;

describe('buckets', () => {
  it('are epoch-aligned, left-closed and labelled by their start', () => {
    expect(bucketStart('1m', t0 + 59_999)).toBe(t0);
    expect(bucketStart('1m', t0 + 60_000)).toBe(t0 + min);
    expect(bucketStart('5m', utc('2025-01-06T10:04:59.999Z'))).toBe(t0);
    expect(bucketStart('15m', utc('2025-01-06T10:29:00Z'))).toBe(utc('2025-01-06T10:15:00Z'));
    expect(bucketStart('30m', utc('2025-01-06T10:59:00Z'))).toBe(utc('2025-01-06T10:30:00Z'));
    expect(bucketStart('1h', utc('2025-01-06T10:59:59.999Z'))).toBe(t0);
    expect(bucketStart('1d', utc('2025-01-01T00:00:00Z'))).toBe(utc('2025-01-01T00:00:00Z'));
    expect(bucketStart('1d', utc('2024-12-31T23:59:59.999Z'))).toBe(utc('2024-12-31T00:00:00Z'));
  });

  it('start weeks on Monday 00:00 UTC although the epoch was a Thursday', () => {
    expect(bucketStart('1w', 0)).toBe(utc('1969-12-29T00:00:00Z'));
    expect(bucketStart('1w', utc('1970-01-05T00:00:00Z'))).toBe(utc('1970-01-05T00:00:00Z'));
    // Across a year boundary: Wednesday 2025-01-01 belongs to the week of Monday 2024-12-30.
    expect(bucketStart('1w', utc('2025-01-01T12:00:00Z'))).toBe(utc('2024-12-30T00:00:00Z'));
    expect(bucketStart('1w', utc('2024-12-30T00:00:00Z'))).toBe(utc('2024-12-30T00:00:00Z'));
    expect(bucketStart('1w', utc('2024-12-29T23:59:59.999Z'))).toBe(utc('2024-12-23T00:00:00Z'));
    expect(bucketStart('1w', utc('2025-01-05T23:59:59.999Z'))).toBe(utc('2024-12-30T00:00:00Z'));
    expect(bucketStart('1w', utc('2025-01-06T00:00:00Z'))).toBe(utc('2025-01-06T00:00:00Z'));
    // Across a month boundary: Saturday 2025-03-01 belongs to the week of Monday 2025-02-24.
    expect(bucketStart('1w', utc('2025-03-01T00:00:00Z'))).toBe(utc('2025-02-24T00:00:00Z'));
    expect(new Date(bucketStart('1w', utc('2031-07-17T05:00:00Z'))).getUTCDay()).toBe(1);
    expect(isBucketStart('1w', utc('2025-01-01T00:00:00Z'))).toBe(false);
  });

  it('count the intervals a range overlaps', () => {
    expect(bucketCount('1m', t0, t0)).toBe(0);
    expect(bucketCount('1m', t0, t0 + 1)).toBe(1);
    expect(bucketCount('1m', t0 + 30 * sec, t0 + min + 1)).toBe(2);
    expect(bucketCount('1w', utc('2025-01-01T00:00:00Z'), utc('2025-01-07T00:00:00Z'))).toBe(2);
  });

  it('parse timeframes and refuse others, naming the field', () => {
    for (const tf of timeframes) expect(parseTimeframe(tf)).toEqual({ ok: true, value: tf });
    expect(parseTimeframe('2m')).toMatchObject({ ok: false, error: { code: 'invalid_field', field: 'tf' } });
    expect(parseTimeframe('toString')).toMatchObject({ ok: false, error: { field: 'tf' } });
  });
});

describe('BarBook bars', () => {
  it('builds exact bars and closes them on a tick exactly on the boundary', () => {
    const { book, store } = newBook();
    const outcomes = feed(book, [
      { symbol: 'AAPL', price: 100, ts: t0, size: 10 },
      { symbol: 'AAPL', price: 102, ts: t0 + 30 * sec, size: 5 },
      { symbol: 'AAPL', price: 99, ts: t0 + 59_999 },
    ]);
    expect(outcomes).toEqual(['applied', 'applied', 'applied']);
    expect(store.closedBars).toEqual([]);
    expect(book.onTick('AAPL', 101, t0 + min, 2)).toBe('applied');
    expect(store.closedBars).toEqual<Bar[]>([
      { symbol: 'AAPL', tf: '1m', start: t0, open: 100, high: 102, low: 99, close: 99, volume: 15, pv: 1510, vwap: 1510 / 15, trades: 3, first_ts: t0, last_ts: t0 + 59_999 },
    ]);
    expect(book.openBar('AAPL', '1m')).toEqual<Bar>({ symbol: 'AAPL', tf: '1m', start: t0 + min, open: 101, high: 101, low: 101, close: 101, volume: 2, pv: 202, vwap: 101, trades: 1, first_ts: t0 + min, last_ts: t0 + min });
    expect(book.openBar('AAPL', '5m')).toMatchObject({ start: t0, open: 100, high: 102, low: 99, close: 101, volume: 17, pv: 1712, trades: 4, last_ts: t0 + min });
    expect(book.openBar('AAPL', '1w')).toMatchObject({ start: utc('2025-01-06T00:00:00Z'), trades: 4 });
  });

  it('leaves size-less ticks out of volume and vwap but counts them in OHLC and trades', () => {
    const { book } = newBook();
    feed(book, [
      { symbol: 'X', price: 10, ts: t0 },
      { symbol: 'X', price: 12, ts: t0 + sec },
    ]);
    expect(book.openBar('X', '1m')).toMatchObject({ open: 10, high: 12, close: 12, volume: 0, pv: 0, vwap: null, trades: 2 });
    book.onTick('X', 11, t0 + 2 * sec, 0);
    expect(book.openBar('X', '1m')).toMatchObject({ volume: 0, vwap: null, trades: 3 });
    book.onTick('X', 11, t0 + 3 * sec, 4);
    expect(book.openBar('X', '1m')).toMatchObject({ volume: 4, pv: 44, vwap: 11, trades: 4 });
  });

  it('opens and closes by tick timestamp, not arrival, inside the open bar', () => {
    const { book, store } = newBook({ latenessMs: 0 });
    feed(book, [
      { symbol: 'S', price: 100, ts: t0 + 10 * sec },
      { symbol: 'S', price: 105, ts: t0 + 20 * sec },
      { symbol: 'S', price: 98, ts: t0 + 5 * sec }, // earlier than the open: becomes the open
    ]);
    expect(book.openBar('S', '1m')).toMatchObject({ open: 98, close: 105, first_ts: t0 + 5 * sec, last_ts: t0 + 20 * sec, low: 98, trades: 3 });
    // Ties: a later arrival at the close's ts takes the close; at the open's ts it leaves the open.
    book.onTick('S', 104, t0 + 20 * sec);
    book.onTick('S', 97, t0 + 5 * sec);
    expect(book.openBar('S', '1m')).toMatchObject({ open: 98, close: 104, low: 97, trades: 5 });
    // Never "late" while inside the open 1m bar, even with latenessMs 0.
    expect(book.stats().dropped.late).toBe(0);
    expect(store.revisedBars).toEqual([]);
  });

  it('rolls a week bar across the year boundary and day bars at each midnight', () => {
    const { book, store } = newBook();
    feed(book, [
      { symbol: 'W', price: 10, ts: utc('2024-12-30T00:00:00Z'), size: 1 },
      { symbol: 'W', price: 12, ts: utc('2024-12-31T23:59:59.999Z'), size: 1 },
      { symbol: 'W', price: 11, ts: utc('2025-01-01T00:00:00Z'), size: 2 },
      { symbol: 'W', price: 9, ts: utc('2025-01-05T23:59:59.999Z'), size: 1 },
    ]);
    expect(store.closedBars.filter((b) => b.tf === '1w')).toEqual([]);
    expect(store.closedBars.filter((b) => b.tf === '1d').map((b) => new Date(b.start).toISOString())).toEqual([
      '2024-12-30T00:00:00.000Z',
      '2024-12-31T00:00:00.000Z',
      '2025-01-01T00:00:00.000Z',
    ]);
    book.onTick('W', 13, utc('2025-01-06T00:00:00Z'), 1);
    expect(store.closedBars.filter((b) => b.tf === '1w')).toEqual<Bar[]>([
      {
        symbol: 'W',
        tf: '1w',
        start: utc('2024-12-30T00:00:00Z'),
        open: 10,
        high: 12,
        low: 9,
        close: 9,
        volume: 5,
        pv: 10 + 12 + 22 + 9,
        vwap: 53 / 5,
        trades: 4,
        first_ts: utc('2024-12-30T00:00:00Z'),
        last_ts: utc('2025-01-05T23:59:59.999Z'),
      },
    ]);
    expect(book.openBar('W', '1w')?.start).toBe(utc('2025-01-06T00:00:00Z'));
  });

  it('emits closed bars of every timeframe whose bucket a tick leaves, finest first', () => {
    const { book, store } = newBook();
    book.onTick('Q', 1, utc('2025-01-05T23:59:00Z'));
    book.onTick('Q', 2, utc('2025-01-06T00:00:00Z'));
    expect(store.closedBars.map((b) => b.tf)).toEqual(['1m', '5m', '15m', '30m', '1h', '1d', '1w']);
    expect(book.stats().barsClosed).toBe(7);
  });
});

describe('late ticks', () => {
  it('revise the recent closed bar in memory when within latenessMs', () => {
    const { book, store } = newBook({ latenessMs: 5 * sec });
    feed(book, [
      { symbol: 'L', price: 100, ts: t0 + 50 * sec, size: 1 },
      { symbol: 'L', price: 101, ts: t0 + 61 * sec, size: 1 },
    ]);
    expect(book.onTick('L', 110, t0 + 58 * sec, 1)).toBe('revised');
    expect(store.revisedBars).toEqual<Bar[]>([
      { symbol: 'L', tf: '1m', start: t0, open: 100, high: 110, low: 100, close: 110, volume: 2, pv: 210, vwap: 105, trades: 2, first_ts: t0 + 50 * sec, last_ts: t0 + 58 * sec },
    ]);
    // In the 5m timeframe the same tick is inside the open bar, where 101 at 61s stays the close.
    expect(book.openBar('L', '5m')).toMatchObject({ close: 101, high: 110, trades: 3 });
    expect(store.gets).toEqual([]); // served from memory, not the source
  });

  it('are dropped and counted beyond latenessMs, changing no timeframe', () => {
    const { book, store } = newBook({ latenessMs: 5 * sec });
    feed(book, [
      { symbol: 'L', price: 100, ts: t0 + 50 * sec },
      { symbol: 'L', price: 101, ts: t0 + 61 * sec },
    ]);
    expect(book.onTick('L', 90, t0 + 55 * sec)).toBe('late'); // 55s < 61s - 5s
    expect(book.onTick('L', 90, t0 + 56 * sec)).toBe('revised'); // exactly at the window's edge
    expect(book.stats().dropped.late).toBe(1);
    expect(book.openBar('L', '5m')?.trades).toBe(3);
    expect(store.revisedBars).toHaveLength(1);
  });

  it('create a bar for an empty bucket between the recent closed bar and the open one', () => {
    const { book, store } = newBook({ latenessMs: 10 * sec });
    feed(book, [
      { symbol: 'G', price: 100, ts: t0 + 10 * sec },
      { symbol: 'G', price: 101, ts: t0 + 185 * sec },
    ]);
    expect(book.onTick('G', 99, t0 + 179 * sec, 3)).toBe('revised');
    expect(store.revisedBars[0]).toEqual<Bar>({ symbol: 'G', tf: '1m', start: t0 + 2 * min, open: 99, high: 99, low: 99, close: 99, volume: 3, pv: 297, vwap: 99, trades: 1, first_ts: t0 + 179 * sec, last_ts: t0 + 179 * sec });
    // That bar is now the recent one: the next late tick for it revises it in memory.
    expect(book.onTick('G', 98, t0 + 178 * sec)).toBe('revised');
    expect(store.revisedBars[1]).toMatchObject({ start: t0 + 2 * min, open: 98, close: 99, low: 98, trades: 2 });
    expect(store.gets).toEqual([]);
  });

  it('revise an older stored bar through the BarSource', () => {
    const { book, store } = newBook({ latenessMs: 10 * min });
    feed(book, [
      { symbol: 'R', price: 100, ts: t0 + 10 * sec, size: 1 },
      { symbol: 'R', price: 101, ts: t0 + 70 * sec, size: 1 },
      { symbol: 'R', price: 102, ts: t0 + 130 * sec, size: 1 },
    ]);
    expect(book.onTick('R', 120, t0 + 20 * sec, 1)).toBe('revised');
    expect(store.gets).toEqual([`R|1m|${t0}`]);
    expect(store.series('R', '1m')[0]).toEqual<Bar>({ symbol: 'R', tf: '1m', start: t0, open: 100, high: 120, low: 100, close: 120, volume: 2, pv: 220, vwap: 110, trades: 2, first_ts: t0 + 10 * sec, last_ts: t0 + 20 * sec });
    expect(store.duplicates).toBe(0);
  });

  it('follow the same tie rules on a stored bar: the first arrival keeps open, the last takes close', () => {
    const { book, store } = newBook({ latenessMs: 10 * min });
    feed(book, [
      { symbol: 'T', price: 100, ts: t0 + 10 * sec },
      { symbol: 'T', price: 101, ts: t0 + 70 * sec },
      { symbol: 'T', price: 102, ts: t0 + 130 * sec },
    ]);
    book.onTick('T', 90, t0 + 10 * sec);
    expect(store.series('T', '1m')[0]).toMatchObject({ open: 100, close: 90, low: 90, trades: 2, first_ts: t0 + 10 * sec, last_ts: t0 + 10 * sec });
    expect(store.gets).toEqual([`T|1m|${t0}`]);
  });

  it('create a bar through the BarSource when the older bucket had no tick', () => {
    const { book, store } = newBook({ latenessMs: 10 * min });
    feed(book, [
      { symbol: 'R', price: 100, ts: t0 + 10 * sec },
      { symbol: 'R', price: 101, ts: t0 + 130 * sec },
      { symbol: 'R', price: 102, ts: t0 + 190 * sec },
    ]);
    expect(book.onTick('R', 95, t0 + 70 * sec)).toBe('revised');
    expect(store.revisedBars.map((b) => [b.tf, b.start, b.trades])).toEqual([['1m', t0 + min, 1]]);
  });

  it('are dropped as no_source, changing no timeframe, when an older bar is needed and there is no source', () => {
    const { book, store } = newBook({ latenessMs: 10 * min }, false);
    feed(book, [
      { symbol: 'N', price: 100, ts: t0 + 10 * sec },
      { symbol: 'N', price: 101, ts: t0 + 70 * sec },
      { symbol: 'N', price: 102, ts: t0 + 130 * sec },
    ]);
    expect(book.onTick('N', 120, t0 + 20 * sec)).toBe('no_source');
    expect(book.openBar('N', '5m')).toMatchObject({ trades: 3, high: 102 });
    expect(store.revisedBars).toEqual([]);
    expect(book.stats().dropped.no_source).toBe(1);
  });
});

describe('BarBook lifecycle', () => {
  it('closeElapsed closes bars of a quiet symbol once their bucket and latenessMs have passed', () => {
    const { book, store } = newBook({ latenessMs: 5 * sec });
    book.onTick('Q', 100, t0 + 10 * sec);
    expect(book.closeElapsed(t0 + min + 5 * sec - 1)).toBe(0);
    expect(book.closeElapsed(t0 + min + 5 * sec)).toBe(1);
    expect(store.closedBars.map((b) => b.tf)).toEqual(['1m']);
    expect(book.openBar('Q', '1m')).toBeNull();
    // A tick for that bucket (not late: the symbol's newest tick is 10s) revises the closed bar.
    expect(book.onTick('Q', 101, t0 + 30 * sec)).toBe('revised');
    expect(store.revisedBars[0]).toMatchObject({ tf: '1m', start: t0, close: 101, trades: 2 });
    // A tick of a later bucket opens a new bar without closing anything twice.
    expect(book.onTick('Q', 102, t0 + 70 * sec)).toBe('applied');
    expect(store.closedBars).toHaveLength(1);
    expect(store.duplicates).toBe(0);
    expect(book.openBar('Q', '5m')).toMatchObject({ trades: 3 });
  });

  it('restores open bars saved by openBars and continues exactly as the original book', () => {
    const ticks = [
      { symbol: 'A', price: 10, ts: t0, size: 1 },
      { symbol: 'B', price: 20, ts: t0 + sec, size: 2 },
      { symbol: 'A', price: 11, ts: t0 + 2 * min },
    ];
    const later = [
      { symbol: 'A', price: 12, ts: t0 + 2 * min + 10 * sec, size: 1 },
      { symbol: 'A', price: 13, ts: t0 + 2 * dayMs, size: 1 },
      { symbol: 'B', price: 19, ts: t0 + 2 * dayMs, size: 1 },
    ];
    const original = newBook();
    feed(original.book, ticks);
    const restored = newBook();
    for (const bar of JSON.parse(JSON.stringify(original.book.openBars())) as unknown[]) unwrap(restored.book.restore(bar));
    expect(restored.book.openBars().sort(byKey)).toEqual(original.book.openBars().sort(byKey));
    const closedBefore = original.store.closedBars.length;
    feed(original.book, later);
    feed(restored.book, later);
    expect(restored.store.closedBars.sort(byKey)).toEqual(original.store.closedBars.slice(closedBefore).sort(byKey));
  });

  it('restore refuses invalid bars and a second open bar for one slot, naming the field', () => {
    const { book } = newBook();
    const bar: Bar = { symbol: 'A', tf: '5m', start: t0, open: 1, high: 2, low: 1, close: 2, volume: 0, pv: 0, vwap: null, trades: 2, first_ts: t0, last_ts: t0 + 1 };
    expect(book.restore(bar).ok).toBe(true);
    expect(book.restore(bar)).toMatchObject({ ok: false, error: { field: 'bar.start' } });
    expect(book.restore({ ...bar, start: t0 + 1 })).toMatchObject({ ok: false, error: { code: 'invalid_timestamp', field: 'bar.start' } });
    expect(book.restore({ ...bar, tf: '1m', high: 0.5 })).toMatchObject({ ok: false, error: { field: 'bar.high' } });
    expect(book.restore({ ...bar, tf: '1m', last_ts: t0 + min })).toMatchObject({ ok: false, error: { field: 'bar.last_ts' } });
    expect(book.restore({ ...bar, tf: '1m', trades: 0 })).toMatchObject({ ok: false, error: { field: 'bar.trades' } });
    expect(book.restore({ ...bar, symbol: 'no spaces' })).toMatchObject({ ok: false, error: { code: 'invalid_symbol', field: 'bar.symbol' } });
  });

  it('counts rejected ticks by reason and bounds symbols by symbolsMax', () => {
    const { book } = newBook({ symbolsMax: 2 });
    expect(book.onTick('A', 0, t0)).toBe('invalid');
    expect(book.onTick('A', Number.NaN, t0)).toBe('invalid');
    expect(book.onTick('A', 1, t0 + 0.5)).toBe('invalid');
    expect(book.onTick('A', 1, -1)).toBe('invalid');
    expect(book.onTick('A', 1, t0, -1)).toBe('invalid');
    expect(book.onTick('A', 1, t0, Number.NaN)).toBe('invalid');
    expect(book.onTick('bad symbol', 1, t0)).toBe('invalid');
    expect(book.onTick(7, 1, t0)).toBe('unknown_symbol');
    expect(book.onTick('A', 1, t0)).toBe('applied');
    expect(book.onTick(0, 2, t0 + 1)).toBe('applied'); // by id
    expect(book.onTick('B', 1, t0)).toBe('applied');
    expect(book.onTick('C', 1, t0)).toBe('symbols_full');
    expect(book.stats()).toEqual({
      symbols: 2,
      ticksApplied: 3,
      barsClosed: 0,
      barsRevised: 0,
      dropped: { late: 0, invalid: 7, symbols_full: 1, unknown_symbol: 1, no_source: 0 },
    });
  });

  it('grows past its initial capacity and shares ids through a SymbolTable', () => {
    const symbols = new SymbolTable(500);
    const store = new MemoryBarStore();
    const book = unwrap(createBarBook({ sink: store, symbols }));
    for (let i = 0; i < 500; i++) expect(book.onTick(`S${i}`, 1 + i, t0 + i)).toBe('applied');
    expect(book.onTick(symbols.idOf('S499'), 2, t0 + 999)).toBe('applied');
    expect(book.openBar('S499', '1m')).toMatchObject({ open: 500, close: 2, trades: 2 });
    expect(book.openBar('S0', '1h')).toMatchObject({ open: 1, trades: 1 });
    expect(book.limits.symbolsMax).toBe(500);
  });

  it('ignores ids a shared table registered for other modules until they tick here', () => {
    const symbols = new SymbolTable(1000);
    const store = new MemoryBarStore();
    const book = unwrap(createBarBook({ sink: store, symbols }));
    for (let i = 0; i < 300; i++) symbols.intern(`OTHER${i}`);
    expect(book.onTick('OTHER0', 5, t0)).toBe('applied');
    expect(book.openBars()).toHaveLength(7);
    expect(book.openBar('OTHER299', '1m')).toBeNull();
    expect(book.checkGaps(t0 + dayMs)).toEqual([]);
    expect(book.closeElapsed(t0 + 30 * dayMs)).toBe(7);
    expect(book.onTick(symbols.idOf('OTHER299'), 6, t0)).toBe('applied');
    expect(book.openBar('OTHER299', '1d')).toMatchObject({ open: 6, trades: 1 });
  });

  it('validates its limits, naming the field', () => {
    expect(validateBarBookLimits({ latenessMs: -1 })).toMatchObject({ ok: false, error: { code: 'invalid_limits', field: 'limits.latenessMs' } });
    expect(validateBarBookLimits({ symbolsMax: 1.5 })).toMatchObject({ ok: false, error: { field: 'limits.symbolsMax' } });
    expect(validateBarBookLimits({ feedGapMs: 0 })).toMatchObject({ ok: false, error: { field: 'limits.feedGapMs' } });
    expect(validateBarBookLimits({ gapsPerCheck: 3 })).toMatchObject({ ok: false, error: { field: 'limits.gapsPerCheck' } });
    expect(createBarBook({ sink: new MemoryBarStore(), limits: { gapsPerCheckMax: 0 } })).toMatchObject({ ok: false, error: { field: 'limits.gapsPerCheckMax' } });
  });
});

const byKey = (a: Bar, b: Bar): number => a.symbol.localeCompare(b.symbol) || a.tf.localeCompare(b.tf) || a.start - b.start;
