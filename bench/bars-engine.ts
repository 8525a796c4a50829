// bench:bars-engine: what bars cost the revaluation hot path, and how fast history streams.
//
// 1. The in-process engine under the reference workload of bench/engine.ts (bench/workload.ts: W1,
//    Zipf ticks, 1,000 subscribed portfolios), unpaced, in pairs of phases with the market service
//    off and on (its worker aggregating every tick into 7 timeframes, closed bars to LMDB), in one
//    process on one loaded engine, the order alternating (off-on, on-off, ...) so drift cancels.
//    One market service serves the whole run (its worker stays warm); off = it does not tap the engine.
//    Reported: ticks/s per phase, the ratio on/off of each pair, their median and the ratio of the
//    means; the goal is >= 0.90 (bars cost the hot path under 10%). On Linux also CPU time per 1,000
//    ticks (from /proc), of the main thread (the hot path's own thread) and of the whole process
//    (what bars cost in total, worker included): figures that other processes taking the cores do not
//    blur as they blur throughput.
// 2. Historical query throughput: N stored 1m bars of one symbol streamed by `history` over a real
//    WebSocket (the server on loopback, a `ws` client), bars/s from the op to history_end, and the
//    same rows through the HTTP API page by page.
// Not a test: the figures depend on the machine (and on whoever else uses its cores). Run:
//   node dist/bench/bars-engine.js [--quick] [--seconds S] [--pairs P] [--history-bars N]

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import hdr from 'hdr-histogram-js';
import WebSocket from 'ws';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { startMarketService, type MarketService } from '../src/market/service.js';
import type { Bar } from '../src/market/bar.js';
import { startServer } from '../src/server/server.js';
import { W1, TickStream, loadWorkload, portfolioId, type Workload } from './workload.js';

interface Args {
  seconds: number;
  phases: number;
  workload: Workload;
  subscribed: number;
  historyBars: number;
}

function parse(argv: string[]): Args {
  const get = (name: string) => {
    const i = argv.indexOf('--' + name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  return {
    seconds: Number(get('seconds') ?? (quick ? 2 : 3)),
    phases: Number(get('pairs') ?? (quick ? 4 : 6)),
    workload: quick ? { ...W1, portfolios: 1_000 } : W1,
    subscribed: 1_000,
    historyBars: Number(get('history-bars') ?? (quick ? 50_000 : 200_000)),
  };
}

interface Phase {
  bars: boolean;
  ticksPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  ticksAggregated: number;
  ticksDropped: number;
  /** Main-thread CPU (user + system) per 1,000 ticks, microseconds; NaN where /proc is missing. */
  mainCpuUsPer1000: number;
  /** CPU of the whole process (every thread: main, shards, market worker, LMDB) per 1,000 ticks. */
  processCpuUsPer1000: number;
}

/** CPU time (ms) of the main thread so far, from /proc (Linux); NaN elsewhere. */
function mainThreadCpuMs(): number {
  return procCpuMs(`/proc/self/task/${process.pid}/stat`);
}

/** utime + stime (ms) of a /proc stat file: the 12th and 13th fields after the command name, in 100 Hz ticks. */
function procCpuMs(file: string): number {
  if (!existsSync(file)) return NaN;
  const fields = readFileSync(file, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Unpaced ingestion for `seconds`, as bench/engine.ts: a chunk of 1,000 ticks per event-loop turn.
 * With bars, the market service takes every tick; without, it is not tapping (its worker idles).
 */
async function runPhase(engine: MtmEngine, stream: TickStream, seconds: number, market: MarketService, bars: boolean): Promise<Phase> {
  market.setTapping(bars);
  const before = market.stats();
  const latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  engine.counters.onLatency = (s) => latency.recordValue(Math.max(1, Math.round(s * 1e6)));
  const chunk = 1_000;
  const cpu0 = mainThreadCpuMs();
  const all0 = procCpuMs('/proc/self/stat');
  const started = performance.now();
  const end = started + seconds * 1000;
  let sent = 0;
  while (performance.now() < end) {
    const now = Date.now();
    for (let i = 0; i < chunk; i++) {
      const s = stream.next();
      engine.ingestTick(stream.names[s], stream.prices[s], now, 1 + (s % 100));
      sent++;
    }
    await new Promise((r) => setImmediate(r));
  }
  await engine.drain();
  const elapsed = (performance.now() - started) / 1000;
  const cpuMs = mainThreadCpuMs() - cpu0;
  const allMs = procCpuMs('/proc/self/stat') - all0;
  engine.counters.onLatency = null;
  await market.settle();
  const stats = market.stats();
  const aggregated = bars ? stats.ticksTapped - stats.ticksDropped - (before.ticksTapped - before.ticksDropped) : 0;
  const dropped = bars ? stats.ticksDropped - before.ticksDropped : 0;
  market.setTapping(false);
  return {
    bars,
    ticksPerSecond: Math.round(sent / elapsed),
    p50Ms: latency.getValueAtPercentile(50) / 1000,
    p99Ms: latency.getValueAtPercentile(99) / 1000,
    ticksAggregated: aggregated,
    ticksDropped: dropped,
    mainCpuUsPer1000: Math.round(((cpuMs * 1000) / sent) * 1000 * 10) / 10,
    processCpuUsPer1000: Math.round(((allMs * 1000) / sent) * 1000 * 10) / 10,
  };
}

interface HotPath {
  phases: Phase[];
  pairRatios: number[];
  medianRatio: number;
  ratio: number;
  offMean: number;
  onMean: number;
  offCpu: number;
  onCpu: number;
  offProcessCpu: number;
  onProcessCpu: number;
  loadSeconds: number;
  workers: number;
}

async function hotPath(args: Args, dir: string): Promise<HotPath> {
  const engine = await createEngine({ dataDir: join(dir, 'engine') });
  const t0 = performance.now();
  await loadWorkload(engine, args.workload);
  const loadSeconds = (performance.now() - t0) / 1000;
  for (let p = 0; p < Math.min(args.subscribed, args.workload.portfolios); p++) engine.subscribe(portfolioId(p), () => {});
  await engine.drain();
  const stream = new TickStream(args.workload);
  // One service for the whole run, so both modes see the same warm worker; off = not tapping.
  const market = await startMarketService(engine, { dataDir: join(dir, 'engine'), now: () => Date.now() });
  // Warm-up, unmeasured: both code paths compiled before the first measured phase.
  await runPhase(engine, stream, 1, market, false);
  await runPhase(engine, stream, 1, market, true);
  const phases: Phase[] = [];
  const pairRatios: number[] = [];
  const off = () => runPhase(engine, stream, args.seconds, market, false);
  const on = () => runPhase(engine, stream, args.seconds, market, true);
  for (let i = 0; i < args.phases; i++) {
    const pair = i % 2 === 0 ? [await off(), await on()] : [await on(), await off()];
    phases.push(...pair);
    const [o, b] = pair[0].bars ? [pair[1], pair[0]] : pair;
    pairRatios.push(b.ticksPerSecond / o.ticksPerSecond);
    console.log(`  pair ${i + 1}/${args.phases}: off ${o.ticksPerSecond.toLocaleString('en-US')} ticks/s, on ${b.ticksPerSecond.toLocaleString('en-US')} ticks/s, on/off ${pairRatios.at(-1)!.toFixed(3)}`);
  }
  const workers = engine.workers;
  await market.close();
  await engine.close();
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const offs = phases.filter((p) => !p.bars);
  const ons = phases.filter((p) => p.bars);
  const offMean = mean(offs.map((p) => p.ticksPerSecond));
  const onMean = mean(ons.map((p) => p.ticksPerSecond));
  const sorted = [...pairRatios].sort((a, b) => a - b);
  const medianRatio = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return {
    phases,
    pairRatios,
    medianRatio,
    ratio: onMean / offMean,
    offMean,
    onMean,
    offCpu: mean(offs.map((p) => p.mainCpuUsPer1000)),
    onCpu: mean(ons.map((p) => p.mainCpuUsPer1000)),
    offProcessCpu: mean(offs.map((p) => p.processCpuUsPer1000)),
    onProcessCpu: mean(ons.map((p) => p.processCpuUsPer1000)),
    loadSeconds,
    workers,
  };
}

/** Stores n closed 1m bars of one symbol, then streams them over /ws and pages them over HTTP. */
async function history(n: number, dir: string): Promise<{ bars: number; wsBarsPerSecond: number; wsChunks: number; httpBarsPerSecond: number; httpPages: number }> {
  const engine = await createEngine({ workers: 1, dataDir: join(dir, 'history') });
  const market = await startMarketService(engine, { dataDir: join(dir, 'history'), now: () => Date.now(), limits: { historyIntervalsMax: Math.max(1_000_000, n) } });
  const server = await startServer(engine, { port: 0, log: null, market });
  try {
    const start = Date.UTC(2024, 0, 1);
    const batch: Bar[] = [];
    for (let i = 0; i < n; i++) {
      const p = 100 + Math.sin(i / 50);
      batch.push({ symbol: 'HIST', tf: '1m', start: start + i * 60_000, open: p, high: p + 0.1, low: p - 0.1, close: p, volume: 10, pv: 10 * p, vwap: p, trades: 5, first_ts: start + i * 60_000, last_ts: start + i * 60_000 + 59_000 });
      if (batch.length === 10_000) market.store.putBars(batch.splice(0));
      if (i % 50_000 === 0) await market.store.idle();
    }
    market.store.putBars(batch);
    await market.store.idle();
    const to = start + n * 60_000;

    const ws = new WebSocket(server.url.replace('http', 'ws') + '/ws', ['mtm.v1']);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    let received = 0;
    let chunks = 0;
    const t = performance.now();
    await new Promise<void>((resolve) => {
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString('utf8')) as { type: string; bars?: unknown[] };
        if (m.type === 'history_chunk') {
          received += m.bars!.length;
          chunks++;
        } else if (m.type === 'history_end') resolve();
      });
      ws.send(JSON.stringify({ op: 'history', id: 1, symbol: 'HIST', tf: '1m', from: start, to }));
    });
    const wsSeconds = (performance.now() - t) / 1000;
    ws.close();
    if (received !== n) throw new Error(`history streamed ${received} bars, expected ${n}`);

    let pages = 0;
    let paged = 0;
    let cursor: string | null = null;
    const span = 10_000; // the HTTP span limit: page a window at a time
    const h = performance.now();
    for (let from = start; from < to; from += span * 60_000) {
      cursor = null;
      do {
        const url: string = `${server.url}/api/v1/bars/HIST?tf=1m&from=${from}&to=${Math.min(to, from + span * 60_000)}&limit=5000${cursor === null ? '' : `&cursor=${cursor}`}`;
        const page = (await (await fetch(url)).json()) as { bars: unknown[]; next_cursor: string | null };
        paged += page.bars.length;
        pages++;
        cursor = page.next_cursor;
      } while (cursor !== null);
    }
    const httpSeconds = (performance.now() - h) / 1000;
    if (paged !== n) throw new Error(`HTTP paged ${paged} bars, expected ${n}`);
    return { bars: n, wsBarsPerSecond: Math.round(n / wsSeconds), wsChunks: chunks, httpBarsPerSecond: Math.round(n / httpSeconds), httpPages: pages };
  } finally {
    await server.close();
    await market.close();
    await engine.close();
  }
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'mtm-bench-bars-'));
  try {
    console.log(`bars on the engine hot path: ${args.workload.portfolios} portfolios x ${args.workload.positionsPerPortfolio} positions, ${args.workload.symbols} symbols, ${args.phases} pairs of (off, on) phases of ${args.seconds} s, node ${process.version}, ${cpus().length} cores`);
    const hot = await hotPath(args, dir);
    console.log(`  ${'phase'.padEnd(6)} ${'bars'.padEnd(5)} ${'ticks/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'main cpu us/1k'.padStart(15)} ${'all cpu us/1k'.padStart(14)} ${'aggregated'.padStart(11)} ${'dropped'.padStart(8)}`);
    hot.phases.forEach((p, i) =>
      console.log(
        `  ${String(i + 1).padEnd(6)} ${(p.bars ? 'on' : 'off').padEnd(5)} ${p.ticksPerSecond.toLocaleString('en-US').padStart(10)} ${p.p50Ms.toFixed(3).padStart(8)} ${p.p99Ms.toFixed(3).padStart(8)} ${p.mainCpuUsPer1000.toFixed(1).padStart(15)} ${p.processCpuUsPer1000.toFixed(1).padStart(14)} ${String(p.ticksAggregated).padStart(11)} ${String(p.ticksDropped).padStart(8)}`,
      ),
    );
    console.log(
      `  bars off ${Math.round(hot.offMean).toLocaleString('en-US')} ticks/s, on ${Math.round(hot.onMean).toLocaleString('en-US')} ticks/s: ratio of means ${hot.ratio.toFixed(3)}, median pair ratio ${hot.medianRatio.toFixed(3)} (cost ${((1 - hot.medianRatio) * 100).toFixed(1)}%; goal: under 10%)`,
    );
    const pct = (on: number, off: number) => `${on >= off ? '+' : ''}${(((on - off) / off) * 100).toFixed(1)}%`;
    console.log(`  main-thread CPU per 1,000 ticks: off ${hot.offCpu.toFixed(1)} us, on ${hot.onCpu.toFixed(1)} us (${pct(hot.onCpu, hot.offCpu)})`);
    console.log(`  process CPU (all threads) per 1,000 ticks: off ${hot.offProcessCpu.toFixed(1)} us, on ${hot.onProcessCpu.toFixed(1)} us (${pct(hot.onProcessCpu, hot.offProcessCpu)})`);
    const hist = await history(args.historyBars, dir);
    console.log(`history of ${hist.bars.toLocaleString('en-US')} stored 1m bars: WebSocket ${hist.wsBarsPerSecond.toLocaleString('en-US')} bars/s (${hist.wsChunks} chunks), HTTP ${hist.httpBarsPerSecond.toLocaleString('en-US')} bars/s (${hist.httpPages} pages of <= 5000)`);
    console.log(
      JSON.stringify({
        bench: 'bars-engine',
        machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
        workload: { ...args.workload, subscribed: args.subscribed, workers: hot.workers, seconds: args.seconds, phases: args.phases },
        loadSeconds: Math.round(hot.loadSeconds * 100) / 100,
        hotPath: {
          offTicksPerSecond: Math.round(hot.offMean),
          onTicksPerSecond: Math.round(hot.onMean),
          ratioOfMeans: Math.round(hot.ratio * 1000) / 1000,
          medianPairRatio: Math.round(hot.medianRatio * 1000) / 1000,
          pairRatios: hot.pairRatios.map((r) => Math.round(r * 1000) / 1000),
          mainCpuUsPer1000: { off: Math.round(hot.offCpu * 10) / 10, on: Math.round(hot.onCpu * 10) / 10 },
          processCpuUsPer1000: { off: Math.round(hot.offProcessCpu * 10) / 10, on: Math.round(hot.onProcessCpu * 10) / 10 },
          phases: hot.phases,
        },
        history: hist,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
