// Boundary validation of a corporate action (POST /api/v1/corporate-actions, engine.corporateAction).
// Two stages, because an idempotent resubmission must be recognised before the clock is consulted: the
// shape (no clock), then the timing rules against `now`. Each failure names the field and the rule.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { isFiniteNumber, validSymbol, validateTimestamp } from './validate.js';
import { multiplierUnits } from './instruments.js';
import { multiplierMax, priceMax, splitRatioMax, tradeIdPattern, type CorporateAction, type CorporateActionType } from './types.js';

/** An action as entered: times not resolved yet (effective_ts null = "now", when it is applied). */
export type CorporateActionInput =
  | { action_id: string; type: 'split'; symbol: string; from: number; to: number; effective_ts: number | null }
  | { action_id: string; type: 'dividend'; symbol: string; amount_per_share: number; ex_ts: number; pay_ts: number }
  | { action_id: string; type: 'symbol_change'; symbol: string; new_symbol: string; effective_ts: number | null }
  | { action_id: string; type: 'contract_adjustment'; symbol: string; multiplier: number; effective_ts: number | null };

const types: readonly CorporateActionType[] = ['split', 'dividend', 'symbol_change', 'contract_adjustment'];

const fieldsOf: Record<CorporateActionType, readonly string[]> = {
  split: ['action_id', 'type', 'symbol', 'from', 'to', 'effective_ts'],
  dividend: ['action_id', 'type', 'symbol', 'amount_per_share', 'ex_ts', 'pay_ts'],
  symbol_change: ['action_id', 'type', 'symbol', 'new_symbol', 'effective_ts'],
  contract_adjustment: ['action_id', 'type', 'symbol', 'multiplier', 'effective_ts'],
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function ratio(v: unknown, field: string): Result<number> {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > splitRatioMax) {
    return fail(ErrorCode.invalid_field, `${field} must be an integer from 1 to ${splitRatioMax}`, field);
  }
  return ok(v as number);
}

function requiredTime(v: unknown, field: string): Result<number> {
  if (v === undefined || v === null) return fail(ErrorCode.invalid_timestamp, `${field} is required (integer epoch in milliseconds)`, field);
  return validateTimestamp(v, field, 0);
}

function optionalTime(v: unknown, field: string): Result<number | null> {
  if (v === undefined || v === null) return ok(null);
  return validateTimestamp(v, field, 0);
}

/** The shape of an action: ids, symbols, ratios, amounts, well-formed times. No clock. */
export function validateCorporateInput(input: unknown): Result<CorporateActionInput> {
  if (!isObject(input)) return fail(ErrorCode.invalid_field, 'corporate action must be an object', 'action');
  const { action_id, type, symbol } = input;
  if (typeof action_id !== 'string' || !tradeIdPattern.test(action_id)) {
    return fail(ErrorCode.invalid_id, 'action_id must match [A-Za-z0-9._:/-]{1,128}', 'action_id');
  }
  if (!types.includes(type as CorporateActionType)) return fail(ErrorCode.invalid_field, `type must be one of ${types.join(', ')}`, 'type');
  const kind = type as CorporateActionType;
  for (const key of Object.keys(input)) {
    if (!fieldsOf[kind].includes(key)) return fail(ErrorCode.invalid_field, `${key} is not a field of a ${kind} action (fields: ${fieldsOf[kind].join(', ')})`, key);
  }
  if (!validSymbol(symbol)) return fail(ErrorCode.invalid_symbol, 'symbol must match [A-Za-z0-9._:/-]{1,32}', 'symbol');
  if (kind === 'split') {
    const from = ratio(input.from, 'from');
    if (!from.ok) return from;
    const to = ratio(input.to, 'to');
    if (!to.ok) return to;
    if (from.value === to.value) return fail(ErrorCode.invalid_field, 'to must differ from from: a 1:1 split changes nothing', 'to');
    const at = optionalTime(input.effective_ts, 'effective_ts');
    if (!at.ok) return at;
    return ok({ action_id, type: kind, symbol, from: from.value, to: to.value, effective_ts: at.value });
  }
  if (kind === 'dividend') {
    const amount = input.amount_per_share;
    if (!isFiniteNumber(amount) || amount <= 0 || amount > priceMax) {
      return fail(ErrorCode.invalid_amount, `amount_per_share must be a finite number > 0 and <= ${priceMax}`, 'amount_per_share');
    }
    const ex = requiredTime(input.ex_ts, 'ex_ts');
    if (!ex.ok) return ex;
    const payAt = requiredTime(input.pay_ts, 'pay_ts');
    if (!payAt.ok) return payAt;
    if (payAt.value < ex.value) return fail(ErrorCode.invalid_timestamp, 'pay_ts must be >= ex_ts', 'pay_ts');
    return ok({ action_id, type: kind, symbol, amount_per_share: amount, ex_ts: ex.value, pay_ts: payAt.value });
  }
  if (kind === 'contract_adjustment') {
    const m = input.multiplier;
    if (!isFiniteNumber(m) || m <= 0 || m > multiplierMax || multiplierUnits(m) === null) {
      return fail(ErrorCode.invalid_field, `multiplier must be a finite number > 0 and <= ${multiplierMax} with at most 8 decimal places`, 'multiplier');
    }
    const at = optionalTime(input.effective_ts, 'effective_ts');
    if (!at.ok) return at;
    return ok({ action_id, type: kind, symbol, multiplier: m, effective_ts: at.value });
  }
  if (!validSymbol(input.new_symbol)) return fail(ErrorCode.invalid_symbol, 'new_symbol must match [A-Za-z0-9._:/-]{1,32}', 'new_symbol');
  if (input.new_symbol === symbol) return fail(ErrorCode.invalid_symbol, 'new_symbol must differ from symbol', 'new_symbol');
  const at = optionalTime(input.effective_ts, 'effective_ts');
  if (!at.ok) return at;
  return ok({ action_id, type: 'symbol_change', symbol, new_symbol: input.new_symbol, effective_ts: at.value });
}

/** The timing rules against the engine's clock, and the times resolved (no effective_ts: now). */
export function resolveCorporateAction(input: CorporateActionInput, now: number): Result<CorporateAction> {
  if (input.type === 'dividend') {
    // Holdings are only known as they are now: the entitlement of a past ex-date cannot be rebuilt.
    if (input.ex_ts < now) return fail(ErrorCode.invalid_timestamp, 'ex_ts must not be in the past: holdings at a past ex-date are not reconstructed', 'ex_ts');
    return ok({ ...input });
  }
  return ok({ ...input, effective_ts: input.effective_ts ?? now });
}

/** The same action entered twice has the same key: fields in a fixed order, times as given. */
export function canonicalCorporateInput(input: CorporateActionInput): string {
  const kind = input.type;
  const record = input as unknown as Record<string, unknown>;
  return JSON.stringify(fieldsOf[kind].map((key) => record[key] ?? null));
}
