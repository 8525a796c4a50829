// Binary delta, layout version 3: what a binary subscriber gets per portfolio change, and the
// per-connection "updates" frame that carries several of them. One module holds every offset: the
// shard writes deltas with these constants straight from the kernel columns (src/shard/deltaWriter.ts),
// the SDK reads them here, and the bench's minimal reader and the limit relay use the same offsets.
// Pure and browser-safe. All little-endian; f64 is IEEE-754 double.
//
// Version 3 carries only what a client cannot derive. Derived on decode, with the engine's own
// expressions (so the result is bit for bit what the engine would have sent):
//   position weight       = fx_rate !== null && gross_exposure > 0 ? |market_value| / gross_exposure * 100 : 0
//   position price_age_ms = price_ts === null ? null : as_of - price_ts
//   total_return          = realized_pnl + unrealized_pnl
//   return_rate           = total_return / capital * 100 (on cost_basis when capital is 0; 0 when both are)
// market_value, unrealized_pnl and the position return_rate are carried: they come from kernel columns
// (contract multipliers and FX enter them there) and a client could not recompute them exactly.
//
// Delta record (fixed offsets up to the portfolio id, so a reader needs no parsing for seq / tick_ts):
//   0  u8  kind = 0x01            1  u8 version = 3      2 u8 state (0 active, 1 paused, 2 closed)
//   3  u8  flags (bit 0: merged, from_seq < seq)          4 u16 position count P
//   6  u8  id length N            7  u8 reserved = 0
//   8  f64 seq  16 f64 from_seq  24 f64 as_of  32 f64 tick_ts
//   40 f64 x 8: cash, capital, holdings_value, cost_basis, unrealized_pnl, realized_pnl, equity, gross_exposure
//   104 u32 stale_positions  108 u32 unpriced_positions  112 u32 unconverted_positions
//   116 N bytes portfolio id (UTF-8)
//   then P position records: u8 symbol length M | M bytes symbol (UTF-8) | then 76 bytes:
//     +0 3 bytes currency (ASCII) | +3 u8 flags (bit 0: stale) | +4 f64 x 9: quantity, avg_cost, last_price,
//     fx_rate (NaN = null), market_value, unrealized_pnl, realized_pnl, return_rate, price_ts (NaN = null)
//   Size: 116 + N + sum over positions of (1 + M + 76).
//
// Updates frame (per-connection frames, subscribe option frames: "connection"):
//   0 u8 kind = 0x02 | 1 u8 version = 3 | 2 u16 reserved = 0 | 4 u32 count K
//   then K times: u32 record length L | L bytes: one delta record (above)

import type { PortfolioStatus, PortfolioUpdate, PositionView } from '../domain/types.js';

export const DELTA_VERSION = 3;
export const DeltaKind = { delta: 0x01, updates: 0x02 } as const;

/** Byte offsets of a delta record's fixed head. */
export const DeltaHead = {
  kind: 0,
  version: 1,
  state: 2,
  flags: 3,
  positionCount: 4,
  idLength: 6,
  reserved: 7,
  seq: 8,
  fromSeq: 16,
  asOf: 24,
  tickTs: 32,
  cash: 40,
  capital: 48,
  holdingsValue: 56,
  costBasis: 64,
  unrealizedPnl: 72,
  realizedPnl: 80,
  equity: 88,
  grossExposure: 96,
  stalePositions: 104,
  unpricedPositions: 108,
  unconvertedPositions: 112,
  id: 116,
} as const;
export const DELTA_HEAD_BYTES = 116;

/** Byte offsets inside a position record, from the end of its symbol. */
export const DeltaPosition = {
  currency: 0,
  flags: 3,
  quantity: 4,
  avgCost: 12,
  lastPrice: 20,
  fxRate: 28,
  marketValue: 36,
  unrealizedPnl: 44,
  realizedPnl: 52,
  returnRate: 60,
  priceTs: 68,
} as const;
export const DELTA_POSITION_TAIL_BYTES = 76;
export const DELTA_FLAG_MERGED = 1;
export const POSITION_FLAG_STALE = 1;

export const UPDATES_HEADER_BYTES = 8;
export const UPDATES_RECORD_PREFIX_BYTES = 4;

export const deltaStates: readonly PortfolioStatus[] = ['active', 'paused', 'closed'];

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Bytes of a delta record: head, id, and per position its symbol length byte, symbol and tail. */
export function deltaBytes(idBytes: number, symbolBytesTotal: number, positions: number): number {
  return DELTA_HEAD_BYTES + idBytes + symbolBytesTotal + positions * (1 + DELTA_POSITION_TAIL_BYTES);
}

/** The update's from_seq as the record says (= seq when not merged). */
export type DeltaUpdate = PortfolioUpdate & { from_seq: number };

export type DeltaResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * A position record's u8-length-prefixed UTF-8 symbol at `o`, checked to be followed by `tailBytes` of
 * fixed fields: the one reader of that prefix for both update layouts (v2 in binary.ts, v3 here).
 */
export function readPositionSymbol(bytes: Uint8Array, o: number, tailBytes: number): DeltaResult<string> {
  if (o + 1 > bytes.length) return { ok: false, reason: 'truncated position' };
  const len = bytes[o];
  if (o + 1 + len + tailBytes > bytes.length) return { ok: false, reason: 'truncated position' };
  try {
    return { ok: true, value: decoder.decode(bytes.subarray(o + 1, o + 1 + len)) };
  } catch {
    return { ok: false, reason: 'symbol is not UTF-8' };
  }
}

/** Writes the head (everything up to the portfolio id); the caller writes id and positions. */
export function writeDeltaHead(
  view: DataView,
  o: number,
  state: number,
  positions: number,
  idLength: number,
  seq: number,
  fromSeq: number,
  asOf: number,
  tickTs: number,
): void {
  view.setUint8(o, DeltaKind.delta);
  view.setUint8(o + 1, DELTA_VERSION);
  view.setUint8(o + 2, state);
  view.setUint8(o + 3, fromSeq !== seq ? DELTA_FLAG_MERGED : 0);
  view.setUint16(o + 4, positions, true);
  view.setUint8(o + 6, idLength);
  view.setUint8(o + 7, 0);
  view.setFloat64(o + DeltaHead.seq, seq, true);
  view.setFloat64(o + DeltaHead.fromSeq, fromSeq, true);
  view.setFloat64(o + DeltaHead.asOf, asOf, true);
  view.setFloat64(o + DeltaHead.tickTs, tickTs, true);
}

/**
 * Encodes an update object as a version 3 record: the reference the shard's column writer is tested
 * against, and the server's path for updates that exist as objects (merged pending deltas).
 */
export function encodeDelta(update: PortfolioUpdate, fromSeq: number = update.seq): Uint8Array {
  const id = encoder.encode(update.portfolio_id);
  if (id.length > 255) throw new RangeError('portfolio id longer than 255 bytes');
  const positions = update.positions;
  if (positions.length > 0xffff) throw new RangeError('more than 65535 positions in one update');
  const symbols: Uint8Array[] = new Array(positions.length);
  let symbolBytes = 0;
  for (let i = 0; i < positions.length; i++) {
    const s = encoder.encode(positions[i].symbol);
    if (s.length > 255) throw new RangeError('symbol longer than 255 bytes');
    symbols[i] = s;
    symbolBytes += s.length;
  }
  const bytes = new Uint8Array(deltaBytes(id.length, symbolBytes, positions.length));
  const view = new DataView(bytes.buffer);
  writeDeltaHead(view, 0, Math.max(0, deltaStates.indexOf(update.state)), positions.length, id.length, update.seq, fromSeq, update.as_of, update.tick_ts);
  view.setFloat64(DeltaHead.cash, update.cash, true);
  view.setFloat64(DeltaHead.capital, update.capital, true);
  view.setFloat64(DeltaHead.holdingsValue, update.holdings_value, true);
  view.setFloat64(DeltaHead.costBasis, update.cost_basis, true);
  view.setFloat64(DeltaHead.unrealizedPnl, update.unrealized_pnl, true);
  view.setFloat64(DeltaHead.realizedPnl, update.realized_pnl, true);
  view.setFloat64(DeltaHead.equity, update.equity, true);
  view.setFloat64(DeltaHead.grossExposure, update.gross_exposure, true);
  view.setUint32(DeltaHead.stalePositions, update.stale_positions, true);
  view.setUint32(DeltaHead.unpricedPositions, update.unpriced_positions, true);
  view.setUint32(DeltaHead.unconvertedPositions, update.unconverted_positions, true);
  bytes.set(id, DeltaHead.id);
  let o = DeltaHead.id + id.length;
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i];
    const s = symbols[i];
    bytes[o] = s.length;
    bytes.set(s, o + 1);
    o += 1 + s.length;
    writePositionTail(view, o, p.currency, p.stale, p.quantity, p.avg_cost, p.last_price, p.fx_rate ?? NaN, p.market_value, p.unrealized_pnl, p.realized_pnl, p.return_rate, p.price_ts ?? NaN);
    o += DELTA_POSITION_TAIL_BYTES;
  }
  return bytes;
}

/** One position's fixed part (after its symbol). */
export function writePositionTail(
  view: DataView,
  o: number,
  currency: string,
  stale: boolean,
  quantity: number,
  avgCost: number,
  lastPrice: number,
  fxRate: number,
  marketValue: number,
  unrealizedPnl: number,
  realizedPnl: number,
  returnRate: number,
  priceTs: number,
): void {
  view.setUint8(o, currency.charCodeAt(0) & 0x7f);
  view.setUint8(o + 1, currency.charCodeAt(1) & 0x7f);
  view.setUint8(o + 2, currency.charCodeAt(2) & 0x7f);
  view.setUint8(o + DeltaPosition.flags, stale ? POSITION_FLAG_STALE : 0);
  view.setFloat64(o + DeltaPosition.quantity, quantity, true);
  view.setFloat64(o + DeltaPosition.avgCost, avgCost, true);
  view.setFloat64(o + DeltaPosition.lastPrice, lastPrice, true);
  view.setFloat64(o + DeltaPosition.fxRate, fxRate, true);
  view.setFloat64(o + DeltaPosition.marketValue, marketValue, true);
  view.setFloat64(o + DeltaPosition.unrealizedPnl, unrealizedPnl, true);
  view.setFloat64(o + DeltaPosition.realizedPnl, realizedPnl, true);
  view.setFloat64(o + DeltaPosition.returnRate, returnRate, true);
  view.setFloat64(o + DeltaPosition.priceTs, priceTs, true);
}

/** The engine's portfolio return rate (src/shard/views.ts returnRateOf), the same expression. */
function returnRateOf(totalReturn: number, capital: number, costBasis: number): number {
  if (capital !== 0) return (totalReturn / capital) * 100;
  if (costBasis !== 0) return (totalReturn / costBasis) * 100;
  return 0;
}

/** Checks a record's framing and reads it into an update object with the derived figures filled in. */
export function decodeDelta(bytes: Uint8Array): DeltaResult<DeltaUpdate> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < DELTA_HEAD_BYTES) return { ok: false, reason: 'frame shorter than its header' };
  if (bytes[0] !== DeltaKind.delta) return { ok: false, reason: 'not an update frame' };
  if (bytes[1] !== DELTA_VERSION) return { ok: false, reason: 'unsupported version' };
  const state = deltaStates[bytes[DeltaHead.state]];
  if (state === undefined) return { ok: false, reason: 'unknown state' };
  if (bytes[DeltaHead.reserved] !== 0) return { ok: false, reason: 'reserved byte must be 0' };
  const count = view.getUint16(DeltaHead.positionCount, true);
  const idLen = bytes[DeltaHead.idLength];
  if (bytes.length < DELTA_HEAD_BYTES + idLen) return { ok: false, reason: 'truncated header' };
  let portfolio_id: string;
  try {
    portfolio_id = decoder.decode(bytes.subarray(DeltaHead.id, DeltaHead.id + idLen));
  } catch {
    return { ok: false, reason: 'portfolio id is not UTF-8' };
  }
  const as_of = view.getFloat64(DeltaHead.asOf, true);
  const gross = view.getFloat64(DeltaHead.grossExposure, true);
  const capital = view.getFloat64(DeltaHead.capital, true);
  const costBasis = view.getFloat64(DeltaHead.costBasis, true);
  const unrealized = view.getFloat64(DeltaHead.unrealizedPnl, true);
  const realized = view.getFloat64(DeltaHead.realizedPnl, true);
  const totalReturn = realized + unrealized;
  const positions: PositionView[] = [];
  let o = DeltaHead.id + idLen;
  for (let i = 0; i < count; i++) {
    const symbol = readPositionSymbol(bytes, o, DELTA_POSITION_TAIL_BYTES);
    if (!symbol.ok) return symbol;
    o += 1 + bytes[o];
    const p = readPosition(view, bytes, o, symbol.value, as_of, gross);
    if (p === null) return { ok: false, reason: 'position flags must be 0 or 1' };
    positions.push(p);
    o += DELTA_POSITION_TAIL_BYTES;
  }
  if (o !== bytes.length) return { ok: false, reason: 'trailing bytes' };
  return {
    ok: true,
    value: {
      portfolio_id,
      seq: view.getFloat64(DeltaHead.seq, true),
      from_seq: view.getFloat64(DeltaHead.fromSeq, true),
      as_of,
      state,
      tick_ts: view.getFloat64(DeltaHead.tickTs, true),
      cash: view.getFloat64(DeltaHead.cash, true),
      capital,
      holdings_value: view.getFloat64(DeltaHead.holdingsValue, true),
      cost_basis: costBasis,
      unrealized_pnl: unrealized,
      realized_pnl: realized,
      total_return: totalReturn,
      return_rate: returnRateOf(totalReturn, capital, costBasis),
      equity: view.getFloat64(DeltaHead.equity, true),
      gross_exposure: gross,
      stale_positions: view.getUint32(DeltaHead.stalePositions, true),
      unpriced_positions: view.getUint32(DeltaHead.unpricedPositions, true),
      unconverted_positions: view.getUint32(DeltaHead.unconvertedPositions, true),
      positions,
    },
  };
}

function readPosition(view: DataView, bytes: Uint8Array, o: number, symbol: string, asOf: number, gross: number): PositionView | null {
  const flags = bytes[o + DeltaPosition.flags];
  if (flags > 1) return null;
  const fx = view.getFloat64(o + DeltaPosition.fxRate, true);
  const mv = view.getFloat64(o + DeltaPosition.marketValue, true);
  const priceTs = view.getFloat64(o + DeltaPosition.priceTs, true);
  const unconverted = Number.isNaN(fx);
  return {
    symbol,
    currency: String.fromCharCode(bytes[o], bytes[o + 1], bytes[o + 2]),
    fx_rate: unconverted ? null : fx,
    quantity: view.getFloat64(o + DeltaPosition.quantity, true),
    avg_cost: view.getFloat64(o + DeltaPosition.avgCost, true),
    last_price: view.getFloat64(o + DeltaPosition.lastPrice, true),
    market_value: mv,
    unrealized_pnl: view.getFloat64(o + DeltaPosition.unrealizedPnl, true),
    realized_pnl: view.getFloat64(o + DeltaPosition.realizedPnl, true),
    return_rate: view.getFloat64(o + DeltaPosition.returnRate, true),
    // The same expression as src/shard/views.ts positionView: equal bit for bit.
    weight: gross > 0 && !unconverted ? (Math.abs(mv) / gross) * 100 : 0,
    price_ts: Number.isNaN(priceTs) ? null : priceTs,
    price_age_ms: Number.isNaN(priceTs) ? null : asOf - priceTs,
    stale: flags === POSITION_FLAG_STALE,
  };
}

// ---- per-connection frames ----

/** One frame carrying several delta records (each one already encoded, copied as is). */
export function encodeUpdatesFrame(records: readonly Uint8Array[]): Uint8Array {
  let size = UPDATES_HEADER_BYTES;
  for (const r of records) size += UPDATES_RECORD_PREFIX_BYTES + r.length;
  const bytes = new Uint8Array(size);
  writeUpdatesFrame(bytes, records);
  return bytes;
}

/** Writes the frame into `out` (at least the frame's size); returns the bytes written. */
export function writeUpdatesFrame(out: Uint8Array, records: readonly Uint8Array[]): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint8(0, DeltaKind.updates);
  view.setUint8(1, DELTA_VERSION);
  view.setUint16(2, 0, true);
  view.setUint32(4, records.length, true);
  let o = UPDATES_HEADER_BYTES;
  for (const r of records) {
    view.setUint32(o, r.length, true);
    out.set(r, o + UPDATES_RECORD_PREFIX_BYTES);
    o += UPDATES_RECORD_PREFIX_BYTES + r.length;
  }
  return o;
}

/** Splits an updates frame into its records (views into `bytes`, not copies); framing only. */
export function splitUpdatesFrame(bytes: Uint8Array, recordsMax = 1 << 20): DeltaResult<Uint8Array[]> {
  if (bytes.length < UPDATES_HEADER_BYTES) return { ok: false, reason: 'frame shorter than its header' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== DeltaKind.updates) return { ok: false, reason: 'not an updates frame' };
  if (bytes[1] !== DELTA_VERSION) return { ok: false, reason: 'unsupported version' };
  if (view.getUint16(2, true) !== 0) return { ok: false, reason: 'reserved bytes must be 0' };
  const count = view.getUint32(4, true);
  if (count > recordsMax) return { ok: false, reason: `more than ${recordsMax} records` };
  const out: Uint8Array[] = [];
  let o = UPDATES_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (o + UPDATES_RECORD_PREFIX_BYTES > bytes.length) return { ok: false, reason: 'truncated record' };
    const len = view.getUint32(o, true);
    o += UPDATES_RECORD_PREFIX_BYTES;
    if (o + len > bytes.length) return { ok: false, reason: 'truncated record' };
    out.push(bytes.subarray(o, o + len));
    o += len;
  }
  if (o !== bytes.length) return { ok: false, reason: 'trailing bytes' };
  return { ok: true, value: out };
}

/** Reads seq and tick_ts of the record at `o` without decoding it (the minimal reader's fields). */
export function peekDelta(view: DataView, o: number): { seq: number; fromSeq: number; tickTs: number } {
  return { seq: view.getFloat64(o + DeltaHead.seq, true), fromSeq: view.getFloat64(o + DeltaHead.fromSeq, true), tickTs: view.getFloat64(o + DeltaHead.tickTs, true) };
}
