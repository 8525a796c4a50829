// The one catalog of every metric the engine exports. Dashboards, alert rules, the metrics reference
// (dashboards/metrics.md) and the tests read names from here, so a renamed metric breaks the build or a
// test instead of silently emptying a panel.
//
// Conventions (checked by test/dashboards.test.ts and by `promtool check metrics`):
// - every name starts with `mtm_`; base units only (`_seconds`, `_bytes`, ratios 0..1 end in `_ratio`);
//   counters, and only counters, end in `_total`;
// - label values are bounded: never a portfolio, symbol, client, key or trade id. A label either lists
//   its closed set of values (`values`) or states what bounds it (`bound`);
// - `aggregator` says how prom-client's AggregatorRegistry.aggregate() merges the value a metric has
//   in each thread (main thread + shard workers) into the one series Prometheus scrapes.
//
// Process metrics (event-loop lag, heap, CPU, GC) come from prom-client's collectDefaultMetrics and keep
// their standard names (`nodejs_*`, `process_*`), NOT an `mtm_` prefix: community dashboards and alerts
// for Node.js processes then work unchanged, and the `job` label already says which service they belong
// to. See collectProcessMetrics below.

import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import { ErrorCode } from '../errors.js';
import type { RiskLimitName } from '../domain/types.js';
import { clusterInputSources } from '../cluster/counters.js';

// ---- label value domains (closed sets) ----

export const transports = ['ws', 'http', 'demo', 'inproc'] as const;
export type Transport = (typeof transports)[number];

export const tickEncodings = ['json', 'binary', 'object'] as const;
export type TickEncoding = (typeof tickEncodings)[number];

/** ws: /ws clients; compat: the per-portfolio compatibility sockets; feed: /ws/feed price feeds. */
export const protocols = ['ws', 'compat', 'feed'] as const;
export type Protocol = (typeof protocols)[number];

export const commands = ['create', 'close', 'trade', 'cash', 'pause', 'resume', 'limits'] as const;
export type Command = (typeof commands)[number];

/** ok: applied; rejected: refused for a client reason (validation, state, limits); error: the engine failed (store, shard). */
export const commandResults = ['ok', 'rejected', 'error'] as const;
export type CommandResult = (typeof commandResults)[number];

export const riskLimits = ['max_loss', 'max_drawdown_pct', 'max_position_weight_pct'] as const satisfies readonly RiskLimitName[];
// Fails to compile when a risk limit is added to the domain but not here (the label would miss it).
const riskLimitsExhaustive: Record<RiskLimitName, true> = { max_loss: true, max_drawdown_pct: true, max_position_weight_pct: true };
void riskLimitsExhaustive;

export const rejectReasons = Object.values(ErrorCode) as readonly ErrorCode[];

/** held: a tick kept back as suspect (a first hold or a replacement); confirmed / rejected: a held tick settled. */
export const suspectOutcomes = ['held', 'confirmed', 'rejected'] as const;
export type SuspectOutcome = (typeof suspectOutcomes)[number];

export const statusClasses = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof statusClasses)[number];

/** The status_class label of an HTTP status: a class, never the status, keeps the series count fixed. */
export function statusClassOf(status: number): StatusClass {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? statusClasses[c - 1] : '5xx';
}

export const kernels = ['wasm', 'js'] as const;

// ---- catalog types ----

export type MetricType = 'counter' | 'gauge' | 'histogram';
/** prom-client's aggregators (AggregatorRegistry); 'omit' drops the metric from the aggregate. */
export type Aggregation = 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit';

export interface ClosedLabel {
  readonly name: string;
  /** Every value the label can take; createMetrics pre-creates these series at 0. */
  readonly values: readonly string[];
}
export interface OpenLabel {
  readonly name: string;
  /** What keeps the number of values small (a route table, the worker count, ...). */
  readonly bound: string;
}
export type LabelSpec = ClosedLabel | OpenLabel;

interface SpecBase {
  readonly name: string;
  readonly help: string;
  readonly labels: readonly LabelSpec[];
  readonly aggregator: Aggregation;
  /** Why this aggregator: gauges have no single right answer, so each one says. */
  readonly aggregatorWhy: string;
  /**
   * The label sets to create at 0 when the cross product of the closed labels holds impossible ones
   * (a demo feed never sends binary frames): only these are created.
   */
  readonly presets?: readonly Readonly<Record<string, string>>[];
}
export interface CounterSpec extends SpecBase {
  readonly type: 'counter';
}
export interface GaugeSpec extends SpecBase {
  readonly type: 'gauge';
}
export interface HistogramSpec extends SpecBase {
  readonly type: 'histogram';
  /** Upper bounds (le); every alert threshold on this histogram must be one of them. */
  readonly buckets: readonly number[];
}
export type MetricSpec = CounterSpec | GaugeSpec | HistogramSpec;

const sumCounter = 'counts add up across threads';
const sumHistogram = 'bucket counts add up across threads';

// Shared label specs.
const shardLabel = { name: 'shard', bound: 'shard index 0..workers-1: bounded by the worker count' } as const satisfies OpenLabel;
const routeLabel = {
  name: 'route',
  bound: 'the route template (e.g. /api/v1/portfolios/{id}; unmatched and static otherwise), never the path: bounded by the route table',
} as const satisfies OpenLabel;

// Latency buckets. Alert and SLO thresholds (src/metrics/objectives.ts) must be bucket boundaries so that
// "p99 > threshold" is exact: histogram_quantile interpolates inside a bucket, but whether the quantile
// lies above a boundary depends only on the counts, not on the interpolation.
const tickToPublishBuckets = [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const tradeAckBuckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const storeCommitBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const httpBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const batchTickBuckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

// ---- the catalog ----
// Keys are the handle names createMetrics returns. Order = order in dashboards/metrics.md.

const definitions = {
  buildInfo: {
    name: 'mtm_build_info',
    type: 'gauge',
    help: 'Always 1; the labels identify the running build: package version, valuation kernel and uWebSockets.js version.',
    labels: [
      { name: 'version', bound: 'one value per deployed build' },
      { name: 'kernel', values: kernels },
      { name: 'uws', bound: 'one value per deployed build' },
    ],
    aggregator: 'first',
    aggregatorWhy: 'every thread runs the same build; sum would report N instead of 1',
  },

  // -- ticks in --
  ticksReceived: {
    name: 'mtm_ticks_received_total',
    type: 'counter',
    help: 'Ticks received from price feeds, accepted or rejected (rejected ones are also counted in mtm_ticks_rejected_total).',
    labels: [
      { name: 'transport', values: transports },
      { name: 'encoding', values: tickEncodings },
    ],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
    // /ws/feed takes text (json) and binary frames, POST /api/v1/ticks JSON; the demo and embedding code call the engine with objects.
    presets: [
      { transport: 'ws', encoding: 'json' },
      { transport: 'ws', encoding: 'binary' },
      { transport: 'http', encoding: 'json' },
      { transport: 'demo', encoding: 'object' },
      { transport: 'inproc', encoding: 'object' },
    ],
  },
  ticksRejected: {
    name: 'mtm_ticks_rejected_total',
    type: 'counter',
    help: 'Ticks refused at ingestion, by error code (src/errors.ts).',
    labels: [{ name: 'reason', values: rejectReasons }],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  ticksSuspect: {
    name: 'mtm_ticks_suspect_total',
    type: 'counter',
    help: 'Suspect ticks (moving a price more than suspectMovePct from the last applied one): held instead of applied, then confirmed or rejected by the next tick or an admin. Held ticks count as received, not as rejected.',
    labels: [{ name: 'outcome', values: suspectOutcomes }],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  suspectTicksHeld: {
    name: 'mtm_suspect_ticks_held',
    type: 'gauge',
    help: 'Symbols whose latest tick is held as suspect now (their marks wait for the next tick or an admin).',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: 'only the main thread holds ticks (where they are ingested); shard workers do not report it',
  },
  lastTickTimestamp: {
    name: 'mtm_last_tick_timestamp_seconds',
    type: 'gauge',
    help: 'Wall-clock time (engine clock, Unix seconds) at which the last tick was accepted; 0 before the first one. Feed staleness = time() - this.',
    labels: [],
    aggregator: 'max',
    aggregatorWhy: 'the latest tick any thread saw; threads that never see ticks report 0 and never win',
  },

  // -- coalescing and valuation --
  coalescedBatches: {
    name: 'mtm_coalesced_batches_total',
    type: 'counter',
    help: 'Coalesced tick batches flushed to the shards (one per coalescing window that saw at least one tick).',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  coalescedBatchTicks: {
    name: 'mtm_coalesced_batch_ticks',
    type: 'histogram',
    help: 'Ticks in one coalesced batch after coalescing: one per symbol whose price changed during the window.',
    labels: [],
    buckets: batchTickBuckets,
    aggregator: 'sum',
    aggregatorWhy: sumHistogram,
  },
  positionsRevalued: {
    name: 'mtm_positions_revalued_total',
    type: 'counter',
    help: 'Positions revalued by the valuation kernel.',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  portfoliosRevalued: {
    name: 'mtm_portfolios_revalued_total',
    type: 'counter',
    help: 'Portfolios whose totals were recomputed because at least one of their positions was revalued.',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  incrementalRatio: {
    name: 'mtm_incremental_ratio',
    type: 'gauge',
    help: 'Positions revalued by the last batch divided by positions held (0..1): low means valuation is incremental, 1 means every batch revalues everything.',
    labels: [],
    aggregator: 'max',
    aggregatorWhy: 'each shard knows only its own ratio and a weighted mean is not possible here: report the least incremental shard; a thread that never sets it reads 0 and never wins (average would be dragged down by it)',
  },
  tickToPublish: {
    name: 'mtm_tick_to_publish_seconds',
    type: 'histogram',
    help: 'From the arrival of the oldest tick of a batch to its portfolio updates being handed to client sockets.',
    labels: [],
    buckets: tickToPublishBuckets,
    aggregator: 'sum',
    aggregatorWhy: sumHistogram,
  },

  // -- client updates out --
  updatesSent: {
    name: 'mtm_updates_sent_total',
    type: 'counter',
    help: 'Portfolio updates and snapshots written to client sockets.',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  bytesSent: {
    name: 'mtm_bytes_sent_total',
    type: 'counter',
    help: 'Bytes of WebSocket frames written to client sockets: updates and snapshots, and the acks, events and errors sent on the same sockets.',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  updatesConflated: {
    name: 'mtm_updates_conflated_total',
    type: 'counter',
    help: 'Updates merged into a later update for the same portfolio instead of being sent (throttling or a socket above its backpressure soft bound).',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  slowConsumerDisconnects: {
    name: 'mtm_slow_consumer_disconnects_total',
    type: 'counter',
    help: 'Client sockets closed with 4008 because they stayed above the backpressure soft bound too long or passed the hard bound.',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  connections: {
    name: 'mtm_connections',
    type: 'gauge',
    help: 'Open WebSocket connections by protocol.',
    labels: [{ name: 'protocol', values: protocols }],
    aggregator: 'sum',
    aggregatorWhy: 'a connection lives in exactly one thread: the total is the sum',
  },
  subscriptions: {
    name: 'mtm_subscriptions',
    type: 'gauge',
    help: 'Active portfolio subscriptions across all client connections.',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: 'a subscription lives in exactly one thread: the total is the sum',
  },

  // -- commands and trades --
  commands: {
    name: 'mtm_commands_total',
    type: 'counter',
    help: 'Portfolio commands by command and result (ok: applied; rejected: refused for a client reason; error: the engine failed).',
    labels: [
      { name: 'command', values: commands },
      { name: 'result', values: commandResults },
    ],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  trades: {
    name: 'mtm_trades_total',
    type: 'counter',
    help: 'Trades by result (ok: booked or an idempotent replay; rejected: refused for a client reason; error: the engine failed).',
    labels: [{ name: 'result', values: commandResults }],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  tradeAck: {
    name: 'mtm_trade_ack_seconds',
    type: 'histogram',
    help: 'From a trade command arriving to its acknowledgement being sent (includes the durable store commit).',
    labels: [],
    buckets: tradeAckBuckets,
    aggregator: 'sum',
    aggregatorWhy: sumHistogram,
  },

  // -- store (LMDB) --
  storeCommit: {
    name: 'mtm_store_commit_seconds',
    type: 'histogram',
    help: 'Duration of one acknowledging store commit: a journal record (events and trade results) or an LMDB write transaction of what the journal does not hold.',
    labels: [],
    buckets: storeCommitBuckets,
    aggregator: 'sum',
    aggregatorWhy: sumHistogram,
  },
  storeSize: {
    name: 'mtm_store_size_bytes',
    type: 'gauge',
    help: 'Size of the store (LMDB) data files on disk.',
    labels: [],
    aggregator: 'max',
    aggregatorWhy: 'every thread that opens the store reports the same files; sum would count them once per thread, max also ignores threads that report 0',
  },
  storeMapSize: {
    name: 'mtm_store_map_size_bytes',
    type: 'gauge',
    help: 'Size of the LMDB memory map of the event store (lmdb-js grows it when the used pages reach it).',
    labels: [],
    aggregator: 'max',
    aggregatorWhy: 'only the main thread opens the event store; max ignores the threads that report 0',
  },
  storeMapUsed: {
    name: 'mtm_store_map_used_bytes',
    type: 'gauge',
    help: 'Bytes of the LMDB map in use by the event store: pages up to the last page written, times the page size.',
    labels: [],
    aggregator: 'max',
    aggregatorWhy: 'only the main thread opens the event store; max ignores the threads that report 0',
  },
  memoryLimit: {
    name: 'mtm_memory_limit_bytes',
    type: 'gauge',
    help: "Memory the process may use: the tightest cgroup v2 memory.max of its cgroup and their parents, else the host's total memory.",
    labels: [],
    aggregator: 'max',
    aggregatorWhy: 'only the main thread reads the limit; max ignores the threads that report 0',
  },

  // -- shards --
  shardRestarts: {
    name: 'mtm_shard_restarts_total',
    type: 'counter',
    help: 'Shard workers restarted by the supervisor after a crash, an exit or a heap limit.',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  shardQueueDepth: {
    name: 'mtm_shard_queue_depth',
    type: 'gauge',
    help: 'Commands and batches waiting for one shard worker.',
    labels: [shardLabel],
    aggregator: 'sum',
    aggregatorWhy: 'if both sides of a shard queue (main thread and worker) report depth, the work waiting is the sum',
  },
  workerUtilization: {
    name: 'mtm_worker_utilization_ratio',
    type: 'gauge',
    help: 'Event-loop utilization of one shard worker over the last 10 s (0..1), measured by the worker thread itself.',
    labels: [shardLabel],
    aggregator: 'max',
    aggregatorWhy: 'the main thread and the worker may both measure the same worker; sum could exceed 1',
  },

  // -- domain events --
  riskBreaches: {
    name: 'mtm_risk_breaches_total',
    type: 'counter',
    help: 'Portfolios entering breach of a risk limit (counted on the transition, not on every revaluation while in breach).',
    labels: [{ name: 'limit', values: riskLimits }],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  marketAlerts: {
    name: 'mtm_market_alerts_total',
    type: 'counter',
    help: 'Market alerts raised, by rule kind.',
    labels: [{ name: 'rule', bound: 'the rule kind (a fixed set in code), never a rule id or a symbol' }],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },

  // -- HTTP --
  httpRequests: {
    name: 'mtm_http_requests_total',
    type: 'counter',
    help: 'HTTP requests answered, by route template and status class.',
    labels: [routeLabel, { name: 'status_class', values: statusClasses }],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  httpRequestDuration: {
    name: 'mtm_http_request_seconds',
    type: 'histogram',
    help: 'HTTP request duration from the request arriving to the response being written, by route template.',
    labels: [routeLabel],
    buckets: httpBuckets,
    aggregator: 'sum',
    aggregatorWhy: sumHistogram,
  },

  // -- cluster (mtm serve --nats; 0 on a single node). Read from src/cluster/counters.ts at scrape time. --
  clusterPartitionsOwned: {
    name: 'mtm_cluster_partitions_owned',
    type: 'gauge',
    help: 'Partitions this node serves now (holds the latest revision of in the ownership bucket, loaded and consuming).',
    labels: [],
    aggregator: 'max',
    aggregatorWhy: 'only the main thread runs the cluster node; max ignores the threads that report 0',
  },
  clusterPartitionsUnowned: {
    name: 'mtm_cluster_partitions_unowned',
    type: 'gauge',
    help: 'Partitions no node owns, as this node sees the ownership bucket now: their portfolios accept no command.',
    labels: [],
    aggregator: 'max',
    aggregatorWhy: 'only the main thread runs the cluster node; max ignores the threads that report 0',
  },
  clusterConsumerLag: {
    name: 'mtm_cluster_consumer_lag_messages',
    type: 'gauge',
    help: 'Command-stream messages of the partitions this node owns that it has not applied yet (JetStream pending of its consumers).',
    labels: [],
    aggregator: 'max',
    aggregatorWhy: 'only the main thread runs the cluster node; max ignores the threads that report 0',
  },
  clusterRebalances: {
    name: 'mtm_cluster_rebalances_total',
    type: 'counter',
    help: 'Ownership rounds in which this node claimed or released at least one partition.',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  clusterFencedWrites: {
    name: 'mtm_cluster_fenced_writes_total',
    type: 'counter',
    help: 'Writes refused because this node no longer held the partition (a stale owner fenced after a pause or a network partition).',
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  clusterBadInput: {
    name: 'mtm_cluster_bad_input_total',
    type: 'counter',
    help: 'Cluster messages refused as malformed or foreign (logged; nothing applied), by where they came from.',
    labels: [{ name: 'source', values: clusterInputSources }],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
  clusterUpdatesRelayed: {
    name: 'mtm_cluster_updates_relayed_total',
    type: 'counter',
    help: "Portfolio updates this node received from another node (the owner's delta bytes) and relayed to its own subscribers.",
    labels: [],
    aggregator: 'sum',
    aggregatorWhy: sumCounter,
  },
} as const satisfies Record<string, MetricSpec>;

type Definitions = typeof definitions;
export type MetricKey = keyof Definitions;
/** Every metric name in the catalog: dashboards and rules use this type, so a typo does not compile. */
export type MetricName = Definitions[MetricKey]['name'];

type NamesOfType<T extends MetricType> = { [K in MetricKey]: Definitions[K] extends { readonly type: T } ? Definitions[K]['name'] : never }[MetricKey];
export type CounterName = NamesOfType<'counter'>;
export type GaugeName = NamesOfType<'gauge'>;
export type HistogramName = NamesOfType<'histogram'>;

/** The catalog as a list, in definition order. */
export const metricCatalog: readonly (MetricSpec & { readonly key: MetricKey })[] = (Object.keys(definitions) as MetricKey[]).map(
  (key) => ({ key, ...(definitions[key] as MetricSpec) }),
);

const byName = new Map<string, MetricSpec>(metricCatalog.map((m) => [m.name, m]));

/** The spec of a metric by name; throws for a name not in the catalog (a programmer error). */
export function metricSpec(name: MetricName): MetricSpec {
  const spec = byName.get(name);
  if (spec === undefined) throw new Error(`metric ${name} is not in the catalog`);
  return spec;
}

export function isCatalogMetric(name: string): name is MetricName {
  return byName.has(name);
}

// ---- typed handles ----

type LabelNamesOf<S> = S extends { readonly labels: readonly (infer L)[] } ? (L extends { readonly name: infer N extends string } ? N : never) : never;
type HandleOf<S> = S extends { readonly type: 'counter' }
  ? Counter<LabelNamesOf<S>>
  : S extends { readonly type: 'gauge' }
    ? Gauge<LabelNamesOf<S>>
    : Histogram<LabelNamesOf<S>>;

export type Metrics = { readonly [K in MetricKey]: HandleOf<Definitions[K]> };

export interface CreateMetricsOptions {
  /** Number of shard workers: pre-creates the shard-labelled series at 0 so they exist before the first sample. */
  shards?: number;
}

/**
 * Registers every catalog metric with `registry` and returns the handles.
 * Series whose labels are all closed sets are created at 0 up front: a counter that first appears
 * at 1 is invisible to rate()/increase(), so the first rejection or breach would otherwise be lost.
 * Throws (prom-client) if a metric of the same name is already registered.
 */
export function createMetrics(registry: Registry, options: CreateMetricsOptions = {}): Metrics {
  const handles: Record<string, Counter<string> | Gauge<string> | Histogram<string>> = {};
  for (const spec of metricCatalog) {
    const config = {
      name: spec.name,
      help: spec.help,
      labelNames: spec.labels.map((l) => l.name),
      registers: [registry],
      aggregator: spec.aggregator,
    };
    const presets = presetLabelSets(spec, options.shards);
    switch (spec.type) {
      case 'counter': {
        const c = new Counter(config);
        for (const labels of presets) c.inc(labels, 0);
        handles[spec.key] = c;
        break;
      }
      case 'gauge': {
        const g = new Gauge(config);
        for (const labels of presets) g.set(labels, 0);
        handles[spec.key] = g;
        break;
      }
      case 'histogram': {
        const h = new Histogram({ ...config, buckets: [...spec.buckets] });
        for (const labels of presets) h.zero(labels);
        handles[spec.key] = h;
        break;
      }
    }
  }
  return handles as unknown as Metrics;
}

/** Label sets to pre-create: the cross product of closed labels (and shard ids when known); none if any label is open. */
function presetLabelSets(spec: MetricSpec, shards: number | undefined): Record<string, string>[] {
  if (spec.presets !== undefined) return spec.presets.map((p) => ({ ...p }));
  if (spec.labels.length === 0) return []; // prom-client already exposes unlabelled metrics at 0
  let sets: Record<string, string>[] = [{}];
  for (const label of spec.labels) {
    let values: readonly string[];
    if ('values' in label) values = label.values;
    else if (label === shardLabel && shards !== undefined) values = Array.from({ length: shards }, (_, i) => String(i));
    else return [];
    sets = sets.flatMap((s) => values.map((v) => ({ ...s, [label.name]: v })));
  }
  return sets;
}

/**
 * Node.js process metrics under their standard names (nodejs_eventloop_lag_seconds,
 * nodejs_eventloop_lag_p99_seconds, nodejs_heap_size_used_bytes, process_cpu_seconds_total, ...).
 * Call it on the main thread's registry only: process_* describe the whole process, and the event loop
 * that publishes to clients is the main one (shard workers report mtm_worker_utilization_ratio instead).
 * The event-loop lag gauges include the sampling resolution (about 10 ms on an idle loop), and the
 * p50/p90/p99 gauges cover the time since the previous scrape.
 * Known lint: prom-client's nodejs_active_{handles,requests,resources}_total are gauges ending in
 * `_total`, which `promtool check metrics` flags; they are prom-client's names, kept for compatibility.
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}
