// Recent results per partition (docs/CLUSTER.md, "Take-over and dropping"): the trade and command
// results an owner applied lately, kept so they travel with the partition's shipped snapshot. A
// publish JetStream reports as a duplicate (the same Nats-Msg-Id within the dedup window) is sent
// again without an id and answered from the owner's trade-id and command-id memory; a node that took
// the partition from a snapshot has no memory of what the snapshot includes, and without these it
// would apply such a resend a second time. Bounded: per partition the newest recentResultsMax, and
// only those whose stream message is within the dedup window of the newest are shipped.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { partitionOf } from './partition.js';

/** Results kept per partition (oldest dropped first); a partition busier than this per dedup window ships only the newest. */
export const recentResultsMax = 4_096;

export interface RecentResult {
  portfolio_id: string;
  /** A trade id, or a command id's key (engine/streamPosition.ts commandKey). */
  trade_id: string;
  /** What the store keeps for it (store.tradeResult answers it). */
  result: unknown;
  /** The stream message's time (epoch ms). */
  ts: number;
}

export class RecentResults {
  private readonly rings: RecentResult[][];

  constructor(
    partitions: number,
    private readonly windowMs: number,
  ) {
    this.rings = Array.from({ length: partitions }, () => []);
  }

  add(partition: number, r: RecentResult): void {
    const ring = this.rings[partition];
    ring.push(r);
    // Trimmed in bulk: amortised O(1) per add, at most 2 x recentResultsMax held.
    if (ring.length >= 2 * recentResultsMax) ring.splice(0, ring.length - recentResultsMax);
  }

  /** What a ship carries: the newest recentResultsMax within the dedup window of the newest. */
  shipped(partition: number): RecentResult[] {
    const ring = this.rings[partition];
    if (ring.length === 0) return [];
    const since = ring[ring.length - 1].ts - this.windowMs;
    const out: RecentResult[] = [];
    for (let i = Math.max(0, ring.length - recentResultsMax); i < ring.length; i++) if (ring[i].ts >= since) out.push(ring[i]);
    return out;
  }

  /** A partition taken from a snapshot starts from the results it carried; a dropped one from none. */
  reset(partition: number, from: readonly RecentResult[] = []): void {
    this.rings[partition] = from.slice(-recentResultsMax);
  }
}

export function encodeRecentResults(results: readonly RecentResult[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(results.map((r) => [r.portfolio_id, r.trade_id, r.result, r.ts])));
}

/** The results segment of a shipped snapshot, each checked: a portfolio of the partition, an id, a time. */
export function decodeRecentResults(bytes: Uint8Array, partition: number, partitions: number): Result<RecentResult[]> {
  const bad = (rule: string): Result<never> => fail(ErrorCode.invalid_field, `snapshot results: ${rule}`, 'snapshot');
  let rows: unknown;
  try {
    rows = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return bad('not JSON');
  }
  if (!Array.isArray(rows) || rows.length > recentResultsMax) return bad(`an array of at most ${recentResultsMax} rows expected`);
  const out: RecentResult[] = [];
  for (const row of rows) {
    if (!Array.isArray(row) || row.length !== 4) return bad('each row is [portfolio_id, id, result, ts]');
    const [portfolio, id, result, ts] = row as unknown[];
    if (typeof portfolio !== 'string' || partitionOf(portfolio, partitions) !== partition) return bad(`portfolio ${JSON.stringify(portfolio)} is not of partition ${partition}`);
    if (typeof id !== 'string' || id.length === 0 || id.length > 256) return bad(`id ${JSON.stringify(id)} must be a string of 1..256 characters`);
    if (typeof result !== 'object' || result === null) return bad(`the result of ${id} must be an object`);
    if (typeof ts !== 'number' || !Number.isFinite(ts)) return bad(`the time of ${id} must be a finite number`);
    out.push({ portfolio_id: portfolio, trade_id: id, result, ts });
  }
  return ok(out);
}
