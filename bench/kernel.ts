// Revaluation throughput of the WASM and TypeScript kernels over the same 1,000,000-position book.
// "dense": every symbol's price changes each iteration, so every position is revalued and every
// portfolio recomputed (the portfolio-sweep path). "sparse": 1% of the symbols change, the per-symbol
// list path. "dense-fx": the dense book with contract multipliers (quantities x 1, 10, 50, 100 or 0.1)
// and a fifth of the positions quoted in a foreign currency, converted through derived rates (an
// inverse pair and three crosses through USD, src/kernel/conversions.ts) whose legs tick every
// iteration too (issue 19's measure: compare its median with today's dense).
// Run: node dist/bench/kernel.js [--iterations N] [--cases dense,dense-fx,sparse | dense/wasm,sparse/ts,...] [--portfolios N]

import { cpus, loadavg } from 'node:os';
import { JsBackend, type SweepPolicy } from '../src/kernel/jsBackend.js';
import { Kernel } from '../src/kernel/kernel.js';
import { WasmBackend } from '../src/kernel/wasmBackend.js';
import { PER_PORTFOLIO, PORTFOLIOS, SPARSE_SYMBOLS, SYMBOLS, fillBatch, fillFxBatch, limits, populate, populateFx } from './kernelBook.js';

interface Case {
  readonly name: string;
  readonly label: string;
  readonly make: () => Kernel;
  readonly symbolsPerBatch: number;
  readonly warmup: number;
  readonly iterations: number;
}

interface Result {
  readonly case: string;
  readonly kernel: string;
  readonly iterations: number;
  readonly positionsPerIteration: number;
  readonly portfoliosPerIteration: number;
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly positionsPerSec: number;
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** --portfolios N: a smaller book (the bench's --quick smoke run); dense-fx always builds the full one. */
const portfoliosFlag = process.argv.indexOf('--portfolios');
const portfolios = portfoliosFlag > 0 ? Math.max(1, Math.min(PORTFOLIOS, Math.floor(Number(process.argv[portfoliosFlag + 1])) || PORTFOLIOS)) : PORTFOLIOS;

function measure(c: Case): Result {
  const fx = c.name === 'dense-fx';
  const kernel = fx ? populateFx(c.make()) : populate(c.make(), portfolios);
  const fill = (i: number): number => (fx ? fillFxBatch(kernel, i) : (fillBatch(kernel, c.symbolsPerBatch, i), c.symbolsPerBatch));
  for (let i = 0; i < c.warmup; i++) kernel.revalue(fill(i));
  const times: number[] = [];
  let touched = 0;
  let dirty = 0;
  for (let i = c.warmup; i < c.warmup + c.iterations; i++) {
    const n = fill(i);
    const t0 = performance.now();
    kernel.revalue(n);
    times.push(performance.now() - t0);
    touched += kernel.touched;
    dirty += kernel.dirtyCount;
  }
  times.sort((a, b) => a - b);
  const medianMs = percentile(times, 0.5);
  const positionsPerIteration = touched / c.iterations;
  return {
    case: c.name,
    kernel: c.label,
    iterations: c.iterations,
    positionsPerIteration,
    portfoliosPerIteration: dirty / c.iterations,
    medianMs,
    p99Ms: percentile(times, 0.99),
    positionsPerSec: positionsPerIteration / (medianMs / 1000),
  };
}

function js(policy: SweepPolicy): () => Kernel {
  return () => new Kernel(new JsBackend(policy), limits);
}

function cases(iterations: number): Case[] {
  const wasm = (): Kernel => new Kernel(new WasmBackend(), limits);
  const dense = { name: 'dense', symbolsPerBatch: SYMBOLS, warmup: 20, iterations };
  const sparse = { name: 'sparse', symbolsPerBatch: SPARSE_SYMBOLS, warmup: 200, iterations: iterations * 2 };
  const denseFx = { ...dense, name: 'dense-fx' };
  return [
    { ...dense, label: 'wasm', make: wasm },
    { ...dense, label: 'ts', make: js('auto') },
    { ...denseFx, label: 'wasm', make: wasm },
    { ...denseFx, label: 'ts', make: js('auto') },
    { ...dense, label: 'ts-lists', make: js('never'), iterations: Math.max(10, iterations / 10), warmup: 3 },
    { ...sparse, label: 'wasm', make: wasm },
    { ...sparse, label: 'ts', make: js('auto') },
  ];
}

function row(cells: readonly string[]): string {
  const widths = [8, 9, 9, 10, 9, 11, 10, 9, 11, 8];
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' ');
}

function figures(r: Result): string[] {
  return [r.medianMs.toFixed(3), r.p99Ms.toFixed(3), r.positionsPerSec.toExponential(2)];
}

function print(results: readonly Result[]): void {
  const find = (name: string, kernel: string): Result | undefined => results.find((r) => r.case === name && r.kernel === kernel);
  console.log(`kernel revaluation: ${portfolios * PER_PORTFOLIO} positions (${portfolios} portfolios x ${PER_PORTFOLIO}) over ${SYMBOLS} symbols`);
  console.log(`node ${process.version}, ${cpus().length} cores, load average ${loadavg()[0].toFixed(2)} at the end (shared machine: expect noise)`);
  console.log(row(['case', 'pos/iter', 'pf/iter', 'wasm med', 'wasm p99', 'wasm pos/s', 'ts med', 'ts p99', 'ts pos/s', 'wasm/ts']));
  for (const name of ['dense', 'dense-fx', 'sparse']) {
    const w = find(name, 'wasm');
    const t = find(name, 'ts');
    if (w === undefined || t === undefined) continue;
    const counts = [w.positionsPerIteration.toFixed(0), w.portfoliosPerIteration.toFixed(0)];
    console.log(row([name, ...counts, ...figures(w), ...figures(t), (w.positionsPerSec / t.positionsPerSec).toFixed(2)]));
  }
  const lists = find('dense', 'ts-lists');
  if (lists !== undefined) console.log(`(times in ms per iteration; dense on the TS kernel forced to the per-symbol lists: median ${lists.medianMs.toFixed(3)}, p99 ${lists.p99Ms.toFixed(3)}, ${lists.positionsPerSec.toExponential(2)} positions/s)`);
  console.log(JSON.stringify({ bench: 'kernel', positions: portfolios * PER_PORTFOLIO, portfolios, symbols: SYMBOLS, cores: cpus().length, loadavg: loadavg()[0], results }));
}

function main(): void {
  const flag = process.argv.indexOf('--iterations');
  const iterations = flag > 0 ? Number(process.argv[flag + 1]) : 200;
  const only = process.argv.indexOf('--cases');
  const wanted = only > 0 ? new Set(String(process.argv[only + 1]).split(',')) : null;
  const results: Result[] = [];
  for (const c of cases(iterations)) {
    // A case is asked for by name (every kernel) or name/kernel (dense/wasm): the bench scenario asks only for what it reports.
    if (wanted !== null && !wanted.has(c.name) && !wanted.has(`${c.name}/${c.label}`)) continue;
    results.push(measure(c));
    // Drop the previous book before building the next: three 70 MB books at once skew the cache.
    (globalThis as { gc?: () => void }).gc?.();
  }
  print(results);
}

main();
