// Durable state in LMDB: the facade over the store's tables, each in its own file: the write queue
// (writeQueue.ts), the event log and its indexes (log.ts), trade results (tradeResults.ts),
// snapshots (snapshots.ts), columnar shard snapshots (shardSnapshots.ts), prices (prices.ts),
// retention (compaction.ts) and the data-dir locks (lock.ts). This file opens the environment,
// composes the tables and keeps the Store interface.
//
// Ownership. The engine's main thread is the only opener of the LMDB environment (lmdb-js has an
// open crash report when one env is opened from several worker threads); shards send it batches.
// openStore refuses a second open of the same directory in this process; other processes are kept
// out by the kernel-released lock the engine takes first (lock.ts lockDataDir), because two writers
// would hand out the same seqs.
//
// Write path. append(), writeSnapshots(), savePrices() and compact() only enqueue in memory; the
// first enqueue of an event-loop turn schedules a flush with setImmediate, not queueMicrotask: a
// microtask runs at the end of the current macrotask, so it would commit once per worker message,
// while setImmediate runs after the poll phase has delivered every message and I/O callback of
// this loop iteration, so all of them share one commit, and no timer delay is added. A flush is
// one lmdb-js `batch` (an atomic block of one write transaction, executed off the main thread)
// holding the events, trade result bodies, a chunk of the lagging index (eventIndex.ts: the
// indexes and trade-id keys of earlier events, when one is due), current snapshots, latest prices and
// compaction removals and snapshot/price history with its pruning (history.ts: never an lmdb-js
// transaction callback, whose write thread waits for the JS thread, so an exit could hang).
// Snapshot records and prices wait in a backlog and go snapshotsPerFlushMax / pricesPerFlushMax
// per flush (encoded there, once, for the current record and its history entry), so snapshotting
// 200k portfolios is many short flushes, not one main-thread stall of seconds.
// At most commitsInFlightMax flushes are in flight (pipelined, chained by conditional writes so none
// commits after a failed one; writeQueue.ts): appends made meanwhile share the next one (group
// commit), so under load each fsync covers more events instead of queueing more fsyncs.
// The hot path never calls putSync/transactionSync and never runs a commit on the main thread.
// lmdb-js's own event-turn batching is off (we batch per turn ourselves): in lmdb-js 3.5.6 a
// failed commit in that mode also rejects an internal promise nobody handles, which kills the
// process with an unhandled rejection before the engine could report the failure.
//
// What `durable` of an append guarantees (docs/STORE.md "The journal"): each flush first writes what
// the turn appended as one journal record (journal.ts, one write(2)), and acknowledges there:
//  - default mode: once the write returned (the kernel's page cache holds it: a kill -9, an OOM kill or
//    a native crash cannot lose it; the next open redoes it into LMDB). Not a power loss.
//  - sync mode (--sync): once an fdatasync of the journal that covers the record returned (group
//    commit: one fdatasync for every record written before it started). Survives power loss, as far
//    as the disk honours fdatasync.
// LMDB (lmdb-js 3.5.6, overlappingSync, its Linux default; noSync never) commits the same appends
// behind, pipelined, and stays the recovery base; its commit reports only after its own fdatasync,
// which is why acks no longer wait for it. Snapshot records, prices, removals and barriers resolve
// at the LMDB commit (with --sync after lmdb-js `flushed` too).
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
import { open, type Database, type Key, type RootDatabase } from 'lmdb';
import { assert } from '../assert.js';
import { ErrorCode, fail, ok, type Result } from '../errors.js';
import type { DomainEvent, DomainEventType, LastPrice, PortfolioRecord, StoredEvent } from '../domain/types.js';
import { Compaction } from './compaction.js';
import { databasesMax, storeDefaults } from './limits.js';
import { checkNotOpenHere, takeDataDir, type DataDirLock } from './lock.js';
import { ShardSnapshots, type ShardSnapshotPointer, type ShardSnapshotWrite } from './shardSnapshots.js';
import { EventIndex } from './eventIndex.js';
import { EventLog, redoEvents, type EncodedEvents, type EventQuery, type ReplayOptions } from './log.js';
import { HeldTicks, redoHeldTicks, type HeldTickRecord } from './heldTicks.js';
import { Journal, JournalCorrupt, journalDir, readJournal, type JournalRecord, type JournalScan } from './journal.js';
import { Prices } from './prices.js';
import { Snapshots } from './snapshots.js';
import { StreamCursors } from './streamCursor.js';
import { redoTradeBodies, TradeResults } from './tradeResults.js';
import { WriteQueue, type CommitKind } from './writeQueue.js';

export { storeDefaults } from './limits.js';
export { StoreError } from './writeQueue.js';
export type { CommitKind } from './writeQueue.js';
export type { EncodedEvents, EventQuery, ReplayOptions } from './log.js';
export type { ShardSnapshotPointer, ShardSnapshotWrite } from './shardSnapshots.js';
export type { HeldTickRecord } from './heldTicks.js';

/**
 * Layout version of the data directory; bump on any incompatible change of keys or values.
 * 2: columnar shard snapshots (`shardSnapshots`, meta `shardSnapshot`) and seq epochs (meta
 * `seqEpoch`). A version 1 directory is migrated on open (storeVersionsMigrated).
 */
export const storeSchemaVersion = 2;
/** Versions openStore migrates in place: the new version (and seq epoch) go in the first commit. */
export const storeVersionsMigrated: readonly number[] = [1];


/** The store's bounds an operator may set (the CLI's --store-* options); each defaults to storeDefaults. */
export type StoreLimits = Omit<StoreOptions, 'path' | 'sync' | 'retention'>;

export interface StoreOptions {
  /** Data directory (created if missing). */
  path: string;
  /** --sync: resolve `durable` only once the commit is flushed to disk (survives power loss). */
  sync?: boolean;
  /** null/undefined keepEventsMs = keep all (audit); else compact events older than this AND covered by every snapshot. */
  retention?: { keepEventsMs?: number | null };
  mapSizeBytes?: number;
  pendingWritesMax?: number;
  /** Flushes in flight at once (pipelined group commits, see writeQueue.ts). */
  commitsInFlightMax?: number;
  /** The lagging index transaction (eventIndex.ts): events whose index entries one flush takes. */
  indexEventsPerFlushMax?: number;
  /** ... and how long an event's index entries wait at most for a chunk to fill. */
  indexLagMaxMs?: number;
  /** Events or trade results whose index entries are not yet in a flush before overloaded() turns true. */
  indexLaggingMax?: number;
  snapshotsKeptPerPortfolioMax?: number;
  pricesKeptPerSymbolMax?: number;
  compactScannedPerCallMax?: number;
  snapshotsPerFlushMax?: number;
  pricesPerFlushMax?: number;
  /** How long the engine waits for a silent (dying) owner of the data directory (lock.ts). */
  ownerDyingWaitMs?: number;
  /** The journal (journal.ts): segment size, lag behind LMDB and groups waiting for an fdatasync before overloaded(). */
  journalSegmentBytesMax?: number;
  journalLagBytesMax?: number;
  journalUnsyncedGroupsMax?: number;
  /** Journal bytes one redo transaction takes at open. */
  journalRedoTransactionBytesMax?: number;
  /** Where the migration line goes (default console.log). */
  log?: (line: string) => void;
}

export interface AppendReceipt {
  stored: StoredEvent[];
  /** Resolves when the commit holding these events is durable (see the header); rejects with a StoreError. */
  durable: Promise<void>;
}

export interface EncodedReceipt {
  /** The seq of the first event (the others follow it, in order). */
  firstSeq: number;
  durable: Promise<void>;
}

export interface StoreStats {
  sizeBytes: number;
  /** The LMDB map (address space lmdb-js grows when the used pages reach it) and the part of it in use. */
  mapSizeBytes: number;
  mapUsedBytes: number;
  lastSeq: number;
  /**
   * Commits, each flush once: its journal record when it holds appends (the acknowledging commit),
   * else its LMDB transaction. LMDB's transactions alone: lmdbCommitsTotal, lmdbCommitSecondsSum long.
   */
  commitsTotal: number;
  lmdbCommitsTotal: number;
  lmdbCommitSecondsSum: number;
  commitSecondsSum: number;
  lastCommitSeconds: number;
  /** Events, trade results and records taken into the queued or in-flight commit, not yet durable. */
  pendingWrites: number;
  pendingWritesMax: number;
  /** Snapshot records and prices waiting for a later flush (written a bounded chunk per flush). */
  backlogWrites: number;
  /** True once a commit failed; every later write is refused. */
  failed: boolean;
  /** Flushes submitted to LMDB and not yet settled (at most commitsInFlightMax). */
  commitsInFlight: number;
  /** Events and trade results whose index entries wait for the lagging index transaction (not yet in a flush). */
  indexLagging: number;
  /** Index entries the last open wrote for events and trade results a crash had left unindexed. */
  indexCaughtUpAtOpen: number;
  /** Journal bytes written that LMDB has not committed yet (at most about journalLagBytesMax). */
  journalLagBytes: number;
  /** --sync: journal groups written and waiting for their fdatasync. */
  journalUnsyncedGroups: number;
  /** Journal segment files on disk (the current one included). */
  journalSegments: number;
  /** Journal records (groups of appends) written, and fdatasyncs of the journal (--sync), since open. */
  journalRecordsTotal: number;
  journalSyncsTotal: number;
  /** What the last open redid from the journal into LMDB (records a crash had left ahead of LMDB). */
  journalRedoneAtOpen: { records: number; events: number; trades: number };
}

export interface Store {
  readonly schemaVersion: number;
  /** The data directory, resolved (a recovering shard opens it read-only in its thread: logReader.ts). */
  readonly path: string;
  readonly pendingWritesMax: number;
  lastSeq(): number;
  /**
   * Assigns global monotonic seqs synchronously and enqueues the write. All appends of one
   * event-loop turn share one transaction; `durable` resolves once it is durable (see header).
   * An empty append is a barrier: its `durable` resolves when everything enqueued before is durable.
   */
  /** A trade result's `bin`: its body as this store's encoder writes it (written by a shard), taken as it is. */
  append(events: readonly DomainEvent[], tradeResults?: readonly { portfolio_id: string; trade_id: string; result: unknown; bin?: Uint8Array }[]): AppendReceipt;
  /**
   * Appends events a shard encoded as the log keeps them (log.ts EncodedEvents, a bulk import's
   * chunk): seqs assigned now from firstSeq on and written into their bytes, which are logged as they
   * are; each imported trade's result is derived from its TradeExecuted (tradeResults.ts). Same
   * ordering, batching and `durable` as append().
   */
  appendEncoded(events: EncodedEvents, tradeResults?: readonly { portfolio_id: string; trade_id: string; result: unknown; bin?: Uint8Array }[]): EncodedReceipt;
  /** Durable idempotency: the first result stored for (portfolio, trade_id), including one still in flight. */
  tradeResult(portfolioId: string, tradeId: string): unknown | undefined;
  /**
   * The number of the body stored for (portfolio, trade_id) (bodies are appended 1, 2, 3...), for a
   * caller that keeps a compact id -> number map instead of the result (engine/commit.ts).
   */
  tradeResultNumber(portfolioId: string, tradeId: string): number | undefined;
  /** The result body stored under number n (committed bodies only). */
  tradeResultBody(n: number): unknown | undefined;
  /** Every trade id (and command key) the portfolio has a result under, at most max. */
  tradeIdsOf(portfolioId: string, max: number): string[];
  /** Committed events by portfolio, type, time range [from, to], paged by after_seq (asc: seq > after_seq, desc: seq < after_seq). */
  query(q: EventQuery): StoredEvent[];
  /** Replay source: committed events with seq > afterSeq in seq order, streamed from a cursor. */
  eventsAfter(afterSeq: number, options?: ReplayOptions): Iterable<StoredEvent>;
  /**
   * The same events as stored, undecoded: each value is a copy the caller may keep or transfer
   * (recovery's shards read theirs without a copy, src/store/logReader.ts).
   */
  rawEventsAfter(afterSeq: number): Iterable<{ key: Key; value: Uint8Array }>;
  /** Decodes one value rawEventsAfter gave (what eventsAfter would have given for it). */
  decodeEvent(bytes: Uint8Array): StoredEvent;
  /**
   * Same write queue as append(): a record commits with or after every event appended before the
   * call. One key per portfolio, plus a history entry. Written snapshotsPerFlushMax records per
   * flush; resolves when the last is durable. The records must not be mutated after the call.
   */
  writeSnapshots(records: readonly PortfolioRecord[]): Promise<void>;
  loadSnapshots(): Iterable<PortfolioRecord>;
  /**
   * Columnar snapshots of every shard as one generation (shardSnapshots.ts). Same write queue as
   * append(): the generation commits with or after every event appended before the call, in one
   * transaction with its pointer. Resolves when durable.
   */
  writeShardSnapshots(snapshot: ShardSnapshotWrite): Promise<void>;
  /** The committed generation pointer, or undefined when no columnar snapshot was ever written. */
  shardSnapshotPointer(): ShardSnapshotPointer | undefined;
  /**
   * The raw bytes of one shard's segments of a generation, each in its own ArrayBuffer (transferable);
   * with `only`, just those segments (the others empty: the engine's start reads the directory's).
   */
  shardSnapshotSegments(pointer: ShardSnapshotPointer, shard: number, only?: readonly number[]): Uint8Array[];
  /**
   * The next boot epoch of per-portfolio seqs (0 on a fresh directory), enqueued for the next commit:
   * await a barrier (append([])) before any seq of it is shown. Seqs of epoch e start at e * 2^32.
   * cleanSnapshot: the columnar generation was written by a clean shutdown and not used by a boot
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
  /**
   * The suspect tick held for a symbol (null: none any more), in the same ordered write queue as
   * append(): enqueue it with the audit event of the hold or the settle.
   */
  setHeldTick(symbol: string, held: HeldTickRecord | null): void;
  /** Every suspect tick held when the store was last written (one per symbol). */
  loadHeldTicks(): HeldTickRecord[];
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
  /**
   * True while pendingWrites >= pendingWritesMax, or the lagging index's backlog >= indexLaggingMax:
   * the engine should refuse new commands (retryable).
   */
  overloaded(): boolean;
  /**
   * True when no LMDB transaction is queued, backlogged (snapshot records, prices, an index chunk due)
   * or in flight: nothing writes data.mdb until the next append, write or timer (index entries still
   * inside indexLagMaxMs are written by a later transaction). A copy of the live directory taken in the
   * same turn (synchronously) is a state a crash can leave; one taken while lmdb-js's write thread
   * commits mixes pages of different transactions.
   */
  idle(): boolean;
  /**
   * Subscribe to commit durations (seconds) and the events each commit held: journal records
   * ('journal', the acknowledging commits, from the group's cut to durable) and LMDB transactions
   * (from submit to settle: 'lmdb' when it acknowledges what it holds, 'lmdb-behind' when the journal did).
   */
  onCommit(listener: (seconds: number, events: number, kind: CommitKind) => void): () => void;
  /** Cluster: the last command-stream sequence applied for the partition (0: none), including writes in flight. */
  streamCursor(partition: number): number;
  /**
   * Cluster: moves the partition's cursor forward in the batch being filled, so it commits in one
   * transaction with every event appended before the next flush (streamCursor.ts); append([]) is the barrier.
   */
  advanceStreamCursor(partition: number, seq: number): void;
  /**
   * Cluster: sets the partition's cursor to seq, backwards too, in the batch being filled: a partition
   * rebuilt from a shipped snapshot takes that snapshot's sequence, in the transaction of the snapshot
   * generation that holds its books (engine.adoptBooks).
   */
  setStreamCursor(partition: number, seq: number): void;
  /**
   * Cluster: these portfolios' copies left this node (a lost partition, or a copy replaced by a shipped
   * snapshot): their trade and command results so far are forgotten (a rebuilt copy applies those ids
   * again from the stream and stores its own), and their reads (query, eventsForPortfolio) start after
   * the log's last seq now (a copy rebuilt from the stream does not show its history twice); durable
   * with the batch being filled. The events stay in the log.
   */
  forgetCopies(portfolioIds: readonly string[]): void;
  /** Flushes what is enqueued, waits for it, closes the environment. */
  close(): Promise<void>;
}

const databaseNames = ['meta', 'events', 'byPortfolio', 'byType', 'byTs', 'tradeResults', 'tradeResultBodies', 'tradeResultKeys', 'snapshots', 'snapshotHistory', 'prices', 'priceHistory', 'shardSnapshots', 'heldTicks'];

class LmdbStore implements Store {
  readonly schemaVersion = storeSchemaVersion;
  readonly pendingWritesMax: number;
  private readonly indexLaggingMax: number;
  private readonly journalLagBytesMax: number;
  private readonly journalUnsyncedGroupsMax: number;
  private readonly queue: WriteQueue;
  private readonly journal: Journal;
  private readonly log: EventLog;
  private readonly index: EventIndex;
  private readonly trades: TradeResults;
  private readonly indexCaughtUpAtOpen: number;
  private readonly snapshots: Snapshots;
  private readonly prices: Prices;
  private readonly compaction: Compaction;
  private readonly heldTicks: HeldTicks;
  private readonly shardSnapshots: ShardSnapshots;
  private readonly cursors: StreamCursors;
  /** The last seq epoch handed out (committed or queued). */
  private seqEpoch: number;
  private closing: Promise<void> | null = null;

  constructor(
    readonly path: string,
    private readonly root: RootDatabase,
    private readonly lock: DataDirLock,
    dbs: {
      meta: Database<unknown, Key>;
      events: Database<StoredEvent, Key>;
      eventsRaw: Database<Uint8Array, Key>;
      byPortfolio: Database<[DomainEventType, number], Key>;
      byType: Database<number, Key>;
      byTs: Database<number | null, Key>;
      trades: Database<unknown, Key>;
      tradeBodies: Database<unknown, Key>;
      tradeKeys: Database<[string, string], Key>;
      snapshots: Database<PortfolioRecord, Key>;
      snapshotHistory: Database<PortfolioRecord, Key>;
      prices: Database<LastPrice, Key>;
      priceHistory: Database<number, Key>;
      shardSnapshots: Database<Uint8Array, Key>;
      heldTicks: Database<HeldTickRecord, Key>;
    },
    options: StoreOptions,
    lastSeq: number,
    fresh: boolean,
    readonly migratedFrom: number | null,
    private readonly journalScan: JournalScan,
  ) {
    this.pendingWritesMax = options.pendingWritesMax ?? storeDefaults.pendingWritesMax;
    this.indexLaggingMax = options.indexLaggingMax ?? storeDefaults.indexLaggingMax;
    this.journalLagBytesMax = options.journalLagBytesMax ?? storeDefaults.journalLagBytesMax;
    this.journalUnsyncedGroupsMax = options.journalUnsyncedGroupsMax ?? storeDefaults.journalUnsyncedGroupsMax;
    this.queue = new WriteQueue(root, dbs.meta, options.sync === true, options.commitsInFlightMax ?? storeDefaults.commitsInFlightMax);
    this.journal = new Journal(
      journalDir(path),
      options.sync === true,
      options.journalSegmentBytesMax ?? storeDefaults.journalSegmentBytesMax,
      journalScan,
      (ack) => this.queue.acknowledged(ack),
      (err) => this.queue.journalFailed(err),
    );
    this.queue.attachJournal(this.journal, (seq) => this.index.acknowledge(seq));
    this.log = new EventLog(this.queue, dbs.meta, dbs.events, dbs.eventsRaw, lastSeq);
    const indexChunk = options.indexEventsPerFlushMax ?? storeDefaults.indexEventsPerFlushMax;
    const indexLagMs = options.indexLagMaxMs ?? storeDefaults.indexLagMaxMs;
    this.index = new EventIndex(this.queue, dbs.meta, dbs.events, dbs.byPortfolio, dbs.byType, dbs.byTs, lastSeq, indexChunk, indexLagMs, (bin) => this.log.decodeEvent(bin));
    this.trades = new TradeResults(this.queue, dbs.meta, dbs.trades, dbs.tradeBodies, dbs.tradeKeys, dbs.events, () => this.log.lastSeq(), indexChunk, indexLagMs);
    this.snapshots = new Snapshots(
      this.queue,
      dbs.snapshots,
      dbs.snapshotHistory,
      options.snapshotsKeptPerPortfolioMax ?? storeDefaults.snapshotsKeptPerPortfolioMax,
      options.snapshotsPerFlushMax ?? storeDefaults.snapshotsPerFlushMax,
    );
    this.prices = new Prices(
      this.queue,
      dbs.prices,
      dbs.priceHistory,
      options.pricesKeptPerSymbolMax ?? storeDefaults.pricesKeptPerSymbolMax,
      options.pricesPerFlushMax ?? storeDefaults.pricesPerFlushMax,
    );
    this.compaction = new Compaction(
      this.queue,
      this.index,
      this.snapshots,
      options.retention?.keepEventsMs ?? null,
      options.compactScannedPerCallMax ?? storeDefaults.compactScannedPerCallMax,
    );
    // The order of one flush's writes: meta and events, the lagging index, trade results, snapshots,
    // prices, removals. The event index decides first whether this flush carries the index (lag.ts).
    this.queue.add(this.log);
    this.queue.add(this.index);
    this.queue.add(this.trades);
    this.queue.add(this.snapshots);
    this.queue.add(this.prices);
    this.queue.add(this.compaction);
    this.heldTicks = new HeldTicks(this.queue, dbs.heldTicks);
    this.queue.add(this.heldTicks);
    this.shardSnapshots = new ShardSnapshots(this.queue, dbs.meta, dbs.shardSnapshots);
    this.queue.add(this.shardSnapshots);
    this.cursors = new StreamCursors(this.queue, dbs.meta);
    const epoch = dbs.meta.get('seqEpoch');
    // Fresh: the first epoch is 0, so seqs start small. Migrated from version 1 (no epoch kept):
    // its seqs were all below 2^32, so epoch 1 is above anything it showed.
    this.seqEpoch = typeof epoch === 'number' ? epoch : fresh ? -1 : 0;
    if (fresh || migratedFrom !== null) {
      // The version goes first in the first transaction, so any committed event implies it.
      this.queue.queued.meta.push(['schemaVersion', storeSchemaVersion]);
      if (migratedFrom !== null) this.queue.queued.meta.push(['seqEpoch', this.seqEpoch]);
      this.queue.scheduleFlush();
    }
    // Before any read: the index entries a crash left behind the log.
    this.indexCaughtUpAtOpen = this.index.catchUp(root, lastSeq) + this.trades.catchUp(root, lastSeq);
  }

  takeSeqEpoch(): { epoch: number; cleanSnapshot: boolean } {
    this.writable();
    this.seqEpoch++;
    this.queue.queued.meta.push(['seqEpoch', this.seqEpoch]);
    this.queue.scheduleFlush();
    return { epoch: this.seqEpoch, cleanSnapshot: this.shardSnapshots.consumeClean() };
  }

  writeShardSnapshots(snapshot: ShardSnapshotWrite): Promise<void> {
    this.writable();
    return this.shardSnapshots.writeGeneration(snapshot);
  }

  shardSnapshotPointer(): ShardSnapshotPointer | undefined {
    return this.shardSnapshots.committedPointer();
  }

  shardSnapshotSegments(pointer: ShardSnapshotPointer, shard: number, only?: readonly number[]): Uint8Array[] {
    return this.shardSnapshots.read(pointer, shard, only);
  }

  lastSeq(): number {
    return this.log.lastSeq();
  }

  streamCursor(partition: number): number {
    return this.cursors.get(partition);
  }

  advanceStreamCursor(partition: number, seq: number): void {
    this.writable();
    // Like append: nothing is written after a lost batch.
    if (this.queue.failure === null) this.cursors.advance(partition, seq);
  }

  setStreamCursor(partition: number, seq: number): void {
    this.writable();
    if (this.queue.failure === null) this.cursors.set(partition, seq);
  }

  forgetCopies(portfolioIds: readonly string[]): void {
    this.writable();
    if (this.queue.failure !== null) return;
    this.trades.forget(portfolioIds, this.log.lastSeq());
    this.index.forget(portfolioIds, this.log.lastSeq());
  }

  idle(): boolean {
    return !this.queue.busy();
  }

  overloaded(): boolean {
    // The lagging index has its own bound: a chunk is taken per flush, so a sustained rate above
    // one chunk per flush would grow its backlog without end.
    // The journal's lag behind LMDB bounds the redo a crash leaves; unsynced groups mean the disk is behind.
    return (
      this.queue.pendingWrites() >= this.pendingWritesMax ||
      this.index.lagging() >= this.indexLaggingMax ||
      this.trades.lagging() >= this.indexLaggingMax ||
      this.journal.lagBytes() >= this.journalLagBytesMax ||
      this.journal.unsynced() >= this.journalUnsyncedGroupsMax
    );
  }

  private writable(): void {
    assert(this.closing === null, 'store is closed: no write may follow close()');
  }

  append(
    events: readonly DomainEvent[],
    tradeResults?: readonly { portfolio_id: string; trade_id: string; result: unknown; bin?: Uint8Array }[],
  ): AppendReceipt {
    this.writable();
    // Nothing may be logged after a lost batch: the seqs stay unassigned.
    if (this.queue.failure !== null) return { stored: [], durable: this.queue.rejected() };
    const { stored, bins } = this.log.encode(events);
    const trades = this.trades.encode(tradeResults);
    const q = this.queue.queued;
    this.log.enqueue(stored, bins);
    this.index.enqueue(stored);
    this.trades.enqueue(trades);
    q.writes += events.length + trades.length;
    // Nothing of its own to write (an empty append, or results all stored before): a barrier.
    if (events.length + trades.length === 0) return { stored, durable: this.queue.barrier() };
    this.queue.scheduleFlush();
    // Acknowledged by the journal record of this turn (journal.ts), LMDB commits it behind.
    return { stored, durable: this.queue.groupDone() };
  }

  appendEncoded(events: EncodedEvents, tradeResults?: readonly { portfolio_id: string; trade_id: string; result: unknown; bin?: Uint8Array }[]): EncodedReceipt {
    this.writable();
    if (this.queue.failure !== null) return { firstSeq: 0, durable: this.queue.rejected() };
    const firstSeq = this.log.lastSeq() + 1;
    // Checked and encoded before anything is enqueued, as append() does.
    const trades = this.trades.encode(tradeResults);
    const entries = this.log.enqueueEncoded(events);
    this.index.enqueue(entries);
    this.trades.enqueueDerived(entries);
    this.trades.enqueue(trades);
    this.queue.queued.writes += entries.length + trades.length;
    if (entries.length + trades.length === 0) return { firstSeq, durable: this.queue.barrier() };
    this.queue.scheduleFlush();
    return { firstSeq, durable: this.queue.groupDone() };
  }

  tradeResult(portfolioId: string, tradeId: string): unknown | undefined {
    return this.trades.tradeResult(portfolioId, tradeId);
  }

  tradeResultNumber(portfolioId: string, tradeId: string): number | undefined {
    return this.trades.numberOf(portfolioId, tradeId);
  }

  tradeResultBody(n: number): unknown | undefined {
    return this.trades.body(n);
  }

  tradeIdsOf(portfolioId: string, max: number): string[] {
    return this.trades.idsOf(portfolioId, max);
  }

  writeSnapshots(records: readonly PortfolioRecord[]): Promise<void> {
    this.writable();
    return this.snapshots.writeSnapshots(records);
  }

  loadSnapshots(): Iterable<PortfolioRecord> {
    return this.snapshots.loadSnapshots();
  }

  snapshotBefore(portfolioId: string, timestamp: number): PortfolioRecord | undefined {
    return this.snapshots.snapshotBefore(portfolioId, timestamp);
  }

  savePrices(prices: readonly LastPrice[]): Promise<void> {
    this.writable();
    return this.prices.savePrices(prices);
  }

  loadPrices(): LastPrice[] {
    return this.prices.loadPrices();
  }

  setHeldTick(symbol: string, held: HeldTickRecord | null): void {
    this.writable();
    this.heldTicks.set(symbol, held);
  }

  loadHeldTicks(): HeldTickRecord[] {
    return this.heldTicks.load();
  }

  priceAt(symbol: string, timestamp: number): number | undefined {
    return this.prices.priceAt(symbol, timestamp);
  }

  lastPriceAt(symbol: string, timestamp: number): LastPrice | undefined {
    return this.prices.lastPriceAt(symbol, timestamp);
  }

  rawEventsAfter(afterSeq: number): Iterable<{ key: Key; value: Uint8Array }> {
    return this.log.rawEventsAfter(afterSeq);
  }

  decodeEvent(bytes: Uint8Array): StoredEvent {
    return this.log.decodeEvent(bytes);
  }

  eventsAfter(afterSeq: number, options?: ReplayOptions): Iterable<StoredEvent> {
    return this.log.eventsAfter(afterSeq, options);
  }

  eventsForPortfolio(portfolioId: string, afterSeq: number, untilTs: number, options?: ReplayOptions): Iterable<StoredEvent> {
    return this.index.eventsForPortfolio(portfolioId, afterSeq, untilTs, options);
  }

  query(q: EventQuery): StoredEvent[] {
    return this.index.query(q);
  }

  compact(now: number): Promise<{ removed: number; more: boolean }> {
    this.writable();
    return this.compaction.compact(now);
  }

  // ---- introspection and lifecycle -----------------------------------------------------------

  /** From mdb_env_info/mdb_env_stat (~20 µs): the capacity forecast's inputs. 0 once the store is closed. */
  private mapStats(): { size: number; used: number } {
    try {
      const st = this.root.getStats() as { mapSize?: number; lastPageNumber?: number; pageSize?: number };
      return { size: st.mapSize ?? 0, used: ((st.lastPageNumber ?? -1) + 1) * (st.pageSize ?? 0) };
    } catch {
      return { size: 0, used: 0 };
    }
  }

  stats(): StoreStats {
    let sizeBytes = 0;
    try {
      sizeBytes = statSync(join(this.path, 'data.mdb')).size;
    } catch {
      sizeBytes = 0;
    }
    const q = this.queue;
    const map = this.mapStats();
    return {
      sizeBytes,
      mapSizeBytes: map.size,
      mapUsedBytes: map.used,
      lastSeq: this.log.lastSeq(),
      commitsTotal: q.commitsTotal,
      lmdbCommitsTotal: q.lmdbCommitsTotal,
      lmdbCommitSecondsSum: q.lmdbCommitSecondsSum,
      commitSecondsSum: q.commitSecondsSum,
      lastCommitSeconds: q.lastCommitSeconds,
      pendingWrites: q.pendingWrites(),
      pendingWritesMax: this.pendingWritesMax,
      backlogWrites: q.backlogWrites,
      failed: q.failure !== null,
      commitsInFlight: q.inFlight.length,
      indexLagging: this.index.lagging() + this.trades.lagging(),
      indexCaughtUpAtOpen: this.indexCaughtUpAtOpen,
      journalLagBytes: this.journal.lagBytes(),
      journalUnsyncedGroups: this.journal.unsynced(),
      journalSegments: this.journal.segments(),
      journalRecordsTotal: this.journal.recordsTotal,
      journalSyncsTotal: this.journal.syncsTotal,
      journalRedoneAtOpen: { ...this.journalScan.redone },
    };
  }

  onCommit(listener: (seconds: number, events: number, kind: CommitKind) => void): () => void {
    return this.queue.onCommit(listener);
  }

  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.compaction.running()?.catch(() => undefined);
    // Drain (the lagging index included): a flush is scheduled for anything queued; wait until nothing is queued or in flight.
    this.queue.draining = true;
    while (this.queue.failure === null && this.queue.busy()) {
      const waitFor = this.queue.barrier();
      this.queue.scheduleFlush();
      await waitFor.catch(() => undefined);
      // A backlog alone (the lagging index) has no promise yet: let the flush take it first.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.index.lag.stop();
    this.trades.lag.stop();
    try {
      // A clean close leaves nothing to redo: once LMDB holds and has flushed every group, the journal goes.
      const clean = this.queue.failure === null;
      if (clean) {
        await this.queue.barrier().catch(() => undefined);
        await this.root.flushed;
      }
      this.journal.close(clean && this.queue.failure === null);
      await this.root.close();
    } finally {
      this.lock.release();
    }
  }
}

function lastSeqOf(meta: Database<unknown, Key>, events: Database<StoredEvent, Key>): number {
  let lastSeq = 0;
  const metaSeq = meta.get('lastSeq');
  if (typeof metaSeq === 'number') lastSeq = metaSeq;
  for (const key of events.getKeys({ reverse: true, limit: 1 })) lastSeq = Math.max(lastSeq, key as number);
  return lastSeq;
}

/**
 * Redoes into LMDB every journal group after its 'journalGroup' (journal.ts), one synchronous
 * transaction per bounded batch of records, each as the flush that would have committed it writes
 * it (log, trade result bodies, held ticks, meta). The seqs must continue LMDB's log exactly.
 */
function redoJournal(
  path: string,
  root: RootDatabase,
  meta: Database<unknown, Key>,
  events: Database<StoredEvent, Key>,
  tradeBodies: Database<unknown, Key>,
  tradeKeys: Database<[string, string], Key>,
  heldTicks: Database<HeldTickRecord, Key>,
  bytesPerTransactionMax: number,
): JournalScan {
  const group = meta.get('journalGroup');
  let next = lastSeqOf(meta, events) + 1;
  return readJournal(journalDir(path), typeof group === 'number' ? group : 0, bytesPerTransactionMax, (records: JournalRecord[]) => {
    for (const r of records) {
      if (r.events.length === 0) continue;
      if (r.firstSeq !== next) throw new JournalCorrupt(`journal group ${r.group} starts at seq ${r.firstSeq}, LMDB's log continues at ${next}`);
      next = r.lastSeq + 1;
    }
    root.transactionSync(() => {
      for (const r of records) {
        redoEvents(meta, events, r.meta, r.firstSeq, r.events);
        redoTradeBodies(tradeBodies, tradeKeys, r.trades);
        redoHeldTicks(heldTicks, r.held as [string, HeldTickRecord | null][]);
        meta.put('journalGroup', r.group);
      }
    });
  });
}

/**
 * Opens (or creates) the store in options.path. A directory written by an older schema version in
 * storeVersionsMigrated is migrated (with a log line); by any other version, or already open in this
 * process, refused with store_failed; a missing or empty one is fresh. Other processes are kept out
 * by lockDataDir (lock.ts), which the engine takes first.
 */
export function openStore(options: StoreOptions): Result<Store> {
  for (const name of ['mapSizeBytes', 'pendingWritesMax', 'commitsInFlightMax', 'indexEventsPerFlushMax', 'indexLagMaxMs', 'indexLaggingMax', 'snapshotsKeptPerPortfolioMax', 'pricesKeptPerSymbolMax', 'compactScannedPerCallMax', 'snapshotsPerFlushMax', 'pricesPerFlushMax', 'journalSegmentBytesMax', 'journalLagBytesMax', 'journalUnsyncedGroupsMax', 'journalRedoTransactionBytesMax'] as const) {
    const v = options[name];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) return fail(ErrorCode.invalid_field, `${name} must be an integer >= 1`, name);
  }
  const keep = options.retention?.keepEventsMs;
  if (keep !== undefined && keep !== null && !(Number.isFinite(keep) && keep >= 0)) return fail(ErrorCode.invalid_field, 'retention.keepEventsMs must be null or a number >= 0', 'keepEventsMs');
  if (typeof options.path !== 'string' || options.path.length === 0) return fail(ErrorCode.invalid_field, 'path must be a non-empty string', 'path');
  const path = resolve(options.path);
  const here = checkNotOpenHere(path);
  if (!here.ok) return here;
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
    // The same table read as raw bytes: recovery routes values without decoding them (rawEventsAfter).
    const eventsRaw = root.openDB<Uint8Array, Key>('events', { encoding: 'binary' });
    const byPortfolio = root.openDB<[DomainEventType, number], Key>('byPortfolio', {});
    const byType = root.openDB<number, Key>('byType', {});
    const byTs = root.openDB<number | null, Key>('byTs', {});
    const trades = root.openDB<unknown, Key>('tradeResults', {});
    const tradeBodies = root.openDB<unknown, Key>('tradeResultBodies', {});
    const tradeKeys = root.openDB<[string, string], Key>('tradeResultKeys', {});
    const snapshots = root.openDB<PortfolioRecord, Key>('snapshots', {});
    const snapshotHistory = root.openDB<PortfolioRecord, Key>('snapshotHistory', {});
    const prices = root.openDB<LastPrice, Key>('prices', {});
    const priceHistory = root.openDB<number, Key>('priceHistory', {});
    // Raw bytes: the segments are decoded by the shard that loads them, never here.
    const shardSnapshots = root.openDB<Uint8Array, Key>('shardSnapshots', { encoding: 'binary' });
    const heldTicks = root.openDB<HeldTickRecord, Key>('heldTicks', {});
    const lock = takeDataDir(path);
    // Before anything reads LMDB: the journal's groups a crash left ahead of it (journal.ts).
    let scan: JournalScan;
    try {
      scan = redoJournal(path, root, meta, events, tradeBodies, tradeKeys, heldTicks, options.journalRedoTransactionBytesMax ?? storeDefaults.journalRedoTransactionBytesMax);
    } catch (err) {
      lock.release();
      void root.close().catch(() => undefined);
      return fail(ErrorCode.store_failed, `cannot open store in '${path}': ${(err as Error).message}`, 'path');
    }
    if (scan.redone.records > 0 || scan.truncated !== null) {
      const t = scan.truncated;
      (options.log ?? console.log)(
        `mtm: journal: redid ${scan.redone.records} groups (${scan.redone.events} events, ${scan.redone.trades} trade results) into LMDB` +
          (t === null ? '' : `; cut a torn last record (${t.bytes} bytes at byte ${t.offset} of '${t.file}', never acknowledged)`),
      );
    }
    const lastSeq = lastSeqOf(meta, events);
    fresh = meta.get('schemaVersion') === undefined;
    const dbs = { meta, events, eventsRaw, byPortfolio, byType, byTs, trades, tradeBodies, tradeKeys, snapshots, snapshotHistory, prices, priceHistory, shardSnapshots, heldTicks };
    if (migratedFrom !== null) {
      (options.log ?? console.log)(`mtm: data dir '${path}' was written by store schema version ${migratedFrom}; migrating it to version ${storeSchemaVersion} (columnar snapshots from the next snapshot round on, seq epochs)`);
    }
    return ok(new LmdbStore(path, root, lock, dbs, options, lastSeq, fresh, migratedFrom, scan));
  } catch (err) {
    if (root !== undefined) void root.close().catch(() => undefined);
    return fail(ErrorCode.store_failed, `cannot open store in '${path}': ${(err as Error).message}`, 'path');
  }
}
