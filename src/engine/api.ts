// The in-process engine API: what the server, the demo, the benchmarks and the simulator build on.
// Everything that can fail for operating reasons returns a Result; nothing here throws on bad input.

import type { EngineError, Result } from '../errors.js';
import type { ValidTrade } from '../domain/validate.js';
import type {
  CashInput,
  CostBasisMethod,
  CreatePortfolioInput,
  LotView,
  PortfolioSnapshot,
  PortfolioStatus,
  PortfolioUpdate,
  RiskLimits,
  StoredEvent,
  DomainEventType,
  TickInput,
  TradeInput,
  TradeResult,
  Clock,
  Random,
  Instrument,
} from '../domain/types.js';
import type { InstrumentAnswer } from './instruments.js';

export type { InstrumentAnswer };
import type { KernelKind } from '../kernel/backend.js';
import type { EventQuery, StoreLimits } from '../store/store.js';
import type { HeldTick } from './suspect.js';
import type { Delta } from './deltas.js';
import type { StreamPosition } from './streamPosition.js';
import type { Piscina } from 'piscina';

export type { StreamPosition };

export type { EventQuery, HeldTick };

/** A held tick an admin settled: confirmed (its price applied) or rejected (dropped). */
export type SettledTick = HeldTick & { outcome: 'confirmed' | 'rejected' };
import type { CarriedAction, CorporateAnswer, CorporateList, CorporateScope, DueStep } from './corporateDesk.js';
export type { CarriedAction } from './corporateDesk.js';
import type { CorporateActionView } from './corporateSchedule.js';

export type { CorporateAnswer, CorporateList, CorporateScope, DueStep };
export type { CorporateActionView } from './corporateSchedule.js';

export interface EngineLimits {
  portfoliosMax: number;
  positionsPerPortfolioMax: number;
  symbolsMax: number;
  /** Commands waiting for one shard (trades, cash, control) before new ones are refused. */
  commandsQueuedPerShardMax: number;
  /** Commands in one message to a shard (a turn's commands go as several, pipelined with their commits). */
  commandsPerMessageMax: number;
  /** Ticks in one ingestTicks call. */
  ticksPerCallMax: number;
  /** Subscribers to one portfolio in this process. */
  subscribersPerPortfolioMax: number;
  /** Trade ids remembered in memory for idempotency (the store keeps them all). */
  tradeIdsRememberedMax: number;
  /** Instruments defined (reference data); past it a new definition is refused. */
  instrumentsMax: number;
  /** Corporate actions announced and not yet fully applied; past it new ones are refused (retryable). */
  corporateActionsPendingMax: number;
  /**
   * Tick batches posted to the shards and not yet answered: with 2, a shard revalues and encodes batch
   * k+1 while the main thread routes batch k's deltas; 1 is strict lockstep. Ticks arriving meanwhile
   * coalesce (latest price per symbol), so memory stays bounded whatever the feed rate.
   */
  batchesInFlightMax: number;
}

export interface EngineOptions {
  /** Shard workers; default: available cores - 1, at least 1. */
  workers?: number;
  kernel?: KernelKind;
  /** Coalescing window; 0 = flush once per event-loop turn. */
  coalesceWindowMs?: number;
  /** LMDB data directory; omitted = in memory only (no durability). */
  dataDir?: string;
  /** Flush to disk before acknowledging (survives power loss); default: durable against process crashes. */
  sync?: boolean;
  /** Snapshot interval per shard. */
  snapshotIntervalMs?: number;
  /**
   * A snapshot round starts as soon as this many events were logged after the last columnar
   * generation (checked every pricesFlushIntervalMs), so a restart never replays much more than this.
   */
  snapshotTailEventsMax?: number;
  /** Events older than this and covered by every snapshot are compacted after each snapshot; null keeps all (audit). */
  retainEventsMs?: number | null;
  clock?: Clock;
  random?: Random;
  limits?: Partial<EngineLimits>;
  /** Heap limit of each shard worker (MB). */
  shardHeapMb?: number;
  /**
   * Watched first: a tick batch revalues the watched portfolios at once and the others once the shard
   * has no batch waiting, at most this much batch time (ms) later; 0 revalues them with every batch.
   */
  unwatchedRevalueIntervalMs?: number;
  /**
   * The pass over the rest runs in slices of about this many position rows, one per turn of the
   * shard's event loop, so a batch arriving during it waits one slice.
   */
  unwatchedRowsPerSliceMax?: number;
  /** Allows crashShard(): for tests and admin only. */
  allowFaultInjection?: boolean;
  /**
   * Shard threads an entry point started before it loaded the engine (shards/threads.ts
   * startShardThreads, with the same workers and shardHeapMb), so their boot overlapped its module
   * loading; in-process API only. By default startEngine starts them.
   */
  shardThreads?: ShardThreads;
  /** A priced mark older than this (as_of - price_ts) is reported stale; default 60000. */
  staleAfterMs?: number;
  /** Cross FX rates go through this currency: QUSD x USDB (each leg direct or inverse). Default USD. */
  fxPivot?: string;
  /**
   * A tick moving its symbol's price more than this percentage from the last applied price is held
   * as suspect until the next tick or an admin decides; default 50; 0 disables the filter.
   */
  suspectMovePct?: number;
  /** How often the engine looks for corporate action steps whose time (by `clock`) has come. */
  corporateActionsCheckMs?: number;
  /** How often last prices are written to the store; default 1000. */
  pricesFlushIntervalMs?: number;
  /** The store's bounds (map size, pending writes, snapshots kept...); each defaults to storeDefaults. */
  store?: StoreLimits;
}

export interface PortfolioSummary {
  id: string;
  name: string;
  state: PortfolioStatus;
}

export interface TickIngestResult {
  /** Ticks taken (not refused), held ones included: accepted + rejected.length = ticks given. */
  accepted: number;
  rejected: { index: number; code: string }[];
  /** Of the accepted, how many were held as suspect (not applied yet). */
  held: number;
}

export type EngineMessage =
  | { kind: 'snapshot'; snapshot: PortfolioSnapshot; resync: boolean }
  | { kind: 'update'; update: PortfolioUpdate }
  /** To listeners subscribed with { bytes: true }: the binary delta as the shard wrote it (src/engine/deltas.ts). */
  | { kind: 'delta'; delta: Delta };

export interface SubscribeOptions {
  /** Deltas as bytes (kind 'delta') instead of update objects: nothing is decoded for this listener. */
  bytes?: boolean;
}

export type Listener = (message: EngineMessage) => void;
export type EventListener = (event: StoredEvent) => void;

/** Shard threads started before the engine (shards/threads.ts startShardThreads) and what they were sized for. */
export interface ShardThreads {
  readonly pool: Piscina;
  readonly workers: number;
  readonly shardHeapMb: number;
}

export interface EngineStats {
  kernel: KernelKind;
  workers: number;
  portfolios: number;
  positions: number;
  symbols: number;
  ticksReceived: number;
  ticksRejected: number;
  batches: number;
  positionsRevalued: number;
  portfoliosRevalued: number;
  updatesEmitted: number;
  shardRestarts: number;
  /** Tick-to-update latency (ms) over the last stats window. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Snapshot rounds that wrote a columnar generation (timers, the tail bound, snapshotAll). */
  snapshotRounds: number;
  /** The last such round: from its request to the shards to its writes durable (ms), its generation's bytes, its per-portfolio records. */
  lastSnapshotRoundMs: number;
  lastSnapshotRoundBytes: number;
  lastSnapshotRoundRecords: number;
}

export interface PositionLots {
  portfolio_id: string;
  symbol: string;
  cost_basis_method: CostBasisMethod;
  currency: string;
  quantity: number;
  avg_cost: number;
  lots: LotView[];
}

/**
 * A non-trade command's options. command_id: its idempotency id in cluster mode (docs/CLUSTER.md): a
 * command resent with the id of one already applied is answered with the portfolio as it is, not
 * applied again. A single node answers every command with its commit (no timeout answer to resend
 * after) and does not need it: it accepts and ignores it.
 */
export interface CommandOptions {
  command_id?: string;
}

/** A trade of a bulk import, validated at the boundary (validateTrade), and the portfolio it books into. */
export interface ImportItem {
  portfolio: string;
  trade: ValidTrade;
}

/** What a bulk import's trade came to (ImportAnswers.kinds). */
export const ImportKind = { applied: 0, duplicate: 1, error: 2 } as const;

/**
 * The answers to one chunk of a bulk import, in its order, as columns: the kind, the realized P&L
 * the trade booked (a duplicate: the first booking's), the error of each refused trade by index.
 */
export interface ImportAnswers {
  kinds: Uint8Array;
  realized: Float64Array;
  errors: Map<number, EngineError>;
}

/** The answers of trades booked one by one (a cluster's import: each through its partition's stream). */
export function importAnswersOf(results: readonly Result<TradeResult>[]): ImportAnswers {
  const n = results.length;
  const a: ImportAnswers = { kinds: new Uint8Array(n), realized: new Float64Array(n), errors: new Map() };
  for (let i = 0; i < n; i++) {
    const r = results[i];
    if (!r.ok) {
      a.kinds[i] = ImportKind.error;
      a.errors.set(i, r.error);
      continue;
    }
    a.kinds[i] = r.value.applied ? ImportKind.applied : ImportKind.duplicate;
    a.realized[i] = r.value.realized_pnl;
  }
  return a;
}

export interface Engine {
  readonly kernel: KernelKind;
  readonly workers: number;
  createPortfolio(input: CreatePortfolioInput): Promise<Result<PortfolioSnapshot>>;
  closePortfolio(id: string, options?: CommandOptions): Promise<Result<PortfolioSnapshot>>;
  trade(portfolioId: string, trade: TradeInput): Promise<Result<TradeResult>>;
  /**
   * A trade already validated at a boundary (the server's validateTrade, whose result is typed): the
   * engine applies it without validating again. `trade` above is the in-process boundary: it validates.
   */
  tradeValidated(portfolioId: string, trade: ValidTrade): Promise<Result<TradeResult>>;
  /**
   * A chunk of a bulk import (validated trades, in input order): booked per shard as one packed message
   * each, logged in one append per shard, answered once every booking is durable. Idempotent per trade
   * id like `trade` (an id seen before, in this chunk or earlier, is answered duplicate).
   */
  importTrades(items: readonly ImportItem[]): Promise<ImportAnswers>;
  cash(portfolioId: string, op: CashInput, options?: CommandOptions): Promise<Result<PortfolioSnapshot>>;
  pause(portfolioId: string, options?: CommandOptions): Promise<Result<PortfolioSnapshot>>;
  resume(portfolioId: string, options?: CommandOptions): Promise<Result<PortfolioSnapshot>>;
  setLimits(portfolioId: string, limits: RiskLimits, options?: CommandOptions): Promise<Result<PortfolioSnapshot>>;
  /** lots: also the open lots of every position (lot-based portfolios). */
  snapshot(portfolioId: string, options?: { lots?: boolean }): Promise<Result<PortfolioSnapshot>>;
  /** One position's open lots (empty for average-cost portfolios, which keep none). */
  lots(portfolioId: string, symbol: string): Promise<Result<PositionLots>>;
  /** The portfolio as it was at a past instant (requires a data dir). */
  snapshotAt(portfolioId: string, timestamp: number): Promise<Result<PortfolioSnapshot>>;
  has(portfolioId: string): boolean;
  listPortfolios(): PortfolioSummary[];
  /** Hot path: validates, coalesces, never throws. Returns null when accepted, else the error code. */
  ingestTick(symbol: string, price: number, ts: number, size?: number): string | null;
  ingestTicks(ticks: readonly TickInput[]): TickIngestResult;
  /** Resolves once every tick ingested so far has been revalued and its updates delivered. */
  drain(): Promise<void>;
  /** Ticks held as suspect since start (monotonic): callers diff it around ingestTick calls to count held ones. */
  ticksHeldCount(): number;
  /** The ticks held as suspect now, one per symbol at most. */
  suspectTicks(): HeldTick[];
  /** Applies the held tick of `symbol` (admin); resolves once its audit event is durable. */
  confirmSuspectTick(symbol: string): Promise<Result<SettledTick>>;
  /** Drops the held tick of `symbol` (admin); resolves once its audit event is durable. */
  rejectSuspectTick(symbol: string): Promise<Result<SettledTick>>;
  /** Scales the suspect filter's reference (and any held price) of `symbol`: a split changes the price scale. */
  rescaleMarkReference(symbol: string, factor: number): Result<void>;
  /** Delivers a snapshot first, then updates; resyncs after a shard restart. */
  subscribe(portfolioId: string, listener: Listener, options?: SubscribeOptions): Result<() => void>;
  /**
   * Conflation in the shard: `listener` (subscribed to `portfolioId`) takes no deltas for now (on), or
   * again (off). While every listener of the portfolio holds, its shard skips encoding its deltas; the
   * first delta after covers every change since the last one sent (from_seq < seq), so a listener
   * applying it holds the snapshot's figures at that seq; releasing sends that delta at once when
   * changes were skipped. Nothing is kept per skipped delta. No-op for an unknown listener.
   */
  holdDeltas(portfolioId: string, listener: Listener, on: boolean): void;
  /**
   * Every event once durable; with `types`, only events of those types (events a bulk import logged
   * as bytes are decoded only for a listener that takes their type).
   */
  onEvent(listener: EventListener, types?: readonly DomainEventType[]): () => void;
  queryEvents(query: EventQuery): Promise<Result<StoredEvent[]>>;
  stats(): EngineStats;
  /**
   * Enters a corporate action (split, dividend, symbol_change; see docs/PROTOCOL.md). Idempotent by
   * action_id. Answered once the announcement (and a step applied at once) is durable.
   */
  corporateAction(input: unknown): Promise<Result<CorporateAnswer>>;
  /** Corporate actions in the order they were entered, with their status; page with after_seq. */
  listCorporateActions(query?: { after_seq?: number; limit?: number }): Promise<Result<CorporateList>>;
  /**
   * Defines (or redefines) an instrument: asset_class, currency, multiplier, tick_size?, description?.
   * Durable (an InstrumentDefined event) before it answers; a change of multiplier or currency of a
   * held instrument is refused (instrument_held). changed false: the same definition was in force.
   */
  defineInstrument(symbol: string, input: unknown): Promise<Result<InstrumentAnswer>>;
  instrument(symbol: string): Result<Instrument>;
  /** Every instrument defined, sorted by symbol. */
  listInstruments(): Instrument[];
  /** Moves cash between two balances of a portfolio at the given rate (to_currency per from_currency). */
  convertCash(portfolioId: string, input: unknown, options?: CommandOptions): Promise<Result<PortfolioSnapshot>>;
  /**
   * Cluster: runs one command-stream message's command (`run` calls the methods above) so that the
   * partition's cursor commits in the same transaction as the events it produced; a command refused
   * before reaching a shard advances the cursor alone, except a retryable refusal (shard restarting,
   * store behind): nothing was applied and the cursor stays, to apply the message again. Answers once
   * the cursor is durable.
   */
  applyAt<T>(position: StreamPosition, run: () => Promise<Result<T>>): Promise<Result<T>>;
  /**
   * Cluster: a corporate action announced to one scope (a partition's portfolios) at its point of the
   * partition's command stream: body {input, announced_ts}; nothing applied yet (docs/CLUSTER.md).
   */
  corporateAnnounceIn(scope: CorporateScope, body: unknown): Promise<Result<CorporateAnswer>>;
  /** Cluster: one step {action_id, step} of a scoped action, applied to the scope's portfolios when it is the next one. */
  corporateStepIn(scope: CorporateScope, body: unknown): Promise<Result<{ applied: boolean }>>;
  /** Cluster: every action announced to the scope, as a shipped snapshot carries it (its stream below is purged). */
  corporateCarryIn(scopeName: string): CarriedAction[];
  /**
   * Cluster: replaces the scope's actions by carried ones (take-over from a shipped snapshot, before the
   * partition's consumer starts), logged so a restart keeps them. Answers the actions still pending.
   */
  corporateRestoreIn(scope: CorporateScope, carried: readonly CarriedAction[]): Promise<Result<number>>;
  /** Cluster: the scope's steps due now (the owner publishes each on its partition's stream). */
  corporateStepsDue(scopeName: string): DueStep[];
  /** Cluster: an action as these scopes applied it (null: none of them knows it). */
  corporateActionIn(actionId: string, scopeNames: readonly string[]): CorporateActionView | null;
  /**
   * Cluster: every trade id and command key the portfolio has a result under, at most max (a shipped
   * snapshot carries them; adoptBooks stores them back with carriedIdResult, answered as duplicates).
   */
  tradeIdsOf(portfolioId: string, max: number): string[];
  /** Cluster: whether a command with this command_id was applied to the portfolio (StreamPosition.commandId). */
  commandApplied(portfolioId: string, commandId: string): boolean;
  /** Cluster: the last command-stream sequence applied for the partition (0: none). */
  streamCursor(partition: number): number;
  /** Cluster: the books `keep` accepts, each shard's at one instant, in the columnar snapshot codec's segments. */
  exportBooks(keep: (id: string) => boolean): Promise<Uint8Array[]>;
  /**
   * Cluster: these portfolios leave the engine (directory, shards, the store's generation; with
   * `cursor`, the partition's stream cursor is set to cursor.seq in that generation's transaction);
   * answers how many the shards held.
   */
  dropPortfolios(ids: readonly string[], cursor?: StreamPosition): Promise<number>;
  /**
   * Cluster: a partition's books (exportBooks' segments) replace `replaced` in the engine, and its
   * stream cursor is set to position.seq in the transaction of the store generation that holds them,
   * with `results` (trade and command results the books include) in the trade-id memory; answers how
   * many joined.
   */
  adoptBooks(segments: readonly Uint8Array[], position: StreamPosition, replaced?: readonly string[], results?: readonly { portfolio_id: string; trade_id: string; result: unknown }[]): Promise<Result<number>>;
  /** Cluster: the ids `keep` accepts, in no order (a partition's portfolios). */
  portfolioIds(keep: (id: string) => boolean): string[];
  /** Test/admin fault injection: kills the shard worker that owns the portfolio. */
  crashShard(shard: number): Result<void>;
  shardOf(portfolioId: string): number;
  close(): Promise<void>;
}

export type { EngineError };
