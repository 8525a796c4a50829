// The reference workload (W1 shape): portfolios x positions over symbols, Zipf-distributed holdings
// and ticks, seeded. Shared by the engine bench, the load generator and the peer.
import type { Engine } from '../src/engine/api.js';
import { Zipf, seeded, symbolName } from '../src/sim/random.js';

export interface Workload {
  portfolios: number;
  positionsPerPortfolio: number;
  symbols: number;
  zipfS: number;
  seed: number;
}

export const W1: Workload = { portfolios: 10_000, positionsPerPortfolio: 25, symbols: 2_000, zipfS: 1.0, seed: 7 };

export interface Holding {
  portfolio: string;
  symbol: string;
  quantity: number;
  price: number;
}

export function portfolioId(i: number): string {
  return 'w-' + i.toString().padStart(6, '0');
}

/** Every holding of the workload, deterministic for a seed. */
export function holdingsOf(w: Workload): Holding[] {
  const random = seeded(w.seed);
  const zipf = new Zipf(w.symbols, w.zipfS);
  const out: Holding[] = [];
  for (let p = 0; p < w.portfolios; p++) {
    const held = new Set<number>();
    for (let tries = 0; held.size < w.positionsPerPortfolio && tries < w.positionsPerPortfolio * 50; tries++) held.add(zipf.sample(random));
    for (const s of held) out.push({ portfolio: portfolioId(p), symbol: symbolName(s), quantity: 1 + Math.floor(random.next() * 1000), price: 10 + (s % 490) });
  }
  return out;
}

/** Loads the workload into an engine through its public API (trades are durable commits). */
export async function loadWorkload(engine: Engine, w: Workload): Promise<void> {
  const inFlightMax = 2_000;
  let inFlight: Promise<unknown>[] = [];
  for (let p = 0; p < w.portfolios; p++) {
    inFlight.push(engine.createPortfolio({ id: portfolioId(p), cash: 1_000_000 }));
    if (inFlight.length >= inFlightMax) await Promise.all(inFlight.splice(0));
  }
  await Promise.all(inFlight);
  inFlight = [];
  let n = 0;
  for (const h of holdingsOf(w)) {
    inFlight.push(engine.trade(h.portfolio, { trade_id: 'seed-' + n++, symbol: h.symbol, side: 'buy', quantity: h.quantity, price: h.price }));
    if (inFlight.length >= inFlightMax) await Promise.all(inFlight.splice(0));
  }
  await Promise.all(inFlight);
}

/** A deterministic Zipf tick stream: symbol ids and prices, random-walked. */
export class TickStream {
  private readonly random;
  private readonly zipf: Zipf;
  readonly prices: Float64Array;
  readonly names: string[];

  constructor(w: Workload, seed = w.seed + 1) {
    this.random = seeded(seed);
    this.zipf = new Zipf(w.symbols, w.zipfS);
    this.prices = new Float64Array(w.symbols);
    this.names = Array.from({ length: w.symbols }, (_, i) => symbolName(i));
    for (let s = 0; s < w.symbols; s++) this.prices[s] = 10 + (s % 490);
  }

  /** Advances one tick; returns the symbol index (its new price is prices[index]). */
  next(): number {
    const s = this.zipf.sample(this.random);
    this.prices[s] = Math.max(0.01, this.prices[s] * (1 + (this.random.next() - 0.5) * 0.002));
    return s;
  }
}
