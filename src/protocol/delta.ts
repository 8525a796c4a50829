// Binary delta, layout version 4: what a binary subscriber gets per portfolio change, and the
// per-connection "updates" frame that carries several of them. One module holds every offset: the
// shard writes deltas with these constants straight from the kernel columns (src/shard/deltaWriter.ts),
// the SDK reads them here, and the bench's minimal reader and the limit relay use the same offsets.
// Pure and browser-safe. All little-endian; f64 is IEEE-754 double.
//
// Version 4 carries only what a client cannot derive, as version 3 did for the totals, and now per
// position too: a position a tick only re-marked (a "tick record") carries its price, price_ts and, when
// its rate moved, fx_rate. The reader takes quantity, avg_cost, realized_pnl, currency and fx_rate from
// the position it holds (its snapshot, or the last record that carried the position in full) and
// recomputes market value, unrealized P&L and return rate with the kernel's own expressions, so the
// figures are bit for bit the engine's:
//   market_value   = fx_rate === null ? quantity * price : quantity * price * fx_rate
//   unrealized_pnl = fx_rate === null ? (price - avg_cost) * quantity : (price - avg_cost) * quantity * fx_rate
//   cost           = |quantity| * avg_cost * (fx_rate === null ? 1 : fx_rate)
//   return_rate    = cost !== 0 ? unrealized_pnl / cost * 100 : 0
// The shard writes a tick record only when those expressions give the engine's figures: the quantity
// shown equals the kernel's effective quantity (multiplier 1), quantity, avg_cost and the position's
// state-side fields are what the reader holds, and the kernel's columns equal the expressions (checked
// per row); otherwise the position goes in full. A closed position that stays closed is not sent.
// Derived on decode, as in version 3:
//   position weight       = fx_rate !== null && gross_exposure > 0 ? |market_value| / gross_exposure * 100 : 0
//   position price_age_ms = price_ts === null ? null : as_of - price_ts
//   total_return          = realized_pnl + unrealized_pnl
//   return_rate           = total_return / capital * 100 (on cost_basis when capital is 0; 0 when both are)
//
// Delta record (fixed offsets up to the portfolio id, so a reader needs no parsing for seq / tick_ts):
//   0  u8  kind = 0x01            1  u8 version = 4      2 u8 state (0 active, 1 paused, 2 closed)
//   3  u8  flags (bit 0: merged, from_seq < seq; bit 1: carries a full position record or a rate move,
//          i.e. what a reader holds of its positions changes)      4 u16 position count P
//   6  u8  id length N            7  u8 reserved = 0
//   8  f64 seq  16 f64 from_seq  24 f64 as_of  32 f64 tick_ts
//   40 f64 x 8: cash, capital, holdings_value, cost_basis, unrealized_pnl, realized_pnl, equity, gross_exposure
//   104 u32 stale_positions  108 u32 unpriced_positions  112 u32 unconverted_positions
//   116 N bytes portfolio id (UTF-8)
//   then P position records: u8 symbol length M | M bytes symbol (UTF-8) | u8 flags (bit 0: stale,
//   bit 1: full, bit 2: rate, tick records only) | then
//     full (76 bytes with the flags): 3 bytes currency (ASCII) | f64 x 9: quantity, avg_cost, last_price,
//       fx_rate (NaN = null), market_value, unrealized_pnl, realized_pnl, return_rate, price_ts (NaN = null)
//     tick (17 bytes with the flags, 25 with rate): f64 last_price | f64 price_ts (NaN = null)
//       | f64 fx_rate (NaN = null; only with bit 2)
//   Size: 116 + N + sum over positions of (1 + M + 76 | 17 | 25).
//
// Version 3 (read, no longer written; encodeDeltaV3 is its reference): the same head (flags bit 0
// only), and every position as: u8 M | M bytes symbol | 3 bytes currency | u8 flags (bit 0: stale) |
// f64 x 9 as a full record above (76 bytes after the symbol). Its records need nothing held.
//
// Updates frame (per-connection frames, subscribe option frames: "connection"):
//   0 u8 kind = 0x02 | 1 u8 version = 4 | 2 u16 reserved = 0 | 4 u32 count K
//   then K times: u32 record length L | L bytes: one delta record (above)
// (version 3 frames, whose records are version 3, are still read)

import type { PortfolioStatus, PortfolioUpdate, PositionView } from '../domain/types.js';

/** The layout the server writes. */
export const DELTA_VERSION = 4;
/** The previous layout, still read (its records are complete by themselves). */
export const DELTA_VERSION_V3 = 3;
export const DeltaKind = { delta: 0x01, updates: 0x02 } as const;

/** Byte offsets of a delta record's fixed head (both versions). */
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

/** Version 4: byte offsets inside a full position record, from the end of its symbol. */
export const DeltaFull = {
  flags: 0,
  currency: 1,
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
export const DELTA_FULL_BYTES = 76;
/** Version 4: byte offsets inside a tick record, from the end of its symbol. */
export const DeltaTick = { flags: 0, lastPrice: 1, priceTs: 9, fxRate: 17 } as const;
export const DELTA_TICK_BYTES = 17;
export const DELTA_TICK_RATE_BYTES = 25;

/** Version 3: byte offsets inside a position record, from the end of its symbol. */
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
/** The record carries a full position record or a rate move: what a reader holds of its positions changes. */
export const DELTA_FLAG_HELD = 2;
export const POSITION_FLAG_STALE = 1;
export const POSITION_FLAG_FULL = 2;
export const POSITION_FLAG_RATE = 4;

export const UPDATES_HEADER_BYTES = 8;
export const UPDATES_RECORD_PREFIX_BYTES = 4;

export const deltaStates: readonly PortfolioStatus[] = ['active', 'paused', 'closed'];

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The update's from_seq as the record says (= seq when not merged). */
export type DeltaUpdate = PortfolioUpdate & { from_seq: number };

export type DeltaResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** What a reader holds of an open position, and what a version 4 tick record leaves out. */
export interface HeldPosition {
  readonly quantity: number;
  readonly avg_cost: number;
  readonly realized_pnl: number;
  readonly currency: string;
  readonly fx_rate: number | null;
}

/** A reader's positions by symbol (a Map of a view's positions will do: heldPositionsOf). */
export interface HeldPositions {
  get(symbol: string): HeldPosition | undefined;
}

/** The positions of a snapshot (or a view kept from one): what a tick record of its portfolio needs. */
export function heldPositionsOf(view: { positions: readonly PositionView[] }): HeldPositions {
  return new Map(view.positions.map((p) => [p.symbol, p]));
}

/**
 * A position record's u8-length-prefixed UTF-8 symbol at `o`, checked to be followed by `tailBytes` of
 * fixed fields: the one reader of that prefix for every update layout (v2 in binary.ts, v3 and v4 here).
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

/** Writes the head (everything up to the portfolio id; flags: merged); the caller writes id and positions. */
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
  version: number = DELTA_VERSION,
): void {
  view.setUint8(o, DeltaKind.delta);
  view.setUint8(o + 1, version);
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
 * Encodes an update object as a version 4 record, every position in full (a reader needs nothing
 * held): the server's path for updates that exist as objects (merged pending deltas), and the
 * reference the shard's column writer is tested against.
 */
export function encodeDelta(update: PortfolioUpdate, fromSeq: number = update.seq): Uint8Array {
  return encodeWith(update, fromSeq, DELTA_VERSION);
}

/** Encodes a version 3 record: kept to prove readers still take the previous layout; the server never writes it. */
export function encodeDeltaV3(update: PortfolioUpdate, fromSeq: number = update.seq): Uint8Array {
  return encodeWith(update, fromSeq, DELTA_VERSION_V3);
}

function encodeWith(update: PortfolioUpdate, fromSeq: number, version: number): Uint8Array {
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
  // Both versions' complete position records are 76 bytes after the symbol.
  const bytes = new Uint8Array(DELTA_HEAD_BYTES + id.length + symbolBytes + positions.length * (1 + DELTA_FULL_BYTES));
  const view = new DataView(bytes.buffer);
  writeDeltaHead(view, 0, Math.max(0, deltaStates.indexOf(update.state)), positions.length, id.length, update.seq, fromSeq, update.as_of, update.tick_ts, version);
  if (version === DELTA_VERSION && positions.length > 0) bytes[DeltaHead.flags] |= DELTA_FLAG_HELD;
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
    const fx = p.fx_rate ?? NaN;
    const ts = p.price_ts ?? NaN;
    if (version === DELTA_VERSION) writeFullPosition(view, o, p.currency, p.stale, p.quantity, p.avg_cost, p.last_price, fx, p.market_value, p.unrealized_pnl, p.realized_pnl, p.return_rate, ts);
    else writePositionTail(view, o, p.currency, p.stale, p.quantity, p.avg_cost, p.last_price, fx, p.market_value, p.unrealized_pnl, p.realized_pnl, p.return_rate, ts);
    o += DELTA_FULL_BYTES;
  }
  return bytes;
}

/** Version 4: one full position record (after its symbol). */
export function writeFullPosition(
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
  view.setUint8(o, POSITION_FLAG_FULL | (stale ? POSITION_FLAG_STALE : 0));
  view.setUint8(o + DeltaFull.currency, currency.charCodeAt(0) & 0x7f);
  view.setUint8(o + DeltaFull.currency + 1, currency.charCodeAt(1) & 0x7f);
  view.setUint8(o + DeltaFull.currency + 2, currency.charCodeAt(2) & 0x7f);
  view.setFloat64(o + DeltaFull.quantity, quantity, true);
  view.setFloat64(o + DeltaFull.avgCost, avgCost, true);
  view.setFloat64(o + DeltaFull.lastPrice, lastPrice, true);
  view.setFloat64(o + DeltaFull.fxRate, fxRate, true);
  view.setFloat64(o + DeltaFull.marketValue, marketValue, true);
  view.setFloat64(o + DeltaFull.unrealizedPnl, unrealizedPnl, true);
  view.setFloat64(o + DeltaFull.realizedPnl, realizedPnl, true);
  view.setFloat64(o + DeltaFull.returnRate, returnRate, true);
  view.setFloat64(o + DeltaFull.priceTs, priceTs, true);
}

/** Version 3: one position's fixed part (after its symbol). */
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

/**
 * Checks a record's framing and reads it into an update object with the derived figures filled in.
 * A version 4 record's tick records need `held`: the positions the reader holds at the seq before this
 * record (its snapshot plus the records since); without it, or without the position, the record is
 * refused ('position not held'), never guessed.
 */
export function decodeDelta(bytes: Uint8Array, held: HeldPositions | null = null): DeltaResult<DeltaUpdate> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < DELTA_HEAD_BYTES) return { ok: false, reason: 'frame shorter than its header' };
  if (bytes[0] !== DeltaKind.delta) return { ok: false, reason: 'not an update frame' };
  const version = bytes[1];
  if (version !== DELTA_VERSION && version !== DELTA_VERSION_V3) return { ok: false, reason: 'unsupported version' };
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
    let p: PositionView | string;
    if (version === DELTA_VERSION_V3) {
      const symbol = readPositionSymbol(bytes, o, DELTA_POSITION_TAIL_BYTES);
      if (!symbol.ok) return symbol;
      o += 1 + bytes[o];
      p = readPositionV3(view, bytes, o, symbol.value, as_of, gross);
      o += DELTA_POSITION_TAIL_BYTES;
    } else {
      // The flags byte says how long the rest is: the shortest record is checked first.
      const symbol = readPositionSymbol(bytes, o, DELTA_TICK_BYTES);
      if (!symbol.ok) return symbol;
      o += 1 + bytes[o];
      const flags = bytes[o];
      const size = (flags & POSITION_FLAG_FULL) !== 0 ? DELTA_FULL_BYTES : (flags & POSITION_FLAG_RATE) !== 0 ? DELTA_TICK_RATE_BYTES : DELTA_TICK_BYTES;
      if (o + size > bytes.length) return { ok: false, reason: 'truncated position' };
      p = readPositionV4(view, bytes, o, symbol.value, as_of, gross, held);
      o += size;
    }
    if (typeof p === 'string') return { ok: false, reason: p };
    positions.push(p);
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

function readPositionV3(view: DataView, bytes: Uint8Array, o: number, symbol: string, asOf: number, gross: number): PositionView | string {
  const flags = bytes[o + DeltaPosition.flags];
  if (flags > 1) return 'position flags must be 0 or 1';
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

function readPositionV4(view: DataView, bytes: Uint8Array, o: number, symbol: string, asOf: number, gross: number, held: HeldPositions | null): PositionView | string {
  const flags = bytes[o];
  if (flags > 7 || (flags & (POSITION_FLAG_FULL | POSITION_FLAG_RATE)) === (POSITION_FLAG_FULL | POSITION_FLAG_RATE)) return 'unknown position flags';
  const stale = (flags & POSITION_FLAG_STALE) !== 0;
  if ((flags & POSITION_FLAG_FULL) !== 0) {
    const fx = view.getFloat64(o + DeltaFull.fxRate, true);
    const mv = view.getFloat64(o + DeltaFull.marketValue, true);
    const priceTs = view.getFloat64(o + DeltaFull.priceTs, true);
    const unconverted = Number.isNaN(fx);
    const c = o + DeltaFull.currency;
    return {
      symbol,
      currency: String.fromCharCode(bytes[c], bytes[c + 1], bytes[c + 2]),
      fx_rate: unconverted ? null : fx,
      quantity: view.getFloat64(o + DeltaFull.quantity, true),
      avg_cost: view.getFloat64(o + DeltaFull.avgCost, true),
      last_price: view.getFloat64(o + DeltaFull.lastPrice, true),
      market_value: mv,
      unrealized_pnl: view.getFloat64(o + DeltaFull.unrealizedPnl, true),
      realized_pnl: view.getFloat64(o + DeltaFull.realizedPnl, true),
      return_rate: view.getFloat64(o + DeltaFull.returnRate, true),
      weight: gross > 0 && !unconverted ? (Math.abs(mv) / gross) * 100 : 0,
      price_ts: Number.isNaN(priceTs) ? null : priceTs,
      price_age_ms: Number.isNaN(priceTs) ? null : asOf - priceTs,
      stale,
    };
  }
  const h = held?.get(symbol);
  if (h === undefined || h.quantity === 0) return 'position not held (a tick record needs the position from the snapshot or an earlier record)';
  const price = view.getFloat64(o + DeltaTick.lastPrice, true);
  const priceTs = view.getFloat64(o + DeltaTick.priceTs, true);
  let fx = h.fx_rate;
  if ((flags & POSITION_FLAG_RATE) !== 0) {
    const rate = view.getFloat64(o + DeltaTick.fxRate, true);
    fx = Number.isNaN(rate) ? null : rate;
  }
  const q = h.quantity;
  const avg = h.avg_cost;
  // The kernel's expressions (src/kernel/jsBackend.ts walkSymbol) and positionView's for an unconverted
  // position, operation for operation: the same bits.
  const mv = fx === null ? q * price : q * price * fx;
  const upnl = fx === null ? (price - avg) * q : (price - avg) * q * fx;
  const cost = Math.abs(q) * avg * (fx === null ? 1 : fx);
  return {
    symbol,
    currency: h.currency,
    fx_rate: fx,
    quantity: q,
    avg_cost: avg,
    last_price: price,
    market_value: mv,
    unrealized_pnl: upnl,
    realized_pnl: h.realized_pnl,
    return_rate: cost !== 0 ? (upnl / cost) * 100 : 0,
    weight: gross > 0 && fx !== null ? (Math.abs(mv) / gross) * 100 : 0,
    price_ts: Number.isNaN(priceTs) ? null : priceTs,
    price_age_ms: Number.isNaN(priceTs) ? null : asOf - priceTs,
    stale,
  };
}

/**
 * What a reader on the server holds of one portfolio's positions, kept from its snapshot and the
 * records after it (the engine's subscriptions, the cluster's relay): the tick records of the
 * stream's next record decode against it. Only records flagged DELTA_FLAG_HELD are read through (a
 * full position or a rate move); the others only advance its seq. A record that does not follow the
 * seq it holds (a gap) empties it until the next reset: its tick records are then refused, never
 * decoded against positions that may have changed.
 */
export class HeldBook implements HeldPositions {
  private readonly positions = new Map<string, { quantity: number; avg_cost: number; realized_pnl: number; currency: string; fx_rate: number | null }>();
  /** Seq of the last record (or snapshot) applied; -1: nothing held. */
  seq = -1;

  get(symbol: string): HeldPosition | undefined {
    return this.positions.get(symbol);
  }

  /** The snapshot's positions (copied), as of its seq. */
  reset(snapshot: { seq: number; positions: readonly PositionView[] }): void {
    this.positions.clear();
    for (const p of snapshot.positions) {
      if (p.quantity !== 0) this.positions.set(p.symbol, { quantity: p.quantity, avg_cost: p.avg_cost, realized_pnl: p.realized_pnl, currency: p.currency, fx_rate: p.fx_rate });
    }
    this.seq = snapshot.seq;
  }

  /**
   * Applies the next record of the stream (seq above the one held; older ones are ignored). `seq` and
   * `fromSeq` are the record's (callers have read them already): a record that only re-marks costs
   * no read here, and no allocation.
   */
  observe(bytes: Uint8Array, seq: number, fromSeq: number): void {
    if (this.seq < 0 || seq <= this.seq) return;
    if (fromSeq > this.seq + 1) {
      this.positions.clear();
      this.seq = -1;
      return;
    }
    this.seq = seq;
    const version = bytes[DeltaHead.version];
    if (version === DELTA_VERSION && (bytes[DeltaHead.flags] & DELTA_FLAG_HELD) === 0) return;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    try {
      this.read(bytes, view, version);
    } catch {
      // Bytes that are not a record (only a peer could send them): nothing held rather than a guess.
      this.positions.clear();
      this.seq = -1;
    }
  }

  private read(bytes: Uint8Array, view: DataView, version: number): void {
    const count = view.getUint16(DeltaHead.positionCount, true);
    let o = DeltaHead.id + bytes[DeltaHead.idLength];
    for (let i = 0; i < count; i++) {
      if (o >= bytes.length) throw new RangeError('truncated record');
      const symbol = decoder.decode(bytes.subarray(o + 1, o + 1 + bytes[o]));
      o += 1 + bytes[o];
      if (version === DELTA_VERSION_V3) {
        this.keep(symbol, view, o + DeltaPosition.quantity, o + DeltaPosition.avgCost, o + DeltaPosition.realizedPnl, o + DeltaPosition.fxRate, String.fromCharCode(bytes[o], bytes[o + 1], bytes[o + 2]));
        o += DELTA_POSITION_TAIL_BYTES;
        continue;
      }
      const flags = bytes[o];
      if ((flags & POSITION_FLAG_FULL) !== 0) {
        const c = o + DeltaFull.currency;
        this.keep(symbol, view, o + DeltaFull.quantity, o + DeltaFull.avgCost, o + DeltaFull.realizedPnl, o + DeltaFull.fxRate, String.fromCharCode(bytes[c], bytes[c + 1], bytes[c + 2]));
        o += DELTA_FULL_BYTES;
      } else if ((flags & POSITION_FLAG_RATE) !== 0) {
        const p = this.positions.get(symbol);
        const rate = view.getFloat64(o + DeltaTick.fxRate, true);
        if (p !== undefined) p.fx_rate = Number.isNaN(rate) ? null : rate;
        o += DELTA_TICK_RATE_BYTES;
      } else o += DELTA_TICK_BYTES;
    }
  }

  private keep(symbol: string, view: DataView, quantityAt: number, avgAt: number, realizedAt: number, fxAt: number, currency: string): void {
    const quantity = view.getFloat64(quantityAt, true);
    if (quantity === 0) {
      this.positions.delete(symbol);
      return;
    }
    const fx = view.getFloat64(fxAt, true);
    this.positions.set(symbol, { quantity, avg_cost: view.getFloat64(avgAt, true), realized_pnl: view.getFloat64(realizedAt, true), currency, fx_rate: Number.isNaN(fx) ? null : fx });
  }
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
  if (bytes[1] !== DELTA_VERSION && bytes[1] !== DELTA_VERSION_V3) return { ok: false, reason: 'unsupported version' };
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

/**
 * The portfolio id, seq and from_seq of a version 3 or 4 record, read from its head alone (a reader
 * checks its sequence before decoding the positions against what it holds); null when not a record.
 */
export function deltaHeadOf(bytes: Uint8Array): { portfolio_id: string; seq: number; from_seq: number } | null {
  if (bytes.length < DELTA_HEAD_BYTES || bytes[0] !== DeltaKind.delta || (bytes[1] !== DELTA_VERSION && bytes[1] !== DELTA_VERSION_V3)) return null;
  const idLen = bytes[DeltaHead.idLength];
  if (bytes.length < DELTA_HEAD_BYTES + idLen) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    const portfolio_id = decoder.decode(bytes.subarray(DeltaHead.id, DeltaHead.id + idLen));
    return { portfolio_id, seq: view.getFloat64(DeltaHead.seq, true), from_seq: view.getFloat64(DeltaHead.fromSeq, true) };
  } catch {
    return null;
  }
}

/** Reads seq and tick_ts of the record at `o` without decoding it (the minimal reader's fields). */
export function peekDelta(view: DataView, o: number): { seq: number; fromSeq: number; tickTs: number } {
  return { seq: view.getFloat64(o + DeltaHead.seq, true), fromSeq: view.getFloat64(o + DeltaHead.fromSeq, true), tickTs: view.getFloat64(o + DeltaHead.tickTs, true) };
}
