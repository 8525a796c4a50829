// node dist/bench/tradePath.js [--seconds S] [--portfolios P] [--inflight K] [--workers W] [--sync]
//                              [--index-chunk N] [--index-lag-ms MS]   (the store's lagging index options)
//                              [--commits-in-flight N]               (the store's commitsInFlightMax)
//                              [--commands-per-message N]            (the engine's limits.commandsPerMessageMax)
//                              [--trace]                             (the timeline of a trade, station by station)
//
// The trade ack path in process, without sockets: P portfolios, K trades in flight (closed loop: a
// slot sends its next trade when the previous one is acknowledged), each trade buying or selling 1
// unit of one of 20 symbols, for S seconds after a 1 s warm-up. Reports acknowledged trades/s, ack
// latency (engine.trade call to its durable answer) p50/p99/max, the store's acknowledging commits
// (journal records: count, events per record, p50/p99 from the group's cut to durable) and its LMDB
// commits behind them (count, events per commit, p50/p99 from lmdb-js submit to settle), and bytes written to disk per trade
// (`write_bytes` of /proc/self/io over the measured window: every byte this process had the kernel
// write, LMDB pages and meta included; the lagging index transaction is counted as it commits). Then
// one JSON line. --trace stamps each trade at the stations of the ack path (a probe wrapping the
// shard handle's submit, post and resolve, nothing in the engine changes): called -> submitted to the
// shard handle (validation, idempotency) -> posted to the shard (the turn) -> result read (the shard
// round trip: the message's wait in the worker and its apply; events appended, commit enqueued) ->
// commit durable (the wait for a flush slot plus the commit) -> acknowledged, and prints p50/p99 per
// leg, commands per message and commits in flight when a result is read. Used for issue 15's figures in docs/BENCHMARKS.md; the same command on two builds
// compares them. CPU per trade (user + system of every thread, /proc/self/stat; and of the main thread
// alone, /proc/self/task/<pid>/stat, the ack path's bound) is the figure a shared
// machine does not blur as much as the rate. Under `node --expose-gc` it also prints the main heap after a full GC (the trade ids
// the engine remembers are most of what grows with the trades done).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createEngine } from '../src/engine/engine.js';
import { ShardHandle, type CommandBody } from '../src/engine/shardHandle.js';
import type { CommandResult, ToShard } from '../src/shard/protocol.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

function writeBytes(): number {
  const m = /write_bytes:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return m === null ? 0 : Number(m[1]);
}

/** CPU seconds (user + system) of this process, the shard workers' threads included (/proc/self/stat). */
function processCpuSeconds(mainThreadOnly = false): number {
  // The main thread's task id is the process id.
  const stat = readFileSync(mainThreadOnly ? `/proc/self/task/${process.pid}/stat` : '/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
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
if (process.argv.includes('--commits-in-flight')) store.commitsInFlightMax = arg('--commits-in-flight', 1);
const limits = process.argv.includes('--commands-per-message') ? { commandsPerMessageMax: arg('--commands-per-message', 1) } : {};
const trace = process.argv.includes('--trace');
const symbols = Array.from({ length: 20 }, (_, i) => `S${i}`);

/** Per trade: called, submitted, posted, result read, durable (performance.now() ms); -1 while unknown. */
const byTrade = new Map<string, Float64Array>();
/** The same stamps by command id, from submit to the result. */
const stamps = new Map<number, Float64Array>();
const perMessage: number[] = [];
let traceOn = false;
if (trace) {
  const proto = ShardHandle.prototype as unknown as {
    submit(this: ShardHandle, body: CommandBody, onResult?: (r: CommandResult) => void): Promise<CommandResult> | null;
    post(this: ShardHandle, msg: ToShard): void;
    resolve(this: ShardHandle, r: CommandResult): void;
  };
  const { submit, post, resolve } = proto;
  proto.submit = function (body, onResult) {
    const s = body.kind === 'trade' ? byTrade.get(body.trade.trade_id) : undefined;
    if (s !== undefined) {
      s[1] = performance.now();
      stamps.set((this as unknown as { nextId: number }).nextId, s);
    }
    return submit.call(this, body, onResult);
  };
  proto.post = function (msg) {
    if (traceOn && msg.t === 'commands') {
      const t = performance.now();
      perMessage.push(msg.commands.length);
      for (const c of msg.commands) stamps.get(c.id)?.fill(t, 2, 3);
    }
    post.call(this, msg);
  };
  proto.resolve = function (r) {
    const s = stamps.get(r.id);
    if (s !== undefined) {
      stamps.delete(r.id);
      s[3] = performance.now();
      void r.durable?.then(() => (s[4] = performance.now()));
    }
    resolve.call(this, r);
  };
}
const legNames = ['called -> submitted', 'submitted -> posted', 'posted -> result read', 'result read -> durable', 'durable -> acknowledged', 'total'];
const legs: number[][] = legNames.map(() => []);

const dir = mkdtempSync(join(tmpdir(), 'mtm-tradepath-'));
const engine = await createEngine({ dataDir: dir, workers, sync, snapshotIntervalMs: 3_600_000, store, limits });
try {
  for (let p = 0; p < portfolios; p++) {
    const r = await engine.createPortfolio({ id: `p${p}`, cash: 1e9 });
    if (!r.ok) throw new Error(r.error.message);
  }
  const commitMs: number[] = [];
  let commitEvents = 0;
  const lmdbMs: number[] = [];
  let lmdbEvents = 0;
  let measuring = false;
  engine.onStoreCommit((s, events, kind) => {
    if (!measuring) return;
    if (kind !== 'journal') {
      lmdbMs.push(s * 1000);
      lmdbEvents += events;
      return;
    }
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
      const s = traceOn ? Float64Array.of(t0, -1, -1, -1, -1) : undefined;
      if (s !== undefined) byTrade.set(`t${n}`, s);
      const r = await engine.trade(portfolio, { trade_id: `t${n}`, symbol: symbols[n % symbols.length], side, quantity: 1, price: 100 + (n % 7) });
      if (s !== undefined) byTrade.delete(`t${n}`);
      if (!measuring) continue;
      if (r.ok) {
        const t1 = performance.now();
        lat.push(t1 - t0);
        if (s !== undefined && s[4] >= 0) {
          for (let k = 0; k < 4; k++) legs[k].push(s[k + 1] - s[k]);
          legs[4].push(t1 - s[4]);
          legs[5].push(t1 - t0);
        }
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
  const cpu0 = processCpuSeconds();
  const main0 = processCpuSeconds(true);
  const t0 = performance.now();
  measuring = true;
  traceOn = trace;
  await new Promise((r) => setTimeout(r, seconds * 1_000));
  measuring = false;
  traceOn = false;
  const wall = (performance.now() - t0) / 1000;
  const b1 = writeBytes();
  const cpu1 = processCpuSeconds();
  const main1 = processCpuSeconds(true);
  stop = true;
  await Promise.all(running);
  // With --expose-gc: the main heap after a full GC, settled trades' memory included (issue 15, item 3).
  const gc = (globalThis as { gc?: () => void }).gc;
  let heapUsedAfterGc = 0;
  if (gc !== undefined) {
    gc();
    heapUsedAfterGc = process.memoryUsage().heapUsed;
  }
  const sorted = Float64Array.from(lat).sort();
  const commits = Float64Array.from(commitMs).sort();
  const lmdbCommits = Float64Array.from(lmdbMs).sort();
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
    lmdbCommits: lmdbCommits.length,
    lmdbEventsPerCommit: lmdbCommits.length > 0 ? lmdbEvents / lmdbCommits.length : 0,
    lmdbCommitP50Ms: quantile(lmdbCommits, 0.5),
    lmdbCommitP99Ms: quantile(lmdbCommits, 0.99),
    bytesWrittenPerTrade: done > 0 ? Math.round((b1 - b0) / done) : 0,
    cpuMicrosPerTrade: done > 0 ? Math.round(((cpu1 - cpu0) * 1e6) / done) : 0,
    mainThreadCpuMicrosPerTrade: done > 0 ? Math.round(((main1 - main0) * 1e6) / done) : 0,
    tradesSettled: next,
    heapUsedAfterGc,
    errors,
    firstError,
  };
  const f = (x: number) => x.toFixed(3);
  console.log(
    `trade path (${sync ? 'sync' : 'default'}): ${result.tradesPerSecond} trades/s, ack p50 ${f(result.ackP50Ms)} ms p99 ${f(result.ackP99Ms)} ms max ${f(result.ackMaxMs)} ms; ` +
      `${result.commits} journal records, ${result.eventsPerCommit.toFixed(1)} events/record, p50 ${f(result.commitP50Ms)} ms p99 ${f(result.commitP99Ms)} ms; ` +
      `${result.lmdbCommits} LMDB commits, ${result.lmdbEventsPerCommit.toFixed(1)} events/commit, p50 ${f(result.lmdbCommitP50Ms)} ms p99 ${f(result.lmdbCommitP99Ms)} ms; ` +
      `${result.bytesWrittenPerTrade} bytes written/trade, ${result.cpuMicrosPerTrade} µs CPU/trade (all threads; main thread ${result.mainThreadCpuMicrosPerTrade}); errors ${errors}${firstError === '' ? '' : ` (${firstError})`}` +
      (gc === undefined ? '' : `; main heap after GC ${heapUsedAfterGc} bytes with ${next} trade ids used`),
  );
  if (trace) {
    const messages = Float64Array.from(perMessage).sort();
    console.log(`timeline of a trade (ms, ${legs[5].length} trades; ${perMessage.length} command messages, commands/message p50 ${quantile(messages, 0.5)} max ${messages[messages.length - 1] ?? 0}):`);
    legNames.forEach((name, k) => {
      const leg = Float64Array.from(legs[k]).sort();
      console.log(`  ${name.padEnd(26)} p50 ${f(quantile(leg, 0.5)).padStart(9)}  p99 ${f(quantile(leg, 0.99)).padStart(9)}`);
    });
  }
  console.log(JSON.stringify(result));
} finally {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
}
