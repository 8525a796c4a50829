// The shard pool: starts the piscina shard workers, supervises them (workers/supervisor.ts: a dead
// shard is restarted, recovered from the store and resynced), and routes every message a shard sends to the station
// that owns it. A tick batch's results and a command's results leave the shards here (onShardMessage).

import { MessageChannel } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { engineClosed, ErrorCode, fail, ok, shardRestartingError, type Result } from '../../errors.js';
import type { Clock, PortfolioRecord } from '../../domain/types.js';
import { deltaOf, type Delta } from '../deltas.js';
import type { FromShard, ShardEvent, TailReport } from '../../shard/protocol.js';
import type { EncodedEvents, Store } from '../../store/store.js';
import { domainEventTypes, type DomainEventType, type TradeResult } from '../../domain/types.js';
import type { EngineCounters } from '../counters.js';
import type { Lifecycle } from '../lifecycle.js';
import type { ResolvedOptions } from '../options.js';
import { phaseMarksMax, RecoveryProgress, recoverAll, recoverShard, type RecoveryHost } from '../recovery.js';
import type { Directory } from '../directory.js';
import { ShardHandle } from '../shardHandle.js';
import { shardOf } from '../shardOf.js';
import { Supervisor, type SupervisedWorker } from '../../workers/supervisor.js';
import type { SymbolTable } from '../symbols.js';
import type { LastPrices } from '../ticks/lastPrices.js';

export const systemPortfolio = '_engine';
import { shardThreadsStandby } from './threads.js';

export { shardThreadsStandby } from './threads.js';
/** Per-portfolio seqs of boot epoch e start at e * seqEpochSize (2^32 changes per portfolio and epoch). */
export const seqEpochSize = 2 ** 32;

export interface PoolDeps {
  o: ResolvedOptions;
  clock: Clock;
  life: Lifecycle;
  counters: EngineCounters;
  store: Store;
  symbols: SymbolTable;
  prices: LastPrices;
  /** The stations a shard's messages go to (wired by the engine facade). */
  persist: (events: ShardEvent[], trades?: { portfolio_id: string; trade_id: string; result: unknown }[]) => Promise<void>;
  /** The same for events a shard wrote as bytes (store/log.ts EncodedEvents), with their trade results. */
  persistEncoded: (events: EncodedEvents, trades?: { portfolio_id: string; trade_id: string; result: unknown; bin?: Uint8Array }[]) => Promise<void>;
  durable: () => Promise<void>;
  /** One portfolio's binary delta, to its listeners (src/engine/deltas.ts). */
  deliver: (d: Delta) => void;
  batchDone: (batch: number) => void;
  /** A shard revalued the rest of its book (no pass pending any more): drain() may be over. */
  settled: () => void;
  resendPrices: (h: ShardHandle) => void;
  resyncShard: (h: ShardHandle) => Promise<void>;
  scheduleFlush: () => void;
  /** Instrument multipliers every (re)started shard gets before any command (instruments.ts). */
  multipliers: () => { symbol: string; multiplier: number }[];
  /** The start's progress, begun before the data directory was locked and opened (its first marks). */
  progress?: RecoveryProgress;
}

export class ShardPool {
  readonly shards: ShardHandle[] = [];
  private readonly supervisors: Supervisor[] = [];
  private nextRequest = 1;
  /** Snapshot rounds' record requests by request number; a shard that dies answers its own null. */
  private readonly recordRequests = new Map<number, { shard: number; done: (answer: { records: PortfolioRecord[]; segments: Uint8Array[] } | null) => void }>();
  /** Recovery's progress (the CLI's progress line, /ready while starting). */
  readonly progress: RecoveryProgress;
  /** The engine's start: supervisors only spawn workers, recoverAll loads them together. */
  private firstStart: { floor: number } | null = null;
  private readonly loadRequests = new Map<number, () => void>();
  /** Reports of shards reading their own tail (recovery.ts replayTails), by request. */
  private readonly tailRequests = new Map<number, (report: TailReport) => void>();
  private readonly metricRequests = new Map<number, (metrics: unknown[]) => void>();
  /** Answers of 'dropped' and 'adopted' (a cluster partition leaving or joining the shards), by request. */
  private readonly bookRequests = new Map<number, { shard: number; done: (answer: { portfolios: number; error: string | null } | null) => void }>();

  constructor(
    private readonly pool: Piscina,
    private readonly d: PoolDeps,
  ) {
    this.progress = d.progress ?? new RecoveryProgress();
    for (let i = 0; i < d.o.workers; i++) {
      const h = new ShardHandle(i, d.o.limits.commandsQueuedPerShardMax, d.o.limits.commandsPerMessageMax);
      this.shards.push(h);
      this.supervisors.push(new Supervisor(this.supervised(h), { restartDelayMs: 0, stopping: () => d.life.closing }));
    }
  }

  /**
   * The engine's start: a new seq epoch, every worker up while the snapshots are read, then all
   * shards loaded in parallel from one pass over the log (recovery.ts recoverAll).
   */
  async startAll(directory: Directory): Promise<void> {
    const { floor, cleanSnapshot } = await this.nextSeqFloor();
    this.progress.mark('seq epoch durable');
    this.firstStart = { floor };
    const spawned = Promise.all(this.supervisors.map((s) => s.start()));
    try {
      await recoverAll(this.recoveryHost(cleanSnapshot), directory, this.shards, spawned.then(() => undefined));
    } finally {
      this.firstStart = null;
    }
    for (const h of this.shards) h.state = 'ready';
    this.progress.phase = 'ready';
    this.progress.readyMs = performance.now();
  }

  private supervised(h: ShardHandle): SupervisedWorker {
    return {
      start: (died) => (this.firstStart !== null ? this.spawnShard(h, this.firstStart.floor, died) : this.restartShard(h, died)),
      onDeath: () => this.onShardDied(h),
      onRestarted: (err, ms) => this.onShardRestarted(h, err, ms),
    };
  }

  private recoveryHost(cleanSnapshot = false): RecoveryHost {
    return {
      cleanSnapshot,
      store: this.d.store,
      symbols: this.d.symbols,
      lastPrice: this.d.prices.lastPrice,
      lastPriceTs: this.d.prices.lastPriceTs,
      workers: this.d.o.workers,
      fxPivot: this.d.o.fxPivot,
      nextRequest: () => this.nextRequest++,
      loadRequests: this.loadRequests,
      tailRequests: this.tailRequests,
      announceSymbols: () => this.announceSymbols(),
      progress: this.progress,
    };
  }

  /** A new boot epoch, durable before any shard shows a seq of it: seqs never go back (takeSeqEpoch). */
  private async nextSeqFloor(): Promise<{ floor: number; cleanSnapshot: boolean }> {
    const { epoch, cleanSnapshot } = this.d.store.takeSeqEpoch();
    await this.d.store.append([]).durable;
    return { floor: epoch * seqEpochSize, cleanSnapshot };
  }

  /** Starts a worker for the shard; resolves when it is up and has the instruments (not loaded). */
  private async spawnShard(h: ShardHandle, seqFloor: number, died: (err: unknown) => void): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    h.state = 'starting';
    h.batchesInFlight = [];
    h.unsettled = false;
    h.symbolTableSent = false;
    h.routes.reset();
    let readyResolve!: () => void;
    const isReady = new Promise<void>((resolve) => (readyResolve = resolve));
    h.attach(port1, (msg) => {
      if (msg.t === 'ready') readyResolve();
      else this.onShardMessage(h, msg);
    });
    const init = {
      shard: h.index,
      shards: this.d.o.workers,
      kernel: this.d.o.kernel,
      positionsPerPortfolioMax: this.d.o.limits.positionsPerPortfolioMax,
      portfoliosMax: this.d.o.limits.portfoliosMax,
      symbolsMax: this.d.o.limits.symbolsMax,
      staleAfterMs: this.d.o.staleAfterMs,
      fxPivot: this.d.o.fxPivot,
      unwatchedRevalueIntervalMs: this.d.o.unwatchedRevalueIntervalMs,
      unwatchedRowsPerSliceMax: this.d.o.unwatchedRowsPerSliceMax,
      seqFloor,
    };
    const task = this.pool.run({ init, port: port2 }, { transferList: [port2] as never });
    // Its death is the task's rejection (piscina: an uncaught error at once, an exit once the thread's
    // heap is torn down). Not the earlier close of its port: a restart begun then loads beside that
    // teardown and was measured slower than one that waits for it (its kernel allocation and page
    // faults took longer, likely waiting on the process's memory map while the dead heap is
    // unmapped: docs/BENCHMARKS.md "Restart, seventh session (load)").
    task.then(
      () => undefined,
      (err: unknown) => {
        port1.close();
        died(err);
      },
    );
    await isReady;
    // Before any command: trades book at these multipliers (replay uses each event's own).
    h.post({ t: 'instruments', instruments: this.d.multipliers() });
  }

  /** A supervised restart: a new worker, loaded from its snapshot and the log after it. */
  private async restartShard(h: ShardHandle, died: (err: unknown) => void): Promise<void> {
    const { floor } = await this.nextSeqFloor();
    this.progress.mark(`shard ${h.index} restart: seq epoch durable`);
    await this.spawnShard(h, floor, died);
    this.progress.mark(`shard ${h.index} restart: worker ready`);
    await recoverShard(this.recoveryHost(), h);
    h.state = 'ready';
  }

  /** Its commands are answered shard_restarting; the restart waits until what was persisted is durable. */
  private async onShardDied(h: ShardHandle): Promise<void> {
    this.progress.mark(`shard ${h.index} restart: death seen`);
    h.state = 'restarting';
    h.restarts++;
    this.d.counters.shardRestarts++;
    // Its batches will never be answered: they end here, for this shard (the others answer theirs).
    const lost = h.batchesInFlight;
    h.batchesInFlight = [];
    h.unsettled = false;
    for (const b of lost) this.d.batchDone(b);
    this.d.settled();
    h.failAll(shardRestartingError(h.index));
    for (const [request, r] of this.bookRequests) {
      if (r.shard !== h.index) continue;
      this.bookRequests.delete(request);
      r.done(null);
    }
    // A round waiting for its records would wait forever (and hold the next timed round back).
    for (const [request, r] of this.recordRequests) {
      if (r.shard !== h.index) continue;
      this.recordRequests.delete(request);
      r.done(null);
    }
    await this.d.durable().catch(() => undefined);
    this.progress.mark(`shard ${h.index} restart: its events durable`);
  }

  private async onShardRestarted(h: ShardHandle, err: unknown, restartMs: number): Promise<void> {
    const reason = err instanceof Error ? err.message : String(err);
    this.d.counters.lastRestartMs = restartMs;
    this.d.persist([{ type: 'ShardRestarted', shard: h.index, reason, portfolio_id: systemPortfolio, ts: this.d.clock.now() }]);
    this.d.resendPrices(h);
    await this.d.resyncShard(h);
    this.d.scheduleFlush();
  }

  // ---- shard messages ------------------------------------------------------------------------

  private onShardMessage(h: ShardHandle, msg: FromShard): void {
    const counters = this.d.counters;
    switch (msg.t) {
      case 'revalued':
        h.batchesInFlight.shift();
        counters.positionsRevalued += msg.positionsRevalued;
        counters.portfoliosRevalued += msg.portfoliosRevalued;
        counters.setOpenPositions(h.index, msg.openPositions);
        for (const b of msg.breaches) counters.riskBreach(b.limit);
        if (msg.events.length > 0) this.d.persist(msg.events);
        // Bytes routed: the records are read where the shard wrote them (src/engine/deltas.ts).
        if (msg.deltaIndex.length > 0) h.routes.forEach(msg.deltas, msg.deltaIndex, this.d.deliver);
        h.unsettled = msg.pending;
        this.d.batchDone(msg.batch);
        break;
      case 'deltas':
        // A released hold's catch-up deltas (Shard.hold): from_seq covers the ones the shard skipped.
        h.routes.forEach(msg.deltas, msg.deltaIndex, this.d.deliver);
        break;
      case 'settled':
        // The rest of the book after the watched first (Shard.settle): its events follow the batches' in the log.
        counters.positionsRevalued += msg.positionsRevalued;
        counters.portfoliosRevalued += msg.portfoliosRevalued;
        counters.setOpenPositions(h.index, msg.openPositions);
        for (const b of msg.breaches) counters.riskBreach(b.limit);
        if (msg.events.length > 0) this.d.persist(msg.events);
        h.unsettled = false;
        this.d.settled();
        break;
      case 'results':
        if (msg.eventBytes !== undefined) {
          this.encodedResults(h, msg);
          break;
        }
        for (const r of msg.results) {
          // A corporate step's results are logged together, all shards in one append (corporateDesk.ts).
          if (r.holders !== undefined) {
            h.resolve(r);
            continue;
          }
          const trades = r.trade === null ? undefined : [{ portfolio_id: r.trade.portfolio_id, trade_id: r.trade.trade_id, result: r.trade }];
          if (r.events.length > 0) r.durable = this.d.persist(r.events, trades);
          if (r.update !== null) this.d.deliver(deltaOf(r.update));
          h.resolve(r);
        }
        break;
      case 'tradeChunkDone':
        // Its events are logged by the import station as the answer is read (bulkImport.ts), then the watchers' deltas go.
        h.chunkAnswered(msg);
        for (const u of msg.updates) this.d.deliver(deltaOf(u));
        break;
      case 'records':
        this.recordRequests.get(msg.request)?.done(msg);
        this.recordRequests.delete(msg.request);
        break;
      case 'loaded':
        if (this.progress.shardWork.length < phaseMarksMax) this.progress.shardWork.push(msg.work);
        this.loadRequests.get(msg.request)?.();
        this.loadRequests.delete(msg.request);
        break;
      case 'tail':
        // The entry is removed by its handler once the report says done.
        this.tailRequests.get(msg.request)?.(msg.report);
        break;
      case 'metrics':
        this.metricRequests.get(msg.request)?.(msg.metrics);
        this.metricRequests.delete(msg.request);
        break;
      case 'dropped':
      case 'adopted':
        this.bookRequests.get(msg.request)?.done({ portfolios: msg.portfolios, error: msg.t === 'adopted' ? msg.error : null });
        this.bookRequests.delete(msg.request);
        break;
      case 'ready':
        break;
    }
  }

  /**
   * Results whose applied trades' events came as bytes (Shard.commandsAnswer): a run of such results is
   * logged in one append (persistEncoded: the bytes as they are, their result bodies as the shard
   * encoded them), and a result with events as objects in its place, so every event takes its seq in
   * the order the shard applied it; then each result is delivered and resolved in order, its durable set.
   */
  private encodedResults(h: ShardHandle, msg: Extract<FromShard, { t: 'results' }>): void {
    const bytes = msg.eventBytes as Uint8Array;
    const ends = msg.eventEnds as Int32Array;
    const codes = msg.eventTypes as Uint8Array;
    const bodies = msg.bodyBytes as Uint8Array;
    const bodyEnds = msg.bodyEnds as Int32Array;
    const results = msg.results;
    const ts = new Float64Array(ends.length);
    let next = 0;
    let body = 0;
    // The run of results logged as bytes not yet appended: from result runFrom, events from runEvent.
    let runFrom = -1;
    let runEvent = 0;
    let portfolio: string[] = [];
    let type: DomainEventType[] = [];
    let trades: { portfolio_id: string; trade_id: string; result: unknown; bin: Uint8Array }[] = [];
    const flushRun = (to: number): void => {
      if (runFrom < 0) return;
      const durable = this.d.persistEncoded(
        { bytes, start: runEvent === 0 ? 0 : ends[runEvent - 1], ends: ends.subarray(runEvent, next), objects: [], portfolio, type, ts: ts.subarray(runEvent, next) },
        trades,
      );
      for (let i = runFrom; i < to; i++) if ((results[i].eventCount ?? 0) > 0) results[i].durable = durable;
      runFrom = -1;
      portfolio = [];
      type = [];
      trades = [];
    };
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      const n = r.eventCount ?? 0;
      if (n > 0) {
        const trade = r.trade as TradeResult;
        if (runFrom < 0) {
          runFrom = i;
          runEvent = next;
        }
        for (let k = next; k < next + n; k++) {
          portfolio.push(trade.portfolio_id);
          type.push(domainEventTypes[codes[k]]);
          ts[k] = r.eventsTs as number;
        }
        next += n;
        // Its body as the shard encoded it (the store keeps the bytes; the object is the ack's).
        trades.push({ portfolio_id: trade.portfolio_id, trade_id: trade.trade_id, result: trade, bin: bodies.subarray(body === 0 ? 0 : bodyEnds[body - 1], bodyEnds[body]) });
        body++;
      } else if (r.holders === undefined && r.events.length > 0) {
        flushRun(i);
        r.durable = this.d.persist(r.events, r.trade === null ? undefined : [{ portfolio_id: r.trade.portfolio_id, trade_id: r.trade.trade_id, result: r.trade }]);
      }
    }
    flushRun(results.length);
    for (const r of results) {
      if (r.holders === undefined && r.update !== null) this.d.deliver(deltaOf(r.update));
      h.resolve(r);
    }
  }

  announceSymbols(): void {
    const fresh = this.d.symbols.takeUnannounced();
    if (fresh === null) return;
    // A worker still starting gets these with the whole table when its recovery begins: sent now, they
    // arrived first and its "symbols in order" assertion killed it (found by the simulator, seed 3).
    for (const h of this.shards) if (h.symbolTableSent) h.post({ t: 'symbols', from: fresh.from, names: fresh.names });
  }

  /**
   * The shard's portfolio records and its columnar snapshot segments, taken at one instant (a snapshot
   * round); null when the shard died before it answered. segmentsOnly: the segments alone (an export,
   * which writes no record: a shard marks the books whose records it hands out as recorded).
   */
  records(h: ShardHandle, now: number, segmentsOnly = false): Promise<{ records: PortfolioRecord[]; segments: Uint8Array[] } | null> {
    const request = this.nextRequest++;
    return new Promise((resolve) => {
      this.recordRequests.set(request, { shard: h.index, done: resolve });
      h.post({ t: 'records', request, now, segmentsOnly });
    });
  }

  /**
   * Books leave (drop) or join (adopt) every shard: answers each shard's count, or null for a shard
   * that is not ready (or died before answering: its restart reloads it from the store).
   */
  books(msg: { t: 'drop'; ids: string[] } | { t: 'adopt'; segments: Uint8Array[] }): Promise<({ portfolios: number; error: string | null } | null)[]> {
    return Promise.all(
      this.shards.map(
        (h) =>
          new Promise<{ portfolios: number; error: string | null } | null>((resolve) => {
            if (h.state !== 'ready') return resolve(null);
            const request = this.nextRequest++;
            this.bookRequests.set(request, { shard: h.index, done: resolve });
            h.post(msg.t === 'drop' ? { t: 'drop', request, ids: msg.ids.filter((id) => shardOf(id, this.d.o.workers) === h.index) } : { t: 'adopt', request, segments: msg.segments });
          }),
      ),
    );
  }

  // ---- introspection and fault injection -----------------------------------------------------

  shardStats(): { shard: number; state: string; queueDepth: number; restarts: number }[] {
    return this.shards.map((h) => ({ shard: h.index, state: h.state, queueDepth: h.queueDepth, restarts: h.restarts }));
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

  /** Live shard worker threads running a shard (the booted standby, shardThreadsStandby, not counted; 0 once closed). */
  get threads(): number {
    return Math.max(0, this.pool.threads.length - shardThreadsStandby);
  }

  get utilization(): number {
    return this.pool.utilization;
  }

  crashShard(shard: number, how: 'throw' | 'exit' | 'heap' = 'exit'): Result<void> {
    if (!this.d.o.allowFaultInjection) return fail(ErrorCode.forbidden, 'fault injection is disabled (allowFaultInjection)');
    // Both checked: this.shards['0'] is shard 0, and an unknown `how` would reach the worker's heap hog
    // (found by the simulator, seed 1).
    if (how !== 'throw' && how !== 'exit' && how !== 'heap') return fail(ErrorCode.invalid_field, "how must be 'throw', 'exit' or 'heap'", 'how');
    const h = Number.isInteger(shard) ? this.shards[shard] : undefined;
    if (h === undefined || h.state !== 'ready') return fail(ErrorCode.invalid_field, `shard must be a ready shard in [0, ${this.d.o.workers})`, 'shard');
    h.post({ t: 'crash', how });
    return ok(undefined);
  }

  /** Answers what waits, stops every shard and the pool (the engine's last step before the store). */
  async stop(): Promise<void> {
    for (const h of this.shards) {
      h.failAll(engineClosed().error);
      h.state = 'stopped';
      h.post({ t: 'stop' });
    }
    await this.pool.close({ force: false }).catch(() => undefined);
    await this.pool.destroy().catch(() => undefined);
  }
}
