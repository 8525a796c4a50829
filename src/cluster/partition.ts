// Portfolio -> partition placement for the cluster (docs/CLUSTER.md). The same FNV-1a hash as the
// shard placement, so it is stable across processes and machines; the count is fixed for the life
// of a cluster (recorded in the cluster's KV bucket; a node started with another count is refused),
// because moving a portfolio between partitions would split its command history across two streams.

import { hashOf } from '../engine/shardOf.js';

/** Largest partition count a cluster accepts: one KV key and one consumer filter per partition. */
export const partitionsMax = 4096;
export const partitionsDefault = 64;

export function partitionOf(portfolioId: string, partitions: number): number {
  return hashOf(portfolioId) % partitions;
}
