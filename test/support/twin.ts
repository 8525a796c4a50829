// Drives the engine's accounting (IncrementalBooks: applyFill + the JS kernel, as a shard does; one per
// kernel path) and the exact oracle (Ledger) with the same inputs, and compares every figure of every
// portfolio of every book with one from-scratch recomputation of the oracle.
// Keeps a journal of what it applied so a mismatch can be reported with the steps leading to it.

import type { TradeOutcome } from '../../src/domain/accounting.js';
import type { TickInput } from '../../src/domain/types.js';
import { Ledger, type LedgerOptions, type LedgerTrade } from '../oracle/ledger.js';
import { IncrementalBook, type KernelChoice } from './book.js';
import { verifyBook } from './verify.js';

const journalKept = 12;

export interface TwinOptions {
  ledger?: LedgerOptions;
  /** Engine books to drive in lockstep; the first is `book`. Default: the production kernel and the forced sweep. */
  kernels?: readonly KernelChoice[];
}

export class Twin {
  readonly books: readonly IncrementalBook[];
  readonly ledger: Ledger;
  private readonly journal: string[] = [];
  private tradeSeq = 0;

  constructor(options: TwinOptions = {}) {
    this.ledger = new Ledger(options.ledger);
    this.books = (options.kernels ?? ['js', 'js-sweep']).map((k) => new IncrementalBook(k));
  }

  /** The first engine book (createKernel('js') unless told otherwise). */
  get book(): IncrementalBook {
    return this.books[0];
  }

  createPortfolio(id: string, cash = 0): void {
    this.note(`create ${id} cash=${cash}`);
    for (const b of this.books) b.createPortfolio(id, cash);
    this.ledger.createPortfolio(id, cash);
  }

  trade(id: string, t: LedgerTrade): TradeOutcome {
    this.note(`trade ${id} ${t.side} ${t.quantity} ${t.symbol} @ ${t.price} fee=${t.fee ?? 0}`);
    const input = { trade_id: `t${++this.tradeSeq}`, ...t };
    const outcome = this.book.trade(id, input);
    for (const b of this.books.slice(1)) b.trade(id, input);
    this.ledger.trade(id, t);
    return outcome;
  }

  deposit(id: string, amount: number): void {
    this.note(`deposit ${id} ${amount}`);
    for (const b of this.books) b.cash(id, { type: 'deposit', amount });
    this.ledger.deposit(id, amount);
  }

  withdraw(id: string, amount: number): void {
    this.note(`withdraw ${id} ${amount}`);
    for (const b of this.books) b.cash(id, { type: 'withdraw', amount });
    this.ledger.withdraw(id, amount);
  }

  ticks(batch: readonly TickInput[]): void {
    this.note(`ticks ${batch.map((t) => `${t.symbol}=${t.price}`).join(' ')}`);
    for (const b of this.books) b.ticks(batch);
    for (const t of batch) this.ledger.tick(t.symbol, t.price);
  }

  /** Signed units the engine holds (the driver sizes exact closes and flips from it). */
  units(id: string, symbol: string): number {
    return this.book.state(id).positions[symbol]?.units ?? 0;
  }

  /** Compares every figure of every portfolio of every book; on a mismatch rethrows with the recent journal. */
  verify(context: string): number {
    try {
      const all = this.ledger.all();
      let n = 0;
      for (const b of this.books) n += verifyBook(b, all, context);
      return n;
    } catch (err) {
      const e = err as Error;
      e.message = `${e.message}\n  after (most recent last):\n    ${this.journal.join('\n    ')}`;
      throw e;
    }
  }

  private note(line: string): void {
    this.journal.push(line);
    if (this.journal.length > journalKept) this.journal.shift();
  }
}
