// Query-parameter rules of the HTTP API, pure.

import { ErrorCode, fail, ok, type Result } from '../errors.js';

const isoPattern = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** An instant given as ISO-8601 (e.g. 2024-05-01T12:00:00Z) or as integer epoch milliseconds. */
export function parseInstant(value: string, field: string): Result<number> {
  if (/^\d{1,16}$/.test(value)) {
    const n = Number(value);
    if (n <= 8.64e15) return ok(n);
  } else if (isoPattern.test(value)) {
    const t = Date.parse(value);
    if (Number.isFinite(t) && t >= 0) return ok(t);
  }
  return fail(ErrorCode.invalid_timestamp, `${field} must be an ISO-8601 instant or integer epoch milliseconds`, field);
}

export function parseLimit(value: string | undefined, fallback: number, max: number, field = 'limit'): Result<number> {
  if (value === undefined) return ok(Math.min(fallback, max));
  if (!/^\d{1,9}$/.test(value)) return fail(ErrorCode.invalid_field, `${field} must be an integer from 1 to ${max}`, field);
  const n = Number(value);
  if (n < 1 || n > max) return fail(ErrorCode.invalid_field, `${field} must be an integer from 1 to ${max}`, field);
  return ok(n);
}

export function parseNonNegativeInteger(value: string, field: string): Result<number> {
  if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    return fail(ErrorCode.invalid_field, `${field} must be a non-negative integer`, field);
  }
  return ok(Number(value));
}

/** A boolean query flag: absent, 'false' or '0' is false; 'true' or '1' is true; anything else is refused. */
export function parseFlag(value: string | undefined, field: string): Result<boolean> {
  if (value === undefined || value === 'false' || value === '0') return ok(false);
  if (value === 'true' || value === '1') return ok(true);
  return fail(ErrorCode.invalid_field, `${field} must be true or false`, field);
}
