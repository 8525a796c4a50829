// Gap filling for bar queries. An interval with no tick has no bar; a query chooses whether to omit
// it (none), carry the previous close into it (previous), or emit it with null prices (null).
// Output is bounded: a span of more than barsPerQueryMax intervals is refused before any work.

import { assert } from '../assert.js';
import { ErrorCode, fail, ok, type Result } from '../errors.js';
import type { Bar } from './bar.js';
import { bucketCount, bucketStart, widthMs, type Timeframe } from './timeframe.js';

export const fillModes = ['none', 'previous', 'null'] as const;
export type FillMode = (typeof fillModes)[number];

/** A bar as a query returns it: a real bar (filled: false) or a filled gap. */
export interface BarRow {
  symbol: string;
  tf: Timeframe;
  start: number;
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
  volume: number;
  pv: number;
  vwap: number | null;
  trades: number;
  first_ts: number | null;
  last_ts: number | null;
  filled: boolean;
}

/** Bars of one symbol and timeframe over the intervals that overlap [from, to). */
export interface BarQuery {
  symbol: string;
  tf: Timeframe;
  from: number;
  to: number;
  fill: FillMode;
}

export const barsPerQueryMaxDefault = 10_000;

/** Refuses spans that would return more than barsPerQueryMax intervals; names the field to change. */
export function checkSpan(tf: Timeframe, from: number, to: number, barsPerQueryMax: number): Result<number> {
  if (to < from) return fail(ErrorCode.invalid_field, 'to must not be before from', 'to');
  const count = bucketCount(tf, from, to);
  if (count > barsPerQueryMax) {
    return fail(ErrorCode.invalid_field, `from..to spans ${count} ${tf} bars; at most ${barsPerQueryMax} per query (narrow the range or use a coarser tf)`, 'to');
  }
  return ok(count);
}

/**
 * The query's rows from bars, sorted by start, of query.symbol and query.tf (what a store range scan
 * returns). For 'previous', a bar before the range may lead the list to seed the first gaps; gaps
 * before any known close are emitted as 'null' gaps, since there is nothing to carry.
 */
export function fillBars(bars: readonly Bar[], query: BarQuery, barsPerQueryMax = barsPerQueryMaxDefault): Result<BarRow[]> {
  const span = checkSpan(query.tf, query.from, query.to, barsPerQueryMax);
  if (!span.ok) return span;
  const width = widthMs(query.tf);
  const first = bucketStart(query.tf, query.from);
  const rows: BarRow[] = [];
  let next = 0;
  let previousClose: number | null = null;
  for (; next < bars.length && bars[next].start < first; next++) previousClose = checkedBar(bars, next, query).close;
  for (let start = first; start < query.to; start += width) {
    const bar = next < bars.length ? checkedBar(bars, next, query) : null;
    if (bar !== null && bar.start === start) {
      rows.push(rowOf(bar));
      previousClose = bar.close;
      next++;
    } else if (query.fill === 'previous' && previousClose !== null) {
      rows.push(gapRow(query, start, previousClose));
    } else if (query.fill !== 'none') {
      rows.push(gapRow(query, start, null));
    }
  }
  return ok(rows);
}

/** Bars come from a store scan: unsorted or foreign bars are a caller bug, not bad input. */
function checkedBar(bars: readonly Bar[], i: number, query: BarQuery): Bar {
  const bar = bars[i];
  assert(bar.tf === query.tf && bar.symbol === query.symbol, 'fillBars: bar of another symbol or timeframe');
  assert(i === 0 || bars[i - 1].start < bar.start, 'fillBars: bars must be sorted by start, without duplicates');
  assert(bucketStart(query.tf, bar.start) === bar.start, 'fillBars: bar start not aligned to its timeframe');
  return bar;
}

function rowOf(bar: Bar): BarRow {
  return {
    symbol: bar.symbol,
    tf: bar.tf,
    start: bar.start,
    open: bar.open,
    high: bar.high,
    low: bar.low,
    close: bar.close,
    volume: bar.volume,
    pv: bar.pv,
    vwap: bar.vwap,
    trades: bar.trades,
    first_ts: bar.first_ts,
    last_ts: bar.last_ts,
    filled: false,
  };
}

function gapRow(query: BarQuery, start: number, price: number | null): BarRow {
  return {
    symbol: query.symbol,
    tf: query.tf,
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
  };
}
