// The tick bus (docs/CLUSTER.md, "Ticks and bars"): how ticks reach the nodes that need them.
//
// Subject layout: one subject per symbol, clusterSubjects.ticks(symbol) = `mtm.ticks.<hex of the UTF-8
// symbol>`. Payload: the /ws/feed binary ticks frame (src/protocol/binary.ts: u8 0x11, u8 version 1,
// u16 0, u32 count, count x 28-byte records u32 symbol id | f64 price | f64 ts | f64 size or NaN), every
// record's symbol id 0: the subject names the symbol. A feed may publish there directly, or connect to
// any node (/ws/feed, REST): the node validates what it can without state (symbol, price, timestamp,
// size), publishes, and ingests nothing itself, so every node sees one stream per symbol in one order.
//
// Which ticks a node receives: the symbols its engine holds, i.e. every market symbol in its symbol
// table (a symbol enters it when a book of the node trades it, when a partition is loaded, or as an FX
// leg a book needs). The table is append-only, so the bus reads it from where it stopped, every
// subscriptionsRefreshMs and at once when the node gains a partition: a book that starts holding a new
// symbol gets its ticks within one refresh. Cost of that choice: a node keeps the subscriptions of
// partitions it lost until it restarts (the table never shrinks), bounded by the engine's symbolsMax.
//
// Hot path: a received frame is read in place (readTick) and handed to engine.ingestTick with the
// symbol string the subscription was made for: nothing is allocated per tick. Publishing batches the
// ticks of a symbol per microtask into one frame (every tick is kept: bars count each print).

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { ErrorCode } from '../errors.js';
import { priceError, validSymbol } from '../domain/validate.js';
import type { TickInput } from '../domain/types.js';
import { BINARY_VERSION, FrameKind, TICK_RECORD_BYTES, TICKS_HEADER_BYTES, decodeFeedFrame, readTick, type BinaryTick } from '../protocol/binary.js';
import { clusterSubjects } from './subjects.js';
import type { OwnershipView } from './types.js';

/** What the bus needs of the node's engine (MtmEngine has both). */
export interface TickBusEngine {
  ingestTick(symbol: string, price: number, ts: number, size?: number): string | null;
  /** The engine's symbol table, by dense id; undefined past its end. */
  symbolName(id: number): string | undefined;
}

export interface TickBusOptions {
  /** How often the engine's symbol table is re-read for symbols to subscribe. */
  subscriptionsRefreshMs: number;
  /** Ticks waiting to be published (all symbols) before they are published at once instead of per microtask. */
  pendingTicksMax: number;
  /** Ticks a received frame may carry (frames over it are refused and counted). */
  ticksPerFrameMax: number;
  /** Ticks one ingestTicks call may carry (the engine's ticksPerCallMax). */
  ticksPerCallMax: number;
  /** Wall-clock ms for a tick given without ts (injected: the engine's clock). */
  now: () => number;
  log: (line: string) => void;
}

export const tickBusDefaults: TickBusOptions = {
  subscriptionsRefreshMs: 100,
  pendingTicksMax: 65_536,
  ticksPerFrameMax: 10_000,
  ticksPerCallMax: 100_000,
  now: () => Date.now(),
  log: () => undefined,
};

export interface TickBusCounters {
  /** Ticks this node published for its feeds. */
  ticksPublished: number;
  /** Frames this node published (one per symbol per microtask). */
  framesPublished: number;
  /** Ticks refused before publishing, by the stateless checks. */
  ticksRefused: number;
  /** Ticks received from the bus and handed to the engine. */
  ticksReceived: number;
  /** Of those, refused by the engine (stale checks excluded: the engine counts those). */
  ticksRefusedByEngine: number;
  /** Frames on a tick subject that were not a valid ticks frame (logged, counted, nothing ingested). */
  badFrames: number;
  /** Symbols subscribed now. */
  subscriptions: number;
}

/** Ticks of one symbol waiting for the microtask that publishes them: (price, ts, size) triples. */
interface Pending {
  readonly subject: string;
  values: number[];
}

export class TickBus {
  readonly counters: TickBusCounters = {
    ticksPublished: 0,
    framesPublished: 0,
    ticksRefused: 0,
    ticksReceived: 0,
    ticksRefusedByEngine: 0,
    badFrames: 0,
    subscriptions: 0,
  };
  private readonly o: TickBusOptions;
  private readonly subs = new Map<string, Subscription>();
  /** Next symbol-table id to look at. */
  private nextId = 0;
  private readonly pending = new Map<string, Pending>();
  private pendingTicks = 0;
  private flushQueued = false;
  private timer: NodeJS.Timeout | null = null;
  private offChange: (() => void) | null = null;
  private closed = false;
  private readonly tick: BinaryTick = { symbolId: 0, price: 0, ts: 0, size: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly engine: TickBusEngine,
    private readonly ownership: OwnershipView | null,
    options: Partial<TickBusOptions> = {},
  ) {
    this.o = { ...tickBusDefaults, ...options };
  }

  /** Subscribes the symbols held now and keeps following the symbol table. */
  start(): void {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), this.o.subscriptionsRefreshMs);
    this.timer.unref();
    if (this.ownership !== null) {
      this.offChange = this.ownership.onChange((c) => {
        if (c.kind === 'gained') this.refresh();
      });
    }
  }

  /** The symbols this node receives ticks for now. */
  subscribedSymbols(): string[] {
    return [...this.subs.keys()];
  }

  /** Subscribes every market symbol the engine's table gained since the last call. */
  refresh(): void {
    if (this.closed) return;
    for (let name = this.engine.symbolName(this.nextId); name !== undefined; name = this.engine.symbolName(++this.nextId)) {
      // Conversion symbols (Q>B) are derived inside the kernel: no feed can name them.
      if (!validSymbol(name) || this.subs.has(name)) continue;
      this.subscribe(name);
    }
  }

  private subscribe(symbol: string): void {
    const subject = clusterSubjects.ticks(symbol);
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) return this.o.log(`tick bus: subscription ${subject} failed: ${err.message}`);
        this.receive(symbol, subject, msg.data);
      },
    });
    this.subs.set(symbol, sub);
    this.counters.subscriptions = this.subs.size;
  }

  private receive(symbol: string, subject: string, data: Uint8Array): void {
    const f = decodeFeedFrame(data);
    const bad = !f.ok
      ? f.reason
      : f.value.kind !== 'ticks'
        ? 'a register frame (the subject names the symbol)'
        : f.value.count > this.o.ticksPerFrameMax
          ? `more than ${this.o.ticksPerFrameMax} ticks in one frame`
          : null;
    if (bad !== null || !f.ok || f.value.kind !== 'ticks') {
      this.counters.badFrames++;
      this.o.log(`tick bus: refused a frame on ${subject} (${data.length} bytes): ${bad}`);
      return;
    }
    const { count, view } = f.value;
    const t = this.tick;
    for (let i = 0; i < count; i++) {
      if (readTick(view, i, t).symbolId !== 0) {
        this.counters.badFrames++;
        this.o.log(`tick bus: refused a frame on ${subject}: record ${i} has symbol id ${t.symbolId}, must be 0 (the subject names the symbol)`);
        return;
      }
    }
    for (let i = 0; i < count; i++) {
      readTick(view, i, t);
      this.counters.ticksReceived++;
      if (this.engine.ingestTick(symbol, t.price, t.ts, t.size === t.size ? t.size : undefined) !== null) this.counters.ticksRefusedByEngine++;
    }
  }

  /**
   * A tick from a feed connected to this node: the checks that need no state (the engine's codes), then
   * onto the bus. null when taken; the node's own engine gets it back through its subscription, if held.
   */
  ingestTick(symbol: string, price: number, ts: number, size?: number): string | null {
    const code = tickError(symbol, price, ts, size);
    if (code !== null) {
      this.counters.ticksRefused++;
      return code;
    }
    if (this.closed) return ErrorCode.engine_closed;
    let p = this.pending.get(symbol);
    if (p === undefined) {
      p = { subject: clusterSubjects.ticks(symbol), values: [] };
      this.pending.set(symbol, p);
    }
    p.values.push(price, ts, size ?? NaN);
    if (++this.pendingTicks >= this.o.pendingTicksMax) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
    return null;
  }

  /** The in-process batch form, with the engine's result shape (held is 0: suspects are held where ticks are applied). */
  ingestTicks(ticks: readonly TickInput[]): { accepted: number; rejected: { index: number; code: string }[]; held: number } {
    const rejected: { index: number; code: string }[] = [];
    // The engine's in-process boundary checks (src/engine/ticks/intake.ts): a caller may pass anything.
    if (!Array.isArray(ticks)) return { accepted: 0, rejected: [{ index: -1, code: ErrorCode.invalid_field }], held: 0 };
    if (ticks.length > this.o.ticksPerCallMax) return { accepted: 0, rejected: [{ index: -1, code: ErrorCode.limit_exceeded }], held: 0 };
    const now = this.o.now();
    for (let i = 0; i < ticks.length; i++) {
      const t = ticks[i] as Partial<TickInput> | null;
      const shape =
        typeof t !== 'object' || t === null || typeof t.symbol !== 'string' || typeof t.price !== 'number'
          ? ErrorCode.invalid_field
          : t.ts !== undefined && typeof t.ts !== 'number'
            ? ErrorCode.invalid_timestamp
            : t.size !== undefined && t.size !== null && typeof t.size !== 'number'
              ? ErrorCode.invalid_quantity
              : null;
      if (shape !== null) this.counters.ticksRefused++;
      const code = shape ?? this.ingestTick((t as TickInput).symbol, (t as TickInput).price, (t as TickInput).ts ?? now, (t as TickInput).size ?? undefined);
      if (code !== null) rejected.push({ index: i, code });
    }
    return { accepted: ticks.length - rejected.length, rejected, held: 0 };
  }

  /** Publishes every pending tick: one frame per symbol. */
  flush(): void {
    this.flushQueued = false;
    if (this.pendingTicks === 0) return;
    for (const [symbol, p] of this.pending) {
      if (p.values.length === 0) continue;
      const frame = encodeSymbolTicks(p.values);
      this.counters.ticksPublished += p.values.length / 3;
      this.counters.framesPublished++;
      p.values.length = 0;
      try {
        this.nc.publish(p.subject, frame);
      } catch (e) {
        this.o.log(`tick bus: publish on ${p.subject} for ${symbol} failed: ${(e as Error).message}`);
      }
    }
    // Bounded: a feed naming ever new symbols must not grow the map past one publish round.
    if (this.pending.size > this.o.pendingTicksMax) this.pending.clear();
    this.pendingTicks = 0;
  }

  /** Publishes what is pending and drops every subscription. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.offChange?.();
    for (const sub of this.subs.values()) sub.unsubscribe();
    this.subs.clear();
    this.counters.subscriptions = 0;
  }
}

/** The engine's stateless tick checks, same codes (src/engine/ticks/intake.ts). */
export function tickError(symbol: unknown, price: number, ts: number, size: number | undefined): string | null {
  if (!validSymbol(symbol)) return ErrorCode.invalid_symbol;
  if (priceError(price) !== null) return ErrorCode.invalid_price;
  if (!(ts >= 0 && ts <= 8.64e15)) return ErrorCode.invalid_timestamp;
  if (size !== undefined && !(size >= 0 && size < Infinity)) return ErrorCode.invalid_quantity;
  return null;
}

/** One symbol's ticks as the bus frame: the /ws/feed ticks frame with symbol id 0 in every record. */
export function encodeSymbolTicks(values: readonly number[]): Uint8Array {
  const count = values.length / 3;
  const bytes = new Uint8Array(TICKS_HEADER_BYTES + count * TICK_RECORD_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FrameKind.feedTicks);
  view.setUint8(1, BINARY_VERSION);
  view.setUint32(4, count, true);
  for (let i = 0, o = TICKS_HEADER_BYTES; i < count; i++, o += TICK_RECORD_BYTES) {
    view.setFloat64(o + 4, values[3 * i], true);
    view.setFloat64(o + 12, values[3 * i + 1], true);
    view.setFloat64(o + 20, values[3 * i + 2], true);
  }
  return bytes;
}
