// node dist/bench/tradePath.js [--seconds S] [--portfolios P] [--inflight K] [--workers W] [--sync]
//                              [--index-chunk N] [--index-lag-ms MS]   (the store's lagging index options)
//                              [--commands-per-message N]            (the engine's limits.commandsPerMessageMax)
//
// The trade ack path in process, without sockets: P portfolios, K trades in flight (closed loop: a
// slot sends its next trade when the previous one is acknowledged), each trade buying or selling 1
// unit of one of 20 symbols, for S seconds after a 1 s warm-up. Reports acknowledged trades/s, ack
// latency (engine.trade call to its durable answer) p50/p99/max, the store's commits (count, events
// per commit, commit p50/p99 from lmdb-js submit to settle), and bytes written to disk per trade
// (`write_bytes` of /proc/self/io over the measured window: every byte this process had the kernel
// write, LMDB pages and meta included; the lagging index transaction is counted as it commits). Then
// one JSON line. Used for issue 15's figures in docs/BENCHMARKS.md; the same command on two builds
// compares them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createEngine } from '../src/engine/engine.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

function writeBytes(): number {
  const m = /write_bytes:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return m === null ? 0 : Number(m[1]);
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const seconds = arg('--seconds', 10);
const portfolios = arg('--portfolios', 200);
const inFlight = arg('--inflight', 200);
const workers = arg('--workers', 1);
const sync = process.argv.includes('--sync');
const store: Record<string, number> = {};
if (process.argv.includes('--index-chunk')) store.indexEventsPerFlushMax = arg('--index-chunk', 1);
if (process.argv.includes('--index-lag-ms')) store.indexLagMaxMs = arg('--index-lag-ms', 1);
const limits = process.argv.includes('--commands-per-message') ? { commandsPerMessageMax: arg('--commands-per-message', 1) } : {};
const symbols = Array.from({ length: 20 }, (_, i) => `S${i}`);

const dir = mkdtempSync(join(tmpdir(), 'mtm-tradepath-'));
const engine = await createEngine({ dataDir: dir, workers, sync, snapshotIntervalMs: 3_600_000, store, limits });
try {
  for (let p = 0; p < portfolios; p++) {
    const r = await engine.createPortfolio({ id: `p${p}`, cash: 1e9 });
    if (!r.ok) throw new Error(r.error.message);
  }
  const commitMs: number[] = [];
  let commitEvents = 0;
  let measuring = false;
  engine.onStoreCommit((s, events) => {
    if (!measuring) return;
    commitMs.push(s * 1000);
    commitEvents += events;
  });
  const lat: number[] = [];
  let done = 0;
  let errors = 0;
  let firstError = '';
  let stop = false;
  let next = 0;
  const slot = async (i: number): Promise<void> => {
    const portfolio = `p${i % portfolios}`;
    let side: 'buy' | 'sell' = 'buy';
    while (!stop) {
      const n = next++;
      const t0 = performance.now();
      const r = await engine.trade(portfolio, { trade_id: `t${n}`, symbol: symbols[n % symbols.length], side, quantity: 1, price: 100 + (n % 7) });
      if (!measuring) continue;
      if (r.ok) {
        lat.push(performance.now() - t0);
        done++;
      } else {
        errors++;
        if (firstError === '') firstError = `${r.error.code}: ${r.error.message}`;
      }
      side = side === 'buy' ? 'sell' : 'buy';
    }
  };
  const running = Array.from({ length: inFlight }, (_, i) => slot(i));
  await new Promise((r) => setTimeout(r, 1_000));
  const b0 = writeBytes();
  const t0 = performance.now();
  measuring = true;
  await new Promise((r) => setTimeout(r, seconds * 1_000));
  measuring = false;
  const wall = (performance.now() - t0) / 1000;
  const b1 = writeBytes();
  stop = true;
  await Promise.all(running);
  const sorted = Float64Array.from(lat).sort();
  const commits = Float64Array.from(commitMs).sort();
  const result = {
    sync,
    portfolios,
    inFlight,
    workers,
    seconds: Math.round(wall * 1000) / 1000,
    trades: done,
    tradesPerSecond: Math.round(done / wall),
    ackP50Ms: quantile(sorted, 0.5),
    ackP99Ms: quantile(sorted, 0.99),
    ackMaxMs: sorted.length > 0 ? sorted[sorted.length - 1] : 0,
    commits: commits.length,
    eventsPerCommit: commits.length > 0 ? commitEvents / commits.length : 0,
    commitP50Ms: quantile(commits, 0.5),
    commitP99Ms: quantile(commits, 0.99),
    bytesWrittenPerTrade: done > 0 ? Math.round((b1 - b0) / done) : 0,
    errors,
    firstError,
  };
  const f = (x: number) => x.toFixed(3);
  console.log(
    `trade path (${sync ? 'sync' : 'default'}): ${result.tradesPerSecond} trades/s, ack p50 ${f(result.ackP50Ms)} ms p99 ${f(result.ackP99Ms)} ms max ${f(result.ackMaxMs)} ms; ` +
      `${result.commits} commits, ${result.eventsPerCommit.toFixed(1)} events/commit, commit p50 ${f(result.commitP50Ms)} ms p99 ${f(result.commitP99Ms)} ms; ` +
      `${result.bytesWrittenPerTrade} bytes written/trade; errors ${errors}${firstError === '' ? '' : ` (${firstError})`}`,
  );
  console.log(JSON.stringify(result));
} finally {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
}
