// Columnar (structure-of-arrays) memory for the revaluation kernels, laid out in one buffer.
// The same layout serves the TypeScript kernel (a plain ArrayBuffer) and the WASM kernel (its linear
// memory): TypeScript owns allocation and growth; the kernels only compute over the columns.
// A header of i32 slots at byte 0 tells the WASM code where each column starts.
//
// Position row: qty, avg, mark, mv, upnl, fx (f64) + sym, pf, nextSym, nextPf, fxSym, nextFx (i32)
// = 72 bytes. Symbol row: price (f64) + head, count, changes, fxHead, fxCount (i32) = 28 bytes.
// The fx column is the per-position conversion rate into the portfolio's currency: 1 for a position
// that needs none (fxSym = NONE); otherwise the price of its fx symbol (e.g. EURUSD for a EUR-quoted
// position in a USD book), which is just another symbol of the table: a change of that price
// revalues every row on the symbol's fx list (fxHead/nextFx) in the same pass, and 0 until that rate
// has been seen (the row then contributes 0 to every total). Lot-level cost bases live outside the
// kernel and reach it as avg (the quantity-weighted average of open lots).

export const HEADER_BYTES = 512;
export const NONE = -1;

/** Header slots (i32 index into the header). */
export const H = {
  posCap: 0,
  pfCap: 1,
  symCap: 2,
  batchCap: 3,
  dirtyCount: 4,
  breachCount: 5,
  touched: 6,
  stamp: 7,
  /** Portfolios on the watch list (pfWatch[0, watchCount)). */
  watchCount: 8,
  /** Symbols changed since the last pass over unwatched portfolios (symPendingList[0, pendingCount)). */
  pendingCount: 9,
  // column byte offsets follow from slot 16
  columns: 16,
} as const;

type ColumnKind = 'f64' | 'i32';
type Group = 'pos' | 'pf' | 'sym' | 'batch';

interface ColumnSpec {
  readonly name: string;
  readonly kind: ColumnKind;
  readonly group: Group;
}

// Order is part of the ABI with assembly/kernel.ts: append only.
export const columnSpecs = [
  { name: 'posQty', kind: 'f64', group: 'pos' },
  { name: 'posAvg', kind: 'f64', group: 'pos' },
  { name: 'posMark', kind: 'f64', group: 'pos' },
  { name: 'posMv', kind: 'f64', group: 'pos' },
  { name: 'posUpnl', kind: 'f64', group: 'pos' },
  { name: 'posFx', kind: 'f64', group: 'pos' },
  { name: 'posSym', kind: 'i32', group: 'pos' },
  { name: 'posPf', kind: 'i32', group: 'pos' },
  { name: 'posNextSym', kind: 'i32', group: 'pos' },
  { name: 'posNextPf', kind: 'i32', group: 'pos' },
  { name: 'symPrice', kind: 'f64', group: 'sym' },
  { name: 'symHead', kind: 'i32', group: 'sym' },
  { name: 'symCount', kind: 'i32', group: 'sym' },
  { name: 'pfCash', kind: 'f64', group: 'pf' },
  { name: 'pfRealized', kind: 'f64', group: 'pf' },
  { name: 'pfHoldings', kind: 'f64', group: 'pf' },
  { name: 'pfCostBasis', kind: 'f64', group: 'pf' },
  { name: 'pfUpnl', kind: 'f64', group: 'pf' },
  { name: 'pfGross', kind: 'f64', group: 'pf' },
  { name: 'pfMaxAbsMv', kind: 'f64', group: 'pf' },
  { name: 'pfHwm', kind: 'f64', group: 'pf' },
  { name: 'pfMaxLoss', kind: 'f64', group: 'pf' },
  { name: 'pfMaxDdPct', kind: 'f64', group: 'pf' },
  { name: 'pfMaxWeightPct', kind: 'f64', group: 'pf' },
  { name: 'pfBreachValue', kind: 'f64', group: 'pf' },
  { name: 'pfHead', kind: 'i32', group: 'pf' },
  { name: 'pfStamp', kind: 'i32', group: 'pf' },
  { name: 'pfFlags', kind: 'i32', group: 'pf' },
  { name: 'pfDirty', kind: 'i32', group: 'pf' },
  { name: 'pfBreach', kind: 'i32', group: 'pf' },
  { name: 'pfBreachKind', kind: 'i32', group: 'pf' },
  { name: 'batchSym', kind: 'i32', group: 'batch' },
  { name: 'batchPrice', kind: 'f64', group: 'batch' },
  // Times each symbol's price changed within the batch being applied: the kernels' portfolio
  // sweep reads it instead of the per-symbol lists. Zero between revalue calls.
  { name: 'symChanges', kind: 'i32', group: 'sym' },
  // Multi-currency: the symbol whose price converts this row (NONE: no conversion, fx stays 1) and
  // the next row converted by the same symbol; each symbol's list of the rows it converts.
  { name: 'posFxSym', kind: 'i32', group: 'pos' },
  { name: 'posNextFx', kind: 'i32', group: 'pos' },
  { name: 'symFxHead', kind: 'i32', group: 'sym' },
  { name: 'symFxCount', kind: 'i32', group: 'sym' },
  // Watched first (Kernel.revalueWatched / revalueRest): the portfolios whose rows a batch revalues at
  // once (flag FLAG_WATCHED, listed in pfWatch), and per symbol the price changes the unwatched rows
  // have not seen yet (symPending, listed once in symPendingList).
  { name: 'pfWatch', kind: 'i32', group: 'pf' },
  { name: 'symPending', kind: 'i32', group: 'sym' },
  { name: 'symPendingList', kind: 'i32', group: 'sym' },
] as const satisfies readonly ColumnSpec[];

export type ColumnName = (typeof columnSpecs)[number]['name'];
type F64Names = Extract<(typeof columnSpecs)[number], { kind: 'f64' }>['name'];
type I32Names = Extract<(typeof columnSpecs)[number], { kind: 'i32' }>['name'];
export type Columns = { [K in F64Names]: Float64Array } & { [K in I32Names]: Int32Array };

/** pfFlags bits. */
export const FLAG_BREACH_LATCHED = 1;
/** Listed in pfWatch: its rows are revalued by every batch's first pass (someone watches its deltas). */
export const FLAG_WATCHED = 2;

/** Breach kinds reported in pfBreachKind (also the priority when several limits break at once). */
export const BREACH_MAX_LOSS = 1;
export const BREACH_MAX_DRAWDOWN = 2;
export const BREACH_MAX_WEIGHT = 3;

export interface Capacities {
  readonly pos: number;
  readonly pf: number;
  readonly sym: number;
  readonly batch: number;
}

export interface Layout {
  readonly caps: Capacities;
  readonly offsets: Readonly<Record<ColumnName, number>>;
  readonly bytes: number;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

export function computeLayout(caps: Capacities): Layout {
  const offsets = {} as Record<ColumnName, number>;
  let at = HEADER_BYTES;
  for (const c of columnSpecs) {
    offsets[c.name] = at;
    at = align8(at + caps[c.group] * (c.kind === 'f64' ? 8 : 4));
  }
  return { caps, offsets, bytes: at };
}

export function writeHeader(buffer: ArrayBuffer, layout: Layout): void {
  const h = new Int32Array(buffer, 0, HEADER_BYTES / 4);
  h[H.posCap] = layout.caps.pos;
  h[H.pfCap] = layout.caps.pf;
  h[H.symCap] = layout.caps.sym;
  h[H.batchCap] = layout.caps.batch;
  columnSpecs.forEach((c, i) => {
    h[H.columns + i] = layout.offsets[c.name];
  });
}

export function viewColumns(buffer: ArrayBuffer, layout: Layout): Columns {
  const cols = {} as Record<string, Float64Array | Int32Array>;
  for (const c of columnSpecs) {
    const n = layout.caps[c.group];
    cols[c.name] = c.kind === 'f64' ? new Float64Array(buffer, layout.offsets[c.name], n) : new Int32Array(buffer, layout.offsets[c.name], n);
  }
  return cols as Columns;
}
