// startServer: the engine on the network (uWebSockets.js). HTTP JSON API, /ws, the compat path
// /ws/realtime/positions/{id} and /ws/feed. This file composes the server's stations and owns
// listen and shutdown: the door (door.ts: auth, rate limits), HTTP intake (httpIntake.ts: routing,
// bodies, answers), static files (staticFiles.ts), sockets (sockets.ts: upgrades, socket
// lifecycle), message handling (ws.ts), fan-out (hub.ts), the handlers (http.ts).

import type { us_listen_socket } from 'uWebSockets.js';
import type { Engine } from '../engine/api.js';
import { loadKeysFile } from './auth.js';
import { Door } from './door.js';
import { createHandlers } from './http.js';
import { HttpIntake } from './httpIntake.js';
import { Hub } from './hub.js';
import { resolveOptions, type ServerOptions } from './options.js';
import { StatsCollector, type ServerStats } from './stats.js';
import { Sockets } from './sockets.js';
import { WsHandlers } from './ws.js';
import { loadUws, type Uws, type UwsBinary } from './uws.js';
import { nodeTransport } from './nodeTransport.js';
import { openApiDocument } from './openapi.js';
import { asyncApiDocument } from './asyncapi.js';
import type { MarketServerOptions } from './market.js';
import { MarketWs } from './marketWs.js';

export { acceptsEncoding } from './staticFiles.js';

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
  const door = new Door(opts, stats);
  const app = uws.App();
  const hub = new Hub(engine, app, limits, stats, now, log);
  const marketWs = market === null ? null : new MarketWs(market, hub, now, undefined, log);
  const wsHandlers = new WsHandlers({ engine, hub, limits, stats, now, market: marketWs });
  let closing = false;
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
  const http = new HttpIntake(opts, stats, door, handlers, engine);
  app.any('/*', http.onRequest);
  const sockets = new Sockets({ engine, opts, uws, stats, door, hub, wsHandlers, marketWs, closing: () => closing, ready: opts.ready });
  sockets.attach(app);

  // ---------------- listen / close ----------------

  const listenSocket = await new Promise<us_listen_socket>((resolvePromise, reject) => {
    app.listen(opts.host, opts.port, (s) => {
      if (s === false) reject(new Error(`cannot listen on ${opts.host}:${opts.port}`));
      else resolvePromise(s);
    });
  }).catch((e: unknown) => {
    hub.close();
    marketWs?.close();
    door.close();
    throw e;
  });
  const port = uws.us_socket_local_port(listenSocket as never);
  const hostForUrl = opts.host.includes(':') && !opts.host.startsWith('[') ? `[${opts.host}]` : opts.host;
  const url = `http://${hostForUrl}:${port}`;
  log(`mtm server listening on ${url} (uWS binary: ${binary}, transport: ${transport}, kernel: ${engine.kernel}, auth: ${door.describe()})`);

  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      uws.us_listen_socket_close(listenSocket as never);
      sockets.endAll();
      const deadline = Date.now() + limits.shutdownGraceMs;
      while ((http.inflight > 0 || sockets.openConns.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      sockets.closeAll();
      hub.close();
      marketWs?.close();
      door.close();
      // TemplatedApp.close() (uWS >= 20.28): closes the remaining sockets, idle keep-alive HTTP ones included.
      (app as unknown as { close(): void }).close();
      log(`mtm server on ${url} closed`);
    })();
    return closed;
  };

  return { port, url, uwsBinary: binary, transport, stats: () => stats.snapshot(), close };
}
