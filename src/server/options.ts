// Server options and limits: every limit is configurable, has a safe default and carries its unit last.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { isLoopbackHost, type ApiKey } from './auth.js';
import type { PerformanceApi } from './performance.js';
import type { HttpObserver } from './stats.js';

export interface ServerLimits {
  /** Largest WebSocket frame accepted (uWS maxPayloadLength); larger frames close the socket with 1009. */
  maxPayloadBytes: number;
  /** Largest HTTP request body; larger bodies are answered 413 and the connection is closed. */
  maxBodyBytes: number;
  /** uWS idleTimeout: a WebSocket silent this long is closed; the server pings automatically before. */
  idleTimeoutSeconds: number;
  /** Above this many buffered bytes a socket stops getting deltas: its updates are conflated. */
  backpressureSoftBytes: number;
  /** Hard bound: a socket that buffers more is closed with 4008 at once; uWS never buffers more (maxBackpressure). */
  backpressureBytesMax: number;
  /** A socket that stays above the soft bound this long without draining below it is closed with 4008. */
  slowConsumerGraceMs: number;
  /** How often buffered amounts are checked (conflation entry, slow consumers). */
  backpressureCheckIntervalMs: number;
  /** Portfolios one /ws connection may subscribe to (also caps one subscribe message). */
  subscriptionsPerConnectionMax: number;
  /** Open WebSocket connections, all paths together. */
  connectionsMax: number;
  /** Commands (HTTP requests to /api, WS ops) per second per key (per connection without keys); burst = 2x. */
  commandsPerSecond: number;
  /** WebSocket upgrade attempts per second per key (per remote address without keys); burst = 2x. */
  connectsPerSecond: number;
  /** Malformed frames tolerated within badFramesWindowMs before the socket is closed with 1008. */
  badFramesMax: number;
  badFramesWindowMs: number;
  /** Smallest and largest throttle_ms a subscription may ask for. */
  throttleMinMs: number;
  throttleMaxMs: number;
  /** Granularity of the throttle timer wheel. */
  throttleTickMs: number;
  /** Symbols one /ws/feed connection may register. */
  feedSymbolsPerConnectionMax: number;
  /** Ticks in one POST /api/v1/ticks body or one feed frame. */
  ticksPerBatchMax: number;
  /** Requests of a WS client waiting for an answer (trades in flight) before new ones are refused. */
  pendingCommandsPerConnectionMax: number;
  /** Page size caps of the list and events endpoints. */
  pageLimitMax: number;
  /** Rate-limit buckets kept in memory (per key or address). */
  rateLimitBucketsMax: number;
  /** How long close() waits for sockets to close before it drops them. */
  shutdownGraceMs: number;
  /** POST /api/v1/trades/import: longest NDJSON line; a longer one stops the import (payload_too_large). */
  importLineBytesMax: number;
  /** POST /api/v1/trades/import: trades submitted and not yet answered before the body is paused. */
  importTradesInFlightMax: number;
  /** POST /api/v1/trades/import: lines in one chunk (validated together, one message per shard, one append per shard). */
  importChunkTradesMax: number;
  /** POST /api/v1/trades/import: chunks of one import booking at once (the next is cut meanwhile). */
  importChunksInFlightMax: number;
}

export const defaultLimits: Readonly<ServerLimits> = Object.freeze({
  maxPayloadBytes: 64 * 1024,
  maxBodyBytes: 1024 * 1024,
  idleTimeoutSeconds: 60,
  // Per socket. A conflating socket gets nothing more than answers, so it sits near the soft bound:
  // 1,000 slow sockets pin ~128 MiB, at worst (one large message past the soft bound each) ~1.1 GiB;
  // the former 4 MiB hard bound let them pin ~4 GiB.
  backpressureSoftBytes: 128 * 1024,
  backpressureBytesMax: 1024 * 1024,
  slowConsumerGraceMs: 10_000,
  backpressureCheckIntervalMs: 50,
  subscriptionsPerConnectionMax: 256,
  connectionsMax: 10_000,
  commandsPerSecond: 200,
  connectsPerSecond: 20,
  badFramesMax: 10,
  badFramesWindowMs: 10_000,
  throttleMinMs: 10,
  throttleMaxMs: 60_000,
  throttleTickMs: 10,
  feedSymbolsPerConnectionMax: 100_000,
  ticksPerBatchMax: 10_000,
  pendingCommandsPerConnectionMax: 256,
  pageLimitMax: 1000,
  rateLimitBucketsMax: 100_000,
  shutdownGraceMs: 2000,
  importLineBytesMax: 64 * 1024,
  importTradesInFlightMax: 8192,
  importChunkTradesMax: 2048,
  importChunksInFlightMax: 4,
});

export interface ServerOptions {
  /** 0 = an ephemeral port (read it back from RunningServer.port). */
  port: number;
  /** Default 127.0.0.1. A non-loopback host needs keys, or insecure: true. */
  host?: string;
  /** API keys (see parseKeys). Without keys every request is allowed: loopback only. */
  keys?: ApiKey[];
  /** Path of a keys file (JSON [{"key","name","scopes"}]); read by startServer. Not with `keys`. */
  keysFile?: string;
  /** Allows a non-loopback host without keys. */
  insecure?: boolean;
  limits?: Partial<ServerLimits>;
  /** Static files served under / (index.html for /); optional. */
  staticDir?: string;
  /**
   * Serves GET /metrics (Prometheus text) from this function, e.g. the metrics wiring's scrape().
   * With keys, any valid key may read it (Prometheus: authorization.credentials); without keys, anyone.
   */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** Called as each HTTP request is answered, with its route template (the metrics wiring's histogram). */
  onHttpRequest?: HttpObserver;
  /** Serves GET /api/v1/performance/summary and /queries (src/server/performance.ts); auth like /metrics. */
  performance?: PerformanceApi;
  /** Readiness beyond "listening": e.g. recovery finished. Default: always ready while running. */
  ready?: () => boolean;
  /** What /ready answers with its 503 while not ready (the engine's recovery progress). */
  progress?: () => unknown;
  /** Wall clock (epoch ms); default Date.now. */
  now?: () => number;
  /**
   * 'auto' (default): native uWS when its binary loaded, else the Node transport (node:http + ws).
   * 'node' forces the Node transport (tests, or a platform where the native binary misbehaves).
   */
  transport?: 'auto' | 'node';
  /** One line per notable event (start, uWS binary, shutdown); default console.log; null = silent. */
  log?: ((line: string) => void) | null;
}

export interface ResolvedOptions {
  port: number;
  host: string;
  keys: ApiKey[] | null;
  insecure: boolean;
  limits: ServerLimits;
  staticDir: string | null;
  metrics: (() => Promise<{ contentType: string; body: string }>) | null;
  onHttpRequest: HttpObserver | null;
  performance: PerformanceApi | null;
  ready: () => boolean;
  progress: (() => unknown) | null;
  now: () => number;
  log: (line: string) => void;
  transport: 'auto' | 'node';
}

const positiveIntegerLimits: readonly (keyof ServerLimits)[] = Object.keys(defaultLimits) as (keyof ServerLimits)[];

export function resolveOptions(options: ServerOptions): Result<ResolvedOptions> {
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    return fail(ErrorCode.invalid_field, 'port must be an integer from 0 to 65535', 'port');
  }
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0 || host.length > 255) return fail(ErrorCode.invalid_field, 'host must be a hostname or address', 'host');
  const keys = options.keys !== undefined && options.keys.length > 0 ? options.keys : null;
  if (keys === null && !isLoopbackHost(host) && options.insecure !== true) {
    return fail(
      ErrorCode.invalid_field,
      `refusing to listen on non-loopback host ${host} without API keys: pass keys, or insecure: true to accept unauthenticated remote clients`,
      'host',
    );
  }
  const limits: ServerLimits = { ...defaultLimits };
  for (const [name, value] of Object.entries(options.limits ?? {})) {
    if (!positiveIntegerLimits.includes(name as keyof ServerLimits)) return fail(ErrorCode.invalid_field, `limits.${name} is not a known limit`, `limits.${name}`);
    if (value === undefined) continue;
    if (typeof value !== 'number' || !(value > 0) || (!Number.isFinite(value) && value !== Infinity)) {
      return fail(ErrorCode.invalid_field, `limits.${name} must be a number > 0`, `limits.${name}`);
    }
    limits[name as keyof ServerLimits] = value;
  }
  if (limits.backpressureSoftBytes >= limits.backpressureBytesMax) {
    return fail(ErrorCode.invalid_field, 'limits.backpressureSoftBytes must be below limits.backpressureBytesMax', 'limits.backpressureSoftBytes');
  }
  if (limits.throttleMinMs > limits.throttleMaxMs) return fail(ErrorCode.invalid_field, 'limits.throttleMinMs must be <= throttleMaxMs', 'limits.throttleMinMs');
  const log = options.log === null ? () => {} : (options.log ?? ((line: string) => console.log(line)));
  return ok({
    port: options.port,
    host,
    keys,
    insecure: options.insecure === true,
    limits,
    staticDir: options.staticDir ?? null,
    metrics: options.metrics ?? null,
    onHttpRequest: options.onHttpRequest ?? null,
    performance: options.performance ?? null,
    ready: options.ready ?? (() => true),
    progress: options.progress ?? null,
    now: options.now ?? Date.now,
    log,
    transport: options.transport === 'node' ? 'node' : 'auto',
  });
}
