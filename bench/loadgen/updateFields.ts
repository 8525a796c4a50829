// The fields the load generator needs from an update (portfolio index, seq, from_seq, tick_ts, as_of),
// read in place from a byte range: binary updates at fixed offsets of the layout (src/client/binary.ts),
// JSON updates by looking for their keys. Nothing is decoded whole and nothing is allocated: a
// subscriber process must stay far below one core while the server sends it hundreds of thousands of
// updates a second (issue 14).
import { FrameKind, UPDATE_BINARY_VERSION } from '../../src/protocol/binary.js';
import { DELTA_VERSION, DELTA_VERSION_V3, DeltaHead, DeltaKind, UPDATES_HEADER_BYTES, UPDATES_RECORD_PREFIX_BYTES } from '../../src/protocol/delta.js';

/** What a reader fills in; one object per process, reused for every update. */
export interface UpdateFields {
  /** The portfolio's index: the number at the end of its id ("w-000042" -> 42); -1 when there is none. */
  portfolio: number;
  seq: number;
  /** = seq when the update merges nothing. */
  fromSeq: number;
  /** NaN when absent. */
  tickTs: number;
  /**
   * The server's stamp (NaN when absent): tick_ts -> as_of -> arrival splits a latency into the hops
   * before and after the server stamped the update (mtm: its batch's clock, whole ms; the relay: its
   * flush, on the load generator's sub-ms clock; the peer: Date.now() at send).
   */
  asOf: number;
}

export function newUpdateFields(): UpdateFields {
  return { portfolio: -1, seq: NaN, fromSeq: NaN, tickTs: NaN, asOf: NaN };
}

// Version 2 binary update (docs/PROTOCOL.md "Binary update frames"): the id starts at 7 after its length
// at 6; seq, from_seq, as_of and tick_ts follow the id as f64.
const v2IdLengthAt = 6;
const v2IdAt = 7;
const v2FromSeqAfterId = 8;
const v2AsOfAfterId = 16;
const v2TickTsAfterId = 24;
const v2HeadBytesAfterId = 32;
// Version 3 and 4 deltas (the same head) and the per-connection updates frame: offsets from src/protocol/delta.ts (DeltaHead).
const updatesCountAt = 4;

/** The number at the end of bytes [start, end) (the digits after the last non-digit); -1 when none. */
export function trailingNumber(buf: Uint8Array, start: number, end: number): number {
  let i = end;
  while (i > start && buf[i - 1] >= 0x30 && buf[i - 1] <= 0x39) i--;
  if (i === end) return -1;
  let n = 0;
  for (let k = i; k < end; k++) n = n * 10 + (buf[k] - 0x30);
  return n;
}

/**
 * A binary update (layout version 2, or the version 3 delta mtm sends since issue 14) in [start, end);
 * false when it is not one (kind, version or length). Only the head is read: the totals and positions
 * behind it are not touched.
 */
export function readBinaryUpdate(buf: Buffer, start: number, end: number, out: UpdateFields): boolean {
  if (end - start < v2IdAt || buf[start] !== FrameKind.update) return false;
  const version = buf[start + 1];
  if (version === DELTA_VERSION || version === DELTA_VERSION_V3) {
    const idEnd = start + DeltaHead.id + buf[start + DeltaHead.idLength];
    if (idEnd > end) return false;
    out.portfolio = trailingNumber(buf, start + DeltaHead.id, idEnd);
    out.seq = buf.readDoubleLE(start + DeltaHead.seq);
    out.fromSeq = buf.readDoubleLE(start + DeltaHead.fromSeq);
    out.tickTs = buf.readDoubleLE(start + DeltaHead.tickTs);
    out.asOf = buf.readDoubleLE(start + DeltaHead.asOf);
    return true;
  }
  if (version !== UPDATE_BINARY_VERSION) return false;
  const o = start + v2IdAt + buf[start + v2IdLengthAt];
  if (o + v2HeadBytesAfterId > end) return false;
  out.portfolio = trailingNumber(buf, start + v2IdAt, o);
  out.seq = buf.readDoubleLE(o);
  out.fromSeq = buf.readDoubleLE(o + v2FromSeqAfterId);
  out.tickTs = buf.readDoubleLE(o + v2TickTsAfterId);
  out.asOf = buf.readDoubleLE(o + v2AsOfAfterId);
  return true;
}

export function isUpdatesFrame(buf: Buffer, start: number, end: number): boolean {
  return end - start >= UPDATES_HEADER_BYTES && buf[start] === DeltaKind.updates;
}

/**
 * A per-connection binary frame: calls `each(recordStart, recordEnd)` per delta record; returns the
 * number of records, or -1 when the framing is wrong (a record past the end).
 */
export function forEachRecord(buf: Buffer, start: number, end: number, each: (recordStart: number, recordEnd: number) => void): number {
  const count = buf.readUInt32LE(start + updatesCountAt);
  let o = start + UPDATES_HEADER_BYTES;
  // Bounded by count and by the frame's end.
  for (let i = 0; i < count; i++) {
    if (o + UPDATES_RECORD_PREFIX_BYTES > end) return -1;
    const len = buf.readUInt32LE(o);
    o += UPDATES_RECORD_PREFIX_BYTES;
    if (o + len > end) return -1;
    each(o, o + len);
    o += len;
  }
  return count;
}

// ---- JSON ----

const UPDATE = Buffer.from('{"type":"update",');
const UPDATES = Buffer.from('{"type":"updates","updates":[');
const FROM_SEQ = Buffer.from('"from_seq":');
const SNAPSHOT = Buffer.from('{"type":"snapshot"');
const K_PID = Buffer.from('"portfolio_id":"');
const K_SEQ = Buffer.from('"seq":');
const K_TICK_TS = Buffer.from('"tick_ts":');
const K_AS_OF = Buffer.from('"as_of":');

export function startsWithAt(buf: Buffer, start: number, end: number, prefix: Buffer): boolean {
  const n = prefix.length;
  if (end - start < n) return false;
  for (let i = 0; i < n; i++) if (buf[start + i] !== prefix[i]) return false;
  return true;
}

export function isJsonUpdate(buf: Buffer, start: number, end: number): boolean {
  return startsWithAt(buf, start, end, UPDATE);
}

export function isJsonSnapshot(buf: Buffer, start: number, end: number): boolean {
  return startsWithAt(buf, start, end, SNAPSHOT);
}

/** Where `key` starts in [start, end); -1 when it is not there. */
export function keyAt(buf: Buffer, key: Buffer, start: number, end: number): number {
  const i = buf.indexOf(key, start);
  return i < 0 || i + key.length > end ? -1 : i;
}

/**
 * The JSON number starting at `at`; NaN when there is none. Parsed from the bytes, no string made, when
 * it has at most 15 digits before and 15 after the point (integer part and fraction then exact, one
 * rounding in the division and one in the sum: within 1 unit in the last place); anything longer or
 * with an exponent falls back to Number() on its text.
 */
export function numberAt(buf: Buffer, at: number, end: number): number {
  let i = at;
  let neg = false;
  if (i < end && buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  let n = 0;
  const intStart = i;
  // Bounded by end and by the longest text of a double.
  while (i < end && i - intStart < 400 && buf[i] >= 0x30 && buf[i] <= 0x39) n = n * 10 + (buf[i++] - 0x30);
  const intDigits = i - intStart;
  let fracDigits = 0;
  if (i < end && buf[i] === 0x2e) {
    i++;
    const fracStart = i;
    let frac = 0;
    let scale = 1;
    while (i < end && i - fracStart < 400 && buf[i] >= 0x30 && buf[i] <= 0x39) {
      frac = frac * 10 + (buf[i++] - 0x30);
      scale *= 10;
    }
    fracDigits = i - fracStart;
    if (fracDigits <= 15) n += frac / scale;
  }
  const exponent = i < end && (buf[i] === 0x65 || buf[i] === 0x45);
  if (intDigits === 0) return NaN;
  if (intDigits > 15 || fracDigits > 15 || exponent) {
    let j = i;
    while (j < end && buf[j] !== 0x2c && buf[j] !== 0x7d && buf[j] !== 0x5d && j - at < 400) j++;
    return Number(buf.toString('latin1', at, j));
  }
  return neg ? -n : n;
}

/**
 * A JSON update `{"type":"update",...}` in [start, end), or one object of a per-connection frame
 * starting at `start`. The server writes from_seq first when the update is merged (src/server/encoding.ts).
 */
export function readJsonUpdate(buf: Buffer, start: number, end: number, out: UpdateFields): boolean {
  if (!startsWithAt(buf, start, end, UPDATE)) return false;
  const p = keyAt(buf, K_PID, start, end);
  const s = keyAt(buf, K_SEQ, start, end);
  if (p < 0 || s < 0) return false;
  const idStart = p + K_PID.length;
  let idEnd = idStart;
  while (idEnd < end && buf[idEnd] !== 0x22 && idEnd - idStart < 256) idEnd++;
  out.portfolio = trailingNumber(buf, idStart, idEnd);
  out.seq = numberAt(buf, s + K_SEQ.length, end);
  const f = start + UPDATE.length;
  out.fromSeq = startsWithAt(buf, f, end, FROM_SEQ) ? numberAt(buf, f + FROM_SEQ.length, end) : out.seq;
  const t = keyAt(buf, K_TICK_TS, start, end);
  out.tickTs = t < 0 ? NaN : numberAt(buf, t + K_TICK_TS.length, end);
  const a = keyAt(buf, K_AS_OF, start, end);
  out.asOf = a < 0 ? NaN : numberAt(buf, a + K_AS_OF.length, end);
  return true;
}

export function isJsonUpdates(buf: Buffer, start: number, end: number): boolean {
  return startsWithAt(buf, start, end, UPDATES);
}

/**
 * A per-connection JSON frame {"type":"updates","updates":[{"type":"update",...},...]}: calls
 * `each(elementStart, elementEnd)` per update (an element ends where the next one starts); returns
 * the number of updates.
 */
export function forEachJsonUpdate(buf: Buffer, start: number, end: number, each: (elementStart: number, elementEnd: number) => void): number {
  let at = keyAt(buf, UPDATE, start + UPDATES.length, end);
  let n = 0;
  // Bounded: every turn moves past one element.
  while (at >= 0) {
    const next = keyAt(buf, UPDATE, at + UPDATE.length, end);
    each(at, next < 0 ? end : next);
    n++;
    at = next;
  }
  return n;
}
