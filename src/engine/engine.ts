// The engine's facade. It composes the main-thread stations, each in its own file, and keeps the
// public API (createEngine, MtmEngine). Data flows one way: feed -> intake (ticks/intake.ts) ->
// coalescer -> lockstep (ticks/lockstep.ts) -> shards (shards/pool.ts) -> commit (commit.ts) ->
// subscriptions (subscriptions.ts), store beside. Commands enter in commands.ts, trades in commit.ts;
// upkeep.ts runs the timers, history.ts reads the past, corporateDesk.ts applies corporate actions.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Piscina } from 'piscina';
import { engineClosed, ErrorCode, fail, ok, shardRestartingError, type EngineError, type Result } from '../errors.js';
import type { Clock, CreatePortfolioInput, DomainEvent, PortfolioSnapshot, PortfolioUpdate, Random, RiskLimits, StoredEvent, TickInput, TradeInput, TradeResult } from '../domain/types.js';
import type { ValidTrade } from '../domain/validate.js';
import type { ShardEvent } from '../shard/protocol.js';
import { decodeSnapshot, encodeSnapshot, readSnapshotStatuses, readSnapshotStrings, type BookImage } from '../shard/snapshotCodec.js';
import { openStore, type CommitKind, type Store } from '../store/store.js';
import { lockDataDir, type OwnerLock } from '../store/lock.js';
import { RecoveryProgress } from './recovery.js';
import type { Engine, EngineOptions, ImportAnswers, ImportItem, SubscribeOptions, EngineStats, EventListener, EventQuery, HeldTick, Listener, PortfolioSummary, PositionLots, SettledTick, TickIngestResult } from './api.js';
import { Coalescer } from './coalescer.js';
import { Commands } from './commands.js';
import { Commit } from './commit.js';
import { BulkImport } from './bulkImport.js';
import { CorporateDesk, type CarriedAction, type CorporateAnswer, type CorporateList, type CorporateScope, type DueStep } from './corporateDesk.js';
import type { CorporateActionView } from './corporateSchedule.js';
import { CorporateMarks } from './corporateMarks.js';
import { EngineCounters } from './counters.js';
import { deltaOf } from './deltas.js';
import type { Directory } from './directory.js';
import { History } from './history.js';
import { LatencyWindow } from './latencyWindow.js';
import { Lifecycle } from './lifecycle.js';
import { markOptionsError, resolveOptions, type ResolvedOptions } from './options.js';
import { ShardPool } from './shards/pool.js';
import { startShardThreads } from './shards/threads.js';
import { shardOf } from './shardOf.js';
import { Subscriptions } from './subscriptions.js';
import { SymbolTable } from './symbols.js';
import { TickIntake } from './ticks/intake.js';
import { LastPrices } from './ticks/lastPrices.js';
import { Lockstep } from './ticks/lockstep.js';
import type { TapeListener } from './tickTape.js';
import { Upkeep } from './upkeep.js';
import { atPosition, commandKey, type StreamPosition } from './streamPosition.js';
import { seeded } from '../sim/random.js';
import { holdingsAt } from './pastHoldings.js';
import { InstrumentDesk, InstrumentTable, instrumentsPortfolio, type InstrumentAnswer } from './instruments.js';
import type { DomainEventType, Instrument } from '../domain/types.js';
import { validatePortfolioId, validSymbol } from '../domain/validate.js';
import { keyPart } from '../store/keys.js';
import { baseCurrencyDefault, type PortfolioStatus } from '../domain/types.js';

export { seqEpochSize, systemPortfolio } from './shards/pool.js';

const systemClock: Clock = { now: () => Date.now() };

/** dropPortfolios asks the shards again while one restarts, at most this many times, this far apart. */
const dropAttemptsMax = 200;
const dropRetryMs = 50;

export class MtmEngine implements Engine {
  readonly kernel: 'wasm' | 'js';
  readonly workers: number;
  readonly counters = new EngineCounters();
  readonly latency = new LatencyWindow(8192);
  readonly ready: Promise<void>;
  private readonly life = new Lifecycle();
  private readonly symbols: SymbolTable;
  private readonly coalescer: Coalescer;
  private readonly prices: LastPrices;
  private readonly directory: Directory = new Map();
  private readonly pool: ShardPool;
  private readonly lockstep: Lockstep;
  private readonly commit: Commit;
  private readonly bulk: BulkImport;
  private readonly intake: TickIntake;
  private readonly subscriptions: Subscriptions;
  private readonly corporate: CorporateDesk;
  private readonly commands: Commands;
  private readonly history: History;
  private readonly upkeep: Upkeep;
  /** Reference data: instrument definitions (instruments.ts). */
  private readonly instruments: InstrumentDesk;
  private readonly instrumentTable: InstrumentTable;

  constructor(
    private readonly o: ResolvedOptions,
    private readonly store: Store,
    piscina: Piscina,
    private readonly clock: Clock,
    random: Random,
    private readonly ephemeralDir: string | null,
    private readonly dirLock: OwnerLock,
    progress?: RecoveryProgress,
  ) {
    this.kernel = o.kernel;
    this.workers = o.workers;
    this.symbols = new SymbolTable(o.limits.symbolsMax);
    this.coalescer = new Coalescer(o.limits.symbolsMax);
    this.prices = new LastPrices(o.limits.symbolsMax);
    this.instrumentTable = new InstrumentTable(o.limits.instrumentsMax);
    const { life, counters, symbols, coalescer, prices, directory } = this;
    this.pool = new ShardPool(piscina, {
      progress,
      o,
      clock,
      life,
      counters,
      store,
      symbols,
      prices,
      persist: (events, trades) => this.commit.persist(events, trades),
      persistEncoded: (events, trades) => this.commit.persistEncoded(events, trades),
      durable: () => this.commit.durable(),
      deliver: (u) => this.subscriptions.deliver(u),
      batchDone: (batch) => this.lockstep.batchDone(batch),
      settled: () => this.lockstep.settled(),
      resendPrices: (h) => this.lockstep.resendPrices(h),
      resyncShard: (h) => this.subscriptions.resyncShard(h),
      scheduleFlush: () => this.lockstep.scheduleFlush(),
      multipliers: () => this.instrumentTable.multipliers(),
    });
    const shards = this.pool.shards;
    this.lockstep = new Lockstep({
      o,
      clock,
      life,
      counters,
      latency: this.latency,
      coalescer,
      prices,
      shards,
      symbols,
      tape: () => this.intake.tape,
      announceSymbols: () => this.pool.announceSymbols(),
    });
    this.commit = new Commit({ o, clock, life, counters, store, directory, symbols, pool: this.pool, instruments: this.instrumentTable });
    this.bulk = new BulkImport({ o, clock, life, directory, symbols, pool: this.pool, instruments: this.instrumentTable, commit: this.commit, overloaded: () => store.overloaded() });
    this.intake = new TickIntake({ o, clock, life, counters, symbols, coalescer, prices, lockstep: this.lockstep, persist: (events) => this.commit.persist(events), rememberHeld: (symbol, held) => this.store.setHeldTick(symbol, held) });
    this.subscriptions = new Subscriptions({ o, clock, counters, directory, shards, commit: this.commit });
    this.corporate = this.corporateDesk(clock);
    this.commands = new Commands({ o, clock, random, life, counters, directory, commit: this.commit, symbols, announceSymbols: () => this.pool.announceSymbols() });
    this.instruments = new InstrumentDesk(this.instrumentTable, {
      shards,
      clock,
      exclusive: (task) => this.corporate.exclusive(task),
      persist: (events) => this.commit.persist(events),
    });
    this.history = new History({ o, life, store, directory, commit: this.commit });
    this.upkeep = new Upkeep({ o, clock, life, counters, store, symbols, prices, pool: this.pool, corporate: this.corporate });
    this.ready = this.start();
    life.ready = this.ready;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  private async start(): Promise<void> {
    for (const p of this.store.loadPrices()) {
      const id = this.symbols.intern(p.symbol);
      if (id < 0) continue;
      this.prices.lastPrice[id] = p.price;
      this.prices.lastPriceTs[id] = p.ts;
      this.coalescer.seed(id, p.ts);
      // Restored prices are references too: the first tick after a restart is judged against them.
      this.intake.applied(id, p.price);
    }
    this.intake.restoreHeld(this.store.loadHeldTicks());
    // Before the directory: it redoes the price side of splits and interns renamed symbols, which the
    // shards then get with the symbol table and the last prices.
    this.corporate.recover();
    this.instrumentTable.recover(this.store.eventsForPortfolio(instrumentsPortfolio, 0, Infinity));
    await this.pool.startAll(this.directory);
    this.corporate.start();
    this.upkeep.start();
  }

  async close(): Promise<void> {
    if (this.life.closed) return;
    this.life.closing = true;
    this.upkeep.stop();
    await this.ready.catch(() => undefined);
    await this.corporate.close();
    while (this.lockstep.batchesOutstanding > 0) await new Promise((r) => setTimeout(r, 1));
    // Clean: nothing changes after it, so the next start shows exactly these seqs.
    await this.upkeep.snapshotAll(true).catch(() => undefined);
    this.upkeep.flushPrices();
    await this.commit.durable().catch(() => undefined);
    this.life.closed = true;
    await this.pool.stop();
    await this.store.close();
    await this.dirLock.release();
    if (this.ephemeralDir !== null) rmSync(this.ephemeralDir, { recursive: true, force: true });
  }

  // ---- ticks (ticks/intake.ts, ticks/lockstep.ts) ----------------------------------------------

  ingestTick(symbol: string, price: number, ts: number, size?: number): string | null {
    return this.intake.ingestTick(symbol, price, ts, size);
  }

  ingestTicks(ticks: readonly TickInput[]): TickIngestResult {
    return this.intake.ingestTicks(ticks);
  }

  /** Resolves once every tick ingested so far has been revalued and its updates delivered. */
  drain(): Promise<void> {
    return this.lockstep.drain();
  }

  ticksHeldCount(): number {
    return this.counters.ticksHeld;
  }

  /** Symbols holding a suspect tick now (the mtm_suspect_ticks_held gauge). */
  get suspectHeldCount(): number {
    return this.intake.suspectHeldCount;
  }

  suspectTicks(): HeldTick[] {
    return this.intake.suspectTicks();
  }

  confirmSuspectTick(symbol: string): Promise<Result<SettledTick>> {
    return this.intake.confirmSuspectTick(symbol);
  }

  rejectSuspectTick(symbol: string): Promise<Result<SettledTick>> {
    return this.intake.rejectSuspectTick(symbol);
  }

  rescaleMarkReference(symbol: string, factor: number): Result<void> {
    return this.intake.rescaleMarkReference(symbol, factor);
  }

  /**
   * Every accepted tick, handed off in arrival order once per batch (bars, market alerts). One tap;
   * the listener owns each buffer it is given. Symbol ids resolve with symbolName().
   */
  tapTicks(listener: TapeListener, tapeTicksMax = 65_536): () => void {
    return this.intake.tapTicks(listener, tapeTicksMax);
  }

  /** Gives a tape buffer back once its ticks were copied out: the tape reuses it instead of allocating. */
  recycleTape(buffer: Float64Array): void {
    this.intake.recycleTape(buffer);
  }

  symbolName(id: number): string | undefined {
    return this.symbols.names[id];
  }

  // ---- commands (commands.ts) and trades (commit.ts) -----------------------------------------

  createPortfolio(input: CreatePortfolioInput): Promise<Result<PortfolioSnapshot>> {
    return this.commands.createPortfolio(input);
  }

  closePortfolio(id: string): Promise<Result<PortfolioSnapshot>> {
    return this.commands.closePortfolio(id);
  }

  cash(portfolioId: string, op: unknown): Promise<Result<PortfolioSnapshot>> {
    return this.commands.cash(portfolioId, op);
  }

  convertCash(portfolioId: string, input: unknown): Promise<Result<PortfolioSnapshot>> {
    return this.commands.convertCash(portfolioId, input);
  }

  pause(portfolioId: string): Promise<Result<PortfolioSnapshot>> {
    return this.commands.pause(portfolioId);
  }

  // ---- instruments (instruments.ts) -------------------------------------------------------------

  async defineInstrument(symbol: string, input: unknown): Promise<Result<InstrumentAnswer>> {
    if (this.life.closing) return engineClosed();
    await this.ready;
    return this.instruments.define(symbol, input);
  }

  instrument(symbol: string): Result<Instrument> {
    if (!validSymbol(symbol)) return fail(ErrorCode.invalid_symbol, 'symbol must match [A-Za-z0-9._:/-]{1,32}', 'symbol');
    const i = this.instrumentTable.get(symbol);
    return i === undefined ? fail(ErrorCode.not_found, `symbol: no instrument '${symbol}' is defined`, 'symbol') : ok(i);
  }

  listInstruments(): Instrument[] {
    return this.instrumentTable.list();
  }

  resume(portfolioId: string): Promise<Result<PortfolioSnapshot>> {
    return this.commands.resume(portfolioId);
  }

  setLimits(portfolioId: string, limits: RiskLimits): Promise<Result<PortfolioSnapshot>> {
    return this.commands.setLimits(portfolioId, limits);
  }

  snapshot(portfolioId: string, options: { lots?: boolean } = {}): Promise<Result<PortfolioSnapshot>> {
    return this.commands.snapshot(portfolioId, options);
  }

  lots(portfolioId: string, symbol: string): Promise<Result<PositionLots>> {
    return this.commands.lots(portfolioId, symbol);
  }

  trade(portfolioId: string, input: TradeInput): Promise<Result<TradeResult>> {
    return this.commit.trade(portfolioId, input);
  }

  tradeValidated(portfolioId: string, trade: ValidTrade): Promise<Result<TradeResult>> {
    return this.commit.tradeValidated(portfolioId, trade);
  }

  importTrades(items: readonly ImportItem[]): Promise<ImportAnswers> {
    return this.bulk.importTrades(items);
  }

  async applyAt<T>(position: StreamPosition, run: () => Promise<Result<T>>): Promise<Result<T>> {
    const r = await atPosition(position, run);
    // A retryable refusal (shard restarting, store behind, queue full) happened before any shard
    // answer, so nothing was applied: the cursor stays, and the caller applies the message again.
    if (this.life.closing || (!r.ok && r.error.retryable === true)) return r;
    // Refused before a shard, or answered from the trade-id memory: no events, the cursor alone.
    this.store.advanceStreamCursor(position.partition, position.seq);
    const durable = await this.store.append([]).durable.then(
      () => null,
      (err: unknown) => err,
    );
    return durable === null ? r : fail(ErrorCode.store_failed, `store commit failed: ${String(durable)}`);
  }

  streamCursor(partition: number): number {
    return this.store.streamCursor(partition);
  }

  tradeIdsOf(portfolioId: string, max: number): string[] {
    return this.store.tradeIdsOf(portfolioId, max);
  }

  commandApplied(portfolioId: string, commandId: string): boolean {
    return this.store.tradeResult(portfolioId, commandKey(commandId)) !== undefined;
  }

  /**
   * The books `keep` accepts, from every shard at one instant each, encoded with the columnar
   * snapshot codec (src/shard/snapshotCodec.ts: the segments a shard snapshot is made of). A cluster
   * owner ships these per partition (src/cluster/snapshotShipper.ts); not a hot path (snapshot cadence).
   */
  async exportBooks(keep: (id: string) => boolean): Promise<Uint8Array[]> {
    const now = this.clock.now();
    const answers = await Promise.all(this.pool.shards.map((h) => this.pool.records(h, now, true)));
    const books: BookImage[] = [];
    for (const a of answers) {
      // A shard that died mid-export answered nothing: its books would be missing from the shipment.
      if (a === null) throw new Error('a shard restarted while its books were exported; export again once it is ready');
      decodeSnapshot(a.segments, keep, (b) => books.push({ state: b.state, status: b.status, seq: b.seq, hwm: b.hwm, order: b.order ?? [] }));
    }
    return encodeSnapshot(books);
  }

  /**
   * Cluster: these portfolios leave this engine (their partition is served by another node now): out
   * of the directory and of every shard (Shard.drop: no command, read, watch or tick reaches them), and
   * out of the store's columnar generation, rewritten at once, so neither a shard restart nor an
   * engine restart brings this copy back. Their logged events stay (the generation covers them).
   * Answers how many the shards held.
   */
  async dropPortfolios(ids: readonly string[], cursor?: StreamPosition): Promise<number> {
    if (this.life.closing) return 0;
    await this.ready;
    const known = ids.filter((id) => this.directory.has(id));
    this.forgetCopies(known);
    const dropped = known.length === 0 ? 0 : await this.dropFromShards(known);
    if (known.length === 0 && cursor === undefined) return 0;
    // Without a complete generation (a shard restarting) the store keeps the books and the cursor as
    // they were (consistent); the next round writes the books out.
    await this.writeGeneration(cursor === undefined ? undefined : () => this.store.setStreamCursor(cursor.partition, cursor.seq));
    return dropped;
  }

  portfolioIds(keep: (id: string) => boolean): string[] {
    const out: string[] = [];
    for (const id of this.directory.keys()) if (keep(id)) out.push(id);
    return out;
  }

  /**
   * The copies of these portfolios leave: out of the directory, their trade and command ids forgotten
   * (commit's memory and the store's, durably), their logged history hidden from their reads: a copy
   * rebuilt later from a snapshot or the stream applies those commands again and logs them again.
   * Found by test/cluster.nodes.test.ts: a node that lost a partition and took it back from the
   * stream's start answered its old trades as duplicates (its cash missed them), and once those were
   * applied its log showed every trade twice.
   */
  private forgetCopies(ids: readonly string[]): void {
    if (ids.length === 0) return;
    for (const id of ids) this.directory.delete(id);
    this.commit.forget(ids);
    this.store.forgetCopies(ids);
  }

  /** Writes asked for while a generation is written, run together with the next one (writeGeneration). */
  private generationWrites: (() => void)[] = [];
  private generationNext: Promise<boolean> | null = null;
  private generationRunning: Promise<unknown> = Promise.resolve();

  /**
   * A store generation for cluster drops and adopts, with their writes (`alongside`: cursors, results)
   * in its transaction. Those asked for while one is being written share the next one: a node fenced
   * out of every partition at once writes two generations, not one per partition (each is every book of
   * every shard). Answers whether the generation holding `alongside` was written.
   */
  private writeGeneration(alongside?: () => void): Promise<boolean> {
    if (alongside !== undefined) this.generationWrites.push(alongside);
    this.generationNext ??= this.generationRunning.then(() => {
      this.generationNext = null;
      const writes = this.generationWrites.splice(0);
      const run = this.upkeep.snapshotAll(false, () => {
        for (const w of writes) w();
      });
      this.generationRunning = run.catch(() => undefined);
      return run.catch(() => false);
    });
    return this.generationNext;
  }

  /** Drops from every shard, again while one is restarting (its restart reloaded them from the store). */
  private async dropFromShards(ids: string[]): Promise<number> {
    let dropped = 0;
    for (let attempt = 0; attempt < dropAttemptsMax && !this.life.closing; attempt++) {
      const answers = await this.pool.books({ t: 'drop', ids });
      for (const a of answers) dropped += a?.portfolios ?? 0;
      if (answers.every((a) => a !== null)) break;
      await new Promise((r) => setTimeout(r, dropRetryMs));
    }
    return dropped;
  }

  /**
   * Cluster: a partition's books taken over from a shipped snapshot (columnar codec segments, as
   * exportBooks writes them) join this engine: validated here, registered in the directory and the
   * symbol table, loaded into the running shards (Shard.adopt), then written to the store as a new
   * columnar generation whose transaction also sets the partition's stream cursor to position.seq
   * (backwards too): a restart comes back to exactly these books at that sequence. Refused, with
   * nothing kept, when a book is held here already, the snapshot does not decode, or a limit is
   * reached; retryable when a shard is restarting. Empty segments: only the cursor and a generation.
   */
  async adoptBooks(segments: readonly Uint8Array[], position: StreamPosition, replaced: readonly string[] = [], results: readonly { portfolio_id: string; trade_id: string; result: unknown }[] = []): Promise<Result<number>> {
    if (this.life.closing) return engineClosed();
    await this.ready;
    const gone = replaced.filter((id) => this.directory.has(id));
    this.forgetCopies(gone);
    if (gone.length > 0) await this.dropFromShards(gone);
    const books = segments.length === 0 ? ok([]) : this.readAdopted(segments);
    if (!books.ok) return books;
    const ids = books.value.map((b) => b.id);
    const held = new Set(ids);
    const bad = results.find((r) => !keyPart(r.portfolio_id) || !keyPart(r.trade_id) || !held.has(r.portfolio_id));
    if (bad !== undefined) return fail(ErrorCode.invalid_field, `snapshot results: ${JSON.stringify(bad.trade_id)} of ${JSON.stringify(bad.portfolio_id)} is not a result of the snapshot's portfolios`, 'snapshot');
    for (const b of books.value) this.directory.set(b.id, { name: b.name, state: b.state, base: b.base });
    const undo = async (error: EngineError): Promise<Result<never>> => {
      for (const id of ids) this.directory.delete(id);
      if (ids.length > 0) await this.dropFromShards(ids);
      return { ok: false, error };
    };
    if (ids.length > 0) {
      this.pool.announceSymbols();
      const answers = await this.pool.books({ t: 'adopt', segments: segments.map((s) => new Uint8Array(s)) });
      const refused = answers.find((a) => a !== null && a.error !== null);
      if (refused !== undefined) return undo({ code: ErrorCode.limit_exceeded, message: `snapshot: ${refused!.error}`, field: 'snapshot' });
      if (answers.some((a) => a === null)) return undo(shardRestartingError(answers.findIndex((a) => a === null)));
    }
    const written = await this.writeGeneration(() => {
      // The ids the books include, so a resend of one is answered, not applied again (first result wins).
      if (results.length > 0) this.store.append([], results).durable.catch(() => undefined);
      this.store.setStreamCursor(position.partition, position.seq);
    });
    if (!written) return undo(shardRestartingError(this.pool.shards.findIndex((h) => h.state !== 'ready')));
    return ok(ids.length);
  }

  /** The adopted snapshot's books, checked before any shard sees them (a bad image is refused here). */
  private readAdopted(segments: readonly Uint8Array[]): Result<{ id: string; name: string; state: PortfolioStatus; base: string }[]> {
    const bad = (rule: string): Result<never> => fail(ErrorCode.invalid_field, `snapshot: ${rule}`, 'snapshot');
    const out: { id: string; name: string; state: PortfolioStatus; base: string }[] = [];
    let strings: ReturnType<typeof readSnapshotStrings>;
    try {
      strings = readSnapshotStrings(segments);
      const statuses = readSnapshotStatuses(segments);
      decodeSnapshot(segments, () => true, (b) => out.push({ id: b.state.id, name: b.state.name, state: statuses[out.length], base: b.state.base_currency ?? baseCurrencyDefault }));
    } catch (err) {
      return bad(`the books do not decode: ${(err as Error).message}`);
    }
    for (const b of out) {
      if (!validatePortfolioId(b.id, 'portfolio_id').ok) return bad(`portfolio id ${JSON.stringify(b.id)} is not a valid id`);
      if (this.directory.has(b.id)) return fail(ErrorCode.portfolio_exists, `snapshot: portfolio '${b.id}' is already held by this engine`, 'portfolio_id');
    }
    for (const s of strings.symbols) {
      if (!validSymbol(s)) return bad(`symbol ${JSON.stringify(s)} is not a valid symbol`);
      if (this.symbols.intern(s) < 0) return fail(ErrorCode.limit_exceeded, `symbols must be <= ${this.o.limits.symbolsMax}`, 'symbol');
    }
    for (const [currency, base] of strings.conversions) {
      if (!this.symbols.internConversion(currency, base, this.o.fxPivot)) return fail(ErrorCode.limit_exceeded, `symbols must be <= ${this.o.limits.symbolsMax}`, 'currency');
    }
    return ok(out);
  }

  // ---- reads and subscriptions ------------------------------------------------------------------

  has(portfolioId: string): boolean {
    return this.directory.has(portfolioId);
  }

  listPortfolios(): PortfolioSummary[] {
    const out: PortfolioSummary[] = [];
    for (const [id, e] of this.directory) out.push({ id, name: e.name, state: e.state });
    // Sorted by id so listings page stably across restarts (insertion order differs after recovery).
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  shardOf(portfolioId: string): number {
    return shardOf(portfolioId, this.workers);
  }

  subscribe(portfolioId: string, listener: Listener, options?: SubscribeOptions): Result<() => void> {
    return this.subscriptions.subscribe(portfolioId, listener, options);
  }

  holdDeltas(portfolioId: string, listener: Listener, on: boolean): void {
    this.subscriptions.hold(portfolioId, listener, on);
  }

  /** Appends events produced beside the shards (market alerts, feed gaps) to the log. */
  recordEvents(events: DomainEvent[]): Promise<void> {
    if (this.life.closing || events.length === 0) return Promise.resolve();
    return this.commit.persist(events as ShardEvent[]);
  }

  onEvent(listener: EventListener, types?: readonly DomainEventType[]): () => void {
    return this.commit.onEvent(listener, types);
  }

  queryEvents(query: EventQuery): Promise<Result<StoredEvent[]>> {
    return this.history.queryEvents(query);
  }

  snapshotAt(portfolioId: string, timestamp: number): Promise<Result<PortfolioSnapshot>> {
    return this.history.snapshotAt(portfolioId, timestamp);
  }

  // ---- upkeep (upkeep.ts) --------------------------------------------------------------------

  /** Recovery's progress: portfolios and events restored, rate, ETA (the CLI's progress line, /ready). */
  get progress(): RecoveryProgress {
    return this.pool.progress;
  }

  /** Recovery is done (engine.ready has resolved). */
  get isReady(): boolean {
    return this.pool.progress.phase === 'ready';
  }

  /** Each shard's records, written after (and atomically with respect to) the events they cover. */
  async snapshotAll(): Promise<void> {
    await this.upkeep.snapshotAll();
  }

  /** Retention: drop events every snapshot covers and older than retainEventsMs (off by default: audit). */
  compact(): Promise<number> {
    return this.upkeep.compact();
  }

  // ---- corporate actions (corporateDesk.ts) ----------------------------------------------------

  private corporateDesk(clock: Clock): CorporateDesk {
    const marks = new CorporateMarks(this.symbols, this.prices, this.coalescer, (id, factor) => {
      this.rescaleMarkReference(this.symbols.names[id], factor);
    });
    const shards = this.pool.shards;
    const host = {
      store: this.store,
      shards,
      symbols: this.symbols,
      clock,
      marks,
      closing: () => this.life.closing,
      hold: (on: boolean) => {
        this.lockstep.corporateHold = on;
        for (const h of shards) h.hold(on);
        if (!on && this.coalescer.count > 0) this.lockstep.scheduleFlush();
      },
      announceSymbols: () => this.pool.announceSymbols(),
      persist: (events: ShardEvent[], trades?: { portfolio_id: string; trade_id: string; result: unknown }[]) => this.commit.persist(events, trades),
      deliver: (u: Uint8Array) => this.subscriptions.deliver(deltaOf(u)),
      restartShard: (index: number) => shards[index].post({ t: 'crash', how: 'exit' }),
      durable: () => this.commit.durable(),
      multiplierOf: (symbol: string) => this.instrumentTable.get(symbol)?.multiplier,
      adjustInstrument: (symbol: string, multiplier: number, ts: number) => this.instruments.adjusted(symbol, multiplier, ts),
      portfoliosByShard: (keep: (id: string) => boolean) => {
        const out: string[][] = shards.map(() => []);
        for (const id of this.directory.keys()) if (keep(id)) out[shardOf(id, this.workers)].push(id);
        return out;
      },
      holdingsAt: (symbol: string, ts: number) => holdingsAt(this.store, this.directory.keys(), this.o.retainEventsMs !== null, symbol, ts, this.o.fxPivot),
    };
    return new CorporateDesk(host, { checkMs: this.o.corporateActionsCheckMs, pendingMax: this.o.limits.corporateActionsPendingMax });
  }

  async corporateAction(input: unknown): Promise<Result<CorporateAnswer>> {
    if (this.life.closing) return engineClosed();
    await this.ready;
    return this.corporate.submit(input);
  }

  async listCorporateActions(query: { after_seq?: number; limit?: number } = {}): Promise<Result<CorporateList>> {
    if (this.life.closed) return engineClosed();
    if (typeof query !== 'object' || query === null) return fail(ErrorCode.invalid_field, 'query must be an object', 'query');
    return this.corporate.list(query);
  }

  async corporateAnnounceIn(scope: CorporateScope, body: unknown): Promise<Result<CorporateAnswer>> {
    if (this.life.closing) return engineClosed(true);
    await this.ready;
    return this.corporate.announceIn(scope, body);
  }

  async corporateStepIn(scope: CorporateScope, body: unknown): Promise<Result<{ applied: boolean }>> {
    if (this.life.closing) return engineClosed(true);
    await this.ready;
    return this.corporate.applyStepIn(scope, body);
  }

  corporateCarryIn(scopeName: string): CarriedAction[] {
    return this.corporate.carryOf(scopeName);
  }

  async corporateRestoreIn(scope: CorporateScope, carried: readonly CarriedAction[]): Promise<Result<number>> {
    if (this.life.closing) return engineClosed(true);
    await this.ready;
    return this.corporate.restoreIn(scope, carried);
  }

  corporateStepsDue(scopeName: string): DueStep[] {
    return this.corporate.dueIn(scopeName);
  }

  corporateActionIn(actionId: string, scopeNames: readonly string[]): CorporateActionView | null {
    return this.corporate.viewIn(actionId, scopeNames);
  }

  /** Applies the corporate action steps whose time has come now (the timer does it every corporateActionsCheckMs). */
  checkCorporateActions(): Promise<void> {
    if (this.life.closing) return Promise.resolve();
    return this.corporate.check();
  }

  // ---- introspection -------------------------------------------------------------------------

  stats(): EngineStats {
    let positions = 0;
    for (const n of this.counters.openPositionsByShard) positions += n;
    return {
      kernel: this.kernel,
      workers: this.workers,
      portfolios: this.directory.size,
      positions,
      symbols: this.symbols.size,
      ticksReceived: this.counters.ticksReceived,
      ticksRejected: this.counters.ticksRejected,
      batches: this.counters.batches,
      positionsRevalued: this.counters.positionsRevalued,
      portfoliosRevalued: this.counters.portfoliosRevalued,
      updatesEmitted: this.counters.updatesEmitted,
      shardRestarts: this.counters.shardRestarts,
      latencyP50Ms: this.latency.quantile(0.5),
      latencyP99Ms: this.latency.quantile(0.99),
      snapshotRounds: this.counters.snapshotRounds,
      lastSnapshotRoundMs: this.counters.lastSnapshotRoundMs,
      lastSnapshotRoundBytes: this.counters.lastSnapshotRoundBytes,
      lastSnapshotRoundRecords: this.counters.lastSnapshotRoundRecords,
    };
  }

  shardStats(): { shard: number; state: string; queueDepth: number; restarts: number }[] {
    return this.pool.shardStats();
  }

  /** Each ready shard's prom-client registry as JSON; a shard that does not answer in time is left out. */
  async workerMetrics(timeoutMs = 1_000): Promise<unknown[][]> {
    return (await this.workerMetricsByShard(timeoutMs)).filter((a): a is unknown[] => a !== null);
  }

  /** Like workerMetrics, indexed by shard: null for a shard that is not ready or did not answer in time. */
  workerMetricsByShard(timeoutMs = 1_000): Promise<(unknown[] | null)[]> {
    return this.pool.workerMetricsByShard(timeoutMs);
  }

  /** Live shard worker threads (0 once closed). */
  get threads(): number {
    return this.pool.threads;
  }

  get utilization(): number {
    return this.pool.utilization;
  }

  storeStats() {
    return this.store.stats();
  }

  /**
   * Hands the last prices changed since the previous flush to the store now instead of at the next
   * pricesFlushIntervalMs (the clean stop does the same).
   */
  flushPrices(): void {
    this.upkeep.flushPrices();
  }

  /** The store writes nothing now: no LMDB transaction queued, backlogged or in flight (Store.idle). */
  storeIdle(): boolean {
    return this.store.idle();
  }

  /** Commit durations (seconds) of the store, for the metrics layer; returns the unsubscribe. */
  onStoreCommit(listener: (seconds: number, events: number, kind: CommitKind) => void): () => void {
    return this.store.onCommit(listener);
  }

  crashShard(shard: number, how: 'throw' | 'exit' | 'heap' = 'exit'): Result<void> {
    return this.pool.crashShard(shard, how);
  }
}

export async function createEngine(options: EngineOptions = {}): Promise<MtmEngine> {
  const engine = await startEngine(options);
  await engine.ready;
  return engine;
}

/**
 * Opens the data directory and starts recovery, resolving before it is done (engine.ready resolves
 * then; engine.progress tells how far it is): the CLI serves /health and /ready meanwhile.
 */
export async function startEngine(options: EngineOptions = {}): Promise<MtmEngine> {
  const invalid = markOptionsError(options);
  if (invalid !== null) throw new EngineStartError(invalid);
  const o = resolveOptions(options);
  const waitMs = options.store?.ownerDyingWaitMs;
  if (waitMs !== undefined && !(Number.isSafeInteger(waitMs) && waitMs >= 0)) {
    throw new EngineStartError({ code: ErrorCode.invalid_field, message: 'store.ownerDyingWaitMs must be an integer >= 0', field: 'ownerDyingWaitMs' });
  }
  // Begun here so the start's phase marks include the lock and the store's open.
  const progress = new RecoveryProgress();
  // The shard threads first: their boot (module loading) overlaps the lock, the store's open and the
  // directory read on this thread instead of following them (a clean restart waited for it); an entry
  // point may have started them even before it loaded the engine (threads.ts).
  const threads = options.shardThreads ?? startShardThreads(options);
  if (threads.workers !== o.workers || threads.shardHeapMb !== o.shardHeapMb) {
    await threads.pool.destroy();
    throw new EngineStartError({ code: ErrorCode.invalid_field, message: `shardThreads were started for ${threads.workers} workers of ${threads.shardHeapMb} MB, the options say ${o.workers} of ${o.shardHeapMb} MB`, field: 'shardThreads' });
  }
  const pool = threads.pool;
  const ephemeralDir = o.dataDir === undefined ? mkdtempSync(join(tmpdir(), 'mtm-ephemeral-')) : null;
  const dataDir = resolve(o.dataDir ?? (ephemeralDir as string));
  // A start refused below leaves no thread behind.
  const refuse = async (error: EngineError): Promise<never> => {
    await pool.destroy();
    if (ephemeralDir !== null) rmSync(ephemeralDir, { recursive: true, force: true });
    throw new EngineStartError(error);
  };
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    return refuse({ code: ErrorCode.store_failed, message: `cannot create data dir '${dataDir}': ${(err as Error).message}`, field: 'path' });
  }
  // Another live engine on this directory is refused here; a dead one (even an unreaped zombie) is not.
  const locked = await lockDataDir(dataDir, waitMs);
  if (!locked.ok) return refuse(locked.error);
  progress.mark('data dir locked');
  const opened = openStore({ path: dataDir, sync: o.sync, retention: { keepEventsMs: o.retainEventsMs }, ...options.store });
  if (!opened.ok) {
    await locked.value.release();
    return refuse(opened.error);
  }
  progress.mark('store open');
  return new MtmEngine(o, opened.value, pool, options.clock ?? systemClock, options.random ?? seeded(0x5eed), ephemeralDir, locked.value, progress);
}

export class EngineStartError extends Error {
  constructor(readonly error: EngineError) {
    super(error.message);
  }
}
