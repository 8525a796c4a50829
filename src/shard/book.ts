// One portfolio as a shard holds it: the accounting state (the actor's context), its lifecycle state,
// the kernel rows of its positions, and its per-portfolio update sequence. The xstate actor is
// materialized on the first command after a (re)start: restoring 100k actors eagerly costs ~1.8 s here,
// and most portfolios only ever see ticks, which never touch the actor.

import { createActor, type Actor } from 'xstate';
import { portfolioMachine, type PortfolioEffect, type PortfolioEvent } from '../../actors/portfolio.js';
import type { PortfolioState, PortfolioStatus } from '../domain/types.js';

export interface Book {
  readonly index: number;
  readonly id: string;
  /** The id as UTF-8, written into every delta of this portfolio. */
  readonly idBytes: Uint8Array;
  state: PortfolioState;
  status: PortfolioStatus;
  actor: Actor<typeof portfolioMachine> | null;
  /** symbol id -> kernel position row */
  readonly rows: Map<number, number>;
  /** rows in insertion order, for iteration without allocating iterators */
  readonly rowList: number[];
  seq: number;
  watchers: number;
  /** Rows linked to an FX symbol (positions quoted in a foreign currency). */
  foreign: number;
  /** FX symbol ids of the foreign currencies this portfolio holds cash in. */
  cashFx: number[];
  /** Global seq of the last logged event its restored state includes: replay skips up to it. */
  covered: number;
  /** Replay changed its state: its kernel rows are synced once, when recovery finishes. */
  touched: boolean;
  /** The state the delta writer last cached this book's positions from (deltaWriter.ts). */
  heldOf: PortfolioState | null;
}

export function newBook(index: number, state: PortfolioState, status: PortfolioStatus, seq: number): Book {
  return { index, id: state.id, idBytes: utf8.encode(state.id), state, status, actor: null, rows: new Map(), rowList: [], seq, watchers: 0, foreign: 0, cashFx: [], heldOf: null, covered: 0, touched: false };
}

const utf8 = new TextEncoder();

let lastEffect: PortfolioEffect | null = null;

function materialize(book: Book): Actor<typeof portfolioMachine> {
  const snapshot = portfolioMachine.resolveState({ value: book.status, context: book.state });
  const actor = createActor(portfolioMachine, { snapshot, input: book.state });
  actor.on('*', (effect) => {
    lastEffect = effect;
  });
  actor.start();
  return actor;
}

/** Sends one event to the book's actor and returns what it emitted (null: the event was a no-op). */
export function sendToActor(book: Book, event: PortfolioEvent): PortfolioEffect | null {
  book.actor ??= materialize(book);
  lastEffect = null;
  book.actor.send(event);
  const snap = book.actor.getSnapshot();
  book.state = snap.context;
  book.status = snap.value as PortfolioStatus;
  const effect = lastEffect;
  lastEffect = null;
  return effect;
}

/**
 * Drops a book's actor: it is rebuilt from (status, state) on the next command. A corporate step reaches
 * every holder of a symbol at once; keeping the actors it materialized would cost ~3.9 KB each for
 * portfolios that otherwise only see ticks.
 */
export function releaseActor(book: Book): void {
  book.actor?.stop();
  book.actor = null;
}
