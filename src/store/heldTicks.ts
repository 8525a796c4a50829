// Held suspect ticks (engine/suspect.ts): the one tick per symbol the suspect filter holds until the
// next tick or an admin settles it. Kept here so a restart, clean or not, holds the same ticks
// instead of forgetting them (they were in memory only): a held print must not reach the books after
// a crash either, and an admin's pending decision must still be there. At most one entry per symbol
// (bounded by the symbol table); a hold or a settle goes in the same ordered flush as the audit event
// (SuspectTickHeld / Confirmed / Rejected) appended with it.

import type { Database, Key } from 'lmdb';
import { assert } from '../assert.js';
import { assertKeyPart } from './keys.js';
import type { Batch, HeldTickRecord, QueueTable, WriteQueue } from './writeQueue.js';

export type { HeldTickRecord } from './writeQueue.js';

/** Held ticks set or cleared in call order: a flush's, and a journal redo's. */
export function redoHeldTicks(db: Database<HeldTickRecord, Key>, held: readonly [string, HeldTickRecord | null][]): void {
  for (const [symbol, h] of held) {
    if (h === null) void db.remove(symbol);
    else void db.put(symbol, h);
  }
}

export class HeldTicks implements QueueTable {
  constructor(
    private readonly queue: WriteQueue,
    private readonly db: Database<HeldTickRecord, Key>,
  ) {}

  /** Enqueues the symbol's held tick (null: nothing held any more) for the next flush. */
  set(symbol: string, held: HeldTickRecord | null): void {
    assertKeyPart(symbol, 'held tick symbol');
    if (held !== null) assert(held.symbol === symbol && Number.isFinite(held.price) && held.price > 0 && Number.isFinite(held.tick_ts), 'a held tick needs its symbol, a price > 0 and a finite tick_ts');
    this.queue.queued.heldTicks.push([symbol, held]);
    this.queue.scheduleFlush();
  }

  load(): HeldTickRecord[] {
    const out: HeldTickRecord[] = [];
    for (const e of this.db.getRange({})) out.push(e.value);
    return out;
  }

  write(b: Batch): void {
    redoHeldTicks(this.db, b.heldTicks);
  }
}
