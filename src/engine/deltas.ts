// The main thread's view of the shards' deltas: bytes routed, not objects. A Delta is one portfolio's
// binary record (layout version 4, src/protocol/delta.ts) as a shard wrote it; it is decoded into an
// update object only when a listener asks for objects, and then once whatever the listener count,
// against the positions its portfolio's HeldBook holds (a tick record carries only what a tick moved).
// DeltaRoutes maps a shard's book index to the portfolio id, learnt from the record itself the first
// time the index is seen (a restarted shard starts a fresh table: its indexes may differ).

import { assert } from '../assert.js';
import type { PortfolioUpdate } from '../domain/types.js';
import { DeltaHead, decodeDelta, type DeltaUpdate, type HeldBook } from '../protocol/delta.js';
import { DELTA_INDEX_STRIDE } from '../shard/deltaWriter.js';

const utf8 = new TextDecoder();

export class Delta {
  private decoded: PortfolioUpdate | null = null;
  /**
   * What its reader holds of the portfolio, having applied this record (HeldBook.observe): a tick
   * record decodes against it while it is at this record's seq, i.e. during this record's delivery.
   */
  held: HeldBook | null = null;

  constructor(
    readonly portfolioId: string,
    readonly seq: number,
    /** The record's bytes: a view into the batch's buffer, published as they are. */
    readonly bytes: Uint8Array,
    /** The first seq the record covers (below seq when its shard skipped deltas: conflation in the shard). */
    readonly fromSeq: number,
  ) {}

  /** Decodes now when `held` is at this record's seq (a reader that keeps the delta for later); else waits. */
  decodeIfHeld(): void {
    if (this.decoded !== null || this.held === null || this.held.seq !== this.seq) return;
    const d = decodeDelta(this.bytes, this.held);
    if (d.ok) this.decoded = withoutFromSeq(d.value);
  }

  /** The update as an object (the figures the JSON encoding carries), decoded once. */
  update(): PortfolioUpdate {
    if (this.decoded !== null) return this.decoded;
    // Held positions of another seq would give a tick record wrong figures: it is refused instead.
    const held = this.held !== null && this.held.seq === this.seq ? this.held : null;
    const d = decodeDelta(this.bytes, held);
    assert(d.ok, `a delta not decodable here: ${d.ok ? '' : d.reason}`);
    this.decoded = withoutFromSeq(d.value);
    return this.decoded;
  }
}

function withoutFromSeq(u: DeltaUpdate): PortfolioUpdate {
  const { from_seq: _from, ...update } = u;
  return update;
}

export function deltaOf(bytes: Uint8Array): Delta {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes[DeltaHead.idLength];
  return new Delta(utf8.decode(bytes.subarray(DeltaHead.id, DeltaHead.id + n)), view.getFloat64(DeltaHead.seq, true), bytes, view.getFloat64(DeltaHead.fromSeq, true));
}

/** Per shard: book index -> portfolio id (bounded by the shard's portfolios). */
export class DeltaRoutes {
  private ids: (string | undefined)[] = [];

  reset(): void {
    this.ids = [];
  }

  /** Calls `each` for every record of a batch, in the shard's order. */
  forEach(bytes: Uint8Array, index: Int32Array, each: (d: Delta) => void): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let k = 0; k < index.length; k += DELTA_INDEX_STRIDE) {
      const book = index[k];
      const o = index[k + 1];
      const record = bytes.subarray(o, o + index[k + 2]);
      let id = this.ids[book];
      if (id === undefined) {
        const n = record[DeltaHead.idLength];
        id = utf8.decode(record.subarray(DeltaHead.id, DeltaHead.id + n));
        this.ids[book] = id;
      }
      each(new Delta(id, view.getFloat64(o + DeltaHead.seq, true), record, view.getFloat64(o + DeltaHead.fromSeq, true)));
    }
  }
}
