// Start and restart from the store: each shard's columnar snapshot (raw segments read here and
// transferred to the worker, which decodes them), then the events after it, replayed in the worker
// through the pure domain functions. The main thread reads LMDB (its only owner) in ONE pass over the
// tail for all shards at start, routing each event to its shard in chunks, with at most
// replayChunksInFlightMax chunks (replayBytesInFlightMax bytes) per shard unapplied: reading the log
// overlaps the worker's snapshot load and applying, and memory stays bounded whatever the tail's length. Shards load in parallel.
// A directory without columnar snapshots (schema 1, migrated) recovers once from its per-portfolio
// records, the old way; the next snapshot round writes the columnar form.

import { baseCurrencyDefault, replayedEventTypes, type DomainEventType, type PortfolioRecord, type StoredEvent } from '../domain/types.js';
import { LogRecordReader } from '../shard/logRecord.js';
import type { ShardRecoveryWork, ToShard } from '../shard/protocol.js';
import { readSnapshotStatuses, readSnapshotStrings } from '../shard/snapshotCodec.js';
import type { ShardSnapshotPointer, Store } from '../store/store.js';
import { applyToDirectory, type Directory } from './directory.js';
import type { ShardHandle } from './shardHandle.js';
import { shardOf } from './shardOf.js';
import type { SymbolTable } from './symbols.js';

/** Records (schema 1 path) and events per message while loading a shard. */
export const recoveryChunkMax = 5_000;
/**
 * Replay chunks posted to one shard and not yet applied, and their bytes: the pipeline's bounds. Deep
 * enough that the log is read while the worker still loads its snapshot (a full-scale crash restart:
 * the worker's load took 1.8-4.2 s, during which a bound of 2 chunks left the main thread idle).
 */
export const replayChunksInFlightMax = 128;
export const replayBytesInFlightMax = 128 * 1024 * 1024;

/** Marks kept by one RecoveryProgress (a start has ~10; shard restarts add theirs until this). */
export const phaseMarksMax = 256;

/** What recovery reports while it runs (the CLI's progress bar, /ready). */
export class RecoveryProgress {
  phase: 'snapshots' | 'replay' | 'ready' = 'snapshots';
  portfolios = 0;
  eventsReplayed = 0;
  /** Upper bound of the events to read: the log after the oldest snapshot (derived events included). */
  eventsToRead = 0;
  eventsRead = 0;
  readonly startedMs = performance.now();
  readyMs: number | null = null;
  /**
   * When each step of the start ended, in ms of performance.now() (since the process started): the
   * phase breakdown of docs/BENCHMARKS.md (bench/restartPhases.ts prints it). Bounded: one entry per
   * named step of a start or a shard restart, at most phaseMarksMax kept.
   */
  readonly marks: { step: string; at_ms: number }[] = [];
  /** What the shard workers reported of their recovery work, in ms of their own thread (per shard). */
  readonly shardWork: ShardRecoveryWork[] = [];

  mark(step: string): void {
    if (this.marks.length < phaseMarksMax) this.marks.push({ step, at_ms: performance.now() });
  }

  view(): { phase: string; portfolios: number; events_replayed: number; events_total: number; elapsed_ms: number; events_per_second: number; eta_ms: number | null } {
    const elapsed = (this.readyMs ?? performance.now()) - this.startedMs;
    const rate = elapsed > 0 ? (this.eventsRead * 1000) / elapsed : 0;
    const left = Math.max(0, this.eventsToRead - this.eventsRead);
    return {
      phase: this.phase,
      portfolios: this.portfolios,
      events_replayed: this.eventsReplayed,
      events_total: this.eventsToRead,
      elapsed_ms: Math.round(elapsed),
      events_per_second: Math.round(rate),
      eta_ms: this.phase === 'ready' ? 0 : rate > 0 ? Math.round((left * 1000) / rate) : null,
    };
  }
}

export interface RecoveryHost {
  readonly store: Store;
  readonly symbols: SymbolTable;
  readonly lastPrice: Float64Array;
  readonly lastPriceTs: Float64Array;
  readonly workers: number;
  /** Cross rates go through this currency (src/domain/fx.ts). */
  readonly fxPivot: string;
  nextRequest(): number;
  /** Answers of 'loaded' (finish) and 'replayed' (chunk applied) messages, by request number. */
  readonly loadRequests: Map<number, () => void>;
  readonly progress: RecoveryProgress;
  /** The columnar generation was written by a clean shutdown and this is the boot right after it. */
  readonly cleanSnapshot: boolean;
}

function symbolsOfEvent(e: StoredEvent, symbols: SymbolTable, directory: Directory, pivot: string): void {
  const base = directory.get(e.portfolio_id)?.base;
  // A renamed position replays into its new symbol; a foreign dividend credits cash in its currency.
  if (e.type === 'SymbolChanged') symbols.intern(e.to_symbol);
  if ((e.type === 'DividendEntitled' || e.type === 'DividendPaid') && base !== undefined && e.currency !== base) symbols.internConversion(e.currency, base, pivot);
  // Foreign cash moves replay into balances the shard converts.
  if ((e.type === 'CashDeposited' || e.type === 'CashWithdrawn') && e.currency !== undefined && base !== undefined) symbols.internConversion(e.currency, base, pivot);
  if (e.type === 'FxConverted' && base !== undefined) {
    if (e.from_currency !== base) symbols.internConversion(e.from_currency, base, pivot);
    if (e.to_currency !== base) symbols.internConversion(e.to_currency, base, pivot);
  }
  if (e.type !== 'TradeExecuted') return;
  symbols.intern(e.symbol);
  if (e.currency !== undefined && base !== undefined) symbols.internConversion(e.currency, base, pivot);
}

/** What the store holds to restore shards from. */
type Source =
  | { kind: 'columnar'; pointer: ShardSnapshotPointer; parts: Uint8Array[][] }
  | { kind: 'records'; records: PortfolioRecord[][] };

/** Per-portfolio covered seqs and the oldest of them (replay reads the log after it). */
interface Coverage {
  covered: Map<string, number>;
  min: number;
}

/**
 * Reads the newest snapshots: the columnar generation's raw segments (only those of `only` when it
 * is given and the shard count did not change), else the schema 1 per-portfolio records grouped by
 * shard. Registers ids, names, lifecycle states and symbols in `directory` / `symbols` when given.
 */
function readSource(host: RecoveryHost, only: number | null, directory: Directory | null, coverage: Coverage): Source {
  const { store, symbols, workers } = host;
  const pointer = store.shardSnapshotPointer();
  if (pointer !== undefined) {
    const parts: Uint8Array[][] = [];
    for (let i = 0; i < pointer.shards; i++) {
      if (only !== null && pointer.shards === workers && i !== only) {
        parts.push([]);
        continue;
      }
      const segments = store.shardSnapshotSegments(pointer, i);
      parts.push(segments);
      const strings = readSnapshotStrings(segments);
      const covered = pointer.covered[i];
      for (const id of strings.ids) coverage.covered.set(id, covered);
      // A shard part without books covers too: as of `covered`, the shard's books were exactly these
      // (none). A cluster node that dropped a partition's portfolios (engine.dropPortfolios) must not
      // see them come back from their events before it.
      coverage.min = Math.min(coverage.min, covered);
      if (directory !== null) {
        const statuses = readSnapshotStatuses(segments);
        strings.ids.forEach((id, k) => directory.set(id, { name: strings.names[k], state: statuses[k], base: strings.bases[k] ?? baseCurrencyDefault }));
        for (const s of strings.symbols) symbols.intern(s);
        for (const [currency, base] of strings.conversions) symbols.internConversion(currency, base, host.fxPivot);
      }
    }
    return { kind: 'columnar', pointer, parts };
  }
  const records: PortfolioRecord[][] = Array.from({ length: workers }, () => []);
  for (const r of store.loadSnapshots()) {
    const shard = shardOf(r.portfolio.id, workers);
    if (only !== null && shard !== only) continue;
    records[shard].push(r);
    coverage.covered.set(r.portfolio.id, r.covered_seq);
    coverage.min = Math.min(coverage.min, r.covered_seq);
    if (directory === null) continue;
    const base = r.portfolio.base_currency ?? baseCurrencyDefault;
    directory.set(r.portfolio.id, { name: r.portfolio.name, state: r.state, base });
    const pivot = host.fxPivot;
    for (const [symbol, p] of Object.entries(r.portfolio.positions)) {
      symbols.intern(symbol);
      if (p.currency !== undefined) symbols.internConversion(p.currency, base, pivot);
    }
    for (const currency of Object.keys(r.portfolio.cash_balances ?? {})) symbols.internConversion(currency, base, pivot);
    // A dividend due in a foreign currency credits that currency's cash when it is paid.
    for (const due of Object.values(r.portfolio.dividends_due ?? {})) if (due.currency !== base) symbols.internConversion(due.currency, base, pivot);
  }
  return { kind: 'records', records };
}

/** Posts a shard's snapshot: transferred segments, or record chunks (schema 1). */
function sendSnapshot(host: RecoveryHost, h: ShardHandle, source: Source, prices: { symbol: number; price: number; ts: number }[]): void {
  if (source.kind === 'records') {
    const mine = source.records[h.index];
    let first = true;
    for (let i = 0; i < mine.length || first; i += recoveryChunkMax) {
      h.post({ t: 'load', records: mine.slice(i, i + recoveryChunkMax), prices: first ? prices : [] });
      first = false;
    }
    return;
  }
  const { pointer, parts } = source;
  const same = pointer.shards === host.workers;
  const picked = same ? [h.index] : parts.map((_, i) => i);
  const msgParts = picked.map((i) => ({ segments: same ? parts[i] : parts[i].map((b) => new Uint8Array(b)), covered: pointer.covered[i] }));
  // Same shard count: this shard's segments are its alone, so they move (transfer) instead of a copy.
  const transfer = same ? msgParts.flatMap((p) => p.segments.map((b) => b.buffer as ArrayBuffer)) : [];
  const msg: ToShard = { t: 'loadColumnar', parts: msgParts, filter: !same, clean: host.cleanSnapshot, prices };
  h.port?.postMessage(msg, transfer);
}

function pricesFor(host: RecoveryHost): { symbol: number; price: number; ts: number }[] {
  // Each price with its source timestamp: restored marks keep their age (a restart makes nothing fresh).
  const prices: { symbol: number; price: number; ts: number }[] = [];
  for (let id = 0; id < host.symbols.announced; id++) if (host.lastPrice[id] > 0) prices.push({ symbol: id, price: host.lastPrice[id], ts: host.lastPriceTs[id] });
  return prices;
}

/** Bytes a replay chunk starts with (grown by doubling when its values need more). */
const replayChunkBytesInitial = 1 << 20;

/**
 * One shard's chunk being filled: values as the log stores them, back to back (`ends[i]` is where
 * entry i ends), and the events decoded on the main thread, in order, for entries of length 0.
 */
class ReplayChunk {
  bytes = new Uint8Array(replayChunkBytesInitial);
  used = 0;
  readonly ends = new Int32Array(recoveryChunkMax);
  n = 0;
  readonly events: StoredEvent[] = [];

  /** Copies src[0, size) in (src: the store's read buffer, overwritten by its next read). */
  addRaw(src: Uint8Array, size: number): void {
    if (this.used + size > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.used + size));
      grown.set(this.bytes.subarray(0, this.used));
      this.bytes = grown;
    }
    // Byte by byte: no view object per value (1M values at a start), and lmdb-js's read buffer may
    // carry a `length` another read set, which Buffer's copy would trust.
    const bytes = this.bytes;
    const at = this.used;
    for (let i = 0; i < size; i++) bytes[at + i] = src[i];
    this.used += size;
    this.ends[this.n++] = this.used;
  }

  addEvent(e: StoredEvent): void {
    this.events.push(e);
    this.ends[this.n++] = this.used;
  }

  get full(): boolean {
    return this.n >= recoveryChunkMax;
  }
}

/**
 * Feeds events to shards in chunks, at most replayChunksInFlightMax unapplied per shard. A chunk moves
 * to its worker (transferred, not cloned): the raw values of trades, which the worker reads itself
 * (src/shard/logRecord.ts), and the few other events, decoded here.
 */
class ReplayPipe {
  private readonly chunks: ReplayChunk[];
  private readonly inFlight: number[];
  private readonly bytesInFlight: number[];
  private readonly waiters: ((() => void) | null)[];

  constructor(
    private readonly host: RecoveryHost,
    private readonly handles: readonly ShardHandle[],
  ) {
    this.chunks = handles.map(() => new ReplayChunk());
    this.inFlight = handles.map(() => 0);
    this.bytesInFlight = handles.map(() => 0);
    this.waiters = handles.map(() => null);
  }

  /** Adds a trade's raw value for handles[k]; resolves at once unless its chunk was posted and the pipe is full. */
  addRaw(k: number, src: Uint8Array, size: number): Promise<void> | null {
    const chunk = this.chunks[k];
    chunk.addRaw(src, size);
    return chunk.full ? this.post(k) : null;
  }

  /** The same for an event decoded here. */
  add(k: number, e: StoredEvent): Promise<void> | null {
    const chunk = this.chunks[k];
    chunk.addEvent(e);
    return chunk.full ? this.post(k) : null;
  }

  private post(k: number): Promise<void> | null {
    const chunk = this.chunks[k];
    if (chunk.n === 0) return null;
    this.chunks[k] = new ReplayChunk();
    const ack = this.host.nextRequest();
    const entries = chunk.n;
    const bytes = chunk.used;
    this.inFlight[k]++;
    this.bytesInFlight[k] += bytes;
    this.host.loadRequests.set(ack, () => {
      this.inFlight[k]--;
      this.bytesInFlight[k] -= bytes;
      this.host.progress.eventsReplayed += entries;
      const w = this.waiters[k];
      this.waiters[k] = null;
      w?.();
    });
    const msg: ToShard = { t: 'replayRaw', bytes: chunk.bytes.subarray(0, chunk.used), ends: chunk.ends.subarray(0, entries), events: chunk.events, ack };
    this.handles[k].port?.postMessage(msg, [chunk.bytes.buffer as ArrayBuffer, chunk.ends.buffer as ArrayBuffer]);
    if (this.inFlight[k] < replayChunksInFlightMax && this.bytesInFlight[k] < replayBytesInFlightMax) return null;
    return new Promise((resolve) => (this.waiters[k] = resolve));
  }

  async flush(): Promise<void> {
    for (let k = 0; k < this.handles.length; k++) {
      const wait = this.post(k);
      if (wait !== null) await wait;
    }
  }
}

/**
 * One pass over the log after `from` for every shard in `handles`: a trade is routed by a peek at its
 * bytes (portfolio, symbol, currency) and travels undecoded; any other event is decoded here (it may
 * change the directory or need symbols), and events that change no state on replay are skipped by
 * their type alone. `covered`: per-portfolio seqs the snapshots already include.
 */
async function replayTail(host: RecoveryHost, handles: readonly ShardHandle[], from: number, coverage: Coverage, directory: Directory | null): Promise<void> {
  const { store, symbols, progress } = host;
  const pipe = new ReplayPipe(host, handles);
  const index = new Map(handles.map((h, k) => [h.index, k]));
  const reader = new LogRecordReader(false);
  const trade = reader.trade;
  // Each value is a view of the store's read buffer: used (copied into a chunk, or decoded) before
  // anything else reads the store, i.e. before this loop awaits.
  for (const { key, value } of store.eventViewsAfter(from)) {
    const seq = key as number;
    const { bytes, size } = value;
    if (directory !== null) progress.eventsRead = seq - from;
    let wait: Promise<void> | null;
    if (reader.read(bytes, 0, size)) {
      const id = trade.portfolio_id;
      if (seq <= (coverage.covered.get(id) ?? 0)) continue;
      const k = index.get(shardOf(id, host.workers));
      if (k === undefined) continue;
      if (directory !== null) {
        symbols.intern(trade.symbol);
        const base = directory.get(id)?.base;
        if (trade.currency !== null && base !== undefined) symbols.internConversion(trade.currency, base, host.fxPivot);
        announce(host, handles);
      }
      wait = pipe.addRaw(k, bytes, size);
    } else {
      const type = reader.typeOf(bytes, 0, size);
      if (type !== null && !replayedEventTypes.has(type as DomainEventType)) continue;
      const e = store.decodeEvent(bytes.subarray(0, size));
      if (!replayedEventTypes.has(e.type)) continue;
      if (e.seq <= (coverage.covered.get(e.portfolio_id) ?? 0)) continue;
      if (directory !== null) {
        applyToDirectory(directory, e);
        symbolsOfEvent(e, symbols, directory, host.fxPivot);
        announce(host, handles);
      }
      const k = index.get(shardOf(e.portfolio_id, host.workers));
      if (k === undefined) continue;
      wait = pipe.add(k, e);
    }
    if (wait !== null) await wait;
  }
  if (directory !== null) progress.mark('tail read');
  await pipe.flush();
}

/** New names reach every worker before the first event that needs them. */
function announce(host: RecoveryHost, handles: readonly ShardHandle[]): void {
  const fresh = host.symbols.takeUnannounced();
  if (fresh !== null) for (const h of handles) h.post({ t: 'symbols', from: fresh.from, names: fresh.names });
}

async function finish(host: RecoveryHost, h: ShardHandle): Promise<void> {
  const request = host.nextRequest();
  await new Promise<void>((resolve) => {
    host.loadRequests.set(request, resolve);
    h.post({ t: 'loaded', request });
  });
}

/** Sends the whole symbol table to a fresh worker; from then on the engine announces new names to it. */
function sendSymbols(host: RecoveryHost, h: ShardHandle): void {
  const { symbols } = host;
  if (symbols.announced > 0) h.post({ t: 'symbols', from: 0, names: symbols.names.slice(0, symbols.announced) });
  h.symbolTableSent = true;
}

/**
 * The engine's start: reads the snapshots, rebuilds the directory and the symbol table, and, once
 * `started` resolves (every worker up), loads all shards in parallel from one pass over the log.
 */
export async function recoverAll(host: RecoveryHost, directory: Directory, handles: readonly ShardHandle[], started: Promise<void>): Promise<void> {
  const { store, symbols, progress } = host;
  const coverage: Coverage = { covered: new Map(), min: Number.MAX_SAFE_INTEGER };
  const source = readSource(host, null, directory, coverage);
  if (coverage.min === Number.MAX_SAFE_INTEGER) coverage.min = 0;
  progress.mark('snapshots read');
  progress.portfolios = directory.size;
  await started;
  progress.mark('workers up');
  symbols.announced = symbols.size;
  const prices = pricesFor(host);
  for (const h of handles) {
    sendSymbols(host, h);
    sendSnapshot(host, h, source, prices);
  }
  progress.mark('snapshots posted');
  progress.phase = 'replay';
  progress.eventsToRead = Math.max(0, store.lastSeq() - coverage.min);
  await replayTail(host, handles, coverage.min, coverage, directory);
  progress.mark('tail replayed');
  await Promise.all(handles.map((h) => finish(host, h)));
  progress.mark('shards loaded');
  progress.portfolios = directory.size;
  progress.eventsRead = progress.eventsToRead;
}

/** A supervised restart of one shard: its snapshot and the log after it, nothing else touched. */
export async function recoverShard(host: RecoveryHost, h: ShardHandle): Promise<void> {
  const { store, progress } = host;
  const coverage: Coverage = { covered: new Map(), min: Number.MAX_SAFE_INTEGER };
  const source = readSource(host, h.index, null, coverage);
  if (coverage.min === Number.MAX_SAFE_INTEGER) coverage.min = 0;
  progress.mark(`shard ${h.index} restart: snapshot read`);
  sendSymbols(host, h);
  sendSnapshot(host, h, source, pricesFor(host));
  await replayTail(host, [h], coverage.min, coverage, null);
  progress.mark(`shard ${h.index} restart: tail replayed`);
  await finish(host, h);
  progress.mark(`shard ${h.index} restart: loaded`);
}
