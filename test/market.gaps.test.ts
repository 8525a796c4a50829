// Proves FeedGap detection: a symbol silent for longer than feedGapMs while the feed is otherwise
// alive is reported once as an open gap, then as a closed gap when it ticks again; a silence exactly
// at the threshold and a whole-feed outage are not symbol gaps; each check's output is bounded by
// gapsPerCheckMax and later checks continue where it stopped.

import { describe, expect, it } from 'vitest';
import { feed, newBook, utc } from './support/marketSupport.js';

const t0 = utc('2025-01-06T10:00:00Z');
const sec = 1000;

describe('checkGaps', () => {
  it('reports a silent symbol once while others tick, then the gap closed when it resumes', () => {
    const { book } = newBook({ feedGapMs: 60 * sec });
    feed(book, [
      { symbol: 'A', price: 1, ts: t0 },
      { symbol: 'B', price: 1, ts: t0 },
      { symbol: 'B', price: 1, ts: t0 + 30 * sec },
      { symbol: 'B', price: 1, ts: t0 + 60 * sec },
    ]);
    expect(book.checkGaps(t0 + 60 * sec)).toEqual([]); // exactly at the threshold: not yet
    book.onTick('B', 1, t0 + 90 * sec);
    expect(book.checkGaps(t0 + 90 * sec)).toEqual([{ symbol: 'A', from: t0, to: t0 + 90 * sec, state: 'open' }]);
    expect(book.checkGaps(t0 + 95 * sec)).toEqual([]);
    book.onTick('A', 2, t0 + 100 * sec);
    book.onTick('A', 3, t0 + 101 * sec);
    expect(book.checkGaps(t0 + 102 * sec)).toEqual([{ symbol: 'A', from: t0, to: t0 + 100 * sec, state: 'closed' }]);
    expect(book.checkGaps(t0 + 103 * sec)).toEqual([]);
  });

  it('reports nothing when the whole feed is silent', () => {
    const { book } = newBook({ feedGapMs: 60 * sec });
    feed(book, [
      { symbol: 'A', price: 1, ts: t0 },
      { symbol: 'B', price: 1, ts: t0 + 10 * sec },
    ]);
    expect(book.checkGaps(t0 + 3600 * sec)).toEqual([]);
  });

  it('bounds each check by gapsPerCheckMax and continues round-robin', () => {
    const { book } = newBook({ feedGapMs: 60 * sec, gapsPerCheckMax: 2 });
    for (let i = 0; i < 5; i++) book.onTick(`S${i}`, 1, t0);
    book.onTick('LIVE', 1, t0 + 120 * sec);
    const now = t0 + 120 * sec;
    const batches = [book.checkGaps(now), book.checkGaps(now), book.checkGaps(now), book.checkGaps(now)];
    expect(batches.map((b) => b.length)).toEqual([2, 2, 1, 0]);
    expect(batches.flat().map((g) => g.symbol).sort()).toEqual(['S0', 'S1', 'S2', 'S3', 'S4']);
  });
});
