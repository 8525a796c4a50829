// Proves the market worker's core (MarketCore) in-process, against the BarBook fed tick by tick:
// - over random tapes (hot and cold symbols, minute crossings, out-of-order ticks inside the open
//   bar, late ticks that revise closed bars, ticks too late, size-less ticks, non-integer ts), the
//   closed and revised bars, in order, the open bars of every timeframe and the drop counts are
//   exactly those of a BarBook given every tick one by one: folding runs changes nothing;
// - engine symbol ids are named by the main thread as they appear; ticks of unnamed ids are counted;
// - watched series report their open bar after each tape that touches them; the checkpoint holds
//   the open bars of the symbols that ticked since the last one (or all); the pack round-trips bars.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createMarketCore, TAPE_FIELDS, type MarketCore } from '../src/market/core.js';
import { BarPacker, unpackBars, type BarChange } from '../src/market/pack.js';
import { timeframes, type Bar } from '../src/market/index.js';
import { MemoryBarStore, newBook, unwrap } from './support/marketSupport.js';

const min = 60_000;
const t0 = Date.UTC(2025, 0, 6, 10, 0);
const names = ['HOT', 'WARM', 'COLD', 'RARE'];

interface Tick {
  sym: number;
  price: number;
  ts: number;
  size: number; // NaN: none
}

function tape(ticks: readonly Tick[]): Float64Array {
  const t = new Float64Array(ticks.length * TAPE_FIELDS);
  ticks.forEach((k, i) => t.set([k.sym, k.price, k.ts, k.size], i * TAPE_FIELDS));
  return t;
}

function collect(core: MarketCore, ticks: readonly Tick[], out: [Bar, BarChange][]): void {
  unpackBars(core.onTape(tape(ticks), ticks.length).bars, (bar, change) => out.push([bar, change]));
}

/** A feed whose time mostly moves forward, with jitter back (out of order, late) now and then. */
const feedArb = fc
  .array(
    fc.record({
      sym: fc.constantFrom(0, 0, 0, 0, 1, 1, 2, 3),
      step: fc.integer({ min: 0, max: 4_000 }),
      back: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 90_000 })),
      eighths: fc.integer({ min: 1, max: 8_000 }),
      size: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.constant(NaN)),
      odd: fc.integer({ min: 0, max: 40 }),
    }),
    { minLength: 1, maxLength: 400 },
  )
  .map((raw) => {
    let now = t0;
    return raw.map((r) => {
      now += r.step;
      // Prices in eighths and integer sizes: every sum is exact, so any difference would be real.
      const ts = Math.max(0, now - r.back) + (r.odd === 0 ? 0.5 : 0);
      return { sym: r.sym, price: r.eighths / 8, ts, size: r.size };
    });
  });
const cutsArb = fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 20 });

describe('MarketCore', () => {
  it('gives exactly what a BarBook fed tick by tick gives, whatever the tapes', () => {
    fc.assert(
      fc.property(feedArb, cutsArb, fc.integer({ min: 0, max: 120_000 }), (ticks, cuts, latenessMs) => {
        const core = unwrap(createMarketCore({ book: { latenessMs, symbolsMax: 16 } }));
        core.name(0, names);
        const got: [Bar, BarChange][] = [];
        for (let at = 0, c = 0; at < ticks.length; c++) {
          const k = cuts[c % cuts.length];
          collect(core, ticks.slice(at, at + k), got);
          at += k;
        }
        const { book, store } = newBook({ latenessMs, symbolsMax: 16 });
        const want: [Bar, BarChange][] = [];
        const sink = store as MemoryBarStore;
        const closed = sink.closed.bind(sink);
        const revised = sink.revised.bind(sink);
        sink.closed = (bar) => (want.push([bar, 'closed']), closed(bar));
        sink.revised = (bar) => (want.push([bar, 'revised']), revised(bar));
        for (const t of ticks) book.onTick(names[t.sym], t.price, t.ts, t.size === t.size ? t.size : undefined);
        expect(got).toEqual(want);
        for (const symbol of names) for (const tf of timeframes) expect(core.openBar(symbol, tf), `${symbol} ${tf}`).toEqual(book.openBar(symbol, tf));
        const s = book.stats();
        expect(core.stats().book).toEqual({ ...s, symbols: core.stats().book.symbols });
        expect(core.stats().book.dropped).toEqual(s.dropped);
      }),
      { numRuns: 300 },
    );
  });

  it('maps engine ids to names as they are announced; ticks of unnamed ids are counted, not guessed', () => {
    const core = unwrap(createMarketCore({}));
    core.name(0, ['A']);
    core.onTape(tape([{ sym: 0, price: 1, ts: t0, size: 1 }, { sym: 1, price: 2, ts: t0, size: 1 }]), 2);
    expect(core.stats().unknownTicks).toBe(1);
    core.name(1, ['B']);
    core.onTape(tape([{ sym: 1, price: 2, ts: t0 + 1, size: 1 }]), 1);
    expect(core.openBar('B', '1m')).toMatchObject({ close: 2, trades: 1 });
    expect(core.openBar('A', '1h')).toMatchObject({ close: 1, trades: 1 });
  });

  it('reports watched open bars after each tape, and checkpoints the symbols that ticked', () => {
    const core = unwrap(createMarketCore({}));
    core.watch('B', '5m', true); // before B is named: applied when it is
    core.name(0, ['A', 'B']);
    const out: [Bar, BarChange][] = [];
    collect(core, [{ sym: 0, price: 1, ts: t0, size: 1 }, { sym: 1, price: 2, ts: t0, size: NaN }, { sym: 1, price: 3, ts: t0 + 1, size: NaN }], out);
    expect(out.map(([b, c]) => [b.symbol, b.tf, c, b.close, b.trades])).toEqual([['B', '5m', 'open', 3, 2]]);
    // The tick of the next minute closes B's 1m bar (not watched: stored, still reported as closed).
    out.length = 0;
    collect(core, [{ sym: 1, price: 4, ts: t0 + min, size: 1 }], out);
    expect(out.map(([b, c]) => [b.tf, c, b.close])).toEqual([['1m', 'closed', 3], ['5m', 'open', 4]]);
    core.watch('B', '5m', false);
    out.length = 0;
    collect(core, [{ sym: 1, price: 5, ts: t0 + min + 1, size: 1 }], out);
    expect(out).toEqual([]);
    const all: Bar[] = [];
    unpackBars(core.checkpoint(true), (b) => all.push(b));
    expect(all.map((b) => `${b.symbol} ${b.tf}`).sort()).toEqual(['A', 'B'].flatMap((s) => timeframes.map((tf) => `${s} ${tf}`)).sort());
    collect(core, [{ sym: 0, price: 6, ts: t0 + min + 2, size: 1 }], out);
    const dirty: Bar[] = [];
    unpackBars(core.checkpoint(false), (b) => dirty.push(b));
    expect(new Set(dirty.map((b) => b.symbol))).toEqual(new Set(['A']));
    unpackBars(core.checkpoint(false), () => expect.unreachable('nothing ticked since'));
  });

  it('packs and unpacks bars unchanged', () => {
    const bars: Bar[] = [
      { symbol: 'X/Y', tf: '1w', start: -259_200_000, open: 1, high: 2, low: 0.5, close: 1.5, volume: 0, pv: 0, vwap: null, trades: 3, first_ts: 0, last_ts: 5 },
      { symbol: 'Z', tf: '15m', start: t0, open: 1, high: 1, low: 1, close: 1, volume: 2, pv: 2, vwap: 1, trades: 1, first_ts: t0, last_ts: t0 },
    ];
    const p = new BarPacker();
    for (let i = 0; i < 40; i++) p.add(bars[i % 2], i % 3 === 0 ? 'revised' : 'closed');
    const out: [Bar, BarChange][] = [];
    unpackBars(p.take(), (b, c) => out.push([b, c]));
    expect(out).toEqual(Array.from({ length: 40 }, (_, i) => [bars[i % 2], i % 3 === 0 ? 'revised' : 'closed']));
    expect(p.take().count).toBe(0);
  });
});
