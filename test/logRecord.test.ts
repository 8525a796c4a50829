// Proves that recovery's byte reader of the event log (src/shard/logRecord.ts) reads exactly what the
// store's own decoding reads, on a log a real engine wrote into real LMDB: trades in the base currency
// and in a foreign one (with fx_rate), of a multiplied instrument, with fractional, large and small
// quantities, fees, buys and sells, fifo lots; every TradeExecuted it accepts has the decoded event's
// fields, one with lot_ids is declined (it travels decoded), every other event is declined, and
// typeOf names every event's type. Declining is the safe answer: the caller then decodes the value.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../src/domain/types.js';
import { createEngine } from '../src/engine/engine.js';
import { LogRecordReader } from '../src/shard/logRecord.js';
import { openStore } from '../src/store/store.js';
import { ensureBuilt, tempDir } from './support/engine.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
beforeAll(() => ensureBuilt());

async function writeLog(path: string): Promise<void> {
  const engine = await createEngine({ dataDir: path, workers: 2 });
  const must = <T>(r: { ok: boolean; error?: { message: string } } & T): T => {
    if (!r.ok) throw new Error(r.error?.message);
    return r;
  };
  must(await engine.createPortfolio({ id: 'avg', cash: 1_000_000 }));
  must(await engine.createPortfolio({ id: 'fifo', cash: 1_000_000, cost_basis_method: 'fifo' }));
  must(await engine.createPortfolio({ id: 'eur', cash: 1_000_000, base_currency: 'EUR' }));
  must(await engine.defineInstrument('ESZ6', { asset_class: 'future', currency: 'USD', multiplier: 50 }));
  must(await engine.cash('avg', { type: 'deposit', amount: 2_500.25 }));
  let n = 0;
  const trade = async (p: string, t: object) => must(await engine.trade(p, { trade_id: `t${n++}`, ...t } as never));
  for (const [symbol, quantity, price] of [
    ['AAPL', 1, 10],
    ['AAPL', 64, 100],
    ['AAPL', 127, 99.5],
    ['AAPL', 65_536, 0.01],
    ['AAPL', 0.00012345, 43_210.5],
    ['MID', 33_554_432, 1.25],
    ['BIG', 89_999_999.5, 0.001],
  ] as const) {
    await trade('avg', { symbol, side: 'buy', quantity, price, fee: 1.5 });
  }
  await trade('avg', { symbol: 'AAPL', side: 'sell', quantity: 3, price: 11 });
  await trade('avg', { symbol: 'ESZ6', side: 'buy', quantity: 2, price: 5_000.25 });
  await trade('avg', { symbol: 'SAP', side: 'buy', quantity: 10, price: 100, currency: 'EUR', fx_rate: 1.1 });
  await trade('eur', { symbol: 'MSFT', side: 'buy', quantity: 5, price: 300, currency: 'USD', fx_rate: 0.9 });
  await trade('fifo', { symbol: 'BTC', side: 'buy', quantity: 1, price: 100 });
  await trade('fifo', { symbol: 'BTC', side: 'buy', quantity: 2, price: 120 });
  await trade('fifo', { symbol: 'BTC', side: 'sell', quantity: 2, price: 130 });
  await trade('fifo', { symbol: 'BTC', side: 'sell', quantity: 0.5, price: 131, lot_ids: ['t12'] });
  await trade('fifo', { symbol: 'BTC', side: 'sell', quantity: 0.5, price: 132 });
  await engine.close();
}

describe('the log record reader', () => {
  it('reads every TradeExecuted as the store decodes it, and declines everything else', async () => {
    const d = tempDir('mtm-logrecord-');
    cleanups.push(() => d.remove());
    await writeLog(d.path);
    const opened = openStore({ path: d.path });
    if (!opened.ok) throw new Error(opened.error.message);
    const store = opened.value;
    const reader = new LogRecordReader();
    const decoded: StoredEvent[] = [...store.eventsAfter(0)];
    const raw = [...store.rawEventsAfter(0)];
    expect(raw.map((r) => r.key)).toEqual(decoded.map((e) => e.seq));
    let read = 0;
    const types = new Set<string>();
    raw.forEach(({ value }, i) => {
      const e = decoded[i];
      types.add(e.type);
      expect(store.decodeEvent(value)).toEqual(e);
      expect(reader.typeOf(value, 0, value.length)).toBe(e.type);
      // The reader takes a value inside a larger buffer too (a replay chunk): pad it both sides.
      const padded = new Uint8Array(value.length + 7);
      padded.set(value, 3);
      const accepted = reader.read(padded, 3, 3 + value.length);
      if (e.type !== 'TradeExecuted' || e.lot_ids !== undefined) {
        expect(accepted, `${e.type} ${JSON.stringify(e)}`).toBe(false);
        return;
      }
      expect(accepted, JSON.stringify(e)).toBe(true);
      read++;
      expect({ ...reader.trade }).toEqual({
        seq: e.seq,
        portfolio_id: e.portfolio_id,
        trade_id: e.trade_id,
        symbol: e.symbol,
        side: e.side,
        quantity: e.quantity,
        price: e.price,
        fee: e.fee,
        trade_ts: e.trade_ts,
        currency: e.currency ?? null,
        fx_rate: e.fx_rate ?? null,
        multiplier: e.multiplier ?? 1,
      });
    });
    expect(read).toBe(15);
    // The tail's reader (trade ids built only on demand, tradeId()) accepts and declines the same values, the same fields and, on demand, the same id.
    const router = new LogRecordReader(false);
    raw.forEach(({ value }) => {
      const accepted = reader.read(value, 0, value.length);
      expect(router.read(value, 0, value.length)).toBe(accepted);
      if (accepted) expect({ ...router.trade, trade_id: reader.trade.trade_id }).toEqual({ ...reader.trade });
      if (accepted) expect(router.tradeId()).toBe(reader.trade.trade_id);
    });
    expect(types).toEqual(new Set(['PortfolioCreated', 'InstrumentDefined', 'CashDeposited', 'TradeExecuted', 'PositionOpened', 'PositionClosed', 'LotClosed']));
    // A truncated value is declined, never misread.
    const first = raw.find((r, i) => decoded[i].type === 'TradeExecuted')!.value;
    for (let cut = 0; cut < first.length; cut++) expect(reader.read(first, 0, cut)).toBe(false);
    await store.close();
  }, 60_000);
});
