// Counters of the server, read by the metrics wiring through RunningServer.stats(). Plain numbers,
// monotonic unless named as a current value (gauges: connections, subscriptions).

export type WsProtocol = 'main' | 'compat' | 'feed';
export type StatusClass = '2xx' | '3xx' | '4xx' | '5xx';

/** Upper bounds (ms) of the HTTP latency histogram buckets; the last bucket is +Inf. */
export const httpLatencyBucketsMs: readonly number[] = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

export interface HttpRouteStats {
  method: string;
  /** Route template, e.g. /api/v1/portfolios/{id}; unmatched paths are counted as 'unmatched'. */
  route: string;
  statusClass: StatusClass;
  count: number;
  latencySumMs: number;
  /** Cumulative-free counts per bucket of httpLatencyBucketsMs, plus one for +Inf (length = buckets + 1). */
  latencyBucketCounts: number[];
}

/** Sees every HTTP request as it is answered (the metrics layer's histogram); route is the template. */
export type HttpObserver = (method: string, route: string, status: number, seconds: number) => void;

export interface ServerStats {
  uwsBinary: 'native' | 'fallback';
  transport: 'uws' | 'node';
  /** Open connections now, by protocol. */
  connections: Record<WsProtocol, number>;
  /** Connections accepted since start, by protocol. */
  connectionsAccepted: Record<WsProtocol, number>;
  /** Upgrades refused: unauthorized, not found, rate limited, connectionsMax. */
  connectionsRefused: number;
  /** Portfolio subscriptions now (main protocol subscriptions + compat sockets). */
  subscriptions: number;
  /** Sockets with an event subscription now. */
  eventSubscriptions: number;
  /** Portfolios the server holds an engine subscription for now. */
  portfoliosWatched: number;
  /** Updates serialized (once each, whatever the number of recipients). */
  updatesSerialized: number;
  /** Update messages delivered (one per recipient). */
  updatesSent: number;
  snapshotsSent: number;
  eventsSent: number;
  /** WebSocket bytes handed to uWS (all messages, all recipients). */
  bytesSent: number;
  /** Updates merged into a pending delta instead of being sent on their own (throttling, backpressure). */
  updatesConflated: number;
  /** Times a socket entered conflation because of backpressure. */
  backpressureEvents: number;
  slowConsumerDisconnects: number;
  /** Bytes buffered by uWS for all sockets at the last backpressure check (a gauge). */
  bufferedBytes: number;
  /** Largest amount one socket had buffered at any check since start. */
  bufferedBytesPeak: number;
  /** Malformed or refused frames, and sockets closed for sending too many of them. */
  badFrames: number;
  badFrameDisconnects: number;
  /** Commands and connection attempts refused by a token bucket. */
  rateLimited: number;
  wsCommands: number;
  tradesAcked: number;
  feedTicksAccepted: number;
  feedTicksRejected: number;
  /** Ticks received (accepted or rejected) by transport and encoding: /ws/feed text and binary frames, POST /api/v1/ticks. */
  feedTicksJson: number;
  feedTicksBinary: number;
  httpTicks: number;
  /** Ticks the server refused itself, by error code, before the engine saw them (the engine counts the rest). */
  ticksRefused: Record<string, number>;
  http: HttpRouteStats[];
}

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
