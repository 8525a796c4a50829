// Portfolio snapshots: the current record per portfolio plus a bounded history (time travel), written
// through the same queue as the events, snapshotsPerFlushMax records per flush.

import { asBinary, type Database, type Key } from 'lmdb';
import { assert } from '../assert.js';
import type { PortfolioRecord } from '../domain/types.js';
import { BoundedHistory } from './history.js';
import { assertKeyPart, encoderOf, keyPart, type Encoder } from './keys.js';
import { deferred, type Batch, type Job, type QueueTable, type StoreError, type WriteQueue } from './writeQueue.js';

export class Snapshots implements QueueTable {
  private readonly recordJobs: Job<PortfolioRecord>[] = [];
  /** The history db's writes, bounded per portfolio (history.ts). */
  private readonly history: BoundedHistory;
  private readonly recordEncoder: Encoder;

  constructor(
    private readonly queue: WriteQueue,
    private readonly snapshots: Database<PortfolioRecord, Key>,
    private readonly snapshotHistory: Database<PortfolioRecord, Key>,
    snapshotsKeptMax: number,
    private readonly snapshotsPerFlushMax: number,
  ) {
    this.recordEncoder = encoderOf(snapshots);
    this.history = new BoundedHistory(snapshotHistory as Database<unknown, Key>, snapshotsKeptMax, true);
  }

  writeSnapshots(records: readonly PortfolioRecord[]): Promise<void> {
    if (this.queue.failure !== null) return this.queue.rejected();
    if (records.length === 0) return this.queue.barrier();
    for (const r of records) {
      assertKeyPart(r.portfolio.id, 'record portfolio.id');
      assert(Number.isFinite(r.as_of) && Number.isFinite(r.covered_seq), 'record needs a finite as_of and covered_seq');
    }
    // Written by later flushes, a bounded chunk each: every one of them commits with or after the
    // events appended before this call, which is all the ordering a snapshot needs.
    const job: Job<PortfolioRecord> = { items: records.slice(), next: 0, done: deferred() };
    this.recordJobs.push(job);
    this.queue.backlogWrites += records.length;
    this.queue.scheduleFlush();
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

  /**
   * The smallest covered_seq of the portfolio's kept snapshots (current and the oldest history entry,
   * which has the smallest when covered_seq grows with as_of); null when it has no snapshot.
   */
  coveredSeq(portfolioId: string): number | null {
    const current = this.snapshots.get(portfolioId);
    if (current === undefined) return null;
    let c = current.covered_seq;
    for (const h of this.snapshotHistory.getRange({ start: [portfolioId], end: [portfolioId, Infinity], limit: 1 })) c = Math.min(c, h.value.covered_seq);
    return c;
  }

  /** Moves up to snapshotsPerFlushMax records from the backlog into the batch, encoding each once. */
  take(b: Batch): void {
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
          this.queue.backlogWrites--;
        }
      } catch (err) {
        // A record the encoder cannot write is the caller's bug: reject its call, keep the store.
        this.queue.backlogWrites -= job.items.length - job.next;
        this.recordJobs.shift();
        job.done.reject(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (job.next < job.items.length) break;
      this.recordJobs.shift();
      b.finished.push(job.done);
    }
  }

  write(b: Batch): void {
    for (const s of b.snapshots) this.snapshots.put(s.id, asBinary(s.bin) as unknown as PortfolioRecord);
    this.history.write(b, b.snapshotHistory);
  }

  settled(b: Batch): void {
    this.history.settled(b);
  }

  hasBacklog(): boolean {
    return this.recordJobs.length > 0;
  }

  lastJob(): Job<PortfolioRecord> | undefined {
    return this.recordJobs[this.recordJobs.length - 1];
  }

  abandonJobs(failure: StoreError): void {
    for (const job of this.recordJobs) job.done.reject(failure);
    this.recordJobs.length = 0;
  }
}
