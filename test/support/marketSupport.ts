// Test support for the market modules: an in-memory bar store (sink and source at once, as the LMDB
// store will be), a reference aggregator that builds bars straight from ticks with decimal sums,
// and small helpers to build books and read UTC instants.

import { Decimal } from 'decimal.js';
import { expect } from 'vitest';
import {
  bucketStart,
  createBarBook,
  timeframes,
  type Bar,
  type BarBook,
  type BarBookLimits,
  type BarSink,
  type BarSource,
  type Timeframe,
} from '../../src/market/index.js';

export interface Tick {
  symbol: string;
  price: number;
  ts: number;
  size?: number;
}

export const utc = (iso: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad test instant ${iso}`);
  return ms;
};

export function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: { code: string; message: string } }): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
}

/** Everything the sink received, in order, plus a keyed store that revisions overwrite. */
export class MemoryBarStore implements BarSink, BarSource {
  readonly closedBars: Bar[] = [];
  readonly revisedBars: Bar[] = [];
  readonly gets: string[] = [];
  /** A closed bar for a key already stored would be a duplicate: the book must never do that. */
  duplicates = 0;
  private readonly byKey = new Map<string, Bar>();

  closed(bar: Bar): void {
    this.closedBars.push(bar);
    if (this.byKey.has(keyOf(bar.symbol, bar.tf, bar.start))) this.duplicates++;
    this.byKey.set(keyOf(bar.symbol, bar.tf, bar.start), bar);
  }

  revised(bar: Bar): void {
    this.revisedBars.push(bar);
    this.byKey.set(keyOf(bar.symbol, bar.tf, bar.start), bar);
  }

  get(symbol: string, tf: Timeframe, start: number): Bar | null {
    this.gets.push(keyOf(symbol, tf, start));
    return this.byKey.get(keyOf(symbol, tf, start)) ?? null;
  }

  /** Stored bars of one series, sorted by start, with the book's open bar appended when given. */
  series(symbol: string, tf: Timeframe, book?: BarBook): Bar[] {
    const bars = [...this.byKey.values()].filter((b) => b.symbol === symbol && b.tf === tf);
    const open = book?.openBar(symbol, tf);
    if (open) bars.push(open);
    return bars.sort((a, b) => a.start - b.start);
  }
}

const keyOf = (symbol: string, tf: Timeframe, start: number): string => `${symbol}|${tf}|${start}`;

export function newBook(limits: Partial<BarBookLimits> = {}, withSource = true): { book: BarBook; store: MemoryBarStore } {
  const store = new MemoryBarStore();
  const book = unwrap(createBarBook({ limits, sink: store, source: withSource ? store : undefined }));
  return { book, store };
}

export function feed(book: BarBook, ticks: readonly Tick[]): string[] {
  return ticks.map((t) => book.onTick(t.symbol, t.price, t.ts, t.size));
}

/**
 * Bars of one symbol and timeframe computed directly from the ticks: open and close by timestamp
 * (ties: the first arrival opens, the last arrival closes), sums in decimal so that any float
 * rounding in the book would show as a mismatch.
 */
export function aggregateTicks(ticks: readonly Tick[], symbol: string, tf: Timeframe): Bar[] {
  const groups = new Map<number, Tick[]>();
  for (const t of ticks) {
    if (t.symbol !== symbol) continue;
    const start = bucketStart(tf, t.ts);
    const group = groups.get(start) ?? [];
    group.push(t);
    groups.set(start, group);
  }
  const bars: Bar[] = [];
  for (const [start, group] of [...groups.entries()].sort((a, b) => a[0] - b[0])) {
    const byTs = [...group].sort((a, b) => a.ts - b.ts); // stable: ties keep arrival order
    let volume = new Decimal(0);
    let pv = new Decimal(0);
    for (const t of group) {
      if (t.size === undefined) continue;
      volume = volume.plus(t.size);
      pv = pv.plus(new Decimal(t.price).times(t.size));
    }
    const prices = group.map((t) => t.price);
    bars.push({
      symbol,
      tf,
      start,
      open: byTs[0].price,
      high: Math.max(...prices),
      low: Math.min(...prices),
      close: byTs[byTs.length - 1].price,
      volume: volume.toNumber(),
      pv: pv.toNumber(),
      vwap: volume.isZero() ? null : pv.toNumber() / volume.toNumber(),
      trades: group.length,
      first_ts: byTs[0].ts,
      last_ts: byTs[byTs.length - 1].ts,
    });
  }
  return bars;
}

/** Field-by-field equality with a readable failure: which series, which bar, which field. */
export function expectSameBars(actual: readonly Bar[], expected: readonly Bar[], label: string): void {
  expect(actual.map((b) => b.start), `${label}: bar starts`).toEqual(expected.map((b) => b.start));
  for (let i = 0; i < expected.length; i++) expect(actual[i], `${label}: bar ${new Date(expected[i].start).toISOString()}`).toEqual(expected[i]);
}

export const coarseTimeframes = timeframes.filter((tf) => tf !== '1m');
