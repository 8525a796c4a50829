// The transport used when uWebSockets.js fell back to its JS shim (no native binary for this
// platform / Node ABI, e.g. Node 22+, or UWS_USE_FALLBACK=1). The shim cannot do custom upgrades,
// pub/sub or user data, so the server runs on this instead: node:http + `ws`, exposing the subset of
// the uWS API that server.ts and hub.ts use, with the same semantics where they matter:
// send() returns 1 (sent) / 0 (backpressure) / 2 (dropped above maxBackpressure), end() calls the close
// handler at once, topics with publish/numSubscribers, drain events, maxPayloadLength, idleTimeout with
// automatic pings. Slower than native uWS; /health reports uws_binary: fallback.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket as NodeWebSocket } from 'ws';

type Handler = (res: NodeHttpResponse, req: NodeHttpRequest) => void;

interface Behavior {
  maxPayloadLength?: number;
  idleTimeout?: number;
  maxBackpressure?: number;
  upgrade?: (res: NodeHttpResponse, req: NodeHttpRequest, context: unknown) => void;
  open?: (ws: NodeWs) => void;
  message?: (ws: NodeWs, message: ArrayBuffer, isBinary: boolean) => void;
  drain?: (ws: NodeWs) => void;
  close?: (ws: NodeWs, code: number, message: ArrayBuffer) => void;
}

function toArrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function asBuffer(m: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof m === 'string') return Buffer.from(m, 'utf8');
  if (Buffer.isBuffer(m)) return m;
  if (ArrayBuffer.isView(m)) return Buffer.from(m.buffer, m.byteOffset, m.byteLength);
  return Buffer.from(m);
}

export class NodeHttpRequest {
  private readonly path: string;
  private readonly query: string;

  constructor(
    private readonly req: IncomingMessage,
    private readonly params: string[] = [],
  ) {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.query = q < 0 ? '' : url.slice(q + 1);
  }
  getMethod(): string {
    return (this.req.method ?? 'GET').toLowerCase();
  }
  getUrl(): string {
    return this.path;
  }
  getQuery(): string {
    return this.query;
  }
  getHeader(name: string): string {
    const v = this.req.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : (v ?? '');
  }
  getParameter(i: number): string {
    return this.params[i] ?? '';
  }
}

/** The response side: a node ServerResponse, or (for refused upgrades) the raw socket. */
export class NodeHttpResponse {
  private status = 200;
  private statusText = 'OK';
  private readonly headers: [string, string][] = [];
  private dataHandler: ((chunk: ArrayBuffer, isLast: boolean) => void) | null = null;
  private abortHandler: (() => void) | null = null;
  done = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse | null,
    private readonly socket: Socket,
    private readonly onUpgrade: ((userData: unknown, protocol: string) => void) | null = null,
  ) {
    if (res !== null) {
      res.on('close', () => {
        if (!this.done) this.abortHandler?.();
      });
    } else {
      socket.on('close', () => {
        if (!this.done) this.abortHandler?.();
      });
    }
  }

  get wantsBody(): boolean {
    return this.dataHandler !== null;
  }

  writeStatus(s: string): this {
    const m = /^(\d{3})\s*(.*)$/.exec(s);
    this.status = m ? Number(m[1]) : 500;
    this.statusText = m ? m[2] : 'Error';
    return this;
  }
  writeHeader(k: string, v: string): this {
    this.headers.push([k, v]);
    return this;
  }
  private writeHead(res: ServerResponse, closeConnection: boolean): void {
    if (res.headersSent) return;
    res.statusCode = this.status;
    res.statusMessage = this.statusText;
    for (const [k, v] of this.headers) res.setHeader(k, v);
    if (closeConnection) res.setHeader('Connection', 'close');
  }
  /** Streams a chunk (chunked encoding); false = buffered above the socket's high-water mark, like uWS. */
  write(body: string | ArrayBuffer | ArrayBufferView): boolean {
    if (this.done || this.res === null) return true;
    this.writeHead(this.res, false);
    return this.res.write(asBuffer(body));
  }
  onWritable(cb: (offset: number) => boolean): this {
    this.res?.once('drain', () => cb(0));
    return this;
  }
  pause(): void {
    this.req.pause();
  }
  resume(): void {
    this.req.resume();
  }
  end(body: string | ArrayBuffer | ArrayBufferView = '', closeConnection = false): this {
    if (this.done) return this;
    this.done = true;
    const data = asBuffer(body);
    if (this.res !== null) {
      const res = this.res;
      this.writeHead(res, closeConnection);
      res.end(data, () => {
        if (closeConnection) this.socket.destroy();
      });
    } else {
      const head = [`HTTP/1.1 ${this.status} ${this.statusText}`, ...this.headers.map(([k, v]) => `${k}: ${v}`), `Content-Length: ${data.length}`, 'Connection: close', '', ''].join('\r\n');
      this.socket.end(Buffer.concat([Buffer.from(head), data]));
    }
    return this;
  }
  onAborted(cb: () => void): this {
    this.abortHandler = cb;
    return this;
  }
  onData(cb: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    this.dataHandler = cb;
    this.req.on('data', (c: Buffer) => {
      if (!this.done) cb(toArrayBuffer(c), false);
    });
    this.req.on('end', () => {
      if (!this.done) cb(new ArrayBuffer(0), true);
    });
    return this;
  }
  cork(cb: () => void): this {
    cb();
    return this;
  }
  getRemoteAddressAsText(): ArrayBuffer {
    return toArrayBuffer(Buffer.from(this.socket.remoteAddress ?? ''));
  }
  close(): this {
    this.done = true;
    this.socket.destroy();
    return this;
  }
  upgrade(userData: unknown, _key: string, protocol: string): void {
    if (this.onUpgrade === null) throw new Error('not an upgrade request');
    this.done = true;
    this.onUpgrade(userData, protocol);
  }
}

export class NodeWs {
  readonly topics = new Set<string>();
  closed = false;
  alive = true;

  constructor(
    private readonly ws: NodeWebSocket,
    private readonly userData: unknown,
    private readonly behavior: Behavior,
    private readonly app: NodeApp,
  ) {}

  getUserData(): unknown {
    return this.userData;
  }
  getBufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
  send(message: string | ArrayBuffer | ArrayBufferView, isBinary = false): number {
    if (this.closed) return 2;
    const max = this.behavior.maxBackpressure ?? 64 * 1024;
    if (max > 0 && this.ws.bufferedAmount > max) return 2;
    this.ws.send(asBuffer(message), { binary: isBinary, compress: false });
    return this.ws.bufferedAmount > 0 ? 0 : 1;
  }
  /** Like uWS: the close frame goes after what is buffered, then FIN; no wait for the peer's close frame. */
  end(code = 1000, reason: string | ArrayBuffer = ''): void {
    if (this.closed) return;
    this.ws.close(code, typeof reason === 'string' ? reason : Buffer.from(reason).toString());
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    if (socket) {
      socket.end();
      setTimeout(() => socket.destroy(), 10_000).unref();
    }
    this.fireClose(code, reason);
  }
  close(): void {
    if (this.closed) return;
    this.ws.terminate();
    this.fireClose(1006, '');
  }
  ping(): number {
    if (this.closed) return 2;
    this.ws.ping();
    return 1;
  }
  subscribe(topic: string): boolean {
    this.topics.add(topic);
    this.app.topic(topic).add(this);
    return true;
  }
  unsubscribe(topic: string): boolean {
    const had = this.topics.delete(topic);
    this.app.leave(topic, this);
    return had;
  }
  isSubscribed(topic: string): boolean {
    return this.topics.has(topic);
  }
  cork(cb: () => void): this {
    cb();
    return this;
  }
  getRemoteAddressAsText(): ArrayBuffer {
    return toArrayBuffer(Buffer.from((this.ws as unknown as { _socket?: Socket })._socket?.remoteAddress ?? ''));
  }

  /** Close handler once, at the first of end(), close() or the socket's close. */
  fireClose(code: number, reason: string | ArrayBuffer): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.topics) this.app.leave(t, this);
    this.topics.clear();
    this.app.sockets.delete(this);
    this.behavior.close?.(this, code, typeof reason === 'string' ? toArrayBuffer(Buffer.from(reason)) : reason);
  }
}

interface WsRoute {
  pattern: RegExp;
  behavior: Behavior;
  wss: WebSocketServer;
}

export class NodeApp {
  private handler: Handler | null = null;
  private readonly routes: WsRoute[] = [];
  private readonly topics = new Map<string, Set<NodeWs>>();
  readonly sockets = new Set<NodeWs>();
  private readonly tcp = new Set<Socket>();
  private server: Server | null = null;
  private pinger: NodeJS.Timeout | null = null;

  any(_pattern: string, handler: Handler): this {
    this.handler = handler;
    return this;
  }

  /** Patterns: exact paths, `:name` for one segment. */
  ws(pattern: string, behavior: Behavior): this {
    const re = new RegExp('^' + pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '([^/]+)') + '$');
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: behavior.maxPayloadLength ?? 16 * 1024,
      perMessageDeflate: false,
      handleProtocols: (_offered, req) => (req as IncomingMessage & { selectedProtocol?: string }).selectedProtocol || false,
    });
    this.routes.push({ pattern: re, behavior, wss });
    return this;
  }

  topic(name: string): Set<NodeWs> {
    let s = this.topics.get(name);
    if (s === undefined) this.topics.set(name, (s = new Set()));
    return s;
  }

  leave(name: string, ws: NodeWs): void {
    const s = this.topics.get(name);
    if (s === undefined) return;
    s.delete(ws);
    if (s.size === 0) this.topics.delete(name);
  }

  numSubscribers(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  publish(topic: string, message: string | ArrayBuffer | ArrayBufferView, isBinary = false): boolean {
    const s = this.topics.get(topic);
    if (s === undefined) return false;
    const data = asBuffer(message);
    for (const ws of s) ws.send(data, isBinary);
    return true;
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const path = (req.url ?? '/').split('?')[0];
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (m === null) continue;
      const params = m.slice(1);
      const res = new NodeHttpResponse(req, null, socket, (userData, protocol) => {
        (req as IncomingMessage & { selectedProtocol?: string }).selectedProtocol = protocol;
        route.wss.handleUpgrade(req, socket, head, (raw) => this.accept(raw, userData, route.behavior));
      });
      route.behavior.upgrade?.(res, new NodeHttpRequest(req, params), null);
      return;
    }
    new NodeHttpResponse(req, null, socket).writeStatus('404 Not Found').writeHeader('Content-Type', 'application/json').end('{"error":{"code":"not_found","message":"no WebSocket route"}}');
  }

  private accept(raw: NodeWebSocket, userData: unknown, behavior: Behavior): void {
    const ws = new NodeWs(raw, userData, behavior, this);
    this.sockets.add(ws);
    raw.on('message', (data: Buffer, isBinary: boolean) => {
      ws.alive = true;
      behavior.message?.(ws, toArrayBuffer(data), isBinary);
    });
    raw.on('pong', () => (ws.alive = true));
    raw.on('close', (code: number, reason: Buffer) => ws.fireClose(code, toArrayBuffer(reason)));
    raw.on('error', () => ws.close());
    (raw as unknown as { _socket?: Socket })._socket?.on('drain', () => {
      if (!ws.closed) behavior.drain?.(ws);
    });
    behavior.open?.(ws);
  }

  listen(host: string, port: number, cb: (token: NodeApp | false) => void): this {
    const server = createServer({ keepAlive: true }, (req, res) => {
      const hres = new NodeHttpResponse(req, res, req.socket);
      this.handler?.(hres, new NodeHttpRequest(req));
      if (!hres.wantsBody) req.resume();
    });
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket as Socket, head));
    server.on('connection', (s: Socket) => {
      this.tcp.add(s);
      s.on('close', () => this.tcp.delete(s));
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    server.once('error', () => cb(false));
    server.listen(port, host, () => {
      this.server = server;
      const idle = Math.max(...this.routes.map((r) => r.behavior.idleTimeout ?? 120), 1);
      this.pinger = setInterval(() => {
        for (const ws of this.sockets) {
          if (!ws.alive) ws.close();
          else {
            ws.alive = false;
            ws.ping();
          }
        }
      }, (idle * 1000) / 2);
      this.pinger.unref();
      cb(this);
    });
    return this;
  }

  get port(): number {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? a.port : -1;
  }

  stopListening(): void {
    this.server?.close();
  }

  close(): void {
    if (this.pinger) clearInterval(this.pinger);
    for (const ws of [...this.sockets]) ws.close();
    for (const s of this.tcp) s.destroy();
    this.server?.close();
    for (const r of this.routes) r.wss.close();
  }
}

/** The module-level surface server.ts uses from uWebSockets.js. */
export const nodeTransport = {
  App: (): NodeApp => new NodeApp(),
  us_listen_socket_close: (token: NodeApp): void => token.stopListening(),
  us_socket_local_port: (token: NodeApp): number => token.port,
  DISABLED: 0,
};
