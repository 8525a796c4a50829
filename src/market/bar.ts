// The bar: OHLCV of one symbol over one bucket, with the sums (pv, volume, trades) that make
// roll-ups and late revisions exact, and the tick timestamps that decide open and close when ticks
// arrive out of order. Plain data: what the store persists and the server serializes.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { validSymbol } from '../domain/validate.js';
import { isBucketStart, isTimeframe, timestampMaxMs, widthMs, type Timeframe } from './timeframe.js';

export interface Bar {
  symbol: string;
  tf: Timeframe;
  /** Bucket start, epoch ms UTC. */
  start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  /** sum(size) over ticks that carried a size; size-less ticks count in OHLC and trades only. */
  volume: number;
  /** sum(price * size): with volume, what makes vwap exact across roll-ups. */
  pv: number;
  /** pv / volume; null when volume is 0. */
  vwap: number | null;
  trades: number;
  /** Timestamp of the tick that set open: an out-of-order tick with an earlier ts replaces it. */
  first_ts: number;
  /** Timestamp of the tick that set close: a tick at or after it replaces close. */
  last_ts: number;
}

export function vwapOf(pv: number, volume: number): number | null {
  return volume > 0 ? pv / volume : null;
}

/** A tick's shape is checked once here: prices > 0, integer epoch ms, sizes >= 0 or absent. */
export function isValidTick(price: number, ts: number, size: number | undefined): boolean {
  if (!(price > 0) || price === Infinity) return false;
  if (!Number.isInteger(ts) || ts < 0 || ts > timestampMaxMs) return false;
  return size === undefined || (size >= 0 && size !== Infinity);
}

export function barFromTick(symbol: string, tf: Timeframe, start: number, price: number, ts: number, size?: number): Bar {
  const volume = size === undefined ? 0 : size;
  const pv = size === undefined ? 0 : price * size;
  return { symbol, tf, start, open: price, high: price, low: price, close: price, volume, pv, vwap: vwapOf(pv, volume), trades: 1, first_ts: ts, last_ts: ts };
}

/** A copy of bar with one more tick: the revision path, where the bar came from storage. */
export function withTick(bar: Bar, price: number, ts: number, size?: number): Bar {
  const volume = size === undefined ? bar.volume : bar.volume + size;
  const pv = size === undefined ? bar.pv : bar.pv + price * size;
  const opens = ts < bar.first_ts;
  const closes = ts >= bar.last_ts;
  return {
    symbol: bar.symbol,
    tf: bar.tf,
    start: bar.start,
    open: opens ? price : bar.open,
    high: price > bar.high ? price : bar.high,
    low: price < bar.low ? price : bar.low,
    close: closes ? price : bar.close,
    volume,
    pv,
    vwap: vwapOf(pv, volume),
    trades: bar.trades + 1,
    first_ts: opens ? ts : bar.first_ts,
    last_ts: closes ? ts : bar.last_ts,
  };
}

function finiteAtLeast(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= min;
}

/** Checks a bar read back from storage or sent by a peer before it enters a BarBook. */
export function validateBar(v: unknown): Result<Bar> {
  if (typeof v !== 'object' || v === null) return fail(ErrorCode.invalid_field, 'bar must be an object', 'bar');
  const b = v as Record<string, unknown>;
  if (!validSymbol(b.symbol)) return fail(ErrorCode.invalid_symbol, 'bar.symbol must match [A-Za-z0-9._:/-]{1,32}', 'bar.symbol');
  if (!isTimeframe(b.tf)) return fail(ErrorCode.invalid_field, 'bar.tf must be a timeframe', 'bar.tf');
  if (!Number.isInteger(b.start) || !isBucketStart(b.tf, b.start as number)) {
    return fail(ErrorCode.invalid_timestamp, `bar.start must be the start of a ${b.tf} bucket`, 'bar.start');
  }
  for (const field of ['open', 'high', 'low', 'close'] as const) {
    if (!finiteAtLeast(b[field], Number.MIN_VALUE)) return fail(ErrorCode.invalid_price, `bar.${field} must be a finite number > 0`, `bar.${field}`);
  }
  const { open, high, low, close } = b as unknown as Bar;
  if (low > high || open > high || open < low || close > high || close < low) {
    return fail(ErrorCode.invalid_price, 'bar.low <= bar.open, bar.close <= bar.high must hold', 'bar.high');
  }
  if (!finiteAtLeast(b.volume, 0)) return fail(ErrorCode.invalid_quantity, 'bar.volume must be a finite number >= 0', 'bar.volume');
  if (!finiteAtLeast(b.pv, 0)) return fail(ErrorCode.invalid_amount, 'bar.pv must be a finite number >= 0', 'bar.pv');
  if (!Number.isInteger(b.trades) || (b.trades as number) < 1) return fail(ErrorCode.invalid_field, 'bar.trades must be an integer >= 1', 'bar.trades');
  const start = b.start as number;
  const end = start + widthMs(b.tf);
  for (const field of ['first_ts', 'last_ts'] as const) {
    const t = b[field];
    if (!Number.isInteger(t) || (t as number) < start || (t as number) >= end || (t as number) > timestampMaxMs) {
      return fail(ErrorCode.invalid_timestamp, `bar.${field} must be an integer epoch ms inside the bucket`, `bar.${field}`);
    }
  }
  if ((b.first_ts as number) > (b.last_ts as number)) return fail(ErrorCode.invalid_timestamp, 'bar.first_ts must be <= bar.last_ts', 'bar.first_ts');
  const volume = b.volume as number;
  const pv = b.pv as number;
  return ok({ symbol: b.symbol as string, tf: b.tf, start, open, high, low, close, volume, pv, vwap: vwapOf(pv, volume), trades: b.trades as number, first_ts: b.first_ts as number, last_ts: b.last_ts as number });
}
