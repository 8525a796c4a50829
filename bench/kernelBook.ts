// The kernel benchmark's book, shared by bench/kernel.ts and bench/kernelCompare.ts: 40,000 portfolios
// x 25 positions over 2,000 symbols (a seeded draw, so every kernel gets the same book), and for
// dense-fx the same book with multipliers and foreign positions converted through derived rates.
// Only Kernel methods that exist since the first columnar kernel are used by populate(), so a build of
// an older commit can be handed the same book (kernelCompare.ts).

import type { Kernel, KernelLimits } from '../src/kernel/kernel.js';
import { NONE } from '../src/kernel/layout.js';
import { seeded } from '../src/sim/random.js';
import { conversionRate } from '../src/domain/fx.js';

export const PORTFOLIOS = 40_000;
export const PER_PORTFOLIO = 25;
export const SYMBOLS = 2_000;
export const SPARSE_SYMBOLS = SYMBOLS / 100;
export const limits: KernelLimits = { positionsMax: 2_000_000, portfoliosMax: 100_000, symbolsMax: 10_000 };

// dense-fx: FX legs and the conversions derived from them, after the instrument symbols.
const EURUSD = SYMBOLS;
const GBPUSD = SYMBOLS + 1;
const USDJPY = SYMBOLS + 2;
const USDCHF = SYMBOLS + 3;
const LEGS = [EURUSD, GBPUSD, USDJPY, USDCHF];
const CONVERSIONS = [SYMBOLS + 4, SYMBOLS + 5, SYMBOLS + 6, SYMBOLS + 7];
const FOREIGN_SHARE = 0.2;
const MULTIPLIERS = [1, 1, 1, 10, 50, 100, 0.1];

/** mulberry32: a seeded generator so both kernels get the same book. */
function random(seed: number): () => number {
  const g = seeded(seed);
  return () => g.next();
}

function basePrice(s: number): number {
  return 10 + (s % 490);
}

/** `portfolios`: a smaller book for the bench's --quick smoke run; the figures quoted use the default. */
export function populate(kernel: Kernel, portfolios = PORTFOLIOS): Kernel {
  const rnd = random(42);
  kernel.ensureSymbol(SYMBOLS - 1);
  for (let s = 0; s < SYMBOLS; s++) kernel.cols.symPrice[s] = basePrice(s);
  const held = new Set<number>();
  for (let i = 0; i < portfolios; i++) {
    const f = kernel.addPortfolio();
    kernel.cols.pfCash[f] = 1_000_000;
    // Generous limits: every check is evaluated, none latches (a latched portfolio skips them).
    kernel.setLimits(f, 1e12, 99.99, 100);
    held.clear();
    while (held.size < PER_PORTFOLIO) held.add(Math.floor(rnd() * SYMBOLS));
    for (const s of held) {
      const p = kernel.addPosition(f, s);
      const qty = Math.floor(rnd() * 2000) - 1000 || 1;
      kernel.setPosition(p, qty, basePrice(s) * (0.9 + rnd() * 0.2), basePrice(s));
    }
  }
  return kernel;
}

function legPrice(s: number): number {
  return s === EURUSD ? 1.08 : s === GBPUSD ? 1.27 : s === USDJPY ? 150 : 0.9;
}

/**
 * The dense book (same draw) with multipliers as effective quantities, and a fifth of the positions
 * converted: JPY>USD (inverse of USDJPY), EUR>GBP (EURUSD x 1/GBPUSD), JPY>EUR (1/USDJPY x 1/EURUSD),
 * CHF>GBP (1/USDCHF x 1/GBPUSD).
 */
/**
 * derived false: the conversion rows are plain fx symbols whose rates the bench feeds in each batch
 * (today's FX mechanism, which a kernel without conversions can run: kernelCompare.ts's baseline).
 */
export function populateFx(kernel: Kernel, derived = true): Kernel {
  const rnd = random(42);
  const extra = random(7);
  kernel.ensureSymbol(CONVERSIONS[CONVERSIONS.length - 1]);
  for (let s = 0; s < SYMBOLS; s++) kernel.cols.symPrice[s] = basePrice(s);
  for (const s of LEGS) kernel.cols.symPrice[s] = legPrice(s);
  const none = { direct: NONE, inverse: NONE, inDirect: NONE, inInverse: NONE, outDirect: NONE, outInverse: NONE };
  if (derived) {
    kernel.defineConversion(CONVERSIONS[0], { ...none, inverse: USDJPY });
    kernel.defineConversion(CONVERSIONS[1], { ...none, inDirect: EURUSD, outInverse: GBPUSD });
    kernel.defineConversion(CONVERSIONS[2], { ...none, inInverse: USDJPY, outInverse: EURUSD });
    kernel.defineConversion(CONVERSIONS[3], { ...none, inInverse: USDCHF, outInverse: GBPUSD });
  } else {
    const rates = ratesOf(kernel.cols.symPrice);
    CONVERSIONS.forEach((s, k) => (kernel.cols.symPrice[s] = rates[k]));
  }
  const held = new Set<number>();
  for (let i = 0; i < PORTFOLIOS; i++) {
    const f = kernel.addPortfolio();
    kernel.cols.pfCash[f] = 1_000_000;
    kernel.setLimits(f, 1e12, 99.99, 100);
    held.clear();
    while (held.size < PER_PORTFOLIO) held.add(Math.floor(rnd() * SYMBOLS));
    for (const s of held) {
      const p = kernel.addPosition(f, s);
      const qty = Math.floor(rnd() * 2000) - 1000 || 1;
      const avg = basePrice(s) * (0.9 + rnd() * 0.2);
      if (extra() < FOREIGN_SHARE) kernel.setPositionFx(p, CONVERSIONS[Math.floor(extra() * CONVERSIONS.length)]);
      kernel.setPosition(p, qty * MULTIPLIERS[Math.floor(extra() * MULTIPLIERS.length)], avg, basePrice(s));
    }
  }
  return kernel;
}

/** Fills the batch for iteration i: the chosen symbols alternate between two prices, so each changes. */
export function fillBatch(kernel: Kernel, count: number, i: number): void {
  const { batchSym, batchPrice } = kernel.cols;
  const first = (i * count) % SYMBOLS;
  const up = (Math.floor((i * count) / SYMBOLS) & 1) === 0;
  for (let k = 0; k < count; k++) {
    const s = (first + k) % SYMBOLS;
    batchSym[k] = s;
    batchPrice[k] = basePrice(s) * (up ? 1.001 : 0.999);
  }
}

/** The four conversions' rates from leg prices (by symbol id), as the kernel derives them. */
function ratesOf(price: ArrayLike<number>): number[] {
  return [
    conversionRate(0, price[USDJPY], 0, 0, 0, 0),
    conversionRate(0, 0, price[EURUSD], 0, 0, price[GBPUSD]),
    conversionRate(0, 0, 0, price[USDJPY], 0, price[EURUSD]),
    conversionRate(0, 0, 0, price[USDCHF], 0, price[GBPUSD]),
  ];
}

/**
 * Every instrument and every FX leg moves: returns the batch length. derived: the kernel appends the
 * conversions; otherwise the bench appends their rates itself (a kernel without conversions).
 */
export function fillFxBatch(kernel: Kernel, i: number, derived = true): number {
  fillBatch(kernel, SYMBOLS, i);
  const { batchSym, batchPrice } = kernel.cols;
  const up = (i & 1) === 0;
  const legPrices: number[] = [];
  LEGS.forEach((s, k) => {
    batchSym[SYMBOLS + k] = s;
    batchPrice[SYMBOLS + k] = legPrices[s - SYMBOLS] = legPrice(s) * (up ? 1.0005 : 0.9995);
  });
  if (derived) return SYMBOLS + LEGS.length;
  const byId: Record<number, number> = { [EURUSD]: legPrices[0], [GBPUSD]: legPrices[1], [USDJPY]: legPrices[2], [USDCHF]: legPrices[3] };
  ratesOf(byId as unknown as ArrayLike<number>).forEach((rate, k) => {
    batchSym[SYMBOLS + LEGS.length + k] = CONVERSIONS[k];
    batchPrice[SYMBOLS + LEGS.length + k] = rate;
  });
  return SYMBOLS + LEGS.length + CONVERSIONS.length;
}

