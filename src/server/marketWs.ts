// The market ops of /ws: history (a bar query streamed in chunks with progress, cancellable) and
// subscribe_bars (every change of the open bar of a series, its close, and late revisions).
//
// Bounds: historiesPerConnectionMax histories at once per connection, barSeriesPerConnectionMax
// subscribed series, chunks of at most historyChunkBarsMax rows (the service's limit). Backpressure:
// a history sends its next chunk only once the socket buffers less than historyBufferedBytesMax, so
// a slow reader slows its own history and nothing queues for it; between chunks the event loop is
// given back. Open-bar updates skip a socket the hub is conflating (the next update supersedes them);
// closes and revisions are always sent (the hub closes a socket past its hard bound).

import { ErrorCode } from '../errors.js';
import type { RequestId } from '../protocol/messages.js';
import type { Bar } from '../market/bar.js';
import type { BarCursor } from '../market/history.js';
import type { BarChange } from '../market/pack.js';
import { parseBarQuery } from '../market/query.js';
import type { Timeframe } from '../market/timeframe.js';
import { encodeJson, errorMessage, type Encoded } from './encoding.js';
import type { Hub, MainConn } from './hub.js';
import { canReadMarket, marketReadScope, type MarketApi } from './market.js';
import type { HistoryOp, MarketOp, SubscribeBarsOp } from '../protocol/parse.js';

export interface MarketWsLimits {
  /** Histories streaming at once on one connection. */
  historiesPerConnectionMax: number;
  /** (symbol, tf) series one connection may subscribe to with subscribe_bars. */
  barSeriesPerConnectionMax: number;
  /** A history's next chunk waits until the socket buffers less than this. */
  historyBufferedBytesMax: number;
}

export const marketWsLimitsDefault: Readonly<MarketWsLimits> = Object.freeze({
  historiesPerConnectionMax: 4,
  barSeriesPerConnectionMax: 256,
  historyBufferedBytesMax: 64 * 1024,
});

/** How often a history waiting on a full socket looks again when no drain event comes. */
const drainPollMs = 50;

interface History {
  readonly id: RequestId;
  cancelled: boolean;
}

interface ConnState {
  readonly histories: Map<string, History>;
  readonly series: Set<string>;
  drainWaiters: (() => void)[];
}

const idKey = (id: RequestId): string => `${typeof id}:${id}`;
const seriesKey = (symbol: string, tf: Timeframe): string => symbol + '\u0000' + tf;

export class MarketWs {
  private readonly states = new Map<MainConn, ConnState>();
  private readonly subscribers = new Map<string, Set<MainConn>>();
  private readonly off: () => void;
  /** Rows streamed by every history so far. */
  historyBarsSent = 0;

  constructor(
    private readonly market: MarketApi,
    private readonly hub: Hub,
    private readonly now: () => number,
    private readonly limits: Readonly<MarketWsLimits> = marketWsLimitsDefault,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.off = market.onBar((bar, change) => this.onBar(bar, change));
  }

  onOp(conn: MainConn, op: MarketOp): void {
    if (!canReadMarket(conn.principal)) {
      return this.error(conn, ErrorCode.forbidden, `this key may not read market data (scope ${marketReadScope})`, op.id);
    }
    switch (op.op) {
      case 'history':
        return this.history(conn, op);
      case 'cancel':
        return this.cancel(conn, op.id);
      case 'subscribe_bars':
        return this.subscribe(conn, op);
      case 'unsubscribe_bars':
        return this.unsubscribe(conn, op);
    }
  }

  /** The socket drained: histories waiting for room go on. */
  onDrain(conn: MainConn): void {
    const state = this.states.get(conn);
    if (state === undefined || state.drainWaiters.length === 0) return;
    const waiters = state.drainWaiters;
    state.drainWaiters = [];
    for (const w of waiters) w();
  }

  /** The connection closed: its histories stop, its series are no longer watched for it. */
  dropConn(conn: MainConn): void {
    const state = this.states.get(conn);
    if (state === undefined) return;
    this.states.delete(conn);
    for (const h of state.histories.values()) h.cancelled = true;
    for (const key of state.series) this.removeSubscriber(conn, key);
    for (const w of state.drainWaiters) w();
  }

  close(): void {
    this.off();
    for (const conn of [...this.states.keys()]) this.dropConn(conn);
  }

  private state(conn: MainConn): ConnState {
    let s = this.states.get(conn);
    if (s === undefined) {
      s = { histories: new Map(), series: new Set(), drainWaiters: [] };
      this.states.set(conn, s);
    }
    return s;
  }

  private send(conn: MainConn, msg: Encoded): void {
    this.hub.send(conn, msg);
  }

  private error(conn: MainConn, code: ErrorCode, message: string, id: RequestId | undefined, field?: string): void {
    this.send(conn, errorMessage(field === undefined ? { code, message } : { code, message, field }, id === undefined ? {} : { id }));
  }

  // ---- history ----

  private history(conn: MainConn, op: HistoryOp): void {
    const state = this.state(conn);
    const key = idKey(op.id);
    if (state.histories.has(key)) return this.error(conn, ErrorCode.invalid_id, 'a history with this id is already running on this connection', op.id, 'id');
    if (state.histories.size >= this.limits.historiesPerConnectionMax) {
      return this.error(conn, ErrorCode.limit_exceeded, `at most ${this.limits.historiesPerConnectionMax} histories at once per connection; cancel one or wait for its history_end`, op.id, 'id');
    }
    const parsed = parseBarQuery({ symbol: op.symbol, tf: op.tf, from: op.from, to: op.to ?? this.now(), fill: op.fill }, this.market.limits.historyIntervalsMax);
    if (!parsed.ok) return this.error(conn, parsed.error.code, parsed.error.message, op.id, parsed.error.field);
    const h: History = { id: op.id, cancelled: false };
    state.histories.set(key, h);
    void this.market
      .cursor(parsed.value)
      .then((cursor) => this.stream(conn, state, h, cursor))
      .catch((e: unknown) => {
        this.log(`mtm server: history ${String(op.id).slice(0, 64)} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        if (!h.cancelled && !conn.closed) this.error(conn, ErrorCode.store_failed, 'reading market data failed', op.id);
      })
      .finally(() => {
        if (state.histories.get(key) === h) state.histories.delete(key);
      });
  }

  private async stream(conn: MainConn, state: ConnState, h: History, cursor: BarCursor): Promise<void> {
    const chunkMax = this.market.limits.historyChunkBarsMax;
    let sent = 0;
    let reported = -1;
    while (!cursor.finished) {
      await this.room(conn, state, h);
      if (h.cancelled || conn.closed) return;
      const rows = cursor.next(chunkMax);
      if (rows.length > 0) {
        sent += rows.length;
        this.historyBarsSent += rows.length;
        this.send(conn, encodeJson({ type: 'history_chunk', id: h.id, bars: rows }));
        reported = cursor.done;
        this.send(conn, encodeJson({ type: 'progress', id: h.id, done: reported, total: cursor.total }));
      }
      // The engine and the other sockets get the event loop between chunks.
      await new Promise((resolve) => setImmediate(resolve));
      if (h.cancelled || conn.closed) return;
    }
    if (reported !== cursor.total) this.send(conn, encodeJson({ type: 'progress', id: h.id, done: cursor.total, total: cursor.total }));
    this.send(conn, encodeJson({ type: 'history_end', id: h.id, bars: sent, cancelled: false }));
  }

  /** Resolves once the socket buffers less than historyBufferedBytesMax (or the history stopped). */
  private async room(conn: MainConn, state: ConnState, h: History): Promise<void> {
    while (!h.cancelled && !conn.closed && conn.ws !== null && conn.ws.getBufferedAmount() > this.limits.historyBufferedBytesMax) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          const i = state.drainWaiters.indexOf(done);
          if (i >= 0) state.drainWaiters.splice(i, 1);
          resolve();
        };
        const timer = setTimeout(done, drainPollMs);
        state.drainWaiters.push(done);
      });
    }
  }

  private cancel(conn: MainConn, id: RequestId): void {
    const state = this.state(conn);
    const key = idKey(id);
    const h = state.histories.get(key);
    if (h === undefined) return this.error(conn, ErrorCode.invalid_id, 'no history with this id is running on this connection', id, 'id');
    // Nothing of this history is sent after its history_end: the stream checks the flag after every wait.
    h.cancelled = true;
    state.histories.delete(key);
    this.send(conn, encodeJson({ type: 'history_end', id, cancelled: true }));
  }

  // ---- subscribe_bars ----

  private subscribe(conn: MainConn, op: SubscribeBarsOp): void {
    const state = this.state(conn);
    const fresh = op.symbols.filter((s) => !state.series.has(seriesKey(s, op.tf)));
    if (state.series.size + fresh.length > this.limits.barSeriesPerConnectionMax) {
      return this.error(conn, ErrorCode.limit_exceeded, `at most ${this.limits.barSeriesPerConnectionMax} bar series (symbol and tf) per connection`, op.id, 'symbols');
    }
    for (const symbol of fresh) {
      const key = seriesKey(symbol, op.tf);
      state.series.add(key);
      let conns = this.subscribers.get(key);
      if (conns === undefined) {
        conns = new Set();
        this.subscribers.set(key, conns);
      }
      conns.add(conn);
      this.market.watch(symbol, op.tf, true);
    }
    this.send(conn, encodeJson({ type: 'bars_subscribed', ...(op.id === undefined ? {} : { id: op.id }), symbols: op.symbols, tf: op.tf }));
    // The current open bar of each new series, so the client starts from the whole bar, not the next change.
    for (const symbol of fresh) {
      const key = seriesKey(symbol, op.tf);
      void this.market.openBar(symbol, op.tf).then((bar) => {
        if (bar !== null && !conn.closed && state.series.has(key)) this.send(conn, barMessage(bar, 'open'));
      });
    }
  }

  private unsubscribe(conn: MainConn, op: SubscribeBarsOp): void {
    const state = this.state(conn);
    const removed: string[] = [];
    for (const symbol of op.symbols) {
      const key = seriesKey(symbol, op.tf);
      if (!state.series.delete(key)) continue;
      this.removeSubscriber(conn, key);
      removed.push(symbol);
    }
    this.send(conn, encodeJson({ type: 'bars_unsubscribed', ...(op.id === undefined ? {} : { id: op.id }), symbols: removed, tf: op.tf }));
  }

  private removeSubscriber(conn: MainConn, key: string): void {
    const conns = this.subscribers.get(key);
    if (conns === undefined || !conns.delete(conn)) return;
    if (conns.size === 0) this.subscribers.delete(key);
    const [symbol, tf] = key.split('\u0000') as [string, Timeframe];
    this.market.watch(symbol, tf, false);
  }

  private onBar(bar: Bar, change: BarChange): void {
    const conns = this.subscribers.get(seriesKey(bar.symbol, bar.tf));
    if (conns === undefined) return;
    let msg: Encoded | null = null;
    for (const conn of conns) {
      if (conn.closed || (change === 'open' && conn.conflating)) continue;
      msg ??= barMessage(bar, change);
      this.send(conn, msg);
    }
  }
}

function barMessage(bar: Bar, change: BarChange): Encoded {
  return encodeJson({ type: 'bar', change, bar });
}
