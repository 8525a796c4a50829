// Instruments on the main thread: the table of definitions (reference data), rebuilt from the log at
// start, and the desk that changes it. A definition is an InstrumentDefined event under the
// pseudo-portfolio '_instruments'; every shard keeps the symbol -> multiplier part (it books trades at
// it) and gets each change before any command submitted after it.
//
// A change of multiplier (or of currency) of a symbol someone holds would misstate every position in
// it, so it is refused: the desk holds all other shard traffic (the corporate desk's hold, one step at a
// time across the engine), asks every shard for holders, and only with none appends the definition and
// tells the shards, before the held commands go. A held instrument's multiplier changes only through a
// contract adjustment (a corporate action that rescales holdings exactly).

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { sameInstrument, validateInstrument } from '../domain/instruments.js';
import type { Clock, Instrument, StoredEvent } from '../domain/types.js';
import type { ShardEvent } from '../shard/protocol.js';
import type { ShardHandle } from './shardHandle.js';

export const instrumentsPortfolio = '_instruments';

export interface InstrumentAnswer {
  /** false: the same definition was already in force; nothing was logged. */
  changed: boolean;
  instrument: Instrument;
}

export class InstrumentTable {
  private readonly bySymbol = new Map<string, Instrument>();

  constructor(readonly instrumentsMax: number) {}

  get size(): number {
    return this.bySymbol.size;
  }

  get(symbol: string): Instrument | undefined {
    return this.bySymbol.get(symbol);
  }

  /** Sorted by symbol, so listings page the same across restarts. */
  list(): Instrument[] {
    return [...this.bySymbol.values()].sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
  }

  set(instrument: Instrument): void {
    this.bySymbol.set(instrument.symbol, instrument);
  }

  /** From the log: the last definition of each symbol wins. */
  recover(events: Iterable<StoredEvent>): void {
    for (const e of events) if (e.type === 'InstrumentDefined') this.set(e.instrument);
  }

  /** What every shard keeps: symbol -> multiplier. */
  multipliers(): { symbol: string; multiplier: number }[] {
    return [...this.bySymbol.values()].map((i) => ({ symbol: i.symbol, multiplier: i.multiplier }));
  }
}

/** What the desk needs of the engine. */
export interface InstrumentHost {
  readonly shards: readonly ShardHandle[];
  readonly clock: Clock;
  /** Runs the task alone: one corporate step or definition at a time, every other shard message held. */
  exclusive<T>(task: () => Promise<T>): Promise<T>;
  persist(events: ShardEvent[]): Promise<void>;
}

export class InstrumentDesk {
  constructor(
    readonly table: InstrumentTable,
    private readonly host: InstrumentHost,
  ) {}

  async define(symbol: unknown, input: unknown): Promise<Result<InstrumentAnswer>> {
    const v = validateInstrument(symbol, input);
    if (!v.ok) return v;
    const next = v.value;
    const before = this.table.get(next.symbol);
    if (before !== undefined && sameInstrument(before, next)) return ok({ changed: false, instrument: before });
    if (before === undefined && this.table.size >= this.table.instrumentsMax) {
      return fail(ErrorCode.limit_exceeded, `symbol: instruments must be <= ${this.table.instrumentsMax}`, 'symbol');
    }
    return this.host.exclusive(async () => {
      // Read again inside: a definition may have landed while this one waited its turn.
      const current = this.table.get(next.symbol);
      if (current !== undefined && sameInstrument(current, next)) return ok({ changed: false, instrument: current });
      const multiplierMoves = (current?.multiplier ?? 1) !== next.multiplier;
      const currencyMoves = current !== undefined && current.currency !== next.currency;
      if (multiplierMoves || currencyMoves) {
        const held = await this.holders(next.symbol);
        if (!held.ok) return held;
        if (held.value > 0) {
          const what = multiplierMoves ? 'multiplier' : 'currency';
          return fail(
            ErrorCode.instrument_held,
            `${what}: ${next.symbol} is held by ${held.value} portfolio(s); its ${what} changes only when nobody holds it${multiplierMoves ? ', or through a contract_adjustment corporate action' : ''}`,
            what,
          );
        }
      }
      const durable = this.host.persist([{ type: 'InstrumentDefined', instrument: next, portfolio_id: instrumentsPortfolio, ts: this.host.clock.now() }]);
      this.apply(next);
      const failed = await durable.then(
        () => null,
        (e: unknown) => e,
      );
      if (failed !== null) return fail(ErrorCode.store_failed, `store commit failed: ${String(failed)}`);
      return ok({ changed: true, instrument: next });
    });
  }

  /**
   * A contract adjustment's effect on the table, inside its corporate step: the new multiplier, and
   * the event that records it (appended in the step's commit).
   */
  adjusted(symbol: string, multiplier: number, ts: number): ShardEvent | null {
    const current = this.table.get(symbol);
    if (current === undefined) return null;
    const next: Instrument = { ...current, multiplier };
    this.apply(next);
    return { type: 'InstrumentDefined', instrument: next, portfolio_id: instrumentsPortfolio, ts };
  }

  /** The table and every shard's copy, before any command submitted after this. */
  private apply(instrument: Instrument): void {
    this.table.set(instrument);
    for (const h of this.host.shards) h.post({ t: 'instruments', instruments: [{ symbol: instrument.symbol, multiplier: instrument.multiplier }] });
  }

  private async holders(symbol: string): Promise<Result<number>> {
    if (this.host.shards.some((h) => h.state !== 'ready')) return fail(ErrorCode.shard_restarting, 'a shard is restarting: holders cannot be counted; retry shortly', undefined, true);
    const now = this.host.clock.now();
    const results = await Promise.all(this.host.shards.map((h) => h.submitNow({ kind: 'holders', symbol, now })));
    let held = 0;
    for (const r of results) {
      if (r.error !== null) return { ok: false, error: { ...r.error, retryable: true } };
      held += r.holders ?? 0;
    }
    return ok(held);
  }
}
