// The columnar snapshots' generation pointer and what one snapshot round writes (shardSnapshots.ts).

/** What recovery reads: which generation, how many shards wrote it, each shard's covered_seq. */
export interface ShardSnapshotPointer {
  generation: number;
  shards: number;
  /** Segments per shard (each shard writes the same segments, in order). */
  segments: number;
  covered: number[];
  as_of: number;
  /**
   * Written by a clean shutdown and not used by a boot since: its seqs are exact, so the boot right
   * after it shows the same seqs. Cleared by the next boot (takeSeqEpoch), in its first commit.
   */
  clean: boolean;
}

/** One snapshot round of every shard: its raw segments, stored as they are. */
export interface ShardSnapshotWrite {
  covered: number[];
  as_of: number;
  clean: boolean;
  /** Per shard, its segments in order. */
  shards: Uint8Array[][];
}

