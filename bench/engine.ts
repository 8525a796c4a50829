// bench:engine: the in-process engine under the reference workload (10,000 portfolios x 25 positions
// over 2,000 symbols, Zipf ticks): sustained ticks/s ingested and tick-to-update latency (from a
// tick's arrival to the end of the batch that revalued it and delivered its updates), p50/p99/p99.9.
// Not a test: figures depend on the machine; run it and read them. --listener bytes (default: the
// listeners take the shards' binary deltas, as the server does) or objects (each delta decoded).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import hdr from 'hdr-histogram-js';
import { createEngine } from '../src/engine/engine.js';
import { W1, TickStream, loadWorkload, portfolioId, type Workload } from './workload.js';

interface Args {
  seconds: number;
  rate: number;
  kernel: 'wasm' | 'js';
  workload: Workload;
  subscribed: number;
  workers: number | undefined;
  /** bytes: listeners take the shards' binary deltas as they are (what the server does); objects: decoded. */
  listener: 'bytes' | 'objects';
  /** The engine's batchesInFlightMax (undefined: its default). */
  batchesInFlight: number | undefined;
}

function parse(argv: string[]): Args {
  const get = (name: string) => {
    const i = argv.indexOf('--' + name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const workload = quick ? { ...W1, portfolios: 1_000 } : W1;
  return {
    seconds: Number(get('seconds') ?? (quick ? 3 : 10)),
    rate: Number(get('rate') ?? 0),
    kernel: (get('kernel') ?? 'wasm') as 'wasm' | 'js',
    workload: { ...workload, portfolios: Number(get('portfolios') ?? workload.portfolios) },
    subscribed: Number(get('subscribed') ?? 1_000),
    workers: get('workers') === undefined ? undefined : Number(get('workers')),
    listener: get('listener') === 'objects' ? 'objects' : 'bytes',
    batchesInFlight: get('batches-in-flight') === undefined ? undefined : Number(get('batches-in-flight')),
  };
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'mtm-bench-'));
  const limits = args.batchesInFlight === undefined ? {} : { batchesInFlightMax: args.batchesInFlight };
  const engine = await createEngine({ dataDir: dir, kernel: args.kernel, workers: args.workers, limits });
  const t0 = performance.now();
  await loadWorkload(engine, args.workload);
  const loadSeconds = (performance.now() - t0) / 1000;
  let updates = 0;
  const bytes = args.listener === 'bytes';
  for (let p = 0; p < Math.min(args.subscribed, args.workload.portfolios); p++) engine.subscribe(portfolioId(p), () => updates++, { bytes });
  await engine.drain();
  const latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  engine.counters.onLatency = (s) => latency.recordValue(Math.max(1, Math.round(s * 1e6)));
  const stream = new TickStream(args.workload);
  const chunk = 1_000;
  const end = performance.now() + args.seconds * 1000;
  const started = performance.now();
  let sent = 0;
  // Paced: each event-loop turn sends what the rate owes; unpaced (rate 0): a chunk per turn.
  while (performance.now() < end) {
    const owed = args.rate > 0 ? Math.floor(((performance.now() - started) / 1000) * args.rate) - sent : chunk;
    const now = Date.now();
    for (let i = 0; i < Math.min(owed, chunk * 20); i++) {
      const s = stream.next();
      engine.ingestTick(stream.names[s], stream.prices[s], now);
      sent++;
    }
    await new Promise((r) => setImmediate(r));
  }
  await engine.drain();
  const seconds = (performance.now() - started) / 1000;
  const stats = engine.stats();
  // The process's resident set: the main thread, the shard workers and LMDB's mapped pages together.
  const rssMb = Math.round(process.memoryUsage().rss / 2 ** 20);
  const result = {
    bench: 'engine',
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    workload: { ...args.workload, subscribed: args.subscribed, listener: args.listener, kernel: engine.kernel, workers: engine.workers, rate: args.rate || 'max', batchesInFlightMax: args.batchesInFlight ?? 'default' },
    loadAverage: loadavg().map((x) => round(x)),
    loadSeconds: round(loadSeconds),
    ticksPerSecond: Math.round(sent / seconds),
    batches: stats.batches,
    ticksPerBatch: round(sent / Math.max(1, stats.batches)),
    positionsRevaluedPerSecond: Math.round(stats.positionsRevalued / seconds),
    portfoliosRevaluedPerSecond: Math.round(stats.portfoliosRevalued / seconds),
    updatesDeliveredPerSecond: Math.round(updates / seconds),
    rssMb,
    latencyMs: { p50: latency.getValueAtPercentile(50) / 1000, p99: latency.getValueAtPercentile(99) / 1000, p999: latency.getValueAtPercentile(99.9) / 1000, max: latency.maxValue / 1000 },
  };
  console.log(
    `engine bench (${result.workload.kernel}, ${result.workload.workers} workers, ${args.listener} listeners, load ${result.loadAverage[0]}): ${result.ticksPerSecond.toLocaleString('en-US')} ticks/s, ` +
      `${result.ticksPerBatch} ticks/batch, tick-to-update p50 ${result.latencyMs.p50} ms p99 ${result.latencyMs.p99} ms p99.9 ${result.latencyMs.p999} ms, ` +
      `${result.portfoliosRevaluedPerSecond.toLocaleString('en-US')} portfolios revalued/s, ${result.updatesDeliveredPerSecond.toLocaleString('en-US')} updates/s, rss ${rssMb} MB`,
  );
  console.log(JSON.stringify(result));
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

void main();
