// Retention: removes events older than now - keepEventsMs that every kept snapshot of their portfolio
// covers, in bounded steps (compactScannedPerCallMax index entries a call), through the write queue.

import type { Database, Key } from 'lmdb';
import { replayedEventTypes, type StoredEvent } from '../domain/types.js';
import type { EventIndex } from './eventIndex.js';
import type { Snapshots } from './snapshots.js';
import type { Batch, QueueTable, WriteQueue } from './writeQueue.js';

export class Compaction implements QueueTable {
  private compacting: Promise<{ removed: number; more: boolean }> | null = null;
  /** Where the next compact() resumes in the time index; null = from the oldest entry. */
  private compactResume: [number, number] | null = null;

  constructor(
    private readonly queue: WriteQueue,
    private readonly log: EventIndex,
    private readonly snapshots: Snapshots,
    private readonly keepEventsMs: number | null,
    private readonly compactScannedMax: number,
  ) {}

  compact(now: number): Promise<{ removed: number; more: boolean }> {
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

  /** The call in progress, if any (close waits for it). */
  running(): Promise<{ removed: number; more: boolean }> | null {
    return this.compacting;
  }

  private async compactOnce(cutoff: number): Promise<{ removed: number; more: boolean }> {
    if (this.queue.failure !== null) throw this.queue.failure;
    // It finds events through the time index: what waits for the lagging index is indexed first.
    await this.log.caughtUp();
    const coverage = new Map<string, number | null>();
    const q = this.queue.queued;
    const log = this.log;
    let removed = 0;
    let scanned = 0;
    let last: [number, number] | null = null;
    const range = {
      start: this.compactResume ?? undefined,
      exclusiveStart: this.compactResume !== null,
      end: [cutoff],
      limit: this.compactScannedMax,
    };
    const byTs = log.byTs as Database<unknown, Key>;
    // An entry is a seq or a run of seqs at one ts (eventIndex.ts TimeRun); each seq counts in the budget.
    for (const { key, value } of log.byTs.getRange(range)) {
      const [ts, first] = key as [number, number];
      const lastSeq = typeof value === 'number' ? value : first;
      last = [ts, first];
      const kept: number[] = [];
      for (let seq = first; seq <= lastSeq; seq++) {
        scanned++;
        const e = log.events.get(seq);
        // Gone already (an orphan entry, or a run's seq removed before): nothing to keep.
        if (e === undefined) continue;
        if (!this.covered(e, coverage)) {
          kept.push(seq);
          continue;
        }
        q.removals.push(
          { db: log.events as Database<unknown, Key>, key: seq },
          { db: log.byPortfolio as Database<unknown, Key>, key: [e.portfolio_id, seq] },
          { db: log.byType as Database<unknown, Key>, key: [e.type, seq] },
        );
        removed++;
      }
      if (kept.length < lastSeq - first + 1) {
        // What is left of the entry stays findable by time: one entry per seq kept.
        q.removals.push({ db: byTs, key: [ts, first] });
        for (const seq of kept) q.removals.push({ db: byTs, key: [ts, seq], put: { value: null } });
      }
      if (scanned >= this.compactScannedMax) break;
    }
    // A full budget means more may follow: resume after the last key; otherwise start over next time.
    const more = scanned >= this.compactScannedMax;
    this.compactResume = more ? last : null;
    if (q.removals.length === 0) return { removed: 0, more };
    this.queue.scheduleFlush();
    await this.queue.queuedDone();
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
      c = this.snapshots.coveredSeq(e.portfolio_id);
      cache.set(e.portfolio_id, c);
    }
    if (c === null) return !replayedEventTypes.has(e.type);
    return e.seq <= c;
  }

  write(b: Batch): void {
    for (const r of b.removals) {
      if (r.put === undefined) r.db.remove(r.key);
      else r.db.put(r.key, r.put.value);
    }
  }
}
