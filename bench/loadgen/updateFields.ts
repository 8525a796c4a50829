// The four fields the load generator needs from an update (portfolio index, seq, from_seq, tick_ts),
// read in place from a byte range: binary updates at fixed offsets of the layout (src/client/binary.ts),
// JSON updates by looking for their keys. Nothing is decoded whole and nothing is allocated: a
// subscriber process must stay far below one core while the server sends it hundreds of thousands of
// updates a second (issue 14).
import { FrameKind, UPDATE_BINARY_VERSION } from '../../src/client/binary.js';

/** What a reader fills in; one object per process, reused for every update. */
export interface UpdateFields {
  /** The portfolio's index: the number at the end of its id ("w-000042" -> 42); -1 when there is none. */
  portfolio: number;
  seq: number;
  /** = seq when the update merges nothing. */
  fromSeq: number;
  /** NaN when absent. */
  tickTs: number;
}

export function newUpdateFields(): UpdateFields {
  return { portfolio: -1, seq: NaN, fromSeq: NaN, tickTs: NaN };
}

// Version 2 binary update (docs/PROTOCOL.md "Binary update frames"): the id starts at 7 after its length
// at 6; seq, from_seq, as_of and tick_ts follow the id as f64.
const idLengthAt = 6;
const idAt = 7;
const seqAfterId = 0;
const fromSeqAfterId = 8;
const tickTsAfterId = 24;
const headBytesAfterId = 32;

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
 * A binary update in [start, end); false when it is not one (kind, version or length). Only the head
 * is read: the totals and positions behind it are not touched.
 */
export function readBinaryUpdate(buf: Buffer, start: number, end: number, out: UpdateFields): boolean {
  if (end - start < idAt || buf[start] !== FrameKind.update || buf[start + 1] !== UPDATE_BINARY_VERSION) return false;
  const idLen = buf[start + idLengthAt];
  const o = start + idAt + idLen;
  if (o + headBytesAfterId > end) return false;
  out.portfolio = trailingNumber(buf, start + idAt, o);
  out.seq = buf.readDoubleLE(o + seqAfterId);
  out.fromSeq = buf.readDoubleLE(o + fromSeqAfterId);
  out.tickTs = buf.readDoubleLE(o + tickTsAfterId);
  return true;
}

// ---- JSON ----

const UPDATE = Buffer.from('{"type":"update",');
const FROM_SEQ = Buffer.from('"from_seq":');
const SNAPSHOT = Buffer.from('{"type":"snapshot"');
const K_PID = Buffer.from('"portfolio_id":"');
const K_SEQ = Buffer.from('"seq":');
const K_TICK_TS = Buffer.from('"tick_ts":');

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
  return true;
}
