// The server's counters as the metrics layer reads them (RunningServer.stats(), at scrape time).
// Defined here, below both: the server's StatsCollector produces this shape, metrics consume it.
// Plain numbers, monotonic unless named as a current value (gauges: connections, subscriptions).

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
