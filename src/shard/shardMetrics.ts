// A shard worker's own prom-client registry. The main thread asks each shard for
// getMetricsAsJSON() at scrape time and merges them with AggregatorRegistry.aggregate, using each
// metric's catalog aggregator. Updated once per batch, never per position.
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Registry } from 'prom-client';
import { metricSpec } from '../metrics/catalog.js';
import { workerEluMetricName } from '../metrics/workerInternal.js';

function counter(registry: Registry, name: Parameters<typeof metricSpec>[0]): Counter {
  const spec = metricSpec(name);
  return new Counter({ name: spec.name, help: spec.help, registers: [registry], aggregator: spec.aggregator });
}

export class ShardMetrics {
  readonly registry = new Registry();
  readonly positionsRevalued = counter(this.registry, 'mtm_positions_revalued_total');
  readonly portfoliosRevalued = counter(this.registry, 'mtm_portfolios_revalued_total');
  readonly incrementalRatio: Gauge;

  constructor() {
    const spec = metricSpec('mtm_incremental_ratio');
    this.incrementalRatio = new Gauge({ name: spec.name, help: spec.help, registers: [this.registry], aggregator: spec.aggregator });
    // This thread's cumulative event-loop time, read when the main thread asks (collect), never on the
    // batch path; the main thread derives the utilization ratio from two readings.
    new Gauge({
      name: workerEluMetricName,
      help: 'Internal: cumulative event-loop time of this worker thread by state (active, idle), in seconds.',
      labelNames: ['state'],
      registers: [this.registry],
      aggregator: 'omit',
      collect() {
        const elu = performance.eventLoopUtilization();
        this.set({ state: 'active' }, elu.active / 1000);
        this.set({ state: 'idle' }, elu.idle / 1000);
      },
    });
  }

  batch(positionsTouched: number, portfolios: number, openPositions: number): void {
    this.positionsRevalued.inc(positionsTouched);
    this.portfoliosRevalued.inc(portfolios);
    this.incrementalRatio.set(openPositions > 0 ? Math.min(1, positionsTouched / openPositions) : 0);
  }
}
