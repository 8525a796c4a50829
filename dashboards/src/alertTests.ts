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

function group(name: string, input_series: InputSeries[], cases: AlertCase[]): TestGroup {
  return { name, interval: '15s', input_series, alert_rule_test: cases };
}

/** Histogram bucket series: `steps` gives the per-15s increment of each bucket (cumulative, as Prometheus stores them). */
function buckets(metric: string, steps: Record<string, string>): InputSeries[] {
  return Object.entries(steps).map(([le, values]) => ({ series: `${metric}_bucket{${labels}, le="${le}"}`, values }));
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
    TickToPublishLatencyHigh: {
      // 5% of ticks between 50ms and 100ms: p99 = 0.05 + 0.05 * (99-95)/(100-95) = 0.09.
      fires: group(
        'TickToPublishLatencyHigh fires when 5% of ticks take over 50ms',
        buckets('mtm_tick_to_publish_seconds', { '0.025': '0+90x60', '0.05': '0+95x60', '0.1': '0+100x60', '+Inf': '0+100x60' }),
        [fires('TickToPublishLatencyHigh', '10m', [expected(rule('TickToPublishLatencyHigh'), target, '90ms')])],
      ),
      silent: [
        // 0.8% of ticks over 50ms: p99 stays inside the 25-50ms bucket.
        group(
          'TickToPublishLatencyHigh stays silent when 0.8% of ticks take over 50ms',
          buckets('mtm_tick_to_publish_seconds', { '0.025': '0+900x60', '0.05': '0+992x60', '0.1': '0+1000x60', '+Inf': '0+1000x60' }),
          [silent('TickToPublishLatencyHigh', '10m')],
        ),
        // 3 minutes at 5% slow, then 0.8%: pending for less than the 5m `for`.
        group(
          'TickToPublishLatencyHigh ignores a 3-minute burst',
          buckets('mtm_tick_to_publish_seconds', {
            '0.025': '0+90x60',
            '0.05': '0+95x12 1239.2+99.2x47',
            '0.1': '0+100x60',
            '+Inf': '0+100x60',
          }),
          [silent('TickToPublishLatencyHigh', '3m'), silent('TickToPublishLatencyHigh', '5m'), silent('TickToPublishLatencyHigh', '10m')],
        ),
      ],
    },
    TradeAckLatencyHigh: {
      // 5% of trades between 250ms and 500ms: p99 = 0.25 + 0.25 * 0.8 = 0.45.
      fires: group(
        'TradeAckLatencyHigh fires when 5% of acks take over 250ms',
        buckets('mtm_trade_ack_seconds', { '0.1': '0+90x60', '0.25': '0+95x60', '0.5': '0+100x60', '+Inf': '0+100x60' }),
        [fires('TradeAckLatencyHigh', '10m', [expected(rule('TradeAckLatencyHigh'), target, '450ms')])],
      ),
      silent: [
        group(
          'TradeAckLatencyHigh stays silent when 0.8% of acks take over 250ms',
          buckets('mtm_trade_ack_seconds', { '0.1': '0+900x60', '0.25': '0+992x60', '0.5': '0+1000x60', '+Inf': '0+1000x60' }),
          [silent('TradeAckLatencyHigh', '10m')],
        ),
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
