// Proves, of the columnar snapshot codec (src/shard/snapshotCodec.ts):
// - books copied from the snapshot part their state came from (PartImage: what a snapshot round does
//   for a book restored and not changed since, without building its state) encode to the very bytes
//   their states do: two parts, books of both in any order, mixed with books encoded from states,
//   lots, multipliers, foreign positions, foreign cash and dividends due included;
// and the strings segment in its binary form:
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
import { SnapshotPart, decodeSnapshot, encodeSnapshot, readSnapshotStrings, stringsSegmentMagic, type BookImage, type PartImage, type RestoredBook } from '../src/shard/snapshotCodec.js';

const symbols = ['AAA', 'BBB', '7203', '42', 'ÆØÅ', 'X.Y'];

const bookArb = fc.record({
  id: fc.stringMatching(/^[a-z0-9_-]{1,12}$/),
  name: fc.string({ unit: 'binary', maxLength: 12 }),
  base: fc.constantFrom(null, 'EUR', 'JPY'),
  status: fc.constantFrom<PortfolioStatus>('active', 'paused', 'closed'),
  seq: fc.nat(),
  maxLoss: fc.option(fc.integer({ min: 1, max: 1e6 })),
  positions: fc.uniqueArray(fc.record({ symbol: fc.constantFrom(...symbols), units: fc.integer({ min: -1e12, max: 1e12 }), avg: fc.double({ min: 0.01, max: 1e4, noNaN: true }), quote: fc.constantFrom<string | null>(null, null, 'USD', 'GBP'), multiplier: fc.constantFrom<number | null>(null, null, 100) }), { selector: (p) => p.symbol, maxLength: 5 }),
  fifo: fc.boolean(),
  gbpCash: fc.option(fc.integer({ min: -1e6, max: 1e6 })),
  dividend: fc.boolean(),
});

type BookSpec = fc.Infer<typeof bookArb>;

function imageOf(b: BookSpec, k: number): BookImage {
  const base = b.base ?? 'USD';
  const state: PortfolioState = newPortfolio(`${b.id}-${k}`, b.name, 1000, b.maxLoss === null ? {} : { max_loss: b.maxLoss }, { cost_basis_method: b.fifo === true ? 'fifo' : 'average', base_currency: base });
  for (const p of b.positions) {
    const ps: PortfolioState['positions'][string] = { units: p.units, avg_cost: p.avg, realized_pnl: p.units % 7, last_trade_price: p.avg };
    if (p.quote !== null && p.quote !== base) ps.currency = p.quote;
    if (p.multiplier !== null && p.multiplier !== undefined) ps.multiplier = p.multiplier;
    if (b.fifo === true && p.units !== 0) ps.lots = [{ lot_id: `${p.symbol}-1`, units: Math.abs(p.units), price: p.avg, opened_ts: 1_700_000_000_000 + k }];
    state.positions[p.symbol] = ps;
  }
  if (b.gbpCash !== null && b.gbpCash !== undefined && base !== 'GBP') state.cash_balances = { GBP: b.gbpCash };
  if (b.dividend === true) state.dividends_due = { [`div-${k}`]: { symbol: 'AAA', units: 500, amount_per_share: 0.25, currency: 'CHF', pay_ts: 1_800_000_000_000 } };
  return { state, status: b.status, seq: b.seq, hwm: 1000 + k, order: b.positions.map((p) => p.symbol).reverse() };
}

function restored(segments: Uint8Array[]): RestoredBook[] {
  const out: RestoredBook[] = [];
  decodeSnapshot(segments, () => true, (b) => out.push(b));
  return out;
}

const utf8 = new TextEncoder();

describe('books copied from their snapshot part', () => {
  it('give the bytes their states give, whatever mix of parts and states, in any order of books', () => {
    fc.assert(
      fc.property(fc.array(bookArb, { maxLength: 16 }), fc.array(bookArb, { maxLength: 8 }), fc.array(fc.nat(3)), (specs, others, picks) => {
        // Two parts (a shard may hold books of several: adopted partitions), and books changed since.
        const partA = new SnapshotPart(encodeSnapshot(specs.map(imageOf)));
        const partB = new SnapshotPart(encodeSnapshot(others.map((b, k) => imageOf(b, 100 + k))));
        const fresh = others.map((b, k) => imageOf(b, 200 + k));
        const books: { fromPart: PartImage | null; state: BookImage }[] = [];
        const add = (part: SnapshotPart, i: number, pick: number) => {
          const state: BookImage = { state: part.stateOf(i), status: part.statusOf(i), seq: part.seq[i] + pick, hwm: part.hwm[i] * 2, order: part.orderOf(i) };
          books.push({ fromPart: pick === 0 ? null : { part, index: i, status: state.status, seq: state.seq, hwm: state.hwm }, state });
        };
        for (let i = 0; i < partA.books; i++) add(partA, i, picks[i] ?? 1);
        for (let i = partB.books - 1; i >= 0; i--) add(partB, i, picks[i + 3] ?? 2);
        fresh.forEach((state, k) => books.splice((k * 7) % (books.length + 1), 0, { fromPart: null, state }));
        const mixed = encodeSnapshot(books.map((b) => b.fromPart ?? b.state));
        const states = encodeSnapshot(books.map((b) => b.state));
        expect(mixed).toEqual(states);
      }),
      { numRuns: 50 },
    );
  });
});

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
        // At an offset no Int32Array view can start at (a segment inside a shipped frame): the same.
        const shifted = new Uint8Array(segments[2].byteLength + 1);
        shifted.set(segments[2], 1);
        expect(readSnapshotStrings([segments[0], segments[1], shifted.subarray(1), segments[3]])).toEqual(strings);
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
    const books = [imageOf({ id: 'a', name: lone, base: null, status: 'active', seq: 3, maxLoss: null, positions: [], fifo: false, gbpCash: null, dividend: false }, 0)];
    const segments = encodeSnapshot(books);
    expect(segments[2][0]).toBe(0x7b);
    expect(readSnapshotStrings(segments).names).toEqual([lone]);
    expect(restored(segments)[0].state.name).toBe(lone);
  });

  it('refuses a segment cut short or that is not a strings segment', () => {
    const segments = encodeSnapshot([imageOf({ id: 'a', name: 'n', base: 'EUR', status: 'active', seq: 1, maxLoss: 5, positions: [], fifo: false, gbpCash: null, dividend: false }, 0)]);
    const cut = [...segments];
    cut[2] = segments[2].subarray(0, 10);
    expect(() => readSnapshotStrings(cut)).toThrow(/strings segment/);
    const other = [...segments];
    other[2] = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(() => readSnapshotStrings(other)).toThrow(/not a strings segment/);
  });
});
