// Upkeep: the engine's timers. Snapshot rounds (each shard's records, written after and atomically
// with respect to the events they cover), retention compaction after each round, and the periodic
// flush of last prices.

import type { Clock } from '../domain/types.js';
import type { Store } from '../store/store.js';
import type { CorporateDesk } from './corporateDesk.js';
import type { EngineCounters } from './counters.js';
import type { Lifecycle } from './lifecycle.js';
import type { ResolvedOptions } from './options.js';
import type { ShardPool } from './shards/pool.js';
import type { SymbolTable } from './symbols.js';
import type { LastPrices } from './ticks/lastPrices.js';

/** Compaction steps per snapshot round: bounds the work one round does (each step is bounded too). */
const compactStepsPerRoundMax = 64;

export interface UpkeepDeps {
  o: ResolvedOptions;
  clock: Clock;
  life: Lifecycle;
  counters: EngineCounters;
  store: Store;
  symbols: SymbolTable;
  prices: LastPrices;
  pool: ShardPool;
  corporate: CorporateDesk;
}

export class Upkeep {
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly d: UpkeepDeps) {}

  /** A round the timers started and that has not ended: the next one waits for it (never two at once). */
  private timedRound: Promise<void> | null = null;

  start(): void {
    this.timers.push(setInterval(() => this.timed(), this.d.o.snapshotIntervalMs).unref());
    this.timers.push(
      setInterval(() => {
        this.flushPrices();
        if (this.tailEvents() >= this.d.o.snapshotTailEventsMax) this.timed();
      }, this.d.o.pricesFlushIntervalMs).unref(),
    );
  }

  /**
   * Events logged after the oldest covered seq of the last columnar generation (all of them before
   * the first): what a shard restart would replay.
   */
  tailEvents(): number {
    const pointer = this.d.store.shardSnapshotPointer();
    return this.d.store.lastSeq() - (pointer === undefined ? 0 : Math.min(...pointer.covered));
  }

  /** A timer's round (interval or tail bound) and the compaction after it, unless one still runs. */
  private timed(): void {
    if (this.timedRound !== null || this.d.life.closing) return;
    this.timedRound = this.snapshotAll()
      .then(() => this.compact())
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => (this.timedRound = null));
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
  }

  /**
   * Each shard's records and columnar segments, written after (and atomically with respect to) the
   * events they cover. clean: the engine's last round before a clean shutdown (its seqs are exact).
   * alongside: writes enqueued synchronously with the generation, so they commit in its transaction
   * (a taken-over partition's stream cursor); called only when the round is complete. Answers whether
   * the columnar generation was written.
   */
  async snapshotAll(clean = false, alongside?: () => void): Promise<boolean> {
    if (this.d.life.closed) return false;
    // Records asked for during a corporate step would include it before its events are appended, so
    // their covered_seq would replay it twice: wait. From here the requests are posted synchronously.
    while (this.d.corporate.holding) await this.d.corporate.idle();
    const asOf = this.d.clock.now();
    const started = performance.now();
    const rounds = await Promise.all(
      this.d.pool.shards.map(async (h) => {
        if (h.state !== 'ready') return null;
        const answer = await this.d.pool.records(h, asOf);
        if (answer === null) return null;
        // Every event this shard emitted before its records was appended when its message arrived,
        // so the store's last seq covers them all.
        const covered = this.d.store.lastSeq();
        for (const r of answer.records) r.covered_seq = covered;
        const bytes = answer.segments.reduce((n, b) => n + b.byteLength, 0);
        return { covered, segments: answer.segments, bytes, records: answer.records.length, written: this.d.store.writeSnapshots(answer.records) };
      }),
    );
    // The columnar generation (what recovery reads) needs every shard of one round; a round that
    // missed a restarting shard keeps the previous generation.
    const complete = rounds.every((r) => r !== null) && !this.d.life.closed;
    if (complete) alongside?.();
    const columnar = complete
      ? this.d.store.writeShardSnapshots({ as_of: asOf, clean, covered: rounds.map((r) => r!.covered), shards: rounds.map((r) => r!.segments) })
      : null;
    await Promise.all([...rounds.map((r) => r?.written), columnar]);
    if (complete) {
      // A round's cost (docs/STORE.md "Shard restart": what the tail bound costs during a trade load).
      const c = this.d.counters;
      c.snapshotRounds++;
      c.lastSnapshotRoundMs = performance.now() - started;
      c.lastSnapshotRoundBytes = rounds.reduce((n, r) => n + r!.bytes, 0);
      c.lastSnapshotRoundRecords = rounds.reduce((n, r) => n + r!.records, 0);
    }
    return complete;
  }

  /** Retention: drop events every snapshot covers and older than retainEventsMs (off by default: audit). */
  async compact(): Promise<number> {
    if (this.d.o.retainEventsMs === null || this.d.life.closing) return 0;
    // The store compacts in bounded steps (no long stall of the main thread); loop while it has more.
    let removed = 0;
    for (let step = 0; step < compactStepsPerRoundMax && !this.d.life.closing; step++) {
      const r = await this.d.store.compact(this.d.clock.now()).catch(() => ({ removed: 0, more: false }));
      removed += r.removed;
      if (!r.more) break;
    }
    return removed;
  }

  flushPrices(): void {
    const { symbols, prices } = this.d;
    const out: { symbol: string; price: number; ts: number }[] = [];
    for (let id = 0; id < symbols.size; id++) {
      if (prices.priceDirty[id] === 0) continue;
      prices.priceDirty[id] = 0;
      out.push({ symbol: symbols.names[id], price: prices.lastPrice[id], ts: prices.lastPriceTs[id] });
    }
    if (out.length > 0) void this.d.store.savePrices(out).catch(() => undefined);
  }
}
