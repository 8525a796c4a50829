// Reads a TradeExecuted event straight from its bytes in the event log, without building the event
// object. Recovery's hot path: the main thread reads the log's raw values and peeks at each one
// (type, portfolio, symbol, currency) to route it, and the shard that replays it reads the trade's
// fields into one reused object. A value this reader does not fully understand is handed on decoded
// the ordinary way instead (LogRecordReader.read answers false), so it never guesses.
//
// The format is the store's: lmdb-js's default msgpackr encoding with records and no shared
// structures, so each value is self-contained: `d4 72 <id>` defines a record (an array of key
// strings follows, then the values in key order); a byte 0x40-0x7f after that refers back to a
// record defined earlier in the same value (msgpackr writes integers 64-127 as uint8 when records
// are on, so the range is not ambiguous). Everything else is plain MessagePack.

const utf8 = new TextDecoder();

/** src[start, end) as a string of ASCII bytes. */
function latin1(src: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(src[i]);
  return s;
}

/** The fields a replayed trade needs, in one object of fixed shape, rewritten by every read. */
export interface TradeRecord {
  seq: number;
  portfolio_id: string;
  trade_id: string;
  symbol: string;
  side: 'buy' | 'sell';
  quantity: number;
  price: number;
  fee: number;
  trade_ts: number;
  /** null: the portfolio's base currency. */
  currency: string | null;
  fx_rate: number | null;
  multiplier: number;
}

const enum F {
  type,
  seq,
  portfolio_id,
  trade_id,
  symbol,
  side,
  quantity,
  price,
  fee,
  trade_ts,
  currency,
  fx_rate,
  multiplier,
  ts,
  realized_pnl,
}

/** Every key a TradeExecuted value may have that this reader takes (lot_ids is not: such a trade goes decoded). */
const fieldNames: readonly string[] = ['type', 'seq', 'portfolio_id', 'trade_id', 'symbol', 'side', 'quantity', 'price', 'fee', 'trade_ts', 'currency', 'fx_rate', 'multiplier', 'ts', 'realized_pnl'];
const fieldBytes = fieldNames.map((n) => new TextEncoder().encode(n));
const tradeExecuted = new TextEncoder().encode('TradeExecuted');
const recordExt = 0x72;
/** Bytes of a record definition the reader remembers (a trade's 15 keys take ~110). */
const keyBytesMax = 256;
/** The type tag the main thread passes along for a value it routed without decoding. */
export const tradeExecutedType = 'TradeExecuted';

function sameBytes(src: Uint8Array, at: number, length: number, want: Uint8Array): boolean {
  if (length !== want.length) return false;
  for (let i = 0; i < length; i++) if (src[at + i] !== want[i]) return false;
  return true;
}

/**
 * Slots of a reader's string table (a power of two): portfolio ids, symbols, sides and currencies
 * repeat through a log, so each is built once per slot instead of per value, and the same string
 * (its hash computed once) meets the Map lookups that follow. Bounded: a miss replaces its slot.
 */
export const logStringSlots = 1 << 18;

/** Reads TradeExecuted values; one instance per thread, not reentrant. */
export class LogRecordReader {
  readonly trade: TradeRecord = { seq: 0, portfolio_id: '', trade_id: '', symbol: '', side: 'buy', quantity: 0, price: 0, fee: 0, trade_ts: 0, currency: null, fx_rate: null, multiplier: 1 };
  private src: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private end = 0;
  /** Field codes of the top-level record's keys (-1: a key the reader does not take). */
  private readonly codes = new Int32Array(32);
  private view: DataView = new DataView(new ArrayBuffer(8));
  /** The string table (logStringSlots), allocated on the first repeated-kind string read. */
  private strings: string[] | null = null;

  /** Where the last trade's id is in src, when it was not built (withTradeIds false). */
  private idStart = 0;
  private idEnd = 0;

  /**
   * withTradeIds false: trade_id is checked to be a string and left '' until tradeId() builds it (a
   * replayed trade booked into snapshot columns never needs it: 1M strings fewer at a full-scale start).
   */
  constructor(private readonly withTradeIds = true) {}

  /** The last read trade's id (withTradeIds false); valid until the next read, like the buffer it is in. */
  tradeId(): string {
    if (this.withTradeIds) return this.trade.trade_id;
    const src = this.src;
    for (let i = this.idStart; i < this.idEnd; i++) if (src[i] > 0x7f) return utf8.decode(src.subarray(this.idStart, this.idEnd));
    return latin1(src, this.idStart, this.idEnd);
  }

  /**
   * Reads the value in src[start, end). True: it is a TradeExecuted event whose every field this
   * reader understood, now in `trade`. False: anything else (another type, a field it does not
   * take, a shape it does not know); nothing is to be concluded but "decode it the ordinary way".
   */
  read(src: Uint8Array, start: number, end: number): boolean {
    this.use(src);
    this.pos = start;
    this.end = end;
    const t = this.trade;
    t.currency = null;
    t.fx_rate = null;
    t.multiplier = 1;
    let isTrade = false;
    // The value: one record definition, its keys, then its values.
    if (end - start < 4 || src[start] !== 0xd4 || src[start + 1] !== recordExt) return false;
    const id = src[start + 2];
    if (id < 0x40 || id > 0x7f) return false;
    this.pos = start + 3;
    const keys = this.sameKeys(src, start + 3, end) ? this.keysKnown : this.readKeys(src, start + 3, end);
    if (keys < 0) return false;
    for (let k = 0; k < keys; k++) {
      switch (this.codes[k]) {
        case F.type: {
          const len = this.strHeader();
          if (len < 0 || !sameBytes(src, this.pos, len, tradeExecuted)) return false;
          this.pos += len;
          isTrade = true;
          break;
        }
        case F.seq:
          t.seq = this.number();
          break;
        case F.portfolio_id:
          t.portfolio_id = this.string(true);
          break;
        case F.trade_id:
          if (this.withTradeIds) t.trade_id = this.string();
          else {
            const len = this.strHeader();
            if (len < 0 || this.pos + len > end) this.pos = NaN;
            else {
              this.idStart = this.pos;
              this.pos += len;
              this.idEnd = this.pos;
            }
          }
          break;
        case F.symbol:
          t.symbol = this.string(true);
          break;
        case F.side: {
          const side = this.string(true);
          if (side !== 'buy' && side !== 'sell') return false;
          t.side = side;
          break;
        }
        case F.quantity:
          t.quantity = this.number();
          break;
        case F.price:
          t.price = this.number();
          break;
        case F.fee:
          t.fee = this.number();
          break;
        case F.trade_ts:
          t.trade_ts = this.number();
          break;
        case F.currency:
          t.currency = this.string(true);
          break;
        case F.fx_rate:
          t.fx_rate = this.number();
          break;
        case F.multiplier:
          t.multiplier = this.number();
          break;
        default:
          // ts, realized_pnl: replay recomputes them; only their number shape is checked.
          this.number();
      }
      if (this.pos > end || Number.isNaN(this.pos)) return false;
    }
    return isTrade && this.pos === end && !Number.isNaN(t.seq + t.quantity + t.price + t.fee + t.trade_ts + t.multiplier) && t.portfolio_id !== '' && t.symbol !== '';
  }

  /**
   * The event's type without reading the rest: events are written with `type` as their first key,
   * so it is the record's first value. null: not that shape (decode it the ordinary way).
   */
  typeOf(src: Uint8Array, start: number, end: number): string | null {
    this.use(src);
    if (end - start < 4 || src[start] !== 0xd4 || src[start + 1] !== recordExt) return null;
    this.pos = start + 3;
    this.end = end;
    const keys = this.arrayHeader();
    if (keys < 1) return null;
    const first = this.strHeader();
    if (first < 0 || !sameBytes(src, this.pos, first, fieldBytes[F.type])) return null;
    this.pos += first;
    for (let k = 1; k < keys; k++) {
      const len = this.strHeader();
      if (len < 0) return null;
      this.pos += len;
    }
    if (this.pos >= end) return null;
    const type = this.string();
    return Number.isNaN(this.pos) ? null : type;
  }

  /**
   * The record definition of the last value whose keys were all read (its bytes, from the array
   * header to the last key): the log's trades share one definition, so a value that repeats it
   * byte for byte takes the field codes as they are instead of matching every key again.
   */
  private readonly keyBytes = new Uint8Array(keyBytesMax);
  private readonly keyView = new DataView(this.keyBytes.buffer);
  /** Length of keyBytes in use; -1: none (a key read that failed may have left codes half written). */
  private keyBytesLength = -1;
  private keysKnown = 0;

  /** src[at, ...) starts with the remembered record definition; pos then after it. */
  private sameKeys(src: Uint8Array, at: number, end: number): boolean {
    const n = this.keyBytesLength;
    if (n < 0 || at + n > end) return false;
    // Four bytes a comparison (a trade's ~110 bytes of keys, on every trade of the tail).
    const v = this.view;
    const kv = this.keyView;
    let i = 0;
    for (; i + 4 <= n; i += 4) if (v.getInt32(at + i) !== kv.getInt32(i)) return false;
    const known = this.keyBytes;
    for (; i < n; i++) if (src[at + i] !== known[i]) return false;
    this.pos = at + n;
    return true;
  }

  /** Reads the record definition's keys at src[at, ...) into codes; their count, or -1 (not a shape read here). */
  private readKeys(src: Uint8Array, at: number, end: number): number {
    this.keyBytesLength = -1;
    const keys = this.arrayHeader();
    if (keys < 0 || keys > this.codes.length) return -1;
    for (let k = 0; k < keys; k++) {
      const len = this.strHeader();
      if (len < 0 || this.pos + len > end) return -1;
      let code = -1;
      for (let f = 0; f < fieldBytes.length; f++) {
        if (sameBytes(src, this.pos, len, fieldBytes[f])) {
          code = f;
          break;
        }
      }
      if (code < 0) return -1;
      this.codes[k] = code;
      this.pos += len;
    }
    const n = this.pos - at;
    if (n <= keyBytesMax) {
      this.keyBytes.set(src.subarray(at, this.pos));
      this.keyBytesLength = n;
      this.keysKnown = keys;
    }
    return keys;
  }

  private use(src: Uint8Array): void {
    if (src === this.src) return;
    this.src = src;
    this.view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  }

  private arrayHeader(): number {
    const b = this.src[this.pos++];
    if (b >= 0x90 && b <= 0x9f) return b - 0x90;
    if (b === 0xdc) {
      const n = this.view.getUint16(this.pos);
      this.pos += 2;
      return n;
    }
    return -1;
  }

  /** A string's byte length (pos then at its bytes), -1 if the next value is not a string. */
  private strHeader(): number {
    const b = this.src[this.pos++];
    if (b >= 0xa0 && b <= 0xbf) return b - 0xa0;
    if (b === 0xd9) return this.src[this.pos++];
    if (b === 0xda) {
      const n = this.view.getUint16(this.pos);
      this.pos += 2;
      return n;
    }
    return -1;
  }

  /**
   * A string value, or NaN in pos (the caller fails) when it is not one. repeated: a kind of string
   * that recurs through a log (ids, symbols), looked up in the string table first.
   */
  private string(repeated = false): string {
    const len = this.strHeader();
    if (len < 0 || this.pos + len > this.end) {
      this.pos = NaN;
      return '';
    }
    const start = this.pos;
    this.pos += len;
    const src = this.src;
    // Ids and symbols are short ASCII: fromCharCode beats TextDecoder there.
    let ascii = true;
    let h = 0x811c9dc5;
    for (let i = start; i < this.pos; i++) {
      if (src[i] > 0x7f) ascii = false;
      h = Math.imul(h ^ src[i], 0x01000193);
    }
    if (!ascii) return utf8.decode(src.subarray(start, this.pos));
    if (!repeated) return latin1(src, start, this.pos);
    const table = (this.strings ??= new Array<string>(logStringSlots).fill(''));
    const slot = h & (logStringSlots - 1);
    const known = table[slot];
    if (known.length === len) {
      let same = true;
      for (let i = 0; i < len; i++) {
        if (known.charCodeAt(i) !== src[start + i]) {
          same = false;
          break;
        }
      }
      if (same) return known;
    }
    const fresh = latin1(src, start, this.pos);
    table[slot] = fresh;
    return fresh;
  }

  /** A number (any MessagePack int or float), or NaN (and NaN in pos) when it is not one. */
  private number(): number {
    const src = this.src;
    const b = src[this.pos++];
    const v = this.view;
    let n: number;
    if (b <= 0x3f) return b;
    if (b >= 0xe0) return b - 0x100;
    switch (b) {
      case 0xcb:
        n = v.getFloat64(this.pos);
        this.pos += 8;
        return n;
      case 0xca:
        n = v.getFloat32(this.pos);
        this.pos += 4;
        return n;
      case 0xcc:
        return src[this.pos++];
      case 0xcd:
        n = v.getUint16(this.pos);
        this.pos += 2;
        return n;
      case 0xce:
        n = v.getUint32(this.pos);
        this.pos += 4;
        return n;
      case 0xcf:
        n = Number(v.getBigUint64(this.pos));
        this.pos += 8;
        return n;
      case 0xd0:
        return v.getInt8(this.pos++);
      case 0xd1:
        n = v.getInt16(this.pos);
        this.pos += 2;
        return n;
      case 0xd2:
        n = v.getInt32(this.pos);
        this.pos += 4;
        return n;
      case 0xd3:
        n = Number(v.getBigInt64(this.pos));
        this.pos += 8;
        return n;
      default:
        this.pos = NaN;
        return NaN;
    }
  }
}
