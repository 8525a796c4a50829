// The stream cursor table: per cluster partition, the sequence of the last command-stream message
// this node applied (docs/CLUSTER.md). It is written into the same write-queue batch as the events
// the message produced, so both commit in one LMDB transaction: after a crash either the events and
// the cursor are there, or neither is, and the consumer resumes after the cursor. That is what makes
// a JetStream redelivery exactly-once here (a message at or below the cursor is skipped). Keys live
// in the meta database (`streamCursor:<partition>`); the store knows nothing else about the cluster.

import type { Database, Key } from 'lmdb';
import { assert } from '../assert.js';
import type { WriteQueue } from './writeQueue.js';

const keyOf = (partition: number): string => `streamCursor:${partition}`;

export class StreamCursors {
  /** Cursors enqueued and maybe not yet committed, so a read sees its own writes; one per partition. */
  private readonly enqueued = new Map<number, number>();

  constructor(
    private readonly queue: WriteQueue,
    private readonly meta: Database<unknown, Key>,
  ) {}

  /** The last applied sequence of the partition (0: none), including a write still in flight. */
  get(partition: number): number {
    const queued = this.enqueued.get(partition);
    if (queued !== undefined) return queued;
    const v = this.meta.get(keyOf(partition));
    return typeof v === 'number' ? v : 0;
  }

  /**
   * Enqueues the cursor into the batch being filled: it commits in the same transaction as every
   * event appended in this event-loop turn before the next flush. Only moves forward.
   */
  advance(partition: number, seq: number): void {
    assert(Number.isSafeInteger(partition) && partition >= 0 && Number.isSafeInteger(seq) && seq >= 0, 'stream cursor: partition and seq are integers >= 0');
    if (seq <= this.get(partition)) return;
    this.set(partition, seq);
  }

  /**
   * Enqueues the cursor as it is, backwards too: a partition rebuilt from a shipped snapshot restarts
   * at that snapshot's sequence (its books replace whatever this node applied before).
   */
  set(partition: number, seq: number): void {
    assert(Number.isSafeInteger(partition) && partition >= 0 && Number.isSafeInteger(seq) && seq >= 0, 'stream cursor: partition and seq are integers >= 0');
    this.enqueued.set(partition, seq);
    this.queue.queued.meta.push([keyOf(partition), seq]);
    this.queue.scheduleFlush();
  }
}
