// Messages between the engine's main thread and a shard worker. One message per tick batch and one
// per command batch in each direction: never one message per tick (a postMessage round trip is
// ~100 µs, the whole per-tick budget is ~1 µs).

import type { EngineError } from '../errors.js';
import type { RiskLimitName, CorporateStep, DomainEventBody, PortfolioRecord, PortfolioSnapshot, RiskLimits, StoredEvent, TradeResult } from '../domain/types.js';
import type { ValidTrade } from '../domain/validate.js';
import type { PortfolioOptions } from '../domain/portfolio.js';
import type { KernelKind } from '../kernel/backend.js';

export interface ShardInit {
  shard: number;
  kernel: KernelKind;
  positionsPerPortfolioMax: number;
  portfoliosMax: number;
  symbolsMax: number;
  /** A priced mark older than this (as_of - price_ts) is stale. */
  staleAfterMs: number;
  /**
   * Lowest per-portfolio seq this shard life shows: its boot epoch * 2^32, persisted by the main
   * thread before the shard starts, so seqs never go back across restarts (store takeSeqEpoch).
   */
  seqFloor?: number;
  /** Shards of the engine and this one's index among them (columnar loads keep only their books). */
  shards?: number;
  /** Cross rates go through this currency (src/domain/fx.ts); absent: USD. */
  fxPivot?: string;
  /** Batch time (ms) the unwatched portfolios' rows may wait for a busy shard (Shard.settle); absent: the default. */
  unwatchedRevalueIntervalMs?: number;
  /** Position rows one slice of the pass over the rest reads (src/shard/worker.ts); absent: the default. */
  unwatchedRowsPerSliceMax?: number;
}

/**
 * Watched first (Shard.ticks / Shard.settle): the unwatched portfolios' rows wait at most this long
 * (batch time, ms) for a shard that has batches waiting; an idle shard revalues them at once.
 */
export const unwatchedRevalueIntervalMsDefault = 50;
/** ... and at most this many batches, whatever the batch clock says (a clock that stands still in tests). */
export const unwatchedBatchesPendingMax = 64;
/**
 * The pass over the rest runs in slices of about this many position rows (Kernel.revalueRestSlice),
 * one per event-loop turn, so a batch that arrives during it waits one slice: ~0.2-0.5 ms of sweeping
 * on the machines measured (docs/BENCHMARKS.md, "Issue 14, sixth session").
 */
export const unwatchedRowsPerSliceMaxDefault = 16_384;

export type Command =
  | { id: number; kind: 'create'; portfolio: string; name: string; cash: number; limits: RiskLimits; options: PortfolioOptions; now: number }
  /** dry_run: answers the figures the trade would produce and the limits it would breach, changes nothing. */
  | { id: number; kind: 'trade'; portfolio: string; trade: ValidTrade; now: number; dryRun?: boolean }
  /** currency absent: the base. */
  | { id: number; kind: 'deposit' | 'withdraw'; portfolio: string; amount: number; currency?: string; now: number }
  | { id: number; kind: 'fxConvert'; portfolio: string; from_currency: string; to_currency: string; amount: number; rate: number; now: number }
  /** How many portfolios of the shard hold a non-flat position in the symbol (changes nothing). */
  | { id: number; kind: 'holders'; symbol: string; now: number }
  | { id: number; kind: 'limits'; portfolio: string; limits: RiskLimits; now: number }
  | { id: number; kind: 'pause' | 'resume' | 'close'; portfolio: string; now: number }
  | { id: number; kind: 'snapshot'; portfolio: string; now: number; watch?: boolean; lots?: boolean }
  /**
   * One corporate action step for every portfolio of the shard that holds the symbol. 'check' changes
   * nothing and answers the first refusal; 'apply' comes after every shard passed the check (the engine
   * holds all other traffic in between). price: split = the symbol's new mark, symbol_change = the mark
   * the new symbol takes when it has none; 0 = none.
   */
  | {
      id: number;
      kind: 'corporate';
      mode: 'check' | 'apply';
      step: CorporateStep;
      price: number;
      priceTs: number;
      now: number;
      /** Cluster mode: only these portfolios of the shard (a partition's); absent: every portfolio. */
      portfolios?: string[];
    };

export type CommandKind = Command['kind'];

/** A domain event as a shard emits it: global seq and durability are the main thread's business. */
export type ShardEvent = DomainEventBody & { portfolio_id: string; ts: number };

export interface CommandResult {
  id: number;
  error: EngineError | null;
  snapshot: PortfolioSnapshot | null;
  trade: TradeResult | null;
  events: ShardEvent[];
  /** The portfolio's binary delta (src/client/delta.ts) when it is watched. */
  update: Uint8Array | null;
  /** Corporate steps: one delta per watched portfolio the step changed, and how many it changed. */
  updates?: Uint8Array[];
  holders?: number;
  /** Dry-run trades: every risk limit the trade would breach (empty: none). */
  breaches?: RiskLimitName[];
  /**
   * An applied trade's events travel as bytes (issue 15): `events` is empty and these are the next
   * eventCount events of the message's eventBytes, its result's body the next of bodyBytes (see
   * FromShard 'results').
   */
  eventCount?: number;
  /** ... and their ts (the command's time). */
  eventsTs?: number;
  /** Main thread only: resolves when the events of this result are durable. */
  durable?: Promise<void>;
}

export type ToShard =
  | { t: 'symbols'; from: number; names: string[] }
  /** Instrument multipliers (reference data): trades book at them from this message on. */
  | { t: 'instruments'; instruments: { symbol: string; multiplier: number }[] }
  | { t: 'ticks'; batch: number; n: number; syms: Int32Array; prices: Float64Array; ts: Float64Array; now: number }
  | { t: 'commands'; commands: Command[] }
  /**
   * Trade commands (not dry runs) packed (tradeChunk.ts: the trades, transferred, never cloned per
   * trade), with each command's id and time; applied as 'commands' would, answered 'results'.
   */
  | { t: 'tradeCommands'; ids: Int32Array; now: Float64Array; bytes: Uint8Array }
  /** Imported trades (tradeChunk.ts: packed, transferred), applied in order; answered 'tradeChunkDone'. */
  | { t: 'tradeChunk'; chunk: number; bytes: Uint8Array; count: number; now: number }
  | { t: 'watch'; portfolio: string; on: boolean }
  /** segmentsOnly: the columnar segments alone (an export): no per-portfolio record is taken, so none is marked written. */
  | { t: 'records'; request: number; now: number; segmentsOnly?: boolean }
  | { t: 'load'; records: PortfolioRecord[]; prices: { symbol: number; price: number; ts: number }[] }
  /**
   * Columnar snapshot parts (raw segments, transferred) and the covered seq of each; filter: the
   * parts were written by another number of shards, keep only this shard's books.
   */
  | { t: 'loadColumnar'; parts: { segments: Uint8Array[]; covered: number }[]; filter: boolean; clean: boolean; prices: { symbol: number; price: number; ts: number }[] }
  /**
   * The newest columnar snapshot, read by the worker itself from the data directory at `path` (opened
   * read-only in its thread; the generation pointer and its segments in one read, so a round that
   * commits meanwhile cannot remove them under it): its own part, or every part when the generation
   * was written by another shard count; otherwise as 'loadColumnar'. A supervised restart: the main
   * thread reads and copies nothing.
   */
  | { t: 'loadStored'; path: string; clean: boolean; prices: { symbol: number; price: number; ts: number }[] }
  /**
   * Read the log after `from` (null: after what the snapshot 'loadStored' read covers) from the data
   * directory at `path` (opened read-only in the worker) and replay it (src/shard/tail.ts); answered
   * by 'tail' reports, the last one done.
   */
  | { t: 'replayTail'; request: number; path: string; from: number | null }
  /** The names a paused tail pass asked for were announced ('symbols' came first): go on. */
  | { t: 'tailResume'; request: number }
  | { t: 'loaded'; request: number }
  /** A cluster partition this node lost: these books leave the shard (Shard.drop); answered 'dropped'. */
  | { t: 'drop'; request: number; ids: string[] }
  /** A cluster partition taken over: its books (columnar segments) join the running shard (Shard.adopt); answered 'adopted'. */
  | { t: 'adopt'; request: number; segments: Uint8Array[] }
  | { t: 'metrics'; request: number }
  | { t: 'crash'; how: 'throw' | 'exit' | 'heap' }
  /** Conflation in the shard (Shard.hold): one watcher of the portfolio takes no deltas for now, or again. */
  | { t: 'hold'; portfolio: string; on: boolean; now: number }
  | { t: 'stop' };

export interface BatchResult {
  t: 'revalued';
  batch: number;
  /**
   * The batch's deltas, one record per watched portfolio that changed (binary, layout version 4),
   * back to back in one buffer transferred with the message; deltaIndex holds (book index, offset,
   * length) per record (src/shard/deltaWriter.ts).
   */
  deltas: Uint8Array;
  deltaIndex: Int32Array;
  events: ShardEvent[];
  positionsRevalued: number;
  portfoliosRevalued: number;
  openPositions: number;
  breaches: { limit: string }[];
  /** The unwatched portfolios' rows wait for a 'settled' message (Shard.settle): the batch is not settled yet. */
  pending: boolean;
}

/** The pass over the unwatched portfolios that one or more batches left pending (Shard.settle). */
export interface SettledResult {
  t: 'settled';
  /** Batches it covers. */
  batches: number;
  events: ShardEvent[];
  positionsRevalued: number;
  portfoliosRevalued: number;
  openPositions: number;
  breaches: { limit: string }[];
}

/** Names a replayed event needs registered before it applies: symbols, and [quote, base] conversions. */
export interface TailNeeds {
  symbols: string[];
  conversions: [string, string][];
}

/** What a shard's pass over its own tail tells the main thread (src/shard/tail.ts). */
export interface TailReport {
  /** Log entries read so far (every type, every portfolio). */
  read: number;
  /** The last seq read (the pass's start: none yet). */
  lastSeq: number;
  /** Events this shard applied so far. */
  applied: number;
  /** Directory events of this shard's portfolios since the last report (created, paused, resumed, closed), in log order. */
  events: StoredEvent[];
  /** The pass stopped before an event needing these names: intern, announce, then 'tailResume'. */
  needs: TailNeeds | null;
  done: boolean;
}

/**
 * A shard worker's recovery, sent with 'loaded': when it booted (ms of performance.now(), which a
 * worker thread shares with the main thread: since the process started) and its busy ms per step.
 */
export interface ShardRecoveryWork {
  shard: number;
  /** Its modules (shard, kernel, domain) loaded and evaluated. */
  modules_at_ms: number;
  /** Its task began on its thread (a supervised restart: the kill to here is the main thread's and piscina's). */
  task_at_ms: number;
  /** Its 'ready' message: the shard and its kernel (WASM compiled and instantiated) built. */
  ready_at_ms: number;
  /** Replayed trades booked straight into snapshot columns (no state built for them). */
  trades_in_columns: number;
  load_ms: number;
  /** Of load_ms: reading its own snapshot part from the data directory ('loadStored'; 0 when the main thread sent it). */
  read_ms: number;
  replay_ms: number;
  finish_ms: number;
}

/** A shard's answer to a chunk of imported trades (Shard.tradeChunk). */
export interface TradeChunkAnswer {
  t: 'tradeChunkDone';
  chunk: number;
  /** Per trade, in chunk order: ChunkKind (tradeChunk.ts). */
  kinds: Uint8Array;
  /** Per trade: the realized P&L the trade booked (0 when refused). */
  realized: Float64Array;
  /** The chunk's time: the ts of every event it logs. */
  now: number;
  /** The refused trades (rare), by index. */
  errors: { i: number; error: EngineError }[];
  /**
   * Events of the applied trades, in the order they happened, as the log keeps them
   * (protocol/flatRecord.ts LoggedValuesWriter: event i is eventBytes[eventEnds[i - 1] ?? 0, eventEnds[i]),
   * its seq a float64 placeholder in its last 8 bytes), in one buffer transferred with the answer.
   */
  eventBytes: Uint8Array;
  eventEnds: Int32Array;
  /** Per event: its type (the index of its name in domainEventTypes) and the chunk index of the trade whose portfolio it is of. */
  eventTypes: Uint8Array;
  eventTrades: Int32Array;
  /** The events not written as bytes (not flat: a trade naming lots; their byte range is empty), by event index. */
  eventObjects: { i: number; event: ShardEvent }[];
  /** Binary deltas of watched portfolios the chunk changed (one per trade of a watched book). */
  updates: Uint8Array[];
  /** Main thread only: the whole chunk was lost before the shard answered (it restarted, the engine closes). */
  failed?: EngineError;
}

export type FromShard =
  | BatchResult
  | TradeChunkAnswer
  | SettledResult
  /** Deltas outside a batch: a hold released with changes unsent (from_seq covers them), routed like a batch's. */
  | { t: 'deltas'; deltas: Uint8Array; deltaIndex: Int32Array }
  /**
   * The applied trades' events as the log keeps them (as TradeChunkAnswer's, in result order: a
   * result's eventCount of them each), transferred; absent when no result has any.
   */
  | {
      t: 'results';
      results: CommandResult[];
      eventBytes?: Uint8Array;
      eventEnds?: Int32Array;
      eventTypes?: Uint8Array;
      /** Each such trade's result as the store keeps its body (protocol/flatRecord.ts NestedRecordWriter), the same order. */
      bodyBytes?: Uint8Array;
      bodyEnds?: Int32Array;
    }
  | { t: 'records'; request: number; records: PortfolioRecord[]; segments: Uint8Array[] }
  | { t: 'tail'; request: number; report: TailReport }
  | { t: 'loaded'; request: number; portfolios: number; positions: number; work: ShardRecoveryWork }
  | { t: 'metrics'; request: number; metrics: unknown[] }
  | { t: 'dropped'; request: number; portfolios: number }
  | { t: 'adopted'; request: number; portfolios: number; error: string | null }
  | { t: 'ready'; shard: number; kernel: KernelKind };
