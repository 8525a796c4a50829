// The server's counters (StatsCollector), read by the metrics wiring through RunningServer.stats(). The
// shape they are read in lives below both, in metrics/serverStats.ts.

import { httpLatencyBucketsMs, type WsProtocol, type StatusClass, type HttpRouteStats, type HttpObserver, type ServerStats } from '../metrics/serverStats.js';

export { httpLatencyBucketsMs, type WsProtocol, type StatusClass, type HttpRouteStats, type HttpObserver, type ServerStats };

export class StatsCollector {
  readonly connections: Record<WsProtocol, number> = { main: 0, compat: 0, feed: 0 };
  readonly connectionsAccepted: Record<WsProtocol, number> = { main: 0, compat: 0, feed: 0 };
  connectionsRefused = 0;
  subscriptions = 0;
  eventSubscriptions = 0;
  portfoliosWatched = 0;
  updatesSerialized = 0;
  updatesSent = 0;
  snapshotsSent = 0;
  eventsSent = 0;
  bytesSent = 0;
  updatesConflated = 0;
  backpressureEvents = 0;
  slowConsumerDisconnects = 0;
  bufferedBytes = 0;
  bufferedBytesPeak = 0;
  badFrames = 0;
  badFrameDisconnects = 0;
  rateLimited = 0;
  wsCommands = 0;
  tradesAcked = 0;
  feedTicksAccepted = 0;
  feedTicksRejected = 0;
  feedTicksJson = 0;
  feedTicksBinary = 0;
  httpTicks = 0;
  private readonly ticksRefused = new Map<string, number>();
  private readonly http = new Map<string, HttpRouteStats>();
  /** Set by the server from ServerOptions.onHttpRequest; null costs nothing. */
  onHttp: HttpObserver | null = null;

  constructor(
    readonly uwsBinary: 'native' | 'fallback',
    readonly transport: 'uws' | 'node',
  ) {}

  /** Counts a tick the server refused before the engine saw it; returns the code for the caller's answer. */
  refuseTick<C extends string>(code: C): C {
    this.ticksRefused.set(code, (this.ticksRefused.get(code) ?? 0) + 1);
    return code;
  }

  recordHttp(method: string, route: string, status: number, latencyMs: number): void {
    this.onHttp?.(method, route, status, latencyMs / 1000);
    const statusClass: StatusClass = status < 300 ? '2xx' : status < 400 ? '3xx' : status < 500 ? '4xx' : '5xx';
    const key = `${method} ${route} ${statusClass}`;
    let s = this.http.get(key);
    if (s === undefined) {
      s = { method, route, statusClass, count: 0, latencySumMs: 0, latencyBucketCounts: new Array(httpLatencyBucketsMs.length + 1).fill(0) };
      this.http.set(key, s);
    }
    s.count++;
    s.latencySumMs += latencyMs;
    let i = 0;
    while (i < httpLatencyBucketsMs.length && latencyMs > httpLatencyBucketsMs[i]) i++;
    s.latencyBucketCounts[i]++;
  }

  snapshot(): ServerStats {
    return {
      uwsBinary: this.uwsBinary,
      transport: this.transport,
      connections: { ...this.connections },
      connectionsAccepted: { ...this.connectionsAccepted },
      connectionsRefused: this.connectionsRefused,
      subscriptions: this.subscriptions,
      eventSubscriptions: this.eventSubscriptions,
      portfoliosWatched: this.portfoliosWatched,
      updatesSerialized: this.updatesSerialized,
      updatesSent: this.updatesSent,
      snapshotsSent: this.snapshotsSent,
      eventsSent: this.eventsSent,
      bytesSent: this.bytesSent,
      updatesConflated: this.updatesConflated,
      backpressureEvents: this.backpressureEvents,
      slowConsumerDisconnects: this.slowConsumerDisconnects,
      bufferedBytes: this.bufferedBytes,
      bufferedBytesPeak: this.bufferedBytesPeak,
      badFrames: this.badFrames,
      badFrameDisconnects: this.badFrameDisconnects,
      rateLimited: this.rateLimited,
      wsCommands: this.wsCommands,
      tradesAcked: this.tradesAcked,
      feedTicksAccepted: this.feedTicksAccepted,
      feedTicksRejected: this.feedTicksRejected,
      feedTicksJson: this.feedTicksJson,
      feedTicksBinary: this.feedTicksBinary,
      httpTicks: this.httpTicks,
      ticksRefused: Object.fromEntries(this.ticksRefused),
      http: [...this.http.values()].map((s) => ({ ...s, latencyBucketCounts: [...s.latencyBucketCounts] })),
    };
  }
}
