// One reading of the engine's and server's cumulative counters, taken once a second by EngineMetrics'
// sampler into a 60-slot ring. The performance summary turns two readings into rates and last-minute
// quantiles; nothing here is a rate, so a missed second only widens the window, never skews a figure.

import type { BucketSnapshot } from './buckets.js';
import type { CommandResult, StatusClass } from './catalog.js';

export interface RouteSample {
  method: string;
  /** Route template (/api/v1/portfolios/{id}), 'unmatched' or 'static': bounded by the route table. */
  route: string;
  latency: BucketSnapshot;
  byStatusClass: Record<StatusClass, number>;
}

export interface ShardSample {
  shard: number;
  state: string;
  /** Commands waiting for the shard now (a gauge). */
  queueDepth: number;
  restarts: number;
  /** Whether the worker answered this reading; a missing worker keeps its previous totals. */
  answered: boolean;
  /** Cumulative event-loop time of the worker thread(s) serving this shard, kept monotonic across restarts. */
  busySeconds: number;
  idleSeconds: number;
  positionsRevalued: number;
  /** The shard's last batch: positions revalued / positions held; null before its first batch. */
  incrementalRatio: number | null;
}

export interface MetricsSample {
  /** performance.now() of the reading (ms): windows and rates divide by differences of it. */
  atMs: number;
  /** Date.now() of the reading. */
  wallMs: number;
  /** Every tick received on every transport, accepted or rejected. */
  ticksReceived: number;
  ticksRejected: number;
  batches: number;
  batchTicks: number;
  positionsRevalued: number;
  portfoliosRevalued: number;
  updatesSent: number;
  bytesSent: number;
  updatesConflated: number;
  slowConsumerDisconnects: number;
  trades: Record<CommandResult, number>;
  commands: Record<CommandResult, number>;
  /** Gauges at the reading. */
  connections: number;
  subscriptions: number;
  storeSizeBytes: number;
  tickToPublish: BucketSnapshot;
  tradeAck: BucketSnapshot;
  storeCommit: BucketSnapshot;
  /** Cumulative per method and route template. */
  http: RouteSample[];
  /** Main thread: event-loop delay p99 and max over the second before this reading (they include the 10 ms sampling resolution, like nodejs_eventloop_lag_*), and cumulative busy/idle time. */
  eventLoop: { lagP99Seconds: number; lagMaxSeconds: number; busySeconds: number; idleSeconds: number };
  shards: ShardSample[];
}
