// Market data in LMDB: closed bars, checkpointed open bars, the symbols that have bars, and the alert
// rules set through the API. Its own environment under <dataDir>/market, beside the event log's: the
// event-log store is another module's, and two stores in one environment would share one writer.
//
// Ownership. Only the main thread opens it (lmdb-js has a crash report with one environment opened
// from several threads); the market worker sends bars here. A path is opened once per process.
//
// Keys. bars: [symbol, tfIndex, start] -> [open, high, low, close, volume, pv, trades, first_ts,
// last_ts], so the bars of one symbol and timeframe over a range are one cursor walk. open:
// [symbol, tfIndex] -> [start, ...the same nine]: the checkpoint of open bars, overwritten in place.
//
// Writes go through the store's one ordered group-commit queue (src/store/writeQueue.ts, the event
// log's too): one lmdb-js batch per event-loop turn (setImmediate, so every worker message of the turn
// shares it), at most writesPerFlushMax market writes per batch; the main thread never runs a
// synchronous commit. Until its commit, a bar stays in the pending map that get/range/before read
// first, so readers see every bar handed to putBars at once. lmdb-js's own event-turn batching is
// off, as in the event-log store: in lmdb-js 3.5.6 a failed commit in that mode also rejects an
// internal promise nobody handles.

import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { open, type Database, type Key, type RootDatabase } from 'lmdb';
import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { WriteQueue, deferred, type Batch, type Job, type QueueTable, type StoreError } from '../store/writeQueue.js';
import { vwapOf, type Bar } from './bar.js';
import { timeframeIndex, timeframes, type Timeframe } from './timeframe.js';

export const marketStoreSchemaVersion = 1;

export interface MarketStoreLimits {
  mapSizeBytes: number;
  /** Writes queued and not committed; above it overloaded() is true and the service stops taking tapes. */
  pendingWritesMax: number;
  /** Writes in one commit: bounds the main thread's share of one batch. */
  writesPerFlushMax: number;
  /** Symbols remembered as having bars (what a restart restores). */
  symbolsMax: number;
}

export const marketStoreLimitsDefault: Readonly<MarketStoreLimits> = Object.freeze({
  mapSizeBytes: 4 * 1024 * 1024 * 1024,
  pendingWritesMax: 200_000,
  writesPerFlushMax: 10_000,
  symbolsMax: 100_000,
});

type BarValue = [number, number, number, number, number, number, number, number, number];
type OpenValue = [number, ...BarValue];

type Write =
  | { db: 'bar'; bar: Bar }
  | { db: 'open'; bar: Bar }
  | { db: 'symbol'; symbol: string }
  | { db: 'meta'; key: string; value: unknown };

export interface MarketStoreStats {
  /** Bars handed to putBars and not committed yet. */
  pendingBars: number;
  /** Writes of every kind queued or in flight. */
  queuedWrites: number;
  barsWritten: number;
  commits: number;
  failed: boolean;
}

const openPaths = new Set<string>();
const seriesKey = (symbol: string, tfIndex: number): string => symbol + '\u0000' + tfIndex;
/** Below every bucket start (weeks start 3 days before the epoch) and above every one. */
const startMin = -1e16;
const startMax = 1e16;

function valueOf(bar: Bar): BarValue {
  return [bar.open, bar.high, bar.low, bar.close, bar.volume, bar.pv, bar.trades, bar.first_ts, bar.last_ts];
}

function barOf(symbol: string, tf: Timeframe, start: number, v: readonly number[], at = 0): Bar {
  const volume = v[at + 4];
  const pv = v[at + 5];
  return {
    symbol,
    tf,
    start,
    open: v[at],
    high: v[at + 1],
    low: v[at + 2],
    close: v[at + 3],
    volume,
    pv,
    vwap: vwapOf(pv, volume),
    trades: v[at + 6],
    first_ts: v[at + 7],
    last_ts: v[at + 8],
  };
}

export function openMarketStore(path: string, options: Partial<MarketStoreLimits> = {}, log: (line: string) => void = () => {}): Result<MarketStore> {
  const limits = { ...marketStoreLimitsDefault, ...options };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) return fail(ErrorCode.invalid_limits, `${name} must be an integer >= 1`, name);
  }
  const full = resolve(path);
  if (openPaths.has(full)) return fail(ErrorCode.store_failed, `market store '${full}' is already open in this process`, 'path');
  let root: RootDatabase | undefined;
  try {
    mkdirSync(full, { recursive: true });
    root = open({ path: full, maxDbs: 8, mapSize: limits.mapSizeBytes, cache: false, eventTurnBatching: false });
    const meta = root.openDB<unknown, Key>('meta', {});
    const version = meta.get('schemaVersion');
    if (version !== undefined && version !== marketStoreSchemaVersion) {
      void root.close().catch(() => undefined);
      return fail(ErrorCode.store_failed, `market store '${full}' has schema version ${String(version)}; this build reads ${marketStoreSchemaVersion}`, 'path');
    }
    const store = new MarketStore(full, root, meta, limits, log);
    openPaths.add(full);
    if (version === undefined) store.putMeta('schemaVersion', marketStoreSchemaVersion);
    return ok(store);
  } catch (err) {
    if (root !== undefined) void root.close().catch(() => undefined);
    return fail(ErrorCode.store_failed, `cannot open market store in '${full}': ${(err as Error).message}`, 'path');
  }
}

/** The market store's part in the write queue: its writes in call order, writesPerFlushMax per flush. */
class MarketWrites implements QueueTable {
  private queue: Write[] = [];
  private head = 0;
  private readonly taken = new WeakMap<Batch, Write[]>();
  /** Given to a barrier while writes wait; finished with the flush that takes the last of them. */
  private drained: Job<Write> | null = null;
  /** Settles once the writes taken last were committed (or failed) and their bars left the pending map. */
  lastSettled: Promise<void> = Promise.resolve();

  constructor(
    private readonly writesPerFlushMax: number,
    private readonly writeOne: (w: Write) => void,
    private readonly committed: (items: readonly Write[]) => void,
    private readonly failed: (err: unknown) => void,
  ) {}

  /** Writes queued and not taken into a flush yet. */
  get length(): number {
    return this.queue.length - this.head;
  }

  push(w: Write): void {
    this.queue.push(w);
  }

  take(b: Batch): void {
    if (this.length === 0) return;
    const end = Math.min(this.queue.length, this.head + this.writesPerFlushMax);
    const items = this.queue.slice(this.head, end);
    this.head = end;
    // Drop the consumed prefix now and then, so the queue neither grows nor shifts per item.
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 65_536) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.taken.set(b, items);
    b.writes += items.length;
    const done = deferred();
    b.finished.push(done);
    this.lastSettled = done.promise.then(
      () => this.committed(items),
      (err: unknown) => this.failed(err),
    );
    if (this.length === 0 && this.drained !== null) {
      b.finished.push(this.drained.done);
      this.drained = null;
    }
  }

  write(b: Batch): void {
    for (const w of this.taken.get(b) ?? []) this.writeOne(w);
  }

  hasBacklog(): boolean {
    return this.length > 0;
  }

  lastJob(): Job<Write> | undefined {
    if (this.length === 0) return undefined;
    this.drained ??= { items: [], next: 0, done: deferred() };
    return this.drained;
  }

  abandonJobs(failure: StoreError): void {
    // What waits is never written after a failed commit (a hole would follow); it stays counted.
    this.drained?.done.reject(failure);
    this.drained = null;
  }
}

export class MarketStore {
  private readonly bars: Database<BarValue, Key>;
  private readonly openBars: Database<OpenValue, Key>;
  private readonly symbolsDb: Database<number, Key>;
  private readonly knownSymbols = new Set<string>();
  /** Bars not committed yet, by series, then by start: what readers see first. */
  private readonly pending = new Map<string, Map<number, Bar>>();
  private pendingBars = 0;
  private readonly queue: WriteQueue;
  private readonly writes: MarketWrites;
  private closed = false;
  private failureLogged = false;
  private barsWritten = 0;

  /** Use openMarketStore. */
  constructor(
    readonly path: string,
    private readonly root: RootDatabase,
    private readonly meta: Database<unknown, Key>,
    readonly limits: Readonly<MarketStoreLimits>,
    private readonly log: (line: string) => void,
  ) {
    this.bars = root.openDB<BarValue, Key>('bars', {});
    this.openBars = root.openDB<OpenValue, Key>('open', {});
    this.symbolsDb = root.openDB<number, Key>('symbols', {});
    for (const key of this.symbolsDb.getKeys({ limit: limits.symbolsMax })) if (typeof key === 'string') this.knownSymbols.add(key);
    // One flush in flight, as before the queue was shared: market writes need no pipelining.
    this.queue = new WriteQueue(root, meta, false, 1);
    this.writes = new MarketWrites(
      limits.writesPerFlushMax,
      (w) => this.write(w),
      (items) => {
        for (const w of items) if (w.db === 'bar') this.committed(w.bar);
      },
      (err) => this.failed(err),
    );
    this.queue.add(this.writes);
  }

  // ---- writes ----

  /** Closed or revised bars: visible to readers now, committed by the next flush. */
  putBars(bars: readonly Bar[]): void {
    // After a failed commit nothing more is persisted; holding bars in memory would only grow.
    if (this.queue.failure !== null || this.closed) return;
    for (const bar of bars) {
      const key = seriesKey(bar.symbol, timeframeIndex(bar.tf));
      let series = this.pending.get(key);
      if (series === undefined) {
        series = new Map();
        this.pending.set(key, series);
      }
      if (!series.has(bar.start)) this.pendingBars++;
      series.set(bar.start, bar);
      this.enqueue({ db: 'bar', bar });
      if (!this.knownSymbols.has(bar.symbol) && this.knownSymbols.size < this.limits.symbolsMax) {
        this.knownSymbols.add(bar.symbol);
        this.enqueue({ db: 'symbol', symbol: bar.symbol });
      }
    }
  }

  /** The checkpoint of open bars: each overwrites the previous one of its series. */
  putOpenBars(bars: readonly Bar[]): void {
    for (const bar of bars) this.enqueue({ db: 'open', bar });
  }

  putMeta(key: string, value: unknown): void {
    this.enqueue({ db: 'meta', key, value });
  }

  /** True while more writes wait than pendingWritesMax: the caller stops producing. */
  overloaded(): boolean {
    return this.writes.length >= this.limits.pendingWritesMax;
  }

  /** Resolves once everything queued so far is committed (or the store failed). */
  idle(): Promise<void> {
    return this.queue
      .barrier()
      .catch(() => undefined)
      .then(() => this.writes.lastSettled);
  }

  private enqueue(w: Write): void {
    if (this.closed || this.queue.failure !== null) return;
    this.writes.push(w);
    this.queue.scheduleFlush();
  }

  /** Bars stay pending (readers still see them); later writes are refused, as a hole would follow. */
  private failed(err: unknown): void {
    if (this.failureLogged) return;
    this.failureLogged = true;
    const detail = this.queue.failure?.message ?? (err instanceof Error ? err.message : String(err));
    this.log(`mtm market: store commit failed, market data is no longer persisted: ${detail}`);
  }

  private write(w: Write): void {
    switch (w.db) {
      case 'bar':
        this.bars.put([w.bar.symbol, timeframeIndex(w.bar.tf), w.bar.start], valueOf(w.bar));
        this.barsWritten++;
        return;
      case 'open':
        this.openBars.put([w.bar.symbol, timeframeIndex(w.bar.tf)], [w.bar.start, ...valueOf(w.bar)]);
        return;
      case 'symbol':
        this.symbolsDb.put(w.symbol, 1);
        return;
      case 'meta':
        this.meta.put(w.key, w.value);
        return;
    }
  }

  /** A committed bar leaves the pending map, unless a newer version of it was put meanwhile. */
  private committed(bar: Bar): void {
    const key = seriesKey(bar.symbol, timeframeIndex(bar.tf));
    const series = this.pending.get(key);
    if (series === undefined || series.get(bar.start) !== bar) return;
    series.delete(bar.start);
    this.pendingBars--;
    if (series.size === 0) this.pending.delete(key);
  }

  // ---- reads (pending first) ----

  get(symbol: string, tf: Timeframe, start: number): Bar | null {
    const tfi = timeframeIndex(tf);
    const pending = this.pending.get(seriesKey(symbol, tfi))?.get(start);
    if (pending !== undefined) return pending;
    const v = this.bars.get([symbol, tfi, start]);
    return v === undefined ? null : barOf(symbol, tf, start, v);
  }

  /** Bars of one series with from <= start < to, sorted by start: one cursor walk, then the pending ones. */
  range(symbol: string, tf: Timeframe, from: number, to: number): Bar[] {
    const tfi = timeframeIndex(tf);
    const out: Bar[] = [];
    for (const { key, value } of this.bars.getRange({ start: [symbol, tfi, from], end: [symbol, tfi, to] })) {
      out.push(barOf(symbol, tf, (key as [string, number, number])[2], value));
    }
    const series = this.pending.get(seriesKey(symbol, tfi));
    if (series === undefined) return out;
    let merged: Map<number, Bar> | null = null;
    for (const [start, bar] of series) {
      if (start < from || start >= to) continue;
      merged ??= new Map(out.map((b) => [b.start, b]));
      merged.set(start, bar);
    }
    return merged === null ? out : [...merged.values()].sort((a, b) => a.start - b.start);
  }

  /** The newest bar of the series that starts before `start`, or null. */
  before(symbol: string, tf: Timeframe, start: number): Bar | null {
    const tfi = timeframeIndex(tf);
    let best: Bar | null = null;
    // Reverse ranges include their start key: begin one millisecond below (starts are integers).
    for (const { key, value } of this.bars.getRange({ start: [symbol, tfi, start - 1], end: [symbol, tfi, startMin], reverse: true, limit: 1 })) {
      best = barOf(symbol, tf, (key as [string, number, number])[2], value);
    }
    const series = this.pending.get(seriesKey(symbol, tfi));
    if (series !== undefined) for (const bar of series.values()) if (bar.start < start && (best === null || bar.start > best.start)) best = bar;
    return best;
  }

  latest(symbol: string, tf: Timeframe): Bar | null {
    return this.before(symbol, tf, startMax);
  }

  /** Symbols with stored bars (at most symbolsMax). */
  symbols(): string[] {
    return [...this.knownSymbols];
  }

  /** The checkpointed open bars, as stored: the caller drops the ones that closed since. */
  loadOpenBars(): Bar[] {
    const out: Bar[] = [];
    for (const { key, value } of this.openBars.getRange({})) {
      const [symbol, tfi] = key as [string, number];
      const tf = timeframes[tfi];
      if (tf === undefined || !Array.isArray(value)) continue;
      out.push(barOf(symbol, tf, value[0], value, 1));
    }
    return out;
  }

  getMeta(key: string): unknown {
    return this.meta.get(key);
  }

  stats(): MarketStoreStats {
    return {
      pendingBars: this.pendingBars,
      queuedWrites: this.writes.length,
      barsWritten: this.barsWritten,
      commits: this.queue.commitsTotal,
      failed: this.queue.failure !== null,
    };
  }

  /** Commits what is queued, then closes the environment. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.idle();
    this.closed = true;
    try {
      await this.root.close();
    } finally {
      openPaths.delete(this.path);
    }
  }
}
