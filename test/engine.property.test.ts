// Proves, over random histories driven through the real engine (two shard workers, real LMDB), that
// incremental valuation never drifts from an exact decimal recomputation (the independent oracle),
// and that snapshot + replay equals live state: snapshots are taken and the engine restarted at
// random points, and after every step every figure of every portfolio matches the oracle.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { Ledger } from './oracle/ledger.js';
import { expectClose } from './oracle/compare.js';
import { ensureBuilt, tempDir } from './support/engine.js';

beforeAll(() => ensureBuilt());
const dirs: { remove(): void }[] = [];
afterAll(() => dirs.forEach((d) => d.remove()));

const symbols = ['AA', 'BB', 'CC', 'DD'];
// Ticks jump anywhere in 0.001..5000 and the oracle applies each one: the suspect filter (which would
// hold such jumps) is proven in test/marks.test.ts, so it is off here.
const engineOptions = (dataDir: string) => ({ dataDir, workers: 2, snapshotIntervalMs: 3_600_000, suspectMovePct: 0 });
const portfolios = ['p0', 'p1', 'p2'];

type Step =
  | { k: 'trade'; p: number; s: number; buy: boolean; q: number; px: number; fee: number; close: boolean }
  | { k: 'cash'; p: number; deposit: boolean; amount: number }
  | { k: 'ticks'; moves: { s: number; px: number }[] }
  | { k: 'snapshot' }
  | { k: 'restart' };

const price = fc.integer({ min: 1, max: 5_000_000 }).map((n) => n / 1000);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ k: fc.constant('trade' as const), p: fc.nat(2), s: fc.nat(3), buy: fc.boolean(), q: fc.integer({ min: 1, max: 50_000_000 }).map((n) => n / 1e6), px: price, fee: fc.constantFrom(0, 0, 0.25, 1.5), close: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('cash' as const), p: fc.nat(2), deposit: fc.boolean(), amount: fc.integer({ min: 1, max: 1_000_000 }).map((n) => n / 100) }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant('ticks' as const), moves: fc.array(fc.record({ s: fc.nat(3), px: price }), { minLength: 1, maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'snapshot' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'restart' as const }) },
);

async function verify(engine: MtmEngine, ledger: Ledger, at: string): Promise<void> {
  for (const id of portfolios) {
    const r = await engine.snapshot(id);
    if (!r.ok) throw new Error(r.error.message);
    const s = r.value;
    const f = ledger.portfolio(id);
    const label = `${at} ${id}`;
    expectClose(s.cash, f.cash, `${label}.cash`);
    expectClose(s.capital, f.capital, `${label}.capital`);
    expectClose(s.holdings_value, f.holdings_value, `${label}.holdings_value`);
    expectClose(s.cost_basis, f.cost_basis, `${label}.cost_basis`);
    expectClose(s.unrealized_pnl, f.unrealized_pnl, `${label}.unrealized_pnl`);
    expectClose(s.realized_pnl, f.realized_pnl, `${label}.realized_pnl`);
    expectClose(s.total_return, f.total_return, `${label}.total_return`);
    expectClose(s.return_rate, f.return_rate, `${label}.return_rate`);
    expectClose(s.equity, f.equity, `${label}.equity`);
    expect(s.equity).toBeCloseTo(s.cash + s.holdings_value, 6);
    expect(s.total_return).toBeCloseTo(s.realized_pnl + s.unrealized_pnl, 6);
    for (const p of s.positions) {
      const e = ledger.position(id, p.symbol);
      if (e === undefined) throw new Error(`${label}: oracle lacks ${p.symbol}`);
      for (const k of ['quantity', 'avg_cost', 'last_price', 'market_value', 'unrealized_pnl', 'realized_pnl', 'return_rate', 'weight'] as const) {
        expectClose(p[k], e[k], `${label}.${p.symbol}.${k}`);
      }
    }
    const openInOracle = f.positions.filter((p) => !p.quantity.isZero()).length;
    expect(s.positions.length).toBe(openInOracle);
  }
}

describe('engine vs exact oracle over random histories with snapshots and restarts', () => {
  it('never drifts, and restarts change nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 150, maxLength: 250 }), async (steps) => {
        const dir = tempDir();
        dirs.push(dir);
        const ledger = new Ledger({ reuseUnchangedReplays: true });
        let engine = await createEngine(engineOptions(dir.path));
        const held = new Map<string, number>();
        try {
          for (const id of portfolios) {
            await engine.createPortfolio({ id, cash: 100_000 });
            ledger.createPortfolio(id, 100_000);
          }
          let n = 0;
          for (const st of steps) {
            n++;
            if (st.k === 'trade') {
              const id = portfolios[st.p];
              const symbol = symbols[st.s];
              const key = id + symbol;
              const position = held.get(key) ?? 0;
              // Half the time close exactly what is held, to hit exact zeros and flips.
              const quantity = st.close && position !== 0 ? Math.abs(position) : st.q;
              const side = st.close && position !== 0 ? (position > 0 ? 'sell' : 'buy') : st.buy ? 'buy' : 'sell';
              const r = await engine.trade(id, { trade_id: `t${n}`, symbol, side, quantity, price: st.px, fee: st.fee });
              if (!r.ok) throw new Error(`trade refused: ${r.error.message}`);
              ledger.trade(id, { symbol, side, quantity, price: st.px, fee: st.fee });
              held.set(key, Math.round((position + (side === 'buy' ? quantity : -quantity)) * 1e6) / 1e6);
            } else if (st.k === 'cash') {
              const id = portfolios[st.p];
              const r = await engine.cash(id, { type: st.deposit ? 'deposit' : 'withdraw', amount: st.amount });
              if (r.ok) {
                if (st.deposit) ledger.deposit(id, st.amount);
                else ledger.withdraw(id, st.amount);
              } else expect(r.error.code).toBe('insufficient_cash');
            } else if (st.k === 'ticks') {
              const r = engine.ingestTicks(st.moves.map((m) => ({ symbol: symbols[m.s], price: m.px })));
              expect(r.rejected).toEqual([]);
              for (const m of st.moves) ledger.tick(symbols[m.s], m.px);
              await engine.drain();
            } else if (st.k === 'snapshot') {
              await engine.snapshotAll();
            } else {
              await engine.close();
              engine = await createEngine(engineOptions(dir.path));
            }
            await verify(engine, ledger, `step ${n} (${st.k})`);
          }
        } finally {
          await engine.close();
        }
      }),
      { numRuns: 3 },
    );
  }, 240_000);
});
