// Proves that both revaluation kernels (TypeScript and AssemblyScript/WASM) value contract multipliers
// and FX rates as markets publish them (issue 19), in the same revalue() pass, bit for bit alike:
//  - a multiplier enters the kernel as an effective quantity (quantity x multiplier): an ES future at
//    50x is valued 50 USD per point, its cost basis and weight follow;
//  - a conversion (Kernel.defineConversion, rule in src/domain/fx.ts) takes the direct rate (QB) when
//    it has a price, else 1 / the inverse (BQ), else the cross through the pivot, each leg direct or
//    inverse; 0 (unconverted) until a complete path exists; a tick of any leg re-derives it and
//    revalues every position it converts within the same revalue call;
//  - worked examples on every kernel and path: a JPY book holding USD stocks via USDJPY (direct), a USD
//    book holding a JPY stock via USDJPY (inverse), a EUR stock in a GBP book through the USD pivot
//    (EURUSD x 1/GBPUSD), the direct EURGBP taking over once it ticks;
//  - property over random books with random multipliers and conversions (some legs direct, some
//    inverse, some cross) and random batches of instrument and leg ticks: after every step the WASM and
//    TS kernels' memories are equal word for word (every path), and every converted row's rate equals
//    the rule applied to the final prices.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { conversionRate } from '../src/domain/fx.js';
import type { Kernel } from '../src/kernel/kernel.js';
import type { ConversionLegIds } from '../src/kernel/conversions.js';
import { NONE } from '../src/kernel/layout.js';
import { ensureKernelWasm, expectSameMemory, expectSameUpToListOrder, kernelOf, tick, type Flavour } from './support/kernelMemory.js';

beforeAll(ensureKernelWasm);

// Symbol rows of the worked examples.
const ES = 0;
const AAPL = 1;
const SONY = 2;
const SAP = 3;
const USDJPY = 4;
const EURUSD = 5;
const GBPUSD = 6;
const EURGBP = 7;
const JPYUSD = 8;
const USD_JPY = 9; // conversion USD>JPY
const JPY_USD = 10; // conversion JPY>USD
const EUR_GBP = 11; // conversion EUR>GBP
const GBPEUR = 12;
const USDGBP = 13;
const EURUSD_INV = 14; // USDEUR
const SYMBOLS = 15;

const none: ConversionLegIds = { direct: NONE, inverse: NONE, inDirect: NONE, inInverse: NONE, outDirect: NONE, outInverse: NONE };

function row(k: Kernel, p: number): Record<string, number> {
  const c = k.cols;
  return { qty: c.posQty[p], mark: c.posMark[p], fx: c.posFx[p], mv: c.posMv[p], upnl: c.posUpnl[p] };
}

function totals(k: Kernel, f: number): Record<string, number> {
  const c = k.cols;
  return { holdings: c.pfHoldings[f], costBasis: c.pfCostBasis[f], upnl: c.pfUpnl[f], gross: c.pfGross[f] };
}

/**
 * futures: long 2 ES at 50x (avg 4000, effective quantity 100) and 10 AAPL (avg 150). jpyBook (base JPY):
 * 10 AAPL quoted in USD via USD>JPY (direct USDJPY). usdBook: 100 SONY quoted in JPY via JPY>USD (inverse
 * USDJPY). gbpBook (base GBP): 10 SAP quoted in EUR via EUR>GBP (direct EURGBP, inverse GBPEUR, cross
 * EURUSD or 1/USDEUR, then USDGBP or 1/GBPUSD).
 */
function book(flavour: Flavour) {
  const k = kernelOf(flavour);
  k.ensureSymbol(SYMBOLS - 1);
  k.defineConversion(USD_JPY, { ...none, direct: USDJPY, inverse: JPYUSD });
  k.defineConversion(JPY_USD, { ...none, direct: JPYUSD, inverse: USDJPY });
  k.defineConversion(EUR_GBP, { direct: EURGBP, inverse: GBPEUR, inDirect: EURUSD, inInverse: EURUSD_INV, outDirect: USDGBP, outInverse: GBPUSD });
  const futures = k.addPortfolio();
  const jpyBook = k.addPortfolio();
  const usdBook = k.addPortfolio();
  const gbpBook = k.addPortfolio();
  const es = k.addPosition(futures, ES);
  k.setPosition(es, 2 * 50, 4000, 4000);
  const aapl = k.addPosition(futures, AAPL);
  k.setPosition(aapl, 10, 150, 150);
  const aaplJpy = k.addPosition(jpyBook, AAPL);
  k.setPositionFx(aaplJpy, USD_JPY);
  k.setPosition(aaplJpy, 10, 150, 150);
  const sony = k.addPosition(usdBook, SONY);
  k.setPositionFx(sony, JPY_USD);
  k.setPosition(sony, 100, 2000, 2000);
  const sap = k.addPosition(gbpBook, SAP);
  k.setPositionFx(sap, EUR_GBP);
  k.setPosition(sap, 10, 100, 100);
  for (const f of [futures, jpyBook, usdBook, gbpBook]) k.recompute(f);
  return { k, futures, jpyBook, usdBook, gbpBook, es, aapl, aaplJpy, sony, sap };
}

describe.each<Flavour>(['wasm', 'auto', 'never', 'always'])('multipliers and conversions, worked examples (%s)', (flavour) => {
  it('values an ES future at 50 USD per point: market value, P&L, cost basis and weight', () => {
    const { k, futures, es, aapl } = book(flavour);
    expect(tick(k, [ES, 4010], [AAPL, 160])).toBeGreaterThan(0);
    // 2 contracts x 4010 x 50 = 401,000; (4010 - 4000) x 2 x 50 = 1,000.
    expect(row(k, es)).toEqual({ qty: 100, mark: 4010, fx: 1, mv: 401_000, upnl: 1_000 });
    expect(row(k, aapl)).toEqual({ qty: 10, mark: 160, fx: 1, mv: 1_600, upnl: 100 });
    expect(totals(k, futures)).toEqual({ holdings: 402_600, costBasis: 401_500, upnl: 1_100, gross: 402_600 });
    expect(k.cols.pfMaxAbsMv[futures]).toBe(401_000);
  });

  it('JPY book holds USD stock via USDJPY (direct); USD book holds a JPY stock via USDJPY (inverse); one USDJPY tick revalues both', () => {
    const { k, jpyBook, usdBook, futures, aaplJpy, sony } = book(flavour);
    expect(row(k, aaplJpy).fx).toBe(0);
    expect(row(k, sony).fx).toBe(0);
    tick(k, [USDJPY, 150]);
    expect(k.dirtyCount).toBe(2);
    expect(Array.from(k.cols.pfDirty.subarray(0, 2)).sort()).toEqual([jpyBook, usdBook]);
    expect(row(k, aaplJpy)).toEqual({ qty: 10, mark: 150, fx: 150, mv: 225_000, upnl: 0 });
    expect(row(k, sony)).toEqual({ qty: 100, mark: 2000, fx: 1 / 150, mv: 100 * 2000 * (1 / 150), upnl: 0 });
    expect(k.cols.pfHoldings[futures]).toBe(400_000 + 1_500);
    tick(k, [SONY, 2100], [USDJPY, 125]);
    expect(row(k, sony)).toEqual({ qty: 100, mark: 2100, fx: 1 / 125, mv: 100 * 2100 * (1 / 125), upnl: (2100 - 2000) * 100 * (1 / 125) });
    expect(row(k, aaplJpy).mv).toBe(10 * 150 * 125);
    // The direct JPYUSD, once priced, takes over from the inverse of USDJPY.
    tick(k, [JPYUSD, 0.0081]);
    expect(row(k, sony).fx).toBe(0.0081);
    expect(row(k, aaplJpy).fx).toBe(125);
  });

  it('EUR stock in a GBP book through the USD pivot: EURUSD x 1/GBPUSD, then the direct EURGBP', () => {
    const { k, gbpBook, sap } = book(flavour);
    tick(k, [EURUSD, 1.1]);
    expect(row(k, sap).fx).toBe(0); // only one leg priced: no complete path
    expect(k.cols.pfHoldings[gbpBook]).toBe(0);
    tick(k, [GBPUSD, 1.25]);
    const cross = 1.1 * (1 / 1.25);
    expect(row(k, sap)).toEqual({ qty: 10, mark: 100, fx: cross, mv: 10 * 100 * cross, upnl: 0 });
    expect(k.dirtyCount).toBe(1);
    // Either leg moving revalues the position in the same pass.
    tick(k, [EURUSD, 1.2]);
    expect(row(k, sap).fx).toBe(1.2 * (1 / 1.25));
    tick(k, [SAP, 110], [GBPUSD, 1.3]);
    expect(row(k, sap)).toEqual({ qty: 10, mark: 110, fx: 1.2 * (1 / 1.3), mv: 10 * 110 * (1.2 * (1 / 1.3)), upnl: (110 - 100) * 10 * (1.2 * (1 / 1.3)) });
    // USDGBP (the direct second leg) takes over from 1/GBPUSD, and EURGBP over the whole cross.
    tick(k, [USDGBP, 0.8]);
    expect(row(k, sap).fx).toBe(1.2 * 0.8);
    tick(k, [EURGBP, 0.85]);
    expect(row(k, sap).fx).toBe(0.85);
    expect(totals(k, gbpBook)).toEqual({ holdings: 10 * 110 * 0.85, costBasis: 10 * 100 * 0.85, upnl: (110 - 100) * 10 * 0.85, gross: 10 * 110 * 0.85 });
    // A cross leg moving after that changes nothing: the direct rate has a price.
    expect(tick(k, [EURUSD, 1.3])).toBe(0);
  });

  it('a conversion defined after its legs ticked starts at the derived rate; positions link to it like any fx symbol', () => {
    const k = kernelOf(flavour);
    k.ensureSymbol(SYMBOLS - 1);
    tick(k, [GBPUSD, 1.25], [EURUSD_INV, 0.8]);
    k.defineConversion(EUR_GBP, { direct: EURGBP, inverse: GBPEUR, inDirect: EURUSD, inInverse: EURUSD_INV, outDirect: USDGBP, outInverse: GBPUSD });
    k.defineConversion(EUR_GBP, { ...none }); // defined once: a second definition is a no-op
    expect(k.cols.symPrice[EUR_GBP]).toBe((1 / 0.8) * (1 / 1.25));
    expect(k.conversionCount).toBe(1);
    const f = k.addPortfolio();
    const p = k.addPosition(f, SAP);
    k.setPositionFx(p, EUR_GBP);
    k.setPosition(p, -4 * 25, 10, 12);
    k.recompute(f);
    expect(row(k, p)).toEqual({ qty: -100, mark: 12, fx: (1 / 0.8) * (1 / 1.25), mv: -100 * 12 * ((1 / 0.8) * (1 / 1.25)), upnl: (12 - 10) * -100 * ((1 / 0.8) * (1 / 1.25)) });
  });
});

// ---- property: random books with multipliers and conversions --------------------------------------

const CURRENCY_LEGS = 8; // symbol rows 0..7 are rate legs, then conversions, then instruments
const CONVERSIONS = 4;
const FIRST_INSTRUMENT = CURRENCY_LEGS + CONVERSIONS;

type Step =
  | { t: 'open'; pf: number; sym: number; conv: number | null; qty: number; multiplier: number; avg: number; trade: number }
  | { t: 'trade'; pick: number; qty: number; avg: number; trade: number }
  | { t: 'tick'; entries: { leg: boolean; pick: number; price: number }[] };

const price = fc.oneof(fc.constantFrom(10, 99.5, 4000.25), fc.double({ min: 0.5, max: 5000, noNaN: true }));
const rate = fc.oneof(fc.constantFrom(0.5, 1.25, 150), fc.double({ min: 0.005, max: 200, noNaN: true }));
const quantity = fc.oneof(fc.constant(0), fc.integer({ min: -500, max: 500 }), fc.integer({ min: -50_000_000, max: 50_000_000 }).map((n) => n / 1e6));
const multiplier = fc.constantFrom(1, 1, 50, 100, 0.1, 12.5, 1000);
const legs = fc.array(fc.option(fc.nat(CURRENCY_LEGS - 1), { nil: null, freq: 3 }), { minLength: 6, maxLength: 6 });

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('open' as const), pf: fc.nat(), sym: fc.nat(), conv: fc.option(fc.nat(CONVERSIONS - 1), { nil: null, freq: 2 }), qty: quantity, multiplier, avg: price, trade: price }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('trade' as const), pick: fc.nat(), qty: quantity, avg: price, trade: price }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('tick' as const),
      entries: fc.array(
        fc.oneof(fc.record({ leg: fc.constant(true), pick: fc.nat(), price: rate }), fc.record({ leg: fc.constant(false), pick: fc.nat(), price })),
        { minLength: 1, maxLength: 12 },
      ),
    }),
  },
);

const FLAVOURS: readonly Flavour[] = ['wasm', 'auto', 'never', 'always'];

interface Row {
  pf: number;
  sym: number;
  conv: number;
  qty: number;
  multiplier: number;
}

class Fleet {
  readonly kernels: Kernel[];
  readonly rows: Row[] = [];
  readonly definitions: ConversionLegIds[];

  constructor(
    readonly portfolios: number,
    readonly symbols: number,
    legChoices: (number | null)[][],
  ) {
    this.definitions = legChoices.map((l) => {
      const id = (v: number | null): number => (v === null ? NONE : v);
      return { direct: id(l[0]), inverse: id(l[1]), inDirect: id(l[2]), inInverse: id(l[3]), outDirect: id(l[4]), outInverse: id(l[5]) };
    });
    this.kernels = FLAVOURS.map((f) => {
      const k = kernelOf(f);
      k.ensureSymbol(symbols - 1);
      this.definitions.forEach((d, i) => k.defineConversion(CURRENCY_LEGS + i, d));
      for (let i = 0; i < portfolios; i++) k.addPortfolio();
      return k;
    });
  }

  apply(s: Step): void {
    if (s.t === 'open') {
      const r: Row = { pf: s.pf % this.portfolios, sym: FIRST_INSTRUMENT + (s.sym % (this.symbols - FIRST_INSTRUMENT)), conv: s.conv === null ? NONE : CURRENCY_LEGS + s.conv, qty: s.qty, multiplier: s.multiplier };
      this.rows.push(r);
      for (const k of this.kernels) {
        const p = k.addPosition(r.pf, r.sym);
        k.setPositionFx(p, r.conv);
        k.setPosition(p, r.qty * r.multiplier, s.avg, s.trade);
        k.recompute(r.pf);
      }
      expectSameMemory(this.kernels[0], this.kernels[1]);
      return;
    }
    if (s.t === 'trade') {
      if (this.rows.length === 0) return;
      const p = s.pick % this.rows.length;
      const r = this.rows[p];
      r.qty = s.qty;
      for (const k of this.kernels) {
        k.setPosition(p, r.qty * r.multiplier, s.avg, s.trade);
        k.recompute(r.pf);
      }
      expectSameMemory(this.kernels[0], this.kernels[1]);
      return;
    }
    const entries = s.entries.map((e) => ({ sym: e.leg ? e.pick % CURRENCY_LEGS : FIRST_INSTRUMENT + (e.pick % (this.symbols - FIRST_INSTRUMENT)), price: e.price }));
    const returned = this.kernels.map((k) => tick(k, ...entries.map((e): [number, number] => [e.sym, e.price])));
    expect(new Set(returned).size).toBe(1);
    const [wasm, auto, lists, sweep] = this.kernels;
    expectSameMemory(wasm, auto);
    expectSameUpToListOrder(lists, auto);
    expectSameUpToListOrder(sweep, auto);
  }

  /** The rule applied to the final leg prices, for each conversion. */
  expectedRate(conv: number): number {
    const d = this.definitions[conv - CURRENCY_LEGS];
    const p = (s: number): number => (s === NONE ? 0 : this.kernels[0].cols.symPrice[s]);
    return conversionRate(p(d.direct), p(d.inverse), p(d.inDirect), p(d.inInverse), p(d.outDirect), p(d.outInverse));
  }
}

describe('multipliers and conversions in random books', () => {
  it('WASM == TS bit for bit on every path; every converted row carries the rule applied to the final prices', () => {
    let converted = 0;
    let crossed = 0;
    let scaled = 0;
    fc.assert(
      fc.property(
        fc.record({
          portfolios: fc.integer({ min: 1, max: 20 }),
          symbols: fc.integer({ min: FIRST_INSTRUMENT + 1, max: 40 }),
          legs: fc.array(legs, { minLength: CONVERSIONS, maxLength: CONVERSIONS }),
          steps: fc.array(stepArb, { minLength: 5, maxLength: 60 }),
        }),
        ({ portfolios, symbols, legs: choices, steps }) => {
          const fleet = new Fleet(portfolios, symbols, choices);
          for (const s of steps) fleet.apply(s);
          const c = fleet.kernels[0].cols;
          for (let p = 0; p < fleet.rows.length; p++) {
            const r = fleet.rows[p];
            if (r.multiplier !== 1 && r.qty !== 0) scaled++;
            if (r.conv === NONE) {
              expect(c.posFx[p]).toBe(1);
              continue;
            }
            const expected = fleet.expectedRate(r.conv);
            expect(c.posFx[p]).toBe(expected);
            if (expected > 0 && r.qty !== 0) {
              converted++;
              expect(c.posMv[p]).toBe(r.qty * r.multiplier * c.posMark[p] * expected);
              const d = fleet.definitions[r.conv - CURRENCY_LEGS];
              const straight = (d.direct !== NONE && c.symPrice[d.direct] > 0) || (d.inverse !== NONE && c.symPrice[d.inverse] > 0);
              if (!straight) crossed++;
            }
          }
        },
      ),
      { numRuns: 150 },
    );
    expect(converted).toBeGreaterThan(50);
    expect(crossed).toBeGreaterThan(0);
    expect(scaled).toBeGreaterThan(50);
  });
});
