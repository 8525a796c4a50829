// node dist/bench/store.js [--seconds N]
//
// Store (LMDB) write path: append throughput and durable-ack latency for trade-like events, in the
// default mode (durable against a process crash) and in --sync mode (flushed: durable against
// power loss). Per mode, two loads:
//   saturated  each event-loop turn appends 20 batches of 10 events (a trade, its derived event,
//              and one trade result per trade), as fast as the store takes them: it pauses while
//              store.overloaded() (pendingWritesMax, default), as the engine refuses commands
//              then. Gives throughput; ack latency here is mostly time queued behind that bound.
//              Then reads every event back with eventsAfter(0) (the recovery path).
//   paced      one batch of 10 events every 1 ms timer (about 1,000 batches/s, less as the timer
//              slips): the latency an ordinary trade sees.
// Ack latency = from append() to its `durable` resolving. ELU = main-thread event-loop utilization
// (the store's share of the engine's main thread). Prints a table, then one JSON line.
// Runs in a temp dir on the same filesystem as os.tmpdir(); about 2 x (4 + 3) s plus setup.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { DomainEvent } from '../src/domain/types.js';
import { openStore, type Store } from '../src/store/store.js';

const batchEvents = 10;
const batchesPerTurnSaturated = 20;
const portfolios = 1_000;

interface Result {
  mode: 'default' | 'sync';
  load: 'saturated' | 'paced';
  seconds: number;
  events: number;
  eventsPerSecond: number;
  commits: number;
  eventsPerCommit: number;
  ackP50Ms: number;
  ackP99Ms: number;
  ackMaxMs: number;
  commitP50Ms: number;
  elu: number;
  bytesPerEvent: number;
  /** eventsAfter(0) read back in seq order (the recovery path), after the saturated load only. */
  replayEventsPerSecond: number | null;
}

function argSeconds(): number {
  const i = process.argv.indexOf('--seconds');
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : 4;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** A batch as a shard sends it for 5 trades: each TradeExecuted with its PositionOpened, plus results. */
function makeBatch(n: number): { events: DomainEvent[]; results: { portfolio_id: string; trade_id: string; result: unknown }[] } {
  const events: DomainEvent[] = [];
  const results: { portfolio_id: string; trade_id: string; result: unknown }[] = [];
  const ts = Date.now();
  for (let i = 0; i < batchEvents / 2; i++) {
    const k = n * batchEvents + i;
    const portfolio_id = `p-${(k * 7919) % portfolios}`;
    const trade_id = `t-${k.toString(36)}`;
    const price = 100 + (k % 50);
    events.push({ type: 'TradeExecuted', portfolio_id, ts, trade_id, symbol: 'SYM' + (k % 200), side: k % 2 === 0 ? 'buy' : 'sell', quantity: 10, price, fee: 0.25, trade_ts: ts, realized_pnl: 0 });
    events.push({ type: 'PositionOpened', portfolio_id, ts, symbol: 'SYM' + (k % 200), side: 'long', quantity: 10, price });
    const totals = { cash: 1e6, capital: 1e6, holdings_value: 1000, cost_basis: 1000, unrealized_pnl: 0, realized_pnl: 0, total_return: 0, return_rate: 0, equity: 1e6, gross_exposure: 1000 };
    const position = { symbol: 'SYM' + (k % 200), quantity: 10, avg_cost: price, last_price: price, market_value: 10 * price, unrealized_pnl: 0, realized_pnl: 0, return_rate: 0, weight: 100 };
    results.push({ portfolio_id, trade_id, result: { trade_id, portfolio_id, applied: true, realized_pnl: 0, position, totals, state: 'active' } });
  }
  return { events, results };
}

async function run(mode: 'default' | 'sync', load: 'saturated' | 'paced', seconds: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), `mtm-bench-store-${mode}-`));
  const opened = openStore({ path: dir, sync: mode === 'sync' });
  if (!opened.ok) throw new Error(opened.error.message);
  const store: Store = opened.value;
  await store.append([]).durable;
  // Latencies in a preallocated buffer: no allocation per ack beyond the promise itself.
  const acks = new Float64Array(4_000_000);
  let ackCount = 0;
  const commitMs: number[] = [];
  const off = store.onCommit((s) => commitMs.push(s * 1000));
  const commitsBefore = store.stats().commitsTotal;
  let n = 0;
  let events = 0;
  let stop = false;
  const append = () => {
    const { events: batch, results } = makeBatch(n++);
    const t0 = performance.now();
    store.append(batch, results).durable.then(() => {
      if (ackCount < acks.length) acks[ackCount++] = performance.now() - t0;
    });
    events += batch.length;
  };
  const elu0 = performance.eventLoopUtilization();
  const started = performance.now();
  await new Promise<void>((done) => {
    setTimeout(() => (stop = true), seconds * 1000);
    const saturated = () => {
      if (stop) return done();
      if (store.overloaded()) return void setTimeout(saturated, 1);
      for (let i = 0; i < batchesPerTurnSaturated; i++) append();
      setImmediate(saturated);
    };
    const paced = () => {
      if (stop) return done();
      append();
      setTimeout(paced, 1);
    };
    if (load === 'saturated') saturated();
    else paced();
  });
  await store.append([]).durable;
  const elapsed = (performance.now() - started) / 1000;
  const elu = performance.eventLoopUtilization(elu0).utilization;
  off();
  const commits = store.stats().commitsTotal - commitsBefore;
  const sizeBytes = store.stats().sizeBytes;
  let replayEventsPerSecond: number | null = null;
  if (load === 'saturated') {
    const r0 = performance.now();
    let read = 0;
    for (const e of store.eventsAfter(0)) if (e.seq > 0) read++;
    replayEventsPerSecond = Math.round(read / ((performance.now() - r0) / 1000));
  }
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  const sorted = acks.slice(0, ackCount).sort();
  const commitSorted = Float64Array.from(commitMs).sort();
  return {
    mode,
    load,
    seconds: Math.round(elapsed * 100) / 100,
    events,
    eventsPerSecond: Math.round(events / elapsed),
    commits,
    eventsPerCommit: Math.round((events / Math.max(1, commits)) * 10) / 10,
    ackP50Ms: Math.round(quantile(sorted, 0.5) * 1000) / 1000,
    ackP99Ms: Math.round(quantile(sorted, 0.99) * 1000) / 1000,
    ackMaxMs: Math.round((sorted[sorted.length - 1] ?? 0) * 1000) / 1000,
    commitP50Ms: Math.round(quantile(commitSorted, 0.5) * 1000) / 1000,
    elu: Math.round(elu * 100) / 100,
    bytesPerEvent: Math.round(sizeBytes / Math.max(1, events)),
    replayEventsPerSecond,
  };
}

function table(results: Result[]): string {
  const head = ['mode', 'load', 'events/s', 'commits', 'events/commit', 'ack p50 ms', 'ack p99 ms', 'ack max ms', 'commit p50 ms', 'ELU', 'bytes/event', 'replay events/s'];
  const rows = results.map((r) => [
    r.mode,
    r.load,
    String(r.eventsPerSecond),
    String(r.commits),
    String(r.eventsPerCommit),
    r.ackP50Ms.toFixed(3),
    r.ackP99Ms.toFixed(3),
    r.ackMaxMs.toFixed(3),
    r.commitP50Ms.toFixed(3),
    r.elu.toFixed(2),
    String(r.bytesPerEvent),
    r.replayEventsPerSecond === null ? '-' : String(r.replayEventsPerSecond),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const seconds = argSeconds();
  const results: Result[] = [];
  for (const mode of ['default', 'sync'] as const) {
    results.push(await run(mode, 'saturated', seconds));
    results.push(await run(mode, 'paced', Math.max(1, seconds - 1)));
  }
  process.stdout.write(`store bench: ${batchEvents} events per append (5 trades + 5 derived, 5 trade results), node ${process.version}, ${tmpdir()}\n`);
  process.stdout.write(table(results) + '\n');
  process.stdout.write(JSON.stringify({ bench: 'store', node: process.version, batchEvents, results }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
