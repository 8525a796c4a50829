// Boundary validation: every input is checked here, once, before anything is applied.
// Each failure names the field and the rule; a failure changes nothing.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { unitsOf } from './accounting.js';
import {
  QUANTITY_SCALE,
  amountMax,
  baseCurrencyDefault,
  costBasisMethods,
  currencyPattern,
  fxRateMax,
  lotIdsPerTradeMax,
  nameLengthMax,
  portfolioIdPattern,
  priceMax,
  quantityMax,
  symbolPattern,
  tradeIdPattern,
  type CashInput,
  type CostBasisMethod,
  type CreatePortfolioInput,
  type FxConversionInput,
  type RiskLimits,
  type Side,
  type TradeInput,
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

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

export function validSymbol(v: unknown): v is string {
  return typeof v === 'string' && symbolPattern.test(v);
}

/** The code for a bad price, or null: the hot path calls this without allocating. */
export function priceError(v: unknown): ErrorCode | null {
  if (typeof v !== 'number' || !(v > 0) || v > priceMax || !Number.isFinite(v)) return ErrorCode.invalid_price;
  return null;
}

function money(v: unknown, field: string, code: ErrorCode, allowZero: boolean): Result<number> {
  if (!isFiniteNumber(v)) return fail(code, `${field} must be a finite number`, field);
  if (allowZero ? v < 0 : v <= 0) return fail(code, `${field} must be ${allowZero ? '>= 0' : '> 0'}`, field);
  if (v > amountMax) return fail(code, `${field} must be <= ${amountMax}`, field);
  return ok(v);
}

function quantityUnits(v: unknown, field: string): Result<number> {
  if (!isFiniteNumber(v)) return fail(ErrorCode.invalid_quantity, `${field} must be a finite number`, field);
  if (v <= 0) return fail(ErrorCode.invalid_quantity, `${field} must be > 0`, field);
  if (v > quantityMax) return fail(ErrorCode.invalid_quantity, `${field} must be <= ${quantityMax}`, field);
  const units = unitsOf(v);
  if (units === null || units === 0) return fail(ErrorCode.invalid_quantity, `${field} must have at most 8 decimal places`, field);
  return ok(units);
}

export function validateTimestamp(v: unknown, field: string, fallback: number): Result<number> {
  if (v === undefined || v === null) return ok(fallback);
  if (!isFiniteNumber(v) || v < 0 || v > 8.64e15 || !Number.isInteger(v)) {
    return fail(ErrorCode.invalid_timestamp, `${field} must be an integer epoch in milliseconds`, field);
  }
  return ok(v);
}

export function validateTrade(input: unknown, now: number): Result<ValidTrade> {
  if (!isObject(input)) return fail(ErrorCode.invalid_field, 'trade must be an object', 'trade');
  const { trade_id, symbol, side, quantity, price, fee, ts, currency, fx_rate, lot_ids } = input;
  if (typeof trade_id !== 'string' || !tradeIdPattern.test(trade_id)) {
    return fail(ErrorCode.invalid_id, 'trade_id must match [A-Za-z0-9._:/-]{1,128}', 'trade_id');
  }
  if (!validSymbol(symbol)) return fail(ErrorCode.invalid_symbol, 'symbol must match [A-Za-z0-9._:/-]{1,32}', 'symbol');
  if (side !== 'buy' && side !== 'sell') return fail(ErrorCode.invalid_side, "side must be 'buy' or 'sell'", 'side');
  const units = quantityUnits(quantity, 'quantity');
  if (!units.ok) return units;
  if (priceError(price) !== null) return fail(ErrorCode.invalid_price, `price must be a finite number > 0 and <= ${priceMax}`, 'price');
  const feeValue = fee === undefined || fee === null ? ok(0) : money(fee, 'fee', ErrorCode.invalid_fee, true);
  if (!feeValue.ok) return feeValue;
  const tsValue = validateTimestamp(ts, 'ts', now);
  if (!tsValue.ok) return tsValue;
  if (currency !== undefined && currency !== null && !(typeof currency === 'string' && currencyPattern.test(currency))) {
    return fail(ErrorCode.invalid_currency, 'currency must be three capital letters (ISO 4217)', 'currency');
  }
  const hasRate = fx_rate !== undefined && fx_rate !== null;
  if (hasRate && (!isFiniteNumber(fx_rate) || fx_rate <= 0 || fx_rate > fxRateMax)) {
    return fail(ErrorCode.invalid_fx_rate, `fx_rate must be a finite number > 0 and <= ${fxRateMax}`, 'fx_rate');
  }
  const lots = validateLotIds(lot_ids);
  if (!lots.ok) return lots;
  return ok({
    trade_id,
    symbol,
    side,
    units: units.value,
    quantity: units.value / QUANTITY_SCALE,
    price: price as number,
    fee: feeValue.value,
    ts: tsValue.value,
    currency: typeof currency === 'string' ? currency : null,
    fx_rate: hasRate ? (fx_rate as number) : null,
    lot_ids: lots.value,
    multiplier: 1,
  });
}

/** A validated trade as engine input again (the servers validate early to answer fast; the engine re-checks). */
export function tradeInputOf(t: ValidTrade): TradeInput {
  const input: TradeInput = { trade_id: t.trade_id, symbol: t.symbol, side: t.side, quantity: t.quantity, price: t.price, fee: t.fee, ts: t.ts };
  if (t.currency !== null) input.currency = t.currency;
  if (t.fx_rate !== null) input.fx_rate = t.fx_rate;
  if (t.lot_ids !== null) input.lot_ids = t.lot_ids;
  return input;
}

function validateLotIds(v: unknown): Result<string[] | null> {
  if (v === undefined || v === null) return ok(null);
  if (!Array.isArray(v) || v.length === 0 || v.length > lotIdsPerTradeMax) {
    return fail(ErrorCode.invalid_lots, `lot_ids must be an array of 1 to ${lotIdsPerTradeMax} lot ids`, 'lot_ids');
  }
  for (const id of v) {
    if (typeof id !== 'string' || !tradeIdPattern.test(id)) return fail(ErrorCode.invalid_lots, 'lot_ids: each must match [A-Za-z0-9._:/-]{1,128}', 'lot_ids');
  }
  if (new Set(v).size !== v.length) return fail(ErrorCode.invalid_lots, 'lot_ids must not repeat a lot', 'lot_ids');
  return ok([...(v as string[])]);
}

export function validateLimits(input: unknown): Result<RiskLimits> {
  if (input === undefined || input === null) return ok({});
  if (!isObject(input)) return fail(ErrorCode.invalid_limits, 'limits must be an object', 'limits');
  const out: RiskLimits = {};
  for (const key of Object.keys(input)) {
    if (key !== 'max_loss' && key !== 'max_drawdown_pct' && key !== 'max_position_weight_pct') {
      return fail(ErrorCode.invalid_limits, `limits.${key} is not a known limit`, `limits.${key}`);
    }
    const v = input[key];
    if (v === null || v === undefined) {
      out[key] = null;
      continue;
    }
    if (!isFiniteNumber(v) || v < 0) return fail(ErrorCode.invalid_limits, `limits.${key} must be a finite number >= 0`, `limits.${key}`);
    if (key !== 'max_loss' && v > 100) return fail(ErrorCode.invalid_limits, `limits.${key} must be <= 100`, `limits.${key}`);
    if (key === 'max_loss' && v > amountMax) return fail(ErrorCode.invalid_limits, `limits.${key} must be <= ${amountMax}`, `limits.${key}`);
    out[key] = v;
  }
  return ok(out);
}

export function validatePortfolioId(v: unknown, field = 'id'): Result<string> {
  if (typeof v !== 'string' || !portfolioIdPattern.test(v)) {
    return fail(ErrorCode.invalid_id, `${field} must match [A-Za-z0-9._:-]{1,64}`, field);
  }
  return ok(v);
}

export function validateCreatePortfolio(input: unknown): Result<ValidPortfolio> {
  const body: CreatePortfolioInput = input === undefined || input === null ? {} : (input as CreatePortfolioInput);
  if (!isObject(body)) return fail(ErrorCode.invalid_field, 'portfolio must be an object', 'portfolio');
  let id: string | undefined;
  if (body.id !== undefined) {
    const v = validatePortfolioId(body.id);
    if (!v.ok) return v;
    id = v.value;
  }
  if (body.name !== undefined && (typeof body.name !== 'string' || body.name.length > nameLengthMax)) {
    return fail(ErrorCode.invalid_field, `name must be a string of at most ${nameLengthMax} characters`, 'name');
  }
  const cash = body.cash === undefined ? ok(0) : money(body.cash, 'cash', ErrorCode.invalid_amount, true);
  if (!cash.ok) return cash;
  const limits = validateLimits(body.limits);
  if (!limits.ok) return limits;
  const method: unknown = body.cost_basis_method ?? 'average';
  if (!costBasisMethods.includes(method as CostBasisMethod)) {
    return fail(ErrorCode.invalid_field, `cost_basis_method must be one of ${costBasisMethods.join(', ')}`, 'cost_basis_method');
  }
  const base = body.base_currency ?? baseCurrencyDefault;
  if (typeof base !== 'string' || !currencyPattern.test(base)) {
    return fail(ErrorCode.invalid_currency, 'base_currency must be three capital letters (ISO 4217)', 'base_currency');
  }
  return ok({ id, name: body.name ?? '', cash: cash.value, limits: limits.value, cost_basis_method: method as CostBasisMethod, base_currency: base });
}

export function validateCash(input: unknown): Result<CashInput> {
  if (!isObject(input)) return fail(ErrorCode.invalid_field, 'cash operation must be an object', 'cash');
  if (input.type !== 'deposit' && input.type !== 'withdraw') {
    return fail(ErrorCode.invalid_field, "type must be 'deposit' or 'withdraw'", 'type');
  }
  const amount = money(input.amount, 'amount', ErrorCode.invalid_amount, false);
  if (!amount.ok) return amount;
  const { currency } = input;
  if (currency === undefined || currency === null) return ok({ type: input.type, amount: amount.value });
  if (typeof currency !== 'string' || !currencyPattern.test(currency)) return fail(ErrorCode.invalid_currency, 'currency must be three capital letters (ISO 4217)', 'currency');
  return ok({ type: input.type, amount: amount.value, currency });
}

/** An FX conversion between two cash balances: from_currency, to_currency, amount (of from), rate (to per from). */
export function validateFxConversion(input: unknown): Result<FxConversionInput> {
  if (!isObject(input)) return fail(ErrorCode.invalid_field, 'conversion must be an object', 'conversion');
  for (const key of Object.keys(input)) {
    if (!['from_currency', 'to_currency', 'amount', 'rate'].includes(key)) return fail(ErrorCode.invalid_field, `${key} is not a field of a conversion (fields: from_currency, to_currency, amount, rate)`, key);
  }
  const { from_currency, to_currency, rate } = input;
  if (typeof from_currency !== 'string' || !currencyPattern.test(from_currency)) return fail(ErrorCode.invalid_currency, 'from_currency must be three capital letters (ISO 4217)', 'from_currency');
  if (typeof to_currency !== 'string' || !currencyPattern.test(to_currency)) return fail(ErrorCode.invalid_currency, 'to_currency must be three capital letters (ISO 4217)', 'to_currency');
  if (to_currency === from_currency) return fail(ErrorCode.invalid_currency, 'to_currency must differ from from_currency', 'to_currency');
  const amount = money(input.amount, 'amount', ErrorCode.invalid_amount, false);
  if (!amount.ok) return amount;
  if (!isFiniteNumber(rate) || rate <= 0 || rate > fxRateMax) return fail(ErrorCode.invalid_fx_rate, `rate must be a finite number > 0 and <= ${fxRateMax}`, 'rate');
  return ok({ from_currency, to_currency, amount: amount.value, rate });
}
