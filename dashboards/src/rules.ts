// Prometheus recording and alerting rules, as data. generate.ts writes them to
// dashboards/prometheus/recording.yaml and alerts.yaml; alertTests.ts holds their promtool tests.
//
// Recording rules exist where the dashboards and the alerts would otherwise each compute the same
// histogram quantile over every bucket series: they are evaluated once per interval and keep the
// job and instance labels, so both can still filter by them.
// Naming: mtm:<metric>:<operation>_<window>, the `mtm` level meaning "aggregated by job and instance".

import { assertThresholdsOnBuckets, engineJob, recordingWindow, runbookPath, thresholds } from './config.js';
import { increase, quantile, sel, series } from './promql.js';

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

export const recordingRules: readonly RecordingRule[] = [
  { record: recorded.tickToPublishP50, expr: quantile(0.5, 'mtm_tick_to_publish_seconds', J, W, ['job', 'instance']) },
  { record: recorded.tickToPublishP99, expr: quantile(0.99, 'mtm_tick_to_publish_seconds', J, W, ['job', 'instance']) },
  { record: recorded.tradeAckP50, expr: quantile(0.5, 'mtm_trade_ack_seconds', J, W, ['job', 'instance']) },
  { record: recorded.tradeAckP99, expr: quantile(0.99, 'mtm_trade_ack_seconds', J, W, ['job', 'instance']) },
  { record: recorded.storeCommitP99, expr: quantile(0.99, 'mtm_store_commit_seconds', J, W, ['job', 'instance']) },
];

export const alertNames = [
  'EngineDown',
  'EngineTargetMissing',
  'FeedStale',
  'TickToPublishLatencyHigh',
  'TradeAckLatencyHigh',
  'StoreCommitSlow',
  'SlowConsumersDisconnecting',
  'ShardRestarting',
  'RiskBreachesSpiking',
  'EventLoopLagHigh',
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
    alert(
      'TickToPublishLatencyHigh',
      `${recorded.tickToPublishP99}${J} > ${t.tickToPublishP99Seconds}`,
      '5m',
      'warning',
      'Tick-to-publish p99 above ' + formatSeconds(t.tickToPublishP99Seconds) + ' on {{ $labels.instance }}',
      `p99 tick-to-publish latency has been above ${formatSeconds(t.tickToPublishP99Seconds)} for 5m (now {{ $value | humanizeDuration }}): clients see prices late.`,
      runbookBase,
    ),
    alert(
      'TradeAckLatencyHigh',
      `${recorded.tradeAckP99}${J} > ${t.tradeAckP99Seconds}`,
      '5m',
      'warning',
      'Trade ack p99 above ' + formatSeconds(t.tradeAckP99Seconds) + ' on {{ $labels.instance }}',
      `p99 trade acknowledgement latency has been above ${formatSeconds(t.tradeAckP99Seconds)} for 5m (now {{ $value | humanizeDuration }}): traders wait for confirmations.`,
      runbookBase,
    ),
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
  ];
}

export const ruleGroups = {
  recording: 'mtm.recording',
  alerts: 'mtm.alerts',
} as const;
