// JSON Schemas of GET /api/v1/performance/summary and /queries (src/server/performance.ts), merged into
// the OpenAPI document's components.schemas. additionalProperties: false, so a field added to the
// answers without being documented fails test/metrics.performance.test.ts.

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const nnum = (description?: string): Schema => (description === undefined ? { type: ['number', 'null'] } : { type: ['number', 'null'], description });
const ratio: Schema = { type: ['number', 'null'], minimum: 0, maximum: 1 };
const count: Schema = { type: 'integer', minimum: 0 };
const obj = (properties: Record<string, Schema>, description?: string): Schema => ({
  type: 'object',
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
  ...(description === undefined ? {} : { description }),
});

const rates = [
  'ticks_received',
  'ticks_rejected',
  'batches',
  'positions_revalued',
  'portfolios_revalued',
  'updates_sent',
  'bytes_sent',
  'updates_conflated',
  'trades',
  'commands',
  'http_requests',
];

export const performanceSchemas: Record<string, Schema> = {
  LatencyStats: obj(
    { count, p50: nnum(), p95: nnum(), p99: nnum() },
    'Milliseconds over the window, estimated from histogram buckets like PromQL histogram_quantile; null without observations.',
  ),
  ShardSummary: obj({
    shard: count,
    state: { type: 'string', enum: ['starting', 'ready', 'restarting', 'stopped'] },
    utilization: { ...ratio, description: "Event-loop utilization of the shard's worker over the window" },
    queue_depth: count,
    queue_depth_max: count,
    restarts: count,
    positions_revalued_per_second: nnum(),
    incremental_ratio: ratio,
  }),
  PerformanceHint: obj({
    code: {
      type: 'string',
      enum: ['event_loop_lag', 'main_thread_busy', 'slow_consumers', 'conflation', 'hot_shard', 'slow_commits', 'tick_latency', 'trade_ack_latency', 'feed_idle'],
    },
    message: { type: 'string' },
  }),
  PerformanceSummary: obj(
    {
      window_seconds: { type: 'number', minimum: 0 },
      sampled_at: { type: ['string', 'null'], format: 'date-time' },
      latency_ms: obj({ tick_to_publish: ref('LatencyStats'), trade_ack: ref('LatencyStats'), store_commit: ref('LatencyStats'), http: ref('LatencyStats') }),
      rates_per_second: obj(Object.fromEntries(rates.map((r) => [r, nnum()]))),
      ratios: obj({ incremental: ratio, updates_conflated: ratio, ticks_rejected: ratio, ticks_per_batch: nnum() }),
      event_loop: obj({
        lag_p99_ms: nnum('Worst one-second p99 main event-loop delay in the window; includes the 10 ms sampling resolution'),
        lag_max_ms: nnum(),
        utilization: ratio,
      }),
      connections: count,
      subscriptions: count,
      slow_consumer_disconnects: count,
      shards: { type: 'array', items: ref('ShardSummary') },
      busiest_shard: { oneOf: [ref('ShardSummary'), { type: 'null' }] },
      hints: { type: 'array', items: ref('PerformanceHint') },
    },
    'The last minute (a 60-slot ring of once-a-second readings): latencies, rates, ratios, shards and plain-language hints.',
  ),
  RouteQueryStats: obj({
    method: { type: 'string' },
    route: { type: 'string', description: "Route template, 'unmatched' or 'static'" },
    count,
    requests_per_second: nnum(),
    error_ratio: { ...ratio, description: '5xx share' },
    client_error_ratio: { ...ratio, description: '4xx share' },
    p50_ms: nnum(),
    p95_ms: nnum(),
    p99_ms: nnum(),
    count_total: count,
  }),
  PerformanceQueries: obj({ window_seconds: { type: 'number', minimum: 0 }, routes: { type: 'array', items: ref('RouteQueryStats') } }),
};
