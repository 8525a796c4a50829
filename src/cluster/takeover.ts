// The take-over station (docs/CLUSTER.md, "Take-over and dropping"): what a node does with a partition's
// books when it gains the partition, and when it loses it.
//
// Gain: read the partition's shipped snapshot (mtm_snapshots/p<n>, bounded reads retried a bounded
// number of times) and choose where the partition's state comes from:
//   - this engine's own copy, when it is there and its stream cursor is at or above the snapshot's
//     sequence (the copy is then exactly the state after its cursor: books and cursor commit in one
//     store transaction, and a copy stops changing the moment the partition is lost, because it is
//     dropped); the consumer resumes at cursor + 1;
//   - the snapshot, when its sequence is above the cursor, or when this node dropped its copy: the
//     engine's books of the partition (a stale copy) are replaced by the snapshot's, the cursor is set
//     to the snapshot's sequence in the same store transaction (engine.adoptBooks), and the consumer
//     starts at sequence + 1;
//   - nothing, when there is no snapshot and no copy: the consumer replays the stream from 1.
// The stream is purged only below a shipped snapshot (node.ts, after a confirmed put), so cursor + 1
// is never below the stream's first kept message on the partition's subject in the first case, and
// never needed in the second. The guard (before the consumer delivers anything) reads the object's
// sequence once more: above the starting cursor means the stream may have a gap there ("load the
// snapshot"): the take fails, the claim is given back, and the next claim loads the newer snapshot.
//
// Lose: the partition's books leave the engine and its cursor goes back to 0, in one store
// transaction (engine.dropPortfolios), after the consumer's last apply: nothing revalues or serves
// the copy any more, and a later gain rebuilds from the snapshot.

import { performance } from 'node:perf_hooks';
import type { Engine } from '../engine/api.js';
import type { PartitionImage, SnapshotShipper } from './snapshotShipper.js';
import { partitionOf } from './partition.js';
import { readSnapshotStrings } from '../shard/snapshotCodec.js';
import { decodeRecentResults, type RecentResults } from './recentResults.js';
import { decodeCarry, type Carry } from './carry.js';
import { partitionScope } from './commandConsumer.js';
import { decodeIds } from './idsSegment.js';
import { carriedIdResult } from '../engine/commit.js';

export const takeoverDefaults = {
  /** One blob read of a shipped snapshot may take this long before it is abandoned and retried. */
  snapshotReadTimeoutMs: 1_000,
  /** Blob reads of one take-over (each bounded by snapshotReadTimeoutMs); then the take fails and the claim is given back. */
  snapshotReadAttemptsMax: 3,
} as const;

/** Wait between two reads of a snapshot object that timed out or was replaced meanwhile. */
export const snapshotReadRetryMs = 100;

export interface TakeoverOptions {
  partitions: number;
  snapshotReadTimeoutMs: number;
  snapshotReadAttemptsMax: number;
  /** The most ids an ids segment may hold (--cluster-snapshot-ids-max); a segment past it is refused. */
  snapshotIdsMax: number;
  log: (line: string) => void;
}

export interface TakeoverPlan {
  /** Where the partition's state comes from. */
  source: 'local' | 'snapshot' | 'stream';
  /** The cursor the consumer starts after. */
  cursor: number;
  /** Books loaded from the snapshot (0 unless source is 'snapshot'). */
  portfolios: number;
  /** Time spent reading and loading the snapshot (ms). */
  loadMs: number;
}

export class TakeoverError extends Error {
  override name = 'TakeoverError';
}

export class Takeover {
  /** Partitions whose books this process dropped and did not load again: their local copy is gone. */
  private readonly dropped = new Set<number>();
  readonly counts = { fromSnapshot: 0, fromLocal: 0, fromStream: 0, dropped: 0, portfoliosDropped: 0, portfoliosLoaded: 0, actionsCarried: 0, instrumentsCarried: 0, idsCarried: 0 };

  constructor(
    private readonly engine: Engine & { portfolioIds(keep: (id: string) => boolean): string[] },
    private readonly shipper: SnapshotShipper,
    private readonly recent: RecentResults,
    private readonly o: TakeoverOptions,
  ) {}

  /** The shipped image, read at most snapshotReadAttemptsMax times (each bounded); throws after that. */
  async readImage(partition: number): Promise<PartitionImage | null> {
    let last = '';
    for (let attempt = 1; attempt <= this.o.snapshotReadAttemptsMax; attempt++) {
      const r = await this.shipper.latest(partition, this.o.snapshotReadTimeoutMs);
      if (r.ok) return r.value;
      last = r.error.message;
      if (r.error.retryable !== true) break;
      this.o.log(`cluster: partition ${partition}: snapshot read ${attempt} of ${this.o.snapshotReadAttemptsMax} failed: ${last}`);
      await new Promise((resolve) => setTimeout(resolve, snapshotReadRetryMs));
    }
    throw new TakeoverError(`partition ${partition}: shipped snapshot not read: ${last}`);
  }

  /** Chooses the partition's source and loads the snapshot when that is it; throws when it cannot. */
  async prepare(partition: number): Promise<TakeoverPlan> {
    const started = performance.now();
    const image = await this.readImage(partition);
    const cursor = this.engine.streamCursor(partition);
    const shipped = image?.seq ?? 0;
    const copyGone = this.dropped.has(partition);
    if (!copyGone && cursor >= shipped) {
      if (cursor > 0) this.counts.fromLocal++;
      else this.counts.fromStream++;
      return { source: cursor > 0 ? 'local' : 'stream', cursor, portfolios: 0, loadMs: performance.now() - started };
    }
    const stale = this.idsOf(partition);
    if (image === null) {
      this.recent.reset(partition);
      // Dropped here and nothing shipped since: the stream holds the whole partition (it is purged only
      // below a shipped snapshot). Start from nothing, at sequence 0.
      const r = await this.engine.adoptBooks([], { partition, seq: 0 }, stale);
      if (!r.ok) throw new TakeoverError(`partition ${partition}: not reset: ${r.error.message}`);
      this.dropped.delete(partition);
      this.counts.fromStream++;
      return { source: 'stream', cursor: 0, portfolios: 0, loadMs: performance.now() - started };
    }
    const strange = this.foreignIds(image, partition);
    if (strange !== null) throw new TakeoverError(`partition ${partition}: the snapshot at stream seq ${image.seq} is refused: ${strange}`);
    const results = image.results === null ? { ok: true as const, value: [] } : decodeRecentResults(image.results, partition, this.o.partitions);
    if (!results.ok) throw new TakeoverError(`partition ${partition}: the snapshot at stream seq ${image.seq} is refused: ${results.error.message}`);
    const carried = image.ids === null ? { ok: true as const, value: new Map<string, string[]>() } : decodeIds(image.ids, partition, this.o.partitions, this.o.snapshotIdsMax);
    if (!carried.ok) throw new TakeoverError(`partition ${partition}: the snapshot at stream seq ${image.seq} is refused: ${carried.error.message}`);
    // The ids the recent results do not cover are stored as applied with no result (carriedIdResult):
    // a resend of one is answered as a duplicate with the portfolio as it is now (engine/commit.ts).
    const known = new Set(results.value.map((x) => x.portfolio_id + '\u0000' + x.trade_id));
    const stored: { portfolio_id: string; trade_id: string; result: unknown }[] = [...results.value];
    for (const [portfolio, ids] of carried.value) for (const id of ids) if (!known.has(portfolio + '\u0000' + id)) stored.push({ portfolio_id: portfolio, trade_id: id, result: carriedIdResult });
    const carry = image.carry === null ? null : decodeCarry(image.carry);
    if (carry !== null && !carry.ok) throw new TakeoverError(`partition ${partition}: the snapshot at stream seq ${image.seq} is refused: ${carry.error.message}`);
    // Before the books and their cursor: a take that fails between the two loads this snapshot again
    // (the cursor is still below it), and restoring the same carry twice ends in the same state.
    if (carry !== null) await this.restoreCarry(partition, image.seq, carry.value);
    const r = await this.engine.adoptBooks(image.segments, { partition, seq: image.seq }, stale, stored);
    if (!r.ok) {
      // The stale copy may be gone from the shards already: the next take must not trust it.
      if (stale.length > 0) this.dropped.add(partition);
      throw new TakeoverError(`partition ${partition}: snapshot at stream seq ${image.seq} not loaded: ${r.error.message}`);
    }
    this.dropped.delete(partition);
    this.recent.reset(partition, results.value);
    this.counts.fromSnapshot++;
    this.counts.portfoliosLoaded += r.value;
    this.counts.idsCarried += stored.length - results.value.length;
    return { source: 'snapshot', cursor: image.seq, portfolios: r.value, loadMs: performance.now() - started };
  }

  /**
   * What the purged stream below the snapshot held besides the books: the partition's scoped corporate
   * actions replace this engine's (a stale scope of a copy it dropped included), and each instrument
   * definition is applied (one in force already changes nothing; one refused, instrument_held for a
   * symbol this node holds at another multiplier, is logged, as the consumer logs it).
   */
  private async restoreCarry(partition: number, seq: number, carry: Carry): Promise<void> {
    for (const i of carry.instruments) {
      const { symbol, ...input } = i;
      const d = await this.engine.defineInstrument(symbol, input);
      if (!d.ok) {
        if (d.error.retryable === true) throw new TakeoverError(`partition ${partition}: instrument ${symbol} of the snapshot at stream seq ${seq} not defined: ${d.error.message}`);
        this.o.log(`cluster: partition ${partition}: instrument ${symbol} of the snapshot at stream seq ${seq} refused: ${d.error.message}`);
      }
    }
    const r = await this.engine.corporateRestoreIn(partitionScope(partition, this.o.partitions), carry.actions);
    if (!r.ok) throw new TakeoverError(`partition ${partition}: corporate actions of the snapshot at stream seq ${seq} not restored: ${r.error.message}`);
    this.counts.actionsCarried += carry.actions.length;
    this.counts.instrumentsCarried += carry.instruments.length;
  }

  /**
   * The gap check before the consumer delivers anything: the shipped sequence above the cursor it
   * starts after means the stream may be purged past it. Answers the reason, or null.
   */
  async gap(partition: number, cursor: number): Promise<string | null> {
    const shipped = await this.shipper.shippedSeq(partition);
    return shipped > cursor ? `the stream may be purged below the shipped snapshot's sequence ${shipped}, above this node's cursor ${cursor}: load the snapshot` : null;
  }

  /** The partition's books leave the engine, its cursor back to 0 (one store transaction). */
  async drop(partition: number): Promise<number> {
    this.dropped.add(partition);
    const ids = this.idsOf(partition);
    this.recent.reset(partition);
    const n = await this.engine.dropPortfolios(ids, { partition, seq: 0 });
    this.counts.dropped++;
    this.counts.portfoliosDropped += n;
    return n;
  }

  /** Whether this engine holds books of the partition (a stale copy after a restart, say). */
  holds(partition: number): boolean {
    return this.idsOf(partition).length > 0;
  }

  /** Why the image's books are not all of the partition (null: they are); the engine checks the rest. */
  private foreignIds(image: PartitionImage, partition: number): string | null {
    let ids: string[];
    try {
      ids = readSnapshotStrings(image.segments).ids;
    } catch (err) {
      return `its strings segment does not decode: ${(err as Error).message}`;
    }
    if (!Array.isArray(ids)) return 'its strings segment lists no portfolio ids';
    const other = ids.find((id) => typeof id !== 'string' || partitionOf(id, this.o.partitions) !== partition);
    return other === undefined ? null : `portfolio ${JSON.stringify(other)} is not of partition ${partition}`;
  }

  private idsOf(partition: number): string[] {
    const P = this.o.partitions;
    return this.engine.portfolioIds((id) => partitionOf(id, P) === partition);
  }
}
