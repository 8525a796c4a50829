// Timeframes and their UTC buckets. A bucket is left-closed, labelled by its start, and aligned to
// the epoch (start = floor(t / w) * w), except weeks, which start on Monday 00:00 UTC. Every
// timeframe nests in every coarser one, which is what makes roll-ups exact.

import { ErrorCode, fail, ok, type Result } from '../errors.js';

export const timeframes = ['1m', '5m', '15m', '30m', '1h', '1d', '1w'] as const;
export type Timeframe = (typeof timeframes)[number];
export const timeframeCount = timeframes.length;

export const minuteMs = 60_000;
export const hourMs = 60 * minuteMs;
export const dayMs = 24 * hourMs;
export const weekMs = 7 * dayMs;
/** 1970-01-01 was a Thursday: Monday-aligned weeks start 4 days after the epoch, modulo 7 days. */
export const weekOffsetMs = 4 * dayMs;
/** Largest epoch millisecond accepted anywhere in market data (the ECMAScript Date range). */
export const timestampMaxMs = 8.64e15;

/** Bucket width of each timeframe, indexed like `timeframes`. */
export const timeframeWidthsMs: readonly number[] = [minuteMs, 5 * minuteMs, 15 * minuteMs, 30 * minuteMs, hourMs, dayMs, weekMs];
/** Alignment offset of each timeframe, indexed like `timeframes`: only weeks are shifted. */
const timeframeOffsetsMs: readonly number[] = [0, 0, 0, 0, 0, 0, weekOffsetMs];

const indexByTimeframe: Readonly<Record<Timeframe, number>> = { '1m': 0, '5m': 1, '15m': 2, '30m': 3, '1h': 4, '1d': 5, '1w': 6 };

export function isTimeframe(v: unknown): v is Timeframe {
  return typeof v === 'string' && Object.hasOwn(indexByTimeframe, v);
}

export function timeframeIndex(tf: Timeframe): number {
  return indexByTimeframe[tf];
}

export function widthMs(tf: Timeframe): number {
  return timeframeWidthsMs[indexByTimeframe[tf]];
}

/** Start of the bucket holding ts, by timeframe index: the hot path avoids the string lookup. */
export function bucketStartAt(tfIndex: number, ts: number): number {
  const w = timeframeWidthsMs[tfIndex];
  const offset = timeframeOffsetsMs[tfIndex];
  return Math.floor((ts - offset) / w) * w + offset;
}

export function bucketStart(tf: Timeframe, ts: number): number {
  return bucketStartAt(indexByTimeframe[tf], ts);
}

export function isBucketStart(tf: Timeframe, ts: number): boolean {
  return bucketStart(tf, ts) === ts;
}

/** Number of buckets of tf that overlap [from, to): what a query over that range returns at most. */
export function bucketCount(tf: Timeframe, from: number, to: number): number {
  if (to <= from) return 0;
  const first = bucketStart(tf, from);
  return Math.ceil((to - first) / widthMs(tf));
}

export function parseTimeframe(v: unknown, field = 'tf'): Result<Timeframe> {
  if (!isTimeframe(v)) return fail(ErrorCode.invalid_field, `${field} must be one of ${timeframes.join(', ')}`, field);
  return ok(v);
}
