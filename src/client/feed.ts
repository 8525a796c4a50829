// Publisher side of /ws/feed: registers symbols once (ids per connection), then sends binary tick
// batches (28-byte records) and resolves each batch with the server's feed_ack. No reconnection:
// a publisher re-registers on a new connection (ids are per connection).

import { encodeFeedRegister, encodeFeedTicks } from '../protocol/binary.js';
import { MtmError, defaultWebSocketFactory, type WebSocketFactory, type WebSocketLike } from './client.js';
import { BEARER_PROTOCOL_PREFIX, PROTOCOL_NAME } from '../protocol/wire.js';
import type { FeedAckMessage, RegisteredMessage, ServerMessage } from '../protocol/messages.js';

export interface FeedOptions {
  url: string;
  key?: string;
  webSocket?: WebSocketFactory;
  requestTimeoutMs?: number;
}

export interface FeedTickInput {
  symbol: string;
  price: number;
  ts: number;
  size?: number;
}

/** Answers come back in order (one per frame), so a FIFO of waiters matches them. */
export class MtmFeed {
  private readonly waiters: { resolve: (m: ServerMessage) => void; reject: (e: MtmError) => void; timer: ReturnType<typeof setTimeout> }[] = [];
  private readonly ids = new Map<string, number>();

  private constructor(
    private readonly ws: WebSocketLike,
    private readonly timeoutMs: number,
  ) {}

  static async connect(o: FeedOptions): Promise<MtmFeed> {
    let factory = o.webSocket;
    let headerAuth = false;
    if (!factory) {
      const d = await defaultWebSocketFactory();
      factory = d.factory;
      headerAuth = d.headers;
    }
    const protocols = [PROTOCOL_NAME];
    const headers: Record<string, string> = {};
    if (o.key !== undefined) {
      if (headerAuth) headers.Authorization = `Bearer ${o.key}`;
      else protocols.push(BEARER_PROTOCOL_PREFIX + o.key);
    }
    const ws = factory(o.url.replace(/^http(s?):\/\//, 'ws$1://').replace(/\/+$/, '') + '/ws/feed', protocols, headers);
    ws.binaryType = 'arraybuffer';
    const feed = new MtmFeed(ws, o.requestTimeoutMs ?? 10_000);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => {};
      ws.onclose = (ev) => {
        reject(new MtmError('connect_failed', `feed connection closed (${ev.code})`));
        feed.failAll(new MtmError('disconnected', `feed connection closed (${ev.code})`));
      };
    });
    ws.onmessage = (ev) => feed.onMessage(ev.data);
    return feed;
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') return;
    const m = JSON.parse(data) as ServerMessage;
    const w = this.waiters.shift();
    if (!w) return;
    clearTimeout(w.timer);
    if (m.type === 'error') w.reject(new MtmError(m.code, m.message, m.retry_after_ms));
    else w.resolve(m);
  }

  private failAll(e: MtmError): void {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }

  private send(frame: Uint8Array): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.findIndex((w) => w.timer === timer);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new MtmError('timeout', 'no feed answer in time'));
      }, this.timeoutMs);
      this.waiters.push({ resolve, reject, timer });
      this.ws.send(frame);
    });
  }

  /** Registers symbols (binary register frame); returns their ids. */
  async register(symbols: string[]): Promise<RegisteredMessage> {
    const m = (await this.send(encodeFeedRegister(symbols))) as RegisteredMessage;
    for (const s of m.symbols) this.ids.set(s.symbol, s.id);
    return m;
  }

  /** Sends one binary batch, registering unknown symbols first; resolves with its feed_ack. */
  async publish(ticks: FeedTickInput[]): Promise<FeedAckMessage> {
    const unknown = [...new Set(ticks.map((t) => t.symbol).filter((s) => !this.ids.has(s)))];
    if (unknown.length > 0) await this.register(unknown);
    const records = ticks.map((t) => ({ symbolId: this.ids.get(t.symbol) ?? 0xffffffff, price: t.price, ts: t.ts, size: t.size ?? NaN }));
    return (await this.send(encodeFeedTicks(records))) as FeedAckMessage;
  }

  close(): void {
    this.failAll(new MtmError('closed', 'feed closed'));
    this.ws.close(1000, 'done');
  }
}
