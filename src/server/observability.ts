// One call that wires metrics and the performance summary to an engine (here, in the server, since
// the performance API is the server's and metrics must not import the server), for `mtm serve` and for the
// tests that must run the same wiring: create it before the server (the server serves it), spread
// `serverOptions` into startServer's options, attach the server once it runs, close before the engine.

import type { MtmEngine } from '../engine/engine.js';
import type { ServerOptions } from './options.js';
import { PerformanceMonitor } from './performance.js';
import type { ServerStats } from './stats.js';
import { EngineMetrics, type MetricsSources } from '../metrics/engineMetrics.js';

export interface Observability {
  readonly metrics: EngineMetrics;
  readonly performance: PerformanceMonitor;
  /** GET /metrics, the per-request HTTP hook and GET /api/v1/performance/*. */
  readonly serverOptions: Required<Pick<ServerOptions, 'metrics' | 'onHttpRequest' | 'performance'>>;
  attachServer(server: { stats(): ServerStats }): void;
  /** Stops the sampler and unhooks the engine; call before engine.close(). */
  close(): void;
}

export function startObservability(engine: MtmEngine, options: Omit<MetricsSources, 'engine' | 'server'>): Observability {
  const metrics = new EngineMetrics({ engine, ...options });
  const performance = new PerformanceMonitor(metrics);
  return {
    metrics,
    performance,
    serverOptions: { metrics: () => metrics.scrape(), onHttpRequest: metrics.observeHttp, performance },
    attachServer: (server) => metrics.attachServer(server),
    close: () => metrics.close(),
  };
}
