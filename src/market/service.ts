// The market data service on the engine's main thread. Every tick the engine accepts reaches the
// market worker (worker.ts): the engine hands its tape over once per batch, and the tape is copied
// into a ring in shared memory (ring.ts) that the worker reads at its own pace, so no message
// crosses per batch. The worker builds the bars of every timeframe and evaluates the alert rules off
// the main thread, and sends back, only when there is something: closed and revised bars, watched
// open bars, feed gaps, alerts. Here those are stored (store.ts: the main thread owns LMDB), streamed
// to listeners (the server's subscribe_bars), and recorded as MarketAlert / FeedGap domain events
// through the engine's log.
//
// Bounds: the ring (ringTicksMax: ticks that do not fit, or that come while the store is behind,
// are dropped from the bars and counted), every store queue, every query span.
// Restart: closed bars are committed as they close; open bars are checkpointed every
// openBarsCheckpointIntervalMs and at close, and restored at start with each series' newest closed
// bar (so late ticks keep revising it) and the symbol's watermark (so lateness is what it was).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Supervisor } from '../workers/supervisor.js';
import { ErrorCode, fail, ok, type Result } from '../errors.js';
import type { DomainEvent } from '../domain/types.js';
import { distFile } from '../projectRoot.js';
import type { Bar } from './bar.js';
import { barBookLimitsDefault, type FeedGap } from './barBook.js';
import { alertRulesMaxDefault, validateAlertRules, type AlertRule, type MarketAlert } from './alertRules.js';
import { marketCoreLimitsDefault, type MarketCoreOptions } from './core.js';
import { SymbolNameTable, TickRingWriter, createTickRing } from './ring.js';
import { barsPerQueryMaxDefault, type BarQuery, type BarRow } from './fill.js';
import { BarCursor } from './history.js';
import { unpackBars, type BarChange, type PackedBars } from './pack.js';
import { openMarketStore, marketStoreLimitsDefault, type MarketStore, type MarketStoreStats } from './store.js';
import { bucketStart, timeframeIndex, timeframes, widthMs, type Timeframe } from './timeframe.js';
import type { FromMarketWorker, ToMarketWorker } from './workerProtocol.js';
import type { MarketCoreStats } from './core.js';

/** The pseudo-portfolio market events are logged under (events API, subscribe_events). */
export const marketPortfolio = '_market';

/** What the service needs of the engine (MtmEngine has it). */
export interface MarketEngine {
  tapTicks(listener: (tape: Float64Array, ticks: number) => void, tapeTicksMax?: number): () => void;
  symbolName(id: number): string | undefined;
  recordEvents(events: DomainEvent[]): Promise<void>;
  /** Optional: takes back a tape buffer whose ticks were copied out, so the engine allocates none per batch. */
  recycleTape?(buffer: Float64Array): void;
}

export interface MarketServiceLimits {
  /** Symbols the bars and alerts track (ticks of further symbols are counted, not aggregated). */
  symbolsMax: number;
  /** How far behind a symbol's newest tick a tick may be and still revise a closed bar. */
  latenessMs: number;
  /** Silence of one symbol, while others tick, after which a FeedGap is recorded. */
  feedGapMs: number;
  gapsPerCheckMax: number;
  /** Period of closeElapsed / checkGaps / checkSilence in the worker. */
  checkIntervalMs: number;
  openBarsCheckpointIntervalMs: number;
  /** Ticks per tape of the engine (it hands one off per batch, or when full). */
  engineTapeTicksMax: number;
  /**
   * Ticks the ring to the worker holds (a power of two): its inbound queue bound. A tape that does
   * not fit is cut; the rest of its ticks are dropped from the bars and counted.
   */
  ringTicksMax: number;
  /** The worker reads the ring this often while ticks come: longer gathers longer runs per symbol. */
  ringPollMs: number;
  /** A worker request (open bar, checkpoint, rules) not answered within this is given up. */
  workerRequestTimeoutMs: number;
  /** Intervals one HTTP bars query may span (a larger span is refused with 400). */
  barsPerQueryMax: number;
  /** Rows of one HTTP page (limit). */
  pageBarsMax: number;
  /** Intervals one WebSocket history may span. */
  historyIntervalsMax: number;
  /** Rows per history chunk. */
  historyChunkBarsMax: number;
  revisableBarsMax: number;
  alertsPerReplyMax: number;
  alertRulesMax: number;
  /** Distinct rule ids counted in alertCounts (rule sets change at run time; the label set must not grow forever). */
  alertCounterRulesMax: number;
  pendingWritesMax: number;
  writesPerFlushMax: number;
  mapSizeBytes: number;
}

export const marketServiceLimitsDefault: Readonly<MarketServiceLimits> = Object.freeze({
  symbolsMax: 100_000,
  latenessMs: barBookLimitsDefault.latenessMs,
  feedGapMs: barBookLimitsDefault.feedGapMs,
  gapsPerCheckMax: barBookLimitsDefault.gapsPerCheckMax,
  checkIntervalMs: 1_000,
  openBarsCheckpointIntervalMs: 10_000,
  engineTapeTicksMax: 2_048,
  ringTicksMax: 1 << 19,
  ringPollMs: 25,
  workerRequestTimeoutMs: 5_000,
  barsPerQueryMax: barsPerQueryMaxDefault,
  pageBarsMax: barsPerQueryMaxDefault,
  historyIntervalsMax: 1_000_000,
  historyChunkBarsMax: 500,
  revisableBarsMax: marketCoreLimitsDefault.revisableBarsMax,
  alertsPerReplyMax: marketCoreLimitsDefault.alertsPerReplyMax,
  alertRulesMax: alertRulesMaxDefault,
  alertCounterRulesMax: 256,
  pendingWritesMax: marketStoreLimitsDefault.pendingWritesMax,
  writesPerFlushMax: marketStoreLimitsDefault.writesPerFlushMax,
  mapSizeBytes: marketStoreLimitsDefault.mapSizeBytes,
});

export interface MarketServiceOptions {
  /** The engine's data dir (the CLI's --data): market data lives in <dataDir>/market. Omitted: a temporary directory, removed at close. */
  dataDir?: string;
  /** Alert rules file (JSON: an array of rules, or {"rules": [...]}); it replaces the rules stored by PUT /api/v1/market/alerts. */
  alertsFile?: string;
  /** Alert rules given directly (tests, embedding); like alertsFile. */
  rules?: unknown;
  limits?: Partial<MarketServiceLimits>;
  /** Wall clock (epoch ms) for the periodic checks: injected, as no market module reads a clock. */
  now: () => number;
  log?: (line: string) => void;
}

export type BarListener = (bar: Bar, change: BarChange) => void;

export interface MarketServiceStats {
  ticksTapped: number;
  /** Ticks not aggregated: the worker's queue was full, the store was behind, or the worker was restarting. */
  ticksDropped: number;
  /** Ticks in the ring, not read by the worker yet. */
  ringTicks: number;
  barsStored: number;
  feedGaps: number;
  alerts: number;
  eventsFailed: number;
  workerRestarts: number;
  store: MarketStoreStats;
}

const workerRestartDelayMs = 1_000;

export class MarketStartError extends Error {}

/** Starts the service: opens <dataDir>/market, restores, starts the worker and taps the engine. */
export async function startMarketService(engine: MarketEngine, options: MarketServiceOptions): Promise<MarketService> {
  const limits = { ...marketServiceLimitsDefault, ...options.limits };
  for (const [name, value] of Object.entries(limits)) {
    const min = name === 'latenessMs' ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < min) throw new MarketStartError(`market limits.${name} must be an integer >= ${min}`);
  }
  const ring = limits.ringTicksMax;
  if (ring < 2 || ring > 1 << 28 || (ring & (ring - 1)) !== 0) throw new MarketStartError('market limits.ringTicksMax must be a power of two in [2, 2^28]');
  const ephemeral = options.dataDir === undefined ? mkdtempSync(join(tmpdir(), 'mtm-market-')) : null;
  const opened = openMarketStore(join(options.dataDir ?? (ephemeral as string), 'market'), limits, options.log);
  if (!opened.ok) {
    if (ephemeral !== null) rmSync(ephemeral, { recursive: true, force: true });
    throw new MarketStartError(opened.error.message);
  }
  const service = new MarketService(engine, opened.value, limits, options, ephemeral);
  try {
    await service.start(initialRules(opened.value, options, limits.alertRulesMax));
  } catch (e) {
    await service.close();
    throw e;
  }
  return service;
}

/** The file's (or given) rules, else the ones stored by the API, else none; validated, errors naming the field. */
function initialRules(store: MarketStore, options: MarketServiceOptions, rulesMax: number): AlertRule[] {
  let input: unknown = options.rules;
  let source = 'rules';
  if (input === undefined && options.alertsFile !== undefined) {
    source = `alerts file ${options.alertsFile}`;
    let text: string;
    try {
      text = readFileSync(options.alertsFile, 'utf8');
    } catch (e) {
      throw new MarketStartError(`cannot read ${source}: ${(e as Error).message}`);
    }
    try {
      input = JSON.parse(text);
    } catch (e) {
      throw new MarketStartError(`${source} is not JSON: ${(e as Error).message}`);
    }
  }
  if (input === undefined) {
    source = 'stored alert rules';
    input = store.getMeta('alertRules') ?? [];
  }
  if (typeof input === 'object' && input !== null && !Array.isArray(input) && 'rules' in input) input = (input as { rules: unknown }).rules;
  const rules = validateAlertRules(input, rulesMax);
  if (!rules.ok) throw new MarketStartError(`${source}: ${rules.error.message}`);
  return rules.value;
}

interface Restore {
  open: Bar[];
  recent: Bar[];
  revisable: Bar[];
}

/**
 * What a restarted worker needs from the store: the checkpointed open bars that did not close since
 * (a closed bar of the same or a later bucket makes the checkpoint stale), each series' newest closed
 * bar, and the older closed bars a late tick may still reach from the symbol's newest tick.
 */
function readRestore(store: MarketStore, latenessMs: number, revisableMax: number): Restore {
  const open = new Map<string, Bar>();
  for (const bar of store.loadOpenBars()) open.set(bar.symbol + '\u0000' + bar.tf, bar);
  const symbols = new Set(store.symbols());
  for (const bar of open.values()) symbols.add(bar.symbol);
  const out: Restore = { open: [], recent: [], revisable: [] };
  for (const symbol of symbols) {
    const latest = timeframes.map((tf) => store.latest(symbol, tf));
    let watermark = -Infinity;
    for (let i = 0; i < timeframes.length; i++) {
      const key = symbol + '\u0000' + timeframes[i];
      const o = open.get(key);
      const l = latest[i];
      if (o !== undefined && l !== null && l.start >= o.start) open.delete(key);
      const o2 = open.get(key);
      if (o2 !== undefined) watermark = Math.max(watermark, o2.last_ts);
      if (l !== null) watermark = Math.max(watermark, l.last_ts);
    }
    for (let i = 0; i < timeframes.length; i++) {
      const tf = timeframes[i];
      const o = open.get(symbol + '\u0000' + tf);
      if (o !== undefined) out.open.push(o);
      const l = latest[i];
      if (l === null) continue;
      out.recent.push(l);
      // Older bars whose bucket ends after watermark - latenessMs can still be revised.
      const from = bucketStart(tf, watermark - latenessMs);
      if (from < l.start && out.revisable.length < revisableMax) {
        for (const bar of store.range(symbol, tf, from, l.start)) {
          if (bar.start + widthMs(tf) > watermark - latenessMs && out.revisable.length < revisableMax) out.revisable.push(bar);
        }
      }
    }
  }
  return out;
}

export class MarketService {
  /** Alerts fired per rule id, since start: the source of mtm_market_alerts_total{rule}. */
  readonly alertCounts = new Map<string, number>();
  private worker: Worker | null = null;
  private untap: (() => void) | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly listeners = new Set<BarListener>();
  private readonly requests = new Map<number, { resolve: (msg: FromMarketWorker | null) => void; timer: NodeJS.Timeout }>();
  private nextRequest = 1;
  /** Engine symbol ids named in the current name table: ids below this were written. */
  private namesSent = 0;
  /** The tick ring to the current worker, and the names of the engine ids written to it. */
  private ring: TickRingWriter | null = null;
  private names: SymbolNameTable | null = null;
  /** Watched series (subscribe_bars), with how many subscriptions each. */
  private readonly watched = new Map<string, { symbol: string; tf: Timeframe; count: number }>();
  private rulesNow: AlertRule[] = [];
  private readonly eventsInFlight = new Set<Promise<void>>();
  private closing = false;
  private closed = false;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly counters = { ticksTapped: 0, ticksDropped: 0, barsStored: 0, feedGaps: 0, alerts: 0, eventsFailed: 0, workerRestarts: 0 };
  /** The worker's supervision (workers/supervisor.ts): restarted from the store after a pause when it dies. */
  private readonly supervisor = new Supervisor(
    {
      start: (died) => this.startWorker(died),
      onDeath: (code) => this.onWorkerExit(code),
      onRestartFailed: (e) => this.log(`mtm market: ${(e as Error).message}; market data stops`),
    },
    { restartDelayMs: workerRestartDelayMs, stopping: () => this.closing },
  );

  /** Use startMarketService. */
  constructor(
    private readonly engine: MarketEngine,
    readonly store: MarketStore,
    readonly limits: Readonly<MarketServiceLimits>,
    options: MarketServiceOptions,
    private readonly ephemeralDir: string | null,
  ) {
    this.now = options.now;
    this.log = options.log ?? (() => {});
  }

  /** @internal startMarketService's second step. */
  async start(rules: AlertRule[]): Promise<void> {
    this.rulesNow = rules;
    this.store.putMeta('alertRules', rules);
    await this.supervisor.start();
    this.untap = this.engine.tapTicks((tape, n) => this.onTape(tape, n), this.limits.engineTapeTicksMax);
    const every = (ms: number, f: () => void) => {
      const t = setInterval(f, Math.max(1, ms));
      t.unref();
      this.timers.push(t);
    };
    every(this.limits.checkIntervalMs, () => this.post({ t: 'check', now: this.now() }));
    every(this.limits.openBarsCheckpointIntervalMs, () => void this.checkpoint(false));
  }

  private coreOptions(): MarketCoreOptions {
    const l = this.limits;
    return {
      book: { symbolsMax: l.symbolsMax, latenessMs: l.latenessMs, feedGapMs: l.feedGapMs, gapsPerCheckMax: l.gapsPerCheckMax },
      alertLimits: { rulesMax: l.alertRulesMax },
      rules: this.rulesNow,
      limits: { revisableBarsMax: l.revisableBarsMax, alertsPerReplyMax: l.alertsPerReplyMax },
    };
  }

  private async startWorker(died: (code: number) => void): Promise<void> {
    // Bars not committed yet are read back through the pending map, so the restore sees them too.
    const restore = readRestore(this.store, this.limits.latenessMs, this.limits.revisableBarsMax);
    const worker = new Worker(distFile('src/market/worker.js'));
    const ring = createTickRing(this.limits.ringTicksMax);
    const names = SymbolNameTable.create(this.limits.symbolsMax);
    await new Promise<void>((resolve, reject) => {
      const failed = (e: Error) => reject(new MarketStartError(`market worker failed to start: ${e.message}`));
      worker.once('error', failed);
      worker.once('message', (msg: FromMarketWorker) => {
        worker.off('error', failed);
        if (msg.t === 'ready') {
          if (msg.refused > 0) this.log(`mtm market: ${msg.refused} stored bars could not be restored`);
          resolve();
        } else reject(new MarketStartError(`market worker refused its options: ${msg.t === 'failed' ? msg.message : msg.t}`));
      });
      worker.postMessage({ t: 'init', options: this.coreOptions(), ring, names: names.buffer, pollMs: this.limits.ringPollMs, ...restore } satisfies ToMarketWorker);
    }).catch(async (e: unknown) => {
      await worker.terminate();
      throw e;
    });
    this.worker = worker;
    this.ring = new TickRingWriter(ring);
    this.names = names;
    this.namesSent = 0;
    worker.on('message', (msg: FromMarketWorker) => this.onWorkerMessage(msg));
    worker.on('error', (e) => this.log(`mtm market: worker error: ${e.message}`));
    worker.on('exit', (code) => {
      if (this.worker === worker) died(code);
    });
    for (const w of this.watched.values()) this.post({ t: 'watch', symbol: w.symbol, tf: w.tf, on: true });
  }

  /** A dead worker loses its open bars since the last checkpoint; a new one restarts from the store. */
  private onWorkerExit(code: unknown): void {
    this.worker = null;
    this.ring = null;
    this.names = null;
    this.counters.workerRestarts++;
    this.log(`mtm market: worker exited (${code}); restarting from the store`);
    for (const [id, r] of this.requests) {
      clearTimeout(r.timer);
      r.resolve(null);
      this.requests.delete(id);
    }
  }

  private post(msg: ToMarketWorker, transfer: ArrayBuffer[] = []): boolean {
    if (this.worker === null) return false;
    this.worker.postMessage(msg, transfer);
    return true;
  }

  private request(build: (request: number) => ToMarketWorker): Promise<FromMarketWorker | null> {
    const request = this.nextRequest++;
    return new Promise((resolve) => {
      if (!this.post(build(request))) return resolve(null);
      const timer = setTimeout(() => {
        this.requests.delete(request);
        resolve(null);
      }, this.limits.workerRequestTimeoutMs);
      timer.unref();
      this.requests.set(request, { resolve, timer });
    });
  }

  // ---- ticks in, bars and events out ----

  /**
   * The engine's tape: copied into the ring (32 bytes a tick; the worker reads it at its pace) and
   * given back to the engine. Names of ids new since the last tape go to the shared name table
   * first. What does not fit the ring, or comes while the store is behind, is dropped and counted.
   */
  private onTape(tape: Float64Array, n: number): void {
    this.counters.ticksTapped += n;
    const ring = this.ring;
    const names = this.names;
    if (ring === null || names === null || this.store.overloaded()) {
      this.counters.ticksDropped += n;
    } else {
      for (let name = this.engine.symbolName(this.namesSent); name !== undefined && this.namesSent < names.capacity; name = this.engine.symbolName(this.namesSent)) {
        names.write(this.namesSent++, name);
      }
      this.counters.ticksDropped += n - ring.write(tape, n);
    }
    this.engine.recycleTape?.(tape);
  }

  private onWorkerMessage(msg: FromMarketWorker): void {
    if (msg.t === 'out') return this.onOut(msg.bars, msg.gaps, msg.alerts);
    if (msg.t === 'ready' || msg.t === 'failed') return;
    const r = this.requests.get(msg.request);
    if (r === undefined) return;
    clearTimeout(r.timer);
    this.requests.delete(msg.request);
    r.resolve(msg);
  }

  private onOut(packed: PackedBars, gaps: FeedGap[], alerts: MarketAlert[]): void {
    if (packed.count > 0) {
      const changed: [Bar, BarChange][] = [];
      const toStore: Bar[] = [];
      unpackBars(packed, (bar, change) => {
        changed.push([bar, change]);
        if (change !== 'open') toStore.push(bar);
      });
      // Stored first: a listener that queries on a close sees the bar.
      this.store.putBars(toStore);
      this.counters.barsStored += toStore.length;
      if (this.listeners.size > 0) for (const [bar, change] of changed) this.emit(bar, change);
    }
    if (gaps.length > 0 || alerts.length > 0) this.record(gaps, alerts);
  }

  private emit(bar: Bar, change: BarChange): void {
    for (const l of this.listeners) {
      try {
        l(bar, change);
      } catch (e) {
        // One broken listener must not stop the others or the store.
        this.log(`mtm market: a bar listener failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  private record(gaps: FeedGap[], alerts: MarketAlert[]): void {
    const events: DomainEvent[] = [];
    for (const g of gaps) {
      this.counters.feedGaps++;
      events.push({ type: 'FeedGap', portfolio_id: marketPortfolio, ts: g.to, symbol: g.symbol, from: g.from, to: g.to, gap_ms: g.to - g.from, state: g.state });
    }
    for (const a of alerts) {
      this.counters.alerts++;
      this.countAlert(a.rule.id);
      events.push(alertEvent(a, this.rulesNow.find((r) => r.id === a.rule.id)?.cooldown_ms ?? 0));
    }
    const p = this.engine.recordEvents(events).catch((e: unknown) => {
      this.counters.eventsFailed += events.length;
      this.log(`mtm market: recording ${events.length} market events failed: ${e instanceof Error ? e.message : String(e)}`);
    });
    this.eventsInFlight.add(p);
    void p.finally(() => this.eventsInFlight.delete(p));
  }

  private countAlert(rule: string): void {
    const key = this.alertCounts.has(rule) || this.alertCounts.size < this.limits.alertCounterRulesMax ? rule : '_other';
    this.alertCounts.set(key, (this.alertCounts.get(key) ?? 0) + 1);
  }

  // ---- reads ----

  /** The open bar of a series, as of every tape posted before this call; null when none (or the worker is away). */
  async openBar(symbol: string, tf: Timeframe): Promise<Bar | null> {
    const r = await this.request((request) => ({ t: 'open', request, symbol, tf }));
    return r !== null && r.t === 'open' ? r.bar : null;
  }

  /**
   * A cursor over the query's rows: stored bars, pending writes and the open bar. The open bar is
   * asked first: its answer comes after the worker's output for every earlier tape, so a bar that
   * closed meanwhile is already in the store's pending map when the range is read.
   */
  async cursor(query: BarQuery, start?: number): Promise<BarCursor> {
    const open = await this.openBar(query.symbol, query.tf);
    return new BarCursor(this.store, query, open, start);
  }

  /** One page of at most limit rows from start (a previous page's next); next is null on the last page. */
  async page(query: BarQuery, limit: number, start?: number): Promise<{ rows: BarRow[]; next: number | null }> {
    const cursor = await this.cursor(query, start);
    const rows: BarRow[] = [];
    while (rows.length < limit && !cursor.finished) for (const row of cursor.next(limit - rows.length)) rows.push(row);
    return { rows, next: cursor.finished ? null : cursor.position };
  }

  onBar(listener: BarListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reference-counted: the worker reports the open bar of (symbol, tf) after each tape while someone watches it. */
  watch(symbol: string, tf: Timeframe, on: boolean): void {
    const key = symbol + '\u0000' + timeframeIndex(tf);
    const w = this.watched.get(key);
    if (on) {
      if (w !== undefined) return void w.count++;
      this.watched.set(key, { symbol, tf, count: 1 });
      this.post({ t: 'watch', symbol, tf, on: true });
    } else if (w !== undefined && --w.count === 0) {
      this.watched.delete(key);
      this.post({ t: 'watch', symbol, tf, on: false });
    }
  }

  // ---- alert rules ----

  get rules(): readonly AlertRule[] {
    return this.rulesNow;
  }

  /** Validates and applies new rules (their windows and cooldowns start over) and stores them for restarts. */
  async setRules(input: unknown): Promise<Result<readonly AlertRule[]>> {
    const rules = validateAlertRules(input, this.limits.alertRulesMax);
    if (!rules.ok) return rules;
    if (this.closing) return fail(ErrorCode.engine_closed, 'market service is closing', undefined, true);
    const r = await this.request((request) => ({ t: 'rules', request, rules: rules.value }));
    if (r === null || r.t !== 'rules') return fail(ErrorCode.shard_restarting, 'the market worker did not answer; retry shortly', undefined, true);
    if (!r.ok) return fail(ErrorCode.invalid_field, r.message, 'rules');
    this.rulesNow = rules.value;
    this.store.putMeta('alertRules', rules.value);
    await this.store.idle();
    return ok(rules.value);
  }

  // ---- checkpoint, stats, close ----

  /** Stores the open bars (of symbols that ticked since the last checkpoint, or all). */
  async checkpoint(all: boolean): Promise<number> {
    const r = await this.request((request) => ({ t: 'checkpoint', request, all }));
    if (r === null || r.t !== 'checkpoint') return 0;
    const bars: Bar[] = [];
    unpackBars(r.bars, (bar) => bars.push(bar));
    this.store.putOpenBars(bars);
    return bars.length;
  }

  async workerStats(): Promise<MarketCoreStats | null> {
    const r = await this.request((request) => ({ t: 'stats', request }));
    return r !== null && r.t === 'stats' ? r.stats : null;
  }

  stats(): MarketServiceStats {
    return { ...this.counters, ringTicks: this.ring?.size ?? 0, store: this.store.stats() };
  }

  /** Runs the periodic check now (the timer does it every checkIntervalMs) and waits for its output. */
  async checkNow(): Promise<void> {
    this.post({ t: 'check', now: this.now() });
    await this.settle();
  }

  /**
   * Stops (false) or resumes (true) taking the engine's ticks: bars and alerts freeze meanwhile and
   * the ticks in between are not aggregated. For benchmarks (the same warm worker, bars off and on)
   * and maintenance; the service starts tapping.
   */
  setTapping(on: boolean): void {
    if (this.closing || on === (this.untap !== null)) return;
    if (on) this.untap = this.engine.tapTicks((tape, n) => this.onTape(tape, n), this.limits.engineTapeTicksMax);
    else {
      this.untap?.();
      this.untap = null;
    }
  }

  /** Resolves once every tape handed over so far has been aggregated and its output stored. */
  async settle(): Promise<void> {
    // A flush the engine scheduled (setImmediate) runs first and hands its tape over.
    await new Promise((resolve) => setImmediate(resolve));
    await this.request((request) => ({ t: 'stats', request }));
    await Promise.all([...this.eventsInFlight]);
    await this.store.idle();
  }

  /**
   * Stops taking ticks (the engine's last tape is still aggregated), checkpoints every open bar,
   * waits for the market events and the store, then stops the worker. Call before engine.close().
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    this.untap?.();
    this.untap = null;
    if (this.worker !== null) await this.checkpoint(true);
    await Promise.all([...this.eventsInFlight]);
    this.closed = true;
    await this.store.close();
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
    if (this.ephemeralDir !== null) rmSync(this.ephemeralDir, { recursive: true, force: true });
  }
}

function alertEvent(a: MarketAlert, cooldownMs: number): DomainEvent {
  const base = { type: 'MarketAlert' as const, portfolio_id: marketPortfolio, ts: a.ts, rule_id: a.rule.id, rule_name: a.rule.name, kind: a.kind, symbol: a.symbol, cooldown_ms: cooldownMs };
  switch (a.kind) {
    case 'move':
      return { ...base, figures: { move_pct: a.move_pct, threshold_pct: a.threshold_pct, window_ms: a.window_ms, price: a.price, ref_price: a.ref_price, ref_ts: a.ref_ts } };
    case 'zscore':
      return {
        ...base,
        figures: { z: a.z, threshold_z: a.threshold_z, ret: a.ret, mean: a.mean, sigma: a.sigma, returns: a.returns, price: a.price, prev_price: a.prev_price },
      };
    case 'silence':
      return { ...base, figures: { silent_ms: a.silent_ms, threshold_ms: a.threshold_ms, last_ts: a.last_ts } };
  }
}
