// Proves corporate actions (issue "Accounting depth"), on real engines (2 shard workers, LMDB in a temp
// dir, an injected clock) and a real server, every figure against the exact decimal oracle
// (test/oracle/corporate.ts on top of test/oracle/lots.ts):
// - splits 2-for-1 and 1-for-3 (reverse), average and fifo: quantities and lots scaled, floored to 1e-8
//   with the remainder reported as dropped, market value unchanged up to it, the mark scaled with them,
//   and a tick printed before the split's effective time refused afterwards (pre_split_tick);
// - cash dividends: entitlement at ex_ts by the quantity held then (a later trade changes nothing), paid
//   at pay_ts into cash and realized P&L, short holders pay, foreign currencies credit their own cash
//   (converted into realized at the rate seen, or not at all without one);
// - symbol changes: positions and lots move (merged with a position already held), the log keeps the
//   old symbol's events, ticks on the new symbol revalue, watchers see the old symbol close;
// - one step reaches every holder on both workers in one commit with consecutive seqs, also while
//   trades keep coming; refusals (a split past quantityMax, positions that cannot merge) change nothing;
// - action_id is idempotent (also after a restart); every field is validated by name;
// - replay after a shard crash and after a clean close/reopen gives identical figures, and pending
//   actions survive a restart and apply when their time comes (by the timer too);
// - POST/GET /api/v1/corporate-actions through the real server: admin only to enter, any key to list.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import type { EngineOptions } from '../src/engine/api.js';
import type { Clock, PortfolioSnapshot, PositionView, StoredEvent } from '../src/domain/types.js';
import type { Result } from '../src/errors.js';
import { book, flat, type Method, type OraclePosition, type OracleTrade } from './oracle/lots.js';
import { dividend, rename, split, splitPrice } from './oracle/corporate.js';
import { Dec } from './oracle/ledger.js';
import { expectClose } from './oracle/compare.js';
import { Inbox, crashAndRecover, ensureBuilt, sleep, tempDir } from './support/engine.js';
import { http, startHarness, type Harness } from './support/serverHarness.js';

type D = InstanceType<typeof Dec>;

const T0 = Date.UTC(2026, 0, 5, 14, 30);

class TestClock implements Clock {
  t = T0;
  now(): number {
    return this.t;
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => ensureBuilt());

function dir(): string {
  const d = tempDir('mtm-corp-');
  cleanups.push(() => d.remove());
  return d.path;
}

async function open(path: string, clock: Clock, extra: EngineOptions = {}): Promise<MtmEngine> {
  const engine = await createEngine({ dataDir: path, workers: 2, snapshotIntervalMs: 600_000, allowFaultInjection: true, clock, corporateActionsCheckMs: 600_000, ...extra });
  cleanups.push(() => engine.close());
  return engine;
}

function must<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
}

async function snap(e: MtmEngine, id: string): Promise<PortfolioSnapshot> {
  return must(await e.snapshot(id, { lots: true }));
}

function pos(s: PortfolioSnapshot, symbol: string): PositionView {
  const p = s.positions.find((x) => x.symbol === symbol);
  if (p === undefined) throw new Error(`${s.portfolio_id} holds no ${symbol}: ${JSON.stringify(s.positions)}`);
  return p;
}

async function eventsOf(e: MtmEngine, query: Parameters<MtmEngine['queryEvents']>[0]): Promise<StoredEvent[]> {
  return must(await e.queryEvents({ limit: 1000, ...query }));
}

/** The figures of a snapshot without when it was taken (equity_hwm: replay never raises it). */
function figures(s: PortfolioSnapshot): unknown {
  const { as_of: _a, seq: _s, equity_hwm: _h, ...rest } = s;
  return rest;
}

/** Books trades in the engine and in the oracle; returns the oracle position. */
async function trades(e: MtmEngine, id: string, method: Method, symbol: string, list: OracleTrade[], o: OraclePosition = flat()): Promise<OraclePosition> {
  for (const t of list) {
    must(await e.trade(id, { trade_id: t.id, symbol, side: t.side, quantity: t.quantity, price: t.price, fee: t.fee, ts: t.ts }));
    o = book(method, o, t).position;
  }
  return o;
}

/** A position against the oracle: quantity exactly (fixed point), money within the tolerance. */
function expectPosition(p: PositionView, o: OraclePosition, mark: D, label: string): void {
  expect(p.quantity, `${label} quantity`).toBe(o.qty.toNumber());
  expectClose(p.avg_cost, o.avg, `${label} avg_cost`);
  expectClose(p.last_price, mark, `${label} last_price`);
  expectClose(p.market_value, o.qty.times(mark), `${label} market_value`);
  expectClose(p.unrealized_pnl, mark.minus(o.avg).times(o.qty), `${label} unrealized_pnl`);
}

function expectLots(s: PortfolioSnapshot, symbol: string, o: OraclePosition): void {
  const lots = s.lots?.[symbol] ?? [];
  expect(lots.map((l) => [l.lot_id, l.quantity, l.opened_ts])).toEqual(o.lots.map((l) => [l.id, l.qty.toNumber(), l.ts]));
  lots.forEach((l, i) => expectClose(l.price, o.lots[i].price, `${s.portfolio_id} lot ${l.lot_id} price`));
}

const buy = (id: string, quantity: number, price: number, ts: number): OracleTrade => ({ id, side: 'buy', quantity, price, ts });
const sell = (id: string, quantity: number, price: number, ts: number): OracleTrade => ({ id, side: 'sell', quantity, price, ts });

describe('splits', () => {
  it('2-for-1 (average): quantity doubles, cost and mark halve, market value unchanged; a pre-split tick is then refused', async () => {
    const clock = new TestClock();
    const e = await open(dir(), clock);
    must(await e.createPortfolio({ id: 'avg', cash: 100_000 }));
    must(await e.createPortfolio({ id: 'closed', cash: 1_000 }));
    let o = await trades(e, 'avg', 'average', 'SPL', [buy('t1', 10, 100, 1), buy('t2', 5, 130, 2)]);
    let c = await trades(e, 'closed', 'average', 'SPL', [buy('c1', 4, 120, 1)]);
    must(await e.closePortfolio('closed'));
    expect(e.ingestTick('SPL', 150, T0 - 100)).toBeNull();
    await e.drain();
    const before = await snap(e, 'avg');
    expectPosition(pos(before, 'SPL'), o, new Dec(150), 'before');

    const r = must(await e.corporateAction({ action_id: 'split-1', type: 'split', symbol: 'SPL', from: 1, to: 2 }));
    expect(r.created).toBe(true);
    expect(r.action).toMatchObject({ status: 'applied', effective_ts: T0, steps: [{ step: 'split', applied_ts: T0, holders: 2 }], error: null });

    const s = split('average', o, 1, 2);
    o = s.position;
    const mark = splitPrice(150, 1, 2);
    const after = await snap(e, 'avg');
    expectPosition(pos(after, 'SPL'), o, mark, 'after');
    expect(pos(after, 'SPL').quantity).toBe(30);
    expectClose(pos(after, 'SPL').market_value, new Dec(15).times(150), 'market value unchanged');
    expectClose(after.equity, new Dec(before.equity), 'equity unchanged');
    expect(after.realized_pnl).toBe(before.realized_pnl);
    // Corporate actions are not trades: a closed portfolio's position is split too.
    c = split('average', c, 1, 2).position;
    const closed = await snap(e, 'closed');
    expect(closed.state).toBe('closed');
    expectPosition(pos(closed, 'SPL'), c, mark, 'closed portfolio');

    const applied = await eventsOf(e, { portfolio_id: 'avg', type: 'SplitApplied' });
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatchObject({ action_id: 'split-1', symbol: 'SPL', from: 1, to: 2, quantity_before: 15, quantity_after: 30, dropped_quantity: 0 });

    const rejected = e.stats().ticksRejected;
    expect(e.ingestTick('SPL', 151, T0 - 1)).toBe('pre_split_tick');
    expect(e.ingestTicks([{ symbol: 'SPL', price: 152, ts: T0 - 50 }]).rejected).toEqual([{ index: 0, code: 'pre_split_tick' }]);
    expect(e.stats().ticksRejected).toBe(rejected + 2);
    expect(e.counters.ticksRejectedByReason.get('pre_split_tick')).toBe(2);
    await e.drain();
    expectPosition(pos(await snap(e, 'avg'), 'SPL'), o, mark, 'pre-split ticks did not move the mark');
    expect(e.ingestTick('SPL', 76, T0 + 10)).toBeNull();
    await e.drain();
    expectPosition(pos(await snap(e, 'avg'), 'SPL'), o, new Dec(76), 'a post-split tick revalues');
  });

  it('1-for-3 reverse (fifo lots one by one, average as a whole): floored to 1e-8, the remainder dropped and reported', async () => {
    const clock = new TestClock();
    const e = await open(dir(), clock);
    const list = [buy('a', 10, 30, 1), buy('b', 5.5, 33, 2), buy('c', 0.00000002, 40, 3), sell('s', 0.5, 36, 4)];
    const o: Record<string, OraclePosition> = {};
    for (const [id, method] of [['fifo', 'fifo'], ['avg', 'average'], ['short', 'average']] as const) {
      must(await e.createPortfolio({ id, cash: 10_000, cost_basis_method: method }));
      const t = id === 'short' ? [sell('x', 7.00000001, 31, 1)] : list;
      o[id] = await trades(e, id, method, 'REV', t);
    }
    e.ingestTick('REV', 35, T0 - 100);
    await e.drain();
    const before = Object.fromEntries(await Promise.all(['fifo', 'avg', 'short'].map(async (id) => [id, await snap(e, id)] as const)));

    must(await e.corporateAction({ action_id: 'rev-1', type: 'split', symbol: 'REV', from: 3, to: 1, effective_ts: T0 }));
    const mark = splitPrice(35, 3, 1);
    const events = await eventsOf(e, { type: 'SplitApplied' });
    for (const [id, method] of [['fifo', 'fifo'], ['avg', 'average'], ['short', 'average']] as const) {
      const s = split(method, o[id], 3, 1);
      const after = await snap(e, id);
      expectPosition(pos(after, 'REV'), s.position, mark, id);
      if (method === 'fifo') expectLots(after, 'REV', s.position);
      const ev = events.find((x) => x.portfolio_id === id);
      expect(ev?.type === 'SplitApplied' && [ev.quantity_before, ev.quantity_after]).toEqual([o[id].qty.toNumber(), s.position.qty.toNumber()]);
      // Dropped quantities are fractions of 1e-8: compared in units of 1e-8.
      if (ev?.type === 'SplitApplied') expectClose(ev.dropped_quantity * 1e8, s.dropped.times(1e8), `${id} dropped_quantity`);
      // Market value unchanged up to the dropped remainder, valued at the new mark.
      const lost = new Dec(pos(before[id], 'REV').market_value).minus(pos(after, 'REV').market_value);
      expectClose(lost.toNumber(), s.dropped.times(mark).times(o[id].qty.isNegative() ? -1 : 1), `${id} market value lost`);
    }
    // Lots floor one by one, the average method floors the whole position: different remainders.
    expect(pos(await snap(e, 'fifo'), 'REV').quantity).toBe(4.99999999);
    expect(pos(await snap(e, 'avg'), 'REV').quantity).toBe(5);
    expect((await snap(e, 'fifo')).lots?.REV.map((l) => l.lot_id)).toEqual(['a', 'b']);
    // The suspect-tick filter's reference followed the split (35 -> 105): a post-split print is applied,
    // not held as a 200% move.
    expect(e.ingestTick('REV', 106, T0 + 10)).toBeNull();
    await e.drain();
    expect(e.suspectTicks()).toEqual([]);
    expect(pos(await snap(e, 'avg'), 'REV').last_price).toBe(106);
  });

  it('refuses a split that would take a holding past quantityMax, and changes nothing anywhere', async () => {
    const clock = new TestClock();
    const e = await open(dir(), clock);
    for (const id of ['big', 'small']) must(await e.createPortfolio({ id, cash: 0 }));
    must(await e.trade('big', { trade_id: 'b', symbol: 'HUGE', side: 'buy', quantity: 50_000_000, price: 1 }));
    must(await e.trade('small', { trade_id: 's', symbol: 'HUGE', side: 'buy', quantity: 1, price: 1 }));
    const before = await Promise.all(['big', 'small'].map(async (id) => figures(await snap(e, id))));
    const r = await e.corporateAction({ action_id: 'too-big', type: 'split', symbol: 'HUGE', from: 1, to: 2 });
    expect(r.ok ? null : r.error).toMatchObject({ code: 'invalid_quantity', field: 'to' });
    expect(r.ok ? '' : r.error.message).toMatch(/portfolio 'big'.*above 90000000/);
    expect(await Promise.all(['big', 'small'].map(async (id) => figures(await snap(e, id))))).toEqual(before);
    expect(await eventsOf(e, { portfolio_id: '_corporate' })).toEqual([]);
    expect(must(await e.listCorporateActions()).actions).toEqual([]);
    // Nothing logged, so the id is still free.
    expect(must(await e.corporateAction({ action_id: 'too-big', type: 'split', symbol: 'HUGE', from: 2, to: 3 })).created).toBe(true);
  });
});

describe('cash dividends', () => {
  it('entitles by the quantity held at ex_ts, pays at pay_ts into cash and realized P&L; later trades change nothing', async () => {
    const clock = new TestClock();
    const e = await open(dir(), clock);
    for (const id of ['long', 'short', 'gone', 'late']) must(await e.createPortfolio({ id, cash: 10_000 }));
    await trades(e, 'long', 'average', 'DIV', [buy('l1', 100, 20, 1)]);
    await trades(e, 'short', 'average', 'DIV', [sell('s1', 40, 20, 1)]);
    await trades(e, 'gone', 'average', 'DIV', [buy('g1', 10, 20, 1), sell('g2', 10, 21, 2)]);

    const announced = must(await e.corporateAction({ action_id: 'div-1', type: 'dividend', symbol: 'DIV', amount_per_share: 0.37, ex_ts: T0 + 1_000, pay_ts: T0 + 5_000 }));
    expect(announced).toMatchObject({ created: true, action: { status: 'pending', steps: [], ex_ts: T0 + 1_000, pay_ts: T0 + 5_000 } });
    clock.t = T0 + 500;
    await e.checkCorporateActions();
    expect(await eventsOf(e, { type: 'DividendEntitled' })).toEqual([]);
    must(await e.trade('long', { trade_id: 'l2', symbol: 'DIV', side: 'buy', quantity: 50, price: 20 }));

    clock.t = T0 + 1_000;
    await e.checkCorporateActions();
    const entitled = await eventsOf(e, { type: 'DividendEntitled' });
    expect(entitled.map((x) => x.type === 'DividendEntitled' && [x.portfolio_id, x.quantity, x.amount_per_share, x.pay_ts, x.currency])).toEqual(
      expect.arrayContaining([
        ['long', 150, 0.37, T0 + 5_000, 'USD'],
        ['short', -40, 0.37, T0 + 5_000, 'USD'],
      ]),
    );
    expect(entitled).toHaveLength(2);
    expect(must(await e.listCorporateActions()).actions[0]).toMatchObject({ status: 'pending', steps: [{ step: 'ex_date', applied_ts: T0 + 1_000, holders: 2 }] });

    clock.t = T0 + 2_000;
    must(await e.trade('long', { trade_id: 'l3', symbol: 'DIV', side: 'sell', quantity: 100, price: 20 }));
    must(await e.trade('late', { trade_id: 'x1', symbol: 'DIV', side: 'buy', quantity: 30, price: 20 }));
    const before = Object.fromEntries(await Promise.all(['long', 'short', 'gone', 'late'].map(async (id) => [id, await snap(e, id)] as const)));
    clock.t = T0 + 4_999;
    await e.checkCorporateActions();
    expect(await eventsOf(e, { type: 'DividendPaid' })).toEqual([]);

    clock.t = T0 + 5_000;
    await e.checkCorporateActions();
    for (const [id, held] of [['long', 150], ['short', -40]] as const) {
      const d = dividend(held, 0.37, 1);
      const after = await snap(e, id);
      expectClose(after.cash - before[id].cash, d.amount, `${id} cash credited`);
      expectClose(after.realized_pnl - before[id].realized_pnl, d.realized, `${id} realized as income`);
      expect(after.capital).toBe(before[id].capital);
      const [paid] = await eventsOf(e, { portfolio_id: id, type: 'DividendPaid' });
      expect(paid).toMatchObject({ action_id: 'div-1', symbol: 'DIV', currency: 'USD', fx_rate: 1, ts: T0 + 5_000 });
      if (paid.type === 'DividendPaid') {
        expectClose(paid.amount, d.amount, `${id} DividendPaid.amount`);
        expectClose(paid.realized, d.realized, `${id} DividendPaid.realized`);
      }
    }
    for (const id of ['gone', 'late']) {
      expect(figures(await snap(e, id))).toEqual(figures(before[id]));
      expect(await eventsOf(e, { portfolio_id: id, type: 'DividendPaid' })).toEqual([]);
    }
    expect(must(await e.listCorporateActions()).actions[0]).toMatchObject({ status: 'applied', steps: [{ step: 'ex_date' }, { step: 'pay_date', applied_ts: T0 + 5_000, holders: 2 }] });
  });

  it('pays in the quote currency: foreign cash credited, realized converted at the rate seen (or not at all without one)', async () => {
    const clock = new TestClock();
    const e = await open(dir(), clock);
    must(await e.createPortfolio({ id: 'usd', cash: 10_000 }));
    must(await e.trade('usd', { trade_id: 'sap', symbol: 'SAP', side: 'buy', quantity: 10, price: 100, currency: 'EUR', fx_rate: 1.1 }));
    must(await e.trade('usd', { trade_id: 'vod', symbol: 'VOD', side: 'buy', quantity: 200, price: 1.5, currency: 'GBP', fx_rate: 1.3 }));
    e.ingestTick('EURUSD', 1.2, T0 - 10);
    await e.drain();
    const before = await snap(e, 'usd');
    // ex_ts = pay_ts = now: entitled and paid in the answer.
    const r = must(await e.corporateAction({ action_id: 'sap-div', type: 'dividend', symbol: 'SAP', amount_per_share: 2.15, ex_ts: T0, pay_ts: T0 }));
    expect(r.action).toMatchObject({ status: 'applied', steps: [{ step: 'ex_date' }, { step: 'pay_date' }] });
    must(await e.corporateAction({ action_id: 'vod-div', type: 'dividend', symbol: 'VOD', amount_per_share: 0.07, ex_ts: T0, pay_ts: T0 }));
    const after = await snap(e, 'usd');
    const eur = dividend(10, 2.15, 1.2);
    const gbp = dividend(200, 0.07, null);
    expectClose(after.cash_balances.EUR - before.cash_balances.EUR, eur.amount, 'EUR cash');
    expectClose(after.cash_balances.GBP - before.cash_balances.GBP, gbp.amount, 'GBP cash');
    expect(after.cash).toBe(before.cash);
    expectClose(after.realized_pnl - before.realized_pnl, eur.realized.plus(gbp.realized), 'realized: EUR converted, GBP not');
    const paid = await eventsOf(e, { portfolio_id: 'usd', type: 'DividendPaid' });
    expect(paid.map((p) => p.type === 'DividendPaid' && [p.symbol, p.currency, p.fx_rate])).toEqual([
      ['SAP', 'EUR', 1.2],
      ['VOD', 'GBP', null],
    ]);
    expect(paid[1]).toMatchObject({ realized: 0 });
  });
});

describe('symbol changes', () => {
  it('moves positions and lots (merging into one already held), keeps the old symbol in the log, and revalues on the new symbol', async () => {
    const clock = new TestClock();
    const e = await open(dir(), clock);
    must(await e.createPortfolio({ id: 'f', cash: 10_000, cost_basis_method: 'fifo' }));
    must(await e.createPortfolio({ id: 'm', cash: 10_000, cost_basis_method: 'fifo' }));
    must(await e.createPortfolio({ id: 'a', cash: 10_000 }));
    must(await e.createPortfolio({ id: 'ma', cash: 10_000 }));
    const oF = await trades(e, 'f', 'fifo', 'OLD', [buy('l1', 10, 50, 1), buy('l2', 5, 60, 3)]);
    const oM = await trades(e, 'm', 'fifo', 'OLD', [buy('m1', 4, 55, 2)]);
    const oMNew = await trades(e, 'm', 'fifo', 'NEW', [buy('n1', 6, 58, 1), buy('n2', 1, 57, 4)]);
    const oA = await trades(e, 'a', 'average', 'OLD', [buy('a1', 8, 40, 1)]);
    const oMa = await trades(e, 'ma', 'average', 'OLD', [buy('x1', 3, 41, 1)]);
    const oMaNew = await trades(e, 'ma', 'average', 'NEW', [buy('x2', 2, 46, 2)]);
    e.ingestTick('OLD', 62, T0 - 100);
    await e.drain();
    const inbox = new Inbox();
    must(e.subscribe('a', inbox.listener));
    await inbox.until(() => inbox.snapshots().length === 1);

    const r = must(await e.corporateAction({ action_id: 'ren-1', type: 'symbol_change', symbol: 'OLD', new_symbol: 'NEW' }));
    expect(r.action).toMatchObject({ status: 'applied', steps: [{ step: 'symbol_change', holders: 4 }] });
    const mark = new Dec(62); // NEW had no tick: it takes OLD's last price
    const f = await snap(e, 'f');
    expect(f.positions.map((p) => p.symbol)).toEqual(['NEW']);
    expectPosition(pos(f, 'NEW'), oF, mark, 'f');
    expectLots(f, 'NEW', oF);
    const m = await snap(e, 'm');
    const merged = rename('fifo', oM, oMNew);
    expectPosition(pos(m, 'NEW'), merged, mark, 'm merged');
    expectLots(m, 'NEW', merged);
    expect(m.lots?.NEW.map((l) => l.lot_id)).toEqual(['n1', 'm1', 'n2']);
    expectPosition(pos(await snap(e, 'a'), 'NEW'), rename('average', oA, null), mark, 'a');
    expectPosition(pos(await snap(e, 'ma'), 'NEW'), rename('average', oMa, oMaNew), mark, 'ma merged');
    expect(must(await e.lots('f', 'NEW')).lots.map((l) => l.lot_id)).toEqual(['l1', 'l2']);
    expect((await e.lots('f', 'OLD')).ok).toBe(false);

    // History keeps the old symbol: events are never rewritten.
    const traded = await eventsOf(e, { portfolio_id: 'f', type: 'TradeExecuted' });
    expect(traded.map((x) => x.type === 'TradeExecuted' && x.symbol)).toEqual(['OLD', 'OLD']);
    const changed = await eventsOf(e, { type: 'SymbolChanged' });
    expect(changed.map((x) => x.type === 'SymbolChanged' && [x.portfolio_id, x.from_symbol, x.to_symbol, x.quantity, x.merged]).sort()).toEqual(
      [
        ['a', 'OLD', 'NEW', 8, false],
        ['f', 'OLD', 'NEW', 15, false],
        ['m', 'OLD', 'NEW', 4, true],
        ['ma', 'OLD', 'NEW', 3, true],
      ].sort(),
    );
    // A watcher sees the old symbol close and the new one open, in one update.
    await inbox.until(() => inbox.updates().some((u) => u.positions.some((p) => p.symbol === 'NEW')));
    const update = inbox.updates().find((u) => u.positions.some((p) => p.symbol === 'NEW'));
    expect(update?.positions.map((p) => [p.symbol, p.quantity]).sort()).toEqual([
      ['NEW', 8],
      ['OLD', 0],
    ]);

    e.ingestTick('NEW', 64, T0 + 10);
    e.ingestTick('OLD', 10, T0 + 10);
    await e.drain();
    expectPosition(pos(await snap(e, 'f'), 'NEW'), oF, new Dec(64), 'f after a tick on NEW');
    expect((await snap(e, 'f')).positions).toHaveLength(1);
  });

  it('refuses, as a whole, a change into a position held on the other side; nothing changes', async () => {
    const clock = new TestClock();
    const e = await open(dir(), clock);
    for (const id of ['ok', 'clash']) must(await e.createPortfolio({ id, cash: 1_000 }));
    must(await e.trade('ok', { trade_id: 'o', symbol: 'AAA', side: 'buy', quantity: 1, price: 10 }));
    must(await e.trade('clash', { trade_id: 'c1', symbol: 'AAA', side: 'buy', quantity: 1, price: 10 }));
    must(await e.trade('clash', { trade_id: 'c2', symbol: 'BBB', side: 'sell', quantity: 1, price: 10 }));
    const before = await Promise.all(['ok', 'clash'].map(async (id) => figures(await snap(e, id))));
    const r = await e.corporateAction({ action_id: 'ren', type: 'symbol_change', symbol: 'AAA', new_symbol: 'BBB' });
    expect(r.ok ? null : r.error).toMatchObject({ code: 'invalid_quantity', field: 'new_symbol' });
    expect(r.ok ? '' : r.error.message).toMatch(/portfolio 'clash'.*other side/);
    expect(await Promise.all(['ok', 'clash'].map(async (id) => figures(await snap(e, id))))).toEqual(before);
    expect(await eventsOf(e, { type: 'SymbolChanged' })).toEqual([]);
  });
});

describe('atomic application', () => {
  it('applies one step to every holder on both workers in one commit with consecutive seqs, also while trades keep coming', async () => {
    const clock = new TestClock();
    const path = dir();
    let e = await open(path, clock);
    const ids = Array.from({ length: 10 }, (_, i) => `p${i}`);
    expect(new Set(ids.map((id) => e.shardOf(id)))).toEqual(new Set([0, 1]));
    const o: Record<string, OraclePosition> = {};
    for (const [i, id] of ids.entries()) {
      must(await e.createPortfolio({ id, cash: 100_000, cost_basis_method: i % 2 === 0 ? 'fifo' : 'average' }));
      o[id] = await trades(e, id, i % 2 === 0 ? 'fifo' : 'average', 'ATM', [buy(`${id}-1`, 3 + i, 100 + i, 1), buy(`${id}-2`, 1.5, 90, 2)]);
    }
    e.ingestTick('ATM', 100, T0 - 1);
    await e.drain();
    const lastSeq = e.storeStats().lastSeq;
    const commits = e.storeStats().commitsTotal;
    // Trades racing the split: each lands wholly before or wholly after it, in the log as in memory.
    const racing = ids.flatMap((id, i) => [
      e.trade(id, { trade_id: `${id}-race`, symbol: 'ATM', side: 'buy', quantity: 1, price: 101, ts: 10 + i }),
      e.trade(id, { trade_id: `${id}-other`, symbol: 'OTH', side: 'buy', quantity: 2, price: 5, ts: 10 + i }),
    ]);
    const r = await e.corporateAction({ action_id: 'atm-split', type: 'split', symbol: 'ATM', from: 2, to: 5 });
    for (const t of await Promise.all(racing)) must(t);
    expect(must(r).action.steps).toEqual([{ step: 'split', applied_ts: T0, holders: 10 }]);
    expect(e.storeStats().commitsTotal).toBeGreaterThan(commits);

    const log = (await eventsOf(e, {})).filter((x) => x.seq > lastSeq);
    const first = log.findIndex((x) => x.type === 'CorporateActionAnnounced');
    const block = log.slice(first, first + ids.length + 2);
    expect(block.map((x) => x.type)).toEqual(['CorporateActionAnnounced', ...ids.map(() => 'SplitApplied'), 'CorporateActionApplied']);
    expect(block.map((x) => x.seq)).toEqual(block.map((_, k) => block[0].seq + k));
    expect(new Set(block.filter((x) => x.type === 'SplitApplied').map((x) => x.portfolio_id))).toEqual(new Set(ids));

    // Each racing ATM trade is booked on the side of the split the log says: the oracle follows the log.
    const rows = log.filter((x) => x.type === 'TradeExecuted' || x.type === 'SplitApplied');
    for (const id of ids) {
      const method: Method = ids.indexOf(id) % 2 === 0 ? 'fifo' : 'average';
      let p = o[id];
      for (const x of rows.filter((y) => y.portfolio_id === id)) {
        if (x.type === 'SplitApplied') p = split(method, p, 2, 5).position;
        else if (x.type === 'TradeExecuted' && x.symbol === 'ATM') p = book(method, p, { id: x.trade_id, side: x.side, quantity: x.quantity, price: x.price, ts: x.trade_ts }).position;
      }
      o[id] = p;
      expectPosition(pos(await snap(e, id), 'ATM'), p, splitPrice(100, 2, 5), id);
    }
    const live = await Promise.all(ids.map(async (id) => figures(await snap(e, id))));
    await crashAndRecover(e, ids.find((id) => e.shardOf(id) === 0) as string);
    await crashAndRecover(e, ids.find((id) => e.shardOf(id) === 1) as string);
    expect(await Promise.all(ids.map(async (id) => figures(await snap(e, id))))).toEqual(live);
    await e.close();
    e = await open(path, clock);
    expect(await Promise.all(ids.map(async (id) => figures(await snap(e, id))))).toEqual(live);
  });
});

describe('a shard down', () => {
  it('refuses a step due now while a shard restarts (retryable, nothing logged), applies it once every shard is back', async () => {
    const clock = new TestClock();
    const e = await open(dir(), clock);
    const ids = ['d0', 'd1', 'd2', 'd3'];
    for (const id of ids) {
      must(await e.createPortfolio({ id, cash: 1_000 }));
      must(await e.trade(id, { trade_id: 't', symbol: 'DWN', side: 'buy', quantity: 2, price: 10 }));
    }
    const before = await Promise.all(ids.map(async (id) => figures(await snap(e, id))));
    const body = { action_id: 'down', type: 'split', symbol: 'DWN', from: 1, to: 2 };
    expect(e.crashShard(e.shardOf('d0'), 'exit').ok).toBe(true);
    const r = await e.corporateAction(body);
    expect(r.ok ? null : r.error).toMatchObject({ code: 'shard_restarting', retryable: true });
    await waitFor(async () => e.shardStats().every((s) => s.state === 'ready'));
    expect(await Promise.all(ids.map(async (id) => figures(await snap(e, id))))).toEqual(before);
    expect(await eventsOf(e, { portfolio_id: '_corporate' })).toEqual([]);
    expect(must(await e.corporateAction(body)).action).toMatchObject({ status: 'applied', steps: [{ holders: 4 }] });
    for (const id of ids) expect(pos(await snap(e, id), 'DWN').quantity).toBe(4);
  });
});

describe('idempotency and validation', () => {
  it('answers the same action_id with the action as it stands (also after a restart); another body under it is refused', async () => {
    const clock = new TestClock();
    const path = dir();
    let e = await open(path, clock);
    must(await e.createPortfolio({ id: 'p', cash: 1_000 }));
    must(await e.trade('p', { trade_id: 't', symbol: 'IDM', side: 'buy', quantity: 3, price: 10 }));
    const body = { action_id: 'once', type: 'split', symbol: 'IDM', from: 1, to: 4 };
    const [a, b] = await Promise.all([e.corporateAction(body), e.corporateAction({ ...body })]);
    expect([must(a).created, must(b).created].sort()).toEqual([false, true]);
    expect(must(b).action).toEqual(must(a).action);
    const again = must(await e.corporateAction(body));
    expect(again).toEqual({ created: false, action: must(a).action });
    const other = await e.corporateAction({ ...body, to: 3 });
    expect(other.ok ? null : other.error).toMatchObject({ code: 'invalid_field', field: 'action_id' });
    expect(other.ok ? '' : other.error.message).toMatch(/already used for a different corporate action/);
    const future = { action_id: 'later', type: 'dividend', symbol: 'IDM', amount_per_share: 1, ex_ts: T0 + 60_000, pay_ts: T0 + 60_000 };
    expect(must(await e.corporateAction(future)).created).toBe(true);
    expect(must(await e.corporateAction(future))).toMatchObject({ created: false, action: { status: 'pending' } });
    expect(await eventsOf(e, { portfolio_id: 'p', type: 'SplitApplied' })).toHaveLength(1);
    expect(pos(await snap(e, 'p'), 'IDM').quantity).toBe(12);

    await e.close();
    e = await open(path, clock);
    expect(must(await e.corporateAction(body))).toEqual({ created: false, action: must(a).action });
    expect(must(await e.corporateAction(future))).toMatchObject({ created: false, action: { status: 'pending' } });
    expect((await e.corporateAction({ ...future, amount_per_share: 2 })).ok).toBe(false);
    expect(pos(await snap(e, 'p'), 'IDM').quantity).toBe(12);
  });

  it('refuses each bad field by name, with its rule, and logs nothing', async () => {
    const clock = new TestClock();
    const e = await open(dir(), clock, { limits: { corporateActionsPendingMax: 2 } });
    const split = { action_id: 'x', type: 'split', symbol: 'AAA', from: 1, to: 2 };
    const div = { action_id: 'x', type: 'dividend', symbol: 'AAA', amount_per_share: 1, ex_ts: T0 + 10, pay_ts: T0 + 20 };
    const ren = { action_id: 'x', type: 'symbol_change', symbol: 'AAA', new_symbol: 'BBB' };
    const cases: [unknown, string, string, RegExp][] = [
      [null, 'invalid_field', 'action', /must be an object/],
      [[split], 'invalid_field', 'action', /must be an object/],
      [{ ...split, action_id: undefined }, 'invalid_id', 'action_id', /action_id must match/],
      [{ ...split, action_id: 'has space' }, 'invalid_id', 'action_id', /action_id must match/],
      [{ ...split, type: 'merger' }, 'invalid_field', 'type', /type must be one of split, dividend, symbol_change/],
      [{ ...split, symbol: 'no space' }, 'invalid_symbol', 'symbol', /symbol must match/],
      [{ ...split, from: 0 }, 'invalid_field', 'from', /from must be an integer from 1 to 1000000/],
      [{ ...split, from: 1.5 }, 'invalid_field', 'from', /integer/],
      [{ ...split, to: 1_000_001 }, 'invalid_field', 'to', /to must be an integer from 1 to 1000000/],
      [{ ...split, to: 1 }, 'invalid_field', 'to', /to must differ from from/],
      [{ ...split, effective_ts: -1 }, 'invalid_timestamp', 'effective_ts', /integer epoch/],
      [{ ...split, effective_ts: 'soon' }, 'invalid_timestamp', 'effective_ts', /integer epoch/],
      [{ ...split, ratio: 2 }, 'invalid_field', 'ratio', /ratio is not a field of a split action/],
      [{ ...split, new_symbol: 'B' }, 'invalid_field', 'new_symbol', /not a field of a split/],
      [{ ...div, amount_per_share: 0 }, 'invalid_amount', 'amount_per_share', /> 0/],
      [{ ...div, amount_per_share: Infinity }, 'invalid_amount', 'amount_per_share', /finite/],
      [{ ...div, ex_ts: undefined }, 'invalid_timestamp', 'ex_ts', /ex_ts is required/],
      [{ ...div, pay_ts: T0 + 5 }, 'invalid_timestamp', 'pay_ts', /pay_ts must be >= ex_ts/],
      // A past ex_ts is no longer refused: issue 19 entitles it from the holdings as of ex_ts
      // (test/instruments.test.ts, "dividends with a past ex-date").
      [{ ...ren, new_symbol: undefined }, 'invalid_symbol', 'new_symbol', /new_symbol must match/],
      [{ ...ren, new_symbol: 'AAA' }, 'invalid_symbol', 'new_symbol', /new_symbol must differ from symbol/],
    ];
    for (const [input, code, field, message] of cases) {
      const r = await e.corporateAction(input);
      expect(r.ok ? null : { code: r.error.code, field: r.error.field }, JSON.stringify(input)).toEqual({ code, field });
      expect(r.ok ? '' : r.error.message).toMatch(message);
    }
    expect(await eventsOf(e, { portfolio_id: '_corporate' })).toEqual([]);
    // corporateActionsPendingMax: 2
    must(await e.corporateAction({ ...div, action_id: 'p1' }));
    must(await e.corporateAction({ ...split, action_id: 'p2', effective_ts: T0 + 10 }));
    const full = await e.corporateAction({ ...ren, action_id: 'p3', effective_ts: T0 + 10 });
    expect(full.ok ? null : full.error).toMatchObject({ code: 'limit_exceeded', field: 'action_id', retryable: true });
    expect(full.ok ? '' : full.error.message).toMatch(/corporate actions pending must be <= 2/);
    clock.t = T0 + 20;
    await e.checkCorporateActions();
    expect(must(await e.corporateAction({ ...ren, action_id: 'p3' })).created).toBe(true);
  });
});

describe('restarts', () => {
  it('replays to identical figures after a shard crash and after a clean close/reopen', async () => {
    const clock = new TestClock();
    const path = dir();
    let e = await open(path, clock);
    const ids = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
    expect(new Set(ids.map((id) => e.shardOf(id)))).toEqual(new Set([0, 1]));
    for (const [i, id] of ids.entries()) {
      must(await e.createPortfolio({ id, cash: 50_000, cost_basis_method: i % 3 === 0 ? 'average' : i % 3 === 1 ? 'fifo' : 'lifo' }));
      must(await e.trade(id, { trade_id: `${id}-a`, symbol: 'RA', side: 'buy', quantity: 7.5 + i, price: 80 + i, ts: 1 }));
      must(await e.trade(id, { trade_id: `${id}-b`, symbol: 'RA', side: 'buy', quantity: 3.33333333, price: 77, ts: 2 }));
      must(await e.trade(id, { trade_id: `${id}-c`, symbol: 'RB', side: i % 2 === 0 ? 'buy' : 'sell', quantity: 4, price: 25, ts: 3 }));
    }
    e.ingestTick('RA', 81, T0 - 5);
    e.ingestTick('RB', 26, T0 - 5);
    await e.drain();
    must(await e.corporateAction({ action_id: 'ra-split', type: 'split', symbol: 'RA', from: 2, to: 7 }));
    must(await e.corporateAction({ action_id: 'rb-div', type: 'dividend', symbol: 'RB', amount_per_share: 0.45, ex_ts: T0, pay_ts: T0 }));
    must(await e.corporateAction({ action_id: 'ra-div', type: 'dividend', symbol: 'RA', amount_per_share: 0.1, ex_ts: T0, pay_ts: T0 + 10_000 }));
    must(await e.corporateAction({ action_id: 'ra-ren', type: 'symbol_change', symbol: 'RA', new_symbol: 'RC' }));
    must(await e.trade('r1', { trade_id: 'r1-after', symbol: 'RC', side: 'sell', quantity: 2, price: 30, ts: 4 }));
    const live = await Promise.all(ids.map(async (id) => figures(await snap(e, id))));
    for (const shard of [0, 1]) await crashAndRecover(e, ids.find((id) => e.shardOf(id) === shard) as string);
    expect(await Promise.all(ids.map(async (id) => figures(await snap(e, id))))).toEqual(live);
    await e.close();
    e = await open(path, clock);
    expect(await Promise.all(ids.map(async (id) => figures(await snap(e, id))))).toEqual(live);
    // The dividend still due after the restart is paid from what was entitled before it.
    const cash = (await snap(e, 'r0')).cash;
    clock.t = T0 + 10_000;
    await e.checkCorporateActions();
    const [entitled] = await eventsOf(e, { portfolio_id: 'r0', type: 'DividendEntitled' }).then((x) => x.filter((y) => y.type === 'DividendEntitled' && y.action_id === 'ra-div'));
    expect(entitled.type === 'DividendEntitled' && entitled.quantity).toBe(split('average', { qty: new Dec('10.83333333'), avg: new Dec(0), lots: [], realized: new Dec(0) }, 2, 7).position.qty.toNumber());
    expectClose((await snap(e, 'r0')).cash - cash, dividend(entitled.type === 'DividendEntitled' ? entitled.quantity : 0, 0.1, 1).amount, 'r0 paid after restart');
    // The split's tick filter is rebuilt from the log.
    expect(e.ingestTick('RA', 90, T0 - 1)).toBe('pre_split_tick');
  });

  it('keeps pending actions across a restart and applies them when their time comes, by the timer too', async () => {
    const clock = new TestClock();
    const path = dir();
    let e = await open(path, clock);
    must(await e.createPortfolio({ id: 'w', cash: 5_000, cost_basis_method: 'lifo' }));
    let o = await trades(e, 'w', 'lifo', 'PEN', [buy('w1', 9, 40, 1), buy('w2', 2, 44, 2)]);
    e.ingestTick('PEN', 45, T0 - 1);
    await e.drain();
    must(await e.corporateAction({ action_id: 'pen-split', type: 'split', symbol: 'PEN', from: 1, to: 3, effective_ts: T0 + 1_000 }));
    must(await e.corporateAction({ action_id: 'pen-div', type: 'dividend', symbol: 'PEN', amount_per_share: 0.2, ex_ts: T0 + 2_000, pay_ts: T0 + 3_000 }));
    must(await e.corporateAction({ action_id: 'pen-ren', type: 'symbol_change', symbol: 'PEN', new_symbol: 'PEN2', effective_ts: T0 + 4_000 }));
    await e.close();
    e = await open(path, clock, { corporateActionsCheckMs: 10 });
    const status = async () => must(await e.listCorporateActions()).actions.map((a) => [a.action_id, a.status]);
    expect(await status()).toEqual([
      ['pen-split', 'pending'],
      ['pen-div', 'pending'],
      ['pen-ren', 'pending'],
    ]);
    const page = must(await e.listCorporateActions({ limit: 2 }));
    expect(page.actions.map((a) => a.action_id)).toEqual(['pen-split', 'pen-div']);
    expect(must(await e.listCorporateActions({ after_seq: page.next_after_seq as number })).actions.map((a) => a.action_id)).toEqual(['pen-ren']);
    // The timer (every 10 ms) applies each step once the injected clock reaches it.
    clock.t = T0 + 1_000;
    await waitFor(async () => (await status())[0][1] === 'applied');
    o = split('lifo', o, 1, 3).position;
    expectPosition(pos(await snap(e, 'w'), 'PEN'), o, splitPrice(45, 1, 3), 'after the split');
    expectLots(await snap(e, 'w'), 'PEN', o);
    // A pre-split print: refused (it was printed before effective_ts).
    expect(e.ingestTick('PEN', 46, T0 + 999)).toBe('pre_split_tick');
    await e.close();
    e = await open(path, clock, { corporateActionsCheckMs: 10 });
    const cash = (await snap(e, 'w')).cash;
    clock.t = T0 + 4_000;
    await waitFor(async () => (await status()).every(([, s]) => s === 'applied'));
    const w = await snap(e, 'w');
    expectClose(w.cash - cash, dividend(o.qty, 0.2, 1).amount, 'dividend paid after two restarts');
    expectPosition(pos(w, 'PEN2'), o, splitPrice(45, 1, 3), 'renamed');
    expect(w.positions.map((p) => p.symbol)).toEqual(['PEN2']);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met in ${timeoutMs} ms`);
    await sleep(10);
  }
}

describe('HTTP: /api/v1/corporate-actions', () => {
  const keys = [
    { key: 'corp-admin-0123456789', name: 'admin', scopes: ['admin'] },
    { key: 'corp-reader-0123456789', name: 'reader', scopes: ['read:*', 'trade:*'] },
  ];
  const [ADMIN, READER] = keys.map((k) => k.key);
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ keys, limits: { commandsPerSecond: 100_000 } }, { persistent: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('enters actions with an admin key only, answers 201 then 200 for the same id, and lists them to any key', async () => {
    expect((await http(h.url, 'POST', '/api/v1/portfolios', { id: 'hp', cash: 1_000 }, ADMIN)).status).toBe(201);
    expect((await http(h.url, 'POST', '/api/v1/portfolios/hp/trades', { trade_id: 't', symbol: 'HTP', side: 'buy', quantity: 2, price: 50 }, ADMIN)).status).toBe(201);
    const split = { action_id: 'h-split', type: 'split', symbol: 'HTP', from: 1, to: 2 };
    expect((await http(h.url, 'POST', '/api/v1/corporate-actions', split)).status).toBe(401);
    const denied = await http(h.url, 'POST', '/api/v1/corporate-actions', split, READER);
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('forbidden');
    const created = await http(h.url, 'POST', '/api/v1/corporate-actions', split, ADMIN);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ action_id: 'h-split', status: 'applied', steps: [{ step: 'split', holders: 1 }] });
    const again = await http(h.url, 'POST', '/api/v1/corporate-actions', split, ADMIN);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(created.body);
    const conflict = await http(h.url, 'POST', '/api/v1/corporate-actions', { ...split, to: 3 }, ADMIN);
    expect([conflict.status, conflict.body.error.code, conflict.body.error.field]).toEqual([400, 'invalid_field', 'action_id']);
    const bad = await http(h.url, 'POST', '/api/v1/corporate-actions', { ...split, action_id: 'h2', from: 0 }, ADMIN);
    expect([bad.status, bad.body.error.field]).toEqual([400, 'from']);
    const future = { action_id: 'h-div', type: 'dividend', symbol: 'HTP', amount_per_share: 0.5, ex_ts: Date.now() + 3_600_000, pay_ts: Date.now() + 7_200_000 };
    expect((await http(h.url, 'POST', '/api/v1/corporate-actions', future, ADMIN)).body).toMatchObject({ status: 'pending', steps: [] });
    const snapshot = await http(h.url, 'GET', '/api/v1/portfolios/hp', undefined, READER);
    expect(snapshot.body.positions[0]).toMatchObject({ symbol: 'HTP', quantity: 4, avg_cost: 25 });

    const list = await http(h.url, 'GET', '/api/v1/corporate-actions', undefined, READER);
    expect(list.status).toBe(200);
    expect(list.body.actions.map((a: { action_id: string; status: string }) => [a.action_id, a.status])).toEqual([
      ['h-split', 'applied'],
      ['h-div', 'pending'],
    ]);
    const first = await http(h.url, 'GET', '/api/v1/corporate-actions?limit=1', undefined, READER);
    expect(first.body.actions).toHaveLength(1);
    const rest = await http(h.url, 'GET', `/api/v1/corporate-actions?after_seq=${first.body.next_after_seq}`, undefined, READER);
    expect(rest.body).toMatchObject({ actions: [{ action_id: 'h-div' }], next_after_seq: null });
    expect((await http(h.url, 'GET', '/api/v1/corporate-actions?limit=0', undefined, READER)).status).toBe(400);
    expect((await http(h.url, 'GET', '/api/v1/corporate-actions')).status).toBe(401);
  });
});
