// Start and restart from the store: each shard's columnar snapshot and then the events after it,
// both read by each shard worker ITSELF in its own thread ('loadStored', then one cursor pass over the
// log: the data directory opened read-only there, src/shard/tail.ts, src/store/logReader.ts),
// replayed through the pure domain functions. At a start the main thread reads only what its
// directory and symbol table need of a generation (the portfolios and strings segments,
// snapshotCodec.ts directorySegments), not the positions: since the seventh session the workers'
// reads no longer wait for the main thread's, nor copy through it.
// The main thread reads no tail value: it learns from the workers' reports the directory events of
// their portfolios and the symbols a replayed event needs (it interns them, one id table for every
// shard, and announces them before the paused pass resumes). Shards load and replay in parallel.
// A directory without columnar snapshots (schema 1, migrated) recovers once from its per-portfolio
// records, the old way; the next snapshot round writes the columnar form.

import { baseCurrencyDefault, type PortfolioRecord } from '../domain/types.js';
import type { ShardRecoveryWork, TailReport, ToShard } from '../shard/protocol.js';
import { directorySegments, readSnapshotStatuses, readSnapshotStrings } from '../shard/snapshotCodec.js';
import type { ShardSnapshotPointer, Store } from '../store/store.js';
import { applyToDirectory, type Directory } from './directory.js';
import type { ShardHandle } from './shardHandle.js';
import { shardOf } from './shardOf.js';
import type { SymbolTable } from './symbols.js';

/** Records per message while loading a shard from schema 1 records. */
export const recoveryChunkMax = 5_000;

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
  /** Answers of 'loaded' (finish) messages, by request number. */
  readonly loadRequests: Map<number, () => void>;
  /** The 'tail' reports of shards reading their own tail, by request number. */
  readonly tailRequests: Map<number, (report: TailReport) => void>;
  /** Sends the names interned since the last call to every shard that has the table (pool.announceSymbols). */
  announceSymbols(): void;
  readonly progress: RecoveryProgress;
  /** The columnar generation was written by a clean shutdown and this is the boot right after it. */
  readonly cleanSnapshot: boolean;
}

/**
 * What the store holds to restore shards from. columnar: parts[i] are shard i's segments as read here
 * (whole for a supervised restart of a generation without a pointer read in the worker; at a start
 * only the directory's, each worker reading its own part itself: `stored`).
 */
type Source =
  | { kind: 'columnar'; pointer: ShardSnapshotPointer; parts: Uint8Array[][]; stored: boolean; fillDirectory: () => void }
  | { kind: 'records'; records: PortfolioRecord[][] };

/** The oldest covered seq of what was read (replay reads the log after it). */
interface Coverage {
  min: number;
}

/**
 * Reads the newest snapshots: the columnar generation's raw segments (only those of `only` when it
 * is given and the shard count did not change; with a directory, only the segments it needs: each
 * worker reads its part itself), else the schema 1 per-portfolio records grouped by shard. Registers
 * symbols in `symbols` and ids, names and lifecycle states in `directory` when given (a columnar
 * source: when the caller runs `fillDirectory`, so the workers' loads need not wait for it).
 */
function readSource(host: RecoveryHost, only: number | null, directory: Directory | null, coverage: Coverage): Source {
  const { store, symbols, workers } = host;
  const pointer = store.shardSnapshotPointer();
  if (pointer !== undefined) {
    const parts: Uint8Array[][] = [];
    const stored = directory !== null;
    const fills: (() => void)[] = [];
    for (let i = 0; i < pointer.shards; i++) {
      if (only !== null && pointer.shards === workers && i !== only) {
        parts.push([]);
        continue;
      }
      const segments = store.shardSnapshotSegments(pointer, i, stored ? directorySegments : undefined);
      parts.push(segments);
      const covered = pointer.covered[i];
      // A shard part without books covers too: as of `covered`, the shard's books were exactly these
      // (none). A cluster node that dropped a partition's portfolios (engine.dropPortfolios) must not
      // see them come back from their events before it.
      coverage.min = Math.min(coverage.min, covered);
      if (directory !== null) {
        const strings = readSnapshotStrings(segments);
        const statuses = readSnapshotStatuses(segments);
        fills.push(() => strings.ids.forEach((id, k) => directory.set(id, { name: strings.names[k], state: statuses[k], base: strings.bases[k] ?? baseCurrencyDefault })));
        for (const s of strings.symbols) symbols.intern(s);
        for (const [currency, base] of strings.conversions) symbols.internConversion(currency, base, host.fxPivot);
      }
    }
    return { kind: 'columnar', pointer, parts, stored, fillDirectory: () => fills.splice(0).forEach((f) => f()) };
  }
  const records: PortfolioRecord[][] = Array.from({ length: workers }, () => []);
  for (const r of store.loadSnapshots()) {
    const shard = shardOf(r.portfolio.id, workers);
    if (only !== null && shard !== only) continue;
    records[shard].push(r);
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
  if (source.stored) {
    // The worker reads the committed generation itself (the one read here: nothing writes one before
    // the start is over) and its own part of it, or every part when the shard count changed.
    h.post({ t: 'loadStored', path: host.store.path, clean: host.cleanSnapshot, prices });
    return;
  }
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

/**
 * Every shard in `handles` reads and replays its own tail (protocol 'replayTail'; `from(h)`: the seq
 * its snapshot covers), all at once. Their reports bring the directory events of their portfolios
 * (applied to `directory` when given: the start) and progress; a report that stops on names the
 * shard lacks has them interned and announced to every shard, then the pass resumes.
 */
async function replayTails(host: RecoveryHost, handles: readonly ShardHandle[], from: (h: ShardHandle) => number | null, directory: Directory | null): Promise<void> {
  const { symbols, progress } = host;
  const floor = Math.min(...handles.map((h) => from(h) ?? 0));
  const lastSeq = handles.map((h) => from(h) ?? 0);
  const applied = handles.map(() => 0);
  await Promise.all(
    handles.map(
      (h, k) =>
        new Promise<void>((resolve) => {
          const request = host.nextRequest();
          host.tailRequests.set(request, (r: TailReport) => {
            if (directory !== null) for (const e of r.events) applyToDirectory(directory, e);
            lastSeq[k] = r.lastSeq;
            applied[k] = r.applied;
            progress.eventsRead = Math.max(0, Math.min(...lastSeq) - floor);
            progress.eventsReplayed = applied.reduce((a, b) => a + b, 0);
            if (r.needs !== null) {
              for (const s of r.needs.symbols) symbols.intern(s);
              for (const [quote, base] of r.needs.conversions) symbols.internConversion(quote, base, host.fxPivot);
              // Announced before the resume on the same port: the worker registers them first.
              host.announceSymbols();
              h.post({ t: 'tailResume', request });
            }
            if (!r.done) return;
            host.tailRequests.delete(request);
            resolve();
          });
          h.post({ t: 'replayTail', request, path: host.store.path, from: from(h) });
        }),
    ),
  );
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
 * Where a shard's tail starts: the seq its own part of a columnar generation covers (same shard count),
 * else the oldest covered seq read (its books skip what their own snapshot covers).
 */
function tailFrom(source: Source, host: RecoveryHost, coverage: Coverage): (h: ShardHandle) => number {
  if (source.kind === 'columnar' && source.pointer.shards === host.workers) {
    const covered = source.pointer.covered;
    return (h) => covered[h.index];
  }
  return () => coverage.min;
}

/**
 * The engine's start: reads the snapshots, rebuilds the directory and the symbol table, and, once
 * `started` resolves (every worker up), loads all shards in parallel, each reading its own tail.
 */
export async function recoverAll(host: RecoveryHost, directory: Directory, handles: readonly ShardHandle[], started: Promise<void>): Promise<void> {
  const { store, symbols, progress } = host;
  const coverage: Coverage = { min: Number.MAX_SAFE_INTEGER };
  const source = readSource(host, null, directory, coverage);
  if (coverage.min === Number.MAX_SAFE_INTEGER) coverage.min = 0;
  progress.mark('snapshots read');
  await started;
  progress.mark('workers up');
  symbols.announced = symbols.size;
  const prices = pricesFor(host);
  for (const h of handles) {
    sendSymbols(host, h);
    sendSnapshot(host, h, source, prices);
  }
  progress.mark('snapshots posted');
  // The directory (100,000 books: ~85 ms here) while the workers load, not before they may start.
  // Before any message of theirs is handled: their tail reports apply to it.
  if (source.kind === 'columnar') source.fillDirectory();
  progress.portfolios = directory.size;
  progress.mark('directory filled');
  progress.phase = 'replay';
  progress.eventsToRead = Math.max(0, store.lastSeq() - coverage.min);
  await replayTails(host, handles, tailFrom(source, host, coverage), directory);
  progress.mark('tail replayed');
  await Promise.all(handles.map((h) => finish(host, h)));
  progress.mark('shards loaded');
  progress.portfolios = directory.size;
  progress.eventsRead = progress.eventsToRead;
}

/**
 * A supervised restart of one shard: its snapshot and the log after it, nothing else touched. With a
 * columnar generation the worker reads both itself ('loadStored', then its tail from what that
 * covers): the main thread reads and copies nothing.
 */
export async function recoverShard(host: RecoveryHost, h: ShardHandle): Promise<void> {
  const { store, progress } = host;
  sendSymbols(host, h);
  if (store.shardSnapshotPointer() !== undefined) {
    h.post({ t: 'loadStored', path: store.path, clean: false, prices: pricesFor(host) });
    progress.mark(`shard ${h.index} restart: snapshot posted`);
    await replayTails(host, [h], () => null, null);
  } else {
    const coverage: Coverage = { min: Number.MAX_SAFE_INTEGER };
    const source = readSource(host, h.index, null, coverage);
    if (coverage.min === Number.MAX_SAFE_INTEGER) coverage.min = 0;
    progress.mark(`shard ${h.index} restart: snapshot read`);
    sendSnapshot(host, h, source, pricesFor(host));
    await replayTails(host, [h], tailFrom(source, host, coverage), null);
  }
  progress.mark(`shard ${h.index} restart: tail replayed`);
  await finish(host, h);
  progress.mark(`shard ${h.index} restart: loaded`);
}
