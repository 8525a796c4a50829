// Proves, over long random histories driven through the real engine (two shard workers, real kernel,
// real LMDB), that books holding instruments with contract multipliers (futures at 50x, options at
// 100x, a mini at 0.1x) in mixed currencies (USD, EUR, GBP, JPY books; EUR, JPY, GBP and USD
// instruments; FX legs EURUSD, GBPUSD, USDJPY ticking and later the direct EURGBP) never drift from
// the exact decimal oracle (test/oracle/instruments.ts, which derives every rate itself: direct,
// inverse, or cross through USD), across trades (exact closes and flips included), instrument and FX
// ticks, foreign deposits and withdrawals, FX conversions, snapshots and restarts (replay).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { expectClose } from './oracle/compare.js';
import { InstrumentOracle } from './oracle/instruments.js';
import { ensureBuilt, tempDir } from './support/engine.js';

beforeAll(() => ensureBuilt());
const dirs: { remove(): void }[] = [];
afterAll(() => dirs.forEach((d) => d.remove()));

const engineOptions = (dataDir: string) => ({ dataDir, workers: 2, snapshotIntervalMs: 3_600_000, suspectMovePct: 0, corporateActionsCheckMs: 3_600_000 });

const instruments = [
  { symbol: 'ES', asset_class: 'future', currency: 'USD', multiplier: 50 },
  { symbol: 'SPYC450', asset_class: 'option', currency: 'USD', multiplier: 100 },
  { symbol: 'FDXS', asset_class: 'future', currency: 'EUR', multiplier: 0.1 },
  { symbol: 'SAP', asset_class: 'equity', currency: 'EUR', multiplier: 1 },
  { symbol: 'SONY', asset_class: 'equity', currency: 'JPY', multiplier: 1 },
  { symbol: 'BP', asset_class: 'equity', currency: 'GBP', multiplier: 1 },
] as const;
/** Traded but never defined: multiplier 1, in the book's base currency. */
const plain = 'XYZ';
const symbols = [...instruments.map((i) => i.symbol), plain];
const books = [
  { id: 'usd', base: 'USD' },
  { id: 'gbp', base: 'GBP' },
  { id: 'jpy', base: 'JPY' },
  { id: 'eur', base: 'EUR' },
] as const;
const currencies = ['USD', 'EUR', 'GBP', 'JPY'] as const;
const legs = ['EURUSD', 'GBPUSD', 'USDJPY'] as const;

type Step =
  | { k: 'trade'; b: number; s: number; buy: boolean; q: number; px: number; fee: number; close: boolean }
  | { k: 'ticks'; moves: { s: number; px: number }[] }
  | { k: 'fx'; leg: number; move: number }
  | { k: 'direct' }
  | { k: 'cash'; b: number; c: number; deposit: boolean; amount: number }
  | { k: 'convert'; b: number; from: number; to: number; share: number; rate: number }
  | { k: 'snapshot' }
  | { k: 'restart' };

const price = fc.integer({ min: 100, max: 500_000 }).map((n) => n / 100);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ k: fc.constant('trade' as const), b: fc.nat(3), s: fc.nat(symbols.length - 1), buy: fc.boolean(), q: fc.integer({ min: 1, max: 2_000_000 }).map((n) => n / 1e4), px: price, fee: fc.constantFrom(0, 0, 1.25, 2.5), close: fc.boolean() }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('ticks' as const), moves: fc.array(fc.record({ s: fc.nat(symbols.length - 1), px: price }), { minLength: 1, maxLength: 5 }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('fx' as const), leg: fc.nat(legs.length - 1), move: fc.integer({ min: -300, max: 300 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'direct' as const }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('cash' as const), b: fc.nat(3), c: fc.nat(3), deposit: fc.boolean(), amount: fc.integer({ min: 1, max: 5_000_000 }).map((n) => n / 100) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('convert' as const), b: fc.nat(3), from: fc.nat(3), to: fc.nat(3), share: fc.integer({ min: 1, max: 120 }), rate: fc.integer({ min: 1, max: 20_000 }).map((n) => n / 100) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'snapshot' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'restart' as const }) },
);

/** Leg prices the random walk moves around (in basis points of these). */
const legBase: Record<(typeof legs)[number], number> = { EURUSD: 1.08, GBPUSD: 1.27, USDJPY: 150 };

async function verify(engine: MtmEngine, oracle: InstrumentOracle, at: string): Promise<number> {
  let positions = 0;
  for (const { id } of books) {
    const r = await engine.snapshot(id);
    if (!r.ok) throw new Error(r.error.message);
    const s = r.value;
    const f = oracle.figures(id);
    const label = `${at} ${id}`;
    for (const k of ['cash', 'capital', 'holdings_value', 'cost_basis', 'unrealized_pnl', 'realized_pnl', 'total_return', 'return_rate', 'equity', 'gross_exposure'] as const) {
      expectClose(s[k], f[k], `${label}.${k}`);
    }
    expect(s.unconverted_positions, `${label}.unconverted_positions`).toBe(f.unconverted_positions);
    for (const [currency, amount] of f.cash_balances) expectClose(s.cash_balances[currency] ?? 0, amount, `${label}.cash_balances.${currency}`);
    expect(s.positions.length, `${label} open positions`).toBe(f.positions.length);
    for (const p of s.positions) {
      const e = f.positions.find((x) => x.symbol === p.symbol);
      if (e === undefined) throw new Error(`${label}: oracle lacks ${p.symbol}`);
      expect(p.currency).toBe(e.currency);
      if (e.fx_rate === null) expect(p.fx_rate).toBeNull();
      else expectClose(p.fx_rate as number, e.fx_rate, `${label}.${p.symbol}.fx_rate`);
      for (const k of ['quantity', 'avg_cost', 'last_price', 'market_value', 'unrealized_pnl', 'realized_pnl', 'return_rate', 'weight'] as const) {
        expectClose(p[k], e[k], `${label}.${p.symbol}.${k}`);
      }
      positions++;
    }
  }
  return positions;
}

describe('instruments and currencies vs the exact oracle over random histories with restarts', () => {
  it('never drifts: multipliers, direct/inverse/cross rates, foreign cash, conversions, replay', async () => {
    let checkedPositions = 0;
    let scaledChecked = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 120, maxLength: 200 }), async (steps) => {
        const dir = tempDir();
        dirs.push(dir);
        const oracle = new InstrumentOracle('USD');
        let engine = await createEngine(engineOptions(dir.path));
        let ts = Date.now();
        const tick = async (moves: { symbol: string; price: number }[]): Promise<void> => {
          const r = engine.ingestTicks(moves.map((m) => ({ symbol: m.symbol, price: m.price, ts: ++ts })));
          expect(r.rejected).toEqual([]);
          for (const m of moves) oracle.tick(m.symbol, m.price);
          await engine.drain();
        };
        try {
          for (const i of instruments) {
            const { symbol, ...def } = i;
            const r = await engine.defineInstrument(symbol, def);
            expect(r.ok).toBe(true);
            oracle.define(symbol, { multiplier: i.multiplier, currency: i.currency });
          }
          for (const b of books) {
            expect((await engine.createPortfolio({ id: b.id, cash: 1_000_000, base_currency: b.base })).ok).toBe(true);
            oracle.createBook(b.id, b.base, 1_000_000);
          }
          await tick(legs.map((l) => ({ symbol: l, price: legBase[l] })));
          let n = 0;
          for (const st of steps) {
            n++;
            if (st.k === 'trade') {
              const { id } = books[st.b];
              const symbol = symbols[st.s];
              const held = oracle.quantity(id, symbol);
              // Half the time close exactly what is held, to hit exact zeros; otherwise flips happen on their own.
              const quantity = st.close && !held.isZero() ? held.abs().toNumber() : st.q;
              const side = st.close && !held.isZero() ? (held.isPos() ? 'sell' : 'buy') : st.buy ? 'buy' : 'sell';
              const r = await engine.trade(id, { trade_id: `t${n}`, symbol, side, quantity, price: st.px, fee: st.fee });
              if (!r.ok) throw new Error(`step ${n}: trade refused: ${r.error.message}`);
              oracle.trade(id, { symbol, side, quantity, price: st.px, fee: st.fee });
            } else if (st.k === 'ticks') {
              await tick(st.moves.map((m) => ({ symbol: symbols[m.s], price: m.px })));
            } else if (st.k === 'fx') {
              const leg = legs[st.leg];
              await tick([{ symbol: leg, price: Math.round(legBase[leg] * (10_000 + st.move)) / 10_000 }]);
            } else if (st.k === 'direct') {
              // The direct EURGBP takes over EUR -> GBP (and, inverse, GBP -> EUR) from the cross.
              await tick([{ symbol: 'EURGBP', price: 0.85 + (n % 7) / 1000 }]);
            } else if (st.k === 'cash') {
              const { id } = books[st.b];
              const currency = currencies[st.c];
              const r = await engine.cash(id, { type: st.deposit ? 'deposit' : 'withdraw', amount: st.amount, currency });
              if (r.ok) oracle.cash(id, st.deposit ? st.amount : -st.amount, currency);
              else {
                expect(r.error.code).toBe('insufficient_cash');
                expect(oracle.balance(id, currency).lt(st.amount)).toBe(true);
              }
            } else if (st.k === 'convert') {
              const { id } = books[st.b];
              const from = currencies[st.from];
              const to = currencies[st.to];
              const balance = oracle.balance(id, from).toNumber();
              const amount = Math.max(0.01, Math.round(Math.abs(balance) * st.share) / 100);
              const r = await engine.convertCash(id, { from_currency: from, to_currency: to, amount, rate: st.rate });
              if (from === to) expect(r.ok ? null : r.error.field).toBe('to_currency');
              else if (r.ok) oracle.convert(id, from, to, amount, st.rate);
              else {
                expect(r.error.code).toBe('insufficient_cash');
                expect(oracle.balance(id, from).lt(amount)).toBe(true);
              }
            } else if (st.k === 'snapshot') {
              await engine.snapshotAll();
            } else {
              await engine.close();
              engine = await createEngine(engineOptions(dir.path));
            }
            checkedPositions += await verify(engine, oracle, `step ${n} (${st.k})`);
          }
          for (const { id } of books) for (const p of oracle.figures(id).positions) if (['ES', 'SPYC450', 'FDXS'].includes(p.symbol)) scaledChecked++;
        } finally {
          await engine.close();
        }
      }),
      { numRuns: 2 },
    );
    // The runs must have compared real positions, multiplied ones among them.
    expect(checkedPositions).toBeGreaterThan(500);
    expect(scaledChecked).toBeGreaterThan(0);
  }, 600_000);
});
