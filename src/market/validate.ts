// Small checks shared by the market modules' option and rule validation: each failure names its field.

import { ErrorCode, fail, ok, type Result } from '../errors.js';

export function integerIn(v: unknown, field: string, min: number, max: number, code: ErrorCode = ErrorCode.invalid_limits): Result<number> {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    return fail(code, `${field} must be an integer in [${min}, ${max}]`, field);
  }
  return ok(v);
}

/** A number in (min, max]: thresholds where 0 would fire on everything. */
export function positiveUpTo(v: unknown, field: string, max: number, code: ErrorCode = ErrorCode.invalid_field): Result<number> {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) {
    return fail(code, `${field} must be a finite number in (0, ${max}]`, field);
  }
  return ok(v);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The first key of input not in allowed, so typos in configuration fail loudly instead of being ignored. */
export function unknownKey(input: Record<string, unknown>, allowed: readonly string[]): string | null {
  for (const key of Object.keys(input)) if (!allowed.includes(key)) return key;
  return null;
}
