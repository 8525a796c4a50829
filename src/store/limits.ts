// The store's limits and their defaults (StoreOptions overrides them per store).

/** Named databases in the environment (14 used), with room for a later version; every open (store.ts, logReader.ts) passes it. */
export const databasesMax = 16;

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
  /**
   * Flushes submitted to lmdb-js and not yet settled: while one is written and fdatasync'ed, the
   * next ones are gathered and queued behind it. More than a few only makes commits smaller.
   */
  commitsInFlightMax: 4,
  /**
   * The lagging index transaction (eventIndex.ts): the index entries of this many events (and as many
   * trade-result keys) go in one flush, so each random-key leaf page takes many entries per write;
   * bounded so that flush stays short (about 4 puts an event).
   */
  indexEventsPerFlushMax: 8_192,
  /** An event's index entries wait at most this long for their chunk to fill (a quiet store indexes soon). */
  indexLagMaxMs: 1_000,
  /**
   * Events (or trade results) whose index entries are not yet in a flush before overloaded() turns
   * true: eight chunks. Each flush takes one chunk, so a sustained rate above that would grow it.
   */
  indexLaggingMax: 65_536,
  /**
   * The journal (journal.ts): a segment file is closed and the next one started past this size; a
   * closed segment is deleted once LMDB's flushed state covers its last group.
   */
  journalSegmentBytesMax: 16 * 1024 * 1024,
  /**
   * Journal bytes LMDB has not committed yet before overloaded() turns true (commands refused,
   * retryable, until LMDB catches up): bounds the redo a crash leaves and the appends held in memory
   * for LMDB (acknowledged writes no longer count in pendingWrites). LMDB normally lags by a commit or
   * two (a few hundred trades of ~0.5 KB); 16 MiB is tens of thousands of trades.
   */
  journalLagBytesMax: 16 * 1024 * 1024,
  /**
   * --sync: journal groups written and waiting for an fdatasync before overloaded() turns true (one
   * fdatasync covers every group written before it starts, so this many mean the disk is behind).
   */
  journalUnsyncedGroupsMax: 1_024,
  /** Journal bytes redone into LMDB in one transaction at open (bounds its memory and size). */
  journalRedoTransactionBytesMax: 8 * 1024 * 1024,
  /** Snapshot records encoded and written per flush: bounds the main-thread time of one flush. */
  snapshotsPerFlushMax: 200,
  /** Prices written per flush, for the same reason. */
  pricesPerFlushMax: 1_000,
  /**
   * How long a starting engine waits for a data directory whose owner holds the lock but does not
   * answer (dying: kill -9 closes the worker threads' descriptors after the main one) before it
   * refuses; a live owner is refused at once, a dead one never blocks (lock.ts).
   */
  ownerDyingWaitMs: 5_000,
  queryLimitDefault: 100,
  queryLimitMax: 1_000,
} as const;
