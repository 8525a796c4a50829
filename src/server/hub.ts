// Delivery of portfolio snapshots and updates to WebSocket subscribers.
//
// One engine subscription per watched portfolio (a Channel), whatever the number of sockets. The
// engine hands each update over as the bytes its shard wrote (a binary delta, src/client/delta.ts):
// binary topic members get those bytes as they are; the update is decoded into an object only when
// something needs one (JSON members, merged deltas, the compat view), once per update.
// Updates are published to uWS topics (p/<id>/j, p/<id>/b, p/<id>/c): subscribers with no throttle
// and no backpressure are topic members and cost nothing more. The compat view (the whole portfolio)
// is kept current only while a compat socket watches the portfolio.
// Subscriptions with frames: 'connection' are not topic members: their updates are queued per
// connection and sent as one frame per connection per engine batch (flushed in a microtask, after the
// engine has delivered the batch).
// Every other subscription is "manual" and keeps a PendingDelta (conflation.ts):
//   - loading:   waiting for its snapshot; updates are merged meanwhile and sent right after it;
//   - throttled: merged updates flushed by the timer wheel at most every throttle_ms;
//   - conflating: its socket is above backpressureSoftBytes; nothing is sent until the socket drains
//     below half the soft bound, then one merged update (or a fresh snapshot when one came meanwhile).
// A socket above the soft bound for slowConsumerGraceMs, or above backpressureBytesMax, is closed 4008.
// Before a socket leaves a topic it is pinged: uWS queues published messages until its next drain and
// a send (the ping) drains this socket's queue first, so nothing published before is lost.

import type { WebSocket } from 'uWebSockets.js';
import type { Engine, EngineMessage, Listener } from '../engine/api.js';
import type { PortfolioSnapshot, StoredEvent } from '../domain/types.js';
import { CloseCode, type Encoding, type Frames } from '../protocol/messages.js';
import { encodeDelta, encodeUpdatesFrame } from '../protocol/delta.js';
import type { Delta } from '../engine/deltas.js';
import { applyUpdate } from '../protocol/view.js';
import { canRead, type Principal } from './auth.js';
import { PendingDelta, TimerWheel } from './conflation.js';
import { errorMessage, eventMessage, snapshotMessage, updateMessageJson, updatesMessageJson, type Encoded } from './encoding.js';
import type { ServerLimits } from './options.js';
import type { StatsCollector, WsProtocol } from './stats.js';
import type { WindowCounter } from './rateLimit.js';
import type { Uws } from './uws.js';
import type { DomainEventType } from '../domain/types.js';

export interface CommandLimiter {
  /** 0 when allowed, else ms until a command may be sent. */
  take(now: number): number;
}

export interface ConnBase {
  readonly protocol: WsProtocol;
  readonly principal: Principal;
  readonly remote: string;
  readonly commands: CommandLimiter;
  readonly badFrames: WindowCounter;
  ws: WebSocket<Conn> | null;
  closed: boolean;
}

export interface MainConn extends ConnBase {
  readonly protocol: 'main';
  readonly subs: Map<string, Sub>;
  events: { portfolios: Set<string> | null; types: Set<DomainEventType> | null } | null;
  conflating: boolean;
  conflatingSince: number;
  pendingCommands: number;
  /** frames: 'connection': this batch's records, sent as one frame per encoding (bounded by subs). */
  outBinary?: Uint8Array[];
  outJson?: Buffer[];
}

export interface CompatConn extends ConnBase {
  readonly protocol: 'compat';
  readonly portfolio: string;
  readonly subs: Map<string, Sub>;
  conflating: boolean;
  conflatingSince: number;
}

export interface FeedConn extends ConnBase {
  readonly protocol: 'feed';
  readonly symbols: string[];
  readonly symbolIds: Map<string, number>;
  batches: number;
}

export type Conn = MainConn | CompatConn | FeedConn;
export type SubscriberConn = MainConn | CompatConn;

/** framed: live like a topic member, but its updates go out in per-connection frames. */
type SubState = 'loading' | 'topic' | 'framed' | 'manual';

export class Sub {
  state: SubState = 'loading';
  readonly pending = new PendingDelta();
  lastSentAt = 0;
  needSnapshot = false;
  /** Compat: the full view must be sent when the socket drains. */
  dirty = false;
  /** Bumped on every (re)load: a snapshot answer for an older load is ignored. */
  loadToken = 0;
  /** A resync was asked for: the snapshot that ends this load carries resync: true. */
  resync = false;

  constructor(
    readonly conn: SubscriberConn,
    readonly channel: Channel,
    readonly encoding: Encoding | 'compat',
    readonly throttleMs: number,
    readonly frames: Frames = 'single',
  ) {}

  get topic(): string {
    return this.encoding === 'json' ? this.channel.topicJson : this.encoding === 'binary' ? this.channel.topicBin : this.channel.topicCompat;
  }
}

export class Channel {
  readonly topicJson: string;
  readonly topicBin: string;
  readonly topicCompat: string;
  readonly subs = new Set<Sub>();
  /** Subscriptions not in a topic: loading, throttled, or on a conflating socket. */
  readonly manual = new Set<Sub>();
  /** Live subscriptions with frames: 'connection'. */
  readonly framed = new Set<Sub>();
  /** The whole portfolio: the engine's snapshot, plus every update while compat > 0. */
  view: PortfolioSnapshot | null = null;
  /** Compat subscriptions: the view is kept current only while there is one. */
  compat = 0;
  /** While the view is reloaded for a compat subscription: the updates that arrive meanwhile. */
  viewLoading: PendingDelta | null = null;
  /** The view missed updates (no compat subscription then): a compat subscription reloads it. */
  viewStale = false;
  unsubscribeEngine: (() => void) | null = null;
  /** The engine listener of this channel, and whether it asked the shard to hold its deltas (Hub.updateHold). */
  listener: Listener | null = null;
  held = false;

  constructor(readonly id: string) {
    this.topicJson = `p/${id}/j`;
    this.topicBin = `p/${id}/b`;
    this.topicCompat = `p/${id}/c`;
  }

  /** The compat message: the whole portfolio after the latest change. */
  compatMessage(): Encoded | null {
    return this.view === null ? null : snapshotMessage(this.view, false);
  }
}

export class Hub {
  private readonly channels = new Map<string, Channel>();
  readonly conns = new Set<SubscriberConn>();
  readonly eventConns = new Set<MainConn>();
  private readonly wheel: TimerWheel<Sub>;
  private readonly timers: NodeJS.Timeout[] = [];
  private offEvents: (() => void) | null = null;
  private closed = false;

  constructor(
    private readonly engine: Engine,
    private readonly app: ReturnType<Uws['App']>,
    private readonly limits: ServerLimits,
    private readonly stats: StatsCollector,
    private readonly now: () => number,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.wheel = new TimerWheel<Sub>(limits.throttleTickMs, limits.throttleMaxMs + limits.throttleTickMs, now());
    this.timers.push(setInterval(() => this.wheel.advance(this.now(), (s) => this.flushThrottled(s)), limits.throttleTickMs));
    this.timers.push(setInterval(() => this.checkBackpressure(), limits.backpressureCheckIntervalMs));
    for (const t of this.timers) t.unref();
  }

  // ---- subscriptions ----

  subscribe(conn: SubscriberConn, portfolioId: string, encoding: Encoding | 'compat', throttleMs: number, frames: Frames = 'single'): Sub {
    let ch = this.channels.get(portfolioId);
    const fresh = ch === undefined;
    if (ch === undefined) {
      ch = new Channel(portfolioId);
      this.channels.set(portfolioId, ch);
      this.stats.portfoliosWatched = this.channels.size;
    }
    const sub = new Sub(conn, ch, encoding, throttleMs, frames);
    conn.subs.set(portfolioId, sub);
    ch.subs.add(sub);
    ch.manual.add(sub);
    this.stats.subscriptions++;
    if (encoding === 'compat') ch.compat++;
    if (fresh) {
      // The engine delivers a snapshot first: it ends this sub's loading (see onEngine).
      const channel = ch;
      channel.listener = (m) => this.onEngine(channel, m);
      const r = this.engine.subscribe(portfolioId, channel.listener, { bytes: true });
      if (r.ok) {
        if (this.channels.get(portfolioId) === channel) channel.unsubscribeEngine = r.value;
        else r.value();
      } else {
        this.failSub(sub, r.error);
      }
    } else if (ch.view !== null) {
      // Compat sockets get the channel's own full view when it is current; /ws gets the engine's snapshot.
      if (encoding !== 'compat') this.load(sub, false);
      else if (!ch.viewStale) this.deliverSnapshot(sub, ch.view, null);
      else this.reloadView(ch);
    }
    // else: the channel still waits for the engine's first snapshot; it will deliver to this sub too.
    this.updateHold(ch);
    return sub;
  }

  /**
   * Conflation in the shard: while every subscription of a channel is on a conflating socket (and no
   * compat view needs every update), the shard skips encoding its deltas instead of this thread
   * decoding and merging each one; when one socket drains (or a subscription joins), the hold is
   * released and the shard sends one delta covering the skipped ones (from_seq), after what the
   * subscriptions had merged here before the hold.
   */
  private updateHold(ch: Channel): void {
    let want = ch.listener !== null && ch.compat === 0 && ch.subs.size > 0;
    if (want) for (const s of ch.subs) if (!s.conn.conflating) want = false;
    if (want === ch.held || ch.listener === null) return;
    ch.held = want;
    this.engine.holdDeltas(ch.id, ch.listener, want);
  }

  unsubscribe(sub: Sub): void {
    const { conn, channel } = sub;
    if (conn.subs.get(channel.id) !== sub) return;
    conn.subs.delete(channel.id);
    channel.subs.delete(sub);
    channel.manual.delete(sub);
    channel.framed.delete(sub);
    this.wheel.cancel(sub);
    sub.loadToken++;
    this.stats.subscriptions--;
    if (sub.encoding === 'compat' && --channel.compat === 0 && channel.view !== null) channel.viewStale = true;
    if (sub.state === 'topic' && !conn.closed && conn.ws !== null) conn.ws.unsubscribe(sub.topic);
    if (channel.subs.size > 0) this.updateHold(channel);
    if (channel.subs.size === 0) {
      this.channels.delete(channel.id);
      this.stats.portfoliosWatched = this.channels.size;
      channel.unsubscribeEngine?.();
      channel.unsubscribeEngine = null;
    }
  }

  /** Sends a fresh snapshot (resync: true) followed by whatever changed meanwhile. */
  resync(sub: Sub): void {
    this.toManual(sub);
    sub.pending.clear();
    sub.resync = true;
    if (sub.channel.view !== null) this.load(sub, true);
  }

  private failSub(sub: Sub, error: { code: string; message: string }): void {
    const conn = sub.conn;
    this.unsubscribe(sub);
    if (conn.protocol === 'compat') {
      this.end(conn, CloseCode.notFound, 'portfolio not found');
    } else {
      this.send(conn, errorMessage({ code: error.code as never, message: error.message }, { portfolio: sub.channel.id }));
    }
  }

  /**
   * uWS queues published messages and delivers them at its next drain; a socket that unsubscribes
   * before that drain loses them. A send drains this socket's queue first: a ping (a control frame the
   * client answers by itself) is the send that adds nothing to the protocol.
   */
  private flushTopics(conn: SubscriberConn): void {
    if (!conn.closed && conn.ws !== null) conn.ws.ping();
  }

  private toManual(sub: Sub): void {
    if (sub.state === 'topic') {
      this.flushTopics(sub.conn);
      if (!sub.conn.closed && sub.conn.ws !== null) sub.conn.ws.unsubscribe(sub.topic);
      sub.state = 'manual';
      sub.channel.manual.add(sub);
    } else if (sub.state === 'framed') {
      sub.channel.framed.delete(sub);
      sub.state = 'manual';
      sub.channel.manual.add(sub);
    }
    this.wheel.cancel(sub);
  }

  /**
   * A compat socket arrived while nobody kept the view current: the view is reloaded from the engine,
   * merging the updates that arrive meanwhile (they are newer than the snapshot or dropped by seq).
   */
  private reloadView(ch: Channel): void {
    if (ch.viewLoading !== null) return;
    const pending = new PendingDelta();
    ch.viewLoading = pending;
    this.engine.snapshot(ch.id).then(
      (r) => {
        if (ch.viewLoading !== pending || this.channels.get(ch.id) !== ch) return;
        ch.viewLoading = null;
        if (!r.ok) {
          // Retryable (shard restarting): the engine's resync snapshot will end the loading.
          if (r.error.retryable !== true) for (const sub of [...ch.manual]) if (sub.encoding === 'compat' && sub.state === 'loading') this.failSub(sub, r.error);
          return;
        }
        let view = r.value;
        const merged = pending.take();
        if (merged !== null) view = applyUpdate(view, merged.update);
        ch.view = view;
        ch.viewStale = false;
        for (const sub of [...ch.manual]) if (sub.encoding === 'compat' && sub.state === 'loading') this.deliverSnapshot(sub, view, null);
      },
      () => undefined,
    );
  }

  private load(sub: Sub, resync: boolean): void {
    sub.state = 'loading';
    sub.channel.manual.add(sub);
    sub.resync = sub.resync || resync;
    const token = ++sub.loadToken;
    this.engine.snapshot(sub.channel.id).then(
      (r) => {
        if (sub.loadToken !== token || sub.conn.closed) return;
        if (r.ok) this.deliverSnapshot(sub, r.value, null);
        else if (r.error.retryable !== true) this.failSub(sub, r.error);
        // retryable (shard restarting): the engine's resync snapshot will end the loading.
      },
      () => {
        /* engine closed: nothing to deliver */
      },
    );
  }

  /** Ends a sub's loading with `snap`; `encoded` is the shared serialization when there is one. */
  private deliverSnapshot(sub: Sub, snap: PortfolioSnapshot, encoded: Encoded | null): void {
    const conn = sub.conn;
    if (conn.closed) return;
    sub.loadToken++;
    sub.pending.dropThrough(snap.seq);
    if (conn.conflating) {
      sub.state = 'manual';
      sub.needSnapshot = true;
      return;
    }
    const resync = sub.resync;
    sub.resync = false;
    const msg = encoded !== null && !resync ? encoded : sub.encoding === 'compat' ? snapshotMessage(snap, false) : snapshotMessage(snap, resync);
    conn.ws?.cork(() => {
      this.send(conn, msg);
      this.stats.snapshotsSent++;
      if (sub.encoding !== 'compat') this.flushPending(sub);
    });
    this.goLive(sub);
  }

  /** Puts a loaded sub where its updates come from: its topic, or the wheel when throttled. */
  private goLive(sub: Sub): void {
    const conn = sub.conn;
    if (conn.closed || conn.conflating || conn.ws === null) {
      sub.state = 'manual';
      return;
    }
    sub.dirty = false;
    if (sub.throttleMs === 0 && sub.frames === 'connection' && sub.encoding !== 'compat') {
      sub.state = 'framed';
      sub.channel.manual.delete(sub);
      sub.channel.framed.add(sub);
    } else if (sub.throttleMs === 0) {
      sub.state = 'topic';
      sub.channel.manual.delete(sub);
      conn.ws.subscribe(sub.topic);
    } else {
      sub.state = 'manual';
      sub.lastSentAt = this.now();
    }
  }

  private flushPending(sub: Sub): void {
    const taken = sub.pending.take();
    if (taken === null) return;
    this.stats.updatesSerialized++;
    sub.lastSentAt = this.now();
    if (sub.frames === 'connection' && sub.conn.protocol === 'main') {
      if (sub.encoding === 'binary') this.queueFramed(sub.conn, encodeDelta(taken.update, taken.fromSeq), null);
      else this.queueFramed(sub.conn, null, updateMessageJson(taken.update, taken.fromSeq).bytes);
      return;
    }
    const msg = sub.encoding === 'binary' ? binaryMessage(encodeDelta(taken.update, taken.fromSeq)) : updateMessageJson(taken.update, taken.fromSeq);
    if (this.send(sub.conn, msg)) this.stats.updatesSent++;
  }

  // ---- per-connection frames ----

  private readonly framedConns = new Set<MainConn>();
  private framedFlushScheduled = false;

  /** Queues one record for the connection's next frame; the frames go out after this engine batch. */
  private queueFramed(conn: MainConn, binary: Uint8Array | null, json: Buffer | null): void {
    if (binary !== null) (conn.outBinary ??= []).push(binary);
    if (json !== null) (conn.outJson ??= []).push(json);
    this.framedConns.add(conn);
    if (this.framedFlushScheduled) return;
    this.framedFlushScheduled = true;
    queueMicrotask(this.flushFramed);
  }

  private readonly flushFramed = (): void => {
    this.framedFlushScheduled = false;
    for (const conn of this.framedConns) this.flushFramedConn(conn);
    this.framedConns.clear();
  };

  /** Sends what the connection has queued (before anything that must come after it, e.g. a resync snapshot). */
  private flushFramedConn(conn: MainConn): void {
    const bin = conn.outBinary;
    const json = conn.outJson;
    conn.outBinary = undefined;
    conn.outJson = undefined;
    if (conn.closed || conn.ws === null) return;
    conn.ws.cork(() => {
      if (bin !== undefined && bin.length > 0 && this.send(conn, binaryMessage(encodeUpdatesFrame(bin)))) this.stats.updatesSent += bin.length;
      if (json !== undefined && json.length > 0 && this.send(conn, updatesMessageJson(json))) this.stats.updatesSent += json.length;
    });
  }

  private flushThrottled(sub: Sub): void {
    const conn = sub.conn;
    if (conn.closed || conn.subs.get(sub.channel.id) !== sub || sub.state !== 'manual' || conn.conflating) return;
    conn.ws?.cork(() => this.flushPending(sub));
  }

  // ---- engine messages ----

  private onEngine(ch: Channel, m: EngineMessage): void {
    if (this.closed || this.channels.get(ch.id) !== ch) return;
    // A bug here must not break the engine's delivery loop for its other listeners: logged, not thrown.
    try {
      if (m.kind === 'snapshot') this.onSnapshot(ch, m.snapshot, m.resync);
      else if (m.kind === 'delta') this.onDelta(ch, m.delta);
    } catch (e) {
      this.log(`mtm server: delivering a ${m.kind} of portfolio ${ch.id} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }

  private onSnapshot(ch: Channel, snap: PortfolioSnapshot, resync: boolean): void {
    const first = ch.view === null;
    ch.view = snap;
    ch.viewStale = false;
    ch.viewLoading = null;
    const shared = snapshotMessage(snap, resync);
    if (!first) {
      // After a shard restart: everyone gets the new state; topic members through their topics.
      this.publish(ch.topicJson, shared);
      this.publish(ch.topicBin, shared);
      const compat = ch.compatMessage();
      if (compat !== null) this.publish(ch.topicCompat, compat);
      // Per-connection subscriptions are in no topic: what they have queued goes first (older seqs).
      for (const sub of ch.framed) {
        if (sub.conn.protocol !== 'main') continue;
        this.flushFramedConn(sub.conn);
        if (this.send(sub.conn, shared)) this.stats.snapshotsSent++;
      }
    }
    for (const sub of [...ch.manual]) {
      if (sub.conn.conflating) {
        sub.needSnapshot = true;
        sub.pending.clear();
        continue;
      }
      if (sub.encoding === 'compat') this.deliverSnapshot(sub, snap, null);
      else if (sub.state === 'loading' || resync) {
        if (resync) sub.resync = true;
        this.deliverSnapshot(sub, snap, shared);
      }
    }
  }

  private onDelta(ch: Channel, d: Delta): void {
    if (ch.compat > 0 && ch.view !== null && !ch.viewStale) ch.view = applyUpdate(ch.view, d.update());
    else if (ch.viewLoading !== null) ch.viewLoading.add(d.update(), d.fromSeq);
    else if (ch.view !== null) ch.viewStale = true;
    const app = this.app;
    const nBin = app.numSubscribers(ch.topicBin);
    if (nBin > 0) {
      // The shard's bytes, published as they are: nothing is encoded here.
      app.publish(ch.topicBin, d.bytes, true, false);
      this.stats.bytesSent += d.bytes.byteLength * nBin;
      this.stats.updatesSent += nBin;
    }
    let json: Encoded | null = null;
    const nJson = app.numSubscribers(ch.topicJson);
    if (nJson > 0) {
      json = updateMessageJson(d.update(), d.fromSeq);
      this.publish(ch.topicJson, json);
      this.stats.updatesSerialized++;
      this.stats.updatesSent += nJson;
    }
    const nCompat = app.numSubscribers(ch.topicCompat);
    if (nCompat > 0) {
      const compat = ch.compatMessage();
      if (compat !== null) this.publish(ch.topicCompat, compat);
    }
    for (const sub of ch.framed) {
      if (sub.conn.protocol !== 'main') continue;
      if (sub.encoding === 'binary') this.queueFramed(sub.conn, d.bytes, null);
      else {
        if (json === null) {
          json = updateMessageJson(d.update(), d.fromSeq);
          this.stats.updatesSerialized++;
        }
        this.queueFramed(sub.conn, null, json.bytes);
      }
    }
    if (ch.manual.size === 0) return;
    const now = this.now();
    for (const sub of ch.manual) {
      if (sub.encoding === 'compat') {
        sub.dirty = true;
        continue;
      }
      if (!sub.pending.add(d.update(), d.fromSeq)) continue;
      if (sub.state === 'loading') continue;
      this.stats.updatesConflated++;
      if (sub.state === 'manual' && !sub.conn.conflating && sub.throttleMs > 0) {
        this.wheel.schedule(sub, Math.max(now, sub.lastSentAt + sub.throttleMs));
      }
    }
  }

  // ---- events ----

  watchEvents(conn: MainConn): void {
    this.eventConns.add(conn);
    this.stats.eventSubscriptions = this.eventConns.size;
    if (this.offEvents === null) this.offEvents = this.engine.onEvent((e) => this.onEvent(e));
  }

  unwatchEvents(conn: MainConn): void {
    conn.events = null;
    this.eventConns.delete(conn);
    this.stats.eventSubscriptions = this.eventConns.size;
    if (this.eventConns.size === 0 && this.offEvents !== null) {
      this.offEvents();
      this.offEvents = null;
    }
  }

  private onEvent(e: StoredEvent): void {
    let msg: Encoded | null = null;
    for (const conn of this.eventConns) {
      const f = conn.events;
      if (f === null || conn.closed) continue;
      if (f.types !== null && !f.types.has(e.type)) continue;
      if (f.portfolios !== null ? !f.portfolios.has(e.portfolio_id) : !canRead(conn.principal, e.portfolio_id)) continue;
      msg ??= eventMessage(e);
      if (this.send(conn, msg)) this.stats.eventsSent++;
    }
  }

  // ---- sending and backpressure ----

  private publish(topic: string, msg: Encoded): void {
    const n = this.app.numSubscribers(topic);
    if (n === 0) return;
    this.app.publish(topic, msg.bytes, msg.isBinary, false);
    this.stats.bytesSent += msg.bytes.byteLength * n;
  }

  /** Sends one message; false when it was not sent (socket closed, or dropped by the hard bound). */
  send(conn: Conn, msg: Encoded): boolean {
    if (conn.closed || conn.ws === null) return false;
    const ws = conn.ws;
    const status = ws.send(msg.bytes, msg.isBinary, false);
    if (status === 2) {
      // Dropped by uWS: the socket is past maxBackpressure (the hard bound). Its state is unknown now.
      this.end(conn, CloseCode.slowConsumer, 'slow consumer');
      this.stats.slowConsumerDisconnects++;
      return false;
    }
    this.stats.bytesSent += msg.bytes.byteLength;
    if (status === 0) {
      const buffered = ws.getBufferedAmount();
      if (buffered > this.limits.backpressureBytesMax) {
        this.end(conn, CloseCode.slowConsumer, 'slow consumer');
        this.stats.slowConsumerDisconnects++;
      } else if (conn.protocol !== 'feed' && !conn.conflating && buffered > this.limits.backpressureSoftBytes) {
        this.enterConflation(conn);
      }
    }
    return true;
  }

  end(conn: Conn, code: number, reason: string): void {
    if (conn.closed || conn.ws === null) return;
    const ws = conn.ws;
    conn.closed = true;
    ws.end(code, reason);
  }

  private enterConflation(conn: SubscriberConn): void {
    conn.conflating = true;
    conn.conflatingSince = this.now();
    this.stats.backpressureEvents++;
    this.flushTopics(conn);
    for (const sub of conn.subs.values()) {
      if (sub.state === 'topic') {
        if (conn.ws !== null && !conn.closed) conn.ws.unsubscribe(sub.topic);
        sub.state = 'manual';
        sub.channel.manual.add(sub);
      } else if (sub.state === 'framed') {
        sub.channel.framed.delete(sub);
        sub.state = 'manual';
        sub.channel.manual.add(sub);
      }
      this.wheel.cancel(sub);
    }
    for (const sub of conn.subs.values()) this.updateHold(sub.channel);
  }

  /** Called from the drain handler and the periodic check. */
  maybeLeaveConflation(conn: SubscriberConn): void {
    if (!conn.conflating || conn.closed || conn.ws === null) return;
    if (conn.ws.getBufferedAmount() > this.limits.backpressureSoftBytes / 2) return;
    conn.conflating = false;
    // Released first: the shard's catch-up delta follows what is flushed below.
    for (const sub of conn.subs.values()) this.updateHold(sub.channel);
    const ws = conn.ws;
    ws.cork(() => {
      for (const sub of [...conn.subs.values()]) {
        if (conn.closed || conn.conflating) return;
        if (sub.state === 'loading') continue;
        if (sub.encoding === 'compat') {
          if (sub.needSnapshot || sub.dirty) {
            const msg = sub.channel.compatMessage();
            if (msg !== null && this.send(conn, msg)) this.stats.snapshotsSent++;
          }
          sub.needSnapshot = false;
          if (!conn.conflating) this.goLive(sub);
          continue;
        }
        if (sub.needSnapshot) {
          sub.needSnapshot = false;
          this.load(sub, true);
          continue;
        }
        this.flushPending(sub);
        if (!conn.conflating) this.goLive(sub);
      }
    });
  }

  private checkBackpressure(): void {
    const now = this.now();
    const { backpressureSoftBytes: soft, backpressureBytesMax: hard, slowConsumerGraceMs: grace } = this.limits;
    let total = 0;
    for (const conn of this.conns) {
      if (conn.closed || conn.ws === null) continue;
      const buffered = conn.ws.getBufferedAmount();
      total += buffered;
      if (buffered > this.stats.bufferedBytesPeak) this.stats.bufferedBytesPeak = buffered;
      if (buffered > hard || (conn.conflating && buffered > soft && now - conn.conflatingSince > grace)) {
        this.end(conn, CloseCode.slowConsumer, 'slow consumer');
        this.stats.slowConsumerDisconnects++;
        continue;
      }
      if (!conn.conflating && buffered > soft) this.enterConflation(conn);
      else if (conn.conflating) {
        if (buffered > soft) continue;
        // Between the bounds: it is draining; restart the grace period.
        if (buffered > soft / 2) conn.conflatingSince = now;
        else this.maybeLeaveConflation(conn);
      }
    }
    this.stats.bufferedBytes = total;
  }

  /** Forgets a closed connection: its subscriptions, its event filter. */
  dropConn(conn: SubscriberConn): void {
    conn.closed = true;
    for (const sub of [...conn.subs.values()]) this.unsubscribe(sub);
    this.conns.delete(conn);
    if (conn.protocol === 'main') this.unwatchEvents(conn);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const ch of this.channels.values()) ch.unsubscribeEngine?.();
    this.channels.clear();
    this.offEvents?.();
    this.offEvents = null;
  }
}

function binaryMessage(bytes: Uint8Array): Encoded {
  return { bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), isBinary: true };
}
