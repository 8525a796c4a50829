// Bulk import: a chunk of validated trades (server/tradeImport.ts cut and validated them at the
// boundary) booked per shard as one packed message each (shard/tradeChunk.ts), logged in one append
// per shard as the shard's answer is read, answered once every booking of the chunk is durable: one
// promise per chunk, not per trade. The state it owns: the chunk numbers; the ids in flight are
// Commit's (importsInFlight), so the single-trade path and the import never book one id twice.
//
// What is rare takes the single-trade path (Commit.tradeValidated) inside the chunk: a dry run, an id
// another booking holds right now, an id known only from a shipped snapshot.

import { performance } from 'node:perf_hooks';
import { ErrorCode, shardRestartingError, type EngineError, type Result } from '../errors.js';
import type { Clock, TradeResult } from '../domain/types.js';
import { instrumentCurrencyError } from '../domain/instruments.js';
import { baseCurrencyDefault } from '../domain/types.js';
import { encodeTradeChunk, ChunkKind } from '../shard/tradeChunk.js';
import type { TradeChunkAnswer } from '../shard/protocol.js';
import { ImportKind, type ImportAnswers, type ImportItem } from './api.js';
import { isCarriedId, type Commit, type ImportedResult } from './commit.js';
import { domainEventTypes, type DomainEventType } from '../domain/types.js';
import type { EncodedEvents } from '../store/store.js';
import type { Directory } from './directory.js';
import type { InstrumentTable } from './instruments.js';
import type { Lifecycle } from './lifecycle.js';
import type { ResolvedOptions } from './options.js';
import type { ShardPool } from './shards/pool.js';
import { shardOf } from './shardOf.js';
import type { SymbolTable } from './symbols.js';

export interface BulkImportDeps {
  o: ResolvedOptions;
  clock: Clock;
  life: Lifecycle;
  directory: Directory;
  symbols: SymbolTable;
  pool: ShardPool;
  instruments: InstrumentTable;
  commit: Commit;
  /** The store is behind its bound (Store.overloaded). */
  overloaded: () => boolean;
}

/** One chunk on its way: its answers are filled in place as the shards answer. */
interface Chunk {
  items: readonly ImportItem[];
  answers: ImportAnswers;
  /** Per item: the index of the first item of the chunk with its id (a duplicate of it), else -1. */
  sameAs: Int32Array;
}

export class BulkImport {
  private nextChunk = 1;

  constructor(private readonly d: BulkImportDeps) {}

  async importTrades(items: readonly ImportItem[]): Promise<ImportAnswers> {
    const started = performance.now();
    const n = items.length;
    const c: Chunk = { items, answers: { kinds: new Uint8Array(n), realized: new Float64Array(n), errors: new Map() }, sameAs: new Int32Array(n).fill(-1) };
    if (this.d.life.closing) return this.refuseAll(c, { code: ErrorCode.engine_closed, message: 'engine is closed' }, started);
    await this.d.life.ready;
    // Backpressure, not refusal: the import waits for the store instead of answering store_behind.
    if (this.d.overloaded()) await this.d.commit.durable().catch(() => undefined);
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const perShard: number[][] = this.d.pool.shards.map(() => []);
    const slow: Promise<void>[] = [];
    const firstOf = new Map<string, number>();
    const mine: string[] = [];
    for (let i = 0; i < n; i++) {
      const { portfolio, trade } = items[i];
      if (!this.d.directory.has(portfolio)) {
        this.refuse(c, i, { code: ErrorCode.portfolio_not_found, message: `portfolio '${portfolio}' not found`, field: 'portfolio_id' });
        continue;
      }
      const key = portfolio + '\u0000' + trade.trade_id;
      const first = firstOf.get(key);
      if (first !== undefined) {
        c.sameAs[i] = first;
        continue;
      }
      firstOf.set(key, i);
      if (trade.dry_run === true) {
        slow.push(this.single(c, i));
        continue;
      }
      const known = this.d.commit.known(key, portfolio, trade.trade_id);
      if (known !== null && 'busy' in known) {
        slow.push(known.busy.then(() => this.single(c, i)));
        continue;
      }
      if (known !== null) {
        if (isCarriedId(known.stored)) slow.push(this.single(c, i));
        else this.duplicate(c, i, (known.stored as TradeResult | ImportedResult).realized_pnl);
        continue;
      }
      const refused = this.admit(portfolio, items[i]);
      if (refused !== null) {
        this.refuse(c, i, refused);
        continue;
      }
      this.d.commit.importsInFlight.set(key, settled);
      mine.push(key);
      perShard[shardOf(portfolio, this.d.o.workers)].push(i);
    }
    this.d.pool.announceSymbols();
    const parts: Promise<void>[] = [];
    for (let s = 0; s < perShard.length; s++) if (perShard[s].length > 0) parts.push(this.book(c, s, perShard[s]));
    try {
      await Promise.all(parts);
      await Promise.all(slow);
    } finally {
      for (const key of mine) if (this.d.commit.importsInFlight.get(key) === settled) this.d.commit.importsInFlight.delete(key);
      settle();
    }
    this.sameAsFirst(c);
    this.count(c, started);
    return c.answers;
  }

  /** The instrument's currency and the symbol table, as the single-trade path checks them; null: admitted. */
  private admit(portfolio: string, item: ImportItem): EngineError | null {
    const trade = item.trade;
    const instrument = this.d.instruments.get(trade.symbol);
    const clash = instrumentCurrencyError(instrument, trade.currency);
    if (clash !== null) return clash.error;
    if (instrument !== undefined) trade.currency = instrument.currency;
    if (this.d.symbols.intern(trade.symbol) < 0) return { code: ErrorCode.limit_exceeded, message: `symbols must be <= ${this.d.o.limits.symbolsMax}`, field: 'symbol' };
    const base = this.d.directory.get(portfolio)?.base ?? baseCurrencyDefault;
    if (trade.currency !== null && trade.currency !== base && !this.d.symbols.internConversion(trade.currency, base, this.d.o.fxPivot)) {
      return { code: ErrorCode.limit_exceeded, message: `symbols must be <= ${this.d.o.limits.symbolsMax}`, field: 'currency' };
    }
    return null;
  }

  /**
   * One shard's part of the chunk: posted as one packed buffer; its events and compact results are
   * appended as its answer is read (log order is message order); resolves once that append is durable.
   */
  private book(c: Chunk, shard: number, indices: number[]): Promise<void> {
    const h = this.d.pool.shards[shard];
    if (h.state !== 'ready') {
      for (const i of indices) this.refuse(c, i, shardRestartingError(h.index));
      return Promise.resolve();
    }
    const trades = indices.map((i) => c.items[i]);
    const bytes = encodeTradeChunk(trades);
    return new Promise<void>((resolve) => {
      const posted = h.submitChunk(this.nextChunk++, bytes, indices.length, this.d.clock.now(), (a) => resolve(this.answered(c, indices, a)));
      if (!posted) {
        for (const i of indices) this.refuse(c, i, { code: ErrorCode.limit_exceeded, message: `commands queued per shard must be <= ${h.commandsQueuedMax}`, retryable: true });
        resolve();
      }
    });
  }

  /** Runs as the shard's answer is read: the answers in place, the events and results appended at once. */
  private answered(c: Chunk, indices: number[], a: TradeChunkAnswer): Promise<void> {
    if (a.failed !== undefined) {
      for (const i of indices) this.refuse(c, i, a.failed);
      return Promise.resolve();
    }
    const { kinds, realized } = c.answers;
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      if (a.kinds[k] !== ChunkKind.applied) continue;
      kinds[i] = ImportKind.applied;
      realized[i] = a.realized[k];
    }
    for (const e of a.errors) this.refuse(c, indices[e.i], e.error);
    const n = a.eventEnds.length;
    if (n === 0) return Promise.resolve();
    // What the store keys the shard's bytes by: portfolio and trade id from the chunk's own items,
    // the type from its code; an applied trade's result is derived from its TradeExecuted (no body).
    const portfolio: string[] = new Array(n);
    const type: DomainEventType[] = new Array(n);
    const tradeIds: (string | null)[] = new Array(n);
    const eventRealized = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const k = a.eventTrades[j];
      const item = c.items[indices[k]];
      portfolio[j] = item.portfolio;
      const t = domainEventTypes[a.eventTypes[j]];
      type[j] = t;
      if (t === 'TradeExecuted') {
        tradeIds[j] = item.trade.trade_id;
        eventRealized[j] = a.realized[k];
      } else tradeIds[j] = null;
    }
    const encoded: EncodedEvents = { bytes: a.eventBytes, ends: a.eventEnds, objects: a.eventObjects, portfolio, type, ts: new Float64Array(n).fill(a.now), tradeIds, realized: eventRealized };
    return this.d.commit.persistEncoded(encoded).then(
      () => undefined,
      (err: unknown) => {
        // Not durable: nothing of this part is acknowledged (the store refuses every later write too).
        for (let k = 0; k < indices.length; k++) {
          if (a.kinds[k] === ChunkKind.applied) this.refuse(c, indices[k], { code: ErrorCode.store_failed, message: `store commit failed: ${String(err)}` });
        }
      },
    );
  }

  /** A rare item through the single-trade path; its answer goes in place. */
  private async single(c: Chunk, i: number): Promise<void> {
    const { portfolio, trade } = c.items[i];
    const r: Result<TradeResult> = await this.d.commit.tradeValidated(portfolio, trade);
    if (!r.ok) this.refuse(c, i, r.error);
    else if (!r.value.applied) this.duplicate(c, i, r.value.realized_pnl);
    else {
      c.answers.kinds[i] = ImportKind.applied;
      c.answers.realized[i] = r.value.realized_pnl;
    }
    // Counted by tradeChecked already: count() skips it.
    c.sameAs[i] = -2;
  }

  /** A later item of the chunk with an id an earlier one had: what the first came to, as a duplicate (an error stays one). */
  private sameAsFirst(c: Chunk): void {
    const { kinds, realized, errors } = c.answers;
    for (let i = 0; i < c.sameAs.length; i++) {
      const f = c.sameAs[i];
      if (f < 0) continue;
      if (kinds[f] === ImportKind.error) this.refuse(c, i, errors.get(f) as EngineError);
      else this.duplicate(c, i, realized[f]);
    }
  }

  private count(c: Chunk, started: number): void {
    const ms = performance.now() - started;
    const { kinds, errors } = c.answers;
    for (let i = 0; i < kinds.length; i++) {
      if (c.sameAs[i] === -2) continue;
      this.d.commit.counted(kinds[i] === ImportKind.applied ? 'ok' : kinds[i] === ImportKind.duplicate ? 'duplicate' : (errors.get(i) as EngineError).code, ms);
    }
  }

  private duplicate(c: Chunk, i: number, realized: number): void {
    c.answers.kinds[i] = ImportKind.duplicate;
    c.answers.realized[i] = realized;
  }

  private refuse(c: Chunk, i: number, error: EngineError): void {
    c.answers.kinds[i] = ImportKind.error;
    c.answers.realized[i] = 0;
    c.answers.errors.set(i, error);
  }

  private refuseAll(c: Chunk, error: EngineError, started: number): ImportAnswers {
    for (let i = 0; i < c.items.length; i++) this.refuse(c, i, error);
    this.count(c, started);
    return c.answers;
  }
}
