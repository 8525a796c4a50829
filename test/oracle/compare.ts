// The acceptance rule for every reported figure: the engine's float64 value is within
// max(1e-9 relative, 1e-6 absolute) of the exact decimal recomputation by the oracle (ledger.ts).

import { Dec } from './ledger.js';

export const RELATIVE_TOLERANCE = 1e-9;
export const ABSOLUTE_TOLERANCE = 1e-6;

export class MismatchError extends Error {
  override name = 'MismatchError';
}

let comparisons = 0;
let worst = { ratio: 0, label: '' };

/** Figures compared so far in this worker: lets a test assert that it really compared something. */
export function comparisonCount(): number {
  return comparisons;
}

/**
 * The largest |actual - expected| / tolerance accepted so far (approximate: measured in float64) and
 * the figure it was seen on: how much of the tolerance the engine's float64 arithmetic uses.
 */
export function worstUseOfTolerance(): { ratio: number; label: string } {
  return { ...worst };
}

export function resetWorstUseOfTolerance(): void {
  worst = { ratio: 0, label: '' };
}

// Decimal#toNumber goes through a string: remember it per (immutable) Decimal, since the same oracle
// figure is compared with several engine books and, while its portfolio does not change, over steps.
const asNumber = new WeakMap<Dec, number>();

function numberOf(d: Dec): number {
  let n = asNumber.get(d);
  if (n === undefined) {
    n = d.toNumber();
    asNumber.set(d, n);
  }
  return n;
}

/** Allowed |actual - expected| for an exact expected value. */
export function toleranceOf(expected: Dec): Dec {
  const relative = expected.abs().times(RELATIVE_TOLERANCE);
  return relative.gt(ABSOLUTE_TOLERANCE) ? relative : new Dec(ABSOLUTE_TOLERANCE);
}

/**
 * Throws a MismatchError naming the label, both values, the difference and the tolerance unless
 * |actual - expected| <= max(1e-9 * |expected|, 1e-6). The relative part is taken on the exact value.
 */
export function expectClose(actual: number, expected: Dec, label: string): void {
  comparisons++;
  if (!Number.isFinite(actual)) {
    throw new MismatchError(`${label}: actual ${actual} is not finite, expected ${expected.toString()}`);
  }
  // Fast path in float64, safe by construction: e is expected rounded (relative error <= 2^-53), and
  // accepting only |actual - e| <= tolerance / 2 leaves a margin far larger than every rounding here.
  const e = numberOf(expected);
  const fastTol = Math.max(Math.abs(e) * RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE) / 2;
  const off = Math.abs(actual - e);
  if (off > 2 * fastTol * worst.ratio) worst = { ratio: off / (2 * fastTol), label };
  if (off <= fastTol) return;
  const diff = new Dec(actual).minus(expected).abs();
  const tol = toleranceOf(expected);
  if (diff.lte(tol)) return;
  throw new MismatchError(
    `${label}: actual ${actual} expected ${expected.toString()} differ by ${diff.toSignificantDigits(6).toString()}` +
      ` (tolerance ${tol.toSignificantDigits(6).toString()})`,
  );
}
