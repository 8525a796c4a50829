// Roll-up of finer bars into a coarser timeframe. Every timeframe nests in every coarser one, so a
// coarse bar is exactly: open of its first fine bar, close of its last, max of highs, min of lows,
// and the sums of volume, pv and trades. Nothing is approximated: vwap is recomputed from the sums.

import { assert } from '../assert.js';
import { vwapOf, type Bar } from './bar.js';
import { bucketStart, widthMs, type Timeframe } from './timeframe.js';

/** Coarse bars of tf from bars of one symbol and one finer (or equal) timeframe, sorted by start. */
export function rollUp(bars: readonly Bar[], tf: Timeframe): Bar[] {
  const out: Bar[] = [];
  let current: Bar | null = null;
  for (let i = 0; i < bars.length; i++) {
    const bar = bars[i];
    checkInput(bars, i, tf);
    const start = bucketStart(tf, bar.start);
    if (current === null || current.start !== start) {
      if (current !== null) out.push(current);
      current = { ...bar, tf, start };
    } else {
      merge(current, bar);
    }
  }
  if (current !== null) out.push(current);
  return out;
}

/** Folds a later fine bar into the coarse bar being built (owned by rollUp, so mutated in place). */
function merge(into: Bar, bar: Bar): void {
  if (bar.high > into.high) into.high = bar.high;
  if (bar.low < into.low) into.low = bar.low;
  into.close = bar.close;
  into.last_ts = bar.last_ts;
  into.volume += bar.volume;
  into.pv += bar.pv;
  into.trades += bar.trades;
  into.vwap = vwapOf(into.pv, into.volume);
}

function checkInput(bars: readonly Bar[], i: number, tf: Timeframe): void {
  const bar = bars[i];
  assert(widthMs(bar.tf) <= widthMs(tf), `rollUp: ${bar.tf} bars cannot roll up into ${tf}`);
  if (i === 0) return;
  const prev = bars[i - 1];
  assert(prev.symbol === bar.symbol && prev.tf === bar.tf, 'rollUp: bars of one symbol and one timeframe');
  assert(prev.start < bar.start, 'rollUp: bars must be sorted by start, without duplicates');
}
