// The ticks' way from the engine's main thread to the market worker: a single-producer,
// single-consumer ring in shared memory. The main thread copies each tape in (32 bytes a tick) and
// the worker reads at its pace, so no message crosses per batch: on a loaded machine one
// postMessage costs the posting thread up to a millisecond (measured, see bench/bars-engine.ts),
// more than aggregating the ticks it would carry. The ring's capacity is the worker's inbound bound:
// a tape that does not fit is cut, and the caller counts what was dropped.
//
// Positions run modulo 2 x capacity, so a full ring (write - read = capacity) and an empty one
// (write = read) differ. The writer publishes with Atomics.store after copying, the reader reads
// after Atomics.load, so the reader never sees a position before its ticks. The reader sleeps in
// Atomics.waitAsync only after raising `waiting`; the writer notifies only when it sees it raised.

import { assert } from '../assert.js';

/** Ticks in the ring: symbol id, price, ts, size (NaN = none), as on the engine's tape. */
export const RING_FIELDS = 4;
const WRITE = 0;
const READ = 1;
const WAITING = 2;

export interface TickRingBuffers {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
  capacity: number;
}

type WaitAsync = (a: Int32Array, index: number, value: number, timeoutMs?: number) => { async: boolean; value: Promise<string> | string };

/** capacity: ticks, a power of two. */
export function createTickRing(capacity: number): TickRingBuffers {
  assert(Number.isInteger(capacity) && capacity >= 2 && capacity <= 1 << 28 && (capacity & (capacity - 1)) === 0, 'tick ring capacity must be a power of two in [2, 2^28]');
  return { control: new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT), data: new SharedArrayBuffer(capacity * RING_FIELDS * Float64Array.BYTES_PER_ELEMENT), capacity };
}

class RingBase {
  protected readonly control: Int32Array;
  protected readonly data: Float64Array;
  protected readonly capacity: number;
  protected readonly span: number;

  constructor(b: TickRingBuffers) {
    this.control = new Int32Array(b.control);
    this.data = new Float64Array(b.data);
    this.capacity = b.capacity;
    this.span = b.capacity * 2;
  }

  /** Ticks written and not read yet. */
  get size(): number {
    return (Atomics.load(this.control, WRITE) - Atomics.load(this.control, READ) + this.span) % this.span;
  }
}

export class TickRingWriter extends RingBase {
  /** Copies up to n ticks of tape in; returns how many fit. */
  write(tape: Float64Array, n: number): number {
    const w = Atomics.load(this.control, WRITE);
    const r = Atomics.load(this.control, READ);
    const used = (w - r + this.span) % this.span;
    const k = Math.min(n, this.capacity - used);
    if (k <= 0) return 0;
    const at = w % this.capacity;
    const first = Math.min(k, this.capacity - at);
    this.data.set(tape.subarray(0, first * RING_FIELDS), at * RING_FIELDS);
    if (k > first) this.data.set(tape.subarray(first * RING_FIELDS, k * RING_FIELDS), 0);
    Atomics.store(this.control, WRITE, (w + k) % this.span);
    if (Atomics.load(this.control, WAITING) === 1) Atomics.notify(this.control, WRITE);
    return k;
  }
}

export class TickRingReader extends RingBase {
  /**
   * Hands the unread ticks to f in contiguous views of at most max ticks (the view is valid during
   * the call only), marking them read after each; returns the number read.
   */
  read(max: number, f: (ticks: Float64Array, n: number) => void): number {
    let total = 0;
    for (;;) {
      const w = Atomics.load(this.control, WRITE);
      const r = Atomics.load(this.control, READ);
      const available = (w - r + this.span) % this.span;
      if (available === 0 || total >= max) return total;
      const at = r % this.capacity;
      const k = Math.min(available, this.capacity - at, max - total);
      f(this.data.subarray(at * RING_FIELDS, (at + k) * RING_FIELDS), k);
      Atomics.store(this.control, READ, (r + k) % this.span);
      total += k;
    }
  }

  /** Resolves when ticks are there (at once if some are), or after timeoutMs. */
  async waitForTicks(timeoutMs: number): Promise<void> {
    const c = this.control;
    Atomics.store(c, WAITING, 1);
    const w = Atomics.load(c, WRITE);
    if (w === Atomics.load(c, READ)) {
      const waited = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync(c, WRITE, w, timeoutMs);
      if (waited.async) await waited.value;
    }
    Atomics.store(c, WAITING, 0);
  }
}

/** Longest symbol name (the symbol pattern: [A-Za-z0-9._:/-]{1,32}, ASCII). */
const nameBytesMax = 32;
const nameStride = nameBytesMax + 1;

/**
 * Names of the engine's symbol ids, in shared memory beside the ring: the writer stores an id's name
 * before it writes the first tick of that id, and the ring's Atomics.store publishes both, so the
 * reader can name any id it reads, without a message that could arrive after the tick.
 */
export class SymbolNameTable {
  private readonly bytes: Uint8Array;
  readonly capacity: number;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.bytes = new Uint8Array(buffer);
    this.capacity = Math.floor(buffer.byteLength / nameStride);
  }

  static create(capacity: number): SymbolNameTable {
    return new SymbolNameTable(new SharedArrayBuffer(capacity * nameStride));
  }

  /** false when id is past the capacity or the name is not a 1..32 character ASCII symbol. */
  write(id: number, name: string): boolean {
    if (id < 0 || id >= this.capacity || name.length === 0 || name.length > nameBytesMax) return false;
    const at = id * nameStride;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c > 0x7e) return false;
      this.bytes[at + 1 + i] = c;
    }
    this.bytes[at] = name.length;
    return true;
  }

  read(id: number): string | undefined {
    if (id < 0 || id >= this.capacity) return undefined;
    const at = id * nameStride;
    const length = this.bytes[at];
    return length === 0 ? undefined : String.fromCharCode(...this.bytes.subarray(at + 1, at + 1 + length));
  }
}
