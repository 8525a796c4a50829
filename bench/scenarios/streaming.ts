// steady, max and spike: the feed at a rate (or a schedule of rates) into one system, the subscribers
// measuring tick-to-client latency. One fresh server process per system and scenario.
import { loadavg } from 'node:os';
import { nowMs, round3 } from '../loadgen/common.js';
import type { Progress } from '../report/progress.js';
import type { MaxParams, Scale, SpikeParams, SteadyParams } from './config.js';
import { makeTempDir, removeTempDir } from './children.js';
import { StreamRun, type PhaseStats, type StreamSetup } from './stream.js';
import { startSystem, type SystemName } from './systems.js';

export interface ServerInfo {
  loadSeconds: number;
  info: Record<string, string | number | boolean>;
  counters: Record<string, number> | null;
  /** Anything that made the figures less complete than planned (late reports, a busy server). */
  warnings: string[];
  /** The machine's 1-minute load average at the start and the end of this run: how shared it was. */
  loadAverage: [number, number];
}

export async function withStream<T>(
  name: SystemName,
  scale: Scale,
  setup: StreamSetup,
  progress: Progress,
  body: (run: StreamRun) => Promise<T>,
): Promise<T & { workload: string; encoding: string; server: ServerInfo }> {
  const dataDir = name === 'mtm' ? makeTempDir('mtm-bench-') : undefined;
  const load0 = round3(loadavg()[0]);
  try {
    progress.update(`${setup.workloadName}: starting the server`);
    const sys = await startSystem(name, { workload: setup.workload, dataDir, readyTimeoutMs: scale.serverReadyTimeoutMs });
    const run = new StreamRun(sys, setup);
    try {
      progress.update(`${setup.workloadName}: connecting ${setup.connections} ${setup.encoding} subscribers`);
      await run.start();
      const result = await body(run);
      const server: ServerInfo = {
        loadSeconds: round3(sys.ready.loadMs / 1000),
        info: sys.ready.info,
        counters: run.finalCounters,
        warnings: run.warnings,
        loadAverage: [load0, round3(loadavg()[0])],
      };
      return { ...result, workload: setup.workloadName, encoding: setup.encoding, server };
    } finally {
      await run.stopChildren();
      // The data dir is thrown away: a server still busy with a backlog is killed after 1 s.
      await sys.stop(1_000);
    }
  } finally {
    if (dataDir !== undefined) removeTempDir(dataDir);
  }
}

function detail(run: StreamRun, st?: PhaseStats): string {
  return `rate ${run.currentRate}/s` + (st ? `, p99 ${st.latency.p99Ms} ms, ${st.updatesPerSecond} updates/s` : '');
}

// ---- steady ----

export interface SteadyResult {
  rate: number;
  measured: PhaseStats;
}

/**
 * W1 is measured with binary subscribers, then (mtm and the limit) again with JSON subscribers on a
 * fresh server, reported beside it as `json`. The peer speaks JSON only (it ignores the encoding
 * option): its one run is its JSON run.
 */
export async function steady(
  name: SystemName,
  scale: Scale,
  p: SteadyParams,
  progress: Progress,
): Promise<SteadyResult & { workload: string; encoding: string; server: ServerInfo; json?: SteadyResult & { server: ServerInfo } }> {
  const setup = scale.streams[scale.workloads.steady];
  const main = await steadyRun(name, scale, setup, p, progress);
  if (setup.workloadName !== 'W1' || name === 'peer') return main;
  const json = await steadyRun(name, scale, { ...setup, encoding: 'json' }, p, progress);
  return { ...main, json: { rate: json.rate, measured: json.measured, server: json.server } };
}

async function steadyRun(name: SystemName, scale: Scale, setup: StreamSetup, p: SteadyParams, progress: Progress) {
  return withStream(name, scale, setup, progress, async (run) => {
    run.setRate(p.rate);
    const start = nowMs();
    await run.hold(p.warmupMs + p.measureMs, () => progress.update(detail(run)));
    const from = start + p.warmupMs;
    const to = start + p.warmupMs + p.measureMs;
    await run.settled(to);
    progress.update('draining');
    await run.drain();
    await run.finish();
    return { rate: p.rate, measured: run.phase(from, to, p.rate) };
  });
}

// ---- max ----

export interface MaxStep {
  rate: number;
  pass: boolean;
  why: string;
  p99Ms: number;
  loss: number;
  ticksSentPerSecond: number;
  /** Ticks sent in the measured part of the step: a p99 over a few dozen ticks is a p99 over a few bursts. */
  ticksMeasured: number;
  updatesPerSecond: number;
  serverCpuCores: number;
  /** p99 of the hops before and after the server's stamp (see PhaseStats.hops). */
  p99TickToStampMs: number;
  p99StampToClientMs: number;
  /** The longest subscriber event-loop stall in the step. */
  clientLoopDelayMaxMs: number;
  clientCpuMaxCores: number;
  publisherCpuMaxCores: number;
  /** A subscriber or publisher process above 0.8 core, or the publishers short of the rate (see loadgenBoundWhy). */
  loadgenBound: boolean;
  loadgenBoundWhy: string;
}

export interface MaxResult {
  maxSustainedTicksPerSecond: number;
  /**
   * What ended the search: latency, loss, loadgen (the publishers could not produce the rate) or
   * ramp-end; "(load-generator-bound: ...)" when a load generator process was above 0.8 core then.
   */
  limitedBy: string;
  /** The phase measured at the highest passing rate (zeros when no rate passed). */
  atMax: PhaseStats | null;
  /** Rates below the max whose step failed (an unlucky step the next one did not confirm): listed, never hidden. */
  failedBelowMax: number[];
  steps: MaxStep[];
}

function judge(st: PhaseStats, p: MaxParams): { pass: boolean; why: string; loss: number } {
  const loss = st.tickLoss + st.updateLoss;
  if (st.loadgenLimited) return { pass: false, why: 'loadgen: the publisher could not produce the rate', loss };
  if (st.latency.count === 0) return { pass: false, why: 'no updates delivered', loss };
  if (st.latency.p99Ms > p.p99LimitMs) return { pass: false, why: `p99 ${st.latency.p99Ms} ms > ${p.p99LimitMs} ms`, loss };
  if (loss > p.lossLimit) return { pass: false, why: `loss ${(loss * 100).toFixed(3)}% > ${(p.lossLimit * 100).toFixed(3)}%`, loss };
  if (st.clientDisconnects > 0) return { pass: false, why: `${st.clientDisconnects} clients disconnected`, loss };
  return { pass: true, why: 'ok', loss };
}

export async function max(name: SystemName, scale: Scale, p: MaxParams, progress: Progress) {
  return withStream(name, scale, scale.streams[scale.workloads.max], progress, async (run): Promise<MaxResult> => {
    const steps: MaxStep[] = [];
    const phases = new Map<number, PhaseStats>();
    const tryRate = async (rate: number): Promise<{ pass: boolean; why: string }> => {
      run.setRate(rate);
      const start = nowMs();
      await run.hold(p.stepMs, () => progress.update(detail(run)));
      const to = start + p.stepMs;
      await run.settled(to);
      const st = run.phase(start + p.settleMs, to, rate);
      const j = judge(st, p);
      phases.set(rate, st);
      steps.push({
        rate,
        pass: j.pass,
        why: j.why,
        p99Ms: st.latency.p99Ms,
        loss: j.loss,
        ticksSentPerSecond: st.ticksSentPerSecond,
        ticksMeasured: Math.round(st.ticksSentPerSecond * st.seconds),
        updatesPerSecond: st.updatesPerSecond,
        serverCpuCores: st.serverCpuCores,
        p99TickToStampMs: st.hops.tickToStamp.p99Ms,
        p99StampToClientMs: st.hops.stampToClient.p99Ms,
        clientLoopDelayMaxMs: st.clientLoopDelayMaxMs,
        clientCpuMaxCores: st.clientCpuMaxCores,
        publisherCpuMaxCores: st.publisherCpuMaxCores,
        loadgenBound: st.loadgenBound,
        loadgenBoundWhy: st.loadgenBoundWhy,
      });
      progress.update(`${rate}/s: ${j.pass ? 'pass' : j.why}`);
      return j;
    };
    run.setRate(p.warmupRate);
    await run.hold(p.warmupMs, () => progress.update('warm-up: ' + detail(run)));
    progress.update('warm-up: draining');
    await run.drain('warm-up drain');
    let best = 0;
    /** The first failing rate above `best`: the bisection's upper end. */
    let failedAbove = 0;
    let failedInARow = 0;
    let limitedBy = 'ramp-end';
    let rate = p.startRate;
    // A latency or loss failure ends the ramp only when the next step fails too: one step's p99 can be
    // one unlucky tick (a popular tick is hundreds of correlated samples, and a step of a few ticks/s
    // holds a few dozen ticks), while a rate the system cannot sustain fails every step above it.
    for (let i = 0; i < p.stepsMax && rate <= p.rateMax; i++) {
      const j = await tryRate(rate);
      const st = phases.get(rate) as PhaseStats;
      if (j.pass) {
        best = rate;
        failedAbove = 0;
        failedInARow = 0;
      } else {
        if (failedAbove === 0) failedAbove = rate;
        failedInARow++;
        // A failure while a load generator process was above 0.8 core may be the load generator's limit.
        const bound = st.loadgenBound ? ` (load-generator-bound: ${st.loadgenBoundWhy})` : '';
        limitedBy = j.why.startsWith('loadgen') ? `loadgen (${st.loadgenBoundWhy})` : (j.why.startsWith('p99') || j.why.startsWith('no updates') ? 'latency' : 'loss') + bound;
        if (j.why.startsWith('loadgen') || failedInARow >= p.failuresToStop) break;
      }
      rate = Math.round(rate * p.factor);
    }
    if (failedAbove === 0 && limitedBy !== 'ramp-end') limitedBy = 'ramp-end';
    // Bisection between the highest pass and the failure above it, after letting the backlog drain.
    if (failedAbove > 0 && !limitedBy.startsWith('loadgen')) {
      let lo = best;
      let hi = failedAbove;
      for (let k = 0; k < p.bisections; k++) {
        const mid = Math.round(lo > 0 ? Math.sqrt(lo * hi) : hi / p.factor);
        if (mid <= lo || mid >= hi) break;
        progress.update('pause: draining the backlog');
        await run.drain(`drain before the ${mid}/s bisection step`);
        await run.hold(p.recoverPauseMs);
        const j = await tryRate(mid);
        if (j.pass) lo = mid;
        else hi = mid;
      }
      best = lo;
    }
    const failedBelowMax = steps.filter((x) => !x.pass && x.rate < best).map((x) => x.rate);
    progress.update('draining');
    await run.drain();
    await run.finish();
    return { maxSustainedTicksPerSecond: best, limitedBy, atMax: phases.get(best) ?? null, failedBelowMax, steps };
  });
}

// ---- spike ----

export interface SpikeWindow {
  tMs: number;
  p99Ms: number | null;
  updates: number;
  ticks: number;
}

export interface SpikeResult {
  rate: number;
  spikeRate: number;
  before: PhaseStats;
  during: PhaseStats;
  after: PhaseStats;
  /** The highest 100 ms-window p99 while the spike rate was applied. */
  worstWindowP99DuringMs: number;
  /** The highest 100 ms-window p99 from the end of the spike to the end of the run (backlog draining). */
  worstWindowP99AfterMs: number;
  /**
   * Windows in which ticks were sent but no update arrived (no latency to take a p99 of): during the
   * spike and after it. A worst p99 of 0 with silent windows means nothing arrived, not fast delivery.
   */
  silentWindowsDuring: number;
  silentWindowsAfter: number;
  /** recoveryFactor x the p99 before the spike. */
  recoveryThresholdMs: number;
  /**
   * From the end of the spike to the start of the first 100 ms window from which every window up to the
   * end of the run has p99 <= the threshold (a window with ticks sent but no update counts as above).
   * When the run ends before that, recovered is false and this is the time observed (a lower bound).
   */
  recoveryMs: number;
  recovered: boolean;
  /** p99 per 100 ms window from the start of the spike (tMs from the spike start). */
  windows: SpikeWindow[];
}

export async function spike(name: SystemName, scale: Scale, p: SpikeParams, progress: Progress) {
  const setup = scale.streams[scale.workloads.spike];
  return withStream(name, scale, setup, progress, async (run): Promise<SpikeResult> => {
    const spikeRate = p.rate * p.multiplier;
    run.setRate(p.rate);
    const start = nowMs();
    await run.hold(p.warmupMs + p.beforeMs, () => progress.update(detail(run)));
    const spikeStart = nowMs();
    run.setRate(spikeRate);
    await run.hold(p.spikeMs, () => progress.update('spike: ' + detail(run)));
    const spikeEnd = nowMs();
    run.setRate(p.rate);
    await run.hold(p.afterMs, () => progress.update('after: ' + detail(run)));
    const end = nowMs();
    await run.settled(end);
    progress.update('draining');
    await run.drain();
    await run.finish();

    const before = run.phase(start + p.warmupMs, spikeStart, p.rate);
    const during = run.phase(spikeStart, spikeEnd, spikeRate);
    const after = run.phase(spikeEnd, end, p.rate);
    const series = run.series(spikeStart, end);
    const spikeEndRel = spikeEnd - spikeStart;
    let worstDuring = 0;
    let worstAfter = 0;
    const threshold = round3(p.recoveryFactor * before.latency.p99Ms);
    let lastBad = -1;
    const afterWindows = series.filter((w) => w.tMs >= spikeEndRel);
    let silentDuring = 0;
    let silentAfter = 0;
    for (const w of series) {
      if (w.p99Ms === null && w.sent > 0) {
        if (w.tMs + setup.windowMs <= spikeEndRel) silentDuring++;
        else silentAfter++;
      }
    }
    for (const w of series) {
      if (w.p99Ms === null) continue;
      if (w.tMs + setup.windowMs <= spikeEndRel) worstDuring = Math.max(worstDuring, w.p99Ms);
      else worstAfter = Math.max(worstAfter, w.p99Ms);
    }
    afterWindows.forEach((w, i) => {
      const bad = w.p99Ms === null ? w.sent > 0 : w.p99Ms > threshold;
      if (bad) lastBad = i;
    });
    let recoveryMs = 0;
    let recovered = true;
    if (lastBad === afterWindows.length - 1) {
      recovered = false;
      recoveryMs = Math.round(end - spikeEnd);
    } else if (lastBad >= 0) {
      recoveryMs = Math.max(0, Math.round(afterWindows[lastBad + 1].tMs - spikeEndRel));
    }
    return {
      rate: p.rate,
      spikeRate,
      before,
      during,
      after,
      worstWindowP99DuringMs: worstDuring,
      worstWindowP99AfterMs: worstAfter,
      silentWindowsDuring: silentDuring,
      silentWindowsAfter: silentAfter,
      recoveryThresholdMs: threshold,
      recoveryMs,
      recovered,
      windows: series.map((w) => ({ tMs: w.tMs, p99Ms: w.p99Ms, updates: w.n, ticks: w.sent })),
    };
  });
}
