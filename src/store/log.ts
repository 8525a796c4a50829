// The event log: events by seq, the three indexes (by portfolio, by type, by time), and the meta
// entries (schema version, last seq). Seqs are assigned here, synchronously, in call order.

import { asBinary, type Database, type Key } from 'lmdb';
import { assert } from '../assert.js';
import { replayedEventTypes, type DomainEvent, type DomainEventType, type StoredEvent } from '../domain/types.js';
import { assertKeyPart, encoderOf, keyPart, type Encoder } from './keys.js';
import { storeDefaults } from './limits.js';
import { SeqHeap } from './seqHeap.js';
import type { Batch, QueueTable, WriteQueue } from './writeQueue.js';

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

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return storeDefaults.queryLimitDefault;
  return Math.min(storeDefaults.queryLimitMax, Math.max(1, Math.floor(limit)));
}

export class EventLog implements QueueTable {
  private seq: number;
  // Scratch keys: lmdb-js encodes keys and values when put() is called, so one array can be reused.
  private readonly k2: [string | number, number] = ['', 0];
  private readonly v2: [unknown, unknown] = [null, null];
  // Each db's own msgpack encoder (lmdb-js gives each db one), so pre-encoded bytes decode like any
  // other value. Those dbs only ever receive pre-encoded bytes, so lmdb-js never runs these encoders
  // itself; and msgpackr never writes over bytes it has returned from encode() without the reuse
  // flag (it only moves forward in its buffer or starts a new one), so no copy is needed.
  private readonly eventEncoder: Encoder;

  constructor(
    private readonly queue: WriteQueue,
    private readonly meta: Database<unknown, Key>,
    readonly events: Database<StoredEvent, Key>,
    private readonly eventsRaw: Database<Uint8Array, Key>,
    readonly byPortfolio: Database<[DomainEventType, number], Key>,
    readonly byType: Database<number, Key>,
    readonly byTs: Database<null, Key>,
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
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      assertKeyPart(e.portfolio_id, 'event portfolio_id');
      assertKeyPart(e.type, 'event type');
      assert(Number.isFinite(e.ts), 'event needs a finite ts');
      const s: StoredEvent = { ...e, seq: first + i };
      stored[i] = s;
      bins[i] = this.eventEncoder.encode(s);
    }
    return { stored, bins };
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
    const k2 = this.k2;
    const v2 = this.v2;
    for (const [key, value] of b.meta) this.meta.put(key, value);
    for (let i = 0; i < b.events.length; i++) {
      const e = b.events[i];
      this.events.put(e.seq, asBinary(b.eventBins[i]) as unknown as StoredEvent);
      k2[0] = e.portfolio_id;
      k2[1] = e.seq;
      v2[0] = e.type;
      v2[1] = e.ts;
      this.byPortfolio.put(k2, v2 as [DomainEventType, number]);
      k2[0] = e.type;
      this.byType.put(k2, e.ts);
      k2[0] = e.ts;
      this.byTs.put(k2, null);
    }
    // Kept beside the events so lastSeq survives compaction of every event.
    if (b.events.length > 0) this.meta.put('lastSeq', b.events[b.events.length - 1].seq);
  }

  // ---- queries -----------------------------------------------------------------------------

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

  *eventsForPortfolio(portfolioId: string, afterSeq: number, untilTs: number, options?: ReplayOptions): Iterable<StoredEvent> {
    if (!keyPart(portfolioId)) return;
    const replayedOnly = options?.replayedOnly === true;
    // The index value [type, ts] filters without reading events that are not returned.
    for (const e of this.byPortfolio.getRange({ start: [portfolioId, afterSeq], exclusiveStart: true, end: [portfolioId, Infinity] })) {
      const [type, ts] = e.value;
      if (ts > untilTs || (replayedOnly && !replayedEventTypes.has(type))) continue;
      const event = this.events.get((e.key as [string, number])[1]);
      if (event !== undefined) yield event;
    }
  }

  query(q: EventQuery): StoredEvent[] {
    const limit = clampLimit(q.limit);
    const desc = q.order === 'desc';
    const after = q.after_seq !== undefined && Number.isFinite(q.after_seq) ? q.after_seq : undefined;
    const from = q.from !== undefined && Number.isFinite(q.from) ? q.from : -Infinity;
    const to = q.to !== undefined && Number.isFinite(q.to) ? q.to : Infinity;
    if (from > to) return [];
    const seqs: number[] = [];
    if (q.portfolio_id !== undefined) {
      if (!keyPart(q.portfolio_id)) return [];
      // Index value [type, ts] filters type and time without reading the events.
      for (const e of this.byPortfolio.getRange(this.seqRange(q.portfolio_id, after, desc))) {
        const [type, ts] = e.value;
        if ((q.type === undefined || type === q.type) && ts >= from && ts <= to) {
          seqs.push((e.key as [string, number])[1]);
          if (seqs.length >= limit) break;
        }
      }
    } else if (q.type !== undefined) {
      if (!keyPart(q.type)) return [];
      for (const e of this.byType.getRange(this.seqRange(q.type, after, desc))) {
        if (e.value >= from && e.value <= to) {
          seqs.push((e.key as [string, number])[1]);
          if (seqs.length >= limit) break;
        }
      }
    } else if (from !== -Infinity || to !== Infinity) {
      // The time index is ordered by ts, pages by seq: keep the best `limit` seqs of the range.
      // Exact with O(limit) memory; time is proportional to the events in [from, to].
      const best = new SeqHeap(limit, !desc);
      const range = { start: from === -Infinity ? undefined : [from], end: to === Infinity ? undefined : [to, Infinity] };
      for (const key of this.byTs.getKeys(range)) {
        const seq = (key as [number, number])[1];
        if (after === undefined || (desc ? seq < after : seq > after)) best.offer(seq);
      }
      seqs.push(...best.sorted());
    } else {
      const range = desc
        ? { start: after, reverse: true, exclusiveStart: after !== undefined, limit }
        : { start: after ?? 0, exclusiveStart: true, limit };
      const out: StoredEvent[] = [];
      for (const e of this.events.getRange(range)) out.push(e.value);
      return out;
    }
    const out: StoredEvent[] = [];
    for (const s of seqs) {
      const e = this.events.get(s);
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  /** A cursor over [prefix, seq] keys after `after` in the requested direction. */
  private seqRange(prefix: string, after: number | undefined, desc: boolean) {
    return desc
      ? { start: [prefix, after ?? Infinity], end: [prefix], reverse: true, exclusiveStart: after !== undefined }
      : { start: [prefix, after ?? 0], end: [prefix, Infinity], exclusiveStart: true };
  }
}
