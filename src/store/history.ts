// Bounded per-key history (snapshot and price history): each write puts its entry and removes the
// oldest past the bound, all inside its flush's lmdb-js batch, so the per-key count stays exact.
//
// Why not inside an lmdb-js transaction callback (`root.transaction(fn)`, how this was written before
// the seventh session): lmdb-js runs such a callback on the JS thread while its write thread waits for
// it, holding the LMDB write lock. A process that exits (process.exit, an uncaught exception) while a
// flush with history is in flight never runs the callback, and Node's exit joins its thread pool, so
// the process hung in a futex wait for good (kriszyp/lmdb-js#336; here: a snapshot round in flight
// when a crash-restart bench exited, test/store-exit.test.ts). Without a callback, lmdb-js's write
// thread never waits on the JS thread.
//
// What the callback's reads saw (every earlier write, committed or not) comes from two places now: the
// committed entries (read on the main thread, which is the only writer) and the writes of flushes in
// flight, kept here until their flush settles. Memory: one count per key that has history, and one
// entry per history write of the flushes in flight (commitsInFlightMax flushes, each bounded).

import { asBinary, type Database, type Key } from 'lmdb';
import type { Batch, HistoryWrite } from './writeQueue.js';

/** A write of a flush in flight: put (true) or removed (false), by the flush that issued it last. */
interface Pending {
  put: boolean;
  batch: Batch;
}

export class BoundedHistory {
  /** Exact entry count per id, as of every write issued (in flight included). */
  private readonly counts = new Map<string, number>();
  /** The last write issued per (id, at) whose flush has not settled. */
  private readonly pending = new Map<string, Map<number, Pending>>();
  /** Per flush in flight, the (id, at) it wrote: forgotten when it settles. */
  private readonly byBatch = new Map<Batch, [string, number][]>();

  constructor(
    private readonly db: Database<unknown, Key>,
    private readonly keptMax: number,
    private readonly binary: boolean,
  ) {}

  /** Inside b's lmdb-js batch: each entry put, then the id's oldest removed while it has more than keptMax. */
  write(b: Batch, writes: readonly HistoryWrite[]): void {
    for (const w of writes) {
      let n = this.counts.get(w.id);
      // No write of this id was issued yet, so none is in flight: the committed count is exact.
      if (n === undefined) n = this.db.getKeysCount({ start: [w.id], end: [w.id, Infinity] });
      if (!this.exists(w.id, w.at)) n++;
      this.db.put([w.id, w.at], this.binary ? asBinary(w.value as Uint8Array) : w.value);
      this.mark(b, w.id, w.at, true);
      while (n > this.keptMax) {
        const oldest = this.oldest(w.id);
        if (oldest === undefined) break;
        this.db.remove([w.id, oldest]);
        this.mark(b, w.id, oldest, false);
        n--;
      }
      this.counts.set(w.id, n);
    }
  }

  /** b committed (its writes are in what the main thread reads now) or never will (the store failed). */
  settled(b: Batch): void {
    const written = this.byBatch.get(b);
    if (written === undefined) return;
    this.byBatch.delete(b);
    for (const [id, at] of written) {
      const ofId = this.pending.get(id);
      if (ofId?.get(at)?.batch !== b) continue;
      ofId.delete(at);
      if (ofId.size === 0) this.pending.delete(id);
    }
  }

  private exists(id: string, at: number): boolean {
    const p = this.pending.get(id)?.get(at);
    return p !== undefined ? p.put : this.db.doesExist([id, at]);
  }

  /** The id's oldest entry: the first committed one not removed in flight, or an older one put in flight. */
  private oldest(id: string): number | undefined {
    const ofId = this.pending.get(id);
    let oldest: number | undefined;
    for (const k of this.db.getKeys({ start: [id], end: [id, Infinity] })) {
      const at = (k as [string, number])[1];
      if (ofId?.get(at)?.put === false) continue;
      oldest = at;
      break;
    }
    if (ofId !== undefined) for (const [at, p] of ofId) if (p.put && (oldest === undefined || at < oldest)) oldest = at;
    return oldest;
  }

  private mark(b: Batch, id: string, at: number, put: boolean): void {
    let ofId = this.pending.get(id);
    if (ofId === undefined) this.pending.set(id, (ofId = new Map()));
    ofId.set(at, { put, batch: b });
    let written = this.byBatch.get(b);
    if (written === undefined) this.byBatch.set(b, (written = []));
    written.push([id, at]);
  }
}
