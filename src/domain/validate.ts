// Boundary validation: every input is checked here, once, before anything is applied. The shape and
// the value ranges come from each message's one schema (schemas.ts, compiled on first use); what JSON
// Schema cannot say stays here as code: quantities exact to 1e-8, defaults, normalized values.
// Each failure names the field and the rule; a failure changes nothing.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { Validator } from '../schema.js';
import { unitsOf } from './accounting.js';
import { CashInput, CreatePortfolio, FxConversionInput as FxConversionSchema, RiskLimits as RiskLimitsSchema, TradeInput as TradeInputSchema } from './schemas.js';
import {
  QUANTITY_SCALE,
  baseCurrencyDefault,
  portfolioIdPattern,
  priceMax,
  symbolPattern,
  type CostBasisMethod,
  type FxConversionInput,
  type RiskLimits,
  type Side,
} from './types.js';

export interface ValidTrade {
  trade_id: string;
  symbol: string;
  side: Side;
  units: number;
  quantity: number;
  price: number;
  fee: number;
  ts: number;
  /** Quote currency as given; null: the portfolio's base currency. */
  currency: string | null;
  /** Quote -> base rate: as given, or filled in by the shard from the latest rate; null: none. */
  fx_rate: number | null;
  lot_ids: string[] | null;
  /** A what-if (dry_run): the engine answers the figures and books nothing. Absent: false. */
  dry_run?: boolean;
  /** Contract multiplier of the symbol's instrument (1 when never defined), set by the engine. */
  multiplier: number;
}

export interface ValidPortfolio {
  id: string | undefined;
  name: string;
  cash: number;
  limits: RiskLimits;
  cost_basis_method: CostBasisMethod;
  base_currency: string;
}

export function validSymbol(v: unknown): v is string {
  return typeof v === 'string' && symbolPattern.test(v);
}

/** The code for a bad price, or null: the hot path calls this without allocating. */
export function priceError(v: unknown): ErrorCode | null {
  if (typeof v !== 'number' || !(v > 0) || v > priceMax || !Number.isFinite(v)) return ErrorCode.invalid_price;
  return null;
}

export const tradeValidator = new Validator('trade', TradeInputSchema);
export const createPortfolioValidator = new Validator('portfolio', CreatePortfolio);
export const cashValidator = new Validator('cash', CashInput);
export const limitsValidator = new Validator('limits', RiskLimitsSchema, 'limits');
export const fxConversionValidator = new Validator('conversion', FxConversionSchema);

/** The schema checks the fields; the code here the rule JSON Schema cannot say: at most 8 decimals. */
export function validateTrade(input: unknown, now: number): Result<ValidTrade> {
  const v = tradeValidator.validate(input);
  if (!v.ok) return v;
  const t = v.value;
  const units = unitsOf(t.quantity);
  if (units === null || units === 0) return fail(ErrorCode.invalid_quantity, 'quantity must have at most 8 decimal places', 'quantity');
  return ok({
    trade_id: t.trade_id,
    symbol: t.symbol,
    side: t.side,
    units,
    quantity: units / QUANTITY_SCALE,
    price: t.price,
    fee: t.fee ?? 0,
    ts: t.ts ?? now,
    currency: t.currency ?? null,
    fx_rate: t.fx_rate ?? null,
    lot_ids: t.lot_ids == null ? null : [...t.lot_ids],
    multiplier: 1,
    dry_run: t.dry_run === true,
  });
}

export function validateLimits(input: unknown): Result<RiskLimits> {
  if (input === undefined || input === null) return ok({});
  const v = limitsValidator.validate(input);
  if (!v.ok) return v;
  const out: RiskLimits = {};
  for (const key of ['max_loss', 'max_drawdown_pct', 'max_position_weight_pct'] as const) if (key in v.value) out[key] = v.value[key] ?? null;
  return ok(out);
}

export function validatePortfolioId(v: unknown, field = 'id'): Result<string> {
  if (typeof v !== 'string' || !portfolioIdPattern.test(v)) {
    return fail(ErrorCode.invalid_id, `${field} must match [A-Za-z0-9._:-]{1,64}`, field);
  }
  return ok(v);
}

export function validateCreatePortfolio(input: unknown): Result<ValidPortfolio> {
  const v = createPortfolioValidator.validate(input === undefined || input === null ? {} : input);
  if (!v.ok) return v;
  const body = v.value;
  const limits = validateLimits(body.limits);
  if (!limits.ok) return limits;
  return ok({
    id: body.id,
    name: body.name ?? '',
    cash: body.cash ?? 0,
    limits: limits.value,
    cost_basis_method: (body.cost_basis_method ?? 'average') as CostBasisMethod,
    base_currency: body.base_currency ?? baseCurrencyDefault,
  });
}

/** A cash move: currency absent for the base currency. */
export interface ValidCash {
  type: 'deposit' | 'withdraw';
  amount: number;
  currency?: string;
}

export function validateCash(input: unknown): Result<ValidCash> {
  const v = cashValidator.validate(input);
  if (!v.ok) return v;
  const { type, amount, currency } = v.value;
  return ok(currency == null ? { type, amount } : { type, amount, currency });
}

/** An FX conversion between two cash balances: from_currency, to_currency, amount (of from), rate (to per from). */
export function validateFxConversion(input: unknown): Result<FxConversionInput> {
  const v = fxConversionValidator.validate(input);
  if (!v.ok) return v;
  const { from_currency, to_currency, amount, rate } = v.value;
  if (to_currency === from_currency) return fail(ErrorCode.invalid_currency, 'to_currency must differ from from_currency', 'to_currency');
  return ok({ from_currency, to_currency, amount, rate });
}
