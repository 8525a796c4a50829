// The revaluation floor on bench/kernel.ts's book shape (40,000 portfolios x 25 positions over 2,000
// symbols, same seeded draw): the least work that still revalues a position, one gather and one
// multiply into a column, mv[i] = qty[i] * price[sym[i]], over typed arrays. No P&L, no totals, no
// per-portfolio sums, no risk checks: a ceiling on positions/s for this machine's memory system, not
// an implementation of the job.
//   dense:  every position, sequentially;  sparse: the positions of 20 symbols, via per-symbol lists.
// Prints one JSON line. Run: node dist/bench/limit/kernel.js [--iterations N] [--portfolios N]
import { seeded } from '../../src/sim/random.js';

/** --portfolios N: a smaller book (the bench's --quick smoke run); 40,000 by default. */
const portfoliosFlag = process.argv.indexOf('--portfolios');
const PORTFOLIOS = portfoliosFlag > 0 ? Math.max(1, Math.min(40_000, Math.floor(Number(process.argv[portfoliosFlag + 1])) || 40_000)) : 40_000;
const PER_PORTFOLIO = 25;
const SYMBOLS = 2_000;
const SPARSE_SYMBOLS = SYMBOLS / 100;
const N = PORTFOLIOS * PER_PORTFOLIO;

const rnd = seeded(42);
const qty = new Float64Array(N);
const sym = new Int32Array(N);
const mv = new Float64Array(N);
const price = new Float64Array(SYMBOLS);
for (let s = 0; s < SYMBOLS; s++) price[s] = 10 + (s % 490);
const held = new Set<number>();
let n = 0;
for (let i = 0; i < PORTFOLIOS; i++) {
  held.clear();
  while (held.size < PER_PORTFOLIO) held.add(Math.floor(rnd.next() * SYMBOLS));
  for (const s of held) {
    sym[n] = s;
    qty[n] = Math.floor(rnd.next() * 2000) - 1000 || 1;
    rnd.next(); // the cost draw of bench/kernel.ts, to keep the same sequence
    n++;
  }
}
const counts = new Int32Array(SYMBOLS + 1);
for (let i = 0; i < N; i++) counts[sym[i] + 1]++;
for (let s = 0; s < SYMBOLS; s++) counts[s + 1] += counts[s];
const bySymbol = new Int32Array(N);
const fill = counts.slice(0, SYMBOLS);
for (let i = 0; i < N; i++) bySymbol[fill[sym[i]]++] = i;

function measure(name: string, iterations: number, warmup: number): { case: string; iterations: number; positionsPerIteration: number; medianMs: number; p99Ms: number; positionsPerSec: number } {
  const times: number[] = [];
  let touched = 0;
  for (let it = 0; it < warmup + iterations; it++) {
    const t0 = performance.now();
    let positions = 0;
    if (name === 'dense') {
      for (let s = 0; s < SYMBOLS; s++) price[s] *= it & 1 ? 0.999 : 1.001;
      for (let i = 0; i < N; i++) mv[i] = qty[i] * price[sym[i]];
      positions = N;
    } else {
      const first = (it * SPARSE_SYMBOLS) % SYMBOLS;
      for (let k = 0; k < SPARSE_SYMBOLS; k++) {
        const s = (first + k) % SYMBOLS;
        price[s] *= it & 1 ? 0.999 : 1.001;
        const px = price[s];
        for (let j = counts[s]; j < counts[s + 1]; j++) {
          const i = bySymbol[j];
          mv[i] = qty[i] * px;
        }
        positions += counts[s + 1] - counts[s];
      }
    }
    if (it >= warmup) {
      times.push(performance.now() - t0);
      touched += positions;
    }
  }
  times.sort((a, b) => a - b);
  const medianMs = times[Math.floor(times.length / 2)];
  const positionsPerIteration = touched / iterations;
  return { case: name, iterations, positionsPerIteration, medianMs, p99Ms: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))], positionsPerSec: positionsPerIteration / (medianMs / 1000) };
}

const flag = process.argv.indexOf('--iterations');
const iterations = Math.max(3, flag > 0 ? Number(process.argv[flag + 1]) : 200);
const results = [measure('dense', iterations, 20), measure('sparse', iterations * 2, 200)];
let check = 0;
for (let i = 0; i < N; i += 997) check += mv[i];
console.log(JSON.stringify({ bench: 'limit-kernel', positions: N, portfolios: PORTFOLIOS, symbols: SYMBOLS, check: Number.isFinite(check), results }));
