// WebSocket upgrades and socket lifecycle: where a connection enters the server (upgrade: shutdown,
// connectionsMax, auth and the connect rate limit at the door, then the per-protocol checks) and
// leaves it (close). Messages go to ws.ts; updates reach sockets through the hub.

import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import { ErrorCode } from '../errors.js';
import type { Engine } from '../engine/api.js';
import { validatePortfolioId } from '../domain/validate.js';
import { PROTOCOL_NAME } from '../protocol/messages.js';
import { bearerFromAuthorization, canRead, canSee, parseWebSocketProtocols } from './auth.js';
import type { Door } from './door.js';
import type { CompatConn, Conn, FeedConn, Hub, MainConn } from './hub.js';
import { errorResult, notFound, type HttpResult } from './http.js';
import type { MarketWs } from './marketWs.js';
import type { ResolvedOptions } from './options.js';
import { TokenBucket, WindowCounter } from './rateLimit.js';
import { remoteOf, writeResult } from './response.js';
import type { StatsCollector } from './stats.js';
import type { Uws } from './uws.js';
import type { WsHandlers } from './ws.js';

type Kind = 'main' | 'compat' | 'feed';

export interface SocketsDeps {
  engine: Engine;
  opts: ResolvedOptions;
  uws: Uws;
  stats: StatsCollector;
  door: Door;
  hub: Hub;
  wsHandlers: WsHandlers;
  marketWs: MarketWs | null;
  /** True once the server is shutting down. */
  closing: () => boolean;
  /** False while the engine recovers: a subscription then would find no portfolio and never retry. */
  ready: () => boolean;
}

export class Sockets {
  readonly openConns = new Set<Conn>();

  constructor(private readonly d: SocketsDeps) {}

  attach(app: TemplatedApp): void {
    app.ws('/ws', this.behavior('main'));
    app.ws('/ws/feed', this.behavior('feed'));
    app.ws('/ws/realtime/positions/:id', this.behavior('compat'));
  }

  private refuse(res: HttpResponse, r: HttpResult): void {
    this.d.stats.connectionsRefused++;
    writeResult(res, r, false);
  }

  private upgrade =
    (kind: Kind) =>
    (res: HttpResponse, req: HttpRequest, context: unknown): void => {
      const { engine, stats, door } = this.d;
      const { limits, now } = this.d.opts;
      const secKey = req.getHeader('sec-websocket-key');
      const offered = parseWebSocketProtocols(req.getHeader('sec-websocket-protocol'));
      const extensions = req.getHeader('sec-websocket-extensions');
      const authorization = req.getHeader('authorization');
      const param = kind === 'compat' ? req.getParameter(0) : '';
      const remote = remoteOf(res);
      if (this.d.closing()) return this.refuse(res, errorResult({ code: ErrorCode.engine_closed, message: 'server is shutting down', retryable: true }));
      // Clients reconnect with backoff on a refused upgrade, so they subscribe once the books are back.
      if (!this.d.ready()) return this.refuse(res, errorResult({ code: ErrorCode.shard_restarting, message: 'the engine is recovering; retry when /ready answers 200', retryable: true }));
      const open = stats.connections.main + stats.connections.compat + stats.connections.feed;
      if (open >= limits.connectionsMax) return this.refuse(res, door.rateLimited(1000, 'connections: connectionsMax reached'));
      const token = bearerFromAuthorization(authorization) ?? offered.token;
      const principal = door.authenticate(token);
      if (principal === null) return this.refuse(res, door.unauthorized());
      const wait = door.connectBuckets.take(principal.bucket ?? `addr:${remote}`, now());
      if (wait > 0) return this.refuse(res, door.rateLimited(wait, 'connection attempts'));
      const base = {
        principal,
        remote,
        // Anonymous clients get a bucket per connection; a key's connections share the key's bucket (with its HTTP requests).
        commands: principal.bucket === null ? new TokenBucket(limits.commandsPerSecond, limits.commandsPerSecond * 2, now()) : door.keyCommands(principal.bucket),
        badFrames: new WindowCounter(limits.badFramesWindowMs, now()),
        ws: null,
        closed: false,
      };
      let conn: Conn;
      if (kind === 'feed') {
        if (!principal.feed) return this.refuse(res, errorResult({ code: ErrorCode.forbidden, message: 'this key may not publish ticks' }));
        conn = { ...base, protocol: 'feed', symbols: [], symbolIds: new Map(), batches: 0 } satisfies FeedConn;
      } else if (kind === 'compat') {
        let id = '';
        try {
          id = decodeURIComponent(param);
        } catch {
          /* invalid escapes: not found */
        }
        if (!validatePortfolioId(id).ok || !canSee(principal, id) || !engine.has(id)) return this.refuse(res, notFound(id.slice(0, 64)));
        if (!canRead(principal, id)) return this.refuse(res, errorResult({ code: ErrorCode.forbidden, message: `this key may not read portfolio '${id}'` }));
        conn = { ...base, protocol: 'compat', portfolio: id, subs: new Map(), conflating: false, conflatingSince: 0 } satisfies CompatConn;
      } else {
        conn = { ...base, protocol: 'main', subs: new Map(), events: null, conflating: false, conflatingSince: 0, pendingCommands: 0 } satisfies MainConn;
      }
      const protocol = offered.others.includes(PROTOCOL_NAME) ? PROTOCOL_NAME : '';
      res.upgrade(conn, secKey, protocol, extensions, context as never);
    };

  private behavior(kind: Kind): WebSocketBehavior<Conn> {
    const { limits } = this.d.opts;
    const { stats, hub, wsHandlers, marketWs } = this.d;
    const openConns = this.openConns;
    return {
      maxPayloadLength: limits.maxPayloadBytes,
      idleTimeout: limits.idleTimeoutSeconds,
      sendPingsAutomatically: true,
      // uWS's own cap sits above our hard bound so that the 4008 close frame still fits when we close.
      maxBackpressure: limits.backpressureBytesMax + limits.backpressureSoftBytes,
      closeOnBackpressureLimit: 0,
      compression: this.d.uws.DISABLED,
      upgrade: this.upgrade(kind),
      open: (ws: WebSocket<Conn>) => {
        const conn = ws.getUserData();
        conn.ws = ws;
        openConns.add(conn);
        stats.connections[conn.protocol]++;
        stats.connectionsAccepted[conn.protocol]++;
        if (conn.protocol !== 'feed') hub.conns.add(conn);
        if (this.d.closing()) return hub.end(conn, 1001, 'server shutting down');
        if (conn.protocol === 'compat') hub.subscribe(conn, conn.portfolio, 'compat', 0);
      },
      message: (ws: WebSocket<Conn>, message: ArrayBuffer, isBinary: boolean) => {
        wsHandlers.onMessage(ws.getUserData(), message, isBinary);
      },
      drain: (ws: WebSocket<Conn>) => {
        const conn = ws.getUserData();
        if (conn.protocol !== 'feed') hub.maybeLeaveConflation(conn);
        if (conn.protocol === 'main') marketWs?.onDrain(conn);
      },
      close: (ws: WebSocket<Conn>) => {
        const conn = ws.getUserData();
        conn.closed = true;
        if (conn.protocol !== 'feed') hub.dropConn(conn);
        if (conn.protocol === 'main') marketWs?.dropConn(conn);
        conn.ws = null;
        if (openConns.delete(conn)) stats.connections[conn.protocol]--;
      },
    };
  }

  /** Shutdown, first step: every open socket gets a 1001 close. */
  endAll(): void {
    for (const conn of [...this.openConns]) this.d.hub.end(conn, 1001, 'server shutting down');
  }

  /** Shutdown, after the grace period: whatever is still open is closed now. */
  closeAll(): void {
    for (const conn of [...this.openConns]) {
      try {
        conn.ws?.close();
      } catch {
        /* already gone */
      }
    }
  }
}
