// Bars crossing the market worker's boundary: one Float64Array plus the symbol names it refers to,
// instead of an array of objects. Structured clone copies a typed array as one block, where it
// would walk every object and property; the main thread then builds Bar objects only for bars it
// stores or sends.

import { vwapOf, type Bar } from './bar.js';
import { timeframeIndex, timeframes } from './timeframe.js';

/** What happened to a bar: an update of the open bar, its close, or a late revision of a closed bar. */
export type BarChange = 'open' | 'closed' | 'revised';
const changes: readonly BarChange[] = ['open', 'closed', 'revised'];
const changeCode: Readonly<Record<BarChange, number>> = { open: 0, closed: 1, revised: 2 };

// Layout of one packed bar.
const NAME = 0;
const TF = 1;
const CHANGE = 2;
const START = 3;
const OPEN = 4;
const HIGH = 5;
const LOW = 6;
const CLOSE = 7;
const VOLUME = 8;
const PV = 9;
const TRADES = 10;
const FIRST_TS = 11;
const LAST_TS = 12;
const FIELDS = 13;

export interface PackedBars {
  names: string[];
  data: Float64Array;
  count: number;
}

export const emptyPack: PackedBars = Object.freeze({ names: [], data: new Float64Array(0), count: 0 }) as PackedBars;

/** Collects bars for one message; take() hands them off and starts over. */
export class BarPacker {
  private data = new Float64Array(16 * FIELDS);
  private count = 0;
  private names: string[] = [];
  private nameIndex = new Map<string, number>();

  get size(): number {
    return this.count;
  }

  add(bar: Bar, change: BarChange): void {
    if ((this.count + 1) * FIELDS > this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    let name = this.nameIndex.get(bar.symbol);
    if (name === undefined) {
      name = this.names.length;
      this.names.push(bar.symbol);
      this.nameIndex.set(bar.symbol, name);
    }
    const at = this.count * FIELDS;
    const d = this.data;
    d[at + NAME] = name;
    d[at + TF] = timeframeIndex(bar.tf);
    d[at + CHANGE] = changeCode[change];
    d[at + START] = bar.start;
    d[at + OPEN] = bar.open;
    d[at + HIGH] = bar.high;
    d[at + LOW] = bar.low;
    d[at + CLOSE] = bar.close;
    d[at + VOLUME] = bar.volume;
    d[at + PV] = bar.pv;
    d[at + TRADES] = bar.trades;
    d[at + FIRST_TS] = bar.first_ts;
    d[at + LAST_TS] = bar.last_ts;
    this.count++;
  }

  /** The packed bars (a right-sized copy, safe to transfer); the packer is empty afterwards. */
  take(): PackedBars {
    if (this.count === 0) return emptyPack;
    const out = { names: this.names, data: this.data.slice(0, this.count * FIELDS), count: this.count };
    this.count = 0;
    this.names = [];
    this.nameIndex = new Map();
    return out;
  }
}

/** Calls each(bar, change) for every packed bar, in the order they were added. */
export function unpackBars(pack: PackedBars, each: (bar: Bar, change: BarChange) => void): void {
  const d = pack.data;
  for (let i = 0; i < pack.count; i++) {
    const at = i * FIELDS;
    const volume = d[at + VOLUME];
    const pv = d[at + PV];
    const bar: Bar = {
      symbol: pack.names[d[at + NAME]],
      tf: timeframes[d[at + TF]],
      start: d[at + START],
      open: d[at + OPEN],
      high: d[at + HIGH],
      low: d[at + LOW],
      close: d[at + CLOSE],
      volume,
      pv,
      vwap: vwapOf(pv, volume),
      trades: d[at + TRADES],
      first_ts: d[at + FIRST_TS],
      last_ts: d[at + LAST_TS],
    };
    each(bar, changes[d[at + CHANGE]]);
  }
}
