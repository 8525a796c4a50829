// The ordered group-commit queue every LMDB table of the store writes through (see store.ts's header
// for why it flushes once per event-loop turn with setImmediate, one flush in flight).
//
// The queue owns the batch being filled, the one in flight, the failure state and the commit
// figures; the tables (log, trade results, snapshots, prices, compaction) own what goes into a batch
// and how it is written, and plug in as QueueTables in the order their writes go to LMDB.

import { performance } from 'node:perf_hooks';
import type { Database, Key, RootDatabase } from 'lmdb';
import { ErrorCode, type EngineError } from '../errors.js';
import type { LastPrice, StoredEvent } from '../domain/types.js';
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

export interface Removal {
  db: Database<unknown, Key>;
  key: Key;
}

/** A writeSnapshots or savePrices call, written a bounded chunk per flush. */
export interface Job<T> {
  items: readonly T[];
  next: number;
  done: Deferred;
}

/** What one flush writes, in call order within each list. */
export class Batch {
  events: StoredEvent[] = [];
  eventBins: Uint8Array[] = [];
  trades: { key: [string, string]; bin: Uint8Array; pending: string }[] = [];
  snapshots: { id: string; bin: Uint8Array }[] = [];
  snapshotHistory: HistoryWrite[] = [];
  prices: LastPrice[] = [];
  priceHistory: HistoryWrite[] = [];
  removals: Removal[] = [];
  meta: [string, unknown][] = [];
  /** Columnar snapshot segments, then their generation pointer (written after them) and stale segment keys. */
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

/** A table's part in a flush; every hook is optional and runs in table order. */
export interface QueueTable {
  /** Moves up to a bounded number of backlog items into the batch. */
  take?(b: Batch): void;
  /** Inside the lmdb-js batch (atomic): puts and removes that need no read. */
  write?(b: Batch): void;
  /** Inside the write transaction (on the main thread), so its reads see every earlier write. */
  writeHistory?(b: Batch): void;
  /** The batch committed, or will never commit. */
  settled?(b: Batch): void;
  hasBacklog?(): boolean;
  /** The job that will finish last, for barriers. */
  lastJob?(): Job<unknown> | undefined;
  /** The store failed: reject and drop every waiting job. */
  abandonJobs?(failure: StoreError): void;
}

export class WriteQueue {
  queued = new Batch();
  /**
   * The one flush submitted to lmdb-js and not yet durable. One, not more: a later transaction can
   * then never commit after an earlier one failed (no hole in the seqs), `durable` promises resolve
   * strictly in order (with several in flight we saw lmdb-js resolve them out of order), each flush
   * is exactly one LMDB transaction, and appends made meanwhile share the next commit.
   */
  inFlight: Batch | null = null;
  failure: StoreError | null = null;
  /** Items of the tables' jobs (snapshot records, prices) not yet taken into a batch. */
  backlogWrites = 0;
  commitsTotal = 0;
  commitSecondsSum = 0;
  lastCommitSeconds = 0;
  private flushScheduled = false;
  private readonly tables: QueueTable[] = [];
  private readonly commitListeners = new Set<(seconds: number, events: number) => void>();

  constructor(
    private readonly root: RootDatabase,
    private readonly sync: boolean,
  ) {}

  /** Tables write in the order they are added. */
  add(table: QueueTable): void {
    this.tables.push(table);
  }

  pendingWrites(): number {
    return this.queued.writes + (this.inFlight === null ? 0 : this.inFlight.writes);
  }

  /** The promise of the queued flush: it resolves after every earlier flush (one in flight at a time). */
  queuedDone(): Promise<void> {
    if (this.failure !== null) return this.rejected();
    if (this.queued.done === null) this.queued.done = deferred();
    return this.queued.done.promise;
  }

  /** Resolves when everything enqueued so far is durable. */
  barrier(): Promise<void> {
    if (this.failure !== null) return this.rejected();
    const waits: Promise<void>[] = [];
    if (!this.queued.empty) waits.push(this.queuedDone());
    else if (this.inFlight?.done) waits.push(this.inFlight.done.promise);
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
    return this.inFlight !== null || !this.queued.empty || this.hasBacklog();
  }

  onCommit(listener: (seconds: number, events: number) => void): () => void {
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
    // One flush in flight: the next one starts when it is done, with everything enqueued meanwhile.
    if (this.inFlight !== null || (this.queued.empty && !this.hasBacklog())) return;
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

  private writeSingles(b: Batch): void {
    for (const t of this.tables) t.write?.(b);
  }

  /** Runs inside the write transaction (on the main thread), so its reads see every earlier write. */
  private writeHistory(b: Batch): void {
    for (const t of this.tables) t.writeHistory?.(b);
  }

  private committed(b: Batch, seconds: number): void {
    this.inFlight = null;
    this.commitsTotal++;
    this.commitSecondsSum += seconds;
    this.lastCommitSeconds = seconds;
    for (const t of this.tables) t.settled?.(b);
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
    for (const t of this.tables) t.settled?.(b);
    b.done?.reject(failure);
    for (const d of b.finished) d.reject(failure);
    for (const t of this.tables) t.abandonJobs?.(failure);
    this.backlogWrites = 0;
  }
}
