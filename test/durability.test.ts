// Proves the durability promises of the engine on real LMDB and real worker processes:
// - kill -9 mid-stream loses no acknowledged trade and applies none twice; after restart every
//   figure equals an exact recomputation (independent decimal oracle) from the trades in the log;
// - a clean restart gives back the same figures, seq and states (snapshot + replay == live);
// - a shard worker crash under load is restarted from the store, subscribers are resynced, and no
//   trade is lost or doubled; trades during the restart fail with a retryable error;
// - time travel rebuilds a past state.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import type { PortfolioSnapshot, StoredEvent } from '../src/domain/types.js';
import { Ledger } from './oracle/ledger.js';
import { expectClose } from './oracle/compare.js';
import { Inbox, ensureBuilt, sleep, tempDir } from './support/engine.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

beforeAll(() => ensureBuilt());

async function open(dataDir: string, workers = 2): Promise<MtmEngine> {
  const engine = await createEngine({ dataDir, workers, allowFaultInjection: true, snapshotIntervalMs: 60_000 });
  cleanups.push(() => engine.close());
  return engine;
}

async function allEvents(engine: MtmEngine, type?: StoredEvent['type']): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let after = 0;
  for (;;) {
    const page = await engine.queryEvents({ type, after_seq: after, limit: 1000 });
    if (!page.ok) throw new Error(page.error.message);
    out.push(...page.value);
    if (page.value.length < 1000) return out;
    after = page.value[page.value.length - 1].seq;
  }
}

function checkAgainstOracle(snapshot: PortfolioSnapshot, ledger: Ledger): void {
  const f = ledger.portfolio(snapshot.portfolio_id);
  const label = snapshot.portfolio_id;
  expectClose(snapshot.cash, f.cash, `${label}.cash`);
  expectClose(snapshot.realized_pnl, f.realized_pnl, `${label}.realized_pnl`);
  expectClose(snapshot.unrealized_pnl, f.unrealized_pnl, `${label}.unrealized_pnl`);
  expectClose(snapshot.holdings_value, f.holdings_value, `${label}.holdings_value`);
  expectClose(snapshot.equity, f.equity, `${label}.equity`);
  expectClose(snapshot.total_return, f.total_return, `${label}.total_return`);
  expectClose(snapshot.return_rate, f.return_rate, `${label}.return_rate`);
  for (const p of snapshot.positions) {
    const e = ledger.position(snapshot.portfolio_id, p.symbol);
    if (e === undefined) throw new Error(`oracle has no ${p.symbol} in ${label}`);
    expectClose(p.quantity, e.quantity, `${label}.${p.symbol}.quantity`);
    expectClose(p.avg_cost, e.avg_cost, `${label}.${p.symbol}.avg_cost`);
    expectClose(p.market_value, e.market_value, `${label}.${p.symbol}.market_value`);
  }
}

describe('kill -9', () => {
  // 'lagging': the child's index transaction never comes, so the kill leaves every index entry and
  // trade-id key behind the log; the restart rebuilds them before it serves (store eventIndex.ts).
  for (const indexMode of ['default', 'lagging'] as const)
  it(`loses no acknowledged trade and applies none twice; figures equal an exact recomputation (index ${indexMode})`, async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const portfolios = 20;
    const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures/tradeStorm.mjs'), dir.path, String(portfolios), '5000', indexMode], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked = new Set<string>();
    let buffer = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child acked only ${acked.size} trades in time`)), 60_000);
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) if (line.startsWith('ack ')) acked.add(line.slice(4));
        if (acked.size >= 2_000) {
          clearTimeout(timer);
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => resolve());
    });
    await new Promise((r) => child.once('exit', r).once('close', r) && setTimeout(r, 2_000));
    expect(acked.size).toBeGreaterThanOrEqual(2_000);

    const engine = await open(dir.path);
    if (indexMode === 'lagging') expect(engine.storeStats().indexCaughtUpAtOpen).toBeGreaterThanOrEqual(2 * 2_000);
    const trades = await allEvents(engine, 'TradeExecuted');
    const ids = trades.map((e) => (e.type === 'TradeExecuted' ? e.trade_id : ''));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of acked) expect(ids).toContain(id);
    const ledger = new Ledger({ reuseUnchangedReplays: true });
    for (let p = 0; p < portfolios; p++) ledger.createPortfolio(`k${p}`, 1_000_000);
    for (const e of trades) {
      if (e.type !== 'TradeExecuted') continue;
      ledger.trade(e.portfolio_id, { symbol: e.symbol, side: e.side, quantity: e.quantity, price: e.price, fee: e.fee });
    }
    for (let p = 0; p < portfolios; p++) {
      const s = await engine.snapshot(`k${p}`);
      if (!s.ok) throw new Error(s.error.message);
      checkAgainstOracle(s.value, ledger);
    }
    // a trade re-sent after the restart is not applied twice
    const first = [...acked][0];
    const again = await engine.trade(`k${Number(first.slice(1)) % portfolios}`, { trade_id: first, symbol: 'AAA', side: 'buy', quantity: 1, price: 1 });
    expect(again.ok && again.value.applied).toBe(false);
  }, 120_000);
});

describe('lagging index', () => {
  it('a query right after a trade is acknowledged sees it (by portfolio, type, time, time travel) while the index lags', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const engine = await createEngine({ dataDir: dir.path, workers: 1, snapshotIntervalMs: 60_000, store: { indexEventsPerFlushMax: 1e9, indexLagMaxMs: 2e9, indexLaggingMax: 1e9 } });
    cleanups.push(() => engine.close());
    await engine.createPortfolio({ id: 'q1', cash: 10_000 });
    for (let t = 0; t < 5; t++) {
      const r = await engine.trade('q1', { trade_id: `q-${t}`, symbol: 'QQQ', side: 'buy', quantity: 1, price: 10 + t });
      expect(r.ok && r.value.applied).toBe(true);
      const ids = (events: StoredEvent[]) => events.flatMap((e) => (e.type === 'TradeExecuted' ? [e.trade_id] : []));
      const expected = Array.from({ length: t + 1 }, (_, i) => `q-${i}`);
      const byPortfolio = await engine.queryEvents({ portfolio_id: 'q1', limit: 1000 });
      const byType = await engine.queryEvents({ type: 'TradeExecuted', limit: 1000 });
      const byTime = await engine.queryEvents({ from: 0, to: Date.now() + 1, limit: 1000 });
      expect(byPortfolio.ok && ids(byPortfolio.value)).toEqual(expected);
      expect(byType.ok && ids(byType.value)).toEqual(expected);
      expect(byTime.ok && ids(byTime.value)).toEqual(expected);
      const past = await engine.snapshotAt('q1', Date.now() + 1);
      expect(past.ok && past.value.positions.map((p) => p.quantity)).toEqual([t + 1]);
    }
    // None of it went through the index yet: the answers came from the committed, unindexed part.
    expect(engine.storeStats().indexLagging).toBeGreaterThanOrEqual(2 * 5);
    const again = await engine.trade('q1', { trade_id: 'q-0', symbol: 'QQQ', side: 'buy', quantity: 1, price: 10 });
    expect(again.ok && again.value.applied).toBe(false);
  });
});

describe('restart', () => {
  it('a clean restart gives back the same figures, seq and states (snapshot + replay == live)', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    let engine = await createEngine({ dataDir: dir.path, workers: 2, snapshotIntervalMs: 60_000 });
    for (let p = 0; p < 12; p++) {
      await engine.createPortfolio({ id: `r${p}`, cash: 10_000, limits: p === 3 ? { max_loss: 5 } : {} });
      for (let t = 0; t < 6; t++) {
        await engine.trade(`r${p}`, { trade_id: `r${p}-${t}`, symbol: `S${t % 3}`, side: t % 4 === 3 ? 'sell' : 'buy', quantity: 2 + t, price: 50 + t, fee: 0.5 });
      }
      if (p === 5) await engine.pause(`r${p}`);
      if (p === 6) await engine.closePortfolio(`r${p}`);
      if (p === 7) await engine.cash(`r${p}`, { type: 'withdraw', amount: 100 });
    }
    // a snapshot in the middle, then more events that only replay can restore
    await engine.snapshotAll();
    engine.ingestTicks([
      { symbol: 'S0', price: 60 },
      { symbol: 'S1', price: 40 },
    ]);
    await engine.drain();
    await engine.trade('r1', { trade_id: 'late', symbol: 'S2', side: 'sell', quantity: 1, price: 70 });
    await engine.cash('r2', { type: 'deposit', amount: 123.45 });
    await engine.setLimits('r4', { max_drawdown_pct: 20 });
    const before = await Promise.all(engine.listPortfolios().map((p) => engine.snapshot(p.id)));
    // a kill at this point would lose the price flush; the test closes cleanly
    await engine.close();
    engine = await open(dir.path);
    const after = await Promise.all(engine.listPortfolios().map((p) => engine.snapshot(p.id)));
    // Ages move with the clock alone; the source timestamps behind them (price_ts) must survive the restart.
    const strip = (r: (typeof before)[number]) => (r.ok ? { ...r.value, as_of: 0, positions: r.value.positions.map((p) => ({ ...p, price_age_ms: 0 })) } : r);
    expect(after.map(strip)).toEqual(before.map(strip));
    expect(after.map((r) => r.ok && r.value.state)).toContain('paused');
    expect(after.map((r) => r.ok && r.value.state)).toContain('closed');
  });
});

describe('shard supervision', () => {
  it('restarts a crashed shard from the store, resyncs subscribers, loses and doubles no trade', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const engine = await open(dir.path);
    const ids = Array.from({ length: 16 }, (_, i) => `v${i}`);
    for (const id of ids) await engine.createPortfolio({ id, cash: 1_000 });
    const victim = engine.shardOf(ids[0]);
    const watched = ids.find((id) => engine.shardOf(id) === victim) as string;
    const inbox = new Inbox();
    const sub = engine.subscribe(watched, inbox.listener);
    expect(sub.ok).toBe(true);
    await inbox.until(() => inbox.snapshots().length === 1);
    const results: { id: string; trade: string; ok: boolean; code?: string; retryable?: boolean }[] = [];
    let n = 0;
    const load = (async () => {
      const started = Date.now();
      while (Date.now() - started < 1_500) {
        const id = ids[n % ids.length];
        const trade = `c${n++}`;
        const r = await engine.trade(id, { trade_id: trade, symbol: 'CR', side: 'buy', quantity: 1, price: 10 });
        results.push(r.ok ? { id, trade, ok: true } : { id, trade, ok: false, code: r.error.code, retryable: r.error.retryable });
      }
    })();
    await sleep(300);
    expect(engine.crashShard(victim, 'exit').ok).toBe(true);
    await load;
    await inbox.until(() => inbox.messages.some((m) => m.kind === 'snapshot' && m.resync));
    expect(engine.stats().shardRestarts).toBe(1);
    const failures = results.filter((r) => !r.ok);
    for (const f of failures) expect([f.code, f.retryable]).toEqual(['shard_restarting', true]);
    // every acknowledged trade is applied exactly once: quantities add up per portfolio
    for (const id of ids) {
      const acked = results.filter((r) => r.ok && r.id === id).length;
      const s = await engine.snapshot(id);
      if (!s.ok) throw new Error(s.error.message);
      expect(s.value.positions.find((p) => p.symbol === 'CR')?.quantity ?? 0).toBe(acked);
      expect(s.value.cash).toBe(1_000 - acked * 10);
    }
    const restarts = await engine.queryEvents({ type: 'ShardRestarted' });
    expect(restarts.ok && restarts.value.length).toBe(1);
    if (sub.ok) sub.value();
  });

  for (const how of ['throw', 'heap'] as const) {
    it(`recovers from a shard ${how === 'throw' ? 'uncaught exception' : 'hitting its heap limit'}`, async () => {
      const dir = tempDir();
      cleanups.push(() => dir.remove());
      const engine = await createEngine({ dataDir: dir.path, workers: 2, allowFaultInjection: true, shardHeapMb: 64 });
      cleanups.push(() => engine.close());
      await engine.createPortfolio({ id: 'h', cash: 100 });
      await engine.trade('h', { trade_id: 'h1', symbol: 'H', side: 'buy', quantity: 2, price: 5 });
      const shard = engine.shardOf('h');
      expect(engine.crashShard(shard, how).ok).toBe(true);
      const started = Date.now();
      while (engine.stats().shardRestarts < 1 || engine.shardStats()[shard].state !== 'ready') {
        if (Date.now() - started > 30_000) throw new Error('shard did not restart in 30 s');
        await sleep(20);
      }
      const s = await engine.snapshot('h');
      expect(s.ok && s.value.positions[0].quantity).toBe(2);
      const again = await engine.trade('h', { trade_id: 'h1', symbol: 'H', side: 'buy', quantity: 2, price: 5 });
      expect(again.ok && again.value.applied).toBe(false);
    }, 60_000);
  }

  it('fault injection is off unless asked for', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const engine = await createEngine({ dataDir: dir.path, workers: 1 });
    cleanups.push(() => engine.close());
    const r = engine.crashShard(0);
    expect(!r.ok && r.error.code).toBe('forbidden');
  });
});

describe('idempotency under a full trade-id memory', () => {
  // Regression, simulator swarm seed 542490174: with tradeIdsRememberedMax reached, remembering a new id
  // evicted one still in flight (in neither memory nor the store yet), so its duplicate applied twice.
  it('never forgets a trade id that is still in flight', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const engine = await createEngine({ dataDir: dir.path, workers: 1, limits: { tradeIdsRememberedMax: 8 } });
    cleanups.push(() => engine.close());
    await engine.createPortfolio({ id: 'm', cash: 1_000_000 });
    for (let i = 0; i < 8; i++) await engine.trade('m', { trade_id: `s${i}`, symbol: 'OLD', side: 'buy', quantity: 1, price: 1 });
    const trade = (id: string, symbol: string) => engine.trade('m', { trade_id: id, symbol, side: 'buy', quantity: 1, price: 1 });
    const burst = await Promise.all([trade('t100', 'DUP'), ...Array.from({ length: 8 }, (_, i) => trade(`d${i}`, 'NEW')), trade('t100', 'DUP')]);
    const dup = burst[burst.length - 1];
    expect(dup.ok && dup.value.applied).toBe(false);
    const refused = burst.filter((r) => !r.ok);
    for (const r of refused) expect(!r.ok && [r.error.code, r.error.retryable]).toEqual(['limit_exceeded', true]);
    const s = await engine.snapshot('m');
    expect(s.ok && s.value.positions.find((p) => p.symbol === 'DUP')?.quantity).toBe(1);
    expect(s.ok && s.value.positions.find((p) => p.symbol === 'NEW')?.quantity).toBe(8 - refused.length);
  });
});

describe('retention', () => {
  it('compacts events every snapshot covers, and a restart still gives the same figures', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    let engine = await createEngine({ dataDir: dir.path, workers: 2, retainEventsMs: 0, snapshotIntervalMs: 3_600_000 });
    await engine.createPortfolio({ id: 'ret', cash: 500 });
    for (let i = 0; i < 10; i++) await engine.trade('ret', { trade_id: `x${i}`, symbol: 'RT', side: 'buy', quantity: 1, price: 10 + i });
    const before = await engine.snapshot('ret');
    await engine.snapshotAll();
    expect(await engine.compact()).toBeGreaterThan(0);
    const left = await engine.queryEvents({ portfolio_id: 'ret' });
    expect(left.ok && left.value.length).toBe(0);
    await engine.close();
    engine = await open(dir.path);
    const after = await engine.snapshot('ret');
    expect(after.ok && before.ok && { ...after.value, as_of: 0 }).toEqual(before.ok && { ...before.value, as_of: 0 });
    // the trade ids stay durable after their events were compacted
    const again = await engine.trade('ret', { trade_id: 'x3', symbol: 'RT', side: 'buy', quantity: 1, price: 13 });
    expect(again.ok && again.value.applied).toBe(false);
  });
});

describe('time travel', () => {
  it('rebuilds a portfolio as it was at a past instant', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const engine = await open(dir.path);
    await engine.createPortfolio({ id: 'tt', cash: 1_000 });
    await engine.trade('tt', { trade_id: 'a', symbol: 'TT', side: 'buy', quantity: 10, price: 10 });
    await sleep(20);
    const between = Date.now();
    await sleep(20);
    await engine.trade('tt', { trade_id: 'b', symbol: 'TT', side: 'buy', quantity: 5, price: 12 });
    const past = await engine.snapshotAt('tt', between);
    expect(past.ok && past.value.positions[0]?.quantity).toBe(10);
    expect(past.ok && past.value.cash).toBe(900);
    const now = await engine.snapshotAt('tt', Date.now());
    expect(now.ok && now.value.positions[0]?.quantity).toBe(15);
    const before = await engine.snapshotAt('tt', between - 10_000);
    expect(!before.ok && before.error.code).toBe('portfolio_not_found');
  });
});
