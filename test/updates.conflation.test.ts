// Proves conflation in the shard (Engine.holdDeltas, Shard.hold; issue 14 item 4): while every
// listener of a portfolio holds, its shard writes no delta for it, and the first delta after (a batch,
// a trade, a snapshot for a new listener, or the release itself) covers every change since the last
// one sent (from_seq < seq). Over random histories of trades, tick batches, holds and releases, and a
// listener joining mid-hold, driven through a real engine (real shard workers, real LMDB): a client
// applying the byte stream never sees a seq go back or a gap without from_seq, and once its hold is
// released holds exactly the figures of a snapshot taken at the same seq, equal to the exact decimal
// oracle (test/oracle/); and merged deltas were really sent (the shard skipped encoding).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import type { Listener } from '../src/engine/api.js';
import { applyUpdate } from '../src/protocol/view.js';
import { decodeDelta, heldPositionsOf } from '../src/protocol/delta.js';
import type { PortfolioSnapshot } from '../src/domain/types.js';
import { Ledger } from './oracle/ledger.js';
import { expectClose } from './oracle/compare.js';
import { ensureBuilt, tempDir } from './support/engine.js';
import { until } from './support/serverHarness.js';

beforeAll(() => ensureBuilt());
const dirs: { remove(): void }[] = [];
afterAll(() => dirs.forEach((d) => d.remove()));

const symbols = ['AA', 'BB', 'CC', 'DD'];
const portfolios = ['c0', 'c1'];

type Step =
  | { k: 'trade'; p: number; s: number; buy: boolean; q: number; px: number }
  | { k: 'ticks'; moves: { s: number; px: number }[] }
  | { k: 'hold'; p: number; on: boolean }
  | { k: 'join'; p: number };

const price = fc.integer({ min: 1, max: 2_000_000 }).map((n) => n / 1000);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('trade' as const), p: fc.nat(1), s: fc.nat(3), buy: fc.boolean(), q: fc.integer({ min: 1, max: 50_000 }).map((n) => n / 100), px: price }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant('ticks' as const), moves: fc.array(fc.record({ s: fc.nat(3), px: price }), { minLength: 1, maxLength: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('hold' as const), p: fc.nat(1), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('join' as const), p: fc.nat(1) }) },
);

/** A bytes listener keeping its own view from the deltas, checking order and from_seq as it goes. */
class Client {
  view: PortfolioSnapshot | null = null;
  merged = 0;
  problems: string[] = [];
  readonly listener: Listener = (m) => {
    if (m.kind === 'snapshot') {
      this.view = m.snapshot;
      return;
    }
    if (m.kind !== 'delta') return void this.problems.push('an object update to a bytes listener');
    const v = this.view;
    if (v === null) return;
    // Tick records decode against the positions this view holds (its snapshot plus the deltas since).
    const d = decodeDelta(m.delta.bytes, heldPositionsOf(v));
    if (!d.ok) return void this.problems.push(d.reason);
    const { from_seq: from, ...u } = d.value;
    if (u.seq <= v.seq) this.problems.push(`seq ${u.seq} after ${v.seq}`);
    if (from > v.seq + 1) this.problems.push(`gap: from_seq ${from} after seq ${v.seq}`);
    if (from < u.seq) this.merged++;
    this.view = applyUpdate(v, u);
  };
}

/** What a view and a snapshot share (as in test/updates.stream.test.ts): no ages, no price_ts. */
function figures(v: PortfolioSnapshot): Record<string, unknown> {
  const positions = [...v.positions].sort((a, b) => (a.symbol < b.symbol ? -1 : 1)).map(({ price_age_ms: _a, stale: _s, price_ts: _t, ...p }) => p);
  const { as_of: _as, positions: _p, name: _n, limits: _l, equity_hwm: _h, cash_balances: _c, stale_positions: _sp, ...totals } = v as PortfolioSnapshot & Record<string, unknown>;
  return { ...totals, positions };
}

function expectOracle(v: PortfolioSnapshot, ledger: Ledger, label: string): void {
  const f = ledger.portfolio(v.portfolio_id);
  for (const k of ['cash', 'holdings_value', 'cost_basis', 'unrealized_pnl', 'realized_pnl', 'equity'] as const) expectClose(v[k], f[k], `${label}.${k}`);
  for (const p of v.positions) {
    const e = ledger.position(v.portfolio_id, p.symbol);
    if (e === undefined) throw new Error(`${label}: oracle lacks ${p.symbol}`);
    for (const k of ['quantity', 'avg_cost', 'last_price', 'market_value', 'unrealized_pnl'] as const) expectClose(p[k], e[k], `${label}.${p.symbol}.${k}`);
  }
}

async function check(engine: MtmEngine, clients: Client[][], ledger: Ledger, label: string): Promise<void> {
  await engine.drain();
  for (let p = 0; p < portfolios.length; p++) {
    const r = await engine.snapshot(portfolios[p]);
    if (!r.ok) throw new Error(r.error.message);
    const snap = r.value;
    expectOracle(snap, ledger, `${label} snapshot ${snap.portfolio_id}`);
    for (const c of clients[p]) {
      await until(() => (c.view?.seq ?? -1) >= snap.seq, 10_000, `${label}: a listener of ${snap.portfolio_id} at seq ${snap.seq} (has ${c.view?.seq})`);
      expect(figures(c.view as PortfolioSnapshot), `${label} ${snap.portfolio_id}`).toEqual(figures(snap));
      expectOracle(c.view as PortfolioSnapshot, ledger, `${label} view ${snap.portfolio_id}`);
      expect(c.problems).toEqual([]);
    }
  }
}

describe('conflation in the shard', () => {
  it('a client applying the conflated byte stream holds the snapshot figures at the same seq, equal to the oracle', async () => {
    let run = 0;
    let merged = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 20, maxLength: 50 }), async (steps) => {
        run++;
        const dir = tempDir();
        dirs.push(dir);
        const engine = await createEngine({ dataDir: dir.path, workers: 2, suspectMovePct: 0, snapshotIntervalMs: 3_600_000 });
        try {
          const ledger = new Ledger();
          const clients: Client[][] = portfolios.map(() => []);
          const held: boolean[] = portfolios.map(() => false);
          const join = (p: number): void => {
            const c = new Client();
            const r = engine.subscribe(portfolios[p], c.listener, { bytes: true });
            if (!r.ok) throw new Error(r.error.message);
            clients[p].push(c);
          };
          for (let p = 0; p < portfolios.length; p++) {
            expect((await engine.createPortfolio({ id: portfolios[p], cash: 1_000_000 })).ok).toBe(true);
            ledger.createPortfolio(portfolios[p], 1_000_000);
            join(p);
          }
          let n = 0;
          for (const st of steps) {
            n++;
            if (st.k === 'trade') {
              const r = await engine.trade(portfolios[st.p], { trade_id: `r${run}t${n}`, symbol: symbols[st.s], side: st.buy ? 'buy' : 'sell', quantity: st.q, price: st.px });
              if (!r.ok) throw new Error(`trade refused: ${r.error.message}`);
              ledger.trade(portfolios[st.p], { symbol: symbols[st.s], side: st.buy ? 'buy' : 'sell', quantity: st.q, price: st.px });
            } else if (st.k === 'ticks') {
              expect(engine.ingestTicks(st.moves.map((m) => ({ symbol: symbols[m.s], price: m.px }))).rejected).toEqual([]);
              for (const m of st.moves) ledger.tick(symbols[m.s], m.px);
              // Some batches land while a hold is on: drained, so each step is its own batch.
              await engine.drain();
            } else if (st.k === 'hold') {
              // Every listener of the portfolio holds (the shard skips its deltas) or releases.
              held[st.p] = st.on;
              for (const c of clients[st.p]) engine.holdDeltas(portfolios[st.p], c.listener, st.on);
              if (!st.on) await check(engine, clients, ledger, `step ${n} release`);
            } else {
              // A listener joining mid-hold: its snapshot sends the held-back delta to the others first.
              join(st.p);
              if (held[st.p]) engine.holdDeltas(portfolios[st.p], clients[st.p][clients[st.p].length - 1].listener, true);
            }
          }
          for (let p = 0; p < portfolios.length; p++) for (const c of clients[p]) engine.holdDeltas(portfolios[p], c.listener, false);
          await check(engine, clients, ledger, 'end');
          merged += clients.flat().reduce((a, c) => a + c.merged, 0);
        } finally {
          await engine.close();
        }
      }),
      { numRuns: Number(process.env.CONFLATION_RUNS ?? 5), endOnFailure: true },
    );
    // The shard did skip encoding: deltas covering several seqs reached the clients.
    expect(merged).toBeGreaterThan(0);
  }, 300_000);
});
