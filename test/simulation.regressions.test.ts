// Regression tests for the engine bugs the seeded simulation found (docs/SIMULATION.md, "Bugs found"):
// each reproduces its bug directly through the real engine (shard workers, LMDB), so that it keeps
// guarding whatever the simulator's generator later becomes, and names the seed that found it.
// Seeds are `npm run simulate -- --seed S` (or `--seed S --swarm-shape` for swarm seeds) on the
// generator of the time; a later generator walks another history from the same seed. On the current
// generator, test/simulation.test.ts runs seeds that hit each of these bugs when its fix is reverted.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { Inbox, sleep, tempDir } from './support/engine.js';
import { Simulator, ratioScale } from './sim/simulator.js';
import { swarmShape } from './sim/swarmShape.js';
import { Dec } from './oracle/ledger.js';

const root = join(import.meta.dirname, '..');
beforeAll(() => {
  if (!existsSync(join(root, 'dist/bench/sim/host.js')) || !existsSync(join(root, 'dist/assembly/kernel.wasm'))) {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  }
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(): Promise<MtmEngine> {
  const dir = tempDir('mtm-simreg-');
  cleanups.push(() => dir.remove());
  const engine = await createEngine({ dataDir: dir.path, workers: 2, allowFaultInjection: true, snapshotIntervalMs: 3_600_000 });
  cleanups.push(() => engine.close());
  return engine;
}

/** Crashes a shard and waits (bounded) until it is back and has logged its restart. */
async function crashAndRecover(engine: MtmEngine, shard: number, how: 'exit' | 'throw' | 'heap' = 'exit'): Promise<void> {
  const before = engine.stats().shardRestarts;
  let logged = false;
  const off = engine.onEvent((e) => {
    if (e.type === 'ShardRestarted' && e.shard === shard) logged = true;
  });
  expect(engine.crashShard(shard, how).ok).toBe(true);
  const started = Date.now();
  while (!(logged && engine.shardStats()[shard].state === 'ready' && engine.stats().shardRestarts > before)) {
    if (Date.now() - started > 30_000) throw new Error(`shard ${shard} did not come back within 30 s`);
    await sleep(5);
  }
  off();
  await engine.drain();
}

function ids(engine: MtmEngine, shard: number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n && i < 10_000; i++) if (engine.shardOf(`r${i}`) === shard) out.push(`r${i}`);
  return out;
}

describe('bugs in the simulator found by its swarm', () => {
  // Swarm seed 2422952700, step 213: a trade of the stream racing a kill -9 was refused (an error answer,
  // rightly never logged) and a later trade of the same portfolio was logged; the durable-prefix check
  // counted the refused one as a lost trade. Refused trades are no gap (and must not be in the log).
  it('swarm seed 2422952700: a trade refused before kill -9 is not a gap in the durable prefix', async () => {
    const shape = swarmShape(2422952700);
    const r = await new Simulator({ seed: 2422952700, steps: shape.stepCount, rates: shape.rates, requestTimeoutMs: 60_000, replayable: false }).run();
    expect(r.failure === null ? null : `${r.failure.invariant} at step ${r.failure.step}: ${r.failure.message}`).toBeNull();
    expect(r.stepsRun).toBeGreaterThan(213);
  }, 120_000);

  // Swarm seed 2457852240, step 72: after withdrawing nearly all of a capital of ~4.5e5, the engine's
  // return_rate (509,541,881%) missed the oracle's (509,536,619%) by 5,261 and failed the run. The
  // engine divided by a capital that had cancelled: its float64 error is that of the deposits' ulp,
  // relative to the ~2e-3 left. The simulator's band counted only the numerator's error.
  it('swarm seed 2457852240: a ratio over a cancelled denominator gets its denominator error too', async () => {
    const engine = await open();
    await engine.createPortfolio({ id: 'c', cash: 123456789.123 });
    await engine.trade('c', { trade_id: 'b', symbol: 'CAP', side: 'buy', quantity: 1, price: 100 });
    await engine.trade('c', { trade_id: 's', symbol: 'CAP', side: 'sell', quantity: 1, price: 5100 });
    await engine.cash('c', { type: 'deposit', amount: 0.7 });
    const left = await engine.cash('c', { type: 'withdraw', amount: 123456789.82 });
    if (!left.ok) throw new Error(left.error.message);
    // Exact: capital 0.003, total_return 5,000 (realized): return_rate 1.67e8 %.
    const capital = new Dec('123456789.123').plus('0.7').minus('123456789.82');
    const rate = new Dec(5000).div(capital).times(100);
    const miss = new Dec(left.value.return_rate).minus(rate).abs();
    const scale = new Dec('123461789.823');
    // The engine misses the README tolerance here (float64 cannot do better: the known issue) ...
    expect(miss.gt(rate.times(1e-9))).toBe(true);
    // ... within the band that counts the denominator's error: float64-resolution, not a failure ...
    expect(miss.lte(ratioScale(scale, capital, rate).times(1e-12))).toBe(true);
    // ... which the numerator-only band of before did not hold.
    expect(miss.lte(scale.div(capital).times(100).times(1e-12))).toBe(false);
    // A real error of the same relative size over an ordinary capital still fails.
    expect(new Dec(12.5).times(1e-5).lte(ratioScale(scale, new Dec(1_000_000), new Dec(12.5)).times(1e-12))).toBe(false);
  });
});

describe('bugs found by the simulator', () => {
  it('swarm seed 3621630548: a paused portfolio answers portfolio_paused to a trade that does not reduce exposure, even an oversized one', async () => {
    // The accounting-depth change put the trade checks (currency, lots, size) before the lifecycle rule
    // in the paused state, so an oversized buy on a paused long answered invalid_quantity.
    const engine = await open();
    await engine.createPortfolio({ id: 'pz', cash: 1_000 });
    await engine.trade('pz', { trade_id: 'b', symbol: 'PZ', side: 'buy', quantity: 51_841_524, price: 1 });
    await engine.pause('pz');
    const r = await engine.trade('pz', { trade_id: 'big', symbol: 'PZ', side: 'buy', quantity: 51_841_524, price: 1 });
    expect(r.ok ? null : r.error.code).toBe('portfolio_paused');
    // A reducing trade is still checked: naming a lot an average-cost portfolio does not keep is refused.
    const named = await engine.trade('pz', { trade_id: 'n', symbol: 'PZ', side: 'sell', quantity: 1, price: 1, lot_ids: ['b'] });
    expect(named.ok ? null : named.error.code).toBe('invalid_lots');
    const sold = await engine.trade('pz', { trade_id: 's', symbol: 'PZ', side: 'sell', quantity: 1, price: 1 });
    expect(sold.ok).toBe(true);
  });

  it('seed 1 (and swarm seed 508687769): recovery does not raise the high-water mark to equities that never existed', async () => {
    const engine = await open();
    const [id] = ids(engine, 0, 1);
    await engine.createPortfolio({ id, cash: 1_000, limits: { max_drawdown_pct: 10 } });
    // A short opened and closed at 100 while the price was 100: equity never left 1,000.
    await engine.trade(id, { trade_id: 'a', symbol: 'HW', side: 'sell', quantity: 10, price: 100 });
    engine.ingestTick('HW', 100, 1);
    await engine.drain();
    await engine.trade(id, { trade_id: 'b', symbol: 'HW', side: 'buy', quantity: 10, price: 100 });
    // The price halves with no position: nothing happens to the portfolio.
    engine.ingestTick('HW', 50, 2);
    await engine.drain();
    const live = await engine.snapshot(id);
    expect(live.ok && live.value.equity_hwm).toBe(1_000);
    // Replaying 'a' at today's price valued the short at 50: a phantom mark of 1,500.
    await crashAndRecover(engine, 0);
    const after = await engine.snapshot(id);
    expect(after.ok && after.value.equity_hwm).toBe(1_000);
    // With the phantom, the next revaluation paused it at a 33% "drawdown".
    const r = await engine.cash(id, { type: 'deposit', amount: 1 });
    expect(r.ok && r.value.state).toBe('active');
  });

  it("seed 1: crashShard refuses a shard index that is not an integer and an unknown fault", async () => {
    const engine = await open();
    expect(engine.crashShard('0' as unknown as number).ok).toBe(false);
    expect(engine.crashShard(0.5).ok).toBe(false);
    expect(engine.crashShard(0, 'explode' as unknown as 'exit').ok).toBe(false);
    await sleep(300);
    expect(engine.stats().shardRestarts).toBe(0);
    expect(engine.shardStats().every((s) => s.state === 'ready')).toBe(true);
  });

  it('seed 2: a refused tick does not register its symbol (symbolsMax is a shared bound)', async () => {
    const engine = await open();
    const before = engine.stats().symbols;
    expect(engine.ingestTick('FRESH1', NaN, 1)).not.toBeNull();
    expect(engine.ingestTick('FRESH2', 10, -1)).not.toBeNull();
    expect(engine.ingestTick('FRESH3', 10, 1, -5)).not.toBeNull();
    const r = engine.ingestTicks([{ symbol: 'FRESH4', price: 1, ts: 'now' as unknown as number }, { symbol: 'FRESH5', price: Infinity }]);
    expect(r.accepted).toBe(0);
    expect(engine.stats().symbols).toBe(before);
    expect(engine.ingestTick('FRESH6', 10, 1)).toBeNull();
    expect(engine.stats().symbols).toBe(before + 1);
  });

  it('seed 4: queryEvents answers an error for a query that is not an object, never throws', async () => {
    const engine = await open();
    for (const q of [null, undefined, 5, 'all', []]) {
      const r = await engine.queryEvents(q as never);
      expect(r.ok).toBe(false);
    }
    expect((await engine.queryEvents({})).ok).toBe(true);
  });

  it('seed 5: after a shard restart, one of two subscribers unsubscribing does not silence the other', async () => {
    const engine = await open();
    const [id] = ids(engine, 1, 1);
    await engine.createPortfolio({ id, cash: 1_000 });
    const a = new Inbox();
    const b = new Inbox();
    const subA = engine.subscribe(id, a.listener);
    const subB = engine.subscribe(id, b.listener);
    expect(subA.ok && subB.ok).toBe(true);
    await a.until(() => a.snapshots().length === 1);
    await b.until(() => b.snapshots().length === 1);
    await crashAndRecover(engine, 1);
    await b.until(() => b.messages.some((m) => m.kind === 'snapshot' && m.resync));
    if (subA.ok) subA.value();
    await engine.trade(id, { trade_id: 'w1', symbol: 'WA', side: 'buy', quantity: 1, price: 10 });
    await b.until(() => b.updates().length > 0);
    expect(b.updates().at(-1)?.positions.map((p) => p.symbol)).toEqual(['WA']);
    if (subB.ok) subB.value();
  });

  it('seed 3: a new symbol while a shard restarts does not kill the starting worker', async () => {
    const engine = await open();
    const [other] = ids(engine, 1, 1);
    await engine.createPortfolio({ id: other, cash: 1_000 });
    let logged = 0;
    engine.onEvent((e) => {
      if (e.type === 'ShardRestarted') logged++;
    });
    expect(engine.crashShard(0, 'exit').ok).toBe(true);
    // Inside the window where the new worker exists but has not been sent the symbol table yet.
    const started = Date.now();
    while (engine.shardStats()[0].state !== 'starting' && Date.now() - started < 30_000) await new Promise((r) => setImmediate(r));
    expect(engine.shardStats()[0].state).toBe('starting');
    const t = await engine.trade(other, { trade_id: 'n1', symbol: 'NEWSYM', side: 'buy', quantity: 1, price: 5 });
    expect(t.ok).toBe(true);
    while (!(logged >= 1 && engine.shardStats()[0].state === 'ready') && Date.now() - started < 30_000) await sleep(5);
    await sleep(300);
    // One crash, one restart: the worker did not die again on "symbols registered in order".
    expect(engine.stats().shardRestarts).toBe(1);
    expect(logged).toBe(1);
    const [mine] = ids(engine, 0, 1);
    await engine.createPortfolio({ id: mine, cash: 1_000 });
    const u = await engine.trade(mine, { trade_id: 'n2', symbol: 'NEWSYM', side: 'buy', quantity: 1, price: 5 });
    expect(u.ok).toBe(true);
  });
});
