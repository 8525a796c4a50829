// Bounded per-key history (snapshot and price history): insert and prune the oldest inside the
// write transaction, so the per-key count stays exact.

import { asBinary, type Database, type Key } from 'lmdb';
import type { HistoryWrite } from './writeQueue.js';

export function insertBounded(db: Database<unknown, Key>, counts: Map<string, number>, keptMax: number, writes: HistoryWrite[], binary: boolean): void {
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
