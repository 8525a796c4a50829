// The engine's main thread: validates input, coalesces ticks, feeds the shards one message per batch,
// persists what the shards decided, acknowledges after the durable commit, and fans updates out to
// subscribers. Data flows one way: feed -> coalescer -> shards -> here -> subscribers, store beside.

import { MessageChannel } from 'node:worker_threads';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Piscina } from 'piscina';
import { ErrorCode, fail, ok, type EngineError, type Result } from '../errors.js';
import { priceError, validSymbol, validateCash, validateCreatePortfolio, validateLimits, validatePortfolioId, validateTrade } from '../domain/validate.js';
import { baseCurrencyDefault, type Clock, type DomainEvent, type PortfolioSnapshot, type Random, type RiskLimits, type StoredEvent, type TickInput, type TradeInput, type TradeResult } from '../domain/types.js';
import { fxSymbolOf } from '../domain/portfolio.js';
import { distFile } from '../projectRoot.js';
import type { CommandResult, FromShard, ShardEvent } from '../shard/protocol.js';
import { openStore, type Store } from '../store/store.js';
import { lockDataDir, type DataDirLock } from '../store/ownerLock.js';
import type { Engine, EngineOptions, EngineStats, EventListener, EventQuery, HeldTick, Listener, PortfolioSummary, PositionLots, SettledTick, TickIngestResult } from './api.js';
import { Coalescer, type TickBatch } from './coalescer.js';
import { applyToDirectory, type Directory } from './directory.js';
import { LatencyWindow } from './latencyWindow.js';
import { markOptionsError, resolveOptions, type ResolvedOptions } from './options.js';
import { RecoveryProgress, recoverAll, recoverShard, type RecoveryHost } from './recovery.js';
import { ShardHandle, type CommandBody } from './shardHandle.js';
import { shardOf } from './shardOf.js';
import { Subscribers } from './subscribers.js';
import { SymbolTable } from './symbols.js';
import { EngineCounters, failureResult } from './counters.js';
import { timeTravel } from './timeTravel.js';
import { TickTape, type TapeListener } from './tickTape.js';
import { CorporateDesk, type CorporateAnswer, type CorporateList } from './corporateDesk.js';
import { CorporateMarks } from './corporateMarks.js';
import { seeded } from '../sim/random.js';
import { SuspectTicks } from './suspectTicks.js';

export const systemPortfolio = '_engine';
/** Per-portfolio seqs of boot epoch e start at e * seqEpochSize (2^32 changes per portfolio and epoch). */
export const seqEpochSize = 2 ** 32;
/** Compaction steps per snapshot round: bounds the work one round does (each step is bounded too). */
const compactStepsPerRoundMax = 64;

const systemClock: Clock = { now: () => Date.now() };


export class MtmEngine implements Engine {
  readonly kernel: 'wasm' | 'js';
  readonly workers: number;
  readonly counters = new EngineCounters();
  readonly latency = new LatencyWindow(8192);
  private readonly shards: ShardHandle[] = [];
  private readonly symbols: SymbolTable;
  private readonly coalescer: Coalescer;
  /** Between validation and the coalescer: holds ticks that jump too far. */
  private readonly suspect: SuspectTicks;
  private readonly lastPrice: Float64Array;
  private readonly lastPriceTs: Float64Array;
  private readonly priceDirty: Uint8Array;
  /** Per symbol id: effective time of its latest split; older ticks are refused (pre_split_tick). */
  private readonly splitTs: Float64Array;
  private readonly corporate: CorporateDesk;
  /** A corporate step holds every other message to the shards (see corporateDesk.ts). */
  private corporateHold = false;
  private readonly directory: Directory = new Map();
  private readonly subscribers: Subscribers;
  private readonly tradeIds = new Map<string, Promise<Result<TradeResult>>>();
  /** Bounded by the commands a shard may queue and the store's pending writes: each entry is one of those. */
  private readonly tradesInFlight = new Map<string, Promise<Result<TradeResult>>>();
  private readonly eventListeners = new Set<EventListener>();
  private readonly timers: NodeJS.Timeout[] = [];
  private flushScheduled = false;
  private tape: TickTape | null = null;
  private drainWaiters: (() => void)[] = [];
  private batchesOutstanding = 0;
  private currentBatch: TickBatch | null = null;
  private nextBatch = 1;
  private nextRequest = 1;
  private readonly recordRequests = new Map<number, (answer: { records: import('../domain/types.js').PortfolioRecord[]; segments: Uint8Array[] }) => void>();
  private readonly loadRequests = new Map<number, () => void>();
  private readonly metricRequests = new Map<number, (metrics: unknown[]) => void>();
  private lastDurable: Promise<void> = Promise.resolve();
  private closing = false;
  private closed = false;
  readonly ready: Promise<void>;

  constructor(
    private readonly o: ResolvedOptions,
    private readonly store: Store,
    private readonly pool: Piscina,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly ephemeralDir: string | null,
    private readonly dirLock: DataDirLock,
  ) {
    this.kernel = o.kernel;
    this.workers = o.workers;
    this.symbols = new SymbolTable(o.limits.symbolsMax);
    this.coalescer = new Coalescer(o.limits.symbolsMax);
    this.suspect = new SuspectTicks(o.limits.symbolsMax, o.suspectMovePct, {
      symbols: this.symbols,
      coalescer: this.coalescer,
      counters: this.counters,
      clock,
      tape: () => this.tape,
      persist: (events) => this.persist(events),
      scheduleFlush: () => this.scheduleFlush(),
    });
    this.lastPrice = new Float64Array(o.limits.symbolsMax);
    this.lastPriceTs = new Float64Array(o.limits.symbolsMax);
    this.priceDirty = new Uint8Array(o.limits.symbolsMax);
    this.splitTs = new Float64Array(o.limits.symbolsMax);
    this.corporate = this.corporateDesk();
    this.subscribers = new Subscribers(o.limits.subscribersPerPortfolioMax);
    for (let i = 0; i < o.workers; i++) this.shards.push(new ShardHandle(i, o.limits.commandsQueuedPerShardMax));
    this.ready = this.start();
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  private async start(): Promise<void> {
    for (const p of this.store.loadPrices()) {
      const id = this.symbols.intern(p.symbol);
      if (id < 0) continue;
      this.lastPrice[id] = p.price;
      this.lastPriceTs[id] = p.ts;
      this.coalescer.seed(id, p.ts);
      // Restored prices are references too: the first tick after a restart is judged against them.
      this.suspect.applied(id, p.price);
    }
    // Before the directory: it redoes the price side of splits and interns renamed symbols, which the
    // shards then get with the symbol table and the last prices.
    this.corporate.recover();
    // A new boot epoch, durable before any shard shows a seq of it: seqs never go back (takeSeqEpoch).
    const { floor, cleanSnapshot } = await this.nextSeqFloor();
    const spawned = Promise.all(this.shards.map((h) => this.spawnShard(h, floor)));
    // Reading the snapshots overlaps the workers' boot; the shards load in parallel once all are up.
    await recoverAll(this.recoveryHost(cleanSnapshot), this.directory, this.shards, spawned.then(() => undefined));
    for (const h of this.shards) h.state = 'ready';
    this.progress.phase = 'ready';
    this.progress.readyMs = performance.now();
    this.corporate.start();
    this.timers.push(setInterval(() => void this.snapshotAll().then(() => this.compact()), this.o.snapshotIntervalMs).unref());
    this.timers.push(setInterval(() => this.flushPrices(), this.o.pricesFlushIntervalMs).unref());
  }

  /** Recovery's progress (the CLI's progress line, /ready while starting). */
  readonly progress = new RecoveryProgress();

  private recoveryHost(cleanSnapshot = false): RecoveryHost {
    return {
      cleanSnapshot,
      store: this.store,
      symbols: this.symbols,
      lastPrice: this.lastPrice,
      lastPriceTs: this.lastPriceTs,
      workers: this.o.workers,
      nextRequest: () => this.nextRequest++,
      loadRequests: this.loadRequests,
      progress: this.progress,
    };
  }

  /** The seq floor of a new shard life: a fresh epoch, durable before it is used. */
  private async nextSeqFloor(): Promise<{ floor: number; cleanSnapshot: boolean }> {
    const { epoch, cleanSnapshot } = this.store.takeSeqEpoch();
    await this.store.append([]).durable;
    return { floor: epoch * seqEpochSize, cleanSnapshot };
  }

  /** Starts a worker for the shard; resolves when it is up (not loaded). */
  private spawnShard(h: ShardHandle, seqFloor: number): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    h.state = 'starting';
    h.batchInFlight = false;
    h.symbolTableSent = false;
    let readyResolve!: () => void;
    const isReady = new Promise<void>((resolve) => (readyResolve = resolve));
    h.attach(port1, (msg) => {
      if (msg.t === 'ready') readyResolve();
      else this.onShardMessage(h, msg);
    });
    const init = {
      shard: h.index,
      shards: this.o.workers,
      kernel: this.o.kernel,
      positionsPerPortfolioMax: this.o.limits.positionsPerPortfolioMax,
      portfoliosMax: this.o.limits.portfoliosMax,
      symbolsMax: this.o.limits.symbolsMax,
      staleAfterMs: this.o.staleAfterMs,
      seqFloor,
    };
    const task = this.pool.run({ init, port: port2 }, { transferList: [port2] as never });
    task.then(
      () => undefined,
      (err: unknown) => void this.onShardDied(h, port1, err),
    );
    return isReady;
  }

  /** A supervised restart: a new worker, loaded from its snapshot and the log after it. */
  private async startShard(h: ShardHandle): Promise<void> {
    const { floor } = await this.nextSeqFloor();
    await this.spawnShard(h, floor);
    await recoverShard(this.recoveryHost(), h);
    h.state = 'ready';
  }

  private async onShardDied(h: ShardHandle, port: MessagePort | import('node:worker_threads').MessagePort, err: unknown): Promise<void> {
    port.close();
    if (this.closing) return;
    const reason = err instanceof Error ? err.message : String(err);
    h.state = 'restarting';
    h.restarts++;
    this.counters.shardRestarts++;
    if (h.batchInFlight) this.batchDone();
    h.failAll({ code: ErrorCode.shard_restarting, message: `shard ${h.index} is restarting; retry shortly`, retryable: true });
    await this.lastDurable.catch(() => undefined);
    const started = performance.now();
    await this.startShard(h);
    this.counters.lastRestartMs = performance.now() - started;
    this.persist([{ type: 'ShardRestarted', shard: h.index, reason, portfolio_id: systemPortfolio, ts: this.clock.now() }]);
    this.resendPrices(h);
    await this.resyncShard(h);
    this.scheduleFlush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    await this.ready.catch(() => undefined);
    await this.corporate.close();
    while (this.batchesOutstanding > 0) await new Promise((r) => setTimeout(r, 1));
    // Clean: nothing changes after it, so the next start shows exactly these seqs.
    await this.snapshotAll(true).catch(() => undefined);
    this.flushPrices();
    await this.lastDurable.catch(() => undefined);
    this.closed = true;
    for (const h of this.shards) {
      h.failAll({ code: ErrorCode.engine_closed, message: 'engine is closed' });
      h.state = 'stopped';
      h.post({ t: 'stop' });
    }
    await this.pool.close({ force: false }).catch(() => undefined);
    await this.pool.destroy().catch(() => undefined);
    await this.store.close();
    await this.dirLock.release();
    if (this.ephemeralDir !== null) rmSync(this.ephemeralDir, { recursive: true, force: true });
  }

  // ---- ticks ---------------------------------------------------------------------------------

  ingestTick(symbol: string, price: number, ts: number, size?: number): string | null {
    if (this.closing) return this.rejectTick(ErrorCode.engine_closed);
    let id = this.symbols.idOf(symbol);
    if (id === undefined && !validSymbol(symbol)) return this.rejectTick(ErrorCode.invalid_symbol);
    if (priceError(price) !== null) return this.rejectTick(ErrorCode.invalid_price);
    if (!(ts >= 0 && ts <= 8.64e15)) return this.rejectTick(ErrorCode.invalid_timestamp);
    if (size !== undefined && !(size >= 0 && size < Infinity)) return this.rejectTick(ErrorCode.invalid_quantity);
    if (id !== undefined && ts < this.splitTs[id]) return this.rejectTick(ErrorCode.pre_split_tick);
    // Registered only once the whole tick is valid: a refused tick must not use up symbolsMax
    // (found by the simulator, seed 2).
    if (id === undefined) {
      id = this.symbols.intern(symbol);
      if (id < 0) return this.rejectTick(ErrorCode.limit_exceeded);
    }
    this.counters.ticksReceived++;
    // A suspect tick is held here, off the tape too (bars see a held print only once it is confirmed).
    if (this.suspect.judge(id, price, ts, size ?? NaN)) return null;
    this.tape?.record(id, price, ts, size ?? NaN);
    if (!this.coalescer.add(id, price, ts, performance.now())) {
      this.counters.ticksStale++;
      // Stale for the shards, not for the tape (bars count late ticks): the next flush hands it off.
      if (this.tape !== null && !this.flushScheduled) this.scheduleFlush();
      return null;
    }
    this.suspect.applied(id, price);
    if (!this.flushScheduled) this.scheduleFlush();
    return null;
  }

  // ---- suspect ticks (src/engine/suspectTicks.ts) -----------------------------------------------

  ticksHeldCount(): number {
    return this.counters.ticksHeld;
  }

  /** Symbols holding a suspect tick now (the mtm_suspect_ticks_held gauge). */
  get suspectHeldCount(): number {
    return this.suspect.heldCount;
  }

  suspectTicks(): HeldTick[] {
    return this.suspect.list();
  }

  confirmSuspectTick(symbol: string): Promise<Result<SettledTick>> {
    if (this.closing) return Promise.resolve(fail(ErrorCode.engine_closed, 'engine is closed'));
    return this.suspect.settleByAdmin(symbol, 'confirmed');
  }

  rejectSuspectTick(symbol: string): Promise<Result<SettledTick>> {
    if (this.closing) return Promise.resolve(fail(ErrorCode.engine_closed, 'engine is closed'));
    return this.suspect.settleByAdmin(symbol, 'rejected');
  }

  rescaleMarkReference(symbol: string, factor: number): Result<void> {
    return this.suspect.rescale(symbol, factor);
  }

  ingestTicks(ticks: readonly TickInput[]): TickIngestResult {
    const rejected: { index: number; code: string }[] = [];
    if (!Array.isArray(ticks)) return { accepted: 0, rejected: [{ index: -1, code: ErrorCode.invalid_field }], held: 0 };
    if (ticks.length > this.o.limits.ticksPerCallMax) return { accepted: 0, rejected: [{ index: -1, code: ErrorCode.limit_exceeded }], held: 0 };
    const now = this.clock.now();
    const heldBefore = this.counters.ticksHeld;
    for (let i = 0; i < ticks.length; i++) {
      const t = ticks[i] as Partial<TickInput> | null;
      const code =
        typeof t !== 'object' || t === null || typeof t.symbol !== 'string' || typeof t.price !== 'number'
          ? this.rejectTick(ErrorCode.invalid_field)
          : t.ts !== undefined && typeof t.ts !== 'number'
            ? this.rejectTick(ErrorCode.invalid_timestamp)
            : t.size !== undefined && t.size !== null && typeof t.size !== 'number'
              ? this.rejectTick(ErrorCode.invalid_quantity)
              : this.ingestTick(t.symbol, t.price, t.ts ?? now, t.size ?? undefined);
      if (code !== null) rejected.push({ index: i, code });
    }
    return { accepted: ticks.length - rejected.length, rejected, held: this.counters.ticksHeld - heldBefore };
  }

  private rejectTick(code: string): string {
    this.counters.rejectTick(code);
    return code;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const run = () => {
      this.flushScheduled = false;
      this.flush();
    };
    if (this.o.coalesceWindowMs > 0) setTimeout(run, this.o.coalesceWindowMs);
    else setImmediate(run);
  }

  /** One batch at a time across all shards: while one is in flight, ticks keep coalescing. */
  private flush(): void {
    this.tape?.handOff();
    if (this.batchesOutstanding > 0 || this.coalescer.count === 0 || this.closed || this.corporateHold) return;
    this.announceSymbols();
    const batch = this.coalescer.drain();
    for (let k = 0; k < batch.n; k++) {
      const id = batch.syms[k];
      this.lastPrice[id] = batch.prices[k];
      this.lastPriceTs[id] = batch.ts[k];
      this.priceDirty[id] = 1;
    }
    this.currentBatch = batch;
    const number = this.nextBatch++;
    const now = this.clock.now();
    for (const h of this.shards) {
      if (h.state !== 'ready') continue;
      h.batchInFlight = true;
      this.batchesOutstanding++;
      h.post({ t: 'ticks', batch: number, n: batch.n, syms: batch.syms, prices: batch.prices, ts: batch.ts, now });
    }
    this.counters.batches++;
    this.counters.batchTicks += batch.n;
    if (this.batchesOutstanding === 0) this.batchDone();
  }

  private announceSymbols(): void {
    const fresh = this.symbols.takeUnannounced();
    if (fresh === null) return;
    // A worker still starting gets these with the whole table when its recovery begins: sent now, they
    // arrived first and its "symbols in order" assertion killed it (found by the simulator, seed 3).
    for (const h of this.shards) if (h.symbolTableSent) h.post({ t: 'symbols', from: fresh.from, names: fresh.names });
  }

  /** Resolves once every tick ingested so far has been revalued and its updates delivered. */
  drain(): Promise<void> {
    if (this.coalescer.count === 0 && this.batchesOutstanding === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiters.push(resolve);
      this.scheduleFlush();
    });
  }

  private batchDone(): void {
    if (this.batchesOutstanding > 0) this.batchesOutstanding--;
    if (this.batchesOutstanding > 0) return;
    if (this.coalescer.count === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      queueMicrotask(() => waiters.forEach((w) => w()));
    }
    const batch = this.currentBatch;
    this.currentBatch = null;
    if (batch !== null) {
      const ms = performance.now() - batch.oldestArrivalMs;
      this.latency.add(ms);
      this.counters.observeLatency(ms, batch.ts);
    }
    if (this.coalescer.count > 0) this.scheduleFlush();
  }

  // ---- shard messages ------------------------------------------------------------------------

  private onShardMessage(h: ShardHandle, msg: FromShard): void {
    switch (msg.t) {
      case 'revalued':
        h.batchInFlight = false;
        this.counters.positionsRevalued += msg.positionsRevalued;
        this.counters.portfoliosRevalued += msg.portfoliosRevalued;
        this.counters.setOpenPositions(h.index, msg.openPositions);
        for (const b of msg.breaches) this.counters.riskBreach(b.limit);
        if (msg.events.length > 0) this.persist(msg.events);
        for (const u of msg.updates) this.counters.updatesEmitted += this.subscribers.deliverUpdate(u);
        this.batchDone();
        break;
      case 'results':
        for (const r of msg.results) {
          // A corporate step's results are logged together, all shards in one append (corporateDesk.ts).
          if (r.holders !== undefined) {
            h.resolve(r);
            continue;
          }
          const trades = r.trade === null ? undefined : [{ portfolio_id: r.trade.portfolio_id, trade_id: r.trade.trade_id, result: r.trade }];
          if (r.events.length > 0) r.durable = this.persist(r.events, trades);
          if (r.update !== null) this.counters.updatesEmitted += this.subscribers.deliverUpdate(r.update);
          h.resolve(r);
        }
        break;
      case 'records':
        this.recordRequests.get(msg.request)?.(msg);
        this.recordRequests.delete(msg.request);
        break;
      case 'loaded':
        this.loadRequests.get(msg.request)?.();
        this.loadRequests.delete(msg.request);
        break;
      case 'replayed':
        this.loadRequests.get(msg.ack)?.();
        this.loadRequests.delete(msg.ack);
        break;
      case 'metrics':
        this.metricRequests.get(msg.request)?.(msg.metrics);
        this.metricRequests.delete(msg.request);
        break;
      case 'ready':
        break;
    }
  }

  /** Assigns global seqs now (in shard message order) and returns when the commit is durable. */
  private persist(events: ShardEvent[], trades?: { portfolio_id: string; trade_id: string; result: unknown }[]): Promise<void> {
    for (const e of events) applyToDirectory(this.directory, e);
    const receipt = this.store.append(events as DomainEvent[], trades);
    const durable = receipt.durable.then(() => {
      if (this.eventListeners.size > 0) for (const e of receipt.stored) for (const l of this.eventListeners) l(e);
    });
    this.lastDurable = durable;
    return durable;
  }

  // ---- commands ------------------------------------------------------------------------------

  private async run(portfolio: string, body: CommandBody): Promise<Result<CommandResult>> {
    if (this.closing) return fail(ErrorCode.engine_closed, 'engine is closed', undefined, true);
    await this.ready;
    const h = this.shards[shardOf(portfolio, this.workers)];
    if (h.state !== 'ready') return fail(ErrorCode.shard_restarting, `shard ${h.index} is restarting; retry shortly`, undefined, true);
    if (body.kind !== 'snapshot' && this.store.overloaded()) return fail(ErrorCode.limit_exceeded, 'store writes pending must stay <= pendingWritesMax; retry shortly', undefined, true);
    const pending = h.submit(body);
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

  private command(kind: CommandBody['kind'], portfolio: string, extra: object): Promise<Result<PortfolioSnapshot>> {
    const started = performance.now();
    return this.run(portfolio, { kind, portfolio, now: this.clock.now(), ...extra } as CommandBody).then((r) => {
      this.counters.command(kind, r.ok ? 'ok' : failureResult(r.error.code), performance.now() - started);
      return r.ok ? ok(r.value.snapshot as PortfolioSnapshot) : r;
    });
  }

  private known(id: unknown): Result<string> {
    const v = validatePortfolioId(id, 'portfolio_id');
    if (!v.ok) return v;
    if (!this.directory.has(v.value)) return fail(ErrorCode.portfolio_not_found, `portfolio '${v.value}' not found`, 'portfolio_id');
    return v;
  }

  async createPortfolio(input: import('../domain/types.js').CreatePortfolioInput): Promise<Result<PortfolioSnapshot>> {
    const v = validateCreatePortfolio(input);
    if (!v.ok) return v;
    if (this.closing) return fail(ErrorCode.engine_closed, 'engine is closed');
    await this.ready;
    const id = v.value.id ?? this.newId();
    if (this.directory.has(id)) return fail(ErrorCode.portfolio_exists, `id '${id}' already exists`, 'id');
    if (this.directory.size >= this.o.limits.portfoliosMax) return fail(ErrorCode.limit_exceeded, `portfolios must be <= ${this.o.limits.portfoliosMax}`, 'id');
    // Reserve the id now so a concurrent create of the same id is refused, not raced.
    this.directory.set(id, { name: v.value.name, state: 'active', base: v.value.base_currency });
    const options = { cost_basis_method: v.value.cost_basis_method, base_currency: v.value.base_currency };
    const r = await this.command('create', id, { name: v.value.name, cash: v.value.cash, limits: v.value.limits, options });
    if (!r.ok) this.directory.delete(id);
    return r;
  }

  private newId(): string {
    let id = '';
    do {
      id = 'p-' + Math.floor(this.random.next() * 2 ** 48).toString(36).padStart(10, '0');
    } while (this.directory.has(id));
    return id;
  }

  async closePortfolio(id: string): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(id);
    return k.ok ? this.command('close', k.value, {}) : k;
  }

  async cash(portfolioId: string, op: unknown): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    if (!k.ok) return k;
    const v = validateCash(op);
    if (!v.ok) return v;
    return this.command(v.value.type, k.value, { amount: v.value.amount });
  }

  async pause(portfolioId: string): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    return k.ok ? this.command('pause', k.value, {}) : k;
  }

  async resume(portfolioId: string): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    return k.ok ? this.command('resume', k.value, {}) : k;
  }

  async setLimits(portfolioId: string, limits: RiskLimits): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    if (!k.ok) return k;
    const v = validateLimits(limits);
    if (!v.ok) return v;
    return this.command('limits', k.value, { limits: v.value });
  }

  async snapshot(portfolioId: string, options: { lots?: boolean } = {}): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    if (!k.ok) return k;
    const r = await this.run(k.value, { kind: 'snapshot', portfolio: k.value, now: this.clock.now(), lots: options.lots === true });
    return r.ok ? ok(r.value.snapshot as PortfolioSnapshot) : r;
  }

  async lots(portfolioId: string, symbol: string): Promise<Result<PositionLots>> {
    if (!validSymbol(symbol)) return fail(ErrorCode.invalid_symbol, 'symbol must match [A-Za-z0-9._:/-]{1,32}', 'symbol');
    const r = await this.snapshot(portfolioId, { lots: true });
    if (!r.ok) return r;
    const position = r.value.positions.find((p) => p.symbol === symbol);
    if (position === undefined) return fail(ErrorCode.not_found, `symbol: no open position in '${symbol}' in portfolio '${r.value.portfolio_id}'`, 'symbol');
    return ok({
      portfolio_id: r.value.portfolio_id,
      symbol,
      cost_basis_method: r.value.cost_basis_method,
      currency: position.currency,
      quantity: position.quantity,
      avg_cost: position.avg_cost,
      lots: r.value.lots?.[symbol] ?? [],
    });
  }

  async trade(portfolioId: string, input: TradeInput): Promise<Result<TradeResult>> {
    const started = performance.now();
    if (this.closing) return this.tradeDone(fail(ErrorCode.engine_closed, 'engine is closed'), started);
    const k = this.known(portfolioId);
    if (!k.ok) return this.tradeDone(k, started);
    const v = validateTrade(input, this.clock.now());
    if (!v.ok) return this.tradeDone(v, started);
    const key = k.value + '\u0000' + v.value.trade_id;
    const earlier = this.tradesInFlight.get(key) ?? this.tradeIds.get(key);
    if (earlier !== undefined) return this.tradeDone(await earlier.then(again), started);
    const stored = this.store.tradeResult(k.value, v.value.trade_id) as TradeResult | undefined;
    if (stored !== undefined) return this.tradeDone(ok({ ...stored, applied: false }), started);
    if (this.symbols.intern(v.value.symbol) < 0) return this.tradeDone(fail(ErrorCode.limit_exceeded, `symbols must be <= ${this.o.limits.symbolsMax}`, 'symbol'), started);
    // The shard links a foreign position to its FX symbol (quote + base) so rate ticks revalue it.
    const base = this.directory.get(k.value)?.base ?? baseCurrencyDefault;
    if (v.value.currency !== null && v.value.currency !== base && this.symbols.intern(fxSymbolOf(v.value.currency, base)) < 0) {
      return this.tradeDone(fail(ErrorCode.limit_exceeded, `symbols must be <= ${this.o.limits.symbolsMax}`, 'currency'), started);
    }
    this.announceSymbols();
    const attempt = this.applyTrade(k.value, v.value);
    this.tradesInFlight.set(key, attempt);
    const r = await attempt;
    this.tradesInFlight.delete(key);
    if (r.ok) this.rememberSettled(key, attempt);
    return this.tradeDone(r, started);
  }

  private async applyTrade(portfolio: string, trade: import('../domain/validate.js').ValidTrade): Promise<Result<TradeResult>> {
    const r = await this.run(portfolio, { kind: 'trade', portfolio, trade, now: this.clock.now() });
    return r.ok ? ok(r.value.trade as TradeResult) : r;
  }

  /**
   * Settled trade ids, least recently settled first, bounded by tradeIdsRememberedMax (older ones are
   * answered by the store). Ids still in flight live in tradesInFlight and are never evicted: such an
   * id is in neither this map nor the store yet, and evicting it let a duplicate apply twice (found by
   * the simulator's swarm, seed 542490174).
   */
  private rememberSettled(key: string, attempt: Promise<Result<TradeResult>>): void {
    if (this.tradeIds.size >= this.o.limits.tradeIdsRememberedMax) this.tradeIds.delete(this.tradeIds.keys().next().value as string);
    this.tradeIds.set(key, attempt);
  }

  private tradeDone(r: Result<TradeResult>, started: number): Result<TradeResult> {
    this.counters.trade(r.ok ? (r.value.applied ? 'ok' : 'duplicate') : failureResult(r.error.code), performance.now() - started);
    return r;
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

  subscribe(portfolioId: string, listener: Listener): Result<() => void> {
    const k = this.known(portfolioId);
    if (!k.ok) return k;
    const id = k.value;
    const sub = this.subscribers.add(id, listener);
    if (sub === null) return fail(ErrorCode.limit_exceeded, `subscribers per portfolio must be <= ${this.o.limits.subscribersPerPortfolioMax}`, 'portfolio_id');
    let active = true;
    void this.run(id, { kind: 'snapshot', portfolio: id, now: this.clock.now(), watch: true }).then((r) => {
      if (active && r.ok && r.value.snapshot !== null) this.subscribers.deliverSnapshot(sub, r.value.snapshot, false);
    });
    return ok(() => {
      if (!active) return;
      active = false;
      this.subscribers.remove(id, sub);
      const h = this.shards[shardOf(id, this.workers)];
      h.post({ t: 'watch', portfolio: id, on: false });
    });
  }

  /** After a shard restart: watched portfolios are watched again and every listener gets a fresh snapshot. */
  private async resyncShard(h: ShardHandle): Promise<void> {
    const mine = [...this.subscribers.portfolios()].filter((id) => shardOf(id, this.workers) === h.index);
    await Promise.all(
      mine.map(async (id) => {
        const r = await this.run(id, { kind: 'snapshot', portfolio: id, now: this.clock.now(), watch: true });
        if (r.ok && r.value.snapshot !== null) {
          // The shard counts one watch per listener (subscribe() sends one each) and the snapshot above
          // counted one: without the others, the first unsubscribe silenced every remaining listener
          // (found by the simulator, seed 5).
          for (let i = 1; i < this.subscribers.countOf(id); i++) h.post({ t: 'watch', portfolio: id, on: true });
          this.subscribers.resync(r.value.snapshot);
        }
      }),
    );
  }

  private resendPrices(h: ShardHandle): void {
    const n = this.symbols.size;
    const syms = new Int32Array(n);
    const prices = new Float64Array(n);
    const ts = new Float64Array(n);
    let k = 0;
    for (let id = 0; id < n; id++) {
      if (this.lastPrice[id] <= 0) continue;
      syms[k] = id;
      prices[k] = this.lastPrice[id];
      ts[k] = this.lastPriceTs[id];
      k++;
    }
    if (k === 0) return;
    h.batchInFlight = true;
    this.batchesOutstanding++;
    h.post({ t: 'ticks', batch: 0, n: k, syms, prices, ts, now: this.clock.now() });
  }

  /**
   * Every accepted tick, handed off in arrival order once per batch (bars, market alerts). One tap;
   * the listener owns each buffer it is given. Symbol ids resolve with symbolName().
   */
  tapTicks(listener: TapeListener, tapeTicksMax = 65_536): () => void {
    this.tape = new TickTape(tapeTicksMax, listener);
    return () => {
      this.tape?.handOff();
      this.tape = null;
    };
  }

  /** Gives a tape buffer back once its ticks were copied out: the tape reuses it instead of allocating. */
  recycleTape(buffer: Float64Array): void {
    this.tape?.recycle(buffer);
  }

  symbolName(id: number): string | undefined {
    return this.symbols.names[id];
  }

  /** Appends events produced beside the shards (market alerts, feed gaps) to the log. */
  recordEvents(events: DomainEvent[]): Promise<void> {
    if (this.closing || events.length === 0) return Promise.resolve();
    return this.persist(events as ShardEvent[]);
  }

  onEvent(listener: EventListener): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  async queryEvents(query: EventQuery): Promise<Result<StoredEvent[]>> {
    if (this.closed) return fail(ErrorCode.engine_closed, 'engine is closed');
    // The store reads fields off the query: anything but an object threw (found by the simulator, seed 4).
    if (typeof query !== 'object' || query === null || Array.isArray(query)) return fail(ErrorCode.invalid_field, 'query must be an object', 'query');
    await this.lastDurable.catch(() => undefined);
    return ok(this.store.query(query));
  }

  async snapshotAt(portfolioId: string, timestamp: number): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    if (!k.ok) return k;
    if (!Number.isFinite(timestamp)) return fail(ErrorCode.invalid_timestamp, 'as_of must be a valid instant', 'as_of');
    if (this.closing) return fail(ErrorCode.engine_closed, 'engine is closed');
    // Everything acknowledged so far is committed: the log plus kept snapshots answer from here.
    await this.lastDurable.catch(() => undefined);
    return timeTravel(this.store, k.value, timestamp, this.o.staleAfterMs);
  }

  // ---- persistence ---------------------------------------------------------------------------

  /** Each shard's records, written after (and atomically with respect to) the events they cover. */
  async snapshotAll(clean = false): Promise<void> {
    if (this.closed) return;
    // Records asked for during a corporate step would include it before its events are appended, so
    // their covered_seq would replay it twice: wait. From here the requests are posted synchronously.
    while (this.corporate.holding) await this.corporate.idle();
    const asOf = this.clock.now();
    const rounds = await Promise.all(
      this.shards.map(async (h) => {
        if (h.state !== 'ready') return null;
        const request = this.nextRequest++;
        const answer = await new Promise<{ records: import('../domain/types.js').PortfolioRecord[]; segments: Uint8Array[] }>((resolve) => {
          this.recordRequests.set(request, resolve);
          h.post({ t: 'records', request, now: asOf });
        });
        // Every event this shard emitted before its records was appended when its message arrived,
        // so the store's last seq covers them all.
        const covered = this.store.lastSeq();
        for (const r of answer.records) r.covered_seq = covered;
        const written = this.store.writeSnapshots(answer.records);
        return { covered, segments: answer.segments, written };
      }),
    );
    // The columnar generation (what recovery reads) needs every shard of one round; a round that
    // missed a restarting shard keeps the previous generation.
    const all = rounds.every((r) => r !== null);
    const columnar = all ? this.store.writeShardSnapshots({ as_of: asOf, clean, covered: rounds.map((r) => r!.covered), shards: rounds.map((r) => r!.segments) }) : null;
    await Promise.all([...rounds.map((r) => r?.written), columnar]);
  }

  /** Retention: drop events every snapshot covers and older than retainEventsMs (off by default: audit). */
  async compact(): Promise<number> {
    if (this.o.retainEventsMs === null || this.closing) return 0;
    // The store compacts in bounded steps (no long stall of the main thread); loop while it has more.
    let removed = 0;
    for (let step = 0; step < compactStepsPerRoundMax && !this.closing; step++) {
      const r = await this.store.compact(this.clock.now()).catch(() => ({ removed: 0, more: false }));
      removed += r.removed;
      if (!r.more) break;
    }
    return removed;
  }

  private flushPrices(): void {
    const out: { symbol: string; price: number; ts: number }[] = [];
    for (let id = 0; id < this.symbols.size; id++) {
      if (this.priceDirty[id] === 0) continue;
      this.priceDirty[id] = 0;
      out.push({ symbol: this.symbols.names[id], price: this.lastPrice[id], ts: this.lastPriceTs[id] });
    }
    if (out.length > 0) void this.store.savePrices(out).catch(() => undefined);
  }

  // ---- corporate actions (corporateDesk.ts) ----------------------------------------------------

  private corporateDesk(): CorporateDesk {
    const marks = new CorporateMarks(this.symbols, { lastPrice: this.lastPrice, lastPriceTs: this.lastPriceTs, priceDirty: this.priceDirty, splitTs: this.splitTs }, this.coalescer, (id, factor) => {
      this.rescaleMarkReference(this.symbols.names[id], factor);
    });
    const host = {
      store: this.store,
      shards: this.shards,
      symbols: this.symbols,
      clock: this.clock,
      marks,
      closing: () => this.closing,
      hold: (on: boolean) => {
        this.corporateHold = on;
        for (const h of this.shards) h.hold(on);
        if (!on && this.coalescer.count > 0) this.scheduleFlush();
      },
      announceSymbols: () => this.announceSymbols(),
      persist: (events: ShardEvent[], trades?: { portfolio_id: string; trade_id: string; result: unknown }[]) => this.persist(events, trades),
      deliver: (u: import('../domain/types.js').PortfolioUpdate) => {
        this.counters.updatesEmitted += this.subscribers.deliverUpdate(u);
      },
      restartShard: (index: number) => this.shards[index].post({ t: 'crash', how: 'exit' }),
      durable: () => this.lastDurable,
    };
    return new CorporateDesk(host, { checkMs: this.o.corporateActionsCheckMs, pendingMax: this.o.limits.corporateActionsPendingMax });
  }

  async corporateAction(input: unknown): Promise<Result<CorporateAnswer>> {
    if (this.closing) return fail(ErrorCode.engine_closed, 'engine is closed');
    await this.ready;
    return this.corporate.submit(input);
  }

  async listCorporateActions(query: { after_seq?: number; limit?: number } = {}): Promise<Result<CorporateList>> {
    if (this.closed) return fail(ErrorCode.engine_closed, 'engine is closed');
    if (typeof query !== 'object' || query === null) return fail(ErrorCode.invalid_field, 'query must be an object', 'query');
    return this.corporate.list(query);
  }

  /** Applies the corporate action steps whose time has come now (the timer does it every corporateActionsCheckMs). */
  checkCorporateActions(): Promise<void> {
    if (this.closing) return Promise.resolve();
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
    };
  }

  shardStats(): { shard: number; state: string; queueDepth: number; restarts: number }[] {
    return this.shards.map((h) => ({ shard: h.index, state: h.state, queueDepth: h.queueDepth, restarts: h.restarts }));
  }

  /** Each ready shard's prom-client registry as JSON; a shard that does not answer in time is left out. */
  async workerMetrics(timeoutMs = 1_000): Promise<unknown[][]> {
    return (await this.workerMetricsByShard(timeoutMs)).filter((a): a is unknown[] => a !== null);
  }

  /** Like workerMetrics, indexed by shard: null for a shard that is not ready or did not answer in time. */
  workerMetricsByShard(timeoutMs = 1_000): Promise<(unknown[] | null)[]> {
    return Promise.all(
      this.shards.map(
        (h) =>
          new Promise<unknown[] | null>((resolve) => {
            if (h.state !== 'ready') return resolve(null);
            const request = this.nextRequest++;
            const timer = setTimeout(() => {
              this.metricRequests.delete(request);
              resolve(null);
            }, timeoutMs);
            this.metricRequests.set(request, (m) => {
              clearTimeout(timer);
              resolve(m);
            });
            h.post({ t: 'metrics', request });
          }),
      ),
    );
  }

  /** Live shard worker threads (0 once closed). */
  get threads(): number {
    return this.pool.threads.length;
  }

  get utilization(): number {
    return this.pool.utilization;
  }

  storeStats() {
    return this.store.stats();
  }

  /** Commit durations (seconds) of the store, for the metrics layer; returns the unsubscribe. */
  onStoreCommit(listener: (seconds: number, events: number) => void): () => void {
    return this.store.onCommit(listener);
  }

  crashShard(shard: number, how: 'throw' | 'exit' | 'heap' = 'exit'): Result<void> {
    if (!this.o.allowFaultInjection) return fail(ErrorCode.forbidden, 'fault injection is disabled (allowFaultInjection)');
    // Both checked: this.shards['0'] is shard 0, and an unknown `how` would reach the worker's heap hog
    // (found by the simulator, seed 1).
    if (how !== 'throw' && how !== 'exit' && how !== 'heap') return fail(ErrorCode.invalid_field, "how must be 'throw', 'exit' or 'heap'", 'how');
    const h = Number.isInteger(shard) ? this.shards[shard] : undefined;
    if (h === undefined || h.state !== 'ready') return fail(ErrorCode.invalid_field, `shard must be a ready shard in [0, ${this.workers})`, 'shard');
    h.post({ t: 'crash', how });
    return ok(undefined);
  }
}

function again(r: Result<TradeResult>): Result<TradeResult> {
  return r.ok ? ok({ ...r.value, applied: false }) : r;
}

export async function createEngine(options: EngineOptions = {}): Promise<MtmEngine> {
  const invalid = markOptionsError(options);
  if (invalid !== null) throw new EngineStartError(invalid);
  const o = resolveOptions(options);
  const ephemeralDir = o.dataDir === undefined ? mkdtempSync(join(tmpdir(), 'mtm-ephemeral-')) : null;
  const dataDir = resolve(o.dataDir ?? (ephemeralDir as string));
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw new EngineStartError({ code: ErrorCode.store_failed, message: `cannot create data dir '${dataDir}': ${(err as Error).message}`, field: 'path' });
  }
  // Another live engine on this directory is refused here; a dead one (even an unreaped zombie) is not.
  const locked = await lockDataDir(dataDir);
  if (!locked.ok) {
    if (ephemeralDir !== null) rmSync(ephemeralDir, { recursive: true, force: true });
    throw new EngineStartError(locked.error);
  }
  const opened = openStore({ path: dataDir, sync: o.sync, retention: { keepEventsMs: o.retainEventsMs } });
  if (!opened.ok) {
    await locked.value.release();
    if (ephemeralDir !== null) rmSync(ephemeralDir, { recursive: true, force: true });
    throw new EngineStartError(opened.error);
  }
  const pool = new Piscina({
    filename: distFile('src/shard/worker.js'),
    minThreads: o.workers,
    maxThreads: o.workers,
    idleTimeout: Number.MAX_SAFE_INTEGER,
    maxQueue: o.workers * 2,
    concurrentTasksPerWorker: 1,
    resourceLimits: { maxOldGenerationSizeMb: o.shardHeapMb },
  });
  // A worker dying outside a task (e.g. out of memory at boot) is emitted as 'error'; with no listener
  // Node would kill the whole engine. Shard tasks' own rejections drive supervision.
  pool.on('error', (err: unknown) => console.error(`mtm: shard worker error: ${err instanceof Error ? err.message : String(err)}`));
  const engine = new MtmEngine(o, opened.value, pool, options.clock ?? systemClock, options.random ?? seeded(0x5eed), ephemeralDir, locked.value);
  await engine.ready;
  return engine;
}

export class EngineStartError extends Error {
  constructor(readonly error: EngineError) {
    super(error.message);
  }
}
