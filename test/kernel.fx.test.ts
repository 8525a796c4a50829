// Proves that both revaluation kernels (TypeScript and AssemblyScript/WASM) apply FX conversion in
// the same revalue() pass: a position converted by an fx symbol (EURUSD, just another symbol id,
// priced by ticks like any other) is valued mv = q*price*rate, upnl = (price-avg)*q*rate,
// cost = |q|*avg*rate, and a change of that rate revalues every position it converts and nothing
// else:
//  - worked examples on every kernel and path (WASM, TS auto, TS lists, TS sweep): a EUR position in
//    a USD book, an EURUSD tick dirties exactly the books holding EUR-quoted positions (and the one
//    holding EURUSD itself), instrument ticks still revalue at the current rate, a rate never seen
//    converts to 0 until it arrives, closed rows take the new rate without being counted, a row's fx
//    symbol is set once (same value again is a no-op), an fx-only batch can take the sweep;
//  - property over random books where some positions have an fx symbol (some fx symbols are traded
//    as instruments too, some are pure rates) and random batches mixing instrument and fx ticks:
//    after every step WASM == TS bit for bit, the sweep and the lists give the same columns and
//    counts (list order aside), and at the end the incrementally revalued columns equal, bit for
//    bit, those of fresh kernels built from the final book and fed the final prices (after the
//    positions, or before them as a shard restoring a snapshot does).

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { AssertionError } from '../src/assert.js';
import type { Kernel } from '../src/kernel/kernel.js';
import { NONE } from '../src/kernel/layout.js';
import { seeded } from '../src/sim/random.js';
import { ensureKernelWasm, expectSameMemory, expectSameUpToListOrder, kernelOf, sweepsOf, tick, type Flavour } from './support/kernelMemory.js';

beforeAll(ensureKernelWasm);

const AAPL = 0;
const SAP = 1;
const BMW = 2;
const EURUSD = 3;

function totals(k: Kernel, f: number): Record<string, number> {
  const c = k.cols;
  return { holdings: c.pfHoldings[f], costBasis: c.pfCostBasis[f], upnl: c.pfUpnl[f], gross: c.pfGross[f], maxAbsMv: c.pfMaxAbsMv[f], hwm: c.pfHwm[f] };
}

function row(k: Kernel, p: number): Record<string, number> {
  const c = k.cols;
  return { mark: c.posMark[p], fx: c.posFx[p], mv: c.posMv[p], upnl: c.posUpnl[p] };
}

function dirtyList(k: Kernel): number[] {
  return Array.from(k.cols.pfDirty.subarray(0, k.dirtyCount));
}

/**
 * Four USD books, before any tick: usd holds 10 AAPL (avg 90, traded at 100); mixed holds 4 SAP
 * quoted in EUR (avg 100, traded at 120, converted by EURUSD) and 2 AAPL (avg 100); eur is short 3
 * BMW quoted in EUR (avg 90, traded at 80, converted by EURUSD); fx holds 1000 EURUSD as an
 * instrument (avg 1), in USD, so it needs no conversion.
 */
function eurBook(flavour: Flavour) {
  const k = kernelOf(flavour);
  k.ensureSymbol(EURUSD);
  const usd = k.addPortfolio();
  const mixed = k.addPortfolio();
  const eur = k.addPortfolio();
  const fx = k.addPortfolio();
  const aapl = k.addPosition(usd, AAPL);
  k.setPosition(aapl, 10, 90, 100);
  const sap = k.addPosition(mixed, SAP);
  k.setPositionFx(sap, EURUSD);
  k.setPosition(sap, 4, 100, 120);
  const aapl2 = k.addPosition(mixed, AAPL);
  k.setPosition(aapl2, 2, 100, 100);
  const bmw = k.addPosition(eur, BMW);
  k.setPositionFx(bmw, EURUSD);
  k.setPosition(bmw, -3, 90, 80);
  const eurusd = k.addPosition(fx, EURUSD);
  k.setPosition(eurusd, 1000, 1, 1);
  for (const f of [usd, mixed, eur, fx]) k.recompute(f);
  return { k, usd, mixed, eur, fx, aapl, sap, aapl2, bmw, eurusd };
}

/** Lists dirty books in first-touched order (EURUSD's own rows, then the rows it converts, newest first); the sweep in row order. */
function expectDirty(flavour: Flavour, k: Kernel, listOrder: number[]): void {
  expect(dirtyList(k)).toEqual(flavour === 'always' ? [...listOrder].sort((a, b) => a - b) : listOrder);
}

describe.each<Flavour>(['wasm', 'auto', 'never', 'always'])('fx worked examples (%s)', (flavour) => {
  it('converts at 0 until the rate is seen; the first EURUSD tick revalues exactly the rows it converts', () => {
    const { k, usd, mixed, eur, fx, sap, bmw, eurusd } = eurBook(flavour);
    expect([k.fxSymbolOf(sap), k.fxRateOf(sap), k.fxSymbolOf(eurusd), k.fxRateOf(eurusd)]).toEqual([EURUSD, 0, NONE, 1]);
    expect(row(k, sap)).toEqual({ mark: 120, fx: 0, mv: 0, upnl: 0 });
    expect(totals(k, mixed)).toEqual({ holdings: 200, costBasis: 200, upnl: 0, gross: 200, maxAbsMv: 200, hwm: 200 });
    expect(totals(k, eur)).toEqual({ holdings: 0, costBasis: 0, upnl: 0, gross: 0, maxAbsMv: 0, hwm: 0 });

    expect(tick(k, [EURUSD, 1.25])).toBe(3);
    expectDirty(flavour, k, [fx, eur, mixed]);
    expect(k.touched).toBe(3);
    expect(row(k, sap)).toEqual({ mark: 120, fx: 1.25, mv: 600, upnl: 100 }); // 4*120*1.25, (120-100)*4*1.25
    expect(row(k, bmw)).toEqual({ mark: 80, fx: 1.25, mv: -300, upnl: 37.5 });
    expect(row(k, eurusd)).toEqual({ mark: 1.25, fx: 1, mv: 1250, upnl: 250 });
    expect(totals(k, mixed)).toEqual({ holdings: 800, costBasis: 700, upnl: 100, gross: 800, maxAbsMv: 600, hwm: 800 });
    expect(totals(k, eur)).toEqual({ holdings: -300, costBasis: 337.5, upnl: 37.5, gross: 300, maxAbsMv: 300, hwm: 0 });
    expect(totals(k, usd)).toEqual({ holdings: 1000, costBasis: 900, upnl: 100, gross: 1000, maxAbsMv: 1000, hwm: 1000 });
  });

  it('revalues instrument ticks at the current rate; rate ticks move only the books holding EUR-quoted positions', () => {
    const { k, usd, mixed, eur, fx, sap, aapl, bmw } = eurBook(flavour);
    tick(k, [EURUSD, 1.25]);

    expect(tick(k, [SAP, 125])).toBe(1);
    expect([dirtyList(k), k.touched]).toEqual([[mixed], 1]);
    expect(row(k, sap)).toEqual({ mark: 125, fx: 1.25, mv: 625, upnl: 125 });

    expect(tick(k, [AAPL, 110])).toBe(2);
    expect(dirtyList(k).sort()).toEqual([usd, mixed]);
    expect(row(k, sap)).toEqual({ mark: 125, fx: 1.25, mv: 625, upnl: 125 });

    expect(tick(k, [EURUSD, 1.5])).toBe(3);
    expectDirty(flavour, k, [fx, eur, mixed]);
    expect(row(k, sap)).toEqual({ mark: 125, fx: 1.5, mv: 750, upnl: 150 });
    expect(row(k, bmw)).toEqual({ mark: 80, fx: 1.5, mv: -360, upnl: 45 });
    expect(row(k, aapl)).toEqual({ mark: 110, fx: 1, mv: 1100, upnl: 200 });

    expect(tick(k, [EURUSD, 1.5])).toBe(0);
    expect(k.touched).toBe(0);

    // Both of a row's prices in one batch: the row ends at the last mark and the last rate.
    expect(tick(k, [SAP, 130], [EURUSD, 2], [BMW, 70])).toBe(3);
    expect(dirtyList(k).sort()).toEqual([mixed, eur, fx]);
    expect(k.touched).toBe(5); // SAP, EURUSD's own row, its two converted rows, BMW
    expect(row(k, sap)).toEqual({ mark: 130, fx: 2, mv: 1040, upnl: 240 });
    expect(row(k, bmw)).toEqual({ mark: 70, fx: 2, mv: -420, upnl: 120 });
    expect(totals(k, mixed)).toMatchObject({ holdings: 1260, costBasis: 1000, upnl: 260, gross: 1260, maxAbsMv: 1040 });
    expect(totals(k, eur)).toMatchObject({ holdings: -420, costBasis: 540, upnl: 120 });
  });

  it('gives a closed converted row the new rate without counting it or dirtying its book', () => {
    const { k, mixed, eur, fx, bmw } = eurBook(flavour);
    tick(k, [EURUSD, 1.25]);
    k.setPosition(bmw, 0, 90, 80);
    k.recompute(eur);
    expect(tick(k, [EURUSD, 1.5])).toBe(2);
    expectDirty(flavour, k, [fx, mixed]);
    expect([k.touched, k.fxRateOf(bmw), k.cols.posMv[bmw]]).toEqual([2, 1.5, 0]);
    expect(totals(k, eur)).toMatchObject({ holdings: 0, costBasis: 0, gross: 0 });
  });

  it('sets a row\'s fx symbol once: the rate already seen, same value again a no-op, a change refused', () => {
    const { k, mixed, sap } = eurBook(flavour);
    tick(k, [EURUSD, 1.25], [BMW, 80]);
    const late = k.addPosition(mixed, BMW);
    k.setPositionFx(late, EURUSD);
    expect(k.fxRateOf(late)).toBe(1.25);
    k.setPosition(late, 2, 75, 81);
    expect(row(k, late)).toEqual({ mark: 80, fx: 1.25, mv: 200, upnl: 12.5 });

    k.setPositionFx(sap, EURUSD);
    expect(k.cols.symFxCount[EURUSD]).toBe(3);
    expect(() => k.setPositionFx(sap, AAPL)).toThrow(AssertionError);
    expect(() => k.setPositionFx(sap, NONE)).toThrow(AssertionError);

    const plain = k.addPosition(mixed, AAPL);
    k.setPositionFx(plain, NONE);
    expect([k.fxSymbolOf(plain), k.fxRateOf(plain)]).toEqual([NONE, 1]);

    // A row converted after its first trade (off-contract but safe): its row is recomputed at once.
    const sapAgain = k.addPosition(mixed, SAP);
    k.setPosition(sapAgain, 1, 100, 120);
    k.setPositionFx(sapAgain, EURUSD);
    expect(row(k, sapAgain)).toEqual({ mark: 120, fx: 1.25, mv: 150, upnl: 25 });
  });
});

describe.each<Flavour>(['wasm', 'auto'])('fx path choice (%s)', (flavour) => {
  it('an fx-only batch converting many rows takes the sweep: the estimate counts converted rows', () => {
    const k = kernelOf(flavour);
    k.ensureSymbol(EURUSD);
    for (let i = 0; i < 40; i++) {
      const f = k.addPortfolio();
      const p = k.addPosition(f, SAP);
      k.setPositionFx(p, EURUSD);
      k.setPosition(p, 1 + i, 100, 120);
    }
    expect(tick(k, [EURUSD, 1.25])).toBe(40);
    expect([sweepsOf(k), k.touched]).toEqual([1, 40]);
    expect(k.cols.posMv[0]).toBe(150);
  });
});

// ---------------------------------------------------------------------------------------------
// Random books with fx: incremental == from scratch, WASM == TS, sweep == lists

/** Symbol ids below PURE_FX are only rates; ids in [PURE_FX, FX) are rates and instruments; the rest instruments. */
const PURE_FX = 2;
const FX = 5;

interface Row {
  pf: number;
  sym: number;
  fxSym: number;
  qty: number;
  avg: number;
  trade: number;
}

type Step =
  | { t: 'open'; pf: number; sym: number; fx: number | null; qty: number; avg: number; trade: number }
  | { t: 'trade'; pick: number; qty: number; avg: number; trade: number }
  | { t: 'tick'; entries: { fx: boolean; pick: number; price: number | null }[] }
  | { t: 'broad'; seed: number; share: number };

const instrumentPrice = fc.oneof(fc.constantFrom(10, 99.5, 120), fc.double({ min: 0.5, max: 1000, noNaN: true }));
const ratePrice = fc.oneof(fc.constantFrom(0.5, 1.25, 1.1), fc.double({ min: 0.1, max: 10, noNaN: true }));
const qty = fc.oneof(fc.constant(0), fc.integer({ min: -1000, max: 1000 }), fc.double({ min: -1000, max: 1000, noNaN: true }));

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('open' as const),
      pf: fc.nat(),
      sym: fc.nat(),
      fx: fc.option(fc.nat(), { nil: null, freq: 2 }),
      qty,
      avg: instrumentPrice,
      trade: instrumentPrice,
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('trade' as const), pick: fc.nat(), qty, avg: instrumentPrice, trade: instrumentPrice }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('tick' as const),
      entries: fc.array(
        fc.oneof(
          fc.record({ fx: fc.constant(true), pick: fc.nat(), price: fc.option(ratePrice, { nil: null }) }),
          fc.record({ fx: fc.constant(false), pick: fc.nat(), price: fc.option(instrumentPrice, { nil: null }) }),
        ),
        { minLength: 1, maxLength: 20 },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('broad' as const), seed: fc.integer(), share: fc.constantFrom(0.3, 1) }) },
);

const bookArb = fc.record({
  portfolios: fc.integer({ min: 1, max: 30 }),
  symbols: fc.integer({ min: FX + 1, max: 60 }),
  steps: fc.array(stepArb, { minLength: 5, maxLength: 50 }),
});

const FLAVOURS: readonly Flavour[] = ['wasm', 'auto', 'never', 'always'];

/** Kernels and a plain model of the book (rows, last trade prices) to rebuild it from scratch. */
class FxFleet {
  readonly kernels: Kernel[];
  readonly rows: Row[] = [];

  constructor(
    readonly portfolios: number,
    readonly symbols: number,
  ) {
    this.kernels = FLAVOURS.map((f) => {
      const k = kernelOf(f);
      k.ensureSymbol(symbols - 1);
      for (let i = 0; i < portfolios; i++) k.addPortfolio();
      return k;
    });
  }

  apply(s: Step): void {
    switch (s.t) {
      case 'open': {
        const r: Row = {
          pf: s.pf % this.portfolios,
          sym: PURE_FX + (s.sym % (this.symbols - PURE_FX)),
          fxSym: s.fx === null ? NONE : s.fx % FX,
          qty: s.qty,
          avg: s.avg,
          trade: s.trade,
        };
        this.rows.push(r);
        for (const k of this.kernels) {
          const p = k.addPosition(r.pf, r.sym);
          k.setPositionFx(p, r.fxSym);
          k.setPosition(p, r.qty, r.avg, r.trade);
          k.recompute(r.pf);
        }
        return this.check(false);
      }
      case 'trade': {
        if (this.rows.length === 0) return;
        const p = s.pick % this.rows.length;
        const r = this.rows[p];
        Object.assign(r, { qty: s.qty, avg: s.avg, trade: s.trade });
        for (const k of this.kernels) {
          k.setPosition(p, r.qty, r.avg, r.trade);
          k.recompute(r.pf);
        }
        return this.check(false);
      }
      case 'tick':
        return this.revalue(s.entries.map((e) => ({ sym: e.fx ? e.pick % FX : e.pick % this.symbols, price: e.price })));
      case 'broad': {
        const g = seeded(s.seed);
        const entries: { sym: number; price: number | null }[] = [];
        for (let sym = 0; sym < this.symbols; sym++) {
          if (g.next() >= s.share) continue;
          const r = g.next();
          entries.push({ sym, price: r < 0.1 ? null : sym < FX ? 0.5 + g.next() * 2 : Math.round(1 + g.next() * 50000) / 100 });
        }
        return this.revalue(entries);
      }
    }
  }

  /**
   * A null price repeats the symbol's price as of that entry (an unchanged tick), so no entry moves
   * a price back to 0 (never seen), which no real tick can do.
   */
  private revalue(entries: readonly { sym: number; price: number | null }[]): void {
    const latest = new Map<number, number>();
    const prices = entries.map((e) => {
      const price = e.price ?? latest.get(e.sym) ?? this.kernels[0].cols.symPrice[e.sym];
      latest.set(e.sym, price);
      return price;
    });
    const returned = this.kernels.map((k) => {
      entries.forEach((e, i) => {
        k.cols.batchSym[i] = e.sym;
        k.cols.batchPrice[i] = prices[i];
      });
      return k.revalue(entries.length);
    });
    expect(new Set(returned).size).toBe(1);
    this.check(true);
  }

  private check(afterTick: boolean): void {
    const [wasm, auto, lists, sweep] = this.kernels;
    expectSameMemory(wasm, auto);
    if (!afterTick) return;
    expectSameUpToListOrder(lists, auto);
    expectSameUpToListOrder(sweep, auto);
  }

  /**
   * A fresh kernel holding the final book: the same rows in the same order (so the same summation
   * order), fed every price seen in one batch after the positions, or written before them.
   */
  fromScratch(flavour: Flavour, pricesFirst: boolean): Kernel {
    const final = this.kernels[0].cols.symPrice;
    const k = kernelOf(flavour);
    k.ensureSymbol(this.symbols - 1);
    for (let i = 0; i < this.portfolios; i++) k.addPortfolio();
    if (pricesFirst) for (let s = 0; s < this.symbols; s++) k.cols.symPrice[s] = final[s];
    for (const r of this.rows) {
      const p = k.addPosition(r.pf, r.sym);
      k.setPositionFx(p, r.fxSym);
      k.setPosition(p, r.qty, r.avg, r.trade);
    }
    if (!pricesFirst) {
      let n = 0;
      for (let s = 0; s < this.symbols; s++) {
        if (final[s] === 0) continue;
        k.cols.batchSym[n] = s;
        k.cols.batchPrice[n++] = final[s];
      }
      k.revalue(n);
    }
    for (let f = 0; f < this.portfolios; f++) k.recompute(f);
    return k;
  }
}

/** Position and portfolio figures of two kernels over the same book, bit for bit (closed rows: zero values). */
function expectSameFigures(incremental: Kernel, scratch: Kernel, rows: number, portfolios: number): void {
  const a = incremental.cols;
  const b = scratch.cols;
  const bits = (name: string, i: number, x: number, y: number): void => {
    if (!Object.is(x, y)) expect.fail(`${name}[${i}]: incremental ${x} vs from scratch ${y}`);
  };
  for (let p = 0; p < rows; p++) {
    bits('posQty', p, a.posQty[p], b.posQty[p]);
    bits('posMark', p, a.posMark[p], b.posMark[p]);
    bits('posFx', p, a.posFx[p], b.posFx[p]);
    if (a.posQty[p] === 0) {
      expect([a.posMv[p] === 0, b.posMv[p] === 0]).toEqual([true, true]);
      continue;
    }
    bits('posMv', p, a.posMv[p], b.posMv[p]);
    bits('posUpnl', p, a.posUpnl[p], b.posUpnl[p]);
  }
  for (let f = 0; f < portfolios; f++) {
    bits('pfHoldings', f, a.pfHoldings[f], b.pfHoldings[f]);
    bits('pfCostBasis', f, a.pfCostBasis[f], b.pfCostBasis[f]);
    bits('pfUpnl', f, a.pfUpnl[f], b.pfUpnl[f]);
    bits('pfGross', f, a.pfGross[f], b.pfGross[f]);
    bits('pfMaxAbsMv', f, a.pfMaxAbsMv[f], b.pfMaxAbsMv[f]);
  }
}

describe('fx in random books', () => {
  it('incremental revalue equals a from-scratch build at the final prices; WASM == TS; sweep == lists', () => {
    let converted = 0;
    let unseenRates = 0;
    let sweeps = 0;
    fc.assert(
      fc.property(bookArb, ({ portfolios, symbols, steps }) => {
        const fleet = new FxFleet(portfolios, symbols);
        for (const s of steps) fleet.apply(s);
        const [wasm, auto] = fleet.kernels;
        for (const flavour of ['wasm', 'auto'] as const) {
          for (const pricesFirst of [false, true]) {
            const scratch = fleet.fromScratch(flavour, pricesFirst);
            expectSameFigures(flavour === 'wasm' ? wasm : auto, scratch, fleet.rows.length, portfolios);
          }
        }
        const c = auto.cols;
        for (let p = 0; p < fleet.rows.length; p++) {
          if (c.posFxSym[p] === NONE || c.posQty[p] === 0) continue;
          if (c.posFx[p] === 0) unseenRates++;
          else converted++;
        }
        sweeps += sweepsOf(fleet.kernels[3]);
      }),
      { numRuns: 150 },
    );
    // The properties above must have met converted rows, rates never seen, and the sweep.
    expect(converted).toBeGreaterThan(100);
    expect(unseenRates).toBeGreaterThan(0);
    expect(sweeps).toBeGreaterThan(0);
  });
});
