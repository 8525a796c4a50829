// Wires the catalog to a running engine (and server): engine and server keep plain counters; this
// module turns them into prom-client metrics at scrape time, and merges every shard worker's own
// registry into the same scrape with AggregatorRegistry.aggregate (per-metric aggregators from the
// catalog). Histograms are observed as things happen: once per batch or per trade, never per tick.
import { AggregatorRegistry, Registry } from 'prom-client';
import { createRequire } from 'node:module';
import type { MtmEngine } from '../engine/engine.js';
import type { ServerStats } from '../server/stats.js';
import { collectProcessMetrics, createMetrics, statusClassOf, type Metrics } from './catalog.js';

const version = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

export interface MetricsSources {
  engine: MtmEngine;
  server?: { stats(): ServerStats };
  uwsBinary: string;
}

type CounterLike = { inc(labels: Record<string, string>, value: number): void; inc(value: number): void };

/** Turns a monotonic plain number into counter increments (prom-client counters cannot be set). */
class CounterSync {
  private readonly last = new Map<string, number>();

  sync(counter: CounterLike, labels: Record<string, string> | null, value: number): void {
    const key = labels === null ? '' : JSON.stringify(labels);
    const delta = value - (this.last.get(key) ?? 0);
    this.last.set(key, value);
    if (delta <= 0) return;
    if (labels === null) counter.inc(delta);
    else counter.inc(labels, delta);
  }
}

const commandOf: Record<string, string> = { deposit: 'cash', withdraw: 'cash' };

export class EngineMetrics {
  readonly registry = new Registry();
  readonly m: Metrics;
  private readonly counters = new Map<object, CounterSync>();
  private readonly removeHooks: (() => void)[] = [];

  constructor(private sources: MetricsSources) {
    const { engine } = sources;
    this.m = createMetrics(this.registry, { shards: engine.workers });
    collectProcessMetrics(this.registry);
    // prom-client's gauges named *_total break Prometheus naming (promtool flags them); the same
    // figures are exported without the suffix (nodejs_active_handles etc.).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    this.m.buildInfo.set({ version, kernel: engine.kernel, uws: sources.uwsBinary }, 1);
    const c = engine.counters;
    c.onLatency = (seconds) => this.m.tickToPublish.observe(seconds);
    c.onBatch = (ticks) => {
      this.m.coalescedBatchTicks.observe(ticks);
    };
    c.onTradeAck = (seconds) => this.m.tradeAck.observe(seconds);
    this.removeHooks.push(() => {
      c.onLatency = null;
      c.onBatch = null;
      c.onTradeAck = null;
    });
  }

  /** The server starts after the metrics (it serves them): attach it once it runs. */
  attachServer(server: { stats(): ServerStats }): void {
    this.sources = { ...this.sources, server };
  }

  private syncFor(metric: object): CounterSync {
    let s = this.counters.get(metric);
    if (s === undefined) {
      s = new CounterSync();
      this.counters.set(metric, s);
    }
    return s;
  }

  /** Reads the engine's and server's plain counters into the registry. */
  private collect(): void {
    const { engine, server } = this.sources;
    const c = engine.counters;
    const m = this.m;
    const serverStats = server?.stats();
    const feed = serverStats?.feedTicksAccepted ?? 0;
    this.syncFor(m.ticksReceived).sync(m.ticksReceived as never, { transport: 'ws', encoding: 'json' }, feed);
    this.syncFor(m.ticksReceived).sync(m.ticksReceived as never, { transport: 'inproc', encoding: 'object' }, Math.max(0, c.ticksReceived - feed));
    for (const [reason, n] of c.ticksRejectedByReason) this.syncFor(m.ticksRejected).sync(m.ticksRejected as never, { reason }, n);
    this.syncFor(m.coalescedBatches).sync(m.coalescedBatches as never, null, c.batches);
    m.lastTickTimestamp.set(c.lastTickTsMs / 1000);
    for (const [key, n] of c.commands) {
      const [kind, result] = key.split('|') as [string, string];
      this.syncFor(m.commands).sync(m.commands as never, { command: commandOf[kind] ?? kind, result }, n);
    }
    for (const [result, n] of c.trades) this.syncFor(m.trades).sync(m.trades as never, { result: result === 'duplicate' ? 'ok' : result }, n);
    for (const [limit, n] of c.riskBreaches) this.syncFor(m.riskBreaches).sync(m.riskBreaches as never, { limit }, n);
    this.syncFor(m.shardRestarts).sync(m.shardRestarts as never, null, c.shardRestarts);
    for (const s of engine.shardStats()) m.shardQueueDepth.set({ shard: String(s.shard) }, s.queueDepth);
    const utilization = engine.utilization;
    for (let i = 0; i < engine.workers; i++) m.workerUtilization.set({ shard: String(i) }, utilization);
    const store = engine.storeStats();
    m.storeSize.set(store.sizeBytes);
    if (serverStats !== undefined) this.collectServer(serverStats);
  }

  private collectServer(s: ServerStats): void {
    const m = this.m;
    this.syncFor(m.updatesSent).sync(m.updatesSent as never, null, s.updatesSent);
    this.syncFor(m.bytesSent).sync(m.bytesSent as never, null, s.bytesSent);
    this.syncFor(m.updatesConflated).sync(m.updatesConflated as never, null, s.updatesConflated);
    this.syncFor(m.slowConsumerDisconnects).sync(m.slowConsumerDisconnects as never, null, s.slowConsumerDisconnects);
    m.connections.set({ protocol: 'ws' }, s.connections.main);
    m.connections.set({ protocol: 'compat' }, s.connections.compat);
    m.connections.set({ protocol: 'feed' }, s.connections.feed);
    m.subscriptions.set(s.subscriptions);
    for (const r of s.http) {
      this.syncFor(m.httpRequests).sync(m.httpRequests as never, { route: r.route, status_class: statusClassOf(Number(r.statusClass[0]) * 100) }, r.count);
    }
  }

  /** One scrape: the main registry merged with every shard worker's. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    this.collect();
    const main = await this.registry.getMetricsAsJSON();
    const workers = await this.sources.engine.workerMetrics();
    const merged = AggregatorRegistry.aggregate([main, ...workers] as Parameters<typeof AggregatorRegistry.aggregate>[0]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }

  close(): void {
    for (const r of this.removeHooks) r();
    this.registry.clear();
  }
}
