// Symbol interning: every symbol gets a dense id once, so ticks travel as (id, price) pairs and the
// kernel indexes prices by id. Bounded by symbolsMax; names not yet announced to shards are tracked.

import { conversionSymbolsOf } from '../domain/fx.js';

export class SymbolTable {
  private readonly ids = new Map<string, number>();
  readonly names: string[] = [];
  /** Names from this index on have not been sent to the shards yet. */
  announced = 0;

  constructor(readonly symbolsMax: number) {}

  get size(): number {
    return this.names.length;
  }

  idOf(name: string): number | undefined {
    return this.ids.get(name);
  }

  /** The symbol's id, registering it when new; -1 when the table is full. */
  intern(name: string): number {
    const id = this.ids.get(name);
    if (id !== undefined) return id;
    if (this.names.length >= this.symbolsMax) return -1;
    const next = this.names.length;
    this.ids.set(name, next);
    this.names.push(name);
    return next;
  }

  /**
   * A quote -> base conversion: its kernel symbol and every market symbol it may read (direct,
   * inverse, both cross legs through the pivot), so the shards can link it and ticks reach it.
   * false when the table is full (nothing useful was added for it).
   */
  internConversion(quote: string, base: string, pivot: string): boolean {
    for (const name of conversionSymbolsOf(quote, base, pivot)) if (this.intern(name) < 0) return false;
    return true;
  }

  /** Names registered since the last call, with the id of the first one. */
  takeUnannounced(): { from: number; names: string[] } | null {
    if (this.announced === this.names.length) return null;
    const from = this.announced;
    this.announced = this.names.length;
    return { from, names: this.names.slice(from) };
  }
}
