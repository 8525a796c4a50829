// Binary layouts of the WebSocket protocols (docs/PROTOCOL.md, "Binary frames"). All little-endian.
// Pure and browser-safe: the server encodes updates and decodes feed frames with these functions,
// the SDK decodes updates and encodes feed frames with the same ones.
//
// Update frame (server -> /ws client that subscribed with encoding 'binary'):
//   u8 kind = 0x01 | u8 version = 2 | u8 state (0 active, 1 paused, 2 closed) | u8 flags (bit 0: merged)
//   u16 position count | u8 id length n | n bytes portfolio id (UTF-8)
//   f64 seq | f64 from_seq | f64 as_of | f64 tick_ts
//   f64 x 13 totals: cash, capital, holdings_value, cost_basis, unrealized_pnl, realized_pnl,
//                    total_return, return_rate, equity, gross_exposure, stale_positions, unpriced_positions,
//                    unconverted_positions
//   per position: u8 symbol length m | m bytes symbol (UTF-8) | 3 bytes currency (ASCII) | f64 x 9:
//                 quantity, avg_cost, last_price, market_value, unrealized_pnl, realized_pnl, return_rate,
//                 weight, fx_rate (NaN = null) | f64 price_ts (NaN = null) | f64 price_age_ms (NaN = null)
//                 | u8 stale (0 or 1)
// Version 2 added the mark ages (stale counts, price_ts, price_age_ms, stale) and the currencies
// (unconverted_positions, currency, fx_rate); a version 1 reader refuses it ("unsupported version")
// instead of misreading it. The server now sends version 4 (src/protocol/delta.ts: compact, fixed
// offsets, tick records decoded against the positions the reader holds); decodeUpdate reads 2, 3 and
// 4, and encodeUpdate still writes version 2 for older peers.
//
// Feed register frame (publisher -> /ws/feed):
//   u8 kind = 0x10 | u8 version = 1 | u16 count | per symbol: u8 length m | m bytes (UTF-8)
// Feed ticks frame (publisher -> /ws/feed):
//   u8 kind = 0x11 | u8 version = 1 | u16 reserved = 0 | u32 count
//   count x 28-byte records: u32 symbol id | f64 price | f64 ts (epoch ms) | f64 size (NaN = none)

import type { PortfolioStatus, PortfolioUpdate, PositionView } from '../domain/types.js';
import { DELTA_VERSION, DELTA_VERSION_V3, decodeDelta, readPositionSymbol, type HeldPositions } from './delta.js';

/** Version of the feed frames (register, ticks). */
export const BINARY_VERSION = 1;
/** Version of the update frame. */
export const UPDATE_BINARY_VERSION = 2;
export const FrameKind = { update: 0x01, updates: 0x02, feedRegister: 0x10, feedTicks: 0x11 } as const;
export const TICK_RECORD_BYTES = 28;
export const TICKS_HEADER_BYTES = 8;

export const totalsFields = [
  'cash',
  'capital',
  'holdings_value',
  'cost_basis',
  'unrealized_pnl',
  'realized_pnl',
  'total_return',
  'return_rate',
  'equity',
  'gross_exposure',
  'stale_positions',
  'unpriced_positions',
  'unconverted_positions',
] as const;
export const positionFields = [
  'quantity',
  'avg_cost',
  'last_price',
  'market_value',
  'unrealized_pnl',
  'realized_pnl',
  'return_rate',
  'weight',
  'fx_rate',
] as const;
/** Position fields that may be null: carried as NaN. */
const nullablePositionFields: ReadonlySet<string> = new Set(['fx_rate']);
const CURRENCY_BYTES = 3;

/** Bytes of one position record after its symbol: currency, the f64 fields, price_ts, price_age_ms, u8 stale. */
const positionTailBytes = CURRENCY_BYTES + positionFields.length * 8 + 16 + 1;
/** Bytes from seq to the first position: seq, from_seq, as_of, tick_ts and the totals. */
const headTailBytes = 32 + totalsFields.length * 8;

const states: readonly PortfolioStatus[] = ['active', 'paused', 'closed'];
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** An update as the binary frame carries it; from_seq === seq when nothing was merged. */
export type BinaryUpdate = PortfolioUpdate & { from_seq: number };

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

export function encodeUpdate(update: PortfolioUpdate, fromSeq: number = update.seq): Uint8Array {
  const id = encoder.encode(update.portfolio_id);
  if (id.length > 255) throw new RangeError('portfolio id longer than 255 bytes');
  const positions = update.positions;
  if (positions.length > 0xffff) throw new RangeError('more than 65535 positions in one update');
  const symbols: Uint8Array[] = new Array(positions.length);
  let size = 7 + id.length + headTailBytes;
  for (let i = 0; i < positions.length; i++) {
    const s = encoder.encode(positions[i].symbol);
    if (s.length > 255) throw new RangeError('symbol longer than 255 bytes');
    symbols[i] = s;
    size += 1 + s.length + positionTailBytes;
  }
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FrameKind.update);
  view.setUint8(1, UPDATE_BINARY_VERSION);
  view.setUint8(2, Math.max(0, states.indexOf(update.state)));
  view.setUint8(3, fromSeq !== update.seq ? 1 : 0);
  view.setUint16(4, positions.length, true);
  view.setUint8(6, id.length);
  bytes.set(id, 7);
  let o = 7 + id.length;
  view.setFloat64(o, update.seq, true);
  view.setFloat64(o + 8, fromSeq, true);
  view.setFloat64(o + 16, update.as_of, true);
  view.setFloat64(o + 24, update.tick_ts, true);
  o += 32;
  for (const f of totalsFields) {
    view.setFloat64(o, update[f], true);
    o += 8;
  }
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i];
    const s = symbols[i];
    view.setUint8(o, s.length);
    bytes.set(s, o + 1);
    o += 1 + s.length;
    for (let k = 0; k < CURRENCY_BYTES; k++) bytes[o + k] = p.currency.charCodeAt(k) & 0x7f;
    o += CURRENCY_BYTES;
    for (const f of positionFields) {
      view.setFloat64(o, p[f] ?? NaN, true);
      o += 8;
    }
    view.setFloat64(o, p.price_ts ?? NaN, true);
    view.setFloat64(o + 8, p.price_age_ms ?? NaN, true);
    view.setUint8(o + 16, p.stale ? 1 : 0);
    o += 17;
  }
  return bytes;
}

function asBytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  return data instanceof Uint8Array
    ? data
    : ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);
}

/**
 * Any update layout the server sent (2, 3, 4). A version 4 record's tick records decode against
 * `held`, the positions the reader holds of that portfolio (heldPositionsOf its view): see delta.ts.
 */
export function decodeUpdate(data: ArrayBuffer | ArrayBufferView, held: HeldPositions | null = null): DecodeResult<BinaryUpdate> {
  const bytes = asBytes(data);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 7) return { ok: false, reason: 'frame shorter than its header' };
  if (view.getUint8(0) !== FrameKind.update) return { ok: false, reason: 'not an update frame' };
  if (view.getUint8(1) === DELTA_VERSION || view.getUint8(1) === DELTA_VERSION_V3) return decodeDelta(bytes, held);
  if (view.getUint8(1) !== UPDATE_BINARY_VERSION) return { ok: false, reason: 'unsupported version' };
  const state = states[view.getUint8(2)];
  if (state === undefined) return { ok: false, reason: 'unknown state' };
  const count = view.getUint16(4, true);
  const idLen = view.getUint8(6);
  let o = 7;
  if (bytes.length < o + idLen + headTailBytes) return { ok: false, reason: 'truncated header' };
  let portfolio_id: string;
  try {
    portfolio_id = decoder.decode(bytes.subarray(o, o + idLen));
  } catch {
    return { ok: false, reason: 'portfolio id is not UTF-8' };
  }
  o += idLen;
  const seq = view.getFloat64(o, true);
  const from_seq = view.getFloat64(o + 8, true);
  const as_of = view.getFloat64(o + 16, true);
  const tick_ts = view.getFloat64(o + 24, true);
  o += 32;
  const totals: Record<string, number> = {};
  for (const f of totalsFields) {
    totals[f] = view.getFloat64(o, true);
    o += 8;
  }
  const positions: PositionView[] = [];
  for (let i = 0; i < count; i++) {
    const read = readPositionSymbol(bytes, o, positionTailBytes);
    if (!read.ok) return read;
    const symbol = read.value;
    o += 1 + bytes[o];
    const currency = String.fromCharCode(bytes[o], bytes[o + 1], bytes[o + 2]);
    o += CURRENCY_BYTES;
    const p: Record<string, number | string | boolean | null> = { symbol, currency };
    for (const f of positionFields) {
      const v = view.getFloat64(o, true);
      p[f] = Number.isNaN(v) && nullablePositionFields.has(f) ? null : v;
      o += 8;
    }
    const priceTs = view.getFloat64(o, true);
    const age = view.getFloat64(o + 8, true);
    const stale = view.getUint8(o + 16);
    if (stale > 1) return { ok: false, reason: 'stale must be 0 or 1' };
    p.price_ts = Number.isNaN(priceTs) ? null : priceTs;
    p.price_age_ms = Number.isNaN(age) ? null : age;
    p.stale = stale === 1;
    o += 17;
    positions.push(p as unknown as PositionView);
  }
  if (o !== bytes.length) return { ok: false, reason: 'trailing bytes' };
  return {
    ok: true,
    value: { portfolio_id, seq, from_seq, as_of, tick_ts, state, positions, ...(totals as Record<(typeof totalsFields)[number], number>) },
  };
}

// ---- feed frames ----

export function encodeFeedRegister(symbols: readonly string[]): Uint8Array {
  if (symbols.length > 0xffff) throw new RangeError('more than 65535 symbols in one frame');
  const encoded = symbols.map((s) => encoder.encode(s));
  let size = 4;
  for (const e of encoded) {
    if (e.length > 255) throw new RangeError('symbol longer than 255 bytes');
    size += 1 + e.length;
  }
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FrameKind.feedRegister);
  view.setUint8(1, BINARY_VERSION);
  view.setUint16(2, symbols.length, true);
  let o = 4;
  for (const e of encoded) {
    bytes[o] = e.length;
    bytes.set(e, o + 1);
    o += 1 + e.length;
  }
  return bytes;
}

export interface BinaryTick {
  symbolId: number;
  price: number;
  ts: number;
  /** NaN = none. */
  size: number;
}

export function encodeFeedTicks(ticks: readonly BinaryTick[]): Uint8Array {
  const bytes = new Uint8Array(TICKS_HEADER_BYTES + ticks.length * TICK_RECORD_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FrameKind.feedTicks);
  view.setUint8(1, BINARY_VERSION);
  view.setUint16(2, 0, true);
  view.setUint32(4, ticks.length, true);
  let o = TICKS_HEADER_BYTES;
  for (const t of ticks) {
    view.setUint32(o, t.symbolId, true);
    view.setFloat64(o + 4, t.price, true);
    view.setFloat64(o + 12, t.ts, true);
    view.setFloat64(o + 20, t.size, true);
    o += TICK_RECORD_BYTES;
  }
  return bytes;
}

export type FeedFrame =
  | { kind: 'register'; symbols: string[] }
  | { kind: 'ticks'; count: number; view: DataView };

/** Checks a feed frame's framing (not the ticks' values). The ticks are read in place with readTick. */
export function decodeFeedFrame(data: ArrayBuffer | ArrayBufferView, symbolsPerFrameMax = 0xffff): DecodeResult<FeedFrame> {
  const bytes = asBytes(data);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) return { ok: false, reason: 'frame shorter than 4 bytes' };
  const kind = view.getUint8(0);
  if (view.getUint8(1) !== BINARY_VERSION) return { ok: false, reason: 'unsupported version' };
  if (kind === FrameKind.feedRegister) {
    const count = view.getUint16(2, true);
    if (count > symbolsPerFrameMax) return { ok: false, reason: `more than ${symbolsPerFrameMax} symbols` };
    const symbols: string[] = [];
    let o = 4;
    for (let i = 0; i < count; i++) {
      if (o >= bytes.length) return { ok: false, reason: 'truncated symbol' };
      const len = bytes[o];
      if (o + 1 + len > bytes.length) return { ok: false, reason: 'truncated symbol' };
      try {
        symbols.push(decoder.decode(bytes.subarray(o + 1, o + 1 + len)));
      } catch {
        return { ok: false, reason: 'symbol is not UTF-8' };
      }
      o += 1 + len;
    }
    if (o !== bytes.length) return { ok: false, reason: 'trailing bytes' };
    return { ok: true, value: { kind: 'register', symbols } };
  }
  if (kind === FrameKind.feedTicks) {
    if (bytes.length < TICKS_HEADER_BYTES) return { ok: false, reason: 'frame shorter than its header' };
    if (view.getUint16(2, true) !== 0) return { ok: false, reason: 'reserved bytes must be 0' };
    const count = view.getUint32(4, true);
    if (bytes.length !== TICKS_HEADER_BYTES + count * TICK_RECORD_BYTES) {
      return { ok: false, reason: `length must be ${TICKS_HEADER_BYTES} + ${TICK_RECORD_BYTES} x count` };
    }
    return { ok: true, value: { kind: 'ticks', count, view } };
  }
  return { ok: false, reason: 'unknown frame kind' };
}

/** Reads record i of a ticks frame into `out` (no allocation on the hot path). */
export function readTick(view: DataView, i: number, out: BinaryTick): BinaryTick {
  const o = TICKS_HEADER_BYTES + i * TICK_RECORD_BYTES;
  out.symbolId = view.getUint32(o, true);
  out.price = view.getFloat64(o + 4, true);
  out.ts = view.getFloat64(o + 12, true);
  out.size = view.getFloat64(o + 20, true);
  return out;
}
