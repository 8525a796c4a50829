// startServer: the engine on the network (uWebSockets.js). HTTP JSON API, /ws, the compat path
// /ws/realtime/positions/{id} and /ws/feed. This file is the transport wiring: request bodies with a
// byte limit and onAborted, auth and rate limits at the door, upgrades, shutdown. The pieces live in
// auth.ts, rateLimit.ts, protocol.ts, encoding.ts, conflation.ts, hub.ts, router.ts, http.ts, ws.ts.

import { performance } from 'node:perf_hooks';
import { readFile, stat } from 'node:fs/promises';
import { extname, normalize, resolve, sep } from 'node:path';
import type { HttpRequest, HttpResponse, WebSocket, WebSocketBehavior, us_listen_socket } from 'uWebSockets.js';
import { ErrorCode } from '../errors.js';
import type { Engine } from '../engine/api.js';
import { validatePortfolioId } from '../domain/validate.js';
import { PROTOCOL_NAME } from '../protocol/messages.js';
import {
  KeyRing,
  anonymousPrincipal,
  bearerFromAuthorization,
  canRead,
  canSee,
  loadKeysFile,
  parseWebSocketProtocols,
  type Principal,
} from './auth.js';
import { BucketMap, TokenBucket, WindowCounter } from './rateLimit.js';
import { resolveOptions, type ServerOptions } from './options.js';
import { StatsCollector, type ServerStats } from './stats.js';
import { Hub, type CommandLimiter, type CompatConn, type Conn, type FeedConn, type MainConn } from './hub.js';
import { WsHandlers } from './ws.js';
import { Router, parseQuery } from './router.js';
import {
  bodyHandlers,
  createHandlers,
  errorResult,
  json,
  notFound,
  publicHandlers,
  routes,
  type HandlerName,
  type HttpResult,
} from './http.js';
import { loadUws, type Uws, type UwsBinary } from './uws.js';
import { nodeTransport } from './nodeTransport.js';
import { openApiDocument } from './openapi.js';
import { asyncApiDocument } from './asyncapi.js';
import type { MarketServerOptions } from './market.js';
import { MarketWs } from './marketWs.js';

export type Transport = 'uws' | 'node';

export interface RunningServer {
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  /** Which uWebSockets.js loaded: its native binary, or its JS fallback. */
  readonly uwsBinary: UwsBinary;
  /** What serves: native uWS, or the Node transport (node:http + ws) when the binary did not load. */
  readonly transport: Transport;
  stats(): ServerStats;
  /** Stops accepting, closes WebSockets with 1001, waits for in-flight requests (shutdownGraceMs), resolves. */
  close(): Promise<void>;
}

const reasons: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};
const statusLine = (s: number): string => `${s} ${reasons[s] ?? 'Status'}`;

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};
const staticFileBytesMax = 16 * 1024 * 1024;

function remoteOf(res: HttpResponse): string {
  try {
    return Buffer.from(res.getRemoteAddressAsText()).toString();
  } catch {
    return 'unknown';
  }
}

function errorMessageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function startServer(engine: Engine, options: ServerOptions & MarketServerOptions): Promise<RunningServer> {
  const market = options.market ?? null;
  if (options.keysFile !== undefined) {
    if (options.keys !== undefined) throw new Error('pass keys or keysFile, not both');
    const loaded = await loadKeysFile(options.keysFile);
    if (!loaded.ok) throw new Error(loaded.error.message);
    options = { ...options, keys: loaded.value };
  }
  const resolved = resolveOptions(options);
  if (!resolved.ok) throw new Error(resolved.error.message);
  const opts = resolved.value;
  const { limits, now, log } = opts;
  const loaded = loadUws();
  const binary = loaded.binary;
  const transport: Transport = binary === 'native' && opts.transport === 'auto' ? 'uws' : 'node';
  const uws: Uws = transport === 'uws' ? loaded.uws : (nodeTransport as unknown as Uws);
  const startedAt = now();
  const stats = new StatsCollector(binary, transport);
  stats.onHttp = opts.onHttpRequest;
  const keyRing = opts.keys === null ? null : new KeyRing(opts.keys);
  const commandBuckets = new BucketMap(limits.commandsPerSecond, limits.commandsPerSecond * 2, limits.rateLimitBucketsMax);
  const connectBuckets = new BucketMap(limits.connectsPerSecond, limits.connectsPerSecond * 2, limits.rateLimitBucketsMax);
  const app = uws.App();
  const hub = new Hub(engine, app, limits, stats, now, log);
  const marketWs = market === null ? null : new MarketWs(market, hub, now, undefined, log);
  const wsHandlers = new WsHandlers({ engine, hub, limits, stats, now, market: marketWs });
  const openConns = new Set<Conn>();
  let closing = false;
  let inflight = 0;
  const router = new Router<HandlerName>(routes);
  const openapiText = JSON.stringify(openApiDocument(limits));
  const asyncapiText = JSON.stringify(asyncApiDocument(limits));
  const handlers = createHandlers({
    engine,
    options: opts,
    uwsBinary: binary,
    transport,
    startedAt,
    isReady: () => !closing && opts.ready(),
    connections: () => ({ ...stats.connections }),
    openapi: () => openapiText,
    asyncapi: () => asyncapiText,
    metrics: opts.metrics,
    performance: opts.performance,
    market,
    stats,
  });
  const sweeper = setInterval(() => {
    const t = now();
    commandBuckets.sweep(t);
    connectBuckets.sweep(t);
  }, 10_000);
  sweeper.unref();

  const authenticate = (token: string | null): Principal | null => (keyRing === null ? anonymousPrincipal : keyRing.authenticate(token));
  const unauthorized = (): HttpResult =>
    errorResult({ code: ErrorCode.unauthorized, message: 'a valid API key is required: Authorization: Bearer <key>' }, { 'WWW-Authenticate': 'Bearer realm="mtm"' });
  const rateLimited = (waitMs: number, what: string): HttpResult => {
    stats.rateLimited++;
    return errorResult({ code: ErrorCode.rate_limited, message: `too many ${what}: retry in ${waitMs} ms` }, { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) });
  };

  // ---------------- HTTP ----------------

  const write = (res: HttpResponse, r: HttpResult, closeConnection: boolean): void => {
    res.writeStatus(statusLine(r.status));
    res.writeHeader('Content-Type', r.contentType ?? 'application/json');
    // Static files bring their own caching policy; every API answer is no-store.
    if (r.headers?.['Cache-Control'] === undefined) res.writeHeader('Cache-Control', 'no-store');
    res.writeHeader('X-Content-Type-Options', 'nosniff');
    if (r.headers) for (const k in r.headers) res.writeHeader(k, r.headers[k]);
    res.end(r.body, closeConnection);
  };

  app.any('/*', (res, req) => {
    const started = performance.now();
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const rawQuery = req.getQuery() ?? '';
    const authorization = req.getHeader('authorization');
    const contentLength = req.getHeader('content-length');
    const remote = remoteOf(res);
    const state = { aborted: false, done: false };
    res.onAborted(() => {
      state.aborted = true;
    });
    inflight++;
    let routeLabel = 'unmatched';

    const finish = (r: HttpResult, closeConnection = false): void => {
      if (state.done) return;
      state.done = true;
      inflight--;
      stats.recordHttp(method, routeLabel, r.status, performance.now() - started);
      if (state.aborted) return;
      res.cork(() => write(res, r, closeConnection));
    };
    const fail = (e: unknown): void => {
      log(`mtm server: ${method} ${routeLabel} failed: ${errorMessageOf(e)}`);
      finish(json(500, { error: { code: 'internal', message: 'internal error' } }));
    };

    const m = router.match(method, path);
    if (m.kind !== 'found') {
      if (m.kind === 'not_found' && method === 'GET' && opts.staticDir !== null && !path.startsWith('/api/')) {
        routeLabel = 'static';
        // Read now: uWS request headers are only valid synchronously, before serveStatic awaits.
        const want = { acceptEncoding: req.getHeader('accept-encoding'), ifNoneMatch: req.getHeader('if-none-match') };
        serveStatic(opts.staticDir, path, want).then((r) => finish(r ?? errorResult({ code: ErrorCode.not_found, message: `no route ${method} ${path.slice(0, 200)}` })), fail);
        return;
      }
      if (m.kind === 'method_not_allowed') {
        routeLabel = m.template;
        return finish(
          errorResult({ code: ErrorCode.not_found, message: `${method} is not allowed on ${m.template}; allowed: ${m.allow.join(', ')}` }, { Allow: m.allow.join(', ') }),
        );
      }
      return finish(errorResult({ code: ErrorCode.not_found, message: `no route ${method.slice(0, 16)} ${path.slice(0, 200)}` }));
    }
    const name = m.route.handler;
    routeLabel = m.route.template;
    let principal: Principal = anonymousPrincipal;
    if (!publicHandlers.has(name)) {
      const p = authenticate(bearerFromAuthorization(authorization));
      if (p === null) return finish(unauthorized());
      principal = p;
      const wait = commandBuckets.take(p.bucket ?? `addr:${remote}`, now());
      if (wait > 0) return finish(rateLimited(wait, 'requests'));
    }
    const query = parseQuery(rawQuery);
    const run = (body: unknown): void => {
      let out: Promise<HttpResult> | HttpResult;
      try {
        out = handlers[name]({ principal, params: m.params, query, body });
      } catch (e) {
        return fail(e);
      }
      if (out instanceof Promise) out.then((r) => finish(r), fail);
      else finish(out);
    };
    if (!bodyHandlers.has(name)) return run(undefined);

    // Body: refused early on Content-Length, else counted chunk by chunk; the connection is closed after a 413.
    const tooLarge = (): HttpResult => errorResult({ code: ErrorCode.payload_too_large, message: `request body larger than ${limits.maxBodyBytes} bytes` });
    if (contentLength !== '' && Number(contentLength) > limits.maxBodyBytes) return finish(tooLarge(), true);
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (state.done) return;
      size += chunk.byteLength;
      if (size > limits.maxBodyBytes) return finish(tooLarge(), true);
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      const text = Buffer.concat(chunks, size).toString('utf8');
      if (text.trim().length === 0) return run(undefined);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return finish(errorResult({ code: ErrorCode.invalid_json, message: 'request body is not valid JSON' }));
      }
      run(body);
    });
  });

  // ---------------- WebSocket ----------------

  const refuse = (res: HttpResponse, r: HttpResult): void => {
    stats.connectionsRefused++;
    write(res, r, false);
  };

  type Kind = 'main' | 'compat' | 'feed';
  const upgrade =
    (kind: Kind) =>
    (res: HttpResponse, req: HttpRequest, context: unknown): void => {
      const secKey = req.getHeader('sec-websocket-key');
      const offered = parseWebSocketProtocols(req.getHeader('sec-websocket-protocol'));
      const extensions = req.getHeader('sec-websocket-extensions');
      const authorization = req.getHeader('authorization');
      const param = kind === 'compat' ? req.getParameter(0) : '';
      const remote = remoteOf(res);
      if (closing) return refuse(res, errorResult({ code: ErrorCode.engine_closed, message: 'server is shutting down', retryable: true }));
      const open = stats.connections.main + stats.connections.compat + stats.connections.feed;
      if (open >= limits.connectionsMax) return refuse(res, rateLimited(1000, 'connections: connectionsMax reached'));
      const token = bearerFromAuthorization(authorization) ?? offered.token;
      const principal = authenticate(token);
      if (principal === null) return refuse(res, unauthorized());
      const wait = connectBuckets.take(principal.bucket ?? `addr:${remote}`, now());
      if (wait > 0) return refuse(res, rateLimited(wait, 'connection attempts'));
      const base = {
        principal,
        remote,
        // Anonymous clients get a bucket per connection; a key's connections share the key's bucket (with its HTTP requests).
        commands: principal.bucket === null ? new TokenBucket(limits.commandsPerSecond, limits.commandsPerSecond * 2, now()) : keyCommands(principal.bucket),
        badFrames: new WindowCounter(limits.badFramesWindowMs, now()),
        ws: null,
        closed: false,
      };
      let conn: Conn;
      if (kind === 'feed') {
        if (!principal.feed) return refuse(res, errorResult({ code: ErrorCode.forbidden, message: 'this key may not publish ticks' }));
        conn = { ...base, protocol: 'feed', symbols: [], symbolIds: new Map(), batches: 0 } satisfies FeedConn;
      } else if (kind === 'compat') {
        let id = '';
        try {
          id = decodeURIComponent(param);
        } catch {
          /* invalid escapes: not found */
        }
        if (!validatePortfolioId(id).ok || !canSee(principal, id) || !engine.has(id)) return refuse(res, notFound(id.slice(0, 64)));
        if (!canRead(principal, id)) return refuse(res, errorResult({ code: ErrorCode.forbidden, message: `this key may not read portfolio '${id}'` }));
        conn = { ...base, protocol: 'compat', portfolio: id, subs: new Map(), conflating: false, conflatingSince: 0 } satisfies CompatConn;
      } else {
        conn = { ...base, protocol: 'main', subs: new Map(), events: null, conflating: false, conflatingSince: 0, pendingCommands: 0 } satisfies MainConn;
      }
      const protocol = offered.others.includes(PROTOCOL_NAME) ? PROTOCOL_NAME : '';
      res.upgrade(conn, secKey, protocol, extensions, context as never);
    };

  const keyCommands = (bucket: string): CommandLimiter => ({ take: (t: number) => commandBuckets.take(bucket, t) });

  const behavior = (kind: Kind): WebSocketBehavior<Conn> => ({
    maxPayloadLength: limits.maxPayloadBytes,
    idleTimeout: limits.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    // uWS's own cap sits above our hard bound so that the 4008 close frame still fits when we close.
    maxBackpressure: limits.backpressureBytesMax + limits.backpressureSoftBytes,
    closeOnBackpressureLimit: 0,
    compression: uws.DISABLED,
    upgrade: upgrade(kind),
    open: (ws: WebSocket<Conn>) => {
      const conn = ws.getUserData();
      conn.ws = ws;
      openConns.add(conn);
      stats.connections[conn.protocol]++;
      stats.connectionsAccepted[conn.protocol]++;
      if (conn.protocol !== 'feed') hub.conns.add(conn);
      if (closing) return hub.end(conn, 1001, 'server shutting down');
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
  });

  app.ws('/ws', behavior('main'));
  app.ws('/ws/feed', behavior('feed'));
  app.ws('/ws/realtime/positions/:id', behavior('compat'));

  // ---------------- listen / close ----------------

  const listenSocket = await new Promise<us_listen_socket>((resolvePromise, reject) => {
    app.listen(opts.host, opts.port, (s) => {
      if (s === false) reject(new Error(`cannot listen on ${opts.host}:${opts.port}`));
      else resolvePromise(s);
    });
  }).catch((e: unknown) => {
    hub.close();
    marketWs?.close();
    clearInterval(sweeper);
    throw e;
  });
  const port = uws.us_socket_local_port(listenSocket as never);
  const hostForUrl = opts.host.includes(':') && !opts.host.startsWith('[') ? `[${opts.host}]` : opts.host;
  const url = `http://${hostForUrl}:${port}`;
  log(
    `mtm server listening on ${url} (uWS binary: ${binary}, transport: ${transport}, kernel: ${engine.kernel}, auth: ${keyRing === null ? 'none (loopback only unless insecure)' : `${keyRing.size} keys`})`,
  );

  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      uws.us_listen_socket_close(listenSocket as never);
      for (const conn of [...openConns]) hub.end(conn, 1001, 'server shutting down');
      const deadline = Date.now() + limits.shutdownGraceMs;
      while ((inflight > 0 || openConns.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const conn of [...openConns]) {
        try {
          conn.ws?.close();
        } catch {
          /* already gone */
        }
      }
      hub.close();
      marketWs?.close();
      clearInterval(sweeper);
      // TemplatedApp.close() (uWS >= 20.28): closes the remaining sockets, idle keep-alive HTTP ones included.
      (app as unknown as { close(): void }).close();
      log(`mtm server on ${url} closed`);
    })();
    return closed;
  };

  return { port, url, uwsBinary: binary, transport, stats: () => stats.snapshot(), close };
}

/**
 * Static files (the positions page built by web/build.mjs into dist/web). Caching: a content-hashed
 * name (`name-HASH.ext`, esbuild's [hash]) never changes content, so it is cached for a year as
 * immutable; anything else (index.html) is `no-cache`: revalidated on every load with its ETag (304).
 * Compression is done at build time: a `.br` or `.gz` sibling is served when Accept-Encoding allows
 * it (brotli first), with Vary: Accept-Encoding so caches keep the variants apart.
 */
const hashedAsset = /-[A-Z0-9]{8,}\.[A-Za-z0-9]+(\.map)?$/;
const precompressed: readonly (readonly [coding: string, ext: string])[] = [
  ['br', '.br'],
  ['gzip', '.gz'],
];

/** Whether Accept-Encoding allows `coding`: listed (or `*`) with q > 0; an explicit entry wins over `*`. */
export function acceptsEncoding(header: string, coding: string): boolean {
  let star: boolean | null = null;
  for (const part of header.toLowerCase().split(',')) {
    const [name, ...params] = part.split(';').map((x) => x.trim());
    const q = params.find((p) => p.startsWith('q='));
    const ok = q === undefined || Number(q.slice(2)) > 0;
    if (name === coding) return ok;
    if (name === '*') star = ok;
  }
  return star ?? false;
}

async function fileStat(file: string): Promise<import('node:fs').Stats | null> {
  try {
    const st = await stat(file);
    return st.isFile() && st.size <= staticFileBytesMax ? st : null;
  } catch {
    return null;
  }
}

async function serveStatic(dir: string, urlPath: string, want: { acceptEncoding: string; ifNoneMatch: string }): Promise<HttpResult | null> {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (rel.includes('\0')) return null;
  if (rel.endsWith('/')) rel += 'index.html';
  const root = resolve(dir);
  const file = resolve(root, '.' + normalize('/' + rel));
  if (file !== root && !file.startsWith(root + sep)) return null;
  const original = await fileStat(file);
  if (original === null) return null;
  let served = file;
  let st = original;
  let coding: string | null = null;
  for (const [c, ext] of precompressed) {
    if (!acceptsEncoding(want.acceptEncoding, c)) continue;
    const variant = await fileStat(file + ext);
    if (variant === null) continue;
    served = file + ext;
    st = variant;
    coding = c;
    break;
  }
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}${coding === null ? '' : '-' + coding}"`;
  const headers: Record<string, string> = {
    'Cache-Control': hashedAsset.test(file) ? 'public, max-age=31536000, immutable' : 'no-cache',
    ETag: etag,
    Vary: 'Accept-Encoding',
  };
  if (coding !== null) headers['Content-Encoding'] = coding;
  const contentType = contentTypes[extname(file).toLowerCase()] ?? 'application/octet-stream';
  if (want.ifNoneMatch !== '' && want.ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
    return { status: 304, body: '', contentType, headers };
  }
  try {
    return { status: 200, body: await readFile(served), contentType, headers };
  } catch {
    return null;
  }
}
