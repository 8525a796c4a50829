// Durable state in LMDB: the event log, its indexes, trade results, snapshots, prices.
//
// Ownership. The engine's main thread is the only opener of the LMDB environment (lmdb-js has an
// open crash report when one env is opened from several worker threads); shards send it batches.
// openStore refuses a second open of the same directory in this process; other processes are kept
// out by the data dir lock (ownerLock.ts) the engine takes before opening the store, because two
// writers would hand out the same seqs.
//
// Write path. append(), writeSnapshots(), savePrices() and compact() only enqueue in memory; the
// first enqueue of an event-loop turn schedules a flush with setImmediate, not queueMicrotask: a
// microtask runs at the end of the current macrotask, so it would commit once per worker message,
// while setImmediate runs after the poll phase has delivered every message and I/O callback of
// this loop iteration, so all of them share one commit, and no timer delay is added. A flush is
// one lmdb-js `batch` (an atomic block of one write transaction, executed off the main thread)
// holding the events, their index entries, trade results, current snapshots, latest prices and
// compaction removals, plus, only when snapshot or price history was written, one `transaction`
// callback that inserts and prunes history (it must read inside the write transaction to keep the
// per-key bound exact; it commits in the same transaction as the batch or the next one).
// Snapshot records and prices wait in a backlog and go snapshotsPerFlushMax / pricesPerFlushMax
// per flush (encoded there, once, for the current record and its history entry), so snapshotting
// 200k portfolios is many short flushes, not one main-thread stall of seconds.
// At most one flush is in flight: appends made while a commit runs wait and share the next one
// (group commit), so under load each fsync covers more events instead of queueing more fsyncs.
// The hot path never calls putSync/transactionSync and never runs a commit on the main thread.
// lmdb-js's own event-turn batching is off (we batch per turn ourselves): in lmdb-js 3.5.6 a
// failed commit in that mode also rejects an internal promise nobody handles, which kills the
// process with an unhandled rejection before the engine could report the failure.
//
// What `durable` guarantees (lmdb-js 3.5.6, Linux, overlappingSync on, which is its default there;
// noSync is never used). Verified with strace, see docs/STORE.md:
//  - default mode: `durable` resolves when lmdb-js reports the write transaction committed. By
//    then the pages were written to data.mdb (writev into the OS page cache) and the meta page
//    points at them, so a process crash (kill -9, OOM kill, a native crash) cannot lose them: the
//    kernel owns the dirty pages, and on reopen in the same boot LMDB picks the newest meta (it
//    compares the boot id). This is the guarantee we promise in this mode. In lmdb-js 3.5.6 the
//    commit in fact also waits for fdatasync before it reports committed, so the default mode is
//    power-loss safe too today, but lmdb-js documents only "committed", so we do not promise it.
//  - sync mode (--sync): `durable` additionally waits for lmdb-js `flushed` ("committed and fully
//    flushed/synced to disk"). With one flush in flight, that is exactly this flush. This survives
//    power loss and kernel panics, as far as the disk honours fdatasync. After a power loss LMDB
//    reopens at the last flushed meta: an unflushed commit is rolled back whole, never torn.
//  - measured cost (bench/store.ts, 2 shared busy cores, docs/STORE.md): the modes cost the same,
//    since lmdb-js already fdatasyncs before it reports a commit; a paced append is durable in about
//    1 ms at p50 (6-7 ms while other processes take the cores); saturation is 40-78k events/s, bound
//    by main-thread CPU (roughly 13-25 us per event), not by the disk.
//  - a flush's batch is atomic: all of its events, indexes and records commit or none do (history
//    entries, which only speed up time travel, may follow in the next transaction).
//  - a failed commit rejects `durable` with a StoreError (code store_failed); the store then
//    refuses every later write (rejects their `durable`), because committing them after a lost
//    batch would leave a hole in the seqs. The engine treats it as fatal.
//
// Ordering. Seqs are assigned synchronously by append(), in call order, from lastSeq() + 1; they
// are contiguous. Everything enqueued before a call is committed in the same transaction as, or an
// earlier transaction than, everything enqueued by that call, and `durable` promises resolve in
// commit order. In particular a snapshot record written by writeSnapshots() never becomes durable
// before any event appended before that call. covered_seq: see docs/STORE.md.
//
// Reads (query, eventsAfter, tradeResult's fallback, snapshots, prices) see committed data only,
// except tradeResult() and lastSeq(), which also see writes still in flight.
//
// Back-pressure. append() never refuses: its events already happened in a shard, and refusing to
// log them would fork memory from disk. The bound is pendingWritesMax: stats().pendingWrites and
// overloaded() let the engine refuse new commands (retryable) while the store is behind. The
// snapshot/price backlog is not counted there (stats().backlogWrites): a snapshot round must not
// make the engine refuse trades, and it never delays an append by more than one bounded chunk.

import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { asBinary, open, type Database, type Key, type RootDatabase } from 'lmdb';
import { assert } from '../assert.js';
import { ErrorCode, fail, ok, type EngineError, type Result } from '../errors.js';
import { replayedEventTypes, type DomainEvent, type DomainEventType, type LastPrice, type PortfolioRecord, type StoredEvent } from '../domain/types.js';
import type { EventQuery } from '../engine/api.js';

/**
 * Layout version of the data directory; bump on any incompatible change of keys or values.
 * 2: columnar shard snapshots (`shardSnapshots`, meta `shardSnapshot`) and the seq epoch (meta
 * `seqEpoch`). A version 1 directory is migrated on open (see migrateFrom).
 */
export const storeSchemaVersion = 2;
/** Versions openStore migrates in place, on the first commit after opening. */
export const storeVersionsMigrated: readonly number[] = [1];

/**
 * The generation pointer of the columnar shard snapshots: which generation recovery reads, how many
 * shards wrote it, and each shard's covered_seq. Written in the same transaction as (after) every
 * segment of its generation, and the previous generation's segments are removed in it too, so a
 * pointer never names a segment that is not there.
 */
export interface ShardSnapshotPointer {
  generation: number;
  shards: number;
  /** Segments per shard (each shard writes the same named segments, in order). */
  segments: number;
  covered: number[];
  as_of: number;
  /**
   * Written by a clean shutdown, after which nothing changed: its seqs are exact, so a clean restart
   * shows the same seqs. Anything else restores seqs above every seq shown before (seq epochs).
   */
  clean: boolean;
}

/** One snapshot round of every shard: its raw segments, written as they are (never decoded here). */
export interface ShardSnapshotWrite {
  covered: number[];
  as_of: number;
  clean: boolean;
  /** Per shard, its segments in order. */
  shards: Uint8Array[][];
}

export const storeDefaults = {
  /**
   * Events + trade results enqueued or in flight before overloaded() turns true: about one to two
   * seconds of commits at the throughput measured on 2 shared cores (docs/STORE.md), so the ack
   * latency a queued command can see stays bounded.
   */
  pendingWritesMax: 50_000,
  snapshotsKeptPerPortfolioMax: 64,
  pricesKeptPerSymbolMax: 1_024,
  /** Initial LMDB map; it is address space, not disk, and lmdb-js grows it when it fills. */
  mapSizeBytes: 1024 * 1024 * 1024,
  /** Time-index entries one compact() call examines, so a call blocks the main thread briefly. */
  compactScannedPerCallMax: 20_000,
  /** Snapshot records encoded and written per flush: bounds the main-thread time of one flush. */
  snapshotsPerFlushMax: 200,
  /** Prices written per flush, for the same reason. */
  pricesPerFlushMax: 1_000,
  queryLimitDefault: 100,
  queryLimitMax: 1_000,
} as const;

/** Longest string (UTF-8 bytes) used as part of a key: two of them fit the 1978-byte LMDB key limit. */
const keyPartBytesMax = 512;
/** Named databases in the environment (10 used), with room for a later version. */
const databasesMax = 16;

export interface StoreOptions {
  /** Data directory (created if missing). */
  path: string;
  /** --sync: resolve `durable` only once the commit is flushed to disk (survives power loss). */
  sync?: boolean;
  /** null/undefined keepEventsMs = keep all (audit); else compact events older than this AND covered by every snapshot. */
  retention?: { keepEventsMs?: number | null };
  mapSizeBytes?: number;
  pendingWritesMax?: number;
  snapshotsKeptPerPortfolioMax?: number;
  pricesKeptPerSymbolMax?: number;
  compactScannedPerCallMax?: number;
  snapshotsPerFlushMax?: number;
  pricesPerFlushMax?: number;
  /** Where the migration line goes (default console.log). */
  log?: (line: string) => void;
}

export interface AppendReceipt {
  stored: StoredEvent[];
  /** Resolves when the commit holding these events is durable (see the header); rejects with a StoreError. */
  durable: Promise<void>;
}

export interface ReplayOptions {
  /** Only the event types that change state on replay (replayedEventTypes). */
  replayedOnly?: boolean;
}

export interface StoreStats {
  sizeBytes: number;
  lastSeq: number;
  commitsTotal: number;
  commitSecondsSum: number;
  lastCommitSeconds: number;
  /** Events, trade results and records taken into the queued or in-flight commit, not yet durable. */
  pendingWrites: number;
  pendingWritesMax: number;
  /** Snapshot records and prices waiting for a later flush (written a bounded chunk per flush). */
  backlogWrites: number;
  /** True once a commit failed; every later write is refused. */
  failed: boolean;
}

export interface Store {
  readonly schemaVersion: number;
  readonly pendingWritesMax: number;
  lastSeq(): number;
  /**
   * Assigns global monotonic seqs synchronously and enqueues the write. All appends of one
   * event-loop turn share one transaction; `durable` resolves once it is durable (see header).
   * An empty append is a barrier: its `durable` resolves when everything enqueued before is durable.
   */
  append(events: readonly DomainEvent[], tradeResults?: readonly { portfolio_id: string; trade_id: string; result: unknown }[]): AppendReceipt;
  /** Durable idempotency: the first result stored for (portfolio, trade_id), including one still in flight. */
  tradeResult(portfolioId: string, tradeId: string): unknown | undefined;
  /** Committed events by portfolio, type, time range [from, to], paged by after_seq (asc: seq > after_seq, desc: seq < after_seq). */
  query(q: EventQuery): StoredEvent[];
  /** Replay source: committed events with seq > afterSeq in seq order, streamed from a cursor. */
  eventsAfter(afterSeq: number, options?: ReplayOptions): Iterable<StoredEvent>;
  /**
   * Same write queue as append(): a record commits with or after every event appended before the
   * call. One key per portfolio, plus a history entry. Written snapshotsPerFlushMax records per
   * flush; resolves when the last is durable. The records must not be mutated after the call.
   */
  writeSnapshots(records: readonly PortfolioRecord[]): Promise<void>;
  loadSnapshots(): Iterable<PortfolioRecord>;
  /**
   * Columnar snapshots of every shard as one generation (ShardSnapshotPointer). Same write queue as
   * append(): the generation commits with or after every event appended before the call, in one
   * transaction with its pointer. Resolves when durable.
   */
  writeShardSnapshots(snapshot: ShardSnapshotWrite): Promise<void>;
  /** The committed generation pointer, or undefined when no columnar snapshot was ever written. */
  shardSnapshotPointer(): ShardSnapshotPointer | undefined;
  /** The raw bytes of one shard's segments of a generation, each in its own ArrayBuffer (transferable). */
  shardSnapshotSegments(pointer: ShardSnapshotPointer, shard: number): Uint8Array[];
  /**
   * The next boot epoch of per-portfolio seqs (0 on a fresh directory), enqueued for the next commit:
   * await a barrier (append([])) before any seq of it is shown. Seqs of epoch e start at e * 2^32.
   * cleanSnapshot: the current columnar generation was written by a clean shutdown and not used
   * since (its seqs are exact for this boot); the flag is cleared in the same commit.
   */
  takeSeqEpoch(): { epoch: number; cleanSnapshot: boolean };
  /** The schema version this directory was migrated from when it was opened, else null. */
  readonly migratedFrom: number | null;
  /** The newest kept snapshot of the portfolio with as_of <= timestamp. */
  snapshotBefore(portfolioId: string, timestamp: number): PortfolioRecord | undefined;
  /** Committed events of one portfolio with seq > afterSeq and ts <= untilTs, in seq order. */
  eventsForPortfolio(portfolioId: string, afterSeq: number, untilTs: number, options?: ReplayOptions): Iterable<StoredEvent>;
  /** Latest price per symbol plus a bounded history, pricesPerFlushMax per flush; resolves when durable. */
  savePrices(prices: readonly LastPrice[]): Promise<void>;
  loadPrices(): LastPrice[];
  /** The newest kept price of the symbol with ts <= timestamp. */
  priceAt(symbol: string, timestamp: number): number | undefined;
  /** The same, with the source timestamp it was stored under (a past mark's age). */
  lastPriceAt(symbol: string, timestamp: number): LastPrice | undefined;
  /**
   * Retention: removes events older than now - keepEventsMs that every kept snapshot of their
   * portfolio covers, examining at most compactScannedPerCallMax; `more`: the budget ran out, call
   * again (it resumes where it stopped).
   */
  compact(now: number): Promise<{ removed: number; more: boolean }>;
  stats(): StoreStats;
  /** True while pendingWrites >= pendingWritesMax: the engine should refuse new commands (retryable). */
  overloaded(): boolean;
  /** Subscribe to commit durations (seconds) and the events each commit held. */
  onCommit(listener: (seconds: number, events: number) => void): () => void;
  /** Flushes what is enqueued, waits for it, closes the environment. */
  close(): Promise<void>;
}

/** The rejection of `durable`: an Error that also carries the EngineError the engine reports. */
export class StoreError extends Error {
  override name = 'StoreError';
  readonly code = ErrorCode.store_failed;
  readonly error: EngineError;
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.error = { code: ErrorCode.store_failed, message };
  }
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A caller that drops a receipt must not crash the process with an unhandled rejection; callers
  // that await `durable` still see the rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

interface HistoryWrite {
  id: string;
  at: number;
  value: unknown;
}

interface Removal {
  db: Database<unknown, Key>;
  key: Key;
}

/** A writeSnapshots or savePrices call, written a bounded chunk per flush. */
interface Job<T> {
  items: readonly T[];
  next: number;
  done: Deferred;
}

/** What one flush writes, in call order within each list. */
class Batch {
  events: StoredEvent[] = [];
  eventBins: Uint8Array[] = [];
  trades: { key: [string, string]; bin: Uint8Array; pending: string }[] = [];
  snapshots: { id: string; bin: Uint8Array }[] = [];
  snapshotHistory: HistoryWrite[] = [];
  prices: LastPrice[] = [];
  priceHistory: HistoryWrite[] = [];
  removals: Removal[] = [];
  meta: [string, unknown][] = [];
  /** Columnar snapshot segments, then their generation pointer (written last) and stale segment keys. */
  segments: { key: Key; bin: Uint8Array }[] = [];
  pointer: ShardSnapshotPointer | null = null;
  segmentRemovals: Key[] = [];
  /** Events + trade results + records + prices, for pendingWrites. */
  writes = 0;
  done: Deferred | null = null;
  /** writeSnapshots / savePrices calls whose last item is in this batch. */
  finished: Deferred[] = [];

  get empty(): boolean {
    return this.writes === 0 && this.meta.length === 0 && this.removals.length === 0 && this.pointer === null;
  }
}

const databaseNames = ['meta', 'events', 'byPortfolio', 'byType', 'byTs', 'tradeResults', 'snapshots', 'snapshotHistory', 'prices', 'priceHistory', 'shardSnapshots'];

/** Directories opened by this process; a second Store on one would hand out duplicate seqs. */
const openPaths = new Set<string>();

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return storeDefaults.queryLimitDefault;
  return Math.min(storeDefaults.queryLimitMax, Math.max(1, Math.floor(limit)));
}

interface Encoder {
  encode(value: unknown): Uint8Array;
}

function encoderOf(db: object): Encoder {
  const encoder = (db as { encoder?: Encoder }).encoder;
  assert(encoder !== undefined && typeof encoder.encode === 'function', 'lmdb-js db without a value encoder');
  return encoder;
}

function keyPart(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= keyPartBytesMax && Buffer.byteLength(value) <= keyPartBytesMax && !value.includes('\u0000');
}

function assertKeyPart(value: unknown, what: string): void {
  // A bad key would throw inside a flush and fail the whole batch; catch the caller's bug here.
  assert(keyPart(value), `${what} must be a non-empty string of <= ${keyPartBytesMax} UTF-8 bytes without NUL`);
}

/** Keeps the k best seqs seen (smallest when ascending, largest when descending) in O(k) memory. */
class SeqHeap {
  private readonly heap: Float64Array;
  size = 0;
  // The root is the worst kept seq: the largest when keeping the smallest, and the reverse.
  constructor(
    private readonly k: number,
    private readonly keepSmallest: boolean,
  ) {
    this.heap = new Float64Array(k);
  }

  private worse(a: number, b: number): boolean {
    return this.keepSmallest ? a > b : a < b;
  }

  offer(seq: number): void {
    const h = this.heap;
    if (this.size < this.k) {
      let i = this.size++;
      h[i] = seq;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!this.worse(h[i], h[parent])) break;
        const t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
      }
      return;
    }
    if (!this.worse(h[0], seq)) return;
    h[0] = seq;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let w = i;
      if (l < this.size && this.worse(h[l], h[w])) w = l;
      if (r < this.size && this.worse(h[r], h[w])) w = r;
      if (w === i) break;
      const t = h[i];
      h[i] = h[w];
      h[w] = t;
      i = w;
    }
  }

  sorted(): number[] {
    const out = Array.from(this.heap.subarray(0, this.size));
    return out.sort(this.keepSmallest ? (a, b) => a - b : (a, b) => b - a);
  }
}

class LmdbStore implements Store {
  readonly schemaVersion = storeSchemaVersion;
  readonly pendingWritesMax: number;
  private readonly sync: boolean;
  private readonly keepEventsMs: number | null;
  private readonly snapshotsKeptMax: number;
  private readonly pricesKeptMax: number;
  private readonly compactScannedMax: number;
  private readonly snapshotsPerFlushMax: number;
  private readonly pricesPerFlushMax: number;
  private readonly recordJobs: Job<PortfolioRecord>[] = [];
  private readonly priceJobs: Job<LastPrice>[] = [];
  /** Items of recordJobs and priceJobs not yet taken into a batch. */
  private backlogWrites = 0;

  private seq: number;
  private queued = new Batch();
  /**
   * The one flush submitted to lmdb-js and not yet durable. One, not more: a later transaction can
   * then never commit after an earlier one failed (no hole in the seqs), `durable` promises resolve
   * strictly in order (with several in flight we saw lmdb-js resolve them out of order), each flush
   * is exactly one LMDB transaction, and appends made meanwhile share the next commit.
   */
  private inFlight: Batch | null = null;
  private flushScheduled = false;
  private failure: StoreError | null = null;
  private closing: Promise<void> | null = null;
  private compacting: Promise<{ removed: number; more: boolean }> | null = null;
  /** Where the next compact() resumes in the time index; null = from the oldest entry. */
  private compactResume: [number, number] | null = null;
  /** Trade results enqueued or in flight, so a retry is answered before the commit. */
  private readonly pendingTrades = new Map<string, unknown>();
  /** Exact entry counts per portfolio / symbol in the history dbs, maintained inside write txns. */
  private readonly snapshotHistoryCounts = new Map<string, number>();
  private readonly priceHistoryCounts = new Map<string, number>();
  private readonly commitListeners = new Set<(seconds: number, events: number) => void>();
  private commitsTotal = 0;
  private commitSecondsSum = 0;
  private lastCommitSeconds = 0;
  // Scratch keys: lmdb-js encodes keys and values when put() is called, so one array can be reused.
  private readonly k2: [string | number, number] = ['', 0];
  private readonly v2: [unknown, unknown] = [null, null];
  // Each db's own msgpack encoder (lmdb-js gives each db one), so pre-encoded bytes decode like any
  // other value. Those dbs only ever receive pre-encoded bytes, so lmdb-js never runs these encoders
  // itself; and msgpackr never writes over bytes it has returned from encode() without the reuse
  // flag (it only moves forward in its buffer or starts a new one), so no copy is needed.
  private readonly eventEncoder: Encoder;
  private readonly tradeEncoder: Encoder;
  private readonly recordEncoder: Encoder;

  constructor(
    private readonly path: string,
    private readonly root: RootDatabase,
    private readonly meta: Database<unknown, Key>,
    private readonly events: Database<StoredEvent, Key>,
    private readonly byPortfolio: Database<[DomainEventType, number], Key>,
    private readonly byType: Database<number, Key>,
    private readonly byTs: Database<null, Key>,
    private readonly trades: Database<unknown, Key>,
    private readonly snapshots: Database<PortfolioRecord, Key>,
    private readonly snapshotHistory: Database<PortfolioRecord, Key>,
    private readonly prices: Database<LastPrice, Key>,
    private readonly priceHistory: Database<number, Key>,
    private readonly shardSnapshots: Database<Uint8Array, Key>,
    options: StoreOptions,
    lastSeq: number,
    fresh: boolean,
    readonly migratedFrom: number | null,
  ) {
    this.sync = options.sync === true;
    this.keepEventsMs = options.retention?.keepEventsMs ?? null;
    this.pendingWritesMax = options.pendingWritesMax ?? storeDefaults.pendingWritesMax;
    this.snapshotsKeptMax = options.snapshotsKeptPerPortfolioMax ?? storeDefaults.snapshotsKeptPerPortfolioMax;
    this.pricesKeptMax = options.pricesKeptPerSymbolMax ?? storeDefaults.pricesKeptPerSymbolMax;
    this.compactScannedMax = options.compactScannedPerCallMax ?? storeDefaults.compactScannedPerCallMax;
    this.snapshotsPerFlushMax = options.snapshotsPerFlushMax ?? storeDefaults.snapshotsPerFlushMax;
    this.pricesPerFlushMax = options.pricesPerFlushMax ?? storeDefaults.pricesPerFlushMax;
    this.seq = lastSeq;
    this.eventEncoder = encoderOf(events);
    this.tradeEncoder = encoderOf(trades);
    this.recordEncoder = encoderOf(snapshots);
    const epoch = meta.get('seqEpoch');
    // Fresh: the first epoch is 0, so seqs start small. Migrated from version 1 (no epoch kept):
    // its seqs were all below 2^32, so epoch 1 is above anything it showed.
    this.seqEpoch = typeof epoch === 'number' ? epoch : fresh ? -1 : 0;
    this.pointer = (meta.get('shardSnapshot') as ShardSnapshotPointer | undefined) ?? null;
    if (fresh || migratedFrom !== null) {
      // The version goes first in the first transaction, so any committed event implies it.
      this.queued.meta.push(['schemaVersion', storeSchemaVersion]);
      if (migratedFrom !== null) this.queued.meta.push(['seqEpoch', this.seqEpoch]);
      this.scheduleFlush();
    }
  }

  /** The last epoch handed out (committed or queued). */
  private seqEpoch: number;
  /** The newest generation pointer, committed or queued (the next one removes its segments). */
  private pointer: ShardSnapshotPointer | null;

  takeSeqEpoch(): { epoch: number; cleanSnapshot: boolean } {
    this.writable();
    this.seqEpoch++;
    this.queued.meta.push(['seqEpoch', this.seqEpoch]);
    // A clean generation is exact once: from this boot on its books may move past it.
    const cleanSnapshot = this.pointer?.clean === true;
    if (cleanSnapshot) {
      this.pointer = { ...(this.pointer as ShardSnapshotPointer), clean: false };
      this.queued.meta.push(['shardSnapshot', this.pointer]);
    }
    this.scheduleFlush();
    return { epoch: this.seqEpoch, cleanSnapshot };
  }

  writeShardSnapshots(snapshot: ShardSnapshotWrite): Promise<void> {
    this.writable();
    if (this.failure !== null) return this.rejected();
    const shards = snapshot.shards.length;
    assert(shards > 0 && snapshot.covered.length === shards, 'one covered seq per shard');
    const segments = snapshot.shards[0].length;
    assert(snapshot.shards.every((s) => s.length === segments), 'every shard writes the same segments');
    const previous = this.pointer;
    const pointer: ShardSnapshotPointer = { generation: (previous?.generation ?? 0) + 1, shards, segments, covered: snapshot.covered.slice(), as_of: snapshot.as_of, clean: snapshot.clean };
    const q = this.queued;
    snapshot.shards.forEach((segs, shard) => segs.forEach((bin, i) => q.segments.push({ key: [pointer.generation, shard, i], bin })));
    if (previous !== null) {
      for (let shard = 0; shard < previous.shards; shard++) for (let i = 0; i < previous.segments; i++) q.segmentRemovals.push([previous.generation, shard, i]);
    }
    q.pointer = pointer;
    q.writes++;
    this.pointer = pointer;
    this.scheduleFlush();
    return this.queuedDone();
  }

  shardSnapshotPointer(): ShardSnapshotPointer | undefined {
    return (this.meta.get('shardSnapshot') as ShardSnapshotPointer | undefined) ?? undefined;
  }

  shardSnapshotSegments(pointer: ShardSnapshotPointer, shard: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < pointer.segments; i++) {
      const bin = this.shardSnapshots.getBinary([pointer.generation, shard, i]);
      assert(bin !== undefined, `snapshot generation ${pointer.generation} lacks segment ${i} of shard ${shard}`);
      // Its own ArrayBuffer, so it can be transferred to a worker (a pooled Buffer cannot).
      out.push(bin.byteOffset === 0 && bin.byteLength === bin.buffer.byteLength ? bin : new Uint8Array(bin));
    }
    return out;
  }

  lastSeq(): number {
    return this.seq;
  }

  overloaded(): boolean {
    return this.pendingWrites() >= this.pendingWritesMax;
  }

  private pendingWrites(): number {
    return this.queued.writes + (this.inFlight === null ? 0 : this.inFlight.writes);
  }

  private writable(): void {
    assert(this.closing === null, 'store is closed: no write may follow close()');
  }

  /** The promise of the queued flush: it resolves after every earlier flush (one in flight at a time). */
  private queuedDone(): Promise<void> {
    if (this.failure !== null) return this.rejected();
    if (this.queued.done === null) this.queued.done = deferred();
    return this.queued.done.promise;
  }

  /** Resolves when everything enqueued so far is durable. */
  private barrier(): Promise<void> {
    if (this.failure !== null) return this.rejected();
    const waits: Promise<void>[] = [];
    if (!this.queued.empty) waits.push(this.queuedDone());
    else if (this.inFlight?.done) waits.push(this.inFlight.done.promise);
    const records = this.recordJobs[this.recordJobs.length - 1];
    if (records !== undefined) waits.push(records.done.promise);
    const prices = this.priceJobs[this.priceJobs.length - 1];
    if (prices !== undefined) waits.push(prices.done.promise);
    if (waits.length <= 1) return waits[0] ?? Promise.resolve();
    const all = Promise.all(waits).then(() => undefined);
    all.catch(() => undefined);
    return all;
  }

  private hasBacklog(): boolean {
    return this.recordJobs.length > 0 || this.priceJobs.length > 0;
  }

  private rejected(): Promise<void> {
    const p = Promise.reject(this.failure);
    p.catch(() => undefined);
    return p;
  }

  append(
    events: readonly DomainEvent[],
    tradeResults?: readonly { portfolio_id: string; trade_id: string; result: unknown }[],
  ): AppendReceipt {
    this.writable();
    // Nothing may be logged after a lost batch: the seqs stay unassigned.
    if (this.failure !== null) return { stored: [], durable: this.rejected() };
    // Validate and encode everything first, so a bad event throws here, to its caller, with no seq
    // consumed and nothing enqueued, instead of failing a whole batch later.
    const first = this.seq + 1;
    const stored: StoredEvent[] = new Array(events.length);
    const bins: Uint8Array[] = new Array(events.length);
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      assertKeyPart(e.portfolio_id, 'event portfolio_id');
      assertKeyPart(e.type, 'event type');
      assert(Number.isFinite(e.ts), 'event needs a finite ts');
      const s: StoredEvent = { ...e, seq: first + i };
      stored[i] = s;
      bins[i] = this.eventEncoder.encode(s);
    }
    const trades: { key: [string, string]; bin: Uint8Array; value: unknown; pending: string }[] = [];
    if (tradeResults !== undefined) {
      for (const t of tradeResults) {
        assertKeyPart(t.portfolio_id, 'trade result portfolio_id');
        assertKeyPart(t.trade_id, 'trade_id');
        const pending = t.portfolio_id + '\u0000' + t.trade_id;
        // First result wins: a pending one, else a committed one. We are the only writer: exact.
        if (this.pendingTrades.has(pending) || trades.some((x) => x.pending === pending)) continue;
        if (this.trades.doesExist([t.portfolio_id, t.trade_id])) continue;
        trades.push({ key: [t.portfolio_id, t.trade_id], bin: this.tradeEncoder.encode(t.result), value: t.result, pending });
      }
    }
    const q = this.queued;
    this.seq += events.length;
    for (let i = 0; i < events.length; i++) {
      q.events.push(stored[i]);
      q.eventBins.push(bins[i]);
    }
    for (const t of trades) {
      this.pendingTrades.set(t.pending, t.value);
      q.trades.push(t);
    }
    q.writes += events.length + trades.length;
    if (q.empty) return { stored, durable: this.barrier() };
    this.scheduleFlush();
    return { stored, durable: this.queuedDone() };
  }

  tradeResult(portfolioId: string, tradeId: string): unknown | undefined {
    const pending = this.pendingTrades.get(portfolioId + '\u0000' + tradeId);
    if (pending !== undefined) return pending;
    if (!keyPart(portfolioId) || !keyPart(tradeId)) return undefined;
    return this.trades.get([portfolioId, tradeId]);
  }

  writeSnapshots(records: readonly PortfolioRecord[]): Promise<void> {
    this.writable();
    if (this.failure !== null) return this.rejected();
    if (records.length === 0) return this.barrier();
    for (const r of records) {
      assertKeyPart(r.portfolio.id, 'record portfolio.id');
      assert(Number.isFinite(r.as_of) && Number.isFinite(r.covered_seq), 'record needs a finite as_of and covered_seq');
    }
    // Written by later flushes, a bounded chunk each: every one of them commits with or after the
    // events appended before this call, which is all the ordering a snapshot needs.
    const job: Job<PortfolioRecord> = { items: records.slice(), next: 0, done: deferred() };
    this.recordJobs.push(job);
    this.backlogWrites += records.length;
    this.scheduleFlush();
    return job.done.promise;
  }

  loadSnapshots(): Iterable<PortfolioRecord> {
    return this.snapshots.getRange({}).map((e) => e.value);
  }

  snapshotBefore(portfolioId: string, timestamp: number): PortfolioRecord | undefined {
    if (!keyPart(portfolioId) || Number.isNaN(timestamp)) return undefined;
    for (const e of this.snapshotHistory.getRange({ start: [portfolioId, timestamp], end: [portfolioId], reverse: true, limit: 1 })) return e.value;
    return undefined;
  }

  savePrices(prices: readonly LastPrice[]): Promise<void> {
    this.writable();
    if (this.failure !== null) return this.rejected();
    if (prices.length === 0) return this.barrier();
    for (const p of prices) {
      assertKeyPart(p.symbol, 'price symbol');
      assert(Number.isFinite(p.price) && Number.isFinite(p.ts), 'price needs a finite price and ts');
    }
    const job: Job<LastPrice> = { items: prices.map((p) => ({ symbol: p.symbol, price: p.price, ts: p.ts })), next: 0, done: deferred() };
    this.priceJobs.push(job);
    this.backlogWrites += prices.length;
    this.scheduleFlush();
    return job.done.promise;
  }

  loadPrices(): LastPrice[] {
    const out: LastPrice[] = [];
    for (const e of this.prices.getRange({})) out.push(e.value);
    return out;
  }

  priceAt(symbol: string, timestamp: number): number | undefined {
    return this.lastPriceAt(symbol, timestamp)?.price;
  }

  lastPriceAt(symbol: string, timestamp: number): LastPrice | undefined {
    if (!keyPart(symbol) || Number.isNaN(timestamp)) return undefined;
    for (const e of this.priceHistory.getRange({ start: [symbol, timestamp], end: [symbol], reverse: true, limit: 1 })) {
      return { symbol, price: e.value, ts: (e.key as [string, number])[1] };
    }
    return undefined;
  }

  // ---- queries -----------------------------------------------------------------------------

  eventsAfter(afterSeq: number, options?: ReplayOptions): Iterable<StoredEvent> {
    const range = this.events.getRange({ start: afterSeq, exclusiveStart: true });
    if (options?.replayedOnly === true) return range.filter((e) => replayedEventTypes.has(e.value.type)).map((e) => e.value);
    return range.map((e) => e.value);
  }

  *eventsForPortfolio(portfolioId: string, afterSeq: number, untilTs: number, options?: ReplayOptions): Iterable<StoredEvent> {
    if (!keyPart(portfolioId)) return;
    const replayedOnly = options?.replayedOnly === true;
    // The index value [type, ts] filters without reading events that are not returned.
    for (const e of this.byPortfolio.getRange({ start: [portfolioId, afterSeq], exclusiveStart: true, end: [portfolioId, Infinity] })) {
      const [type, ts] = e.value;
      if (ts > untilTs || (replayedOnly && !replayedEventTypes.has(type))) continue;
      const event = this.events.get((e.key as [string, number])[1]);
      if (event !== undefined) yield event;
    }
  }

  query(q: EventQuery): StoredEvent[] {
    const limit = clampLimit(q.limit);
    const desc = q.order === 'desc';
    const after = q.after_seq !== undefined && Number.isFinite(q.after_seq) ? q.after_seq : undefined;
    const from = q.from !== undefined && Number.isFinite(q.from) ? q.from : -Infinity;
    const to = q.to !== undefined && Number.isFinite(q.to) ? q.to : Infinity;
    if (from > to) return [];
    const seqs: number[] = [];
    if (q.portfolio_id !== undefined) {
      if (!keyPart(q.portfolio_id)) return [];
      // Index value [type, ts] filters type and time without reading the events.
      for (const e of this.byPortfolio.getRange(this.seqRange(q.portfolio_id, after, desc))) {
        const [type, ts] = e.value;
        if ((q.type === undefined || type === q.type) && ts >= from && ts <= to) {
          seqs.push((e.key as [string, number])[1]);
          if (seqs.length >= limit) break;
        }
      }
    } else if (q.type !== undefined) {
      if (!keyPart(q.type)) return [];
      for (const e of this.byType.getRange(this.seqRange(q.type, after, desc))) {
        if (e.value >= from && e.value <= to) {
          seqs.push((e.key as [string, number])[1]);
          if (seqs.length >= limit) break;
        }
      }
    } else if (from !== -Infinity || to !== Infinity) {
      // The time index is ordered by ts, pages by seq: keep the best `limit` seqs of the range.
      // Exact with O(limit) memory; time is proportional to the events in [from, to].
      const best = new SeqHeap(limit, !desc);
      const range = { start: from === -Infinity ? undefined : [from], end: to === Infinity ? undefined : [to, Infinity] };
      for (const key of this.byTs.getKeys(range)) {
        const seq = (key as [number, number])[1];
        if (after === undefined || (desc ? seq < after : seq > after)) best.offer(seq);
      }
      seqs.push(...best.sorted());
    } else {
      const range = desc
        ? { start: after, reverse: true, exclusiveStart: after !== undefined, limit }
        : { start: after ?? 0, exclusiveStart: true, limit };
      const out: StoredEvent[] = [];
      for (const e of this.events.getRange(range)) out.push(e.value);
      return out;
    }
    const out: StoredEvent[] = [];
    for (const s of seqs) {
      const e = this.events.get(s);
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  /** A cursor over [prefix, seq] keys after `after` in the requested direction. */
  private seqRange(prefix: string, after: number | undefined, desc: boolean) {
    return desc
      ? { start: [prefix, after ?? Infinity], end: [prefix], reverse: true, exclusiveStart: after !== undefined }
      : { start: [prefix, after ?? 0], end: [prefix, Infinity], exclusiveStart: true };
  }

  // ---- retention -----------------------------------------------------------------------------

  compact(now: number): Promise<{ removed: number; more: boolean }> {
    this.writable();
    if (this.keepEventsMs === null) return Promise.resolve({ removed: 0, more: false });
    if (this.compacting !== null) return this.compacting;
    const run = this.compactOnce(now - this.keepEventsMs);
    this.compacting = run;
    const clear = () => {
      this.compacting = null;
    };
    run.then(clear, clear);
    return run;
  }

  private async compactOnce(cutoff: number): Promise<{ removed: number; more: boolean }> {
    if (this.failure !== null) throw this.failure;
    const coverage = new Map<string, number | null>();
    const q = this.queued;
    let removed = 0;
    let scanned = 0;
    let last: [number, number] | null = null;
    const range = {
      start: this.compactResume ?? undefined,
      exclusiveStart: this.compactResume !== null,
      end: [cutoff],
      limit: this.compactScannedMax,
    };
    for (const key of this.byTs.getKeys(range)) {
      scanned++;
      const [ts, seq] = key as [number, number];
      last = [ts, seq];
      const e = this.events.get(seq);
      if (e === undefined) {
        q.removals.push({ db: this.byTs as Database<unknown, Key>, key: [ts, seq] }); // orphan index entry
        continue;
      }
      if (!this.covered(e, coverage)) continue;
      q.removals.push(
        { db: this.events as Database<unknown, Key>, key: seq },
        { db: this.byPortfolio as Database<unknown, Key>, key: [e.portfolio_id, seq] },
        { db: this.byType as Database<unknown, Key>, key: [e.type, seq] },
        { db: this.byTs as Database<unknown, Key>, key: [ts, seq] },
      );
      removed++;
    }
    // A full budget means more may follow: resume after the last key; otherwise start over next time.
    const more = scanned >= this.compactScannedMax;
    this.compactResume = more ? last : null;
    if (q.removals.length === 0) return { removed: 0, more };
    this.scheduleFlush();
    await this.queuedDone();
    return { removed, more };
  }

  /**
   * Covered = no kept snapshot needs the event: its seq is <= the covered_seq of every kept
   * snapshot of its portfolio (current and history; the oldest history entry has the smallest
   * covered_seq when covered_seq grows with as_of). A portfolio with no snapshot keeps its
   * replayed events; its derived (audit-only) events are needed by no replay and are covered.
   */
  private covered(e: StoredEvent, cache: Map<string, number | null>): boolean {
    let c = cache.get(e.portfolio_id);
    if (c === undefined) {
      const current = this.snapshots.get(e.portfolio_id);
      if (current === undefined) c = null;
      else {
        c = current.covered_seq;
        for (const h of this.snapshotHistory.getRange({ start: [e.portfolio_id], end: [e.portfolio_id, Infinity], limit: 1 })) c = Math.min(c, h.value.covered_seq);
      }
      cache.set(e.portfolio_id, c);
    }
    if (c === null) return !replayedEventTypes.has(e.type);
    return e.seq <= c;
  }

  // ---- flush ---------------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushNow);
  }

  private readonly flushNow = (): void => {
    this.flushScheduled = false;
    // One flush in flight: the next one starts when it is done, with everything enqueued meanwhile.
    if (this.inFlight !== null || (this.queued.empty && !this.hasBacklog())) return;
    const b = this.queued;
    this.queued = new Batch();
    if (this.failure !== null) {
      this.abandon(b);
      return;
    }
    this.takeRecords(b);
    this.takePrices(b);
    if (b.empty) {
      // Only records that could not be encoded: their calls were rejected, nothing to write.
      b.done?.resolve();
      if (this.hasBacklog()) this.scheduleFlush();
      return;
    }
    this.inFlight = b;
    // Every flush gets a promise, so a barrier taken while it is in flight can wait for it.
    if (b.done === null) b.done = deferred();
    const started = performance.now();
    let committed: Promise<unknown>;
    try {
      const singles = this.root.batch(() => this.writeSingles(b));
      committed =
        b.snapshotHistory.length > 0 || b.priceHistory.length > 0 ? Promise.all([singles, this.root.transaction(() => this.writeHistory(b))]) : singles;
    } catch (err) {
      committed = Promise.reject(err);
    }
    const durable = this.sync ? committed.then(() => this.root.flushed) : committed;
    durable.then(
      () => this.committed(b, (performance.now() - started) / 1000),
      (err: unknown) => this.failed(b, err),
    );
  };

  /** Moves up to snapshotsPerFlushMax records from the backlog into the batch, encoding each once. */
  private takeRecords(b: Batch): void {
    let budget = this.snapshotsPerFlushMax;
    while (budget > 0 && this.recordJobs.length > 0) {
      const job = this.recordJobs[0];
      try {
        while (budget > 0 && job.next < job.items.length) {
          const r = job.items[job.next];
          const bin = this.recordEncoder.encode(r);
          b.snapshots.push({ id: r.portfolio.id, bin });
          b.snapshotHistory.push({ id: r.portfolio.id, at: r.as_of, value: bin });
          job.next++;
          budget--;
          b.writes++;
          this.backlogWrites--;
        }
      } catch (err) {
        // A record the encoder cannot write is the caller's bug: reject its call, keep the store.
        this.backlogWrites -= job.items.length - job.next;
        this.recordJobs.shift();
        job.done.reject(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (job.next < job.items.length) break;
      this.recordJobs.shift();
      b.finished.push(job.done);
    }
  }

  private takePrices(b: Batch): void {
    let budget = this.pricesPerFlushMax;
    while (budget > 0 && this.priceJobs.length > 0) {
      const job = this.priceJobs[0];
      while (budget > 0 && job.next < job.items.length) {
        const p = job.items[job.next];
        b.prices.push(p);
        b.priceHistory.push({ id: p.symbol, at: p.ts, value: p.price });
        job.next++;
        budget--;
        b.writes++;
        this.backlogWrites--;
      }
      if (job.next < job.items.length) break;
      this.priceJobs.shift();
      b.finished.push(job.done);
    }
  }

  private writeSingles(b: Batch): void {
    const k2 = this.k2;
    const v2 = this.v2;
    for (const [key, value] of b.meta) this.meta.put(key, value);
    for (let i = 0; i < b.events.length; i++) {
      const e = b.events[i];
      this.events.put(e.seq, asBinary(b.eventBins[i]) as unknown as StoredEvent);
      k2[0] = e.portfolio_id;
      k2[1] = e.seq;
      v2[0] = e.type;
      v2[1] = e.ts;
      this.byPortfolio.put(k2, v2 as [DomainEventType, number]);
      k2[0] = e.type;
      this.byType.put(k2, e.ts);
      k2[0] = e.ts;
      this.byTs.put(k2, null);
    }
    // Kept beside the events so lastSeq survives compaction of every event.
    if (b.events.length > 0) this.meta.put('lastSeq', b.events[b.events.length - 1].seq);
    for (const t of b.trades) this.trades.put(t.key, asBinary(t.bin));
    for (const s of b.snapshots) this.snapshots.put(s.id, asBinary(s.bin) as unknown as PortfolioRecord);
    for (const p of b.prices) this.prices.put(p.symbol, p);
    for (const r of b.removals) r.db.remove(r.key);
    for (const g of b.segments) this.shardSnapshots.put(g.key, g.bin);
    // The pointer after its segments; the old generation goes in the same transaction.
    if (b.pointer !== null) this.meta.put('shardSnapshot', b.pointer);
    for (const k of b.segmentRemovals) this.shardSnapshots.remove(k);
  }

  /** Runs inside the write transaction (on the main thread), so its reads see every earlier write. */
  private writeHistory(b: Batch): void {
    this.insertBounded(this.snapshotHistory as Database<unknown, Key>, this.snapshotHistoryCounts, this.snapshotsKeptMax, b.snapshotHistory, true);
    this.insertBounded(this.priceHistory as Database<unknown, Key>, this.priceHistoryCounts, this.pricesKeptMax, b.priceHistory, false);
  }

  private insertBounded(db: Database<unknown, Key>, counts: Map<string, number>, keptMax: number, writes: HistoryWrite[], binary: boolean): void {
    for (const w of writes) {
      const key: [string, number] = [w.id, w.at];
      let n = counts.get(w.id);
      if (n === undefined) n = db.getKeysCount({ start: [w.id], end: [w.id, Infinity] });
      if (!db.doesExist(key)) n++;
      db.put(key, binary ? asBinary(w.value as Uint8Array) : w.value);
      // Oldest first: keys are ordered by (id, as_of / ts).
      while (n > keptMax) {
        let oldest: Key | undefined;
        for (const k of db.getKeys({ start: [w.id], end: [w.id, Infinity], limit: 1 })) oldest = k;
        if (oldest === undefined) break;
        db.remove(oldest);
        n--;
      }
      counts.set(w.id, n);
    }
  }

  private committed(b: Batch, seconds: number): void {
    this.inFlight = null;
    this.commitsTotal++;
    this.commitSecondsSum += seconds;
    this.lastCommitSeconds = seconds;
    for (const t of b.trades) this.pendingTrades.delete(t.pending);
    b.done?.resolve();
    for (const d of b.finished) d.resolve();
    for (const l of this.commitListeners) {
      try {
        l(seconds, b.events.length);
      } catch {
        // a metrics listener must not break the write path
      }
    }
    if (!this.queued.empty || this.hasBacklog()) this.scheduleFlush();
  }

  private failed(b: Batch, err: unknown): void {
    // lmdb-js rejects with "Commit failed (see commitError for details)" and rejects a second
    // promise, commitError, with the LMDB error: report that one. Handling it also keeps it from
    // crashing the process as an unhandled rejection. The batch stays in flight until then, so no
    // other flush can start in between.
    const commitError = (err as { commitError?: Promise<unknown> } | null)?.commitError;
    if (commitError !== undefined && typeof commitError.then === 'function') {
      commitError.then(
        () => this.fail(b, err),
        (cause: unknown) => this.fail(b, cause),
      );
    } else this.fail(b, err);
  }

  private fail(b: Batch, err: unknown): void {
    const detail = err instanceof Error ? err.message : String(err);
    this.failure = new StoreError(`store commit failed (${b.events.length} events from seq ${b.events[0]?.seq ?? '-'}): ${detail}`, err);
    this.inFlight = null;
    this.abandon(b);
    const rest = this.queued;
    this.queued = new Batch();
    this.abandon(rest);
  }

  /** Rejects a batch that will never commit, and (the store being failed) every waiting job. */
  private abandon(b: Batch): void {
    const failure = this.failure as StoreError;
    for (const t of b.trades) this.pendingTrades.delete(t.pending);
    b.done?.reject(failure);
    for (const d of b.finished) d.reject(failure);
    for (const job of [...this.recordJobs, ...this.priceJobs]) job.done.reject(failure);
    this.recordJobs.length = 0;
    this.priceJobs.length = 0;
    this.backlogWrites = 0;
  }

  // ---- introspection and lifecycle -----------------------------------------------------------

  stats(): StoreStats {
    let sizeBytes = 0;
    try {
      sizeBytes = statSync(join(this.path, 'data.mdb')).size;
    } catch {
      sizeBytes = 0;
    }
    return {
      sizeBytes,
      lastSeq: this.seq,
      commitsTotal: this.commitsTotal,
      commitSecondsSum: this.commitSecondsSum,
      lastCommitSeconds: this.lastCommitSeconds,
      pendingWrites: this.pendingWrites(),
      pendingWritesMax: this.pendingWritesMax,
      backlogWrites: this.backlogWrites,
      failed: this.failure !== null,
    };
  }

  onCommit(listener: (seconds: number, events: number) => void): () => void {
    this.commitListeners.add(listener);
    return () => {
      this.commitListeners.delete(listener);
    };
  }

  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.compacting?.catch(() => undefined);
    // Drain: a flush is scheduled for anything queued; wait until nothing is queued or in flight.
    while (this.failure === null && (this.inFlight !== null || !this.queued.empty || this.hasBacklog())) {
      const waitFor = this.barrier();
      this.scheduleFlush();
      await waitFor.catch(() => undefined);
    }
    try {
      await this.root.close();
    } finally {
      openPaths.delete(this.path);
    }
  }
}

/**
 * Opens (or creates) the store in options.path. A directory written by another schema version,
 * or already open in this process, is refused with store_failed; a missing or empty one is fresh.
 */
export function openStore(options: StoreOptions): Result<Store> {
  for (const name of ['mapSizeBytes', 'pendingWritesMax', 'snapshotsKeptPerPortfolioMax', 'pricesKeptPerSymbolMax', 'compactScannedPerCallMax', 'snapshotsPerFlushMax', 'pricesPerFlushMax'] as const) {
    const v = options[name];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) return fail(ErrorCode.invalid_field, `${name} must be an integer >= 1`, name);
  }
  const keep = options.retention?.keepEventsMs;
  if (keep !== undefined && keep !== null && !(Number.isFinite(keep) && keep >= 0)) return fail(ErrorCode.invalid_field, 'retention.keepEventsMs must be null or a number >= 0', 'keepEventsMs');
  if (typeof options.path !== 'string' || options.path.length === 0) return fail(ErrorCode.invalid_field, 'path must be a non-empty string', 'path');
  const path = resolve(options.path);
  if (openPaths.has(path)) return fail(ErrorCode.store_failed, `store '${path}' is already open in this process`, 'path');
  try {
    mkdirSync(path, { recursive: true });
  } catch (err) {
    return fail(ErrorCode.store_failed, `cannot create data dir '${path}': ${(err as Error).message}`, 'path');
  }
  let root: RootDatabase | undefined;
  try {
    // noSubdir: a directory whose name has a dot (`/srv/mtm.prod`) is still a directory, not a file.
    root = open({ path, noSubdir: false, maxDbs: databasesMax, mapSize: options.mapSizeBytes ?? storeDefaults.mapSizeBytes, cache: false, eventTurnBatching: false });
    // Check the version before creating anything, so a foreign directory is left as it was.
    const probe = { name: 'meta', create: false };
    const existingMeta = root.openDB<unknown, Key>(probe) as Database<unknown, Key> | undefined;
    const found = existingMeta?.get('schemaVersion');
    let fresh = found === undefined;
    const migratedFrom = typeof found === 'number' && storeVersionsMigrated.includes(found) ? found : null;
    if (found !== undefined && found !== storeSchemaVersion && migratedFrom === null) {
      void root.close().catch(() => undefined);
      return fail(
        ErrorCode.store_failed,
        `data dir '${path}' was written by store schema version ${String(found)}; this build reads schema version ${storeSchemaVersion}. Migrate it, or point --data (MTM_DATA) at another directory.`,
        'path',
      );
    }
    if (fresh) {
      // No version: fresh if empty or holding only our (empty) databases, which a crash between
      // creating them and the first commit can leave; anything else is not ours to write into.
      let foreign = false;
      for (const key of root.getKeys({ limit: databasesMax + 1 })) {
        if (typeof key !== 'string' || !databaseNames.includes(key)) {
          foreign = true;
          break;
        }
      }
      const existingEvents = root.openDB<unknown, Key>({ ...probe, name: 'events' }) as Database<unknown, Key> | undefined;
      if (foreign || (existingEvents !== undefined && existingEvents.getKeysCount({ limit: 1 }) > 0)) {
        void root.close().catch(() => undefined);
        return fail(ErrorCode.store_failed, `data dir '${path}' holds LMDB data without a store schema version; this build reads schema version ${storeSchemaVersion}`, 'path');
      }
    }
    const meta = root.openDB<unknown, Key>('meta', {});
    const events = root.openDB<StoredEvent, Key>('events', {});
    const byPortfolio = root.openDB<[DomainEventType, number], Key>('byPortfolio', {});
    const byType = root.openDB<number, Key>('byType', {});
    const byTs = root.openDB<null, Key>('byTs', {});
    const trades = root.openDB<unknown, Key>('tradeResults', {});
    const snapshots = root.openDB<PortfolioRecord, Key>('snapshots', {});
    const snapshotHistory = root.openDB<PortfolioRecord, Key>('snapshotHistory', {});
    const prices = root.openDB<LastPrice, Key>('prices', {});
    const priceHistory = root.openDB<number, Key>('priceHistory', {});
    // Raw bytes: the segments are decoded by the shard that loads them, never here.
    const shardSnapshots = root.openDB<Uint8Array, Key>('shardSnapshots', { encoding: 'binary' });
    let lastSeq = 0;
    const metaSeq = meta.get('lastSeq');
    if (typeof metaSeq === 'number') lastSeq = metaSeq;
    for (const key of events.getKeys({ reverse: true, limit: 1 })) lastSeq = Math.max(lastSeq, key as number);
    fresh = meta.get('schemaVersion') === undefined;
    openPaths.add(path);
    if (migratedFrom !== null) {
      (options.log ?? console.log)(`mtm: data dir '${path}' was written by store schema version ${migratedFrom}; migrating it to version ${storeSchemaVersion} (columnar snapshots from the next snapshot on, seq epochs)`);
    }
    return ok(new LmdbStore(path, root, meta, events, byPortfolio, byType, byTs, trades, snapshots, snapshotHistory, prices, priceHistory, shardSnapshots, options, lastSeq, fresh, migratedFrom));
  } catch (err) {
    if (root !== undefined) void root.close().catch(() => undefined);
    return fail(ErrorCode.store_failed, `cannot open store in '${path}': ${(err as Error).message}`, 'path');
  }
}
