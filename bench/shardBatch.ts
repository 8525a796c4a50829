// bench:shard: what one tick batch costs the shard worker, measured in one thread (no worker, no
// messages): the W1 book (bench/workload.ts) in a Shard, `--watched` portfolios watched, and tick
// batches cut as the coalescer cuts them (distinct symbols of `--window` ms of the Zipf tick stream at
// `--rate` ticks/s). Prints the thread's CPU time per batch: Shard.ticks (watched first: the watched
// portfolios' rows, their deltas and the batch's buffers: what a tick waits for) and Shard.settle (the
// rest of the book, after every batch, or every `--settle-every` batches as a busy shard coalesces it),
// then the same batches with nothing watched: the difference is the delta writing. CPU time, not wall
// time, so that a shared machine moves it less (it still does: quote the load). Not a test.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Shard } from '../src/shard/shard.js';
import { unwatchedRowsPerSliceMaxDefault } from '../src/shard/protocol.js';
import { unitsOf } from '../src/domain/accounting.js';
import { W1, TickStream, holdingsOf, portfolioId } from './workload.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const windowMs = arg('window', 1);
const rate = arg('rate', 200_000);
const batches = arg('batches', 300);
const watched = arg('watched', 1_000);
const settleEvery = arg('settle-every', 1);
/** The rest in slices of this many rows, as the worker runs it (0: in one settle, as before the slicing). */
const sliceRows = arg('slice-rows', unwatchedRowsPerSliceMaxDefault);
/** Wall ms of each slice of the rest (what a batch arriving during the pass waits for at most). */
const sliceMs: number[] = [];
const warmup = 50;
const now = 1_800_000_000_000;

function loadedShard(): Shard {
  const shard = new Shard({ shard: 0, kernel: 'wasm', positionsPerPortfolioMax: 1_000, portfoliosMax: 200_000, symbolsMax: 100_000, staleAfterMs: 60_000 });
  const names = new TickStream(W1).names;
  shard.registerSymbols(0, names);
  const limits = { max_loss: null, max_drawdown_pct: null, max_position_weight_pct: null };
  let id = 1;
  for (let p = 0; p < W1.portfolios; p++) {
    const portfolio = portfolioId(p);
    shard.commands([{ id: id++, kind: 'create', portfolio, name: portfolio, cash: 1_000_000, limits, options: { cost_basis_method: 'average', base_currency: 'USD' }, now }]);
  }
  for (const h of holdingsOf(W1)) {
    const trade = { trade_id: 'seed-' + id, symbol: h.symbol, side: 'buy' as const, units: unitsOf(h.quantity) as number, quantity: h.quantity, price: h.price, fee: 0, ts: now, currency: null, fx_rate: null, lot_ids: null, multiplier: 1 };
    shard.commands([{ id: id++, kind: 'trade', portfolio: h.portfolio, trade, now }]);
  }
  return shard;
}

/** CPU ms per Shard.ticks over the batches (the first `warmup` not counted), and what they carried. */
function run(shard: Shard, watch: number): { cpuMs: number; wallMs: number; restCpuMs: number; symbols: number; deltas: number; kib: number } {
  for (let p = 0; p < watch; p++) shard.commands([{ id: -1, kind: 'snapshot', portfolio: portfolioId(p), now, watch: true }]);
  const stream = new TickStream(W1);
  const perBatch = Math.max(1, Math.round((rate * windowMs) / 1000));
  const seen = new Int32Array(W1.symbols).fill(-1);
  let cpu = 0;
  let wall = 0;
  let rest = 0;
  let symbols = 0;
  let deltas = 0;
  let bytes = 0;
  for (let b = 0; b < batches + warmup; b++) {
    const syms: number[] = [];
    for (let i = 0; i < perBatch; i++) {
      const s = stream.next();
      if (seen[s] !== b) {
        seen[s] = b;
        syms.push(s);
      }
    }
    const prices = Float64Array.from(syms, (s) => stream.prices[s]);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = shard.ticks(b, syms.length, Int32Array.from(syms), prices, new Float64Array(syms.length).fill(now), now + b);
    const dt = performance.now() - t0;
    const cu = process.cpuUsage(c0);
    const settled = b % settleEvery === settleEvery - 1 ? settleCpuMs(shard, b >= warmup && watch > 0) : 0;
    if (b < warmup) continue;
    rest += settled;
    cpu += (cu.user + cu.system) / 1000;
    wall += dt;
    symbols += syms.length;
    deltas += r.deltaIndex.length / 3;
    bytes += r.deltas.length;
  }
  settleCpuMs(shard);
  for (let p = 0; p < watch; p++) shard.watch(portfolioId(p), false);
  return { cpuMs: cpu / batches, wallMs: wall / batches, restCpuMs: rest / batches, symbols: symbols / batches, deltas: deltas / batches, kib: bytes / batches / 1024 };
}

/** CPU ms of the unwatched portfolios' pass: one Shard.settle, or its slices (their wall times kept). */
function settleCpuMs(shard: Shard, keep = false): number {
  const c0 = process.cpuUsage();
  if (sliceRows === 0) shard.settle();
  else
    while (shard.restPending) {
      const t0 = performance.now();
      shard.settleSlice(sliceRows);
      if (keep) sliceMs.push(performance.now() - t0);
    }
  const cu = process.cpuUsage(c0);
  return (cu.user + cu.system) / 1000;
}

const shard = loadedShard();
const load0 = loadavg()[0];
const w = run(shard, watched);
const k = run(shard, 0);
const r2 = (x: number) => Math.round(x * 1000) / 1000;
sliceMs.sort((a, b) => a - b);
const slices = sliceMs.length === 0 ? null : { rows: sliceRows, perPass: r2(sliceMs.length / Math.floor(batches / settleEvery)), p50Ms: r2(sliceMs[Math.floor(sliceMs.length / 2)]), p99Ms: r2(sliceMs[Math.floor(sliceMs.length * 0.99)]), maxMs: r2(sliceMs[sliceMs.length - 1]) };
const result = {
  bench: 'shard',
  batch: { windowMs, rate, ticks: Math.max(1, Math.round((rate * windowMs) / 1000)), symbols: r2(w.symbols), batches },
  watched,
  settleEvery,
  loadAverage: [load0, loadavg()[0]],
  perBatchCpuMs: { total: r2(w.cpuMs), withoutDeltas: r2(k.cpuMs), deltas: r2(w.cpuMs - k.cpuMs), rest: r2(w.restCpuMs), restWithoutWatched: r2(k.restCpuMs) },
  perBatchWallMs: { total: r2(w.wallMs), withoutDeltas: r2(k.wallMs) },
  deltasPerBatch: r2(w.deltas),
  deltaKiBPerBatch: r2(w.kib),
  restSlices: slices,
};
console.log(
  `shard bench (W1, ${watched} watched, batches of ${result.batch.ticks} ticks = ${result.batch.symbols} symbols, load ${load0} -> ${loadavg()[0]}): ` +
    `cpu per batch: first pass ${result.perBatchCpuMs.total} ms (without deltas ${result.perBatchCpuMs.withoutDeltas} ms, deltas ${result.perBatchCpuMs.deltas} ms), ` +
    `rest ${result.perBatchCpuMs.rest} ms settled every ${settleEvery} batches (${result.perBatchCpuMs.restWithoutWatched} ms with nothing watched), ` +
    `${result.deltasPerBatch} deltas, ${result.deltaKiBPerBatch} KiB per batch` +
    (slices === null ? '' : `; the rest in ${slices.perPass} slices of ${sliceRows} rows a pass, wall p50 ${slices.p50Ms} ms, p99 ${slices.p99Ms} ms, max ${slices.maxMs} ms`),
);
console.log(JSON.stringify(result));
