// Proves that the engine's accounting core (src/domain/accounting.ts: applyFill) and the JS revaluation
// kernel (src/kernel: setPosition, revalue, recompute), driven exactly as a shard drives them, follow
// the average-cost rules of the issue "Core engine":
//  - worked examples with hand-computed figures (buy, add, partial sell, close, flips both ways, short
//    cover, fees, deposits/withdrawals and capital, fractional crypto sizes), each checked three ways:
//    the exact oracle equals the hand figures, applyFill's outcome equals them, and every figure the
//    kernel reports is within max(1e-9 relative, 1e-6 absolute) of them;
//  - a property: long random sequences (>= 2,000 steps) of trades, exact closes, flips, fees, cash
//    operations and tick batches over several portfolios and symbols, with every figure of every
//    portfolio compared after every step with the independent exact oracle (test/oracle/ledger.ts).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyFill, flatPosition, reducesExposure, unitsOf as quantityUnits, type TradeFill } from '../src/domain/accounting.js';
import { quantityMax, type PositionState, type PositionView, type Totals } from '../src/domain/types.js';

/**
 * 2^25 = 33,554,432: below it doubles are spaced <= 2^-28 apart, so v * 1e8 lands within 0.44 of the
 * intended units and validateTrade's Math.round recovers them. Above it, up to quantityMax
 * (90,000,000), it does not always: in [2^25, 2^52 / 1e8) some valid 8-decimal quantities are rejected
 * as having more decimals (40000000.00039595), and from 2^26 some are accepted with units one off the
 * quantity's shortest decimal (68000000.0007919 -> 6800000000079191 units). A known open defect of
 * src/domain/validate.ts (quantityUnits), outside this file's scope; the property stays below 2^25.
 */
const exactSizeMax = 2 ** 25;
import { validateTrade } from '../src/domain/validate.js';
import { comparisonCount, expectClose, MismatchError, resetWorstUseOfTolerance, worstUseOfTolerance } from './oracle/compare.js';
import { Dec, Ledger, type PortfolioFigures, type PositionFigures } from './oracle/ledger.js';
import { Twin } from './support/twin.js';

type TotalsKey = keyof Totals;
type PositionKey = Exclude<keyof PositionView & keyof PositionFigures, 'symbol'>;
type HandValue = string | number | Dec;

/** The oracle is exact: it must equal a hand figure up to the rounding of its 60-digit divisions. */
function expectExact(actual: Dec, hand: HandValue, label: string): void {
  const want = new Dec(hand);
  expect(actual.minus(want).abs().lte('1e-40'), `${label}: oracle ${actual.toString()} != hand ${want.toString()}`).toBe(true);
}

/** Hand figures of a portfolio: the oracle must equal them, every engine book must be within tolerance. */
function expectTotals(twin: Twin, id: string, hand: Partial<Record<TotalsKey, HandValue>>): void {
  const oracle: PortfolioFigures = twin.ledger.portfolio(id);
  for (const [k, v] of Object.entries(hand) as [TotalsKey, HandValue][]) {
    expectExact(oracle[k], v, `${id}.${k}`);
    for (const b of twin.books) expectClose(b.totals(id)[k], new Dec(v), `engine [${b.choice}] ${id}.${k}`);
  }
}

/** Hand figures of one position, checked the same way. */
function expectPosition(twin: Twin, id: string, symbol: string, hand: Partial<Record<PositionKey, HandValue>>): void {
  const oracle = twin.ledger.position(id, symbol);
  expect(oracle, `oracle has ${id}.${symbol}`).toBeDefined();
  for (const b of twin.books) {
    const engine = b.positions(id).find((p) => p.symbol === symbol);
    expect(engine, `engine [${b.choice}] has ${id}.${symbol}`).toBeDefined();
    for (const [k, v] of Object.entries(hand) as [PositionKey, HandValue][]) {
      expectExact((oracle as PositionFigures)[k], v, `${id}.${symbol}.${k}`);
      expectClose((engine as PositionView)[k], new Dec(v), `engine [${b.choice}] ${id}.${symbol}.${k}`);
    }
  }
}

/** Hand ratios written as the fractions they are, e.g. pct(300, 1650) = 300 / 1650 * 100. */
function pct(num: HandValue, den: HandValue): Dec {
  return new Dec(num).div(new Dec(den)).times(100);
}

const units = (quantity: number): number => Math.round(quantity * 1e8);
const fill = (side: 'buy' | 'sell', quantity: number, price: number, fee = 0): TradeFill => ({ side, units: units(quantity), price, fee });

describe('applyFill: average cost, hand-computed', () => {
  it('opens, adds, partially sells and closes a long; fees stay out of avg_cost', () => {
    // Buy 10 @ 100, fee 1: avg 100, realized -1 (the fee), cash -(1000 + 1).
    const a = applyFill(flatPosition, fill('buy', 10, 100, 1));
    expect(a).toEqual({
      position: { units: 10e8, avg_cost: 100, realized_pnl: -1, last_trade_price: 100 },
      realized: -1,
      cashDelta: -1001,
      opened: true,
      closed: false,
      flipped: false,
    });
    // Buy 5 @ 130: avg (10*100 + 5*130) / 15 = 1650 / 15 = 110.
    const b = applyFill(a.position, fill('buy', 5, 130));
    expect(b.position).toEqual({ units: 15e8, avg_cost: 110, realized_pnl: -1, last_trade_price: 130 });
    expect([b.realized, b.cashDelta, b.opened]).toEqual([-0, -650, false]);
    // Sell 6 @ 120, fee 0.5: realized (120 - 110) * 6 - 0.5 = 59.5; avg of the rest unchanged.
    const c = applyFill(b.position, fill('sell', 6, 120, 0.5));
    expect(c.position).toEqual({ units: 9e8, avg_cost: 110, realized_pnl: 58.5, last_trade_price: 120 });
    expect([c.realized, c.cashDelta, c.closed]).toEqual([59.5, 719.5, false]);
    // Sell 9 @ 105: realized (105 - 110) * 9 = -45; exactly flat: closed, avg 0.
    const d = applyFill(c.position, fill('sell', 9, 105));
    expect(d.position).toEqual({ units: 0, avg_cost: 0, realized_pnl: 13.5, last_trade_price: 105 });
    expect([d.realized, d.cashDelta, d.closed, d.flipped, d.opened]).toEqual([-45, 945, true, false, false]);
  });

  it('opens, adds to and covers a short (avg_cost = average entry price of the short)', () => {
    // Sell 4 @ 25, then sell 6 @ 30: avg (4*25 + 6*30) / 10 = 280 / 10 = 28, quantity -10.
    const a = applyFill(flatPosition, fill('sell', 4, 25));
    expect([a.position.units, a.position.avg_cost, a.cashDelta, a.opened]).toEqual([-4e8, 25, 100, true]);
    const b = applyFill(a.position, fill('sell', 6, 30));
    expect([b.position.units, b.position.avg_cost, b.cashDelta]).toEqual([-10e8, 28, 180]);
    // Buy 3 @ 20, fee 0.3: a short gains (avg - price) * closed = (28 - 20) * 3 = 24, minus the fee = 23.7.
    const c = applyFill(b.position, fill('buy', 3, 20, 0.3));
    expect([c.position.units, c.position.avg_cost, c.cashDelta]).toEqual([-7e8, 28, -60.3]);
    expect(c.realized).toBeCloseTo(23.7, 12);
    // Buy 7 @ 31 covers the rest at a loss: (28 - 31) * 7 = -21.
    const d = applyFill(c.position, fill('buy', 7, 31));
    expect([d.position.units, d.position.avg_cost, d.realized, d.cashDelta, d.closed, d.flipped]).toEqual([0, 0, -21, -217, true, false]);
    expect(d.position.realized_pnl).toBeCloseTo(2.7, 12);
  });

  it('flips long -> short and short -> long: closes at the old average, opens the rest at the trade price', () => {
    // Long 10 @ 50; sell 25 @ 60, fee 2: realized (60 - 50) * 10 - 2 = 98; the rest, -15, opens at 60.
    const a = applyFill(flatPosition, fill('buy', 10, 50));
    const b = applyFill(a.position, fill('sell', 25, 60, 2));
    expect(b).toEqual({
      position: { units: -15e8, avg_cost: 60, realized_pnl: 98, last_trade_price: 60 },
      realized: 98,
      cashDelta: 1498,
      opened: true,
      closed: true,
      flipped: true,
    });
    // Buy 20 @ 52: the short gains (60 - 52) * 15 = 120; the rest, +5, opens at 52.
    const c = applyFill(b.position, fill('buy', 20, 52));
    expect(c).toEqual({
      position: { units: 5e8, avg_cost: 52, realized_pnl: 218, last_trade_price: 52 },
      realized: 120,
      cashDelta: -1040,
      opened: true,
      closed: true,
      flipped: true,
    });
  });

  it('reaches exactly zero from fractional sizes that do not sum exactly in binary (0.1 + 0.2 - 0.3)', () => {
    // 0.1 + 0.2 !== 0.3 in float64; in 1e-8 units it is 10_000_000 + 20_000_000 - 30_000_000 = 0.
    expect(0.1 + 0.2).not.toBe(0.3);
    const a = applyFill(flatPosition, fill('buy', 0.1, 7));
    const b = applyFill(a.position, fill('buy', 0.2, 7));
    const c = applyFill(b.position, fill('sell', 0.3, 8));
    expect([c.position.units, c.position.avg_cost, c.closed, c.flipped]).toEqual([0, 0, true, false]);
    // (8 - 7) * 0.3 = 0.3, up to the rounding of the float average.
    expect(c.realized).toBeCloseTo(0.3, 12);
    // One unit more than the position flips it: -0.00000001 opens at the trade price.
    const d = applyFill(b.position, fill('sell', 0.30000001, 8));
    expect([d.position.units, d.position.avg_cost, d.flipped]).toEqual([-1, 8, true]);
  });

  it('reducesExposure: only opposite-side trades no larger than the position', () => {
    const long: PositionState = { units: 5e8, avg_cost: 10, realized_pnl: 0, last_trade_price: 10 };
    expect(reducesExposure(long, 'sell', 5e8)).toBe(true);
    expect(reducesExposure(long, 'sell', 5e8 + 1)).toBe(false);
    expect(reducesExposure(long, 'buy', 1)).toBe(false);
    expect(reducesExposure(flatPosition, 'sell', 1)).toBe(false);
    expect(reducesExposure({ ...long, units: -5e8 }, 'buy', 1)).toBe(true);
  });
});

describe('worked examples through the JS kernel, checked against hand figures and the oracle', () => {
  it('buy, add, partial sell, close: position and portfolio figures', () => {
    const t = new Twin();
    t.createPortfolio('pf', 10_000);
    t.trade('pf', { symbol: 'AAPL', side: 'buy', quantity: 10, price: 100, fee: 1 });
    t.trade('pf', { symbol: 'AAPL', side: 'buy', quantity: 5, price: 130 });
    // No tick yet: the mark is the last trade price, 130. avg 110 (see applyFill above).
    // mv 15 * 130 = 1950; upnl (130 - 110) * 15 = 300; return 300 / (15 * 110) * 100 = 18.18...%.
    expectPosition(t, 'pf', 'AAPL', { quantity: 15, avg_cost: 110, last_price: 130, market_value: 1950, unrealized_pnl: 300, return_rate: pct(300, 1650), weight: 100 });
    // cash 10000 - 1001 - 650 = 8349; equity 8349 + 1950 = 10299 = capital + realized + unrealized = 10000 - 1 + 300.
    expectTotals(t, 'pf', { cash: 8349, capital: 10_000, holdings_value: 1950, cost_basis: 1650, unrealized_pnl: 300, realized_pnl: -1, total_return: 299, equity: 10_299, return_rate: pct(299, 10_000) });
    t.trade('pf', { symbol: 'AAPL', side: 'sell', quantity: 6, price: 120, fee: 0.5 });
    // realized -1 + 59.5 = 58.5; 9 left at avg 110, marked at 120: mv 1080, upnl 90, cost 990.
    // cash 8349 + 720 - 0.5 = 9068.5; equity 10148.5; total return 148.5 = 1.485% of 10000.
    expectPosition(t, 'pf', 'AAPL', { quantity: 9, avg_cost: 110, last_price: 120, market_value: 1080, unrealized_pnl: 90, realized_pnl: 58.5, return_rate: pct(90, 990) });
    expectTotals(t, 'pf', { cash: 9068.5, holdings_value: 1080, cost_basis: 990, unrealized_pnl: 90, realized_pnl: 58.5, total_return: 148.5, equity: 10_148.5, return_rate: 1.485, gross_exposure: 1080 });
    t.trade('pf', { symbol: 'AAPL', side: 'sell', quantity: 9, price: 105 });
    // Closed: realized 58.5 - 45 = 13.5; cash 9068.5 + 945 = 10013.5; nothing held.
    expectPosition(t, 'pf', 'AAPL', { quantity: 0, avg_cost: 0, market_value: 0, unrealized_pnl: 0, realized_pnl: 13.5, return_rate: 0, weight: 0 });
    expectTotals(t, 'pf', { cash: 10_013.5, holdings_value: 0, cost_basis: 0, unrealized_pnl: 0, realized_pnl: 13.5, total_return: 13.5, equity: 10_013.5, return_rate: 0.135 });
    expect(t.verify('closed')).toBeGreaterThan(0);
  });

  it('flip long -> short -> long with ticks; capital 0 takes the return on cost basis', () => {
    const t = new Twin();
    t.createPortfolio('pf'); // cash 0, capital 0
    t.trade('pf', { symbol: 'XYZ', side: 'buy', quantity: 10, price: 50 });
    t.trade('pf', { symbol: 'XYZ', side: 'sell', quantity: 25, price: 60, fee: 2 });
    // Short 15 @ 60, marked at 60: mv -900, upnl 0; realized 98; cash -500 + 1500 - 2 = 998.
    expectPosition(t, 'pf', 'XYZ', { quantity: -15, avg_cost: 60, last_price: 60, market_value: -900, unrealized_pnl: 0, realized_pnl: 98, weight: 100 });
    expectTotals(t, 'pf', { cash: 998, capital: 0, holdings_value: -900, cost_basis: 900, realized_pnl: 98, equity: 98, return_rate: pct(98, 900) });
    t.ticks([{ symbol: 'XYZ', price: 55 }]);
    // Tick 55: mv -15 * 55 = -825; upnl (55 - 60) * -15 = 75; return 75 / 900 * 100 = 8.33...%.
    expectPosition(t, 'pf', 'XYZ', { last_price: 55, market_value: -825, unrealized_pnl: 75, return_rate: pct(75, 900) });
    t.trade('pf', { symbol: 'XYZ', side: 'buy', quantity: 20, price: 52 });
    // Covers 15 at (60 - 52) * 15 = 120 (realized 218), opens +5 at 52. The mark stays at the tick,
    // 55 (trades do not move it once the symbol has ticked): mv 275, upnl (55 - 52) * 5 = 15.
    // cash 998 - 1040 = -42; equity -42 + 275 = 233 = total return (capital 0);
    // return on cost basis: 233 / (5 * 52) * 100 = 89.61...%.
    expectPosition(t, 'pf', 'XYZ', { quantity: 5, avg_cost: 52, last_price: 55, market_value: 275, unrealized_pnl: 15, realized_pnl: 218, return_rate: pct(15, 260) });
    expectTotals(t, 'pf', { cash: -42, capital: 0, holdings_value: 275, cost_basis: 260, unrealized_pnl: 15, realized_pnl: 218, total_return: 233, equity: 233, return_rate: pct(233, 260) });
    t.trade('pf', { symbol: 'XYZ', side: 'sell', quantity: 5, price: 54 });
    // Flat with capital 0 and cost basis 0: the return rate is 0 by rule, not 0/0.
    expectTotals(t, 'pf', { cost_basis: 0, unrealized_pnl: 0, realized_pnl: 228, total_return: 228, return_rate: 0 });
    expect(t.verify('flat')).toBeGreaterThan(0);
  });

  it('short, add, partial cover, full cover', () => {
    const t = new Twin();
    t.createPortfolio('pf', 1000);
    t.trade('pf', { symbol: 'TSLA', side: 'sell', quantity: 4, price: 25 });
    t.trade('pf', { symbol: 'TSLA', side: 'sell', quantity: 6, price: 30 });
    // Short 10 @ avg 28, marked at 30: mv -300, upnl (30 - 28) * -10 = -20; cash 1000 + 100 + 180 = 1280.
    expectPosition(t, 'pf', 'TSLA', { quantity: -10, avg_cost: 28, market_value: -300, unrealized_pnl: -20, return_rate: pct(-20, 280) });
    expectTotals(t, 'pf', { cash: 1280, holdings_value: -300, cost_basis: 280, equity: 980, total_return: -20, return_rate: -2 });
    t.trade('pf', { symbol: 'TSLA', side: 'buy', quantity: 3, price: 20, fee: 0.3 });
    // Realized (28 - 20) * 3 - 0.3 = 23.7; -7 left at 28 marked at 20: mv -140, upnl 56, cost 196.
    // cash 1280 - 60.3 = 1219.7; equity 1079.7 = 1000 + 23.7 + 56.
    expectPosition(t, 'pf', 'TSLA', { quantity: -7, avg_cost: 28, last_price: 20, market_value: -140, unrealized_pnl: 56, realized_pnl: 23.7, return_rate: pct(56, 196) });
    expectTotals(t, 'pf', { cash: 1219.7, holdings_value: -140, cost_basis: 196, unrealized_pnl: 56, realized_pnl: 23.7, total_return: 79.7, equity: 1079.7, return_rate: 7.97 });
    t.trade('pf', { symbol: 'TSLA', side: 'buy', quantity: 7, price: 31 });
    // Realized 23.7 + (28 - 31) * 7 = 2.7; cash 1219.7 - 217 = 1002.7.
    expectTotals(t, 'pf', { cash: 1002.7, holdings_value: 0, realized_pnl: 2.7, total_return: 2.7, equity: 1002.7, return_rate: 0.27 });
    expect(t.verify('covered')).toBeGreaterThan(0);
  });

  it('fees reduce cash and realized P&L but never enter avg_cost', () => {
    const t = new Twin();
    t.createPortfolio('pf', 100);
    t.trade('pf', { symbol: 'F', side: 'buy', quantity: 2, price: 10, fee: 5 });
    // avg stays 10 (not (20 + 5) / 2 = 12.5); realized -5; cash 100 - 20 - 5 = 75; equity 75 + 20 = 95.
    expectPosition(t, 'pf', 'F', { avg_cost: 10, unrealized_pnl: 0, realized_pnl: -5 });
    expectTotals(t, 'pf', { cash: 75, cost_basis: 20, realized_pnl: -5, total_return: -5, equity: 95, return_rate: -5 });
    t.trade('pf', { symbol: 'F', side: 'buy', quantity: 2, price: 12, fee: 3 });
    // Adding with a fee: avg (2*10 + 2*12) / 4 = 11 (not (44 + 3) / 4 = 11.75); realized -8;
    // cash 75 - 24 - 3 = 48; marked at 12: mv 48, upnl (12 - 11) * 4 = 4; equity 96 = 100 - 8 + 4.
    expectPosition(t, 'pf', 'F', { quantity: 4, avg_cost: 11, market_value: 48, unrealized_pnl: 4, realized_pnl: -8 });
    expectTotals(t, 'pf', { cash: 48, cost_basis: 44, realized_pnl: -8, unrealized_pnl: 4, total_return: -4, equity: 96 });
    t.trade('pf', { symbol: 'F', side: 'sell', quantity: 1, price: 11, fee: 5 });
    // Selling at cost realizes only the fee: -13 in all; 3 left at 11; cash 48 + 11 - 5 = 54; equity 87.
    expectPosition(t, 'pf', 'F', { quantity: 3, avg_cost: 11, market_value: 33, unrealized_pnl: 0, realized_pnl: -13 });
    expectTotals(t, 'pf', { cash: 54, realized_pnl: -13, total_return: -13, equity: 87, return_rate: -13 });
    expect(t.verify('fees')).toBeGreaterThan(0);
  });

  it('deposits and withdrawals move cash and capital, not P&L', () => {
    const t = new Twin();
    t.createPortfolio('pf', 1000);
    t.deposit('pf', 500);
    expectTotals(t, 'pf', { cash: 1500, capital: 1500, total_return: 0, return_rate: 0 });
    t.trade('pf', { symbol: 'MSFT', side: 'buy', quantity: 10, price: 20 });
    t.withdraw('pf', 300);
    t.ticks([{ symbol: 'MSFT', price: 25 }]);
    // cash 1500 - 200 - 300 = 1000; capital 1000 + 500 - 300 = 1200; mv 250, upnl 50;
    // equity 1250 = capital + total return; return 50 / 1200 * 100 = 4.166...%.
    expectTotals(t, 'pf', { cash: 1000, capital: 1200, holdings_value: 250, unrealized_pnl: 50, total_return: 50, equity: 1250, return_rate: pct(50, 1200) });
    expect(t.verify('cash')).toBeGreaterThan(0);
  });

  it('fractional crypto: 0.00012345 BTC at 43,210.5, one more satoshi, a tick, an exact close', () => {
    const t = new Twin();
    t.createPortfolio('pf', 100);
    t.trade('pf', { symbol: 'BTC-USD', side: 'buy', quantity: 0.00012345, price: 43_210.5, fee: 0.01 });
    // notional 43210.5 * 12345 / 1e8 = 533,433,622.5 / 1e8 = 5.334336225; cash 100 - 5.334336225 - 0.01.
    expectTotals(t, 'pf', { cash: '94.655663775', cost_basis: '5.334336225', realized_pnl: -0.01 });
    t.trade('pf', { symbol: 'BTC-USD', side: 'buy', quantity: 0.00000001, price: 44_000 });
    // avg (5.334336225 + 0.00044) / 0.00012346 = 5.334776225 / 0.00012346 = 43210.5639478...
    const avg = new Dec('5.334776225').div('0.00012346');
    expectPosition(t, 'pf', 'BTC-USD', { quantity: 0.00012346, avg_cost: avg, last_price: 44_000, market_value: '5.43224' });
    t.ticks([{ symbol: 'BTC-USD', price: 43_000 }]);
    // mv 0.00012346 * 43000 = 5.30878; upnl 5.30878 - 5.334776225 = -0.025996225.
    expectPosition(t, 'pf', 'BTC-USD', { market_value: '5.30878', unrealized_pnl: '-0.025996225', return_rate: pct('-0.025996225', '5.334776225') });
    t.trade('pf', { symbol: 'BTC-USD', side: 'sell', quantity: 0.00012346, price: 43_500, fee: 0.01 });
    // Exact close: realized 0.00012346 * 43500 - 5.334776225 = 5.37051 - 5.334776225 = 0.035733775, minus
    // the fee; in all -0.01 + 0.035733775 - 0.01 = 0.015733775; cash 100.015733775 = capital + realized.
    expectPosition(t, 'pf', 'BTC-USD', { quantity: 0, avg_cost: 0, realized_pnl: '0.015733775' });
    expectTotals(t, 'pf', { cash: '100.015733775', holdings_value: 0, realized_pnl: '0.015733775', equity: '100.015733775', return_rate: '0.015733775' });
    expect(t.verify('btc')).toBeGreaterThan(0);
  });

  it('marks: a tick seen before the first trade is the mark; untraded and flat rows follow ticks harmlessly', () => {
    const t = new Twin();
    t.createPortfolio('a', 1e6);
    t.createPortfolio('b', 1e6);
    t.ticks([{ symbol: 'ETH-USD', price: 3000 }, { symbol: 'NOBODY', price: 1 }]);
    t.trade('a', { symbol: 'ETH-USD', side: 'buy', quantity: 2, price: 3010 });
    // Ticked before the trade: the mark is 3000, not 3010: mv 6000, upnl (3000 - 3010) * 2 = -20.
    expectPosition(t, 'a', 'ETH-USD', { last_price: 3000, market_value: 6000, unrealized_pnl: -20 });
    t.trade('b', { symbol: 'ETH-USD', side: 'sell', quantity: 1, price: 2990 });
    t.trade('b', { symbol: 'SOL', side: 'buy', quantity: 3, price: 100 });
    // One batch moving ETH twice (the last price wins) and repeating SOL's trade price.
    t.ticks([{ symbol: 'ETH-USD', price: 3100 }, { symbol: 'SOL', price: 100 }, { symbol: 'ETH-USD', price: 3050 }]);
    expectPosition(t, 'a', 'ETH-USD', { last_price: 3050, market_value: 6100, unrealized_pnl: 80, weight: 100 });
    // b: ETH short 1 @ 2990 marked 3050: mv -3050, upnl -60; SOL 3 @ 100: mv 300; gross 3350.
    expectPosition(t, 'b', 'ETH-USD', { market_value: -3050, unrealized_pnl: -60, weight: pct(3050, 3350) });
    expectPosition(t, 'b', 'SOL', { last_price: 100, market_value: 300, weight: pct(300, 3350) });
    expectTotals(t, 'b', { holdings_value: -2750, gross_exposure: 3350, unrealized_pnl: -60, cost_basis: 3290 });
    t.trade('a', { symbol: 'ETH-USD', side: 'sell', quantity: 2, price: 3060 });
    t.ticks([{ symbol: 'ETH-USD', price: 2000 }]);
    // a is flat: its row follows the tick (last_price 2000) with mv and upnl 0.
    expectPosition(t, 'a', 'ETH-USD', { quantity: 0, last_price: 2000, market_value: 0, unrealized_pnl: 0, realized_pnl: 100 });
    expectTotals(t, 'a', { holdings_value: 0, realized_pnl: 100, equity: 1e6 + 100 });
    expect(t.verify('marks')).toBeGreaterThan(0);
  });

  it('kernel growth: 300 portfolios, 300 symbols and 1,200 positions beyond the initial capacities', () => {
    // Initial capacities are 256 portfolios, 256 symbols, 1024 positions: all three columns grow.
    // The 300-symbol batch takes the kernel's portfolio sweep under the production rule: both paths run.
    const t = new Twin({ kernels: ['js', 'js-walk', 'js-sweep'] });
    for (let i = 0; i < 300; i++) t.createPortfolio(`p${i}`, 10_000 + i);
    t.ticks([{ symbol: 'S0', price: 1 }]);
    for (let i = 0; i < 1200; i++) {
      const sym = `S${(i * 7 + Math.floor(i / 300)) % 300}`; // 1,200 distinct (portfolio, symbol) pairs
      t.trade(`p${i % 300}`, { symbol: sym, side: i % 3 === 0 ? 'sell' : 'buy', quantity: (i % 17) + 0.5, price: 10 + (i % 13) * 0.25, fee: (i % 5) * 0.01 });
    }
    t.ticks(Array.from({ length: 300 }, (_, s) => ({ symbol: `S${s}`, price: 9 + (s % 11) * 0.5 })));
    for (const b of t.books) expect(b.kernel.positions).toBe(1200);
    expect(t.verify('grown')).toBeGreaterThan(1200 * 8);
  });
});

describe('sizes: at most 8 decimal places, the same rule for the engine and the oracle', () => {
  it('rejects 9 decimals and float noise, accepts 8 decimals', () => {
    const ledger = new Ledger();
    ledger.createPortfolio('pf');
    for (const quantity of [0.000000001, 1.123456789, 0.1 + 0.2]) {
      const v = validateTrade({ trade_id: 't', symbol: 'BTC', side: 'buy', quantity, price: 1 }, 0);
      expect(v.ok, `engine rejects ${quantity}`).toBe(false);
      expect(() => ledger.trade('pf', { symbol: 'BTC', side: 'buy', quantity, price: 1 }), `oracle rejects ${quantity}`).toThrow(RangeError);
    }
    const v = validateTrade({ trade_id: 't', symbol: 'BTC', side: 'buy', quantity: 0.00012345, price: 43_210.5 }, 0);
    expect(v.ok && v.value.units).toBe(12_345);
  });

  it('every 8-decimal quantity up to 2^25 becomes exactly its units, as the oracle reads it', () => {
    // The exactness the accounting relies on ("reaches exactly zero"): validateTrade's units must be
    // the quantity's shortest decimal times 1e8. Holds up to 2^25; above it see exactSizeMax.
    const check = (n: number): void => {
      const quantity = n / 1e8;
      const v = validateTrade({ trade_id: 't', symbol: 'X', side: 'sell', quantity, price: 1 }, 0);
      expect(v.ok && v.value.units, `units of ${quantity}`).toBe(n);
      expect(new Dec(quantity).times(1e8).toNumber(), `oracle units of ${quantity}`).toBe(n);
    };
    const top = exactSizeMax * 1e8;
    fc.assert(fc.property(fc.bigInt({ min: 1n, max: BigInt(top) }), (n) => check(Number(n))), { numRuns: 20_000 });
    for (let n = top - 20_000; n <= top; n++) check(n);
    expect(exactSizeMax).toBeLessThan(quantityMax);
  });

  it('a whole quantity (the fast path replay takes) becomes exactly its units, up to quantityMax and beyond', () => {
    const check = (q: number): void => {
      expect(quantityUnits(q), `units of ${q}`).toBe(new Dec(q).times(1e8).toNumber());
      expect(quantityUnits(-q), `units of ${-q}`).toBe(-new Dec(q).times(1e8).toNumber());
    };
    fc.assert(fc.property(fc.integer({ min: 1, max: quantityMax }), check), { numRuns: 20_000 });
    // The fast path's edge (floor(2^53 / 1e8) = 90,071,992); one more is past 2^53 units, refused.
    for (const q of [1, 2 ** 25, quantityMax, 90_071_991, 90_071_992]) check(q);
    expect(quantityUnits(90_071_993)).toBeNull();
  });
});

describe('the comparison rule', () => {
  it('accepts within max(1e-9 relative, 1e-6 absolute) and names label, values and difference otherwise', () => {
    expect(() => expectClose(1e6 + 9e-4, new Dec(1e6), 'rel')).not.toThrow(); // 1e-9 * 1e6 = 1e-3
    expect(() => expectClose(9e-7, new Dec(0), 'abs')).not.toThrow();
    expect(() => expectClose(1e6 + 2e-3, new Dec(1e6), 'too far')).toThrow(/too far: actual 1000000.002 expected 1000000 differ by 0.002/);
    expect(() => expectClose(2e-6, new Dec(0), 'tiny')).toThrow(MismatchError);
    expect(() => expectClose(Number.NaN, new Dec(1), 'nan')).toThrow(/nan: actual NaN is not finite/);
  });
});

// ---------------------------------------------------------------------------------------------------
// Property: long random sequences, every figure checked after every step.

/** Symbols over a wide range of prices (1e-6 .. 1e6), each with a size range that fits its price. */
interface Band {
  symbol: string;
  priceLo: number;
  priceHi: number;
  /** Trade sizes in 1e-8 units. */
  unitsLo: number;
  unitsHi: number;
  ticked: boolean;
}

const bands: readonly Band[] = [
  { symbol: 'BTC-USD', priceLo: 15_000, priceHi: 75_000, unitsLo: 1, unitsHi: 2e8, ticked: true }, // 1 satoshi .. 2 BTC
  { symbol: 'ETH-USD', priceLo: 800, priceHi: 5_000, unitsLo: 1e3, unitsHi: 5e9, ticked: true },
  { symbol: 'AAPL', priceLo: 1, priceHi: 1_000, unitsLo: 1e6, unitsHi: 1e11, ticked: true }, // 0.01 .. 1000 shares
  { symbol: 'PENNY', priceLo: 0.000001, priceHi: 0.05, unitsLo: 1e8, unitsHi: 1e15, ticked: true }, // 1 .. 10M
  { symbol: 'IDX', priceLo: 10_000, priceHi: 1_000_000, unitsLo: 1e4, unitsHi: 1e9, ticked: true },
  // Never ticked: marked at its last trade price for the whole run.
  { symbol: 'OTC', priceLo: 5, priceHi: 50, unitsLo: 1e6, unitsHi: 1e10, ticked: false },
];
const tickedBands = bands.filter((b) => b.ticked).length;

/**
 * Portfolios: capital 0 (returns on cost basis), a large one, and two with cash operations. Four
 * portfolios rather than one also keep the oracle's replays short (see LedgerOptions).
 */
const portfolios = [
  { id: 'p0', cash: 0, cashOps: false },
  { id: 'p1', cash: 1_000_000, cashOps: false },
  { id: 'p2', cash: 25_000, cashOps: true },
  { id: 'p3', cash: 5_000, cashOps: true },
] as const;
const cashPortfolios = portfolios.filter((p) => p.cashOps).map((p) => p.id);
const capitalFloor = 1_000;
const maxUnits = exactSizeMax * 1e8;

const U = 2 ** 30;
const unit = fc.integer({ min: 0, max: U - 1 });
// fast-check's bias puts about half of all integers within 0.1% of the bounds; prices want the whole
// range (noBias), sizes keep ~10% at the bounds (1 unit, the largest size) for the edge cases.
const priceArb = fc.noBias(unit);
const sizeArb = fc.oneof({ weight: 4, arbitrary: fc.noBias(unit) }, { weight: 1, arbitrary: unit });
const pfIndex = fc.integer({ min: 0, max: portfolios.length - 1 });
const symIndex = fc.integer({ min: 0, max: bands.length - 1 });
/** 0 (often), or up to 50.000000 with up to 6 decimals. */
const feeArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 50_000_000 }).map((m) => m / 1e6));

const stepArb = fc.oneof(
  { weight: 40, arbitrary: fc.record({ kind: fc.constant('trade' as const), pf: pfIndex, sym: symIndex, side: fc.constantFrom('buy' as const, 'sell' as const), size: sizeArb, price: priceArb, fee: feeArb }) },
  // Sized at run time from the position: exactly its size (to zero), more than it (a flip), a part of it.
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('close' as const), pf: pfIndex, sym: symIndex, size: sizeArb, price: priceArb, fee: feeArb }) },
  { weight: 7, arbitrary: fc.record({ kind: fc.constant('flip' as const), pf: pfIndex, sym: symIndex, size: sizeArb, price: priceArb, fee: feeArb }) },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('reduce' as const), pf: pfIndex, sym: symIndex, size: sizeArb, price: priceArb, fee: feeArb }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('cash' as const), pf: fc.integer({ min: 0, max: cashPortfolios.length - 1 }), deposit: fc.boolean(), cents: fc.integer({ min: 1, max: 2_000_000 }) }) },
  {
    weight: 23,
    arbitrary: fc.record({
      kind: fc.constant('ticks' as const),
      batch: fc.array(fc.record({ sym: fc.integer({ min: 0, max: tickedBands - 1 }), price: priceArb, repeat: fc.integer({ min: 0, max: 9 }) }), { minLength: 1, maxLength: 4 }),
    }),
  },
);
type Step = typeof stepArb extends fc.Arbitrary<infer T> ? T : never;

/** Log-uniform in [lo, hi]: every order of magnitude of the range is as likely as any other. */
function logUniform(r: number, lo: number, hi: number): number {
  return Math.exp(Math.log(lo) + (r / U) * (Math.log(hi) - Math.log(lo)));
}
const priceOf = (b: Band, r: number): number => Math.max(1, Math.round(logUniform(r, b.priceLo * 1e6, b.priceHi * 1e6))) / 1e6; // <= 6 decimals
const unitsOf = (b: Band, r: number): number => Math.max(1, Math.round(logUniform(r, b.unitsLo, b.unitsHi)));

/** What a run exercised: the property asserts that each case really occurred. */
interface Coverage {
  compared: number;
  exactCloses: number;
  flips: number;
  shortOpens: number;
  partialReductions: number;
  tickBatches: number;
  withdrawals: number;
}

function applyStep(t: Twin, step: Step, lastTick: Map<string, number>, cov?: Coverage): void {
  if (step.kind === 'ticks') {
    const batch = step.batch.map((k) => {
      const b = bands[k.sym];
      const last = lastTick.get(b.symbol);
      // 1 in 10 repeats the current price: the kernel's "unchanged price" skip must change nothing.
      const price = k.repeat === 0 && last !== undefined ? last : priceOf(b, k.price);
      lastTick.set(b.symbol, price);
      return { symbol: b.symbol, price };
    });
    t.ticks(batch);
    if (cov) cov.tickBatches++;
    return;
  }
  if (step.kind === 'cash') {
    const pf = cashPortfolios[step.pf];
    const amount = step.cents / 100;
    // Capital stays above a floor so that return_rate = total_return / capital stays well conditioned.
    if (!step.deposit && t.book.state(pf).capital - amount >= capitalFloor) {
      t.withdraw(pf, amount);
      if (cov) cov.withdrawals++;
    } else t.deposit(pf, amount);
    return;
  }
  const pf = portfolios[step.pf].id;
  const b = bands[step.sym];
  const price = priceOf(b, step.price);
  const held = t.units(pf, b.symbol);
  let side: 'buy' | 'sell';
  let size: number;
  if (step.kind === 'trade' || held === 0) {
    side = step.kind === 'trade' ? step.side : step.size % 2 === 0 ? 'buy' : 'sell';
    size = unitsOf(b, step.size);
  } else {
    side = held > 0 ? 'sell' : 'buy';
    const h = Math.abs(held);
    if (step.kind === 'close') size = h;
    else if (step.kind === 'flip') size = h + unitsOf(b, step.size);
    else size = Math.max(1, Math.floor((h * step.size) / U)); // reduce: 1 unit .. the whole position
  }
  // Keep every trade and every position within exactSizeMax: above it validateTrade does not turn every
  // 8-decimal quantity into its exact units (see exactSizeMax), and the engine bounds trades only, not
  // positions (two trades of 90,000,000 make 1.8e16 units, past 2^53, where units stop being exact).
  const after = held + (side === 'buy' ? size : -size);
  if (Math.abs(after) > maxUnits) size -= Math.abs(after) - maxUnits;
  size = Math.min(size, maxUnits);
  if (size <= 0) {
    side = held > 0 ? 'sell' : 'buy';
    size = Math.abs(held);
  }
  const o = t.trade(pf, { symbol: b.symbol, side, quantity: size / 1e8, price, fee: step.fee });
  if (cov) {
    if (o.closed && !o.flipped) cov.exactCloses++;
    if (o.flipped) cov.flips++;
    if (o.opened && o.position.units < 0) cov.shortOpens++;
    if (!o.closed && held !== 0 && Math.sign(held) !== Math.sign(o.position.units - held)) cov.partialReductions++;
  }
}

function runSequence(steps: readonly Step[]): Coverage {
  const t = new Twin({ ledger: { reuseUnchangedReplays: true } });
  for (const p of portfolios) t.createPortfolio(p.id, p.cash);
  const lastTick = new Map<string, number>();
  const cov: Coverage = { compared: t.verify('start'), exactCloses: 0, flips: 0, shortOpens: 0, partialReductions: 0, tickBatches: 0, withdrawals: 0 };
  steps.forEach((step, i) => {
    applyStep(t, step, lastTick, cov);
    cov.compared += t.verify(`step ${i} (${step.kind})`);
  });
  return cov;
}

describe('property: the incremental engine equals the exact oracle after every step', () => {
  const stepsPerRun = 2_000;
  const runs = 3;

  it(`${runs} runs of ${stepsPerRun} random steps: trades, exact closes, flips, fees, cash, ticks`, () => {
    const before = comparisonCount();
    resetWorstUseOfTolerance();
    const coverage: Coverage[] = [];
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: stepsPerRun, maxLength: stepsPerRun }), (steps) => {
        coverage.push(runSequence(steps));
      }),
      {
        numRuns: runs,
        // A 2,000-step counterexample cannot be shrunk in useful time; the failure names the step, the
        // figure and the journal of the steps before it, and the seed below replays the run.
        endOnFailure: true,
        reporter: (details) => {
          if (!details.failed) return;
          const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
          throw new Error(`property failed (seed ${details.seed}, path "${details.counterexamplePath}"):\n${cause}`);
        },
      },
    );
    expect(coverage).toHaveLength(runs);
    // Each run really went through the cases it is meant to cover, and compared ~20 figures per
    // portfolio after each step.
    for (const c of coverage) {
      expect(c.compared).toBeGreaterThan(stepsPerRun * portfolios.length * 10);
      expect(c.exactCloses).toBeGreaterThan(20);
      expect(c.flips).toBeGreaterThan(20);
      expect(c.shortOpens).toBeGreaterThan(20);
      expect(c.partialReductions).toBeGreaterThan(20);
      expect(c.tickBatches).toBeGreaterThan(100);
      expect(c.withdrawals).toBeGreaterThan(5);
    }
    const compared = coverage.reduce((n, c) => n + c.compared, 0);
    expect(comparisonCount() - before).toBe(compared);
    // A precision-regression guard well inside the rule: over 50+ seeded runs (and with sizes up to
    // 100x larger) the worst figure used under 1% of its tolerance, so 25% means something degraded.
    const worst = worstUseOfTolerance();
    expect(worst.ratio, `worst use of the tolerance: ${worst.label}`).toBeLessThan(0.25);
    // ~9 s of CPU on a quiet core; the default 60 s ran out at load 10 (session 4): a timeout is not
    // a speed assertion here, only a guard against a hang.
  }, 300_000);

  it('the oracle shortcut (reusing an unchanged portfolio replay) gives the plain replay figures', () => {
    // Guards LedgerOptions.reuseUnchangedReplays, which the long property relies on for speed: two
    // twins get the same steps (applyStep decides from the engine's state, identical in both), and
    // after every step the two oracles must print the same exact figures.
    let compared = 0;
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 50, maxLength: 150 }), (steps) => {
        const fast = new Twin({ ledger: { reuseUnchangedReplays: true }, kernels: ['js'] });
        const plain = new Twin({ kernels: ['js'] });
        for (const p of portfolios) {
          fast.createPortfolio(p.id, p.cash);
          plain.createPortfolio(p.id, p.cash);
        }
        const fastTicks = new Map<string, number>();
        const plainTicks = new Map<string, number>();
        for (const step of steps) {
          applyStep(fast, step, fastTicks);
          applyStep(plain, step, plainTicks);
          const a = fast.ledger.all();
          for (const [id, fb] of plain.ledger.all()) {
            expect(figuresText(a.get(id) as PortfolioFigures)).toBe(figuresText(fb));
            compared++;
          }
        }
      }),
      { numRuns: 10 },
    );
    expect(compared).toBeGreaterThan(0);
  });
});

function figuresText(f: PortfolioFigures): string {
  const row = (o: object): string =>
    Object.entries(o)
      .map(([k, v]) => `${k}=${v instanceof Dec ? v.toString() : Array.isArray(v) ? '' : String(v)}`)
      .join(' ');
  return [row(f), ...f.positions.map(row)].join('\n');
}
