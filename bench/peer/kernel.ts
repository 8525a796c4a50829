// The peer's revaluation throughput on bench/kernel.ts's book (40,000 portfolios x 25 positions over
// 2,000 symbols, uniformly drawn with the same seeded generator and seed), with the peer's own code:
// per tick, every portfolio holding the symbol is revalued from scratch (PeerBook.value).
//   dense:  all 2,000 symbols tick once per iteration (each portfolio is recomputed 25 times);
//   sparse: 20 symbols tick per iteration.
// positions/s counts the positions whose price changed (bench/kernel.ts's "touched") per second,
// over the median iteration time. Prints one JSON line. Run: node dist/bench/peer/kernel.js [--iterations N] [--portfolios N]
import { seeded } from '../../src/sim/random.js';
import { symbolName } from '../../src/sim/random.js';
import { PeerBook } from './book.js';

/** --portfolios N: a smaller book (the bench's --quick smoke run); 40,000 by default. */
const portfoliosFlag = process.argv.indexOf('--portfolios');
const PORTFOLIOS = portfoliosFlag > 0 ? Math.max(1, Math.min(40_000, Math.floor(Number(process.argv[portfoliosFlag + 1])) || 40_000)) : 40_000;
const PER_PORTFOLIO = 25;
const SYMBOLS = 2_000;
const SPARSE_SYMBOLS = SYMBOLS / 100;

function basePrice(s: number): number {
  return 10 + (s % 490);
}

function build(): { book: PeerBook; names: string[] } {
  const rnd = seeded(42);
  const book = new PeerBook();
  const names = Array.from({ length: SYMBOLS }, (_, s) => symbolName(s));
  for (let s = 0; s < SYMBOLS; s++) book.prices.set(names[s], basePrice(s));
  const held = new Set<number>();
  let n = 0;
  for (let i = 0; i < PORTFOLIOS; i++) {
    const p = book.create('k-' + i, 1_000_000);
    if (p === null) throw new Error('duplicate portfolio');
    held.clear();
    while (held.size < PER_PORTFOLIO) held.add(Math.floor(rnd.next() * SYMBOLS));
    for (const s of held) {
      const qty = Math.floor(rnd.next() * 2000) - 1000 || 1;
      const price = basePrice(s) * (0.9 + rnd.next() * 0.2);
      book.trade(p, { trade_id: 't' + n++, symbol: names[s], side: qty > 0 ? 'buy' : 'sell', quantity: Math.abs(qty), price });
    }
  }
  return { book, names };
}

interface Result {
  case: string;
  iterations: number;
  positionsPerIteration: number;
  medianMs: number;
  p99Ms: number;
  positionsPerSec: number;
}

let sink = 0;

function measure(book: PeerBook, names: string[], name: string, count: number, warmup: number, iterations: number): Result {
  const times: number[] = [];
  let touched = 0;
  for (let i = 0; i < warmup + iterations; i++) {
    const first = (i * count) % SYMBOLS;
    const up = (Math.floor((i * count) / SYMBOLS) & 1) === 0;
    const t0 = performance.now();
    let positions = 0;
    for (let k = 0; k < count; k++) {
      const s = (first + k) % SYMBOLS;
      book.prices.set(names[s], basePrice(s) * (up ? 1.001 : 0.999));
      const holders = book.holders.get(names[s]) ?? [];
      positions += holders.length;
      for (const p of holders) sink += book.value(p).equity;
    }
    if (i >= warmup) {
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
const iterations = Math.max(3, flag > 0 ? Number(process.argv[flag + 1]) : 50);
const { book, names } = build();
// A dense iteration of the naive path recomputes every portfolio 25 times (seconds per iteration):
// fewer of them than the sparse ones, as bench/kernel.ts does for its slow list path.
const results = [measure(book, names, 'dense', SYMBOLS, iterations >= 20 ? 1 : 0, Math.max(1, Math.floor(iterations / 10))), measure(book, names, 'sparse', SPARSE_SYMBOLS, 20, iterations)];
console.log(JSON.stringify({ bench: 'peer-kernel', positions: PORTFOLIOS * PER_PORTFOLIO, portfolios: PORTFOLIOS, symbols: SYMBOLS, sink: Number.isFinite(sink), results }));
