// Tick intake: where a tick enters the engine. Validates it, refuses pre-split prints, interns its
// symbol, holds suspect jumps (suspectTicks.ts), records it on the tape for bars, and hands it to the
// coalescer; the lockstep (lockstep.ts) takes it from there.

import { performance } from 'node:perf_hooks';
import { engineClosed, ErrorCode, type Result } from '../../errors.js';
import { priceError, validSymbol } from '../../domain/validate.js';
import type { Clock, TickInput } from '../../domain/types.js';
import type { ShardEvent } from '../../shard/protocol.js';
import type { HeldTickRecord } from '../../store/store.js';
import type { HeldTick, SettledTick, TickIngestResult } from '../api.js';
import type { Coalescer } from '../coalescer.js';
import type { EngineCounters } from '../counters.js';
import type { Lifecycle } from '../lifecycle.js';
import type { ResolvedOptions } from '../options.js';
import { SuspectTicks } from '../suspectTicks.js';
import type { SymbolTable } from '../symbols.js';
import { TickTape, type TapeListener } from '../tickTape.js';
import type { LastPrices } from './lastPrices.js';
import type { Lockstep } from './lockstep.js';

export interface IntakeDeps {
  o: ResolvedOptions;
  clock: Clock;
  life: Lifecycle;
  counters: EngineCounters;
  symbols: SymbolTable;
  coalescer: Coalescer;
  prices: LastPrices;
  lockstep: Lockstep;
  persist: (events: ShardEvent[]) => Promise<void>;
  /** Where held suspect ticks are kept across restarts (store setHeldTick). */
  rememberHeld: (symbol: string, held: HeldTickRecord | null) => void;
}

export class TickIntake {
  /** Between validation and the coalescer: holds ticks that jump too far. */
  private readonly suspect: SuspectTicks;
  tape: TickTape | null = null;

  constructor(private readonly d: IntakeDeps) {
    this.suspect = new SuspectTicks(d.o.limits.symbolsMax, d.o.suspectMovePct, {
      symbols: d.symbols,
      coalescer: d.coalescer,
      counters: d.counters,
      clock: d.clock,
      tape: () => this.tape,
      persist: (events) => d.persist(events),
      remember: (symbol, held) => d.rememberHeld(symbol, held),
      scheduleFlush: () => d.lockstep.scheduleFlush(),
    });
  }

  /** A restored or applied price is the reference the next tick of its symbol is judged against. */
  applied(id: number, price: number): void {
    this.suspect.applied(id, price);
  }

  /** Suspect ticks held when the engine last ran, held again (after the restored prices). */
  restoreHeld(held: readonly HeldTickRecord[]): void {
    this.suspect.restore(held);
  }

  ingestTick(symbol: string, price: number, ts: number, size?: number): string | null {
    const { symbols, coalescer, counters, lockstep } = this.d;
    if (this.d.life.closing) return this.rejectTick(ErrorCode.engine_closed);
    let id = symbols.idOf(symbol);
    if (id === undefined && !validSymbol(symbol)) return this.rejectTick(ErrorCode.invalid_symbol);
    if (priceError(price) !== null) return this.rejectTick(ErrorCode.invalid_price);
    if (!(ts >= 0 && ts <= 8.64e15)) return this.rejectTick(ErrorCode.invalid_timestamp);
    if (size !== undefined && !(size >= 0 && size < Infinity)) return this.rejectTick(ErrorCode.invalid_quantity);
    if (id !== undefined && ts < this.d.prices.splitTs[id]) return this.rejectTick(ErrorCode.pre_split_tick);
    // Registered only once the whole tick is valid: a refused tick must not use up symbolsMax
    // (found by the simulator, seed 2).
    if (id === undefined) {
      id = symbols.intern(symbol);
      if (id < 0) return this.rejectTick(ErrorCode.limit_exceeded);
    }
    counters.ticksReceived++;
    // A suspect tick is held here, off the tape too (bars see a held print only once it is confirmed).
    if (this.suspect.judge(id, price, ts, size ?? NaN)) return null;
    this.tape?.record(id, price, ts, size ?? NaN);
    if (!coalescer.add(id, price, ts, performance.now())) {
      counters.ticksStale++;
      // Stale for the shards, not for the tape (bars count late ticks): the next flush hands it off.
      if (this.tape !== null && !lockstep.flushScheduled) lockstep.scheduleFlush();
      return null;
    }
    this.suspect.applied(id, price);
    if (!lockstep.flushScheduled) lockstep.scheduleFlush();
    return null;
  }

  ingestTicks(ticks: readonly TickInput[]): TickIngestResult {
    const rejected: { index: number; code: string }[] = [];
    if (!Array.isArray(ticks)) return { accepted: 0, rejected: [{ index: -1, code: ErrorCode.invalid_field }], held: 0 };
    if (ticks.length > this.d.o.limits.ticksPerCallMax) return { accepted: 0, rejected: [{ index: -1, code: ErrorCode.limit_exceeded }], held: 0 };
    const now = this.d.clock.now();
    const heldBefore = this.d.counters.ticksHeld;
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
    return { accepted: ticks.length - rejected.length, rejected, held: this.d.counters.ticksHeld - heldBefore };
  }

  private rejectTick(code: string): string {
    this.d.counters.rejectTick(code);
    return code;
  }

  // ---- suspect ticks (src/engine/suspectTicks.ts) -----------------------------------------------

  /** Symbols holding a suspect tick now (the mtm_suspect_ticks_held gauge). */
  get suspectHeldCount(): number {
    return this.suspect.heldCount;
  }

  suspectTicks(): HeldTick[] {
    return this.suspect.list();
  }

  confirmSuspectTick(symbol: string): Promise<Result<SettledTick>> {
    if (this.d.life.closing) return Promise.resolve(engineClosed());
    return this.suspect.settleByAdmin(symbol, 'confirmed');
  }

  rejectSuspectTick(symbol: string): Promise<Result<SettledTick>> {
    if (this.d.life.closing) return Promise.resolve(engineClosed());
    return this.suspect.settleByAdmin(symbol, 'rejected');
  }

  rescaleMarkReference(symbol: string, factor: number): Result<void> {
    return this.suspect.rescale(symbol, factor);
  }

  // ---- the tape ------------------------------------------------------------------------------

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
}
