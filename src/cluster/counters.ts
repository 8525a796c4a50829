// The cluster's counters, in one place: every cluster station adds to the ClusterCounters of its node,
// /metrics reads them at scrape time (src/metrics/engineMetrics.ts, attachCluster) and `mtm cluster
// status` asks every node for them (src/cluster/status.ts). Plain numbers and one typed array, so a
// station's hot path only adds.

import type { OwnershipView } from './types.js';

/** Where a refused cluster message came from: the `source` label of mtm_cluster_bad_input_total. */
export const clusterInputSources = ['commands', 'kv', 'ticks', 'updates', 'rpc'] as const;
export type ClusterInputSource = (typeof clusterInputSources)[number];

export class ClusterCounters {
  /** Ownership rounds that claimed or released at least one partition on this node. */
  rebalances = 0;
  /** Writes refused because this node had lost the partition's revision (a stale owner, fenced). */
  fencedWrites = 0;
  /** Cluster messages refused as malformed or foreign (logged and counted; nothing applied). */
  readonly badInput: Record<ClusterInputSource, number> = { commands: 0, kv: 0, ticks: 0, updates: 0, rpc: 0 };
  /** Delta records this node received from other owners and relayed to its own subscribers. */
  updatesRelayed = 0;
  /**
   * Per partition: command-stream messages after the last one this node applied, as its consumer last
   * saw them (JetStream's num_pending of the delivered message). Set by the partition's consumer.
   */
  readonly consumerPending: Float64Array;

  constructor(readonly partitions: number) {
    this.consumerPending = new Float64Array(partitions);
  }

  /** Command-stream messages not yet applied over the partitions this node owns. */
  consumerLagMessages(view: OwnershipView): number {
    let lag = 0;
    for (let p = 0; p < this.partitions; p++) if (view.owns(p)) lag += this.consumerPending[p];
    return lag;
  }
}

/** What /metrics and `mtm cluster status` read of one node. */
export interface ClusterReadings {
  readonly nodeId: string;
  readonly partitions: number;
  readonly partitionsOwned: number;
  /** Partitions with no owner as this node sees the ownership bucket now. */
  readonly partitionsUnowned: number;
  readonly consumerLagMessages: number;
  readonly rebalances: number;
  readonly fencedWrites: number;
  readonly badInput: Readonly<Record<ClusterInputSource, number>>;
  readonly updatesRelayed: number;
}

export function clusterReadings(view: OwnershipView, c: ClusterCounters): ClusterReadings {
  let owned = 0;
  let unowned = 0;
  for (let p = 0; p < view.partitions; p++) {
    if (view.owns(p)) owned++;
    else if (view.ownerOf(p) === undefined) unowned++;
  }
  return {
    nodeId: view.nodeId,
    partitions: view.partitions,
    partitionsOwned: owned,
    partitionsUnowned: unowned,
    consumerLagMessages: c.consumerLagMessages(view),
    rebalances: c.rebalances,
    fencedWrites: c.fencedWrites,
    badInput: { ...c.badInput },
    updatesRelayed: c.updatesRelayed,
  };
}
