// The performance summary API (GET /api/v1/performance/summary and /queries): what the older system's
// operators read first, computed from the last minute of readings EngineMetrics samples once a second
// into a bounded ring (src/metrics/sample.ts). Nothing is measured here: two readings make a rate, a
// difference of bucket counts makes a last-minute quantile (estimated like PromQL's histogram_quantile,
// so the summary and the dashboards agree to a bucket), and the hints compare those figures with the
// same thresholds the alert rules use (src/metrics/objectives.ts), so a hint and an alert never disagree.

import { thresholds } from '../metrics/objectives.js';
import { bucketDelta, bucketQuantile, type BucketSnapshot } from '../metrics/buckets.js';
import { metricSpec, type HistogramName, type StatusClass } from '../metrics/catalog.js';
import type { MetricsSample, RouteSample, ShardSample } from '../metrics/sample.js';

/** What server.ts serves (ServerOptions.performance). */
export interface PerformanceApi {
  summary(): PerformanceSummary;
  queries(): PerformanceQueries;
}

/** The readings to summarize, oldest first (EngineMetrics.samples). */
export interface SampleSource {
  samples(): readonly MetricsSample[];
}

export interface LatencyStats {
  /** Observations in the window. */
  count: number;
  /** Milliseconds; null without observations. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface ShardSummary {
  shard: number;
  state: string;
  /** Event-loop utilization of the shard's worker over the window (0..1); null before two readings. */
  utilization: number | null;
  queue_depth: number;
  queue_depth_max: number;
  restarts: number;
  positions_revalued_per_second: number | null;
  incremental_ratio: number | null;
}

export interface Hint {
  /** Stable code, for scripts: event_loop_lag, main_thread_busy, slow_consumers, conflation, hot_shard, slow_commits, tick_latency, trade_ack_latency, feed_idle. */
  code: string;
  /** What is a bottleneck and what to look at, in plain words. */
  message: string;
}

export interface PerformanceSummary {
  /** Seconds between the oldest and newest reading used (up to 60). */
  window_seconds: number;
  /** Wall time of the newest reading (ISO 8601); null before the first one. */
  sampled_at: string | null;
  latency_ms: { tick_to_publish: LatencyStats; trade_ack: LatencyStats; store_commit: LatencyStats; http: LatencyStats };
  /** Per second over the window; null before two readings. */
  rates_per_second: Record<
    'ticks_received' | 'ticks_rejected' | 'batches' | 'positions_revalued' | 'portfolios_revalued' | 'updates_sent' | 'bytes_sent' | 'updates_conflated' | 'trades' | 'commands' | 'http_requests',
    number | null
  >;
  ratios: {
    /** Least incremental shard's last batch: positions revalued / positions held (like mtm_incremental_ratio). */
    incremental: number | null;
    /** Updates merged away / (sent + merged away) over the window. */
    updates_conflated: number | null;
    ticks_rejected: number | null;
    /** Ticks per coalesced batch after coalescing: how much the coalescer saves. */
    ticks_per_batch: number | null;
  };
  event_loop: { lag_p99_ms: number | null; lag_max_ms: number | null; utilization: number | null };
  connections: number;
  subscriptions: number;
  slow_consumer_disconnects: number;
  shards: ShardSummary[];
  busiest_shard: ShardSummary | null;
  hints: Hint[];
}

export interface RouteQueryStats {
  method: string;
  route: string;
  /** Requests in the window. */
  count: number;
  requests_per_second: number | null;
  /** 5xx share of the window's requests; null without requests. */
  error_ratio: number | null;
  /** 4xx share of the window's requests; null without requests. */
  client_error_ratio: number | null;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  /** Requests since the server started. */
  count_total: number;
}

export interface PerformanceQueries {
  window_seconds: number;
  /** Slowest p99 first; routes without requests in the window last. */
  routes: RouteQueryStats[];
}

// Hint thresholds that have no alert twin.
/** A shard worker busier than this over the window is saturated: its queue grows when load rises. */
export const shardSaturatedUtilizationRatio = 0.8;
/** A shard this many times busier than the mean of the others, and at least hotShardUtilizationMinRatio, is "hot". */
export const hotShardFactor = 2;
export const hotShardUtilizationMinRatio = 0.3;
/** Main-thread event-loop utilization above this: the main thread is the bottleneck even if its lag is still low. */
export const mainThreadBusyUtilizationRatio = 0.9;
/** More than this share of updates merged away: clients do not keep up with the update rate. */
export const conflatedShareHintRatio = 0.5;

const bucketsOf = (name: HistogramName): readonly number[] => {
  const spec = metricSpec(name);
  return spec.type === 'histogram' ? spec.buckets : [];
};
const tickBuckets = bucketsOf('mtm_tick_to_publish_seconds');
const ackBuckets = bucketsOf('mtm_trade_ack_seconds');
const commitBuckets = bucketsOf('mtm_store_commit_seconds');
const httpBuckets = bucketsOf('mtm_http_request_seconds');

const round = (x: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};
const ratio = (part: number, whole: number): number | null => (whole > 0 ? round(part / whole, 4) : null);
const ms = (seconds: number | null): number | null => (seconds === null ? null : round(seconds * 1000));

function latency(bounds: readonly number[], d: BucketSnapshot): LatencyStats {
  return { count: d.count, p50: ms(bucketQuantile(bounds, d, 0.5)), p95: ms(bucketQuantile(bounds, d, 0.95)), p99: ms(bucketQuantile(bounds, d, 0.99)) };
}

function sumBuckets(routes: readonly RouteSample[], length: number): BucketSnapshot {
  const counts = new Float64Array(length);
  let count = 0;
  let sum = 0;
  for (const r of routes) {
    for (let i = 0; i < length; i++) counts[i] += r.latency.counts[i] ?? 0;
    count += r.latency.count;
    sum += r.latency.sum;
  }
  return { counts, count, sum };
}

const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
const emptyClasses = (): Record<StatusClass, number> => ({ '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 });

function shardUtilization(newest: ShardSample, oldest: ShardSample | undefined): number | null {
  if (oldest === undefined) return null;
  const busy = newest.busySeconds - oldest.busySeconds;
  const idle = newest.idleSeconds - oldest.idleSeconds;
  return busy + idle > 0 ? round(Math.min(1, Math.max(0, busy / (busy + idle))), 4) : null;
}

/** The summary of `samples` (oldest first). Pure: the tests feed it synthetic readings. */
export function summarize(samples: readonly MetricsSample[]): PerformanceSummary {
  const newest = samples[samples.length - 1];
  const oldest = samples.length > 1 ? samples[0] : undefined;
  const seconds = newest !== undefined && oldest !== undefined ? (newest.atMs - oldest.atMs) / 1000 : 0;
  const rate = (f: (s: MetricsSample) => number): number | null =>
    newest !== undefined && oldest !== undefined && seconds > 0 ? round((f(newest) - f(oldest)) / seconds) : null;
  const delta = (f: (s: MetricsSample) => number): number => (newest !== undefined && oldest !== undefined ? f(newest) - f(oldest) : 0);
  const empty: BucketSnapshot = { counts: new Float64Array(0), count: 0, sum: 0 };
  const hist = (f: (s: MetricsSample) => BucketSnapshot): BucketSnapshot => (newest === undefined ? empty : bucketDelta(f(newest), oldest === undefined ? undefined : f(oldest)));

  const tick = latency(tickBuckets, hist((s) => s.tickToPublish));
  const ack = latency(ackBuckets, hist((s) => s.tradeAck));
  const commit = latency(commitBuckets, hist((s) => s.storeCommit));
  const http = latency(
    httpBuckets,
    hist((s) => sumBuckets(s.http, httpBuckets.length + 1)),
  );

  // Event loop: the worst one-second p99 and max in the window (readings after the oldest one).
  const loopSamples = oldest === undefined ? samples : samples.slice(1);
  const lagP99 = loopSamples.length > 0 ? Math.max(...loopSamples.map((s) => s.eventLoop.lagP99Seconds)) : null;
  const lagMax = loopSamples.length > 0 ? Math.max(...loopSamples.map((s) => s.eventLoop.lagMaxSeconds)) : null;
  const busy = delta((s) => s.eventLoop.busySeconds);
  const idle = delta((s) => s.eventLoop.idleSeconds);
  const mainUtilization = busy + idle > 0 ? round(busy / (busy + idle), 4) : null;

  const shards: ShardSummary[] = (newest?.shards ?? []).map((s) => {
    const before = oldest?.shards[s.shard];
    let queueMax = 0;
    for (const x of samples) queueMax = Math.max(queueMax, x.shards[s.shard]?.queueDepth ?? 0);
    return {
      shard: s.shard,
      state: s.state,
      utilization: shardUtilization(s, before),
      queue_depth: s.queueDepth,
      queue_depth_max: queueMax,
      restarts: s.restarts,
      positions_revalued_per_second: before === undefined || seconds <= 0 ? null : round((s.positionsRevalued - before.positionsRevalued) / seconds),
      incremental_ratio: s.incrementalRatio === null ? null : round(s.incrementalRatio, 4),
    };
  });
  let busiest: ShardSummary | null = null;
  for (const s of shards) {
    const u = s.utilization ?? -1;
    const b = busiest?.utilization ?? -1;
    if (busiest === null || u > b || (u === b && s.queue_depth > busiest.queue_depth)) busiest = s;
  }

  const ratios = newest?.shards.map((s) => s.incrementalRatio).filter((r): r is number => r !== null) ?? [];
  const sent = delta((s) => s.updatesSent);
  const conflated = delta((s) => s.updatesConflated);
  const received = delta((s) => s.ticksReceived);
  const batches = delta((s) => s.batches);
  const summary: PerformanceSummary = {
    window_seconds: round(seconds, 3),
    sampled_at: newest === undefined ? null : new Date(newest.wallMs).toISOString(),
    latency_ms: { tick_to_publish: tick, trade_ack: ack, store_commit: commit, http },
    rates_per_second: {
      ticks_received: rate((s) => s.ticksReceived),
      ticks_rejected: rate((s) => s.ticksRejected),
      batches: rate((s) => s.batches),
      positions_revalued: rate((s) => s.positionsRevalued),
      portfolios_revalued: rate((s) => s.portfoliosRevalued),
      updates_sent: rate((s) => s.updatesSent),
      bytes_sent: rate((s) => s.bytesSent),
      updates_conflated: rate((s) => s.updatesConflated),
      trades: rate((s) => total(s.trades)),
      commands: rate((s) => total(s.commands)),
      http_requests: rate((s) => s.http.reduce((a, r) => a + total(r.byStatusClass), 0)),
    },
    ratios: {
      incremental: ratios.length > 0 ? round(Math.max(...ratios), 4) : null,
      updates_conflated: ratio(conflated, sent + conflated),
      ticks_rejected: ratio(delta((s) => s.ticksRejected), received),
      ticks_per_batch: batches > 0 ? round(delta((s) => s.batchTicks) / batches, 2) : null,
    },
    event_loop: { lag_p99_ms: ms(lagP99), lag_max_ms: ms(lagMax), utilization: mainUtilization },
    connections: newest?.connections ?? 0,
    subscriptions: newest?.subscriptions ?? 0,
    slow_consumer_disconnects: delta((s) => s.slowConsumerDisconnects),
    shards,
    busiest_shard: busiest,
    hints: [],
  };
  summary.hints = hintsFor(summary, received, newest !== undefined && oldest !== undefined);
  return summary;
}

/** Plain-language hints: each names the bottleneck, the figure that shows it and what to look at. */
export function hintsFor(s: PerformanceSummary, ticksInWindow: number, haveWindow: boolean): Hint[] {
  const hints: Hint[] = [];
  const window = `${Math.round(s.window_seconds)} s`;
  const over = (v: number | null, limit: number): v is number => v !== null && v > limit;
  const lagLimitMs = thresholds.eventLoopLagP99Seconds * 1000;
  if (over(s.event_loop.lag_p99_ms, lagLimitMs)) {
    hints.push({
      code: 'event_loop_lag',
      message: `The main event loop is lagging: worst one-second p99 delay ${s.event_loop.lag_p99_ms} ms in the last ${window} (alert threshold ${lagLimitMs} ms). Tick ingestion, coalescing, client updates and HTTP all wait behind it; look at process CPU, large HTTP responses (portfolio lists, events) and the number of client sockets.`,
    });
  } else if (over(s.event_loop.utilization, mainThreadBusyUtilizationRatio)) {
    hints.push({
      code: 'main_thread_busy',
      message: `The main thread was busy ${Math.round(s.event_loop.utilization * 100)}% of the last ${window}: it is the bottleneck before its lag shows. Fewer subscriptions per process, throttle_ms on subscriptions or binary encoding reduce its work.`,
    });
  }
  if (s.slow_consumer_disconnects > 0) {
    hints.push({
      code: 'slow_consumers',
      message: `${s.slow_consumer_disconnects} client socket(s) were closed as slow consumers (4008) in the last ${window}: they read updates slower than they are produced. Check those clients' network and processing, or have them subscribe with throttle_ms.`,
    });
  }
  if (over(s.ratios.updates_conflated, conflatedShareHintRatio)) {
    hints.push({
      code: 'conflation',
      message: `${Math.round(s.ratios.updates_conflated * 100)}% of client updates were merged into later ones (conflated) instead of being sent: clients or their network cannot keep up with the update rate. They still get the latest values; subscribe with throttle_ms to make it deliberate.`,
    });
  }
  const busiest = s.busiest_shard;
  if (busiest !== null && busiest.utilization !== null) {
    const others = s.shards.filter((x) => x.shard !== busiest.shard && x.utilization !== null).map((x) => x.utilization as number);
    const mean = others.length > 0 ? others.reduce((a, b) => a + b, 0) / others.length : null;
    const pct = Math.round(busiest.utilization * 100);
    if (busiest.utilization >= shardSaturatedUtilizationRatio) {
      hints.push({
        code: 'hot_shard',
        message: `Shard ${busiest.shard} is saturated: its worker was busy ${pct}% of the last ${window} (queue depth ${busiest.queue_depth}, max ${busiest.queue_depth_max}). Revaluation waits for it; more workers (--workers) spread portfolios over more shards.`,
      });
    } else if (mean !== null && busiest.utilization >= hotShardUtilizationMinRatio && busiest.utilization >= hotShardFactor * mean) {
      hints.push({
        code: 'hot_shard',
        message: `Shard ${busiest.shard} is hot: busy ${pct}% against ${Math.round(mean * 100)}% on average for the others. Portfolios are placed by a hash of their id, so a few large or busy portfolios landed on it; every batch waits for the slowest shard.`,
      });
    }
  }
  const commitLimitMs = thresholds.storeCommitP99Seconds * 1000;
  if (over(s.latency_ms.store_commit.p99, commitLimitMs)) {
    hints.push({
      code: 'slow_commits',
      message: `Store (LMDB) commits are slow: p99 ${s.latency_ms.store_commit.p99} ms over ${s.latency_ms.store_commit.count} commits (alert threshold ${commitLimitMs} ms). Every trade acknowledgement waits for its commit; check the disk's latency and whether --sync (an fsync per commit) is on.`,
    });
  }
  const tickLimitMs = thresholds.tickToPublishP99Seconds * 1000;
  if (over(s.latency_ms.tick_to_publish.p99, tickLimitMs)) {
    hints.push({
      code: 'tick_latency',
      message: `Tick-to-publish p99 is ${s.latency_ms.tick_to_publish.p99} ms (alert threshold ${tickLimitMs} ms): prices reach clients late. The other hints name the likely cause (event loop, a hot shard); without one, the valuation itself is the cost (${s.rates_per_second.positions_revalued ?? 0} positions revalued/s).`,
    });
  }
  const ackLimitMs = thresholds.tradeAckP99Seconds * 1000;
  if (over(s.latency_ms.trade_ack.p99, ackLimitMs)) {
    hints.push({
      code: 'trade_ack_latency',
      message: `Trade acknowledgements are slow: p99 ${s.latency_ms.trade_ack.p99} ms (alert threshold ${ackLimitMs} ms). An ack waits for the shard and for the durable commit: see the commit latency and the busiest shard's queue depth.`,
    });
  }
  if (haveWindow && ticksInWindow === 0 && s.window_seconds >= thresholds.feedStaleSeconds) {
    hints.push({
      code: 'feed_idle',
      message: `No tick arrived in the last ${window}: prices are stale. Check the price feeds (/ws/feed connections: ${s.connections > 0 ? 'some sockets are open' : 'none open'}).`,
    });
  }
  return hints;
}

/** Per-route HTTP figures over the window of `samples` (oldest first). */
export function summarizeQueries(samples: readonly MetricsSample[]): PerformanceQueries {
  const newest = samples[samples.length - 1];
  const oldest = samples.length > 1 ? samples[0] : undefined;
  const seconds = newest !== undefined && oldest !== undefined ? (newest.atMs - oldest.atMs) / 1000 : 0;
  const before = new Map<string, RouteSample>();
  for (const r of oldest?.http ?? []) before.set(r.method + ' ' + r.route, r);
  const routes: RouteQueryStats[] = (newest?.http ?? []).map((r) => {
    const b = before.get(r.method + ' ' + r.route);
    const d = bucketDelta(r.latency, b?.latency);
    const classes = emptyClasses();
    for (const k of Object.keys(classes) as StatusClass[]) classes[k] = r.byStatusClass[k] - (b?.byStatusClass[k] ?? 0);
    const count = total(classes);
    return {
      method: r.method,
      route: r.route,
      count,
      requests_per_second: seconds > 0 ? round(count / seconds) : null,
      error_ratio: ratio(classes['5xx'], count),
      client_error_ratio: ratio(classes['4xx'], count),
      p50_ms: ms(bucketQuantile(httpBuckets, d, 0.5)),
      p95_ms: ms(bucketQuantile(httpBuckets, d, 0.95)),
      p99_ms: ms(bucketQuantile(httpBuckets, d, 0.99)),
      count_total: total(r.byStatusClass),
    };
  });
  routes.sort((a, b) => (b.p99_ms ?? -1) - (a.p99_ms ?? -1) || b.count - a.count || (a.route < b.route ? -1 : a.route > b.route ? 1 : 0));
  return { window_seconds: round(seconds, 3), routes };
}

/** PerformanceApi over a sample source (EngineMetrics): computed on request, from readings already taken. */
export class PerformanceMonitor implements PerformanceApi {
  constructor(private readonly source: SampleSource) {}

  summary(): PerformanceSummary {
    return summarize(this.source.samples());
  }

  queries(): PerformanceQueries {
    return summarizeQueries(this.source.samples());
  }
}
