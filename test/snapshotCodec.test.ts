// Proves the columnar snapshot's strings segment (src/shard/snapshotCodec.ts) in its binary form:
// - random books (names of any Unicode, astral characters included; ids; default and other base
//   currencies; integer-like and other symbols; positions quoted in other currencies; limits) encode
//   to a strings segment that starts with its magic, reads back to exactly the strings written, and
//   gives every book's state, status, seq and order as the JSON form the release before wrote
//   (the same books with that segment replaced by its JSON: readSnapshotStrings reads both);
// - a name holding a lone surrogate (UTF-8 cannot carry it) keeps the JSON form, and reads back exact;
// - a segment cut short or not a strings segment is refused, never misread.
// The data directory written by that release restarts with its figures: test/restart.test.ts.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newPortfolio } from '../src/domain/portfolio.js';
import type { PortfolioState, PortfolioStatus } from '../src/domain/types.js';
import { decodeSnapshot, encodeSnapshot, readSnapshotStrings, stringsSegmentMagic, type BookImage, type RestoredBook } from '../src/shard/snapshotCodec.js';

const symbols = ['AAA', 'BBB', '7203', '42', 'ÆØÅ', 'X.Y'];

const bookArb = fc.record({
  id: fc.stringMatching(/^[a-z0-9_-]{1,12}$/),
  name: fc.string({ unit: 'binary', maxLength: 12 }),
  base: fc.constantFrom(null, 'EUR', 'JPY'),
  status: fc.constantFrom<PortfolioStatus>('active', 'paused', 'closed'),
  seq: fc.nat(),
  maxLoss: fc.option(fc.integer({ min: 1, max: 1e6 })),
  positions: fc.uniqueArray(fc.record({ symbol: fc.constantFrom(...symbols), units: fc.integer({ min: -1e12, max: 1e12 }), avg: fc.double({ min: 0.01, max: 1e4, noNaN: true }), quote: fc.constantFrom<string | null>(null, null, 'USD', 'GBP') }), { selector: (p) => p.symbol, maxLength: 5 }),
});

type BookSpec = fc.Infer<typeof bookArb>;

function imageOf(b: BookSpec, k: number): BookImage {
  const state: PortfolioState = newPortfolio(`${b.id}-${k}`, b.name, 1000, b.maxLoss === null ? {} : { max_loss: b.maxLoss }, { cost_basis_method: 'average', base_currency: b.base ?? 'USD' });
  for (const p of b.positions) {
    state.positions[p.symbol] = { units: p.units, avg_cost: p.avg, realized_pnl: 0, last_trade_price: p.avg };
    if (p.quote !== null && p.quote !== (b.base ?? 'USD')) state.positions[p.symbol].currency = p.quote;
  }
  return { state, status: b.status, seq: b.seq, hwm: 1000, order: b.positions.map((p) => p.symbol).reverse() };
}

function restored(segments: Uint8Array[]): RestoredBook[] {
  const out: RestoredBook[] = [];
  decodeSnapshot(segments, () => true, (b) => out.push(b));
  return out;
}

const utf8 = new TextEncoder();

describe('the strings segment', () => {
  it('binary: reads back what was written, and every book as the JSON form the release before wrote', () => {
    fc.assert(
      fc.property(fc.array(bookArb, { maxLength: 20 }), (specs) => {
        const books = specs.map(imageOf);
        const segments = encodeSnapshot(books);
        // Every name here is well formed (unit 'binary' draws code points): the binary form.
        expect(new DataView(segments[2].buffer, segments[2].byteOffset).getUint32(0, true)).toBe(stringsSegmentMagic);
        const strings = readSnapshotStrings(segments);
        expect(strings.ids).toEqual(books.map((b) => b.state.id));
        expect(strings.names).toEqual(books.map((b) => b.state.name));
        expect(strings.bases).toEqual(books.map((b) => b.state.base_currency ?? null));
        const json = [...segments];
        json[2] = utf8.encode(JSON.stringify(strings));
        expect(readSnapshotStrings(json)).toEqual(strings);
        expect(restored(segments)).toEqual(restored(json));
        expect(restored(segments).map((b) => b.state)).toEqual(books.map((b) => b.state));
      }),
      { numRuns: 200 },
    );
  });

  it('keeps the JSON form for a name with a lone surrogate, and reads it back exact', () => {
    const lone = 'half \ud83d of an emoji';
    const books = [imageOf({ id: 'a', name: lone, base: null, status: 'active', seq: 3, maxLoss: null, positions: [] }, 0)];
    const segments = encodeSnapshot(books);
    expect(segments[2][0]).toBe(0x7b);
    expect(readSnapshotStrings(segments).names).toEqual([lone]);
    expect(restored(segments)[0].state.name).toBe(lone);
  });

  it('refuses a segment cut short or that is not a strings segment', () => {
    const segments = encodeSnapshot([imageOf({ id: 'a', name: 'n', base: 'EUR', status: 'active', seq: 1, maxLoss: 5, positions: [] }, 0)]);
    const cut = [...segments];
    cut[2] = segments[2].subarray(0, 10);
    expect(() => readSnapshotStrings(cut)).toThrow(/strings segment/);
    const other = [...segments];
    other[2] = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(() => readSnapshotStrings(other)).toThrow(/not a strings segment/);
  });
});
