// Engine internals: what the Overview's symptoms are made of. Shards and their queues, the valuation
// kernel's throughput and how incremental it is, the main thread, and the LMDB store.

import { thresholds } from '../config.js';
import type { DashboardSpec } from '../panels.js';
import { bucketRate, histogramMean, increase, quantile, rate, rateInterval as R, sel, series } from '../promql.js';
import { formatSeconds } from '../rules.js';

const D = sel('dashboard');

export const internals: DashboardSpec = {
  uid: 'mtm-engine-internals',
  title: 'MTM / Engine internals',
  description: 'Shard workers, queue depth, worker utilization, valuation kernel throughput and incremental ratio, main-thread event loop, LMDB commit latency and size. Generated from dashboards/src; do not edit in Grafana.',
  rows: [
    {
      title: 'Shards',
      panels: [
        {
          kind: 'timeseries',
          title: 'Shard restarts',
          description: 'Shard workers restarted by the supervisor in each interval, per instance.',
          unit: 'short',
          width: 8,
          queries: [{ expr: `sum by (instance) (${increase('mtm_shard_restarts_total', D, R)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Queue depth by shard',
          description: 'Commands and batches waiting for each shard worker. One shard deeper than the others is a hot shard (uneven portfolio placement).',
          unit: 'short',
          width: 8,
          queries: [{ expr: `max by (instance, shard) (${series('mtm_shard_queue_depth', D)})`, legend: '{{instance}} shard {{shard}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Worker utilization by shard',
          description: 'Event-loop utilization of each shard worker (1 = always busy). Near 1 with a growing queue: the shard is saturated.',
          unit: 'percentunit',
          min: 0,
          max: 1,
          width: 8,
          queries: [{ expr: `max by (instance, shard) (${series('mtm_worker_utilization_ratio', D)})`, legend: '{{instance}} shard {{shard}}' }],
        },
      ],
    },
    {
      title: 'Valuation kernel',
      panels: [
        {
          kind: 'timeseries',
          title: 'Kernel throughput',
          description: 'Positions and portfolios revalued per second, per instance; the legend names the kernel (wasm or js) from mtm_build_info.',
          unit: 'ops',
          queries: [
            {
              expr: `sum by (job, instance) (${rate('mtm_positions_revalued_total', D, R)}) * on (job, instance) group_left (kernel) max by (job, instance, kernel) (${series('mtm_build_info', D)})`,
              legend: 'positions {{instance}} ({{kernel}})',
            },
            { expr: `sum by (instance) (${rate('mtm_portfolios_revalued_total', D, R)})`, legend: 'portfolios {{instance}}' },
          ],
        },
        {
          kind: 'timeseries',
          title: 'Incremental ratio',
          description: 'Positions revalued by the last batch / positions held, least incremental shard (0..1). Near 1 means every batch revalues everything: ticks touch every symbol, or incremental valuation is off.',
          unit: 'percentunit',
          min: 0,
          max: 1,
          queries: [{ expr: `max by (instance) (${series('mtm_incremental_ratio', D)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Coalesced batches',
          description: 'Tick batches flushed to the shards per second (at most one per coalescing window).',
          unit: 'ops',
          width: 8,
          queries: [{ expr: `sum by (instance) (${rate('mtm_coalesced_batches_total', D, R)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Batch size',
          description: 'Ticks per coalesced batch after coalescing (one per symbol that moved): mean and p99.',
          unit: 'short',
          width: 8,
          queries: [
            { expr: histogramMean('mtm_coalesced_batch_ticks', D, R), legend: 'mean' },
            { expr: quantile(0.99, 'mtm_coalesced_batch_ticks', D, R), legend: 'p99' },
          ],
        },
        {
          kind: 'heatmap',
          title: 'Batch size distribution',
          description: 'Batches per second in each batch-size bucket (ticks per batch).',
          unit: 'short',
          width: 8,
          queries: [{ expr: `sum by (le) (${bucketRate('mtm_coalesced_batch_ticks', D, R)})`, legend: '{{le}}', format: 'heatmap' }],
        },
      ],
    },
    {
      title: 'Main thread (Node.js)',
      panels: [
        {
          kind: 'timeseries',
          title: 'Event-loop lag',
          description: `p50, p99 and max delay of the main event loop since the previous scrape (prom-client; includes the 10 ms sampling resolution, so an idle loop reads about 10 ms). Dashed line: the EventLoopLagHigh threshold (${formatSeconds(thresholds.eventLoopLagP99Seconds)}).`,
          unit: 's',
          threshold: thresholds.eventLoopLagP99Seconds,
          width: 6,
          queries: [
            { expr: `max by (instance) (nodejs_eventloop_lag_p50_seconds${D})`, legend: 'p50 {{instance}}' },
            { expr: `max by (instance) (nodejs_eventloop_lag_p99_seconds${D})`, legend: 'p99 {{instance}}' },
            { expr: `max by (instance) (nodejs_eventloop_lag_max_seconds${D})`, legend: 'max {{instance}}' },
          ],
        },
        {
          kind: 'timeseries',
          title: 'Heap',
          description: 'V8 heap used and allocated by the main thread (shard workers have their own heaps, capped by shardHeapMb).',
          unit: 'bytes',
          width: 6,
          queries: [
            { expr: `sum by (instance) (nodejs_heap_size_used_bytes${D})`, legend: 'used {{instance}}' },
            { expr: `sum by (instance) (nodejs_heap_size_total_bytes${D})`, legend: 'allocated {{instance}}' },
          ],
        },
        {
          kind: 'timeseries',
          title: 'Process CPU',
          description: 'CPU time per second of wall time for the whole process, workers included (100% = one core busy).',
          unit: 'percentunit',
          min: 0,
          width: 6,
          queries: [{ expr: `sum by (instance) (rate(process_cpu_seconds_total${D}[${R}]))`, legend: 'cpu {{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Resident memory and limit',
          description:
            "Resident memory of the whole process (workers included) and the memory it may use: the container's cgroup v2 memory.max, else the host's memory (mtm_memory_limit_bytes). MemoryFillingUp fires when the last hour's trend reaches the limit within 4h.",
          unit: 'bytes',
          min: 0,
          width: 6,
          queries: [
            { expr: `max by (instance) (process_resident_memory_bytes${D})`, legend: 'resident {{instance}}' },
            { expr: `max by (instance) (${series('mtm_memory_limit_bytes', D)})`, legend: 'limit {{instance}}' },
          ],
        },
      ],
    },
    {
      title: 'Store (LMDB)',
      panels: [
        {
          kind: 'timeseries',
          title: 'Commit latency',
          description: `p50 and p99 of LMDB write-transaction commits over the rate interval. Dashed line: the StoreCommitSlow threshold (${formatSeconds(thresholds.storeCommitP99Seconds)}).`,
          unit: 's',
          threshold: thresholds.storeCommitP99Seconds,
          logScale: true,
          width: 6,
          queries: [
            { expr: quantile(0.5, 'mtm_store_commit_seconds', D, R), legend: 'p50' },
            { expr: quantile(0.99, 'mtm_store_commit_seconds', D, R), legend: 'p99' },
          ],
        },
        {
          kind: 'heatmap',
          title: 'Commit latency distribution',
          description: 'LMDB commits per second in each latency bucket.',
          unit: 's',
          width: 6,
          queries: [{ expr: `sum by (le) (${bucketRate('mtm_store_commit_seconds', D, R)})`, legend: '{{le}}', format: 'heatmap' }],
        },
        {
          kind: 'timeseries',
          title: 'Store size',
          description: 'Size of the LMDB data files per instance. Growth is expected (the event log); a sudden jump or a full disk is not.',
          unit: 'bytes',
          width: 6,
          queries: [{ expr: `max by (instance) (${series('mtm_store_size_bytes', D)})`, legend: '{{instance}}' }],
        },
        {
          kind: 'timeseries',
          title: 'LMDB map: used and size',
          description:
            "Bytes of the event store's LMDB map in use (pages up to the last one written) and the map size; lmdb-js grows the map when the used pages reach it. StoreMapFillingUp fires when the last hour's trend reaches the map size within 4h.",
          unit: 'bytes',
          min: 0,
          width: 6,
          queries: [
            { expr: `max by (instance) (${series('mtm_store_map_used_bytes', D)})`, legend: 'used {{instance}}' },
            { expr: `max by (instance) (${series('mtm_store_map_size_bytes', D)})`, legend: 'map {{instance}}' },
          ],
        },
      ],
    },
    {
      title: 'Domain events',
      panels: [
        {
          kind: 'timeseries',
          title: 'Risk breaches by limit',
          description: `Portfolios entering breach per minute, by limit. RiskBreachesSpiking fires above ${thresholds.riskBreaches} of one limit in ${thresholds.riskBreachWindow}.`,
          unit: 'opm',
          queries: [{ expr: `60 * sum by (limit) (${rate('mtm_risk_breaches_total', D, R)})`, legend: '{{limit}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Market alerts by rule',
          description: 'Market alerts raised per minute, by rule kind.',
          unit: 'opm',
          queries: [{ expr: `60 * sum by (rule) (${rate('mtm_market_alerts_total', D, R)})`, legend: '{{rule}}' }],
        },
      ],
    },
  ],
};
