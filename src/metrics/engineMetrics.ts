// Wires the catalog to a running engine (and server). Engine and server keep plain counters; this module
// turns them into prom-client metrics at scrape time, and merges every shard worker's own registry into
// the same scrape with AggregatorRegistry.aggregate (per-metric aggregators from the catalog).
// Histograms are observed as things happen: once per batch, trade, commit or HTTP request, never per tick.
//
// Where each metric comes from (dashboards/README.md has the same list for ops):
// - ticks received by transport/encoding: the server's per-encoding counters (feed text/binary frames,
//   POST /api/v1/ticks); what reached the engine without the server is `directTicks` (demo or inproc);
// - ticks rejected by reason: the engine's rejections plus the ones the server refused itself;
// - suspect ticks by outcome and the symbols holding one: the engine's counters (main thread only);
// - positions/portfolios revalued, incremental ratio: the shard workers' registries. The two counters
//   are re-published by the main thread, kept monotonic across worker restarts (a restarted worker
//   starts from 0, which Prometheus would otherwise read as a counter reset of the whole sum);
// - worker utilization: each worker's cumulative event-loop time (src/metrics/workerInternal.ts), turned
//   into a ratio over the last utilizationWindowSeconds by the 1 s sampler. Not piscina's per-worker
//   histograms: those time tasks, and a shard is one task that lives as long as its worker;
// - tick-to-publish, batch size, trade ack: engine hooks; store commit: the store's onCommit; HTTP: the
//   server's onHttpRequest hook (each request observed once, by route template and status class);
//   market alerts: the MarketAlert events the market service records, by rule kind.
// A 1 s sampler also keeps the last minute of readings (MetricsSample) for the performance summary.

import { AggregatorRegistry, Registry, type Counter, type Histogram } from 'prom-client';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { MtmEngine } from '../engine/engine.js';
import { projectRoot } from '../projectRoot.js';
import type { ServerStats } from './serverStats.js';
import { clusterInputSources, type ClusterReadings } from '../cluster/counters.js';
import { BucketCounts } from './buckets.js';
import {
  collectProcessMetrics,
  commandResults,
  createMetrics,
  metricSpec,
  statusClassOf,
  statusClasses,
  type CommandResult,
  type HistogramName,
  type Metrics,
  type StatusClass,
} from './catalog.js';
import { memoryLimit } from './memoryLimit.js';
import { Ring } from './ring.js';
import type { MetricsSample, RouteSample, ShardSample } from './sample.js';
import { workerEluMetricName } from './workerInternal.js';

// From the package root, so it resolves the same from src/ (vitest) and dist/ (compiled).
const version = (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;

/** Readings kept: 61 readings bound 60 one-second slots, the performance summary's "last minute". */
export const sampleSlots = 61;
/** The sampler's period (ms) unless MetricsSources.sampleIntervalMs says otherwise. */
export const defaultSampleIntervalMs = 1_000;
/** mtm_worker_utilization_ratio covers this much of the most recent readings. */
export const utilizationWindowSeconds = 10;
/** How long a scrape waits for a shard worker's registry before leaving that worker out. */
const scrapeWorkerTimeoutMs = 1_000;
/** The sampler gives up on a worker sooner: it runs every second and must not pile up. */
const sampleWorkerTimeoutMs = 500;
/** Resolution (ms) of the sampler's own event-loop delay monitor (prom-client's default is 10 ms too). */
const eventLoopResolutionMs = 10;

/**
 * Market alert rule kinds (src/market/alertRules.ts): the `rule` label of mtm_market_alerts_total, created
 * at 0 so the series exist before the first alert. Fails to compile when a kind is added there.
 */
export const marketAlertRuleKinds = ['move', 'zscore', 'silence'] as const;
type RuleKind = import('../market/alertRules.js').AlertRule['kind'] | Extract<import('../domain/types.js').DomainEvent, { type: 'MarketAlert' }>['kind'];
const ruleKindsExhaustive: Record<RuleKind, true> & Record<(typeof marketAlertRuleKinds)[number], true> = { move: true, zscore: true, silence: true };
void ruleKindsExhaustive;

export interface MetricsSources {
  engine: MtmEngine;
  /** The running server; it starts after the metrics (it serves them): pass it later with attachServer. */
  server?: { stats(): ServerStats };
  uwsBinary: string;
  /**
   * The transport label of ticks that reach the engine without passing through the server: 'demo' when
   * `mtm serve --demo` runs the simulated feed (then its only direct caller), else 'inproc' (default).
   */
  directTicks?: 'demo' | 'inproc';
  /** Sampler period; default 1000 ms. The ring holds sampleSlots readings whatever the period. */
  sampleIntervalMs?: number;
  /** The cluster node's readings (src/cluster/counters.ts); the mtm_cluster_* series stay at 0 without one. */
  cluster?: { readings(): ClusterReadings };
}

/** Keeps one shard's cumulative value monotonic: a restarted worker starts again from 0. */
class Carried {
  private last = 0;
  private carried = 0;

  update(value: number): void {
    if (value < this.last) this.carried += this.last;
    this.last = value;
  }

  get total(): number {
    return this.carried + this.last;
  }
}

interface ShardTrack {
  /** Number of the fetch last applied: an older answer arriving late is ignored. */
  fetch: number;
  answered: boolean;
  positions: Carried;
  portfolios: Carried;
  busy: Carried;
  idle: Carried;
  incrementalRatio: number | null;
}

interface RouteTrack {
  method: string;
  route: string;
  latency: BucketCounts;
  byStatusClass: Record<StatusClass, number>;
  requests: Record<StatusClass, Counter.Internal>;
  duration: Histogram.Internal<'route'>;
}

type JsonMetric = { name: string; values?: { value: number; labels?: Record<string, string | number> }[] };

const bucketsOf = (name: HistogramName): readonly number[] => {
  const spec = metricSpec(name);
  if (spec.type !== 'histogram') throw new Error(`${name} is not a histogram`);
  return spec.buckets;
};

const zeroResults = (): Record<CommandResult, number> => ({ ok: 0, rejected: 0, error: 0 });
const commandOf: Record<string, string> = { deposit: 'cash', withdraw: 'cash' };
/** Worker metrics the main thread re-publishes or consumes itself: stripped from the workers' part of the merge. */
const strippedWorkerMetrics: ReadonlySet<string> = new Set(['mtm_positions_revalued_total', 'mtm_portfolios_revalued_total', workerEluMetricName]);

export class EngineMetrics {
  readonly registry = new Registry();
  readonly m: Metrics;
  private sources: MetricsSources;
  /** Last value pushed into each counter series (prom-client counters only go up: we add the difference). */
  private readonly pushed = new Map<string, number>();
  private readonly cleanups: (() => void)[] = [];
  private readonly shards: ShardTrack[] = [];
  private fetches = 0;
  private readonly routes = new Map<string, RouteTrack>();
  private readonly tickToPublish = new BucketCounts(bucketsOf('mtm_tick_to_publish_seconds'));
  private readonly tradeAck = new BucketCounts(bucketsOf('mtm_trade_ack_seconds'));
  private readonly storeCommit = new BucketCounts(bucketsOf('mtm_store_commit_seconds'));
  private readonly httpBuckets = bucketsOf('mtm_http_request_seconds');
  private readonly loopDelay: IntervalHistogram;
  private readonly ring = new Ring<MetricsSample>(sampleSlots);
  private readonly timer: NodeJS.Timeout;
  private sampling = false;
  private lastBatchWallMs = 0;
  private closed = false;

  constructor(sources: MetricsSources) {
    this.sources = sources;
    const { engine } = sources;
    this.m = createMetrics(this.registry, { shards: engine.workers });
    collectProcessMetrics(this.registry);
    // prom-client's gauges named *_total break Prometheus naming (promtool flags them); the same
    // figures are exported without the suffix (nodejs_active_handles etc.).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    this.m.buildInfo.set({ version, kernel: engine.kernel, uws: sources.uwsBinary }, 1);
    for (const rule of marketAlertRuleKinds) this.m.marketAlerts.inc({ rule }, 0);
    this.hookEngine();
    this.loopDelay = monitorEventLoopDelay({ resolution: eventLoopResolutionMs });
    this.loopDelay.enable();
    this.timer = setInterval(() => void this.sampleNow(), sources.sampleIntervalMs ?? defaultSampleIntervalMs);
    this.timer.unref();
  }

  /** The single-slot engine hooks: a hook someone set before (a bench) keeps being called. */
  private hookEngine(): void {
    const { engine } = this.sources;
    const c = engine.counters;
    const m = this.m;
    const prev = { onLatency: c.onLatency, onBatch: c.onBatch, onTradeAck: c.onTradeAck };
    c.onLatency = (seconds) => {
      m.tickToPublish.observe(seconds);
      this.tickToPublish.observe(seconds);
      prev.onLatency?.(seconds);
    };
    c.onBatch = (ticks) => {
      m.coalescedBatchTicks.observe(ticks);
      // Wall clock of the last batch published: within one batch latency of its ticks' acceptance.
      this.lastBatchWallMs = Date.now();
      prev.onBatch?.(ticks);
    };
    c.onTradeAck = (seconds) => {
      m.tradeAck.observe(seconds);
      this.tradeAck.observe(seconds);
      prev.onTradeAck?.(seconds);
    };
    // The acknowledging commits (what commitsTotal counts): journal records, and LMDB transactions of
    // what the journal does not hold; LMDB's commits behind the journal ack nothing.
    const unsubscribe = engine.onStoreCommit((seconds, _events, kind) => {
      if (kind === 'lmdb-behind') return;
      m.storeCommit.observe(seconds);
      this.storeCommit.observe(seconds);
    });
    // Market alerts are domain events (recorded by the market service when it runs): counted once durable.
    // Events come per command, commit or alert, never per tick.
    const unlisten = engine.onEvent(
      (e) => {
        if (e.type === 'MarketAlert') m.marketAlerts.inc({ rule: e.kind });
      },
      ['MarketAlert'],
    );
    this.cleanups.push(() => {
      c.onLatency = prev.onLatency;
      c.onBatch = prev.onBatch;
      c.onTradeAck = prev.onTradeAck;
      unsubscribe();
      unlisten();
    });
  }

  /** The server starts after the metrics (it serves them): attach it once it runs. */
  attachServer(server: { stats(): ServerStats }): void {
    this.sources = { ...this.sources, server };
  }

  /** A cluster node (mtm serve --nats) joins after the engine: attach its readings once it runs. */
  attachCluster(cluster: { readings(): ClusterReadings }): void {
    this.sources = { ...this.sources, cluster };
  }

  /**
   * ServerOptions.onHttpRequest: one observation per request, by route template. The series of a route
   * are created on its first request and cached, so a request costs a map lookup, not a label hash.
   */
  readonly observeHttp = (method: string, route: string, status: number, seconds: number): void => {
    const key = method + ' ' + route;
    let r = this.routes.get(key);
    if (r === undefined) {
      const requests = {} as Record<StatusClass, Counter.Internal>;
      for (const sc of statusClasses) requests[sc] = this.m.httpRequests.labels({ route, status_class: sc });
      r = {
        method,
        route,
        latency: new BucketCounts(this.httpBuckets),
        byStatusClass: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
        requests,
        duration: this.m.httpRequestDuration.labels({ route }),
      };
      this.routes.set(key, r);
    }
    const sc = statusClassOf(status);
    r.byStatusClass[sc]++;
    r.latency.observe(seconds);
    r.requests[sc].inc();
    r.duration.observe(seconds);
  };

  /** Adds to a counter series what its source gained since the last push; a source never goes back. */
  private push(counter: Counter<string>, key: string, labels: Record<string, string> | null, value: number): void {
    const last = this.pushed.get(key) ?? 0;
    if (!(value > last)) return;
    this.pushed.set(key, value);
    if (labels === null) counter.inc(value - last);
    else counter.inc(labels, value - last);
  }

  // ---- shard workers ----

  private track(shard: number): ShardTrack {
    let t = this.shards[shard];
    if (t === undefined) {
      t = { fetch: 0, answered: false, positions: new Carried(), portfolios: new Carried(), busy: new Carried(), idle: new Carried(), incrementalRatio: null };
      this.shards[shard] = t;
    }
    return t;
  }

  /** Every worker's registry; updates the per-shard totals and returns the part of each to merge. */
  private async fetchWorkers(timeoutMs: number): Promise<unknown[][]> {
    const fetch = ++this.fetches;
    const answers = await this.sources.engine.workerMetricsByShard(timeoutMs);
    const merge: unknown[][] = [];
    answers.forEach((answer, shard) => {
      const t = this.track(shard);
      if (answer === null) {
        t.answered = false;
        return;
      }
      const metrics = answer as JsonMetric[];
      if (fetch > t.fetch) {
        t.fetch = fetch;
        t.answered = true;
        for (const metric of metrics) {
          const values = metric.values ?? [];
          if (metric.name === 'mtm_positions_revalued_total') t.positions.update(values[0]?.value ?? 0);
          else if (metric.name === 'mtm_portfolios_revalued_total') t.portfolios.update(values[0]?.value ?? 0);
          else if (metric.name === 'mtm_incremental_ratio') t.incrementalRatio = values[0]?.value ?? null;
          else if (metric.name === workerEluMetricName) {
            for (const v of values) {
              if (v.labels?.state === 'active') t.busy.update(v.value);
              else if (v.labels?.state === 'idle') t.idle.update(v.value);
            }
          }
        }
      }
      merge.push(metrics.filter((x) => !strippedWorkerMetrics.has(x.name)));
    });
    return merge;
  }

  /** Utilization of each shard's worker over the last utilizationWindowSeconds of readings. */
  private utilizationByShard(): number[] {
    const samples = this.ring.toArray();
    const newest = samples[samples.length - 1];
    const out: number[] = [];
    if (newest === undefined) return out;
    const from = newest.atMs - utilizationWindowSeconds * 1000;
    const oldest = samples.find((s) => s.atMs >= from - 1) ?? samples[0];
    for (const s of newest.shards) {
      const before = oldest === newest ? undefined : oldest.shards[s.shard];
      const busy = s.busySeconds - (before?.busySeconds ?? 0);
      const idle = s.idleSeconds - (before?.idleSeconds ?? 0);
      out[s.shard] = busy + idle > 0 ? Math.min(1, Math.max(0, busy / (busy + idle))) : 0;
    }
    return out;
  }

  // ---- scrape ----

  /** Reads the engine's and server's plain counters into the registry. */
  private collect(): void {
    const { engine, server } = this.sources;
    const c = engine.counters;
    const m = this.m;
    const s = server?.stats();

    // Ticks in. The engine counts every tick it saw (accepted or rejected); those the server forwarded
    // are the server's received minus the ones it refused itself; the rest came in directly.
    const feedJson = s?.feedTicksJson ?? 0;
    const feedBinary = s?.feedTicksBinary ?? 0;
    const http = s?.httpTicks ?? 0;
    const refused = s?.ticksRefused ?? {};
    let refusedTotal = 0;
    for (const code in refused) refusedTotal += refused[code];
    const direct = Math.max(0, c.ticksReceived + c.ticksRejected - (feedJson + feedBinary + http - refusedTotal));
    const directTransport = this.sources.directTicks ?? 'inproc';
    this.push(m.ticksReceived, 'rx ws json', { transport: 'ws', encoding: 'json' }, feedJson);
    this.push(m.ticksReceived, 'rx ws binary', { transport: 'ws', encoding: 'binary' }, feedBinary);
    this.push(m.ticksReceived, 'rx http json', { transport: 'http', encoding: 'json' }, http);
    this.push(m.ticksReceived, `rx ${directTransport} object`, { transport: directTransport, encoding: 'object' }, direct);
    const reasons = new Map(c.ticksRejectedByReason);
    for (const code in refused) reasons.set(code, (reasons.get(code) ?? 0) + refused[code]);
    for (const [reason, n] of reasons) this.push(m.ticksRejected, 'rej ' + reason, { reason }, n);
    this.push(m.ticksSuspect, 'suspect held', { outcome: 'held' }, c.ticksHeld);
    this.push(m.ticksSuspect, 'suspect confirmed', { outcome: 'confirmed' }, c.suspectSettled.confirmed);
    this.push(m.ticksSuspect, 'suspect rejected', { outcome: 'rejected' }, c.suspectSettled.rejected);
    m.suspectTicksHeld.set(engine.suspectHeldCount);
    if (this.lastBatchWallMs > 0) m.lastTickTimestamp.set(this.lastBatchWallMs / 1000);

    this.push(m.coalescedBatches, 'batches', null, c.batches);
    let positions = 0;
    let portfolios = 0;
    for (const t of this.shards) {
      if (t === undefined) continue;
      positions += t.positions.total;
      portfolios += t.portfolios.total;
    }
    this.push(m.positionsRevalued, 'positions', null, positions);
    this.push(m.portfoliosRevalued, 'portfolios', null, portfolios);

    // deposit and withdraw are both `cash`, duplicates are `ok`: add up per label set first.
    const commands = new Map<string, { command: string; result: string; n: number }>();
    for (const [key, n] of c.commands) {
      const [kind, result] = key.split('|') as [string, string];
      const command = commandOf[kind] ?? kind;
      const k = command + '|' + result;
      const e = commands.get(k);
      if (e === undefined) commands.set(k, { command, result, n });
      else e.n += n;
    }
    for (const [k, e] of commands) this.push(m.commands, 'cmd ' + k, { command: e.command, result: e.result }, e.n);
    const trades = this.tradeTotals();
    for (const result of commandResults) this.push(m.trades, 'trade ' + result, { result }, trades[result]);
    for (const [limit, n] of c.riskBreaches) this.push(m.riskBreaches, 'breach ' + limit, { limit }, n);
    this.push(m.shardRestarts, 'restarts', null, c.shardRestarts);

    for (const st of engine.shardStats()) m.shardQueueDepth.set({ shard: String(st.shard) }, st.queueDepth);
    const utilization = this.utilizationByShard();
    for (let i = 0; i < engine.workers; i++) m.workerUtilization.set({ shard: String(i) }, utilization[i] ?? 0);
    const store = engine.storeStats();
    m.storeSize.set(store.sizeBytes);
    m.storeMapSize.set(store.mapSizeBytes);
    m.storeMapUsed.set(store.mapUsedBytes);
    m.memoryLimit.set(memoryLimit().bytes);

    const cluster = this.sources.cluster?.readings();
    if (cluster !== undefined) {
      m.clusterPartitionsOwned.set(cluster.partitionsOwned);
      m.clusterPartitionsUnowned.set(cluster.partitionsUnowned);
      m.clusterConsumerLag.set(cluster.consumerLagMessages);
      this.push(m.clusterRebalances, 'cluster rebalances', null, cluster.rebalances);
      this.push(m.clusterFencedWrites, 'cluster fenced', null, cluster.fencedWrites);
      this.push(m.clusterUpdatesRelayed, 'cluster relayed', null, cluster.updatesRelayed);
      for (const source of clusterInputSources) this.push(m.clusterBadInput, 'cluster bad ' + source, { source }, cluster.badInput[source]);
    }

    if (s !== undefined) {
      this.push(m.updatesSent, 'updates', null, s.updatesSent + s.snapshotsSent);
      this.push(m.bytesSent, 'bytes', null, s.bytesSent);
      this.push(m.updatesConflated, 'conflated', null, s.updatesConflated);
      this.push(m.slowConsumerDisconnects, 'slow', null, s.slowConsumerDisconnects);
      m.connections.set({ protocol: 'ws' }, s.connections.main);
      m.connections.set({ protocol: 'compat' }, s.connections.compat);
      m.connections.set({ protocol: 'feed' }, s.connections.feed);
      m.subscriptions.set(s.subscriptions);
    }
  }

  private tradeTotals(): Record<CommandResult, number> {
    const out = zeroResults();
    for (const [result, n] of this.sources.engine.counters.trades) out[result === 'duplicate' ? 'ok' : (result as CommandResult)] += n;
    return out;
  }

  /** One scrape: the main registry merged with every shard worker's. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const workers = await this.fetchWorkers(scrapeWorkerTimeoutMs);
    this.collect();
    const main = await this.registry.getMetricsAsJSON();
    const merged = AggregatorRegistry.aggregate([main, ...workers] as Parameters<typeof AggregatorRegistry.aggregate>[0]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }

  // ---- the last minute, for the performance summary ----

  /** The readings of the last minute, oldest first (at most sampleSlots). */
  samples(): MetricsSample[] {
    return this.ring.toArray();
  }

  /** Takes one reading now (the sampler calls it every second; tests call it to avoid waiting). */
  async sampleNow(): Promise<MetricsSample | null> {
    if (this.sampling || this.closed) return null;
    this.sampling = true;
    try {
      await this.fetchWorkers(sampleWorkerTimeoutMs);
      if (this.closed) return null;
      const sample = this.read();
      this.ring.push(sample);
      return sample;
    } finally {
      this.sampling = false;
    }
  }

  private read(): MetricsSample {
    const { engine, server } = this.sources;
    const c = engine.counters;
    const s = server?.stats();
    const commands = zeroResults();
    for (const [key, n] of c.commands) commands[key.slice(key.indexOf('|') + 1) as CommandResult] += n;
    const http: RouteSample[] = [];
    for (const r of this.routes.values()) http.push({ method: r.method, route: r.route, latency: r.latency.snapshot(), byStatusClass: { ...r.byStatusClass } });
    const loop = this.loopDelay;
    const lagP99Seconds = loop.count > 0 ? loop.percentile(99) / 1e9 : 0;
    const lagMaxSeconds = loop.count > 0 ? loop.max / 1e9 : 0;
    loop.reset();
    const elu = performance.eventLoopUtilization();
    const shards: ShardSample[] = engine.shardStats().map((st) => {
      const t = this.track(st.shard);
      return {
        shard: st.shard,
        state: st.state,
        queueDepth: st.queueDepth,
        restarts: st.restarts,
        answered: t.answered,
        busySeconds: t.busy.total,
        idleSeconds: t.idle.total,
        positionsRevalued: t.positions.total,
        incrementalRatio: t.incrementalRatio,
      };
    });
    let positions = 0;
    let portfolios = 0;
    for (const t of this.shards) {
      if (t === undefined) continue;
      positions += t.positions.total;
      portfolios += t.portfolios.total;
    }
    let refused = 0;
    const refusedByCode = s?.ticksRefused ?? {};
    for (const code in refusedByCode) refused += refusedByCode[code];
    return {
      atMs: performance.now(),
      wallMs: Date.now(),
      // Every transport: what the engine saw plus what the server refused before the engine (see collect).
      ticksReceived: c.ticksReceived + c.ticksRejected + refused,
      ticksRejected: c.ticksRejected + refused,
      batches: c.batches,
      batchTicks: c.batchTicks,
      positionsRevalued: positions,
      portfoliosRevalued: portfolios,
      updatesSent: s === undefined ? 0 : s.updatesSent + s.snapshotsSent,
      bytesSent: s?.bytesSent ?? 0,
      updatesConflated: s?.updatesConflated ?? 0,
      slowConsumerDisconnects: s?.slowConsumerDisconnects ?? 0,
      trades: this.tradeTotals(),
      commands,
      connections: s === undefined ? 0 : s.connections.main + s.connections.compat + s.connections.feed,
      subscriptions: s?.subscriptions ?? 0,
      storeSizeBytes: engine.storeStats().sizeBytes,
      tickToPublish: this.tickToPublish.snapshot(),
      tradeAck: this.tradeAck.snapshot(),
      storeCommit: this.storeCommit.snapshot(),
      http,
      eventLoop: { lagP99Seconds, lagMaxSeconds, busySeconds: elu.active / 1000, idleSeconds: elu.idle / 1000 },
      shards,
    };
  }

  /** Stops the sampler and unhooks the engine. Call before engine.close(): the sampler talks to the workers. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.loopDelay.disable();
    for (const cleanup of this.cleanups) cleanup();
    this.registry.clear();
  }
}
