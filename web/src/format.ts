// Number formatting for the page, shared with the tests (they format the REST snapshot the same
// way to compare what is on screen). Formatters are built once: Intl.NumberFormat construction is
// far more expensive than format() and the table formats hundreds of cells a second.

const money2 = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const price = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 4 });
const quantity = new Intl.NumberFormat('en-US', { maximumFractionDigits: 8 });
const pct = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

// U+2212 MINUS SIGN: reads as "minus" in screen readers and lines up with "+" in tabular figures.
const MINUS = '\u2212';

const isZeroText = (text: string): boolean => /^[0.,]*$/.test(text);

/** Unsigned unless negative; values that round to zero print without a sign, so "0.00" never flickers to "−0.00". */
function plain(n: number, f: Intl.NumberFormat): string {
  const text = f.format(Math.abs(n));
  return n < 0 && !isZeroText(text) ? MINUS + text : text;
}

/** Always signed (except zero), so up/down never depends on colour alone. */
function signed(n: number, f: Intl.NumberFormat): string {
  const text = f.format(Math.abs(n));
  return isZeroText(text) ? text : (n < 0 ? MINUS : '+') + text;
}

export const fmtMoney = (n: number): string => plain(n, money2);
/** P&L and returns in currency. */
export const fmtPnl = (n: number): string => signed(n, money2);
export const fmtPrice = (n: number): string => plain(n, price);
export const fmtQuantity = (n: number): string => plain(n, quantity);

/** A percentage that is already ×100 (return_rate, weight). */
export const fmtPct = (n: number): string => plain(n, pct) + '%';
export const fmtSignedPct = (n: number): string => signed(n, pct) + '%';

/** The colour follows the sign the text shows, so a value that rounds to 0.00 is never painted green or red. */
export function signOf(text: string): 'pos' | 'neg' | 'zero' {
  return text.startsWith('+') ? 'pos' : text.startsWith(MINUS) ? 'neg' : 'zero';
}

/** Wall-clock time of an event, HH:MM:SS in the viewer's zone. */
export function fmtTime(epochMs: number): string {
  const d = new Date(epochMs);
  const two = (v: number) => (v < 10 ? '0' : '') + v;
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
