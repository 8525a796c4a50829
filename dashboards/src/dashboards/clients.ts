// Clients: who is connected, how much they subscribe to, and how the engine copes when they cannot
// keep up (conflation first, then slow-consumer disconnects).

import { thresholds } from '../config.js';
import type { DashboardSpec } from '../panels.js';
import { rate, rateInterval as R, sel, series } from '../promql.js';

const D = sel('dashboard');

export const clients: DashboardSpec = {
  uid: 'mtm-clients',
  title: 'MTM / Clients',
  description: 'Client connections, subscriptions, update and byte rates, conflation and slow-consumer disconnects. Generated from dashboards/src; do not edit in Grafana.',
  rows: [
    {
      title: 'Connections',
      panels: [
        {
          kind: 'timeseries',
          title: 'Connections by protocol',
          description: 'Open WebSocket connections: ws (clients on /ws), compat (per-portfolio sockets), feed (price feeds on /ws/feed).',
          unit: 'short',
          stack: true,
          width: 8,
          queries: [{ expr: `sum by (protocol) (${series('mtm_connections', D)})`, legend: '{{protocol}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Subscriptions',
          description: 'Active portfolio subscriptions per instance.',
          unit: 'short',
          width: 8,
          queries: [{ expr: `sum by (instance) (${series('mtm_subscriptions', D)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Subscriptions per client connection',
          description: 'Average portfolios subscribed per client connection (ws and compat; feeds excluded).',
          unit: 'short',
          width: 8,
          queries: [
            {
              expr: `sum(${series('mtm_subscriptions', D)}) / sum(${series('mtm_connections', sel('dashboard', 'protocol=~"ws|compat"'))})`,
              legend: 'per connection',
            },
          ],
        },
      ],
    },
    {
      title: 'Updates',
      panels: [
        {
          kind: 'timeseries',
          title: 'Updates sent',
          description: 'Portfolio updates and snapshots per second written to client sockets, per instance.',
          unit: 'ops',
          width: 8,
          queries: [{ expr: `sum by (instance) (${rate('mtm_updates_sent_total', D, R)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Updates conflated',
          description: 'Updates per second merged into a later update of the same portfolio instead of being sent: throttled subscriptions, or sockets above the backpressure soft bound.',
          unit: 'ops',
          width: 8,
          queries: [{ expr: `sum by (instance) (${rate('mtm_updates_conflated_total', D, R)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Conflation ratio',
          description: 'Conflated / (sent + conflated). Rising without a throttle change means clients are falling behind.',
          unit: 'percentunit',
          min: 0,
          max: 1,
          width: 8,
          queries: [
            {
              expr: `sum(${rate('mtm_updates_conflated_total', D, R)}) / (sum(${rate('mtm_updates_sent_total', D, R)}) + sum(${rate('mtm_updates_conflated_total', D, R)}))`,
              legend: 'conflated',
            },
          ],
        },
      ],
    },
    {
      title: 'Backpressure and bandwidth',
      panels: [
        {
          kind: 'timeseries',
          title: 'Slow consumer disconnects',
          description: `Client sockets closed per minute with 4008 (backlog above the soft bound too long, or above the hard bound). The SlowConsumersDisconnecting alert fires above ${thresholds.slowConsumerDisconnects} in ${thresholds.slowConsumerWindow}.`,
          unit: 'opm',
          width: 8,
          queries: [{ expr: `60 * sum by (instance) (${rate('mtm_slow_consumer_disconnects_total', D, R)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Bytes sent',
          description: 'Bytes per second of update and snapshot frames written to client sockets, per instance.',
          unit: 'Bps',
          width: 8,
          queries: [{ expr: `sum by (instance) (${rate('mtm_bytes_sent_total', D, R)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Bytes per update',
          description: 'Average frame size: bytes sent / updates sent. Jumps mean larger snapshots (resyncs) or a change of encoding.',
          unit: 'bytes',
          width: 8,
          queries: [{ expr: `sum(${rate('mtm_bytes_sent_total', D, R)}) / sum(${rate('mtm_updates_sent_total', D, R)})`, legend: 'bytes/update' }],
        },
      ],
    },
  ],
};
