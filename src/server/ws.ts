// WebSocket message handling for the three paths: /ws (main protocol), /ws/realtime/positions/{id}
// (compat: snapshots only, client frames ignored) and /ws/feed (publishers).

import { ErrorCode, type ErrorCode as Code } from '../errors.js';
import type { Engine } from '../engine/api.js';
import { validSymbol, validateTrade } from '../domain/validate.js';
import { decodeFeedFrame, readTick, type BinaryTick } from '../protocol/binary.js';
import { CloseCode, type ClientOp, type RegisteredMessage } from '../protocol/messages.js';
import { canRead, canSee, canTrade } from './auth.js';
import { encodeJson, errorMessage, type Encoded } from './encoding.js';
import type { Conn, FeedConn, Hub, MainConn } from './hub.js';
import { ingestTicks } from './http.js';
import type { ServerLimits } from './options.js';
import { parseClientOp, parseFeedOp, type ProtocolLimits } from '../protocol/parse.js';
import type { StatsCollector } from './stats.js';
import { canReadMarket, marketPortfolio } from './market.js';
import { isMarketOp, type MarketOp } from '../protocol/parse.js';
import type { MarketWs } from './marketWs.js';

export interface WsDeps {
  engine: Engine;
  hub: Hub;
  limits: ServerLimits;
  stats: StatsCollector;
  now: () => number;
  /** history, cancel, subscribe_bars, unsubscribe_bars; null or absent = answered not_found. */
  market?: MarketWs | null;
}

const feedErrorsMax = 32;

export class WsHandlers {
  private readonly protocolLimits: ProtocolLimits;
  private readonly tick: BinaryTick = { symbolId: 0, price: 0, ts: 0, size: 0 };

  constructor(private readonly d: WsDeps) {
    this.protocolLimits = d.limits;
  }

  private send(conn: Conn, msg: Encoded): void {
    this.d.hub.send(conn, msg);
  }

  /** Counts a malformed frame; past badFramesMax within the window the socket is closed 1008. */
  badFrame(conn: Conn, code: Code, message: string, id?: string | number, field?: string): void {
    this.d.stats.badFrames++;
    if (conn.badFrames.hit(this.d.now()) > this.d.limits.badFramesMax) {
      this.d.stats.badFrameDisconnects++;
      this.d.hub.end(conn, CloseCode.policyViolation, 'too many bad frames');
      return;
    }
    this.send(conn, errorMessage({ code, message, ...(field === undefined ? {} : { field }) }, id === undefined ? {} : { id }));
  }

  onMessage(conn: Conn, data: ArrayBuffer, isBinary: boolean): void {
    if (conn.closed) return;
    if (conn.protocol === 'feed') return this.onFeed(conn, data, isBinary);
    if (conn.protocol === 'compat') return; // the compat path only pushes; client frames are ignored
    this.d.stats.wsCommands++;
    if (isBinary) return this.badFrame(conn, ErrorCode.invalid_field, 'binary frames are not accepted on /ws: send JSON text frames');
    const wait = conn.commands.take(this.d.now());
    if (wait > 0) {
      this.d.stats.rateLimited++;
      this.send(conn, errorMessage({ code: ErrorCode.rate_limited, message: 'too many commands: retry later' }, { retry_after_ms: wait }));
      return;
    }
    const parsed = parseClientOp(Buffer.from(data).toString('utf8'), this.protocolLimits);
    if (!parsed.ok) return this.badFrame(conn, parsed.error.code, parsed.error.message, parsed.id, parsed.error.field);
    this.onOp(conn, parsed.value);
  }

  private notFound(conn: Conn, portfolio: string, id?: string | number): void {
    this.send(conn, errorMessage({ code: ErrorCode.portfolio_not_found, message: `portfolio '${portfolio}' not found` }, { portfolio, ...(id === undefined ? {} : { id }) }));
  }

  private onOp(conn: MainConn, op: ClientOp | MarketOp): void {
    if (isMarketOp(op)) {
      const market = this.d.market ?? null;
      if (market !== null) return market.onOp(conn, op);
      return this.send(conn, errorMessage({ code: ErrorCode.not_found, message: 'market data is not enabled on this server' }, op.id === undefined ? {} : { id: op.id }));
    }
    const { hub, engine, limits } = this.d;
    const p = conn.principal;
    const idx = op.id === undefined ? {} : { id: op.id };
    switch (op.op) {
      case 'ping':
        return this.send(conn, encodeJson({ type: 'pong', ...idx, ts: this.d.now() }));
      case 'subscribe': {
        const fresh = op.portfolios.filter((pid) => !conn.subs.has(pid));
        if (conn.subs.size + fresh.length > limits.subscriptionsPerConnectionMax) {
          return this.send(
            conn,
            errorMessage(
              { code: ErrorCode.limit_exceeded, message: `at most ${limits.subscriptionsPerConnectionMax} subscriptions per connection`, field: 'portfolios' },
              idx,
            ),
          );
        }
        const accepted: string[] = [];
        const refused: [string, 'not_found' | 'forbidden'][] = [];
        for (const pid of op.portfolios) {
          if (!canSee(p, pid) || !engine.has(pid)) refused.push([pid, 'not_found']);
          else if (!canRead(p, pid)) refused.push([pid, 'forbidden']);
          else accepted.push(pid);
        }
        conn.ws?.cork(() => {
          for (const [pid, why] of refused) {
            if (why === 'not_found') this.notFound(conn, pid, op.id);
            else this.send(conn, errorMessage({ code: ErrorCode.forbidden, message: `this key may not read portfolio '${pid}'` }, { ...idx, portfolio: pid }));
          }
          this.send(conn, encodeJson({ type: 'subscribed', ...idx, portfolios: accepted }));
          for (const pid of accepted) {
            const existing = conn.subs.get(pid);
            if (existing !== undefined) hub.unsubscribe(existing);
            hub.subscribe(conn, pid, op.encoding ?? 'json', op.throttle_ms ?? 0, op.frames ?? 'single');
          }
        });
        return;
      }
      case 'unsubscribe': {
        const removed: string[] = [];
        for (const pid of op.portfolios) {
          const sub = conn.subs.get(pid);
          if (sub !== undefined) {
            hub.unsubscribe(sub);
            removed.push(pid);
          }
        }
        return this.send(conn, encodeJson({ type: 'unsubscribed', ...idx, portfolios: removed }));
      }
      case 'resync': {
        const sub = conn.subs.get(op.portfolio);
        if (sub === undefined) {
          return this.send(conn, errorMessage({ code: ErrorCode.invalid_field, message: `not subscribed to '${op.portfolio}'`, field: 'portfolio' }, { ...idx, portfolio: op.portfolio }));
        }
        return hub.resync(sub);
      }
      case 'subscribe_events': {
        let portfolios: Set<string> | null = null;
        if (op.portfolios !== undefined) {
          for (const pid of op.portfolios) {
            // '_market' (MarketAlert, FeedGap events) is not a portfolio: scope read:market.
            if (pid === marketPortfolio) {
              if (canReadMarket(p)) continue;
              return this.send(conn, errorMessage({ code: ErrorCode.forbidden, message: 'this key may not read market data (scope read:market)' }, { ...idx, portfolio: pid }));
            }
            if (!canSee(p, pid) || !engine.has(pid)) return this.notFound(conn, pid, op.id);
            if (!canRead(p, pid)) {
              return this.send(conn, errorMessage({ code: ErrorCode.forbidden, message: `this key may not read portfolio '${pid}'` }, { ...idx, portfolio: pid }));
            }
          }
          portfolios = new Set(op.portfolios);
        }
        conn.events = { portfolios, types: op.types === undefined ? null : new Set(op.types) };
        hub.watchEvents(conn);
        return this.send(conn, encodeJson({ type: 'events_subscribed', ...idx, portfolios: op.portfolios ?? null, types: op.types ?? null }));
      }
      case 'unsubscribe_events':
        hub.unwatchEvents(conn);
        return this.send(conn, encodeJson({ type: 'unsubscribed', ...idx, portfolios: [] }));
      case 'trade':
        return this.trade(conn, op);
    }
  }

  private trade(conn: MainConn, op: Extract<ClientOp, { op: 'trade' }>): void {
    const { engine, limits, stats } = this.d;
    const p = conn.principal;
    const id = op.id;
    if (!canSee(p, op.portfolio) || !engine.has(op.portfolio)) return this.notFound(conn, op.portfolio, id);
    if (!canTrade(p, op.portfolio)) {
      return this.send(conn, errorMessage({ code: ErrorCode.forbidden, message: `this key may not trade portfolio '${op.portfolio}'` }, { id, portfolio: op.portfolio }));
    }
    if (conn.pendingCommands >= limits.pendingCommandsPerConnectionMax) {
      stats.rateLimited++;
      return this.send(conn, errorMessage({ code: ErrorCode.rate_limited, message: 'too many trades in flight on this connection' }, { id, retry_after_ms: 100 }));
    }
    const v = validateTrade(op.trade, this.d.now());
    if (!v.ok) return this.send(conn, errorMessage(v.error, { id }));
    conn.pendingCommands++;
    engine
      .tradeValidated(op.portfolio, v.value)
      .then(
        (r) => {
          conn.pendingCommands--;
          if (conn.closed) return;
          if (r.ok) {
            stats.tradesAcked++;
            conn.ws?.cork(() => this.send(conn, encodeJson({ type: 'ack', id, ...r.value })));
          } else if (r.error.code === ErrorCode.portfolio_not_found) {
            conn.ws?.cork(() => this.notFound(conn, op.portfolio, id));
          } else {
            conn.ws?.cork(() => this.send(conn, errorMessage(r.error, { id, ...(r.error.retryable ? { retry_after_ms: 1000 } : {}) })));
          }
        },
        (e: unknown) => {
          conn.pendingCommands--;
          if (!conn.closed) {
            conn.ws?.cork(() => this.send(conn, errorMessage({ code: ErrorCode.engine_closed, message: `engine unavailable: ${String(e).slice(0, 200)}` }, { id })));
          }
        },
      );
  }

  // ---- /ws/feed ----

  private onFeed(conn: FeedConn, data: ArrayBuffer, isBinary: boolean): void {
    if (isBinary) {
      const f = decodeFeedFrame(data, this.d.limits.feedSymbolsPerConnectionMax);
      if (!f.ok) return this.badFrame(conn, ErrorCode.invalid_field, `bad binary feed frame: ${f.reason}`);
      if (f.value.kind === 'register') return this.register(conn, f.value.symbols, undefined);
      const { count, view } = f.value;
      if (count > this.d.limits.ticksPerBatchMax) {
        return this.badFrame(conn, ErrorCode.limit_exceeded, `at most ${this.d.limits.ticksPerBatchMax} ticks per frame`);
      }
      let accepted = 0;
      let rejected = 0;
      const errors: { index: number; code: string }[] = [];
      const t = this.tick;
      const stats = this.d.stats;
      stats.feedTicksBinary += count;
      // Held (suspect) ticks are accepted ones the engine keeps back: counted by the engine's total.
      const heldBefore = this.d.engine.ticksHeldCount();
      for (let i = 0; i < count; i++) {
        readTick(view, i, t);
        const symbol = conn.symbols[t.symbolId];
        const code =
          symbol === undefined
            ? stats.refuseTick(ErrorCode.invalid_symbol)
            : t.size === t.size && !(t.size >= 0 && Number.isFinite(t.size))
              ? stats.refuseTick(ErrorCode.invalid_quantity)
              : this.d.engine.ingestTick(symbol, t.price, t.ts, t.size === t.size ? t.size : undefined);
        if (code === null) accepted++;
        else {
          rejected++;
          if (errors.length < feedErrorsMax) errors.push({ index: i, code });
        }
      }
      return this.feedAck(conn, undefined, accepted, rejected, errors, this.d.engine.ticksHeldCount() - heldBefore);
    }
    const parsed = parseFeedOp(Buffer.from(data).toString('utf8'), this.d.limits);
    if (!parsed.ok) return this.badFrame(conn, parsed.error.code, parsed.error.message, parsed.id, parsed.error.field);
    const op = parsed.value;
    if (op.op === 'register') return this.register(conn, op.symbols, op.id);
    this.d.stats.feedTicksJson += op.ticks.length;
    const r = ingestTicks(this.d.engine, op.ticks, true, this.d.stats);
    this.feedAck(conn, op.id, r.accepted, r.rejected.length, r.rejected.slice(0, feedErrorsMax), r.held);
  }

  private feedAck(conn: FeedConn, id: string | number | undefined, accepted: number, rejected: number, errors: { index: number; code: string }[], held: number): void {
    this.d.stats.feedTicksAccepted += accepted;
    this.d.stats.feedTicksRejected += rejected;
    conn.batches++;
    this.send(conn, encodeJson({ type: 'feed_ack', ...(id === undefined ? {} : { id }), batch: conn.batches, accepted, rejected, held, errors }));
  }

  private register(conn: FeedConn, symbols: readonly unknown[], id: string | number | undefined): void {
    const max = this.d.limits.feedSymbolsPerConnectionMax;
    const out: RegisteredMessage = { type: 'registered', ...(id === undefined ? {} : { id }), symbols: [], rejected: [] };
    for (let i = 0; i < symbols.length; i++) {
      const s = symbols[i];
      if (!validSymbol(s)) {
        out.rejected.push({ index: i, code: ErrorCode.invalid_symbol });
        continue;
      }
      let sid = conn.symbolIds.get(s);
      if (sid === undefined) {
        if (conn.symbols.length >= max) {
          out.rejected.push({ index: i, code: ErrorCode.limit_exceeded });
          continue;
        }
        sid = conn.symbols.length;
        conn.symbols.push(s);
        conn.symbolIds.set(s, sid);
      }
      out.symbols.push({ symbol: s, id: sid });
    }
    this.send(conn, encodeJson(out));
  }
}
