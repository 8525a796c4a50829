// Proves that the kernel's bulk load (Kernel.appendRows, the caller's column writes, Kernel.linkRows:
// what a restore from snapshot columns uses) leaves the kernel's whole memory bit for bit as the same
// rows added one at a time (addPosition, setPositionFx for the rows that convert, setPosition) do, on
// the WASM and the TypeScript kernel: random books appended to a kernel that already holds rows (so the
// append grows the layout), symbols priced or not yet (the mark is then the trade price), quantities
// 0 included, a few rows converted by an fx symbol; then every portfolio recomputed, and again after a
// tick batch that moves instruments and a rate (revalue walks the lists linkRows built).

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Kernel } from '../src/kernel/kernel.js';
import { seeded } from '../src/sim/random.js';
import { ensureKernelWasm, expectSameMemory, kernelOf, tick, type Flavour } from './support/kernelMemory.js';

beforeAll(ensureKernelWasm);

interface Row {
  pf: number;
  sym: number;
  qty: number;
  avg: number;
  tradePrice: number;
  /** The fx symbol converting it, or -1. */
  fx: number;
}

interface Book {
  symbols: number;
  /** Symbol ids priced before the load (the others take their trade price as mark). */
  priced: number[];
  /** Rows present before the bulk load, added one at a time in both kernels. */
  before: Row[];
  bulk: Row[];
  portfolios: number;
}

const fxSymbol = 0;

function bookOf(seed: number, rows: number, existing: number): Book {
  const g = seeded(seed);
  const symbols = 1 + Math.floor(g.next() * 40);
  const portfolios = 1 + Math.floor(g.next() * 30);
  const priced: number[] = [];
  for (let s = 0; s < symbols; s++) if (g.next() < 0.5) priced.push(s);
  const row = (): Row => {
    const q = g.next();
    const r: Row = {
      pf: Math.floor(g.next() * portfolios),
      sym: Math.floor(g.next() * symbols),
      qty: q < 0.15 ? 0 : Math.round((g.next() - 0.4) * 2e6) / 100,
      avg: Math.round(g.next() * 1e5) / 100,
      tradePrice: Math.round(g.next() * 1e5) / 100 + 0.01,
      fx: -1,
    };
    // Symbol 0 is a rate too: some rows of other symbols convert by it.
    if (r.sym !== fxSymbol && g.next() < 0.1) r.fx = fxSymbol;
    return r;
  };
  return { symbols, priced, before: Array.from({ length: existing }, row), bulk: Array.from({ length: rows }, row), portfolios };
}

function prepare(k: Kernel, book: Book): void {
  for (let s = 0; s < book.symbols; s++) k.ensureSymbol(s);
  for (const s of book.priced) k.cols.symPrice[s] = 1 + s * 0.75;
  for (let p = 0; p < book.portfolios; p++) k.addPortfolio();
  for (const r of book.before) oneRow(k, r);
}

/** A row as a new position gets it: addPosition, its conversion before its first write, setPosition. */
function oneRow(k: Kernel, r: Row): void {
  const row = k.addPosition(r.pf, r.sym);
  if (r.fx >= 0) k.setPositionFx(row, r.fx);
  k.setPosition(row, r.qty, r.avg, r.tradePrice);
}

function bulk(k: Kernel, rows: Row[]): void {
  const first = k.appendRows(rows.length);
  const c = k.cols;
  rows.forEach((r, i) => {
    c.posPf[first + i] = r.pf;
    c.posSym[first + i] = r.sym;
    c.posQty[first + i] = r.qty;
    c.posAvg[first + i] = r.avg;
    c.posMark[first + i] = r.tradePrice;
  });
  k.linkRows(first, rows.length);
  rows.forEach((r, i) => {
    if (r.fx < 0) return;
    k.setPositionFx(first + i, r.fx);
    k.setPosition(first + i, r.qty, r.avg, r.tradePrice);
  });
}

function finish(k: Kernel, book: Book): void {
  for (let p = 0; p < book.portfolios; p++) k.recompute(p);
}

describe.each<Flavour>(['wasm', 'auto'])('bulk load (%s)', (flavour) => {
  it('appendRows + linkRows leave the memory of rows added one at a time, before and after a tick', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 1500 }), (seed, rows, existing) => {
        const book = bookOf(seed, rows, existing);
        const one = kernelOf(flavour);
        const many = kernelOf(flavour);
        prepare(one, book);
        prepare(many, book);
        // As a restore does: room for the load in one growth (so both layouts have one size).
        one.reserve(0, book.bulk.length);
        many.reserve(0, book.bulk.length);
        for (const r of book.bulk) oneRow(one, r);
        bulk(many, book.bulk);
        finish(one, book);
        finish(many, book);
        expect(many.positions).toBe(one.positions);
        expect(many.openPositions).toBe(one.openPositions);
        expectSameMemory(one, many);
        const moves: [number, number][] = [];
        for (let s = 0; s < book.symbols; s += 2) moves.push([s, 2 + s * 0.5]);
        expect(tick(many, ...moves)).toBe(tick(one, ...moves));
        expectSameMemory(one, many);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses rows of an unknown symbol or portfolio, and more rows than positionsMax', () => {
    const k = kernelOf(flavour);
    k.ensureSymbol(0);
    k.addPortfolio();
    const first = k.appendRows(1);
    k.cols.posPf[first] = 0;
    k.cols.posSym[first] = 5;
    expect(() => k.linkRows(first, 1)).toThrow(/unknown portfolio or symbol/);
    expect(() => k.appendRows(k.limits.positionsMax)).toThrow(/position rows exhausted/);
  });
});
