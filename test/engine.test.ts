// Proves the in-process engine end to end on real shard workers and real LMDB: worked accounting
// through the public API, ticks revaluing only what they touch, subscriptions (snapshot then deltas
// with seq and tick_ts), idempotent trade ids, bad input refused with nothing applied, the actor's
// risk lifecycle (breach -> paused -> reduce-only -> resume), sharding over two workers, and a clean
// shutdown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { Inbox, ensureBuilt, sleep, tempDir } from './support/engine.js';

let engine: MtmEngine;
const dir = tempDir();

beforeAll(async () => {
  ensureBuilt();
  engine = await createEngine({ workers: 2, dataDir: dir.path, allowFaultInjection: true });
});

afterAll(async () => {
  await engine?.close();
  dir.remove();
});

async function waitTicks(): Promise<void> {
  await engine.drain();
}

describe('worked example through the engine', () => {
  it('buy, tick, partial sell, fees, cash and totals', async () => {
    const created = await engine.createPortfolio({ id: 'w1', name: 'Worked', cash: 10_000 });
    expect(created.ok).toBe(true);
    const buy = await engine.trade('w1', { trade_id: 't1', symbol: 'AAPL', side: 'buy', quantity: 10, price: 100, fee: 1 });
    expect(buy.ok && buy.value.applied).toBe(true);
    if (!buy.ok) return;
    // cash 10000 - 1000 - 1; realized -1 (the fee); mark = trade price until a tick is seen
    expect(buy.value.totals.cash).toBe(8_999);
    expect(buy.value.totals.realized_pnl).toBe(-1);
    expect(buy.value.position.last_price).toBe(100);
    engine.ingestTick('AAPL', 110, Date.now());
    await waitTicks();
    const s1 = await engine.snapshot('w1');
    if (!s1.ok) throw new Error(s1.error.message);
    // holdings 10*110 = 1100; unrealized (110-100)*10 = 100; total return 99; return rate 99/10000*100
    expect(s1.value.holdings_value).toBe(1_100);
    expect(s1.value.unrealized_pnl).toBe(100);
    expect(s1.value.total_return).toBe(99);
    expect(s1.value.return_rate).toBeCloseTo(0.99, 12);
    expect(s1.value.equity).toBe(10_099);
    expect(s1.value.positions[0]).toMatchObject({ symbol: 'AAPL', quantity: 10, avg_cost: 100, last_price: 110, market_value: 1_100, weight: 100 });
    expect(s1.value.positions[0].return_rate).toBeCloseTo(10, 12);
    // a trade does not move the mark once a tick has been seen
    const sell = await engine.trade('w1', { trade_id: 't2', symbol: 'AAPL', side: 'sell', quantity: 4, price: 120, fee: 2 });
    if (!sell.ok) throw new Error(sell.error.message);
    // realized (120-100)*4 - 2 = 78; avg unchanged; cash 8999 + 480 - 2
    expect(sell.value.realized_pnl).toBe(78);
    expect(sell.value.position).toMatchObject({ quantity: 6, avg_cost: 100, last_price: 110 });
    expect(sell.value.totals.cash).toBe(9_477);
    expect(sell.value.totals.realized_pnl).toBe(77);
  });

  it('records the domain events of a close and a flip in the audit trail', async () => {
    await engine.createPortfolio({ id: 'w2', cash: 0 });
    await engine.trade('w2', { trade_id: 'a', symbol: 'BTC-USD', side: 'buy', quantity: 0.5, price: 40_000 });
    await engine.trade('w2', { trade_id: 'b', symbol: 'BTC-USD', side: 'sell', quantity: 0.75, price: 42_000 });
    const events = await engine.queryEvents({ portfolio_id: 'w2' });
    if (!events.ok) throw new Error('query failed');
    expect(events.value.map((e) => e.type)).toEqual(['PortfolioCreated', 'TradeExecuted', 'PositionOpened', 'TradeExecuted', 'PositionClosed', 'PositionOpened']);
    const closed = events.value.find((e) => e.type === 'PositionClosed');
    expect(closed).toMatchObject({ symbol: 'BTC-USD', realized_pnl: 1_000 });
    const reopened = events.value.at(-1);
    expect(reopened).toMatchObject({ type: 'PositionOpened', side: 'short', quantity: 0.25, price: 42_000 });
    const seqs = events.value.map((e) => e.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });
});

describe('subscriptions', () => {
  it('delivers a snapshot first, then deltas with increasing seq, tick_ts and only changed positions', async () => {
    await engine.createPortfolio({ id: 's1', cash: 1_000 });
    await engine.trade('s1', { trade_id: 'x', symbol: 'MSFT', side: 'buy', quantity: 1, price: 300 });
    await engine.trade('s1', { trade_id: 'y', symbol: 'IBM', side: 'buy', quantity: 2, price: 150 });
    const inbox = new Inbox();
    const sub = engine.subscribe('s1', inbox.listener);
    expect(sub.ok).toBe(true);
    await inbox.until(() => inbox.snapshots().length === 1);
    const first = inbox.snapshots()[0];
    const ts = Date.now();
    engine.ingestTick('MSFT', 310, ts);
    await inbox.until(() => inbox.updates().length >= 1);
    const u = inbox.updates()[0];
    expect(u.seq).toBe(first.seq + 1);
    expect(u.tick_ts).toBe(ts);
    expect(u.positions.map((p) => p.symbol)).toEqual(['MSFT']);
    expect(u.holdings_value).toBe(310 + 300);
    // an unchanged price changes nothing and emits nothing
    engine.ingestTick('MSFT', 310, ts + 1);
    engine.ingestTick('AAPL', 111, ts + 1);
    await sleep(60);
    expect(inbox.updates().length).toBe(1);
    if (sub.ok) sub.value();
  });
});

describe('idempotent trade ids', () => {
  it('applies a trade id once and answers the first result again, also when sent concurrently', async () => {
    await engine.createPortfolio({ id: 'i1', cash: 5_000 });
    const trade = { trade_id: 'dup-1', symbol: 'XOM', side: 'buy' as const, quantity: 3, price: 100 };
    const [a, b] = await Promise.all([engine.trade('i1', trade), engine.trade('i1', trade)]);
    const c = await engine.trade('i1', trade);
    expect(a.ok && b.ok && c.ok).toBe(true);
    if (!a.ok || !b.ok || !c.ok) return;
    expect([a.value.applied, b.value.applied, c.value.applied]).toEqual([true, false, false]);
    expect(c.value.totals).toEqual(a.value.totals);
    const snap = await engine.snapshot('i1');
    expect(snap.ok && snap.value.cash).toBe(4_700);
  });
});

describe('bad input is refused with a typed error naming the field, and nothing is applied', () => {
  it('refuses bad trades, ids and portfolios', async () => {
    await engine.createPortfolio({ id: 'b1', cash: 100 });
    const before = await engine.snapshot('b1');
    const cases: [unknown, string, string][] = [
      [{ trade_id: 'q', symbol: 'A', side: 'buy', quantity: 0, price: 1 }, 'invalid_quantity', 'quantity'],
      [{ trade_id: 'q', symbol: 'A', side: 'buy', quantity: -1, price: 1 }, 'invalid_quantity', 'quantity'],
      [{ trade_id: 'q', symbol: 'A', side: 'buy', quantity: 1e-9, price: 1 }, 'invalid_quantity', 'quantity'],
      [{ trade_id: 'q', symbol: 'A', side: 'buy', quantity: 1, price: Number.NaN }, 'invalid_price', 'price'],
      [{ trade_id: 'q', symbol: 'A', side: 'buy', quantity: 1, price: Infinity }, 'invalid_price', 'price'],
      [{ trade_id: 'q', symbol: 'A', side: 'buy', quantity: 1, price: 0 }, 'invalid_price', 'price'],
      [{ trade_id: 'q', symbol: 'A', side: 'hold', quantity: 1, price: 1 }, 'invalid_side', 'side'],
      [{ trade_id: 'q', symbol: 'A B', side: 'buy', quantity: 1, price: 1 }, 'invalid_symbol', 'symbol'],
      [{ trade_id: 'q', symbol: 'A', side: 'buy', quantity: 1, price: 1, fee: -1 }, 'invalid_fee', 'fee'],
      [{ trade_id: 'q', symbol: 'A', side: 'buy', quantity: 1e12, price: 1 }, 'invalid_quantity', 'quantity'],
    ];
    for (const [input, code, field] of cases) {
      const r = await engine.trade('b1', input as never);
      expect(r.ok, JSON.stringify(input)).toBe(false);
      if (!r.ok) expect([r.error.code, r.error.field]).toEqual([code, field]);
    }
    const unknown = await engine.trade('nope', { trade_id: 'z', symbol: 'A', side: 'buy', quantity: 1, price: 1 });
    expect(!unknown.ok && unknown.error.code).toBe('portfolio_not_found');
    const dup = await engine.createPortfolio({ id: 'b1' });
    expect(!dup.ok && dup.error.code).toBe('portfolio_exists');
    const after = await engine.snapshot('b1');
    expect(after.ok && before.ok).toBe(true);
    if (after.ok && before.ok) expect({ ...after.value, as_of: 0 }).toEqual({ ...before.value, as_of: 0 });
  });

  it('rejects a bad tick in a batch alone and counts it', () => {
    const before = engine.stats().ticksRejected;
    const r = engine.ingestTicks([
      { symbol: 'GOOD', price: 10 },
      { symbol: 'BAD!', price: 10 },
      { symbol: 'GOOD', price: -1 },
      { symbol: 'GOOD', price: Number.POSITIVE_INFINITY },
      { symbol: 'GOOD', price: 11, ts: Number.NaN },
      { symbol: 'GOOD', price: 12 },
    ]);
    expect(r.accepted).toBe(2);
    expect(r.rejected).toEqual([
      { index: 1, code: 'invalid_symbol' },
      { index: 2, code: 'invalid_price' },
      { index: 3, code: 'invalid_price' },
      { index: 4, code: 'invalid_timestamp' },
    ]);
    expect(engine.stats().ticksRejected - before).toBe(4);
  });
});

describe('risk lifecycle in the portfolio actor', () => {
  it('breach -> paused -> reduce-only -> resume', async () => {
    await engine.createPortfolio({ id: 'r1', cash: 10_000, limits: { max_loss: 50 } });
    await engine.trade('r1', { trade_id: 'r-1', symbol: 'RISK', side: 'buy', quantity: 10, price: 100 });
    engine.ingestTick('RISK', 94, Date.now());
    await engine.drain();
    await sleep(20);
    const s = await engine.snapshot('r1');
    expect(s.ok && s.value.state).toBe('paused');
    const events = await engine.queryEvents({ portfolio_id: 'r1', type: 'RiskLimitBreached' });
    expect(events.ok && events.value[0]).toMatchObject({ limit: 'max_loss', value: -60, threshold: 50 });
    const more = await engine.trade('r1', { trade_id: 'r-2', symbol: 'RISK', side: 'buy', quantity: 1, price: 94 });
    expect(!more.ok && more.error.code).toBe('portfolio_paused');
    const flip = await engine.trade('r1', { trade_id: 'r-3', symbol: 'RISK', side: 'sell', quantity: 20, price: 94 });
    expect(!flip.ok && flip.error.code).toBe('portfolio_paused');
    const reduce = await engine.trade('r1', { trade_id: 'r-4', symbol: 'RISK', side: 'sell', quantity: 5, price: 94 });
    expect(reduce.ok && reduce.value.position.quantity).toBe(5);
    const limits = await engine.setLimits('r1', { max_loss: 1_000 });
    expect(limits.ok).toBe(true);
    const resumed = await engine.resume('r1');
    expect(resumed.ok && resumed.value.state).toBe('active');
    const buy = await engine.trade('r1', { trade_id: 'r-5', symbol: 'RISK', side: 'buy', quantity: 1, price: 94 });
    expect(buy.ok).toBe(true);
    const again = await engine.resume('r1');
    expect(!again.ok && again.error.code).toBe('portfolio_not_paused');
  });

  it('a closed portfolio refuses trades', async () => {
    await engine.createPortfolio({ id: 'c1', cash: 10 });
    const closed = await engine.closePortfolio('c1');
    expect(closed.ok && closed.value.state).toBe('closed');
    const r = await engine.trade('c1', { trade_id: 'c', symbol: 'A', side: 'buy', quantity: 1, price: 1 });
    expect(!r.ok && r.error.code).toBe('portfolio_closed');
    expect(engine.listPortfolios().find((p) => p.id === 'c1')?.state).toBe('closed');
  });
});

describe('sharding', () => {
  it('spreads portfolios over both real workers by a stable hash and values them all', async () => {
    const ids = Array.from({ length: 24 }, (_, i) => `shard-${i}`);
    for (const id of ids) await engine.createPortfolio({ id, cash: 1_000 });
    const shards = new Set(ids.map((id) => engine.shardOf(id)));
    expect(shards).toEqual(new Set([0, 1]));
    await Promise.all(ids.map((id, i) => engine.trade(id, { trade_id: 'o', symbol: 'SHRD', side: 'buy', quantity: i + 1, price: 10 })));
    engine.ingestTick('SHRD', 12, Date.now());
    await engine.drain();
    for (const [i, id] of ids.entries()) {
      const s = await engine.snapshot(id);
      expect(s.ok && s.value.holdings_value).toBe((i + 1) * 12);
    }
    expect(engine.shardStats().map((s) => s.state)).toEqual(['ready', 'ready']);
  });
});

// A turn's commands go to the shard in messages of commandsPerMessageMax (shardHandle.ts), so the
// shard answers the first while it works on the next and their commit starts meanwhile.
describe('commands in several messages per turn', () => {
  it('applies every trade of a turn exactly once and in order over 13 messages of 8', async () => {
    const d = tempDir();
    const e = await createEngine({ workers: 1, dataDir: d.path, limits: { commandsPerMessageMax: 8 } });
    try {
      await e.createPortfolio({ id: 'cm1', cash: 1_000_000 });
      const acked: number[] = [];
      const all = Array.from({ length: 100 }, (_, i) =>
        e.trade('cm1', { trade_id: `cm-${i}`, symbol: 'CMX', side: 'buy', quantity: 1, price: 10 + i }).then((r) => {
          expect(r.ok && r.value.applied).toBe(true);
          acked.push(i);
          return r;
        }),
      );
      const results = await Promise.all(all);
      // Acks in submit order, and each trade saw exactly the ones before it (cash moves by each price).
      expect(acked).toEqual(Array.from({ length: 100 }, (_, i) => i));
      expect(results.map((r) => r.ok && r.value.position.quantity)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      const s = await e.snapshot('cm1');
      expect(s.ok && s.value.positions[0].quantity).toBe(100);
      expect(s.ok && s.value.cash).toBe(1_000_000 - (100 * 10 + (99 * 100) / 2));
    } finally {
      await e.close();
      d.remove();
    }
  });

  it('refuses a commandsPerMessageMax below 1 at start', async () => {
    await expect(createEngine({ workers: 1, limits: { commandsPerMessageMax: 0 } })).rejects.toThrow(/commandsPerMessageMax must be a whole number of commands >= 1/);
  });
});
