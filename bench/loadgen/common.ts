// Shared by the orchestrator (bench/run.ts), the load generator processes and the bench servers:
// the clock, latency histograms (HDR, merged across processes as compressed base64), the
// subscription layout and the IPC plumbing of child processes.
import { performance } from 'node:perf_hooks';
import hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';
import { holdingsOf, portfolioId, type Workload } from '../workload.js';

/**
 * Epoch milliseconds with sub-millisecond resolution. Every process of a run uses this clock: the
 * publisher stamps each tick's ts with it and the clients subtract it on arrival. Node derives
 * performance.timeOrigin from one system-wide clock, so two processes on this machine agree to a few
 * microseconds (measured: < 0.01 ms apart), unlike Date.now() which only has whole milliseconds.
 */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

// ---- histograms ----

/**
 * Latencies are recorded in microseconds: 1 us .. 10 minutes at 3 significant digits (0.1% error).
 * 32-bit counts, not 'packed': the packed layout costs ~1.6 us per recorded value and 6-9 ms per encode,
 * decode or add of one window (measured, docs/BENCHMARKS.md "Why max W2 stopped at a few ticks/s"), and
 * a subscriber stalled that long every flush adds that stall to the latencies it measures.
 */
const histogramRequest = { lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3, bitBucketSize: 32 } as const;

export function newHistogram(): Histogram {
  return hdr.build(histogramRequest);
}

export function recordMs(h: Histogram, ms: number): void {
  // A latency can come out a hair below 0 from float rounding of the two clock reads; clamp, never drop.
  const us = Math.round(ms * 1000);
  h.recordValue(us < 1 ? 1 : us > histogramRequest.highestTrackableValue ? histogramRequest.highestTrackableValue : us);
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function decodeHistogram(s: string): Histogram {
  return hdr.decodeFromCompressedBase64(s, histogramRequest.bitBucketSize);
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Percentiles in ms; zeros when nothing was recorded (count says so). */
export function summarize(h: Histogram): LatencySummary {
  const n = h.totalCount;
  const at = (q: number) => (n === 0 ? 0 : round3(h.getValueAtPercentile(q) / 1000));
  return { count: n, p50Ms: at(50), p90Ms: at(90), p99Ms: at(99), p999Ms: at(99.9), maxMs: n === 0 ? 0 : round3(h.maxValue / 1000), meanMs: n === 0 ? 0 : round3(h.mean / 1000) };
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * Subscriber counts and latencies per time window (index = floor((arrival - t0) / windowMs)), so that the
 * orchestrator can cut a run into phases and windows after the fact, across processes.
 */
export interface WindowCounts {
  /** Updates received. */
  n: number;
  /** Seqs folded into merged updates (an update with from_seq < seq stands for seq - from_seq + 1 of them). */
  merged: number;
  /** Seq holes not declared by from_seq: updates lost. */
  gaps: number;
  /** Snapshots received after the initial one (the server resynced the subscription). */
  resyncs: number;
  /** Bytes received. */
  bytes: number;
}

export interface EncodedWindow extends WindowCounts {
  w: number;
  /** Compressed base64 HDR histogram of the window's latencies; '' when none were recorded. */
  hist: string;
  /** The same for the hop before the server's stamp (as_of - tick_ts); '' when none. */
  histStamp: string;
  /** The same for the hop after it (arrival - as_of); '' when none. */
  histSend: string;
}

/** One window's counts and histograms (each made at its first value). */
export interface WindowEntry {
  counts: WindowCounts;
  hist: Histogram | null;
  histStamp: Histogram | null;
  histSend: Histogram | null;
}

export function newWindowEntry(): WindowEntry {
  return { counts: { n: 0, merged: 0, gaps: 0, resyncs: 0, bytes: 0 }, hist: null, histStamp: null, histSend: null };
}

function encodeAndFree(h: Histogram | null): string {
  if (h === null) return '';
  const s = encodeHistogram(h);
  h.destroy();
  return s;
}

export class Windows {
  private readonly map = new Map<number, WindowEntry>();

  constructor(
    readonly t0: number,
    readonly windowMs: number,
  ) {}

  index(t: number): number {
    return Math.floor((t - this.t0) / this.windowMs);
  }

  at(t: number): WindowEntry {
    const w = this.index(t);
    let e = this.map.get(w);
    if (e === undefined) {
      e = newWindowEntry();
      this.map.set(w, e);
    }
    return e;
  }

  record(t: number, latencyMs: number): WindowCounts {
    const e = this.at(t);
    e.hist ??= newHistogram();
    recordMs(e.hist, latencyMs);
    return e.counts;
  }

  /** Removes and encodes the windows that ended before `t` (all of them when t is Infinity). */
  take(t: number): EncodedWindow[] {
    const limit = t === Infinity ? Infinity : this.index(t);
    const out: EncodedWindow[] = [];
    for (const [w, e] of this.map) {
      if (w >= limit) continue;
      out.push({ w, ...e.counts, hist: encodeAndFree(e.hist), histStamp: encodeAndFree(e.histStamp), histSend: encodeAndFree(e.histSend) });
      this.map.delete(w);
    }
    return out;
  }
}

// ---- subscriptions ----

/**
 * Connection c subscribes to portfolios (c * perConnection + j) mod P, j < perConnection: with
 * connections x perConnection = P (W1: 1,000 x 10 = 10,000) every portfolio is watched exactly once.
 */
export function portfoliosOfConnection(c: number, perConnection: number, portfolios: number): string[] {
  return portfolioIndexesOfConnection(c, perConnection, portfolios).map(portfolioId);
}

export function portfolioIndexesOfConnection(c: number, perConnection: number, portfolios: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < perConnection; j++) out.push((c * perConnection + j) % portfolios);
  return out;
}

/** Per symbol index: how many subscriptions watch a portfolio holding it (updates a per-tick system owes). */
export function subscribedHolders(w: Workload, connections: number, perConnection: number): Uint32Array {
  const watched = new Map<string, number>();
  for (let c = 0; c < connections; c++) for (const p of portfoliosOfConnection(c, perConnection, w.portfolios)) watched.set(p, (watched.get(p) ?? 0) + 1);
  const out = new Uint32Array(w.symbols);
  for (const h of holdingsOf(w)) {
    const n = watched.get(h.portfolio);
    if (n !== undefined) out[Number(h.symbol.slice(3))] += n;
  }
  return out;
}

// ---- child processes ----

/** A child's configuration arrives as one JSON argument (small: parameters, never data). */
export function childConfig<T>(): T {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('usage: node <child>.js <config JSON> (started by bench/run.js)');
  return JSON.parse(raw) as T;
}

export function send(message: object): void {
  // Only when forked with an IPC channel; a child started by hand prints its JSON lines instead.
  if (process.send !== undefined && process.connected) process.send(message);
}

/**
 * Every bench child dies with its parent: when the IPC channel closes (the orchestrator exited or was
 * killed) the child exits too, so no server or load generator outlives a run.
 */
export function exitWithParent(cleanup: () => void = () => {}): void {
  process.on('disconnect', () => {
    try {
      cleanup();
    } finally {
      process.exit(0);
    }
  });
}

export function errorText(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

/** Reports a fatal error to the orchestrator, then exits non-zero. */
export function fatal(e: unknown): never {
  const message = errorText(e);
  send({ type: 'error', message });
  console.error(message);
  process.exit(1);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** CPU time of this process (all threads) in seconds. */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
