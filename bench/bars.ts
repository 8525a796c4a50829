// BarBook.onTick throughput: 2,000 symbols drawn from a Zipf-like distribution (a few symbols take
// most ticks, as in a real feed), timestamps 10 ms apart so hot symbols close 1m bars every minute and
// the closing path (the only allocation) is in the measurement. Each chunk of 10,000 ticks is timed;
// the table shows median and p99 chunk throughput. "by id" passes dense ids (what the engine's hot
// path will do), "by name" passes strings (one Map lookup per tick).
// Run: node dist/bench/bars.js [--ticks N]

import { createBarBook, type Bar, type BarBook, type BarSink } from '../src/market/index.js';

const SYMBOLS = 2_000;
const ZIPF_EXPONENT = 1.1;
const CHUNK_TICKS = 10_000;
const TICK_SPACING_MS = 10;
const WARMUP_TICKS = 300_000;
const ORIGIN_MS = Date.UTC(2025, 0, 6, 9, 30);

interface Feed {
  readonly ids: Int32Array;
  readonly names: string[];
  readonly prices: Float64Array;
  readonly sizes: Float64Array;
  readonly ts: Float64Array;
}

interface Result {
  readonly case: string;
  readonly ticks: number;
  readonly chunks: number;
  readonly medianTicksPerSec: number;
  readonly p99TicksPerSec: number;
  readonly overallTicksPerSec: number;
  readonly barsClosed: number;
}

/** mulberry32: seeded, so every run measures the same feed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cumulative Zipf weights: symbol k is drawn with probability proportional to 1 / (k + 1)^s. */
function zipfCumulative(): Float64Array {
  const cumulative = new Float64Array(SYMBOLS);
  let total = 0;
  for (let k = 0; k < SYMBOLS; k++) cumulative[k] = total += 1 / (k + 1) ** ZIPF_EXPONENT;
  for (let k = 0; k < SYMBOLS; k++) cumulative[k] /= total;
  return cumulative;
}

function drawSymbol(cumulative: Float64Array, u: number): number {
  let lo = 0;
  let hi = SYMBOLS - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cumulative[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Pre-generated ticks, so the timed loop measures onTick and nothing else. */
function makeFeed(ticks: number, seed: number, originMs: number): Feed {
  const rnd = random(seed);
  const cumulative = zipfCumulative();
  const last = Float64Array.from({ length: SYMBOLS }, (_, k) => 10 + (k % 490));
  // Shared name strings (their hash is cached): a parser's fresh strings would add one hash per tick.
  const symbolNames = Array.from({ length: SYMBOLS }, (_, k) => `SYM${k}`);
  const feed: Feed = { ids: new Int32Array(ticks), names: new Array<string>(ticks), prices: new Float64Array(ticks), sizes: new Float64Array(ticks), ts: new Float64Array(ticks) };
  for (let i = 0; i < ticks; i++) {
    const sym = drawSymbol(cumulative, rnd());
    last[sym] = Math.max(0.01, last[sym] * (1 + (rnd() - 0.5) * 0.002));
    feed.ids[i] = sym;
    feed.names[i] = symbolNames[sym];
    feed.prices[i] = last[sym];
    // One tick in ten carries no size: the size-less path is measured too.
    feed.sizes[i] = rnd() < 0.1 ? Number.NaN : 1 + Math.floor(rnd() * 100);
    feed.ts[i] = originMs + i * TICK_SPACING_MS;
  }
  return feed;
}

function newBook(counter: { closed: number }): BarBook {
  const sink: BarSink = {
    closed: (_bar: Bar) => void counter.closed++,
    revised: () => {},
  };
  const book = createBarBook({ sink, limits: { symbolsMax: SYMBOLS } });
  if (!book.ok) throw new Error(book.error.message);
  // Register every symbol in id order so "by id" and "by name" address the same rows.
  for (let k = 0; k < SYMBOLS; k++) book.value.symbols.intern(`SYM${k}`);
  return book.value;
}

function runChunk(book: BarBook, feed: Feed, from: number, to: number, byId: boolean): void {
  for (let i = from; i < to; i++) {
    const size = feed.sizes[i];
    const outcome = book.onTick(byId ? feed.ids[i] : feed.names[i], feed.prices[i], feed.ts[i], size === size ? size : undefined);
    if (outcome !== 'applied') throw new Error(`tick ${i}: ${outcome}`);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function measure(name: string, feed: Feed, byId: boolean): Result {
  const counter = { closed: 0 };
  const book = newBook(counter);
  const ticks = feed.ids.length;
  const chunkNs: number[] = [];
  const started = process.hrtime.bigint();
  for (let from = 0; from < ticks; from += CHUNK_TICKS) {
    const t = process.hrtime.bigint();
    runChunk(book, feed, from, Math.min(from + CHUNK_TICKS, ticks), byId);
    chunkNs.push(Number(process.hrtime.bigint() - t));
  }
  const totalNs = Number(process.hrtime.bigint() - started);
  // Per-chunk throughput, sorted ascending: the slow tail is the low end.
  const rates = chunkNs.map((ns) => CHUNK_TICKS / (ns / 1e9)).sort((a, b) => a - b);
  return {
    case: name,
    ticks,
    chunks: chunkNs.length,
    medianTicksPerSec: percentile(rates, 50),
    p99TicksPerSec: percentile(rates, 1),
    overallTicksPerSec: ticks / (totalNs / 1e9),
    barsClosed: counter.closed,
  };
}

function row(cells: readonly string[]): string {
  const widths = [8, 10, 7, 14, 14, 14, 12];
  return cells.map((c, i) => c.padStart(widths[i])).join('  ');
}

function main(): void {
  const flag = process.argv.indexOf('--ticks');
  const ticks = flag > 0 ? Number(process.argv[flag + 1]) : 2_000_000;
  const warm = makeFeed(WARMUP_TICKS, 7, ORIGIN_MS - 7 * 86_400_000);
  measure('warmup-id', warm, true);
  measure('warmup-name', warm, false);
  const feed = makeFeed(ticks, 42, ORIGIN_MS);
  const results = [measure('by id', feed, true), measure('by name', feed, false)];
  console.log(`BarBook.onTick: ${ticks} ticks over ${SYMBOLS} symbols (Zipf s=${ZIPF_EXPONENT}), 7 timeframes, ${TICK_SPACING_MS} ms apart, chunks of ${CHUNK_TICKS}, node ${process.version}`);
  console.log(row(['case', 'ticks', 'chunks', 'median tick/s', 'p99 tick/s', 'overall tick/s', 'bars closed']));
  for (const r of results) {
    console.log(row([r.case, String(r.ticks), String(r.chunks), r.medianTicksPerSec.toExponential(3), r.p99TicksPerSec.toExponential(3), r.overallTicksPerSec.toExponential(3), String(r.barsClosed)]));
  }
  console.log(JSON.stringify({ bench: 'bars', symbols: SYMBOLS, zipf: ZIPF_EXPONENT, chunkTicks: CHUNK_TICKS, results }));
}

main();
