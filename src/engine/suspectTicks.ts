// The engine's side of the suspect-tick filter: turns the filter's verdicts (suspect.ts) into what the
// rest of the engine sees: audit events under '_market', counters, the tick tape (bars get a held
// print only once it is confirmed) and, for an admin's confirmation, the coalescer. The per-tick path
// (judge) reads typed arrays only; holding, settling and listing are rare and may allocate.

import { performance } from 'node:perf_hooks';
import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { validSymbol } from '../domain/validate.js';
import type { Clock } from '../domain/types.js';
import { marketPortfolio } from '../market/service.js';
import type { ShardEvent } from '../shard/protocol.js';
import type { HeldTick, SettledTick } from './api.js';
import type { Coalescer } from './coalescer.js';
import type { EngineCounters } from './counters.js';
import { CONFIRM, HOLD, PASS, REPLACE, SuspectFilter, movePctOf } from './suspect.js';
import type { SymbolTable } from './symbols.js';
import type { TickTape } from './tickTape.js';
import type { HeldTickRecord } from '../store/store.js';

export interface SuspectTicksDeps {
  symbols: SymbolTable;
  coalescer: Coalescer;
  counters: EngineCounters;
  clock: Clock;
  /** The engine's tape when bars are tapped (it comes and goes). */
  tape: () => TickTape | null;
  /** Appends events to the log; resolves once durable. */
  persist: (events: ShardEvent[]) => Promise<void>;
  /** Keeps the symbol's held tick (null: none) in the store, with the event persisted in the same turn. */
  remember: (symbol: string, held: HeldTickRecord | null) => void;
  scheduleFlush: () => void;
}

type Outcome = 'confirmed' | 'rejected';

export class SuspectTicks {
  private readonly filter: SuspectFilter;

  constructor(
    symbolsMax: number,
    movePct: number,
    private readonly d: SuspectTicksDeps,
  ) {
    this.filter = new SuspectFilter(symbolsMax, movePct);
  }

  /** Symbols holding a tick now. */
  get heldCount(): number {
    return this.filter.heldCount;
  }

  /**
   * Judges a valid tick before the coalescer. True: the tick is held (the caller stops there). False:
   * the caller applies it (a held tick it confirmed or rejected on the way is settled here).
   */
  judge(id: number, price: number, ts: number, size: number): boolean {
    // Only a tick that would move the mark is judged: an out-of-order one never does.
    if (!this.filter.enabled || this.d.coalescer.isStale(id, ts)) return false;
    const verdict = this.filter.check(id, price);
    if (verdict === PASS) return false;
    if (verdict === HOLD || verdict === REPLACE) {
      this.hold(id, price, ts, size);
      return true;
    }
    void this.settle(id, verdict === CONFIRM ? 'confirmed' : 'rejected', 'tick').catch(() => undefined);
    return false;
  }

  /** The price applied for the symbol (a passing tick, a restored price): the next reference. */
  applied(id: number, price: number): void {
    this.filter.applied(id, price);
  }

  /**
   * Holds again what the store kept (a restart, clean or not): after the restored prices, so each is
   * judged against the same reference as before. A symbol the table cannot take is left out.
   */
  restore(held: readonly HeldTickRecord[]): void {
    for (const h of held) {
      const id = this.d.symbols.intern(h.symbol);
      if (id < 0) continue;
      this.filter.hold(id, h.price, h.tick_ts, h.size ?? NaN);
    }
  }

  list(): HeldTick[] {
    return this.filter.list(this.d.symbols.names);
  }

  /** An admin's decision; resolves once its audit event is durable. */
  async settleByAdmin(symbol: unknown, outcome: Outcome): Promise<Result<SettledTick>> {
    const k = this.known(symbol);
    if (!k.ok) return k;
    const id = k.value;
    if (!this.filter.isHeld(id)) return fail(ErrorCode.suspect_tick_not_found, `no suspect tick is held for '${this.d.symbols.names[id]}'`, 'symbol');
    const price = this.filter.heldPriceOf(id);
    const ref = this.filter.refOf(id);
    const settled: SettledTick = { symbol: this.d.symbols.names[id], price, tick_ts: this.filter.heldTsOf(id), ref_price: ref, move_pct: movePctOf(price, ref), outcome };
    const failed = await this.settle(id, outcome, 'admin').then(
      () => null,
      (err: unknown) => err,
    );
    return failed === null ? ok(settled) : fail(ErrorCode.store_failed, `store commit failed: ${String(failed)}`);
  }

  rescale(symbol: unknown, factor: unknown): Result<void> {
    const k = this.known(symbol);
    if (!k.ok) return k;
    if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 0) return fail(ErrorCode.invalid_field, 'factor must be a finite number > 0', 'factor');
    this.filter.rescale(k.value, factor);
    if (this.filter.isHeld(k.value)) this.remember(k.value);
    return ok(undefined);
  }

  /** The symbol's held tick as it stands now, to the store. */
  private remember(id: number): void {
    const f = this.filter;
    const size = f.heldSizeOf(id);
    const symbol = this.d.symbols.names[id];
    this.d.remember(symbol, { symbol, price: f.heldPriceOf(id), tick_ts: f.heldTsOf(id), size: Number.isNaN(size) ? null : size });
  }

  private known(symbol: unknown): Result<number> {
    if (!validSymbol(symbol)) return fail(ErrorCode.invalid_symbol, 'symbol must be 1 to 32 characters of A-Z a-z 0-9 . _ : / -', 'symbol');
    const id = this.d.symbols.idOf(symbol);
    if (id === undefined) return fail(ErrorCode.symbol_not_found, `symbol '${symbol}' not found: it never ticked or traded here`, 'symbol');
    return ok(id);
  }

  private hold(id: number, price: number, ts: number, size: number): void {
    const ref = this.filter.refOf(id);
    this.filter.hold(id, price, ts, size);
    this.remember(id);
    this.d.counters.ticksHeld++;
    const event: ShardEvent = {
      type: 'SuspectTickHeld',
      symbol: this.d.symbols.names[id],
      price,
      ref_price: ref,
      move_pct: movePctOf(price, ref),
      tick_ts: ts,
      portfolio_id: marketPortfolio,
      ts: this.d.clock.now(),
    };
    void this.d.persist([event]).catch(() => undefined);
  }

  /**
   * Releases the held tick. Confirmed: the print was real, so bars get it; an admin's confirmation also
   * applies it (a confirming tick applies itself instead: it is the newer price). Rejected: dropped.
   */
  private settle(id: number, outcome: Outcome, by: 'tick' | 'admin'): Promise<void> {
    const f = this.filter;
    const price = f.heldPriceOf(id);
    const tickTs = f.heldTsOf(id);
    const size = f.heldSizeOf(id);
    const ref = f.refOf(id);
    f.release(id);
    this.d.remember(this.d.symbols.names[id], null);
    this.d.counters.suspectSettled[outcome]++;
    if (outcome === 'confirmed') {
      this.d.tape()?.record(id, price, tickTs, size);
      if (by === 'admin') {
        if (this.d.coalescer.add(id, price, tickTs, performance.now())) f.applied(id, price);
        else this.d.counters.ticksStale++;
        this.d.scheduleFlush();
      }
    }
    const body = { symbol: this.d.symbols.names[id], price, ref_price: ref, move_pct: movePctOf(price, ref), tick_ts: tickTs, by, portfolio_id: marketPortfolio, ts: this.d.clock.now() };
    return this.d.persist([outcome === 'confirmed' ? { type: 'SuspectTickConfirmed', ...body } : { type: 'SuspectTickRejected', ...body }]);
  }
}
