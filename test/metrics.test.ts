// Proves that GET /metrics of a real engine (2 shard workers) behind a real server, wired as `mtm serve`
// wires it (startObservability), is complete and correct:
// - every catalog metric is exposed with its declared type, and `promtool check metrics` on the live
//   scrape reports nothing (skipped, loudly, only when promtool is not installed);
// - ticks are counted exactly by transport and encoding (feed text and binary frames, POST /api/v1/ticks,
//   direct engine calls), and every rejection exactly once by reason, whether the server or the engine
//   refused it;
// - positions and portfolios revalued, read from the shard workers' registries, agree with the engine's
//   own count, and stay monotonic across a shard worker restart (counted in mtm_shard_restarts_total);
// - commands and trades by result; the trade-ack, tick-to-publish and batch-size histograms count what
//   happened; LMDB commits are observed; market alerts by rule kind; HTTP requests by route template and
//   status class, each observed once in the duration histogram;
// - connections, subscriptions, updates and bytes sent; per-shard worker utilization in 0..1 and queue
//   depth; the last tick time; the event-loop lag gauges;
// - /metrics and /api/v1/performance/* need a valid key (any scope) when keys are configured.

import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { failureResult } from '../src/engine/counters.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { startObservability, type Observability } from '../src/server/observability.js';
import { metricCatalog } from '../src/metrics/catalog.js';
import { encodeFeedRegister, encodeFeedTicks } from '../src/protocol/binary.js';
import { TestSocket, http, isType, sleep, until } from './support/serverHarness.js';

const hasPromtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
if (!hasPromtool) {
  console.warn(
    '\n************************************************************************\n' +
      '* SKIPPED: promtool not installed; CI installs it via apt-get install prometheus\n' +
      '* (test/metrics.test.ts: promtool check metrics on a live scrape)\n' +
      '************************************************************************\n',
  );
}

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition (enough of the format for prom-client's output). */
function parse(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

class Scrape {
  constructor(
    readonly text: string,
    readonly series: Series[],
  ) {}

  /** Sum of the series of `name` whose labels include `labels`; undefined when none matches. */
  get(name: string, labels: Record<string, string> = {}): number | undefined {
    const hits = this.series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    return hits.length === 0 ? undefined : hits.reduce((a, s) => a + s.value, 0);
  }

  n(name: string, labels: Record<string, string> = {}): number {
    return this.get(name, labels) ?? 0;
  }
}

let engine: MtmEngine;
let obs: Observability;
let server: RunningServer;
let url: string;

async function scrape(): Promise<Scrape> {
  const r = await fetch(url + '/metrics');
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  return new Scrape(text, parse(text));
}

beforeAll(async () => {
  engine = await createEngine({ workers: 2, allowFaultInjection: true });
  obs = startObservability(engine, { uwsBinary: 'native' });
  server = await startServer(engine, { port: 0, log: null, limits: { commandsPerSecond: 100_000 }, ...obs.serverOptions });
  obs.attachServer(server);
  url = server.url;
  for (const id of ['m1', 'm2', 'm3']) expect((await http(url, 'POST', '/api/v1/portfolios', { id, cash: 100_000 })).status).toBe(201);
  for (const [i, id] of ['m1', 'm2', 'm3'].entries()) {
    const r = await http(url, 'POST', `/api/v1/portfolios/${id}/trades`, { trade_id: `seed-${i}`, symbol: 'AAA', side: 'buy', quantity: 10, price: 10 });
    expect(r.status).toBe(201);
  }
});

afterAll(async () => {
  await server?.close();
  obs?.close();
  await engine?.close();
});

describe('the live exposition', () => {
  it('exposes every catalog metric with its type, and the process metrics', async () => {
    const s = await scrape();
    for (const m of metricCatalog) expect(s.text, m.name).toContain(`# TYPE ${m.name} ${m.type}`);
    for (const name of ['nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes', 'process_cpu_seconds_total']) expect(s.get(name), name).toBeDefined();
    // prom-client's gauges named *_total are dropped (the same figures exist without the suffix).
    expect(s.text).not.toMatch(/^nodejs_active_handles_total/m);
    // The workers' internal event-loop readings never leave the process.
    expect(s.text).not.toContain('mtm_internal_');
    expect(s.get('mtm_build_info', { kernel: engine.kernel, uws: 'native' })).toBe(1);
    // Closed label sets exist at 0 before their first increment; impossible combinations do not.
    expect(s.get('mtm_ticks_received_total', { transport: 'ws', encoding: 'binary' })).toBeDefined();
    expect(s.get('mtm_ticks_received_total', { transport: 'demo', encoding: 'json' })).toBeUndefined();
    expect(s.get('mtm_market_alerts_total', { rule: 'zscore' })).toBe(0);
    expect(s.get('mtm_shard_queue_depth', { shard: '1' })).toBeDefined();
  });

  it.skipIf(!hasPromtool)('passes promtool check metrics with no finding', async () => {
    await http(url, 'GET', '/api/v1/portfolios/m1'); // so that the HTTP series exist too
    const s = await scrape();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: s.text, encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('ticks', () => {
  it('counts every tick by transport and encoding, and every rejection once by reason', async () => {
    const before = await scrape();
    const feed = await TestSocket.open(url.replace('http', 'ws') + '/ws/feed');
    feed.send({ op: 'register', symbols: ['AAA', 'BBB'] });
    await feed.next(isType('registered'));
    const now = Date.now();
    // Text frame: one good, one refused by the engine (price -1), one refused by the server (not a number).
    feed.send({ op: 'ticks', ticks: [{ symbol: 'AAA', price: 11, ts: now }, { symbol: 'BBB', price: -1, ts: now }, { symbol: 'AAA', price: 'x', ts: now }] });
    await feed.next(isType('feed_ack', (m) => m.accepted === 1 && m.rejected === 2));
    // Binary frame: two good, an unknown symbol id and a negative size (both refused by the server).
    feed.send(
      Buffer.from(
        encodeFeedTicks([
          { symbolId: 0, price: 12, ts: now, size: NaN },
          { symbolId: 1, price: 20, ts: now, size: 5 },
          { symbolId: 99, price: 20, ts: now, size: NaN },
          { symbolId: 1, price: 20, ts: now, size: -1 },
        ]),
      ),
    );
    await feed.next(isType('feed_ack', (m) => m.accepted === 2 && m.rejected === 2));
    // HTTP: one good, one refused by the engine (not a valid symbol).
    const r = await http(url, 'POST', '/api/v1/ticks', [{ symbol: 'BBB', price: 21 }, { symbol: 'bad sym!', price: 1 }]);
    expect(r.body).toMatchObject({ accepted: 1 });
    // Direct calls (embedding code): three good, one refused by the engine.
    expect(engine.ingestTick('CCC', 5, Date.now())).toBeNull();
    expect(engine.ingestTick('CCC', 6, Date.now())).toBeNull();
    expect(engine.ingestTick('AAA', 13, Date.now())).toBeNull();
    expect(engine.ingestTick('CCC', Number.NaN, Date.now())).toBe('invalid_price');
    await feed.close();
    await engine.drain();

    const after = await scrape();
    const d = (labels: Record<string, string>) => after.n('mtm_ticks_received_total', labels) - before.n('mtm_ticks_received_total', labels);
    expect(d({ transport: 'ws', encoding: 'json' })).toBe(3);
    expect(d({ transport: 'ws', encoding: 'binary' })).toBe(4);
    expect(d({ transport: 'http', encoding: 'json' })).toBe(2);
    expect(d({ transport: 'inproc', encoding: 'object' })).toBe(4);
    expect(d({ transport: 'demo' })).toBe(0);
    const rej = (reason: string) => after.n('mtm_ticks_rejected_total', { reason }) - before.n('mtm_ticks_rejected_total', { reason });
    expect(rej('invalid_price')).toBe(3);
    expect(rej('invalid_symbol')).toBe(2);
    expect(rej('invalid_quantity')).toBe(1);
    expect(after.n('mtm_ticks_rejected_total') - before.n('mtm_ticks_rejected_total')).toBe(6);
    // The last accepted tick was published just now (engine wall clock, seconds).
    expect(Math.abs(after.n('mtm_last_tick_timestamp_seconds') - Date.now() / 1000)).toBeLessThan(30);
  });

  it('observes one tick-to-publish latency and one batch size per coalesced batch', async () => {
    const before = await scrape();
    for (let i = 0; i < 5; i++) {
      engine.ingestTicks([{ symbol: 'AAA', price: 14 + i }, { symbol: 'BBB', price: 22 + i }]);
      await engine.drain();
    }
    const after = await scrape();
    const batches = after.n('mtm_coalesced_batches_total') - before.n('mtm_coalesced_batches_total');
    expect(batches).toBeGreaterThanOrEqual(5);
    expect(after.n('mtm_tick_to_publish_seconds_count') - before.n('mtm_tick_to_publish_seconds_count')).toBe(batches);
    expect(after.n('mtm_coalesced_batch_ticks_count') - before.n('mtm_coalesced_batch_ticks_count')).toBe(batches);
    // Each batch held both symbols: the ticks histogram's sum is the ticks published.
    expect(after.n('mtm_coalesced_batch_ticks_sum') - before.n('mtm_coalesced_batch_ticks_sum')).toBe(2 * batches);
  });
});

describe('valuation counters from the shard registries', () => {
  it('agree with the engine and stay monotonic across a shard worker restart', async () => {
    engine.ingestTicks([{ symbol: 'AAA', price: 30 }]);
    await engine.drain();
    const before = await scrape(); // the main thread has now seen every worker's count
    expect(before.n('mtm_positions_revalued_total')).toBe(engine.counters.positionsRevalued);
    expect(before.n('mtm_portfolios_revalued_total')).toBe(engine.counters.portfoliosRevalued);
    expect(before.n('mtm_positions_revalued_total')).toBeGreaterThan(0);

    const victim = engine.shardOf('m1');
    expect(engine.crashShard(victim, 'exit').ok).toBe(true);
    await until(() => engine.shardStats()[victim].restarts === 1 && engine.shardStats()[victim].state === 'ready', 30_000, 'shard restarted');
    engine.ingestTicks([{ symbol: 'AAA', price: 31 }]);
    await engine.drain();
    const after = await scrape();
    expect(after.n('mtm_shard_restarts_total') - before.n('mtm_shard_restarts_total')).toBe(1);
    // The restarted worker's registry starts from 0; the exported counter must not go back.
    expect(after.n('mtm_positions_revalued_total')).toBeGreaterThan(before.n('mtm_positions_revalued_total'));
    expect(after.n('mtm_positions_revalued_total')).toBe(engine.counters.positionsRevalued);
    expect(after.n('mtm_portfolios_revalued_total')).toBe(engine.counters.portfoliosRevalued);
    expect(after.n('mtm_incremental_ratio')).toBeGreaterThan(0);
    expect(after.n('mtm_incremental_ratio')).toBeLessThanOrEqual(1);
  });
});

describe('commands, trades and the store', () => {
  it('counts commands and trades by result and observes acks and commits', async () => {
    const before = await scrape();
    const trade = { trade_id: 'c-1', symbol: 'BBB', side: 'buy', quantity: 1, price: 20 };
    expect((await http(url, 'POST', '/api/v1/portfolios/m2/trades', trade)).status).toBe(201);
    expect((await http(url, 'POST', '/api/v1/portfolios/m2/trades', { ...trade, trade_id: 'c-2' })).status).toBe(201);
    expect((await http(url, 'POST', '/api/v1/portfolios/m2/trades', trade)).status).toBe(200); // idempotent replay: ok
    const refused = await engine.trade('m2', { trade_id: 'c-3', symbol: 'BBB', side: 'sideways' as never, quantity: 1, price: 20 });
    expect(refused.ok).toBe(false);
    expect((await http(url, 'POST', '/api/v1/portfolios/m2/cash', { type: 'withdraw', amount: 1e12 })).status).toBe(409);
    expect((await http(url, 'POST', '/api/v1/portfolios/m2/cash', { type: 'deposit', amount: 5 })).status).toBe(200);
    const after = await scrape();
    const d = (name: string, labels: Record<string, string> = {}) => after.n(name, labels) - before.n(name, labels);
    expect(d('mtm_trades_total', { result: 'ok' })).toBe(3);
    expect(d('mtm_trades_total', { result: 'rejected' })).toBe(1);
    expect(d('mtm_commands_total', { command: 'trade', result: 'ok' })).toBe(3);
    expect(d('mtm_commands_total', { command: 'trade', result: 'rejected' })).toBe(1);
    expect(d('mtm_commands_total', { command: 'cash', result: 'rejected' })).toBe(1);
    expect(d('mtm_commands_total', { command: 'cash', result: 'ok' })).toBe(1);
    expect(d('mtm_commands_total', { result: 'error' })).toBe(0);
    // Acknowledged trades only (the replay too); the refused one has no ack latency.
    expect(d('mtm_trade_ack_seconds_count')).toBe(3);
    expect(d('mtm_store_commit_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(after.n('mtm_store_commit_seconds_bucket', { le: '+Inf' })).toBe(after.n('mtm_store_commit_seconds_count'));
    expect(after.n('mtm_store_size_bytes')).toBeGreaterThan(0);
    // Failures of the engine itself (store, shard, shutdown) are "error", the rest "rejected".
    expect(['store_failed', 'shard_restarting', 'engine_closed'].map(failureResult)).toEqual(['error', 'error', 'error']);
    expect(failureResult('insufficient_cash')).toBe('rejected');
  });
});

describe('market alerts', () => {
  it('counts the MarketAlert events recorded, by rule kind', async () => {
    const before = await scrape();
    const alert = { type: 'MarketAlert' as const, portfolio_id: '_market', ts: Date.now(), rule_id: 'r1', rule_name: 'jump', symbol: 'AAA', figures: {}, cooldown_ms: 0 };
    await engine.recordEvents([
      { ...alert, kind: 'zscore' },
      { ...alert, kind: 'zscore' },
      { ...alert, kind: 'silence' },
    ]);
    const after = await scrape();
    const d = (rule: string) => after.n('mtm_market_alerts_total', { rule }) - before.n('mtm_market_alerts_total', { rule });
    expect([d('move'), d('zscore'), d('silence')]).toEqual([0, 2, 1]);
  });
});

describe('HTTP', () => {
  it('counts requests by route template and status class, one histogram observation each', async () => {
    const before = await scrape();
    for (let i = 0; i < 3; i++) expect((await http(url, 'GET', '/api/v1/portfolios/m1')).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await http(url, 'GET', '/api/v1/portfolios/nope')).status).toBe(404);
    expect((await http(url, 'GET', '/nowhere')).status).toBe(404);
    const after = await scrape();
    const route = '/api/v1/portfolios/{id}';
    const d = (name: string, labels: Record<string, string>) => after.n(name, labels) - before.n(name, labels);
    expect(d('mtm_http_requests_total', { route, status_class: '2xx' })).toBe(3);
    expect(d('mtm_http_requests_total', { route, status_class: '4xx' })).toBe(2);
    expect(d('mtm_http_request_seconds_count', { route })).toBe(5);
    expect(d('mtm_http_request_seconds_bucket', { route, le: '+Inf' })).toBe(5);
    expect(d('mtm_http_requests_total', { route: 'unmatched', status_class: '4xx' })).toBe(1);
    // The scrape before this one was observed too (after its answer was written).
    expect(after.n('mtm_http_requests_total', { route: '/metrics', status_class: '2xx' })).toBeGreaterThanOrEqual(1);
  });
});

describe('clients, shards and the main thread', () => {
  it('reports connections, subscriptions, updates, bytes, utilization and queue depth', async () => {
    const before = await scrape();
    const ws = await TestSocket.open(url.replace('http', 'ws') + '/ws');
    ws.send({ op: 'subscribe', portfolios: ['m1', 'm3'] });
    await ws.next(isType('snapshot'));
    engine.ingestTicks([{ symbol: 'AAA', price: 40 }]);
    await engine.drain();
    await ws.next(isType('update'));
    // Utilization is a ratio over the sampler's readings: take two, a little apart.
    await obs.metrics.sampleNow();
    await sleep(200);
    await obs.metrics.sampleNow();
    const s = await scrape();
    expect(s.n('mtm_connections', { protocol: 'ws' })).toBe(1);
    expect(s.n('mtm_subscriptions')).toBe(2);
    expect(s.n('mtm_updates_sent_total') - before.n('mtm_updates_sent_total')).toBeGreaterThanOrEqual(3); // 2 snapshots + an update
    expect(s.n('mtm_bytes_sent_total')).toBeGreaterThan(before.n('mtm_bytes_sent_total'));
    for (const shard of ['0', '1']) {
      const u = s.get('mtm_worker_utilization_ratio', { shard });
      expect(u, `shard ${shard}`).toBeDefined();
      expect(u).toBeGreaterThan(0);
      expect(u).toBeLessThanOrEqual(1);
      expect(s.get('mtm_shard_queue_depth', { shard })).toBe(0);
    }
    expect(s.n('nodejs_eventloop_lag_p99_seconds')).toBeGreaterThan(0);
    await ws.close();
    await until(async () => (await scrape()).n('mtm_connections', { protocol: 'ws' }) === 0, 5_000, 'connection gauge back to 0');
  });
});

describe('auth', () => {
  it('asks for a valid key, any scope, on /metrics and the performance routes when keys are set', async () => {
    const keys = [{ key: 'feed-only-key-0123456789', name: 'feed', scopes: ['feed'] }];
    const secured = await startServer(engine, { port: 0, log: null, keys, ...obs.serverOptions });
    try {
      for (const path of ['/metrics', '/api/v1/performance/summary', '/api/v1/performance/queries']) {
        expect((await http(secured.url, 'GET', path)).status, path).toBe(401);
        expect((await http(secured.url, 'GET', path, undefined, 'wrong-key-0123456789')).status, path).toBe(401);
        expect((await http(secured.url, 'GET', path, undefined, keys[0].key)).status, path).toBe(200);
      }
    } finally {
      await secured.close();
    }
  });
});
