// Prometheus recording and alerting rules, as data. generate.ts writes them to
// dashboards/prometheus/recording.yaml and alerts.yaml; alertTests.ts holds their promtool tests.
//
// Recording rules exist where the dashboards and the alerts would otherwise each compute the same
// histogram quantile over every bucket series: they are evaluated once per interval and keep the
// job and instance labels, so both can still filter by them.
// Naming: mtm:<metric>:<operation>_<window>, the `mtm` level meaning "aggregated by job and instance".
//
// SLOs (src/metrics/objectives.ts; written down in dashboards/README.md): the error ratio of each
// objective (share of observations slower than its threshold) is recorded over every window the
// multi-window multi-burn-rate alerts read, and over the SLO window for the budget panels. The
// latency alerts are those burn-rate alerts, not bare thresholds on a quantile.

import { assertThresholdsOnBuckets, burnRateWindows, capacity, engineJob, objectives, recordingWindow, runbookPath, thresholds, type LatencyObjective } from './config.js';
import { errorRatio, increase, quantile, sel, series } from './promql.js';

const J = sel('rule');
const W = recordingWindow;

export const recorded = {
  tickToPublishP50: `mtm:tick_to_publish_seconds:p50_${W}`,
  tickToPublishP99: `mtm:tick_to_publish_seconds:p99_${W}`,
  tradeAckP50: `mtm:trade_ack_seconds:p50_${W}`,
  tradeAckP99: `mtm:trade_ack_seconds:p99_${W}`,
  storeCommitP99: `mtm:store_commit_seconds:p99_${W}`,
} as const;

export interface RecordingRule {
  record: string;
  expr: string;
}

/** Every window an SLO error ratio is recorded over: the burn-rate alerts' windows, then the SLO window. */
export const sloWindows: readonly string[] = [...new Set([...burnRateWindows.flatMap((w) => [w.short, w.long]), objectives.tickToPublish.window, objectives.tradeAck.window])];

/** The recorded error ratio of an objective over a window, e.g. mtm:tick_to_publish_seconds:slo_error_ratio_1h. */
export function sloErrorRatio(o: LatencyObjective, window: string): string {
  return `mtm:${o.metric.replace(/^mtm_/, '')}:slo_error_ratio_${window}`;
}

/** The error budget of an objective: the share of observations allowed to be slow (1 - target), printed without float noise. */
export function errorBudget(o: LatencyObjective): number {
  return Number((1 - o.target).toPrecision(12));
}

export const sloObjectives: readonly LatencyObjective[] = [objectives.tickToPublish, objectives.tradeAck];

export const recordingRules: readonly RecordingRule[] = [
  { record: recorded.tickToPublishP50, expr: quantile(0.5, 'mtm_tick_to_publish_seconds', J, W, ['job', 'instance']) },
  { record: recorded.tickToPublishP99, expr: quantile(0.99, 'mtm_tick_to_publish_seconds', J, W, ['job', 'instance']) },
  { record: recorded.tradeAckP50, expr: quantile(0.5, 'mtm_trade_ack_seconds', J, W, ['job', 'instance']) },
  { record: recorded.tradeAckP99, expr: quantile(0.99, 'mtm_trade_ack_seconds', J, W, ['job', 'instance']) },
  { record: recorded.storeCommitP99, expr: quantile(0.99, 'mtm_store_commit_seconds', J, W, ['job', 'instance']) },
  ...sloObjectives.flatMap((o) => sloWindows.map((w) => ({ record: sloErrorRatio(o, w), expr: errorRatio(o.metric, o.thresholdSeconds, J, w, ['job', 'instance']) }))),
];

export const alertNames = [
  'EngineDown',
  'EngineTargetMissing',
  'FeedStale',
  'TickToPublishSLOBurnFast',
  'TickToPublishSLOBurnSlow',
  'TradeAckSLOBurnFast',
  'TradeAckSLOBurnSlow',
  'StoreCommitSlow',
  'SlowConsumersDisconnecting',
  'ShardRestarting',
  'RiskBreachesSpiking',
  'EventLoopLagHigh',
  'StoreMapFillingUp',
  'MemoryFillingUp',
  'PartitionUnowned',
  'ConsumerLagHigh',
] as const;
export type AlertName = (typeof alertNames)[number];

/** critical pages someone now (clients get wrong or no marks); warning opens a ticket for working hours. */
export type Severity = 'critical' | 'warning';

export interface AlertRule {
  alert: AlertName;
  expr: string;
  for: string;
  labels: { severity: Severity };
  annotations: { summary: string; description: string; runbook_url: string };
}

/** Human form of a threshold in seconds, as it appears in annotations ("50ms", "30s"). */
export function formatSeconds(s: number): string {
  if (s >= 3600 && s % 3600 === 0) return `${s / 3600}h`;
  return s < 1 ? `${Math.round(s * 1000)}ms` : `${s}s`;
}

/** The runbook anchor of an alert: GitHub's slug of the `## <AlertName>` heading. */
export function runbookAnchor(alert: AlertName): string {
  return alert.toLowerCase();
}

function alert(
  name: AlertName,
  expr: string,
  forDuration: string,
  severity: Severity,
  summary: string,
  description: string,
  runbookBase: string,
): AlertRule {
  return {
    alert: name,
    expr,
    for: forDuration,
    labels: { severity },
    annotations: { summary, description, runbook_url: `${runbookBase}#${runbookAnchor(name)}` },
  };
}

const up = series('up', J);

/** The alerting rules; runbookBase prefixes runbook_url (a repository URL in production, the path by default). */
export function alertRules(runbookBase: string = runbookPath): AlertRule[] {
  assertThresholdsOnBuckets();
  const t = thresholds;
  return [
    alert(
      'EngineDown',
      `${up} == 0`,
      '1m',
      'critical',
      'MTM engine {{ $labels.instance }} is down',
      'Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for over 1m: the engine is down, hung or unreachable, and its clients get no marks.',
      runbookBase,
    ),
    alert(
      'EngineTargetMissing',
      `absent(${up})`,
      '5m',
      'critical',
      'No MTM engine target is being scraped',
      `Prometheus has had no target with job="${engineJob}" for 5m: the scrape config or service discovery lost the engine, and no other engine alert can fire.`,
      runbookBase,
    ),
    alert(
      'FeedStale',
      // `and up == 1`: when the engine itself is down, EngineDown is the alert to get, not this one.
      `time() - ${series('mtm_last_tick_timestamp_seconds', J)} > ${t.feedStaleSeconds} and on (job, instance) ${up} == 1`,
      '1m',
      'critical',
      'Price feed stale on {{ $labels.instance }}',
      `No tick accepted for {{ $value | humanizeDuration }} (threshold ${formatSeconds(t.feedStaleSeconds)}) while the engine is up: marks and P&L are stale.`,
      runbookBase,
    ),
    ...sloAlerts(objectives.tickToPublish, 'TickToPublishSLOBurnFast', 'TickToPublishSLOBurnSlow', 'clients see prices late', runbookBase),
    ...sloAlerts(objectives.tradeAck, 'TradeAckSLOBurnFast', 'TradeAckSLOBurnSlow', 'traders wait for confirmations', runbookBase),
    alert(
      'StoreCommitSlow',
      `${recorded.storeCommitP99}${J} > ${t.storeCommitP99Seconds}`,
      '10m',
      'warning',
      'LMDB commit p99 above ' + formatSeconds(t.storeCommitP99Seconds) + ' on {{ $labels.instance }}',
      `p99 store commit latency has been above ${formatSeconds(t.storeCommitP99Seconds)} for 10m (now {{ $value | humanizeDuration }}): trade acks and commands wait on the disk.`,
      runbookBase,
    ),
    alert(
      'SlowConsumersDisconnecting',
      `sum by (job, instance) (${increase('mtm_slow_consumer_disconnects_total', J, t.slowConsumerWindow)}) > ${t.slowConsumerDisconnects}`,
      '5m',
      'warning',
      'Clients disconnected as slow consumers on {{ $labels.instance }}',
      `{{ $value | printf "%.0f" }} client sockets were closed as slow consumers in the last ${t.slowConsumerWindow} (threshold ${t.slowConsumerDisconnects}): clients cannot keep up with the update rate, or the network to them is congested.`,
      runbookBase,
    ),
    alert(
      'ShardRestarting',
      `sum by (job, instance) (${increase('mtm_shard_restarts_total', J, t.shardRestartWindow)}) > ${t.shardRestarts}`,
      '0m',
      'warning',
      'Shard worker restarted on {{ $labels.instance }}',
      `{{ $value | printf "%.0f" }} shard worker restart(s) in the last ${t.shardRestartWindow}: a shard crashed, exited or hit its heap limit, and its portfolios were unavailable until it recovered.`,
      runbookBase,
    ),
    alert(
      'RiskBreachesSpiking',
      `sum by (job, instance, limit) (${increase('mtm_risk_breaches_total', J, t.riskBreachWindow)}) > ${t.riskBreaches}`,
      '0m',
      'warning',
      'Breaches of {{ $labels.limit }} spiking on {{ $labels.instance }}',
      `{{ $value | printf "%.0f" }} portfolios entered breach of {{ $labels.limit }} in the last ${t.riskBreachWindow} (threshold ${t.riskBreaches}): a market move, or a bad price making many portfolios breach at once.`,
      runbookBase,
    ),
    alert(
      'EventLoopLagHigh',
      `nodejs_eventloop_lag_p99_seconds${J} > ${t.eventLoopLagP99Seconds}`,
      '5m',
      'warning',
      'Main event loop lagging on {{ $labels.instance }}',
      `The main thread's p99 event-loop delay has been above ${formatSeconds(t.eventLoopLagP99Seconds)} for 5m (now {{ $value | humanizeDuration }}): every tick, trade and client write waits behind it.`,
      runbookBase,
    ),
    alert(
      'StoreMapFillingUp',
      `predict_linear(${series('mtm_store_map_used_bytes', J)}[${capacity.fitWindow}], ${capacity.horizonSeconds}) > on (job, instance) ${series('mtm_store_map_size_bytes', J)}`,
      '15m',
      'warning',
      'LMDB map of {{ $labels.instance }} fills within ' + horizon,
      `At the growth of the last ${capacity.fitWindow}, the event store's used pages reach the LMDB map size within ${horizon} (forecast {{ $value | humanize1024 }}B): lmdb-js will grow the map, which needs free disk and address space; a full disk stops every trade.`,
      runbookBase,
    ),
    alert(
      'MemoryFillingUp',
      // The fit needs a whole window of this process: a fresh one loading its book would look like a leak.
      `predict_linear(process_resident_memory_bytes${J}[${capacity.fitWindow}], ${capacity.horizonSeconds}) > on (job, instance) ${series('mtm_memory_limit_bytes', J)}` +
        ` and on (job, instance) time() - process_start_time_seconds${J} > ${capacity.fitWindowSeconds}`,
      '15m',
      'critical',
      'Memory of {{ $labels.instance }} reaches its limit within ' + horizon,
      `At the growth of the last ${capacity.fitWindow}, the engine's resident memory reaches its limit (the container's cgroup memory.max, else the host's memory) within ${horizon} (forecast {{ $value | humanize1024 }}B): the process will be OOM-killed and every client loses its marks.`,
      runbookBase,
    ),
    alert(
      'PartitionUnowned',
      // Worst view of the job: one node seeing an unowned partition is enough (the bucket is shared).
      `max by (job) (${series('mtm_cluster_partitions_unowned', J)}) > 0`,
      t.partitionUnownedFor,
      'critical',
      'Cluster partitions without owner in {{ $labels.job }}',
      `{{ $value | printf "%.0f" }} partition(s) have had no owner for ${t.partitionUnownedFor} (a failover takes about 10s): commands for their portfolios are refused (partition_unavailable) and their subscribers get no updates.`,
      runbookBase,
    ),
    alert(
      'ConsumerLagHigh',
      `max by (job, instance) (${series('mtm_cluster_consumer_lag_messages', J)}) > ${t.consumerLagMessages}`,
      t.consumerLagFor,
      'warning',
      'Cluster node {{ $labels.instance }} behind on its command streams',
      `{{ $value | printf "%.0f" }} command-stream messages of the partitions {{ $labels.instance }} owns have waited to be applied for ${t.consumerLagFor} (threshold ${t.consumerLagMessages}): trade acks are late by that backlog.`,
      runbookBase,
    ),
  ];
}

const horizon = formatSeconds(capacity.horizonSeconds);

/** A number in PromQL without float noise (14.4 * 0.01 is 0.14400000000000002 in JavaScript). */
const promNumber = (n: number) => String(Number(n.toPrecision(12)));

/**
 * The SRE workbook's multi-window multi-burn-rate alerts for one objective: one paging alert for the
 * fast burns (critical) and one ticket for the slow ones (warning). Each condition needs the long and
 * the short window above the burn rate; $value is the long window's error ratio.
 */
function sloAlerts(o: LatencyObjective, fast: AlertName, slow: AlertName, impact: string, runbookBase: string): AlertRule[] {
  const budget = errorBudget(o);
  const condition = (w: (typeof burnRateWindows)[number]) => {
    const bound = promNumber(w.burnRate * budget);
    return `(${sloErrorRatio(o, w.long)}${J} > ${bound} and ${sloErrorRatio(o, w.short)}${J} > ${bound})`;
  };
  const of = (severity: Severity) => burnRateWindows.filter((w) => w.severity === severity);
  const objective = `${promNumber(o.target * 100)}% of ${o.what} within ${formatSeconds(o.thresholdSeconds)} over ${o.window}`;
  const describe = (severity: Severity) => {
    const ws = of(severity);
    return (
      `{{ $value | humanizePercentage }} of ${o.what} took over ${formatSeconds(o.thresholdSeconds)} over the last ${ws.map((w) => w.long).join(' or ')} ` +
      `(objective: ${objective}, i.e. at most ${promNumber(budget * 100)}% slow): the error budget burns ${ws.map((w) => `${w.burnRate}x`).join(' or ')} faster than the objective allows, and ${impact}.`
    );
  };
  const rule = (name: AlertName, severity: Severity, forDuration: string, pace: string) =>
    alert(name, of(severity).map(condition).join(' or '), forDuration, severity, `${o.what[0].toUpperCase()}${o.what.slice(1)} on {{ $labels.instance }} burn their latency SLO ${pace}`, describe(severity), runbookBase);
  return [rule(fast, 'critical', '2m', 'fast'), rule(slow, 'warning', '15m', 'steadily')];
}

export const ruleGroups = {
  recording: 'mtm.recording',
  alerts: 'mtm.alerts',
} as const;
