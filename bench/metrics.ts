// bench:metrics: what the metrics cost the engine, on the in-process reference workload of bench:engine
// (bench/workload.ts: 10,000 portfolios x 25 positions over 2,000 symbols, Zipf ticks, 1,000 subscribed).
// 1. Throughput with metrics off vs on, closed loop: bursts of 1,000 ticks, each revalued and delivered
//    (engine.drain) before the next, so ticks/s covers the whole pipeline and every round does the same
//    work per tick (an open-loop flood, as bench:engine runs it, is not comparable between runs: how many
//    ticks coalesce into one batch depends on timing). Rounds come in pairs of rounds ordered off/on, on/off, ... (so drift cancels) after a warm-up; the figure is the
//    median of the pairs' differences. "On" is the whole wiring of `mtm serve` (startObservability:
//    engine hooks, the 1 s sampler) plus a scrape every second, 15x Prometheus' default rate. Two
//    differences: ticks per wall-clock second, and ticks per CPU-second of the process (all threads).
//    On a machine shared with other work the wall-clock one mostly measures the neighbours; the
//    CPU-second one is closer to what the metrics cost. Both still move with the neighbours' load (CPU
//    contention changes the cost of the same work), so the bench also attributes the cost directly: the
//    CPU one scrape, one sampler reading and one batch's hooks take, measured on their own, times how often
//    they run in the "on" rounds, as a share of the CPU the process used per second. That share is the
//    one held to the target (under 5%); the A/B differences show whether the machine was quiet enough
//    to confirm it.
// 2. Scrape duration at this book size: median and p99 of repeated scrapes, in-process (what the main
//    thread spends) and over HTTP (what Prometheus waits).
// 3. Does scraping stall the tick path: tick-to-update p50/p99 at a paced rate (default 1,000 ticks/s,
//    below saturation so batches stay short and a stall would show) while scraping every 100 ms vs not,
//    metrics on in both, rounds paired the same way.
// Not a test: figures depend on the machine; run it and read them. Prints a table, then one JSON line.
// Flags: --quick (1,000 portfolios, short phases), --portfolios N, --seconds S (per phase), --rounds N,
// --rate R (paced ticks/s for 3), --scrapes N, --workers N, --kernel wasm|js.

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import hdr from 'hdr-histogram-js';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { startObservability, type Observability } from '../src/server/observability.js';
import { defaultSampleIntervalMs } from '../src/metrics/engineMetrics.js';
import { startServer } from '../src/server/server.js';
import { loadUws } from '../src/server/uws.js';
import { W1, TickStream, loadWorkload, portfolioId, type Workload } from './workload.js';

interface Args {
  workload: Workload;
  seconds: number;
  rounds: number;
  rate: number;
  scrapes: number;
  subscribed: number;
  workers: number | undefined;
  kernel: 'wasm' | 'js';
}

/** Ticks per burst in the closed loop, and the most handed over per event-loop turn when paced (as bench:engine). */
const chunkTicks = 1_000;
/** The throughput target: metrics on may cost at most this share of metrics-off throughput. */
const overheadTargetRatio = 0.05;
/** Scrape period while measuring the tick path under scraping, and during "metrics on" throughput rounds. */
const stallScrapeIntervalMs = 100;
const throughputScrapeIntervalMs = 1_000;
/** Longer than the bench runs: no periodic snapshot during the measurements. */
const snapshotIntervalMsBench = 3_600_000;

function parse(argv: string[]): Args {
  const get = (name: string) => {
    const i = argv.indexOf('--' + name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const workload = quick ? { ...W1, portfolios: 1_000 } : W1;
  return {
    workload: { ...workload, portfolios: Number(get('portfolios') ?? workload.portfolios) },
    seconds: Number(get('seconds') ?? (quick ? 1.5 : 2)),
    rounds: Number(get('rounds') ?? (quick ? 3 : 10)),
    rate: Number(get('rate') ?? 1_000),
    scrapes: Number(get('scrapes') ?? (quick ? 50 : 200)),
    subscribed: Number(get('subscribed') ?? 1_000),
    workers: get('workers') === undefined ? undefined : Number(get('workers')),
    kernel: (get('kernel') ?? 'wasm') as 'wasm' | 'js',
  };
}

type Histogram = ReturnType<typeof hdr.build>;
const newHistogram = (): Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });

interface Phase {
  ticksPerSecond: number;
  /** Ticks per CPU-second of the whole process (main thread and shard workers): insensitive to CPU taken by other processes. */
  ticksPerCpuSecond: number;
  positionsRevaluedPerSecond: number;
  batchesPerSecond: number;
  /** CPU-seconds the process used per wall-clock second. */
  cpuPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Tick-to-update latencies of the phase (microseconds), to merge rounds of one mode. */
  latency: Histogram;
}

/**
 * Feeds ticks for `seconds` (paced at `rate`, or in closed-loop bursts when 0), optionally scraping every
 * `scrapeEveryMs`, and measures throughput and tick-to-update latency (the engine's batch latency hook).
 */
async function drive(engine: MtmEngine, stream: TickStream, latency: { h: Histogram }, seconds: number, rate: number, scrape: (() => Promise<unknown>) | null, scrapeEveryMs: number): Promise<Phase> {
  await engine.drain();
  latency.h = newHistogram();
  const revaluedBefore = engine.counters.positionsRevalued;
  const batchesBefore = engine.counters.batches;
  let scraping = false;
  const scraper = scrape === null ? null : setInterval(() => {
    if (scraping) return; // never two at once: a slow scrape shows as a gap, not a pile-up
    scraping = true;
    void scrape().finally(() => (scraping = false));
  }, scrapeEveryMs);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const end = started + seconds * 1000;
  let sent = 0;
  while (performance.now() < end) {
    if (rate === 0) {
      const now = Date.now();
      for (let i = 0; i < chunkTicks; i++) {
        const s = stream.next();
        engine.ingestTick(stream.names[s], stream.prices[s], now);
      }
      sent += chunkTicks;
      await engine.drain();
      continue;
    }
    const owed = Math.floor(((performance.now() - started) / 1000) * rate) - sent;
    const now = Date.now();
    for (let i = 0; i < Math.min(owed, chunkTicks * 20); i++) {
      const s = stream.next();
      engine.ingestTick(stream.names[s], stream.prices[s], now);
      sent++;
    }
    await new Promise((r) => setImmediate(r));
  }
  await engine.drain();
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  if (scraper !== null) clearInterval(scraper);
  while (scraping) await new Promise((r) => setTimeout(r, 5));
  const h = latency.h;
  return {
    ticksPerSecond: Math.round(sent / elapsed),
    ticksPerCpuSecond: Math.round(sent / ((cpu.user + cpu.system) / 1e6)),
    positionsRevaluedPerSecond: Math.round((engine.counters.positionsRevalued - revaluedBefore) / elapsed),
    batchesPerSecond: (engine.counters.batches - batchesBefore) / elapsed,
    cpuPerSecond: (cpu.user + cpu.system) / 1e6 / elapsed,
    latencyMs: { p50: r3(h.getValueAtPercentile(50) / 1000), p99: r3(h.getValueAtPercentile(99) / 1000), max: r3(h.maxValue / 1000) },
    latency: h,
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

const r2 = (x: number): number => Math.round(x * 100) / 100;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const fmt = (x: number): string => x.toLocaleString('en-US');

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'mtm-bench-metrics-'));
  // Periodic snapshots (every 30 s by default) write the whole book: a burst that lands in one round or
  // another and swamps what is measured here. Off for the bench; bench:engine measures the engine as is.
  const engine = await createEngine({ dataDir: dir, kernel: args.kernel, workers: args.workers, snapshotIntervalMs: snapshotIntervalMsBench });
  const t0 = performance.now();
  await loadWorkload(engine, args.workload);
  const loadSeconds = (performance.now() - t0) / 1000;
  for (let p = 0; p < Math.min(args.subscribed, args.workload.portfolios); p++) engine.subscribe(portfolioId(p), () => undefined);
  await engine.drain();
  // Set before any observability: EngineMetrics chains the hook it finds and restores it on close.
  const latency = { h: newHistogram() };
  engine.counters.onLatency = (s) => latency.h.recordValue(Math.max(1, Math.round(s * 1e6)));
  const stream = new TickStream(args.workload);
  const uwsBinary = loadUws().binary;
  const withMetrics = async <T>(run: (o: Observability) => Promise<T>): Promise<T> => {
    const o = startObservability(engine, { uwsBinary });
    try {
      return await run(o);
    } finally {
      o.close();
    }
  };

  // 1. Throughput, metrics off vs on.
  await drive(engine, stream, latency, Math.min(2, args.seconds), 0, null, 0); // warm-up, discarded
  const off: Phase[] = [];
  const on: Phase[] = [];
  const runOff = async () => off.push(await drive(engine, stream, latency, args.seconds, 0, null, 0));
  const runOn = async () => on.push(await withMetrics((o) => drive(engine, stream, latency, args.seconds, 0, () => o.metrics.scrape(), throughputScrapeIntervalMs)));
  for (let pair = 0; pair < args.rounds; pair++) {
    if (pair % 2 === 0) {
      await runOff();
      await runOn();
    } else {
      await runOn();
      await runOff();
    }
  }
  const offTicks = Math.round(median(off.map((p) => p.ticksPerSecond)));
  const onTicks = Math.round(median(on.map((p) => p.ticksPerSecond)));
  const pairDifference = (f: (p: Phase) => number): number => median(off.map((p, i) => f(on[i]) / f(p) - 1));
  const differenceRatio = pairDifference((p) => p.ticksPerSecond);
  const cpuDifferenceRatio = pairDifference((p) => p.ticksPerCpuSecond);

  // 2. Scrape duration at this book size (idle engine: the scrape alone).
  const scrape = await withMetrics(async (o) => {
    const server = await startServer(engine, { port: 0, log: null, ...o.serverOptions });
    o.attachServer(server);
    try {
      await o.metrics.sampleNow();
      const inProcess: number[] = [];
      const overHttp: number[] = [];
      let bytes = 0;
      for (let i = 0; i < args.scrapes; i++) {
        const a = performance.now();
        bytes = (await o.metrics.scrape()).body.length;
        inProcess.push(performance.now() - a);
        const b = performance.now();
        await (await fetch(server.url + '/metrics')).text();
        overHttp.push(performance.now() - b);
      }
      // CPU per scrape and per sampler reading (all threads: the workers answer too), and per batch of the hooks.
      const cpuMsPer = async (n: number, f: () => Promise<unknown>): Promise<number> => {
        const c = process.cpuUsage();
        for (let i = 0; i < n; i++) await f();
        const d = process.cpuUsage(c);
        return (d.user + d.system) / 1000 / n;
      };
      const scrapeCpuMs = await cpuMsPer(args.scrapes, () => o.metrics.scrape());
      const sampleCpuMs = await cpuMsPer(args.scrapes, () => o.metrics.sampleNow());
      const c = engine.counters;
      const hookCalls = 100_000;
      const hooks = (): number => {
        const t = performance.now();
        for (let i = 0; i < hookCalls; i++) {
          c.onLatency?.(0.001);
          c.onBatch?.(20);
        }
        return performance.now() - t;
      };
      const withHooks = hooks();
      o.close(); // back to the bench's own latency hook only
      const hookCpuUs = Math.max(0, ((withHooks - hooks()) * 1000) / hookCalls);
      latency.h = newHistogram();
      return {
        scrapes: args.scrapes,
        bytes,
        cpuMsPerScrape: r3(scrapeCpuMs),
        cpuMsPerSample: r3(sampleCpuMs),
        hookMicrosecondsPerBatch: r3(hookCpuUs),
        inProcessMs: { median: r3(median(inProcess)), p99: r3(quantile(inProcess, 0.99)) },
        httpMs: { median: r3(median(overHttp)), p99: r3(quantile(overHttp, 0.99)) },
      };
    } finally {
      await server.close();
    }
  });

  // 3. Tick path while scraping every 100 ms vs not, paced, metrics on in both.
  const quiet: Phase[] = [];
  const scraped: Phase[] = [];
  await withMetrics(async (o) => {
    const runQuiet = async () => quiet.push(await drive(engine, stream, latency, args.seconds, args.rate, null, 0));
    const runScraped = async () => scraped.push(await drive(engine, stream, latency, args.seconds, args.rate, () => o.metrics.scrape(), stallScrapeIntervalMs));
    for (let pair = 0; pair < args.rounds; pair++) {
      if (pair % 2 === 0) {
        await runQuiet();
        await runScraped();
      } else {
        await runScraped();
        await runQuiet();
      }
    }
  });
  // The metrics' own CPU per second of "on", as a share of the process CPU per second in those rounds.
  const onBatchesPerSecond = median(on.map((p) => p.batchesPerSecond));
  const onCpuPerSecond = median(on.map((p) => p.cpuPerSecond));
  const metricsCpuPerSecond =
    (scrape.cpuMsPerScrape * (1000 / throughputScrapeIntervalMs) + scrape.cpuMsPerSample * (1000 / defaultSampleIntervalMs) + (scrape.hookMicrosecondsPerBatch / 1000) * onBatchesPerSecond) / 1000;
  const attributedRatio = metricsCpuPerSecond / onCpuPerSecond;
  // Every batch of every round of a mode in one histogram: one round holds too few batches for a p99.
  const merged = (phases: readonly Phase[]) => {
    const h = newHistogram();
    for (const p of phases) h.add(p.latency);
    return { p50Ms: r3(h.getValueAtPercentile(50) / 1000), p99Ms: r3(h.getValueAtPercentile(99) / 1000), maxMs: r3(h.maxValue / 1000), batches: h.totalCount };
  };
  const quietLatency = merged(quiet);
  const scrapedLatency = merged(scraped);
  const p99Quiet = quietLatency.p99Ms;
  const p99Scraped = scrapedLatency.p99Ms;

  const result = {
    bench: 'metrics',
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    workload: { ...args.workload, subscribed: args.subscribed, kernel: engine.kernel, workers: engine.workers, secondsPerPhase: args.seconds, rounds: args.rounds },
    loadSeconds: r2(loadSeconds),
    throughput: {
      offTicksPerSecond: offTicks,
      onTicksPerSecond: onTicks,
      offTicksPerCpuSecond: Math.round(median(off.map((p) => p.ticksPerCpuSecond))),
      onTicksPerCpuSecond: Math.round(median(on.map((p) => p.ticksPerCpuSecond))),
      differenceRatio: r3(differenceRatio),
      cpuDifferenceRatio: r3(cpuDifferenceRatio),
      attributedCostRatio: Math.round(attributedRatio * 10_000) / 10_000,
      targetRatio: overheadTargetRatio,
      withinTarget: attributedRatio < overheadTargetRatio,
      rounds: { off: off.map((p) => p.ticksPerSecond), on: on.map((p) => p.ticksPerSecond), offPerCpuSecond: off.map((p) => p.ticksPerCpuSecond), onPerCpuSecond: on.map((p) => p.ticksPerCpuSecond) },
      scrapeIntervalMsWhenOn: throughputScrapeIntervalMs,
    },
    scrape,
    tickPath: {
      rate: args.rate,
      scrapeIntervalMs: stallScrapeIntervalMs,
      quiet: quietLatency,
      scraping: scrapedLatency,
      p99IncreaseMs: r3(p99Scraped - p99Quiet),
    },
  };

  const rows: [string, string][] = [
    ['throughput, metrics off (median)', `${fmt(offTicks)} ticks/s, ${fmt(result.throughput.offTicksPerCpuSecond)} ticks/CPU-s  [${off.map((p) => fmt(p.ticksPerSecond)).join(', ')}]`],
    ['throughput, metrics on (median)', `${fmt(onTicks)} ticks/s, ${fmt(result.throughput.onTicksPerCpuSecond)} ticks/CPU-s  [${on.map((p) => fmt(p.ticksPerSecond)).join(', ')}]  (scrape every ${throughputScrapeIntervalMs} ms)`],
    ['difference on - off (median of pairs)', `${(differenceRatio * 100).toFixed(1)}% per wall-clock second, ${(cpuDifferenceRatio * 100).toFixed(1)}% per CPU-second`],
    [
      'cost attributed to the metrics',
      `${(attributedRatio * 100).toFixed(2)}% of the process CPU (target under ${overheadTargetRatio * 100}%: ${result.throughput.withinTarget ? 'met' : 'NOT met'}): ` +
        `${scrape.cpuMsPerScrape} ms/scrape, ${scrape.cpuMsPerSample} ms/sampler reading, ${scrape.hookMicrosecondsPerBatch} us/batch x ${Math.round(onBatchesPerSecond)} batches/s`,
    ],
    ['scrape, in-process', `median ${scrape.inProcessMs.median} ms, p99 ${scrape.inProcessMs.p99} ms  (${scrape.scrapes} scrapes, ${fmt(scrape.bytes)} bytes)`],
    ['scrape, over HTTP', `median ${scrape.httpMs.median} ms, p99 ${scrape.httpMs.p99} ms`],
    [`tick-to-update at ${fmt(args.rate)}/s, no scrapes`, `p50 ${result.tickPath.quiet.p50Ms} ms, p99 ${p99Quiet} ms, max ${result.tickPath.quiet.maxMs} ms  (${fmt(quietLatency.batches)} batches)`],
    [`tick-to-update, scrape every ${stallScrapeIntervalMs} ms`, `p50 ${result.tickPath.scraping.p50Ms} ms, p99 ${p99Scraped} ms, max ${result.tickPath.scraping.maxMs} ms  (${fmt(scrapedLatency.batches)} batches)`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(
    `metrics bench (${engine.kernel}, ${engine.workers} workers, ${fmt(args.workload.portfolios)} portfolios x ${args.workload.positionsPerPortfolio} positions, ` +
      `${fmt(args.subscribed)} subscribed; load ${r2(loadSeconds)} s; ${args.rounds} rounds of ${args.seconds} s per mode)`,
  );
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  console.log(JSON.stringify(result));
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
}

void main();
