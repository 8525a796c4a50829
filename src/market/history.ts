// Walking a bar query's intervals in windows: what an HTTP page and a WebSocket history chunk are
// made of. Each window is one range read of stored bars (one cursor walk), the open bar merged in,
// then gap-filled; a window never spans more intervals than the rows it may still return, so a
// result is bounded whatever the fill mode, and the 'previous' fill carries across windows.

import { assert } from '../assert.js';
import type { Bar } from './bar.js';
import { fillBars, type BarQuery, type BarRow } from './fill.js';
import { bucketCount, bucketStart, widthMs } from './timeframe.js';

/** Reads stored closed bars (the market store, pending writes included). */
export interface BarReader {
  /** Bars of one series with from <= start < to, sorted by start. */
  range(symbol: string, tf: BarQuery['tf'], from: number, to: number): Bar[];
  /** The newest bar of the series starting before `start`, or null. */
  before(symbol: string, tf: BarQuery['tf'], start: number): Bar | null;
}

/** Range reads one next() call makes at most, so a sparse series cannot make one call long. */
export const windowsPerCallMax = 64;

export class BarCursor {
  /** Intervals of tf in the query's range. */
  readonly total: number;
  private readonly first: number;
  private readonly width: number;
  private pos: number;
  /** The newest real bar before pos, for the 'previous' fill; undefined until looked up. */
  private seed: Bar | null | undefined = undefined;

  /**
   * @param open the open bar of the series (null: none), merged over a stored bar of the same start
   * @param start where to resume (a page cursor): a bucket start inside the range; default the range's first
   */
  constructor(
    private readonly reader: BarReader,
    private readonly query: BarQuery,
    private readonly open: Bar | null,
    start?: number,
  ) {
    this.width = widthMs(query.tf);
    this.first = bucketStart(query.tf, query.from);
    this.total = bucketCount(query.tf, query.from, query.to);
    // An empty range (from === to inside a bucket) has no interval: it starts finished.
    this.pos = this.total === 0 ? Math.max(this.first, query.to) : (start ?? this.first);
    assert(this.total === 0 || bucketStart(query.tf, this.pos) === this.pos && this.pos >= this.first, 'BarCursor: start must be a bucket start inside the range');
  }

  /** Where the next call starts: a page's cursor. */
  get position(): number {
    return this.pos;
  }

  get finished(): boolean {
    return this.pos >= this.query.to;
  }

  /** Intervals covered so far (progress). */
  get done(): number {
    return Math.min(this.total, Math.ceil((this.pos - this.first) / this.width));
  }

  /** At most rowsMax rows, continuing where the last call stopped; fewer (even none) before the end when the data is sparse. */
  next(rowsMax: number): BarRow[] {
    assert(Number.isInteger(rowsMax) && rowsMax >= 1, 'BarCursor.next: rowsMax must be >= 1');
    const { symbol, tf } = this.query;
    const rows: BarRow[] = [];
    for (let windows = 0; rows.length < rowsMax && this.pos < this.query.to && windows < windowsPerCallMax; windows++) {
      const intervals = rowsMax - rows.length;
      const end = Math.min(this.query.to, this.pos + intervals * this.width);
      let bars = this.reader.range(symbol, tf, this.pos, end);
      const open = this.open;
      if (open !== null && open.start >= this.pos && open.start < end) {
        bars = bars.filter((b) => b.start !== open.start);
        bars.push(open);
        bars.sort((a, b) => a.start - b.start);
      }
      const lead = this.query.fill === 'previous' ? this.seedBefore(this.pos) : null;
      const filled = fillBars(lead === null ? bars : [lead, ...bars], { ...this.query, from: this.pos, to: end }, intervals);
      assert(filled.ok, 'BarCursor: a window never spans more intervals than it may return');
      for (const row of filled.value) rows.push(row);
      if (bars.length > 0) this.seed = bars[bars.length - 1];
      this.pos = end;
    }
    return rows;
  }

  private seedBefore(pos: number): Bar | null {
    if (this.seed === undefined) {
      let seed = this.reader.before(this.query.symbol, this.query.tf, pos);
      const open = this.open;
      if (open !== null && open.start < pos && (seed === null || open.start > seed.start)) seed = open;
      this.seed = seed;
    }
    return this.seed;
  }
}
