// Proves roll-ups exact, by property: for random tick streams (out of order within the lateness
// window, size-less ticks, gaps of minutes to days, spanning week, month and year boundaries),
// rolling the BarBook's 1m bars up into 5m/15m/30m/1h/1d/1w equals aggregating the ticks directly
// (decimal sums; prices are quarters and sizes integers, so every float sum is exact), and equals the
// BarBook's own bars of that timeframe. A second property drops ticks beyond the lateness window
// and without a BarSource, and checks a dropped tick leaves every timeframe untouched.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dayMs, rollUp, type Bar } from '../src/market/index.js';
import { aggregateTicks, coarseTimeframes, expectSameBars, newBook, utc, type Tick } from './support/marketSupport.js';

const origin = utc('2024-12-27T18:00:00Z'); // a Friday evening before a year end
const symbols = ['AAA', 'BBB'];

interface Step {
  advanceMs: number;
  jitterMs: number;
  symbol: number;
  quarters: number;
  size: number | null;
}

const stepArb = (jitterMax: number): fc.Arbitrary<Step> =>
  fc.record({
    advanceMs: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: 90_000 }) },
      { weight: 2, arbitrary: fc.constantFrom(0, 59_999, 60_000, 60_001) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 * dayMs }) },
    ),
    // Zero jitter with zero advance makes equal timestamps: the tie rules for open and close.
    jitterMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: jitterMax })),
    symbol: fc.integer({ min: 0, max: symbols.length - 1 }),
    quarters: fc.integer({ min: 1, max: 400_000 }),
    size: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: null }),
  });

/** Ticks whose ts trails a non-decreasing clock by at most jitterMs: out of order, never beyond it. */
function ticksOf(steps: readonly Step[]): Tick[] {
  let clock = origin;
  return steps.map((s) => {
    clock += s.advanceMs;
    const tick: Tick = { symbol: symbols[s.symbol], price: s.quarters / 4, ts: clock - s.jitterMs };
    if (s.size !== null) tick.size = s.size;
    return tick;
  });
}

describe('rollUp', () => {
  it('of 1m bars equals aggregating the ticks directly, in every coarser timeframe', () => {
    const latenessMs = 150_000; // longer than 1m: late ticks reach buckets older than the recent one
    fc.assert(
      fc.property(fc.array(stepArb(latenessMs), { minLength: 1, maxLength: 300 }), (steps) => {
        const ticks = ticksOf(steps);
        const { book, store } = newBook({ latenessMs });
        for (const t of ticks) expect(['applied', 'revised']).toContain(book.onTick(t.symbol, t.price, t.ts, t.size));
        expect(store.duplicates).toBe(0);
        for (const symbol of symbols) {
          const minutes = store.series(symbol, '1m', book);
          expectSameBars(minutes, aggregateTicks(ticks, symbol, '1m'), `${symbol} 1m`);
          for (const tf of coarseTimeframes) {
            const direct = aggregateTicks(ticks, symbol, tf);
            expectSameBars(rollUp(minutes, tf), direct, `${symbol} 1m→${tf}`);
            expectSameBars(store.series(symbol, tf, book), direct, `${symbol} ${tf} from the book`);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('stays exact when late ticks are dropped: a dropped tick changes no timeframe', () => {
    const latenessMs = 30_000;
    fc.assert(
      fc.property(fc.array(stepArb(4 * latenessMs), { minLength: 1, maxLength: 200 }), fc.boolean(), (steps, withSource) => {
        const ticks = ticksOf(steps);
        const { book, store } = newBook({ latenessMs }, withSource);
        const accepted = ticks.filter((t) => {
          const outcome = book.onTick(t.symbol, t.price, t.ts, t.size);
          expect(['applied', 'revised', 'late', 'no_source']).toContain(outcome);
          return outcome === 'applied' || outcome === 'revised';
        });
        const { dropped } = book.stats();
        expect(dropped.late + dropped.no_source).toBe(ticks.length - accepted.length);
        for (const symbol of symbols) {
          const minutes = store.series(symbol, '1m', book);
          expectSameBars(minutes, aggregateTicks(accepted, symbol, '1m'), `${symbol} 1m`);
          for (const tf of coarseTimeframes) {
            expectSameBars(rollUp(minutes, tf), aggregateTicks(accepted, symbol, tf), `${symbol} 1m→${tf}`);
            expectSameBars(store.series(symbol, tf, book), aggregateTicks(accepted, symbol, tf), `${symbol} ${tf} from the book`);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('merges hand-made bars: open of the first, close of the last, extremes and sums', () => {
    const m = (start: number, o: number, h: number, l: number, c: number, volume: number, pv: number, trades: number): Bar => ({
      symbol: 'X', tf: '1m', start, open: o, high: h, low: l, close: c, volume, pv, vwap: volume > 0 ? pv / volume : null, trades, first_ts: start + 1, last_ts: start + 2,
    });
    const t = utc('2025-01-06T10:00:00Z');
    const rolled = rollUp([m(t, 10, 12, 9, 11, 2, 21, 2), m(t + 60_000, 11, 15, 11, 14, 0, 0, 1), m(t + 5 * 60_000, 14, 14, 8, 8, 1, 8, 1)], '5m');
    expect(rolled).toEqual<Bar[]>([
      { symbol: 'X', tf: '5m', start: t, open: 10, high: 15, low: 9, close: 14, volume: 2, pv: 21, vwap: 10.5, trades: 3, first_ts: t + 1, last_ts: t + 60_002 },
      { symbol: 'X', tf: '5m', start: t + 300_000, open: 14, high: 14, low: 8, close: 8, volume: 1, pv: 8, vwap: 8, trades: 1, first_ts: t + 300_001, last_ts: t + 300_002 },
    ]);
    expect(rollUp([], '1h')).toEqual([]);
    expect(() => rollUp(rolled, '1m')).toThrow(/cannot roll up/);
  });
});
