// The event log's values as lmdb-js's msgpackr writes them, for flat events, written by hand: a bulk
// import logs two events a trade, and msgpackr's record path (it defines the record anew in every
// value: no shared structures) was the largest cost of the main thread (docs/BENCHMARKS.md, sixth
// session). The bytes are the ones msgpackr writes (test/store.flatRecord.test.ts compares them), so
// the log reads the same whoever wrote a value, shard/logRecord.ts included.
//
// Layout: d4 72 40 (a record definition, id 0x40), the keys as an array of strings, then each value in
// key order. Only flat objects of at most 15 keys whose values are strings, numbers, booleans or null;
// anything else (a nested array such as lot_ids) answers null and goes through msgpackr.

const surrogate = /[\ud800-\udfff]/;

/** Bytes one value may take at most besides its string bytes (a float64 and its tag). */
const valueHeadBytes = 9;

export class FlatRecordWriter {
  private buf = Buffer.allocUnsafeSlow(64 * 1024);
  private at = 0;
  /** The record head (d4 72 40 + the key array) per key list, built once per shape; found by its first key, then compared. */
  private readonly heads = new Map<string, { keys: string[]; head: Buffer }[]>();
  private shapes = 0;
  /** Shapes kept at most (events have a handful; a bound, not a cache of everything). */
  private static readonly shapesMax = 256;

  /** The head of this key list: found by comparing keys (no string built per value), made once. */
  private headOf(keys: string[]): Buffer {
    const slot = keys.length === 0 ? '' : keys[0];
    const known = this.heads.get(slot);
    if (known !== undefined) {
      for (const k of known) if (sameKeys(k.keys, keys)) return k.head;
    }
    const head = recordHead(keys);
    if (this.shapes < FlatRecordWriter.shapesMax) {
      this.shapes++;
      if (known === undefined) this.heads.set(slot, [{ keys, head }]);
      else known.push({ keys, head });
    }
    return head;
  }

  /**
   * A two-element array [a, b] as msgpackr writes it (0x92, the string, the number): the by-portfolio
   * index's value, one per event. null for a string with a surrogate (msgpackr writes that one).
   */
  encodePair(a: string, b: number): Uint8Array | null {
    if (surrogate.test(a)) return null;
    const bound = 1 + a.length * 3 + 5 + valueHeadBytes;
    if (this.at + bound > this.buf.length) {
      this.buf = Buffer.allocUnsafeSlow(Math.max(64 * 1024, bound));
      this.at = 0;
    }
    const start = this.at;
    this.buf[start] = 0x92;
    this.at = writeNumber(this.buf, writeString(this.buf, start + 1, a), b);
    return this.buf.subarray(start, this.at);
  }

  /** The value's bytes (a view of a buffer that is never written again), or null when it is not flat. */
  encode(value: Record<string, unknown>): Uint8Array | null {
    const keys = Object.keys(value);
    if (keys.length > 15) return null;
    let bound = 0;
    for (const k of keys) {
      const v = value[k];
      const t = typeof v;
      // A surrogate (a lone one msgpackr writes as three bytes where Buffer writes U+FFFD): msgpackr takes it.
      if (t === 'string') {
        if (surrogate.test(v as string)) return null;
        bound += (v as string).length * 3 + 5;
      }
      else if (t !== 'number' && t !== 'boolean' && v !== null) return null;
      bound += valueHeadBytes;
    }
    const head = this.headOf(keys);
    bound += head.length;
    // A value's bytes stay valid once returned: a full buffer is left behind, never overwritten.
    if (this.at + bound > this.buf.length) {
      this.buf = Buffer.allocUnsafeSlow(Math.max(64 * 1024, bound));
      this.at = 0;
    }
    const start = this.at;
    let at = start + head.copy(this.buf, start);
    for (const k of keys) at = writeValue(this.buf, at, value[k] as string | number | boolean | null);
    this.at = at;
    return this.buf.subarray(start, at);
  }
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function recordHead(keys: readonly string[]): Buffer {
  const b = Buffer.allocUnsafe(4 + keys.reduce((n, k) => n + k.length * 3 + 5, 0));
  b[0] = 0xd4;
  b[1] = 0x72;
  b[2] = 0x40;
  b[3] = 0x90 | keys.length;
  let at = 4;
  for (const k of keys) at = writeString(b, at, k);
  return Buffer.from(b.subarray(0, at));
}

function writeValue(b: Buffer, at: number, v: string | number | boolean | null): number {
  if (typeof v === 'string') return writeString(b, at, v);
  if (typeof v === 'number') return writeNumber(b, at, v);
  if (v === null) {
    b[at] = 0xc0;
    return at + 1;
  }
  b[at] = v ? 0xc3 : 0xc2;
  return at + 1;
}

/** As msgpackr: fixstr below 32 bytes, then str8, str16, str32. */
function writeString(b: Buffer, at: number, s: string): number {
  // Short ASCII strings (ids, symbols, types): the header is known before the bytes are written.
  if (s.length < 0x20) {
    const n = b.write(s, at + 1, 'utf8');
    if (n < 0x20) {
      b[at] = 0xa0 | n;
      return at + 1 + n;
    }
  }
  const n = Buffer.byteLength(s, 'utf8');
  if (n < 0x20) {
    b[at] = 0xa0 | n;
    return at + 1 + b.write(s, at + 1, 'utf8');
  }
  if (n < 0x100) {
    b[at] = 0xd9;
    b[at + 1] = n;
    return at + 2 + b.write(s, at + 2, 'utf8');
  }
  if (n < 0x10000) {
    b[at] = 0xda;
    b.writeUInt16BE(n, at + 1);
    return at + 3 + b.write(s, at + 3, 'utf8');
  }
  b[at] = 0xdb;
  b.writeUInt32BE(n, at + 1);
  return at + 5 + b.write(s, at + 5, 'utf8');
}

/**
 * As msgpackr with records on: a non-negative 32-bit integer below 0x40 in one byte (0x40-0x7f name
 * records), then uint8/16/32; a negative 32-bit integer as a negative fixint or int8/16/32; anything
 * else (fractions, integers past 32 bits, -0 aside: it equals 0 and goes as 0) as a float64.
 */
function writeNumber(b: Buffer, at: number, v: number): number {
  if (v >>> 0 === v) {
    if (v < 0x40) {
      b[at] = v;
      return at + 1;
    }
    if (v < 0x100) {
      b[at] = 0xcc;
      b[at + 1] = v;
      return at + 2;
    }
    if (v < 0x10000) {
      b[at] = 0xcd;
      b.writeUInt16BE(v, at + 1);
      return at + 3;
    }
    b[at] = 0xce;
    b.writeUInt32BE(v, at + 1);
    return at + 5;
  }
  if (v >> 0 === v) {
    if (v >= -0x20) {
      b[at] = v & 0xff;
      return at + 1;
    }
    if (v >= -0x80) {
      b[at] = 0xd0;
      b.writeInt8(v, at + 1);
      return at + 2;
    }
    if (v >= -0x8000) {
      b[at] = 0xd1;
      b.writeInt16BE(v, at + 1);
      return at + 3;
    }
    b[at] = 0xd2;
    b.writeInt32BE(v, at + 1);
    return at + 5;
  }
  b[at] = 0xcb;
  b.writeDoubleBE(v, at + 1);
  return at + 9;
}

/**
 * The buffer a run of values is written into, back to back, and where each ends: shared by the
 * writers below, which hand the run over with take() (transferred) and start afresh.
 */
abstract class ValueRun {
  protected buf: Buffer;
  protected at = 0;
  private ends = new Int32Array(256);
  private n = 0;

  constructor(private readonly bytesHint = 64 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(bytesHint);
  }

  get count(): number {
    return this.n;
  }

  /** Value i is bytes[i === 0 ? 0 : ends[i - 1], ends[i]), each run in a buffer of its own; the writer starts afresh. */
  take(): { bytes: Uint8Array; ends: Int32Array } {
    const bytes = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.at);
    const ends = this.ends.slice(0, this.n);
    this.buf = Buffer.allocUnsafeSlow(this.bytesHint);
    this.at = 0;
    this.n = 0;
    return { bytes, ends };
  }

  /** Ends the value written since the last end (an empty range when nothing was). */
  protected endValue(): void {
    if (this.n === this.ends.length) {
      const ends = new Int32Array(this.ends.length * 2);
      ends.set(this.ends);
      this.ends = ends;
    }
    this.ends[this.n++] = this.at;
  }

  /** Room for `bytes` more after `at`. */
  protected room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.at + bytes, this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
}

/**
 * A run of log values written by a shard for the main thread to log as they are (issue 15: the bulk
 * import's events cross the thread boundary as bytes, never as cloned objects): each value is what
 * the store keeps, the event's keys then `seq`, whose value is written as a float64 placeholder in its
 * last 8 bytes for the main thread to fill in (it assigns seqs; msgpackr reads a float64 integer as
 * the same number). Values go back to back in one buffer the writer owns until take() hands it over
 * (transferred). A value that is not flat (writeLogged answers false) is the caller's to send otherwise.
 */
export class LoggedValuesWriter extends ValueRun {
  private readonly heads = new Map<string, { keys: string[]; head: Buffer }[]>();

  /** Whether writeLogged would write the value (flat, at most 14 keys). */
  fits(value: Record<string, unknown>): boolean {
    let n = 0;
    for (const k in value) {
      n++;
      const v = value[k];
      const t = typeof v;
      if (t === 'string') {
        if (surrogate.test(v as string)) return false;
      } else if (t !== 'number' && t !== 'boolean' && v !== null) return false;
    }
    return n <= 14;
  }

  /** Appends the value with a seq placeholder; false (nothing written) when it is not flat. */
  writeLogged(value: Record<string, unknown>): boolean {
    const keys = Object.keys(value);
    if (keys.length > 14) return false;
    let bound = 9;
    for (const k of keys) {
      const v = value[k];
      const t = typeof v;
      if (t === 'string') {
        if (surrogate.test(v as string)) return false;
        bound += (v as string).length * 3 + 5;
      } else if (t !== 'number' && t !== 'boolean' && v !== null) return false;
      bound += valueHeadBytes;
    }
    const head = this.headOf(keys);
    bound += head.length;
    this.room(bound);
    let at = this.at + head.copy(this.buf, this.at);
    for (const k of keys) at = writeValue(this.buf, at, value[k] as string | number | boolean | null);
    this.buf[at] = 0xcb;
    this.buf.writeDoubleBE(0, at + 1);
    at += 9;
    this.at = at;
    this.endValue();
    return true;
  }

  /** Marks a value written elsewhere (an empty range here): its place in the order is kept. */
  skip(): void {
    this.endValue();
  }

  /** The head of the key list + 'seq', made once per shape (a handful: the trade's events). */
  private headOf(keys: string[]): Buffer {
    const slot = keys.length === 0 ? '' : keys[0];
    const known = this.heads.get(slot);
    if (known !== undefined) for (const k of known) if (sameKeys(k.keys, keys)) return k.head;
    const head = recordHead([...keys, 'seq']);
    if (known === undefined) this.heads.set(slot, [{ keys, head }]);
    else if (known.length < 64) known.push({ keys, head });
    return head;
  }
}

/**
 * Values of records nested in records (a trade's result: its position and totals inside it), written
 * as lmdb-js's msgpackr writes them (test/store.flatRecord.test.ts compares the bytes): each record
 * shape is defined (d4 72 <id> + its keys) the first time it occurs in a value, ids from 0x40 in order
 * of appearance, and named by its id byte after that. Strings, numbers, booleans, null and plain
 * objects of at most 15 keys; anything else (an array, undefined) answers false and writes nothing.
 * Values go back to back into one buffer, handed over by take() (transferred), like LoggedValuesWriter.
 */
export class NestedRecordWriter extends ValueRun {
  /** Each shape's key array (msgpack: 0x9n + the keys), found by its first key, then compared. */
  private readonly shapes = new Map<string, { keys: string[]; bytes: Buffer }[]>();
  /** The shapes defined in the value being written, and their ids. */
  private readonly defined: { keys: string[]; id: number }[] = [];

  /** Appends the value; false (nothing written) when it holds what this writer does not write. */
  write(value: Record<string, unknown>): boolean {
    const start = this.at;
    this.defined.length = 0;
    if (!this.record(value)) {
      this.at = start;
      return false;
    }
    this.endValue();
    return true;
  }

  private record(value: Record<string, unknown>): boolean {
    const keys = Object.keys(value);
    if (keys.length > 15) return false;
    let id = -1;
    for (const d of this.defined) {
      if (sameKeys(d.keys, keys)) {
        id = d.id;
        break;
      }
    }
    if (id >= 0) {
      this.room(1);
      this.buf[this.at++] = id;
    } else {
      id = 0x40 + this.defined.length;
      if (id > 0x7f) return false;
      this.defined.push({ keys, id });
      const shape = this.shapeOf(keys);
      this.room(3 + shape.length);
      this.buf[this.at] = 0xd4;
      this.buf[this.at + 1] = 0x72;
      this.buf[this.at + 2] = id;
      this.at += 3 + shape.copy(this.buf, this.at + 3);
    }
    for (const k of keys) {
      const v = value[k];
      const t = typeof v;
      if (t === 'object' && v !== null) {
        if (Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype) return false;
        if (!this.record(v as Record<string, unknown>)) return false;
        continue;
      }
      if (t === 'string') {
        if (surrogate.test(v as string)) return false;
        this.room((v as string).length * 3 + 5);
      } else if (t !== 'number' && t !== 'boolean' && v !== null) return false;
      else this.room(valueHeadBytes);
      this.at = writeValue(this.buf, this.at, v as string | number | boolean | null);
    }
    return true;
  }

  private shapeOf(keys: string[]): Buffer {
    const slot = keys.length === 0 ? '' : keys[0];
    const known = this.shapes.get(slot);
    if (known !== undefined) for (const k of known) if (sameKeys(k.keys, keys)) return k.bytes;
    const bytes = recordHead(keys).subarray(3);
    if (known === undefined) this.shapes.set(slot, [{ keys, bytes }]);
    else if (known.length < 64) known.push({ keys, bytes });
    return bytes;
  }
}
