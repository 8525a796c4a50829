// History: reads of the past. The event log (queryEvents) and a portfolio as it was at an instant
// (snapshotAt, rebuilt by timeTravel.ts), both answered only after everything acknowledged so far
// is committed.

import { engineClosed, ErrorCode, fail, ok, type Result } from '../errors.js';
import type { PortfolioSnapshot, StoredEvent } from '../domain/types.js';
import type { Store } from '../store/store.js';
import type { EventQuery } from './api.js';
import type { Commit } from './commit.js';
import { knownPortfolio, type Directory } from './directory.js';
import type { Lifecycle } from './lifecycle.js';
import type { ResolvedOptions } from './options.js';
import { timeTravel } from './timeTravel.js';

export interface HistoryDeps {
  o: ResolvedOptions;
  life: Lifecycle;
  store: Store;
  directory: Directory;
  commit: Commit;
}

export class History {
  constructor(private readonly d: HistoryDeps) {}

  async queryEvents(query: EventQuery): Promise<Result<StoredEvent[]>> {
    if (this.d.life.closed) return engineClosed();
    // The store reads fields off the query: anything but an object threw (found by the simulator, seed 4).
    if (typeof query !== 'object' || query === null || Array.isArray(query)) return fail(ErrorCode.invalid_field, 'query must be an object', 'query');
    await this.d.commit.durable().catch(() => undefined);
    return ok(this.d.store.query(query));
  }

  async snapshotAt(portfolioId: string, timestamp: number): Promise<Result<PortfolioSnapshot>> {
    const k = knownPortfolio(this.d.directory, portfolioId);
    if (!k.ok) return k;
    if (!Number.isFinite(timestamp)) return fail(ErrorCode.invalid_timestamp, 'as_of must be a valid instant', 'as_of');
    if (this.d.life.closing) return engineClosed();
    // Everything acknowledged so far is committed: the log plus kept snapshots answer from here.
    await this.d.commit.durable().catch(() => undefined);
    return timeTravel(this.d.store, k.value, timestamp, this.d.o.staleAfterMs, this.d.o.fxPivot);
  }
}
