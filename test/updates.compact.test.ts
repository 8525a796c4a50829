// Proves that the compact binary deltas (layout version 4: a position a tick only re-marked goes as a
// tick record, price and price_ts, its market value, P&L and return rate recomputed by the reader from
// the position it holds) give a reader exactly the engine's figures, where the shard must choose
// between a tick record and a full one: positions quoted in EUR before and after the first EURUSD
// rate (unconverted, then converted; rate moves carried in tick records), a futures contract at
// multiplier 50 (never a tick record: the quantity shown is not the kernel's), partial sales
// (realized P&L), closes and reopens, and listeners joining mid-stream (a fresh snapshot and held
// positions). Random histories through a real engine (one shard worker, real LMDB): after every step,
// every bytes listener (tick records decoded against its own view) and an object listener (decoded on
// the main thread against the engine's held positions) hold bit for bit the figures of a snapshot at
// the same seq, and both kinds of record occurred. Also, on hand-made records: a tick record decodes
// by the documented expressions against the held position, and is refused (never guessed) without
// it, after a gap in the stream (HeldBook empties itself), or once a full record closed the position.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import type { Listener } from '../src/engine/api.js';
import { DELTA_FLAG_HELD, DELTA_TICK_BYTES, DeltaHead, DeltaTick, HeldBook, decodeDelta, encodeDelta, heldPositionsOf } from '../src/protocol/delta.js';
import { applyUpdate } from '../src/protocol/view.js';
import type { PortfolioSnapshot, PortfolioUpdate, PositionView } from '../src/domain/types.js';
import { tickRecordsOf } from './support/deltaRecords.js';
import { ensureBuilt, tempDir } from './support/engine.js';
import { until } from './support/serverHarness.js';

beforeAll(() => ensureBuilt());
const dirs: { remove(): void }[] = [];
afterAll(() => dirs.forEach((d) => d.remove()));

const symbols = ['IBM', 'SAP', 'FUT'] as const;
const rated = [...symbols, 'EURUSD'] as const;

type Step =
  | { k: 'trade'; s: number; buy: boolean; q: number; px: number; close: boolean }
  | { k: 'ticks'; moves: { s: number; px: number }[] }
  | { k: 'join' };

const px = fc.integer({ min: 5_000, max: 15_000 }).map((n) => n / 100);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('trade' as const), s: fc.nat(2), buy: fc.boolean(), q: fc.integer({ min: 1, max: 2_000 }).map((n) => n / 100), px, close: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant('ticks' as const), moves: fc.array(fc.record({ s: fc.nat(3), px }), { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'join' as const }) },
);

/** A listener keeping its own view of the portfolio; bytes decoded against it. */
class Reader {
  view: PortfolioSnapshot | null = null;
  problems: string[] = [];
  tickRecords = 0;
  fullRecords = 0;
  constructor(readonly bytes: boolean) {}
  readonly listener: Listener = (m) => {
    if (m.kind === 'snapshot') return void (this.view = m.snapshot);
    const v = this.view;
    if (v === null) return;
    if (m.kind === 'update') return void (this.view = applyUpdate(v, m.update));
    const ticks = tickRecordsOf(m.delta.bytes);
    this.tickRecords += ticks;
    if ((m.delta.bytes[DeltaHead.flags] & DELTA_FLAG_HELD) !== 0) this.fullRecords++;
    const d = decodeDelta(m.delta.bytes, heldPositionsOf(v));
    if (!d.ok) return void this.problems.push(`seq ${m.delta.seq}: ${d.reason}`);
    if (d.value.from_seq > v.seq + 1) this.problems.push(`gap after ${v.seq}`);
    this.view = applyUpdate(v, d.value);
  };
}

/** What a view and a snapshot share: no ages, no price_ts (a tick at an unchanged price sends nothing). */
function figures(v: PortfolioSnapshot): Record<string, unknown> {
  const positions = [...v.positions].sort((a, b) => (a.symbol < b.symbol ? -1 : 1)).map(({ price_age_ms: _a, stale: _s, price_ts: _t, ...p }) => p);
  const { as_of: _as, positions: _p, name: _n, limits: _l, equity_hwm: _h, cash_balances: _c, stale_positions: _sp, cost_basis_method: _m, base_currency: _b, lots: _lots, ...totals } = v as PortfolioSnapshot & Record<string, unknown>;
  return { ...totals, positions };
}

async function run(steps: Step[], run: number): Promise<{ ticks: number; full: number }> {
  const dir = tempDir();
  dirs.push(dir);
  const engine: MtmEngine = await createEngine({ dataDir: dir.path, workers: 1, suspectMovePct: 0 });
  try {
    expect((await engine.defineInstrument('FUT', { asset_class: 'future', currency: 'USD', multiplier: 50 })).ok).toBe(true);
    expect((await engine.defineInstrument('SAP', { asset_class: 'equity', currency: 'EUR', multiplier: 1 })).ok).toBe(true);
    expect((await engine.createPortfolio({ id: 'c', cash: 10_000_000 })).ok).toBe(true);
    const readers = [new Reader(true), new Reader(false)];
    for (const r of readers) expect(engine.subscribe('c', r.listener, { bytes: r.bytes }).ok).toBe(true);
    const held = new Map<string, number>();
    let n = 0;
    for (const st of steps) {
      n++;
      if (st.k === 'trade') {
        const symbol = symbols[st.s];
        const position = held.get(symbol) ?? 0;
        const close = st.close && position !== 0;
        const quantity = close ? Math.abs(position) : st.q;
        const side = close ? (position > 0 ? 'sell' : 'buy') : st.buy ? 'buy' : 'sell';
        const fx = symbol === 'SAP' ? { currency: 'EUR', fx_rate: 1.1 } : {};
        const r = await engine.trade('c', { trade_id: `r${run}t${n}`, symbol, side, quantity, price: st.px, ...fx } as never);
        if (!r.ok) throw new Error(`trade refused: ${r.error.message}`);
        held.set(symbol, Math.round((position + (side === 'buy' ? quantity : -quantity)) * 100) / 100);
      } else if (st.k === 'ticks') {
        const r = engine.ingestTicks(st.moves.map((m) => ({ symbol: rated[m.s], price: m.s === 3 ? m.px / 100 : m.px })));
        expect(r.rejected).toEqual([]);
      } else if (readers.length < 5) {
        const r = new Reader(true);
        readers.push(r);
        expect(engine.subscribe('c', r.listener, { bytes: true }).ok).toBe(true);
      }
      await engine.drain();
      const s = await engine.snapshot('c');
      if (!s.ok) throw new Error(s.error.message);
      for (const [i, r] of readers.entries()) {
        await until(() => (r.view?.seq ?? -1) >= s.value.seq, 5_000, `reader ${i} at seq ${s.value.seq} (step ${n})`);
        expect(r.problems, `reader ${i}, step ${n}`).toEqual([]);
        expect(figures(r.view as PortfolioSnapshot), `reader ${i} (${r.bytes ? 'bytes' : 'objects'}), step ${n}: ${JSON.stringify(st)}`).toEqual(figures(s.value));
      }
    }
    return { ticks: readers[0].tickRecords, full: readers[0].fullRecords };
  } finally {
    await engine.close();
  }
}

describe('compact binary deltas (layout version 4)', () => {
  it('every reader holds the snapshot figures bit for bit after every step: EUR, multiplier, closes, late joiners', async () => {
    let runs = 0;
    let ticks = 0;
    let full = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 20, maxLength: 40 }), async (steps) => {
        const r = await run(steps, ++runs);
        ticks += r.ticks;
        full += r.full;
      }),
      // No shrinking: each run drives a whole engine; the failing history is printed as found.
      { numRuns: Number(process.env.COMPACT_RUNS ?? 5), endOnFailure: true },
    );
    expect(ticks, 'tick records written').toBeGreaterThan(0);
    expect(full, 'records with full positions or rate moves').toBeGreaterThan(0);
  }, 300_000);
});

/** A version 4 record of `update` (no positions) followed by one tick record per [symbol, price, price_ts]. */
function withTicks(update: PortfolioUpdate, fromSeq: number, ticks: [string, number, number][]): Uint8Array {
  const head = encodeDelta({ ...update, positions: [] }, fromSeq);
  const parts = ticks.map(([symbol, price, ts]) => {
    const sym = new TextEncoder().encode(symbol);
    const r = new Uint8Array(1 + sym.length + DELTA_TICK_BYTES);
    r[0] = sym.length;
    r.set(sym, 1);
    const view = new DataView(r.buffer);
    view.setFloat64(1 + sym.length + DeltaTick.lastPrice, price, true);
    view.setFloat64(1 + sym.length + DeltaTick.priceTs, ts, true);
    return r;
  });
  const out = new Uint8Array(head.length + parts.reduce((n, r) => n + r.length, 0));
  out.set(head);
  let o = head.length;
  for (const r of parts) {
    out.set(r, o);
    o += r.length;
  }
  new DataView(out.buffer).setUint16(DeltaHead.positionCount, ticks.length, true);
  return out;
}

describe('tick records and the positions a reader holds', () => {
  const position: PositionView = { symbol: 'IBM', currency: 'USD', fx_rate: 1.25, quantity: -10, avg_cost: 100, last_price: 100, market_value: -1250, unrealized_pnl: 0, realized_pnl: 7, return_rate: 0, weight: 100, price_ts: 1, price_age_ms: 0, stale: false };
  const totals = { cash: 1, capital: 2, holdings_value: 3, cost_basis: 4, unrealized_pnl: 5, realized_pnl: 6, total_return: 11, return_rate: 550, equity: 7, gross_exposure: 8, stale_positions: 0, unpriced_positions: 0, unconverted_positions: 0 };
  const update = (seq: number): PortfolioUpdate => ({ portfolio_id: 'p', seq, as_of: 50, state: 'active', tick_ts: 40, positions: [], ...totals });

  it('recomputes value, P&L and return rate with the documented expressions; refuses without the position, or after a gap', () => {
    const held = new HeldBook();
    held.reset({ seq: 5, positions: [position] });
    const tick = withTicks(update(6), 6, [['IBM', 110, 40]]);
    held.observe(tick, 6, 6);
    const d = decodeDelta(tick, held);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    const q = -10;
    const fx = 1.25;
    const upnl = (110 - 100) * q * fx;
    expect(d.value.positions).toEqual([
      { ...position, last_price: 110, market_value: q * 110 * fx, unrealized_pnl: upnl, return_rate: (upnl / (Math.abs(q) * 100 * fx)) * 100, weight: (Math.abs(q * 110 * fx) / 8) * 100, price_ts: 40, price_age_ms: 10 },
    ]);
    // Without what the reader holds a tick record is refused, never guessed.
    expect(decodeDelta(tick)).toEqual({ ok: false, reason: expect.stringContaining('position not held') });
    // A record that does not follow seq 6 (7 and 8 were lost): nothing is held until the next snapshot.
    const late = withTicks(update(9), 9, [['IBM', 111, 41]]);
    held.observe(late, 9, 9);
    expect(held.seq).toBe(-1);
    expect(decodeDelta(late, held)).toEqual({ ok: false, reason: expect.stringContaining('position not held') });
    // A full record replaces what is held; one with quantity 0 removes it.
    held.reset({ seq: 9, positions: [position] });
    const closed = encodeDelta({ ...update(10), positions: [{ ...position, quantity: 0 }] });
    held.observe(closed, 10, 10);
    expect(held.get('IBM')).toBeUndefined();
    expect(decodeDelta(withTicks(update(11), 11, [['IBM', 112, 42]]), held).ok).toBe(false);
  });
});
