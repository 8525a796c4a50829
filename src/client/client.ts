// Typed client for mtm-engine's WebSocket protocol (docs/PROTOCOL.md), for Node and browsers.
// - Node: uses globalThis.WebSocket when present, else imports `ws` dynamically (browsers never load it);
//   with `ws` the key goes in the Authorization header, with a browser WebSocket in Sec-WebSocket-Protocol.
// - Reconnects with exponential backoff (and jitter) and resubscribes everything.
// - Tracks seq per portfolio: a gap (from_seq > last seq + 1) asks the server for a resync.
// - trade() resolves with the ack after the durable commit; requests time out; the pending map is bounded.
// - Binary updates (encoding: 'binary') are decoded transparently.

import type { DomainEventType, PortfolioSnapshot, StoredEvent, TradeInput, TradeResult } from '../domain/types.js';
import { decodeUpdate } from '../protocol/binary.js';
import { DeltaKind, deltaHeadOf, heldPositionsOf, splitUpdatesFrame, type HeldPositions } from '../protocol/delta.js';
import { BEARER_PROTOCOL_PREFIX, PROTOCOL_NAME } from '../protocol/wire.js';
import type { ClientOp, Encoding, ErrorMessage, Frames, RequestId, ServerMessage, UpdateMessage } from '../protocol/messages.js';
import { applyUpdate } from '../protocol/view.js';

/** The part of the WebSocket interface the client uses (browser WebSocket and `ws` both have it). */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

export type WebSocketFactory = (url: string, protocols: string[], headers: Record<string, string>) => WebSocketLike;

export interface ReconnectOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  /** Fraction of the delay randomized either way (0.2 = +-20%). */
  jitter: number;
}

export interface ClientOptions {
  /** Server base URL (http(s):// or ws(s)://); the client connects to <url>/ws. */
  url: string;
  /** API key; omitted when the server runs without keys. */
  key?: string;
  /** false disables reconnection. */
  reconnect?: Partial<ReconnectOptions> | false;
  /** How long a request (trade, ping) waits for its answer. Default 10 s. */
  requestTimeoutMs?: number;
  /** Requests waiting for an answer at once; more are refused at once. Default 1000. */
  pendingRequestsMax?: number;
  /** Custom socket factory (tests, other runtimes). Default: browser WebSocket, else `ws`. */
  webSocket?: WebSocketFactory;
  /** Errors not tied to a request or a subscription. */
  onError?: (error: MtmError) => void;
  onStateChange?: (state: ClientState) => void;
}

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export class MtmError extends Error {
  override name = 'MtmError';
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
    readonly portfolio?: string,
  ) {
    super(message);
  }
}

export interface SubscriptionHandlers {
  /** Full state: on subscribe, after a resync, after a reconnect. */
  onSnapshot?: (snapshot: PortfolioSnapshot, meta: { resync: boolean }) => void;
  /** A delta (only changed positions); `view` is the full state after it. */
  onUpdate?: (update: UpdateMessage, view: PortfolioSnapshot) => void;
  onError?: (error: MtmError) => void;
}

export interface SubscribeOptions {
  throttleMs?: number;
  encoding?: Encoding;
  /** 'connection': one frame per batch with all this connection's updates (decoded the same way). */
  frames?: Frames;
}

export interface Subscription {
  readonly portfolios: readonly string[];
  unsubscribe(): void;
}

interface SubState {
  handlers: SubscriptionHandlers;
  options: SubscribeOptions;
  /** -1 until a snapshot arrived on the current connection. */
  lastSeq: number;
  view: PortfolioSnapshot | null;
  resyncing: boolean;
}

interface Pending {
  resolve: (m: ServerMessage) => void;
  reject: (e: MtmError) => void;
  timer: ReturnType<typeof setTimeout>;
}

export interface ClientStats {
  reconnects: number;
  gaps: number;
  resyncs: number;
  messages: number;
}

const OPEN = 1;
const defaultReconnect: ReconnectOptions = { initialDelayMs: 250, maxDelayMs: 30_000, factor: 2, jitter: 0.2 };

function wsUrl(base: string, path: string): string {
  const u = base.replace(/^http(s?):\/\//, 'ws$1://').replace(/\/+$/, '');
  return u + path;
}

/** The runtime's WebSocket: the global one (browsers, Node >= 22), else the `ws` package, loaded on demand. */
export async function defaultWebSocketFactory(): Promise<{ factory: WebSocketFactory; headers: boolean }> {
  const G = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => WebSocketLike }).WebSocket;
  if (G !== undefined) return { factory: (url, protocols) => new G(url, protocols), headers: false };
  const mod = (await import('ws')) as unknown as { default: new (url: string, protocols: string[], opts: { headers: Record<string, string> }) => WebSocketLike };
  const WS = mod.default;
  return { factory: (url, protocols, headers) => new WS(url, protocols, { headers }), headers: true };
}

export class MtmClient {
  private ws: WebSocketLike | null = null;
  private readonly subs = new Map<string, SubState>();
  private events: { filter: { portfolios?: string[]; types?: DomainEventType[] }; onEvent: (e: StoredEvent) => void } | null = null;
  private readonly pending = new Map<RequestId, Pending>();
  private nextId = 1;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private closedByUser = false;
  private _state: ClientState = 'connecting';
  private factory: WebSocketFactory | null = null;
  private headerAuth = false;
  private readonly reconnect: ReconnectOptions | false;
  readonly stats: ClientStats = { reconnects: 0, gaps: 0, resyncs: 0, messages: 0 };

  private constructor(private readonly options: ClientOptions) {
    this.reconnect = options.reconnect === false ? false : { ...defaultReconnect, ...(options.reconnect ?? {}) };
  }

  /** Connects; resolves once the socket is open, rejects if the first attempt fails. */
  static async connect(options: ClientOptions): Promise<MtmClient> {
    const c = new MtmClient(options);
    if (options.webSocket) c.factory = options.webSocket;
    else {
      const d = await defaultWebSocketFactory();
      c.factory = d.factory;
      c.headerAuth = d.headers;
    }
    await c.open();
    return c;
  }

  get state(): ClientState {
    return this._state;
  }

  private setState(s: ClientState): void {
    if (this._state === s) return;
    this._state = s;
    this.options.onStateChange?.(s);
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const protocols = [PROTOCOL_NAME];
      const headers: Record<string, string> = {};
      if (this.options.key !== undefined) {
        if (this.headerAuth) headers.Authorization = `Bearer ${this.options.key}`;
        else protocols.push(BEARER_PROTOCOL_PREFIX + this.options.key);
      }
      let ws: WebSocketLike;
      try {
        ws = this.factory!(wsUrl(this.options.url, '/ws'), protocols, headers);
      } catch (e) {
        reject(new MtmError('connect_failed', String(e)));
        return;
      }
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this.attempt = 0;
        this.setState('open');
        this.restore();
        resolve();
      };
      ws.onerror = () => {
        /* followed by onclose */
      };
      ws.onmessage = (ev) => this.onMessage(ev.data);
      ws.onclose = (ev) => {
        if (this.ws === ws) this.ws = null;
        this.failPending(new MtmError('disconnected', `connection closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''}); a trade may or may not have been applied: retry it with the same trade_id`));
        for (const s of this.subs.values()) s.lastSeq = -1;
        if (!opened) {
          if (this._state === 'connecting') {
            this.setState('closed');
            reject(new MtmError('connect_failed', `could not connect (${ev.code})`));
            return;
          }
        }
        this.scheduleReconnect();
      };
    });
  }

  private scheduleReconnect(): void {
    if (this.closedByUser || this.reconnect === false) {
      this.setState('closed');
      return;
    }
    this.setState('reconnecting');
    const r = this.reconnect;
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * Math.pow(r.factor, this.attempt));
    const delay = Math.max(0, base * (1 + r.jitter * (Math.random() * 2 - 1)));
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.stats.reconnects++;
      this.open().catch(() => this.scheduleReconnect());
    }, delay);
  }

  /** After (re)connecting: subscriptions and the event filter are sent again. */
  private restore(): void {
    const groups = new Map<string, { options: SubscribeOptions; ids: string[] }>();
    for (const [id, s] of this.subs) {
      const k = `${s.options.throttleMs ?? 0}/${s.options.encoding ?? 'json'}/${s.options.frames ?? 'single'}`;
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { options: s.options, ids: [] }));
      g.ids.push(id);
    }
    for (const g of groups.values()) this.sendSubscribe(g.ids, g.options);
    if (this.events) this.sendOp({ op: 'subscribe_events', ...this.events.filter });
  }

  private sendOp(op: ClientOp): boolean {
    const ws = this.ws;
    if (ws === null || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(op));
    return true;
  }

  private sendSubscribe(ids: string[], o: SubscribeOptions): void {
    this.sendOp({
      op: 'subscribe',
      portfolios: ids,
      ...(o.throttleMs ? { throttle_ms: o.throttleMs } : {}),
      ...(o.encoding ? { encoding: o.encoding } : {}),
      ...(o.frames ? { frames: o.frames } : {}),
    });
  }

  subscribe(portfolios: string[], handlers: SubscriptionHandlers, options: SubscribeOptions = {}): Subscription {
    for (const id of portfolios) this.subs.set(id, { handlers, options, lastSeq: -1, view: null, resyncing: false });
    this.sendSubscribe(portfolios, options);
    return {
      portfolios,
      unsubscribe: () => {
        const mine = portfolios.filter((id) => this.subs.get(id)?.handlers === handlers);
        for (const id of mine) this.subs.delete(id);
        if (mine.length > 0) this.sendOp({ op: 'unsubscribe', portfolios: mine });
      },
    };
  }

  /** The full state of a subscribed portfolio as last received, or null. */
  portfolio(id: string): PortfolioSnapshot | null {
    return this.subs.get(id)?.view ?? null;
  }

  /** Asks for a fresh snapshot of a subscribed portfolio. */
  resync(portfolio: string): void {
    const s = this.subs.get(portfolio);
    if (s) s.resyncing = true;
    this.stats.resyncs++;
    this.sendOp({ op: 'resync', portfolio });
  }

  subscribeEvents(filter: { portfolios?: string[]; types?: DomainEventType[] }, onEvent: (e: StoredEvent) => void): { unsubscribe(): void } {
    this.events = { filter, onEvent };
    this.sendOp({ op: 'subscribe_events', ...filter });
    return {
      unsubscribe: () => {
        if (this.events?.onEvent !== onEvent) return;
        this.events = null;
        this.sendOp({ op: 'unsubscribe_events' });
      },
    };
  }

  private request<T extends ServerMessage>(build: (id: number) => ClientOp): Promise<T> {
    const max = this.options.pendingRequestsMax ?? 1000;
    if (this.pending.size >= max) return Promise.reject(new MtmError('too_many_pending', `more than ${max} requests waiting for an answer`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new MtmError('timeout', `no answer within ${this.options.requestTimeoutMs ?? 10_000} ms`));
      }, this.options.requestTimeoutMs ?? 10_000);
      this.pending.set(id, { resolve: resolve as (m: ServerMessage) => void, reject, timer });
      if (!this.sendOp(build(id))) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new MtmError('disconnected', 'not connected'));
      }
    });
  }

  /** Resolves with the trade's result after the durable commit (applied: false when trade_id was seen before). */
  async trade(portfolio: string, trade: TradeInput): Promise<TradeResult> {
    const ack = await this.request<Extract<ServerMessage, { type: 'ack' }>>((id) => ({ op: 'trade', id, portfolio, trade }));
    const { type: _t, id: _i, ...result } = ack;
    return result;
  }

  /**
   * A what-if: the position and portfolio figures the trade would produce and every risk limit it would
   * breach (result.breaches). Nothing is booked or logged; trade_id must be unused and stays free.
   */
  async whatIf(portfolio: string, trade: Omit<TradeInput, 'dry_run'>): Promise<TradeResult> {
    return this.trade(portfolio, { ...trade, dry_run: true });
  }

  /** Round trip to the server (ms). */
  async ping(): Promise<number> {
    const t0 = Date.now();
    await this.request((id) => ({ op: 'ping', id }));
    return Date.now() - t0;
  }

  get pendingRequests(): number {
    return this.pending.size;
  }

  private failPending(e: MtmError): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(e);
    }
  }

  private onMessage(data: unknown): void {
    this.stats.messages++;
    if (typeof data !== 'string') {
      const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
      if (bytes === null) return;
      if (bytes.length > 0 && bytes[0] === DeltaKind.updates) {
        const records = splitUpdatesFrame(bytes);
        if (!records.ok) return this.options.onError?.(new MtmError('bad_frame', `undecodable binary frame: ${records.reason}`));
        for (const r of records.value) this.onBinaryUpdate(r);
        return;
      }
      return this.onBinaryUpdate(bytes);
    }
    let m: ServerMessage;
    try {
      m = JSON.parse(data) as ServerMessage;
    } catch {
      return this.options.onError?.(new MtmError('bad_frame', 'server sent invalid JSON'));
    }
    switch (m.type) {
      case 'snapshot': {
        const s = this.subs.get(m.portfolio_id);
        if (!s) return;
        const { type: _t, resync, ...snap } = m;
        s.lastSeq = snap.seq;
        s.view = snap;
        s.resyncing = false;
        s.handlers.onSnapshot?.(snap, { resync });
        return;
      }
      case 'update':
        return this.onUpdate(m);
      case 'updates':
        for (const u of m.updates) this.onUpdate(u);
        return;
      case 'event':
        return this.events?.onEvent(m.event);
      case 'ack':
      case 'pong':
        return this.settle(m.id, m);
      case 'error':
        return this.onServerError(m);
      default:
        return; // subscribed / unsubscribed / events_subscribed: informational
    }
  }

  private onBinaryUpdate(bytes: Uint8Array): void {
    // Version 4 records carry only what a tick moved for most positions: they decode against the
    // subscription's view, so its sequence is checked first (a duplicate or a gap is not decoded).
    const head = deltaHeadOf(bytes);
    let held: HeldPositions | null = null;
    if (head !== null) {
      const s = this.subs.get(head.portfolio_id);
      if (!s || s.lastSeq < 0 || s.view === null || head.seq <= s.lastSeq) return;
      if (head.from_seq > s.lastSeq + 1) return this.onGap(head.portfolio_id, s.resyncing);
      const view = s.view;
      let positions: HeldPositions | null = null;
      held = { get: (symbol) => (positions ??= heldPositionsOf(view)).get(symbol) };
    }
    const d = decodeUpdate(bytes, held);
    if (!d.ok) return this.options.onError?.(new MtmError('bad_frame', `undecodable binary frame: ${d.reason}`));
    const { from_seq, ...u } = d.value;
    this.onUpdate(from_seq < u.seq ? { type: 'update', from_seq, ...u } : { type: 'update', ...u });
  }

  private settle(id: RequestId | undefined, m: ServerMessage): void {
    if (id === undefined) return;
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
    p.resolve(m);
  }

  private onUpdate(u: UpdateMessage): void {
    const s = this.subs.get(u.portfolio_id);
    if (!s || s.lastSeq < 0 || s.view === null) return; // before the snapshot: the snapshot will cover it
    if (u.seq <= s.lastSeq) return;
    const from = u.from_seq ?? u.seq;
    if (from > s.lastSeq + 1) return this.onGap(u.portfolio_id, s.resyncing);
    s.lastSeq = u.seq;
    s.view = applyUpdate(s.view, u);
    s.handlers.onUpdate?.(u, s.view);
  }

  /** A gap: updates were lost. Ask for a snapshot once and ignore updates until it comes. */
  private onGap(portfolio: string, resyncing: boolean): void {
    this.stats.gaps++;
    if (!resyncing) this.resync(portfolio);
  }

  private onServerError(m: ErrorMessage): void {
    const e = new MtmError(m.code, m.message, m.retry_after_ms, m.portfolio);
    if (m.id !== undefined && this.pending.has(m.id)) {
      const p = this.pending.get(m.id)!;
      clearTimeout(p.timer);
      this.pending.delete(m.id);
      p.reject(e);
      return;
    }
    if (m.portfolio !== undefined) {
      const s = this.subs.get(m.portfolio);
      if (s) {
        // The subscription was refused (not found, forbidden, ...): it is not retried on reconnect.
        if (m.code === 'portfolio_not_found' || m.code === 'forbidden') this.subs.delete(m.portfolio);
        if (s.handlers.onError) return s.handlers.onError(e);
      }
    }
    this.options.onError?.(e);
  }

  /** Closes for good (no reconnection); pending requests are rejected. */
  close(): void {
    this.closedByUser = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.failPending(new MtmError('closed', 'client closed'));
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, 'client closed');
    this.setState('closed');
  }
}
