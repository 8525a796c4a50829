// Latency: the two latencies clients feel (tick to publish, trade acknowledgement) as heatmaps and
// quantiles, plus the share of observations above each SLO threshold, and the HTTP API.
// Quantiles here are computed live over $__rate_interval (they follow the zoom); the Overview uses
// the 1-minute recording rules instead.

import { thresholds } from '../config.js';
import type { DashboardSpec, PanelSpec } from '../panels.js';
import { formatSeconds } from '../rules.js';
import { bucketRate, quantile, rate, rateInterval as R, sel, shareAbove } from '../promql.js';
import type { HistogramName } from '../../../src/metrics/catalog.js';

const D = sel('dashboard');

function latencyPanels(metric: HistogramName, what: string, alert: string, threshold: number): PanelSpec[] {
  return [
    {
      kind: 'heatmap',
      title: `${what}: distribution`,
      description: `Observations per second in each histogram bucket of ${metric} (all selected instances). Bands moving up mean slower ${what.toLowerCase()}.`,
      unit: 's',
      queries: [{ expr: `sum by (le) (${bucketRate(metric, D, R)})`, legend: '{{le}}', format: 'heatmap' }],
    },
    {
      kind: 'timeseries',
      title: `${what}: quantiles`,
      description: `p50, p90 and p99 of ${metric} over the rate interval (all selected instances), log scale. Dashed line: the ${alert} threshold (${formatSeconds(threshold)}).`,
      unit: 's',
      threshold,
      logScale: true,
      queries: [
        { expr: quantile(0.5, metric, D, R), legend: 'p50' },
        { expr: quantile(0.9, metric, D, R), legend: 'p90' },
        { expr: quantile(0.99, metric, D, R), legend: 'p99' },
      ],
    },
    {
      kind: 'timeseries',
      title: `${what}: share slower than ${formatSeconds(threshold)}`,
      description: `Share of observations above the ${alert} threshold, read exactly from the ${threshold} bucket (no interpolation): the SLO's error ratio over the rate interval. Above 1% means p99 is above the threshold.`,
      unit: 'percentunit',
      min: 0,
      width: 24,
      queries: [{ expr: shareAbove(metric, threshold, D, R), legend: `slower than ${formatSeconds(threshold)}` }],
    },
  ];
}

export const latency: DashboardSpec = {
  uid: 'mtm-latency',
  title: 'MTM / Latency',
  description: 'Tick-to-publish and trade-acknowledgement latency (heatmaps, p50/p90/p99, share above the SLO thresholds) and HTTP API latency. Generated from dashboards/src; do not edit in Grafana.',
  rows: [
    {
      title: 'Tick to publish',
      panels: latencyPanels('mtm_tick_to_publish_seconds', 'Tick to publish', 'tick-to-client SLO', thresholds.tickToPublishP99Seconds),
    },
    {
      title: 'Trade acknowledgement',
      panels: latencyPanels('mtm_trade_ack_seconds', 'Trade ack', 'trade ack SLO', thresholds.tradeAckP99Seconds),
    },
    {
      title: 'HTTP API',
      panels: [
        {
          kind: 'timeseries',
          title: 'HTTP p99 by route',
          description: 'p99 HTTP request duration per route template (all selected instances).',
          unit: 's',
          queries: [{ expr: quantile(0.99, 'mtm_http_request_seconds', D, R, ['route']), legend: '{{route}}' }],
        },
        {
          kind: 'timeseries',
          title: 'HTTP requests by status class',
          description: 'HTTP requests per second by status class (2xx, 4xx, 5xx, ...).',
          unit: 'ops',
          stack: true,
          queries: [{ expr: `sum by (status_class) (${rate('mtm_http_requests_total', D, R)})`, legend: '{{status_class}}' }],
        },
      ],
    },
  ],
};
