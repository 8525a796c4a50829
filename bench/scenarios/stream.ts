// The streaming harness shared by steady, max and spike: one system, subscriber processes and
// publisher processes (the rate split evenly between them), all over loopback sockets. Windows of
// 100 ms (by arrival time on the shared clock) come back from the children as they complete and are
// merged here, so any phase of the run can be cut afterwards: [from, to) -> latency percentiles,
// rates, losses, server CPU and RSS.
import type { Histogram } from 'hdr-histogram-js';
import { decodeHistogram, newHistogram, newWindowEntry, nowMs, sleep, summarize, round3, type EncodedWindow, type LatencySummary, type WindowEntry } from '../loadgen/common.js';
import type { ClientsConfig, ClientsFinal, ClientsOut, PublisherConfig, PublisherFinal, PublisherOut, PublisherWindow } from '../loadgen/messages.js';
import type { Workload } from '../workload.js';
import { Child, benchScript, type ProcSample } from './children.js';
import type { RunningSystem } from './systems.js';

/** A load generator process using more than this many cores makes a phase load-generator-bound. */
export const loadgenCoreMax = 0.8;
/** Ticks the publishers failed to produce, over those due, above which a phase is load-generator-bound. */
export const laggedShareMax = 0.01;

export interface StreamSetup {
  /** W1 (every portfolio watched) or W2 (1,000 watched portfolios): see scenarios/config.ts. */
  workloadName: string;
  workload: Workload;
  /** What the subscribers ask for: binary update frames or JSON text. */
  encoding: 'json' | 'binary';
  /** 'connection': subscribers ask for one frame per connection per batch (mtm and the limit; the peer ignores it). */
  frames: 'single' | 'connection';
  connections: number;
  perConnection: number;
  clientProcesses: number;
  windowMs: number;
  flushMs: number;
  publishers: number;
  publisherIntervalMs: number;
  frameTicksMax: number;
  bufferedMaxBytes: number;
  connectConcurrency: number;
  readyTimeoutMs: number;
  /** The longest a run waits for deliveries to stop after the feed stops. */
  drainMaxMs: number;
}

export interface PhaseStats {
  seconds: number;
  /** Ticks per second the publishers were asked for (all together). */
  targetTicksPerSecond: number;
  ticksSentPerSecond: number;
  /**
   * Ticks the server acknowledged as accepted, per second, by ack arrival: its ingest rate (mtm and
   * the limit acknowledge a frame once ingested, before valuation; the peer after processing it).
   */
  ticksAcceptedPerSecond: number;
  /** Ticks not sent because the server did not read its feed socket (counted as lost). */
  ticksSkipped: number;
  ticksRejected: number;
  /** Ticks the publishers failed to produce (their own CPU): when > 1% the phase is load-generator limited. */
  ticksLagged: number;
  updatesPerSecond: number;
  /** Updates a per-tick system owed for the ticks sent (the peer's and the limit's exact expectation if they sent one per tick). */
  updatesOwedPerTick: number;
  latency: LatencySummary;
  /**
   * The latency cut at the server's stamp (as_of): tick_ts -> as_of (feed socket, ingest, coalescing,
   * up to the batch's clock) and as_of -> arrival (valuation, encoding, routing, the server's socket,
   * the subscriber's read). mtm stamps whole milliseconds (each hop then +-1 ms); the relay stamps its
   * flush on the same sub-ms clock as the load generator; the peer stamps Date.now() when it sends.
   */
  hops: { tickToStamp: LatencySummary; stampToClient: LatencySummary };
  /**
   * The longest event-loop stall of any subscriber process during the phase (5 ms resolution): an update
   * arriving then is read that much later. Above a few ms it is the load generator's own share of a p99.
   */
  clientLoopDelayMaxMs: number;
  /** Seqs folded into merged updates (conflation; the client's state stays exact). */
  updatesMerged: number;
  /** Seq holes not declared as merged: updates lost. */
  updatesLost: number;
  resyncs: number;
  clientDisconnects: number;
  bytesPerSecond: number;
  /** (skipped + rejected) / (sent + skipped). */
  tickLoss: number;
  /** lost / (received + lost). */
  updateLoss: number;
  serverCpuCores: number;
  serverRssMaxMb: number;
  /** CPU of the load generator processes (subscribers + publishers), cores. */
  loadgenCpuCores: number;
  /** The busiest subscriber process, cores: near 1 it, not the server, may be what limits delivery. */
  clientCpuMaxCores: number;
  /** The busiest publisher process, cores. */
  publisherCpuMaxCores: number;
  /** The publishers could not produce the rate (> 1% lagged). */
  loadgenLimited: boolean;
  /** A subscriber process used > 0.8 core: latencies include its own queueing. */
  clientsSaturated: boolean;
  /**
   * The load generator, not the system, may be what this phase measured: a subscriber or a publisher
   * process above 0.8 core, or the publishers unable to produce the rate. loadgenBoundWhy says which.
   */
  loadgenBound: boolean;
  loadgenBoundWhy: string;
  /** Every child reported the phase's windows in time. */
  complete: boolean;
}

export type Progress = (text: string) => void;

export class StreamRun {
  readonly t0: number;
  private readonly clientWindows = new Map<number, WindowEntry>();
  /** Per subscriber report: when it arrived and the longest event-loop stall since the previous one. */
  private readonly clientLoopDelays: { t: number; maxMs: number }[] = [];
  private readonly pubWindows = new Map<number, PublisherWindow>();
  private readonly samples: ProcSample[] = [];
  private readonly clients: Child[] = [];
  private readonly publishers: Child[] = [];
  private readonly lastPush = new Map<Child, number>();
  private readonly clientCpu = new Map<Child, { t: number; cpu: number }[]>();
  private readonly publisherCpu = new Map<Child, { t: number; cpu: number }[]>();
  /** Phases (by end time) for which a child reported late. */
  private readonly incompleteBefore: number[] = [];
  private readonly clientUpdates = new Map<Child, number>();
  private sampler: NodeJS.Timeout | null = null;
  private rate = 0;
  private readonly rateLog: { t: number; rate: number }[] = [];
  clientDisconnects = 0;
  finalCounters: Record<string, number> | null = null;
  readonly warnings: string[] = [];

  constructor(
    readonly system: RunningSystem,
    readonly setup: StreamSetup,
  ) {
    // Window 0 starts now; everything the children report is keyed on it (shared clock).
    this.t0 = nowMs();
  }

  /** Subscribers first (all connected and holding their snapshots), then the publishers. */
  async start(): Promise<void> {
    const s = this.setup;
    const per = Math.ceil(s.connections / s.clientProcesses);
    const readies: Promise<unknown>[] = [];
    for (let i = 0; i < s.clientProcesses; i++) {
      const from = i * per;
      const to = Math.min(s.connections, from + per);
      if (from >= to) break;
      const cfg: ClientsConfig = {
        url: this.system.url,
        from,
        to,
        perConnection: s.perConnection,
        portfolios: s.workload.portfolios,
        encoding: s.encoding,
        frames: s.frames,
        t0: this.t0,
        windowMs: s.windowMs,
        flushMs: s.flushMs,
        connectConcurrency: s.connectConcurrency,
        readyTimeoutMs: s.readyTimeoutMs,
      };
      const c = new Child(`clients[${i}]`, benchScript('loadgen/clients.js'), [JSON.stringify(cfg)]);
      this.clients.push(c);
      c.on((m) => this.onClient(c, m as unknown as ClientsOut));
      readies.push(c.next('ready', s.readyTimeoutMs + 10_000));
    }
    await Promise.all(readies);
    for (let i = 0; i < Math.max(1, s.publishers); i++) {
      const pcfg: PublisherConfig = {
        url: this.system.url,
        workload: s.workload,
        connections: s.connections,
        perConnection: s.perConnection,
        // Each publisher its own tick stream (same Zipf law, different draws).
        seed: i,
        intervalMs: s.publisherIntervalMs,
        frameTicksMax: s.frameTicksMax,
        bufferedMaxBytes: s.bufferedMaxBytes,
        t0: this.t0,
        windowMs: s.windowMs,
        flushMs: s.flushMs,
      };
      const p = new Child(`publisher[${i}]`, benchScript('loadgen/publisher.js'), [JSON.stringify(pcfg)]);
      this.publishers.push(p);
      p.on((m) => this.onPublisher(p, m as unknown as PublisherOut));
    }
    await Promise.all(this.publishers.map((p) => p.next('ready', 30_000)));
    const sample = async () => {
      const x = await this.system.sample();
      if (x !== null) this.samples.push(x);
    };
    await sample();
    this.sampler = setInterval(() => void sample(), 250);
  }

  private onClient(c: Child, m: ClientsOut): void {
    if (m.type === 'windows' || m.type === 'final') {
      this.mergeClientWindows(m.windows);
      this.lastPush.set(c, nowMs());
      this.clientLoopDelays.push({ t: nowMs(), maxMs: m.loopDelayMaxMs });
      const cpu = this.clientCpu.get(c) ?? [];
      cpu.push({ t: nowMs(), cpu: m.cpuSeconds });
      this.clientCpu.set(c, cpu);
      if (m.type === 'windows') this.clientUpdates.set(c, m.updates);
      else {
        this.clientUpdates.set(c, m.totals.updates);
        this.clientDisconnects += m.totals.closed;
      }
    }
  }

  private onPublisher(p: Child, m: PublisherOut): void {
    if (m.type === 'windows' || m.type === 'final') {
      for (const w of m.windows) {
        const e = this.pubWindows.get(w.w);
        if (e === undefined) this.pubWindows.set(w.w, { ...w });
        else {
          e.sent += w.sent;
          e.skipped += w.skipped;
          e.accepted += w.accepted;
          e.rejected += w.rejected;
          e.lagged += w.lagged;
          e.owed += w.owed;
        }
      }
      this.lastPush.set(p, nowMs());
      const cpu = this.publisherCpu.get(p) ?? [];
      cpu.push({ t: nowMs(), cpu: m.cpuSeconds });
      this.publisherCpu.set(p, cpu);
    }
  }

  private mergeClientWindows(ws: EncodedWindow[]): void {
    for (const w of ws) {
      let e = this.clientWindows.get(w.w);
      if (e === undefined) {
        e = newWindowEntry();
        this.clientWindows.set(w.w, e);
      }
      e.counts.n += w.n;
      e.counts.merged += w.merged;
      e.counts.gaps += w.gaps;
      e.counts.resyncs += w.resyncs;
      e.counts.bytes += w.bytes;
      e.hist = mergeEncoded(e.hist, w.hist);
      e.histStamp = mergeEncoded(e.histStamp, w.histStamp);
      e.histSend = mergeEncoded(e.histSend, w.histSend);
    }
  }

  get currentRate(): number {
    return this.rate;
  }

  setRate(rate: number): void {
    this.rate = rate;
    this.rateLog.push({ t: nowMs(), rate });
    for (const p of this.publishers) p.send({ type: 'rate', rate: rate / this.publishers.length });
  }

  /** Waits ms while the run goes on; `tick` is called every 250 ms (progress display). */
  async hold(ms: number, tick?: (elapsedMs: number) => void): Promise<void> {
    const start = nowMs();
    // Bounded: ends at start + ms.
    for (;;) {
      const left = start + ms - nowMs();
      if (left <= 0) break;
      await sleep(Math.min(250, left));
      tick?.(nowMs() - start);
      this.assertAlive();
    }
  }

  private assertAlive(): void {
    for (const c of [...this.clients, ...this.publishers, this.system.child]) {
      if (!c.alive) throw new Error(`${c.name} died during the run: ${c.tail()}`);
    }
  }

  /**
   * Waits until every child has pushed the windows that end at or before t (5 s at most). A child
   * that is too busy to report in time (a backlogged client) leaves the phase incomplete: noted in
   * warnings, and its late windows are not counted.
   */
  async settled(t: number): Promise<boolean> {
    const need = t + this.setup.windowMs;
    const children = [...this.clients, ...this.publishers];
    const deadline = nowMs() + 5_000;
    while (nowMs() < deadline && children.some((c) => (this.lastPush.get(c) ?? 0) < need)) await sleep(20);
    const late = children.filter((c) => (this.lastPush.get(c) ?? 0) < need);
    if (late.length > 0) this.incompleteBefore.push(t);
    if (late.length > 0) this.warnings.push(`windows up to ${Math.round(t - this.t0)} ms incomplete: ${late.map((c) => c.name).join(', ')} did not report in time`);
    return late.length === 0;
  }

  totalUpdates(): number {
    let n = 0;
    for (const v of this.clientUpdates.values()) n += v;
    return n;
  }

  /**
   * Feed stopped; waits until deliveries stop (no new update for 3 flushes), drainMaxMs at most.
   * Returns false (and notes a warning) when updates were still arriving at the deadline: the
   * backlog was not drained, and whatever runs next starts behind.
   */
  async drain(label = 'drain'): Promise<boolean> {
    this.setRate(0);
    const start = nowMs();
    let last = -1;
    let stableSince = nowMs();
    while (nowMs() - start < this.setup.drainMaxMs) {
      await sleep(this.setup.flushMs);
      const n = this.totalUpdates();
      if (n !== last) {
        last = n;
        stableSince = nowMs();
      } else if (nowMs() - stableSince >= this.setup.flushMs * 3) return true;
    }
    this.warnings.push(`${label}: updates still arriving after ${this.setup.drainMaxMs} ms`);
    return false;
  }

  /**
   * Collects the children's final reports (totals; the measured windows arrived already) and the
   * server's counters, then stops the load generators. Never throws: what does not answer within a
   * few seconds is noted in warnings (a server still busy with a backlog does not answer).
   */
  async finish(): Promise<void> {
    if (this.sampler !== null) clearInterval(this.sampler);
    const finals: Promise<unknown>[] = [];
    for (const p of this.publishers) {
      finals.push(p.next<PublisherFinal>('final', 3_000));
      p.send({ type: 'finish' });
    }
    for (const c of this.clients) {
      finals.push(c.next<ClientsFinal>('final', 3_000));
      c.send({ type: 'finish' });
    }
    const countersTimeoutMs = Math.min(2_000, this.setup.drainMaxMs);
    const [results, counters] = await Promise.all([Promise.allSettled(finals), this.system.counters(countersTimeoutMs)]);
    this.finalCounters = counters?.counters ?? null;
    if (counters === null) this.warnings.push(`${this.system.name} did not answer the counters request within ${countersTimeoutMs} ms (busy)`);
    for (const r of results) if (r.status === 'rejected') this.warnings.push(String((r.reason as Error).message ?? r.reason).split('\n')[0]);
    await this.stopChildren();
  }

  async stopChildren(): Promise<void> {
    if (this.sampler !== null) clearInterval(this.sampler);
    await Promise.all([...this.clients, ...this.publishers].map((c) => c.stop(2_000)));
  }

  /** Windows fully inside [from, to) (times on the shared clock). */
  private windowRange(from: number, to: number): [number, number] {
    const a = Math.ceil((from - this.t0) / this.setup.windowMs);
    const b = Math.floor((to - this.t0) / this.setup.windowMs);
    return [a, b];
  }

  windowStart(w: number): number {
    return this.t0 + w * this.setup.windowMs;
  }

  private cpuBetween(samples: { t: number; cpu: number }[], from: number, to: number): number {
    // Nearest samples inside the range; samples are taken every 250 ms.
    const inside = samples.filter((s) => s.t >= from - 300 && s.t <= to + 300);
    if (inside.length < 2) return 0;
    const a = inside[0];
    const b = inside[inside.length - 1];
    return b.t > a.t ? (b.cpu - a.cpu) / ((b.t - a.t) / 1000) : 0;
  }

  /** Everything measured in [from, to). */
  phase(from: number, to: number, targetRate: number): PhaseStats {
    const [a, b] = this.windowRange(from, to);
    const seconds = Math.max(1e-9, ((b - a) * this.setup.windowMs) / 1000);
    const hist = newHistogram();
    const histStamp = newHistogram();
    const histSend = newHistogram();
    const c = { n: 0, merged: 0, gaps: 0, resyncs: 0, bytes: 0 };
    const p = { sent: 0, skipped: 0, accepted: 0, rejected: 0, lagged: 0, owed: 0 };
    for (let w = a; w < b; w++) {
      const e = this.clientWindows.get(w);
      if (e !== undefined) {
        c.n += e.counts.n;
        c.merged += e.counts.merged;
        c.gaps += e.counts.gaps;
        c.resyncs += e.counts.resyncs;
        c.bytes += e.counts.bytes;
        if (e.hist !== null) hist.add(e.hist);
        if (e.histStamp !== null) histStamp.add(e.histStamp);
        if (e.histSend !== null) histSend.add(e.histSend);
      }
      const q = this.pubWindows.get(w);
      if (q !== undefined) {
        p.sent += q.sent;
        p.skipped += q.skipped;
        p.accepted += q.accepted;
        p.rejected += q.rejected;
        p.lagged += q.lagged;
        p.owed += q.owed;
      }
    }
    const latency = summarize(hist);
    const hops = { tickToStamp: summarize(histStamp), stampToClient: summarize(histSend) };
    hist.destroy();
    histStamp.destroy();
    histSend.destroy();
    // A report covers the flush interval before it arrives.
    let loopDelayMax = 0;
    for (const d of this.clientLoopDelays) {
      if (d.t > this.windowStart(a) && d.t <= this.windowStart(b) + this.setup.flushMs) loopDelayMax = Math.max(loopDelayMax, d.maxMs);
    }
    // performance.now() (samples) and nowMs() differ by the constant timeOrigin.
    const origin = performance.timeOrigin;
    const tFrom = this.windowStart(a) - origin;
    const tTo = this.windowStart(b) - origin;
    const server = this.samples.map((s) => ({ t: s.t, cpu: s.cpuSeconds }));
    const rss = this.samples.filter((s) => s.t >= tFrom && s.t <= tTo).reduce((m, s) => Math.max(m, s.rssBytes), 0);
    const rebase = (v: { t: number; cpu: number }[]) => v.map((x) => ({ t: x.t - origin, cpu: x.cpu }));
    let clientCpuMax = 0;
    let publisherCpuMax = 0;
    let loadgenCpu = 0;
    for (const v of this.publisherCpu.values()) {
      const c = this.cpuBetween(rebase(v), tFrom, tTo);
      loadgenCpu += c;
      publisherCpuMax = Math.max(publisherCpuMax, c);
    }
    for (const v of this.clientCpu.values()) {
      const c = this.cpuBetween(rebase(v), tFrom, tTo);
      loadgenCpu += c;
      clientCpuMax = Math.max(clientCpuMax, c);
    }
    const offered = p.sent + p.skipped;
    const lagged = offered + p.lagged > 0 && p.lagged / (offered + p.lagged) > laggedShareMax;
    const why: string[] = [];
    if (clientCpuMax > loadgenCoreMax) why.push(`subscriber process at ${round3(clientCpuMax)} cores`);
    if (publisherCpuMax > loadgenCoreMax) why.push(`publisher process at ${round3(publisherCpuMax)} cores`);
    if (lagged) why.push(`publishers lagged ${p.lagged} ticks`);
    return {
      seconds: round3(seconds),
      targetTicksPerSecond: targetRate,
      ticksSentPerSecond: Math.round(p.sent / seconds),
      ticksAcceptedPerSecond: Math.round(p.accepted / seconds),
      ticksSkipped: p.skipped,
      ticksRejected: p.rejected,
      ticksLagged: p.lagged,
      updatesPerSecond: Math.round(c.n / seconds),
      updatesOwedPerTick: Math.round(p.owed / seconds),
      latency,
      hops,
      clientLoopDelayMaxMs: round3(loopDelayMax),
      updatesMerged: c.merged,
      updatesLost: c.gaps,
      resyncs: c.resyncs,
      clientDisconnects: this.clientDisconnects,
      bytesPerSecond: Math.round(c.bytes / seconds),
      tickLoss: offered > 0 ? round6((p.skipped + p.rejected) / offered) : 0,
      updateLoss: c.n + c.gaps > 0 ? round6(c.gaps / (c.n + c.gaps)) : 0,
      serverCpuCores: round3(this.cpuBetween(server, tFrom, tTo)),
      serverRssMaxMb: Math.round(rss / 1e6),
      loadgenCpuCores: round3(loadgenCpu),
      clientCpuMaxCores: round3(clientCpuMax),
      publisherCpuMaxCores: round3(publisherCpuMax),
      loadgenLimited: lagged,
      clientsSaturated: clientCpuMax > loadgenCoreMax,
      loadgenBound: why.length > 0,
      loadgenBoundWhy: why.join('; '),
      complete: !this.incompleteBefore.some((t) => t >= from && t <= to + this.setup.windowMs),
    };
  }

  /** p99 and count per window over [from, to): the series behind the spike figures. */
  series(from: number, to: number): { w: number; tMs: number; n: number; sent: number; p99Ms: number | null }[] {
    const [a, b] = this.windowRange(from, to);
    const out: { w: number; tMs: number; n: number; sent: number; p99Ms: number | null }[] = [];
    for (let w = a; w < b; w++) {
      const e = this.clientWindows.get(w);
      const sent = this.pubWindows.get(w)?.sent ?? 0;
      const p99 = e?.hist != null && e.hist.totalCount > 0 ? round3(e.hist.getValueAtPercentile(99) / 1000) : null;
      out.push({ w, tMs: Math.round(this.windowStart(w) - from), n: e?.counts.n ?? 0, sent, p99Ms: p99 });
    }
    return out;
  }
}

/** Adds an encoded window histogram into `into` (made when first needed). */
function mergeEncoded(into: Histogram | null, encoded: string): Histogram | null {
  if (encoded === '') return into;
  const h = decodeHistogram(encoded);
  into ??= newHistogram();
  into.add(h);
  h.destroy();
  return into;
}

export function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
