// The HTTP API's own bodies and answers, defined once (mechanism: src/schema.ts): the ones that are not
// domain messages (src/domain/schemas.ts) nor WebSocket ones (messages.ts). src/server/openapi.ts emits
// them; the answers' tests validate real responses against that document.

import { ErrorCode } from '../errors.js';
import { Type, checkedLater, errorRule, named, nullable } from '../schema.js';
import { ContractAdjustmentInput, SymbolChangeInput, DividendInput, SplitInput, Tick } from '../domain/schemas.js';
import { AlertRulesSchema } from '../market/alertRules.js';
import { fillModes } from '../market/fill.js';
import { timeframes } from '../market/timeframe.js';
import { BarRow, StoredEventSchema, TickRejection } from './messages.js';

export const ErrorBody = named(
  'Error',
  Type.Object({
    error: Type.Object({
      code: Type.Enum([...Object.values(ErrorCode), 'internal']),
      message: Type.String({ description: 'Names the field and the rule it broke' }),
      field: Type.Optional(Type.String()),
      command_id: Type.Optional(Type.String({ description: 'Cluster: a command that timed out (503 partition_unavailable) was published with this id; resend it with ?command_id= to apply it at most once' })),
    }),
  }),
);

const state = () => Type.Enum(['active', 'paused', 'closed']);
const count = (description?: string) => Type.Integer({ minimum: 0, ...(description === undefined ? {} : { description }) });

export const PortfolioSummary = named('PortfolioSummary', Type.Object({ id: Type.String(), name: Type.String(), state: state() }));
export const PortfolioList = named('PortfolioList', Type.Object({ portfolios: Type.Array(PortfolioSummary), next: nullable(Type.String()) }));
export const EventList = named('EventList', Type.Object({ events: Type.Array(StoredEventSchema), next_after_seq: nullable(Type.Integer()) }));

/** POST /api/v1/ticks: `max` is the server's ticksPerBatchMax. Ticks are refused one by one, by index. */
export const TickBatch = (max: number) =>
  Type.Array(checkedLater(Tick), {
    maxItems: max,
    ...errorRule(ErrorCode.invalid_field, undefined, {
      rules: { type: 'must be a JSON array of ticks', maxItems: `may hold at most ${max} ticks per request` },
      codes: { maxItems: ErrorCode.payload_too_large },
    }),
  });
export const TickIngestResult = named(
  'TickIngestResult',
  Type.Object({
    accepted: count('Ticks taken, held ones included'),
    rejected: Type.Array(TickRejection),
    held: count('Of the accepted, ticks held as suspect (not applied until confirmed)'),
  }),
);

const heldTickFields = {
  symbol: Type.String(),
  price: Type.Number(),
  tick_ts: Type.Number({ description: "The held tick's source timestamp (epoch ms)" }),
  ref_price: Type.Number({ description: 'The reference: the last applied price of the symbol' }),
  move_pct: Type.Number({ minimum: 0, description: '|price / ref_price - 1| * 100' }),
};
export const HeldTick = named('HeldTick', Type.Object(heldTickFields));
export const HeldTickList = named('HeldTickList', Type.Object({ ticks: Type.Array(HeldTick) }));
export const SettledTick = named('SettledTick', Type.Object({ ...heldTickFields, outcome: Type.Enum(['confirmed', 'rejected']) }));

export const Health = named(
  'Health',
  Type.Object({
    status: Type.Literal('ok'),
    uws_binary: Type.Enum(['native', 'fallback']),
    transport: Type.Enum(['uws', 'node']),
    kernel: Type.Enum(['wasm', 'js']),
    workers: Type.Integer(),
    uptime_ms: Type.Number(),
    connections: Type.Object({ main: Type.Integer(), compat: Type.Integer(), feed: Type.Integer() }),
  }),
);
export const Ready = named('Ready', Type.Object({ ready: Type.Boolean() }));

const corporateStatus = {
  status: Type.Enum(['pending', 'applied', 'failed']),
  announced_ts: Type.Number(),
  steps: Type.Array(Type.Object({ step: Type.Enum(['split', 'ex_date', 'pay_date', 'symbol_change', 'contract_adjustment']), applied_ts: Type.Number(), holders: count() })),
  error: nullable(Type.Object({ code: Type.String(), message: Type.String() })),
};
/** An action as it stands: its input fields (times resolved) and its status. */
export const CorporateAction = named(
  'CorporateAction',
  Type.Union([
    Type.Object({ ...SplitInput.properties, effective_ts: Type.Integer({ minimum: 0 }), ...corporateStatus }),
    Type.Object({ ...DividendInput.properties, ...corporateStatus }),
    Type.Object({ ...SymbolChangeInput.properties, effective_ts: Type.Integer({ minimum: 0 }), ...corporateStatus }),
    Type.Object({ ...ContractAdjustmentInput.properties, effective_ts: Type.Integer({ minimum: 0 }), ...corporateStatus }),
  ]),
);
export const CorporateActionList = named('CorporateActionList', Type.Object({ actions: Type.Array(CorporateAction), next_after_seq: nullable(Type.Integer()) }));

// ---- market data ----

export const BarPage = named(
  'BarPage',
  Type.Object({
    symbol: Type.String(),
    tf: Type.Enum([...timeframes]),
    from: Type.Integer(),
    to: Type.Integer(),
    fill: Type.Enum([...fillModes]),
    bars: Type.Array(BarRow),
    next_cursor: nullable(Type.String(), { description: 'Pass as cursor (same query) for the next page; null on the last page' }),
  }),
);

/** Market alert rules: defined once beside their validation (src/market/alertRules.ts). */
export const AlertRules = AlertRulesSchema();

// ---- performance (src/server/performance.ts). Closed objects: a field added to the answers without
// being documented fails test/metrics.performance.test.ts.

const nnum = (description?: string) => nullable(Type.Number(), description === undefined ? {} : { description });
const ratio = (description?: string) => nullable(Type.Number({ minimum: 0, maximum: 1 }), description === undefined ? {} : { description });
const closed = <P extends Parameters<typeof Type.Object>[0]>(properties: P, description?: string) =>
  Type.Object(properties, { additionalProperties: false, ...(description === undefined ? {} : { description }) });

const rates = ['ticks_received', 'ticks_rejected', 'batches', 'positions_revalued', 'portfolios_revalued', 'updates_sent', 'bytes_sent', 'updates_conflated', 'trades', 'commands', 'http_requests'] as const;

export const LatencyStats = named(
  'LatencyStats',
  closed({ count: count(), p50: nnum(), p95: nnum(), p99: nnum() }, 'Milliseconds over the window, estimated from histogram buckets like PromQL histogram_quantile; null without observations.'),
);
export const ShardSummary = named(
  'ShardSummary',
  closed({
    shard: count(),
    state: Type.Enum(['starting', 'ready', 'restarting', 'stopped']),
    utilization: ratio("Event-loop utilization of the shard's worker over the window"),
    queue_depth: count(),
    queue_depth_max: count(),
    restarts: count(),
    positions_revalued_per_second: nnum(),
    incremental_ratio: ratio(),
  }),
);
export const PerformanceHint = named(
  'PerformanceHint',
  closed({
    code: Type.Enum(['event_loop_lag', 'main_thread_busy', 'slow_consumers', 'conflation', 'hot_shard', 'slow_commits', 'tick_latency', 'trade_ack_latency', 'feed_idle']),
    message: Type.String(),
  }),
);
export const PerformanceSummary = named(
  'PerformanceSummary',
  closed(
    {
      window_seconds: Type.Number({ minimum: 0 }),
      sampled_at: nullable(Type.String({ format: 'date-time' })),
      latency_ms: closed({ tick_to_publish: LatencyStats, trade_ack: LatencyStats, store_commit: LatencyStats, http: LatencyStats }),
      rates_per_second: closed(Object.fromEntries(rates.map((r) => [r, nnum()])) as Record<(typeof rates)[number], ReturnType<typeof nnum>>),
      ratios: closed({ incremental: ratio(), updates_conflated: ratio(), ticks_rejected: ratio(), ticks_per_batch: nnum() }),
      event_loop: closed({
        lag_p99_ms: nnum('Worst one-second p99 main event-loop delay in the window; includes the 10 ms sampling resolution'),
        lag_max_ms: nnum(),
        utilization: ratio(),
      }),
      connections: count(),
      subscriptions: count(),
      slow_consumer_disconnects: count(),
      shards: Type.Array(ShardSummary),
      busiest_shard: nullable(ShardSummary),
      hints: Type.Array(PerformanceHint),
    },
    'The last minute (a 60-slot ring of once-a-second readings): latencies, rates, ratios, shards and plain-language hints.',
  ),
);
export const RouteQueryStats = named(
  'RouteQueryStats',
  closed({
    method: Type.String(),
    route: Type.String({ description: "Route template, 'unmatched' or 'static'" }),
    count: count(),
    requests_per_second: nnum(),
    error_ratio: ratio('5xx share'),
    client_error_ratio: ratio('4xx share'),
    p50_ms: nnum(),
    p95_ms: nnum(),
    p99_ms: nnum(),
    count_total: count(),
  }),
);
export const PerformanceQueries = named('PerformanceQueries', closed({ window_seconds: Type.Number({ minimum: 0 }), routes: Type.Array(RouteQueryStats) }));
