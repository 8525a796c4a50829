// Dense symbol ids for the market modules: per-symbol state lives in typed arrays indexed by id, so
// the tick path does one Map lookup (or none, when the caller already holds the id) and no allocation.
// One table may be shared by a BarBook and a MarketAlerts so both agree on ids.

import { validSymbol } from '../domain/validate.js';

/** intern() results that are not ids (-1 for a full table, as the engine's own table returns). */
export const SYMBOL_TABLE_FULL = -1;
export const SYMBOL_INVALID = -2;

/**
 * What the market modules need of a symbol table: an adapter over the engine's table satisfies it,
 * so bars, alerts and the kernel can share one id space and the hot path can pass ids.
 */
export interface SymbolIds {
  readonly symbolsMax: number;
  readonly size: number;
  /** The id of symbol, registering it on first sight; SYMBOL_INVALID or SYMBOL_TABLE_FULL otherwise. */
  intern(symbol: string): number;
  /** The id of a known symbol, or -1. */
  idOf(symbol: string): number;
  has(id: number): boolean;
  nameOf(id: number): string;
}

export class SymbolTable implements SymbolIds {
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];

  constructor(readonly symbolsMax: number) {}

  get size(): number {
    return this.names.length;
  }

  intern(symbol: string): number {
    const known = this.ids.get(symbol);
    if (known !== undefined) return known;
    // The pattern is checked once per new symbol, never on the steady-state tick path.
    if (!validSymbol(symbol)) return SYMBOL_INVALID;
    if (this.names.length >= this.symbolsMax) return SYMBOL_TABLE_FULL;
    const id = this.names.length;
    this.ids.set(symbol, id);
    this.names.push(symbol);
    return id;
  }

  idOf(symbol: string): number {
    return this.ids.get(symbol) ?? -1;
  }

  has(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.names.length;
  }

  nameOf(id: number): string {
    return this.names[id];
  }
}
