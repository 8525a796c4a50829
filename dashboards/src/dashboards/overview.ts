// Overview: is the engine up, are prices flowing, and RED (rate, errors, duration) for the three
// flows ops care about (ticks in, trades, client updates out), then errors and saturation.
// Start here; the other dashboards explain what this one shows.

import { objectives, thresholds, type LatencyObjective } from '../config.js';
import type { DashboardSpec, PanelSpec } from '../panels.js';
import { increase, rate, rateInterval as R, sel, series } from '../promql.js';
import { errorBudget, formatSeconds, recorded, sloErrorRatio } from '../rules.js';

const D = sel('dashboard');

/** The SLO row's two panels for one objective: budget spent over the SLO window, and burn rates. */
function sloPanels(o: LatencyObjective, title: string, fast: string, slow: string): PanelSpec[] {
  const budget = errorBudget(o);
  const objective = `${Number((o.target * 100).toPrecision(12))}% of ${o.what} within ${formatSeconds(o.thresholdSeconds)} over ${o.window}`;
  return [
    {
      kind: 'stat',
      title: `${title} SLO: budget spent (${o.window})`,
      description: `Share of the ${o.window} error budget spent, worst instance (recording rule ${sloErrorRatio(o, o.window)} / ${budget}). Objective: ${objective}. Red at 100%: the objective is missed.`,
      unit: 'percentunit',
      width: 5,
      threshold: 1,
      queries: [{ expr: `max(${sloErrorRatio(o, o.window)}${D}) / ${budget}`, legend: 'budget spent', instant: true }],
    },
    {
      kind: 'timeseries',
      title: `${title} SLO: burn rate`,
      description: `How many times faster than the objective allows the error budget burns, over 1h, 6h and 3d (error ratio / ${budget}). Above the dashed line (1) the budget runs out before ${o.window}; ${fast} pages at 14.4x over 1h or 6x over 6h, ${slow} opens a ticket at 3x over 1d or 1x over 3d (each with its short window too).`,
      unit: 'short',
      min: 0,
      width: 7,
      threshold: 1,
      queries: ['1h', '6h', '3d'].map((w) => ({ expr: `${sloErrorRatio(o, w)}${D} / ${budget}`, legend: `${w} {{instance}}` })),
    },
  ];
}

export const overview: DashboardSpec = {
  uid: 'mtm-overview',
  title: 'MTM / Overview',
  description: 'Health of the mark-to-market engine: feed, ticks, trades and client updates (rate, errors, duration), errors and saturation. Generated from dashboards/src; do not edit in Grafana.',
  rows: [
    {
      title: 'Status',
      panels: [
        {
          kind: 'stat',
          title: 'Engines up',
          description: 'Engine targets of the selected job that answered the last scrape (sum of `up`). Fewer than you run: see the EngineDown alert.',
          unit: 'none',
          width: 4,
          noValue: '0',
          queries: [{ expr: `sum(${series('up', D)})`, legend: 'up', instant: true }],
        },
        {
          kind: 'stat',
          title: 'Feed age',
          description: `Seconds since the last tick was accepted, worst instance. Red above ${thresholds.feedStaleSeconds} s, the FeedStale alert threshold: marks are stale.`,
          unit: 's',
          width: 5,
          threshold: thresholds.feedStaleSeconds,
          queries: [{ expr: `max(time() - ${series('mtm_last_tick_timestamp_seconds', D)})`, legend: 'feed age', instant: true }],
        },
        {
          kind: 'stat',
          title: 'Tick-to-publish p99',
          description: `p99 over the last minute (recording rule), worst instance. Red above ${thresholds.tickToPublishP99Seconds} s, the tick-to-client SLO threshold (p99 above it: more than 1% slow).`,
          unit: 's',
          width: 5,
          threshold: thresholds.tickToPublishP99Seconds,
          queries: [{ expr: `max(${recorded.tickToPublishP99}${D})`, legend: 'p99', instant: true }],
        },
        {
          kind: 'stat',
          title: 'Trade ack p99',
          description: `p99 trade acknowledgement over the last minute (recording rule), worst instance. Red above ${thresholds.tradeAckP99Seconds} s, the trade ack SLO threshold.`,
          unit: 's',
          width: 5,
          threshold: thresholds.tradeAckP99Seconds,
          queries: [{ expr: `max(${recorded.tradeAckP99}${D})`, legend: 'p99', instant: true }],
        },
        {
          kind: 'stat',
          title: 'Build',
          description: 'Version, valuation kernel (wasm or js) and uWebSockets.js version of each instance, from mtm_build_info.',
          unit: 'none',
          width: 5,
          show: 'name',
          queries: [{ expr: series('mtm_build_info', D), legend: '{{instance}} {{version}} kernel={{kernel}} uws={{uws}}', instant: true }],
        },
      ],
    },
    {
      title: 'Service level objectives',
      panels: [
        ...sloPanels(objectives.tickToPublish, 'Tick-to-client', 'TickToPublishSLOBurnFast', 'TickToPublishSLOBurnSlow'),
        ...sloPanels(objectives.tradeAck, 'Trade ack', 'TradeAckSLOBurnFast', 'TradeAckSLOBurnSlow'),
      ],
    },
    {
      title: 'Ticks in',
      panels: [
        {
          kind: 'timeseries',
          title: 'Ticks received by transport',
          description: 'Ticks per second received from feeds (accepted or rejected), by transport (ws, http, demo, inproc). A drop to zero is a feed outage.',
          unit: 'ops',
          stack: true,
          queries: [{ expr: `sum by (transport) (${rate('mtm_ticks_received_total', D, R)})`, legend: '{{transport}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Tick rejections by reason',
          description: 'Ticks per second refused at ingestion, by error code. Only reasons with rejections are drawn.',
          unit: 'ops',
          noValue: '0',
          stack: true,
          queries: [{ expr: `sum by (reason) (${rate('mtm_ticks_rejected_total', D, R)}) > 0`, legend: '{{reason}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Tick rejection ratio',
          description: 'Share of received ticks that were rejected. A jump usually means a feed sending a new symbol set or bad prices.',
          unit: 'percentunit',
          min: 0,
          queries: [{ expr: `sum(${rate('mtm_ticks_rejected_total', D, R)}) / sum(${rate('mtm_ticks_received_total', D, R)})`, legend: 'rejected' }],
        },
        {
          kind: 'timeseries',
          title: 'Suspect ticks by outcome',
          description:
            'Ticks per second that moved a price more than suspectMovePct: held instead of applied, then confirmed (a real move) or rejected (a bad print) by the next tick or an admin. Many rejections: a feed sending bad prints; many confirmations: a threshold too tight for the market.',
          unit: 'ops',
          noValue: '0',
          queries: [{ expr: `sum by (outcome) (${rate('mtm_ticks_suspect_total', D, R)})`, legend: '{{outcome}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Symbols holding a suspect tick',
          description: 'Symbols whose latest tick is held now: their marks wait for the next tick or an admin (GET /api/v1/marks/suspect lists them).',
          unit: 'none',
          noValue: '0',
          min: 0,
          queries: [{ expr: `sum by (instance) (${series('mtm_suspect_ticks_held', D)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Tick-to-publish latency',
          description: `p50 and p99 from a tick's arrival to its updates reaching client sockets, per instance, over 1-minute windows (recording rules). Dashed line: the SLO threshold (${thresholds.tickToPublishP99Seconds} s).`,
          unit: 's',
          threshold: thresholds.tickToPublishP99Seconds,
          queries: [
            { expr: `${recorded.tickToPublishP50}${D}`, legend: 'p50 {{instance}}' },
            { expr: `${recorded.tickToPublishP99}${D}`, legend: 'p99 {{instance}}' },
          ],
        },
      ],
    },
    {
      title: 'Trades',
      panels: [
        {
          kind: 'timeseries',
          title: 'Trades by result',
          description: 'Trades per second: ok (booked or idempotent replay), rejected (client reason), error (engine failure).',
          unit: 'ops',
          stack: true,
          queries: [{ expr: `sum by (result) (${rate('mtm_trades_total', D, R)})`, legend: '{{result}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Trade failure ratio',
          description: 'Share of trades rejected (client reasons: validation, cash, limits) and failed (engine errors: store, shard). Errors should be zero.',
          unit: 'percentunit',
          min: 0,
          queries: [
            { expr: `sum(${rate('mtm_trades_total', sel('dashboard', 'result="rejected"'), R)}) / sum(${rate('mtm_trades_total', D, R)})`, legend: 'rejected' },
            { expr: `sum(${rate('mtm_trades_total', sel('dashboard', 'result="error"'), R)}) / sum(${rate('mtm_trades_total', D, R)})`, legend: 'error' },
          ],
        },
        {
          kind: 'timeseries',
          title: 'Trade ack latency',
          description: `p50 and p99 from a trade arriving to its acknowledgement, per instance, over 1-minute windows (recording rules). Dashed line: the SLO threshold (${thresholds.tradeAckP99Seconds} s).`,
          unit: 's',
          threshold: thresholds.tradeAckP99Seconds,
          width: 24,
          queries: [
            { expr: `${recorded.tradeAckP50}${D}`, legend: 'p50 {{instance}}' },
            { expr: `${recorded.tradeAckP99}${D}`, legend: 'p99 {{instance}}' },
          ],
        },
      ],
    },
    {
      title: 'Client updates out',
      panels: [
        {
          kind: 'timeseries',
          title: 'Updates sent and conflated',
          description: 'Portfolio updates per second written to client sockets, and updates merged into a later one instead (throttling, backpressure).',
          unit: 'ops',
          queries: [
            { expr: `sum(${rate('mtm_updates_sent_total', D, R)})`, legend: 'sent' },
            { expr: `sum(${rate('mtm_updates_conflated_total', D, R)})`, legend: 'conflated' },
          ],
        },
        {
          kind: 'timeseries',
          title: 'Bytes sent',
          description: 'Bytes per second of update and snapshot frames written to client sockets.',
          unit: 'Bps',
          queries: [{ expr: `sum(${rate('mtm_bytes_sent_total', D, R)})`, legend: 'bytes' }],
        },
        {
          kind: 'timeseries',
          title: 'Slow consumer disconnects',
          description: `Client sockets closed per minute for not draining their backlog (close code 4008). The SlowConsumersDisconnecting alert fires above ${thresholds.slowConsumerDisconnects} in ${thresholds.slowConsumerWindow}.`,
          unit: 'opm',
          queries: [{ expr: `60 * sum(${rate('mtm_slow_consumer_disconnects_total', D, R)})`, legend: 'disconnects' }],
        },
        {
          kind: 'timeseries',
          title: 'Connections by protocol',
          description: 'Open WebSocket connections: ws (clients), compat (per-portfolio sockets), feed (price feeds).',
          unit: 'short',
          stack: true,
          queries: [{ expr: `sum by (protocol) (${series('mtm_connections', D)})`, legend: '{{protocol}}' }],
        },
      ],
    },
    {
      title: 'Errors',
      panels: [
        {
          kind: 'timeseries',
          title: 'Failed commands',
          description: 'Portfolio commands per second that were rejected (client reason) or failed (engine error), by command. Only non-zero series are drawn.',
          unit: 'ops',
          noValue: '0',
          queries: [{ expr: `sum by (command, result) (${rate('mtm_commands_total', sel('dashboard', 'result!="ok"'), R)}) > 0`, legend: '{{command}} {{result}}' }],
        },
        {
          kind: 'timeseries',
          title: 'HTTP 5xx ratio',
          description: 'Share of HTTP requests answered with a 5xx status (engine closed, shard restarting, store failed).',
          unit: 'percentunit',
          min: 0,
          queries: [
            {
              // `or vector(0)`: route is an open label, so no 5xx series exists until the first 5xx.
              expr: `(sum(${rate('mtm_http_requests_total', sel('dashboard', 'status_class="5xx"'), R)}) or vector(0)) / sum(${rate('mtm_http_requests_total', D, R)})`,
              legend: '5xx',
            },
          ],
        },
        {
          kind: 'timeseries',
          title: 'Shard restarts',
          description: 'Shard workers restarted by the supervisor in each interval. Any restart is a crash: see the ShardRestarting runbook.',
          unit: 'short',
          queries: [{ expr: `sum by (instance) (${increase('mtm_shard_restarts_total', D, R)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Risk breaches by limit',
          description: `Portfolios entering breach per minute, by limit. The RiskBreachesSpiking alert fires above ${thresholds.riskBreaches} of one limit in ${thresholds.riskBreachWindow}.`,
          unit: 'opm',
          queries: [{ expr: `60 * sum by (limit) (${rate('mtm_risk_breaches_total', D, R)})`, legend: '{{limit}}' }],
        },
      ],
    },
    {
      title: 'Saturation',
      panels: [
        {
          kind: 'timeseries',
          title: 'Shard queue depth (deepest shard)',
          description: 'Commands and batches waiting for the busiest shard worker, per instance. A queue that keeps growing means the shard cannot keep up.',
          unit: 'short',
          queries: [{ expr: `max by (instance) (${series('mtm_shard_queue_depth', D)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Worker utilization (busiest shard)',
          description: 'Event-loop utilization of the busiest shard worker, per instance (1 = always busy).',
          unit: 'percentunit',
          min: 0,
          max: 1,
          queries: [{ expr: `max by (instance) (${series('mtm_worker_utilization_ratio', D)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Main event-loop lag p99',
          description: `p99 delay of the main thread's event loop since the previous scrape (about 0.01 s when idle: it includes the 10 ms sampling resolution). Dashed line: the EventLoopLagHigh threshold (${thresholds.eventLoopLagP99Seconds} s).`,
          unit: 's',
          threshold: thresholds.eventLoopLagP99Seconds,
          queries: [{ expr: 'max by (instance) (nodejs_eventloop_lag_p99_seconds' + D + ')', legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Process CPU',
          description: 'CPU time used by the engine process per second of wall time (100% = one core busy; the shard workers are included).',
          unit: 'percentunit',
          min: 0,
          queries: [{ expr: `sum by (instance) (rate(process_cpu_seconds_total${D}[${R}]))`, legend: '{{instance}}' }],
        },
      ],
    },
    {
      // mtm serve --nats (docs/CLUSTER.md); every series is 0 on a single node.
      title: 'Cluster',
      panels: [
        {
          kind: 'stat',
          title: 'Unowned partitions',
          description: `Partitions no node owns, worst view of the job (the ownership bucket as each node sees it). Their portfolios accept no command. Above 0 for ${thresholds.partitionUnownedFor}: see the PartitionUnowned alert.`,
          unit: 'short',
          width: 4,
          threshold: 1,
          queries: [{ expr: `max(${series('mtm_cluster_partitions_unowned', D)})`, legend: 'unowned', instant: true }],
        },
        {
          kind: 'timeseries',
          title: 'Partitions owned by node',
          description: 'Partitions each node serves. After a node joins or leaves the lines move to a fair share (partitions / nodes, rounded up).',
          unit: 'short',
          min: 0,
          width: 10,
          queries: [{ expr: `max by (instance) (${series('mtm_cluster_partitions_owned', D)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Command-stream consumer lag',
          description: `Command-stream messages each node has not applied yet over the partitions it owns. Dashed line: the ConsumerLagHigh threshold (${thresholds.consumerLagMessages} for ${thresholds.consumerLagFor}).`,
          unit: 'short',
          min: 0,
          width: 10,
          threshold: thresholds.consumerLagMessages,
          queries: [{ expr: `max by (instance) (${series('mtm_cluster_consumer_lag_messages', D)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Rebalances and fenced writes',
          description: 'Ownership rounds that moved partitions (a node joined, left or missed its heartbeats) and writes refused from a stale owner (fenced), per interval.',
          unit: 'short',
          queries: [
            { expr: `sum by (instance) (${increase('mtm_cluster_rebalances_total', D, R)})`, legend: 'rebalances {{instance}}' },
            { expr: `sum by (instance) (${increase('mtm_cluster_fenced_writes_total', D, R)})`, legend: 'fenced {{instance}}' },
          ],
        },
        {
          kind: 'timeseries',
          title: 'Relayed updates and refused cluster input',
          description: "Updates relayed per second from owners to this node's subscribers, and cluster messages refused as malformed or foreign, by source (commands, kv, ticks, updates, rpc).",
          unit: 'short',
          queries: [
            { expr: `sum by (instance) (${rate('mtm_cluster_updates_relayed_total', D, R)})`, legend: 'relayed/s {{instance}}' },
            { expr: `sum by (source) (${rate('mtm_cluster_bad_input_total', D, R)})`, legend: 'refused/s {{source}}' },
          ],
        },
      ],
    },
  ],
};
