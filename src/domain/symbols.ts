// The one symbol table: every symbol gets a dense id once, so ticks travel as (id, price) pairs, the
// kernel indexes prices by id and the market modules keep per-symbol state in typed arrays by id.
// The engine's table and the market modules' tables are instances of this class (the market
// service runs its own in its worker); one table may be shared by a BarBook and a MarketAlerts so
// both agree on ids. Bounded by symbolsMax; names not yet announced to shards are tracked.

import { validSymbol } from './validate.js';
import { conversionSymbolOf, conversionSymbolsOf } from './fx.js';

/** intern() results that are not ids. */
export const SYMBOL_TABLE_FULL = -1;
export const SYMBOL_INVALID = -2;

/** What the market modules need of a symbol table. */
export interface SymbolIds {
  readonly symbolsMax: number;
  readonly size: number;
  /** The id of symbol, registering it on first sight; SYMBOL_INVALID or SYMBOL_TABLE_FULL otherwise. */
  intern(symbol: string): number;
  /** The id of a known symbol, or undefined. */
  idOf(symbol: string): number | undefined;
  has(id: number): boolean;
  nameOf(id: number): string;
}

export class SymbolTable implements SymbolIds {
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

  /** The symbol's id, registering it when new; SYMBOL_TABLE_FULL (-1) when full, SYMBOL_INVALID for a bad name. */
  intern(name: string): number {
    const id = this.ids.get(name);
    if (id !== undefined) return id;
    // The pattern is checked once per new symbol, never on the steady-state tick path.
    if (!validSymbol(name)) return SYMBOL_INVALID;
    return this.add(name);
  }

  /**
   * A quote -> base conversion (src/domain/fx.ts): its kernel symbol (Q>B, outside the symbol pattern
   * on purpose: no feed or trade can name it) and every market symbol it may read (direct, inverse,
   * both cross legs through the pivot), so the shards can link it and ticks reach it. false when the
   * table is full.
   */
  internConversion(quote: string, base: string, pivot: string): boolean {
    const conversion = conversionSymbolOf(quote, base);
    if (this.ids.get(conversion) === undefined && this.add(conversion) < 0) return false;
    for (const name of conversionSymbolsOf(quote, base, pivot)) if (name !== conversion && this.intern(name) < 0) return false;
    return true;
  }

  private add(name: string): number {
    if (this.names.length >= this.symbolsMax) return SYMBOL_TABLE_FULL;
    const next = this.names.length;
    this.ids.set(name, next);
    this.names.push(name);
    return next;
  }

  has(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.names.length;
  }

  nameOf(id: number): string {
    return this.names[id];
  }

  /** Names registered since the last call, with the id of the first one. */
  takeUnannounced(): { from: number; names: string[] } | null {
    if (this.announced === this.names.length) return null;
    const from = this.announced;
    this.announced = this.names.length;
    return { from, names: this.names.slice(from) };
  }
}
