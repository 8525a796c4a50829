// Query parameters of a bar request, parsed once at the boundary: symbol, tf, from/to as ISO-8601
// or epoch milliseconds, and the fill mode. Each failure names its parameter.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { validSymbol } from '../domain/validate.js';
import { barsPerQueryMaxDefault, checkSpan, fillModes, type BarQuery, type FillMode } from './fill.js';
import { parseTimeframe, timestampMaxMs } from './timeframe.js';

// Date-times must carry a zone: a zone-less time would be read in the server's local time.
const isoPattern = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?([Zz]|[+-]\d{2}:\d{2}))?$/;
const epochPattern = /^\d{1,16}$/;

/** An instant as epoch ms: an integer, a string of digits, or ISO-8601 (a date, or a date-time with a zone). */
export function parseInstant(v: unknown, field: string): Result<number> {
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? (epochPattern.test(v) ? Number(v) : isoToEpochMs(v)) : NaN;
  if (!Number.isInteger(ms) || ms < 0 || ms > timestampMaxMs) {
    return fail(ErrorCode.invalid_timestamp, `${field} must be epoch milliseconds or ISO-8601 (e.g. 2025-01-01T00:00:00Z) from 1970 on`, field);
  }
  return ok(ms);
}

/** NaN unless s is a valid ISO-8601 date or zoned date-time: 2025-02-30 is refused, not rolled over. */
function isoToEpochMs(s: string): number {
  const m = isoPattern.exec(s);
  if (m === null) return NaN;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [hour, minute, second] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  const millis = Number((m[7] ?? '0').padEnd(3, '0'));
  if (year < 1970 || hour > 23 || minute > 59 || second > 59) return NaN;
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return NaN;
  return Date.UTC(year, month - 1, day, hour, minute, second, millis) - zoneOffsetMs(m[8]);
}

function zoneOffsetMs(zone: string | undefined): number {
  if (zone === undefined || zone === 'Z' || zone === 'z') return 0;
  const hours = Number(zone.slice(1, 3));
  const minutes = Number(zone.slice(4, 6));
  if (hours > 23 || minutes > 59) return NaN;
  return (zone[0] === '-' ? -1 : 1) * (hours * 60 + minutes) * 60_000;
}

export function parseFillMode(v: unknown, field = 'fill'): Result<FillMode> {
  if (v === undefined) return ok('none');
  if (typeof v !== 'string' || !(fillModes as readonly string[]).includes(v)) {
    return fail(ErrorCode.invalid_field, `${field} must be one of ${fillModes.join(', ')}`, field);
  }
  return ok(v as FillMode);
}

export interface BarQueryParams {
  symbol?: unknown;
  tf?: unknown;
  from?: unknown;
  to?: unknown;
  fill?: unknown;
}

/** A validated BarQuery: reversed ranges and spans beyond barsPerQueryMax are refused here. */
export function parseBarQuery(params: BarQueryParams, barsPerQueryMax = barsPerQueryMaxDefault): Result<BarQuery> {
  if (!validSymbol(params.symbol)) return fail(ErrorCode.invalid_symbol, 'symbol must match [A-Za-z0-9._:/-]{1,32}', 'symbol');
  const tf = parseTimeframe(params.tf);
  if (!tf.ok) return tf;
  const from = parseInstant(params.from, 'from');
  if (!from.ok) return from;
  const to = parseInstant(params.to, 'to');
  if (!to.ok) return to;
  const fill = parseFillMode(params.fill);
  if (!fill.ok) return fill;
  const span = checkSpan(tf.value, from.value, to.value, barsPerQueryMax);
  if (!span.ok) return span;
  return ok({ symbol: params.symbol, tf: tf.value, from: from.value, to: to.value, fill: fill.value });
}
