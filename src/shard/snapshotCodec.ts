// A shard's columnar snapshot: its books as four segments, encoded once in the worker that owns
// them, stored by the main thread as raw bytes, and decoded only by the worker that loads them.
//   0 portfolios  column block, one row per book (figures, lifecycle, where its positions are)
//   1 positions   column block, one row per position, grouped by book in the book's key order
//   2 strings     ids, names, base currencies, the symbol and currency tables, the distinct limits,
//                 and the currency conversions the books need (the main thread reads this one and the
//                 status column to rebuild its directory and symbol table): binary (stringTables
//                 below: one UTF-8 text, decoded once, and where each string ends in it); a snapshot
//                 written before it has UTF-8 JSON here, read the same (first byte '{')
//   3 side        UTF-8 JSON of what is rare and shaped: foreign cash, dividends due, open lots
// A column is one entry in portfolioColumns / positionColumns plus the line that fills it and the
// line that reads it; a reader of an older snapshot sees a new column missing and takes its default.

import { assert } from '../assert.js';
import { baseCurrencyDefault, type DividendDue, type Lot, type PortfolioState, type PortfolioStatus, type PositionState, type RiskLimits } from '../domain/types.js';
import { replayBaseAverageFill } from '../domain/portfolio.js';
import type { ValidTrade } from '../domain/validate.js';
import type { TradeOutcome } from '../domain/accounting.js';
import { ColumnBlock, ColumnBlockWriter } from './columnBlock.js';

export const snapshotSegmentNames = ['portfolios', 'positions', 'strings', 'side'] as const;

export const portfolioColumns = [
  { name: 'status', kind: 'i32' },
  { name: 'seq', kind: 'f64' },
  { name: 'hwm', kind: 'f64' },
  { name: 'cash', kind: 'f64' },
  { name: 'capital', kind: 'f64' },
  { name: 'realized', kind: 'f64' },
  { name: 'trades', kind: 'f64' },
  /** 0 average (not written in the state), 1 fifo, 2 lifo. */
  { name: 'method', kind: 'i32' },
  { name: 'limits', kind: 'i32' },
  { name: 'firstPosition', kind: 'i32' },
  { name: 'positions', kind: 'i32' },
  /** Index into side.extras, -1: no foreign cash and no dividends due. */
  { name: 'extra', kind: 'i32' },
] as const;

export const positionColumns = [
  { name: 'symbol', kind: 'i32' },
  { name: 'units', kind: 'f64' },
  { name: 'avg', kind: 'f64' },
  { name: 'realized', kind: 'f64' },
  { name: 'lastTrade', kind: 'f64' },
  /** Index into strings.currencies, -1: the base currency (not written in the state). */
  { name: 'currency', kind: 'i32' },
  /** Index into side.lots, -1: no lots array. */
  { name: 'lots', kind: 'i32' },
  /** Contract multiplier; 0: none written in the state (1). */
  { name: 'multiplier', kind: 'f64' },
] as const;

const statuses: readonly PortfolioStatus[] = ['active', 'paused', 'closed'];
const methods = [undefined, 'fifo', 'lifo'] as const;

export interface SnapshotStrings {
  ids: string[];
  names: string[];
  /** null: the default base currency (not written in the state). */
  bases: (string | null)[];
  symbols: string[];
  currencies: string[];
  limits: RiskLimits[];
  /** Every (currency, base) a book of this snapshot converts: the main thread interns their symbols. */
  conversions: [string, string][];
}

interface SnapshotSide {
  extras: { cash_balances?: Record<string, number>; dividends_due?: Record<string, DividendDue> }[];
  lots: Lot[][];
}

/** What the encoder reads of a book. */
export interface BookImage {
  state: PortfolioState;
  status: PortfolioStatus;
  seq: number;
  hwm: number;
  /**
   * Its symbols in kernel row order. Rows link in creation order and totals are summed in it, so a
   * restore must recreate them in that order (an object's key order puts integer-like keys first).
   */
  order: readonly string[];
}

/** The book's position symbols: row order first, then any position without a row. */
function symbolsInOrder(b: BookImage): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const symbol of b.order) {
    if (b.state.positions[symbol] === undefined || seen.has(symbol)) continue;
    seen.add(symbol);
    out.push(symbol);
  }
  for (const symbol in b.state.positions) if (!seen.has(symbol)) out.push(symbol);
  return out;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

class Interner {
  readonly list: string[] = [];
  private readonly ids = new Map<string, number>();
  id(s: string): number {
    let i = this.ids.get(s);
    if (i === undefined) {
      i = this.list.length;
      this.ids.set(s, i);
      this.list.push(s);
    }
    return i;
  }
}

/**
 * A book whose snapshot part's columns still hold its state (shard/book.ts partSource): encoded by
 * copying them, without building (or walking) its state. Its rows are in the part's position order,
 * which is its kernel row order. Status, seq and high-water mark are the book's now.
 */
export interface PartImage {
  part: SnapshotPart;
  index: number;
  status: PortfolioStatus;
  seq: number;
  hwm: number;
}

/**
 * Encodes books (in the order given) into the four segments. A PartImage gives the bytes its state
 * would (test/snapshotCodec.test.ts): a clean stop right after a restart encoded 100,000 books by
 * building every state first.
 */
export function encodeSnapshot(books: readonly (BookImage | PartImage)[]): Uint8Array[] {
  let positions = 0;
  for (const b of books) {
    if ('part' in b) positions += b.part.count[b.index];
    else for (const _ in b.state.positions) positions++;
  }
  const pf = new ColumnBlockWriter(portfolioColumns, books.length);
  const pos = new ColumnBlockWriter(positionColumns, positions);
  const [status, method, limitsCol, first, count, extra] = [pf.i32('status'), pf.i32('method'), pf.i32('limits'), pf.i32('firstPosition'), pf.i32('positions'), pf.i32('extra')];
  const [seq, hwm, cash, capital, realized, trades] = [pf.f64('seq'), pf.f64('hwm'), pf.f64('cash'), pf.f64('capital'), pf.f64('realized'), pf.f64('trades')];
  const [sym, units, avg, posRealized, lastTrade, currency, lotsCol, mult] = [pos.i32('symbol'), pos.f64('units'), pos.f64('avg'), pos.f64('realized'), pos.f64('lastTrade'), pos.i32('currency'), pos.i32('lots'), pos.f64('multiplier')];
  const symbols = new Interner();
  const currencies = new Interner();
  const limitsSeen = new Map<string, number>();
  const limits: RiskLimits[] = [];
  const fx = new Map<string, [string, string]>();
  const convert = (currency: string, base: string) => fx.set(currency + ' ' + base, [currency, base]);
  const strings: SnapshotStrings = { ids: [], names: [], bases: [], symbols: symbols.list, currencies: currencies.list, limits, conversions: [] };
  const side: SnapshotSide = { extras: [], lots: [] };
  const limitIndex = (l: RiskLimits): number => {
    const lj = JSON.stringify(l);
    let li = limitsSeen.get(lj);
    if (li === undefined) {
      li = limits.length;
      limitsSeen.set(lj, li);
      limits.push(l);
    }
    return li;
  };
  // Per part: its symbol and limit indexes in this snapshot's tables (-1: not met yet).
  const remaps = new Map<SnapshotPart, { symbols: Int32Array; limits: Int32Array }>();
  let p = 0;
  // Positions [from, to) of a part whose figures go to [at, ...) here, not copied yet.
  let run: { part: SnapshotPart; from: number; to: number; at: number } | null = null;
  const copyRun = (): void => {
    if (run === null) return;
    const { part, from, to, at } = run;
    units.set(part.units.subarray(from, to), at);
    avg.set(part.avg.subarray(from, to), at);
    posRealized.set(part.posRealized.subarray(from, to), at);
    lastTrade.set(part.lastTrade.subarray(from, to), at);
    // No multiplier column (a part written before them): 0, what the new block holds already.
    if (part.multiplier !== null) mult.set(part.multiplier.subarray(from, to), at);
    run = null;
  };
  const fromPart = (b: PartImage, i: number): void => {
    const { part, index: j } = b;
    let remap = remaps.get(part);
    if (remap === undefined) {
      remap = { symbols: new Int32Array(part.strings.symbols.length).fill(-1), limits: new Int32Array(part.strings.limits.length).fill(-1) };
      remaps.set(part, remap);
    }
    const base = part.baseOf(j);
    strings.ids.push(part.strings.ids[j]);
    strings.names.push(part.strings.names[j]);
    strings.bases.push(part.strings.bases[j]);
    status[i] = statuses.indexOf(b.status);
    seq[i] = b.seq;
    hwm[i] = b.hwm;
    cash[i] = part.cash[j];
    capital[i] = part.capital[j];
    realized[i] = part.realized[j];
    trades[i] = part.trades[j];
    method[i] = part.method[j];
    const pl = part.limitsCol[j];
    if (remap.limits[pl] < 0) remap.limits[pl] = limitIndex(part.strings.limits[pl]);
    limitsCol[i] = remap.limits[pl];
    first[i] = p;
    const from = part.first[j];
    const to = from + part.count[j];
    const { sym: partSym, currency: partCurrency, lots: partLots } = part;
    const symbolIds = remap.symbols;
    for (let q = from; q < to; q++, p++) {
      const ps = partSym[q];
      if (symbolIds[ps] < 0) symbolIds[ps] = symbols.id(part.strings.symbols[ps]);
      sym[p] = symbolIds[ps];
      const pc = partCurrency[q];
      if (pc < 0) currency[p] = -1;
      else {
        const c = part.strings.currencies[pc];
        currency[p] = currencies.id(c);
        convert(c, base);
      }
      if (partLots[q] < 0) lotsCol[p] = -1;
      else {
        lotsCol[p] = side.lots.length;
        side.lots.push(part.lotsAt(partLots[q]));
      }
    }
    count[i] = p - first[i];
    // The figures are copied a run of books at a time (one copy per column for a whole untouched part).
    if (run !== null && run.part === part && run.to === from && run.at + (run.to - run.from) === first[i]) run.to = to;
    else {
      copyRun();
      run = { part, from, to, at: first[i] };
    }
    if (part.extra[j] < 0) extra[i] = -1;
    else {
      const e = part.extraAt(part.extra[j]);
      extra[i] = side.extras.length;
      side.extras.push(e);
      for (const c of Object.keys(e.cash_balances ?? {})) convert(c, base);
      for (const d of Object.values(e.dividends_due ?? {})) if (d.currency !== base) convert(d.currency, base);
    }
  };
  books.forEach((b, i) => {
    if ('part' in b) {
      fromPart(b, i);
      return;
    }
    const s = b.state;
    const base = s.base_currency ?? baseCurrencyDefault;
    strings.ids.push(s.id);
    strings.names.push(s.name);
    strings.bases.push(s.base_currency ?? null);
    status[i] = statuses.indexOf(b.status);
    seq[i] = b.seq;
    hwm[i] = b.hwm;
    cash[i] = s.cash;
    capital[i] = s.capital;
    realized[i] = s.realized_pnl;
    trades[i] = s.trades;
    method[i] = s.cost_basis_method === 'fifo' ? 1 : s.cost_basis_method === 'lifo' ? 2 : 0;
    limitsCol[i] = limitIndex(s.limits);
    first[i] = p;
    for (const symbol of symbolsInOrder(b)) {
      const ps = s.positions[symbol];
      sym[p] = symbols.id(symbol);
      units[p] = ps.units;
      avg[p] = ps.avg_cost;
      posRealized[p] = ps.realized_pnl;
      lastTrade[p] = ps.last_trade_price;
      currency[p] = ps.currency === undefined ? -1 : currencies.id(ps.currency);
      mult[p] = ps.multiplier ?? 0;
      if (ps.currency !== undefined) convert(ps.currency, base);
      if (ps.lots === undefined) lotsCol[p] = -1;
      else {
        lotsCol[p] = side.lots.length;
        side.lots.push(ps.lots);
      }
      p++;
    }
    count[i] = p - first[i];
    if (s.cash_balances === undefined && s.dividends_due === undefined) extra[i] = -1;
    else {
      extra[i] = side.extras.length;
      const e: SnapshotSide['extras'][number] = {};
      if (s.cash_balances !== undefined) e.cash_balances = s.cash_balances;
      if (s.dividends_due !== undefined) e.dividends_due = s.dividends_due;
      side.extras.push(e);
      for (const c of Object.keys(s.cash_balances ?? {})) convert(c, base);
      for (const d of Object.values(s.dividends_due ?? {})) if (d.currency !== base) convert(d.currency, base);
    }
  });
  copyRun();
  assert(p === positions, 'every position encoded once');
  strings.conversions = [...fx.values()];
  return [pf.bytes, pos.bytes, encodeStrings(strings), utf8.encode(JSON.stringify(side))];
}

/**
 * The strings segment, binary: u32 magic, u32 table count, then per table a u32 count and that many
 * i32 ends, then the UTF-8 text of every string of every table back to back. An end is where the
 * string ends in the decoded text (UTF-16 units, counted across tables), so the reader decodes the
 * text once and takes each string as a slice of it: no parse, no decoder call per string (the JSON
 * form of 100,000 books was parsed on the main thread and again in the worker). Tables, in order:
 * ids, names, bases ('' for the default: a base currency is never empty), symbols, currencies,
 * limits (each distinct limits object as JSON: a few), then the conversions' currencies and bases.
 */
export const stringsSegmentMagic = 0x5354544d; // 'MTTS'

const stringTables = 8;

function encodeStrings(strings: SnapshotStrings): Uint8Array {
  const tables: string[][] = [
    strings.ids,
    strings.names,
    strings.bases.map((b) => b ?? ''),
    strings.symbols,
    strings.currencies,
    strings.limits.map((l) => JSON.stringify(l)),
    strings.conversions.map((c) => c[0]),
    strings.conversions.map((c) => c[1]),
  ];
  const text = tables.map((t) => t.join('')).join('');
  // UTF-8 cannot carry a lone surrogate (a name may hold one): such a snapshot keeps the JSON form.
  // (String.prototype.isWellFormed: Node 20 has it, the ES2023 lib of tsconfig does not declare it.)
  if (!(text as unknown as { isWellFormed(): boolean }).isWellFormed()) return utf8.encode(JSON.stringify(strings));
  let head = 8;
  for (const t of tables) head += 4 + 4 * t.length;
  const body = utf8.encode(text);
  const out = new Uint8Array(head + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, stringsSegmentMagic, true);
  dv.setUint32(4, tables.length, true);
  let at = 8;
  let end = 0;
  for (const t of tables) {
    dv.setUint32(at, t.length, true);
    at += 4;
    for (const str of t) {
      end += str.length;
      dv.setInt32(at, end, true);
      at += 4;
    }
  }
  out.set(body, head);
  return out;
}

function decodeStrings(bytes: Uint8Array): SnapshotStrings {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert(bytes.byteLength >= 8 && dv.getUint32(0, true) === stringsSegmentMagic && dv.getUint32(4, true) === stringTables, 'not a strings segment');
  const counts: number[] = [];
  const ends: Int32Array[] = [];
  let at = 8;
  for (let t = 0; t < stringTables; t++) {
    assert(at + 4 <= bytes.byteLength, 'strings segment: a table past its end');
    const n = dv.getUint32(at, true);
    at += 4;
    assert(at + 4 * n <= bytes.byteLength, 'strings segment: a table past its end');
    counts.push(n);
    // A view of the ends (little endian, as the column blocks); a copy when the segment sits at an
    // offset a view cannot start at (a shipped frame may put it anywhere).
    const offset = bytes.byteOffset + at;
    if (offset % 4 === 0) ends.push(new Int32Array(bytes.buffer, offset, n));
    else {
      const e = new Int32Array(n);
      for (let i = 0; i < n; i++) e[i] = dv.getInt32(at + 4 * i, true);
      ends.push(e);
    }
    at += 4 * n;
  }
  const text = fromUtf8.decode(bytes.subarray(at));
  let start = 0;
  const table = (t: number): string[] => {
    const e = ends[t];
    const out = new Array<string>(e.length);
    for (let i = 0; i < e.length; i++) {
      out[i] = text.slice(start, e[i]);
      start = e[i];
    }
    return out;
  };
  const ids = table(0);
  const names = table(1);
  const bases = table(2).map((b) => (b === '' ? null : b));
  const symbols = table(3);
  const currencies = table(4);
  const limits = table(5).map((l) => JSON.parse(l) as RiskLimits);
  const from = table(6);
  const to = table(7);
  assert(start === text.length, 'strings segment: text and ends agree');
  return { ids, names, bases, symbols, currencies, limits, conversions: from.map((c, i) => [c, to[i]]) };
}

/** The strings segment alone: what the main thread needs (ids, names, bases, symbols, FX symbols). */
/**
 * The segments readSnapshotStrings and readSnapshotStatuses read (portfolios, strings): all the main
 * thread reads of a generation at a start (each worker reads its own part whole, in its thread).
 */
export const directorySegments: readonly number[] = [0, 2];

export function readSnapshotStrings(segments: readonly Uint8Array[]): SnapshotStrings {
  const bytes = segments[2];
  // A snapshot written before the binary form: UTF-8 JSON (an object: '{').
  if (bytes.byteLength > 0 && bytes[0] === 0x7b) return JSON.parse(fromUtf8.decode(bytes)) as SnapshotStrings;
  return decodeStrings(bytes);
}

/** The lifecycle state of each book, from the portfolios segment (the main thread's directory needs it). */
export function readSnapshotStatuses(segments: readonly Uint8Array[]): PortfolioStatus[] {
  const status = ColumnBlock.read(segments[0]).i32('status');
  return Array.from(status, (s) => statuses[s]);
}

/** How many books and positions a snapshot holds (the kernel reserves rows for them up front). */
export function snapshotRowCounts(segments: readonly Uint8Array[]): { portfolios: number; positions: number } {
  return { portfolios: ColumnBlock.read(segments[0]).rows, positions: ColumnBlock.read(segments[1]).rows };
}

/** One restored book as the loader gets it. */
export interface RestoredBook {
  state: PortfolioState;
  status: PortfolioStatus;
  seq: number;
  hwm: number;
  /** Its position symbols in the order their kernel rows are to be created (absent: key order). */
  order?: string[];
}

/**
 * A decoded view of one snapshot part: its columns as typed arrays over the segments' bytes, its
 * strings, and each book's state built only when asked for (stateOf). A shard restores kernel rows
 * straight from the columns and leaves the state objects to be built on first use (lazy books).
 */
export class SnapshotPart {
  readonly books: number;
  readonly strings: SnapshotStrings;
  private sideValue: SnapshotSide | null = null;
  readonly status: Int32Array;
  readonly method: Int32Array;
  readonly limitsCol: Int32Array;
  readonly first: Int32Array;
  readonly count: Int32Array;
  readonly extra: Int32Array;
  readonly seq: Float64Array;
  readonly hwm: Float64Array;
  readonly cash: Float64Array;
  readonly capital: Float64Array;
  readonly realized: Float64Array;
  readonly trades: Float64Array;
  readonly sym: Int32Array;
  readonly units: Float64Array;
  readonly avg: Float64Array;
  readonly posRealized: Float64Array;
  readonly lastTrade: Float64Array;
  readonly currency: Int32Array;
  readonly lots: Int32Array;
  /** Absent in a snapshot written before multipliers existed: every position at 1. */
  readonly multiplier: Float64Array | null;

  constructor(private readonly segments: readonly Uint8Array[]) {
    const pf = ColumnBlock.read(segments[0]);
    const pos = ColumnBlock.read(segments[1]);
    this.strings = readSnapshotStrings(segments);
    this.books = pf.rows;
    [this.status, this.method, this.limitsCol, this.first, this.count, this.extra] = [pf.i32('status'), pf.i32('method'), pf.i32('limits'), pf.i32('firstPosition'), pf.i32('positions'), pf.i32('extra')];
    [this.seq, this.hwm, this.cash, this.capital, this.realized, this.trades] = [pf.f64('seq'), pf.f64('hwm'), pf.f64('cash'), pf.f64('capital'), pf.f64('realized'), pf.f64('trades')];
    [this.sym, this.units, this.avg, this.posRealized, this.lastTrade, this.currency, this.lots] = [pos.i32('symbol'), pos.f64('units'), pos.f64('avg'), pos.f64('realized'), pos.f64('lastTrade'), pos.i32('currency'), pos.i32('lots')];
    this.multiplier = pos.has('multiplier') ? pos.f64('multiplier') : null;
    assert(this.strings.ids.length === pf.rows, 'one id per book');
  }

  private get side(): SnapshotSide {
    return (this.sideValue ??= JSON.parse(fromUtf8.decode(this.segments[3])) as SnapshotSide);
  }

  /** Open lots number k of the side segment. */
  lotsAt(k: number): Lot[] {
    return this.side.lots[k];
  }

  /** Foreign cash and dividends due number k of the side segment. */
  extraAt(k: number): SnapshotSide['extras'][number] {
    return this.side.extras[k];
  }

  /** The part's symbol table by name (built on the first trade booked into the columns). */
  private symbolIndex: Map<string, number> | null = null;
  /** The position a trade booked into the columns starts from, and its outcome: rewritten per trade. */
  private readonly before: PositionState = { units: 0, avg_cost: 0, realized_pnl: 0, last_trade_price: 0 };
  private readonly outcome: TradeOutcome = { position: { units: 0, avg_cost: 0, realized_pnl: 0, last_trade_price: 0 }, realized: 0, cashDelta: 0, opened: false, closed: false, flipped: false };

  /**
   * Replays a logged trade into book i's columns, so its state is not built just to take it (a crash
   * restart's tail touched every book: building 100,000 states and their garbage was most of it).
   * Only the case whose state the columns hold whole: an average-cost book, a trade in its base
   * currency at multiplier 1 on a position it holds without lots, multiplier or foreign currency; the
   * arithmetic is replayTrade's (replayBaseAverageFill). stateOf(i) afterwards shows the trade.
   * false: any other trade, nothing changed (the caller builds the state and books it there).
   */
  bookTrade(i: number, trade: ValidTrade): boolean {
    if (this.method[i] !== 0 || this.extra[i] >= 0 || trade.multiplier !== 1 || trade.lot_ids !== null) return false;
    if (trade.currency !== null && trade.currency !== this.baseOf(i)) return false;
    const index = (this.symbolIndex ??= new Map(this.strings.symbols.map((name, k) => [name, k])));
    const symbol = index.get(trade.symbol);
    if (symbol === undefined) return false;
    let p = this.first[i];
    const end = p + this.count[i];
    while (p < end && this.sym[p] !== symbol) p++;
    if (p === end || this.currency[p] >= 0 || this.lots[p] >= 0 || (this.multiplier !== null && this.multiplier[p] !== 0)) return false;
    const before = this.before;
    before.units = this.units[p];
    before.avg_cost = this.avg[p];
    before.realized_pnl = this.posRealized[p];
    before.last_trade_price = this.lastTrade[p];
    const fill = replayBaseAverageFill(before, trade, this.outcome);
    this.units[p] = fill.position.units;
    this.avg[p] = fill.position.avg_cost;
    this.posRealized[p] = fill.position.realized_pnl;
    this.lastTrade[p] = fill.position.last_trade_price;
    // As replayTrade writes the state.
    this.cash[i] = this.cash[i] + fill.cashDelta;
    this.realized[i] = this.realized[i] + fill.realized;
    this.trades[i] = this.trades[i] + 1;
    return true;
  }

  /** Whether some position is quoted in another currency than its book's base (the currency table lists only those). */
  get foreign(): boolean {
    return this.strings.currencies.length > 0;
  }

  statusOf(i: number): PortfolioStatus {
    return statuses[this.status[i]];
  }

  /** Position p's multiplier as the kernel takes it (none written: 1). */
  multiplierOf(p: number): number {
    const m = this.multiplier === null ? 0 : this.multiplier[p];
    return m === 0 ? 1 : m;
  }

  /** Book i's base currency (absent: the default). */
  baseOf(i: number): string {
    return this.strings.bases[i] ?? baseCurrencyDefault;
  }

  /** Book i's symbols in kernel row order. */
  orderOf(i: number): string[] {
    const order: string[] = [];
    for (let p = this.first[i], end = p + this.count[i]; p < end; p++) order.push(this.strings.symbols[this.sym[p]]);
    return order;
  }

  /** Book i's accounting state, as the pure functions write it (a new object on every call). */
  stateOf(i: number): PortfolioState {
    const strings = this.strings;
    const positions: Record<string, PositionState> = {};
    for (let p = this.first[i], end = p + this.count[i]; p < end; p++) {
      const ps: PositionState = { units: this.units[p], avg_cost: this.avg[p], realized_pnl: this.posRealized[p], last_trade_price: this.lastTrade[p] };
      if (this.currency[p] >= 0) ps.currency = strings.currencies[this.currency[p]];
      if (this.lots[p] >= 0) ps.lots = this.side.lots[this.lots[p]];
      if (this.multiplier !== null && this.multiplier[p] !== 0) ps.multiplier = this.multiplier[p];
      positions[strings.symbols[this.sym[p]]] = ps;
    }
    // Keys in the order newPortfolio and the pure functions write them.
    const state: PortfolioState = { id: strings.ids[i], name: strings.names[i], cash: this.cash[i], capital: this.capital[i], realized_pnl: this.realized[i], limits: strings.limits[this.limitsCol[i]], positions, trades: this.trades[i] };
    const m = methods[this.method[i]];
    if (m !== undefined) state.cost_basis_method = m;
    const base = strings.bases[i];
    if (base !== null) state.base_currency = base;
    if (this.extra[i] >= 0) {
      const e = this.side.extras[this.extra[i]];
      if (e.cash_balances !== undefined) state.cash_balances = e.cash_balances;
      if (e.dividends_due !== undefined) state.dividends_due = e.dividends_due;
    }
    return state;
  }
}

/**
 * Decodes the books of a snapshot, calling `each` for those `keep` accepts (by index and id), in
 * order. Objects are built only for kept books.
 */
export function decodeSnapshot(segments: readonly Uint8Array[], keep: (id: string) => boolean, each: (book: RestoredBook) => void): void {
  const part = new SnapshotPart(segments);
  for (let i = 0; i < part.books; i++) {
    if (!keep(part.strings.ids[i])) continue;
    each({ state: part.stateOf(i), status: part.statusOf(i), seq: part.seq[i], hwm: part.hwm[i], order: part.orderOf(i) });
  }
}
