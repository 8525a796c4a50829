// Commit: where what the shards decided becomes durable. Events get their global seq when a shard's
// message arrives (in message order, persist), commit in the store's next group commit, and a
// command is acknowledged only after that commit (run). Trade ids are idempotent: a repeated id is
// answered with the first result (in flight, remembered, or stored), never applied twice.

import { performance } from 'node:perf_hooks';
import { engineClosed, ErrorCode, fail, ok, shardRestartingError, storeBehind, type Result } from '../errors.js';
import { validateTrade, type ValidTrade } from '../domain/validate.js';
import { baseCurrencyDefault, type Clock, type DomainEvent, type DomainEventType, type StoredEvent, type PortfolioSnapshot, type PositionView, type Totals, type TradeInput, type TradeResult } from '../domain/types.js';
import { instrumentCurrencyError } from '../domain/instruments.js';
import type { InstrumentTable } from './instruments.js';
import type { CommandResult, ShardEvent } from '../shard/protocol.js';
import type { EncodedEvents, Store } from '../store/store.js';
import type { EventListener } from './api.js';
import { EngineCounters, failureResult } from './counters.js';
import { applyToDirectory, directoryEventTypes, knownPortfolio, type Directory } from './directory.js';
import type { Lifecycle } from './lifecycle.js';
import type { ResolvedOptions } from './options.js';
import type { ShardPool } from './shards/pool.js';
import type { CommandBody } from './shardHandle.js';
import { shardOf } from './shardOf.js';
import { commandKey, currentPosition } from './streamPosition.js';
import type { SymbolTable } from './symbols.js';

export interface CommitDeps {
  o: ResolvedOptions;
  clock: Clock;
  life: Lifecycle;
  counters: EngineCounters;
  store: Store;
  directory: Directory;
  symbols: SymbolTable;
  pool: ShardPool;
  instruments: InstrumentTable;
}

export class Commit {
  /**
   * Settled trade ids -> the number of their stored result body (store.tradeResultBody), least
   * recently settled first, bounded by tradeIdsRememberedMax. A number, not the result: 200,000
   * settled Promises with their result objects held ~150 MB of the server's heap; a repeat reads its
   * body back from the store (one read of an append-ordered table), ids older than the bound by
   * (portfolio, trade_id) (store.tradeResult).
   */
  private readonly tradeIds = new Map<string, number>();
  /** Bounded by the commands a shard may queue and the store's pending writes: each entry is one of those. */
  private readonly tradesInFlight = new Map<string, Promise<Result<TradeResult>>>();
  /**
   * Trade ids of a bulk import's chunks on their way through the shards (bulkImport.ts): the chunk's
   * one settle promise per id, not a promise per trade. Bounded like tradesInFlight (chunks in flight).
   */
  readonly importsInFlight = new Map<string, Promise<void>>();
  /** Listeners of durable events, each with the types it takes (null: every type). */
  private readonly eventListeners = new Map<EventListener, ReadonlySet<DomainEventType> | null>();
  private lastDurable: Promise<void> = Promise.resolve();

  constructor(private readonly d: CommitDeps) {}

  /** Resolves once everything persisted so far is durable. */
  durable(): Promise<void> {
    return this.lastDurable;
  }

  /** Assigns global seqs now (in shard message order) and returns when the commit is durable. */
  persist(events: ShardEvent[], trades?: { portfolio_id: string; trade_id: string; result: unknown }[]): Promise<void> {
    for (const e of events) applyToDirectory(this.d.directory, e);
    const receipt = this.d.store.append(events as DomainEvent[], trades);
    const durable = receipt.durable.then(() => {
      if (this.eventListeners.size > 0) for (const e of receipt.stored) this.tell(e);
    });
    this.lastDurable = durable;
    return durable;
  }

  /**
   * Logs events a shard wrote as bytes (a bulk import's chunk, log.ts EncodedEvents): seqs assigned now,
   * in message order, like persist. Only a directory event (rare: a risk pause) and an event a
   * listener takes are decoded. Returns when durable.
   */
  persistEncoded(events: EncodedEvents, trades?: { portfolio_id: string; trade_id: string; result: unknown; bin?: Uint8Array }[]): Promise<void> {
    const decoded = (i: number): StoredEvent => {
      const start = i === 0 ? (events.start ?? 0) : events.ends[i - 1];
      const o = events.objects.find((x) => x.i === i);
      return start === events.ends[i] && o !== undefined ? { ...o.event, seq: 0 } : this.d.store.decodeEvent(events.bytes.subarray(start, events.ends[i]));
    };
    for (let i = 0; i < events.type.length; i++) if (directoryEventTypes.has(events.type[i])) applyToDirectory(this.d.directory, decoded(i));
    const receipt = this.d.store.appendEncoded(events, trades);
    const durable = receipt.durable.then(() => {
      if (this.eventListeners.size === 0) return;
      for (let i = 0; i < events.type.length; i++) {
        if (!this.wanted(events.type[i])) continue;
        const e = decoded(i);
        e.seq = receipt.firstSeq + i;
        this.tell(e);
      }
    });
    this.lastDurable = durable;
    return durable;
  }

  private wanted(type: DomainEventType): boolean {
    for (const types of this.eventListeners.values()) if (types === null || types.has(type)) return true;
    return false;
  }

  private tell(e: StoredEvent): void {
    for (const [l, types] of this.eventListeners) if (types === null || types.has(e.type)) l(e);
  }

  onEvent(listener: EventListener, types?: readonly DomainEventType[]): () => void {
    this.eventListeners.set(listener, types === undefined ? null : new Set(types));
    return () => this.eventListeners.delete(listener);
  }

  /** Sends a command to its shard and answers once its events are durable. */
  /** `onResult`: see ShardHandle.submit (runs as the shard's answer is read). */
  async run(portfolio: string, body: CommandBody, onResult?: (r: CommandResult) => void): Promise<Result<CommandResult>> {
    if (this.d.life.closing) return engineClosed(true);
    await this.d.life.ready;
    const h = this.d.pool.shards[shardOf(portfolio, this.d.o.workers)];
    if (h.state !== 'ready') return { ok: false, error: shardRestartingError(h.index) };
    if (body.kind !== 'snapshot' && this.d.store.overloaded()) return storeBehind();
    const position = body.kind === 'snapshot' ? undefined : currentPosition();
    // Cluster: the cursor is enqueued as the answer is read, right after its events were appended
    // (pool.ts onShardMessage), so both commit in the same transaction (store/streamCursor.ts).
    const answered =
      position === undefined
        ? onResult
        : (r: CommandResult): void => {
            this.d.store.advanceStreamCursor(position.partition, position.seq);
            // A command id applied joins the same batch: a resend after a timeout is answered, not re-applied.
            if (position.commandId !== undefined && r.error === null) this.d.store.append([], [{ portfolio_id: portfolio, trade_id: commandKey(position.commandId), result: { seq: position.seq } }]);
            onResult?.(r);
          };
    const pending = h.submit(body, answered);
    if (pending === null) return fail(ErrorCode.limit_exceeded, `commands queued per shard must be <= ${h.commandsQueuedMax}`, undefined, true);
    const r = await pending;
    if (r.error !== null) return { ok: false, error: r.error };
    if (r.durable !== undefined) {
      const durable = await r.durable.then(
        () => null,
        (err: unknown) => err,
      );
      if (durable !== null) return fail(ErrorCode.store_failed, `store commit failed: ${String(durable)}`);
    }
    return ok(r);
  }

  // ---- trades ----------------------------------------------------------------------------------

  async trade(portfolioId: string, input: TradeInput): Promise<Result<TradeResult>> {
    const started = performance.now();
    if (this.d.life.closing) return this.tradeDone(engineClosed(), started);
    const k = knownPortfolio(this.d.directory, portfolioId);
    if (!k.ok) return this.tradeDone(k, started);
    const v = validateTrade(input, this.d.clock.now());
    if (!v.ok) return this.tradeDone(v, started);
    return this.tradeChecked(k.value, v.value, started);
  }

  /** A trade the server validated at its boundary (validateTrade): applied without a second check. */
  async tradeValidated(portfolioId: string, trade: ValidTrade): Promise<Result<TradeResult>> {
    const started = performance.now();
    if (this.d.life.closing) return this.tradeDone(fail(ErrorCode.engine_closed, 'engine is closed'), started);
    const k = knownPortfolio(this.d.directory, portfolioId);
    if (!k.ok) return this.tradeDone(k, started);
    return this.tradeChecked(k.value, trade, started);
  }

  private async tradeChecked(portfolio: string, trade: ValidTrade, started: number): Promise<Result<TradeResult>> {
    // The instrument's currency is the trade's; one that contradicts it is refused.
    const instrument = this.d.instruments.get(trade.symbol);
    const clash = instrumentCurrencyError(instrument, trade.currency);
    if (clash !== null) return this.tradeDone(clash, started);
    if (instrument !== undefined) trade.currency = instrument.currency;
    const key = portfolio + '\u0000' + trade.trade_id;
    // An import books this id right now: its answer decides (applied there: a duplicate here).
    const importing = this.importsInFlight.get(key);
    if (importing !== undefined) {
      await importing;
      return this.tradeChecked(portfolio, trade, started);
    }
    const earlier = this.tradesInFlight.get(key);
    const stored = earlier === undefined ? this.settledResult(key, portfolio, trade.trade_id) : undefined;
    if (trade.dry_run) {
      // A what-if names a fresh id (it must not read as a replay of a booked trade) and uses none up.
      if (earlier !== undefined || stored !== undefined) {
        return this.tradeDone(fail(ErrorCode.trade_id_conflict, `trade_id: '${trade.trade_id}' was already used by a trade of this portfolio; a dry run needs an unused id`, 'trade_id'), started);
      }
      return this.whatIf(portfolio, trade, started);
    }
    if (earlier !== undefined) return this.tradeDone(await earlier.then(again), started);
    if (stored !== undefined) {
      if (isCarriedId(stored)) return this.tradeDone(await this.carriedAnswer(portfolio, trade.trade_id, trade.symbol), started);
      if (isImportedResult(stored)) return this.tradeDone(await this.carriedAnswer(portfolio, trade.trade_id, trade.symbol, stored.realized_pnl), started);
      return this.tradeDone(ok({ ...stored, applied: false }), started);
    }
    const interned = this.internFor(portfolio, trade);
    if (interned !== null) return this.tradeDone(interned, started);
    const attempt = this.applyTrade(portfolio, trade);
    this.tradesInFlight.set(key, attempt);
    const r = await attempt;
    this.tradesInFlight.delete(key);
    if (r.ok) this.rememberSettled(key, portfolio, trade.trade_id);
    return this.tradeDone(r, started);
  }

  /**
   * What the engine knows of a trade id before booking it (bulkImport.ts): a booking in flight (wait
   * for it, then ask again), the first result stored, or nothing (a new id).
   */
  known(key: string, portfolio: string, tradeId: string): { busy: Promise<unknown> } | { stored: TradeResult } | null {
    const busy = this.tradesInFlight.get(key) ?? this.importsInFlight.get(key);
    if (busy !== undefined) return { busy };
    const stored = this.settledResult(key, portfolio, tradeId);
    return stored === undefined ? null : { stored };
  }

  /** The first result of a settled id: by its remembered body number, else from the store by id. */
  private settledResult(key: string, portfolio: string, tradeId: string): TradeResult | undefined {
    const n = this.tradeIds.get(key);
    const body = n === undefined ? undefined : (this.d.store.tradeResultBody(n) as TradeResult | undefined);
    return body ?? (this.d.store.tradeResult(portfolio, tradeId) as TradeResult | undefined);
  }

  /**
   * The symbols a trade needs in every shard: its own, and for a foreign currency the conversion and
   * every leg it may read (direct, inverse, cross through the pivot), so rate ticks revalue it.
   */
  private internFor(portfolio: string, trade: ValidTrade): { ok: false; error: import('../errors.js').EngineError } | null {
    if (this.d.symbols.intern(trade.symbol) < 0) return fail(ErrorCode.limit_exceeded, `symbols must be <= ${this.d.o.limits.symbolsMax}`, 'symbol');
    const base = this.d.directory.get(portfolio)?.base ?? baseCurrencyDefault;
    if (trade.currency !== null && trade.currency !== base && !this.d.symbols.internConversion(trade.currency, base, this.d.o.fxPivot)) {
      return fail(ErrorCode.limit_exceeded, `symbols must be <= ${this.d.o.limits.symbolsMax}`, 'currency');
    }
    this.d.pool.announceSymbols();
    return null;
  }

  /** A what-if trade (dry_run): the shard answers the figures; nothing is booked or logged, no id is kept. */
  private async whatIf(portfolio: string, trade: ValidTrade, started: number): Promise<Result<TradeResult>> {
    const interned = this.internFor(portfolio, trade);
    if (interned !== null) return this.tradeDone(interned, started);
    const r = await this.run(portfolio, { kind: 'trade', portfolio, trade, now: this.d.clock.now(), dryRun: true });
    if (!r.ok) return this.tradeDone(r, started);
    return this.tradeDone(ok({ ...(r.value.trade as TradeResult), dry_run: true, breaches: r.value.breaches ?? [] }), started);
  }

  /**
   * A trade id this engine knows only as applied (carried by a shipped snapshot, no result body): the
   * duplicate is answered applied: false with the portfolio as it is now, as a single node answers an id
   * whose result it no longer has in memory from what it has.
   */
  private async carriedAnswer(portfolio: string, tradeId: string, symbol: string, realized?: number): Promise<Result<TradeResult>> {
    const r = await this.run(portfolio, { kind: 'snapshot', portfolio, now: this.d.clock.now() });
    if (!r.ok) return r;
    const s: PortfolioSnapshot | null = r.value.snapshot;
    if (s === null) return fail(ErrorCode.not_found, `portfolio_id: no portfolio '${portfolio}'`, 'portfolio_id');
    const position: PositionView = s.positions.find((p) => p.symbol === symbol) ?? {
      symbol, currency: s.base_currency, fx_rate: 1, quantity: 0, avg_cost: 0, last_price: 0, market_value: 0, unrealized_pnl: 0, realized_pnl: 0, return_rate: 0, weight: 0, price_ts: null, price_age_ms: null, stale: true,
    };
    const { cash, capital, holdings_value, cost_basis, unrealized_pnl, realized_pnl, total_return, return_rate, equity, gross_exposure, unconverted_positions, stale_positions, unpriced_positions } = s;
    const totals: Totals = { cash, capital, holdings_value, cost_basis, unrealized_pnl, realized_pnl, total_return, return_rate, equity, gross_exposure, unconverted_positions, stale_positions, unpriced_positions };
    return ok({ trade_id: tradeId, portfolio_id: portfolio, applied: false, realized_pnl: realized ?? position.realized_pnl, position, totals, state: s.state });
  }

  private async applyTrade(portfolio: string, trade: ValidTrade): Promise<Result<TradeResult>> {
    const r = await this.run(portfolio, { kind: 'trade', portfolio, trade, now: this.d.clock.now() });
    return r.ok ? ok(r.value.trade as TradeResult) : r;
  }

  /** The 'trade' counter and ack latency of a trade answered outside tradeChecked (a bulk import's). */
  counted(r: 'ok' | 'duplicate' | ErrorCode, ms: number): void {
    this.d.counters.trade(r === 'ok' || r === 'duplicate' ? r : failureResult(r), ms);
  }

  /** Cluster: these portfolios' copies left the engine: their remembered trade ids go (the store's too, engine.ts). */
  forget(portfolioIds: readonly string[]): void {
    const ids = new Set(portfolioIds);
    for (const key of this.tradeIds.keys()) if (ids.has(key.slice(0, key.indexOf('\u0000')))) this.tradeIds.delete(key);
  }

  /**
   * Settled trade ids, least recently settled first, bounded by tradeIdsRememberedMax (older ones are
   * answered by the store). Ids still in flight live in tradesInFlight and are never evicted: such an
   * id is in neither this map nor the store yet, and evicting it let a duplicate apply twice (found by
   * the simulator's swarm, seed 542490174). The result is durable here (its body is committed), so
   * the store knows its number.
   */
  private rememberSettled(key: string, portfolio: string, tradeId: string): void {
    const n = this.d.store.tradeResultNumber(portfolio, tradeId);
    if (n === undefined) return;
    if (this.tradeIds.size >= this.d.o.limits.tradeIdsRememberedMax) this.tradeIds.delete(this.tradeIds.keys().next().value as string);
    this.tradeIds.set(key, n);
  }

  private tradeDone(r: Result<TradeResult>, started: number): Result<TradeResult> {
    this.d.counters.trade(r.ok ? (r.value.applied ? 'ok' : 'duplicate') : failureResult(r.error.code), performance.now() - started);
    return r;
  }
}

function again(r: Result<TradeResult>): Result<TradeResult> {
  return r.ok ? ok({ ...r.value, applied: false }) : r;
}

/**
 * The stored result of a trade booked by a bulk import: what its answer line said (the realized P&L),
 * not the positions and totals a single trade's result holds (~40 bytes instead of ~600 a trade on
 * the commit path). A repeat through the single-trade route answers the portfolio as it is now with
 * that realized P&L, as for a carried id.
 */
export interface ImportedResult {
  imported: true;
  realized_pnl: number;
}

export function isImportedResult(stored: unknown): stored is ImportedResult {
  return typeof stored === 'object' && stored !== null && (stored as { imported?: unknown }).imported === true;
}

/** The stored result of an id carried by a shipped snapshot (applied, its result not carried). */
export const carriedIdResult = { carried_id: true } as const;

export function isCarriedId(stored: unknown): boolean {
  return typeof stored === 'object' && stored !== null && (stored as { carried_id?: unknown }).carried_id === true;
}
