// A chunk of imported trades for one shard as one packed buffer (the bulk import's path, issue 15):
// the main thread writes each validated trade at fixed offsets with its strings as UTF-8 bytes behind,
// transfers the buffer (never a structured clone per trade), and the shard reads the trades back in
// order. The answer travels the same way: one kind byte and one realized P&L per trade, errors (rare)
// as a sparse list.
//
// Record layout (little endian; every record starts 8-byte aligned):
//   0  u32 portfolio_id bytes   4 u32 trade_id bytes   8 u32 symbol bytes   12 u32 currency bytes
//   16 u32 lot_ids bytes (JSON of the array; 0 = null)  20 u8 side (0 buy, 1 sell)  21 u8 flags (1: fx_rate given)
//   24 f64 units  32 f64 price  40 f64 fee  48 f64 ts  56 f64 fx_rate
//   64 the strings, in that order, then padding to 8 bytes.
// currency bytes 0 means null: the schema refuses an empty currency, so no valid trade has one.

import { QUANTITY_SCALE } from '../domain/types.js';
import type { ValidTrade } from '../domain/validate.js';

const headBytes = 64;
const fxGiven = 1;

/** An imported trade and the portfolio it books into. */
export interface ChunkTrade {
  portfolio: string;
  trade: ValidTrade;
}

/** Upper bound of a trade's record: UTF-8 takes at most 3 bytes per UTF-16 unit. */
function recordBytesMax(t: ChunkTrade, lots: string | null): number {
  const strings = t.portfolio.length + t.trade.trade_id.length + t.trade.symbol.length + (t.trade.currency?.length ?? 0) + (lots?.length ?? 0);
  return headBytes + strings * 3 + 8;
}

/** Packs the trades (in order) into one buffer of its own, ready to be transferred. */
export function encodeTradeChunk(trades: readonly ChunkTrade[]): Uint8Array {
  const lots: (string | null)[] = new Array(trades.length);
  let bound = 0;
  for (let i = 0; i < trades.length; i++) {
    const l = trades[i].trade.lot_ids;
    lots[i] = l === null ? null : JSON.stringify(l);
    bound += recordBytesMax(trades[i], lots[i]);
  }
  const buf = Buffer.allocUnsafeSlow(bound);
  let at = 0;
  for (let i = 0; i < trades.length; i++) {
    const { portfolio, trade } = trades[i];
    const s = at + headBytes;
    const pBytes = buf.write(portfolio, s, 'utf8');
    const tBytes = buf.write(trade.trade_id, s + pBytes, 'utf8');
    const yBytes = buf.write(trade.symbol, s + pBytes + tBytes, 'utf8');
    const cBytes = trade.currency === null ? 0 : buf.write(trade.currency, s + pBytes + tBytes + yBytes, 'utf8');
    const l = lots[i];
    const lBytes = l === null ? 0 : buf.write(l, s + pBytes + tBytes + yBytes + cBytes, 'utf8');
    buf.writeUInt32LE(pBytes, at);
    buf.writeUInt32LE(tBytes, at + 4);
    buf.writeUInt32LE(yBytes, at + 8);
    buf.writeUInt32LE(cBytes, at + 12);
    buf.writeUInt32LE(lBytes, at + 16);
    buf[at + 20] = trade.side === 'buy' ? 0 : 1;
    buf[at + 21] = trade.fx_rate === null ? 0 : fxGiven;
    buf[at + 22] = 0;
    buf[at + 23] = 0;
    buf.writeDoubleLE(trade.units, at + 24);
    buf.writeDoubleLE(trade.price, at + 32);
    buf.writeDoubleLE(trade.fee, at + 40);
    buf.writeDoubleLE(trade.ts, at + 48);
    buf.writeDoubleLE(trade.fx_rate ?? 0, at + 56);
    at = (s + pBytes + tBytes + yBytes + cBytes + lBytes + 7) & ~7;
  }
  return new Uint8Array(buf.buffer, 0, at);
}

/** Reads the trades of a chunk back, one at a time, in order (a shard's side). */
export class TradeChunkReader {
  private readonly buf: Buffer;
  private at = 0;
  /** The portfolio of the trade next() read last. */
  portfolio = '';

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.at >= this.buf.length;
  }

  /** The next trade (a new object: the actor's state may keep what it books). */
  next(): ValidTrade {
    const b = this.buf;
    const at = this.at;
    const pBytes = b.readUInt32LE(at);
    const tBytes = b.readUInt32LE(at + 4);
    const yBytes = b.readUInt32LE(at + 8);
    const cBytes = b.readUInt32LE(at + 12);
    const lBytes = b.readUInt32LE(at + 16);
    let s = at + headBytes;
    this.portfolio = b.toString('utf8', s, (s += pBytes));
    const trade_id = b.toString('utf8', s, (s += tBytes));
    const symbol = b.toString('utf8', s, (s += yBytes));
    const currency = cBytes === 0 ? null : b.toString('utf8', s, (s += cBytes));
    const lot_ids = lBytes === 0 ? null : (JSON.parse(b.toString('utf8', s, (s += lBytes))) as string[]);
    this.at = (s + 7) & ~7;
    const units = b.readDoubleLE(at + 24);
    return {
      trade_id,
      symbol,
      side: b[at + 20] === 0 ? 'buy' : 'sell',
      units,
      // As validateTrade derives it, so the figures are the same bit for bit.
      quantity: units / QUANTITY_SCALE,
      price: b.readDoubleLE(at + 32),
      fee: b.readDoubleLE(at + 40),
      ts: b.readDoubleLE(at + 48),
      currency,
      fx_rate: (b[at + 21] & fxGiven) !== 0 ? b.readDoubleLE(at + 56) : null,
      lot_ids,
      multiplier: 1,
    };
  }
}

/** What a trade of a chunk came to in the shard. */
export const ChunkKind = { applied: 0, error: 2 } as const;
