// The embedded demo: a simulated market (random-walk prices, Zipf-popular symbols) and a book of
// portfolios with Zipf-distributed holdings and a few random trades a second. Seeded: the same seed
// builds the same book and the same price paths.

import type { Random } from '../domain/types.js';
import type { Engine } from '../engine/api.js';
import { Zipf, seeded, symbolName } from '../sim/random.js';

export interface DemoOptions {
  portfolios: number;
  positionsPerPortfolio: number;
  symbols: number;
  ticksPerSecond: number;
  tradesPerSecond: number;
  seed: number;
}

export const demoDefaults: DemoOptions = {
  portfolios: 1_000,
  positionsPerPortfolio: 20,
  symbols: 500,
  ticksPerSecond: 10_000,
  tradesPerSecond: 5,
  seed: 42,
};

export interface RunningDemo {
  stop(): void;
}

/** Rounds a quantity to whole units, or 8 decimals for the crypto-like symbols. */
function quantityFor(random: Random, crypto: boolean): number {
  return crypto ? Math.round((0.01 + random.next() * 2) * 1e8) / 1e8 : 1 + Math.floor(random.next() * 500);
}

export async function seedDemoBook(engine: Engine, o: DemoOptions, prices: Float64Array, random: Random): Promise<void> {
  const zipf = new Zipf(o.symbols, 1.0);
  const existing = new Set(engine.listPortfolios().map((p) => p.id));
  const work: Promise<unknown>[] = [];
  for (let p = 0; p < o.portfolios; p++) {
    const id = 'demo-' + p.toString().padStart(5, '0');
    if (existing.has(id)) continue;
    work.push(seedPortfolio(engine, id, o, zipf, prices, random));
    if (work.length >= 200) await Promise.all(work.splice(0));
  }
  await Promise.all(work);
}

async function seedPortfolio(engine: Engine, id: string, o: DemoOptions, zipf: Zipf, prices: Float64Array, random: Random): Promise<void> {
  const created = await engine.createPortfolio({ id, name: `Demo book ${id.slice(5)}`, cash: 1_000_000, limits: { max_drawdown_pct: 50 } });
  if (!created.ok) return;
  const held = new Set<number>();
  for (let attempts = 0; held.size < o.positionsPerPortfolio && attempts < o.positionsPerPortfolio * 10; attempts++) held.add(zipf.sample(random));
  const trades = [...held].map((s, i) =>
    engine.trade(id, {
      trade_id: `${id}-seed-${i}`,
      symbol: symbolName(s),
      side: random.next() < 0.85 ? 'buy' : 'sell',
      quantity: quantityFor(random, s % 10 === 0),
      price: Math.round(prices[s] * 100) / 100,
      fee: 1,
    }),
  );
  await Promise.all(trades);
}

export function initialPrices(symbols: number, random: Random): Float64Array {
  const prices = new Float64Array(symbols);
  for (let s = 0; s < symbols; s++) prices[s] = Math.round((5 + random.next() * 495) * 100) / 100;
  return prices;
}

/** Starts the simulated feed and trader; ticks are paced every 10 ms in proportion to elapsed time. */
export function runDemo(engine: Engine, o: DemoOptions, prices: Float64Array, now: () => number): RunningDemo {
  const random = seeded(o.seed + 1);
  const zipf = new Zipf(o.symbols, 1.1);
  const names = Array.from({ length: o.symbols }, (_, i) => symbolName(i));
  let last = now();
  let owed = 0;
  const feed = setInterval(() => {
    const t = now();
    owed += ((t - last) * o.ticksPerSecond) / 1000;
    last = t;
    const n = Math.min(Math.floor(owed), o.ticksPerSecond);
    owed -= n;
    for (let i = 0; i < n; i++) {
      const s = zipf.sample(random);
      const step = 1 + (random.next() - 0.5) * 0.002;
      prices[s] = Math.max(0.01, Math.round(prices[s] * step * 1e4) / 1e4);
      engine.ingestTick(names[s], prices[s], t, 1 + Math.floor(random.next() * 100));
    }
  }, 10);
  let tradeNo = 0;
  const trader = setInterval(
    () => {
      const p = Math.floor(random.next() * o.portfolios);
      const id = 'demo-' + p.toString().padStart(5, '0');
      const s = zipf.sample(random);
      void engine.trade(id, {
        trade_id: `${id}-live-${now()}-${tradeNo++}`,
        symbol: names[s],
        side: random.next() < 0.5 ? 'buy' : 'sell',
        quantity: quantityFor(random, s % 10 === 0),
        price: prices[s],
        fee: 0.5,
      });
    },
    Math.max(10, Math.floor(1000 / Math.max(1, o.tradesPerSecond))),
  );
  return {
    stop() {
      clearInterval(feed);
      clearInterval(trader);
    },
  };
}
