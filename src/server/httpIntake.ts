// HTTP intake: where a request enters the server. Routes it, checks auth and rate limits at the
// door, reads a body with a byte limit (refused early on Content-Length, else counted chunk by
// chunk; the connection is closed after a 413) and onAborted, runs the handler (http.ts) and writes
// the answer (finish). GETs outside /api/ that match no route are static files.

import { performance } from 'node:perf_hooks';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { ErrorCode } from '../errors.js';
import { anonymousPrincipal, bearerFromAuthorization, type Principal } from './auth.js';
import type { Door } from './door.js';
import { bodyHandlers, errorResult, json, publicHandlers, routes, type HandlerName, type HttpRequestContext, type HttpResult } from './http.js';
import type { ResolvedOptions } from './options.js';
import { remoteOf, writeResult } from './response.js';
import { Router, parseQuery } from './router.js';
import { serveStatic } from './staticFiles.js';
import type { StatsCollector } from './stats.js';
import type { Engine } from '../engine/api.js';
import { TradeImport, importContentTypes, isImportContentType } from './tradeImport.js';

function errorMessageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class HttpIntake {
  /** Requests taken and not answered yet (shutdown waits for them). */
  inflight = 0;
  private readonly router = new Router<HandlerName>(routes);

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly stats: StatsCollector,
    private readonly door: Door,
    private readonly handlers: Record<HandlerName, (ctx: HttpRequestContext) => Promise<HttpResult> | HttpResult>,
    private readonly engine: Engine,
  ) {}

  readonly onRequest = (res: HttpResponse, req: HttpRequest): void => {
    const { opts, stats, door, handlers } = this;
    const { limits, now, log } = opts;
    const started = performance.now();
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const rawQuery = req.getQuery() ?? '';
    const authorization = req.getHeader('authorization');
    const contentLength = req.getHeader('content-length');
    const contentType = req.getHeader('content-type');
    const remote = remoteOf(res);
    const state: { aborted: boolean; done: boolean; onAbort: (() => void) | null } = { aborted: false, done: false, onAbort: null };
    res.onAborted(() => {
      state.aborted = true;
      state.onAbort?.();
    });
    this.inflight++;
    let routeLabel = 'unmatched';

    const finish = (r: HttpResult, closeConnection = false): void => {
      if (state.done) return;
      state.done = true;
      this.inflight--;
      stats.recordHttp(method, routeLabel, r.status, performance.now() - started);
      if (state.aborted) return;
      res.cork(() => writeResult(res, r, closeConnection));
    };
    const fail = (e: unknown): void => {
      log(`mtm server: ${method} ${routeLabel} failed: ${errorMessageOf(e)}`);
      finish(json(500, { error: { code: 'internal', message: 'internal error' } }));
    };

    const m = this.router.match(method, path);
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
      const p = door.authenticate(bearerFromAuthorization(authorization));
      if (p === null) return finish(door.unauthorized());
      principal = p;
      const wait = door.commandBuckets.take(p.bucket ?? `addr:${remote}`, now());
      if (wait > 0) return finish(door.rateLimited(wait, 'requests'));
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
    if (name === 'importTrades') {
      if (!isImportContentType(contentType)) {
        return finish(
          errorResult({ code: ErrorCode.unsupported_media_type, message: `content-type must be one of ${importContentTypes.join(', ')} (one trade a line)`, field: 'content-type' }),
          true,
        );
      }
      return this.streamImport(res, principal, state, () => {
        this.inflight--;
        stats.recordHttp(method, routeLabel, 200, performance.now() - started);
      });
    }
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
  };

  /** POST /api/v1/trades/import, streamed both ways with backpressure (tradeImport.ts): never buffered whole. */
  private streamImport(res: HttpResponse, principal: Principal, state: { aborted: boolean; done: boolean; onAbort: (() => void) | null }, done: () => void): void {
    let headed = false;
    const head = (): void => {
      if (headed) return;
      headed = true;
      res.writeStatus('200 OK');
      res.writeHeader('Content-Type', 'application/x-ndjson');
      res.writeHeader('Cache-Control', 'no-store');
      res.writeHeader('X-Content-Type-Options', 'nosniff');
    };
    const settle = (): void => {
      if (state.done) return;
      state.done = true;
      done();
    };
    const importer = new TradeImport(
      this.engine,
      principal,
      {
        write: (chunk) => {
          if (state.aborted) return true;
          let written = true;
          res.cork(() => {
            head();
            written = res.write(chunk);
          });
          return written;
        },
        onWritable: (cb) => {
          res.onWritable(() => {
            cb();
            return true;
          });
        },
        pauseInput: () => {
          if (!state.aborted) res.pause();
        },
        resumeInput: () => {
          if (!state.aborted) res.resume();
        },
        end: (chunk, closeConnection) => {
          settle();
          if (state.aborted) return;
          res.cork(() => {
            head();
            res.end(chunk, closeConnection);
          });
        },
      },
      this.opts.limits,
      this.opts.now,
    );
    state.onAbort = () => {
      importer.abort();
      settle();
    };
    res.onData((chunk, isLast) => importer.push(new Uint8Array(chunk), isLast));
  }
}
