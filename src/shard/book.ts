// One portfolio as a shard holds it: the accounting state (the actor's context), its lifecycle state,
// the kernel rows of its positions, and its per-portfolio update sequence. The xstate actor is
// materialized on the first command after a (re)start: restoring 100k actors eagerly costs ~1.8 s here,
// and most portfolios only ever see ticks, which never touch the actor.

import { createActor, type Actor } from 'xstate';
import { portfolioMachine, type PortfolioEffect, type PortfolioEvent } from '../../actors/portfolio.js';
import type { PortfolioState, PortfolioStatus } from '../domain/types.js';
import type { ValidTrade } from '../domain/validate.js';

/** Where a book restored lazily takes its state from on first use (a snapshot part, snapshotCodec.ts). */
export interface StateSource {
  stateOf(index: number): PortfolioState;
  /** Books a replayed trade into the source instead of a state, when it can (SnapshotPart.bookTrade). */
  bookTrade(index: number, trade: ValidTrade): boolean;
}

export class Book {
  actor: Actor<typeof portfolioMachine> | null = null;
  /** Its rows in insertion order (see rowList); null while they are the restored run firstRow.. */
  private rowListValue: number[] | null;
  watchers = 0;
  /**
   * Watchers that asked for no deltas for now (conflation in the shard, Shard.hold): while every
   * watcher holds, a batch skips writing this book's delta; the next one written covers everything
   * since the last one sent (from_seq = sentSeq + 1), because the writer compares each row with what
   * the last written delta showed.
   */
  holds = 0;
  /** A delta was skipped since the last one written (heldUnsent), and the seq the last one showed. */
  heldUnsent = false;
  sentSeq = 0;
  /** Rows linked to an FX symbol (positions quoted in a foreign currency). */
  foreign = 0;
  /** FX symbol ids of the foreign currencies this portfolio holds cash in. */
  cashFx: number[] = [];
  /** Global seq of the last logged event its restored state includes: replay skips up to it. */
  covered = 0;
  /** Replay changed its state: its kernel rows are synced once, when recovery finishes. */
  touched = false;
  /**
   * Dropped (its cluster partition moved to another node, Shard.drop): no longer under its id, its
   * kernel rows flat so no tick revalues it, left out of records and snapshots. Its rows stay (kernel
   * rows are never unlinked) until the shard restarts, bounded by portfoliosMax.
   */
  dropped = false;
  /** The state the delta writer last cached this book's positions from (deltaWriter.ts). */
  heldOf: PortfolioState | null = null;
  /**
   * Its state or lifecycle changed since its last per-portfolio record (time travel's starting points):
   * the next snapshot round writes one. With recordedHwm, a round writes records only for the books
   * that need one (a clean stop right after a restart wrote 100,000 identical records).
   */
  recordDue = true;
  /** The high-water mark its last record holds (NaN: none written here). */
  recordedHwm = Number.NaN;
  /**
   * Its snapshot part's columns still hold its state (restored from them, changed since only by
   * trades booked into them): a snapshot round copies its columns from the part instead of
   * encoding its state (snapshotCodec.ts encodeSnapshot).
   */
  private partCurrent: boolean;
  private stateValue: PortfolioState | null;
  private rowsValue: Map<number, number> | null;
  private idBytesValue: Uint8Array | null = null;

  /**
   * A book with its state, or (state null) one restored lazily: its kernel rows are written (the run
   * [firstRow, firstRow + rowCount), appended in one piece), and its state object, its row list, its
   * row map and its id bytes are built on first use, from `source` at `sourceIndex` and from
   * `symbolOfRow` (a row's symbol id in the kernel). Most books after a restart only ever see ticks,
   * which read the kernel alone.
   */
  constructor(
    readonly index: number,
    readonly id: string,
    state: PortfolioState | null,
    public status: PortfolioStatus,
    public seq: number,
    private source: StateSource | null = null,
    private readonly sourceIndex = 0,
    private readonly symbolOfRow: ((row: number) => number) | null = null,
    private readonly firstRow = 0,
    private readonly rowCount = 0,
  ) {
    this.stateValue = state;
    this.rowsValue = state === null ? null : new Map();
    this.rowListValue = state === null ? null : [];
    this.partCurrent = source !== null;
  }

  /** Kernel rows in insertion order, for iteration without allocating iterators. */
  get rowList(): number[] {
    if (this.rowListValue === null) {
      const list: number[] = [];
      for (let r = 0; r < this.rowCount; r++) list.push(this.firstRow + r);
      this.rowListValue = list;
    }
    return this.rowListValue;
  }

  /**
   * The first of its rows while they are exactly the run [firstRow, firstRow + rowCount) restored
   * with it (its row list not built: nothing was added), else -1.
   */
  get restoredRunStart(): number {
    return this.rowListValue === null ? this.firstRow : -1;
  }

  get state(): PortfolioState {
    // Built from the part, it equals the part's columns: the part stays current.
    this.stateValue ??= (this.source as StateSource).stateOf(this.sourceIndex);
    return this.stateValue;
  }

  set state(state: PortfolioState) {
    this.stateValue = state;
    this.changed();
  }

  /** Its state was changed (replaced, or booked in place by replay): due for a record, no longer its part's. */
  changed(): void {
    this.partCurrent = false;
    this.source = null;
    this.recordDue = true;
  }

  /** The snapshot part and index whose columns hold its state, or null (see partCurrent). */
  get partSource(): { source: StateSource; index: number } | null {
    return this.partCurrent ? { source: this.source as StateSource, index: this.sourceIndex } : null;
  }

  /**
   * Replays a trade into the book's source while its state is not built (SnapshotPart.bookTrade);
   * false: the caller books it on the state.
   */
  replayIntoSource(trade: ValidTrade): boolean {
    return this.stateValue === null && (this.source as StateSource).bookTrade(this.sourceIndex, trade);
  }

  /** The snapshot part and index a book whose state is not built yet reads from (null once built). */
  get lazySource(): { source: StateSource; index: number } | null {
    return this.stateValue === null ? { source: this.source as StateSource, index: this.sourceIndex } : null;
  }

  /** Whether the state object exists yet (a lazily restored book untouched since the restart: no). */
  get materialized(): boolean {
    return this.stateValue !== null;
  }

  /** symbol id -> kernel position row */
  get rows(): Map<number, number> {
    if (this.rowsValue === null) {
      const rows = new Map<number, number>();
      const symbolOf = this.symbolOfRow as (row: number) => number;
      for (const row of this.rowList) rows.set(symbolOf(row), row);
      this.rowsValue = rows;
    }
    return this.rowsValue;
  }

  /** The id as UTF-8, written into every delta of this portfolio. */
  get idBytes(): Uint8Array {
    return (this.idBytesValue ??= utf8.encode(this.id));
  }
}

export function newBook(index: number, state: PortfolioState, status: PortfolioStatus, seq: number): Book {
  return new Book(index, state.id, state, status, seq);
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
  // A refused or empty command leaves the state object as it was: nothing to record.
  if (snap.context !== book.state) book.state = snap.context;
  if (snap.value !== book.status) book.recordDue = true;
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
