// promtool unit tests for the alerting rules, written to dashboards/prometheus/alerts.test.yaml.
// Every alert has at least one input on which it fires and one near miss on which it stays silent;
// the Record type makes a new alert without both fail to compile.
//
// The input values and the rendered `{{ $value }}` texts below are written by hand, not derived from
// thresholds in config.ts: changing a threshold has to change a test too, which is the point.
// Series are sampled every 15 s, rules evaluated every 15 s (the example scrape and evaluation intervals).

import { engineJob } from './config.js';
import { alertRules, ruleGroups, type AlertName, type AlertRule } from './rules.js';
import type { Yaml } from './serialize.js';

export interface InputSeries {
  series: string;
  values: string;
}
export interface ExpectedAlert {
  exp_labels: Record<string, string>;
  exp_annotations: Record<string, string>;
}
export interface AlertCase {
  eval_time: string;
  alertname: AlertName;
  exp_alerts: ExpectedAlert[];
}
export interface TestGroup {
  name: string;
  interval: string;
  input_series: InputSeries[];
  alert_rule_test: AlertCase[];
}
export interface AlertTests {
  fires: TestGroup;
  silent: [TestGroup, ...TestGroup[]];
}

const instance = 'engine-1:8080';
const labels = `job="${engineJob}", instance="${instance}"`;
const target = { job: engineJob, instance };

/** Fills an alert's annotation templates the way Prometheus will: labels, and `{{ $value | ... }}` with valueText. */
function expected(rule: AlertRule, alertLabels: Record<string, string>, valueText = ''): ExpectedAlert {
  const fill = (template: string) =>
    template.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => alertLabels[name] ?? '').replace(/\{\{ \$value[^}]*\}\}/g, valueText);
  return {
    exp_labels: { ...alertLabels, severity: rule.labels.severity },
    exp_annotations: {
      summary: fill(rule.annotations.summary),
      description: fill(rule.annotations.description),
      runbook_url: rule.annotations.runbook_url,
    },
  };
}

function group(name: string, input_series: InputSeries[], cases: AlertCase[], interval = '15s'): TestGroup {
  return { name, interval, input_series, alert_rule_test: cases };
}

/** Groups whose series span hours sample once a minute: promtool evaluates every rule on every sample of them. */
function hoursGroup(name: string, input_series: InputSeries[], cases: AlertCase[]): TestGroup {
  return group(name, input_series, cases, '1m');
}

/** Histogram bucket series: `steps` gives the per-15s increment of each bucket (cumulative, as Prometheus stores them). */
function buckets(metric: string, steps: Record<string, string>): InputSeries[] {
  return Object.entries(steps).map(([le, values]) => ({ series: `${metric}_bucket{${labels}, le="${le}"}`, values }));
}

/** One segment of a latency histogram's input: `steps` samples, each adding perStep observations of which slowPerStep are slow. */
interface LatencySegment {
  steps: number;
  perStep: number;
  slowPerStep: number;
}

/** `_count` and the `le` bucket of a histogram (cumulative), built from segments of constant rates. */
function latency(metric: string, le: string, segments: LatencySegment[]): InputSeries[] {
  const count: string[] = [];
  const within: string[] = [];
  let c = 0;
  let w = 0;
  segments.forEach((seg, i) => {
    // The first segment starts at 0; each later one at its first increment after the previous one.
    const n = i === 0 ? seg.steps : seg.steps - 1;
    if (i > 0) {
      c += seg.perStep;
      w += seg.perStep - seg.slowPerStep;
    }
    count.push(`${c}+${seg.perStep}x${n}`);
    within.push(`${w}+${seg.perStep - seg.slowPerStep}x${n}`);
    c += seg.perStep * n;
    w += (seg.perStep - seg.slowPerStep) * n;
  });
  return [
    { series: `${metric}_count{${labels}}`, values: count.join(' ') },
    { series: `${metric}_bucket{${labels}, le="${le}"}`, values: within.join(' ') },
  ];
}

export function alertTests(): Record<AlertName, AlertTests> {
  const rules = new Map(alertRules().map((r) => [r.alert, r]));
  const rule = (name: AlertName) => rules.get(name)!;
  const fires = (alertname: AlertName, eval_time: string, alerts: ExpectedAlert[]): AlertCase => ({ eval_time, alertname, exp_alerts: alerts });
  const silent = (alertname: AlertName, eval_time: string): AlertCase => ({ eval_time, alertname, exp_alerts: [] });
  const upAll = { series: `up{${labels}}`, values: '1+0x100' };

  return {
    EngineDown: {
      fires: group('EngineDown fires after 1m of failed scrapes', [{ series: `up{${labels}}`, values: '1+0x2 0+0x20' }], [
        fires('EngineDown', '3m', [expected(rule('EngineDown'), target)]),
      ]),
      silent: [group('EngineDown ignores one failed scrape', [{ series: `up{${labels}}`, values: '1+0x2 0 1+0x20' }], [silent('EngineDown', '3m')])],
    },
    EngineTargetMissing: {
      fires: group('EngineTargetMissing fires when no target has the engine job', [{ series: 'up{job="other", instance="x:1"}', values: '1+0x40' }], [
        fires('EngineTargetMissing', '6m', [expected(rule('EngineTargetMissing'), { job: engineJob })]),
      ]),
      silent: [
        group('EngineTargetMissing stays silent for a target that is down (EngineDown covers it)', [{ series: `up{${labels}}`, values: '0+0x40' }], [
          silent('EngineTargetMissing', '6m'),
        ]),
      ],
    },
    FeedStale: {
      // Ticks until t=60s, then none: the age passes 30s at t=105s and has been above it for 1m at t=165s.
      fires: group('FeedStale fires when no tick arrives for 90s', [{ series: `mtm_last_tick_timestamp_seconds{${labels}}`, values: '0+15x4 60+0x40' }, upAll], [
        fires('FeedStale', '3m', [expected(rule('FeedStale'), target, '2m 0s')]),
      ]),
      silent: [
        // A 75s gap: above 30s for only 30s, less than the 1m `for`.
        group(
          'FeedStale ignores a 75s gap in ticks',
          [{ series: `mtm_last_tick_timestamp_seconds{${labels}}`, values: '0+15x4 60+0x3 135+15x40' }, upAll],
          [silent('FeedStale', '2m'), silent('FeedStale', '3m')],
        ),
        group(
          'FeedStale stays silent while the engine is down (EngineDown covers it)',
          [{ series: `mtm_last_tick_timestamp_seconds{${labels}}`, values: '0+15x4 60+0x40' }, { series: `up{${labels}}`, values: '1+0x4 0+0x40' }],
          [silent('FeedStale', '3m')],
        ),
      ],
    },
    // SLO burn rates (src/metrics/objectives.ts): ticks 99% within 50ms (budget 1%), trade acks 99.9% within
    // 250ms (budget 0.1%). Fast = 14.4x over 1h and 5m, or 6x over 6h and 30m; slow = 3x over 1d and 2h,
    // or 1x over 3d and 6h. Each case: 1000 observations per minute (10000 where a finer share is needed).
    TickToPublishSLOBurnFast: {
      fires: hoursGroup('TickToPublishSLOBurnFast fires when 20% of ticks take over 50ms', latency('mtm_tick_to_publish_seconds', '0.05', [{ steps: 20, perStep: 1000, slowPerStep: 200 }]), [
        fires('TickToPublishSLOBurnFast', '15m', [expected(rule('TickToPublishSLOBurnFast'), target, '20%')]),
      ]),
      silent: [
        // 5x the budget: below both 14.4x and 6x.
        hoursGroup('TickToPublishSLOBurnFast stays silent when 5% of ticks take over 50ms for 30m', latency('mtm_tick_to_publish_seconds', '0.05', [{ steps: 30, perStep: 1000, slowPerStep: 50 }]), [
          silent('TickToPublishSLOBurnFast', '30m'),
        ]),
        // Every tick slow for 2 minutes after 40 minutes at 0.5%: the short windows burn, the long ones stay
        // under (1h: 5.1% < 14.4%; 6h: 5.1% < 6%), so a brief outage (0.5% of the 30d budget) pages nobody.
        hoursGroup(
          'TickToPublishSLOBurnFast ignores a 2-minute burst of slow ticks',
          latency('mtm_tick_to_publish_seconds', '0.05', [
            { steps: 40, perStep: 1000, slowPerStep: 5 },
            { steps: 2, perStep: 1000, slowPerStep: 1000 },
            { steps: 10, perStep: 1000, slowPerStep: 5 },
          ]),
          [silent('TickToPublishSLOBurnFast', '43m'), silent('TickToPublishSLOBurnFast', '47m'), silent('TickToPublishSLOBurnFast', '52m')],
        ),
      ],
    },
    TickToPublishSLOBurnSlow: {
      fires: hoursGroup('TickToPublishSLOBurnSlow fires when 5% of ticks take over 50ms for 30m', latency('mtm_tick_to_publish_seconds', '0.05', [{ steps: 30, perStep: 1000, slowPerStep: 50 }]), [
        fires('TickToPublishSLOBurnSlow', '30m', [expected(rule('TickToPublishSLOBurnSlow'), target, '5%')]),
      ]),
      silent: [
        hoursGroup('TickToPublishSLOBurnSlow stays silent when 0.8% of ticks take over 50ms for 30m', latency('mtm_tick_to_publish_seconds', '0.05', [{ steps: 30, perStep: 1000, slowPerStep: 8 }]), [
          silent('TickToPublishSLOBurnSlow', '30m'),
        ]),
      ],
    },
    TradeAckSLOBurnFast: {
      fires: hoursGroup('TradeAckSLOBurnFast fires when 2% of acks take over 250ms', latency('mtm_trade_ack_seconds', '0.25', [{ steps: 20, perStep: 1000, slowPerStep: 20 }]), [
        fires('TradeAckSLOBurnFast', '15m', [expected(rule('TradeAckSLOBurnFast'), target, '2%')]),
      ]),
      silent: [
        // 5x the 0.1% budget: below both 14.4x and 6x (but the slow burn fires on it, see below).
        hoursGroup('TradeAckSLOBurnFast stays silent when 0.5% of acks take over 250ms for 30m', latency('mtm_trade_ack_seconds', '0.25', [{ steps: 30, perStep: 1000, slowPerStep: 5 }]), [
          silent('TradeAckSLOBurnFast', '30m'),
        ]),
      ],
    },
    TradeAckSLOBurnSlow: {
      fires: hoursGroup('TradeAckSLOBurnSlow fires when 0.5% of acks take over 250ms for 30m', latency('mtm_trade_ack_seconds', '0.25', [{ steps: 30, perStep: 1000, slowPerStep: 5 }]), [
        fires('TradeAckSLOBurnSlow', '30m', [expected(rule('TradeAckSLOBurnSlow'), target, '0.5%')]),
      ]),
      silent: [
        hoursGroup('TradeAckSLOBurnSlow stays silent when 0.08% of acks take over 250ms for 30m', latency('mtm_trade_ack_seconds', '0.25', [{ steps: 30, perStep: 10000, slowPerStep: 8 }]), [
          silent('TradeAckSLOBurnSlow', '30m'),
        ]),
      ],
    },
    StoreCommitSlow: {
      // 5% of commits between 100ms and 250ms: p99 = 0.1 + 0.15 * 0.8 = 0.22.
      fires: group(
        'StoreCommitSlow fires when 5% of commits take over 100ms for 10m',
        buckets('mtm_store_commit_seconds', { '0.05': '0+90x80', '0.1': '0+95x80', '0.25': '0+100x80', '+Inf': '0+100x80' }),
        [fires('StoreCommitSlow', '15m', [expected(rule('StoreCommitSlow'), target, '220ms')])],
      ),
      silent: [
        group(
          'StoreCommitSlow stays silent when 0.8% of commits take over 100ms',
          buckets('mtm_store_commit_seconds', { '0.05': '0+900x80', '0.1': '0+992x80', '0.25': '0+1000x80', '+Inf': '0+1000x80' }),
          [silent('StoreCommitSlow', '15m')],
        ),
      ],
    },
    SlowConsumersDisconnecting: {
      fires: group(
        'SlowConsumersDisconnecting fires at 10 disconnects in 10m',
        [{ series: `mtm_slow_consumer_disconnects_total{${labels}}`, values: '0+0.25x100' }],
        [fires('SlowConsumersDisconnecting', '20m', [expected(rule('SlowConsumersDisconnecting'), target, '10')])],
      ),
      silent: [
        group(
          'SlowConsumersDisconnecting stays silent at 4 disconnects in 10m',
          [{ series: `mtm_slow_consumer_disconnects_total{${labels}}`, values: '0+0.1x100' }],
          [silent('SlowConsumersDisconnecting', '20m')],
        ),
      ],
    },
    ShardRestarting: {
      fires: group('ShardRestarting fires on one restart', [{ series: `mtm_shard_restarts_total{${labels}}`, values: '0+0x20 1+0x20' }], [
        fires('ShardRestarting', '6m', [expected(rule('ShardRestarting'), target, '1')]),
      ]),
      silent: [
        // The engine process restarting resets the counter from 3 to 0: that is not a shard restart.
        group('ShardRestarting ignores a counter reset by a process restart', [{ series: `mtm_shard_restarts_total{${labels}}`, values: '3+0x20 0+0x20' }], [
          silent('ShardRestarting', '6m'),
        ]),
      ],
    },
    RiskBreachesSpiking: {
      fires: group(
        'RiskBreachesSpiking fires at 40 max_loss breaches in 5m',
        [{ series: `mtm_risk_breaches_total{${labels}, limit="max_loss"}`, values: '0+2x40' }],
        [fires('RiskBreachesSpiking', '8m', [expected(rule('RiskBreachesSpiking'), { ...target, limit: 'max_loss' }, '40')])],
      ),
      silent: [
        // 45 breaches in 5m in total, but 15 per limit: the threshold is per limit.
        group(
          'RiskBreachesSpiking stays silent at 15 breaches of each limit in 5m',
          [
            { series: `mtm_risk_breaches_total{${labels}, limit="max_loss"}`, values: '0+0.75x40' },
            { series: `mtm_risk_breaches_total{${labels}, limit="max_drawdown_pct"}`, values: '0+0.75x40' },
            { series: `mtm_risk_breaches_total{${labels}, limit="max_position_weight_pct"}`, values: '0+0.75x40' },
          ],
          [silent('RiskBreachesSpiking', '8m')],
        ),
      ],
    },
    EventLoopLagHigh: {
      fires: group('EventLoopLagHigh fires at 200ms p99 lag for 5m', [{ series: `nodejs_eventloop_lag_p99_seconds{${labels}}`, values: '0.2+0x40' }], [
        fires('EventLoopLagHigh', '8m', [expected(rule('EventLoopLagHigh'), target, '200ms')]),
      ]),
      silent: [
        group('EventLoopLagHigh stays silent at 90ms p99 lag', [{ series: `nodejs_eventloop_lag_p99_seconds{${labels}}`, values: '0.09+0x40' }], [
          silent('EventLoopLagHigh', '8m'),
        ]),
      ],
    },
    // Capacity: a straight line fitted over the last hour, extrapolated 4h. Used bytes grow 4e6 per minute
    // (240 MB/h) from 1e9 toward a 2e9 limit: the forecast passes 2e9 after 10 minutes. The processes
    // started an hour before the series (process_start_time_seconds -3600) unless a case says otherwise.
    StoreMapFillingUp: {
      fires: hoursGroup(
        'StoreMapFillingUp fires when the used map grows 240 MB/h toward a 2 GB map',
        [
          { series: `mtm_store_map_used_bytes{${labels}}`, values: '1000000000+4000000x40' },
          { series: `mtm_store_map_size_bytes{${labels}}`, values: '2000000000+0x40' },
        ],
        [fires('StoreMapFillingUp', '30m', [expected(rule('StoreMapFillingUp'), target, '1.937Gi')])],
      ),
      silent: [
        hoursGroup(
          'StoreMapFillingUp stays silent at 60 MB/h (the map fills in over 16h)',
          [
            { series: `mtm_store_map_used_bytes{${labels}}`, values: '1000000000+1000000x40' },
            { series: `mtm_store_map_size_bytes{${labels}}`, values: '2000000000+0x40' },
          ],
          [silent('StoreMapFillingUp', '30m')],
        ),
      ],
    },
    MemoryFillingUp: {
      fires: hoursGroup(
        'MemoryFillingUp fires when resident memory grows 240 MB/h toward a 2 GB limit',
        [
          { series: `process_resident_memory_bytes{${labels}}`, values: '1000000000+4000000x40' },
          { series: `mtm_memory_limit_bytes{${labels}}`, values: '2000000000+0x40' },
          { series: `process_start_time_seconds{${labels}}`, values: '-3600+0x40' },
        ],
        [fires('MemoryFillingUp', '30m', [expected(rule('MemoryFillingUp'), target, '1.937Gi')])],
      ),
      silent: [
        hoursGroup(
          'MemoryFillingUp stays silent at 60 MB/h',
          [
            { series: `process_resident_memory_bytes{${labels}}`, values: '1000000000+1000000x40' },
            { series: `mtm_memory_limit_bytes{${labels}}`, values: '2000000000+0x40' },
            { series: `process_start_time_seconds{${labels}}`, values: '-3600+0x40' },
          ],
          [silent('MemoryFillingUp', '30m')],
        ),
        // The same growth from a process started 30 minutes before: its first hour (loading its book) is no trend.
        hoursGroup(
          'MemoryFillingUp stays silent during the first hour of a process',
          [
            { series: `process_resident_memory_bytes{${labels}}`, values: '1000000000+4000000x40' },
            { series: `mtm_memory_limit_bytes{${labels}}`, values: '2000000000+0x40' },
            { series: `process_start_time_seconds{${labels}}`, values: '0+0x40' },
          ],
          [silent('MemoryFillingUp', '30m')],
        ),
      ],
    },
    PartitionUnowned: {
      // A failover: two partitions unowned for 30s, then one stays unowned. Fires on the one, after 1m.
      fires: group(
        'PartitionUnowned fires when a partition stays unowned for 1m',
        [{ series: `mtm_cluster_partitions_unowned{${labels}}`, values: '0+0x4 2+0x2 1+0x20' }],
        [fires('PartitionUnowned', '5m', [expected(rule('PartitionUnowned'), { job: engineJob }, '1')])],
      ),
      silent: [
        group(
          'PartitionUnowned stays silent through a 45s failover',
          [{ series: `mtm_cluster_partitions_unowned{${labels}}`, values: '0+0x4 3+0x2 0+0x20' }],
          [silent('PartitionUnowned', '5m')],
        ),
      ],
    },
    ConsumerLagHigh: {
      fires: group(
        'ConsumerLagHigh fires at 1500 messages behind for 5m',
        [{ series: `mtm_cluster_consumer_lag_messages{${labels}}`, values: '1500+0x40' }],
        [fires('ConsumerLagHigh', '8m', [expected(rule('ConsumerLagHigh'), target, '1500')])],
      ),
      silent: [
        group(
          'ConsumerLagHigh stays silent at 900 messages behind',
          [{ series: `mtm_cluster_consumer_lag_messages{${labels}}`, values: '900+0x40' }],
          [silent('ConsumerLagHigh', '8m')],
        ),
        group(
          'ConsumerLagHigh stays silent through a 3m backlog',
          [{ series: `mtm_cluster_consumer_lag_messages{${labels}}`, values: '5000+0x12 0+0x30' }],
          [silent('ConsumerLagHigh', '8m')],
        ),
      ],
    },
  };
}

/** The promtool test file: rule files are named relative to it (both live in dashboards/prometheus/). */
export function alertTestFile(): Yaml {
  const tests = Object.values(alertTests()).flatMap((t) => [t.fires, ...t.silent]);
  return {
    rule_files: ['recording.yaml', 'alerts.yaml'],
    evaluation_interval: '15s',
    // Recording rules first, so alerts read the quantiles of the same evaluation.
    group_eval_order: [ruleGroups.recording, ruleGroups.alerts],
    tests: tests as unknown as Yaml,
  };
}
