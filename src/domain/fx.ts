// FX rates as markets publish them. A position or a balance in currency Q in a book in base B converts
// at the first of these that has a price, in this order:
//   1. QB, direct (EURUSD for EUR in a USD book)
//   2. BQ, inverse: 1 / rate (USDJPY for JPY in a USD book... and for USD in a JPY book, its direct)
//   3. a cross through the pivot P (--fx-pivot, default USD): (QP or 1/PQ) x (PB or 1/BP), each leg
//      direct when it has a price, else inverse.
// Until one complete path has a price the rate is 0: the position is reported unconverted.
// Pure: names and the rule; the kernel (src/kernel/conversions.ts) applies it in its revalue pass.

import { currencyPattern } from './types.js';

export const fxPivotDefault = 'USD';

/**
 * The kernel symbol carrying the Q -> B rate the rule above derives. '>' is outside symbolPattern, so
 * no feed can tick it and no trade can name it.
 */
export function conversionSymbolOf(quote: string, base: string): string {
  return `${quote}>${base}`;
}

export function isConversionSymbol(symbol: string): boolean {
  return symbol.includes('>');
}

/** The market symbols a Q -> B conversion reads, in the order of the rule (cross legs absent when Q or B is the pivot). */
export interface ConversionLegs {
  direct: string;
  inverse: string;
  /** Q -> pivot, direct then inverse; null: no cross (Q or B is the pivot). */
  crossIn: readonly [string, string] | null;
  /** pivot -> B, direct then inverse. */
  crossOut: readonly [string, string] | null;
}

export function conversionLegsOf(quote: string, base: string, pivot: string): ConversionLegs {
  const cross = quote !== pivot && base !== pivot;
  return {
    direct: quote + base,
    inverse: base + quote,
    crossIn: cross ? [quote + pivot, pivot + quote] : null,
    crossOut: cross ? [pivot + base, base + pivot] : null,
  };
}

/** Every symbol the engine interns for a Q -> B conversion: the conversion symbol first, then its legs. */
export function conversionSymbolsOf(quote: string, base: string, pivot: string): string[] {
  const legs = conversionLegsOf(quote, base, pivot);
  const out = [conversionSymbolOf(quote, base), legs.direct, legs.inverse];
  if (legs.crossIn !== null && legs.crossOut !== null) out.push(...legs.crossIn, ...legs.crossOut);
  return out;
}

/** One leg's rate: its direct price, else 1 / its inverse price, else 0 (no price). */
export function legRate(direct: number, inverse: number): number {
  if (direct > 0) return direct;
  if (inverse > 0) return 1 / inverse;
  return 0;
}

/**
 * The rule, on prices (0 = never seen). The same function serves the kernel and the shard, so a
 * rate is the same bits wherever it is derived.
 */
export function conversionRate(direct: number, inverse: number, inDirect: number, inInverse: number, outDirect: number, outInverse: number): number {
  const straight = legRate(direct, inverse);
  if (straight > 0) return straight;
  const a = legRate(inDirect, inInverse);
  const b = legRate(outDirect, outInverse);
  return a > 0 && b > 0 ? a * b : 0;
}

export function validPivot(v: unknown): v is string {
  return typeof v === 'string' && currencyPattern.test(v);
}
