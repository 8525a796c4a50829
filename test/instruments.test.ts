// Proves instruments as reference data (issue 19) on a real engine (real shard workers, real kernel,
// real LMDB), every figure checked against the exact decimal oracle (test/oracle/instruments.ts):
// - worked examples: an ES futures book at 50x (open, add, partial close, flip, fees), an options
//   position at 100x, a JPY book holding USD stocks via USDJPY, a USD book holding a JPY stock via the
//   inverse of USDJPY, a EUR stock in a GBP book through the USD pivot (EURUSD x 1/GBPUSD) with either leg
//   moving the position in the same pass;
// - definitions are durable events, replayed after a restart, and a trade after the restart books at
//   the multiplier; a symbol never defined behaves as before (multiplier 1, currency from the trade);
// - a multiplier change of a held instrument is refused (instrument_held), allowed once flat, and a
//   contract adjustment rescales holdings exactly (quantity x multiplier kept);
// - foreign cash: deposits and withdrawals in any currency and the FX conversion command, replayed;
// - what-if trades (dry_run) answer the figures the trade would produce and the limits it would breach,
//   book and write nothing, and leave the trade_id unused;
// - bad input (multiplier <= 0, NaN, unknown asset class, currency clash, a dry run with a reused
//   trade_id) is refused naming the field, and nothing changes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import type { PortfolioSnapshot, TradeInput } from '../src/domain/types.js';
import { expectClose } from './oracle/compare.js';
import { InstrumentOracle } from './oracle/instruments.js';
import { ensureBuilt, tempDir } from './support/engine.js';

let engine: MtmEngine;
let dir: ReturnType<typeof tempDir>;
const oracle = new InstrumentOracle('USD');
let lastTs = Date.now();

const options = () => ({ dataDir: dir.path, workers: 2, snapshotIntervalMs: 3_600_000, suspectMovePct: 0, corporateActionsCheckMs: 3_600_000 });

beforeAll(async () => {
  ensureBuilt();
  dir = tempDir();
  engine = await createEngine(options());
});
afterAll(async () => {
  await engine.close();
  dir.remove();
});

async function tick(symbol: string, price: number): Promise<void> {
  expect(engine.ingestTick(symbol, price, ++lastTs)).toBeNull();
  oracle.tick(symbol, price);
  await engine.drain();
}

async function define(symbol: string, asset_class: string, currency: string, multiplier: number): Promise<void> {
  const r = await engine.defineInstrument(symbol, { asset_class, currency, multiplier });
  expect(r.ok ? r.value.instrument : r.error).toEqual({ symbol, asset_class, currency, multiplier });
  oracle.define(symbol, { multiplier, currency });
}

async function create(id: string, base: string, cash: number): Promise<void> {
  const r = await engine.createPortfolio({ id, cash, base_currency: base });
  expect(r.ok).toBe(true);
  oracle.createBook(id, base, cash);
}

async function trade(id: string, t: TradeInput): Promise<void> {
  const r = await engine.trade(id, t);
  if (!r.ok) throw new Error(`${t.trade_id}: ${r.error.message}`);
  oracle.trade(id, t);
}

async function snap(id: string): Promise<PortfolioSnapshot> {
  await engine.drain();
  const r = await engine.snapshot(id);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

/** Every figure of the book against the oracle. */
async function verify(id: string, label: string): Promise<PortfolioSnapshot> {
  const s = await snap(id);
  const f = oracle.figures(id);
  for (const k of ['cash', 'capital', 'holdings_value', 'cost_basis', 'unrealized_pnl', 'realized_pnl', 'total_return', 'return_rate', 'equity', 'gross_exposure'] as const) {
    expectClose(s[k], f[k], `${label}.${k}`);
  }
  expect(s.unconverted_positions).toBe(f.unconverted_positions);
  expect(Object.keys(s.cash_balances).sort()).toEqual([...f.cash_balances.keys()].sort());
  for (const [currency, amount] of f.cash_balances) expectClose(s.cash_balances[currency], amount, `${label}.cash_balances.${currency}`);
  expect(s.positions.map((p) => p.symbol).sort()).toEqual(f.positions.map((p) => p.symbol).sort());
  for (const p of s.positions) {
    const e = f.positions.find((x) => x.symbol === p.symbol);
    if (e === undefined) throw new Error(`${label}: oracle lacks ${p.symbol}`);
    expect(p.currency).toBe(e.currency);
    if (e.fx_rate === null) expect(p.fx_rate).toBeNull();
    else expectClose(p.fx_rate as number, e.fx_rate, `${label}.${p.symbol}.fx_rate`);
    for (const k of ['quantity', 'avg_cost', 'last_price', 'market_value', 'unrealized_pnl', 'realized_pnl', 'return_rate', 'weight'] as const) {
      expectClose(p[k], e[k], `${label}.${p.symbol}.${k}`);
    }
  }
  return s;
}

describe('worked example: an ES futures book at 50 USD per point', () => {
  it('opens, adds, partly closes and flips with fees; every money figure carries the multiplier', async () => {
    await define('ES', 'future', 'USD', 50);
    await create('fut', 'USD', 1_000_000);
    await trade('fut', { trade_id: 'es1', symbol: 'ES', side: 'buy', quantity: 2, price: 4000, fee: 2.5 });
    let s = await verify('fut', 'after buying 2');
    // 2 x 4000 x 50 = 400,000 out of cash, plus the fee.
    expect(s.cash).toBe(1_000_000 - 400_000 - 2.5);
    expect(s.positions[0]).toMatchObject({ quantity: 2, avg_cost: 4000, last_price: 4000, market_value: 400_000 });
    await tick('ES', 4010);
    s = await verify('fut', 'after ES 4010');
    expect(s.positions[0]).toMatchObject({ market_value: 401_000, unrealized_pnl: 1_000 });
    await trade('fut', { trade_id: 'es2', symbol: 'ES', side: 'buy', quantity: 1, price: 4020, fee: 1.25 });
    s = await verify('fut', 'after adding 1');
    expectClose(s.positions[0].avg_cost, oracle.figures('fut').positions[0].avg_cost, 'avg of 3 contracts');
    // Partial close: 1 contract at 4030 against avg (2x4000 + 4020)/3.
    await trade('fut', { trade_id: 'es3', symbol: 'ES', side: 'sell', quantity: 1, price: 4030, fee: 1.25 });
    await verify('fut', 'after a partial close');
    // Flip: sell 5 of the 2 held at 3990: closes 2, opens a short of 3 at 3990.
    await trade('fut', { trade_id: 'es4', symbol: 'ES', side: 'sell', quantity: 5, price: 3990, fee: 6.25 });
    s = await verify('fut', 'after the flip');
    expect(s.positions[0]).toMatchObject({ quantity: -3, avg_cost: 3990 });
    await tick('ES', 3980);
    s = await verify('fut', 'short after ES 3980');
    expect(s.positions[0]).toMatchObject({ market_value: -3 * 3980 * 50, unrealized_pnl: 10 * 3 * 50 });
  });
});

describe('worked example: an options position at 100 shares a contract', () => {
  it('values premium in points times 100', async () => {
    await define('SPY240119C450', 'option', 'USD', 100);
    await create('opt', 'USD', 50_000);
    await trade('opt', { trade_id: 'o1', symbol: 'SPY240119C450', side: 'buy', quantity: 5, price: 3.2, fee: 3.25 });
    await tick('SPY240119C450', 4.1);
    const s = await verify('opt', 'option after 4.10');
    expectClose(s.positions[0].market_value, oracle.figures('opt').positions[0].market_value, 'option market value');
    expect(s.positions[0].market_value).toBeCloseTo(5 * 4.1 * 100, 9);
    await trade('opt', { trade_id: 'o2', symbol: 'SPY240119C450', side: 'sell', quantity: 2, price: 4.3 });
    await verify('opt', 'option after selling 2');
  });
});

describe('worked examples: FX as markets publish it', () => {
  it('a JPY book holds USD stocks via USDJPY; a USD book holds a JPY stock via its inverse; one tick moves both', async () => {
    await define('AAPL', 'equity', 'USD', 1);
    await define('7203.T', 'equity', 'JPY', 1);
    await create('jpy', 'JPY', 10_000_000);
    await create('usd', 'USD', 100_000);
    await tick('USDJPY', 150);
    await trade('jpy', { trade_id: 'j1', symbol: 'AAPL', side: 'buy', quantity: 10, price: 190, fee: 1 });
    await trade('usd', { trade_id: 'u1', symbol: '7203.T', side: 'buy', quantity: 100, price: 2500 });
    let s = await verify('jpy', 'jpy book at USDJPY 150');
    expect(s.positions[0]).toMatchObject({ currency: 'USD', fx_rate: 150, market_value: 10 * 190 * 150 });
    expect(s.cash_balances).toEqual({ USD: -1901 });
    const u = await verify('usd', 'usd book at 1/150');
    expect(u.positions[0].fx_rate).toBe(1 / 150);
    await tick('AAPL', 200);
    await tick('USDJPY', 155.5);
    s = await verify('jpy', 'jpy book at USDJPY 155.5');
    await verify('usd', 'usd book at 1/155.5');
    await trade('jpy', { trade_id: 'j2', symbol: 'AAPL', side: 'sell', quantity: 4, price: 201 });
    await verify('jpy', 'jpy book after a sale realized at 155.5');
  });

  it('a EUR stock in a GBP book goes through the USD pivot; either leg moves it', async () => {
    await define('SAP', 'equity', 'EUR', 1);
    await create('gbp', 'GBP', 100_000);
    await tick('EURUSD', 1.08);
    const refused = await engine.trade('gbp', { trade_id: 'g0', symbol: 'SAP', side: 'buy', quantity: 1, price: 120 });
    expect(refused.ok ? null : [refused.error.code, refused.error.field]).toEqual(['fx_rate_unknown', 'fx_rate']);
    await tick('GBPUSD', 1.27);
    await trade('gbp', { trade_id: 'g1', symbol: 'SAP', side: 'buy', quantity: 10, price: 120 });
    let s = await verify('gbp', 'gbp book via EURUSD x 1/GBPUSD');
    expect(s.positions[0].fx_rate).toBe(1.08 * (1 / 1.27));
    await tick('GBPUSD', 1.25);
    s = await verify('gbp', 'after GBPUSD moves');
    expect(s.positions[0].fx_rate).toBe(1.08 * (1 / 1.25));
    await tick('EURUSD', 1.1);
    await verify('gbp', 'after EURUSD moves');
    await tick('EURGBP', 0.86);
    s = await verify('gbp', 'after the direct EURGBP ticks');
    expect(s.positions[0].fx_rate).toBe(0.86);
  });
});

describe('definitions, held instruments and contract adjustments', () => {
  it('refuses a multiplier change while held, allows it when flat; a contract adjustment rescales exactly', async () => {
    await define('NQ', 'future', 'USD', 20);
    await create('nq', 'USD', 1_000_000);
    await trade('nq', { trade_id: 'n1', symbol: 'NQ', side: 'buy', quantity: 3, price: 15_000 });
    const before = await verify('nq', 'nq held');
    const refused = await engine.defineInstrument('NQ', { asset_class: 'future', currency: 'USD', multiplier: 10 });
    expect(refused.ok ? null : [refused.error.code, refused.error.field]).toEqual(['instrument_held', 'multiplier']);
    expect(engine.instrument('NQ')).toEqual({ ok: true, value: { symbol: 'NQ', asset_class: 'future', currency: 'USD', multiplier: 20 } });
    const adjust = await engine.corporateAction({ action_id: 'nq-adj', type: 'contract_adjustment', symbol: 'NQ', multiplier: 10 });
    expect(adjust.ok).toBe(true);
    const after = await snap('nq');
    // 3 contracts x 20 = 6 contracts x 10: the exposure and every money figure are unchanged.
    expect(after.positions[0]).toMatchObject({ quantity: 6, avg_cost: 15_000 });
    expect(after.holdings_value).toBe(before.holdings_value);
    expect(after.equity).toBe(before.equity);
    expect(engine.instrument('NQ').ok && (engine.instrument('NQ') as { value: { multiplier: number } }).value.multiplier).toBe(10);
    oracle.adjust('NQ', 10);
    await verify('nq', 'after the adjustment');
    await trade('nq', { trade_id: 'n2', symbol: 'NQ', side: 'sell', quantity: 6, price: 15_100 });
    const flat = await verify('nq', 'flat after the adjustment');
    expect(flat.positions).toEqual([]);
    // Flat everywhere now: the multiplier may change freely.
    const redefined = await engine.defineInstrument('NQ', { asset_class: 'future', currency: 'USD', multiplier: 2 });
    expect(redefined.ok && redefined.value.changed).toBe(true);
    const again = await engine.defineInstrument('NQ', { asset_class: 'future', currency: 'USD', multiplier: 2 });
    expect(again.ok && again.value.changed).toBe(false);
  });

  it('replays definitions and books after a restart; a trade afterwards books at the multiplier; an undefined symbol is as before', async () => {
    await trade('fut', { trade_id: 'es5', symbol: 'ES', side: 'buy', quantity: 1, price: 3985 });
    await create('plain', 'USD', 10_000);
    await trade('plain', { trade_id: 'p1', symbol: 'XYZ', side: 'buy', quantity: 10, price: 50 });
    for (const id of ['fut', 'jpy', 'gbp', 'nq'] as const) await verify(id, `${id} before restart`);
    const defs = engine.listInstruments();
    await engine.close();
    engine = await createEngine(options());
    expect(engine.listInstruments()).toEqual(defs);
    for (const id of ['fut', 'jpy', 'gbp', 'nq'] as const) await verify(id, `${id} after restart`);
    await trade('fut', { trade_id: 'es6', symbol: 'ES', side: 'sell', quantity: 1, price: 3975 });
    await verify('fut', 'fut trading after restart');
    const plain = await verify('plain', 'undefined symbol');
    expect(plain.positions[0]).toMatchObject({ quantity: 10, market_value: 500, currency: 'USD' });
    const events = await engine.queryEvents({ portfolio_id: '_instruments', limit: 100 });
    expect(events.ok && events.value.filter((e) => e.type === 'InstrumentDefined').length).toBeGreaterThanOrEqual(7);
  });
});

describe('foreign cash and FX conversions', () => {
  it('deposits and withdraws in any currency, converts between balances at the given rate, replays them', async () => {
    await create('cash', 'USD', 1_000);
    await tick('EURUSD', 1.1);
    const noRate = await engine.cash('cash', { type: 'deposit', amount: 100, currency: 'CHF' });
    expect(noRate.ok ? null : [noRate.error.code, noRate.error.field]).toEqual(['fx_rate_unknown', 'currency']);
    expect((await engine.cash('cash', { type: 'deposit', amount: 500, currency: 'EUR' })).ok).toBe(true);
    oracle.cash('cash', 500, 'EUR');
    await verify('cash', 'after a EUR deposit');
    const tooMuch = await engine.cash('cash', { type: 'withdraw', amount: 600, currency: 'EUR' });
    expect(tooMuch.ok ? null : tooMuch.error.code).toBe('insufficient_cash');
    expect((await engine.cash('cash', { type: 'withdraw', amount: 50, currency: 'EUR' })).ok).toBe(true);
    oracle.cash('cash', -50, 'EUR');
    const converted = await engine.convertCash('cash', { from_currency: 'EUR', to_currency: 'JPY', amount: 200, rate: 162.5 });
    expect(converted.ok).toBe(true);
    oracle.convert('cash', 'EUR', 'JPY', 200, 162.5);
    const back = await engine.convertCash('cash', { from_currency: 'USD', to_currency: 'EUR', amount: 110, rate: 0.9 });
    expect(back.ok).toBe(true);
    oracle.convert('cash', 'USD', 'EUR', 110, 0.9);
    let s = await verify('cash', 'after conversions');
    expect(s.cash_balances).toEqual({ EUR: 500 - 50 - 200 + 99, JPY: 200 * 162.5 });
    await tick('EURUSD', 1.2);
    await verify('cash', 'after EURUSD moves the EUR balance');
    const overdraw = await engine.convertCash('cash', { from_currency: 'JPY', to_currency: 'USD', amount: 1e6, rate: 0.0067 });
    expect(overdraw.ok ? null : overdraw.error.code).toBe('insufficient_cash');
    await engine.close();
    engine = await createEngine(options());
    s = await verify('cash', 'cash after restart');
    expect(s.cash_balances).toEqual({ EUR: 349, JPY: 32_500 });
  });
});

describe('dividends with a past ex-date', () => {
  it('entitles from the holdings as of the ex-date (time travel), not from today\'s; replayed after a restart', async () => {
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await create('divA', 'USD', 10_000);
    await create('divB', 'USD', 10_000);
    await create('divC', 'USD', 10_000);
    await define('OPTD', 'option', 'USD', 100);
    await trade('divA', { trade_id: 'da1', symbol: 'DIVX', side: 'buy', quantity: 100, price: 10 });
    await trade('divA', { trade_id: 'da2', symbol: 'OPTD', side: 'buy', quantity: 2, price: 1.5 });
    await trade('divC', { trade_id: 'dc1', symbol: 'DIVX', side: 'buy', quantity: 30, price: 10 });
    await trade('divC', { trade_id: 'dc2', symbol: 'DIVX', side: 'sell', quantity: 30, price: 10 });
    await pause(15);
    const exTs = Date.now();
    await pause(15);
    // After the ex-date: A sells 60 (holds 40 today), B buys 50 (held none then), C buys 5.
    await trade('divA', { trade_id: 'da3', symbol: 'DIVX', side: 'sell', quantity: 60, price: 10 });
    await trade('divB', { trade_id: 'db1', symbol: 'DIVX', side: 'buy', quantity: 50, price: 10 });
    await trade('divC', { trade_id: 'dc3', symbol: 'DIVX', side: 'buy', quantity: 5, price: 10 });
    const cashBefore = { A: (await snap('divA')).cash, B: (await snap('divB')).cash, C: (await snap('divC')).cash };
    const r = await engine.corporateAction({ action_id: 'past-div', type: 'dividend', symbol: 'DIVX', amount_per_share: 0.25, ex_ts: exTs, pay_ts: Date.now() });
    expect(r.ok ? r.value.action : r.error).toMatchObject({ status: 'applied', steps: [{ step: 'ex_date', holders: 1 }, { step: 'pay_date', holders: 1 }] });
    const entitled = await engine.queryEvents({ portfolio_id: 'divA', type: 'DividendEntitled', limit: 10 });
    expect(entitled.ok && entitled.value.map((e) => e.type === 'DividendEntitled' && e.quantity)).toEqual([100]);
    // 100 held at the ex-date x 0.25, not the 40 held today.
    expect((await snap('divA')).cash).toBe(cashBefore.A + 25);
    expect((await snap('divB')).cash).toBe(cashBefore.B);
    expect((await snap('divC')).cash).toBe(cashBefore.C);
    // A contract of 100 shares is owed 100 shares' dividend: 2 x 100 x 0.5.
    const opt = await engine.corporateAction({ action_id: 'past-div-opt', type: 'dividend', symbol: 'OPTD', amount_per_share: 0.5, ex_ts: exTs, pay_ts: Date.now() });
    expect(opt.ok).toBe(true);
    expect((await snap('divA')).cash).toBe(cashBefore.A + 25 + 100);
    const after = await snap('divA');
    await engine.close();
    engine = await createEngine(options());
    const replayed = await snap('divA');
    expect([replayed.cash, replayed.realized_pnl, replayed.positions.map((p) => [p.symbol, p.quantity])]).toEqual([after.cash, after.realized_pnl, after.positions.map((p) => [p.symbol, p.quantity])]);
  });
});

describe('what-if trades', () => {
  it('answers the figures and breaches of the trade, books and writes nothing, and leaves the id unused', async () => {
    await create('whatif', 'USD', 100_000);
    await trade('whatif', { trade_id: 'w1', symbol: 'ES', side: 'buy', quantity: 1, price: 3980 });
    await trade('whatif', { trade_id: 'w2', symbol: 'AAPL', side: 'buy', quantity: 100, price: 200 });
    // ES 199,000 of 219,000 gross (90.9%); one more contract would make it 95.2%.
    expect((await engine.setLimits('whatif', { max_position_weight_pct: 95 })).ok).toBe(true);
    const before = await snap('whatif');
    const seqBefore = (await engine.queryEvents({ portfolio_id: 'whatif', limit: 1000 })) as { ok: true; value: unknown[] };
    const dry = await engine.trade('whatif', { trade_id: 'w3', symbol: 'ES', side: 'buy', quantity: 1, price: 3990, dry_run: true });
    if (!dry.ok) throw new Error(dry.error.message);
    expect(dry.value).toMatchObject({ dry_run: true, applied: false, breaches: ['max_position_weight_pct'] });
    const unchanged = await snap('whatif');
    const timeless = (s: PortfolioSnapshot) => ({ ...s, as_of: 0, positions: s.positions.map((p) => ({ ...p, price_age_ms: 0, stale: false })) });
    expect(timeless(unchanged)).toEqual(timeless(before));
    const after = (await engine.queryEvents({ portfolio_id: 'whatif', limit: 1000 })) as { ok: true; value: unknown[] };
    expect(after.value.length).toBe(seqBefore.value.length);
    // The same trade for real: the same figures, and the id was free.
    const real = await engine.trade('whatif', { trade_id: 'w3', symbol: 'ES', side: 'buy', quantity: 1, price: 3990 });
    if (!real.ok) throw new Error(real.error.message);
    oracle.trade('whatif', { symbol: 'ES', side: 'buy', quantity: 1, price: 3990 });
    expect(real.value.applied).toBe(true);
    for (const k of ['quantity', 'avg_cost', 'market_value', 'unrealized_pnl', 'realized_pnl', 'weight'] as const) expect(dry.value.position[k]).toBeCloseTo(real.value.position[k], 6);
    for (const k of ['cash', 'holdings_value', 'cost_basis', 'unrealized_pnl', 'equity', 'gross_exposure'] as const) expect(dry.value.totals[k]).toBeCloseTo(real.value.totals[k], 6);
    await verify('whatif', 'after the real trade');
  });
});

describe('bad input is refused naming the field, and changes nothing', () => {
  it('multiplier <= 0, NaN, unknown asset class, currency clash, a dry run with a reused trade_id', async () => {
    const defs = engine.listInstruments();
    const count = async () => ((await engine.queryEvents({ limit: 10_000 })) as { ok: true; value: unknown[] }).value.length;
    const events = await count();
    const before = await snap('fut');
    const cases: [unknown, string, string][] = [
      [{ asset_class: 'future', currency: 'USD', multiplier: 0 }, 'invalid_field', 'multiplier'],
      [{ asset_class: 'future', currency: 'USD', multiplier: -50 }, 'invalid_field', 'multiplier'],
      [{ asset_class: 'future', currency: 'USD', multiplier: NaN }, 'invalid_field', 'multiplier'],
      [{ asset_class: 'future', currency: 'USD', multiplier: Infinity }, 'invalid_field', 'multiplier'],
      [{ asset_class: 'swaption', currency: 'USD', multiplier: 1 }, 'invalid_field', 'asset_class'],
      [{ asset_class: 'future', currency: 'usd', multiplier: 1 }, 'invalid_currency', 'currency'],
      [{ asset_class: 'future', currency: 'USD', multiplier: 1, colour: 'red' }, 'invalid_field', 'colour'],
    ];
    for (const [input, code, field] of cases) {
      const r = await engine.defineInstrument('ES', input);
      expect(r.ok ? null : [r.error.code, r.error.field]).toEqual([code, field]);
      expect(r.ok ? '' : r.error.message).toContain(field);
    }
    const clash = await engine.trade('fut', { trade_id: 'clash', symbol: 'ES', side: 'buy', quantity: 1, price: 4000, currency: 'EUR' });
    expect(clash.ok ? null : [clash.error.code, clash.error.field]).toEqual(['invalid_currency', 'currency']);
    const reused = await engine.trade('fut', { trade_id: 'es1', symbol: 'ES', side: 'buy', quantity: 1, price: 4000, dry_run: true });
    expect(reused.ok ? null : [reused.error.code, reused.error.field]).toEqual(['trade_id_conflict', 'trade_id']);
    const badFlag = await engine.trade('fut', { trade_id: 'flag', symbol: 'ES', side: 'buy', quantity: 1, price: 4000, dry_run: 'yes' as unknown as boolean });
    expect(badFlag.ok ? null : [badFlag.error.code, badFlag.error.field]).toEqual(['invalid_field', 'dry_run']);
    expect(engine.listInstruments()).toEqual(defs);
    expect(await count()).toBe(events);
    const after = await snap('fut');
    expect({ ...after, as_of: 0, positions: [] }).toEqual({ ...before, as_of: 0, positions: [] });
    expect(after.positions.map((p) => [p.symbol, p.quantity, p.avg_cost])).toEqual(before.positions.map((p) => [p.symbol, p.quantity, p.avg_cost]));
  });
});
