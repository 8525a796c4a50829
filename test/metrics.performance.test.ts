// Proves the performance summary API (GET /api/v1/performance/summary and /queries):
// - last-minute quantiles are estimated exactly as PromQL's histogram_quantile does (interpolation in
//   the bucket, first bucket from 0, +Inf answered with the highest bound, nothing observed -> null);
// - the readings live in a bounded ring: 61 readings (60 one-second slots), oldest first;
// - summarize() turns readings into rates per second, windowed quantiles and ratios, names the busiest
//   shard, and gives one plain-language hint per bottleneck (event-loop lag, busy main thread, slow
//   consumers, conflation, saturated or hot shard, slow commits, tick and ack latency, idle feed) with
//   the alert rules' thresholds, and none when all is well;
// - summarizeQueries() reports per-route counts, error ratios and quantiles of the window;
// - on a real engine and server, both routes answer 200 with bodies that validate against the OpenAPI
//   document (whose schemas forbid undocumented fields), and 404 when the server has no performance source.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { openApiDocument } from '../src/server/openapi.js';
import { startObservability, type Observability } from '../src/server/observability.js';
import { sampleSlots } from '../src/metrics/engineMetrics.js';
import { BucketCounts, bucketQuantile, type BucketSnapshot } from '../src/metrics/buckets.js';
import { Ring } from '../src/metrics/ring.js';
import { metricSpec } from '../src/metrics/catalog.js';
import type { MetricsSample, RouteSample } from '../src/metrics/sample.js';
import { summarize, summarizeQueries } from '../src/server/performance.js';
import { thresholds } from '../dashboards/src/config.js';
import { http } from './support/serverHarness.js';
import { validate } from './support/serverSchema.js';

function snapshotOf(bounds: readonly number[], values: readonly number[]): BucketSnapshot {
  const b = new BucketCounts(bounds);
  for (const v of values) b.observe(v);
  return b.snapshot();
}

describe('bucket quantiles', () => {
  const bounds = [1, 2, 5];
  it('interpolate like histogram_quantile', () => {
    expect(bucketQuantile(bounds, snapshotOf(bounds, new Array(10).fill(1.5)), 0.5)).toBe(1.5);
    expect(bucketQuantile(bounds, snapshotOf(bounds, new Array(10).fill(0.2)), 0.5)).toBe(0.5); // first bucket starts at 0
    expect(bucketQuantile(bounds, snapshotOf(bounds, [...new Array(9).fill(0.5), 4]), 0.99)).toBeCloseTo(2 + 3 * 0.9, 10);
    expect(bucketQuantile(bounds, snapshotOf(bounds, [100, 200]), 0.5)).toBe(5); // +Inf: the highest finite bound
    expect(bucketQuantile(bounds, snapshotOf(bounds, []), 0.5)).toBeNull();
  });

  it('count a value on a bound in that bucket (le is inclusive)', () => {
    const s = snapshotOf(bounds, [2]);
    expect([...s.counts]).toEqual([0, 1, 0, 0]);
  });
});

describe('the ring', () => {
  it('keeps the newest readings, oldest first', () => {
    const r = new Ring<number>(3);
    expect(r.toArray()).toEqual([]);
    for (let i = 1; i <= 5; i++) r.push(i);
    expect(r.toArray()).toEqual([3, 4, 5]);
    expect(r.newest()).toBe(5);
    expect(r.size).toBe(3);
  });
});

// ---- synthetic readings ----

const tickBounds = (metricSpec('mtm_tick_to_publish_seconds') as { buckets: readonly number[] }).buckets;
const ackBounds = (metricSpec('mtm_trade_ack_seconds') as { buckets: readonly number[] }).buckets;
const commitBounds = (metricSpec('mtm_store_commit_seconds') as { buckets: readonly number[] }).buckets;
const httpBounds = (metricSpec('mtm_http_request_seconds') as { buckets: readonly number[] }).buckets;

interface Load {
  ticksPerSecond: number;
  tickSeconds: number;
  ackSeconds: number;
  commitSeconds: number;
  lagSeconds: number;
  mainBusy: number;
  shardBusy: number[];
  updatesPerSecond: number;
  conflatedPerSecond: number;
  slowDisconnects: number;
}

const healthy: Load = {
  ticksPerSecond: 1000,
  tickSeconds: 0.002,
  ackSeconds: 0.004,
  commitSeconds: 0.001,
  lagSeconds: 0.011,
  mainBusy: 0.3,
  shardBusy: [0.4, 0.35],
  updatesPerSecond: 200,
  conflatedPerSecond: 10,
  slowDisconnects: 0,
};

function route(method: string, path: string, ok: number, notFound: number, errors: number, seconds: number): RouteSample {
  return {
    method,
    route: path,
    latency: snapshotOf(httpBounds, new Array(ok + notFound + errors).fill(seconds)),
    byStatusClass: { '1xx': 0, '2xx': ok, '3xx': 0, '4xx': notFound, '5xx': errors },
  };
}

/** The reading at second t of a steady load (cumulative values grow linearly with t). */
function reading(t: number, load: Load): MetricsSample {
  const n = (perSecond: number) => Math.round(perSecond * t);
  return {
    atMs: 1_000_000 + t * 1000,
    wallMs: 1_700_000_000_000 + t * 1000,
    ticksReceived: n(load.ticksPerSecond),
    ticksRejected: n(load.ticksPerSecond / 100),
    batches: n(100),
    batchTicks: n(load.ticksPerSecond),
    positionsRevalued: n(50_000),
    portfoliosRevalued: n(5_000),
    updatesSent: n(load.updatesPerSecond),
    bytesSent: n(load.updatesPerSecond * 400),
    updatesConflated: n(load.conflatedPerSecond),
    slowConsumerDisconnects: t === 0 ? 0 : load.slowDisconnects,
    trades: { ok: n(5), rejected: n(1), error: 0 },
    commands: { ok: n(6), rejected: n(1), error: 0 },
    connections: 12,
    subscriptions: 40,
    storeSizeBytes: 1 << 20,
    tickToPublish: snapshotOf(tickBounds, new Array(n(100)).fill(load.tickSeconds)),
    tradeAck: snapshotOf(ackBounds, new Array(n(5)).fill(load.ackSeconds)),
    storeCommit: snapshotOf(commitBounds, new Array(n(5)).fill(load.commitSeconds)),
    http: [route('GET', '/api/v1/portfolios/{id}', n(8), n(2), 0, 0.003), route('POST', '/api/v1/portfolios/{id}/trades', n(4), 0, n(1), 0.02)],
    eventLoop: { lagP99Seconds: load.lagSeconds, lagMaxSeconds: load.lagSeconds * 2, busySeconds: t * load.mainBusy, idleSeconds: t * (1 - load.mainBusy) },
    shards: load.shardBusy.map((busy, shard) => ({
      shard,
      state: 'ready',
      queueDepth: shard,
      restarts: 0,
      answered: true,
      busySeconds: t * busy,
      idleSeconds: t * (1 - busy),
      positionsRevalued: n(25_000),
      incrementalRatio: 0.1 * (shard + 1),
    })),
  };
}

const minute = (load: Load): MetricsSample[] => Array.from({ length: sampleSlots }, (_, t) => reading(t, load));
const codes = (load: Load): string[] => summarize(minute(load)).hints.map((h) => h.code);

describe('summarize', () => {
  it('turns a minute of readings into rates, quantiles, ratios and the busiest shard', () => {
    const s = summarize(minute(healthy));
    expect(s.window_seconds).toBe(60);
    expect(s.sampled_at).toBe(new Date(1_700_000_000_000 + 60_000).toISOString());
    expect(s.rates_per_second).toMatchObject({ ticks_received: 1000, ticks_rejected: 10, batches: 100, positions_revalued: 50_000, updates_sent: 200, trades: 6, commands: 7, http_requests: 15 });
    // 0.002 s lies on a bucket bound: every quantile of the bucket (0.001, 0.002] interpolates inside it.
    expect(s.latency_ms.tick_to_publish.count).toBe(6000);
    expect(s.latency_ms.tick_to_publish.p50).toBeCloseTo(1.5, 6);
    expect(s.latency_ms.tick_to_publish.p99).toBeCloseTo(1.99, 6);
    expect(s.latency_ms.trade_ack.p99).toBeLessThanOrEqual(5);
    expect(s.ratios).toEqual({ incremental: 0.2, updates_conflated: round4(10 / 210), ticks_rejected: 0.01, ticks_per_batch: 10 });
    expect(s.event_loop).toEqual({ lag_p99_ms: 11, lag_max_ms: 22, utilization: 0.3 });
    expect(s.shards.map((x) => x.utilization)).toEqual([0.4, 0.35]);
    expect(s.busiest_shard).toMatchObject({ shard: 0, utilization: 0.4 });
    expect(s.hints).toEqual([]);
  });

  it('answers with nulls, not errors, before two readings', () => {
    const empty = summarize([]);
    expect(empty.window_seconds).toBe(0);
    expect(empty.sampled_at).toBeNull();
    expect(empty.rates_per_second.ticks_received).toBeNull();
    expect(empty.busiest_shard).toBeNull();
    const one = summarize([reading(5, healthy)]);
    expect(one.rates_per_second.ticks_received).toBeNull();
    expect(one.shards[0].utilization).toBeNull();
  });

  it('names each bottleneck in plain words, with the alert thresholds', () => {
    expect(codes({ ...healthy, lagSeconds: thresholds.eventLoopLagP99Seconds * 2 })).toContain('event_loop_lag');
    expect(codes({ ...healthy, mainBusy: 0.95 })).toEqual(['main_thread_busy']);
    expect(codes({ ...healthy, slowDisconnects: 2 })).toEqual(['slow_consumers']);
    expect(codes({ ...healthy, conflatedPerSecond: 800 })).toEqual(['conflation']);
    expect(codes({ ...healthy, shardBusy: [0.2, 0.95] })).toEqual(['hot_shard']);
    expect(codes({ ...healthy, shardBusy: [0.1, 0.5, 0.1] })).toEqual(['hot_shard']);
    expect(codes({ ...healthy, commitSeconds: thresholds.storeCommitP99Seconds * 2 })).toEqual(['slow_commits']);
    expect(codes({ ...healthy, tickSeconds: thresholds.tickToPublishP99Seconds * 2 })).toEqual(['tick_latency']);
    expect(codes({ ...healthy, ackSeconds: thresholds.tradeAckP99Seconds * 2 })).toEqual(['trade_ack_latency']);
    expect(codes({ ...healthy, ticksPerSecond: 0 })).toEqual(['feed_idle']);
    const lag = summarize(minute({ ...healthy, lagSeconds: 0.3 })).hints[0];
    expect(lag.message).toMatch(/main event loop is lagging.*300 ms.*threshold 100 ms/);
    const hot = summarize(minute({ ...healthy, shardBusy: [0.2, 0.95] })).hints[0];
    expect(hot.message).toMatch(/^Shard 1 is saturated: its worker was busy 95%/);
    // Just under a threshold: no hint (thresholds are "above").
    expect(codes({ ...healthy, lagSeconds: thresholds.eventLoopLagP99Seconds })).toEqual([]);
  });
});

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

describe('summarizeQueries', () => {
  it('reports per-route counts, error ratios and quantiles, slowest first', () => {
    const q = summarizeQueries(minute(healthy));
    expect(q.window_seconds).toBe(60);
    expect(q.routes.map((r) => `${r.method} ${r.route}`)).toEqual(['POST /api/v1/portfolios/{id}/trades', 'GET /api/v1/portfolios/{id}']);
    const [trades, get] = q.routes;
    expect(trades).toMatchObject({ count: 300, requests_per_second: 5, error_ratio: 0.2, client_error_ratio: 0, count_total: 300 });
    expect(get).toMatchObject({ count: 600, requests_per_second: 10, error_ratio: 0, client_error_ratio: 0.2 });
    expect(trades.p99_ms).toBeGreaterThan(10);
    expect(trades.p99_ms).toBeLessThanOrEqual(25);
  });
});

// ---- on a real engine and server ----

let engine: MtmEngine;
let obs: Observability;
let server: RunningServer;
const openapi = openApiDocument() as any;

function schemaOf(template: string, status: number): unknown {
  return openapi.paths[template].get.responses[String(status)].content['application/json'].schema;
}

beforeAll(async () => {
  engine = await createEngine({ workers: 2 });
  obs = startObservability(engine, { uwsBinary: 'native' });
  server = await startServer(engine, { port: 0, log: null, limits: { commandsPerSecond: 100_000 }, ...obs.serverOptions });
  obs.attachServer(server);
});

afterAll(async () => {
  await server?.close();
  obs?.close();
  await engine?.close();
});

describe('the routes', () => {
  it('answer documented bodies from the last readings', async () => {
    await http(server.url, 'POST', '/api/v1/portfolios', { id: 'perf', cash: 1000 });
    await obs.metrics.sampleNow();
    for (let i = 0; i < 4; i++) await http(server.url, 'GET', '/api/v1/portfolios/perf');
    await http(server.url, 'GET', '/api/v1/portfolios/missing');
    engine.ingestTicks([{ symbol: 'PF', price: 1 }]);
    await engine.drain();
    await obs.metrics.sampleNow();

    const summary = await http(server.url, 'GET', '/api/v1/performance/summary');
    expect(summary.status).toBe(200);
    expect(validate(openapi, schemaOf('/api/v1/performance/summary', 200) as never, summary.body)).toEqual([]);
    expect(summary.body.window_seconds).toBeGreaterThan(0);
    expect(summary.body.shards).toHaveLength(2);
    expect(summary.body.busiest_shard).not.toBeNull();
    expect(summary.body.rates_per_second.http_requests).toBeGreaterThan(0);

    const queries = await http(server.url, 'GET', '/api/v1/performance/queries');
    expect(queries.status).toBe(200);
    expect(validate(openapi, schemaOf('/api/v1/performance/queries', 200) as never, queries.body)).toEqual([]);
    const get = queries.body.routes.find((r: any) => r.method === 'GET' && r.route === '/api/v1/portfolios/{id}');
    expect(get).toMatchObject({ count: 5, client_error_ratio: 0.2, error_ratio: 0 });
    expect(get.p50_ms).toBeGreaterThan(0);
  });

  it('keep at most 61 readings (60 one-second slots)', async () => {
    for (let i = 0; i < sampleSlots + 5; i++) await obs.metrics.sampleNow();
    const samples = obs.metrics.samples();
    expect(samples).toHaveLength(sampleSlots);
    for (let i = 1; i < samples.length; i++) expect(samples[i].atMs).toBeGreaterThanOrEqual(samples[i - 1].atMs);
  });

  it('answer 404 when the server has no performance source', async () => {
    const bare = await startServer(engine, { port: 0, log: null });
    try {
      for (const path of ['/api/v1/performance/summary', '/api/v1/performance/queries']) {
        const r = await http(bare.url, 'GET', path);
        expect(r.status).toBe(404);
        expect(validate(openapi, schemaOf(path, 404) as never, r.body)).toEqual([]);
      }
    } finally {
      await bare.close();
    }
  });
});
