// Boundary validation of a corporate action (POST /api/v1/corporate-actions, engine.corporateAction).
// Two stages, because an idempotent resubmission must be recognised before the clock is consulted: the
// shape (no clock: the schemas of schemas.ts, and the relations between fields), then the timing rules
// against `now`. Each failure names the field and the rule.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { Type, Validator, errorRule } from '../schema.js';
import { multiplierUnits } from './instruments.js';
import { ContractAdjustmentInput, DividendInput, SplitInput, SymbolChangeInput } from './schemas.js';
import { multiplierMax, type CorporateAction, type CorporateActionType } from './types.js';

/** An action as entered: times not resolved yet (effective_ts null = "now", when it is applied). */
export type CorporateActionInput =
  | { action_id: string; type: 'split'; symbol: string; from: number; to: number; effective_ts: number | null }
  | { action_id: string; type: 'dividend'; symbol: string; amount_per_share: number; ex_ts: number; pay_ts: number }
  | { action_id: string; type: 'symbol_change'; symbol: string; new_symbol: string; effective_ts: number | null }
  | { action_id: string; type: 'contract_adjustment'; symbol: string; multiplier: number; effective_ts: number | null };

const types: readonly CorporateActionType[] = ['split', 'dividend', 'symbol_change', 'contract_adjustment'];

const fieldsOf: Record<CorporateActionType, readonly string[]> = {
  split: Object.keys(SplitInput.properties),
  dividend: Object.keys(DividendInput.properties),
  symbol_change: Object.keys(SymbolChangeInput.properties),
  contract_adjustment: Object.keys(ContractAdjustmentInput.properties),
};

/** The id, then the kind (so an unknown kind is named before the fields it would have). */
const kindValidator = new Validator(
  'action',
  Type.Object({ action_id: SplitInput.properties.action_id, type: Type.Enum([...types], errorRule(ErrorCode.invalid_field)) }),
);
const validators = {
  split: new Validator('action', SplitInput),
  dividend: new Validator('action', DividendInput),
  symbol_change: new Validator('action', SymbolChangeInput),
  contract_adjustment: new Validator('action', ContractAdjustmentInput),
};

/** The shape of an action: ids, symbols, ratios, amounts, well-formed times (schemas.ts). No clock. */
export function validateCorporateInput(input: unknown): Result<CorporateActionInput> {
  const k = kindValidator.validate(input);
  if (!k.ok) return k;
  const v = validators[k.value.type].validate(input);
  if (!v.ok) return v;
  const a = v.value;
  // What a schema cannot say: relations between fields.
  if (a.type === 'split') {
    if (a.from === a.to) return fail(ErrorCode.invalid_field, 'to must differ from from: a 1:1 split changes nothing', 'to');
    return ok({ action_id: a.action_id, type: 'split', symbol: a.symbol, from: a.from, to: a.to, effective_ts: a.effective_ts ?? null });
  }
  if (a.type === 'dividend') {
    if (a.pay_ts < a.ex_ts) return fail(ErrorCode.invalid_timestamp, 'pay_ts must be >= ex_ts', 'pay_ts');
    return ok({ action_id: a.action_id, type: 'dividend', symbol: a.symbol, amount_per_share: a.amount_per_share, ex_ts: a.ex_ts, pay_ts: a.pay_ts });
  }
  if (a.type === 'contract_adjustment') {
    if (multiplierUnits(a.multiplier) === null) {
      return fail(ErrorCode.invalid_field, `multiplier must be a finite number > 0 and <= ${multiplierMax} with at most 8 decimal places`, 'multiplier');
    }
    return ok({ action_id: a.action_id, type: 'contract_adjustment', symbol: a.symbol, multiplier: a.multiplier, effective_ts: a.effective_ts ?? null });
  }
  if (a.new_symbol === a.symbol) return fail(ErrorCode.invalid_symbol, 'new_symbol must differ from symbol', 'new_symbol');
  return ok({ action_id: a.action_id, type: 'symbol_change', symbol: a.symbol, new_symbol: a.new_symbol, effective_ts: a.effective_ts ?? null });
}

/** The timing rules against the engine's clock, and the times resolved (no effective_ts: now). */
export function resolveCorporateAction(input: CorporateActionInput, now: number): Result<CorporateAction> {
  if (input.type === 'dividend') {
    // A past ex-date is entitled from the holdings as of ex_ts (time travel, corporateDesk.ts).
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
