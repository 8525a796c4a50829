// Instruments as reference data: what a symbol is (asset class), the currency it is quoted in, and its
// contract multiplier (the money one point of price is worth per unit held: 50 for an ES future, 100
// for an equity option, 1 for a share). Pure: validation and the rules that relate a trade or a
// redefinition to an instrument. The engine keeps the table (src/engine/instruments.ts); definitions
// are durable events (InstrumentDefined), replayed on restart.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { Validator } from '../schema.js';
import { InstrumentInput } from './schemas.js';
import { validSymbol } from './validate.js';
import { type Instrument, type AssetClass, assetClasses } from './types.js';

export { assetClasses, type AssetClass, type Instrument };

/** A symbol never defined: multiplier 1, currency from the trade or the portfolio's base. */
export const defaultMultiplier = 1;

/** Multipliers are decimals of at most this many places, so rescaling holdings by old/new is exact in integers. */
export const multiplierDecimals = 8;

const instrumentValidator = new Validator('instrument', InstrumentInput);

/** The multiplier as an integer count of 1e-8, or null when it has more decimals than that. */
export function multiplierUnits(m: number): bigint | null {
  const text = String(m);
  if (text.includes('e')) {
    const scaled = m * 1e8;
    return Number.isInteger(scaled) && scaled > 0 ? BigInt(scaled) : null;
  }
  const [whole, fraction = ''] = text.split('.') as [string, string | undefined];
  if (fraction.length > multiplierDecimals) return null;
  return BigInt(whole + fraction.padEnd(multiplierDecimals, '0'));
}

/**
 * A definition as entered (PUT /api/v1/instruments/{symbol}, engine.defineInstrument). The symbol
 * comes from the path; a body symbol, when given, must agree. Each failure names the field.
 */
export function validateInstrument(symbol: unknown, input: unknown): Result<Instrument> {
  if (!validSymbol(symbol)) return fail(ErrorCode.invalid_symbol, 'symbol must match [A-Za-z0-9._:/-]{1,32}', 'symbol');
  const v = instrumentValidator.validate(input);
  if (!v.ok) return v;
  // What the schema cannot say: the body agrees with the path, and the multiplier's decimals.
  const { symbol: bodySymbol, asset_class, currency, multiplier, tick_size, description } = v.value;
  if (bodySymbol !== undefined && bodySymbol !== symbol) return fail(ErrorCode.invalid_symbol, `symbol in the body (${String(bodySymbol)}) must equal the path's (${symbol})`, 'symbol');
  if (multiplierUnits(multiplier) === null) return fail(ErrorCode.invalid_field, `multiplier must have at most ${multiplierDecimals} decimal places`, 'multiplier');
  const instrument: Instrument = { symbol, asset_class, currency, multiplier };
  if (tick_size != null) instrument.tick_size = tick_size;
  if (description != null) instrument.description = description;
  return ok(instrument);
}

/** Canonical text of a definition: a PUT of the same definition again changes nothing and logs nothing. */
export function sameInstrument(a: Instrument, b: Instrument): boolean {
  return a.asset_class === b.asset_class && a.currency === b.currency && a.multiplier === b.multiplier && (a.tick_size ?? null) === (b.tick_size ?? null) && (a.description ?? null) === (b.description ?? null);
}

/**
 * Why a trade's currency contradicts its instrument, or null. A trade without a currency takes the
 * instrument's; one with a different currency is refused naming the field.
 */
export function instrumentCurrencyError(instrument: Instrument | undefined, currency: string | null): { ok: false; error: { code: ErrorCode; message: string; field: string } } | null {
  if (instrument === undefined || currency === null || currency === instrument.currency) return null;
  return fail(ErrorCode.invalid_currency, `currency: ${instrument.symbol} is defined in ${instrument.currency}, not ${currency}`, 'currency') as { ok: false; error: { code: ErrorCode; message: string; field: string } };
}
