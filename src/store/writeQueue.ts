// The ordered group-commit queue every LMDB table of the store writes through (see store.ts's header
// for why it flushes once per event-loop turn with setImmediate).
//
// Pipelined: up to commitsInFlightMax flushes are submitted to lmdb-js at once, so while one is
// being written and fdatasync'ed by lmdb-js's write thread the next one is already gathered and
// queued behind it (with overlappingSync LMDB releases the writer lock before the sync, so the next
// transaction is written while the previous one flushes). Order and "no holes" come from a chain of
// conditional writes: flush n puts the meta key ['commit', n] and is an lmdb-js conditional block
// (ifVersion IF_EXISTS) on ['commit', n - 1], which it also removes. If flush n - 1 did not commit,
// flush n writes nothing (its promise resolves false), nor does anything after it: a transaction
// can never commit after an earlier one failed. `durable` promises resolve strictly in submit order
// (a flush that committed waits for every earlier one to be settled), and the first failure rejects
// that flush and every later one and fails the store.
//
// The queue owns the batch being filled, the one in flight, the failure state and the commit
// figures; the tables (log, trade results, snapshots, prices, compaction) own what goes into a batch
// and how it is written, and plug in as QueueTables in the order their writes go to LMDB.

import { performance } from 'node:perf_hooks';
import { IF_EXISTS, type Database, type Key, type RootDatabase } from 'lmdb';
import { assert } from '../assert.js';
import { ErrorCode, type EngineError } from '../errors.js';
import type { DomainEventType, LastPrice } from '../domain/types.js';
import type { Journal, JournalAck } from './journal.js';
import type { ShardSnapshotPointer } from './pointer.js';

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

export interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

export function deferred(): Deferred {
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

export interface HistoryWrite {
  id: string;
  at: number;
  value: unknown;
}

/** A held suspect tick as the store keeps it (heldTicks.ts). */
export interface HeldTickRecord {
  symbol: string;
  price: number;
  tick_ts: number;
  /** null: the tick had no size. */
  size: number | null;
}

export interface Removal {
  db: Database<unknown, Key>;
  key: Key;
  /** Put this value instead of removing (compaction rewriting what is left of a time run). */
  put?: { value: unknown };
}

/**
 * An event of the log as a flush writes and indexes it: a StoredEvent, or an encoded one
 * (log.ts EncodedEntry: its object is decoded only when a reader needs it).
 */
export interface LoggedEvent {
  seq: number;
  portfolio_id: string;
  type: DomainEventType;
  ts: number;
}

/**
 * One trade result: its body goes by number on the ack path, its (portfolio, trade_id) key lags. A
 * derived one (an imported trade's, n = 0) has no body: its key's value is the result itself, made
 * from its TradeExecuted event at seq (tradeResults.ts).
 */
export interface TradeResultWrite {
  key: [string, string];
  bin: Uint8Array;
  value: unknown;
  /** The map key of the result while it is not in the committed index. */
  pending: string;
  /** Its body's number (bodies are appended 1, 2, 3... in enqueue order); 0: derived. */
  n: number;
  /** A derived result: the seq of its TradeExecuted event; a body: the log's last seq when it was enqueued. */
  seq: number;
}

/** A writeSnapshots or savePrices call, written a bounded chunk per flush. */
export interface Job<T> {
  items: readonly T[];
  next: number;
  done: Deferred;
}

/** What one flush writes, in call order within each list. */
export class Batch {
  events: LoggedEvent[] = [];
  eventBins: Uint8Array[] = [];
  trades: TradeResultWrite[] = [];
  /** The lagging index transaction's part (eventIndex.ts, tradeResults.ts): entries of earlier or these events. */
  indexEvents: LoggedEvent[] = [];
  indexTrades: TradeResultWrite[] = [];
  /** The derived trade keys are written for every event up to this seq once the batch commits (tradeResults.ts); 0: not moved. */
  tradeSeqMark = 0;
  /** An index table takes its backlog into this flush: the other index tables take theirs too. */
  indexing = false;
  snapshots: { id: string; bin: Uint8Array }[] = [];
  snapshotHistory: HistoryWrite[] = [];
  prices: LastPrice[] = [];
  priceHistory: HistoryWrite[] = [];
  removals: Removal[] = [];
  meta: [string, unknown][] = [];
  /** Held suspect ticks set (a record) or cleared (null), by symbol, in call order (heldTicks.ts). */
  heldTicks: [string, HeldTickRecord | null][] = [];
  /** Columnar snapshot segments, then their generation pointer (written after them) and stale segment keys. */
  segments: { key: Key; bin: Uint8Array }[] = [];
  pointer: ShardSnapshotPointer | null = null;
  segmentRemovals: Key[] = [];
  /** Events + trade results + records + prices, for pendingWrites. */
  writes = 0;
  done: Deferred | null = null;
  /** writeSnapshots / savePrices calls whose last item is in this batch. */
  finished: Deferred[] = [];
  /**
   * How much of events, trades, meta and heldTicks is in the journal already (journal.ts): the next
   * record holds what follows these marks.
   */
  jEvents = 0;
  jTrades = 0;
  jMeta = 0;
  jHeld = 0;
  /** The last journal group this batch holds (0: none), and the journal's bytes written through it. */
  journalGroup = 0;
  journalBytes = 0;
  /** Its events + trade results the journal has acknowledged (no longer pending, LMDB still to commit). */
  ackedWrites = 0;
  /** Its place in the commit chain (the meta key ['commit', chain]); 0 until submitted. */
  chain = 0;
  /** Set once lmdb-js settled it: committed (true) or failed (an error); null while in flight. */
  outcome: true | Error | null = null;
  started = 0;
  seconds = 0;

  get empty(): boolean {
    return this.writes === 0 && this.meta.length === 0 && this.removals.length === 0 && this.pointer === null && this.heldTicks.length === 0;
  }
}

/** A table's part in a flush; every hook is optional and runs in table order. */
export interface QueueTable {
  /** Moves up to a bounded number of backlog items into the batch. */
  take?(b: Batch): void;
  /** Inside the lmdb-js batch (atomic): puts and removes (what they read: committed data and the flushes in flight). */
  write?(b: Batch): void;
  /** The batch committed, or will never commit. */
  settled?(b: Batch): void;
  hasBacklog?(): boolean;
  /** The job that will finish last, for barriers. */
  lastJob?(): Job<unknown> | undefined;
  /** The store failed: reject and drop every waiting job. */
  abandonJobs?(failure: StoreError): void;
}

/**
 * What a commit was: a journal record (the acknowledging commit of appends, journal.ts), an LMDB
 * transaction that acknowledges what it holds (no journal record did: snapshots, prices, barriers),
 * or an LMDB transaction behind the journal (of groups it acknowledged already).
 */
export type CommitKind = 'journal' | 'lmdb' | 'lmdb-behind';

export class WriteQueue {
  queued = new Batch();
  /**
   * Flushes submitted to lmdb-js and not yet settled, oldest first, at most commitsInFlightMax.
   * They settle strictly from the head (see the header): a later one that lmdb-js reports first
   * waits, so `durable` promises resolve in log order whatever order lmdb-js reports them in.
   */
  readonly inFlight: Batch[] = [];
  /** The chain number of the last flush submitted (the meta key ['commit', n] it writes). */
  private chain: number;
  failure: StoreError | null = null;
  /** Items of the tables' jobs (snapshot records, prices) not yet taken into a batch. */
  backlogWrites = 0;
  commitsTotal = 0;
  commitSecondsSum = 0;
  lastCommitSeconds = 0;
  /** close() is draining: every backlog, the lagging index's included, is written now. */
  draining = false;
  private flushScheduled = false;
  /**
   * The acknowledgement of what appends added to `queued` since its last journal record (null: none
   * asked for yet): resolved when the next record is written (or, with --sync, fdatasync'ed).
   */
  private openGroup: Deferred | null = null;
  private journal: Journal | null = null;
  /** An LMDB commit failed (journal attached): the store fails at the next flush (fail()). */
  private lmdbFailure: StoreError | null = null;
  private onAcknowledged: (seq: number) => void = () => undefined;
  /** Writes of queued or in-flight batches the journal has acknowledged (pendingWrites leaves them out). */
  private ackedWrites = 0;
  /**
   * LMDB's transactions alone. The commit figures above count each flush once: its journal record
   * when it holds appends (the acknowledging commit), else its LMDB transaction.
   */
  lmdbCommitsTotal = 0;
  lmdbCommitSecondsSum = 0;
  private readonly tables: QueueTable[] = [];
  private readonly commitListeners = new Set<(seconds: number, events: number, kind: CommitKind) => void>();

  /**
   * `meta` holds the commit chain; without one (the market store) commits are not chained, so only one
   * may be in flight.
   */
  constructor(
    private readonly root: RootDatabase,
    private readonly meta: Database<unknown, Key> | null,
    private readonly sync: boolean,
    private readonly commitsInFlightMax = 1,
  ) {
    assert(meta !== null || commitsInFlightMax === 1, 'pipelined commits need the chain in a meta db');
    // The chain key the last commit left (at most one exists); none in a fresh or older directory,
    // then the first flush is unconditional (nothing is in flight before it).
    let last = 0;
    if (meta !== null) for (const key of meta.getKeys({ start: ['commit'], end: ['commit', Infinity] })) last = Math.max(last, (key as [string, number])[1]);
    this.chain = last;
  }

  /**
   * The journal in front of LMDB (journal.ts): from now on each turn's appends are written to it, and
   * acknowledged by it (groupDone), before LMDB commits them behind.
   */
  attachJournal(journal: Journal, onAcknowledged: (seq: number) => void): void {
    this.journal = journal;
    this.onAcknowledged = onAcknowledged;
  }

  /**
   * The journal made a group durable (journal.ts): its appends are acknowledged, and it is the
   * store's acknowledging commit (commitsTotal, onCommit), in log order.
   */
  readonly acknowledged = (ack: JournalAck): void => {
    if (!ack.mark) {
      const seconds = (performance.now() - ack.started) / 1000;
      const b = ack.batch as Batch;
      // Still queued or in flight: its writes are no longer pending (LMDB commits them behind).
      if (b.outcome === null && b.ackedWrites >= 0) {
        b.ackedWrites += ack.writes;
        this.ackedWrites += ack.writes;
      }
      if (ack.lastSeq > 0) this.onAcknowledged(ack.lastSeq);
      this.commitsTotal++;
      this.commitSecondsSum += seconds;
      this.lastCommitSeconds = seconds;
      this.notifyCommit(seconds, ack.events, 'journal');
    }
    ack.done.resolve();
  };

  private notifyCommit(seconds: number, events: number, kind: CommitKind): void {
    for (const l of this.commitListeners) {
      try {
        l(seconds, events, kind);
      } catch {
        // a metrics listener must not break the write path
      }
    }
  }

  private ack(done: Deferred, batch: Batch | null, mark: boolean): JournalAck {
    return { done, lastSeq: 0, writes: 0, events: 0, started: performance.now(), batch, mark, group: 0 };
  }

  /**
   * The acknowledgement of an append that added events or trade results: resolves once the journal
   * record holding them is durable (without a journal: when the LMDB commit holding them is).
   */
  groupDone(): Promise<void> {
    if (this.failure !== null) return this.rejected();
    if (this.journal === null) return this.queuedDone();
    if (this.openGroup === null) this.openGroup = deferred();
    return this.openGroup.promise;
  }

  /** Tables write in the order they are added. */
  add(table: QueueTable): void {
    this.tables.push(table);
  }

  /** Writes not yet durable: queued or in flight, less what the journal has acknowledged of them. */
  pendingWrites(): number {
    let n = this.queued.writes;
    for (const b of this.inFlight) n += b.writes;
    return n - this.ackedWrites;
  }

  /** The promise of the queued flush: it resolves after every earlier flush (they settle in order). */
  queuedDone(): Promise<void> {
    if (this.failure !== null) return this.rejected();
    if (this.queued.done === null) this.queued.done = deferred();
    return this.queued.done.promise;
  }

  /** Resolves when everything enqueued so far is durable. */
  barrier(): Promise<void> {
    if (this.failure !== null) return this.rejected();
    const waits: Promise<void>[] = [];
    if (this.openGroup !== null) waits.push(this.openGroup.promise);
    else if (this.journal !== null && this.journal.unsynced() > 0) {
      // --sync: an LMDB commit may settle before the fdatasync of a journal record it holds.
      const mark = deferred();
      this.journal.mark(this.ack(mark, null, true));
      waits.push(mark.promise);
    }
    if (!this.queued.empty) waits.push(this.queuedDone());
    else if (this.inFlight.length > 0) {
      const last = this.inFlight[this.inFlight.length - 1];
      if (last.done !== null) waits.push(last.done.promise);
    }
    for (const t of this.tables) {
      const job = t.lastJob?.();
      if (job !== undefined) waits.push(job.done.promise);
    }
    if (waits.length <= 1) return waits[0] ?? Promise.resolve();
    const all = Promise.all(waits).then(() => undefined);
    all.catch(() => undefined);
    return all;
  }

  hasBacklog(): boolean {
    for (const t of this.tables) if (t.hasBacklog?.() === true) return true;
    return false;
  }

  rejected(): Promise<void> {
    const p = Promise.reject(this.failure);
    p.catch(() => undefined);
    return p;
  }

  /** True while something is queued, in flight or in a backlog. */
  busy(): boolean {
    return this.inFlight.length > 0 || !this.queued.empty || this.hasBacklog();
  }

  onCommit(listener: (seconds: number, events: number, kind: CommitKind) => void): () => void {
    this.commitListeners.add(listener);
    return () => {
      this.commitListeners.delete(listener);
    };
  }

  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushNow);
  }

  private readonly flushNow = (): void => {
    this.flushScheduled = false;
    if (this.lmdbFailure !== null && this.failure === null) {
      this.failure = this.lmdbFailure;
      this.failAll();
      return;
    }
    // Every turn's appends go to the journal now, whether or not LMDB has a free slot.
    if (this.journal !== null && this.failure === null) this.journalTurn();
    // At most commitsInFlightMax flushes in flight: the next one starts when the oldest settles,
    // with everything enqueued meanwhile (group commit under load).
    if (this.inFlight.length >= this.commitsInFlightMax || (this.queued.empty && !this.hasBacklog())) return;
    const b = this.queued;
    this.queued = new Batch();
    if (this.failure !== null) {
      this.abandon(b);
      return;
    }
    for (const t of this.tables) t.take?.(b);
    if (b.empty) {
      // Only records that could not be encoded: their calls were rejected, nothing to write.
      b.done?.resolve();
      if (this.hasBacklog()) this.scheduleFlush();
      return;
    }
    this.inFlight.push(b);
    // Every flush gets a promise, so a barrier taken while it is in flight can wait for it.
    if (b.done === null) b.done = deferred();
    b.started = performance.now();
    b.chain = ++this.chain;
    let committed: Promise<unknown>;
    try {
      const block = () => this.writeSingles(b);
      // Conditional on the previous flush's chain key: if that flush did not commit, this one writes
      // nothing (resolves false) instead of leaving a hole.
      // History too (history.ts): no lmdb-js transaction callback, whose write thread waits for the JS
      // thread and hung a process that exited meanwhile.
      committed = b.chain === 1 || this.meta === null ? this.root.batch(block) : this.meta.ifVersion(['commit', b.chain - 1], IF_EXISTS, block);
    } catch (err) {
      committed = Promise.reject(err);
    }
    const durable = this.sync ? committed.then((r) => this.root.flushed.then(() => r)) : committed;
    durable.then(
      (r: unknown) => {
        if (r === false) this.missed(b);
        else this.settle(b, true);
      },
      (err: unknown) => this.failed(b, err),
    );
    // While the pipeline has room, the next turn's appends go into a flush of their own.
    if (this.inFlight.length < this.commitsInFlightMax && (!this.queued.empty || this.hasBacklog())) this.scheduleFlush();
  };

  /** Writes what `queued` gained since its last record as one journal record (journal.ts). */
  private journalTurn(): void {
    const q = this.queued;
    const journal = this.journal as Journal;
    const done = this.openGroup;
    this.openGroup = null;
    if (q.events.length === q.jEvents && q.trades.length === q.jTrades && q.meta.length === q.jMeta && q.heldTicks.length === q.jHeld) {
      // Nothing new (an append whose trade results were all stored before): a barrier on the journal.
      if (done !== null) journal.mark(this.ack(done, null, true));
      return;
    }
    const d = done ?? deferred();
    const ack = this.ack(d, q, false);
    ack.events = q.events.length - q.jEvents;
    ack.writes = ack.events + q.trades.length - q.jTrades;
    const err = journal.write(q, ack);
    if (err !== null) {
      const n = q.events.length - q.jEvents;
      const from = n > 0 ? q.events[q.jEvents].seq : '-';
      this.failure = new StoreError(`store commit failed (journal write of ${n} events from seq ${from}): ${err.message}`, err);
      d.reject(this.failure);
      this.failAll();
      return;
    }
    q.jEvents = q.events.length;
    q.jTrades = q.trades.length;
    q.jMeta = q.meta.length;
    q.jHeld = q.heldTicks.length;
    q.journalGroup = journal.lastGroup;
    q.journalBytes = journal.bytesWritten;
  }

  /** An fdatasync of the journal failed (--sync): the store fails, nothing more is acknowledged. */
  journalFailed(err: Error): void {
    if (this.failure !== null) return;
    this.failure = new StoreError(`store commit failed (journal fdatasync): ${err.message}`, err);
    this.failAll();
  }

  private writeSingles(b: Batch): void {
    for (const t of this.tables) t.write?.(b);
    // The last journal group LMDB holds: an open redoes the groups after it (journal.ts).
    if (b.journalGroup > 0 && this.meta !== null) this.meta.put('journalGroup', b.journalGroup);
    if (this.meta === null) return;
    this.meta.put(['commit', b.chain], b.events.length > 0 ? b.events[b.events.length - 1].seq : 0);
    if (b.chain > 1) this.meta.remove(['commit', b.chain - 1]);
  }

  /**
   * Flush b found the chain key of the flush before it missing: that one (and so every unsettled one
   * before it) did not commit. This also settles a flush whose failure lmdb-js 3.5.6 only prints:
   * when a write thread fails before it flags its transaction (e.g. mdb_txn_begin after an I/O
   * error), lmdb-js logs the error and never settles that transaction's promise.
   */
  private missed(b: Batch): void {
    const lost = new Error(`commit ${b.chain - 1} did not complete (LMDB reported an error; see stderr), so the ones after it wrote nothing`);
    for (const x of this.inFlight) {
      if (x === b) break;
      if (x.outcome === null) this.settle(x, lost);
    }
    this.settle(b, lost);
  }

  /** Records a flush's outcome and settles, oldest first, every flush whose predecessors are settled. */
  private settle(b: Batch, outcome: true | Error): void {
    if (b.outcome !== null) return;
    b.outcome = outcome;
    b.seconds = (performance.now() - b.started) / 1000;
    while (this.inFlight.length > 0 && this.inFlight[0].outcome !== null) {
      const head = this.inFlight[0];
      if (head.outcome === true && this.failure === null) {
        this.inFlight.shift();
        this.committed(head, head.seconds);
      } else {
        this.fail(head, head.outcome === true ? this.failure : head.outcome);
        return;
      }
    }
  }

  private committed(b: Batch, seconds: number): void {
    this.unacked(b);
    // A flush counts once as a commit: by its journal record when it holds appends, else here.
    const counted = b.journalGroup === 0;
    if (counted) {
      this.commitsTotal++;
      this.commitSecondsSum += seconds;
      this.lastCommitSeconds = seconds;
    }
    this.lmdbCommitsTotal++;
    this.lmdbCommitSecondsSum += seconds;
    for (const t of this.tables) t.settled?.(b);
    const journal = this.journal;
    if (journal !== null && b.journalGroup > 0) {
      journal.committed(b.journalBytes);
      // A segment goes once LMDB's flushed state (not just its commit) covers its last group.
      const group = b.journalGroup;
      this.root.flushed.then(
        () => journal.covered(group),
        () => undefined,
      );
    }
    b.done?.resolve();
    for (const d of b.finished) d.resolve();
    this.notifyCommit(seconds, b.events.length, counted ? 'lmdb' : 'lmdb-behind');
    if (!this.queued.empty || this.hasBacklog()) this.scheduleFlush();
  }

  private failed(b: Batch, err: unknown): void {
    // lmdb-js rejects with "Commit failed (see commitError for details)" and rejects a second
    // promise, commitError, with the LMDB error: report that one. Handling it also keeps it from
    // crashing the process as an unhandled rejection. The batch stays in flight until then, so no
    // later flush can be reported durable in between.
    const commitError = (err as { commitError?: Promise<unknown> } | null)?.commitError;
    const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));
    if (commitError !== undefined && typeof commitError.then === 'function') {
      commitError.then(
        () => this.settle(b, asError(err)),
        (cause: unknown) => this.settle(b, asError(cause)),
      );
    } else this.settle(b, asError(err));
  }

  /** The store fails at flush b: b and every flush after it (in flight or queued) is rejected. */
  private fail(b: Batch, err: unknown): void {
    if (this.failure === null) {
      if (this.lmdbFailure !== null) return;
      const detail = err instanceof Error ? err.message : String(err);
      const failure = new StoreError(`store commit failed (${b.events.length} events from seq ${b.events[0]?.seq ?? '-'}): ${detail}`, err);
      if (this.journal !== null) {
        // The store fails at the next flush, before it journals anything more: what was appended
        // since the last record is rejected then (LMDB's failure can reach us in a microtask right
        // after a record was written, and the appends of that turn are then not acknowledged).
        this.lmdbFailure = failure;
        this.scheduleFlush();
        return;
      }
      this.failure = failure;
    }
    this.failAll();
  }

  /**
   * The store failed: every flush in flight or queued is rejected, and so is every append not yet
   * acknowledged (its journal record unwritten, or waiting for its fdatasync).
   */
  private failAll(): void {
    const failure = this.failure as StoreError;
    this.openGroup?.reject(failure);
    this.openGroup = null;
    this.journal?.fail(failure);
    const rest = this.inFlight.splice(0);
    for (const x of rest) this.abandon(x);
    const queued = this.queued;
    this.queued = new Batch();
    this.abandon(queued);
  }

  /** The batch left the queue: its acknowledged writes are no longer counted anywhere. */
  private unacked(b: Batch): void {
    if (b.ackedWrites > 0) this.ackedWrites -= b.ackedWrites;
    // A group of it acknowledged later (--sync: an fdatasync slower than LMDB) counts nowhere.
    b.ackedWrites = -1;
  }

  /** Rejects a batch that will never commit, and (the store being failed) every waiting job. */
  private abandon(b: Batch): void {
    this.unacked(b);
    const failure = this.failure as StoreError;
    for (const t of this.tables) t.settled?.(b);
    b.done?.reject(failure);
    for (const d of b.finished) d.reject(failure);
    for (const t of this.tables) t.abandonJobs?.(failure);
    this.backlogWrites = 0;
  }
}
