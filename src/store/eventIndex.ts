// The event log's secondary indexes (by portfolio, by type, by time) and the queries they answer,
// written in a lagging index transaction.
//
// Why lagging: the acknowledging commit only appends (events by seq, trade result bodies by number);
// index keys are random over portfolios, and writing them in every group commit dirtied about one
// leaf page per portfolio per commit (10.6 KB a trade of the 16.9 KB measured, docs/BENCHMARKS.md).
// Written a chunk of indexEventsPerFlushMax events at a time (or once the oldest waited
// indexLagMaxMs), a leaf page takes many entries per write.
//
// What a reader sees does not change: query() and eventsForPortfolio() answer from the committed
// index plus the acknowledged events whose index entries are not committed yet (kept here, in seq
// order, bounded: they count in the store's pendingWrites), so a query right after an ack sees the
// trade. Acknowledged: in the journal (journal.ts), whether or not LMDB has committed them yet; the
// log itself (a query without filters) adds the acknowledged events LMDB does not hold yet. A crash leaves the index behind the log by at most that backlog: openStore catches it up
// (catchUp, one synchronous transaction) from the log after meta 'indexedSeq' before anything reads.

import { asBinary, type Database, type Key, type RootDatabase } from 'lmdb';
import { FlatRecordWriter } from '../protocol/flatRecord.js';
import { replayedEventTypes, type DomainEventType, type StoredEvent } from '../domain/types.js';
import { keyPart } from './keys.js';
import { Lag } from './lag.js';
import { storeDefaults } from './limits.js';
import { EncodedEntry, type ReplayOptions, type EventQuery } from './log.js';
import { SeqHeap } from './seqHeap.js';
import { deferred, type Batch, type Deferred, type LoggedEvent, type QueueTable, type StoreError, type WriteQueue } from './writeQueue.js';

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return storeDefaults.queryLimitDefault;
  return Math.min(storeDefaults.queryLimitMax, Math.max(1, Math.floor(limit)));
}

const floorPrefix = 'eventFloor:';
/** The first string after every eventFloor:<id> key (';' follows ':'). */
const floorEnd = 'eventFloor;';

/**
 * Merge by seq: the tail's seqs are above the committed ones, except a flush that committed while its
 * settlement is still on its way (both hold those events then).
 */
function mergeBySeq(out: StoredEvent[], tail: StoredEvent[], limit: number, desc: boolean): StoredEvent[] {
  if (tail.length === 0) return out;
  const seen = new Set<number>();
  for (const e of out) seen.add(e.seq);
  for (const e of tail) if (!seen.has(e.seq)) out.push(e);
  out.sort(desc ? (a, b) => b.seq - a.seq : (a, b) => a.seq - b.seq);
  return out.length > limit ? out.slice(0, limit) : out;
}

export class EventIndex implements QueueTable {
  /**
   * Events enqueued whose index entries are not committed yet, in seq order, from `head` on; those
   * before `taken` are in a flush already. Seqs up to committedSeq are committed (readable).
   */
  private backlog: LoggedEvent[] = [];
  private head = 0;
  private taken = 0;
  private committedSeq: number;
  /** The highest seq acknowledged (its journal record is durable; >= committedSeq once LMDB has it too). */
  private acknowledgedSeq: number;
  /** The highest seq whose index entries are committed. */
  private indexedSeq: number;
  readonly lag: Lag;
  /** caughtUp() calls waiting for the committed index to reach a seq, in seq order. */
  private readonly waiters: { seq: number; done: Deferred }[] = [];
  // Scratch keys: lmdb-js encodes keys and values when put() is called, so one array can be reused.
  private readonly k2: [string | number, number] = ['', 0];
  private readonly v2: [unknown, unknown] = [null, null];
  private readonly flat = new FlatRecordWriter();
  private readonly run: TimeRun;

  constructor(
    private readonly queue: WriteQueue,
    private readonly meta: Database<unknown, Key>,
    readonly events: Database<StoredEvent, Key>,
    readonly byPortfolio: Database<[DomainEventType, number], Key>,
    readonly byType: Database<number, Key>,
    readonly byTs: Database<number | null, Key>,
    lastSeq: number,
    eventsPerFlushMax: number,
    lagMaxMs: number,
    /** An encoded entry's event, for a reader of the backlog (the log's own decoder). */
    private readonly decode: (bin: Uint8Array) => StoredEvent,
  ) {
    this.committedSeq = lastSeq;
    this.acknowledgedSeq = lastSeq;
    this.indexedSeq = lastSeq;
    this.lag = new Lag(queue, eventsPerFlushMax, lagMaxMs);
    this.run = new TimeRun(byTs);
    for (const { key, value } of meta.getRange({ start: floorPrefix, end: floorEnd })) if (typeof value === 'number') this.floors.set((key as string).slice(floorPrefix.length), value);
  }

  /**
   * Per portfolio, the last log seq of a copy this node dropped (a cluster partition it lost, or a
   * copy replaced by a shipped snapshot): a portfolio's reads start after it, so a copy rebuilt from
   * the stream does not show its history twice. Meta keys eventFloor:<id>, read at open; one per
   * portfolio ever dropped here. The events stay in the log (the whole log reads them).
   */
  private readonly floors = new Map<string, number>();

  /** The portfolios' reads start after `seq` (the log's last seq when their copy left), in the batch being filled. */
  forget(portfolioIds: readonly string[], seq: number): void {
    for (const id of portfolioIds) {
      this.floors.set(id, seq);
      this.queue.queued.meta.push([floorPrefix + id, seq]);
    }
    if (portfolioIds.length > 0) this.queue.scheduleFlush();
  }

  private floorOf(portfolioId: string): number {
    return this.floors.size === 0 ? 0 : (this.floors.get(portfolioId) ?? 0);
  }

  /**
   * At open, before any read: index the events a crash left unindexed, in one synchronous
   * transaction. A directory written before the lagging index has no 'indexedSeq' (all indexed):
   * the mark goes in the first commit. Returns the events indexed.
   */
  catchUp(root: RootDatabase, lastSeq: number): number {
    const mark = this.meta.get('indexedSeq');
    if (typeof mark !== 'number') {
      this.queue.queued.meta.push(['indexedSeq', lastSeq]);
      this.queue.scheduleFlush();
      return 0;
    }
    if (mark >= lastSeq) return 0;
    let n = 0;
    root.transactionSync(() => {
      const run = new TimeRun(this.byTs);
      for (const { value } of this.events.getRange({ start: mark, exclusiveStart: true })) {
        this.put(value, run);
        n++;
      }
      run.end();
      this.meta.put('indexedSeq', lastSeq);
    });
    return n;
  }

  /** The journal made every event through seq durable: readers see them from now on. */
  acknowledge(seq: number): void {
    if (seq > this.acknowledgedSeq) this.acknowledgedSeq = seq;
  }

  private readableSeq(): number {
    return Math.max(this.committedSeq, this.acknowledgedSeq);
  }

  /** Events whose seqs append() just assigned: their index entries follow in a lagging flush. */
  enqueue(stored: readonly LoggedEvent[]): void {
    for (const e of stored) this.backlog.push(e);
    this.lag.added(stored.length);
  }

  /** Index entries not yet in a flush (they count in the store's pendingWrites). */
  lagging(): number {
    return this.lag.untaken;
  }

  hasBacklog(): boolean {
    return this.lag.due();
  }

  /**
   * Resolves when every event appended so far is in the committed index, writing what waits now
   * instead of after its lag. For readers of the index alone (compaction scans the time index).
   */
  caughtUp(): Promise<void> {
    if (this.queue.failure !== null) return this.queue.rejected();
    const last = this.backlog.length > this.head ? this.backlog[this.backlog.length - 1].seq : this.indexedSeq;
    if (last <= this.indexedSeq) return Promise.resolve();
    const done = deferred();
    this.waiters.push({ seq: last, done });
    this.lag.rush++;
    this.queue.scheduleFlush();
    return done.promise;
  }

  abandonJobs(failure: StoreError): void {
    for (const w of this.waiters.splice(0)) w.done.reject(failure);
    this.lag.rush = 0;
  }

  take(b: Batch): void {
    const n = this.lag.take(b.indexing);
    if (n === 0) return;
    b.indexEvents = this.backlog.slice(this.taken, this.taken + n);
    this.taken += n;
    b.writes += n;
    b.indexing = true;
  }

  write(b: Batch): void {
    if (b.indexEvents.length === 0) return;
    const run = this.run;
    for (const e of b.indexEvents) this.put(e, run);
    run.end();
    this.meta.put('indexedSeq', b.indexEvents[b.indexEvents.length - 1].seq);
  }

  private put(e: LoggedEvent, run: TimeRun): void {
    const k2 = this.k2;
    const v2 = this.v2;
    k2[0] = e.portfolio_id;
    k2[1] = e.seq;
    // Its value pre-encoded (msgpackr's bytes, flatRecord.ts): one msgpackr call per event was most of this put's cost.
    const pair = this.flat.encodePair(e.type, e.ts);
    if (pair !== null) this.byPortfolio.put(k2, asBinary(pair) as unknown as [DomainEventType, number]);
    else {
      v2[0] = e.type;
      v2[1] = e.ts;
      this.byPortfolio.put(k2, v2 as [DomainEventType, number]);
    }
    k2[0] = e.type;
    this.byType.put(k2, e.ts);
    run.add(e.ts, e.seq);
  }

  settled(b: Batch): void {
    // Flushes settle in commit order, so the indexed ones are the oldest of the backlog.
    if (b.outcome !== true) return;
    if (b.events.length > 0) this.committedSeq = b.events[b.events.length - 1].seq;
    const n = b.indexEvents.length;
    if (n === 0) return;
    this.indexedSeq = b.indexEvents[n - 1].seq;
    this.head += n;
    while (this.waiters.length > 0 && this.waiters[0].seq <= this.indexedSeq) {
      (this.waiters.shift() as { done: Deferred }).done.resolve();
      this.lag.rush--;
    }
    if (this.head >= 4096 && this.head * 2 >= this.backlog.length) {
      this.backlog.splice(0, this.head);
      this.taken -= this.head;
      this.head = 0;
    }
  }

  /** Acknowledged events not yet in the committed index (from `fromSeq` on), ascending, that pass `keep`. */
  private tail(keep: (e: LoggedEvent) => boolean, fromSeq = this.indexedSeq): StoredEvent[] {
    const out: StoredEvent[] = [];
    const readable = this.readableSeq();
    for (let i = this.head; i < this.backlog.length; i++) {
      const e = this.backlog[i];
      if (e.seq > readable) break;
      if (e.seq > fromSeq && keep(e)) out.push(e instanceof EncodedEntry ? this.decode(e.bin) : (e as StoredEvent));
    }
    return out;
  }

  // ---- queries -----------------------------------------------------------------------------

  *eventsForPortfolio(portfolioId: string, afterSeq: number, untilTs: number, options?: ReplayOptions): Iterable<StoredEvent> {
    if (!keyPart(portfolioId)) return;
    const replayedOnly = options?.replayedOnly === true;
    afterSeq = Math.max(afterSeq, this.floorOf(portfolioId));
    let last = afterSeq;
    // The index value [type, ts] filters without reading events that are not returned.
    for (const e of this.byPortfolio.getRange({ start: [portfolioId, afterSeq], exclusiveStart: true, end: [portfolioId, Infinity] })) {
      const [type, ts] = e.value;
      const seq = (e.key as [string, number])[1];
      last = Math.max(last, seq);
      if (ts > untilTs || (replayedOnly && !replayedEventTypes.has(type))) continue;
      const event = this.events.get(seq);
      if (event !== undefined) yield event;
    }
    const from = last;
    yield* this.tail((e) => e.portfolio_id === portfolioId && e.seq > from && e.ts <= untilTs && (!replayedOnly || replayedEventTypes.has(e.type)));
  }

  query(q: EventQuery): StoredEvent[] {
    const limit = clampLimit(q.limit);
    const desc = q.order === 'desc';
    let after = q.after_seq !== undefined && Number.isFinite(q.after_seq) ? q.after_seq : undefined;
    // A portfolio's events of a dropped copy are not its history here (floors above).
    const floor = q.portfolio_id === undefined ? 0 : this.floorOf(q.portfolio_id);
    if (floor > 0 && !desc) after = Math.max(after ?? 0, floor);
    const from = q.from !== undefined && Number.isFinite(q.from) ? q.from : -Infinity;
    const to = q.to !== undefined && Number.isFinite(q.to) ? q.to : Infinity;
    if (from > to) return [];
    if (q.portfolio_id === undefined && q.type === undefined && from === -Infinity && to === Infinity) {
      // The log itself: committed events, indexed or not.
      const range = desc
        ? { start: after, reverse: true, exclusiveStart: after !== undefined, limit }
        : { start: after ?? 0, exclusiveStart: true, limit };
      const out: StoredEvent[] = [];
      for (const e of this.events.getRange(range)) out.push(e.value);
      // Acknowledged (journaled) events LMDB does not hold yet follow the committed ones.
      const unlogged = this.tail((e) => after === undefined || (desc ? e.seq < after : e.seq > after), this.committedSeq);
      return mergeBySeq(out, unlogged, limit, desc);
    }
    if (q.portfolio_id !== undefined && !keyPart(q.portfolio_id)) return [];
    if (q.portfolio_id === undefined && q.type !== undefined && !keyPart(q.type)) return [];
    const seqs = this.indexedSeqs(q, limit, desc, after, from, to);
    const out: StoredEvent[] = [];
    for (const s of seqs) {
      const e = this.events.get(s);
      if (e !== undefined) out.push(e);
    }
    const tail = this.tail(
      (e) =>
        (q.portfolio_id === undefined || e.portfolio_id === q.portfolio_id) &&
        e.seq > floor &&
        (q.type === undefined || e.type === q.type) &&
        e.ts >= from &&
        e.ts <= to &&
        (after === undefined || (desc ? e.seq < after : e.seq > after)),
    );
    return mergeBySeq(out, tail, limit, desc);
  }

  /** The committed index's answer: at most `limit` seqs in the requested order. */
  private indexedSeqs(q: EventQuery, limit: number, desc: boolean, after: number | undefined, from: number, to: number): number[] {
    const seqs: number[] = [];
    if (q.portfolio_id !== undefined) {
      // Index value [type, ts] filters type and time without reading the events.
      const floor = this.floorOf(q.portfolio_id);
      for (const e of this.byPortfolio.getRange(this.seqRange(q.portfolio_id, after, desc))) {
        if ((e.key as [string, number])[1] <= floor) break;
        const [type, ts] = e.value;
        if ((q.type === undefined || type === q.type) && ts >= from && ts <= to) {
          seqs.push((e.key as [string, number])[1]);
          if (seqs.length >= limit) break;
        }
      }
    } else if (q.type !== undefined) {
      for (const e of this.byType.getRange(this.seqRange(q.type, after, desc))) {
        if (e.value >= from && e.value <= to) {
          seqs.push((e.key as [string, number])[1]);
          if (seqs.length >= limit) break;
        }
      }
    } else {
      // The time index is ordered by ts, pages by seq: keep the best `limit` seqs of the range.
      // Exact with O(limit) memory; time is proportional to the events in [from, to].
      const best = new SeqHeap(limit, !desc);
      const range = { start: from === -Infinity ? undefined : [from], end: to === Infinity ? undefined : [to, Infinity] };
      // An entry is one seq, or a run of contiguous seqs at the same ts (TimeRun): first in the key, last as the value.
      for (const { key, value } of this.byTs.getRange(range)) {
        const first = (key as [number, number])[1];
        const last = typeof value === 'number' ? value : first;
        for (let seq = first; seq <= last; seq++) if (after === undefined || (desc ? seq < after : seq > after)) best.offer(seq);
      }
      seqs.push(...best.sorted());
    }
    return seqs;
  }

  /** A cursor over [prefix, seq] keys after `after` in the requested direction. */
  private seqRange(prefix: string, after: number | undefined, desc: boolean) {
    return desc
      ? { start: [prefix, after ?? Infinity], end: [prefix], reverse: true, exclusiveStart: after !== undefined }
      : { start: [prefix, after ?? 0], end: [prefix, Infinity], exclusiveStart: true };
  }
}

/**
 * The time index's entries of one index flush: contiguous seqs at the same ts (a bulk import's chunk,
 * a command's events, trades of the same millisecond) are one entry, [ts, first seq] -> last seq; a
 * seq alone stays [ts, seq] -> null, as every entry was before. Fewer random-key puts, and the
 * readers (indexedSeqs, compaction) expand a run to its seqs.
 */
export class TimeRun {
  private ts = 0;
  private first = 0;
  private last = -1;
  private readonly key: [number, number] = [0, 0];

  constructor(private readonly byTs: Database<number | null, Key>) {}

  add(ts: number, seq: number): void {
    if (this.last >= 0 && ts === this.ts && seq === this.last + 1) {
      this.last = seq;
      return;
    }
    this.end();
    this.ts = ts;
    this.first = seq;
    this.last = seq;
  }

  /** Puts the run being gathered (at the end of a flush's or a catch-up's events). */
  end(): void {
    if (this.last < 0) return;
    this.key[0] = this.ts;
    this.key[1] = this.first;
    this.byTs.put(this.key, this.last === this.first ? null : this.last);
    this.last = -1;
  }
}
