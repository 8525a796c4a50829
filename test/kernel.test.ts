// Proves that the AssemblyScript/WASM revaluation kernel (assembly/kernel.ts behind WasmBackend)
// computes exactly what the TypeScript reference kernel (jsBackend.ts) computes:
//  - differential property: random books (portfolios, symbols and positions added mid-sequence past
//    the initial capacities, so memory is re-laid out and the WASM memory grows between ticks),
//    random trades (quantity 0 included), limits (NaN included), cash, breach re-arming, direct
//    recomputes and tick batches (repeated symbols, unchanged prices, narrow and broad batches);
//    some positions are converted by an fx symbol (the first few symbol ids, which are instruments
//    too) and some batches are mostly fx ticks (test/kernel.fx.test.ts has the fx examples): after
//    every step the whole kernel memory (header and every column) of the two kernels is bit-for-bit
//    equal (NaN payloads aside), as are the returned values, and both took the same path;
//  - the portfolio sweep (dense batches) and the symbol lists (sparse batches) give the same columns,
//    counts and dirty/breach sets; only the order of the dirty and breach lists may differ;
//  - hand-worked examples on every kernel: exact market values, P&L and sums, limit priority, NaN
//    limits, a breach latched once and re-armed by clearBreach, closed rows;
//  - watched first (revalueWatched, then revalueRest): with the rest after every batch, every row and
//    total and the high-water marks and breaches are the bits of one revalue pass, on both kernels and
//    both paths, for random watch lists; with the rest deferred over several batches, rows and totals
//    are those bits and the high-water mark never passes the one-pass mark; the same with the rest
//    run in slices of a few rows between batches (Kernel.revalueRestSlice: a batch mid-lap makes the
//    lap whole again), wasm and js slices equal memory for memory;
//  - the module owns no part of its memory (no data segments) and imports nothing.
// Needs dist/assembly/kernel.wasm: built here if missing or older than assembly/kernel.ts.

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { type Kernel } from '../src/kernel/kernel.js';
import { BREACH_MAX_DRAWDOWN, BREACH_MAX_LOSS, BREACH_MAX_WEIGHT, FLAG_BREACH_LATCHED, NONE, columnSpecs, type ColumnName } from '../src/kernel/layout.js';
import { seeded } from '../src/sim/random.js';
import { ensureKernelWasm, expectSameMemory, expectSameUpToListOrder, kernelOf, limits, sweepsOf, tick, wasmFile, type Flavour } from './support/kernelMemory.js';

beforeAll(ensureKernelWasm);

// ---------------------------------------------------------------------------------------------
// Random books and steps

/** mulberry32: bulk steps draw their many values from one seed, so fast-check can shrink them. */
function random(seed: number): () => number {
  const g = seeded(seed);
  return () => g.next();
}

type Step =
  | { t: 'portfolios'; count: number; seed: number }
  | { t: 'symbols'; count: number }
  | { t: 'positions'; count: number; seed: number }
  | { t: 'grow'; pf: number; sym: number; pos: number; seed: number }
  | { t: 'trade'; pick: number; qty: number; avg: number; price: number }
  | { t: 'limits'; pick: number; loss: number; dd: number; weight: number }
  | { t: 'clear'; pick: number }
  | { t: 'cash'; pick: number; cash: number; realized: number }
  | { t: 'tick'; entries: { pick: number; price: number | null }[] }
  | { t: 'fxtick'; entries: { fx: boolean; pick: number; price: number | null }[] }
  | { t: 'broad'; seed: number; share: number }
  | { t: 'recompute'; pick: number };

const price = fc.oneof(fc.constantFrom(1, 10, 99.5, 100, 250.25), fc.double({ min: 0.01, max: 1000, noNaN: true }));
const quantity = fc.oneof(fc.constant(0), fc.integer({ min: -1000, max: 1000 }), fc.double({ min: -1000, max: 1000, noNaN: true }));
const rate = fc.oneof(fc.constantFrom(0.5, 1, 1.25), fc.double({ min: 0.2, max: 5, noNaN: true }));
const optional = (a: fc.Arbitrary<number>): fc.Arbitrary<number> => fc.oneof(fc.constant(Number.NaN), a);

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ t: fc.constant('portfolios' as const), count: fc.integer({ min: 1, max: 40 }), seed: fc.integer() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('symbols' as const), count: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('positions' as const), count: fc.integer({ min: 1, max: 200 }), seed: fc.integer() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('trade' as const), pick: fc.nat(), qty: quantity, avg: price, price }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('limits' as const),
      pick: fc.nat(),
      loss: optional(fc.double({ min: 0, max: 5000, noNaN: true })),
      dd: optional(fc.double({ min: 0, max: 60, noNaN: true })),
      weight: optional(fc.double({ min: 5, max: 100, noNaN: true })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('clear' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('cash' as const), pick: fc.nat(), cash: fc.double({ min: -1e5, max: 1e5, noNaN: true }), realized: fc.double({ min: -1e4, max: 1e4, noNaN: true }) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ t: fc.constant('tick' as const), entries: fc.array(fc.record({ pick: fc.nat(), price: fc.option(price, { nil: null }) }), { minLength: 1, maxLength: 40 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('fxtick' as const),
      entries: fc.array(
        fc.oneof(
          { weight: 3, arbitrary: fc.record({ fx: fc.constant(true), pick: fc.nat(), price: fc.option(rate, { nil: null }) }) },
          { weight: 1, arbitrary: fc.record({ fx: fc.constant(false), pick: fc.nat(), price: fc.option(price, { nil: null }) }) },
        ),
        { minLength: 1, maxLength: 12 },
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('broad' as const), seed: fc.integer(), share: fc.constantFrom(0.3, 0.6, 1) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('recompute' as const), pick: fc.nat() }) },
);

/** Grows the book past every initial capacity (1024 positions, 256 portfolios, 256 symbols). */
const grow = fc.record({
  t: fc.constant('grow' as const),
  pf: fc.integer({ min: 257, max: 320 }),
  sym: fc.integer({ min: 257, max: 320 }),
  pos: fc.integer({ min: 1025, max: 1400 }),
  seed: fc.integer(),
});

/** Steps, a growth past the initial capacities, more steps, so growth lands between ticks. */
const scenario = fc
  .tuple(fc.array(step, { minLength: 5, maxLength: 30 }), grow, fc.array(step, { minLength: 5, maxLength: 30 }))
  .map(([before, g, after]) => [...before, g, ...after]);

/** Symbol ids 0..FX_SYMBOLS-1 also serve as fx rates (they are instruments too). */
const FX_SYMBOLS = 6;

/** Drives several kernels through the same steps; every random draw happens once, here. */
class Fleet {
  /**
   * kernels in `split` take a batch as revalueWatched and (restEachBatch) revalueRest; the others as
   * one revalue. With the rest deferred, anything else than a tick runs it first, as the shard does.
   */
  constructor(
    readonly kernels: readonly Kernel[],
    private readonly split: ReadonlySet<Kernel> = new Set(),
    private readonly restEachBatch = true,
  ) {}

  /** Runs revalueRest on the split kernels (their dirty counts; the others give 0). */
  settle(): number[] {
    return this.all((k) => (this.split.has(k) && k.pendingCount > 0 ? k.revalueRest() : 0));
  }

  watch(pick: number, on: boolean): void {
    if (this.first.portfolios === 0) return;
    this.settle();
    this.all((k) => k.setWatched(pick % k.portfolios, on));
  }

  private get first(): Kernel {
    return this.kernels[0];
  }

  private all(f: (k: Kernel) => number | void): number[] {
    return this.kernels.map((k) => f(k) ?? 0);
  }

  /** Applies a step; returns what each kernel returned (revalue/recompute), or [] for writes. */
  apply(s: Step): number[] {
    if (this.split.size > 0 && s.t !== 'tick' && s.t !== 'fxtick' && s.t !== 'broad') this.settle();
    switch (s.t) {
      case 'portfolios':
        return this.addPortfolios(s.count, random(s.seed));
      case 'symbols':
        return this.addSymbols(s.count);
      case 'positions':
        return this.addPositions(s.count, random(s.seed));
      case 'grow':
        return this.grow(s);
      case 'trade':
        return this.trade(s);
      case 'limits':
        return this.onPortfolio(s.pick, (k, f) => k.setLimits(f, s.loss, s.dd, s.weight));
      case 'clear':
        return this.onPortfolio(s.pick, (k, f) => k.clearBreach(f));
      case 'cash':
        return this.onPortfolio(s.pick, (k, f) => {
          k.cols.pfCash[f] = s.cash;
          k.cols.pfRealized[f] = s.realized;
        });
      case 'tick':
        return this.tick(s.entries.map((e) => ({ sym: e.pick % Math.max(1, this.first.symbols), price: e.price })));
      case 'fxtick': {
        const fxs = Math.min(FX_SYMBOLS, this.first.symbols);
        return this.tick(s.entries.map((e) => ({ sym: e.pick % Math.max(1, e.fx ? fxs : this.first.symbols), price: e.price })));
      }
      case 'broad':
        return this.broad(s.share, random(s.seed));
      case 'recompute':
        return this.first.portfolios === 0 ? [] : this.all((k) => k.recompute(s.pick % k.portfolios));
    }
  }

  private addPortfolios(count: number, rnd: () => number): number[] {
    for (let i = 0; i < count; i++) {
      const lim = [rnd() < 0.5 ? NaN : rnd() * 5000, rnd() < 0.5 ? NaN : rnd() * 60, rnd() < 0.5 ? NaN : 5 + rnd() * 95];
      const cash = Math.round(rnd() * 1e5);
      this.all((k) => {
        const f = k.addPortfolio();
        k.setLimits(f, lim[0], lim[1], lim[2]);
        k.cols.pfCash[f] = cash;
      });
    }
    return [];
  }

  private addSymbols(count: number): number[] {
    const last = this.first.symbols + count - 1;
    return this.all((k) => k.ensureSymbol(last));
  }

  private addPositions(count: number, rnd: () => number): number[] {
    if (this.first.portfolios === 0) this.addPortfolios(1, rnd);
    if (this.first.symbols === 0) this.addSymbols(1);
    for (let i = 0; i < count; i++) {
      const f = Math.floor(rnd() * this.first.portfolios);
      const s = Math.floor(rnd() * this.first.symbols);
      const r = rnd();
      const qty = r < 0.2 ? 0 : r < 0.6 ? Math.round((rnd() - 0.5) * 2000) : (rnd() - 0.5) * 2000;
      const avg = 1 + rnd() * 500;
      const trade = 1 + rnd() * 500;
      // A third of the rows are converted by an fx symbol (its price so far, 0 if never seen; some
      // set again to the same symbol, a no-op). The others keep a fixed rate, written directly and
      // varied so its place in each product is pinned too.
      const fxSym = rnd() < 0.35 ? Math.floor(rnd() * Math.min(FX_SYMBOLS, this.first.symbols)) : NONE;
      const again = rnd() < 0.2;
      const fx = fxSym === NONE && rnd() < 0.3 ? 0.5 + rnd() * 1.5 : 1;
      this.all((k) => {
        const p = k.addPosition(f, s);
        if (fxSym !== NONE) k.setPositionFx(p, fxSym);
        else k.cols.posFx[p] = fx;
        k.setPosition(p, qty, avg, trade);
        if (again) k.setPositionFx(p, fxSym);
      });
    }
    return [];
  }

  private grow(s: Extract<Step, { t: 'grow' }>): number[] {
    const rnd = random(s.seed);
    this.addPortfolios(Math.max(0, s.pf - this.first.portfolios), rnd);
    this.addSymbols(Math.max(0, s.sym - this.first.symbols));
    this.addPositions(Math.max(0, s.pos - this.first.positions), rnd);
    return [];
  }

  private trade(s: Extract<Step, { t: 'trade' }>): number[] {
    if (this.first.positions === 0) return [];
    return this.all((k) => k.setPosition(s.pick % k.positions, s.qty, s.avg, s.price));
  }

  private onPortfolio(pick: number, f: (k: Kernel, row: number) => void): number[] {
    if (this.first.portfolios === 0) return [];
    return this.all((k) => f(k, pick % k.portfolios));
  }

  /** A null price repeats the symbol's current price (an unchanged tick). */
  private tick(entries: readonly { sym: number; price: number | null }[]): number[] {
    if (this.first.symbols === 0) return [];
    const n = Math.min(entries.length, this.first.batchCapacity);
    return this.all((k) => {
      for (let i = 0; i < n; i++) {
        const e = entries[i];
        k.cols.batchSym[i] = e.sym;
        k.cols.batchPrice[i] = e.price ?? k.cols.symPrice[e.sym];
      }
      if (!this.split.has(k)) return k.revalue(n);
      const watched = k.revalueWatched(n);
      return this.restEachBatch ? watched + k.revalueRest() : watched;
    });
  }

  /** Ticks a share of all symbols in one batch (the sweep path), with some repeats and unchanged prices. */
  private broad(share: number, rnd: () => number): number[] {
    const entries: { sym: number; price: number | null }[] = [];
    for (let s = 0; s < this.first.symbols && entries.length < this.first.batchCapacity; s++) {
      if (rnd() >= share) continue;
      const r = rnd();
      entries.push({ sym: s, price: r < 0.1 ? null : Math.round(1 + rnd() * 50000) / 100 });
      if (r > 0.95 && entries.length < this.first.batchCapacity) entries.push({ sym: s, price: 1 + rnd() * 500 });
    }
    return this.tick(entries);
  }
}

// ---------------------------------------------------------------------------------------------

describe('WASM kernel equals the TypeScript kernel bit for bit', () => {
  it('after every step of random books, trades and tick batches', () => {
    let sweeps = 0;
    let revalues = 0;
    let grewWasmMemory = 0;
    fc.assert(
      fc.property(scenario, (steps) => {
        const wasm = kernelOf('wasm');
        const js = kernelOf('auto');
        const fleet = new Fleet([wasm, js]);
        const initialBytes = wasm.cols.posQty.buffer.byteLength;
        for (const s of steps) {
          const [w, j] = fleet.apply(s);
          expect(w).toBe(j);
          expectSameMemory(wasm, js);
          expect(sweepsOf(wasm)).toBe(sweepsOf(js));
          if (s.t === 'tick' || s.t === 'fxtick' || s.t === 'broad') revalues++;
        }
        expect(wasm.positions).toBeGreaterThan(1024);
        expect(wasm.portfolios).toBeGreaterThan(256);
        expect(wasm.symbols).toBeGreaterThan(256);
        if (wasm.cols.posQty.buffer.byteLength > initialBytes) grewWasmMemory++;
        sweeps += sweepsOf(wasm);
      }),
      { numRuns: 200 },
    );
    // Both paths must have run, or the equality above proves less than it claims.
    expect(sweeps).toBeGreaterThan(0);
    expect(revalues).toBeGreaterThan(sweeps);
    expect(grewWasmMemory).toBe(200);
  });
});

describe('portfolio sweep and symbol lists', () => {
  it('give the same columns, counts and dirty/breach sets; only list order may differ', () => {
    fc.assert(
      fc.property(scenario, (steps) => {
        const lists = kernelOf('never');
        const sweep = kernelOf('always');
        const wasm = kernelOf('wasm');
        const fleet = new Fleet([lists, sweep, wasm]);
        for (const s of steps) {
          const [l, sw, w] = fleet.apply(s);
          expect(sw).toBe(l);
          expect(w).toBe(l);
          expectSameUpToListOrder(sweep, lists);
          expectSameUpToListOrder(wasm, lists);
        }
        expect(sweepsOf(lists)).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('orders a sweep batch by portfolio row and a list batch by first touch', () => {
    const lists = kernelOf('never');
    const sweep = kernelOf('always');
    for (const k of [lists, sweep]) {
      const a = k.addPortfolio();
      const b = k.addPortfolio();
      k.ensureSymbol(1);
      k.setPosition(k.addPosition(a, 1), 1, 10, 10);
      k.setPosition(k.addPosition(b, 0), 1, 10, 10);
      k.cols.batchSym.set([0, 1]);
      k.cols.batchPrice.set([11, 12]);
      expect(k.revalue(2)).toBe(2);
    }
    expect(Array.from(lists.cols.pfDirty.subarray(0, 2))).toEqual([1, 0]);
    expect(Array.from(sweep.cols.pfDirty.subarray(0, 2))).toEqual([0, 1]);
  });
});

describe('watched first: revalueWatched then revalueRest', () => {
  /** Steps with watch-list changes among them (a watch change runs the rest first, as the shard does). */
  const watchStep = fc.record({ t: fc.constant('watch' as const), pick: fc.nat(), on: fc.boolean() });
  const watchedScenario = fc
    .tuple(fc.array(fc.oneof({ weight: 6, arbitrary: step }, { weight: 2, arbitrary: watchStep }), { minLength: 5, maxLength: 30 }), grow, fc.array(fc.oneof({ weight: 6, arbitrary: step }, { weight: 3, arbitrary: watchStep }), { minLength: 5, maxLength: 30 }))
    .map(([before, g, after]) => [...before, g, ...after]);
  type WatchedStep = Step | { t: 'watch'; pick: number; on: boolean };

  /** Columns that hold bookkeeping of the pass taken, not figures. */
  const bookkeeping = new Set<ColumnName>(['pfDirty', 'pfBreach', 'pfStamp', 'symPendingList', 'symPending']);

  /** First column entry where a and b differ (NaN == NaN), outside `skip`. */
  function firstColumnDifference(a: Kernel, b: Kernel, skip: ReadonlySet<ColumnName>): string | undefined {
    for (const spec of columnSpecs) {
      if (skip.has(spec.name)) continue;
      const rows = spec.group === 'pos' ? a.positions : spec.group === 'pf' ? a.portfolios : spec.group === 'sym' ? a.symbols : 0;
      const x = a.cols[spec.name];
      const y = b.cols[spec.name];
      for (let i = 0; i < rows; i++) if (!Object.is(x[i], y[i]) && !(Number.isNaN(x[i]) && Number.isNaN(y[i]))) return `${spec.name}[${i}]: ${x[i]} vs ${y[i]}`;
    }
    return undefined;
  }

  function run(fleet: Fleet, s: WatchedStep): number[] {
    if (s.t === 'watch') {
      fleet.watch(s.pick, s.on);
      return [];
    }
    return fleet.apply(s);
  }

  it('with the rest after every batch: the bits of one pass, on both kernels and both paths', () => {
    let watchedDirty = 0;
    fc.assert(
      fc.property(watchedScenario, (steps) => {
        const one = kernelOf('auto');
        const wasm = kernelOf('wasm');
        const js = kernelOf('auto');
        const lists = kernelOf('never');
        const sweep = kernelOf('always');
        const fleet = new Fleet([one, wasm, js, lists, sweep], new Set([wasm, js, lists, sweep]));
        for (const s of steps) {
          const [o, w, j, l, sw] = run(fleet, s);
          expect(w).toBe(j);
          expectSameMemory(wasm, js);
          expect([l, sw]).toEqual([w, w]);
          for (const k of [wasm, lists, sweep]) expect(firstColumnDifference(k, one, bookkeeping)).toBeUndefined();
          if (s.t === 'tick' || s.t === 'fxtick' || s.t === 'broad') {
            // Dirty once: the watched pass and the rest never both list a portfolio.
            expect(w).toBe(o);
            watchedDirty += wasm.watchedCount > 0 ? 1 : 0;
          }
        }
      }),
      { numRuns: 40 },
    );
    expect(watchedDirty).toBeGreaterThan(0);
  });

  it('with the rest deferred over batches: rows and totals are the one-pass bits, the high-water mark never above', () => {
    const figures = new Set<ColumnName>([...bookkeeping, 'pfHwm', 'pfFlags', 'pfBreachKind', 'pfBreachValue']);
    fc.assert(
      fc.property(watchedScenario, (steps) => {
        const one = kernelOf('auto');
        const wasm = kernelOf('wasm');
        const js = kernelOf('auto');
        const fleet = new Fleet([one, wasm, js], new Set([wasm, js]), false);
        for (const s of steps) {
          run(fleet, s);
          expectSameMemory(wasm, js);
          if (wasm.pendingCount > 0) continue;
          expect(firstColumnDifference(wasm, one, figures)).toBeUndefined();
          for (let f = 0; f < one.portfolios; f++) expect(wasm.cols.pfHwm[f]).toBeLessThanOrEqual(one.cols.pfHwm[f]);
        }
        fleet.settle();
        expectSameMemory(wasm, js);
        expect(firstColumnDifference(wasm, one, figures)).toBeUndefined();
      }),
      { numRuns: 30 },
    );
  });

  it('with the rest in slices between batches (revalueRestSlice): wasm equals js, and once nothing is pending the one-pass bits, the high-water mark never above', () => {
    const figures = new Set<ColumnName>([...bookkeeping, 'pfHwm', 'pfFlags', 'pfBreachKind', 'pfBreachValue']);
    /** After each step, this many slices of this many rows (a lap is cut anywhere, batches land mid-lap). */
    const slicing = fc.array(fc.record({ slices: fc.integer({ min: 0, max: 4 }), rows: fc.integer({ min: 1, max: 300 }) }), { minLength: 80, maxLength: 80 });
    let cleared = 0;
    let midLap = 0;
    fc.assert(
      fc.property(watchedScenario, slicing, (steps, cuts) => {
        const one = kernelOf('auto');
        const wasm = kernelOf('wasm');
        const js = kernelOf('auto');
        const fleet = new Fleet([one, wasm, js], new Set([wasm, js]), false);
        steps.forEach((s, i) => {
          run(fleet, s);
          const cut = cuts[i % cuts.length];
          for (let k = 0; k < cut.slices && wasm.pendingCount > 0; k++) {
            const before = wasm.pendingCount;
            expect(wasm.revalueRestSlice(cut.rows)).toBe(js.revalueRestSlice(cut.rows));
            expectSameMemory(wasm, js);
            if (wasm.pendingCount === 0 && before > 0) cleared++;
            else midLap++;
          }
          if (wasm.pendingCount > 0) return;
          expect(firstColumnDifference(wasm, one, figures)).toBeUndefined();
          for (let f = 0; f < one.portfolios; f++) expect(wasm.cols.pfHwm[f]).toBeLessThanOrEqual(one.cols.pfHwm[f]);
        });
        fleet.settle();
        expectSameMemory(wasm, js);
        expect(firstColumnDifference(wasm, one, figures)).toBeUndefined();
      }),
      { numRuns: 30 },
    );
    // Both ends were reached: passes finished by slices, and slices that left the lap unfinished.
    expect([cleared > 0, midLap > 0]).toEqual([true, true]);
  });

  it('a slice reads about rowsMax rows, resumes where the last stopped, and a batch mid-lap makes the lap whole again', () => {
    for (const flavour of ['wasm', 'always'] as const) {
      const k = kernelOf(flavour);
      k.ensureSymbol(AAPL);
      const rows: number[] = [];
      for (let f = 0; f < 10; f++) {
        k.addPortfolio();
        // Two rows each, so the list walk (one row per portfolio, then its two rows) costs more than a slice.
        rows.push(k.addPosition(f, AAPL));
        k.ensureSymbol(AAPL + 1);
        const other = k.addPosition(f, AAPL + 1);
        k.setPosition(rows[f], 10, 100, 100);
        k.setPosition(other, 1, 100, 100);
        k.recompute(f);
      }
      k.setWatched(0, true);
      const batch = (price: number): void => {
        k.cols.batchSym[0] = AAPL;
        k.cols.batchPrice[0] = price;
        k.revalueWatched(1);
      };
      batch(110);
      // 9 unwatched portfolios of 2 rows; slices of 4 rows sweep 2 portfolios (row 0 is watched: skipped, not read).
      expect(k.revalueRestSlice(4)).toBe(2);
      expect([k.cols.posMv[rows[1]], k.cols.posMv[rows[2]], k.cols.posMv[rows[3]], k.pendingCount]).toEqual([1100, 1100, 1000, 1]);
      expect(k.revalueRestSlice(4)).toBe(2);
      expect(k.cols.posMv[rows[4]]).toBe(1100);
      // A batch now: the portfolios already swept must see 120 too, so the lap is whole again from row 5.
      batch(120);
      let slices = 0;
      while (k.pendingCount > 0) {
        k.revalueRestSlice(4);
        slices++;
      }
      // Rows 5-6, 7-8, 9 (a slice stops at the last portfolio row), then 0-2 (the watched row 0 skipped
      // without reading its rows) and 3-4: ten portfolio rows.
      expect(slices).toBe(5);
      for (let f = 1; f < 10; f++) expect([f, k.cols.posMv[rows[f]], k.cols.pfHoldings[f]]).toEqual([f, 1200, 1200 + 100]);
    }
  });

  it('revalues a watched portfolio at once and the others only in the rest pass', () => {
    for (const flavour of ['wasm', 'never', 'always'] as const) {
      const k = kernelOf(flavour);
      const watched = k.addPortfolio();
      const other = k.addPortfolio();
      k.ensureSymbol(AAPL);
      const w = k.addPosition(watched, AAPL);
      k.setPosition(w, 10, 100, 100);
      const o = k.addPosition(other, AAPL);
      k.setPosition(o, 10, 100, 100);
      k.recompute(watched);
      k.recompute(other);
      k.setWatched(watched, true);
      k.cols.batchSym[0] = AAPL;
      k.cols.batchPrice[0] = 110;
      expect(k.revalueWatched(1)).toBe(1);
      expect([k.cols.pfDirty[0], k.cols.posMv[w], k.cols.posMv[o], k.pendingCount]).toEqual([watched, 1100, 1000, 1]);
      expect(k.revalueRest()).toBe(1);
      expect([k.cols.pfDirty[0], k.cols.posMv[o], k.cols.pfHoldings[other], k.pendingCount]).toEqual([other, 1100, 1100, 0]);
      expect(() => k.revalue(0)).not.toThrow();
      k.setWatched(watched, false);
      expect(k.watchedCount).toBe(0);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-worked examples

const AAPL = 0;
const MSFT = 1;

/** One portfolio with 1000 cash: 10 AAPL bought at 100 and 5 MSFT sold short at 200. */
function twoPositions(flavour: Flavour): { k: Kernel; f: number; aapl: number; msft: number } {
  const k = kernelOf(flavour);
  const f = k.addPortfolio();
  k.cols.pfCash[f] = 1000;
  k.ensureSymbol(MSFT);
  const aapl = k.addPosition(f, AAPL);
  k.setPosition(aapl, 10, 100, 100);
  const msft = k.addPosition(f, MSFT);
  k.setPosition(msft, -5, 200, 200);
  k.recompute(f);
  return { k, f, aapl, msft };
}

function totals(k: Kernel, f: number): Record<string, number> {
  const c = k.cols;
  return { holdings: c.pfHoldings[f], costBasis: c.pfCostBasis[f], upnl: c.pfUpnl[f], gross: c.pfGross[f], maxAbsMv: c.pfMaxAbsMv[f], hwm: c.pfHwm[f] };
}

describe.each<Flavour>(['wasm', 'auto', 'always'])('hand-worked examples (%s)', (flavour) => {
  it('revalues two positions and sums the portfolio exactly', () => {
    const { k, f, aapl, msft } = twoPositions(flavour);
    expect(totals(k, f)).toEqual({ holdings: 0, costBasis: 2000, upnl: 0, gross: 2000, maxAbsMv: 1000, hwm: 1000 });
    expect(tick(k, [AAPL, 110], [MSFT, 190])).toBe(1);
    const c = k.cols;
    expect([c.posMark[aapl], c.posMv[aapl], c.posUpnl[aapl]]).toEqual([110, 1100, 100]);
    expect([c.posMark[msft], c.posMv[msft], c.posUpnl[msft]]).toEqual([190, -950, 50]);
    expect(totals(k, f)).toEqual({ holdings: 150, costBasis: 2000, upnl: 150, gross: 2050, maxAbsMv: 1100, hwm: 1150 });
    expect([k.dirtyCount, c.pfDirty[0], k.touched, k.breachCount]).toEqual([1, f, 2, 0]);
  });

  it('skips unchanged prices and counts a symbol repeated in a batch once per change', () => {
    const { k } = twoPositions(flavour);
    expect(tick(k, [AAPL, 100], [MSFT, 200])).toBe(1); // first prices seen: marks equal, still a change
    expect(tick(k, [AAPL, 100], [MSFT, 200])).toBe(0);
    expect([k.dirtyCount, k.touched]).toEqual([0, 0]);
    expect(tick(k, [AAPL, 101], [AAPL, 101], [AAPL, 102])).toBe(1);
    expect(k.touched).toBe(2);
    expect(k.cols.posMv[0]).toBe(1020);
  });

  it('latches a breach once and clearBreach re-arms it', () => {
    const { k, f } = twoPositions(flavour);
    k.setLimits(f, null, null, 50);
    tick(k, [MSFT, 180]); // weight 1000 / 1900 = 52.6%
    expect([k.breachCount, k.cols.pfBreach[0], k.cols.pfBreachKind[f]]).toEqual([1, f, BREACH_MAX_WEIGHT]);
    expect(k.cols.pfBreachValue[f]).toBeCloseTo((1000 / 1900) * 100, 12);
    expect(k.cols.pfFlags[f] & FLAG_BREACH_LATCHED).toBe(FLAG_BREACH_LATCHED);

    tick(k, [MSFT, 170]); // still 54%, but latched: not reported again, value kept
    expect([k.dirtyCount, k.breachCount]).toEqual([1, 0]);
    expect(k.cols.pfBreachValue[f]).toBeCloseTo((1000 / 1900) * 100, 12);

    k.clearBreach(f);
    tick(k, [MSFT, 160]); // 1000 / 1800 = 55.6%
    expect([k.breachCount, k.cols.pfBreach[0]]).toEqual([1, f]);
    expect(k.cols.pfBreachValue[f]).toBeCloseTo((1000 / 1800) * 100, 12);
  });

  it('never breaches NaN limits and ranks max loss over drawdown over weight', () => {
    const { k, f } = twoPositions(flavour);
    tick(k, [AAPL, 50]); // upnl -500, equity 500 against a 1000 high-water mark, weight 2/3
    expect(k.breachCount).toBe(0);

    k.setLimits(f, 400, 10, 50);
    tick(k, [MSFT, 201]); // total return -500 - 5 on the short
    expect([k.breachCount, k.cols.pfBreachKind[f], k.cols.pfBreachValue[f]]).toEqual([1, BREACH_MAX_LOSS, -505]);

    k.clearBreach(f);
    k.setLimits(f, null, 10, 50);
    tick(k, [MSFT, 202]); // equity 1000 + 500 - 1010 = 490: drawdown 51%
    expect([k.breachCount, k.cols.pfBreachKind[f]]).toEqual([1, BREACH_MAX_DRAWDOWN]);
    expect(k.cols.pfBreachValue[f]).toBeCloseTo(51, 12);
  });

  it('moves the mark of a closed row without counting or dirtying it', () => {
    const { k, f, aapl } = twoPositions(flavour);
    k.setPosition(aapl, 0, 100, 100);
    k.recompute(f);
    expect(tick(k, [AAPL, 120])).toBe(0);
    expect([k.cols.posMark[aapl], k.cols.posMv[aapl], k.touched]).toEqual([120, 0, 0]);
    expect(totals(k, f)).toMatchObject({ holdings: -1000, gross: 1000, costBasis: 1000 });
  });
});

describe('WASM module', () => {
  /** Section ids of a WebAssembly binary (after the 8-byte preamble; sizes are LEB128). */
  function sectionIds(bytes: Uint8Array): number[] {
    const ids: number[] = [];
    for (let at = 8; at < bytes.length; ) {
      ids.push(bytes[at++]);
      let size = 0;
      for (let shift = 0; ; shift += 7) {
        const b = bytes[at++];
        size += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) break;
      }
      at += size;
    }
    return ids;
  }

  it('has no data segments (the header at byte 0 is ours) and no imports', () => {
    const bytes = readFileSync(wasmFile);
    const module = new WebAssembly.Module(bytes);
    expect(sectionIds(bytes)).not.toContain(11);
    expect(WebAssembly.Module.imports(module)).toEqual([]);
    expect(WebAssembly.Module.exports(module).map((e) => e.name)).toEqual(expect.arrayContaining(['memory', 'revalue', 'recompute']));
  });

  it('is the default backend of createKernel, and js selects the reference', () => {
    expect(createKernel('wasm', limits).kind).toBe('wasm');
    expect(createKernel('js', limits).kind).toBe('js');
  });
});
