// The event log: events by seq and the meta entries (schema version, last seq). Seqs are assigned
// here, synchronously, in call order. Its indexes and the queries they answer are eventIndex.ts's,
// written in a lagging transaction.

import { asBinary, type Database, type Key } from 'lmdb';
import { assert } from '../assert.js';
import { replayedEventTypes, type DomainEvent, type DomainEventType, type StoredEvent } from '../domain/types.js';
import { assertKeyPart, encoderOf, type Encoder } from './keys.js';
import { FlatRecordWriter } from '../protocol/flatRecord.js';
import type { Batch, LoggedEvent, QueueTable, WriteQueue } from './writeQueue.js';

/**
 * Events a shard wrote as the log keeps them (issue 15: a bulk import's chunk), logged as they are:
 * no object per event crosses the thread, none is encoded here. Event i is
 * bytes[i === 0 ? 0 : ends[i - 1], ends[i]): a flat msgpackr record whose last key is `seq`, its value a
 * float64 in the last 8 bytes that append fills in (protocol/flatRecord.ts LoggedValuesWriter). An
 * empty range: objects holds the event (not flat, a trade naming lots), encoded here.
 */
export interface EncodedEvents {
  bytes: Uint8Array;
  /** Where event 0 starts in bytes (default 0); ends are offsets in bytes. */
  start?: number;
  ends: Int32Array;
  objects: readonly { i: number; event: DomainEvent }[];
  /** Per event: what the indexes key it by. */
  portfolio: readonly string[];
  type: readonly DomainEventType[];
  ts: Float64Array;
  /**
   * Per event: the trade id when it is the TradeExecuted of an imported trade, whose result is derived
   * from it (tradeResults.ts enqueueDerived: {imported, realized_pnl, seq}), else null; and that realized P&L.
   */
  tradeIds?: readonly (string | null)[];
  realized?: Float64Array;
}

/** An event appended as bytes: what the flush and the indexes read, the object decoded only for a reader (decode). */
export class EncodedEntry implements LoggedEvent {
  constructor(
    readonly seq: number,
    readonly portfolio_id: string,
    readonly type: DomainEventType,
    readonly ts: number,
    readonly bin: Uint8Array,
    readonly tradeId: string | null,
    readonly realized: number,
  ) {}
}

/** A page of the event log: by portfolio, type and time range, after a seq, in either order. */
export interface EventQuery {
  portfolio_id?: string;
  type?: DomainEventType;
  from?: number;
  to?: number;
  after_seq?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

export interface ReplayOptions {
  /** Only the event types that change state on replay (replayedEventTypes). */
  replayedOnly?: boolean;
}

function putMeta(meta: Database<unknown, Key>, entries: readonly [string, unknown][]): void {
  for (const [key, value] of entries) meta.put(key, value);
}

/**
 * A journal record's part of the log, redone into LMDB at open (journal.ts): its meta puts, then its
 * events (stored values, seqs firstSeq, firstSeq + 1...) and lastSeq, as write() puts them.
 */
export function redoEvents(meta: Database<unknown, Key>, events: Database<StoredEvent, Key>, metaPuts: readonly [string, unknown][], firstSeq: number, bins: readonly Uint8Array[]): void {
  putMeta(meta, metaPuts);
  for (let i = 0; i < bins.length; i++) events.put(firstSeq + i, asBinary(bins[i]) as unknown as StoredEvent);
  if (bins.length > 0) meta.put('lastSeq', firstSeq + bins.length - 1);
}

export class EventLog implements QueueTable {
  private seq: number;
  // Each db's own msgpack encoder (lmdb-js gives each db one), so pre-encoded bytes decode like any
  // other value. Those dbs only ever receive pre-encoded bytes, so lmdb-js never runs these encoders
  // itself; and msgpackr never writes over bytes it has returned from encode() without the reuse
  // flag (it only moves forward in its buffer or starts a new one), so no copy is needed.
  private readonly eventEncoder: Encoder;
  /** The same bytes for flat events, written by hand (flatRecord.ts): msgpackr's record path costs ~4 µs an event. */
  private readonly flat = new FlatRecordWriter();

  constructor(
    private readonly queue: WriteQueue,
    private readonly meta: Database<unknown, Key>,
    readonly events: Database<StoredEvent, Key>,
    private readonly eventsRaw: Database<Uint8Array, Key>,
    lastSeq: number,
  ) {
    this.seq = lastSeq;
    this.eventEncoder = encoderOf(events);
  }

  lastSeq(): number {
    return this.seq;
  }

  /**
   * Validates and encodes everything first, so a bad event throws here, to its caller, with no seq
   * consumed and nothing enqueued, instead of failing a whole batch later.
   */
  encode(events: readonly DomainEvent[]): { stored: StoredEvent[]; bins: Uint8Array[] } {
    const first = this.seq + 1;
    const stored: StoredEvent[] = new Array(events.length);
    const bins: Uint8Array[] = new Array(events.length);
    let checkedId: unknown = undefined;
    let checkedType: unknown = undefined;
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      // Checked once per run of the same id and type (a chunk's events come a portfolio at a time).
      if (e.portfolio_id !== checkedId) {
        assertKeyPart(e.portfolio_id, 'event portfolio_id');
        checkedId = e.portfolio_id;
      }
      if (e.type !== checkedType) {
        assertKeyPart(e.type, 'event type');
        checkedType = e.type;
      }
      assert(Number.isFinite(e.ts), 'event needs a finite ts');
      const s: StoredEvent = { ...e, seq: first + i };
      stored[i] = s;
      bins[i] = this.flat.encode(s as unknown as Record<string, unknown>) ?? this.eventEncoder.encode(s);
    }
    return { stored, bins };
  }

  /**
   * Appends events a shard encoded (EncodedEvents): each gets the next seq, written into its bytes;
   * they are queued as they are. Keys are checked once per run of the same portfolio and type, as in
   * encode(); nothing is enqueued when one is bad.
   */
  enqueueEncoded(p: EncodedEvents): EncodedEntry[] {
    const n = p.ends.length;
    assert(p.portfolio.length === n && p.type.length === n && p.ts.length === n, 'encoded events: one portfolio, type and ts per event');
    assert(p.tradeIds === undefined || (p.tradeIds.length === n && p.realized?.length === n), 'encoded events: one trade id and realized P&L per event');
    let checkedId: unknown = undefined;
    let checkedType: unknown = undefined;
    for (let i = 0; i < n; i++) {
      assert(Number.isFinite(p.ts[i]), 'event needs a finite ts');
      if (p.portfolio[i] !== checkedId) {
        assertKeyPart(p.portfolio[i], 'event portfolio_id');
        checkedId = p.portfolio[i];
      }
      if (p.type[i] !== checkedType) {
        assertKeyPart(p.type[i], 'event type');
        checkedType = p.type[i];
      }
    }
    const first = this.seq + 1;
    const objects = new Map<number, DomainEvent>();
    for (const o of p.objects) objects.set(o.i, o.event);
    const bins: Uint8Array[] = new Array(n);
    const view = new DataView(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength);
    let start = p.start ?? 0;
    for (let i = 0; i < n; i++) {
      const end = p.ends[i];
      if (end > start) {
        view.setFloat64(end - 8, first + i, false);
        bins[i] = p.bytes.subarray(start, end);
      } else {
        const e = objects.get(i);
        assert(e !== undefined, 'an encoded event without bytes has its object');
        const s: StoredEvent = { ...e, seq: first + i };
        bins[i] = this.flat.encode(s as unknown as Record<string, unknown>) ?? this.eventEncoder.encode(s);
      }
      start = end;
    }
    const q = this.queue.queued;
    const entries: EncodedEntry[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const entry = new EncodedEntry(first + i, p.portfolio[i], p.type[i], p.ts[i], bins[i], p.tradeIds?.[i] ?? null, p.realized?.[i] ?? 0);
      entries[i] = entry;
      q.events.push(entry);
      q.eventBins.push(bins[i]);
    }
    this.seq += n;
    return entries;
  }

  /** Takes the seqs encode() assigned and queues the events. */
  enqueue(stored: StoredEvent[], bins: Uint8Array[]): void {
    const q = this.queue.queued;
    this.seq += stored.length;
    for (let i = 0; i < stored.length; i++) {
      q.events.push(stored[i]);
      q.eventBins.push(bins[i]);
    }
  }

  write(b: Batch): void {
    putMeta(this.meta, b.meta);
    for (let i = 0; i < b.events.length; i++) this.events.put(b.events[i].seq, asBinary(b.eventBins[i]) as unknown as StoredEvent);
    // Kept beside the events so lastSeq survives compaction of every event.
    if (b.events.length > 0) this.meta.put('lastSeq', b.events[b.events.length - 1].seq);
  }

  // ---- replay --------------------------------------------------------------------------------

  rawEventsAfter(afterSeq: number): Iterable<{ key: Key; value: Uint8Array }> {
    return this.eventsRaw.getRange({ start: afterSeq, exclusiveStart: true });
  }

  decodeEvent(bytes: Uint8Array): StoredEvent {
    return (this.events as unknown as { decoder: { decode(b: Uint8Array): StoredEvent } }).decoder.decode(bytes);
  }

  eventsAfter(afterSeq: number, options?: ReplayOptions): Iterable<StoredEvent> {
    const range = this.events.getRange({ start: afterSeq, exclusiveStart: true });
    if (options?.replayedOnly === true) return range.filter((e) => replayedEventTypes.has(e.value.type)).map((e) => e.value);
    return range.map((e) => e.value);
  }
}
